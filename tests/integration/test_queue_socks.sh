#!/bin/sh
exec python3 "${MOX_SRCDIR:-$(dirname "$0")/../..}/tests/integration/test_queue_socks.py"
