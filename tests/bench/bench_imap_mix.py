#!/usr/bin/env python3
"""bench_imap_mix.py: IMAP command-mix throughput of mox against Dovecot
(issue 4).

usage: bench_imap_mix.py [-seconds 60] [-clients 10] [-messages 500]
                         [-mox PATH] [-ip IP] [-no-dovecot]

Starts a private mox (localserve, LogLevel info) on -ip (default
127.0.0.21, IMAP 1143) and fills its Inbox by APPEND with -messages
generated messages (fixed random seed: 1-16 KiB, assorted senders and
subjects). Then -clients client processes (default 10), each logged in
once with LOGIN, repeat for -seconds (default 60) this round of 8
commands:
  SELECT Inbox; UID FETCH 10 random seeded messages (FLAGS
  BODY.PEEK[HEADER]); UID FETCH one random message (BODY.PEEK[]);
  UID STORE +FLAGS or -FLAGS (\\Seen \\Flagged) on a random message;
  UID SEARCH (alternately UNSEEN, SUBJECT word, FROM name);
  APPEND a 4 KiB message; UID STORE +FLAGS.SILENT (\\Deleted) on it;
  UID EXPUNGE it.
and prints commands/s (all clients). When Dovecot is installed
(dovecot-imapd) and the anchor port is free, runs the same against a
private Dovecot (tools/anchors/dovecot.sh, 127.0.0.1:10143, Maildir)
filled with the same messages, and prints the ratio. Goal: at least
1.5x Dovecot. Exits 0 whether or not the goal is met.
"""
import argparse
import multiprocessing as mp
import os
import random
import re
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

GOAL = 1.5
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet "
         "kilo lima mike november oscar papa quebec romeo sierra tango "
         "uniform victor whiskey xray yankee zulu").split()
NAMES = ("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory "
         "Niaj Olivia Peggy Rupert Sybil Trent Victor Walter").split()


def make_message(rng, i, size=None):
    name = rng.choice(NAMES)
    subj = " ".join(rng.choice(WORDS) for _ in range(4))
    hdr = ("From: %s <%s@example.org>\r\nTo: <bench@example.net>\r\n"
           "Subject: %s %d\r\nDate: Mon, 2 Jan 2023 10:%02d:%02d +0000\r\n"
           "Message-ID: <mix-%d-%d@example.org>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=us-ascii\r\n\r\n" %
           (name, name.lower(), subj, i, i // 60 % 60, i % 60, i,
            rng.randrange(1 << 30)))
    size = size or rng.randrange(1024, 16384)
    body = []
    n = len(hdr)
    while n < size:
        ln = " ".join(rng.choice(WORDS) for _ in range(10)) + "\r\n"
        body.append(ln)
        n += len(ln)
    return (hdr + "".join(body)).encode()


class Client:
    """A blocking IMAP client that reads literals."""

    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=60)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb", buffering=65536)
        self.n = 0
        self.bad = 0
        self.kind = None
        self.times = {}  # command kind -> [count, seconds]
        self.last_bad = None
        greet = self.f.readline()
        if not greet.startswith(b"* OK"):
            raise OSError("greeting %r" % greet)

    def cmd(self, text, literal=None):
        """Send a command (text may hold one LITERAL+ literal: literal is
        sent after text); returns (status line, untagged lines)."""
        self.n += 1
        tag = b"t%d" % self.n
        t0 = time.monotonic()
        if literal is None:
            self.s.sendall(tag + b" " + text + b"\r\n")
        else:
            self.s.sendall(tag + b" " + text + b" {%d+}\r\n" % len(literal)
                           + literal + b"\r\n")
        untagged = []
        while True:
            ln = self.f.readline(1 << 20)
            if not ln:
                raise OSError("connection closed after %r" % text[:40])
            while ln.endswith(b"}\r\n"):
                m = re.search(rb"\{(\d+)\}\r\n$", ln)
                if not m:
                    break
                lit = self.f.read(int(m.group(1)))
                ln = ln + lit + self.f.readline(1 << 20)
            if ln.startswith(tag + b" "):
                st = ln[len(tag) + 1:]
                if self.kind is not None:
                    k = self.times.setdefault(self.kind, [0, 0.0])
                    k[0] += 1
                    k[1] += time.monotonic() - t0
                if not st.startswith(b"OK"):
                    self.bad += 1
                    self.last_bad = b"%s -> %s" % (text[:60], st.strip())
                return st, untagged
            untagged.append(ln)

    def close(self):
        try:
            self.cmd(b"LOGOUT")
        except OSError:
            pass
        self.s.close()


def login(host, port, user, pw):
    c = Client(host, port)
    st, _ = c.cmd(b"LOGIN " + user.encode() + b" " + pw.encode())
    if not st.startswith(b"OK"):
        raise OSError("login failed: %r" % st)
    return c


def fill(host, port, user, pw, count):
    c = login(host, port, user, pw)
    rng = random.Random(4242)
    for i in range(count):
        st, _ = c.cmd(b"APPEND Inbox", make_message(rng, i))
        if not st.startswith(b"OK"):
            raise OSError("append: %r" % st)
    c.close()


def client_main(k, host, port, user, pw, seconds, start_ev, q):
    rng = random.Random(1000 + k)
    try:
        c = login(host, port, user, pw)
        c.cmd(b"SELECT Inbox")
        _, un = c.cmd(b"UID SEARCH ALL")
        uids = []
        for ln in un:
            if ln.startswith(b"* SEARCH"):
                uids += [int(x) for x in ln.split()[2:]]
        if not uids:
            raise OSError("empty mailbox")
        msg = make_message(rng, 100000 + k, 4096)
        start_ev.wait(120)
        end = time.monotonic() + seconds
        n0 = c.n
        rounds = 0
        c.times = {}
        searches = (b"UID SEARCH UNSEEN", b"UID SEARCH SUBJECT %s",
                    b"UID SEARCH FROM %s")
        while time.monotonic() < end:
            c.kind = "select"
            c.cmd(b"SELECT Inbox")
            c.kind = "fetch-headers"
            pick = ",".join(str(rng.choice(uids)) for _ in range(10))
            c.cmd(b"UID FETCH " + pick.encode() +
                  b" (FLAGS BODY.PEEK[HEADER])")
            c.kind = "fetch-body"
            c.cmd(b"UID FETCH %d (BODY.PEEK[])" % rng.choice(uids))
            c.kind = "store"
            c.cmd(b"UID STORE %d %sFLAGS (\\Seen \\Flagged)" %
                  (rng.choice(uids), rng.choice((b"+", b"-"))))
            srch = searches[rounds % 3]
            if b"%s" in srch:
                word = (rng.choice(WORDS) if rounds % 3 == 1
                        else rng.choice(NAMES))
                srch = srch % word.encode()
            c.kind = "search"
            c.cmd(srch)
            c.kind = "append"
            st, _ = c.cmd(b"APPEND Inbox", msg)
            m = re.search(rb"APPENDUID \d+ (\d+)", st)
            if m:
                c.kind = "store"
                c.cmd(b"UID STORE %s +FLAGS.SILENT (\\Deleted)" %
                      m.group(1))
                c.kind = "expunge"
                c.cmd(b"UID EXPUNGE %s" % m.group(1))
            c.kind = None
            rounds += 1
        q.put((k, c.n - n0, c.bad, c.last_bad, None, c.times))
        c.close()
    except Exception as e:  # noqa: BLE001 - reported to the parent
        q.put((k, 0, 0, None, "%s: %s" % (type(e).__name__, e), {}))


def run_mix(name, host, port, user, pw, a):
    q = mp.Queue()
    ev = mp.Event()
    ps = [mp.Process(target=client_main,
                     args=(k, host, port, user, pw, a.seconds, ev, q))
          for k in range(a.clients)]
    for p in ps:
        p.start()
    time.sleep(2)  # logins and first SELECT done before the clock starts
    t0 = time.monotonic()
    ev.set()
    res = []
    for _ in ps:
        try:
            res.append(q.get(timeout=a.seconds + 120))
        except Exception:  # noqa: BLE001 - queue.Empty
            break
    el = time.monotonic() - t0
    for p in ps:
        p.join(10)
        if p.is_alive():
            p.kill()
    total = sum(r[1] for r in res)
    bad = sum(r[2] for r in res)
    errs = [r[4] for r in res if r[4]]
    for e in errs[:3]:
        print("  %s client error: %s" % (name, e))
    lb = [r[3] for r in res if r[3]]
    rate = total / el
    agg = {}
    for r in res:
        for kind, (cnt, secs) in r[5].items():
            a_ = agg.setdefault(kind, [0, 0.0])
            a_[0] += cnt
            a_[1] += secs
    print("  %s mean latency per command: %s" % (name, ", ".join(
        "%s %.1f ms" % (kind, 1000.0 * secs / cnt)
        for kind, (cnt, secs) in sorted(agg.items()) if cnt)))
    print("%s: %d commands in %.1f s by %d clients: %.0f commands/s "
          "(%d NO/BAD%s)" % (name, total, el, len(res) - len(errs), rate,
                             bad, (", e.g. %r" % lb[0]) if lb else ""))
    return rate


def bench_mox(a):
    m = bc.Mox(a.mox, a.ip)
    try:
        pid = m.start()
        t = time.monotonic()
        fill(a.ip, 1143, bc.MOX_USER, bc.MOX_PASS, a.messages)
        print("mox: filled Inbox with %d messages in %.1f s" %
              (a.messages, time.monotonic() - t))
        cpu0 = bc.proc_cpu(pid)
        rate = run_mix("mox", a.ip, 1143, bc.MOX_USER, bc.MOX_PASS, a)
        rss, thr = bc.proc_status(pid)
        print("mox: server RSS %.1f MiB, threads %d, CPU %.1f s; machine "
              "load average %.1f" % (rss / 1048576.0, thr,
                                     bc.proc_cpu(pid) - cpu0,
                                     os.getloadavg()[0]))
        return rate
    finally:
        m.stop()


def bench_dovecot(a):
    if shutil.which("dovecot") is None and not os.path.exists(
            "/usr/sbin/dovecot"):
        print("dovecot: not installed (apt-get install dovecot-imapd), "
              "no ratio")
        return None
    if bc.port_in_use("127.0.0.1", 10143):
        print("dovecot: anchor port 10143 already in use (another "
              "bench?), no ratio")
        return None
    env = dict(os.environ)
    env.setdefault("ANCHOR_DIR", "/tmp/mox-bench-anchors-imap")
    user = env.get("ANCHOR_USER", "testuser")
    pw = env.get("ANCHOR_PASS", "anchorpass")
    bc.anchor("dovecot.sh", "reset", env)
    try:
        rc, out = bc.anchor("dovecot.sh", "start", env)
        if rc != 0:
            print("dovecot: anchor failed to start:\n" + out)
            return None
        t = time.monotonic()
        fill("127.0.0.1", 10143, user, pw, a.messages)
        print("dovecot: filled Inbox with %d messages in %.1f s" %
              (a.messages, time.monotonic() - t))
        return run_mix("dovecot", "127.0.0.1", 10143, user, pw, a)
    finally:
        bc.anchor("dovecot.sh", "stop", env)
        bc.anchor("dovecot.sh", "reset", env)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-seconds", type=int, default=60)
    ap.add_argument("-clients", type=int, default=10)
    ap.add_argument("-messages", type=int, default=500)
    ap.add_argument("-mox", default=bc.default_mox())
    ap.add_argument("-ip", default="127.0.0.21")
    ap.add_argument("-no-dovecot", action="store_true")
    a = ap.parse_args()
    bc.raise_nofile(4096)
    print("bench_imap_mix: %d clients, %d s, %d messages in Inbox; round ="
          " SELECT, UID FETCH headers x10, UID FETCH body, UID STORE, UID "
          "SEARCH, APPEND, UID STORE \\Deleted, UID EXPUNGE" %
          (a.clients, a.seconds, a.messages))
    mox_rate = bench_mox(a)
    dc = None if a.no_dovecot else bench_dovecot(a)
    if dc:
        ratio = mox_rate / dc
        print("ratio mox/dovecot: %.2f (goal: at least %.1f)" % (ratio,
                                                                 GOAL))
        print("goal: %s" % ("met" if ratio >= GOAL else "NOT met"))
    else:
        print("goal: not evaluated (no Dovecot run); goal is at least "
              "%.1fx Dovecot" % GOAL)
    return 0


if __name__ == "__main__":
    mp.set_start_method("fork")
    sys.exit(main())
