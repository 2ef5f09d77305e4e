#!/usr/bin/env python3
"""DNSBL lookups at connection time and SPF/DKIM verified side by side
(spec/smtp.md 12.1 step 5, 12.2 step 14; RFC 5782). A dnslab world serves
a sender domain (SPF for 127.0.0.42, a DKIM key, a PTR) and three block
lists: listed.example (the RFC 5782 5 test entry 127.0.0.2 and a listing
of 127.0.0.42 with a TXT reason), clean.example (only the test entry) and
all.example (lists 127.0.0.1 too, so unhealthy). `mox localserve` on
127.0.0.42 resolves through the lab; clients connect from 127.0.0.42.
  (a) DNSBLs all.example, listed.example: the listing is logged after
      EHLO, before MAIL FROM is sent (the lookups start when the
      connection is accepted); the unhealthy zone is skipped; the message
      gets 451 4.3.0 and a copy in Rejects with X-Mox-Reason
      dns-blocklisted; the same when the whole transaction is sent at
      once; connections that close at once leave the server running.
  (b) DNSBLs clean.example: a DKIM-signed message is accepted with
      spf=pass and dkim=pass in Authentication-Results.
Skips (77) when dnslab cannot run."""

import os
import re
import shutil
import smtplib
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
IP = "127.0.0.42"
PORT = 1025
LISTED_RE = re.compile(r'm="peer listed in dnsbl".*zone=listed\.example')

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)


def txt_strings(value):
    parts = [value[i:i + 250] for i in range(0, len(value), 250)]
    return " ".join('"%s"' % p for p in parts)


def zones(zdir, key):
    z = {
        "127.in-addr.arpa": """$ORIGIN 127.in-addr.arpa.
; dnslab: signed
42.0.0 PTR mail.blsend.example.
""",
        "blsend.example": """$ORIGIN blsend.example.
; dnslab: signed
@ MX 10 mail
mail A 127.0.0.42
@ TXT "v=spf1 ip4:127.0.0.42 -all"
s1._domainkey TXT %s
""" % txt_strings(key),
        # RFC 5782 5: 127.0.0.2 listed, 127.0.0.1 not.
        "listed.example": """$ORIGIN listed.example.
; dnslab: signed
2.0.0.127 A 127.0.0.2
2.0.0.127 TXT "test entry"
42.0.0.127 A 127.0.0.2
42.0.0.127 TXT "listed for the test"
""",
        "clean.example": """$ORIGIN clean.example.
; dnslab: signed
2.0.0.127 A 127.0.0.2
2.0.0.127 TXT "test entry"
""",
        "all.example": """$ORIGIN all.example.
; dnslab: signed
1.0.0.127 A 127.0.0.2
2.0.0.127 A 127.0.0.2
42.0.0.127 A 127.0.0.2
""",
    }
    for name, text in z.items():
        with open(os.path.join(zdir, name + ".zone"), "w") as f:
            f.write(text)


def mox(*args, conf=None, input=None):
    cmd = [MOX] + (["-config", conf] if conf else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, input=input,
                          timeout=60)


def wait_port(deadline=15.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((IP, PORT), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_for(pred, deadline=15.0, step=0.05):
    end = time.time() + deadline
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def readback(datadir, mailbox="Inbox"):
    r = subprocess.run([READBACK, datadir, "mox", mailbox],
                       capture_output=True, text=True)
    out = []
    for l in r.stdout.splitlines():
        uid, path = l.split(" ", 1)
        with open(path, "rb") as f:
            out.append((int(uid), f.read()))
    return out


def maxuid(datadir, mailbox="Inbox"):
    return max([m[0] for m in readback(datadir, mailbox)] or [0])


def last_new(datadir, before, mailbox="Inbox"):
    msgs = [m for m in readback(datadir, mailbox) if m[0] > before]
    return msgs[-1][1] if msgs else None


def header(msg, name):
    """The unfolded value of the first field called name, or None."""
    head = msg.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    head = re.sub(r"\r\n[ \t]+", " ", head)
    for line in head.split("\r\n"):
        n, _, v = line.partition(":")
        if n.lower() == name.lower():
            return v.strip()
    return None


def message(tag):
    return ("From: <alice@blsend.example>\r\nTo: <mox@localhost>\r\n"
            "Subject: dnsbl test %s\r\nMessage-ID: <%s.%f@blsend.example>"
            "\r\n\r\nhello %s\r\n" % (tag, tag, time.time(), tag))


def log_text(path):
    with open(path, errors="replace") as f:
        return f.read()


def check_sanitizers(log):
    # After the server stopped: leak reports come at exit.
    text = log_text(log)
    check("ERROR: AddressSanitizer" not in text and
          "ERROR: LeakSanitizer" not in text and
          "WARNING: ThreadSanitizer" not in text and
          "runtime error:" not in text, "no sanitizer reports in " +
          os.path.basename(log))


def start_server(d, tmp, name):
    log = os.path.join(tmp, name)
    f = open(log, "w")
    p = subprocess.Popen([MOX, "localserve", "-dir", d], stdout=f,
                         stderr=subprocess.STDOUT)
    f.close()
    return p, log


def stop_server(p):
    if p is None:
        return
    p.terminate()
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def set_dnsbls(conf, zones_):
    with open(conf) as f:
        c = f.read()
    c = re.sub(r"\t\t\tDNSBLs:\n(\t\t\t\t- .*\n)*", "", c)
    c = c.replace("\t\tSMTP:\n\t\t\tEnabled: true\n\t\t\tPort: 1025\n",
                  "\t\tSMTP:\n\t\t\tEnabled: true\n\t\t\tPort: 1025\n"
                  "\t\t\tDNSBLs:\n" +
                  "".join("\t\t\t\t- %s\n" % z for z in zones_), 1)
    with open(conf, "w") as f:
        f.write(c)


def case_listed(d, log):
    # The lookups run from the accept: the listing is in the log while
    # the client has only said EHLO.
    n0 = len(LISTED_RE.findall(log_text(log)))
    rbefore = maxuid(d, "Rejects")
    s = smtplib.SMTP(IP, PORT, local_hostname="mail.blsend.example",
                     source_address=(IP, 0), timeout=60)
    try:
        s.ehlo("mail.blsend.example")
        seen = wait_for(lambda: len(LISTED_RE.findall(log_text(log))) > n0)
        check(seen, "listing logged before MAIL FROM was sent")
        s.mail("alice@blsend.example")
        s.rcpt("mox@localhost")
        try:
            code, resp = s.data(message("listed").encode())
        except smtplib.SMTPDataError as e:
            code, resp = e.smtp_code, e.smtp_error
    finally:
        try:
            s.quit()
        except Exception:
            pass
    resp = resp.decode() if isinstance(resp, bytes) else resp
    check(code == 451 and "4.3.0 error processing" in resp,
          "listed peer refused with 451 4.3.0: %s %s" % (code, resp))
    m = last_new(d, rbefore, "Rejects")
    check(m is not None and header(m, "X-Mox-Reason") == "dns-blocklisted",
          "copy in Rejects with X-Mox-Reason dns-blocklisted")
    text = log_text(log)
    check(re.search(r'm="dnsbl zone unhealthy, skipped".*zone=all\.example',
                    text) is not None, "unhealthy zone skipped")
    check(re.search(r'explanation="listed for the test"', text) is not None,
          "TXT reason logged with the listing")

    # The whole transaction at once: the decision waits for the lookups
    # if they are still running, and the answer is the same.
    rbefore = maxuid(d, "Rejects")
    c = socket.create_connection((IP, PORT), timeout=60,
                                 source_address=(IP, 0))
    c.sendall(("EHLO mail.blsend.example\r\nMAIL FROM:<alice@blsend.example>"
               "\r\nRCPT TO:<mox@localhost>\r\nDATA\r\n").encode())
    buf = b""
    end = time.time() + 30
    while b"354 " not in buf and time.time() < end:
        chunk = c.recv(4096)
        if not chunk:
            break
        buf += chunk
    c.sendall(message("pipelined").encode() + b".\r\nQUIT\r\n")
    while b"221 " not in buf and time.time() < end:
        chunk = c.recv(4096)
        if not chunk:
            break
        buf += chunk
    c.close()
    check(b"\r\n451 4.3.0 error processing" in buf,
          "pipelined transaction refused: %r" % buf[-200:])
    m = last_new(d, rbefore, "Rejects")
    check(m is not None and header(m, "X-Mox-Reason") == "dns-blocklisted",
          "pipelined message in Rejects as dns-blocklisted")


def case_early_close(server):
    # Lookups outlive their connections: nothing may leak or crash.
    for i in range(30):
        c = socket.create_connection((IP, PORT), timeout=10,
                                     source_address=(IP, 0))
        if i % 2:
            c.sendall(b"EHLO x\r\n")
        c.close()
    s = smtplib.SMTP(IP, PORT, timeout=30, source_address=(IP, 0))
    code = s.noop()[0]
    s.quit()
    check(server.poll() is None and code == 250,
          "server alive after 30 connections closed at once")


def case_clean(d, key_conf, tmp):
    raw = os.path.join(tmp, "msg.eml")
    with open(raw, "w", newline="") as f:
        f.write(message("clean"))
    r = mox("dkim", "sign", raw, conf=key_conf)
    check(r.returncode == 0 and "DKIM-Signature" in r.stdout,
          "mox dkim sign for blsend.example: " + r.stderr)
    before = maxuid(d)
    s = smtplib.SMTP(IP, PORT, local_hostname="mail.blsend.example",
                     source_address=(IP, 0), timeout=60)
    try:
        s.ehlo("mail.blsend.example")
        s.mail("alice@blsend.example")
        s.rcpt("mox@localhost")
        code, resp = s.data(r.stdout.encode())
    except smtplib.SMTPDataError as e:
        code, resp = e.smtp_code, e.smtp_error
    finally:
        try:
            s.quit()
        except Exception:
            pass
    check(code == 250, "accepted with a zone that does not list the peer: "
          "%s %s" % (code, resp))
    m = last_new(d, before)
    check(m is not None, "message delivered to Inbox")
    if m is None:
        return
    ar = header(m, "Authentication-Results") or ""
    print("  " + ar)
    check("spf=pass (with dnssec) smtp.mailfrom=blsend.example" in ar,
          "spf pass in Authentication-Results")
    check(re.search(r"dkim=pass \(with dnssec\) header\.d=blsend\.example "
                    r"header\.s=s1 ", ar) is not None,
          "dkim pass in Authentication-Results")
    check("iprev=pass" in ar, "iprev pass")
    spf = header(m, "Received-SPF") or ""
    check(spf.startswith("pass (domain blsend.example) client-ip=127.0.0.42;")
          and "identity=mailfrom" in spf,
          "Received-SPF: " + spf)


def main():
    if os.geteuid() != 0 and not shutil.which("nsd"):
        print("SKIP: dnslab needs root to install nsd/unbound")
        return 77
    tmp = tempfile.mkdtemp(prefix="mox-smtpdnsbl-")
    lab = os.path.join(tmp, "dns")
    d = os.path.join(tmp, "ls")
    conf = os.path.join(d, "mox.conf")
    server = None
    try:
        r = mox("localserve", "-dir", d, "-ip", IP, "-initonly")
        check(r.returncode == 0, "localserve -initonly: " + r.stderr)
        pem = mox("dkim", "gened25519").stdout
        key = mox("dkim", "txt", input=pem).stdout.strip()
        check(key.startswith("v=DKIM1"), "dkim key made")
        zdir = os.path.join(tmp, "zones")
        os.makedirs(zdir)
        zones(zdir, key)
        r = subprocess.run([DNSLAB, "start", lab, zdir], capture_output=True,
                           text=True, timeout=300)
        if r.returncode != 0:
            print("SKIP: dnslab start failed:", r.stderr)
            return 77
        resolver = r.stdout.strip()

        # A config that signs for blsend.example, for `mox dkim sign`.
        sd = os.path.join(tmp, "signer")
        os.makedirs(sd)
        for fn in ("mox.conf", "localhost.crt", "localhost.key",
                   "adminpasswd"):
            shutil.copy(os.path.join(d, fn), sd)
        with open(os.path.join(sd, "dkim-s1.pem"), "w") as f:
            f.write(pem)
        with open(os.path.join(sd, "domains.conf"), "w") as f:
            f.write("Domains:\n\tblsend.example:\n\t\tDKIM:\n"
                    "\t\t\tSelectors:\n\t\t\t\ts1:\n"
                    "\t\t\t\t\tPrivateKeyFile: dkim-s1.pem\n"
                    "\t\t\tSign:\n\t\t\t\t- s1\n"
                    "Accounts:\n\tmox:\n\t\tDomain: blsend.example\n"
                    "\t\tDestinations:\n\t\t\tmox@blsend.example: nil\n")

        with open(conf) as f:
            c = f.read()
        c = c.replace("Hostname: localhost\n", "Hostname: localhost\n"
                      "DNSResolvers:\n\t- %s\n" % resolver, 1)
        with open(conf, "w") as f:
            f.write(c)

        # (a) a listing zone after an unhealthy one.
        set_dnsbls(conf, ["all.example", "listed.example"])
        r = mox("config", "test", conf=conf)
        check(r.returncode == 0, "config with DNSBLs passes config test: " +
              r.stderr + r.stdout)
        server, log = start_server(d, tmp, "server-listed.log")
        check(wait_port(), "localserve listens on %s:%d" % (IP, PORT))
        case_listed(d, log)
        case_early_close(server)
        stop_server(server)
        server = None
        check_sanitizers(log)

        # (b) a zone that does not list the peer.
        set_dnsbls(conf, ["clean.example"])
        server, log = start_server(d, tmp, "server-clean.log")
        check(wait_port(), "localserve listens again")
        case_clean(d, os.path.join(sd, "mox.conf"), tmp)
        text = log_text(log)
        check(re.search(r'm="peer not listed in dnsbl".*zone=clean\.example',
                        text) is not None, "lookup in the clean zone logged")
        stop_server(server)
        server = None
        check_sanitizers(log)
    finally:
        stop_server(server)
        subprocess.run([DNSLAB, "stop", lab], capture_output=True)
        if failures:
            print("logs in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
