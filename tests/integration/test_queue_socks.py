#!/usr/bin/env python3
"""The Socks transport and DANE details of direct delivery against real
DNSSEC (spec/queue.md 4, 5.3, 5.7; RFC 1928, RFC 7672 2.2.2, RFC 8460
4.3): `mox serve` on 127.0.0.44 (submission, IMAP) resolves through a
dnslab with a signed zone qsocks.example made here. A SOCKS5 proxy written
here listens on 127.0.0.43:1080 (relays, connecting from 127.0.0.43) and
127.0.0.43:1081 (refuses every CONNECT with "not allowed by ruleset"),
and logs the CONNECT targets; a scripted SMTP peer with STARTTLS (dnslab's
mail key, matched by DANE-EE records) listens on 127.0.0.44 port 25.
Cases:
  (a) routed through the Socks transport: the proxy is asked for
      127.0.0.44 port 25, the message arrives over DANE-verified STARTTLS
      with EHLO = RemoteHostname, from the proxy's address;
  (b) through the refusing proxy: a temporary failure, retried, and
      `mox queue list` shows the proxy's refusal as the last error;
  (c) direct to an MX host that is a CNAME: the TLSA record at the
      expanded name (matching) is used before the one at the alias
      (wrong), so the message is delivered;
  (d) wrong TLSA records, through the proxy and direct: TLS results in
      tlsrptresult.db carry the sending IP, the proxy's bound address
      through the proxy and our local address of the connection direct.
Skips (77) when not root, without dnslab or port 25. Ends with
mox-verifydata."""

import json
import os
import selectors
import shutil
import smtplib
import socket
import socketserver
import sqlite3
import ssl
import struct
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
PROXY_IP, PEER_IP = "127.0.0.43", "127.0.0.44"
IP = PEER_IP  # mox serve's listeners (ports 1xxx)
PROXY_PORT, REFUSE_PORT = 1080, 1081
REMOTE_HOSTNAME = "proxy.qsocks.example"
DIVISOR = 600  # backoff 0.75 s, 1.5 s, 3 s, ...
UID = 65534

# The DANE-EE record of dnslab's mail.mox.example key (see mox.example.zone).
GOOD_TLSA = "3 1 1 0d799cd4eaf5e7c007dcc6ccfcc089336cee6c46921c69f483dd9dd5228e37db"
BAD_TLSA = "3 1 1 " + "ab" * 32

ZONE = """; dnslab: signed
$ORIGIN qsocks.example.
$TTL 300
ok          MX  10 mx1
refused     MX  10 mx1
mx1         A   {peer}
_25._tcp.mx1 TLSA {good}
bad         MX  10 mx2
directbad   MX  10 mx2
mx2         A   {peer}
_25._tcp.mx2 TLSA {bad}
cn          MX  10 mxalias
mxalias     CNAME mxreal
mxreal      A   {peer}
_25._tcp.mxreal  TLSA {good}
_25._tcp.mxalias TLSA {bad}
""".format(peer=PEER_IP, good=GOOD_TLSA, bad=BAD_TLSA)

TRANSPORTS = """Transports:
	socks:
		Socks:
			Address: {ip}:{port}
			RemoteIPs:
				- {ip}
			RemoteHostname: {name}
	socksrefused:
		Socks:
			Address: {ip}:{rport}
			RemoteIPs:
				- {ip}
			RemoteHostname: {name}
""".format(ip=PROXY_IP, port=PROXY_PORT, rport=REFUSE_PORT,
           name=REMOTE_HOSTNAME)

ROUTES = """Routes:
	-
		ToDomain:
			- ok.qsocks.example
			- bad.qsocks.example
		Transport: socks
	-
		ToDomain:
			- refused.qsocks.example
		Transport: socksrefused
"""

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


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(srv):
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ---- the SOCKS5 proxy (RFC 1928) ----

class Proxy:
    def __init__(self, refuse):
        self.refuse = refuse
        self.lock = threading.Lock()
        self.targets = []  # (atyp, host, port) of each CONNECT


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise OSError("closed")
        b += d
    return b


def relay(a, b):
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    end = time.time() + 120
    while time.time() < end:
        ev = sel.select(timeout=30)
        if not ev:
            return
        for key, _ in ev:
            try:
                d = key.fileobj.recv(65536)
            except OSError:
                return
            if not d:
                return
            key.data.sendall(d)


def make_proxy_handler(proxy):
    class H(socketserver.BaseRequestHandler):
        def handle(self):
            s = self.request
            s.settimeout(30)
            try:
                ver, n = recv_exact(s, 2)
                methods = recv_exact(s, n)
                if ver != 5 or 0 not in methods:
                    s.sendall(b"\x05\xff")
                    return
                s.sendall(b"\x05\x00")
                ver, cmd, _, atyp = recv_exact(s, 4)
                if atyp == 1:
                    host = socket.inet_ntop(socket.AF_INET, recv_exact(s, 4))
                elif atyp == 4:
                    host = socket.inet_ntop(socket.AF_INET6,
                                            recv_exact(s, 16))
                elif atyp == 3:
                    host = recv_exact(s, recv_exact(s, 1)[0]).decode()
                else:
                    s.sendall(b"\x05\x08\x00\x01" + b"\0" * 6)
                    return
                port = struct.unpack(">H", recv_exact(s, 2))[0]
                with proxy.lock:
                    proxy.targets.append((atyp, host, port))
                if proxy.refuse or cmd != 1:
                    s.sendall(b"\x05\x02\x00\x01" + b"\0" * 6)
                    return
                try:
                    out = socket.create_connection(
                        (host, port), timeout=10,
                        source_address=(PROXY_IP, 0))
                except OSError:
                    s.sendall(b"\x05\x05\x00\x01" + b"\0" * 6)
                    return
                with out:
                    bip, bport = out.getsockname()[:2]
                    s.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(bip) +
                              struct.pack(">H", bport))
                    out.settimeout(None)
                    s.settimeout(None)
                    relay(s, out)
            except OSError:
                return
    return H


# ---- the SMTP peer ----

class Peer:
    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.lock = threading.Lock()
        self.messages = []  # (client ip, ehlo, rcpts, data, tls)
        self.conns = []     # (client ip, ehlo)


def make_peer_handler(peer):
    class H(socketserver.StreamRequestHandler):
        timeout = 30

        def send(self, s):
            self.wfile.write(s.encode() + b"\r\n")
            self.wfile.flush()

        def handle(self):
            client = self.client_address[0]
            tls, ehlo, rcpts = False, None, []
            self.send("220 peer.qsocks.example ESMTP test")
            while True:
                try:
                    line = self.rfile.readline(4096)
                except (OSError, ssl.SSLError):
                    return
                if not line:
                    return
                cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                u = cmd.upper()
                if u.startswith("EHLO "):
                    if ehlo is None:
                        ehlo = cmd[5:].strip()
                        with peer.lock:
                            peer.conns.append((client, ehlo))
                    ext = ["peer.qsocks.example", "PIPELINING", "8BITMIME",
                           "ENHANCEDSTATUSCODES"]
                    if not tls:
                        ext.append("STARTTLS")
                    self.send("\r\n".join("250-" + e for e in ext[:-1]) +
                              "\r\n250 " + ext[-1])
                elif u == "STARTTLS" and not tls:
                    self.send("220 2.0.0 go")
                    try:
                        self.request = peer.ctx.wrap_socket(
                            self.request, server_side=True)
                    except (OSError, ssl.SSLError):
                        return
                    self.rfile = self.request.makefile("rb")
                    self.wfile = self.request.makefile("wb")
                    tls = True
                elif u.startswith("MAIL FROM:"):
                    rcpts = []
                    self.send("250 2.1.0 ok")
                elif u.startswith("RCPT TO:"):
                    rcpts.append(cmd[8:].strip().strip("<>"))
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
                        peer.messages.append((client, ehlo, rcpts, data, tls))
                    self.send("250 2.0.0 queued")
                elif u == "RSET":
                    rcpts = []
                    self.send("250 2.0.0 ok")
                elif u == "QUIT":
                    self.send("221 2.0.0 bye")
                    return
                else:
                    self.send("500 5.5.2 what")
    return H


# ---- mox ----

def submit(to, subject):
    msg = ("From: <mox@localhost>\r\nTo: <%s>\r\nSubject: %s\r\n"
           "Message-Id: <%s@localhost>\r\n\r\nhello %s\r\n" %
           (to, subject, subject.replace(" ", "-"), to))
    with smtplib.SMTP(IP, 1587, timeout=20) as c:
        c.login("mox@localhost", "moxmoxmox")
        return c.sendmail("mox@localhost", [to], msg)


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
    if not os.access(DNSLAB, os.X_OK):
        print("no dnslab: skipping")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="mox-queue-socks-")
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
        with open(os.path.join(zones, "qsocks.example.zone"), "w") as f:
            f.write(ZONE)
        r = subprocess.run([DNSLAB, "start", labdir,
                            os.path.join(zones, "qsocks.example.zone")],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            print("dnslab did not start: skipping\n" + r.stderr)
            sys.exit(77)
        resolver = r.stdout.strip()

        r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP,
                            "-initonly"], capture_output=True, text=True)
        check(r.returncode == 0, "config written: " + r.stderr)
        with open(conf) as f:
            text = f.read()
        text = "\n".join(("User: %d" % UID) if l.startswith("User:") else l
                         for l in text.split("\n"))
        with open(conf, "w") as f:
            f.write(text.rstrip("\n") + "\nDNSResolvers:\n\t- %s\n" %
                    resolver + TRANSPORTS)
        with open(os.path.join(d, "domains.conf"), "a") as f:
            f.write(ROUTES)
        r = subprocess.run([MOX, "-config", conf, "config", "test"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "config with socks transports: " +
              r.stdout + r.stderr)

        peer = Peer(os.path.join(LABTLS, "mail-chain.crt"),
                    os.path.join(LABTLS, "mail.key"))
        proxy, refuser = Proxy(False), Proxy(True)
        try:
            servers.append(serve(Server((PEER_IP, 25),
                                        make_peer_handler(peer))))
        except OSError as e:
            print("cannot listen on port 25 (%s): skipping" % e)
            sys.exit(77)
        servers.append(serve(Server((PROXY_IP, PROXY_PORT),
                                    make_proxy_handler(proxy))))
        servers.append(serve(Server((PROXY_IP, REFUSE_PORT),
                                    make_proxy_handler(refuser))))

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

        # (a) through the proxy.
        check(submit("a@ok.qsocks.example", "via socks") == {},
              "submitted to ok.qsocks.example")
        got = wait_for(lambda: [m for m in peer.messages
                                if "a@ok.qsocks.example" in m[2]], 20)
        check(bool(got), "socks: delivered to the peer")
        if got:
            client, ehlo, _, data, tls = got[0]
            check(tls, "socks: over STARTTLS (DANE through the proxy)")
            check(ehlo == REMOTE_HOSTNAME,
                  "socks: EHLO is RemoteHostname: %r" % ehlo)
            check(client == PROXY_IP,
                  "socks: the peer saw the proxy's address: %s" % client)
            check(b"Subject: via socks" in data, "socks: message data")
        check((1, PEER_IP, 25) in proxy.targets,
              "socks: proxy asked to CONNECT to %s port 25: %r" %
              (PEER_IP, proxy.targets))
        check(wait_for(lambda: queue_row(d, "a") is None, 10) is not None,
              "socks: left the queue")

        # (b) the proxy refuses: temporary failure, last error shown.
        check(submit("r@refused.qsocks.example", "refused by proxy") == {},
              "submitted to refused.qsocks.example")
        row = wait_for(lambda: (lambda x: x if x and x[0] >= 2 and
                                x[1][-1]["Error"] != "delivering..."
                                else None)(queue_row(d, "r")), 20)
        check(row is not None, "refused: retried (still queued, 2 attempts)")
        check((1, PEER_IP, 25) in refuser.targets,
              "refused: CONNECT target logged: %r" % refuser.targets)
        r = subprocess.run([MOX, "-config", conf, "queue", "list"],
                           capture_output=True, text=True, timeout=30)
        line = [l for l in r.stdout.split("\n")
                if "to:r@refused.qsocks.example" in l]
        check(r.returncode == 0 and len(line) == 1 and
              "socks5 proxy %s:%d" % (PROXY_IP, REFUSE_PORT) in line[0] and
              "connection not allowed by ruleset" in line[0],
              "refused: queue list shows the proxy's refusal: %r" %
              (line or r.stdout + r.stderr))
        if row:
            last = row[1][-1]
            check(last.get("Code", 0) == 0 and
                  not last.get("Secode", "").startswith("5"),
                  "refused: a temporary failure: %r" % last)
        check(not [m for m in peer.messages
                   if "r@refused.qsocks.example" in m[2]],
              "refused: nothing delivered")

        # (c) direct to a CNAME'd MX host: TLSA at the expanded name.
        check(submit("c@cn.qsocks.example", "cname mx") == {},
              "submitted to cn.qsocks.example")
        got = wait_for(lambda: [m for m in peer.messages
                                if "c@cn.qsocks.example" in m[2]], 20)
        check(bool(got) and got[0][4],
              "cname: delivered over STARTTLS with the expanded name's TLSA")
        check(wait_for(lambda: queue_row(d, "c") is None, 10) is not None,
              "cname: left the queue")

        # (d) wrong TLSA through the proxy and direct: sending IPs.
        check(submit("b@bad.qsocks.example", "socks bad") == {},
              "submitted to bad.qsocks.example")
        check(submit("e@directbad.qsocks.example", "direct bad") == {},
              "submitted to directbad.qsocks.example")
        tr = os.path.join(d, "tlsrptresult.db")
        q = ("SELECT recipient_domain, sending_ip, receiving_ip FROM detail"
             " WHERE policy_domain = 'mx2.qsocks.example' AND"
             " reason = 'dane-no-match'")
        det = wait_for(lambda: (lambda rows: rows if len(
            {r[0] for r in rows}) == 2 else None)(db_rows(tr, q)), 20)
        check(det is not None, "tlsrpt: dane-no-match for both: %r" %
              db_rows(tr, q))
        det = det or []
        via = [r for r in det if r[0] == "bad.qsocks.example"]
        direct = [r for r in det if r[0] == "directbad.qsocks.example"]
        check(via and all(r[1] == PROXY_IP and r[2] == PEER_IP for r in via),
              "tlsrpt: sending IP through the proxy is its address: %r" % via)
        seen = {c for c, e in peer.conns if e != REMOTE_HOSTNAME}
        check(direct and all(r[1] != "" and r[1] in seen for r in direct),
              "tlsrpt: sending IP direct is our local address: %r in %r" %
              (direct, seen))
        res = db_rows(tr, "SELECT policy_domain, recipient_domain, success"
                      " FROM result WHERE is_host = 1")
        check(("mxreal.qsocks.example", "cn.qsocks.example", 1) in res,
              "tlsrpt: cname host reported under the expanded TLSA base "
              "domain: %r" % res)
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
