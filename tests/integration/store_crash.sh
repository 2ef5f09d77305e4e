#!/bin/sh
# store_crash.sh: kill -9 a delivering process at random moments, 20 times;
# after each kill every uid it printed must be present exactly once and
# verifydata (with -fix for orphans) must be clean.
set -eu
bin="${MOX_BUILDDIR:-.}/tests/integration/store_crash"
dir=$(mktemp -d /tmp/store_crash.XXXXXX)
uids="$dir/uids"
: >"$uids"
i=0
while [ "$i" -lt 20 ]; do
	i=$((i + 1))
	"$bin" deliver "$dir/data" >>"$dir/out.$i" 2>"$dir/err.$i" &
	pid=$!
	# 50..549 ms
	ms=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 500 + 50 ))
	sleep "$(printf '0.%03d' "$ms")"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	# a line cut by the kill has no newline: keep complete lines only
	if [ -s "$dir/out.$i" ]; then
		if [ "$(tail -c1 "$dir/out.$i" | od -An -c | tr -d ' ')" != '\n' ]; then
			sed -i '$d' "$dir/out.$i"
		fi
		cat "$dir/out.$i" >>"$uids"
	fi
	if ! "$bin" verify "$dir/data" "$uids" >"$dir/verify.$i" 2>&1; then
		echo "store_crash: round $i failed; see $dir" >&2
		cat "$dir/verify.$i" >&2
		exit 1
	fi
	echo "round $i: $(cat "$dir/verify.$i" | tail -1)"
done
rm -rf "$dir"
