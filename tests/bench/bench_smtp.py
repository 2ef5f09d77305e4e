#!/usr/bin/env python3
"""bench_smtp.py: SMTP delivery throughput of mox against Postfix (issue 5).

usage: bench_smtp.py [-m messages] [-s sessions] [-l bytes] [-mox PATH]
                     [-ip IP] [-no-postfix] [-keep]

Starts a private mox (localserve, LogLevel info) on -ip (default
127.0.0.21), runs `smtp-source -s 10 -m 2000 -l 4096` against its MX port
1025 with every message to mox@localhost, and counts messages/s from the
start of smtp-source until the last message is committed (the count of
Inbox messages in the account's index.db, polled read-only every 20 ms).
When postfix is installed and the anchor ports are free, runs the same
load against a private Postfix (tools/anchors/postfix.sh, SMTP on
127.0.0.1:10025, virtual(8) into a Maildir; Dovecot anchor started first
for its SASL socket) counting files in the Maildir, and prints the ratio.
Prints this disk's raw fsync limit measured in the same run (8 threads:
4 KiB file + fsync + directory fsync, as tests/bench/bench_store does).
Goal: at least 2x Postfix. Exits 0 whether or not the goal is met.

mox's listener gets FirstTimeSenderDelay 0s (spec/config.md), so the
bench measures throughput, not the delay for unknown senders. mox checks
SPF, DKIM, DMARC and iprev of every message: with -dns lab (the default
when ../shared/tools/dnslab works) it asks a private DNS lab on loopback
(Unbound + NSD, DNSResolvers in mox.conf), where every name of the bench
is a signed NXDOMAIN, as a fast local resolver would answer; -dns system
uses /etc/resolv.conf. Nothing is deleted between the two runs and the
fsync limit is measured last: on ext4 a burst of deleted inodes makes
file creation in the same block group slower for a minute, which would
tax whichever server runs next.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

GOAL = 2.0


def run_load(host_port, rcpt, a, count_fn, want, timeout):
    """Run smtp-source and poll count_fn until it reaches want; returns
    (seconds, smtp-source seconds, final count) or raises."""
    cmd = ["smtp-source", "-s", str(a.s), "-m", str(a.m), "-l", str(a.l),
           "-f", "bench@example.org", "-t", rcpt, "-M", "bench.example.org",
           host_port]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    t_src = None
    n = 0
    end = t0 + timeout
    while time.monotonic() < end:
        if t_src is None and p.poll() is not None:
            t_src = time.monotonic() - t0
            if p.returncode != 0:
                raise RuntimeError("smtp-source failed: %s" %
                                   p.stderr.read().decode(errors="replace"))
        n = count_fn()
        if n >= want:
            break
        time.sleep(0.02)
    el = time.monotonic() - t0
    if p.poll() is None:
        p.kill()
        p.wait()
    if t_src is None:
        t_src = el
    return el, t_src, n


BENCH_ZONE = "; dnslab: signed\n@ TXT \"mox bench\"\n"


def moxconf_edit(resolver):
    """mox.conf changes: no first-time-sender delay on the SMTP listener;
    the lab's resolver when there is one."""
    def edit(text):
        out = []
        in_smtp = False
        for ln in text.split("\n"):
            out.append(ln)
            if ln == "\t\tSMTP:":
                in_smtp = True
            elif in_smtp and ln.startswith("\t\t\tPort:"):
                out.append("\t\t\tFirstTimeSenderDelay: 0s")
                in_smtp = False
        text = "\n".join(out)
        if resolver:
            text = text.rstrip("\n") + "\nDNSResolvers:\n\t- %s\n" % resolver
        return text
    return edit


def bench_mox(a, resolver, cleanup):
    m = bc.Mox(a.mox, a.ip, edit=moxconf_edit(resolver))
    cleanup.append(m)
    try:
        m.start()
        db = m.index_db()
        base = bc.inbox_count(db)
        cpu0 = bc.proc_cpu(m.pid)
        el, t_src, n = run_load("%s:1025" % a.ip, "mox@localhost", a,
                                lambda: bc.inbox_count(db), base + a.m,
                                a.timeout)
        rss, thr = bc.proc_status(m.pid)
        cpu = bc.proc_cpu(m.pid) - cpu0
        got = n - base
        print("mox: %d of %d messages of %d bytes over %d sessions "
              "committed in %.2f s (smtp-source done at %.2f s): %.0f "
              "messages/s; server RSS %.1f MiB, threads %d" %
              (got, a.m, a.l, a.s, el, t_src, got / el, rss / 1048576.0,
               thr))
        print("mox: server CPU %.2f s (%.2f ms per message); machine load "
              "average %.1f" % (cpu, 1000.0 * cpu / max(got, 1),
                                os.getloadavg()[0]))
        if got < a.m:
            print("mox: only %d of %d messages committed within %d s" %
                  (got, a.m, a.timeout))
        return got / el
    finally:
        m.stop(keep=True)


def maildir_count(md):
    n = 0
    for sub in ("new", "cur"):
        try:
            n += len(os.listdir(os.path.join(md, sub)))
        except FileNotFoundError:
            pass
    return n


def bench_postfix(a, cleanup):
    if shutil.which("postfix") is None or shutil.which("dovecot") is None:
        print("postfix: not installed (apt-get install postfix "
              "dovecot-imapd), no ratio")
        return None
    if bc.port_in_use("127.0.0.1", 10025) or bc.port_in_use("127.0.0.1",
                                                             10143):
        print("postfix: anchor ports 10025/10143 already in use "
              "(another bench?), no ratio")
        return None
    env = dict(os.environ)
    adir = env.setdefault("ANCHOR_DIR", "/tmp/mox-bench-anchors-smtp")
    bc.anchor("dovecot.sh", "reset", env)
    bc.anchor("postfix.sh", "reset", env)
    try:
        rc, out = bc.anchor("dovecot.sh", "start", env)
        if rc != 0:
            print("postfix: dovecot anchor failed to start:\n" + out)
            return None
        rc, out = bc.anchor("postfix.sh", "start", env)
        if rc != 0:
            print("postfix: anchor failed to start:\n" + out)
            return None
        user = env.get("ANCHOR_USER", "testuser")
        dom = env.get("ANCHOR_DOMAIN", "anchor.test")
        md = os.path.join(adir, "mail", user, "Maildir")
        base = maildir_count(md)
        el, t_src, n = run_load("127.0.0.1:10025", "%s@%s" % (user, dom),
                                a, lambda: maildir_count(md), base + a.m,
                                a.timeout)
        got = n - base
        print("postfix: machine load average %.1f" % os.getloadavg()[0])
        print("postfix: %d of %d messages committed to the Maildir in "
              "%.2f s (smtp-source done at %.2f s): %.0f messages/s" %
              (got, a.m, el, t_src, got / el))
        return got / el
    finally:
        bc.anchor("postfix.sh", "stop", env)
        bc.anchor("dovecot.sh", "stop", env)
        cleanup.append(env)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", type=int, default=2000, help="messages")
    ap.add_argument("-s", type=int, default=10, help="parallel sessions")
    ap.add_argument("-l", type=int, default=4096, help="message size")
    ap.add_argument("-mox", default=bc.default_mox())
    ap.add_argument("-ip", default="127.0.0.21")
    ap.add_argument("-timeout", type=int, default=300)
    ap.add_argument("-no-postfix", action="store_true")
    ap.add_argument("-dns", choices=("lab", "system"), default="lab",
                    help="resolver for mox: a private dnslab (default) or "
                    "/etc/resolv.conf")
    ap.add_argument("-keep", action="store_true",
                    help="keep the data directories")
    a = ap.parse_args()
    if shutil.which("smtp-source") is None:
        os.environ["PATH"] += ":/usr/sbin"
    if shutil.which("smtp-source") is None:
        print("smtp-source not found (apt-get install postfix); skipped")
        return 0
    bc.raise_nofile(4096)
    print("bench_smtp: %d messages of %d bytes, %d sessions, smtp-source" %
          (a.m, a.l, a.s))
    lab = None
    resolver = None
    if a.dns == "lab":
        lab = bc.DnsLab({"bench.test": BENCH_ZONE})
        resolver = lab.start()
        if resolver is None:
            print("dnslab not usable (%s): mox uses the system resolver" %
                  lab.why)
        else:
            print("mox resolver: dnslab at %s" % resolver)
    cleanup = []
    try:
        mox_rate = bench_mox(a, resolver, cleanup)
        pf = None if a.no_postfix else bench_postfix(a, cleanup)
        fs = bc.fsync_limit(tempfile.gettempdir())
    finally:
        if lab is not None:
            lab.stop()
        for c in cleanup:
            if a.keep:
                continue
            if isinstance(c, bc.Mox):
                shutil.rmtree(os.path.dirname(c.dir), ignore_errors=True)
            else:
                bc.anchor("postfix.sh", "reset", c)
                bc.anchor("dovecot.sh", "reset", c)
    print("raw fsync limit of this disk: %.0f files/s (8 threads, 4 KiB "
          "file + fsync + directory fsync)" % fs)
    if pf:
        ratio = mox_rate / pf
        print("ratio mox/postfix: %.2f (goal: at least %.1f)" %
              (ratio, GOAL))
        print("goal: %s" % ("met" if ratio >= GOAL else "NOT met"))
    else:
        print("goal: not evaluated (no Postfix run); goal is at least "
              "%.1fx Postfix" % GOAL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
