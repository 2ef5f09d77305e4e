#!/usr/bin/env python3
"""Port 25 sender checks and the first-time-sender delay end to end
(spec/smtp.md 6, 7 step 4, 12.2 step 8, 12.3 step 5; spec/junk.md 7, 10).
`mox serve` on 127.0.0.41 (clients bind to it too) resolves through a
dnslab world: MAIL FROM domains with a null MX or without any address are
refused with 550 5.7.27, one whose lookups SERVFAIL with 451 4.4.0; a 2nd
recipient needs SPF pass for the MAIL FROM domain (452 4.5.3 otherwise)
and that SPF result is the one used after DATA. With FirstTimeSenderDelay
2s a first-time sender's 250 comes after the delay, a client that leaves
during it leaves nothing stored; a sender the account wrote to (a copy
APPENDed to Sent) is accepted at once (msgtofull), and once the account
marked a sender's message $NotJunk the next one is accepted at once, for
its reputation (X-Mox-Reason msgfromfull)."""

import imaplib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("MOX_SRCDIR",
                     os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
READBACK = os.path.join(BUILD, "tests", "integration", "smtp_readback")
DNSLAB = os.environ.get("DNSLAB", os.path.join(SRC, "..", "shared", "tools",
                                               "dnslab", "dnslab"))
IP = "127.0.0.41"
SMTP, IMAP = 1025, 1143
DELAY = 2.0

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)


ZONES = {
    # SPF passes for our client address; an MX with an address, and a
    # name with only an A record (implicit MX).
    "good.example": """; dnslab: unsigned
@ MX 10 mx
mx A 127.0.0.41
nomx A 127.0.0.41
@ TXT "v=spf1 ip4:127.0.0.41 -all"
""",
    # Can receive mail, but SPF does not pass for us.
    "nospf.example": """; dnslab: unsigned
@ MX 10 mx
mx A 127.0.0.41
@ TXT "v=spf1 -all"
""",
    "nullmx.example": """; dnslab: unsigned
@ MX 0 .
@ A 127.0.0.41
""",
    # An MX host that does not exist, so no address anywhere.
    "noaddr.example": """; dnslab: unsigned
@ MX 10 gone
""",
    # Every answer SERVFAILs.
    "bogus.example": """; dnslab: bogus
@ MX 10 mx
mx A 127.0.0.41
""",
}


class Raw:
    """A raw SMTP connection from IP, for transcript checks."""

    def __init__(self):
        self.s = socket.create_connection((IP, SMTP), timeout=30,
                                          source_address=(IP, 0))
        self.buf = b""
        self.reply()

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                r, self.buf = self.buf, b""
                return r
            self.buf += d
        i = self.buf.index(b"\n") + 1
        r, self.buf = self.buf[:i], self.buf[i:]
        return r

    def reply(self):
        out = []
        while True:
            l = self.line()
            if not l:
                break
            out.append(l)
            if len(l) < 4 or l[3:4] != b"-":
                break
        return b"".join(out)

    def cmd(self, c):
        self.s.sendall(c + b"\r\n")
        return self.reply()

    def close(self):
        self.s.close()


class ImapClient(imaplib.IMAP4):
    """imaplib from our loopback address."""

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(IP, 0))


def message(sender, subject):
    return ("From: <%s>\r\nTo: <mox@localhost>\r\nSubject: %s\r\n"
            "Message-Id: <%s.%d@good.example>\r\nDate: %s\r\n\r\n"
            "Hello from %s.\r\n" % (sender, subject, subject.replace(" ", "-"),
                                    int(time.time() * 1000),
                                    time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                                                  time.gmtime()), sender))


def readback(d, mailbox="Inbox"):
    r = subprocess.run([READBACK, d, "mox", mailbox], capture_output=True,
                       text=True)
    out = []
    for l in r.stdout.splitlines():
        uid, path = l.split(" ", 1)
        with open(path, "rb") as f:
            out.append((int(uid), f.read()))
    return out


def find(d, subject, mailbox="Inbox"):
    return [m for m in readback(d, mailbox)
            if ("Subject: " + subject + "\r\n").encode() in m[1]]


def reason(raw):
    m = re.search(rb"^X-Mox-Reason: (\S+)", raw, re.M)
    return m.group(1).decode() if m else None


def transaction(sender, rcpts, subject):
    """One message; returns (reply to the final dot, seconds it took)."""
    r = Raw()
    try:
        r.cmd(b"EHLO mx.good.example")
        rep = r.cmd(b"MAIL FROM:<%s>" % sender.encode())
        if not rep.startswith(b"250"):
            return rep, 0
        for rc in rcpts:
            rep = r.cmd(b"RCPT TO:<%s>" % rc.encode())
            if not rep.startswith(b"250"):
                return rep, 0
        rep = r.cmd(b"DATA")
        if not rep.startswith(b"354"):
            return rep, 0
        t0 = time.monotonic()
        rep = r.cmd(message(sender, subject).encode() + b".")
        return rep, time.monotonic() - t0
    finally:
        r.close()


def wait_port(port, deadline=30.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((IP, port), timeout=1,
                                          source_address=(IP, 0)) as s:
                s.settimeout(2)
                s.recv(100)
                return True
        except OSError:
            time.sleep(0.1)
    return False


def mailfrom_checks():
    r = Raw()
    r.cmd(b"EHLO mx.good.example")
    for sender, want, what in (
            (b"a@nullmx.example", b"550 5.7.27 mailfrom domain not configured"
             b" for mail", "null MX: 550 5.7.27"),
            (b"a@noaddr.example", b"550 5.7.27 ", "no address: 550 5.7.27"),
            (b"a@nonexistent.example", b"550 5.7.27 ",
             "no such domain: 550 5.7.27"),
            (b"a@bogus.example", b"451 4.4.0 cannot verify mx records for "
             b"mailfrom domain", "SERVFAIL: 451 4.4.0"),
            (b"a@[127.0.0.41]", b"550 5.7.0 domain name required",
             "IP literal: 550 5.7.0"),
            (b"a@nomx.good.example", b"250 ", "implicit MX: accepted"),
    ):
        rep = r.cmd(b"MAIL FROM:<" + sender + b">")
        check(rep.startswith(want), "%s (%r)" % (what, rep))
        if rep.startswith(b"250"):
            r.cmd(b"RSET")
    r.close()


def second_rcpt_checks(d, logpath):
    r = Raw()
    r.cmd(b"EHLO mx.good.example")
    check(r.cmd(b"MAIL FROM:<a@nospf.example>").startswith(b"250"),
          "sender without spf pass: MAIL accepted")
    check(r.cmd(b"RCPT TO:<mox@localhost>").startswith(b"250"),
          "first recipient accepted without spf pass")
    rep = r.cmd(b"RCPT TO:<mox+two@localhost>")
    check(rep.startswith(b"452 4.5.3 only one recipient allowed without spf "
                         b"pass"), "2nd recipient without spf pass: 452 4.5.3"
          " (%r)" % rep)
    r.close()
    # With SPF pass: two copies, after the first-time delay; SPF was
    # evaluated at the 2nd RCPT and reused after DATA.
    rep, took = transaction("bob@good.example",
                            ["mox@localhost", "mox+two@localhost"],
                            "two recipients")
    check(rep.startswith(b"250 2.2.0"), "2nd recipient with spf pass: "
          "accepted and delivered (%r)" % rep)
    check(took >= DELAY - 0.05, "one first-time delay for the transaction "
          "(%.2fs)" % took)
    got = find(d, "two recipients")
    check(len(got) == 2, "both copies stored (%d)" % len(got))
    for _, raw in got:
        check(b"spf=pass" in raw and b"smtp.mailfrom=good.example" in raw,
              "stored copy has spf=pass for good.example")
    with open(logpath, errors="replace") as f:
        log = f.read()
    check("spf result of the transaction reused" in log,
          "spf evaluated once per transaction (reused after DATA)")


def delay_checks(d, logpath):
    rep, took = transaction("alice@good.example", ["mox@localhost"],
                            "first contact")
    check(rep.startswith(b"250 2.2.0"), "first-time sender accepted (%r)" %
          rep)
    check(took >= DELAY - 0.05, "first-time sender answered after the delay "
          "(%.2fs)" % took)
    first = find(d, "first contact")
    check(len(first) == 1 and reason(first[0][1]) == "no-bad-signals",
          "first contact stored, reason no-bad-signals (%s)" %
          (reason(first[0][1]) if first else None))

    # A client that leaves during the delay: nothing is stored.
    r = Raw()
    r.cmd(b"EHLO mx.good.example")
    r.cmd(b"MAIL FROM:<carol@good.example>")
    r.cmd(b"RCPT TO:<mox@localhost>")
    r.cmd(b"DATA")
    r.s.sendall(message("carol@good.example", "left early").encode() +
                b".\r\n")
    time.sleep(0.3)
    r.close()
    time.sleep(DELAY + 1.5)
    check(find(d, "left early") == [], "peer gone during the delay: "
          "nothing stored")
    with open(logpath, errors="replace") as f:
        log = f.read()
    check("peer left during first-time sender delay" in log,
          "server noticed the peer leaving during the delay")

    # The account marks alice's message as not junk: her next message
    # is accepted for her reputation, without delay.
    if first:
        im = ImapClient(IP, IMAP)
        im.login("mox@localhost", "moxmoxmox")
        im.select("Inbox")
        typ, _ = im.uid("STORE", str(first[0][0]), "+FLAGS", "($NotJunk)")
        check(typ == "OK", "first contact marked $NotJunk")
        im.logout()
    # Someone we wrote to (a copy APPENDed to Sent): accepted at once.
    im = ImapClient(IP, IMAP)
    im.login("mox@localhost", "moxmoxmox")
    sent = ("From: <mox@localhost>\r\nTo: Dave <dave@Good.Example>\r\n"
            "Subject: hello dave\r\nDate: %s\r\n\r\nhi\r\n" %
            time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()))
    typ, _ = im.append("Sent", "(\\Seen)", None, sent.encode())
    check(typ == "OK", "message to dave appended to Sent")
    im.logout()
    rep, took = transaction("dave@good.example", ["mox@localhost"],
                            "reply from dave")
    check(rep.startswith(b"250 2.2.0") and took < DELAY - 0.5,
          "sender we wrote to accepted without the delay (%r, %.2fs)" %
          (rep, took))
    dave = find(d, "reply from dave")
    check(len(dave) == 1 and reason(dave[0][1]) == "msgtofull",
          "sender we wrote to: reason msgtofull (%s)" %
          (reason(dave[0][1]) if dave else None))

    rep, took = transaction("alice@good.example", ["mox@localhost"],
                            "known sender")
    check(rep.startswith(b"250 2.2.0"), "known sender accepted (%r)" % rep)
    check(took < DELAY - 0.5, "known sender answered without the delay "
          "(%.2fs)" % took)
    known = find(d, "known sender")
    check(len(known) == 1 and reason(known[0][1]) == "msgfromfull",
          "known sender accepted for reputation: reason msgfromfull (%s)" %
          (reason(known[0][1]) if known else None))


def main():
    if os.geteuid() != 0:
        print("SKIP: mox serve binds as root and dnslab installs packages")
        return 77
    tmp = tempfile.mkdtemp(prefix="mox-smtprep-")
    os.chmod(tmp, 0o755)
    lab = os.path.join(tmp, "dns")
    d = os.path.join(tmp, "conf")
    logpath = os.path.join(tmp, "server.log")
    server = None
    log = None
    try:
        zdir = os.path.join(tmp, "zones")
        os.makedirs(zdir)
        for name, text in ZONES.items():
            with open(os.path.join(zdir, name + ".zone"), "w") as f:
                f.write("$ORIGIN %s.\n%s" % (name, text))
        r = subprocess.run([DNSLAB, "start", lab, zdir], capture_output=True,
                           text=True, timeout=300)
        if r.returncode != 0:
            print("SKIP: dnslab start failed:", r.stderr)
            return 77
        resolver = r.stdout.strip()

        r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP,
                            "-initonly"], capture_output=True, text=True)
        check(r.returncode == 0, "config written: " + r.stderr)
        conf = os.path.join(d, "mox.conf")
        with open(conf) as f:
            c = f.read()
        c = re.sub(r"User: \d+", "User: 65534", c)
        c = c.replace("LogLevel: traceauth", "LogLevel: debug")
        c = c.replace("Hostname: localhost\n", "Hostname: localhost\n"
                      "DNSResolvers:\n\t- %s\n" % resolver, 1)
        c = c.replace("\t\tSMTP:\n\t\t\tEnabled: true\n\t\t\tPort: 1025\n",
                      "\t\tSMTP:\n\t\t\tEnabled: true\n\t\t\tPort: 1025\n"
                      "\t\t\tFirstTimeSenderDelay: 2s\n", 1)
        with open(conf, "w") as f:
            f.write(c)
        dpath = os.path.join(d, "domains.conf")
        with open(dpath) as f:
            dc = f.read()
        with open(dpath, "w") as f:
            f.write(dc.replace("\t\tNoFirstTimeSenderDelay: true\n", ""))
        r = subprocess.run([MOX, "-config", conf, "config", "test"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "config test: " + r.stdout + r.stderr)
        subprocess.run(["chown", "-R", "65534:65534", d], check=True)
        log = open(logpath, "w")
        server = subprocess.Popen([MOX, "-config", conf, "serve"],
                                  stdout=log, stderr=subprocess.STDOUT)
        ok = wait_port(SMTP) and wait_port(IMAP)
        check(ok, "mox serve listens on %s" % IP)
        if not ok:
            return 1
        mailfrom_checks()
        second_rcpt_checks(d, logpath)
        delay_checks(d, logpath)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if log is not None:
            log.close()
        subprocess.run([DNSLAB, "stop", lab], capture_output=True, timeout=60)
        if failures and os.path.exists(logpath):
            with open(logpath, errors="replace") as f:
                tail = f.read()[-6000:]
            print("--- server log (tail) ---\n" + tail)
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
