#!/bin/sh
# DNSBL lookups at connection time and SPF/DKIM verified side by side,
# against a real DNS lab (dnslab: NSD + validating Unbound on loopback).
# Needs root the first time (dnslab installs nsd/unbound/ldnsutils). Uses
# 127.0.0.42 (server and clients). Skips (exit 77) when dnslab cannot run.
exec python3 "${MOX_SRCDIR:-$(dirname "$0")/../..}/tests/integration/test_smtp_dnsbl.py"
