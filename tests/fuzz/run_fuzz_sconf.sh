#!/bin/sh
# Replay the sconf fuzz corpus (hostile inputs and the test configs)
# through tests/fuzz/fuzz_sconf; any crash or sanitizer report fails.
set -eu
src=${MOX_SRCDIR:-$(dirname "$0")/../..}
bin=${MOX_BUILDDIR:-.}/tests/fuzz/fuzz_sconf
d=$src/tests/unit/data/config
"$bin" "$d"/fuzz/* "$d"/localserve/*.conf "$d"/quickstart/*.conf
