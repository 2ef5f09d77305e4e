#!/bin/sh
# DKIM interop: messages signed by our signer (rsa and ed25519, simple and
# relaxed) must verify with python3-dkim (dkimverify's library) and with
# opendkim-testmsg (opendkim-tools). Exit 77 when a tool is missing.
srcdir=${MOX_SRCDIR:-$(dirname "$0")/../..}
builddir=${MOX_BUILDDIR:-.}
tool="$builddir/tests/integration/dkim_signtool"
# python3-dkim is a Debian package: use the system interpreter.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if ! "$PY" -c 'import dkim' 2>/dev/null; then
	echo "python3-dkim not installed: skipping"
	exit 77
fi
if ! command -v opendkim-testmsg >/dev/null 2>&1 &&
    ! [ -x /usr/sbin/opendkim-testmsg ]; then
	echo "opendkim-tools not installed: skipping"
	exit 77
fi
exec "$PY" "$srcdir/tests/integration/test_dkim_interop.py" "$tool"
