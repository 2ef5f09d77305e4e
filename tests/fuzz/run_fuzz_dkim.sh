#!/bin/sh
# Run the DKIM fuzz program over every DKIM test message and every key
# record of the test data (each record as its own file): no crash, no
# sanitizer report.
set -eu
src=${MOX_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${MOX_BUILDDIR:-.}
data="$src/../shared/testdata/dkim"
[ -d "$data" ] || { echo "no test data at $data"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -v '^#' "$data/dns.tsv" | cut -f2 | split -l 1 - "$tmp/rec."
# shellcheck disable=SC2046
"$build/tests/fuzz/fuzz_dkim" $(find "$data" -type f \( -name '*.eml' -o -name '*.msg' \)) "$tmp"/rec.*
echo "fuzz_dkim: vectors and key records parsed"
