#!/usr/bin/env python3
"""mox serve as root: binds, fixes data directory ownership, drops to the
configured User (uid 65534 here), serves, refuses to regain root, and stops
on `mox stop`. Started as non-root it refuses with a hint. Skips (77) when
not run as root."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
IP = "127.0.0.6"
UID = 65534

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def wait_port(port, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((IP, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def main():
    if os.getuid() != 0:
        print("not root: skipping")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="mox-serve-")
    os.chmod(tmp, 0o755)
    d = os.path.join(tmp, "conf")
    conf = os.path.join(d, "mox.conf")
    p = None
    try:
        r = subprocess.run([MOX, "localserve", "-dir", d, "-ip", IP, "-initonly"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "config written")
        with open(conf) as f:
            text = f.read()
        lines = [("User: %d" % UID) if l.startswith("User:") else l
                 for l in text.split("\n")]
        with open(conf, "w") as f:
            f.write("\n".join(lines))

        # Not root: refused with a hint.
        r = subprocess.run([MOX, "-config", conf, "serve"], capture_output=True,
                           text=True, user=UID, group=UID)
        check(r.returncode == 1 and "root" in r.stderr and "localserve" in r.stderr,
              "non-root serve refused with a hint: " + r.stderr.strip())

        log = open(os.path.join(tmp, "server.log"), "w")
        p = subprocess.Popen([MOX, "-config", conf, "serve"], stdout=log,
                             stderr=subprocess.STDOUT)
        check(wait_port(1025), "serve listens")
        # The port is bound before the privilege drop: wait until ready.
        end = time.time() + 20
        while time.time() < end:
            with open(os.path.join(tmp, "server.log")) as f:
                if "ready to serve" in f.read():
                    break
            time.sleep(0.05)
        with open("/proc/%d/status" % p.pid) as f:
            st = f.read()
        uidline = [l for l in st.split("\n") if l.startswith("Uid:")][0]
        check(uidline.split()[1:] == [str(UID)] * 4,
              "running as uid %d: %s" % (UID, uidline))
        db = os.path.join(d, "accounts", "mox", "index.db")
        check(os.path.exists(db) and os.stat(db).st_uid == UID,
              "account index owned by the user")
        check(os.stat(d).st_uid == UID and (os.stat(d).st_mode & 0o7777) == 0o2750,
              "data directory fixed to user, mode 2750")
        with socket.create_connection((IP, 1025), timeout=5) as s:
            g = s.recv(100)
            check(g[:4] in (b"220 ", b"421 "), "SMTP answers: %r" % g)
        r = subprocess.run([MOX, "-config", conf, "stop"], capture_output=True,
                           text=True, timeout=20)
        check(r.returncode == 0, "mox stop: " + r.stderr)
        rc = p.wait(timeout=10)
        p = None
        check(rc == 0, "exit status 0")
        log.close()
        with open(os.path.join(tmp, "server.log")) as f:
            out = f.read()
        check("starting as unprivileged user" in out, "log names the drop")
        if failures:
            print(out[-3000:])
    finally:
        if p is not None:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        sys.exit(1)


main()
