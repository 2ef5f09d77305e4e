#!/bin/sh
# Aliases and the partial-failure DSN end to end: mox serve on 127.0.0.40
# with a dnslab world. Needs root (serve binds as root, runs as User);
# skips (exit 77) without it or when dnslab cannot run.
SRC="${MOX_SRCDIR:-$(dirname "$0")/../..}"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # python3-dkim is a Debian package
exec "$PY" "$SRC/tests/integration/test_smtp_alias.py"
