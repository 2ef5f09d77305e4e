#!/bin/sh
# Install what is needed, build, and run the whole test suite twice: a
# normal build and a build with AddressSanitizer + UndefinedBehaviorSanitizer.
# Run from anywhere in a clone, as root on Debian 12 (for apt-get).
# Test data is read from ../shared beside the clone.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh tools/install-deps.sh
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
jobs=$(nproc 2>/dev/null || echo 2)

run() {
	name=$1
	shift
	echo "== $name build: configure $*"
	rm -rf "build-$name"
	mkdir "build-$name"
	(
		cd "build-$name"
		../configure -q "$@"
		make -j"$jobs" >/dev/null
		if ! make -j"$jobs" check >check.out 2>&1; then
			cat check.out
			echo "== $name build: test failures; logs follow" >&2
			cat test-suite.log >&2 || true
			exit 1
		fi
		grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' check.out
	)
}

run normal
run sanitizers --enable-sanitizers
echo "== all tests passed (normal and sanitizer builds)"
