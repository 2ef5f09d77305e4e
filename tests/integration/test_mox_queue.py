#!/usr/bin/env python3
"""mox-queue and `mox queue` (spec/queue.md 13): every subcommand on a data
directory with the server stopped (mox gentestdata), then while mox
localserve runs on 127.0.0.22: a held message is not delivered, released
and scheduled it is delivered within seconds; fail retires with a DSN.
-json output parses; usage errors exit 2 naming the flag or argument,
failures exit 1 with "mox-queue: ..."."""

import json
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
MOXQ = os.path.join(BUILD, "mox-queue")
IP = "127.0.0.22"

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)


def q(conf, *args, timeout=30):
    return subprocess.run([MOXQ, "-config", conf] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def qj(conf, *args):
    r = q(conf, *args)
    try:
        return r, json.loads(r.stdout)
    except ValueError:
        return r, None


def ids_of(conf, *args):
    r, v = qj(conf, "list", "-json", *args)
    return [m["ID"] for m in v] if v is not None else None


def usage_err(r, word):
    return (r.returncode == 2 and r.stderr.startswith("mox-queue: ") and
            word in r.stderr and "usage: mox-queue" in r.stderr)


def stopped(tmp):
    d = os.path.join(tmp, "gen")
    r = subprocess.run([MOX, "gentestdata", d], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0, "gentestdata: " + r.stderr)
    conf = os.path.join(d, "config", "mox.conf")

    r = q(conf, "list")
    check(r.returncode == 0 and r.stdout.startswith("messages:\n") and
          "from:test1@mox.example to:remote@remote.example" in r.stdout,
          "list: " + r.stdout + r.stderr)
    r, v = qj(conf, "list", "-json")
    check(v is not None and len(v) == 1 and v[0]["ID"] == 1 and
          v[0]["Hold"] is False and v[0]["LastAttempt"] is None,
          "list -json parses")
    # Same handlers under mox.
    r = subprocess.run([MOX, "-config", conf, "queue", "list", "-json"],
                       capture_output=True, text=True, timeout=30)
    if "unknown command" not in r.stderr:
        check(r.returncode == 0 and json.loads(r.stdout)[0]["ID"] == 1,
              "mox queue list -json")

    # Filters.
    check(ids_of(conf, "-from", "@mox.example") == [1], "-from substring")
    check(ids_of(conf, "-to", "nobody") == [], "-to no match")
    check(ids_of(conf, "-account", "test1") == [1], "-account")
    check(ids_of(conf, "-account", "test0") == [], "-account other")
    check(ids_of(conf, "-ids", "1,2") == [1], "-ids")
    check(ids_of(conf, "-submitted", "<now") == [1], "-submitted <now")
    check(ids_of(conf, "-submitted", ">-1h") == [1], "-submitted >-1h")
    check(ids_of(conf, "-submitted", "<-1h") == [], "-submitted <-1h")
    check(ids_of(conf, "-nextattempt", "<+1h") == [1], "-nextattempt <+1h")
    check(ids_of(conf, "-transport", "") == [1], "-transport \"\"")
    check(ids_of(conf, "-hold", "true") == [], "-hold true")
    check(ids_of(conf, "-n", "1", "-sort", "queued", "-asc") == [1],
          "-n -sort -asc")

    # Hold rules.
    r = q(conf, "holdrules", "list")
    check(r.stdout == "hold rules:\n(none)\n", "holdrules list empty")
    r = q(conf, "holdrules", "add", "-senderdom", "mox.example")
    check(r.returncode == 0, "holdrules add: " + r.stderr)
    r = q(conf, "holdrules", "add")
    check(r.returncode == 0, "holdrules add all")
    r = q(conf, "holdrules", "list")
    check('id 1: sender domain "mox.example"' in r.stdout and
          "id 2: all messages" in r.stdout, "holdrules list: " + r.stdout)
    r, v = qj(conf, "holdrules", "list", "-json")
    check(v is not None and len(v) == 2 and
          v[0]["SenderDomain"] == "mox.example", "holdrules list -json")
    check(ids_of(conf, "-hold", "true") == [1], "hold rule held the message")
    for rid in ("1", "2"):
        r = q(conf, "holdrules", "remove", rid)
        check(r.returncode == 0, "holdrules remove " + rid)
    r = q(conf, "holdrules", "remove", "7")
    check(r.returncode == 1 and r.stderr.startswith("mox-queue: ") and
          "7" in r.stderr, "holdrules remove unknown: exit 1")
    r = q(conf, "holdrules", "remove", "x")
    check(usage_err(r, '"x"'), "holdrules remove x: exit 2")

    # hold/unhold/schedule/transport/requiretls.
    r = q(conf, "unhold", "-ids", "1")
    check(r.returncode == 0 and r.stdout == "1 messages changed\n",
          "unhold: " + r.stdout)
    check(ids_of(conf, "-hold", "false") == [1], "unheld")
    r = q(conf, "hold", "-to", "nomatch")
    check(r.stdout == "0 messages changed\n", "hold no match")
    r, v = qj(conf, "list", "-json")
    before = v[0]["NextAttempt"]
    r = q(conf, "schedule", "-now", "2h")
    check(r.stdout == "1 message(s) rescheduled\n", "schedule -now 2h")
    check(ids_of(conf, "-nextattempt", ">1h") == [1], "next attempt in 2h")
    r = q(conf, "schedule", "-2h")
    check(r.returncode == 0, "schedule negative duration argument")
    check(ids_of(conf, "-nextattempt", "<1m") == [1], "back to now")
    r = q(conf, "transport", "nosuch")
    check(r.returncode == 1 and "nosuch" in r.stderr,
          "unknown transport refused: " + r.stderr)
    r = q(conf, "transport", "")
    check(r.stdout == "1 message(s) changed\n", "transport \"\"")
    for v in ("yes", "no", "default"):
        r = q(conf, "requiretls", v)
        check(r.stdout == "1 message(s) changed\n", "requiretls " + v)
    r = q(conf, "requiretls", "maybe")
    check(usage_err(r, "maybe"), "requiretls maybe: exit 2")
    r = q(conf, "dump", "1")
    check(r.returncode == 0 and r.stdout.startswith("DKIM-Signature:") and
          "queued message" in r.stdout, "dump")
    r = q(conf, "dump", "99")
    check(r.returncode == 1 and "99" in r.stderr, "dump unknown id: exit 1")

    # Usage errors.
    r = q(conf, "list", "-bogus")
    check(usage_err(r, "-bogus"), "unknown flag: exit 2")
    r = q(conf, "list", "-hold", "maybe")
    check(usage_err(r, "-hold"), "bad -hold: exit 2")
    r = q(conf, "list", "-submitted", "1h")
    check(usage_err(r, "-submitted"), "-submitted without < or >: exit 2")
    r = q(conf, "list", "-nextattempt", "<1x")
    check(usage_err(r, "-nextattempt"), "bad duration in filter: exit 2")
    r = q(conf, "list", "-ids", "1,,2")
    check(usage_err(r, "-ids"), "bad -ids: exit 2")
    r = q(conf, "list", "-sort", "lastactivity")
    check(usage_err(r, "-sort"), "list -sort lastactivity: exit 2")
    r = q(conf, "schedule", "1x")
    check(usage_err(r, "1x"), "bad duration: exit 2")
    r = q(conf, "schedule")
    check(usage_err(r, "missing"), "schedule without duration: exit 2")
    r = q(conf, "list", "extra")
    check(usage_err(r, "too many"), "extra argument: exit 2")
    r = q(conf, "nosuch")
    check(r.returncode == 2 and "unknown command" in r.stderr,
          "unknown command: exit 2")
    r = q(conf)
    check(r.returncode == 2, "no command: exit 2")
    r = q(conf, "help")
    check(r.returncode == 0 and "webhook retired print" in r.stdout, "help")
    r = subprocess.run([MOXQ, "-config", os.path.join(tmp, "none.conf"),
                        "list"], capture_output=True, text=True)
    check(r.returncode == 1 and "none.conf" in r.stderr,
          "missing config: exit 1")

    # Suppressions.
    r = q(conf, "suppress", "list")
    check(r.stdout.endswith("(none)\n"), "suppress list empty")
    r = q(conf, "suppress", "add", "test1", "Some.One+tag@Example.org")
    check(r.returncode == 0, "suppress add: " + r.stderr)
    r = q(conf, "suppress", "add", "nosuch", "a@example.org")
    check(r.returncode == 1 and "nosuch" in r.stderr,
          "suppress add unknown account: exit 1")
    r = q(conf, "suppress", "add", "test1", "noat")
    check(usage_err(r, "noat"), "suppress add bad address: exit 2")
    r = q(conf, "suppress", "list", "-account", "test1")
    check('"test1"\t"Some.One+tag@Example.org"\tYes\t' in r.stdout,
          "suppress list: " + r.stdout)
    r, v = qj(conf, "suppress", "list", "-json")
    check(v is not None and len(v) == 1 and v[0]["Manual"] is True,
          "suppress list -json")
    r = q(conf, "suppress", "lookup", "someone@Example.org")
    check(r.stdout.startswith("present\n") and "manual: yes" in r.stdout,
          "suppress lookup any account: " + r.stdout)
    r = q(conf, "suppress", "lookup", "-account", "test0",
          "someone@Example.org")
    check(r.stdout == "not present\n", "suppress lookup other account")
    r, v = qj(conf, "suppress", "lookup", "-json", "-account", "test1",
              "someone@Example.org")
    check(isinstance(v, dict) and v["Account"] == "test1",
          "suppress lookup -json")
    r = q(conf, "suppress", "remove", "test1", "someone@Example.org")
    check(r.returncode == 0, "suppress remove: " + r.stderr)
    r = q(conf, "suppress", "remove", "test1", "someone@Example.org")
    check(r.returncode == 1 and "not present" in r.stderr,
          "suppress remove absent: exit 1")

    # Webhooks: none queued here.
    r = q(conf, "webhook", "list")
    check(r.stdout == "webhooks:\n(none)\n", "webhook list")
    r, v = qj(conf, "webhook", "list", "-json", "-event", "delivered",
              "-sort", "queued")
    check(v == [], "webhook list -json")
    r = q(conf, "webhook", "list", "-event", "bogus")
    check(usage_err(r, "-event"), "webhook list bad event: exit 2")
    r = q(conf, "webhook", "schedule", "-now", "0")
    check(r.stdout == "0 webhook(s) rescheduled\n", "webhook schedule")
    r = q(conf, "webhook", "cancel", "-account", "test1")
    check(r.stdout == "0 webhook(s) canceled\n", "webhook cancel")
    r = q(conf, "webhook", "print", "1")
    check(r.returncode == 1, "webhook print unknown: exit 1")
    r = q(conf, "webhook", "retired", "list", "-lastactivity", "<now")
    check(r.stdout == "retired webhooks:\n(none)\n", "webhook retired list")
    r = q(conf, "webhook", "retired", "print", "1")
    check(r.returncode == 1, "webhook retired print unknown: exit 1")

    # drop retires the message (as canceled, no DSN).
    r = q(conf, "drop", "-ids", "1")
    check(r.stdout == "1 message(s) dropped\n", "drop: " + r.stdout + r.stderr)
    check(ids_of(conf) == [], "queue empty after drop")
    r = q(conf, "retired", "list", "-result", "failure")
    check(r.returncode == 0 and r.stdout.startswith("retired messages:\n"),
          "retired list: " + r.stdout)
    r, v = qj(conf, "retired", "list", "-json", "-sort", "queued", "-asc")
    check(v is not None, "retired list -json parses")
    if v:
        r = q(conf, "retired", "print", str(v[0]["ID"]))
        check(r.returncode == 0 and json.loads(r.stdout)["ID"] == v[0]["ID"],
              "retired print")
    r = q(conf, "retired", "print", "999")
    check(r.returncode == 1, "retired print unknown: exit 1")


def wait_ready(d, p):
    end = time.time() + 30
    while time.time() < end and p.poll() is None:
        with open(os.path.join(d, "server.log")) as f:
            if "ready to serve" in f.read():
                return True
        time.sleep(0.1)
    return False


def submit(rcpt, subject):
    s = smtplib.SMTP(IP, 1587, timeout=30)
    s.login("mox@localhost", "moxmoxmox")
    s.sendmail("mox@localhost", [rcpt],
               ("From: mox@localhost\r\nTo: %s\r\nSubject: %s\r\n\r\nhi\r\n"
                % (rcpt, subject)).encode())
    s.quit()


def wait_for(fn, secs):
    end = time.time() + secs
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.2)
    return fn()


def running(tmp):
    d = os.path.join(tmp, "ls")
    conf = os.path.join(d, "mox.conf")
    r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP, "-initonly"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "localserve -initonly: " + r.stderr)
    log = open(os.path.join(d, "server.log"), "w")
    p = subprocess.Popen([MOX, "localserve", "-dir", d], stdout=log,
                         stderr=subprocess.STDOUT)
    try:
        check(wait_ready(d, p), "localserve ready")
        # Held by a rule while the server runs: stays queued.
        r = q(conf, "holdrules", "add", "-account", "mox")
        check(r.returncode == 0, "holdrules add while running")
        submit("mox@localhost", "held")
        r, v = qj(conf, "list", "-json", "-hold", "true")
        check(v is not None and len(v) == 1, "submitted message is held")
        mid = str(v[0]["ID"]) if v else "0"
        time.sleep(3)
        check(ids_of(conf, "-ids", mid) == [int(mid)],
              "runner does not deliver a held message")
        r = q(conf, "holdrules", "remove", "1")
        check(r.returncode == 0, "holdrules remove while running")
        r = q(conf, "schedule", "-ids", mid, "-now", "1h")
        check(r.stdout == "1 message(s) rescheduled\n", "schedule -now 1h")
        r = q(conf, "unhold", "-ids", mid)
        check(r.stdout == "1 messages changed\n", "unhold while running")
        time.sleep(2)
        check(ids_of(conf, "-ids", mid) == [int(mid)],
              "not delivered before its next attempt")
        r = q(conf, "schedule", "-ids", mid, "-now", "0")
        check(r.returncode == 0, "schedule -now 0")
        check(wait_for(lambda: ids_of(conf, "-ids", mid) == [], 15),
              "delivered within seconds after schedule -now 0")
        r, v = qj(conf, "retired", "list", "-json", "-ids", mid)
        check(v is not None and len(v) == 1 and v[0]["Success"] is True,
              "retired as success: " + r.stdout)
        r = q(conf, "retired", "list", "-result", "success",
              "-lastactivity", ">-1h")
        check(("%5s " % mid) in r.stdout and " success " in r.stdout,
              "retired list text: " + r.stdout)

        # Hold while running, then fail: DSN and retired as failure.
        r = q(conf, "holdrules", "add")
        submit("queuetemperror@localhost", "tofail")
        r, v = qj(conf, "list", "-json", "-to", "queuetemperror")
        check(v is not None and len(v) == 1 and v[0]["Hold"],
              "second message held")
        fid = str(v[0]["ID"]) if v else "0"
        r = q(conf, "holdrules", "remove", "2")
        r = q(conf, "fail", "-ids", fid)
        check(r.stdout == "1 message(s) marked as failed\n",
              "fail while running: " + r.stdout + r.stderr)
        check(ids_of(conf, "-ids", fid) == [], "failed message left the queue")
        r, v = qj(conf, "retired", "list", "-json", "-ids", fid)
        check(v is not None and len(v) == 1 and v[0]["Success"] is False,
              "retired as failure")
        r = q(conf, "retired", "print", fid)
        check(r.returncode == 0 and "canceled by admin" in r.stdout,
              "retired print shows the admin result")
        r, v = qj(conf, "webhook", "list", "-json")
        check(v is not None, "webhook list -json while running")
        check(p.poll() is None, "server still running")
    finally:
        subprocess.run([MOX, "-config", conf, "stop"], capture_output=True,
                       timeout=30)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
        if failures:
            with open(os.path.join(d, "server.log")) as f:
                sys.stdout.write(f.read()[-4000:])


def main():
    for exe in (MOX, MOXQ):
        if not os.path.exists(exe):
            print("missing", exe)
            return 99
    tmp = tempfile.mkdtemp(prefix="mox-queue-")
    try:
        stopped(tmp)
        running(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failures" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
