#!/usr/bin/env python3
"""The outgoing queue in `mox localserve` (spec/queue.md 3-4, 8;
spec/smtp.md 18): a submission (AUTH PLAIN on the submission port) is
queued and delivered by the runner to the local SMTP listener, back into
the mox account, where IMAP reads it; "queue..." special localparts are
accepted at submission and fail in the queue: permerror gives a failed
DSN with the full reply in the Inbox, temperror is retried on the
(shortened) backoff schedule and gives a delayed DSN after the 5th
attempt; plain special localparts fail at submission. Ends with
mox-verifydata."""

import email
import imaplib
import os
import shutil
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
IP = "127.0.0.8"
DIVISOR = 600  # first retry after 0.75 s, 5th attempt after 11.25 s

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def wait_port(port, deadline=15.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((IP, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_log(path, text, deadline=20.0):
    end = time.time() + deadline
    while time.time() < end:
        with open(path) as f:
            if text in f.read():
                return True
        time.sleep(0.05)
    return False


def submit(to, subject, mailfrom="mox@localhost"):
    msg = ("From: <mox@localhost>\r\nTo: <%s>\r\nSubject: %s\r\n"
           "Message-Id: <%s@localhost>\r\n\r\nhello %s\r\n" %
           (to, subject, subject.replace(" ", "-"), to))
    with smtplib.SMTP(IP, 1587, timeout=20) as c:
        c.login("mox@localhost", "moxmoxmox")
        return c.sendmail(mailfrom, [to], msg)


def imap_messages():
    """(subject, raw) of every Inbox message."""
    out = []
    with imaplib.IMAP4(IP, 1143, timeout=20) as m:
        m.login("mox@localhost", "moxmoxmox")
        m.select("Inbox", readonly=True)
        typ, data = m.uid("SEARCH", None, "ALL")
        for uid in data[0].split():
            typ, d = m.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = d[0][1]
            msg = email.message_from_bytes(raw)
            out.append((str(msg.get("Subject", "")), raw))
        m.logout()
    return out


def wait_subject(pred, deadline=30.0):
    end = time.time() + deadline
    while time.time() < end:
        for subj, raw in imap_messages():
            if pred(subj, raw):
                return raw
        time.sleep(0.25)
    return None


def queue_rows(d):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(d, "queue", "index.db"),
                         uri=True, timeout=10)
    try:
        return db.execute("SELECT recipient_localpart, attempts FROM msg").fetchall()
    finally:
        db.close()


def main():
    tmp = tempfile.mkdtemp(prefix="mox-queue-ls-")
    d = os.path.join(tmp, "ls")
    logp = os.path.join(tmp, "server.log")
    p = None
    try:
        r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP,
                            "-initonly"], capture_output=True, text=True)
        check(r.returncode == 0, "localserve -initonly: " + r.stderr)
        env = dict(os.environ, MOX_TEST_QUEUE_BACKOFF_DIVISOR=str(DIVISOR))
        log = open(logp, "w")
        p = subprocess.Popen([MOX, "localserve", "-dir", d], stdout=log,
                             stderr=subprocess.STDOUT, env=env)
        check(wait_port(1587) and wait_log(logp, "ready to serve"),
              "localserve ready")

        # 1. Submission delivered back into the account.
        refused = submit("someone@example.com", "roundtrip one")
        check(refused == {}, "submission accepted")
        raw = wait_subject(lambda s, r: s == "roundtrip one")
        check(raw is not None, "submitted message delivered into Inbox (IMAP)")
        if raw:
            check(b"hello someone@example.com" in raw, "body intact")
            check(b"DKIM-Signature:" in raw, "delivered copy is DKIM-signed")
            check(b"Received:" in raw, "Received header added")
        check(wait_log(logp, "delivered message", 5),
              "queue logged the delivery")
        # spec/queue.md 5.5: the recipient domain's TLS support as seen,
        # kept in the sender account.
        adb = sqlite3.connect("file:%s?mode=ro" % os.path.join(
            d, "accounts", "mox", "index.db"), uri=True, timeout=10)
        try:
            rows = adb.execute("SELECT domain, starttls, requiretls FROM"
                               " recipient_domain_tls").fetchall()
        finally:
            adb.close()
        check(("example.com", 1, 1) in rows,
              "recipient domain TLS recorded in the account: %r" % rows)

        # 1b. REQUIRETLS is passed on to the local server (over TLS).
        msg = ("From: <mox@localhost>\r\nTo: <rt@example.com>\r\n"
               "Subject: requiretls one\r\nMessage-Id: <rt1@localhost>\r\n"
               "\r\nhello\r\n")
        with smtplib.SMTP(IP, 1587, timeout=20) as c:
            c.starttls(context=ssl._create_unverified_context())
            c.login("mox@localhost", "moxmoxmox")
            c.sendmail("mox@localhost", ["rt@example.com"], msg,
                       mail_options=["REQUIRETLS"])
        raw = wait_subject(lambda s, r: s == "requiretls one")
        check(raw is not None and b"(requiretls)" in raw,
              "REQUIRETLS message delivered with (requiretls) in Received")

        # 2. Plain special localparts fail at submission (spec/smtp.md 18).
        try:
            submit("permerror@localhost", "subm perm")
            check(False, "permerror refused at submission")
        except (smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused) as e:
            code = (e.smtp_code if isinstance(e, smtplib.SMTPDataError)
                    else list(e.recipients.values())[0][0])
            check(code == 550, "permerror at submission: 550 (%r)" % (e,))
        try:
            submit("rcpttotemperror@localhost", "subm rcpt")
            check(False, "rcptto... refused at RCPT")
        except smtplib.SMTPRecipientsRefused as e:
            check(list(e.recipients.values())[0][0] == 451,
                  "rcpttotemperror: 451 at RCPT TO")

        # 3. queuepermerror: accepted, fails in the queue, failed DSN.
        check(submit("queuepermerror@localhost", "q perm") == {},
              "queuepermerror accepted at submission")
        raw = wait_subject(lambda s, r: s == "mail delivery failed" and
                           b"queuepermerror@localhost" in r)
        check(raw is not None, "failed DSN in the sender's Inbox")
        if raw:
            msg = email.message_from_bytes(raw)
            check(msg.get_content_type() == "multipart/report",
                  "DSN is multipart/report")
            parts = msg.get_payload()
            check(len(parts) == 3, "three parts")
            text = raw.decode("utf-8", "replace")
            check("550 5.0.0" in text, "full reply (550 5.0.0) in the DSN")
            check("Action: failed" in text and "Status: 5.0.0" in text,
                  "delivery-status fields")
            check("Final-Recipient: rfc822;queuepermerror@localhost" in text,
                  "Final-Recipient")
            check("References: <q-perm@localhost>" in text,
                  "DSN threads with the original")
            check("Subject: q perm" in text, "original header in part 3")
        check(all(lp != "queuepermerror" for lp, _ in queue_rows(d)),
              "failed message left the queue")

        # 4. queuetemperror: retried, delayed DSN after the 5th attempt.
        t0 = time.time()
        check(submit("queuetemperror@localhost", "q temp") == {},
              "queuetemperror accepted")
        raw = wait_subject(lambda s, r: s == "mail delivery delayed" and
                           b"queuetemperror@localhost" in r, deadline=40)
        dt = time.time() - t0
        check(raw is not None, "delayed DSN after repeated 451s")
        # Attempts 1-5 at 0, .75, 2.25, 5.25, 11.25 s.
        check(raw is None or 10 <= dt <= 25,
              "delayed DSN at the 5th attempt (%.1f s)" % dt)
        if raw:
            text = raw.decode("utf-8", "replace")
            check("Action: delayed" in text and "Will-Retry-Until:" in text,
                  "delayed DSN fields")
            check("451" in text, "delayed DSN has the 451 reply")
        rows = [a for lp, a in queue_rows(d) if lp == "queuetemperror"]
        check(rows and rows[0] == 5, "5 attempts so far: %r" % rows)
        # Held now so the test ends with a quiet queue.
        r = subprocess.run([MOX, "-config", os.path.join(d, "mox.conf"),
                            "queue", "hold"], capture_output=True, text=True,
                           timeout=20)
        check(r.returncode == 0, "queue hold: " + r.stderr.strip())
    finally:
        if p is not None:
            p.terminate()
            try:
                rc = p.wait(timeout=15)
                check(rc == 0, "server stopped cleanly (exit %d)" % rc)
            except subprocess.TimeoutExpired:
                check(False, "server stops on SIGTERM")
                p.kill()
                p.wait()
    vd = os.path.join(BUILD, "mox-verifydata")
    r = subprocess.run([vd, d], capture_output=True, text=True)
    check(r.returncode == 0, "mox-verifydata: " + r.stdout.strip() +
          r.stderr.strip())
    if failures:
        print("server log:", logp)
        with open(logp) as f:
            print("".join(f.readlines()[-60:]))
        print("%d failures" % len(failures))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("all ok")


if __name__ == "__main__":
    main()
