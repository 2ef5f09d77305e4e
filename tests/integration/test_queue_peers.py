#!/usr/bin/env python3
"""The outgoing queue against real peers on loopback (spec/queue.md 4-8):
`mox serve` on 127.0.0.9 routes recipient domains to transports
(domains.conf Routes, mox.conf Transports) and the test plays the other
side:
  * a scripted SMTP peer (127.0.0.10, STARTTLS with the localserve
    certificate, PIPELINING, REQUIRETLS after TLS): a 451 to the first
    attempt and success on the retry; a multi-line 550 that must come
    back as a failed DSN in the sender's Inbox with the full reply;
  * nothing listening (127.0.0.11): connection refused, retried at the
    backoff times (shortened by MOX_TEST_QUEUE_BACKOFF_DIVISOR), then
    delivered once a peer listens;
  * REQUIRETLS over a transport without verified TLS: failed DSN 5.7.30;
  * 40 messages for one domain through the scripted peer: sent on reused
    connections, each once, with a 451 and a lost connection in the
    middle; the records claimed ahead keep their first attempt;
  * a private Postfix (127.0.0.12, own config in a temp dir): our queue
    delivers to it over STARTTLS, and it relays a message into our SMTP
    server (STARTTLS too) for the mox account.
Skips (77) when not root (serve drops privileges) or Postfix is missing.
Ends with mox-verifydata."""

import email
import imaplib
import json
import os
import pwd
import shutil
import smtplib
import socket
import socketserver
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
SRC = os.environ.get("MOX_SRCDIR",
                     os.path.join(os.path.dirname(__file__), "..", ".."))
DNSLAB = os.environ.get("DNSLAB", os.path.join(SRC, "..", "shared", "tools",
                                               "dnslab", "dnslab"))
IP = "127.0.0.9"
PEER_IP, REFUSED_IP, PF_IP = "127.0.0.10", "127.0.0.11", "127.0.0.12"
PEER_PORT, REFUSED_PORT, PF_PORT = 2525, 2526, 10025
DIVISOR = 600  # backoff 0.75 s, 1.5 s, 3 s, 6 s, ...
UID = 65534

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def wait_port(ip, port, deadline=15.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((ip, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_for(pred, deadline=30.0, step=0.1):
    end = time.time() + deadline
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


# ---- the scripted peer ----

class Peer:
    def __init__(self, certfile=None, keyfile=None):
        self.ctx = None
        if certfile:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(certfile, keyfile)
        self.lock = threading.Lock()
        self.seen = {}       # rcpt -> number of RCPTs seen
        self.rcpt_times = {}  # rcpt -> [time of each RCPT]
        self.messages = []   # (mailfrom, rcpts, data, tls)
        self.commands = []
        self.conns = 0       # connections accepted


def make_handler(peer):
    class H(socketserver.StreamRequestHandler):
        timeout = 30

        def send(self, s):
            self.wfile.write(s.encode() + b"\r\n")
            self.wfile.flush()

        def handle(self):
            tls = False
            with peer.lock:
                peer.conns += 1
            self.send("220 peer.test ESMTP scripted")
            mailfrom, rcpts = None, []
            while True:
                line = self.rfile.readline(4096)
                if not line:
                    return
                cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                with peer.lock:
                    peer.commands.append(cmd)
                u = cmd.upper()
                if u.startswith("EHLO"):
                    ext = ["peer.test", "PIPELINING", "8BITMIME",
                           "ENHANCEDSTATUSCODES", "SIZE 10000000"]
                    if peer.ctx and not tls:
                        ext.append("STARTTLS")
                    if tls:
                        ext.append("REQUIRETLS")
                    self.send("\r\n".join("250-" + e for e in ext[:-1]) +
                              "\r\n250 " + ext[-1])
                elif u == "STARTTLS" and peer.ctx and not tls:
                    self.send("220 2.0.0 go")
                    self.request = peer.ctx.wrap_socket(self.request,
                                                        server_side=True)
                    self.rfile = self.request.makefile("rb")
                    self.wfile = self.request.makefile("wb")
                    tls = True
                elif u.startswith("MAIL FROM:"):
                    mailfrom, rcpts = cmd[10:].split(" ")[0].strip("<>"), []
                    self.send("250 2.1.0 ok")
                elif u.startswith("RCPT TO:"):
                    rcpt = cmd[8:].strip().strip("<>")
                    lp = rcpt.split("@")[0]
                    with peer.lock:
                        n = peer.seen.get(rcpt, 0) + 1
                        peer.seen[rcpt] = n
                        peer.rcpt_times.setdefault(rcpt, []).append(time.time())
                    if lp.startswith("perm"):
                        self.send("550-5.1.1 no mailbox here by that name\r\n"
                                  "550 5.1.1 second line of the reply")
                    elif lp.startswith("tempthenok") and n == 1:
                        self.send("451 4.3.0 greylisted, try again later")
                    elif lp.startswith("dropfirst") and n == 1:
                        return  # connection lost in the transaction
                    else:
                        rcpts.append(rcpt)
                        self.send("250 2.1.5 ok")
                elif u == "DATA":
                    if not rcpts:
                        self.send("554 5.5.1 no valid recipients")
                        continue
                    self.send("354 go ahead")
                    data = b""
                    while True:
                        l = self.rfile.readline(65536)
                        if not l or l == b".\r\n":
                            break
                        data += l
                    with peer.lock:
                        peer.messages.append((mailfrom, rcpts, data, tls))
                    self.send("250 2.0.0 queued as 1")
                elif u == "RSET":
                    mailfrom, rcpts = None, []
                    self.send("250 2.0.0 ok")
                elif u == "QUIT":
                    self.send("221 2.0.0 bye")
                    return
                else:
                    self.send("500 5.5.2 what")
    return H


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def start_peer(ip, port, peer):
    srv = Server((ip, port), make_handler(peer))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ---- mox ----

TRANSPORTS = """Transports:
	peer:
		SMTP:
			Host: %s
			Port: %d
			STARTTLSInsecureSkipVerify: true
	refused:
		SMTP:
			Host: %s
			Port: %d
			NoSTARTTLS: true
	postfix:
		SMTP:
			Host: %s
			Port: %d
			STARTTLSInsecureSkipVerify: true
""" % (PEER_IP, PEER_PORT, REFUSED_IP, REFUSED_PORT, PF_IP, PF_PORT)

ROUTES = """Routes:
	-
		ToDomain:
			- peer.test
		Transport: peer
	-
		ToDomain:
			- refused.test
		Transport: refused
	-
		ToDomain:
			- batch.test
		Transport: peer
	-
		ToDomain:
			- postfix.test
		Transport: postfix
"""


def submit(to, subject, requiretls=False):
    msg = ("From: <mox@localhost>\r\nTo: <%s>\r\nSubject: %s\r\n"
           "Message-Id: <%s@localhost>\r\n\r\nhello %s\r\n" %
           (to, subject, subject.replace(" ", "-"), to))
    with smtplib.SMTP(IP, 1587, timeout=20) as c:
        opts = []
        if requiretls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c.starttls(context=ctx)
            opts = ["REQUIRETLS"]
        c.login("mox@localhost", "moxmoxmox")
        return c.sendmail("mox@localhost", [to], msg, mail_options=opts)


def imap_all():
    out = []
    with imaplib.IMAP4(IP, 1143, timeout=20) as m:
        m.login("mox@localhost", "moxmoxmox")
        typ, boxes = m.list()
        for b in boxes:
            name = b.decode().split(' "/" ')[-1].strip('"')
            m.select('"%s"' % name, readonly=True)
            typ, data = m.uid("SEARCH", None, "ALL")
            for uid in data[0].split():
                typ, d = m.uid("FETCH", uid, "(BODY.PEEK[])")
                out.append((name, d[0][1]))
        m.logout()
    return out


def find_msg(pred):
    for box, raw in imap_all():
        msg = email.message_from_bytes(raw)
        if pred(msg, raw):
            return box, raw
    return None


def attempts_of(d, lp):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(d, "queue", "index.db"),
                         uri=True, timeout=10)
    try:
        row = db.execute("SELECT attempts, results FROM msg WHERE"
                         " recipient_localpart = ?", (lp,)).fetchone()
    finally:
        db.close()
    if row is None:
        return None
    return row[0], [r["Start"] for r in json.loads(row[1] or "[]")]


# ---- postfix ----

def postfix_start(tmp, cert, key):
    D = os.path.join(tmp, "pf")
    C = os.path.join(D, "conf")
    for sub in ("conf", "data", "log", "mail"):
        os.makedirs(os.path.join(D, sub), exist_ok=True)
    os.makedirs(os.path.join(D, "queue"), exist_ok=True)
    for p in (D, C, os.path.join(D, "queue")):
        os.chmod(p, 0o755)
    pfu = pwd.getpwnam("postfix")
    os.chown(os.path.join(D, "data"), pfu.pw_uid, pfu.pw_gid)
    os.chmod(os.path.join(D, "mail"), 0o777)
    shutil.copy(cert, os.path.join(C, "cert.pem"))
    shutil.copy(key, os.path.join(C, "key.pem"))
    os.chmod(os.path.join(C, "key.pem"), 0o600)
    with open(os.path.join(C, "main.cf"), "w") as f:
        f.write("""compatibility_level = 3.6
queue_directory = {D}/queue
data_directory = {D}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {D}/log/postfix.log
maillog_file_prefixes = {D}/log
myhostname = mx.postfix.test
mydomain = postfix.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
smtpd_banner = $myhostname ESMTP postfix-peer
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
disable_dns_lookups = yes
virtual_mailbox_domains = postfix.test
virtual_mailbox_base = {D}/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{uid}
virtual_minimum_uid = 100
relayhost = [{moxip}]:1025
smtp_tls_security_level = may
smtp_tls_loglevel = 1
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_cert_file = {C}/cert.pem
smtpd_tls_key_file = {C}/key.pem
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
""".format(D=D, C=C, ip=PF_IP, uid=UID, moxip=IP))
    with open(os.path.join(C, "master.cf"), "w") as f:
        f.write("%s:%d inet n - n - - smtpd\n" % (PF_IP, PF_PORT) + """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
""")
    r = subprocess.run(["/usr/sbin/postfix", "-c", C, "check"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return D, "postfix check: " + r.stdout + r.stderr
    r = subprocess.run(["/usr/sbin/postfix", "-c", C, "start"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return D, "postfix start: " + r.stdout + r.stderr
    if not wait_port(PF_IP, PF_PORT, 15):
        return D, "postfix does not listen"
    return D, None


def postfix_stop(D):
    pidf = os.path.join(D, "queue", "pid", "master.pid")
    try:
        pid = int(open(pidf).read().strip())
    except (OSError, ValueError):
        return
    subprocess.run(["/usr/sbin/postfix", "-c", os.path.join(D, "conf"), "stop"],
                   capture_output=True, timeout=60)
    end = time.time() + 15
    while time.time() < end:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    os.kill(pid, 9)


def pf_log(D):
    try:
        with open(os.path.join(D, "log", "postfix.log")) as f:
            return f.read()
    except OSError:
        return ""


def main():
    if os.getuid() != 0:
        print("not root (mox serve and postfix need it): skipping")
        sys.exit(77)
    if not os.path.exists("/usr/sbin/postfix"):
        print("postfix not installed: skipping")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="mox-queue-peers-")
    os.chmod(tmp, 0o755)
    d = os.path.join(tmp, "conf")
    conf = os.path.join(d, "mox.conf")
    logp = os.path.join(tmp, "server.log")
    p = None
    servers = []
    pfdir = None
    lab = os.path.join(tmp, "dns")
    try:
        # Our SMTP server checks that a MAIL FROM domain can receive mail
        # (spec/smtp.md 6): postfix.test gets an address in a DNS lab.
        zdir = os.path.join(tmp, "zones")
        os.makedirs(zdir)
        with open(os.path.join(zdir, "postfix.test.zone"), "w") as f:
            f.write("$ORIGIN postfix.test.\n; dnslab: unsigned\n"
                    "@ A %s\n" % PF_IP)
        r = subprocess.run([DNSLAB, "start", lab, zdir], capture_output=True,
                           text=True, timeout=300)
        check(r.returncode == 0, "dnslab started: " + r.stderr[-300:])
        resolver = r.stdout.strip()
        r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP,
                            "-initonly"], capture_output=True, text=True)
        check(r.returncode == 0, "config written: " + r.stderr)
        with open(conf) as f:
            text = f.read()
        text = "\n".join(("User: %d" % UID) if l.startswith("User:") else l
                         for l in text.split("\n"))
        if resolver:
            text = text.replace("Hostname: localhost\n", "Hostname: "
                                "localhost\nDNSResolvers:\n\t- %s\n" %
                                resolver, 1)
        with open(conf, "w") as f:
            f.write(text.rstrip("\n") + "\n" + TRANSPORTS)
        with open(os.path.join(d, "domains.conf"), "a") as f:
            f.write(ROUTES)
        r = subprocess.run([MOX, "-config", conf, "config", "test"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "config with transports and routes: " +
              r.stdout + r.stderr)

        cert, key = os.path.join(d, "localhost.crt"), os.path.join(d, "localhost.key")
        peer = Peer(cert, key)
        servers.append(start_peer(PEER_IP, PEER_PORT, peer))
        pfdir, err = postfix_start(tmp, cert, key)
        check(err is None, "private postfix started: %s" % err)

        env = dict(os.environ, MOX_TEST_QUEUE_BACKOFF_DIVISOR=str(DIVISOR))
        log = open(logp, "w")
        p = subprocess.Popen([MOX, "-config", conf, "serve"], stdout=log,
                             stderr=subprocess.STDOUT, env=env)
        ok = wait_port(IP, 1587)
        end = time.time() + 20
        while ok and time.time() < end:
            with open(logp) as f:
                if "ready to serve" in f.read():
                    break
            time.sleep(0.05)
        check(ok, "mox serve ready")

        # 1. 451 on the first attempt, delivered on the retry, over TLS.
        check(submit("tempthenok@peer.test", "temp then ok") == {},
              "submitted tempthenok")
        got = wait_for(lambda: [m for m in peer.messages
                                if "tempthenok@peer.test" in m[1]], 20)
        check(bool(got), "delivered after a 451")
        if got:
            mailfrom, rcpts, data, tls = got[0]
            check(mailfrom == "mox@localhost", "MAIL FROM kept")
            check(tls, "delivered over STARTTLS")
            check(b"Subject: temp then ok" in data, "message data arrived")
            t = peer.rcpt_times["tempthenok@peer.test"]
            gap = t[1] - t[0] if len(t) >= 2 else -1
            check(len(t) == 2 and 0.4 <= gap <= 2.5,
                  "retry after the first backoff interval (%.2f s)" % gap)
        check(wait_for(lambda: attempts_of(d, "tempthenok") is None, 10)
              is not None, "delivered message left the queue")

        # 2. 5xx: failed DSN with the full reply in the sender's Inbox.
        check(submit("perm@peer.test", "perm fail") == {}, "submitted perm")
        found = wait_for(lambda: find_msg(
            lambda m, raw: m.get("Subject") == "mail delivery failed" and
            b"perm@peer.test" in raw), 20, 0.3)
        check(found is not None, "failed DSN for a 550")
        if found:
            box, raw = found
            check(box == "Inbox", "DSN in Inbox")
            text = raw.decode("utf-8", "replace")
            check("550-5.1.1 no mailbox here by that name" in text and
                  "550 5.1.1 second line of the reply" in text,
                  "full multi-line reply in the DSN text")
            check("Diagnostic-Code: smtp; 550 5.1.1 no mailbox here by that "
                  "name 5.1.1 second line of the reply" in text,
                  "Diagnostic-Code with all lines")
            check("Status: 5.1.1" in text and "Action: failed" in text,
                  "Status/Action")
            check("Remote-MTA: dns;%s" % PEER_IP in text, "Remote-MTA")
        check(peer.seen.get("perm@peer.test") == 1, "no retry after 5xx")

        # 3. Connection refused: retried on schedule, then delivered.
        t0 = time.time()
        check(submit("later@refused.test", "refused first") == {},
              "submitted to a closed port")
        a = wait_for(lambda: (lambda x: x if x and x[0] >= 4 else None)(
            attempts_of(d, "later")), 15)
        check(a is not None, "4 attempts after connection refused")
        if a:
            starts = [s / 1e9 for s in a[1]]
            gaps = [round(starts[i + 1] - starts[i], 2)
                    for i in range(len(starts) - 1)]
            want = [0.75, 1.5, 3.0]
            check(all(abs(g - w) <= 0.7 for g, w in zip(gaps, want)),
                  "attempt gaps follow the backoff: %r ~ %r" % (gaps, want))
        late = Peer()
        servers.append(start_peer(REFUSED_IP, REFUSED_PORT, late))
        got = wait_for(lambda: late.messages, 15)
        check(bool(got), "delivered once the peer listens (after %.1f s)" %
              (time.time() - t0))
        check(got and not got[0][3], "NoSTARTTLS transport: plaintext")

        # 4. REQUIRETLS through a transport without verified TLS.
        check(submit("rtls@peer.test", "requiretls", requiretls=True) == {},
              "submitted with REQUIRETLS")
        found = wait_for(lambda: find_msg(
            lambda m, raw: m.get("Subject") == "mail delivery failed" and
            b"rtls@peer.test" in raw), 20, 0.3)
        check(found is not None, "REQUIRETLS failure DSN")
        if found:
            text = found[1].decode("utf-8", "replace")
            check("5.7.30" in text, "DSN names 5.7.30")
        check("rtls@peer.test" not in peer.seen,
              "REQUIRETLS message not sent to the unverified peer")

        # 5. Many messages for one destination (spec/queue.md 7): sent
        # one after the other on a reused connection, claimed and retired
        # in groups. A 451 in the middle ends the connection, a lost
        # connection another; what was claimed but not sent must come
        # back without a counted attempt, and nothing is sent twice.
        q = [MOX, "-config", conf, "queue"]
        r = subprocess.run(q + ["holdrules", "add", "-recipientdom",
                                "batch.test"], capture_output=True, text=True)
        check(r.returncode == 0, "hold rule for batch.test: " + r.stderr)
        nbatch = 40
        rcpts = ["b%02d@batch.test" % i for i in range(nbatch)]
        rcpts[20] = "tempthenok-b20@batch.test"
        rcpts[30] = "dropfirst-b30@batch.test"
        for i, rc in enumerate(rcpts):
            if submit(rc, "batch %d" % i) != {}:
                check(False, "submitted %s" % rc)
        conns0 = peer.conns
        rules = subprocess.run(q + ["holdrules", "list"], capture_output=True,
                               text=True).stdout
        for ln in rules.split("\n"):
            if "batch.test" in ln and ln.strip().startswith("id "):
                subprocess.run(q + ["holdrules", "remove",
                                    ln.split()[1].rstrip(":")],
                               capture_output=True)
        subprocess.run(q + ["unhold"], capture_output=True)

        def batch_sent():
            with peer.lock:
                got = [r for m in peer.messages for r in m[1]
                       if r.endswith("@batch.test")]
            return got if len(set(got)) == nbatch else None
        got = wait_for(batch_sent, 30)
        check(got is not None, "all %d batch messages delivered" % nbatch)
        time.sleep(1)
        with peer.lock:
            sent = [r for m in peer.messages for r in m[1]
                    if r.endswith("@batch.test")]
            conns = peer.conns - conns0
        check(len(sent) == nbatch, "each batch message sent once (%d sends)"
              % len(sent))
        check(conns <= 6, "batch over few connections (%d)" % conns)
        check(wait_for(lambda: attempts_of(d, "b39") is None, 10) is not None,
              "batch messages left the queue")
        attempts = {}
        with open(logp) as f:
            for ln in f:
                if 'm="delivered message"' in ln and "domain=batch.test" in ln:
                    kv = dict(w.split("=", 1) for w in ln.split()
                              if "=" in w and not w.startswith('m="'))
                    attempts[kv.get("rcpt")] = kv.get("attempt")
        retried = ("tempthenok-b20", "dropfirst-b30")
        check(all(attempts.get(r) == "2" for r in retried),
              "the 451 and the lost connection were retried: %r" %
              [attempts.get(r) for r in retried])
        once = [r.split("@")[0] for r in rcpts if r.split("@")[0]
                not in retried]
        check(all(attempts.get(r) == "1" for r in once),
              "every other batch message delivered at its first attempt: %r" %
              sorted((r, attempts.get(r)) for r in once
                     if attempts.get(r) != "1"))

        # 6. Postfix: our queue delivers over STARTTLS.
        if pfdir and err is None:
            check(submit("user@postfix.test", "to postfix") == {},
                  "submitted for postfix")
            newdir = os.path.join(pfdir, "mail", "box", "new")

            def pf_got():
                try:
                    for fn in os.listdir(newdir):
                        with open(os.path.join(newdir, fn), "rb") as f:
                            data = f.read()
                        if b"Subject: to postfix" in data:
                            return data
                except OSError:
                    pass
                return None
            data = wait_for(pf_got, 30, 0.2)
            check(data is not None, "postfix stored our message")
            if data:
                check(b"(using TLS" in data, "postfix received it over TLS")
                check(b"DKIM-Signature:" in data, "DKIM-signed on the wire")

            # 7. Postfix relays into our SMTP server.
            msg = ("From: <someone@postfix.test>\r\nTo: <mox@localhost>\r\n"
                   "Subject: via postfix\r\nMessage-Id: <vp@postfix.test>\r\n"
                   "\r\nrelayed by postfix\r\n")
            with smtplib.SMTP(PF_IP, PF_PORT, timeout=20) as c:
                refused = c.sendmail("someone@postfix.test", ["mox@localhost"],
                                     msg)
            check(refused == {}, "postfix accepted mail for mox@localhost")
            found = wait_for(lambda: find_msg(
                lambda m, raw: m.get("Subject") == "via postfix"), 40, 0.5)
            check(found is not None, "postfix relayed into our server")
            if found:
                check(b"relayed by postfix" in found[1], "body intact")
                check(b"mx.postfix.test" in found[1],
                      "our Received names postfix's EHLO")
            pl = pf_log(pfdir)
            check("TLS connection established to %s" % IP in pl or
                  "TLS connection established to" in pl,
                  "postfix used STARTTLS towards us")
    finally:
        if p is not None:
            p.terminate()
            try:
                rc = p.wait(timeout=20)
                check(rc == 0, "server stopped cleanly (exit %d)" % rc)
            except subprocess.TimeoutExpired:
                check(False, "server stops on SIGTERM")
                p.kill()
                p.wait()
        for s in servers:
            s.shutdown()
            s.server_close()
        if pfdir:
            postfix_stop(pfdir)
        subprocess.run([DNSLAB, "stop", lab], capture_output=True, timeout=60)
    vd = os.path.join(BUILD, "mox-verifydata")
    r = subprocess.run([vd, d], capture_output=True, text=True)
    check(r.returncode == 0, "mox-verifydata: " + r.stdout.strip())
    if failures:
        print("server log:", logp)
        with open(logp) as f:
            print("".join(l for l in f.readlines()
                          if "pkg=queue" in l or "l=error" in l)[-6000:])
        if pfdir:
            print("postfix log tail:\n" + pf_log(pfdir)[-3000:])
        print("%d failures" % len(failures))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("all ok")


if __name__ == "__main__":
    main()
