#!/usr/bin/env python3
"""DKIM interop test: sign with our signer (tests/integration/dkim_signtool),
verify with python3-dkim and with opendkim-testmsg.

python3-dkim gets the key record through its dnsfunc hook. opendkim-testmsg
asks the system resolver, so it runs in private mount and network
namespaces (unshare) where /etc/resolv.conf points at a small DNS
responder on 127.0.0.1:53 that serves the key record.
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading

import dkim

TOOL = sys.argv[1]
DOMAIN = "interop.example"

# RFC 5322 3.6: Date and From are required (opendkim checks it).
MESSAGES = [
    b"From: Alice <alice@interop.example>\r\nTo: bob@example.org\r\n"
    b"Subject: interop  test\r\nDate: Mon, 2 Jan 2006 15:04:05 -0700\r\n"
    b"Message-Id: <interop1@interop.example>\r\n\r\n"
    b"Hello  Bob,\r\n\r\nthis is a test.   \r\n\r\n\r\n",
    b"From: alice@interop.example\nTo: bob@example.org,\n carol@example.org\n"
    b"Date: Tue, 3 Jan 2006 10:00:00 +0000\n"
    b"Subject: folded\n\tsubject\nContent-Type: text/plain\n\nbody line\n",
    b"From: alice@interop.example\r\nSubject: empty body\r\n"
    b"Date: Wed, 4 Jan 2006 10:00:00 +0000\r\n\r\n",
]


def run(args, data=None):
    p = subprocess.run(args, input=data, capture_output=True)
    if p.returncode != 0:
        sys.stderr.write("%s failed: %s\n" % (args, p.stderr.decode()))
        sys.exit(1)
    return p.stdout


def dns_response(query, records):
    """Answer a DNS query (RFC 1035 4.1) with TXT records or NXDOMAIN."""
    qid = query[:2]
    pos, labels = 12, []
    while query[pos] != 0:
        n = query[pos]
        labels.append(query[pos + 1:pos + 1 + n].decode().lower())
        pos += n + 1
    qname_end = pos + 1
    qtype = struct.unpack(">H", query[qname_end:qname_end + 2])[0]
    question = query[12:qname_end + 4]
    name = ".".join(labels)
    txt = records.get(name)
    if txt is None or qtype != 16:
        flags = 0x8183 if txt is None else 0x8180
        return qid + struct.pack(">HHHHH", flags, 1, 0, 0, 0) + question
    rdata = b""
    raw = txt.encode()
    for i in range(0, len(raw), 255):
        chunk = raw[i:i + 255]
        rdata += bytes([len(chunk)]) + chunk
    answer = b"\xc0\x0c" + struct.pack(">HHIH", 16, 1, 60, len(rdata)) + rdata
    return qid + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + question + answer


def serve_dns(sock, records):
    while True:
        try:
            data, addr = sock.recvfrom(4096)
        except OSError:
            return
        try:
            sock.sendto(dns_response(data, records), addr)
        except Exception:  # malformed query: ignore
            pass


def opendkim_verify(signed, records, tmp):
    """Runs inside the namespaces (see main)."""
    testmsg = shutil.which("opendkim-testmsg") or "/usr/sbin/opendkim-testmsg"
    p = subprocess.run([testmsg, "-t", tmp], input=signed, capture_output=True)
    return p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        (p.stdout + p.stderr).decode(errors="replace")


def child(tmp):
    """Namespace side: loopback up, resolv.conf swapped, DNS served."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    conf = os.path.join(tmp, "resolv.conf")
    with open(conf, "w") as f:
        f.write("nameserver 127.0.0.1\noptions attempts:1 timeout:2\n")
    subprocess.run(["mount", "--bind", conf, "/etc/resolv.conf"], check=True)
    records = {}
    with open(os.path.join(tmp, "records")) as f:
        for line in f:
            k, v = line.rstrip("\n").split("\t", 1)
            records[k] = v
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 53))
    threading.Thread(target=serve_dns, args=(sock, records), daemon=True).start()
    failures = 0
    for name in sorted(os.listdir(tmp)):
        if not name.endswith(".signed"):
            continue
        with open(os.path.join(tmp, name), "rb") as f:
            ok, out = opendkim_verify(f.read(), records, tmp)
        print("opendkim-testmsg %s: %s %s" % (name, "ok" if ok else "FAIL", out.strip()))
        failures += 0 if ok else 1
    sys.exit(1 if failures else 0)


def main():
    if len(sys.argv) > 2 and sys.argv[2] == "--child":
        child(sys.argv[3])
        return
    tmp = tempfile.mkdtemp(prefix="dkim-interop-")
    records = {}
    failures = 0
    try:
        for kt in ("rsa", "ed25519"):
            key = os.path.join(tmp, kt + ".pem")
            with open(key, "wb") as f:
                f.write(run([TOOL, "gen", kt]))
            txt = run([TOOL, key, "txt"]).decode().strip()
            records["%s._domainkey.%s" % (kt, DOMAIN)] = txt
            for canon in ("simple", "relaxed"):
                for i, msg in enumerate(MESSAGES):
                    signed = run([TOOL, key, DOMAIN, kt, canon], msg)
                    name = "%s-%s-%d.signed" % (kt, canon, i)
                    with open(os.path.join(tmp, name), "wb") as f:
                        f.write(signed)

                    def dnsfunc(qname, timeout=5):
                        return records.get(qname.decode().rstrip(".").lower(),
                                           "").encode()

                    ok = dkim.verify(signed, dnsfunc=dnsfunc, minkey=1024)
                    print("python3-dkim %s: %s" % (name, "ok" if ok else "FAIL"))
                    failures += 0 if ok else 1
        with open(os.path.join(tmp, "records"), "w") as f:
            for k, v in records.items():
                f.write("%s\t%s\n" % (k, v))
        probe = subprocess.run(["unshare", "-mn", "true"], capture_output=True)
        if probe.returncode != 0:
            print("cannot create namespaces for opendkim-testmsg (need root): "
                  "skipping that half")
            sys.exit(77 if failures == 0 else 1)
        p = subprocess.run(["unshare", "-mn", sys.executable, __file__, TOOL,
                            "--child", tmp])
        failures += 0 if p.returncode == 0 else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
