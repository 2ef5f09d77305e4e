#!/bin/sh
# IMAP output paced by slow readers; no worker held (127.0.0.45).
exec python3 "${MOX_SRCDIR:-$(dirname "$0")/../..}/tests/integration/test_imap_backpressure.py"
