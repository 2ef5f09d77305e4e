#!/bin/sh
# Install what is needed, build, and run `mox localserve` in the foreground:
# a complete server on loopback with a generated config in
# $HOME/.config/mox-localserve (account mox@localhost, password moxmoxmox).
# Extra arguments go to localserve, e.g. -dir /tmp/mox-dev.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh tools/install-deps.sh
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q
make -j"$(nproc 2>/dev/null || echo 2)" mox >/dev/null
exec ./mox localserve "$@"
