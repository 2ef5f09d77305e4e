"""bench_common.py: helpers shared by the benchmarks in tests/bench.

Starts a private mox (localserve with LogLevel info) on a loopback address,
reads a process's VmRSS and Threads from /proc, raises RLIMIT_NOFILE, and
measures this disk's raw fsync limit the way tests/bench/bench_store.c does
(8 threads, each writing a 4 KiB file, fsyncing it and its directory, 2 s).
Not a test; imported by bench_imap_idle.py, bench_imap_mix.py and
bench_smtp.py.
"""
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ANCHORS = os.environ.get("ANCHORS", os.path.normpath(
    os.path.join(HERE, "..", "..", "..", "shared", "tools", "anchors")))
if not os.path.isdir(ANCHORS):
    ANCHORS = "/work/shared/tools/anchors"

MOX_USER = "mox@localhost"
MOX_PASS = "moxmoxmox"


def default_mox():
    """The mox binary: $MOX, else $MOX_BUILDDIR/mox, else ./mox."""
    if os.environ.get("MOX"):
        return os.environ["MOX"]
    return os.path.join(os.environ.get("MOX_BUILDDIR", "."), "mox")


def proc_status(pid):
    """(VmRSS in bytes, Threads) of process pid."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return int(out["VmRSS"].split()[0]) * 1024, int(out["Threads"])


def proc_cpu(pid):
    """CPU seconds (user + system) used so far by process pid."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_nofile(need):
    """Raise RLIMIT_NOFILE to need (root may raise the hard limit);
    returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(need, hard)))
        return need
    except (ValueError, OSError):
        pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def wait_port(host, port, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class Mox:
    """A private mox localserve on ip, in a fresh temp dir, LogLevel info.
    edit, when given, gets the text of mox.conf and returns it changed.
    The process inherits this process's limits (RLIMIT_NOFILE)."""

    def __init__(self, binary, ip, loglevel="info", edit=None):
        self.binary = binary
        self.ip = ip
        self.dir = tempfile.mkdtemp(prefix="mox-bench-")
        self.proc = None
        self.log = None
        subprocess.run([binary, "localserve", "-dir", self.dir + "/d",
                        "-ip", ip, "-initonly"], check=True,
                       stdout=subprocess.DEVNULL)
        self.dir += "/d"
        conf = os.path.join(self.dir, "mox.conf")
        with open(conf) as f:
            text = f.read()
        lines = [("LogLevel: " + loglevel) if ln.startswith("LogLevel:")
                 else ln for ln in text.split("\n")]
        text = "\n".join(lines)
        if edit is not None:
            text = edit(text)
        with open(conf, "w") as f:
            f.write(text)

    def start(self):
        self.log = open(os.path.join(self.dir, "..", "mox.log"), "wb")
        self.proc = subprocess.Popen([self.binary, "localserve", "-dir",
                                      self.dir], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if not wait_port(self.ip, 1143, 20) or not wait_port(self.ip, 1025,
                                                              5):
            raise RuntimeError("mox did not start; log in %s" %
                               self.log.name)
        return self.proc.pid

    @property
    def pid(self):
        return self.proc.pid

    def index_db(self):
        return os.path.join(self.dir, "accounts", "mox", "index.db")

    def stop(self, keep=False):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.log:
            self.log.close()
        if not keep:
            shutil.rmtree(os.path.dirname(self.dir), ignore_errors=True)


def inbox_count(db_path):
    """Messages committed to the Inbox of a mox account (read-only query of
    its index.db; 0 if the database is busy)."""
    import sqlite3
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True,
                            timeout=1)
        try:
            r = c.execute("SELECT count(*) FROM message m JOIN mailbox b"
                          " ON m.mailbox_id = b.id WHERE b.name = 'Inbox'"
                          " AND m.expunged = 0").fetchone()
            return r[0]
        finally:
            c.close()
    except sqlite3.OperationalError:
        return -1


def fsync_limit(directory, seconds=2.0, threads=8):
    """Raw fsync limit of the disk holding directory: files/s when 8
    threads each create a 4 KiB file, fsync it and fsync its directory."""
    d = tempfile.mkdtemp(prefix="fsync-", dir=directory)
    data = b"x" * 4096
    counts = [0] * threads
    end = time.monotonic() + seconds

    def run(k):
        i = 0
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            while time.monotonic() < end and i < 1000000:
                fd = os.open("%s/f%d-%d" % (d, k, i),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
                os.write(fd, data)
                os.fsync(fd)
                os.close(fd)
                os.fsync(dfd)
                i += 1
        finally:
            os.close(dfd)
        counts[k] = i

    start = time.monotonic()
    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.monotonic() - start
    shutil.rmtree(d, ignore_errors=True)
    return sum(counts) / el


DNSLAB = os.environ.get("DNSLAB", os.path.normpath(
    os.path.join(ANCHORS, "..", "dnslab", "dnslab")))


class DnsLab:
    """A private DNS lab (../shared/tools/dnslab: NSD + Unbound on
    loopback) serving only the given zone files besides its test root:
    every other name gets a signed NXDOMAIN with an SOA, which resolvers
    may cache (RFC 2308 5). start() returns the resolver's ip:port, or
    None when dnslab is missing or fails (reason in self.why)."""

    def __init__(self, zones):
        self.dir = tempfile.mkdtemp(prefix="mox-bench-dns-")
        self.zones = zones
        self.why = None
        self.started = False

    def start(self):
        if not os.access(DNSLAB, os.X_OK):
            self.why = "%s not found" % DNSLAB
            return None
        zdir = os.path.join(self.dir, "src")
        os.mkdir(zdir)
        for name, text in self.zones.items():
            with open(os.path.join(zdir, name + ".zone"), "w") as f:
                f.write(text)
        p = subprocess.run([DNSLAB, "start", os.path.join(self.dir, "lab"),
                            zdir], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                           timeout=300)
        if p.returncode != 0:
            self.why = p.stderr.decode(errors="replace").strip()[-500:]
            return None
        self.started = True
        return p.stdout.decode().strip().split("\n")[-1]

    def stop(self):
        if self.started:
            subprocess.run([DNSLAB, "stop", os.path.join(self.dir, "lab")],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def anchor(script, action, env=None):
    """Run tools/anchors/<script> <action>; returns (rc, output)."""
    # Output goes to a file, not a pipe: the daemons keep inherited
    # descriptors open, and a pipe would never see end of file.
    with tempfile.TemporaryFile() as out:
        p = subprocess.run([os.path.join(ANCHORS, script), action],
                           stdout=out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, env=env, timeout=120)
        out.seek(0)
        return p.returncode, out.read().decode(errors="replace")


def port_in_use(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False
