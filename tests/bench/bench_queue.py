#!/usr/bin/env python3
"""bench_queue.py: outgoing queue delivery throughput of mox against
Postfix.

usage: bench_queue.py [-m messages] [-r recipients] [-d domains]
                      [-l bytes] [-s sessions] [-mox PATH] [-no-postfix]
                      [-keep]

Needs root (`mox serve` binds and drops privileges; smtp-sink on port 25)
and ../shared/tools/dnslab. Starts a dnslab with a signed zone
bench.example: domains d0..d9.bench.example, each with an MX to
sink.bench.example = 127.0.0.13, where Postfix's smtp-sink listens on port
25 ("the internet"). `mox serve` runs on 127.0.0.19 with DNSResolvers
pointing at the lab (so each delivery does the real direct-delivery
work: MX and address lookups, MTA-STS and DANE checks, TLS report
results). The bench puts the queue on hold (a hold rule), submits -m
messages of -l bytes over -s SMTP submission sessions, each to one of -r
recipients spread over -d domains, then removes the hold and times until
smtp-sink has received every message. Prints messages/s delivered and
mox's peak RSS (VmHWM). When Postfix is installed, a private Postfix on
127.0.0.14:10025 (relayhost = the same smtp-sink, messages held by an
access-table HOLD and released with postsuper -H ALL) gets the same load;
prints its messages/s, the peak of its processes' summed RSS and the
ratio. Goal: mox at least equal to Postfix. Exits 0 either way.
"""
import argparse
import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DNSLAB = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared",
                                       "tools", "dnslab", "dnslab"))
if not os.path.exists(DNSLAB):
    DNSLAB = "/work/shared/tools/dnslab/dnslab"
IP, SINK_IP, PF_IP, PF_PORT = "127.0.0.19", "127.0.0.13", "127.0.0.14", 10025
UID = 65534
GOAL = 1.0


class Sink:
    """smtp-sink on SINK_IP:25 with a running message counter."""

    def __init__(self):
        self.count = 0
        self.sessions = 0
        self.p = subprocess.Popen(["/usr/sbin/smtp-sink", "-c", "-u",
                                   "postfix", "%s:25" % SINK_IP, "256"],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        threading.Thread(target=self._read, daemon=True).start()
        if not bc.wait_port(SINK_IP, 25, 5):
            raise RuntimeError("smtp-sink did not start")

    def _read(self):
        buf = b""
        while True:
            c = self.p.stdout.read1(4096)
            if not c:
                return
            buf += c
            parts = buf.split(b"\r")
            buf = parts[-1]
            for part in reversed(parts[:-1]):
                i = part.find(b"mesg=")
                k = part.find(b"sess=")
                if i >= 0:
                    self.count = int(part[i + 5:].split()[0])
                    if k >= 0:
                        self.sessions = int(part[k + 5:].split()[0])
                    break

    def stop(self):
        self.p.terminate()
        self.p.wait(10)


def message(i, size):
    head = ("From: <mox@localhost>\r\nTo: <r@x>\r\nSubject: bench %d\r\n"
            "Message-Id: <bench%d@localhost>\r\n\r\n" % (i, i))
    line = "x" * 76 + "\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


def submit_all(host, port, a, login, starttls=False):
    """Submit a.m messages over a.s sessions; returns seconds."""
    next_i = [0]
    lock = threading.Lock()
    errors = []

    def run():
        try:
            with smtplib.SMTP(host, port, timeout=60) as c:
                if starttls:
                    c.starttls()
                if login:
                    c.login(bc.MOX_USER, bc.MOX_PASS)
                while True:
                    with lock:
                        i = next_i[0]
                        if i >= a.m:
                            return
                        next_i[0] += 1
                    r = i % a.r
                    rcpt = "u%d@d%d.bench.example" % (r, r % a.d)
                    c.sendmail("mox@localhost", [rcpt], message(i, a.l))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    t0 = time.monotonic()
    ts = [threading.Thread(target=run) for _ in range(a.s)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError("submission: %s" % errors[0])
    return time.monotonic() - t0


def wait_count(sink, want, timeout, sample=None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if sample:
            sample()
        if sink.count >= want:
            break
        time.sleep(0.05)
    return time.monotonic() - t0, sink.count


# ---- mox ----

def run_mox(a, resolver, sink, tmp):
    d = os.path.join(tmp, "mox")
    conf = os.path.join(d, "mox.conf")
    subprocess.run([a.mox, "localserve", "-dir", d, "-ip", IP, "-initonly"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(conf) as f:
        text = f.read()
    lines = []
    for ln in text.split("\n"):
        if ln.startswith("User:"):
            ln = "User: %d" % UID
        elif ln.startswith("LogLevel:"):
            ln = "LogLevel: info"
        lines.append(ln)
    with open(conf, "w") as f:
        f.write("\n".join(lines).rstrip("\n") +
                "\nDNSResolvers:\n\t- %s\n" % resolver)
    dconf = os.path.join(d, "domains.conf")
    with open(dconf) as f:
        text = f.read()
    # The default limit of 1000 messages a day per account.
    text = text.replace("\tmox:\n", "\tmox:\n\t\tMaxOutgoingMessagesPerDay:"
                        " 1000000\n\t\tMaxFirstTimeRecipientsPerDay:"
                        " 1000000\n", 1)
    with open(dconf, "w") as f:
        f.write(text)
    log = open(os.path.join(tmp, "mox.log"), "wb")
    p = subprocess.Popen([a.mox, "-config", conf, "serve"], stdout=log,
                         stderr=subprocess.STDOUT)
    try:
        if not bc.wait_port(IP, 1587, 20):
            raise RuntimeError("mox did not start; log %s" % log.name)
        time.sleep(0.5)
        q = [a.mox, "-config", conf, "queue"]
        subprocess.run(q + ["holdrules", "add"], check=True,
                       stdout=subprocess.DEVNULL)
        t_sub = submit_all(IP, 1587, a, True)
        base, sbase = sink.count, sink.sessions
        rss0, _ = bc.proc_status(p.pid)
        t0 = time.monotonic()
        subprocess.run(q + ["holdrules", "remove", "1"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(q + ["unhold"], check=True, stdout=subprocess.DEVNULL)
        el, n = wait_count(sink, base + a.m, a.timeout)
        el = time.monotonic() - t0
        with open("/proc/%d/status" % p.pid) as f:
            hwm = [int(ln.split()[1]) * 1024 for ln in f
                   if ln.startswith("VmHWM:")][0]
        cpu = bc.proc_cpu(p.pid)
        return dict(sub=t_sub, secs=el, n=n - base, hwm=hwm, rss0=rss0,
                    cpu=cpu, sess=sink.sessions - sbase)
    finally:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


# ---- postfix ----

PF_MAIN = """compatibility_level = 3.6
queue_directory = {D}/queue
data_directory = {D}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {D}/log/postfix.log
maillog_file_prefixes = {D}/log
myhostname = mx.pfbench.example
mydomain = pfbench.example
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
smtpd_banner = $myhostname ESMTP postfix-bench
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
relayhost = [{sink}]:25
smtp_tls_security_level = none
smtpd_recipient_restrictions = check_client_access static:HOLD,
    permit_mynetworks, reject_unauth_destination
"""


PF_MASTER = """\
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
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def pf_children_rss(master):
    """Summed VmRSS of master and its children (Postfix daemons)."""
    tot = 0
    kids = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(pid))
    todo = [master]
    while todo:
        p = todo.pop()
        try:
            tot += bc.proc_status(p)[0]
        except (OSError, KeyError):
            pass
        todo.extend(kids.get(p, []))
    return tot


def run_postfix(a, sink, tmp):
    D = os.path.join(tmp, "pf")
    C = os.path.join(D, "conf")
    for sub in ("conf", "data", "log", "queue"):
        os.makedirs(os.path.join(D, sub), exist_ok=True)
    for p in (D, C, os.path.join(D, "queue")):
        os.chmod(p, 0o755)
    pfu = pwd.getpwnam("postfix")
    os.chown(os.path.join(D, "data"), pfu.pw_uid, pfu.pw_gid)
    with open(os.path.join(C, "main.cf"), "w") as f:
        f.write(PF_MAIN.format(D=D, sink=SINK_IP))
    with open(os.path.join(C, "master.cf"), "w") as f:
        f.write("%s:%d inet n - n - - smtpd\n" % (PF_IP, PF_PORT) +
                PF_MASTER)
    pf = ["/usr/sbin/postfix", "-c", C]
    subprocess.run(pf + ["check"], capture_output=True)
    r = subprocess.run(pf + ["start"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("postfix start: " + r.stdout + r.stderr)
    try:
        if not bc.wait_port(PF_IP, PF_PORT, 15):
            raise RuntimeError("postfix does not listen")
        t_sub = submit_all(PF_IP, PF_PORT, a, False)
        # Wait until every message sits in the hold queue.
        hold = os.path.join(D, "queue", "hold")
        end = time.monotonic() + 120
        while time.monotonic() < end:
            try:
                if len(os.listdir(hold)) >= a.m:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        with open(os.path.join(D, "queue", "pid", "master.pid")) as f:
            mpid = int(f.read().strip())
        base = sink.count
        peak = [0]

        def sample():
            peak[0] = max(peak[0], pf_children_rss(mpid))
        t0 = time.monotonic()
        subprocess.run(["/usr/sbin/postsuper", "-c", C, "-H", "ALL"],
                       capture_output=True, check=True)
        subprocess.run(["/usr/sbin/postqueue", "-c", C, "-f"],
                       capture_output=True)
        last = [0.0]

        def sample_slow():
            if time.monotonic() - last[0] > 0.5:
                last[0] = time.monotonic()
                sample()
        el, n = wait_count(sink, base + a.m, a.timeout, sample_slow)
        return dict(sub=t_sub, secs=el, n=n - base, hwm=peak[0])
    finally:
        subprocess.run(pf + ["stop"], capture_output=True)
        time.sleep(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", type=int, default=10000)
    ap.add_argument("-r", type=int, default=100)
    ap.add_argument("-d", type=int, default=10)
    ap.add_argument("-l", type=int, default=4096)
    ap.add_argument("-s", type=int, default=10)
    ap.add_argument("-timeout", type=float, default=600)
    ap.add_argument("-mox", default=bc.default_mox())
    ap.add_argument("-no-postfix", action="store_true")
    ap.add_argument("-keep", action="store_true")
    a = ap.parse_args()
    if os.getuid() != 0:
        print("bench_queue: needs root (mox serve, port 25)")
        return 0
    if not os.path.exists("/usr/sbin/smtp-sink"):
        print("bench_queue: needs smtp-sink (apt-get install postfix)")
        return 0
    tmp = tempfile.mkdtemp(prefix="mox-bench-queue-")
    os.chmod(tmp, 0o755)
    lab = os.path.join(tmp, "dns")
    zone = os.path.join(tmp, "bench.example.zone")
    with open(zone, "w") as f:
        f.write("; dnslab: signed\n$ORIGIN bench.example.\n$TTL 3600\n"
                "sink A %s\n" % SINK_IP)
        for i in range(a.d):
            f.write("d%d MX 10 sink\n" % i)
    sink = None
    try:
        r = subprocess.run([DNSLAB, "start", lab, zone], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            print("bench_queue: dnslab did not start:\n" + r.stderr)
            return 0
        resolver = r.stdout.strip()
        sink = Sink()
        print("load: %d messages of %d bytes to %d recipients over %d "
              "domains (MX -> smtp-sink %s:25), submitted over %d sessions "
              "while held, then released" % (a.m, a.l, a.r, a.d, SINK_IP,
                                              a.s), flush=True)
        mx = run_mox(a, resolver, sink, tmp)
        mrate = mx["n"] / mx["secs"]
        print("mox: submitted in %.1f s (%.0f/s); delivered %d in %.1f s: "
              "%.0f messages/s over %d connections; peak RSS %.1f MiB; "
              "CPU %.1f s (submission and delivery)" %
              (mx["sub"], a.m / mx["sub"], mx["n"], mx["secs"], mrate,
               mx["sess"], mx["hwm"] / 2**20, mx["cpu"]), flush=True)
        if a.no_postfix or not os.path.exists("/usr/sbin/postfix"):
            print("postfix: not run")
            return 0
        pf = run_postfix(a, sink, tmp)
        prate = pf["n"] / pf["secs"]
        print("postfix: submitted in %.1f s (%.0f/s); delivered %d in %.1f "
              "s: %.0f messages/s; peak RSS (all processes) %.1f MiB" %
              (pf["sub"], a.m / pf["sub"], pf["n"], pf["secs"], prate,
               pf["hwm"] / 2**20), flush=True)
        ratio = mrate / prate if prate > 0 else 0
        print("ratio mox/postfix: %.2f (goal >= %.1f)" % (ratio, GOAL))
        print("goal: %s" % ("met" if ratio >= GOAL else "NOT met"))
    finally:
        if sink:
            sink.stop()
        subprocess.run([DNSLAB, "stop", lab], capture_output=True)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
