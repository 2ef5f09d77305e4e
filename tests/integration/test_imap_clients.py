#!/usr/bin/env python3
"""Real IMAP clients against `mox localserve` on 127.0.0.31: curl imap://
(list, fetch), mbsync syncing INBOX both ways with flags, cyrus imtest
with SCRAM-SHA-256-PLUS over implicit TLS, and mutt in tmux flagging a
message. Exits 77 (skip) only when a client package is missing. Ends with
mox-verifydata."""

import base64
import imaplib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
IP = "127.0.0.31"
PORT, TLSPORT = 1143, 1993
USER, PASS = "mox@localhost", "moxmoxmox"
IMTEST = shutil.which("imtest") or "/usr/lib/cyrus/bin/imtest"

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def msg(subject, body="hello\r\n"):
    return ("From: a@example.org\r\nTo: mox@localhost\r\nSubject: %s\r\n"
            "Date: Mon, 2 Jan 2006 15:04:05 -0700\r\n\r\n%s" %
            (subject, body)).encode()


def wait_port(port, deadline=15.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((IP, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def test_curl(tmp):
    url = "imap://%s:%d/" % (IP, PORT)
    r = subprocess.run(["curl", "-s", "--user", "%s:%s" % (USER, PASS), url],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "Inbox" in r.stdout, "curl lists mailboxes")
    r = subprocess.run(["curl", "-s", "--user", "%s:%s" % (USER, PASS),
                        url + "Inbox;UID=1"], capture_output=True, timeout=30)
    check(r.returncode == 0 and b"Subject: first" in r.stdout,
          "curl fetches a message")


def test_mbsync(tmp):
    mail = os.path.join(tmp, "mail")
    os.makedirs(mail)
    conf = os.path.join(tmp, "mbsyncrc")
    with open(conf, "w") as f:
        f.write("""IMAPAccount mox
Host %s
Port %d
User %s
Pass %s
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account mox

MaildirStore local
Path %s/
Inbox %s/INBOX

Channel ch
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
Sync All
""" % (IP, PORT, USER, PASS, mail, mail))
    r = subprocess.run(["mbsync", "-c", conf, "ch"], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0, "mbsync pull: " + r.stderr.strip()[-200:])
    cur = os.path.join(mail, "INBOX", "cur")
    new = os.path.join(mail, "INBOX", "new")
    for f in os.listdir(new) if os.path.isdir(new) else []:
        os.rename(os.path.join(new, f), os.path.join(cur, f))
    files = os.listdir(cur) if os.path.isdir(cur) else []
    check(len(files) == 2, "mbsync copied the messages")
    flagged = [f for f in files if f.split(":2,")[-1].find("F") >= 0]
    check(len(flagged) == 1, "mbsync kept the \\Flagged flag")
    # Mark one read locally and add a message locally, then push.
    for f in files:
        if f not in flagged:
            os.rename(os.path.join(cur, f),
                      os.path.join(cur, f.split(":2,")[0] + ":2,S"))
    with open(os.path.join(cur, "local.1:2,"), "wb") as f:
        f.write(msg("from mbsync"))
    r = subprocess.run(["mbsync", "-c", conf, "ch"], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0, "mbsync push: " + r.stderr.strip()[-200:])
    m = imaplib.IMAP4(IP, PORT)
    m.login(USER, PASS)
    m.select("Inbox", readonly=True)
    typ, data = m.search(None, "SEEN")
    check(len(data[0].split()) >= 1, "flag pushed by mbsync is on the server")
    typ, data = m.search(None, "SUBJECT", '"from mbsync"')
    check(len(data[0].split()) == 1, "message pushed by mbsync")
    m.logout()


def test_imtest(tmp):
    if not os.path.exists(IMTEST):
        print("skip: imtest not installed")
        return
    r = subprocess.run([IMTEST, "-s", "-p", str(TLSPORT), "-m",
                        "SCRAM-SHA-256", "-a", USER, "-w", PASS, IP],
                       input="a1 LOGOUT\r\n", capture_output=True, text=True,
                       timeout=60)
    out = r.stdout + r.stderr
    check("Authenticated." in out,
          "imtest SCRAM-SHA-256 over TLS: " + out.strip()[-300:])
    # cyrus-sasl binds only with tls-unique, which RFC 9266 forbids on
    # TLS 1.3: cap the client (OpenSSL) at TLS 1.2 for -PLUS.
    cnf = os.path.join(tmp, "openssl-tls12.cnf")
    with open(cnf, "w") as f:
        f.write("openssl_conf = openssl_init\n[openssl_init]\n"
                "ssl_conf = ssl_sect\n[ssl_sect]\n"
                "system_default = system_default_sect\n"
                "[system_default_sect]\nMaxProtocol = TLSv1.2\n")
    env = dict(os.environ, OPENSSL_CONF=cnf)
    # Implicit TLS, then STARTTLS ("-t ''": TLS without a client cert).
    for port, tlsarg in ((TLSPORT, ["-s"]), (PORT, ["-t", ""])):
        r = subprocess.run([IMTEST] + tlsarg +
                           ["-p", str(port), "-m", "SCRAM-SHA-256-PLUS",
                            "-a", USER, "-w", PASS, IP],
                           input="a1 SELECT Inbox\r\na2 LOGOUT\r\n",
                           capture_output=True, text=True, timeout=60,
                           env=env)
        out = r.stdout + r.stderr
        gs2 = b""
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0] == "C:" and \
                    parts[2] == "AUTHENTICATE":
                gs2 = base64.b64decode(parts[4]).split(b",")[0]
        check("Authenticated." in out and "TLSv1.2" in out and
              gs2 == b"p=tls-unique" and "a1 OK" in out,
              "imtest SCRAM-SHA-256-PLUS (tls-unique, TLS 1.2, port %d): %s"
              % (port, out.strip()[-400:]))


def test_mutt(tmp):
    muttrc = os.path.join(tmp, "muttrc")
    with open(muttrc, "w") as f:
        f.write('set folder="imap://%s@%s:%d/"\nset spoolfile="+Inbox"\n'
                'set imap_pass="%s"\nset ssl_starttls=no\nset ssl_force_tls=no\n'
                'set imap_passive=no\nset header_cache=""\n'
                'set mark_old=no\nset move=no\nset confirmappend=no\n'
                'set quit=yes\nset pager_stop=yes\n' %
                (USER.replace("@", "%40"), IP, PORT, PASS))
    m = imaplib.IMAP4(IP, PORT)
    m.login(USER, PASS)
    m.select("Inbox", readonly=True)
    before = len(m.search(None, "FLAGGED")[1][0].split())
    m.logout()
    sess = "moxmutt%d" % os.getpid()
    subprocess.run(["tmux", "new-session", "-d", "-s", sess, "-x", "120",
                    "-y", "40", "mutt -n -F %s" % muttrc], check=True)
    try:
        time.sleep(3)
        # Jump to message 1 (unflagged), read it, flag it, sync, quit.
        for keys in (["1"], ["Enter"], ["Enter"], ["q"], ["F"], ["$"],
                     ["q"]):
            subprocess.run(["tmux", "send-keys", "-t", sess] + keys)
            time.sleep(1.5)
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t",
                                     sess], capture_output=True, text=True)
            if keys == ["q"] and screen.returncode == 0:
                print("mutt screen:\n" + screen.stdout[-400:])
    finally:
        subprocess.run(["tmux", "kill-session", "-t", sess],
                       capture_output=True)
    m = imaplib.IMAP4(IP, PORT)
    m.login(USER, PASS)
    m.select("Inbox", readonly=True)
    typ, data = m.search(None, "FLAGGED")
    check(len(data[0].split()) == before + 1,
          "mutt flagged a message on the server")
    m.logout()


def main():
    for tool in ("curl", "mbsync", "mutt", "tmux"):
        if shutil.which(tool) is None:
            print("skip: %s not installed" % tool)
            sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="mox-imapc-")
    d = os.path.join(tmp, "ls")
    log = open(os.path.join(tmp, "server.log"), "w")
    p = subprocess.Popen([MOX, "localserve", "-dir", d, "-ip", IP],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        check(wait_port(PORT) and wait_port(TLSPORT), "server listening")
        m = imaplib.IMAP4(IP, PORT)
        m.login(USER, PASS)
        m.append("Inbox", None, None, msg("first"))
        m.append("Inbox", "(\\Flagged)", None, msg("second"))
        m.logout()
        for t in (test_curl, test_imtest, test_mbsync, test_mutt):
            try:
                t(tmp)
            except Exception as e:
                failures.append("%s: %r" % (t.__name__, e))
                print("FAIL:", t.__name__, repr(e), flush=True)
    finally:
        subprocess.run([MOX, "-config", os.path.join(d, "mox.conf"), "stop"],
                       capture_output=True, timeout=30)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
    vd = os.path.join(BUILD, "mox-verifydata")
    if os.path.exists(vd):
        r = subprocess.run([vd, d], capture_output=True, text=True)
        check(r.returncode == 0, "mox-verifydata: " + r.stdout.strip())
    if failures:
        print("server log:", os.path.join(tmp, "server.log"))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("all ok")


if __name__ == "__main__":
    main()
