#!/usr/bin/env python3
"""bench_imap_idle.py: 10,000 IMAP connections in IDLE on one mailbox
(issue 4).

usage: bench_imap_idle.py [-n connections] [-mode plain|tls|both]
                          [-auth plain|login|scram] [-c inflight]
                          [-mox PATH] [-ip IP] [-timeout S]

For each mode (plain IMAP on port 1143, then IMAPS on 1993, each against a
fresh private mox localserve with LogLevel info on -ip, default
127.0.0.21), opens -n connections (default 10000; at most -c, default 200,
being set up at a time), each authenticating as mox@localhost, selecting
Inbox and entering IDLE. Then prints the server's VmRSS and Threads from
/proc before and after and the RSS per connection, delivers one message
by SMTP (port 1025) and prints the time from the start of the SMTP DATA
command until every connection has received "* N EXISTS" (and the median
and 99th percentile). The client is one python process using epoll
(selectors); its own reading of 10,000 sockets is part of the time.

-auth: AUTHENTICATE PLAIN (default) and LOGIN cost the server one bcrypt
each (cost 10); SCRAM-SHA-256 costs it a few HMACs (the client derives the
salted password once). Goal: under 64 KiB per TLS connection, all notified
within 2 s. Raises RLIMIT_NOFILE (the server inherits it). Exits 0 whether
or not the goal is met.
"""
import argparse
import base64
import hashlib
import hmac
import os
import selectors
import smtplib
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

GOAL_RSS = 64 * 1024
GOAL_SECONDS = 2.0

(CONNECTING, TLS_HS, GREETING, AUTH, SELECT, IDLE_SENT, IDLING,
 NOTIFIED, FAILED) = range(9)

_scram_cache = {}


def scram_keys(password, salt, iters):
    k = (salt, iters)
    if k not in _scram_cache:
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt,
                                     iters)
        ck = hmac.new(salted, b"Client Key", "sha256").digest()
        sk = hmac.new(salted, b"Server Key", "sha256").digest()
        _scram_cache[k] = (ck, hashlib.sha256(ck).digest(), sk)
    return _scram_cache[k]


class Conn:
    __slots__ = ("sock", "state", "buf", "t_notified", "scram", "err")

    def __init__(self, sock):
        self.sock = sock
        self.state = CONNECTING
        self.buf = b""
        self.t_notified = None
        self.scram = None
        self.err = None


class Bench:
    def __init__(self, a, tls):
        self.a = a
        self.tls = tls
        self.port = 1993 if tls else 1143
        self.sel = selectors.EpollSelector()
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE
        self.conns = []
        self.inflight = 0
        self.idling = 0
        self.failed = 0
        self.notified = 0
        self.sent_data = False

    # Connection setup.

    def open_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((self.a.ip, self.port))
        except BlockingIOError:
            pass
        c = Conn(s)
        self.conns.append(c)
        self.inflight += 1
        self.sel.register(s, selectors.EVENT_WRITE, c)

    def fail(self, c, why):
        if c.state in (FAILED, NOTIFIED):
            return
        if c.state == IDLING:
            self.idling -= 1
        elif c.state != NOTIFIED:
            self.inflight -= 1
        c.state = FAILED
        c.err = why
        self.failed += 1
        if self.failed <= 5:
            print("  connection failed: %s" % why)
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def send(self, c, data):
        view = memoryview(data)
        end = time.monotonic() + 10
        while view and time.monotonic() < end:
            try:
                n = c.sock.send(view)
                view = view[n:]
            except (BlockingIOError, ssl.SSLWantWriteError,
                    ssl.SSLWantReadError):
                time.sleep(0.001)
        if view:
            raise OSError("send timed out")

    def on_connected(self, c):
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.fail(c, "connect: %s" % os.strerror(err))
            return
        if self.tls:
            c.sock = self.ctx.wrap_socket(c.sock, do_handshake_on_connect=False)
            c.state = TLS_HS
            self.sel.modify(c.sock, selectors.EVENT_READ, c)
            self.handshake(c)
        else:
            c.state = GREETING
            self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def handshake(self, c):
        try:
            c.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)
            return
        except ssl.SSLWantWriteError:
            self.sel.modify(c.sock, selectors.EVENT_WRITE, c)
            return
        c.state = GREETING
        self.sel.modify(c.sock, selectors.EVENT_READ, c)
        self.readable(c)

    # Reading and the protocol.

    def readable(self, c):
        while True:
            try:
                d = c.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                break
            except ssl.SSLWantWriteError:
                break
            except OSError as e:
                self.fail(c, "recv: %s" % e)
                return
            if not d:
                self.fail(c, "connection closed by server in state %d"
                          " after %r" % (c.state, c.buf[-200:]))
                return
            c.buf += d
            if not self.tls or not c.sock.pending():
                break
        while b"\r\n" in c.buf and c.state not in (FAILED,):
            line, _, c.buf = c.buf.partition(b"\r\n")
            try:
                self.line(c, line)
            except OSError as e:
                self.fail(c, "send: %s" % e)
                return

    def line(self, c, line):
        st = c.state
        if st == GREETING:
            if not line.startswith(b"* OK"):
                self.fail(c, "greeting %r" % line)
                return
            self.start_auth(c)
        elif st == AUTH:
            if line.startswith(b"+"):
                self.scram_step(c, line[1:].strip())
            elif line.startswith(b"a OK"):
                c.state = SELECT
                self.send(c, b"b SELECT Inbox\r\n")
            elif line.startswith(b"a "):
                self.fail(c, "auth: %r" % line)
        elif st == SELECT:
            if line.startswith(b"b OK"):
                c.state = IDLE_SENT
                self.send(c, b"c IDLE\r\n")
            elif line.startswith(b"b "):
                self.fail(c, "select: %r" % line)
        elif st == IDLE_SENT:
            if line.startswith(b"+"):
                c.state = IDLING
                self.inflight -= 1
                self.idling += 1
            elif line.startswith(b"c "):
                self.fail(c, "idle: %r" % line)
        elif st == IDLING:
            if line.startswith(b"* ") and line.endswith(b" EXISTS"):
                if self.sent_data:
                    c.t_notified = time.monotonic()
                    c.state = NOTIFIED
                    self.idling -= 1
                    self.notified += 1

    def start_auth(self, c):
        c.state = AUTH
        u, p = bc.MOX_USER, bc.MOX_PASS
        if self.a.auth == "login":
            self.send(c, b"a LOGIN %s %s\r\n" % (u.encode(), p.encode()))
        elif self.a.auth == "plain":
            ir = base64.b64encode(b"\0%s\0%s" % (u.encode(), p.encode()))
            self.send(c, b"a AUTHENTICATE PLAIN " + ir + b"\r\n")
        else:
            nonce = base64.b64encode(os.urandom(18))
            bare = b"n=" + u.encode() + b",r=" + nonce
            c.scram = [bare, nonce, None]
            self.send(c, b"a AUTHENTICATE SCRAM-SHA-256 " +
                      base64.b64encode(b"n,," + bare) + b"\r\n")

    def scram_step(self, c, data):
        if c.scram is None:
            self.fail(c, "unexpected continuation in auth")
            return
        bare, nonce, _ = c.scram
        msg = base64.b64decode(data) if data else b""
        if c.scram[2] is not None:  # server-final: v=...
            self.send(c, b"\r\n")
            return
        f = dict(kv.split(b"=", 1) for kv in msg.split(b","))
        if not f[b"r"].startswith(nonce):
            self.fail(c, "scram: bad nonce")
            return
        ck, stored, _ = scram_keys(bc.MOX_PASS, base64.b64decode(f[b"s"]),
                                   int(f[b"i"]))
        final_wo = b"c=biws,r=" + f[b"r"]
        auth_msg = bare + b"," + msg + b"," + final_wo
        sig = hmac.new(stored, auth_msg, "sha256").digest()
        proof = bytes(x ^ y for x, y in zip(ck, sig))
        c.scram[2] = True
        self.send(c, base64.b64encode(final_wo + b",p=" +
                                      base64.b64encode(proof)) + b"\r\n")

    def poll(self, timeout):
        for key, ev in self.sel.select(timeout):
            c = key.data
            if c.state == CONNECTING:
                self.on_connected(c)
            elif c.state == TLS_HS:
                self.handshake(c)
            else:
                self.readable(c)

    # The phases.

    def setup(self):
        n = self.a.n
        t0 = time.monotonic()
        end = t0 + self.a.setup_timeout
        last = t0
        while time.monotonic() < end:
            while (len(self.conns) < n and self.inflight < self.a.c):
                try:
                    self.open_one()
                except OSError as e:
                    print("  socket: %s" % e)
                    n = len(self.conns)
                    break
            if self.idling + self.failed >= n and self.inflight == 0:
                break
            self.poll(0.5)
            if time.monotonic() - last >= 10:
                last = time.monotonic()
                print("  %.0f s: %d idling, %d being set up, %d failed" %
                      (last - t0, self.idling, self.inflight, self.failed))
        return time.monotonic() - t0

    def deliver_and_wait(self):
        times = {}
        ready = threading.Event()
        go = threading.Event()

        def smtp():
            try:
                s = smtplib.SMTP(self.a.ip, 1025, timeout=30)
                s.ehlo("bench.example.org")
                s.mail("bench@example.org")
                s.rcpt("mox@localhost")
                msg = (b"From: <bench@example.org>\r\nTo: <mox@localhost>"
                       b"\r\nSubject: idle bench\r\nMessage-ID: <idle-%d@"
                       b"bench.example.org>\r\n\r\nhello\r\n" % os.getpid())
                ready.set()
                go.wait(30)
                times["t0"] = time.monotonic()
                s.data(msg)
                times["t250"] = time.monotonic()
                s.quit()
            except (OSError, smtplib.SMTPException) as e:
                times["err"] = str(e)
                ready.set()

        th = threading.Thread(target=smtp)
        th.start()
        ready.wait(30)
        self.sent_data = True
        go.set()
        end = time.monotonic() + self.a.timeout
        while self.idling > 0 and time.monotonic() < end:
            self.poll(0.2)
            if "err" in times:
                break
        th.join(30)
        return times

    def close_all(self):
        for c in self.conns:
            if c.state != FAILED:
                try:
                    self.sel.unregister(c.sock)
                except (KeyError, ValueError):
                    pass
                c.sock.close()
        self.sel.close()


def warm(a, tls):
    """One full connection (login, select, logout) so lazily opened state
    (account, database, TLS keys) is in the "before" figures."""
    s = socket.create_connection((a.ip, 1993 if tls else 1143), timeout=30)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s)
    f = s.makefile("rwb")
    f.readline()
    for cmd in (b"a LOGIN mox@localhost moxmoxmox", b"b SELECT Inbox",
                b"c LOGOUT"):
        f.write(cmd + b"\r\n")
        f.flush()
        while True:
            ln = f.readline()
            if not ln or ln[:1] in b"abc":
                break
    s.close()


def seed(a, k):
    s = smtplib.SMTP(a.ip, 1025, timeout=30)
    for i in range(k):
        s.sendmail("bench@example.org", ["mox@localhost"],
                   b"From: <bench@example.org>\r\nSubject: seed %d\r\n"
                   b"\r\nseed message\r\n" % i)
    s.quit()


def run_mode(a, tls):
    name = "TLS (IMAPS 1993)" if tls else "plain (IMAP 1143)"
    print("mode %s: %d connections, auth %s" % (name, a.n, a.auth))
    m = bc.Mox(a.mox, a.ip)
    res = {}
    try:
        pid = m.start()
        seed(a, 10)
        warm(a, tls)
        time.sleep(0.5)
        rss0, thr0 = bc.proc_status(pid)
        b = Bench(a, tls)
        el = b.setup()
        time.sleep(1)
        rss1, thr1 = bc.proc_status(pid)
        n = b.idling
        print("  %d connections idling after %.1f s (%.0f/s), %d failed" %
              (n, el, n / el if el else 0, b.failed))
        per = (rss1 - rss0) / n if n else 0
        print("  server RSS before %.1f MiB, after %.1f MiB: %.1f KiB per "
              "connection; threads before %d, after %d" %
              (rss0 / 1048576.0, rss1 / 1048576.0, per / 1024.0, thr0,
               thr1))
        times = b.deliver_and_wait()
        if "err" in times:
            print("  delivery failed: %s" % times["err"])
        else:
            lat = sorted(c.t_notified - times["t0"] for c in b.conns
                         if c.t_notified is not None)
            got = len(lat)
            print("  delivery: SMTP DATA to 250 in %.0f ms" %
                  ((times["t250"] - times["t0"]) * 1000))
            if lat:
                print("  EXISTS received by %d of %d: all within %.3f s "
                      "(median %.3f s, p99 %.3f s) of the start of DATA" %
                      (got, n, lat[-1], lat[len(lat) // 2],
                       lat[min(len(lat) - 1, int(len(lat) * 0.99))]))
            if got < n:
                print("  %d connections did not receive EXISTS within "
                      "%d s" % (n - got, a.timeout))
            res["all"] = lat[-1] if lat and got == n else None
        rss2, thr2 = bc.proc_status(pid)
        print("  server after delivery: RSS %.1f MiB, threads %d" %
              (rss2 / 1048576.0, thr2))
        res["per"] = per
        res["n"] = n
        b.close_all()
    finally:
        m.stop()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("-mode", choices=("plain", "tls", "both"),
                    default="both")
    ap.add_argument("-auth", choices=("plain", "login", "scram"),
                    default="plain")
    ap.add_argument("-c", type=int, default=200,
                    help="connections being set up at a time")
    ap.add_argument("-mox", default=bc.default_mox())
    ap.add_argument("-ip", default="127.0.0.21")
    ap.add_argument("-timeout", type=int, default=30,
                    help="seconds to wait for all EXISTS")
    ap.add_argument("-setup-timeout", type=int, default=1800,
                    help="seconds to wait for all connections to idle")
    a = ap.parse_args()
    limit = bc.raise_nofile(max(65536, 2 * a.n + 1000))
    if a.n + 100 > limit:
        a.n = limit - 100
        print("RLIMIT_NOFILE %d: running with %d connections" %
              (limit, a.n))
    modes = {"plain": [False], "tls": [True], "both": [False, True]}[a.mode]
    results = {}
    for tls in modes:
        results[tls] = run_mode(a, tls)
    ok = True
    for tls, r in results.items():
        n_ok = r.get("n") == a.n
        t = r.get("all")
        t_ok = t is not None and t < GOAL_SECONDS
        line = "%s: all %d notified within %s s (goal < %.0f s)" % (
            "tls" if tls else "plain", r.get("n", 0),
            "%.3f" % t if t is not None else "-", GOAL_SECONDS)
        ok = ok and n_ok and t_ok
        if tls:
            line += "; %.1f KiB per connection (goal < %d KiB)" % (
                r.get("per", 0) / 1024.0, GOAL_RSS // 1024)
            ok = ok and r.get("per", GOAL_RSS) < GOAL_RSS
        print(line)
    if True not in results:
        print("(the memory goal is for TLS connections: run -mode tls)")
    print("goal: %s" % ("met" if ok else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
