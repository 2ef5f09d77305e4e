#!/usr/bin/env python3
"""IMAP server end to end against `mox localserve` on 127.0.0.4 with
python3's imaplib and raw sockets: greeting and capabilities, login by
address, LIST/CREATE/RENAME/DELETE/SUBSCRIBE/STATUS, APPEND (literals,
MULTIAPPEND), SELECT/EXAMINE responses, FETCH of every item kind, STORE,
SEARCH/ESEARCH/SEARCHRES, COPY/MOVE/EXPUNGE and their UID forms, two
sessions on one mailbox seeing each other's changes (EXPUNGE, FETCH,
EXISTS, QRESYNC VANISHED), IDLE wakeups, literal limits, bad first
command, STARTTLS and implicit TLS, AUTHENTICATE PLAIN, CRAM-MD5,
SCRAM-SHA-256 and SCRAM-SHA-256-PLUS. Ends with mox-verifydata."""

import base64
import hashlib
import hmac
import imaplib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
IP = "127.0.0.4"
PORT, TLSPORT = 1143, 1993
USER, PASS = "mox@localhost", "moxmoxmox"

CAPS = ("IMAP4rev2 IMAP4rev1 ENABLE LITERAL+ IDLE SASL-IR BINARY UNSELECT "
        "UIDPLUS ESEARCH SEARCHRES MOVE UTF8=ACCEPT LIST-EXTENDED SPECIAL-USE "
        "LIST-STATUS AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-256 "
        "AUTH=SCRAM-SHA-1-PLUS AUTH=SCRAM-SHA-1 AUTH=CRAM-MD5 ID "
        "APPENDLIMIT=9223372036854775807 CONDSTORE QRESYNC STATUS=SIZE QUOTA "
        "QUOTA=RES-STORAGE CREATE-SPECIAL-USE SAVEDATE WITHIN NAMESPACE "
        "MULTIAPPEND REPLACE PREVIEW CHILDREN")

MSG = (b"From: Alice <alice@example.org>\r\nTo: mox@localhost\r\n"
       b"Subject: hello there\r\nDate: Mon, 2 Jan 2006 15:04:05 -0700\r\n"
       b"Message-ID: <m1@example.org>\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
       b"\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
       b"caf=C3=A9 searchable words\r\n--b\r\n"
       b"Content-Type: application/octet-stream\r\n"
       b"Content-Transfer-Encoding: base64\r\n"
       b"Content-Disposition: attachment; filename=x.bin\r\n\r\n"
       b"AAECAw==\r\n--b--\r\n")

failures = []
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)


def wait_port(port, deadline=15.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((IP, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Raw:
    """A line-level IMAP client over a socket, for exact transcripts."""

    def __init__(self, port=PORT, tls=False):
        s = socket.create_connection((IP, port), timeout=10)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s, server_hostname="localhost")
        self.s = s
        self.buf = b""

    def line(self, timeout=10):
        self.s.settimeout(timeout)
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, tag, text):
        """Send a command, return (untagged lines, tagged line)."""
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag):
        out = []
        while True:
            ln = self.line()
            if ln.startswith(tag.encode() + b" "):
                return out, ln
            out.append(ln)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def login(port=PORT):
    m = imaplib.IMAP4(IP, port)
    m.login(USER, PASS)
    return m


def test_greeting():
    r = Raw()
    g = r.line()
    check(g == b"* OK [CAPABILITY " + CAPS.encode() +
          b" STARTTLS AUTH=PLAIN] mox imap", "greeting with capabilities")
    u, t = r.cmd("a1", b"CAPABILITY")
    check(u == [b"* CAPABILITY " + CAPS.encode() + b" STARTTLS AUTH=PLAIN"]
          and t.startswith(b"a1 OK"), "CAPABILITY before login")
    u, t = r.cmd("a2", b"SELECT inbox")
    check(t.startswith(b"a2 NO"), "SELECT refused before login")
    u, t = r.cmd("a3", b"LOGIN mox@localhost wrong")
    check(t.startswith(b"a3 NO [AUTHENTICATIONFAILED]"), "bad password")
    u, t = r.cmd("a4", b"LOGIN nobody@localhost moxmoxmox")
    check(t.startswith(b"a4 NO [AUTHENTICATIONFAILED]"), "unknown user")
    r2 = Raw()
    r2.line()
    r2.send(b'b1 LOGIN "mox@localhost" {9}\r\n')
    check(r2.line() == b"+ ", "continuation request with a space")
    r2.send(b"moxmoxmox\r\n")
    u, t = r2.until("b1")
    check(t.startswith(b"b1 OK [CAPABILITY"), "login with a literal password")
    u, t = r2.cmd("b2", b"LOGIN mox@localhost moxmoxmox")
    check(t.startswith(b"b2 NO"), "LOGIN refused when authenticated")
    u, t = r2.cmd("b3", b"NOSUCHCMD")
    check(t.startswith(b"b3 BAD"), "unknown later command is BAD")
    u, t = r2.cmd("b4", b"SELECT {200000}")
    check(t.startswith(b"b4 BAD [TOOBIG]"), "too big sync literal refused")
    r2.send(b"b5 SELECT {5+}\r\nInbox\r\n")
    u, t = r2.until("b5")
    check(t.startswith(b"b5 OK [READ-WRITE]"), "non-sync literal")
    u, t = r2.cmd("b6", b"FETCH 1:* (FLAGS (((")
    check(t.startswith(b"b6 BAD"), "unbalanced parentheses are BAD")
    u, t = r2.cmd("b7", b"ENABLE \xff\xfe")
    check(t.startswith(b"b7 BAD"), "8-bit garbage is BAD")
    u, t = r2.cmd("b8", b"LOGOUT")
    check(u == [b"* BYE thanks"] and t.startswith(b"b8 OK"), "LOGOUT")
    r.close()
    r2.close()

    r = Raw()
    r.line()
    r.send(b"GET / HTTP/1.1\r\n")
    check(r.line().startswith(b"* BYE please try again speaking imap"),
          "non-IMAP first command closes with BYE")
    r.close()


def test_tls():
    m = imaplib.IMAP4(IP, PORT)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    typ, _ = m.starttls(ssl_context=ctx)
    check(typ == "OK", "STARTTLS")
    typ, caps = m.capability()
    check(caps[0].decode().endswith(" AUTH=PLAIN") and
          "STARTTLS" not in caps[0].decode(), "capabilities after STARTTLS")
    typ, _ = m.login(USER, PASS)
    check(typ == "OK", "login after STARTTLS")
    m.logout()
    m = imaplib.IMAP4_SSL(IP, TLSPORT, ssl_context=ctx)
    check(m.capabilities[-1] == "AUTH=PLAIN", "IMAPS capabilities")
    typ, _ = m.authenticate(
        "PLAIN", lambda _: ("\0" + USER + "\0" + PASS).encode())
    check(typ == "OK", "AUTHENTICATE PLAIN over implicit TLS")
    m.logout()


def test_starttls_pipelined():
    """spec/imap.md 1: bytes pipelined after STARTTLS are TLS records."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, outg, server_side=False,
                       server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outg.read()
    check(len(hello) > 0, "ClientHello from the memory BIO")
    s = socket.create_connection((IP, PORT), timeout=10)
    buf = b""

    def plain_line():
        nonlocal buf
        while b"\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise EOFError("closed")
            buf += d
        ln, buf = buf.split(b"\r\n", 1)
        return ln

    plain_line()  # greeting
    s.sendall(b"a STARTTLS\r\n" + hello)  # one write
    check(plain_line().startswith(b"a OK STARTTLS ("),
          "STARTTLS with the ClientHello pipelined: OK")
    if buf:
        inc.write(buf)  # records that came right after the OK
        buf = b""
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            d = outg.read()
            if d:
                s.sendall(d)
            d = s.recv(65536)
            if not d:
                raise EOFError("closed during handshake")
            inc.write(d)
    d = outg.read()
    if d:
        s.sendall(d)
    check(tls.version() is not None, "handshake with pipelined ClientHello")

    def tls_cmd(tag, text):
        tls.write(tag + b" " + text + b"\r\n")
        s.sendall(outg.read())
        got = b""
        while not re.search(rb"(^|\r\n)" + tag + rb" [^\r\n]*\r\n", got):
            try:
                got += tls.read(65536)
            except ssl.SSLWantReadError:
                d = s.recv(65536)
                if not d:
                    raise EOFError("closed")
                inc.write(d)
            d = outg.read()
            if d:
                s.sendall(d)
        return got.split(b"\r\n")

    lines = tls_cmd(b"b", b"CAPABILITY")
    check(any(ln.startswith(b"* CAPABILITY IMAP4rev2") and
              b"STARTTLS" not in ln for ln in lines) and
          any(ln.startswith(b"b OK") for ln in lines),
          "CAPABILITY over TLS after pipelined STARTTLS")
    lines = tls_cmd(b"c", b"LOGOUT")
    check(any(ln.startswith(b"c OK") for ln in lines), "LOGOUT over TLS")
    s.close()

    # Plaintext pipelined after STARTTLS goes to the handshake, which
    # fails: the commands are never executed.
    s = socket.create_connection((IP, PORT), timeout=10)
    buf = b""
    plain_line()
    s.sendall(b"a STARTTLS\r\nb NOOP\r\nc LOGOUT\r\n")
    check(plain_line().startswith(b"a OK STARTTLS ("),
          "STARTTLS with plaintext pipelined: OK")
    rest, closed = buf, False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            rest += d
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    check(closed and b"b OK" not in rest and b"BYE" not in rest and
          b"c OK" not in rest,
          "pipelined plaintext not executed, connection closed: %r" % rest)
    s.close()


def cram(m):
    def resp(chal):
        d = hmac.new(PASS.encode(), chal, hashlib.md5).hexdigest()
        return (USER + " " + d).encode()
    return m.authenticate("CRAM-MD5", resp)


def scram_exchange(sock_cmd, mech, hashname, cbname=None, cbdata=b""):
    """Run SCRAM with Raw r; returns the tagged line."""
    r = sock_cmd
    cnonce = base64.b64encode(os.urandom(18)).decode()
    gs2 = ("p=%s,," % cbname) if cbname else "n,,"
    first_bare = "n=%s,r=%s" % (USER, cnonce)
    r.send(b"s1 AUTHENTICATE " + mech.encode() + b" " +
           base64.b64encode((gs2 + first_bare).encode()) + b"\r\n")
    ln = r.line()
    if not ln.startswith(b"+ "):
        return ln
    server_first = base64.b64decode(ln[2:]).decode()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    salt = base64.b64decode(attrs["s"])
    it = int(attrs["i"])
    salted = hashlib.pbkdf2_hmac(hashname, PASS.encode(), salt, it)
    ckey = hmac.new(salted, b"Client Key", hashname).digest()
    skey = hashlib.new(hashname, ckey).digest()
    cbind = base64.b64encode(gs2.encode() + cbdata).decode()
    final_wo = "c=%s,r=%s" % (cbind, attrs["r"])
    auth = ",".join([first_bare, server_first, final_wo]).encode()
    sig = hmac.new(skey, auth, hashname).digest()
    proof = bytes(a ^ b for a, b in zip(ckey, sig))
    r.send(base64.b64encode(
        (final_wo + ",p=" + base64.b64encode(proof).decode()).encode()) +
        b"\r\n")
    ln = r.line()
    if not ln.startswith(b"+ "):
        return ln
    v = base64.b64decode(ln[2:]).decode()
    server_key = hmac.new(salted, b"Server Key", hashname).digest()
    want = base64.b64encode(hmac.new(server_key, auth, hashname).digest())
    if v != "v=" + want.decode():
        r.send(b"*\r\n")
        return r.line()
    r.send(b"\r\n")
    return r.line()


def test_sasl():
    m = imaplib.IMAP4(IP, PORT)
    typ, _ = cram(m)
    check(typ == "OK", "AUTHENTICATE CRAM-MD5")
    m.logout()
    r = Raw()
    r.line()
    t = scram_exchange(r, "SCRAM-SHA-256", "sha256")
    check(t.startswith(b"s1 OK"), "AUTHENTICATE SCRAM-SHA-256 (SASL-IR)")
    r.close()
    r = Raw()
    r.line()
    t = scram_exchange(r, "SCRAM-SHA-1", "sha1")
    check(t.startswith(b"s1 OK"), "AUTHENTICATE SCRAM-SHA-1")
    r.close()
    # -PLUS with tls-unique over TLS 1.2 (python has no tls-exporter).
    s = socket.create_connection((IP, TLSPORT), timeout=10)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s = ctx.wrap_socket(s, server_hostname="localhost")
    r = Raw.__new__(Raw)
    r.s, r.buf = s, b""
    r.line()
    cb = s.get_channel_binding("tls-unique")
    t = scram_exchange(r, "SCRAM-SHA-256-PLUS", "sha256", "tls-unique", cb)
    check(t.startswith(b"s1 OK"), "AUTHENTICATE SCRAM-SHA-256-PLUS tls-unique")
    r.close()
    r = Raw()
    r.line()
    r.send(b"x2 AUTHENTICATE PLAIN\r\n")
    check(r.line() == b"+ ", "PLAIN asks for the initial response")
    r.send(b"*\r\n")
    check(r.line().startswith(b"x2 BAD"), "AUTHENTICATE aborted with *")
    r.close()


def test_session():
    m = login()
    typ, data = m.list()
    names = [d.decode() for d in data]
    check(any(n == '(\\HasNoChildren \\Drafts) "/" Drafts' for n in names),
          "LIST with special-use always and CHILDREN attributes")
    check(m.create("Work/Sub")[0] == "OK", "CREATE with parent")
    check(m.create("Work")[0] == "NO", "CREATE existing is NO")
    m.untagged_responses.clear()
    typ, data = m.list('""', "Work*")
    check(len(data) == 2, "LIST pattern")
    typ, data = m._simple_command("LIST", "(SUBSCRIBED)", '""', "*",
                                  "RETURN", "(CHILDREN STATUS (MESSAGES))")
    typ, data = m._untagged_response(typ, data, "LIST")
    check(any(b"\\HasChildren" in d and b"Work" in d for d in data),
          "LIST-EXTENDED RETURN CHILDREN")
    check(m.rename("Work/Sub", "Work/Other")[0] == "OK", "RENAME")
    check(m.delete("Work/Other")[0] == "OK", "DELETE")
    check(m.delete("Nope")[0] == "NO", "DELETE missing")
    check(m.subscribe("Gone")[0] == "OK", "SUBSCRIBE non-existing")
    check(m.unsubscribe("Gone")[0] == "OK", "UNSUBSCRIBE")
    typ, data = m.lsub('""', "*")
    check(typ == "OK", "LSUB")
    typ, data = m.append("Inbox", "(\\Seen $label1)",
                         imaplib.Time2Internaldate(1136239445), MSG)
    check(typ == "OK" and b"APPENDUID" in data[0], "APPEND with APPENDUID")
    typ, data = m.append("Inbox", None, None, MSG.replace(b"\r\n", b"\n"))
    check(typ == "OK", "APPEND with bare LF")
    typ, data = m.append("NoSuch", None, None, MSG)
    check(typ == "NO" and b"TRYCREATE" in data[0], "APPEND TRYCREATE")
    m.untagged_responses.clear()
    typ, data = m.status("Inbox", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN "
                         "DELETED SIZE RECENT HIGHESTMODSEQ APPENDLIMIT)")
    check(typ == "OK" and b"MESSAGES 2" in data[0] and b"UNSEEN 1" in data[0],
          "STATUS")
    typ, data = m.select("Inbox")
    check(typ == "OK" and data == [b"2"], "SELECT")
    check(m.response("PERMANENTFLAGS")[1][0] is not None, "PERMANENTFLAGS")
    typ, data = m.fetch("1", "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE "
                        "BODYSTRUCTURE BODY MODSEQ)")
    text = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
    check(typ == "OK" and "ENVELOPE" in text and "BODYSTRUCTURE" in text
          and '"hello there"' in text and "03-Jan-2006" in text or
          " 2-Jan-2006" in text or "INTERNALDATE" in text,
          "FETCH attributes")
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject)] "
                        "BODY.PEEK[1] BODY.PEEK[2.MIME] BINARY.PEEK[2] "
                        "BINARY.SIZE[2] BODY.PEEK[]<0.4> RFC822.HEADER)")
    parts = [p for p in data if isinstance(p, tuple)]
    check(len(parts) == 6, "FETCH sections")
    check(parts[0][1] == b"Subject: hello there\r\n\r\n", "HEADER.FIELDS")
    check(parts[3][1] == b"\x00\x01\x02\x03", "BINARY decoded")
    check(b"BODY[]<0> {4}" in parts[4][0] and parts[4][1] == b"From",
          "partial fetch")
    typ, data = m.fetch("2", "(FLAGS)")
    check(b"\\Seen" not in data[0], "message 2 unseen")
    typ, data = m.fetch("2", "(BODY[TEXT])")
    check(any(isinstance(p, bytes) and b"\\Seen" in p for p in data) or
          any(isinstance(p, tuple) and b"\\Seen" in p[0] for p in data),
          "BODY[] sets \\Seen")
    try:
        typ, data = m.fetch("3", "(FLAGS)")
    except imaplib.IMAP4.error:
        typ = "BAD"
    check(typ == "BAD", "FETCH beyond the mailbox is BAD")
    typ, data = m.store("1", "+FLAGS", "(\\Flagged custom)")
    check(typ == "OK" and b"\\Flagged" in data[0] and b"custom" in data[0],
          "STORE +FLAGS")
    typ, data = m.store("1", "-FLAGS.SILENT", "(custom)")
    check(typ == "OK", "STORE -FLAGS.SILENT")
    try:
        typ, data = m.store("1", "+FLAGS", "(\\Bogus)")
    except imaplib.IMAP4.error:
        typ = "BAD"
    check(typ == "BAD", "STORE unknown system flag")
    typ, data = m.search(None, "FLAGGED")
    check(data == [b"1"], "SEARCH FLAGGED")
    typ, data = m.search("UTF-8", "BODY", "searchable")
    check(data == [b"1 2"], "SEARCH BODY over decoded text")
    typ, data = m.search(None, "CHARSET", "KOI8-R", "ALL")
    check(typ == "NO", "SEARCH BADCHARSET")
    typ, data = m._simple_command("UID", "SEARCH", "RETURN",
                                  "(MIN MAX COUNT SAVE)", "ALL")
    typ, data = m._untagged_response(typ, data, "ESEARCH")
    check(typ == "OK" and b"COUNT 2" in data[0] and b'TAG "' in data[0],
          "ESEARCH")
    typ, data = m.fetch("$", "(UID)")
    check(typ == "OK" and len(data) == 2, "SEARCHRES $")
    typ, data = m.copy("1:2", "Archive")
    check(typ == "OK" and b"COPYUID" in data[0], "COPY with COPYUID")
    typ, data = m.copy("1", "Nope")
    check(typ == "NO" and b"TRYCREATE" in data[0], "COPY TRYCREATE")
    typ, data = m.uid("MOVE", "1", "Trash")
    check(typ == "OK", "UID MOVE")
    typ, data = m.store("1", "+FLAGS", "(\\Deleted)")
    m.untagged_responses.clear()
    typ, data = m.expunge()
    check(typ == "OK" and data == [b"1"], "EXPUNGE %r" % data)
    typ, data = m.select("Trash", readonly=True)
    check(typ == "OK" and m.response("READ-ONLY")[1] != [None], "EXAMINE")
    typ, data = m.store("1", "+FLAGS", "(\\Deleted)")
    check(typ == "NO", "STORE on read-only")
    m.close()
    typ, data = m._simple_command("NAMESPACE")
    check(typ == "OK", "NAMESPACE")
    typ, data = m._simple_command("ID", "NIL")
    check(typ == "OK", "ID")
    typ, data = m._simple_command("GETQUOTAROOT", "Inbox")
    check(typ == "OK", "GETQUOTAROOT")
    m.logout()


def test_two_sessions():
    a = Raw()
    a.line()
    a.cmd("a1", b"LOGIN mox@localhost moxmoxmox")
    a.cmd("a2", b"CREATE Shared")
    b = Raw()
    b.line()
    b.cmd("b1", b"LOGIN mox@localhost moxmoxmox")
    b.cmd("b2", b"ENABLE QRESYNC")
    u, t = b.cmd("b3", b"SELECT Shared")
    check(t.startswith(b"b3 OK [READ-WRITE]") and b"* 0 EXISTS" in u,
          "second session selects")
    c = Raw()
    c.line()
    c.cmd("c1", b"LOGIN mox@localhost moxmoxmox")
    u, t = c.cmd("c2", b"SELECT Shared")
    for i in range(3):
        a.send(b"a3 APPEND Shared {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
        a.until("a3")
    u, t = b.cmd("b4", b"NOOP")
    check(b"* 3 EXISTS" in u and any(l.startswith(b"* 3 FETCH (UID 3 FLAGS")
                                     for l in u), "EXISTS and FETCH on NOOP")
    u, t = c.cmd("c3", b"NOOP")
    check(b"* 3 EXISTS" in u, "third session sees EXISTS")
    u, t = c.cmd("c4", b"STORE 2 +FLAGS (\\Deleted)")
    u, t = b.cmd("b5", b"NOOP")
    check(any(l.startswith(b"* 2 FETCH (UID 2 FLAGS (\\Deleted) MODSEQ")
              for l in u), "flag change seen by the other session")
    # Idle in b, expunge in c: VANISHED arrives during IDLE.
    b.send(b"b6 IDLE\r\n")
    check(b.line() == b"+ waiting", "IDLE continuation")
    u, t = c.cmd("c5", b"EXPUNGE")
    check(u == [b"* 2 EXPUNGE"], "EXPUNGE in the expunging session")
    check(b.line(timeout=5) == b"* VANISHED 2", "VANISHED delivered in IDLE")
    a.send(b"a4 APPEND Shared {%d}\r\n" % len(MSG))
    check(a.line() == b"+ Ready for literal data", "APPEND continuation")
    a.send(MSG + b"\r\n")
    a.until("a4")
    check(b.line(timeout=5) == b"* 3 EXISTS", "EXISTS delivered in IDLE")
    b.send(b"DONE\r\n")
    u, t = b.until("b6")
    check(t.startswith(b"b6 OK"), "IDLE done")
    # No EXPUNGE during FETCH: c removes; a (selected) fetches.
    a.cmd("a5", b"SELECT Shared")
    c.cmd("c6", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.cmd("c7", b"EXPUNGE")
    u, t = a.cmd("a6", b"FETCH 1:* (UID)")
    check(not any(b"EXPUNGE" in l for l in u) and
          t.startswith(b"a6 NO [EXPUNGEISSUED]") or
          (not any(b"EXPUNGE" in l for l in u)),
          "no EXPUNGE during FETCH")
    u, t = a.cmd("a7", b"NOOP")
    check(b"* 1 EXPUNGE" in u, "EXPUNGE after FETCH at NOOP: %r %r" % (u, t))
    # QRESYNC select: VANISHED (EARLIER).
    u, t = b.cmd("b7", b"UNSELECT")
    m = re.search(rb"UIDVALIDITY (\d+)",
                  b"".join(c.cmd("c8", b"STATUS Shared (UIDVALIDITY)")[0]))
    uidv = m.group(1)
    u, t = b.cmd("b8", b"SELECT Shared (QRESYNC (" + uidv + b" 1))")
    check(any(l.startswith(b"* VANISHED (EARLIER) 1:2") for l in u),
          "SELECT QRESYNC reports VANISHED (EARLIER)")
    u, t = b.cmd("b9", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    check(t.startswith(b"b9 OK") and any(b"VANISHED (EARLIER)" in l
                                        for l in u), "UID FETCH VANISHED")
    for r in (a, b, c):
        r.close()


def test_multiappend_binary():
    r = Raw()
    r.line()
    r.cmd("m1", b"LOGIN mox@localhost moxmoxmox")
    r.send(b"m2 APPEND Inbox (\\Seen) {%d+}\r\n" % len(MSG) + MSG +
           b" ~{%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    u, t = r.until("m2")
    check(t.startswith(b"m2 OK [APPENDUID") and b":" in t,
          "MULTIAPPEND with literal8")
    r.send(b"m3 APPEND Inbox UTF8 (~{%d+}\r\n" % len(MSG) + MSG + b")\r\n")
    u, t = r.until("m3")
    check(t.startswith(b"m3 OK"), "APPEND UTF8 form")
    u, t = r.cmd("m4", b"ENABLE UTF8=ACCEPT CONDSTORE")
    check(u == [b"* ENABLED UTF8=ACCEPT CONDSTORE"], "ENABLE")
    u, t = r.cmd("m5", b'CREATE "Caf\xc3\xa9"')
    check(t.startswith(b"m5 OK"), "CREATE UTF-8 name")
    r.close()
    m = login()
    typ, data = m.list('""', "Caf*")
    check(any(b"Caf&AOk-" in d for d in data), "modified UTF-7 for rev1")
    m.logout()


def test_extensions():
    """NAMESPACE, WITHIN, CREATE-SPECIAL-USE, CHILDREN, SAVEDATE, PREVIEW,
    REPLACE (RFC 2342, 5032, 6154, 3348, 8514, 8970, 8508)."""
    r = Raw()
    r.line()
    r.cmd("e1", b"LOGIN mox@localhost moxmoxmox")
    u, t = r.cmd("e2", b"NAMESPACE")
    check(u == [b'* NAMESPACE (("" "/")) NIL NIL'], "NAMESPACE")
    u, t = r.cmd("e3", b"CREATE Ext (USE (\\Archive))")
    check(t.startswith(b"e3 OK"), "CREATE-SPECIAL-USE")
    u, t = r.cmd("e4", b'LIST "" Ext')
    check(u == [b'* LIST (\\HasNoChildren \\Archive) "/" Ext'],
          "special-use of created mailbox: %r" % u)
    u, t = r.cmd("e5", b"CREATE Ext2 (USE (\\Bogus))")
    check(t.startswith(b"e5 NO [USEATTR]"), "CREATE unknown USE")
    r.cmd("e6", b"CREATE Ext/Child")
    u, t = r.cmd("e7", b'LIST "" Ext*')
    check(b'* LIST (\\HasChildren \\Archive) "/" Ext' in u and
          b'* LIST (\\HasNoChildren) "/" Ext/Child' in u,
          "CHILDREN attributes in basic LIST: %r" % u)
    for i in range(2):
        r.send(b"e8 APPEND Ext {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
        r.until("e8")
    r.cmd("e9", b"SELECT Ext")
    u, t = r.cmd("e10", b"SEARCH YOUNGER 3600")
    check(u == [b"* SEARCH 1 2"], "SEARCH YOUNGER: %r" % u)
    u, t = r.cmd("e11", b"SEARCH OLDER 3600")
    check(u == [b"* SEARCH"], "SEARCH OLDER")
    u, t = r.cmd("e12", b"FETCH 1 (SAVEDATE PREVIEW)")
    check(len(u) == 2 and b"SAVEDATE \"" in u[0] and
          u[0].endswith(b"PREVIEW {22}") and
          u[1] == b"caf\xc3\xa9 searchable words)",
          "FETCH SAVEDATE PREVIEW: %r" % u)
    u, t = r.cmd("e13", b"SEARCH SAVEDSINCE 1-Jan-2000 SAVEDATESUPPORTED")
    check(u == [b"* SEARCH 1 2"], "SEARCH SAVEDSINCE: %r" % u)
    new = MSG.replace(b"hello there", b"replaced")
    r.send(b"e14 REPLACE 1 Ext {%d}\r\n" % len(new))
    check(r.line() == b"+ Ready for literal data", "REPLACE continuation")
    r.send(new + b"\r\n")
    u, t = r.until("e14")
    check(t.startswith(b"e14 OK") and len(u) == 3 and
          u[0].startswith(b"* OK [APPENDUID ") and u[1] == b"* 3 EXISTS" and
          u[2] == b"* 1 EXPUNGE", "REPLACE: %r %r" % (u, t))
    r.cmd("e15", b"ENABLE QRESYNC")
    r.send(b"e16 UID REPLACE 3 Inbox {%d+}\r\n" % len(new) + new + b"\r\n")
    u, t = r.until("e16")
    check(t.startswith(b"e16 OK") and len(u) == 2 and
          u[0].startswith(b"* OK [APPENDUID ") and u[1] == b"* VANISHED 3",
          "UID REPLACE into another mailbox: %r %r" % (u, t))
    r.send(b"e17 UID REPLACE 99 Inbox {%d+}\r\n" % len(new) + new + b"\r\n")
    u, t = r.until("e17")
    check(t.startswith(b"e17 NO"), "UID REPLACE of a missing UID")
    r.send(b"e18 REPLACE 9 Inbox {%d+}\r\n" % len(new) + new + b"\r\n")
    u, t = r.until("e18")
    check(t.startswith(b"e18 BAD"), "REPLACE of a missing MSN")
    u, t = r.cmd("e19", b"FETCH 1:* (UID ENVELOPE)")
    check(len(u) == 1 and b'"hello there"' in u[0], "one message left")
    r.cmd("e20", b"EXAMINE Ext")
    r.send(b"e21 REPLACE 1 Ext {%d+}\r\n" % len(new) + new + b"\r\n")
    u, t = r.until("e21")
    check(t.startswith(b"e21 NO"), "REPLACE on a read-only mailbox")
    r.close()


def test_qresync():
    """RFC 7162 3.2.5.2: SELECT (QRESYNC ...) with known UIDs and sequence
    match data, including an inconsistent client."""
    r = Raw()
    r.line()
    r.cmd("q1", b"LOGIN mox@localhost moxmoxmox")
    u, t = r.cmd("q2", b"ENABLE QRESYNC")
    check(u == [b"* ENABLED QRESYNC CONDSTORE"], "ENABLE QRESYNC implies "
          "CONDSTORE: %r" % u)
    r.cmd("q3", b"CREATE Q")
    for i in range(5):
        r.send(b"q4 APPEND Q {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
        r.until("q4")
    u, t = r.cmd("q5", b"SELECT Q")
    uidv = re.search(rb"UIDVALIDITY (\d+)", b"".join(u)).group(1)
    m0 = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(u)).group(1))
    r.cmd("q6", b"UID STORE 2 +FLAGS.SILENT (\\Deleted)")
    r.cmd("q7", b"UID EXPUNGE 2")
    r.cmd("q8", b"UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    r.cmd("q9", b"UID EXPUNGE 4")
    r.cmd("q10", b"UID STORE 5 +FLAGS.SILENT (\\Flagged)")
    u, t = r.cmd("q11", b"UNSELECT")
    sel = b"SELECT Q (QRESYNC (" + uidv + b" %d" % m0
    u, t = r.cmd("q12", sel + b"))")
    check(b"* VANISHED (EARLIER) 2,4" in u and
          any(l.startswith(b"* 3 FETCH (UID 5 FLAGS (\\Deleted \\Flagged)")
              or l.startswith(b"* 3 FETCH (UID 5 FLAGS (\\Flagged")
              for l in u), "QRESYNC: VANISHED and FETCH: %r" % u)
    u, t = r.cmd("q13", sel + b" 1:3))")
    check(b"* VANISHED (EARLIER) 2" in u and
          not any(b"FETCH" in l for l in u), "QRESYNC known-uids: %r" % u)
    # The client's MSN 1 and 2 are UIDs 1 and 3, as ours: no need to
    # report UID 2.
    u, t = r.cmd("q14", sel + b" 1:5 (1:2 1,3)))")
    check(b"* VANISHED (EARLIER) 4" in u and
          not any(b"VANISHED (EARLIER) 2" in l for l in u),
          "QRESYNC sequence match data: %r" % u)
    u, t = r.cmd("q15", sel + b" 1:5 (1:3 1,3)))")
    check(t.startswith(b"q15 BAD"), "match data of unequal length is BAD")
    u, t = r.cmd("q16", sel + b" 1:5 (2,1 3,1)))")
    check(t.startswith(b"q16 BAD"), "match data not ascending is BAD")
    # A client at the current modseq that still has UID 2 at MSN 2.
    u, t = r.cmd("q17", b"STATUS Q (HIGHESTMODSEQ)")
    m1 = int(re.search(rb"HIGHESTMODSEQ (\d+)", u[0]).group(1))
    u, t = r.cmd("q18", b"SELECT Q (QRESYNC (" + uidv + b" %d 1:5 " % m1 +
                 b"(1:2 1:2)))")
    check(any(l.startswith(b"* OK [ALERT] Synchronization inconsistency")
              for l in u) and b"* VANISHED (EARLIER) 2,4" in u,
          "QRESYNC inconsistent client: %r" % u)
    u, t = r.cmd("q19", b"SELECT Q (QRESYNC (1 %d))" % m0)
    check(not any(b"VANISHED" in l for l in u) and t.startswith(b"q19 OK"),
          "QRESYNC with another UIDVALIDITY: no resync")
    r.close()


def test_big_fetch():
    """BODY[], BODY[]<partial> and RFC822 of a 20 MB message are streamed
    from the file: check the bytes."""
    big = (b"From: a@example.org\r\nSubject: big\r\n\r\n" +
           b"".join(b"line %08d of a big message body\r\n" % i
                    for i in range(600000)))
    m = login()
    m.create("Big")
    typ, data = m.append("Big", None, None, big)
    check(typ == "OK", "APPEND of %d octets" % len(big))
    m.select("Big")
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    check(typ == "OK" and data[0][1] == big, "BODY[] of a big message")
    typ, data = m.fetch("1", "(BODY.PEEK[]<10000000.20> RFC822.SIZE)")
    check(typ == "OK" and data[0][1] == big[10000000:10000020] and
          b"BODY[]<10000000> {20}" in data[0][0] and
          b"RFC822.SIZE %d" % len(big) in data[0][0] + data[1],
          "BODY[]<partial> of a big message: %r" % (data[0][0],))
    typ, data = m.fetch("1", "(BODY.PEEK[]<%d.10>)" % (len(big) + 5))
    check(typ == "OK" and data[0][1] == b"", "partial beyond the end")
    typ, data = m.fetch("1", "(RFC822 FLAGS)")
    check(typ == "OK" and data[0][1] == big and b"\\Seen" in data[1],
          "RFC822 of a big message sets \\Seen")
    m.logout()


def test_compliance():
    """RFC 9051, 5258, 6154, 3501 LSUB, 5182 and 7162 details: INBOX in
    LIST patterns, CHILDINFO, \\Noselect parents in LSUB, the SPECIAL-USE
    selection option, SAVE with MIN/MAX, tagged BAD, CHANGEDSINCE 0 in
    pedantic mode, EXPUNGE numbering, CLOSE and UNSELECT."""
    r = Raw()
    r.line()
    r.cmd("c1", b"LOGIN mox@localhost moxmoxmox")
    r.cmd("c2", b"CREATE Inbox/Cmp")
    # RFC 9051 6.3.9: INBOX matches when "INBOX" matches the pattern.
    u, t = r.cmd("c3", b'LIST "" INBOX*')
    check(b'* LIST (\\HasChildren) "/" Inbox' in u and
          b'* LIST (\\HasNoChildren) "/" Inbox/Cmp' in u,
          "LIST INBOX* lists Inbox: %r" % u)
    u, t = r.cmd("c4", b'LIST "" IN%')
    check(u == [b'* LIST (\\HasChildren) "/" Inbox'], "LIST IN%%: %r" % u)
    # RFC 5258 3.5: CHILDINFO also for a subscribed parent; a parent
    # that is neither a mailbox nor subscribed is listed \NonExistent.
    r.cmd("c5", b"CREATE Rm/a/b")
    r.cmd("c6", b"UNSUBSCRIBE Rm/a")
    r.cmd("c7", b"SUBSCRIBE Ghost/x")
    u, t = r.cmd("c8", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
    check(b'* LIST (\\Subscribed) "/" Rm ("CHILDINFO" ("SUBSCRIBED"))'
          in u and b'* LIST (\\NonExistent) "/" Ghost ("CHILDINFO" '
          b'("SUBSCRIBED"))' in u, "RECURSIVEMATCH CHILDINFO: %r" % u)
    u, t = r.cmd("c9", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" Rm/%')
    check(u == [b'* LIST () "/" Rm/a ("CHILDINFO" ("SUBSCRIBED"))'],
          "RECURSIVEMATCH lists an unsubscribed parent: %r" % u)
    # RFC 3501 6.3.9: LSUB "%" lists such parents as \Noselect.
    u, t = r.cmd("c10", b'LSUB "" Rm/%')
    check(u == [b'* LSUB (\\Noselect) "/" Rm/a'], "LSUB %%: %r" % u)
    u, t = r.cmd("c11", b'LSUB "" Ghost')
    check(u == [b'* LSUB (\\Noselect) "/" Ghost'] or u == [],
          "LSUB without %%: %r" % u)
    u, t = r.cmd("c12", b'LSUB "" Gh%')
    check(u == [b'* LSUB (\\Noselect) "/" Ghost'], "LSUB Gh%%: %r" % u)
    # RFC 6154 3: the SPECIAL-USE selection option.
    u, t = r.cmd("c13", b'LIST (SPECIAL-USE) "" *')
    check(len(u) >= 5 and all(re.search(rb"\\(Archive|Drafts|Junk|Sent|"
                                        rb"Trash)", ln) for ln in u),
          "LIST (SPECIAL-USE) lists special-use mailboxes only: %r" % u)
    u, t = r.cmd("c14", b'LIST (SPECIAL-USE RECURSIVEMATCH) "" *')
    check(t.startswith(b"c14 BAD"), "SPECIAL-USE is no base for "
          "RECURSIVEMATCH")
    # RFC 5182 2.4: SAVE with MIN/MAX alone saves those.
    r.cmd("c15", b"CREATE Cmp")
    for i in range(8):
        r.send(b"c16 APPEND Cmp {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
        r.until("c16")
    r.cmd("c17", b"SELECT Cmp")
    u, t = r.cmd("c18", b"SEARCH RETURN (SAVE MIN) 3:6")
    check(u == [b'* ESEARCH (TAG "c18") MIN 3'], "SAVE MIN: %r" % u)
    u, t = r.cmd("c19", b"FETCH $ (UID)")
    check(u == [b"* 3 FETCH (UID 3)"], "$ after SAVE MIN: %r" % u)
    r.cmd("c20", b"SEARCH RETURN (SAVE MIN MAX) 3:6")
    u, t = r.cmd("c21", b"FETCH $ (UID)")
    check(u == [b"* 3 FETCH (UID 3)", b"* 6 FETCH (UID 6)"],
          "$ after SAVE MIN MAX: %r" % u)
    r.cmd("c22", b"SEARCH RETURN (SAVE MIN COUNT) 3:6")
    u, t = r.cmd("c23", b"FETCH $ (UID)")
    check(len(u) == 4, "$ after SAVE MIN COUNT: %r" % u)
    # RFC 9051 7.1.5: BAD is tagged when the tag can be read.
    r.send(b"c24  NOOP\r\n")
    check(r.line().startswith(b"c24 BAD"), "tagged BAD for a bad command")
    r.send(b"c25\r\n")
    check(r.line().startswith(b"c25 BAD"), "tagged BAD without command")
    # Pedantic (localserve): RFC 7162 mod-sequence-value is at least 1.
    u, t = r.cmd("c26", b"FETCH 1 (FLAGS) (CHANGEDSINCE 0)")
    check(t.startswith(b"c26 BAD"), "CHANGEDSINCE 0 in pedantic mode")
    # RFC 9051 7.4.1: each EXPUNGE renumbers; another session sees the
    # same numbers.
    o = Raw()
    o.line()
    o.cmd("o1", b"LOGIN mox@localhost moxmoxmox")
    o.cmd("o2", b"SELECT Cmp")
    r.cmd("c27", b"STORE 2,4,5,7 +FLAGS.SILENT (\\Deleted)")
    u, t = r.cmd("c28", b"EXPUNGE")
    check(u == [b"* 2 EXPUNGE", b"* 3 EXPUNGE", b"* 3 EXPUNGE",
                b"* 4 EXPUNGE"], "EXPUNGE numbering: %r" % u)
    u, t = o.cmd("o3", b"NOOP")
    check([ln for ln in u if ln.endswith(b"EXPUNGE")] ==
          [b"* 2 EXPUNGE", b"* 3 EXPUNGE", b"* 3 EXPUNGE", b"* 4 EXPUNGE"],
          "unsolicited EXPUNGE numbering: %r" % u)
    u, t = r.cmd("c29", b"MOVE 1,3 Inbox/Cmp")
    check(u[1:] == [b"* 1 EXPUNGE", b"* 2 EXPUNGE"], "MOVE EXPUNGE "
          "numbering: %r" % u)
    # CLOSE expunges silently; UNSELECT does not expunge.
    r.cmd("c30", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
    u, t = r.cmd("c31", b"UNSELECT")
    check(u == [] and t.startswith(b"c31 OK"), "UNSELECT")
    u, t = r.cmd("c32", b"STATUS Cmp (MESSAGES DELETED)")
    check(u == [b"* STATUS Cmp (MESSAGES 2 DELETED 1)"],
          "UNSELECT leaves \\Deleted: %r" % u)
    r.cmd("c33", b"SELECT Cmp")
    u, t = r.cmd("c34", b"CLOSE")
    check(u == [] and t.startswith(b"c34 OK"), "CLOSE without EXPUNGE "
          "responses: %r" % u)
    u, t = r.cmd("c35", b"STATUS Cmp (MESSAGES DELETED)")
    check(u == [b"* STATUS Cmp (MESSAGES 1 DELETED 0)"],
          "CLOSE expunged: %r" % u)
    u, t = o.cmd("o4", b"NOOP")
    check(b"* 1 EXPUNGE" in u, "CLOSE expunge seen by the other session")
    # RFC 9051 9: "*" and "1:*" in an empty mailbox are BAD for message
    # numbers, match nothing for UIDs.
    # RFC 9051 7.1: nothing can be changed in a read-only mailbox.
    u, t = r.cmd("c35b", b"EXAMINE Cmp")
    check(b"* OK [PERMANENTFLAGS ()] x" in u, "EXAMINE: PERMANENTFLAGS ()")
    u, t = r.cmd("c35c", b"SELECT Cmp")
    check(any(ln.startswith(b"* OK [PERMANENTFLAGS (\\Seen ") and
              b"\\*)]" in ln for ln in u), "SELECT: PERMANENTFLAGS")
    # RFC 9051 7.3.5: a keyword new to the mailbox comes with FLAGS, in
    # this session and in others.
    o.cmd("o5", b"SELECT Cmp")
    u, t = r.cmd("c35d", b"STORE 1 +FLAGS (newkeyword)")
    check(len(u) == 3 and u[0].startswith(b"* FLAGS (\\Seen ") and
          u[0].endswith(b" newkeyword)") and
          u[1].startswith(b"* OK [PERMANENTFLAGS (") and
          u[2].endswith(b"FLAGS (newkeyword))"),
          "FLAGS for a new keyword: %r" % u)
    u, t = o.cmd("o6", b"NOOP")
    check(any(ln.startswith(b"* FLAGS (") and ln.endswith(b" newkeyword)")
              for ln in u), "FLAGS for a new keyword in another session")
    u, t = r.cmd("c35e", b"STORE 1 +FLAGS (newkeyword)")
    check(len(u) == 1, "no FLAGS for a known keyword: %r" % u)
    r.cmd("c36", b"CREATE Empty")
    r.cmd("c37", b"SELECT Empty")
    for i, cmd in enumerate((b"FETCH * (FLAGS)", b"FETCH 1:* (FLAGS)",
                             b"STORE * +FLAGS (\\Seen)", b"COPY 1:* Cmp")):
        u, t = r.cmd("e%d" % i, cmd)
        check(t.startswith(b"e%d BAD" % i), "empty mailbox: %r BAD" % cmd)
    for i, cmd in enumerate((b"UID FETCH * (FLAGS)", b"UID FETCH 1:* (FLAGS)",
                             b"UID STORE 1:* +FLAGS (\\Seen)",
                             b"UID EXPUNGE 1:*")):
        u, t = r.cmd("f%d" % i, cmd)
        check(u == [] and t.startswith(b"f%d OK" % i),
              "empty mailbox: %r OK" % cmd)
    # A deleted selected mailbox: its messages are expunged in this and
    # in other sessions (held back during FETCH, RFC 9051 7.4.1).
    r.cmd("h1", b"CREATE Doomed")
    for i in range(2):
        r.send(b"h2 APPEND Doomed {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
        r.until("h2")
    r.cmd("h3", b"SELECT Doomed")
    o.cmd("o7", b"SELECT Doomed")
    u, t = r.cmd("h4", b"DELETE Doomed")
    check(u == [b"* 1 EXPUNGE", b"* 1 EXPUNGE"] and t.startswith(b"h4 OK"),
          "DELETE of the selected mailbox: %r" % u)
    u, t = o.cmd("o8", b"FETCH 1:2 (UID)")
    check(not any(b"EXPUNGE" in ln for ln in u), "no EXPUNGE in FETCH")
    u, t = o.cmd("o9", b"NOOP")
    check(u == [b"* 1 EXPUNGE", b"* 1 EXPUNGE"], "selected mailbox deleted "
          "by another session: %r" % u)
    # spec/imap.md 2: a bad literal announcement is BAD; when it was
    # non-synchronising its data follows at once, so the server closes.
    u, t = r.cmd("g1", b"SELECT {99999999999}")
    check(t.startswith(b"g1 BAD"), "bad synchronising literal is BAD")
    u, t = r.cmd("g2", b"NOOP")
    check(t.startswith(b"g2 OK"), "connection usable after it")
    r.send(b"g3 SELECT {99999999999+}\r\nInbox\r\n")
    ln = r.line()
    try:
        closed = r.line(timeout=5) is None
    except EOFError:
        closed = True
    check(ln.startswith(b"g3 BAD") and closed,
          "bad non-synchronising literal: BAD and close")
    r.close()
    o.close()


SERVE_PORT = 2143


def serve_config(tmp):
    """A `mox serve` config on IP (ports 2xxx), where the per-IP limits
    apply to loopback clients too (unlike localserve)."""
    d = os.path.join(tmp, "srv")
    r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP, "-initonly"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None
    conf = os.path.join(d, "mox.conf")
    with open(conf) as f:
        text = f.read()
    text = re.sub(r"Port: 1(\d\d\d)", lambda m: "Port: 2" + m.group(1), text)
    text = text.replace("LogLevel: traceauth", "LogLevel: debug")
    text = re.sub(r"User: \d+", "User: 65534", text)
    with open(conf, "w") as f:
        f.write(text)
    return d


def greet(port=SERVE_PORT):
    r = Raw(port)
    return r, r.line()


def test_limits(tmp):
    """spec/imap.md 2 and 2.2 against `mox serve`: slow mode after the
    3rd failed login (reads wait 1 s, replies come a byte a second, a
    successful login ends it), 30 open connections, 10 failed logins and
    300 connections per minute from one IP."""
    d = serve_config(tmp)
    if d is None or os.getuid() != 0:
        print("skip: mox serve tests need root (serve binds as root)")
        return
    subprocess.run(["chown", "-R", "65534:65534", d], check=True)
    os.chmod(tmp, 0o755)
    log = open(os.path.join(tmp, "serve.log"), "w")
    # The counters use fixed minutes of the wall clock: all of this test
    # (about 20 s) runs in one.
    if time.time() % 60 > 25:
        time.sleep(60.5 - time.time() % 60)
    p = subprocess.Popen([MOX, "-config", os.path.join(d, "mox.conf"),
                          "serve"], stdout=log, stderr=subprocess.STDOUT)
    conns = []
    try:
        check(wait_port(SERVE_PORT), "mox serve listens")
        r, g = greet()
        check(g.startswith(b"* OK [CAPABILITY "), "serve greeting")
        times = []
        for i in range(3):
            t0 = time.time()
            u, t = r.cmd("f%d" % i, b"LOGIN mox@localhost wrong")
            times.append(time.time() - t0)
        check(t.startswith(b"f2 NO [AUTHENTICATIONFAILED]") and
              times[0] < 0.8 and times[2] >= 0.9,
              "third failure answered late: %r" % times)
        # The reply "f3 OK NOOP done" would take 17 s: 4 bytes show it.
        t0 = time.time()
        r.send(b"f3 NOOP\r\n")
        got, at = b"", []
        r.s.settimeout(5)
        while len(got) < 4:
            d = r.s.recv(1)
            if not d:
                break
            got += d
            at.append(time.time())
        gaps = [round(at[i] - at[i - 1], 2) for i in range(1, len(at))]
        check(got == b"f3 O" and at[0] - t0 >= 0.9 and min(gaps) >= 0.9,
              "slow mode: 1 s before each read, then a byte a second: "
              "%r %.2f %r" % (got, at[0] - t0 if at else -1, gaps))
        # A successful login ends slow mode: after its 1 s read, the
        # rest of the NOOP reply and the LOGIN reply come at once.
        t0 = time.time()
        u, t = r.cmd("s", b"LOGIN mox@localhost moxmoxmox")
        el = time.time() - t0
        check(u == [b"K NOOP done"] and t.startswith(b"s OK") and el < 4,
              "successful login ends slow mode: %r %r %.2fs" % (u, t, el))
        t0 = time.time()
        u, t = r.cmd("n", b"NOOP")
        el = time.time() - t0
        check(t == b"n OK NOOP done" and el < 0.5,
              "no slow mode after login: %.2fs" % el)
        r.close()
        # 30 open connections (plus none): the 31st is refused.
        for i in range(30):
            c, g = greet()
            conns.append(c)
        c, g = greet()
        check(g == b"* BYE too many open connections from your ip or "
              b"network", "31st concurrent connection refused: %r" % g)
        c.close()
        for c in conns:
            c.close()
        conns = []
        time.sleep(0.5)
        # The login reset the IP's count: 10 failures in this minute.
        for i in range(10):
            r, g = greet()
            r.cmd("g", b"LOGIN mox@localhost wrong")
            r.close()
        c, g = greet()
        check(g == b"* BYE too many auth failures",
              "11th connection after 10 failures refused: %r" % g)
        c.close()
        # Connections so far: wait_port, 1+30+1+10+1 = 44; 300 per minute.
        n, g, seen = 44, b"", set()
        while n < 310:
            c, g = greet()
            c.close()
            n += 1
            if b"rate" in g:
                break
            seen.add(g)
        check(seen == {b"* BYE too many auth failures"} and n == 301 and
              g == b"* BYE connection rate from your ip or network too "
              b"high, slow down please", "connection rate limit: %d %r" %
              (n, g))
    finally:
        for c in conns:
            c.close()
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()


def main():
    tmp = tempfile.mkdtemp(prefix="mox-imap-")
    d = os.path.join(tmp, "ls")
    log = open(os.path.join(tmp, "server.log"), "w")
    p = subprocess.Popen([MOX, "localserve", "-dir", d, "-ip", IP],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        check(wait_port(PORT) and wait_port(TLSPORT), "server listening")
        for t in (test_greeting, test_tls, test_starttls_pipelined,
                  test_sasl, test_session,
                  test_two_sessions, test_multiappend_binary,
                  test_extensions, test_qresync, test_big_fetch,
                  test_compliance):
            try:
                t()
            except Exception as e:  # report and continue
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
    try:
        test_limits(tmp)
    except Exception as e:
        failures.append("test_limits: %r" % e)
        print("FAIL: test_limits", repr(e), flush=True)
    vd = os.path.join(BUILD, "mox-verifydata")
    if os.path.exists(vd):
        r = subprocess.run([vd, d], capture_output=True, text=True)
        check(r.returncode == 0, "mox-verifydata after the test: " +
              r.stdout.strip())
    if failures:
        print("server log:", os.path.join(tmp, "server.log"))
        print("%d failures" % len(failures))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("all ok")


if __name__ == "__main__":
    main()
