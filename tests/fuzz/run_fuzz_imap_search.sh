#!/bin/sh
# Run the IMAP search fuzz target, built as a normal program, over a
# corpus of search criteria, section specs and mailbox names written
# here, hostile ones included. Part of make check.
set -eu
: "${MOX_BUILDDIR:?}"
bin="$MOX_BUILDDIR/tests/fuzz/fuzz_imap_search"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=0
add() {
	n=$((n + 1))
	printf '%b' "$1" >"$tmp/c$n"
}
add ''
add 'ALL'
add 'RETURN (MIN MAX COUNT) CHARSET UTF-8 OR SEEN (FROM alice BODY fox)'
add 'NOT (OR 1:* $) UID 2,4:* KEYWORD $x UNKEYWORD a'
add 'SUBJECT {4}\r\ncaf\303\251 TEXT nested HEADER Subject ""'
add 'SENTON 2-Jan-2024 SINCE "1-Jan-2024" SAVEDBEFORE 1-Mar-2024 YOUNGER 9'
add 'MODSEQ "/flags/\\\\seen" all 3 LARGER 10 SMALLER 99999'
add 'SUBJECT {99999999999999999999}\r\n'
add 'SUBJECT {5}\r\nab'
add 'SUBJECT "\\'
add 'BEFORE 29-Feb-2023'
add '\000\000\377\376SEEN'
add '[2.HEADER.FIELDS (Subject "From" {2}\r\nTo)]<0.5>'
add '[1.MIME]'
add '[]<4294967295.4294967295>'
add '~peter/mail/&U,BTFw-/&ZeVnLIqe-'
add '&AOQ-&AOQ-'
add '&2D3eAA-'
i=0
: >"$tmp/deep"
while [ $i -lt 5000 ]; do
	printf '(' >>"$tmp/deep"
	i=$((i + 1))
done
i=0
: >"$tmp/nots"
while [ $i -lt 5000 ]; do
	printf 'NOT ' >>"$tmp/nots"
	i=$((i + 1))
done
i=0
: >"$tmp/keys"
while [ $i -lt 2000 ]; do
	printf 'OR SEEN ' >>"$tmp/keys"
	i=$((i + 1))
done
i=0
: >"$tmp/set"
while [ $i -lt 20000 ]; do
	printf '%d,' $((i * 2 + 1)) >>"$tmp/set"
	i=$((i + 1))
done
printf '1' >>"$tmp/set"
head -c 100000 /dev/urandom >"$tmp/random" 2>/dev/null || :

"$bin" "$tmp"/*
echo "fuzz_imap_search: corpus and hostile inputs passed"
