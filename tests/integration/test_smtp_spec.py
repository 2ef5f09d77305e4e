#!/usr/bin/env python3
"""SMTP server rules of spec/smtp.md that probing found broken, end to
end on 127.0.0.50.

`mox localserve` (no root needed):
- STARTTLS (spec 4): bytes pipelined after STARTTLS go into the TLS
  handshake and are never answered as SMTP; a plain STARTTLS works; a
  client that sends STARTTLS and its ClientHello in one write completes
  the handshake.
- 421 replies close the connection (RFC 5321 3.8): the localserve
  failure localparts ending in 421 at MAIL FROM, RCPT TO, and DATA for
  incoming mail and for submission.

`mox serve` with a dnslab world (needs root: serve binds as root and
runs as User; skipped otherwise):
- port 25 HELO (spec 3): a domain that does not exist gets 550 5.5.0,
  a lookup error (bogus zone, SERVFAIL) is ignored, EHLO and submission
  are not checked.
- RCPT (spec 7 step 1, 9 step 2): with RequireSTARTTLS a plaintext RCPT
  gets 530 5.7.0, except for the domain's and the host's TLS reporting
  addresses, which are delivered to their configured account/mailbox.
"""

import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
SRC = os.environ.get("MOX_SRCDIR",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "..", ".."))
DNSLAB = os.environ.get("DNSLAB", os.path.join(SRC, "..", "shared", "tools",
                                               "dnslab", "dnslab"))
MOX = os.path.join(BUILD, "mox")
READBACK = os.path.join(BUILD, "tests", "integration", "smtp_readback")
IP = "127.0.0.50"
SMTP, SUBMISSION = 1025, 1587
UID = 65534  # serve's User, owns the data directory
HOSTNAME = "mail.spec.example"  # not a hosted domain
DOM = "spec.example"

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)


def unverified():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wait_port(port, deadline=20.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((IP, port), timeout=1) as s:
                s.settimeout(2)
                s.recv(100)
                s.sendall(b"QUIT\r\n")
                return True
        except OSError:
            time.sleep(0.1)
    return False


class Raw:
    """A raw SMTP connection for transcript-style checks."""

    def __init__(self, port=SMTP):
        self.s = socket.create_connection((IP, port), timeout=10,
                                          source_address=(IP, 0))
        self.buf = b""

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
        lines = []
        for _ in range(100):
            l = self.line()
            if not l:
                break
            lines.append(l)
            if len(l) < 4 or l[3:4] != b"-":
                break
        return b"".join(lines)

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, c):
        self.send(c + b"\r\n")
        return self.reply()

    def rest(self, timeout=10.0):
        """Everything until the peer closes (or the timeout): (bytes,
        closed)."""
        out, self.buf = self.buf, b""
        end = time.time() + timeout
        while time.time() < end:
            self.s.settimeout(max(0.1, end - time.time()))
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return out, False
            except OSError:
                return out, True
            if not d:
                return out, True
            out += d
        return out, False

    def closed(self):
        return self.rest(5.0)[1]

    def close(self):
        self.s.close()


# ---- STARTTLS ----

def test_starttls_pipelined_plaintext():
    r = Raw()
    r.reply()
    r.cmd(b"EHLO client.example")
    r.send(b"STARTTLS\r\nNOOP\r\n")
    go = r.reply()
    check(go.startswith(b"220 2.0.0 go!"),
          "STARTTLS with pipelined NOOP: 220 go: %r" % go)
    rest, closed = r.rest()
    check(b"250" not in rest and b"503" not in rest,
          "pipelined NOOP never answered as SMTP: %r" % rest[:200])
    check(closed, "handshake fed with plaintext fails and closes")
    r.close()


def test_starttls_plain():
    s = smtplib.SMTP(IP, SMTP, timeout=30)
    try:
        s.ehlo("client.example")
        code, _ = s.starttls(context=unverified())
        check(code == 220, "plain STARTTLS: 220")
        s.ehlo("client.example")
        check(s.has_extn("requiretls") and not s.has_extn("starttls"),
              "EHLO after STARTTLS lists REQUIRETLS, not STARTTLS")
        check(s.noop()[0] == 250, "NOOP over TLS: 250")
    finally:
        s.close()


def test_starttls_with_clienthello():
    """STARTTLS and the first TLS record in one write."""
    r = Raw()
    r.reply()
    r.cmd(b"EHLO client.example")
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = unverified().wrap_bio(inb, outb, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outb.read()
    check(len(hello) > 0 and hello[0] == 0x16, "ClientHello produced")
    r.send(b"STARTTLS\r\n" + hello)
    go = r.line()
    check(go.startswith(b"220 2.0.0 go!"),
          "STARTTLS + ClientHello in one write: 220 go: %r" % go)
    pending, r.buf = r.buf, b""
    done = False
    for _ in range(50):
        if pending:
            inb.write(pending)
            pending = b""
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as e:
            check(False, "handshake: %s" % e)
            break
        out = outb.read()
        if out:
            r.send(out)
        if done:
            break
        d = r.s.recv(65536)
        if not d:
            break
        pending = d
    check(done, "handshake with the pipelined ClientHello completed")
    if not done:
        r.close()
        return

    def tls_cmd(c):
        tls.write(c + b"\r\n")
        r.send(outb.read())
        got = b""
        for _ in range(50):
            try:
                got += tls.read(65536)
            except ssl.SSLWantReadError:
                d = r.s.recv(65536)
                if not d:
                    break
                inb.write(d)
                continue
            if re.search(rb"(^|\n)\d{3} [^\n]*\n$", got):
                break
        return got

    rep = tls_cmd(b"EHLO client.example")
    check(rep.startswith(b"250-") and b"REQUIRETLS" in rep,
          "EHLO over that TLS session: %r" % rep[:60])
    check(tls_cmd(b"NOOP").startswith(b"250 2.0.0"), "NOOP over TLS")
    r.close()


# ---- 421 closes ----

def test_421_closes():
    r = Raw()
    r.reply()
    r.cmd(b"EHLO client.example")
    rep = r.cmd(b"MAIL FROM:<mailfrom421@example.org>")
    check(rep.startswith(b"421 4.0.0"), "mailfrom421: 421 at MAIL: %r" % rep)
    check(r.closed(), "closed after 421 at MAIL")
    r.close()

    r = Raw()
    r.reply()
    r.cmd(b"EHLO client.example")
    r.cmd(b"MAIL FROM:<a@example.org>")
    rep = r.cmd(b"RCPT TO:<rcptto450@localhost>")
    check(rep.startswith(b"450 4.0.0"), "rcptto450: 450 at RCPT: %r" % rep)
    check(r.cmd(b"NOOP").startswith(b"250"), "a 450 keeps the connection")
    rep = r.cmd(b"RCPT TO:<rcptto421@localhost>")
    check(rep.startswith(b"421 4.0.0"), "rcptto421: 421 at RCPT: %r" % rep)
    check(r.closed(), "closed after 421 at RCPT")
    r.close()

    r = Raw()
    r.reply()
    r.cmd(b"EHLO client.example")
    r.cmd(b"MAIL FROM:<a@example.org>")
    check(r.cmd(b"RCPT TO:<x421@localhost>").startswith(b"250"),
          "x421 accepted at RCPT")
    r.cmd(b"DATA")
    rep = r.cmd(b"Subject: x\r\n\r\nx\r\n.")
    check(rep.startswith(b"421 4.0.0"), "x421: 421 after DATA: %r" % rep)
    check(r.closed(), "closed after 421 after DATA")
    r.close()

    s = smtplib.SMTP(IP, SUBMISSION, timeout=30)
    try:
        s.ehlo("client.example")
        s.login("mox@localhost", "moxmoxmox")
        s.mail("mox@localhost")
        s.rcpt("x421@localhost")
        s.putcmd("data")
        code, _ = s.getreply()
        check(code == 354, "submission DATA: 354")
        s.send(b"From: <mox@localhost>\r\nTo: <x421@localhost>\r\n"
               b"Subject: x\r\n\r\nx\r\n.\r\n")
        code, msg = s.getreply()
        check(code == 421, "submission x421: 421 after DATA: %s" % code)
        try:
            s.sock.settimeout(5)
            closed = s.sock.recv(100) == b""
        except OSError:
            closed = True
        check(closed, "submission closed after 421")
    finally:
        s.close()


def test_helo_localserve():
    r = Raw()
    r.reply()
    rep = r.cmd(b"HELO nonexistent.invalid")
    check(rep.startswith(b"250 "),
          "localserve: no HELO lookup for a loopback peer: %r" % rep)
    r.close()


def localserve_phase(tmp):
    d = os.path.join(tmp, "ls")
    log = open(os.path.join(tmp, "localserve.log"), "w")
    p = subprocess.Popen([MOX, "localserve", "-dir", d, "-ip", IP],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_port(SMTP):
            check(False, "localserve listens on %s:%d" % (IP, SMTP))
            return
        test_starttls_pipelined_plaintext()
        test_starttls_plain()
        test_starttls_with_clienthello()
        test_421_closes()
        test_helo_localserve()
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


# ---- mox serve: HELO lookup, RequireSTARTTLS and TLS reports ----

ZONES = {
    "127.in-addr.arpa": """$ORIGIN 127.in-addr.arpa.
; dnslab: unsigned
50.0.0 PTR mail.remote.example.
""",
    "remote.example": """$ORIGIN remote.example.
; dnslab: unsigned
@ MX 10 mail
mail A 127.0.0.50
@ TXT "v=spf1 ip4:127.0.0.50 -all"
""",
    "broken.example": """$ORIGIN broken.example.
; dnslab: bogus
@ A 127.0.0.50
""",
}

DOMAINS_CONF = """Domains:
	spec.example:
		LocalpartCatchallSeparator: +
		DMARC:
			Localpart: dmarc-reports
			Account: mox
			Mailbox: DMARC
		TLSRPT:
			Localpart: tls-reports
			Account: mox
			Mailbox: DomainTLSRPT
Accounts:
	mox:
		Domain: spec.example
		Destinations:
			mox@spec.example: nil
		NoFirstTimeSenderDelay: true
"""


def serve_config(tmp, resolver):
    d = os.path.join(tmp, "srv")
    r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP,
                        "-initonly"], capture_output=True, text=True)
    check(r.returncode == 0, "localserve -initonly: " + r.stderr)
    if r.returncode != 0:
        return None
    conf = os.path.join(d, "mox.conf")
    with open(conf) as f:
        text = f.read()
    text = text.replace("Hostname: localhost\n",
                        "Hostname: %s\nDNSResolvers:\n\t- %s\n" %
                        (HOSTNAME, resolver), 1)
    text = text.replace("Pedantic: true\n", "")
    text = text.replace("LogLevel: traceauth", "LogLevel: debug")
    text = re.sub(r"User: \d+", "User: %d" % UID, text)
    text = text.replace("\t\tSMTP:\n\t\t\tEnabled: true\n\t\t\tPort: 1025\n",
                        "\t\tSMTP:\n\t\t\tEnabled: true\n\t\t\tPort: 1025\n"
                        "\t\t\tRequireSTARTTLS: true\n"
                        "\t\t\tFirstTimeSenderDelay: 0s\n", 1)
    text = text.replace("Postmaster:\n\tAccount: mox\n\tMailbox: Inbox\n",
                        "Postmaster:\n\tAccount: mox\n\tMailbox: Inbox\n"
                        "HostTLSRPT:\n\tAccount: mox\n\tMailbox: TLSRPT\n"
                        "\tLocalpart: host-tls-reports\n", 1)
    check("RequireSTARTTLS" in text and "HostTLSRPT" in text,
          "serve config edited")
    with open(conf, "w") as f:
        f.write(text)
    with open(os.path.join(d, "domains.conf"), "w") as f:
        f.write(DOMAINS_CONF)
    r = subprocess.run([MOX, "-config", conf, "config", "test"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "config test: " + r.stdout + r.stderr)
    return d


def readback(d, mailbox):
    r = subprocess.run([READBACK, d, "mox", mailbox], capture_output=True,
                       text=True, timeout=60)
    out = []
    for l in r.stdout.splitlines():
        _, path = l.split(" ", 1)
        with open(path, "rb") as f:
            out.append(f.read())
    return out


def wait_mailbox(d, mailbox, subject, timeout=10.0):
    end = time.time() + timeout
    while True:
        got = [m for m in readback(d, mailbox)
               if b"Subject: " + subject in m]
        if got or time.time() >= end:
            return got
        time.sleep(0.2)


def test_helo():
    r = Raw()
    r.reply()
    rep = r.cmd(b"HELO nxdomain.remote.example")
    check(rep.startswith(b"550 5.5.0 your ehlo domain does not resolve to "
                         b"an IP address"),
          "HELO with a domain that does not exist: 550 5.5.0: %r" % rep)
    check(r.cmd(b"MAIL FROM:<a@remote.example>").startswith(b"503 5.5.1"),
          "refused HELO counts as no hello")
    rep = r.cmd(b"HELO mail.remote.example")
    check(rep.startswith(b"250 "), "HELO with an existing domain: %r" % rep)
    rep = r.cmd(b"HELO broken.example")
    check(rep.startswith(b"250 "),
          "HELO whose lookup fails (SERVFAIL) is accepted: %r" % rep)
    rep = r.cmd(b"EHLO nxdomain.remote.example")
    check(rep.startswith(b"250-"), "EHLO is not looked up: %r" % rep[:40])
    r.close()
    r = Raw(SUBMISSION)
    r.reply()
    rep = r.cmd(b"HELO nxdomain.remote.example")
    check(rep.startswith(b"250 "), "submission HELO is not looked up: %r" %
          rep)
    r.close()


def send_plain(rcpt, subject):
    """One plaintext transaction; returns (rcpt reply, data reply)."""
    r = Raw()
    r.reply()
    r.cmd(b"EHLO mail.remote.example")
    rep = r.cmd(b"MAIL FROM:<sender@remote.example>")
    check(rep.startswith(b"250"), "MAIL FROM: %r" % rep)
    rrep = r.cmd(b"RCPT TO:<%s>" % rcpt.encode())
    drep = b""
    if rrep.startswith(b"250"):
        r.cmd(b"DATA")
        drep = r.cmd(b"From: <sender@remote.example>\r\nTo: <%s>\r\n"
                     b"Subject: %s\r\nMessage-ID: <%s@remote.example>\r\n"
                     b"\r\ntls report\r\n." % (rcpt.encode(), subject,
                                               subject))
    r.cmd(b"QUIT")
    r.close()
    return rrep, drep


def test_require_starttls(d):
    rrep, _ = send_plain("mox@%s" % DOM, b"plain-ordinary")
    check(rrep.startswith(b"530 5.7.0 STARTTLS required for mail delivery"),
          "RequireSTARTTLS: plaintext RCPT to an account: 530: %r" % rrep)
    rrep, _ = send_plain("dmarc-reports@%s" % DOM, b"plain-dmarc")
    check(rrep.startswith(b"530 5.7.0"),
          "DMARC report address is no exception: 530: %r" % rrep)
    rrep, drep = send_plain("tls-reports@%s" % DOM, b"domain-tlsrpt")
    check(rrep.startswith(b"250 2.1.0"),
          "domain TLSRPT address accepted without TLS: %r" % rrep)
    check(drep.startswith(b"250 2.2.0"), "delivered: %r" % drep)
    check(len(wait_mailbox(d, "DomainTLSRPT", b"domain-tlsrpt")) == 1,
          "domain TLS report in mox/DomainTLSRPT")
    rrep, drep = send_plain("Host-TLS-Reports@%s" % HOSTNAME.upper(),
                            b"host-tlsrpt")
    check(rrep.startswith(b"250 2.1.0"),
          "host TLSRPT address accepted without TLS: %r" % rrep)
    check(drep.startswith(b"250 2.2.0"), "delivered: %r" % drep)
    check(len(wait_mailbox(d, "TLSRPT", b"host-tlsrpt")) == 1,
          "host TLS report in mox/TLSRPT")
    rrep, _ = send_plain("nobody@%s" % HOSTNAME, b"plain-host-other")
    check(rrep.startswith(b"530 5.7.0"),
          "other address at the hostname: 530: %r" % rrep)
    # With TLS the DMARC report address resolves to its own mailbox and
    # ordinary mail is accepted.
    s = smtplib.SMTP(IP, SMTP, local_hostname="mail.remote.example",
                     source_address=(IP, 0), timeout=60)
    try:
        s.ehlo()
        s.starttls(context=unverified())
        s.ehlo()
        for rcpt, subj in (("dmarc-reports@%s" % DOM, "tls-dmarc"),
                           ("mox@%s" % DOM, "tls-ordinary")):
            s.mail("sender@remote.example")
            code, resp = s.rcpt(rcpt)
            check(code == 250, "over TLS: RCPT %s: %s %s" % (rcpt, code,
                                                           resp))
            code, resp = s.data(
                ("From: <sender@remote.example>\r\nTo: <%s>\r\n"
                 "Subject: %s\r\nMessage-ID: <%s@remote.example>\r\n\r\n"
                 "x\r\n" % (rcpt, subj, subj)).encode())
            check(code == 250, "over TLS: DATA for %s: %s %s" % (rcpt, code,
                                                                resp))
    finally:
        s.quit()
    check(len(wait_mailbox(d, "DMARC", b"tls-dmarc")) == 1,
          "DMARC report in mox/DMARC")
    check(len(wait_mailbox(d, "Inbox", b"tls-ordinary")) == 1,
          "ordinary message in mox/Inbox")


def serve_phase(tmp):
    if os.geteuid() != 0:
        print("skip: mox serve checks need root (binds as root, runs as "
              "User)")
        return
    lab = os.path.join(tmp, "dns")
    zdir = os.path.join(tmp, "zones")
    os.makedirs(zdir)
    for name, text in ZONES.items():
        with open(os.path.join(zdir, name + ".zone"), "w") as f:
            f.write(text)
    server = log = None
    try:
        r = subprocess.run([DNSLAB, "start", lab, zdir], capture_output=True,
                           text=True, timeout=300)
        if r.returncode != 0:
            print("skip: dnslab start failed:", r.stderr[-300:])
            return
        # Warm the lab's resolver: under load its first answers can take
        # longer than the server's lookup timeout, and a timeout is an
        # ignored lookup error for HELO.
        for name, typ in (("nxdomain.remote.example", "A"),
                          ("nxdomain.remote.example", "AAAA"),
                          ("broken.example", "A"), ("remote.example", "MX"),
                          ("remote.example", "TXT"),
                          ("mail.remote.example", "A"),
                          ("mail.remote.example", "AAAA")):
            subprocess.run([DNSLAB, "query", lab, name, typ],
                           capture_output=True, timeout=60)
        d = serve_config(tmp, r.stdout.strip())
        if d is None:
            return
        subprocess.run(["chown", "-R", "%d:%d" % (UID, UID), d], check=True)
        log = open(os.path.join(tmp, "serve.log"), "w")
        server = subprocess.Popen([MOX, "-config",
                                   os.path.join(d, "mox.conf"), "serve"],
                                  stdout=log, stderr=subprocess.STDOUT)
        ok = wait_port(SMTP) and wait_port(SUBMISSION)
        check(ok, "mox serve listens on %s" % IP)
        if not ok:
            return
        test_helo()
        test_require_starttls(d)
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
        subprocess.run([DNSLAB, "stop", lab], capture_output=True,
                       timeout=60)


def main():
    tmp = tempfile.mkdtemp(prefix="mox-smtpspec-")
    os.chmod(tmp, 0o755)
    try:
        localserve_phase(tmp)
        serve_phase(tmp)
    except Exception:  # a crash of the server shows as a failure with logs
        traceback.print_exc()
        check(False, "test ran without an exception")
    finally:
        if failures:
            print("logs in", tmp)
            for f in ("localserve.log", "serve.log"):
                p = os.path.join(tmp, f)
                if os.path.exists(p):
                    sys.stdout.write(open(p).read()[-6000:])
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
