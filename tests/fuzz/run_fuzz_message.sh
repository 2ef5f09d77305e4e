#!/bin/sh
# Run the message fuzz target, built as a normal program, over the MIME
# corpus and a few hostile inputs made here. Part of make check.
set -eu
: "${MOX_SRCDIR:?}" "${MOX_BUILDDIR:?}"
bin="$MOX_BUILDDIR/tests/fuzz/fuzz_message"
corpus="$MOX_SRCDIR/../shared/testdata/mime"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Hostile inputs: empty, NUL bytes, bare CR, deep nesting, unterminated
# constructs, long lines, many parts.
: >"$tmp/empty"
printf 'A: \000\000\r\n\r\n\000' >"$tmp/nul"
printf 'Subject: x\r\rContent-Type: multipart/mixed; boundary=a\r\r--a\r' >"$tmp/cr"
printf '=?utf-8?q?' >"$tmp/word"
printf '"\\' >"$tmp/quote"
printf '(((((((((((((((((((((((((((((((((((((((((((' >"$tmp/comment"
printf '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{"v":1' >"$tmp/json"
i=0
while [ $i -lt 300 ]; do
	printf 'Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n' $i $i
	i=$((i + 1))
done >"$tmp/deep"
i=0
while [ $i -lt 300 ]; do
	printf 'Content-Type: message/rfc822\r\n\r\n'
	i=$((i + 1))
done >"$tmp/deepmsg"
head -c 300000 /dev/zero | tr '\0' 'x' >"$tmp/longline"
{
	printf 'Content-Type: multipart/mixed; boundary=z\r\n\r\n'
	i=0
	while [ $i -lt 12000 ]; do
		printf -- '--z\n'
		i=$((i + 1))
	done
} >"$tmp/manyparts"

find "$corpus" -type f \( -name '*.txt' -o -name '*.eml' -o -name '*.msg' \) \
    -print0 | xargs -0 "$bin"
"$bin" "$tmp"/*
echo "fuzz_message: corpus and hostile inputs passed"
