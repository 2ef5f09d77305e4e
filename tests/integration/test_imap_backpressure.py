#!/usr/bin/env python3
"""IMAP output paced by the client's reading, against `mox localserve` on
127.0.0.45 with WorkerPoolSize 2 (spec/imap.md 14: long outputs stream
with back-pressure; an idle or slow reader holds no worker).

More clients than workers FETCH large message sets and read nothing for
over 30 seconds; meanwhile another client is served promptly, another
session expunges a message the readers still have to reach (no EXPUNGE
may appear inside an MSN FETCH, RFC 9051 7.4.1), and a client that is
not logged in floods CAPABILITY without reading and is closed by the
30 s write timeout (spec/imap.md 2) while the logged-in readers, whose
write timeout is 5 minutes, stay connected. Then the readers read and
must get complete, correct output.
"""

import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
IP = "127.0.0.45"
PORT = 1143
USER, PASS = b"mox@localhost", b"moxmoxmox"
NOAUTH_WRITE_TIMEOUT = 30  # spec/imap.md 2

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)


def wait_port(port, deadline=20.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((IP, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def big_message(i, size):
    head = (b"From: a@example.org\r\nSubject: big %d\r\n"
            b"Message-ID: <big%d@example.org>\r\n\r\n" % (i, i))
    line = b"message %02d line %%08d of a large body.....\r\n" % i
    body, n = [], 0
    while len(head) + n < size:
        ln = line % len(body)
        body.append(ln)
        n += len(ln)
    return head + b"".join(body)


def small_message(i):
    return (b"From: b@example.org\r\nSubject: small %d\r\n\r\n"
            b"small body %d\r\n" % (i, i))


class Conn:
    """A raw IMAP connection; rcvbuf shrinks the kernel's receive buffer
    so that a client that stops reading soon stops the server's
    writes."""

    def __init__(self, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(20)
        s.connect((IP, PORT))
        self.s = s
        self.buf = b""
        self.reported = False

    def fill(self, timeout=20):
        self.s.settimeout(timeout)
        d = self.s.recv(1 << 20)
        if not d:
            raise EOFError("closed")
        self.buf += d

    def line(self, timeout=20):
        while b"\r\n" not in self.buf:
            self.fill(timeout)
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def take(self, n, timeout=20):
        while len(self.buf) < n:
            self.fill(timeout)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def send(self, data):
        self.s.sendall(data)

    def response(self, tag, timeout=20):
        """Untagged responses (a list of (text, [literals])) and the
        tagged line, reading literals announced at line ends."""
        out = []
        while True:
            ln = self.line(timeout)
            if ln.startswith(tag + b" "):
                return out, ln
            text, lits = ln, []
            while True:
                m = re.search(rb"\{(\d+)\}$", text)
                if not m:
                    break
                lit = self.take(int(m.group(1)), timeout)
                lits.append(lit)
                rest = self.line(timeout)
                text = text + b"<lit>" + rest
            out.append((text, lits))

    def cmd(self, tag, text, timeout=20):
        self.send(tag + b" " + text + b"\r\n")
        return self.response(tag, timeout)

    def login(self):
        self.line()
        u, t = self.cmd(b"l", b"LOGIN " + USER + b" " + PASS)
        if not t.startswith(b"l OK"):
            raise RuntimeError("login: %r" % t)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def append(c, mailbox, msgs):
    for m in msgs:
        c.send(b"a APPEND " + mailbox + b" {%d+}\r\n" % len(m) + m + b"\r\n")
        u, t = c.response(b"a")
        if not t.startswith(b"a OK"):
            raise RuntimeError("append: %r" % t)


def flood_noauth():
    """A client that is not logged in pipelines CAPABILITY and reads
    nothing. Returns the connection and the number of commands sent."""
    c = Conn(rcvbuf=4096)
    c.line()
    c.s.setblocking(False)
    data = b"c CAPABILITY\r\n" * 40000
    sent, end = 0, time.time() + 10
    while sent < len(data) and time.time() < end:
        try:
            sent += c.s.send(data[sent:sent + 65536])
        except BlockingIOError:
            select.select([], [c.s], [], 0.2)
    return c, sent // len(b"c CAPABILITY\r\n")


def dropped(c, limit):
    """Read what the flooder was sent; True when the server closed the
    connection before all limit replies."""
    c.s.setblocking(True)
    c.s.settimeout(5)
    got = b""
    try:
        while True:
            d = c.s.recv(1 << 20)
            if not d:
                break
            got += d
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        print("flooder still connected after %d octets" % len(got))
        return False
    replies = got.count(b"c OK capability")
    print("flooder got %d of %d replies before close" % (replies, limit))
    return replies < limit


def main():
    tmp = tempfile.mkdtemp(prefix="mox-imap-bp-")
    d = os.path.join(tmp, "ls")
    r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP, "-initonly"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        sys.exit(1)
    conf = os.path.join(d, "mox.conf")
    with open(conf) as f:
        text = f.read()
    text = text.replace("LogLevel: traceauth", "LogLevel: info")
    text = re.sub(r"(?m)^Hostname:", "WorkerPoolSize: 2\nHostname:", text)
    with open(conf, "w") as f:
        f.write(text)
    log = open(os.path.join(tmp, "server.log"), "w")
    p = subprocess.Popen([MOX, "localserve", "-dir", d],
                         stdout=log, stderr=subprocess.STDOUT)
    conns = []
    try:
        check(wait_port(PORT) and p.poll() is None, "server listening")
        if p.poll() is None:
            run(conns)
    except Exception as e:
        failures.append("exception: %r" % e)
        print("FAIL: exception", repr(e), flush=True)
    finally:
        for c in conns:
            c.close()
        subprocess.run([MOX, "-config", conf, "stop"], capture_output=True,
                       timeout=30)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
    if failures:
        print("server log:", os.path.join(tmp, "server.log"))
        print("%d failures" % len(failures))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("all ok")


def run(conns):
    bigs = [big_message(i, 4 * 1024 * 1024) for i in range(1, 5)]
    smalls = [small_message(i) for i in range(5, 305)]
    msgs = bigs + smalls  # UIDs 1.. in this order
    setup = Conn()
    conns.append(setup)
    setup.login()
    setup.cmd(b"c", b"CREATE Big")
    append(setup, b"Big", msgs)
    u, t = setup.cmd(b"s", b"SELECT Big")
    check(any(x[0] == b"* %d EXISTS" % len(msgs) for x in u),
          "%d messages in Big" % len(msgs))

    # 1. The flooder that is not logged in.
    t0 = time.time()
    flooder, nflood = flood_noauth()
    conns.append(flooder)
    check(nflood > 1000, "flooder pipelined %d CAPABILITY commands" % nflood)

    # 2. Blocked readers: more than the 2 workers.
    readers = []
    cmds = [b"UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])",
            b"FETCH 1:* (UID BODY.PEEK[])",
            b"FETCH 1:* (UID FLAGS ENVELOPE BODY.PEEK[TEXT])",
            b"UID FETCH 1:* (UID BODY.PEEK[]<0.100000> RFC822.SIZE)",
            b"FETCH 1:* (UID BODY.PEEK[])"]
    for cmd in cmds:
        c = Conn(rcvbuf=16384)
        conns.append(c)
        c.login()
        c.cmd(b"e", b"EXAMINE Big")
        c.send(b"f " + cmd + b"\r\n")
        readers.append((c, cmd))
    time.sleep(1.5)

    # 3. Another client is served while they read nothing.
    other = Conn()
    conns.append(other)
    t1 = time.time()
    other.login()
    slowest = time.time() - t1
    for i in range(20):
        t1 = time.time()
        for tag, cmd in ((b"n", b"NOOP"), (b"l", b'LIST "" *'),
                         (b"s", b"EXAMINE Big"),
                         (b"f", b"FETCH 300:* (UID FLAGS ENVELOPE)"),
                         (b"u", b"UNSELECT")):
            u, t = other.cmd(tag, cmd, timeout=30)
            if not t.startswith(tag + b" OK"):
                check(False, "other client %r: %r" % (cmd, t))
        slowest = max(slowest, time.time() - t1)
    check(slowest < 5, "other client served while readers stall: slowest "
          "round %.2fs" % slowest)

    # 4. Another session expunges the last message, which the MSN FETCH
    # readers have not reached.
    setup.cmd(b"d", b"STORE %d +FLAGS.SILENT (\\Deleted)" % len(msgs))
    u, t = setup.cmd(b"x", b"EXPUNGE")
    check(t.startswith(b"x OK"), "expunge during the readers' FETCH")

    # 5. The flooder is closed after its write timeout; the logged-in
    # readers are not (their write timeout is 5 minutes).
    wait = t0 + NOAUTH_WRITE_TIMEOUT + 6 - time.time()
    if wait > 0:
        time.sleep(wait)
    check(dropped(flooder, nflood), "idle reader that is not logged in "
          "closed by the write timeout")

    # 6. The readers read everything now.
    for c, cmd in readers:
        ok = check_reader(c, cmd, msgs)
        check(ok, "complete output after stalling %ds: %s" %
              (time.time() - t0, cmd.decode()))
        # Held back during the FETCH, reported now (RFC 9051 7.4.1).
        u, t = c.cmd(b"n", b"NOOP")
        want = [] if c.reported else [
            b"* %d FETCH (UID %d FLAGS (\\Deleted))" % (len(msgs), len(msgs)),
            b"* %d EXPUNGE" % len(msgs)]
        check([x[0] for x in u] == want and t.startswith(b"n OK"),
              "EXPUNGE after the FETCH: %r" % u)
    check_many(other, len(msgs) - 1)


def check_many(c, n):
    """Index items of many messages (read in one query), STORE and
    CHANGEDSINCE over the whole mailbox of n messages."""
    c.cmd(b"s", b"SELECT Big")
    u, t = c.cmd(b"f", b"FETCH 1:* (UID FLAGS RFC822.SIZE MODSEQ)")
    ok = t.startswith(b"f OK") and len(u) == n and all(
        re.match(rb"\* %d FETCH \(UID %d FLAGS \(\) RFC822.SIZE \d+ "
                 rb"MODSEQ \(\d+\)\)$" % (i + 1, i + 1), x[0])
        for i, x in enumerate(u))
    check(ok, "FETCH of index items of %d messages: %r" % (n, u[:2]))
    u, t = c.cmd(b"f", b"STORE 1:* +FLAGS (\\Flagged)")
    check(t.startswith(b"f OK") and len(u) == n and all(
        x[0].startswith(b"* %d FETCH (UID %d FLAGS (\\Flagged) MODSEQ ("
                        % (i + 1, i + 1)) for i, x in enumerate(u)),
        "STORE on %d messages: %r" % (n, u[:2]))
    m1 = int(re.search(rb"MODSEQ \((\d+)\)", u[0][0]).group(1))
    c.cmd(b"f", b"STORE 2,5 -FLAGS.SILENT (\\Flagged)")
    u, t = c.cmd(b"f", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % m1)
    check([x[0] for x in u] == [b"* 2 FETCH (UID 2 FLAGS () MODSEQ (%d))" %
                                (m1 + 1),
                                b"* 5 FETCH (UID 5 FLAGS () MODSEQ (%d))" %
                                (m1 + 1)],
          "CHANGEDSINCE over many messages: %r" % u[:3])
    u, t = c.cmd(b"f", b"SEARCH FLAGGED")
    got = b" ".join(x[0][len(b"* SEARCH "):] for x in u)
    check(got == b" ".join(b"%d" % i for i in range(1, n + 1)
                           if i not in (2, 5)) and
          all(len(x[0].split()) <= 102 for x in u),
          "SEARCH over many messages, 100 numbers a line")


def check_reader(c, cmd, msgs):
    u, t = c.response(b"f", timeout=60)
    uid_form = cmd.startswith(b"UID ")
    last = len(msgs)
    # The other session's changes: the UID form reports them at its end,
    # the MSN form not at all (RFC 9051 7.4.1).
    changes = [b"* %d FETCH (UID %d FLAGS (\\Deleted))" % (last, last),
               b"* %d EXPUNGE" % last]
    if uid_form and [x[0] for x in u[-2:]] == changes:
        u = u[:-2]
        c.reported = True
    if any(b"EXPUNGE" in x[0] or b"VANISHED" in x[0] or x[0] == changes[0]
           for x in u):
        print("untagged change inside FETCH")
        return False
    # The last message is gone when the command reaches it (RFC 2180
    # 4.1.2).
    if not t.startswith((b"f NO [EXPUNGEISSUED]", b"f OK")):
        print("tagged: %r" % t)
        return False
    fetched = [x for x in u if b" FETCH (" in x[0]]
    if len(fetched) not in (last - 1, last) or len(fetched) != len(u):
        print("%d responses, want %d" % (len(fetched), last - 1))
        return False
    for i, (text, lits) in enumerate(fetched):
        msn = i + 1
        m = re.match(rb"\* (\d+) FETCH \(UID (\d+)", text)
        if not m or int(m.group(1)) != msn or int(m.group(2)) != msn:
            print("response %d: %r" % (i, text[:200]))
            return False
        msg = msgs[msn - 1]
        if b"BODY.PEEK[]<0.100000>" in cmd:
            want = [msg[:100000]]
        elif b"BODY.PEEK[TEXT]" in cmd:
            want = [msg.split(b"\r\n\r\n", 1)[1]]
            if b'"big %d"' % msn not in text and \
               b'"small %d"' % msn not in text:
                print("envelope of %d: %r" % (msn, text[:200]))
                return False
        else:
            want = [msg]
        if lits != want:
            print("literal of message %d differs (%r)" % (msn, text[:200]))
            return False
        if b"RFC822.SIZE" in cmd and \
           b"RFC822.SIZE %d" % len(msg) not in text:
            print("size of %d: %r" % (msn, text[:200]))
            return False
    return True


if __name__ == "__main__":
    main()
