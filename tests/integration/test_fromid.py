#!/usr/bin/env python3
"""fromid end to end in `mox localserve` on 127.0.0.49 (spec/smtp.md 11
step 10, 12.3 step 6; spec/queue.md 2, 9, 11, 12, 14). The mox account
lists mox@localhost in FromIDLoginAddresses, keeps retired history and
has an OutgoingWebhook (never reachable: events stay pending, which is
what we read). Checked: a submission to two recipients is queued with a
random id per recipient and delivered with Return-Path
mox+<id>@localhost; a client-chosen id is kept, refused for two
recipients (554 5.5.3) and when used before (554 5.1.7); a login with
another address of the account gets no id; a DSN (Action failed, Status
5.1.1) to mox+<id>@localhost on port 1025 is stored and becomes a
"failed" webhook event with DSN true, a suppression (source DSN) and a
retired result "incoming message"; a plain reply gives "unrecognized";
an unknown id is ordinary mail. Ends with mox-verifydata."""

import email
import imaplib
import json
import os
import re
import shutil
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
IP = "127.0.0.49"
PW = "moxmoxmox"
ID_RE = r"[A-Za-z0-9_-]{22}"

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


def submit(rcpts, subject, mailfrom="mox@localhost", login="mox@localhost"):
    msg = ("From: <mox@localhost>\r\nTo: <%s>\r\nSubject: %s\r\n"
           "Message-Id: <%s@localhost>\r\n\r\nhello\r\n" %
           (rcpts[0], subject, subject.replace(" ", "-")))
    with smtplib.SMTP(IP, 1587, timeout=20) as c:
        c.login(login, PW)
        return c.sendmail(mailfrom, rcpts, msg)


def submit_err(rcpts, subject, mailfrom):
    """(code, text) of a refused submission, or None when accepted."""
    try:
        submit(rcpts, subject, mailfrom)
        return None
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode("utf-8", "replace")


def imap_messages():
    """(subject, return-path, raw) of every Inbox message."""
    out = []
    with imaplib.IMAP4(IP, 1143, timeout=20) as m:
        m.login("mox@localhost", PW)
        m.select("Inbox", readonly=True)
        typ, data = m.uid("SEARCH", None, "ALL")
        for uid in data[0].split():
            typ, d = m.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = d[0][1]
            msg = email.message_from_bytes(raw)
            out.append((str(msg.get("Subject", "")),
                        str(msg.get("Return-Path", "")), raw))
        m.logout()
    return out


def wait_messages(subject, n, deadline=30.0):
    end = time.time() + deadline
    while time.time() < end:
        got = [(rp, raw) for s, rp, raw in imap_messages() if s == subject]
        if len(got) >= n:
            return got
        time.sleep(0.25)
    return [(rp, raw) for s, rp, raw in imap_messages() if s == subject]


def db(d):
    return sqlite3.connect("file:%s?mode=ro" %
                           os.path.join(d, "queue", "index.db"),
                           uri=True, timeout=10)


def rows(d, sql, args=()):
    c = db(d)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def wait_rows(d, sql, args, n, deadline=30.0):
    end = time.time() + deadline
    while time.time() < end:
        r = rows(d, sql, args)
        if len(r) >= n:
            return r
        time.sleep(0.2)
    return rows(d, sql, args)


def mq(d, *args):
    return subprocess.run([MOX, "-config", os.path.join(d, "mox.conf"),
                           "queue"] + list(args), capture_output=True,
                          text=True, timeout=30)


def deliver(rcpt, msg, mailfrom=""):
    """Plain SMTP to the port 25 listener (1025 in localserve)."""
    with smtplib.SMTP(IP, 1025, timeout=30) as c:
        c.ehlo("remote.example")
        return c.sendmail(mailfrom, [rcpt], msg)


def dsn(rcpt, original, action, status, diag):
    b = "dsnboundary"
    return (
        "From: <postmaster@remote.example>\r\n"
        "To: <%s>\r\n"
        "Subject: delivery status %s\r\n"
        "Message-Id: <dsn-%s@remote.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;"
        " boundary=%s\r\n\r\n"
        "--%s\r\nContent-Type: text/plain\r\n\r\nDelivery to %s failed.\r\n"
        "--%s\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.remote.example\r\n\r\n"
        "Final-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\n"
        "%s"
        "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Subject: fromid two\r\n\r\n--%s--\r\n" %
        (rcpt, action, action, b, b, original, b, original, action, status,
         ("Diagnostic-Code: smtp; %s\r\n" % diag) if diag else "", b, b))


def configure(d):
    """Extra address, FromIDLoginAddresses and OutgoingWebhook."""
    p = os.path.join(d, "domains.conf")
    with open(p) as f:
        conf = f.read()
    conf = conf.replace("\t\t\tmox@localhost: nil\n",
                        "\t\t\tmox@localhost: nil\n"
                        "\t\t\talt@localhost: nil\n", 1)
    conf = conf.replace("\t\tKeepRetiredWebhookPeriod: 72h0m0s\n",
                        "\t\tKeepRetiredWebhookPeriod: 72h0m0s\n"
                        "\t\tFromIDLoginAddresses:\n"
                        "\t\t\t- mox@localhost\n"
                        "\t\tOutgoingWebhook:\n"
                        "\t\t\tURL: http://127.0.0.49:9/hook\n", 1)
    check("FromIDLoginAddresses" in conf and "alt@localhost" in conf,
          "domains.conf edited")
    with open(p, "w") as f:
        f.write(conf)


def payload(d, event):
    r = rows(d, "SELECT payload FROM webhook WHERE event = ?", (event,))
    return [json.loads(p) for (p,) in r]


def main():
    tmp = tempfile.mkdtemp(prefix="mox-fromid-")
    d = os.path.join(tmp, "ls")
    logp = os.path.join(tmp, "server.log")
    p = None
    try:
        r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP,
                            "-initonly"], capture_output=True, text=True)
        check(r.returncode == 0, "localserve -initonly: " + r.stderr)
        configure(d)
        log = open(logp, "w")
        p = subprocess.Popen([MOX, "localserve", "-dir", d], stdout=log,
                             stderr=subprocess.STDOUT)
        check(wait_port(1587) and wait_log(logp, "ready to serve"),
              "localserve ready")

        # 1. A random id per recipient, in the queue and the delivery.
        check(submit(["a@example.com", "b@example.com"], "fromid two") == {},
              "two recipients accepted")
        got = wait_messages("fromid two", 2)
        rps = sorted(rp for rp, _ in got)
        check(len(rps) == 2 and all(re.fullmatch(
            r"<mox\+%s@localhost>" % ID_RE, rp) for rp in rps),
            "delivered with Return-Path <mox+<id>@localhost>: %r" % rps)
        check(len(set(rps)) == 2, "ids differ per recipient")
        ret = wait_rows(d, "SELECT recipient_localpart, from_id,"
                        " sender_localpart, success, id FROM retired"
                        " WHERE subject = 'fromid two'", (), 2)
        ids = {lp: fid for lp, fid, _, _, _ in ret}
        check(len(ret) == 2 and all(slp == "mox+" + fid and ok == 1
                                    for _, fid, slp, ok, _ in ret),
              "retired records carry FromID and MAIL FROM: %r" % ret)
        check(sorted("<mox+%s@localhost>" % f for f in ids.values()) == rps,
              "Return-Path ids are the records' FromIDs")
        r = mq(d, "retired", "list")
        check(r.returncode == 0 and all(
            ("from:mox+%s@localhost" % f) in r.stdout for f in ids.values()),
            "queue retired list shows the MAIL FROM: " + r.stdout + r.stderr)

        # 2. A chosen id: one recipient only, and only once.
        e = submit_err(["a@example.com", "b@example.com"], "chosen two",
                       "mox+chosen1@localhost")
        check(e is not None and e[0] == 554 and e[1].startswith("5.5.3") and
              "cannot send to multiple recipients with chosen fromid" in e[1],
              "chosen id with 2 recipients: 554 5.5.3 (%r)" % (e,))
        check(submit(["c@example.com"], "chosen one",
                     "mox+chosen1@localhost") == {},
              "chosen id with one recipient accepted")
        got = wait_messages("chosen one", 1)
        check([rp for rp, _ in got] == ["<mox+chosen1@localhost>"],
              "chosen id kept: %r" % [rp for rp, _ in got])
        wait_rows(d, "SELECT 1 FROM retired WHERE from_id = 'chosen1'", (),
                  1)
        e = submit_err(["c@example.com"], "chosen again",
                       "mox+chosen1@localhost")
        check(e is not None and e[0] == 554 and e[1].startswith("5.1.7") and
              "bad fromid in smtp mail from address" in e[1],
              "reused id: 554 5.1.7 (%r)" % (e,))
        e = submit_err(["d@example.com"], "generated again",
                       "mox+%s@localhost" % ids["a"])
        check(e is not None and e[0] == 554 and e[1].startswith("5.1.7"),
              "reusing a generated id: 554 5.1.7 (%r)" % (e,))
        check(not rows(d, "SELECT 1 FROM msg WHERE subject IN"
                       " ('chosen two', 'chosen again', 'generated again')"),
              "refused submissions were not queued")

        # 3. The exact login address: another address of the account gets
        # no id.
        check(submit(["e@example.com"], "alt login",
                     login="alt@localhost") == {}, "alt@localhost login")
        got = wait_messages("alt login", 1)
        check([rp for rp, _ in got] == ["<mox@localhost>"],
              "no fromid for an unlisted login: %r" %
              [rp for rp, _ in got])

        # 4. A DSN about the message to a@example.com.
        ida = ids["a"]
        msg = dsn("mox+%s@localhost" % ida, "a@example.com", "failed",
                  "5.1.1", "550 5.1.1 no such user")
        check(deliver("mox+%s@localhost" % ida, msg) == {},
              "DSN accepted on port 1025")
        hooks = []
        end = time.time() + 20
        while time.time() < end and not hooks:
            hooks = payload(d, "failed")
            time.sleep(0.2)
        check(len(hooks) == 1, "one failed webhook event: %r" % hooks)
        if hooks:
            h = hooks[0]
            check(h.get("DSN") is True and h.get("Event") == "failed" and
                  h.get("FromID") == ida and h.get("SMTPCode") == 550 and
                  h.get("SMTPEnhancedCode") == "5.1.1" and
                  h.get("Subject") == "fromid two" and
                  h.get("Suppressing") is True,
                  "webhook payload: %r" % h)
        r = mq(d, "webhook", "list", "-event", "failed")
        check(r.returncode == 0 and "account:mox" in r.stdout and
              "http://127.0.0.49:9/hook" in r.stdout,
              "queue webhook list -event failed: " + r.stdout + r.stderr)
        r = mq(d, "suppress", "lookup", "-account", "mox", "a@example.com")
        check(r.returncode == 0 and r.stdout.startswith("present") and
              "from DSN" in r.stdout,
              "recipient suppressed (source DSN): " + r.stdout + r.stderr)
        res = rows(d, "SELECT json_extract(results, '$[#-1].Error'),"
                   " json_extract(results, '$[#-1].Code') FROM retired"
                   " WHERE from_id = ?", (ida,))
        check(res == [("incoming message", 550)],
              "retired result 'incoming message': %r" % res)
        got = wait_messages("delivery status failed", 1, 10)
        check(len(got) == 1 and got[0][0] == "<>",
              "the DSN is stored in the Inbox too")

        # 5. A plain reply about the message to b@example.com.
        idb = ids["b"]
        check(deliver("mox+%s@localhost" % idb,
                      "From: <b@example.com>\r\nTo: <mox+%s@localhost>\r\n"
                      "Subject: auto reply\r\nMessage-Id: <ar@example.com>"
                      "\r\n\r\naway\r\n" % idb, "b@example.com") == {},
              "plain reply accepted")
        hooks = []
        end = time.time() + 20
        while time.time() < end and not hooks:
            hooks = payload(d, "unrecognized")
            time.sleep(0.2)
        check(len(hooks) == 1 and hooks[0].get("DSN") is False and
              hooks[0].get("FromID") == idb,
              "non-DSN: unrecognized event, DSN false: %r" % hooks)
        r = mq(d, "suppress", "lookup", "-account", "mox", "b@example.com")
        check(r.stdout.startswith("not present"),
              "no suppression for a non-DSN: " + r.stdout)

        # 6. An unknown id.
        n_before = len(rows(d, "SELECT 1 FROM webhook"))
        check(deliver("mox+unknownid@localhost",
                      dsn("mox+unknownid@localhost", "z@example.com",
                          "failed", "5.1.1", "")) == {},
              "DSN to an unknown id accepted")
        got = wait_messages("delivery status failed", 2, 10)
        check(len(got) == 2, "unknown id: ordinary delivery")
        check(len(rows(d, "SELECT 1 FROM webhook")) == n_before,
              "unknown id: no webhook event")
        check(wait_log(logp, "feedback on a sent message", 5),
              "feedback logged")
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
