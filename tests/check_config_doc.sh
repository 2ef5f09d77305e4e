#!/bin/sh
# doc/config.md is what the schema says today.
set -eu
src=${MOX_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${MOX_BUILDDIR:-.}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sh "$src/tools/gen-config-doc.sh" "$build/mox" >"$tmp"
if ! cmp -s "$tmp" "$src/doc/config.md"; then
	echo "doc/config.md is out of date; run: tools/gen-config-doc.sh ./mox > doc/config.md"
	diff -u "$src/doc/config.md" "$tmp" | head -40
	exit 1
fi
echo "doc/config.md matches the schema"
