#!/bin/sh
# Port 25 MAIL FROM checks (MX, SPF for a 2nd recipient) and the
# first-time-sender delay against `mox serve` on 127.0.0.41 with a DNS lab
# (dnslab: NSD + validating Unbound on loopback). Needs root (serve binds
# as root; dnslab installs nsd/unbound the first time); skips (77)
# otherwise.
SRC="${MOX_SRCDIR:-$(dirname "$0")/../..}"
exec python3 "$SRC/tests/integration/test_smtp_reputation.py"
