#!/bin/sh
# IMAP server end to end with python3 imaplib and raw sockets.
exec python3 "${MOX_SRCDIR:-$(dirname "$0")/../..}/tests/integration/test_imap.py"
