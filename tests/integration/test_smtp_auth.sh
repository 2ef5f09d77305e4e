#!/bin/sh
# Message authentication end to end against a real DNS lab (dnslab: NSD +
# validating Unbound on loopback). Needs root the first time (dnslab
# installs nsd/unbound/ldnsutils). Uses 127.0.0.7 (server) and 127.0.0.21-24
# (clients). Skips (exit 77) when dnslab cannot run.
SRC="${MOX_SRCDIR:-$(dirname "$0")/../..}"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # python3-dkim is a Debian package
exec "$PY" "$SRC/tests/integration/test_smtp_auth.py"
