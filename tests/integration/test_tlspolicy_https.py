#!/usr/bin/env python3
"""test_tlspolicy_https.py: TLS servers on loopback for test_tlspolicy.sh.

Serves MTA-STS policies over HTTPS (by Host header) on one address, and
plain TLS handshakes (for DANE/PKIX checks of the presented chain) on
others. Usage:
  test_tlspolicy_https.py PORT https=IP:CERT:KEY tls=IP:CERT:KEY ...
Writes "ready" on stdout once listening; runs until killed.
"""
import http.server
import socket
import ssl
import sys
import threading

POLICY = {
    "mta-sts.good.tlsp.example":
        "version: STSv1\r\nmode: enforce\r\nmx: *.mox.example\r\n"
        "mx: mail.insecure.example\r\nmax_age: 86400\r\n",
    "mta-sts.testing.tlsp.example":
        "version: STSv1\nmode: testing\nmx: other.example\nmax_age: 86400\n",
    "mta-sts.invalid.tlsp.example":
        "version: STSv1\nmode: enforce\nmax_age: 86400\n",
    "mta-sts.big.tlsp.example":
        "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\nx: "
        + "y" * 70000 + "\n",
    "mta-sts.ctype.tlsp.example":
        "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\n",
    "mta-sts.webpki.tlsp.example":
        "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\n",
}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        if self.path != "/.well-known/mta-sts.txt":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if host == "mta-sts.redirect.tlsp.example":
            self.send_response(302)
            self.send_header("Location",
                             "https://mta-sts.good.tlsp.example/.well-known/mta-sts.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = POLICY.get(host)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if host.startswith(
            "mta-sts.ctype.") else "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def tls_only(sock, ctx):
    while True:
        conn, _ = sock.accept()
        try:
            with ctx.wrap_socket(conn, server_side=True) as s:
                s.settimeout(5)
                try:
                    s.recv(1)
                except (OSError, ssl.SSLError):
                    pass
        except (OSError, ssl.SSLError):
            conn.close()


def main():
    port = int(sys.argv[1])
    for spec in sys.argv[2:]:
        kind, rest = spec.split("=", 1)
        ip, cert, key = rest.split(":")
        ctx = context(cert, key)
        if kind == "https":
            srv = http.server.ThreadingHTTPServer((ip, port), Handler)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, port))
            s.listen(16)
            threading.Thread(target=tls_only, args=(s, ctx),
                             daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
