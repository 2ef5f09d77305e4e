#!/bin/sh
# Run the SMTP parser fuzz target, built as a normal program, over hostile
# inputs made here. Part of make check.
set -eu
: "${MOX_BUILDDIR:?}"
bin="$MOX_BUILDDIR/tests/fuzz/fuzz_smtp_parse"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

: >"$tmp/empty"
printf 'MAIL FROM:<a@b> SIZE=1\r\nRCPT TO:<Postmaster>\r\nDATA\r\n' >"$tmp/cmds"
printf 'MAIL FROM:<\000@b>\r\nRCPT TO:<a@\000>\r\n' >"$tmp/nul"
printf 'a\r\n.\nb\n.\r\n\r.\r\n.\r\n' >"$tmp/smuggle"
printf 'MAIL FROM:<"\\' >"$tmp/quote"
printf 'MAIL FROM:<\377\376@\300\200> SMTPUTF8\r\n' >"$tmp/utf8"
printf 'MAIL FROM:<a@[IPv6:::::::::::::::::]>\r\nEHLO [1.2.3.4.5]\r\n' >"$tmp/lit"
printf 'MAIL FROM:<a@b> HOLDUNTIL=9999-12-31T23:59:60.9999999999999Z\r\n' >"$tmp/hold"
head -c 5000 /dev/zero | tr '\0' '.' >"$tmp/dots"
{
	printf 'MAIL FROM:<a@b>'
	i=0
	while [ $i -lt 100 ]; do
		printf ' X%d=y' $i
		i=$((i + 1))
	done
	printf '\r\n'
} >"$tmp/params"
"$bin" "$tmp"/*
echo "fuzz_smtp_parse: hostile inputs passed"
