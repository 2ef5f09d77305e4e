#!/usr/bin/env python3
"""test_runtime.py: the network runtime (src/net, src/tls) over loopback,
driven through tests/integration/testproto_server.

Checks: 1,000 concurrent connections each sending its line byte by byte,
line length limits (exact maximum, one over, very long), replies to a
half-closed peer, idle timeout, per-IP connection limit, input pause,
implicit TLS, trickled output over TLS (a byte per interval, not closed by
a shorter write timeout, ended at once, no longer than the grace at
shutdown), forced close after the shutdown grace, STARTTLS with certificate
verification (TLS 1.3 and 1.2, channel binding against python's
tls-unique), refusal of plaintext pipelined after STARTTLS, backpressure
(as many clients as workers pipeline commands and never read, and a new
client is still served at once), the slow-reader output cap, a flood of
refused connections logged once per second, and a clean shutdown on SIGTERM with connections open: each reads "BYE shutdown" and
the server exits 0 (under ASan a leak makes the exit status non-zero).

Run by test_runtime.sh from make check; MOX_BUILDDIR locates the server.
"""
import os
import resource
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

NCONN = 1000
LINE_MAX = 1000  # testproto: content bytes per line, CRLF excluded
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, flush=True)


def server_path():
    p = os.environ.get("TESTPROTO_SERVER")
    if p:
        return p
    b = os.environ.get("MOX_BUILDDIR", os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", ".."))
    return os.path.join(b, "tests", "integration", "testproto_server")


class Server:
    def __init__(self, *args, stderr=None):
        self.p = subprocess.Popen([server_path()] + list(args),
                                  stdout=subprocess.PIPE, stderr=stderr)
        line = self.p.stdout.readline().decode()
        if not line.startswith("port "):
            raise RuntimeError("server did not start: %r" % line)
        self.port = int(line.split()[1])

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def stop(self, name, bound=15):
        t0 = time.monotonic()
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            fail("%s: server did not exit within %ds" % (name, bound))
            return
        if rc != 0:
            fail("%s: server exit status %d" % (name, rc))
        return time.monotonic() - t0


class Lines:
    """Buffered CRLF line reader over a (possibly TLS) socket."""

    def __init__(self, s):
        self.s = s
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                return None
            self.buf += d
        i = self.buf.index(b"\r\n")
        ln, self.buf = self.buf[:i], self.buf[i + 2:]
        return ln.decode("latin-1")

    def expect(self, want, what):
        got = self.line()
        if got != want:
            fail("%s: got %r, want %r" % (what, got, want))
        return got

    def eof(self, what):
        try:
            d = self.s.recv(100)
        except (ConnectionResetError, socket.timeout) as e:
            fail("%s: want EOF, got %r" % (what, e))
            return
        if d != b"":
            fail("%s: want EOF, got %r" % (what, d))


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_concurrent(srv, n):
    """n connections; each sends "ECHO <i>" one byte per round, interleaved
    with all the others, and must get its own echo. Returns the open
    sockets (used by the shutdown test)."""
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(n):
        s = srv.connect()
        s.setblocking(False)
        c = {"s": s, "i": i, "out": ("ECHO %d\r\n" % i).encode(),
             "in": b"", "lines": []}
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pending = False
        for c in conns:
            if c["out"]:
                try:
                    c["s"].send(c["out"][:1])
                    c["out"] = c["out"][1:]
                except BlockingIOError:
                    pass
                pending = True
        for key, _ in sel.select(timeout=0 if pending else 0.2):
            c = key.data
            try:
                d = c["s"].recv(4096)
            except BlockingIOError:
                continue
            if not d:
                sel.unregister(c["s"])
                continue
            c["in"] += d
            while b"\r\n" in c["in"]:
                ln, c["in"] = c["in"].split(b"\r\n", 1)
                c["lines"].append(ln.decode())
        if not pending and all(len(c["lines"]) >= 2 for c in conns):
            break
    sel.close()
    bad = [c for c in conns
           if c["lines"] != ["OK testproto", "ECHO %d" % c["i"]]]
    if bad:
        fail("concurrent: %d of %d connections wrong, first %r" %
             (len(bad), n, bad[0]["lines"]))
    for c in conns:
        c["s"].setblocking(True)
        c["s"].settimeout(20)
    return [c["s"] for c in conns]


def test_lines(srv):
    s = srv.connect()
    r = Lines(s)
    r.expect("OK testproto", "lines greeting")
    body = "y" * (LINE_MAX - 5)  # "ECHO " + body = exactly the maximum
    s.sendall(("ECHO %s\r\n" % body).encode())
    r.expect("ECHO " + body, "line at maximum")
    s.sendall(("ECHO %sz\r\n" % body).encode())
    r.expect("ERR line too long", "line one over the maximum")
    s.sendall(b"ECHO ok1\r\n")
    r.expect("ECHO ok1", "after one-over line")
    # A very long line arriving in pieces is rejected once, then skipped.
    for _ in range(20):
        s.sendall(b"z" * 5000)
    s.sendall(b"\r\nECHO ok2\n")
    r.expect("ERR line too long", "long line")
    r.expect("ECHO ok2", "bare LF line after long line")
    s.sendall(b"ECHO \x00nul\r\n")
    r.expect("ECHO \x00nul", "NUL byte")
    s.sendall(b"PAUSE 300\r\nECHO during\r\n")
    t0 = time.monotonic()
    r.expect("OK resumed", "pause")
    r.expect("ECHO during", "input after pause")
    if time.monotonic() - t0 < 0.25:
        fail("pause: input handled before the timer")
    s.sendall(b"BIG 50000\r\n")
    for i in range(50000):
        if r.line() is None:
            fail("big output: EOF at line %d" % i)
            break
    r.expect("OK big", "big output end")
    s.sendall(b"QUIT\r\n")
    r.expect("OK bye", "quit")
    r.eof("quit")
    s.close()
    # A peer that half-closes after its command still gets the reply.
    s = srv.connect()
    r = Lines(s)
    r.expect("OK testproto", "half-close greeting")
    s.sendall(b"ECHO half\r\nECHO partial")
    s.shutdown(socket.SHUT_WR)
    r.expect("ECHO half", "half-close reply")
    r.eof("half-close")
    s.close()


def test_implicit_tls(cafile, keyfile):
    srv = Server("-c", cafile, "-k", keyfile, "-t")
    s = srv.connect()
    t = tls_context(cafile).wrap_socket(s, server_hostname="localhost")
    r = Lines(t)
    r.expect("OK testproto", "implicit tls greeting")
    t.sendall(b"TLS?\r\nSTARTTLS\r\nQUIT\r\n")
    r.expect("TLS yes", "implicit tls active")
    r.expect("ERR no starttls", "starttls on implicit tls")
    r.expect("OK bye", "implicit tls quit")
    t.close()
    # Plaintext to an implicit TLS listener fails the handshake.
    s = srv.connect()
    s.sendall(b"ECHO plain\r\n")
    try:
        d = s.recv(100)
        if d.startswith(b"OK"):
            fail("implicit tls: plaintext answered")
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    srv.stop("implicit tls server")


def read_timed(s, n, bound=10):
    """n bytes from s and when each arrived (a TLS recv returns at most
    one record)."""
    got, at = b"", []
    end = time.monotonic() + bound
    s.settimeout(bound)
    while len(got) < n and time.monotonic() < end:
        d = s.recv(n - len(got))
        if not d:
            break
        got += d
        at += [time.monotonic()] * len(d)
    return got, at


def test_trickle(cafile, keyfile):
    """net_conn_set_trickle() over TLS, a record per byte: the write
    timeout (-W 150) is shorter than the interval, yet reading peers are
    never closed for it."""
    srv = Server("-c", cafile, "-k", keyfile, "-t", "-W", "150", "-G", "500")
    s = srv.connect()
    t = tls_context(cafile).wrap_socket(s, server_hostname="localhost")
    Lines(t).expect("OK testproto", "trickle greeting")
    t.sendall(b"TRICKLE 250\r\n")
    got, at = read_timed(t, 4)
    gaps = [at[i] - at[i - 1] for i in range(1, len(at))]
    if got != b"OK t" or min(gaps, default=0) < 0.22:
        fail("trickle: got %r with gaps %r, want 0.25 s apart" % (got, gaps))
    # Ending it sends the rest at once, in order.
    t0 = time.monotonic()
    t.sendall(b"TRICKLE 0\r\n")
    want = b"rickle\r\nOK trickle\r\n"
    got, at = read_timed(t, len(want))
    if got != want or at[-1] - t0 > 0.5:
        fail("trickle ended: got %r after %.2fs" % (got, at[-1] - t0 if at
                                                    else -1))
    # 25 s of trickled output pending: shutdown waits only the grace.
    t.sendall(b"TRICKLE 250\r\nECHO " + b"x" * 100 + b"\r\n")
    read_timed(t, 2)
    el = srv.stop("trickle server", bound=10)
    if el is not None and el > 3:
        fail("shutdown with a trickling connection took %.1fs" % el)
    t.close()


def test_forced_close():
    srv = Server("-G", "500")
    s = srv.connect()
    r = Lines(s)
    r.expect("OK testproto", "stuck greeting")
    s.sendall(b"STUCK\r\n")
    r.expect("OK stuck", "stuck")
    t = srv.stop("forced-close server", bound=10)
    if t is not None and (t < 0.4 or t > 5):
        fail("forced close after %.2fs, want about 0.5s" % t)
    r.eof("forced close")
    s.close()


def tls_context(cafile, maxv=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if maxv is not None:
        ctx.maximum_version = maxv
    return ctx


def test_starttls(srv, cafile):
    """Returns an open TLS connection for the shutdown test."""
    s = srv.connect()
    r = Lines(s)
    r.expect("OK testproto", "starttls greeting")
    s.sendall(b"TLS?\r\n")
    r.expect("TLS no", "before starttls")
    s.sendall(b"STARTTLS\r\n")
    r.expect("OK begin TLS", "starttls reply")
    t = tls_context(cafile).wrap_socket(s, server_hostname="localhost")
    r = Lines(t)
    r.expect("OK tls", "tls event")
    t.sendall(b"TLS?\r\nECHO secret\r\n")
    r.expect("TLS yes", "after starttls")
    r.expect("ECHO secret", "echo over tls")
    if t.version() != "TLSv1.3":
        fail("starttls: version %s" % t.version())
    t.sendall(b"CB\r\n")
    cb = r.line() or ""
    if not cb.startswith("CB tls-exporter ") or len(cb) != 16 + 64:
        fail("tls-exporter binding: %r" % cb)
    t.sendall(b"STARTTLS\r\n")
    r.expect("ERR no starttls", "second starttls")

    # TLS 1.2: compare tls-unique with python's view of the channel.
    s2 = srv.connect()
    r2 = Lines(s2)
    r2.expect("OK testproto", "tls12 greeting")
    s2.sendall(b"STARTTLS\r\n")
    r2.expect("OK begin TLS", "tls12 starttls")
    t2 = tls_context(cafile, ssl.TLSVersion.TLSv1_2).wrap_socket(
        s2, server_hostname="localhost")
    r2 = Lines(t2)
    r2.expect("OK tls", "tls12 event")
    t2.sendall(b"CB\r\n")
    want = "CB tls-unique " + t2.get_channel_binding("tls-unique").hex()
    r2.expect(want, "tls-unique binding")
    t2.sendall(b"QUIT\r\n")
    r2.expect("OK bye", "tls12 quit")
    t2.close()

    # Plaintext pipelined after STARTTLS must not reach the TLS session.
    s3 = srv.connect()
    r3 = Lines(s3)
    r3.expect("OK testproto", "injection greeting")
    s3.sendall(b"STARTTLS\r\nECHO injected\r\n")
    r3.expect("OK begin TLS", "injection starttls")
    r3.expect("ERR starttls refused", "injection refused")
    r3.eof("injection close")
    s3.close()

    # A client that never completes the handshake is closed (junk bytes).
    s4 = srv.connect()
    r4 = Lines(s4)
    r4.expect("OK testproto", "bad handshake greeting")
    s4.sendall(b"STARTTLS\r\n")
    r4.expect("OK begin TLS", "bad handshake starttls")
    s4.sendall(b"this is not a client hello\r\n" * 10)
    try:
        while s4.recv(4096):
            pass
    except (ConnectionResetError, socket.timeout) as e:
        if isinstance(e, socket.timeout):
            fail("bad handshake: connection not closed")
    s4.close()

    # SNI for a name without certificate fails (strict mode).
    s5 = srv.connect()
    r5 = Lines(s5)
    r5.expect("OK testproto", "sni greeting")
    s5.sendall(b"STARTTLS\r\n")
    r5.expect("OK begin TLS", "sni starttls")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.wrap_socket(s5, server_hostname="unknown.example")
        fail("sni: handshake for unknown name succeeded")
    except (ssl.SSLError, ConnectionResetError, OSError):
        pass
    s5.close()
    return t


def test_idle(cafile, keyfile):
    srv = Server("-i", "500", "-w", "2")
    s = srv.connect()
    r = Lines(s)
    r.expect("OK testproto", "idle greeting")
    s.sendall(b"EC")
    time.sleep(0.3)
    s.sendall(b"HO still\r\n")  # input restarts the idle timer
    r.expect("ECHO still", "idle partial line")
    t0 = time.monotonic()
    r.expect("BYE idle", "idle timeout")
    el = time.monotonic() - t0
    if el < 0.4 or el > 3:
        fail("idle timeout after %.2fs, want about 0.5s" % el)
    r.eof("idle close")
    s.close()
    srv.stop("idle server")


def test_max_per_ip():
    srv = Server("-m", "3")
    socks = [srv.connect() for _ in range(3)]
    for s in socks:
        Lines(s).expect("OK testproto", "per-ip greeting")
    extra = srv.connect()
    r = Lines(extra)
    r.expect("BYE too many connections", "per-ip limit")
    r.eof("per-ip limit close")
    extra.close()
    socks[0].sendall(b"QUIT\r\n")
    Lines(socks[0]).expect("OK bye", "per-ip quit")
    socks[0].close()
    time.sleep(0.2)
    again = srv.connect()
    Lines(again).expect("OK testproto", "per-ip slot released")
    for s in socks[1:] + [again]:
        s.close()
    srv.stop("per-ip server")


def flood(s, limit):
    """Send ECHO lines without reading until the socket takes no more
    (or limit bytes went out). Returns the bytes sent."""
    line = b"ECHO " + b"f" * 990 + b"\r\n"
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 10
    while sent < limit and time.monotonic() < deadline:
        try:
            sent += s.send(line * 64)
        except BlockingIOError:
            # Give the server time to read more; stop once it does not.
            sel = selectors.DefaultSelector()
            sel.register(s, selectors.EVENT_WRITE)
            ready = sel.select(timeout=0.5)
            sel.close()
            if not ready:
                break
    return sent


def test_refused_log(d):
    """A flood of connections over the per-IP limit is logged at most once
    per second per listener, with the count of the lines left out."""
    path = os.path.join(d, "refused.log")
    with open(path, "w") as errf:
        srv = Server("-m", "1", stderr=errf)
        keep = srv.connect()
        Lines(keep).expect("OK testproto", "refused-log greeting")
        t0 = time.monotonic()
        for _ in range(30):
            s = srv.connect()
            Lines(s).expect("BYE too many connections", "refused-log limit")
            s.close()
        el = time.monotonic() - t0
        time.sleep(1.1)
        s = srv.connect()
        Lines(s).expect("BYE too many connections", "refused-log after 1s")
        s.close()
        keep.close()
        srv.stop("refused-log server")
    with open(path) as f:
        lines = [ln for ln in f if "connection refused" in ln]
    want = 2 + int(el)  # one per second of flood, plus the one after
    if len(lines) > want:
        fail("refused log: %d lines for 31 refusals, want at most %d" %
             (len(lines), want))
    if not any("suppressed=" in ln and "suppressed=0" not in ln
               for ln in lines):
        fail("refused log: no count of left-out lines: %r" % lines[-1:])


def test_backpressure():
    """Clients that pipeline commands and never read must not hold the
    workers: with every worker's worth of them flooding, a new client gets
    its greeting and replies at once (a worker blocked on a peer's reading
    speed made it wait for the write timeout)."""
    workers = 2
    srv = Server("-w", str(workers))
    floods = []
    for _ in range(workers):
        s = srv.connect()
        Lines(s).expect("OK testproto", "flood greeting")
        floods.append(s)
    for s in floods:
        n = flood(s, 6 * 1024 * 1024)
        if n < 1024 * 1024:
            fail("backpressure: flood sent only %d bytes" % n)
    t0 = time.monotonic()
    s = srv.connect(timeout=5)
    r = Lines(s)
    try:
        r.expect("OK testproto", "greeting during flood")
        s.sendall(b"ECHO alive\r\n")
        r.expect("ECHO alive", "echo during flood")
    except socket.timeout:
        fail("backpressure: no reply during flood")
    el = time.monotonic() - t0
    if el > 2:
        fail("backpressure: greeting and echo took %.1fs, want < 2s" % el)
    s.close()
    # Reading resumes the flooders: all their echoes arrive.
    for f in floods:
        f.setblocking(True)
        f.settimeout(10)
    for f in floods:
        r = Lines(f)
        try:
            got = r.line()
            if got is None or not got.startswith("ECHO f"):
                fail("backpressure: flood client reads %r" % got)
        except socket.timeout:
            fail("backpressure: flood client gets nothing after reading")
        f.close()
    srv.stop("backpressure server")


def test_slow_reader():
    """Output past the out_max cap (-o) closes a client that does not read
    what it asked for, instead of buffering or blocking without end."""
    cap = 1 << 20
    srv = Server("-w", "1", "-o", str(cap))
    s = srv.connect(timeout=10)
    r = Lines(s)
    r.expect("OK testproto", "slow reader greeting")
    s.sendall(b"BIG 1000000\r\n")  # 70 MB of output
    time.sleep(1)
    # The only worker is free again: another client is served.
    s2 = srv.connect(timeout=5)
    try:
        Lines(s2).expect("OK testproto", "greeting beside slow reader")
    except socket.timeout:
        fail("slow reader: worker still held")
    s2.close()
    total, end = 0, None
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20:
        try:
            d = s.recv(1 << 20)
        except ConnectionResetError:
            end = "reset"
            break
        except socket.timeout:
            end = "timeout"
            break
        if not d:
            end = "eof"
            break
        total += len(d)
    if end not in ("eof", "reset"):
        fail("slow reader: not closed (%s after %d bytes)" % (end, total))
    elif total >= 70 * 1000000:
        fail("slow reader: all %d bytes were sent" % total)
    s.close()
    srv.stop("slow reader server")


def test_shutdown(srv, socks, tlssock):
    t = srv.stop("main server", bound=15)
    got = 0
    for s in socks:
        r = Lines(s)
        try:
            if r.line() == "BYE shutdown":
                got += 1
        except (socket.timeout, ConnectionResetError):
            pass
    if got != len(socks):
        fail("shutdown: %d of %d connections read BYE shutdown" %
             (got, len(socks)))
    r = Lines(tlssock)
    r.expect("BYE shutdown", "shutdown over tls")
    if t is not None and t > 5:
        fail("shutdown took %.1fs" % t)
    for s in socks:
        s.close()
    tlssock.close()


def main():
    if not os.path.exists(server_path()):
        print("SKIP: %s not built" % server_path())
        return 77
    n = NCONN
    limit = raise_nofile(4 * NCONN)
    if limit < NCONN + 200:
        n = max(100, limit - 200)
        print("note: RLIMIT_NOFILE %d, using %d connections" % (limit, n))
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        srv = Server("-w", "4", "-i", "60000", "-G", "3000",
                     "-c", cert, "-k", key, "-g")
        t0 = time.monotonic()
        socks = test_concurrent(srv, n)
        print("concurrent: %d connections in %.2fs" %
              (n, time.monotonic() - t0), flush=True)
        test_lines(srv)
        tlssock = test_starttls(srv, cert)
        test_idle(cert, key)
        test_implicit_tls(cert, key)
        test_trickle(cert, key)
        test_forced_close()
        test_max_per_ip()
        test_refused_log(d)
        test_backpressure()
        test_slow_reader()
        test_shutdown(srv, socks, tlssock)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
