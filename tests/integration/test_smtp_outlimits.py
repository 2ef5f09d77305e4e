#!/usr/bin/env python3
"""Per-account outgoing limits at submission (spec/smtp.md 14) in `mox
localserve` on 127.0.0.52: the account gets MaxOutgoingMessagesPerDay 4
and MaxFirstTimeRecipientsPerDay 2 in domains.conf; submissions beyond
either limit get 451 4.7.1 with the spec's text naming the setting, and
refused submissions are not counted."""

import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
IP = "127.0.0.52"

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def wait_log(path, text, deadline=20.0):
    end = time.time() + deadline
    while time.time() < end:
        with open(path) as f:
            if text in f.read():
                return True
        time.sleep(0.05)
    return False


def submit(rcpts, subject):
    """(code, text) of the end of the transaction; 250 when accepted."""
    msg = ("From: <mox@localhost>\r\nTo: %s\r\nSubject: %s\r\n\r\nhi\r\n" %
           (", ".join("<%s>" % r for r in rcpts), subject))
    try:
        with smtplib.SMTP(IP, 1587, timeout=20) as c:
            c.login("mox@localhost", "moxmoxmox")
            c.sendmail("mox@localhost", rcpts, msg)
        return 250, ""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode("utf-8", "replace")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = list(e.recipients.values())[0]
        return code, text.decode("utf-8", "replace")


def configure(d):
    p = os.path.join(d, "domains.conf")
    with open(p) as f:
        conf = f.read()
    old = "\t\tKeepRetiredWebhookPeriod: 72h0m0s\n"
    check(old in conf, "domains.conf has the account block")
    conf = conf.replace(old, old + "\t\tMaxOutgoingMessagesPerDay: 4\n"
                        "\t\tMaxFirstTimeRecipientsPerDay: 2\n", 1)
    with open(p, "w") as f:
        f.write(conf)


def main():
    tmp = tempfile.mkdtemp(prefix="mox-outlimits-")
    d = os.path.join(tmp, "ls")
    logp = os.path.join(tmp, "server.log")
    p = None
    try:
        r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP,
                            "-initonly"], capture_output=True, text=True)
        check(r.returncode == 0, "localserve -initonly: " + r.stderr)
        configure(d)
        r = subprocess.run([MOX, "-config", os.path.join(d, "mox.conf"),
                            "config", "test"], capture_output=True, text=True)
        check(r.returncode == 0, "config test: " + r.stdout + r.stderr)
        log = open(logp, "w")
        p = subprocess.Popen([MOX, "localserve", "-dir", d], stdout=log,
                             stderr=subprocess.STDOUT)
        check(wait_log(logp, "ready to serve"), "localserve ready")

        first = (451, "max number of new/first-time recipients (2) over "
                 "past 24h reached, try increasing per-account setting "
                 "MaxFirstTimeRecipientsPerDay")
        msgs = (451, "max number of messages (4) over past 24h reached, "
                "try increasing per-account setting "
                "MaxOutgoingMessagesPerDay")
        check(submit(["a@example.com"], "one") == (250, ""),
              "1st recipient accepted")
        check(submit(["b@example.com"], "two") == (250, ""),
              "2nd first-time recipient accepted (limit 2)")
        code, text = submit(["c@example.com"], "three")
        check(code == 451 and text.startswith("4.7.1 " + first[1]),
              "3rd first-time recipient refused: %d %s" % (code, text))
        check(submit(["a@example.com"], "four") == (250, ""),
              "known recipient still accepted (3 records)")
        code, text = submit(["a@example.com", "b@example.com"], "five")
        check(code == 451 and msgs[1] in text and "4.7.1" in text,
              "3 + 2 recipients over 4 messages/day: %d %s" % (code, text))
        check(submit(["b@example.com"], "six") == (250, ""),
              "refused submissions were not counted: 4th record accepted")
        code, text = submit(["a@example.com"], "seven")
        check(code == 451 and msgs[1] in text,
              "5th record refused: %d %s" % (code, text))
    finally:
        if p is not None:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if failures:
        with open(logp) as f:
            print("".join(f.readlines()[-40:]))
        print("%d failures" % len(failures))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("all ok")


if __name__ == "__main__":
    main()
