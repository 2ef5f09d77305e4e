#!/usr/bin/env python3
"""The queue's recipient TLS policy against real DNSSEC and real TLS peers
(spec/queue.md 5.1-5.9): `mox serve` on 127.0.0.19 resolves through a
dnslab (../shared/tools/dnslab) with a signed zone qtls.example and an
unsigned zone qtlsu.example made here; scripted SMTP peers with STARTTLS
listen on port 25 of 127.0.0.13 (DANE-EE TLSA matches its certificate),
127.0.0.14 (wrong TLSA) and 127.0.0.15 (a certificate from a CA made
here, for MTA-STS); MTA-STS policies are served over HTTPS on
127.0.0.20, reached through the test-only MOX_TEST_MTASTS_CA and
MOX_TEST_MTASTS_CONNECT_TO. Cases:
  (a) DANE-EE: delivered over STARTTLS; wrong TLSA: not delivered,
      retried, "dane-no-match" recorded in the attempt results;
  (b) MTA-STS enforce with a matching MX and certificate: delivered;
      MX not in the policy: not delivered;
  (c) null MX: failed DSN with 5.1.10;
  (d) REQUIRETLS to the DANE host: delivered with REQUIRETLS on MAIL
      FROM; to an unsigned domain: failed DSN 5.7.30;
plus the TLS report results in tlsrptresult.db and the policy cached in
mtasts.db. Skips (77) when not root, without dnslab, certtool or port 25.
Ends with mox-verifydata."""

import email
import http.server
import imaplib
import json
import os
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
SRC = os.environ.get("MOX_SRCDIR",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "..", ".."))
MOX = os.path.join(BUILD, "mox")
DNSLAB = os.path.join(SRC, "..", "shared", "tools", "dnslab", "dnslab")
LABTLS = os.path.join(SRC, "..", "shared", "tools", "dnslab", "example", "tls")
IP = "127.0.0.19"
DANE_IP, BADDANE_IP, STS_IP, HTTPS_IP = ("127.0.0.13", "127.0.0.14",
                                         "127.0.0.15", "127.0.0.20")
HTTPS_PORT = 8443
DIVISOR = 600  # backoff 0.75 s, 1.5 s, 3 s, ...
UID = 65534

# The DANE-EE record of dnslab's mail.mox.example key (see mox.example.zone).
GOOD_TLSA = "3 1 1 0d799cd4eaf5e7c007dcc6ccfcc089336cee6c46921c69f483dd9dd5228e37db"
BAD_TLSA = "3 1 1 " + "ab" * 32

ZONE = """; dnslab: signed
$ORIGIN qtls.example.
$TTL 300
dane        MX  10 mx1
mx1         A   {dane}
_25._tcp.mx1 TLSA {good}
danebad     MX  10 mx2
mx2         A   {bad}
_25._tcp.mx2 TLSA {badtlsa}
sts         MX  10 mx3
stsbad      MX  10 mx3
mx3         A   {sts}
_mta-sts.sts    TXT "v=STSv1; id=sts1"
_mta-sts.stsbad TXT "v=STSv1; id=stsbad1"
null        MX  0 .
""".format(dane=DANE_IP, bad=BADDANE_IP, sts=STS_IP, good=GOOD_TLSA,
           badtlsa=BAD_TLSA)

UZONE = """; dnslab: unsigned
$ORIGIN qtlsu.example.
$TTL 300
plain       MX  10 mx
mx          A   {dane}
""".format(dane=DANE_IP)

POLICY = {
    "mta-sts.sts.qtls.example":
        "version: STSv1\r\nmode: enforce\r\nmx: mx3.qtls.example\r\n"
        "max_age: 86400\r\n",
    "mta-sts.stsbad.qtls.example":
        "version: STSv1\nmode: enforce\nmx: *.elsewhere.example\n"
        "max_age: 86400\n",
}

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


# ---- peers ----

class Peer:
    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.lock = threading.Lock()
        self.messages = []  # (mail command, rcpts, data, tls)
        self.rcpts = []
        self.handshakes = 0


def make_handler(peer):
    class H(socketserver.StreamRequestHandler):
        timeout = 30

        def send(self, s):
            self.wfile.write(s.encode() + b"\r\n")
            self.wfile.flush()

        def handle(self):
            tls = False
            self.send("220 peer.qtls.example ESMTP test")
            mail, rcpts = None, []
            while True:
                try:
                    line = self.rfile.readline(4096)
                except (OSError, ssl.SSLError):
                    return
                if not line:
                    return
                cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                u = cmd.upper()
                if u.startswith("EHLO"):
                    ext = ["peer.qtls.example", "PIPELINING", "8BITMIME",
                           "ENHANCEDSTATUSCODES", "SMTPUTF8"]
                    ext.append("REQUIRETLS" if tls else "STARTTLS")
                    self.send("\r\n".join("250-" + e for e in ext[:-1]) +
                              "\r\n250 " + ext[-1])
                elif u == "STARTTLS" and not tls:
                    self.send("220 2.0.0 go")
                    try:
                        self.request = peer.ctx.wrap_socket(
                            self.request, server_side=True)
                    except (OSError, ssl.SSLError):
                        return
                    with peer.lock:
                        peer.handshakes += 1
                    self.rfile = self.request.makefile("rb")
                    self.wfile = self.request.makefile("wb")
                    tls = True
                elif u.startswith("MAIL FROM:"):
                    mail, rcpts = cmd, []
                    self.send("250 2.1.0 ok")
                elif u.startswith("RCPT TO:"):
                    r = cmd[8:].strip().strip("<>")
                    with peer.lock:
                        peer.rcpts.append(r)
                    rcpts.append(r)
                    self.send("250 2.1.5 ok")
                elif u == "DATA":
                    self.send("354 go ahead")
                    data = b""
                    while True:
                        l = self.rfile.readline(65536)
                        if not l or l == b".\r\n":
                            break
                        data += l
                    with peer.lock:
                        peer.messages.append((mail, rcpts, data, tls))
                    self.send("250 2.0.0 queued")
                elif u == "RSET":
                    mail, rcpts = None, []
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


def start_peer(ip, peer):
    srv = Server((ip, 25), make_handler(peer))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class PolicyHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        body = POLICY.get(host)
        if self.path != "/.well-known/mta-sts.txt" or body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start_https(cert, key):
    srv = http.server.ThreadingHTTPServer((HTTPS_IP, HTTPS_PORT),
                                          PolicyHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ---- certificates ----

def certs(tmp):
    """A CA, a certificate for mx3.qtls.example and one for the policy
    hosts. Returns (ca, mxcert, mxkey, webcert, webkey) or None."""
    def run(*args):
        return subprocess.run(["certtool"] + list(args), capture_output=True,
                              text=True).returncode == 0
    p = lambda n: os.path.join(tmp, n)
    with open(p("ca.tmpl"), "w") as f:
        f.write('cn = "qtls test ca"\nca\ncert_signing_key\n'
                'expiration_days = 2\n')
    with open(p("mx.tmpl"), "w") as f:
        f.write('cn = "mx3.qtls.example"\ndns_name = mx3.qtls.example\n'
                'tls_www_server\nencryption_key\nsigning_key\n'
                'expiration_days = 2\n')
    with open(p("web.tmpl"), "w") as f:
        f.write('cn = "mta-sts.sts.qtls.example"\n'
                'dns_name = mta-sts.sts.qtls.example\n'
                'dns_name = mta-sts.stsbad.qtls.example\n'
                'tls_www_server\nencryption_key\nsigning_key\n'
                'expiration_days = 2\n')
    ok = run("--generate-privkey", "--key-type=ecdsa", "--outfile", p("ca.key"))
    ok = ok and run("--generate-self-signed", "--load-privkey", p("ca.key"),
                    "--template", p("ca.tmpl"), "--outfile", p("ca.crt"))
    for n in ("mx", "web"):
        ok = ok and run("--generate-privkey", "--key-type=ecdsa", "--outfile",
                        p(n + ".key"))
        ok = ok and run("--generate-certificate", "--load-privkey",
                        p(n + ".key"), "--load-ca-certificate", p("ca.crt"),
                        "--load-ca-privkey", p("ca.key"), "--template",
                        p(n + ".tmpl"), "--outfile", p(n + ".crt"))
    if not ok:
        return None
    return (p("ca.crt"), p("mx.crt"), p("mx.key"), p("web.crt"), p("web.key"))


# ---- mox ----

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


def find_dsn(rcpt):
    with imaplib.IMAP4(IP, 1143, timeout=20) as m:
        m.login("mox@localhost", "moxmoxmox")
        m.select("Inbox", readonly=True)
        typ, data = m.uid("SEARCH", None, "ALL")
        for uid in data[0].split():
            typ, d = m.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = d[0][1]
            msg = email.message_from_bytes(raw)
            if msg.get("Subject") == "mail delivery failed" and \
                    rcpt.encode() in raw:
                return raw.decode("utf-8", "replace")
    return None


def queue_row(d, lp):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(d, "queue",
                                                          "index.db"),
                         uri=True, timeout=10)
    try:
        row = db.execute("SELECT attempts, results FROM msg WHERE"
                         " recipient_localpart = ?", (lp,)).fetchone()
    finally:
        db.close()
    if row is None:
        return None
    return row[0], json.loads(row[1] or "[]")


def db_rows(path, sql):
    if not os.path.exists(path):
        return []
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def main():
    if os.getuid() != 0:
        print("not root (mox serve and port 25 need it): skipping")
        sys.exit(77)
    if not os.access(DNSLAB, os.X_OK) or shutil.which("certtool") is None:
        print("no dnslab or certtool: skipping")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="mox-queue-tls-")
    os.chmod(tmp, 0o755)
    labdir = os.path.join(tmp, "dns")
    d = os.path.join(tmp, "conf")
    conf = os.path.join(d, "mox.conf")
    logp = os.path.join(tmp, "server.log")
    p = None
    servers = []
    try:
        zones = os.path.join(tmp, "zones")
        os.makedirs(zones)
        with open(os.path.join(zones, "qtls.example.zone"), "w") as f:
            f.write(ZONE)
        with open(os.path.join(zones, "qtlsu.example.zone"), "w") as f:
            f.write(UZONE)
        r = subprocess.run([DNSLAB, "start", labdir,
                            os.path.join(zones, "qtls.example.zone"),
                            os.path.join(zones, "qtlsu.example.zone")],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            print("dnslab did not start: skipping\n" + r.stderr)
            sys.exit(77)
        resolver = r.stdout.strip()
        c = certs(tmp)
        check(c is not None, "certificates made")
        if c is None:
            return
        ca, mxcert, mxkey, webcert, webkey = c

        r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP,
                            "-initonly"], capture_output=True, text=True)
        check(r.returncode == 0, "config written: " + r.stderr)
        shutil.copy(ca, os.path.join(d, "qtlsca.crt"))
        with open(conf) as f:
            text = f.read()
        text = "\n".join(("User: %d" % UID) if l.startswith("User:") else l
                         for l in text.split("\n"))
        text = text.replace("\t\t\t- localhost.crt\n",
                            "\t\t\t- localhost.crt\n\t\t\t- qtlsca.crt\n")
        with open(conf, "w") as f:
            f.write(text.rstrip("\n") + "\nDNSResolvers:\n\t- %s\n" % resolver)

        labcert = os.path.join(LABTLS, "mail-chain.crt")
        labkey = os.path.join(LABTLS, "mail.key")
        dane, baddane = Peer(labcert, labkey), Peer(labcert, labkey)
        sts = Peer(mxcert, mxkey)
        try:
            servers.append(start_peer(DANE_IP, dane))
            servers.append(start_peer(BADDANE_IP, baddane))
            servers.append(start_peer(STS_IP, sts))
            servers.append(start_https(webcert, webkey))
        except OSError as e:
            print("cannot listen on port 25 (%s): skipping" % e)
            sys.exit(77)

        env = dict(os.environ, MOX_TEST_QUEUE_BACKOFF_DIVISOR=str(DIVISOR),
                   MOX_TEST_MTASTS_CA=ca,
                   MOX_TEST_MTASTS_CONNECT_TO="::%s:%d" % (HTTPS_IP,
                                                           HTTPS_PORT))
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

        # (a) DANE-EE over STARTTLS.
        check(submit("a@dane.qtls.example", "dane good") == {},
              "submitted to dane.qtls.example")
        got = wait_for(lambda: [m for m in dane.messages
                                if "a@dane.qtls.example" in m[1]], 20)
        check(bool(got) and got[0][3], "DANE: delivered over STARTTLS")
        check(wait_for(lambda: queue_row(d, "a") is None, 10) is not None,
              "DANE: left the queue")

        # (a) wrong TLSA: handshakes happen, nothing delivered, retried.
        check(submit("b@danebad.qtls.example", "dane bad") == {},
              "submitted to danebad.qtls.example")
        row = wait_for(lambda: (lambda x: x if x and x[0] >= 3 and
                                x[1][-1]["Error"] != "delivering..."
                                else None)(queue_row(d, "b")), 20)
        check(row is not None, "wrong TLSA: retried (3 attempts)")
        if row:
            errs = [x["Error"] for x in row[1]]
            check(all("dane-no-match" in e for e in errs if
                      e != "delivering..."),
                  "wrong TLSA: reason recorded: %r" % errs[-1])
        check(baddane.handshakes >= 1 and not baddane.rcpts,
              "wrong TLSA: TLS tried, no RCPT sent")

        # (b) MTA-STS enforce, MX and certificate match.
        check(submit("c@sts.qtls.example", "sts good") == {},
              "submitted to sts.qtls.example")
        got = wait_for(lambda: [m for m in sts.messages
                                if "c@sts.qtls.example" in m[1]], 20)
        check(bool(got) and got[0][3], "MTA-STS: delivered over STARTTLS")
        pol = db_rows(os.path.join(d, "mtasts.db"),
                      "SELECT domain, record_id, backoff FROM policy")
        check(("sts.qtls.example", "sts1", 0) in pol,
              "MTA-STS: policy cached in mtasts.db: %r" % pol)

        # (b) MX not allowed by the policy: never contacted.
        n_before = len(sts.rcpts)
        check(submit("e@stsbad.qtls.example", "sts bad") == {},
              "submitted to stsbad.qtls.example")
        row = wait_for(lambda: (lambda x: x if x and x[0] >= 2 and
                                x[1][-1]["Error"] != "delivering..."
                                else None)(queue_row(d, "e")), 20)
        check(row is not None, "MTA-STS mismatch: not delivered, retried")
        if row:
            check("does not match mta-sts policy" in row[1][-1]["Error"],
                  "MTA-STS mismatch: reason %r" % row[1][-1]["Error"])
        check("e@stsbad.qtls.example" not in sts.rcpts[n_before:],
              "MTA-STS mismatch: peer not given the message")

        # (c) null MX.
        check(submit("f@null.qtls.example", "null mx") == {},
              "submitted to null.qtls.example")
        dsn = wait_for(lambda: find_dsn("f@null.qtls.example"), 20, 0.3)
        check(dsn is not None, "null MX: failed DSN")
        if dsn:
            check("Status: 5.1.10" in dsn, "null MX: Status 5.1.10")
            check("single dot for mx record" in dsn, "null MX: reason")

        # (d) REQUIRETLS with DANE-verified TLS: passed on.
        check(submit("g@dane.qtls.example", "rtls ok", True) == {},
              "submitted REQUIRETLS to dane.qtls.example")
        got = wait_for(lambda: [m for m in dane.messages
                                if "g@dane.qtls.example" in m[1]], 20)
        check(bool(got) and got[0][3] and
              got[0][0].upper().endswith(" REQUIRETLS"),
              "REQUIRETLS: delivered with REQUIRETLS on MAIL FROM: %r" %
              (got[0][0] if got else None))

        # (d) REQUIRETLS without a verification mechanism: DSN 5.7.30.
        n_before = len(dane.rcpts)
        check(submit("h@plain.qtlsu.example", "rtls none", True) == {},
              "submitted REQUIRETLS to an unsigned domain")
        dsn = wait_for(lambda: find_dsn("h@plain.qtlsu.example"), 20, 0.3)
        check(dsn is not None and "5.7.30" in dsn,
              "REQUIRETLS without DANE/MTA-STS: failed DSN 5.7.30")
        check("h@plain.qtlsu.example" not in dane.rcpts[n_before:],
              "REQUIRETLS: not sent without verified TLS")

        # spec 5.7: TLS report results.
        tr = os.path.join(d, "tlsrptresult.db")
        res = db_rows(tr, "SELECT policy_domain, is_host, policy_type,"
                      " success, failure FROM result")
        det = db_rows(tr, "SELECT policy_domain, result_type, reason,"
                      " receiving_ip FROM detail")
        check(any(r[0] == "mx1.qtls.example" and r[1] == 1 and r[3] >= 1
                  for r in res), "tlsrpt: DANE host success: %r" % res)
        check(any(r[0] == "mx2.qtls.example" and r[4] >= 1 for r in res),
              "tlsrpt: wrong TLSA host failure")
        check(any(r[0] == "mx2.qtls.example" and r[2] == "dane-no-match" and
                  r[3] == BADDANE_IP for r in det),
              "tlsrpt: dane-no-match detail: %r" % det)
        check(any(r[0] == "sts.qtls.example" and r[1] == 0 and r[3] >= 1
                  for r in res), "tlsrpt: sts domain success")
        check(any(r[0] == "stsbad.qtls.example" and
                  r[2] == "mtasts-policy-mx-mismatch" for r in det),
              "tlsrpt: mx mismatch detail")
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
        subprocess.run([DNSLAB, "stop", labdir], capture_output=True)
    vd = os.path.join(BUILD, "mox-verifydata")
    r = subprocess.run([vd, d], capture_output=True, text=True)
    check(r.returncode == 0, "mox-verifydata: " + r.stdout.strip())
    if failures:
        print("server log:", logp)
        with open(logp) as f:
            print("".join(l for l in f.readlines()
                          if "pkg=queue" in l or "l=error" in l)[-8000:])
        print("%d failures" % len(failures))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("all ok")


if __name__ == "__main__":
    main()
