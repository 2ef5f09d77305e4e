#!/bin/sh
# Per-account outgoing limits at submission, mox localserve on 127.0.0.52.
exec python3 "${MOX_SRCDIR:-$(dirname "$0")/../..}/tests/integration/test_smtp_outlimits.py"
