#!/usr/bin/env python3
"""mox localserve end to end: -initonly writes a config that `mox config
test` accepts; broken configs are refused naming file, line and field;
the server binds every service through the reactor, answers on each, serves
implicit TLS, reloads domains.conf without a restart, changes log levels
over ctl, and stops cleanly on `mox stop` and on SIGTERM. Usage errors exit
with status 2."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("MOX_BUILDDIR", os.getcwd())
MOX = os.path.join(BUILD, "mox")
IP = "127.0.0.3"  # not the default localserve address: no clash with a dev server

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)


def mox(*args, conf=None, input=None, timeout=30):
    cmd = [MOX]
    if conf:
        cmd += ["-config", conf]
    cmd += list(args)
    return subprocess.run(cmd, capture_output=True, text=True, input=input,
                          timeout=timeout)


def wait_port(port, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection((IP, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def greeting(port, n=200):
    with socket.create_connection((IP, port), timeout=5) as s:
        s.settimeout(5)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(n)
            if not chunk:
                break
            data += chunk
        return data


def start(d):
    log = open(os.path.join(d, "server.log"), "w")
    p = subprocess.Popen([MOX, "localserve", "-dir", d], stdout=log,
                         stderr=subprocess.STDOUT)
    ok = wait_port(1025)
    # Ports are bound before the ctl socket exists: wait until ready.
    end = time.time() + 20
    while ok and time.time() < end:
        with open(os.path.join(d, "server.log")) as f:
            if "ready to serve" in f.read():
                break
        time.sleep(0.05)
    return p, log, ok


def main():
    tmp = tempfile.mkdtemp(prefix="mox-localserve-")
    d = os.path.join(tmp, "ls")
    conf = os.path.join(d, "mox.conf")
    try:
        # Usage errors: exit 2 with usage on stderr.
        r = mox("nosuchcommand")
        check(r.returncode == 2 and "unknown command" in r.stderr,
              "unknown command exits 2")
        r = mox("-nosuchflag", "version")
        check(r.returncode == 2 and "unknown flag" in r.stderr,
              "unknown flag exits 2")
        r = mox("config")
        check(r.returncode == 2 and "config test" in r.stderr,
              "leading words print the matching usages")
        r = mox("version")
        check(r.returncode == 0 and r.stdout.strip() != "", "version")
        r = mox("help", "localserve")
        check(r.returncode == 0 and "-initonly" in r.stdout, "help localserve")

        r = mox("localserve", "-dir", d, "-ip", IP, "-initonly")
        check(r.returncode == 0, "localserve -initonly exits 0: " + r.stderr)
        for f in ("mox.conf", "domains.conf", "localhost.crt", "localhost.key",
                  "adminpasswd", "dkim.localserve.privatekey.pkcs8.pem"):
            check(os.path.exists(os.path.join(d, f)), "initonly wrote " + f)
        r = mox("config", "test", conf=conf)
        check(r.returncode == 0 and "config OK" in r.stdout,
              "config test accepts the localserve config: " + r.stderr)
        r = mox("config", "describe-static")
        check(r.returncode == 0 and "Listeners:" in r.stdout and
              "DNSResolvers" in r.stdout and "WorkerPoolSize" in r.stdout,
              "describe-static lists fields incl. our additions")
        r = mox("config", "describe-domains")
        check(r.returncode == 0 and "Accounts:" in r.stdout,
              "describe-domains")

        # A broken copy: the error names file, line and field.
        bad = os.path.join(tmp, "bad")
        shutil.copytree(d, bad)
        with open(os.path.join(bad, "mox.conf")) as f:
            lines = f.read().split("\n")
        lineno = next(i for i, l in enumerate(lines) if l.startswith("Hostname:"))
        lines.insert(lineno + 1, "NoSuchField: 1")
        with open(os.path.join(bad, "mox.conf"), "w") as f:
            f.write("\n".join(lines))
        r = mox("config", "test", conf=os.path.join(bad, "mox.conf"))
        check(r.returncode == 1 and ("mox.conf:%d" % (lineno + 2)) in r.stderr
              and "NoSuchField" in r.stderr,
              "config test names file:line and the unknown field: " + r.stderr)

        # A key file that does not load is caught by config test too.
        badkey = os.path.join(tmp, "badkey")
        shutil.copytree(d, badkey)
        with open(os.path.join(badkey, "localhost.key"), "w") as f:
            f.write("not a key\n")
        r = mox("config", "test", conf=os.path.join(badkey, "mox.conf"))
        check(r.returncode == 1 and "Listeners.local.TLS.KeyCerts" in r.stderr,
              "config test loads TLS key pairs: " + r.stderr)

        # Serve.
        p, log, ok = start(d)
        check(ok, "localserve listens on SMTP 1025")
        check(greeting(1025).startswith(b"220 "), "SMTP port greets")
        check(greeting(1587).startswith(b"220 "), "submission port greets")
        check(greeting(1143).startswith(b"* OK"), "IMAP port greets")
        check(greeting(1080).startswith(b"HTTP/1.1 503"), "HTTP port answers")
        ctx = ssl.create_default_context(cafile=os.path.join(d, "localhost.crt"))
        for port, want in ((1993, b"* OK"), (1465, b"220 "), (1443, b"HTTP/1.1")):
            try:
                with socket.create_connection((IP, port), timeout=5) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                        got = s.recv(200)
                        check(s.version() in ("TLSv1.3", "TLSv1.2") and
                              got.startswith(want),
                              "implicit TLS on %d verifies and answers" % port)
            except (OSError, ssl.SSLError) as e:
                check(False, "implicit TLS on %d: %s" % (port, e))

        r = mox("loglevels", conf=conf)
        check(r.returncode == 0 and "default: traceauth" in r.stdout,
              "loglevels prints levels: " + r.stdout + r.stderr)
        r = mox("loglevels", "debug", "smtpserver", conf=conf)
        check(r.returncode == 0, "loglevels sets a package level")
        r = mox("loglevels", conf=conf)
        check("smtpserver: debug" in r.stdout, "package level visible")
        r = mox("loglevels", "bogus", conf=conf)
        check(r.returncode == 2, "bad level is a usage error")

        # domains.conf reload: a valid change is taken, an invalid one is
        # logged and the previous config stays.
        dom = os.path.join(d, "domains.conf")
        with open(dom) as f:
            orig = f.read()
        with open(dom, "w") as f:
            f.write(orig.replace("\t\tRejectsMailbox: Rejects\n",
                                 "\t\tRejectsMailbox: Rejected\n"))
        os.utime(dom, (time.time() + 5, time.time() + 5))
        time.sleep(2.5)
        with open(dom, "w") as f:
            f.write(orig + "Bogus: 1\n")
        os.utime(dom, (time.time() + 10, time.time() + 10))
        time.sleep(2.5)
        with open(os.path.join(d, "server.log")) as f:
            text = f.read()
        check("domains config reloaded" in text, "valid domains.conf reloaded")
        check("Bogus" in text, "invalid domains.conf logged, not loaded")
        check(p.poll() is None, "server still running after a bad reload")
        with open(dom, "w") as f:
            f.write(orig)

        r = mox("stop", conf=conf)
        check(r.returncode == 0, "mox stop")
        try:
            rc = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = -1
        check(rc == 0, "server exits 0 after mox stop (rc %s)" % rc)
        log.close()
        check(not os.path.exists(os.path.join(d, "ctl")), "ctl socket removed")

        # SIGTERM with connections open.
        p, log, ok = start(d)
        check(ok, "restart on the existing directory")
        held = [socket.create_connection((IP, 1143)) for _ in range(5)]
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = -1
        check(rc == 0, "server exits 0 on SIGTERM with open connections")
        for s in held:
            s.close()
        log.close()
        with open(os.path.join(d, "server.log")) as f:
            text = f.read()
        check("ready to serve" in text and "stopped" in text,
              "log has ready and stopped lines")
    finally:
        if failures:
            logf = os.path.join(d, "server.log")
            if os.path.exists(logf):
                print(open(logf).read()[-4000:])
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)


main()
