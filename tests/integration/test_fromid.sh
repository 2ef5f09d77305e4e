#!/bin/sh
# fromid end to end in mox localserve on 127.0.0.49.
exec python3 "${MOX_SRCDIR:-$(dirname "$0")/../..}/tests/integration/test_fromid.py"
