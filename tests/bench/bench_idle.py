#!/usr/bin/env python3
"""bench_idle.py: memory and threads per idle connection of the network
runtime, measured on tests/integration/testproto_server.

usage: bench_idle.py [-n connections] [-w workers] [server-binary]

Starts the server with a pool of -w workers (default 8), opens -n idle
TCP connections (default 10000; each reads its greeting, then sends
nothing), and prints the server's VmRSS and Threads from /proc before and
after: "rss per idle connection: N bytes" and "threads: N (pool W + fixed
K)". Raises RLIMIT_NOFILE (up to 65535 when run as root). Not part of
make check.
"""
import argparse
import os
import resource
import signal
import socket
import subprocess
import sys
import time


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return int(out["VmRSS"].split()[0]) * 1024, int(out["Threads"])


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return need
        except (ValueError, OSError):
            need = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return need


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("-w", type=int, default=8)
    ap.add_argument("server", nargs="?", default=os.path.join(
        os.environ.get("MOX_BUILDDIR", "."), "tests", "integration",
        "testproto_server"))
    a = ap.parse_args()
    limit = raise_nofile(min(65535, a.n + 1000))
    n = min(a.n, limit - 200)
    p = subprocess.Popen([a.server, "-w", str(a.w), "-i", "0"],
                         stdout=subprocess.PIPE)
    port = int(p.stdout.readline().split()[1])
    time.sleep(0.2)
    # One connection first, so lazily initialised state is in "before".
    warm = socket.create_connection(("127.0.0.1", port))
    warm.recv(100)
    time.sleep(0.2)
    rss0, thr0 = status(p.pid)
    socks = []
    t0 = time.monotonic()
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(s)
        if len(socks) % 500 == 0:
            for x in socks[-500:]:
                x.recv(100)
    for x in socks[len(socks) - len(socks) % 500:]:
        x.recv(100)
    opened = time.monotonic() - t0
    time.sleep(1)
    rss1, thr1 = status(p.pid)
    per = (rss1 - rss0) / n
    print("connections: %d (opened in %.1fs)" % (n, opened))
    print("rss before: %d KiB, after: %d KiB" % (rss0 // 1024, rss1 // 1024))
    print("rss per idle connection: %d bytes" % per)
    print("threads: %d (pool %d + fixed %d)" % (thr1, a.w, thr1 - a.w))
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=60)
    print("shutdown with %d open connections: %.2fs, exit %d" %
          (n, time.monotonic() - t0, rc))
    for s in socks:
        s.close()
    warm.close()
    ok = per < 16384 and thr1 - a.w <= 2 and thr1 == thr0
    print("goal (< 16 KiB per connection, pool + fixed threads): %s" %
          ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
