#!/bin/sh
# Run the IMAP command parser fuzz target, built as a normal program, over
# hostile inputs made here. Part of make check.
set -eu
: "${MOX_BUILDDIR:?}"
bin="$MOX_BUILDDIR/tests/fuzz/fuzz_imap_parse"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

: >"$tmp/empty"
printf 'a1 LOGIN {5}\r\nab\000de "pw"' >"$tmp/nul"
printf 'a1 APPEND Inbox (\\Seen {3}\r\nabc' >"$tmp/unbalanced"
printf 'a1 FETCH 1:*,0:4294967296 (BODY[1.2.3.HEADER.FIELDS (a b' >"$tmp/fetch"
printf 'a1 SEARCH \377\376\375 "\r\n' >"$tmp/garbage"
printf 'a1 STORE 1 +FLAGS (\\\\Seen \\Bogus' >"$tmp/flags"
printf 'a1 APPEND x "32-Foo-2006 99:99:99 +9999" ~{4294967295}' >"$tmp/date"
i=0
while [ $i -lt 2000 ]; do printf '('; i=$((i + 1)); done >"$tmp/deep"
i=0
while [ $i -lt 3000 ]; do printf '1:*,'; i=$((i + 1)); done >"$tmp/seq"
head -c 100000 /dev/zero | tr '\0' '{' >"$tmp/braces"
"$bin" "$tmp"/*
echo "fuzz_imap_parse: hostile inputs passed"
