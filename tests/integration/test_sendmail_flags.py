#!/usr/bin/env python3
"""`mox sendmail` flags (spec/config.md 7, "sendmail [-Fname] [ignored
flags] [-t]"): the envelope sender is always the From of moxsubmit.conf;
-f and -r (attached or with a separate value) are ignored, their value is
not taken for a recipient, -t takes recipients from To/Cc/Bcc. A small
SMTP peer on 127.0.0.48 (random port) records the transaction."""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
IP = "127.0.0.48"
SESSIONS_MAX = 20

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)


class Peer:
    """Accepts SMTP sessions one at a time and records MAIL/RCPT/DATA."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((IP, 0))
        self.sock.listen(4)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.sessions = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        for _ in range(SESSIONS_MAX):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                try:
                    self.session(conn)
                except OSError:
                    pass

    def session(self, conn):
        rec = {"mail": None, "rcpt": [], "data": b""}
        f = conn.makefile("rb")
        conn.sendall(b"220 peer.example ESMTP\r\n")
        for _ in range(1000):
            line = f.readline(4096)
            if not line:
                break
            cmd = line.rstrip(b"\r\n")
            up = cmd.upper()
            if up.startswith(b"EHLO") or up.startswith(b"HELO"):
                conn.sendall(b"250-peer.example\r\n250 8BITMIME\r\n")
            elif up.startswith(b"MAIL FROM:"):
                rec["mail"] = cmd[10:].decode()
                conn.sendall(b"250 2.1.0 ok\r\n")
            elif up.startswith(b"RCPT TO:"):
                rec["rcpt"].append(cmd[8:].decode())
                conn.sendall(b"250 2.1.5 ok\r\n")
            elif up == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                for _ in range(100000):
                    d = f.readline(65536)
                    if not d or d == b".\r\n":
                        break
                    rec["data"] += d
                conn.sendall(b"250 2.0.0 queued\r\n")
            elif up == b"QUIT":
                conn.sendall(b"221 2.0.0 bye\r\n")
                break
            else:
                conn.sendall(b"500 5.5.1 unknown\r\n")
        with self.lock:
            self.sessions.append(rec)

    def count(self):
        with self.lock:
            return len(self.sessions)

    def after(self, n, deadline=10.0):
        """The session recorded after the first n, once the peer has
        finished it (the client may exit before that), or None."""
        end = time.time() + deadline
        while time.time() < end:
            with self.lock:
                if len(self.sessions) > n:
                    return self.sessions[n]
            time.sleep(0.02)
        return None


def main():
    if not os.path.exists(MOX):
        print("SKIP: no mox binary at", MOX)
        return 77
    tmp = tempfile.mkdtemp(prefix="test_sendmail_flags.")
    peer = Peer()
    conf = os.path.join(tmp, "moxsubmit.conf")
    with open(conf, "w") as f:
        f.write("LocalHostname: host.example\nHost: %s\nPort: %d\n"
                "From: cron@example.com\n"
                "DefaultDestination: admin@example.com\n" % (IP, peer.port))
    env = dict(os.environ, MOXSUBMITCONF=conf, HOME=tmp)
    msg = b"To: <bob@example.org>\nSubject: flags\n\nhello\n"
    cases = [
        ("-f value", ["-f", "other@example.net", "rcpt@example.org"],
         ["<rcpt@example.org>"]),
        ("-f attached", ["-i", "-fother@example.net", "rcpt@example.org"],
         ["<rcpt@example.org>"]),
        ("-r value and -t", ["-r", "other@example.net", "-t"],
         ["<bob@example.org>"]),
        ("-f and a local name", ["-f", "root@host.example", "root"],
         ["<admin@example.com>"]),
    ]
    for name, args, want_rcpt in cases:
        n = peer.count()
        r = subprocess.run([MOX, "sendmail"] + args, input=msg, env=env,
                           capture_output=True, timeout=60)
        check(r.returncode == 0, "%s: exit 0 (%s)" % (name, r.stderr[-300:]))
        rec = peer.after(n) if r.returncode == 0 else None
        check(rec is not None and rec["mail"] == "<cron@example.com>",
              "%s: MAIL FROM is the configured From (%s)" %
              (name, rec and rec["mail"]))
        check(rec is not None and rec["rcpt"] == want_rcpt,
              "%s: recipients %s (%s)" % (name, want_rcpt,
                                          rec and rec["rcpt"]))
    r = subprocess.run([MOX, "help", "sendmail"], capture_output=True,
                       text=True, timeout=60)
    out = r.stdout + r.stderr
    check("-f" in out and "ignored" in out and "MAIL FROM" in out,
          "help sendmail says -f is ignored: " + out[-400:])
    peer.sock.close()
    subprocess.run(["rm", "-rf", tmp])
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
