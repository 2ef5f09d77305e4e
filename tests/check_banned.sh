#!/bin/sh
# No banned string functions in the tree (STYLE.md section 6). Every C file
# also includes lib/banned.h, which poisons them at compile time; this test
# catches files that forgot to include it.
set -u
src=${MOX_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$src" || exit 1
bad=$(grep -rnE '\b(strcpy|strcat|strncpy|strncat|sprintf|vsprintf|gets|strtok|atoi|atol|alloca)[[:space:]]*\(' \
	--include='*.c' --include='*.h' src maildir tools tests 2>/dev/null |
	grep -v 'src/lib/banned.h' | grep -vE '^\S+:[0-9]+:\s*(/\*|\*)' )
if [ -n "$bad" ]; then
	echo "banned functions used:"
	echo "$bad"
	exit 1
fi
missing=""
for f in $(find src maildir tools -name '*.c' 2>/dev/null); do
	grep -q 'banned.h"' "$f" || missing="$missing $f"
done
if [ -n "$missing" ]; then
	echo "files without lib/banned.h:$missing"
	exit 1
fi
echo "no banned functions"
