#!/bin/sh
# Real IMAP clients (curl, mbsync, imtest, mutt in tmux) against the server.
exec python3 "${MOX_SRCDIR:-$(dirname "$0")/../..}/tests/integration/test_imap_clients.py"
