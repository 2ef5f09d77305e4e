#!/usr/bin/env python3
"""SMTP message authentication end to end (spec/smtp.md 10, 12;
spec/auth.md 1-6, 8, 9.2). A dnslab world serves a signed zone, an
insecure one and a bogus one, PTRs for 127.0.0.21-24 and a DNSBL; `mox
localserve` on 127.0.0.7 uses the lab's resolver (DNSResolvers). Messages
from the lab hosts must get the expected Authentication-Results (iprev,
spf, dkim, dmarc with "with dnssec" only for the signed zone, temperror
for the bogus one), Received-SPF and Received; DMARC p=reject, SPF fail
and DNSBL listings are refused with the spec's codes; DMARC evaluations
land in reports.db. A submission from a hosted domain is DKIM-signed
(ed25519 and RSA from PEM files, oversigned) and the delivered signatures
verify with python3-dkim against the lab's DNS."""

import os
import re
import shutil
import smtplib
import sqlite3
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
IP = "127.0.0.7"
SIGNED_IP, INSECURE_IP, BOGUS_IP, LISTED_IP = ("127.0.0.21", "127.0.0.22",
                                               "127.0.0.23", "127.0.0.24")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)


def txt_strings(value):
    """A TXT value as quoted strings of at most 255 bytes."""
    parts = [value[i:i + 250] for i in range(0, len(value), 250)]
    return " ".join('"%s"' % p for p in parts)


def zones(zdir, keys):
    z = {
        "127.in-addr.arpa": """$ORIGIN 127.in-addr.arpa.
; dnslab: signed
21.0.0 PTR mail.signed.example.
22.0.0 PTR mail.insecure.example.
23.0.0 PTR mail.bogus.example.
24.0.0 PTR listed.signed.example.
""",
        "signed.example": """$ORIGIN signed.example.
; dnslab: signed
@ MX 10 mail
mail A 127.0.0.21
listed A 127.0.0.24
@ TXT "v=spf1 ip4:127.0.0.21 ip4:127.0.0.24 -all"
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@signed.example"
s1._domainkey TXT %s
""" % txt_strings(keys["s1"]),
        "insecure.example": """$ORIGIN insecure.example.
; dnslab: unsigned
@ MX 10 mail
mail A 127.0.0.22
@ TXT "v=spf1 ip4:127.0.0.22 -all"
_dmarc TXT "v=DMARC1; p=none"
""",
        "bogus.example": """$ORIGIN bogus.example.
; dnslab: bogus
@ MX 10 mail
mail A 127.0.0.23
@ TXT "v=spf1 ip4:127.0.0.23 -all"
_dmarc TXT "v=DMARC1; p=reject"
""",
        "sub.example": """$ORIGIN sub.example.
; dnslab: signed
@ MX 10 mail
mail A 127.0.0.7
@ TXT "v=spf1 ip4:127.0.0.7 -all"
e1._domainkey TXT %s
r1._domainkey TXT %s
""" % (txt_strings(keys["e1"]), txt_strings(keys["r1"])),
        "dnsbl.example": """$ORIGIN dnsbl.example.
; dnslab: signed
2.0.0.127 A 127.0.0.2
2.0.0.127 TXT "test entry"
24.0.0.127 A 127.0.0.2
24.0.0.127 TXT "listed for the test"
""",
    }
    for name, text in z.items():
        with open(os.path.join(zdir, name + ".zone"), "w") as f:
            f.write(text)


def mox(*args, conf=None, input=None):
    cmd = [MOX] + (["-config", conf] if conf else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, input=input,
                          timeout=60)


def wait_port(port, deadline=15.0):
    import socket
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((IP, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def readback(datadir, mailbox="Inbox"):
    r = subprocess.run([READBACK, datadir, "mox", mailbox],
                       capture_output=True, text=True)
    out = []
    for l in r.stdout.splitlines():
        uid, path = l.split(" ", 1)
        with open(path, "rb") as f:
            out.append((int(uid), f.read()))
    return out


def headers(msg):
    """Unfolded header fields (name, value) of msg in order."""
    head = msg.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    out = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
        elif ":" in line:
            n, v = line.split(":", 1)
            out.append((n, v.strip()))
    return out


def send(src, mailfrom, hdr_from, ehlo, rcpt="mox@localhost", msg=None):
    if msg is None:
        msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: auth test\r\n"
               "Message-ID: <%s.%f@test>\r\n\r\nhello\r\n" %
               (hdr_from, rcpt, src, time.time()))
    s = smtplib.SMTP(IP, 1025, local_hostname=ehlo,
                     source_address=(src, 0), timeout=60)
    try:
        s.ehlo(ehlo)
        s.mail(mailfrom)
        s.rcpt(rcpt)
        code, resp = s.data(msg.encode())
    except smtplib.SMTPDataError as e:
        code, resp = e.smtp_code, e.smtp_error
    finally:
        try:
            s.quit()
        except Exception:
            pass
    return code, resp.decode() if isinstance(resp, bytes) else resp


def last_new(datadir, before, mailbox="Inbox"):
    msgs = [m for m in readback(datadir, mailbox) if m[0] > before]
    return msgs[-1][1] if msgs else None


def maxuid(datadir, mailbox="Inbox"):
    return max([m[0] for m in readback(datadir, mailbox)] or [0])


def main():
    if os.geteuid() != 0 and not shutil.which("nsd"):
        print("SKIP: dnslab needs root to install nsd/unbound")
        return 77
    tmp = tempfile.mkdtemp(prefix="mox-smtpauth-")
    lab = os.path.join(tmp, "dns")
    d = os.path.join(tmp, "ls")
    conf = os.path.join(d, "mox.conf")
    server = None
    try:
        r = mox("localserve", "-dir", d, "-ip", IP, "-initonly")
        check(r.returncode == 0, "localserve -initonly: " + r.stderr)
        keys = {}
        for sel, gen in (("e1", "gened25519"), ("r1", "genrsa"),
                         ("s1", "gened25519")):
            pem = mox("dkim", gen).stdout
            with open(os.path.join(d, "dkim-%s.pem" % sel), "w") as f:
                f.write(pem)
            keys[sel] = mox("dkim", "txt", input=pem).stdout.strip()
            check(keys[sel].startswith("v=DKIM1"), "dkim txt for " + sel)
        zdir = os.path.join(tmp, "zones")
        os.makedirs(zdir)
        zones(zdir, keys)
        r = subprocess.run([DNSLAB, "start", lab, zdir], capture_output=True,
                           text=True, timeout=300)
        if r.returncode != 0:
            print("SKIP: dnslab start failed:", r.stderr)
            return 77
        resolver = r.stdout.strip()
        port = resolver.rsplit(":", 1)[1]

        # Point the server at the lab; a DNSBL on the SMTP listener.
        with open(conf) as f:
            c = f.read()
        c = c.replace("Hostname: localhost\n", "Hostname: localhost\n"
                      "DNSResolvers:\n\t- %s\n" % resolver, 1)
        c = c.replace("\t\tSMTP:\n\t\t\tEnabled: true\n\t\t\tPort: 1025\n",
                      "\t\tSMTP:\n\t\t\tEnabled: true\n\t\t\tPort: 1025\n"
                      "\t\t\tDNSBLs:\n\t\t\t\t- dnsbl.example\n", 1)
        with open(conf, "w") as f:
            f.write(c)
        dpath = os.path.join(d, "domains.conf")
        with open(dpath) as f:
            dc = f.read()
        dc = dc.replace("Domains:\n", "Domains:\n\tsub.example:\n"
                        "\t\tDKIM:\n\t\t\tSelectors:\n"
                        "\t\t\t\te1:\n\t\t\t\t\tPrivateKeyFile: dkim-e1.pem\n"
                        "\t\t\t\tr1:\n\t\t\t\t\tPrivateKeyFile: dkim-r1.pem\n"
                        "\t\t\t\t\tExpiration: 72h\n"
                        "\t\t\tSign:\n\t\t\t\t- e1\n\t\t\t\t- r1\n", 1)
        dc = dc.replace("\t\t\tmox@localhost: nil\n",
                        "\t\t\tmox@localhost: nil\n\t\t\tmox@sub.example: nil\n",
                        1)
        with open(dpath, "w") as f:
            f.write(dc)
        r = mox("config", "test", conf=conf)
        check(r.returncode == 0, "edited config passes config test: " +
              r.stderr + r.stdout)

        log = open(os.path.join(tmp, "server.log"), "w")
        server = subprocess.Popen([MOX, "localserve", "-dir", d], stdout=log,
                                  stderr=subprocess.STDOUT)
        check(wait_port(1025) and wait_port(1587), "localserve listens")

        # 1. Signed zone: everything authentic.
        before = maxuid(d)
        code, resp = send(SIGNED_IP, "alice@signed.example",
                          "alice@signed.example", "mail.signed.example")
        check(code == 250, "signed sender accepted: %s %s" % (code, resp))
        m = last_new(d, before)
        check(m is not None, "signed message delivered")
        if m is not None:
            h = headers(m)
            names = [n for n, _ in h]
            check(names[:6] == ["X-Mox-Reason", "Delivered-To", "Return-Path",
                                "Authentication-Results", "Received-SPF",
                                "Received"], "prefix header order: %s" % names[:6])
            ar = dict(h)["Authentication-Results"]
            print("  " + ar)
            check("iprev=pass (with dnssec) policy.iprev=127.0.0.21" in ar,
                  "iprev pass with dnssec")
            check("spf=pass (with dnssec) smtp.mailfrom=signed.example" in ar,
                  "spf pass with dnssec")
            check("dkim=none reason=\"no dkim signatures\"" in ar or
                  "dkim=none" in ar, "dkim none without signatures")
            check("dmarc=pass (with dnssec) header.from=signed.example" in ar,
                  "dmarc pass with dnssec")
            check(ar.startswith("localhost;"), "authserv-id is the hostname")
            spf = dict(h)["Received-SPF"]
            check(spf.startswith("pass (domain signed.example) "
                                 "client-ip=127.0.0.21;") and
                  "envelope-from=\"alice@signed.example\"" in spf and
                  "helo=mail.signed.example" in spf and
                  "receiver=localhost" in spf and "identity=mailfrom" in spf,
                  "Received-SPF: " + spf)
            rcv = dict(h)["Received"]
            check(rcv.startswith("from mail.signed.example ([127.0.0.21]) by "
                                 "localhost ([127.0.0.7]) via tcp with ESMTP id ")
                  and "for <mox@localhost>;" in rcv, "Received: " + rcv)
            check(dict(h)["X-Mox-Reason"] == "no-bad-signals", "reason")

        # 1b. A DKIM signature by the signed zone (signed with `mox dkim
        # sign` under a separate config that hosts signed.example).
        sd = os.path.join(tmp, "signer")
        os.makedirs(sd)
        for fn in ("mox.conf", "localhost.crt", "localhost.key",
                   "adminpasswd", "dkim-s1.pem"):
            shutil.copy(os.path.join(d, fn), sd)
        with open(os.path.join(sd, "domains.conf"), "w") as f:
            f.write("Domains:\n\tsigned.example:\n\t\tDKIM:\n"
                    "\t\t\tSelectors:\n\t\t\t\ts1:\n"
                    "\t\t\t\t\tPrivateKeyFile: dkim-s1.pem\n"
                    "\t\t\tSign:\n\t\t\t\t- s1\n"
                    "Accounts:\n\tmox:\n\t\tDomain: signed.example\n"
                    "\t\tDestinations:\n\t\t\tmox@signed.example: nil\n")
        raw = os.path.join(sd, "msg.eml")
        with open(raw, "w", newline="") as f:
            f.write("From: <alice@signed.example>\r\nTo: <mox@localhost>\r\n"
                    "Subject: dkim test\r\nMessage-ID: <dkim.1@test>\r\n"
                    "\r\nsigned body\r\n")
        r = mox("dkim", "sign", raw, conf=os.path.join(sd, "mox.conf"))
        check(r.returncode == 0 and "DKIM-Signature" in r.stdout,
              "mox dkim sign for signed.example: " + r.stderr)
        before = maxuid(d)
        code, resp = send(SIGNED_IP, "alice@signed.example", None,
                          "mail.signed.example", msg=r.stdout)
        check(code == 250, "dkim-signed message accepted: %s %s" % (code, resp))
        m = last_new(d, before)
        if m is not None:
            ar = dict(headers(m))["Authentication-Results"]
            print("  " + ar)
            check(re.search(r"dkim=pass \(with dnssec\) header\.d=signed\."
                            r"example header\.s=s1 header\.a=ed25519-sha256 "
                            r"header\.b=\S{12}", ar) is not None,
                  "dkim pass with dnssec and its properties")
        else:
            check(False, "dkim-signed message delivered")

        # 2. Insecure zone: same verdicts, no DNSSEC; the iprev name
        # differs from EHLO and appears in Received.
        before = maxuid(d)
        code, resp = send(INSECURE_IP, "bob@insecure.example",
                          "bob@insecure.example", "client.example")
        check(code == 250, "insecure sender accepted: %s %s" % (code, resp))
        m = last_new(d, before)
        if m is not None:
            h = dict(headers(m))
            ar = h["Authentication-Results"]
            print("  " + ar)
            check("iprev=pass (without dnssec) policy.iprev=127.0.0.22" in ar,
                  "iprev pass without dnssec")
            check("spf=pass (without dnssec) smtp.mailfrom=insecure.example"
                  in ar, "spf pass without dnssec")
            check("dmarc=pass (without dnssec) header.from=insecure.example"
                  in ar, "dmarc pass without dnssec")
            check(h["Received"].startswith(
                "from client.example (mail.insecure.example [127.0.0.22])"),
                "Received names the iprev host: " + h["Received"])
        else:
            check(False, "insecure message delivered")

        # 3. Bogus zone: temperror everywhere, still delivered.
        before = maxuid(d)
        code, resp = send(BOGUS_IP, "carol@bogus.example",
                          "carol@bogus.example", "mail.bogus.example")
        check(code == 250, "bogus sender accepted: %s %s" % (code, resp))
        m = last_new(d, before)
        if m is not None:
            ar = dict(headers(m))["Authentication-Results"]
            print("  " + ar)
            check("iprev=temperror" in ar, "iprev temperror for bogus zone")
            check("spf=temperror" in ar, "spf temperror for bogus zone")
            check("dmarc=temperror" in ar, "dmarc temperror for bogus zone")
        else:
            check(False, "bogus message delivered")

        # 4. DMARC p=reject without alignment: 550 5.7.26, copy in Rejects.
        rbefore = maxuid(d, "Rejects")
        code, resp = send(INSECURE_IP, "dave@insecure.example",
                          "dave@signed.example", "mail.insecure.example")
        check(code == 550 and "5.7.26 rejecting per dmarc policy" in resp,
              "dmarc reject: %s %s" % (code, resp))
        m = last_new(d, rbefore, "Rejects")
        check(m is not None and b"X-Mox-Reason: dmarc-policy" in m and
              b"dmarc=fail (with dnssec) header.from=signed.example" in m,
              "dmarc reject kept in Rejects")

        # 5. SPF fail for a reputation-less sender: 451 spf-policy.
        code, resp = send(INSECURE_IP, "erin@signed.example",
                          "erin@insecure.example", "mail.insecure.example")
        check(code == 451 and "4.3.0 error processing" in resp,
              "spf fail rejected: %s %s" % (code, resp))
        m = last_new(d, rbefore, "Rejects")
        check(m is not None and b"X-Mox-Reason: spf-policy" in m,
              "spf-policy reject kept in Rejects")

        # 6. DNSBL listing (only after the other checks passed).
        code, resp = send(LISTED_IP, "frank@signed.example",
                          "frank@signed.example", "listed.signed.example")
        check(code == 451 and "4.3.0 error processing" in resp,
              "dnsbl listed rejected: %s %s" % (code, resp))
        m = last_new(d, rbefore, "Rejects")
        check(m is not None and b"X-Mox-Reason: dns-blocklisted" in m,
              "dns-blocklisted reject kept in Rejects")

        # DMARC evaluations (rua only at signed.example): the two accepted
        # messages and the DMARC reject; not the DNSBL reject.
        db = sqlite3.connect(os.path.join(d, "reports.db"))
        rows = db.execute("SELECT policy_domain, disposition, source_ip,"
                          " aligned_spf_pass, header_from, envelope_from,"
                          " addresses, spf_result FROM dmarc_evaluation"
                          " ORDER BY id").fetchall()
        db.close()
        print("  evaluations:", rows)
        check(len(rows) == 3, "three evaluations stored (got %d)" % len(rows))
        if len(rows) == 3:
            check(rows[0][:5] == ("signed.example", "none", "127.0.0.21", 1,
                                  "signed.example") and
                  rows[0][6] == "mailto:dmarc@signed.example" and
                  rows[0][7] == "pass", "accepted message evaluation")
            check(rows[1][:5] == ("signed.example", "none", "127.0.0.21", 1,
                                  "signed.example"),
                  "dkim-signed message evaluation")
            check(rows[2][:6] == ("signed.example", "reject", "127.0.0.22", 0,
                                  "signed.example", "insecure.example"),
                  "dmarc reject evaluation")
        db = sqlite3.connect(os.path.join(d, "reports.db"))
        dk = db.execute("SELECT domain, selector, result FROM"
                        " dmarc_evaluation_dkim").fetchall()
        db.close()
        check(dk == [("signed.example", "s1", "pass")],
              "dkim result kept with the evaluation: %s" % dk)

        # 7. Submission: DKIM-signed with the From domain's selectors.
        before = maxuid(d)
        msg = ("From: Mox <mox@sub.example>\r\nTo: <mox@localhost>\r\n"
               "Subject: signed submission\r\n\r\nbody text\r\n")
        s = smtplib.SMTP(IP, 1587, timeout=60)
        s.login("mox@localhost", "moxmoxmox")
        s.sendmail("mox@localhost", ["mox@localhost"], msg.encode())
        s.quit()
        m = None
        for _ in range(50):
            m = last_new(d, before)
            if m is not None:
                break
            time.sleep(0.1)
        check(m is not None, "submitted message delivered locally")
        if m is not None:
            h = headers(m)
            sigs = [v for n, v in h if n == "DKIM-Signature"]
            check(len(sigs) == 2, "two DKIM signatures (%d)" % len(sigs))
            sd = " ".join(sigs).replace(" ", "")
            check("d=sub.example;" in sd and "s=e1;" in sd and "s=r1;" in sd,
                  "signed by sub.example e1 and r1")
            check("a=ed25519-sha256;" in sd and "a=rsa-sha256;" in sd,
                  "ed25519 and rsa signatures")
            check("i=mox@sub.example;" in sd, "i= is the From address")
            hl = re.search(r"h=([^;]*);", sigs[0].replace(" ", ""))
            check(hl is not None and
                  hl.group(1).lower().split(":").count("from") == 2,
                  "From oversigned: %s" % (hl.group(1) if hl else None))
            check(re.search(r"x=\d+", sd) is not None, "x= from Expiration")
            verify_dkim(m, lab, port)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        subprocess.run([DNSLAB, "stop", lab], capture_output=True)
        if failures:
            print("server log:", os.path.join(tmp, "server.log"))
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d failures" % len(failures))
    return 1 if failures else 0


def verify_dkim(m, lab, port):
    """Verify every signature with python3-dkim, keys from the lab."""
    try:
        import dkim
    except ImportError:
        print("skip: python3-dkim not installed, no independent verify")
        return

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        r = subprocess.run(["drill", "-p", port, "@127.0.0.1",
                            name.rstrip("."), "TXT"], capture_output=True,
                           text=True, timeout=30)
        out = []
        sect = False
        for l in r.stdout.splitlines():
            if l.startswith(";; ANSWER SECTION"):
                sect = True
                continue
            if sect and l.startswith(";;"):
                break
            if sect and "\tTXT\t" in l:
                out.append("".join(re.findall(r'"((?:[^"\\]|\\.)*)"',
                                              l.split("\tTXT\t", 1)[1])))
        return "".join(out).encode()

    # The signatures cover the message after our local delivery prefix.
    d = dkim.DKIM(m)
    n = 0
    for i in range(len([l for l in m.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
                        if l.lower().startswith(b"dkim-signature:")])):
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
        check(ok, "python3-dkim verifies signature %d" % i)
        n += 1
    check(n == 2, "python3-dkim saw two signatures")


if __name__ == "__main__":
    sys.exit(main())
