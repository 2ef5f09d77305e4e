#!/usr/bin/env python3
"""Aliases (lists) and the DSN for partly failed incoming mail, end to end
(spec/smtp.md 7 step 6, 9 "Aliases", 11 step 2, 12.4). `mox serve` on
127.0.0.40 hosts alias.example with accounts alice, bob and carol and the
aliases team (members only), public (PostPublic) and sendas
(AllowMsgFrom); a dnslab world gives the sending domain remote.example
MX, SPF and a PTR for 127.0.0.40, so a second recipient passes the SPF
rule. Checked over IMAP: who got a copy and with which Delivered-To; in
the queue (mox-queue list/dump): the DSN's fields and DKIM signature;
and submission with an alias as From. Needs root (serve binds as root
and runs as User 65534); skips (77) without it or without dnslab."""

import email
import email.policy
import imaplib
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

SRC = os.environ.get("MOX_SRCDIR",
                     os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
MOXQ = os.path.join(BUILD, "mox-queue")
DNSLAB = os.environ.get("DNSLAB", os.path.join(SRC, "..", "shared", "tools",
                                               "dnslab", "dnslab"))
IP = "127.0.0.40"
SMTP, SUBMISSIONS, IMAPS = 1025, 1465, 1993
PW = "alias-test-pw"
UID = 65534  # serve's User, owns the data directory
DOM = "alias.example"

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


def mox(*args, conf=None, input=None, nobody=False):
    cmd = [MOX] + (["-config", conf] if conf else []) + list(args)
    kw = {"user": UID, "group": UID, "extra_groups": []} if nobody else {}
    return subprocess.run(cmd, capture_output=True, text=True, input=input,
                          timeout=60, **kw)


def moxq(conf, *args):
    """mox-queue as the data directory's owner, on the live queue."""
    return subprocess.run([MOXQ, "-config", conf] + list(args),
                          capture_output=True, text=True, timeout=60,
                          user=UID, group=UID, extra_groups=[])


def wait_port(port, deadline=20.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((IP, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def zones(zdir, dkim_txt):
    z = {
        "127.in-addr.arpa": """$ORIGIN 127.in-addr.arpa.
; dnslab: unsigned
40.0.0 PTR mail.remote.example.
""",
        "remote.example": """$ORIGIN remote.example.
; dnslab: unsigned
@ MX 10 mail
mail A 127.0.0.40
@ TXT "v=spf1 ip4:127.0.0.40 -all"
""",
        "alias.example": """$ORIGIN alias.example.
; dnslab: unsigned
@ MX 10 mail
mail A 127.0.0.40
s1._domainkey TXT %s
""" % " ".join('"%s"' % dkim_txt[i:i + 250]
               for i in range(0, len(dkim_txt), 250)),
    }
    for name, text in z.items():
        with open(os.path.join(zdir, name + ".zone"), "w") as f:
            f.write(text)


DOMAINS_CONF = """Domains:
	alias.example:
		LocalpartCatchallSeparator: +
		DKIM:
			Selectors:
				s1:
					PrivateKeyFile: dkim-s1.pem
			Sign:
				- s1
		Aliases:
			team:
				Addresses:
					- alice@alias.example
					- bob@alias.example
			public:
				Addresses:
					- alice@alias.example
					- bob@alias.example
				PostPublic: true
			sendas:
				Addresses:
					- alice@alias.example
					- bob@alias.example
				AllowMsgFrom: true
Accounts:
	alice:
		Domain: alias.example
		Destinations:
			alice@alias.example: nil
		NoFirstTimeSenderDelay: true
	bob:
		Domain: alias.example
		Destinations:
			bob@alias.example: nil
		NoFirstTimeSenderDelay: true
	carol:
		Domain: alias.example
		Destinations:
			carol@alias.example: nil
		NoFirstTimeSenderDelay: true
"""


def configure(tmp, resolver):
    """A serve config derived from localserve's, on IP, with the lab."""
    d = os.path.join(tmp, "srv")
    r = mox("localserve", "-dir", d, "-ip", IP, "-initonly")
    check(r.returncode == 0, "localserve -initonly: " + r.stderr)
    if r.returncode != 0:
        return None
    conf = os.path.join(d, "mox.conf")
    with open(conf) as f:
        text = f.read()
    text = text.replace("Hostname: localhost\n",
                        "Hostname: mail.alias.example\n"
                        "DNSResolvers:\n\t- %s\n" % resolver, 1)
    text = text.replace("Pedantic: true\n", "")
    text = text.replace("LogLevel: traceauth", "LogLevel: debug")
    text = re.sub(r"User: \d+", "User: %d" % UID, text)
    text = text.replace("\t\tSMTP:\n\t\t\tEnabled: true\n\t\t\tPort: 1025\n",
                        "\t\tSMTP:\n\t\t\tEnabled: true\n\t\t\tPort: 1025\n"
                        "\t\t\tFirstTimeSenderDelay: 0s\n", 1)
    text = re.sub(r"Postmaster:\n\tAccount: mox\n\tMailbox: Inbox\n",
                  "Postmaster:\n\tAccount: alice\n\tMailbox: Inbox\n", text)
    with open(conf, "w") as f:
        f.write(text)
    with open(os.path.join(d, "domains.conf"), "w") as f:
        f.write(DOMAINS_CONF)
    return d


def send(mailfrom, rcpts, msg, opts=(), starttls=False):
    """One transaction on port 25 from IP. Returns (rcpt replies, data
    reply) as (code, text) pairs."""
    s = smtplib.SMTP(IP, SMTP, local_hostname="mail.remote.example",
                     source_address=(IP, 0), timeout=60)
    try:
        s.ehlo()
        if starttls:
            s.starttls(context=unverified())
            s.ehlo()
        code, resp = s.mail(mailfrom, list(opts))
        if code != 250:
            return [], (code, resp.decode())
        replies = [s.rcpt(r) for r in rcpts]
        replies = [(c, t.decode()) for c, t in replies]
        code, resp = s.data(msg)
        return replies, (code, resp.decode())
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            s.close()


def message(from_addr, to, subject, msgid):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\n"
            "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\n"
            "body of %s\r\n" % (from_addr, to, subject, msgid, subject)
            ).encode()


def inbox(account, subject):
    """The messages with this Subject in the account's Inbox, as
    email.message objects."""
    m = imaplib.IMAP4_SSL(IP, IMAPS, ssl_context=unverified(), timeout=30)
    try:
        m.login("%s@%s" % (account, DOM), PW)
        m.select("Inbox", readonly=True)
        typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
        out = []
        for num in data[0].split():
            typ, d = m.fetch(num, "(BODY.PEEK[])")
            out.append(email.message_from_bytes(d[0][1],
                                                policy=email.policy.compat32))
        return out
    finally:
        m.logout()


def wait_inbox(account, subject, count, timeout=10.0):
    end = time.time() + timeout
    got = inbox(account, subject)
    while len(got) < count and time.time() < end:
        time.sleep(0.2)
        got = inbox(account, subject)
    return got


def delivered_to(msgs):
    return sorted(m["Delivered-To"] for m in msgs)


def queue_dsns(conf, to):
    r = moxq(conf, "list", "-json")
    try:
        items = json.loads(r.stdout) or []
    except ValueError:
        check(False, "mox-queue list -json parses: " + r.stdout + r.stderr)
        return []
    return [it for it in items if it["Sender"] == "" and it["Recipient"] == to]


def test_member_to_alias(d):
    subj = "member to team"
    rc, dr = send("sender@remote.example", ["team@%s" % DOM],
                  message("alice@%s" % DOM, "team@%s" % DOM, subj, "t1@x"))
    check(rc == [(250, "2.1.0 now on the list")],
          "RCPT to an alias accepted: %s" % rc)
    check(dr[0] == 250, "member's message to the alias: %s" % (dr,))
    bob = wait_inbox("bob", subj, 1)
    check(delivered_to(bob) == ["bob@alias.example"],
          "other member got one copy with Delivered-To bob: %s" %
          delivered_to(bob))
    if bob:
        check(bob[0]["X-Mox-Reason"] is not None and
              "for <team@alias.example>;" in
              " ".join(bob[0]["Received"].split()),
              "Received names the alias as given: %s" % bob[0]["Received"])
    check(inbox("alice", subj) == [], "the From member got no copy")


def test_not_allowed(d):
    subj = "stranger to team"
    rc, dr = send("sender@remote.example", ["Team+x@%s" % DOM],
                  message("eve@remote.example", "team@%s" % DOM, subj,
                          "t2@x"))
    check(rc and rc[0][0] == 250, "alias with separator and case accepted "
          "at RCPT: %s" % rc)
    check(dr[0] == 550 and dr[1].startswith(
        "5.7.2 not allowed to send to destination"),
        "non-member to members-only alias: %s" % (dr,))
    time.sleep(0.5)
    check(inbox("alice", subj) == [] and inbox("bob", subj) == [],
          "nobody got the refused message")


def test_post_public(d):
    subj = "stranger to public"
    rc, dr = send("sender@remote.example", ["public@%s" % DOM],
                  message("eve@remote.example", "public@%s" % DOM, subj,
                          "t3@x"))
    check(dr[0] == 250, "non-member to PostPublic alias: %s" % (dr,))
    a = wait_inbox("alice", subj, 1)
    b = wait_inbox("bob", subj, 1)
    check(delivered_to(a) == ["alice@alias.example"] and
          delivered_to(b) == ["bob@alias.example"],
          "every member got it with its own Delivered-To: %s %s" %
          (delivered_to(a), delivered_to(b)))


def test_explicit_and_alias(d):
    subj = "explicit and alias"
    rc, dr = send("sender@remote.example",
                  ["Bob+tag@%s" % DOM, "public@%s" % DOM],
                  message("eve@remote.example", "public@%s" % DOM, subj,
                          "t4@x"))
    check([c for c, _ in rc] == [250, 250],
          "explicit recipient and alias accepted (SPF pass for the second):"
          " %s" % rc)
    check(dr[0] == 250, "explicit + alias transaction: %s" % (dr,))
    a = wait_inbox("alice", subj, 1)
    b = wait_inbox("bob", subj, 1)
    time.sleep(0.5)
    b = inbox("bob", subj)
    check(len(b) == 1 and b[0]["Delivered-To"] == "Bob+tag@alias.example",
          "explicit recipient got exactly one copy: %s" % delivered_to(b))
    check(delivered_to(a) == ["alice@alias.example"],
          "the other member got the alias copy: %s" % delivered_to(a))


def test_partial_failure(d, conf):
    subj = "partly failed"
    before = {it["ID"] for it in queue_dsns(conf, "sender@remote.example")}
    rc, dr = send("sender@remote.example", ["carol@%s" % DOM, "team@%s" % DOM],
                  message("eve@remote.example", "team@%s" % DOM, subj,
                          "t5@remote.example"))
    check(dr[0] == 250, "one good, one refused recipient: 250: %s" % (dr,))
    check(len(wait_inbox("carol", subj, 1)) == 1, "good recipient got it")
    dsns = [it for it in queue_dsns(conf, "sender@remote.example")
            if it["ID"] not in before]
    check(len(dsns) == 1, "one DSN queued to the MAIL FROM: %s" % dsns)
    if not dsns:
        return None
    check(dsns[0]["SenderAccount"] == "alice",
          "DSN from the postmaster account: %s" % dsns[0]["SenderAccount"])
    r = moxq(conf, "dump", str(dsns[0]["ID"]))
    check(r.returncode == 0, "mox-queue dump: " + r.stderr)
    raw = r.stdout
    m = email.message_from_string(raw, policy=email.policy.compat32)
    check(m["From"] == "<postmaster@alias.example>", "DSN From: %s" % m["From"])
    check(m["To"] == "<sender@remote.example>", "DSN To: %s" % m["To"])
    check(m["Subject"] == "mail delivery failure", "DSN Subject")
    check(m["References"] == "<t5@remote.example>", "DSN References")
    check(m.get_content_type() == "multipart/report" and
          m.get_param("report-type") == "delivery-status", "multipart/report")
    parts = m.get_payload()
    check(len(parts) == 3, "three parts")
    if len(parts) == 3:
        text = parts[0].get_payload(decode=True).decode()
        check("Permanent delivery failure to:" in text and
              "team@alias.example" in text and
              "550 5.7.2 not allowed to send to destination" in text,
              "human text lists the failure: %r" % text)
        status = parts[1].as_string()
        check("Reporting-MTA: dns; mail.alias.example" in status,
              "Reporting-MTA")
        check("Received-From-MTA: dns;mail.remote.example ([127.0.0.40])"
              in status, "Received-From-MTA: %s" % status)
        check(re.search(r"Arrival-Date: \w{3}, \d", status) is not None,
              "Arrival-Date")
        check("Final-Recipient: rfc822;team@alias.example" in status and
              "Action: failed" in status and "Status: 5.7.2" in status and
              "Last-Attempt-Date: " in status,
              "per-recipient block for the failure")
        check("carol@alias.example" not in status,
              "no block for the delivered recipient")
        check(parts[2].get_content_type() == "text/rfc822-headers" and
              "Subject: partly failed" in parts[2].get_payload(),
              "original header as third part")
    check(m["DKIM-Signature"] is not None and
          "d=alias.example" in m["DKIM-Signature"].replace(" ", "") and
          "s=s1" in m["DKIM-Signature"].replace(" ", ""),
          "DSN DKIM-signed for alias.example")
    return raw


def test_requiretls_dsn(d, conf):
    subj = "requiretls partly failed"
    before = {it["ID"] for it in queue_dsns(conf, "tls@remote.example")}
    rc, dr = send("tls@remote.example",
                  ["carol@%s" % DOM, "nobody@%s" % DOM],
                  message("eve@remote.example", "carol@%s" % DOM, subj,
                          "t6@remote.example"),
                  opts=["REQUIRETLS"], starttls=True)
    check(dr[0] == 250, "REQUIRETLS transaction with an unknown user: %s" %
          (dr,))
    dsns = [it for it in queue_dsns(conf, "tls@remote.example")
            if it["ID"] not in before]
    check(len(dsns) == 1, "DSN queued for the unknown user")
    if not dsns:
        return
    db = sqlite3.connect("file:%s?mode=ro" %
                         os.path.join(d, "queue", "index.db"), uri=True)
    row = db.execute("SELECT requiretls, sender_localpart, sender_domain"
                     " FROM msg WHERE id = ?", (dsns[0]["ID"],)).fetchone()
    db.close()
    check(row == (1, "", ""), "DSN queued with REQUIRETLS and null sender:"
          " %s" % (row,))
    r = moxq(conf, "dump", str(dsns[0]["ID"]))
    check("Final-Recipient: rfc822;nobody@alias.example" in r.stdout and
          "Status: 5.1.1" in r.stdout, "DSN names the unknown user")


def test_null_sender_no_dsn(d, conf):
    # A bounce (null MAIL FROM) never gets a DSN; with one recipient it
    # cannot be partial either: refused outright.
    rc, dr = send("", ["team@%s" % DOM],
                  message("eve@remote.example", "team@%s" % DOM,
                          "null sender", "t7@x"))
    check(dr[0] == 550 and "5.7.2" in dr[1],
          "null sender to members-only alias refused: %s" % (dr,))


def submit(account, from_addr, subj):
    s = smtplib.SMTP_SSL(IP, SUBMISSIONS, context=unverified(), timeout=60)
    try:
        s.login("%s@%s" % (account, DOM), PW)
        s.mail("%s@%s" % (account, DOM))
        s.rcpt("carol@%s" % DOM)
        code, resp = s.data(message(from_addr, "carol@%s" % DOM, subj,
                                    subj.replace(" ", "-") + "@x"))
        return code, resp.decode()
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            s.close()


def test_submission(d):
    code, resp = submit("alice", "sendas@%s" % DOM, "send as alias")
    check(code == 250, "member submits with AllowMsgFrom alias as From: "
          "%s %s" % (code, resp))
    code, resp = submit("alice", "SendAs+x@%s" % DOM, "send as alias 2")
    check(code == 250, "alias From with separator and case: %s %s" %
          (code, resp))
    code, resp = submit("alice", "team@%s" % DOM, "send as team")
    check(code == 550 and resp.startswith(
        "5.7.1 message from address must belong to authenticated user"),
        "alias without AllowMsgFrom refused: %s %s" % (code, resp))
    code, resp = submit("carol", "sendas@%s" % DOM, "carol as alias")
    check(code == 550 and "5.7.1" in resp,
          "non-member refused for AllowMsgFrom alias: %s %s" % (code, resp))


def verify_dkim(raw, port):
    """Verify the DSN's signature with python3-dkim, the key from the
    lab's DNS."""
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

    msg = raw.replace("\r\n", "\n").replace("\n", "\r\n").encode()
    check(dkim.DKIM(msg).verify(dnsfunc=dnsfunc),
          "python3-dkim verifies the DSN's signature")


def main():
    if os.geteuid() != 0:
        print("SKIP: mox serve needs root (binds as root, runs as User)")
        return 77
    tmp = tempfile.mkdtemp(prefix="mox-smtpalias-")
    os.chmod(tmp, 0o755)
    lab = os.path.join(tmp, "dns")
    server = log = None
    try:
        pem = mox("dkim", "gened25519").stdout
        txt = mox("dkim", "txt", input=pem).stdout.strip()
        check(txt.startswith("v=DKIM1"), "dkim key generated")
        zdir = os.path.join(tmp, "zones")
        os.makedirs(zdir)
        zones(zdir, txt)
        r = subprocess.run([DNSLAB, "start", lab, zdir], capture_output=True,
                           text=True, timeout=300)
        if r.returncode != 0:
            print("SKIP: dnslab start failed:", r.stderr)
            return 77
        resolver = r.stdout.strip()
        d = configure(tmp, resolver)
        if d is None:
            return 1
        conf = os.path.join(d, "mox.conf")
        with open(os.path.join(d, "dkim-s1.pem"), "w") as f:
            f.write(pem)
        r = mox("config", "test", conf=conf)
        check(r.returncode == 0, "config test: " + r.stdout + r.stderr)
        for acc in ("alice", "bob", "carol"):
            r = mox("setaccountpassword", acc, conf=conf, input=PW + "\n")
            check(r.returncode == 0, "password for %s: %s" % (acc, r.stderr))
        subprocess.run(["chown", "-R", "%d:%d" % (UID, UID), d], check=True)
        log = open(os.path.join(tmp, "serve.log"), "w")
        server = subprocess.Popen([MOX, "-config", conf, "serve"], stdout=log,
                                  stderr=subprocess.STDOUT)
        ok = wait_port(SMTP) and wait_port(SUBMISSIONS) and wait_port(IMAPS)
        check(ok, "mox serve listens on %s" % IP)
        if not ok:
            return 1
        # Keep what gets queued (DSNs, submissions) for inspection.
        r = moxq(conf, "holdrules", "add")
        check(r.returncode == 0, "hold rule for everything: " + r.stderr)
        test_member_to_alias(d)
        test_not_allowed(d)
        test_post_public(d)
        test_explicit_and_alias(d)
        raw = test_partial_failure(d, conf)
        if raw is not None:
            verify_dkim(raw, resolver.rsplit(":", 1)[1])
        test_requiretls_dsn(d, conf)
        test_null_sender_no_dsn(d, conf)
        test_submission(d)
    except Exception:  # a crash of the server shows as a failure with logs
        traceback.print_exc()
        check(False, "test ran without an exception")
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
        subprocess.run([DNSLAB, "stop", lab], capture_output=True)
        if failures:
            print("logs in", tmp)
            p = os.path.join(tmp, "serve.log")
            if os.path.exists(p):
                sys.stdout.write(open(p).read()[-6000:])
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
