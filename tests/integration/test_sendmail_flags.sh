#!/bin/sh
# `mox sendmail` flags against a small SMTP peer on 127.0.0.48: -f and -r
# are ignored, the envelope sender is the configured From.
exec python3 "${MOX_SRCDIR:-$(dirname "$0")/../..}/tests/integration/test_sendmail_flags.py"
