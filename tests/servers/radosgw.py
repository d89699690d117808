"""A real S3 server on loopback: Ceph's radosgw over a one-node, in-memory Ceph cluster.

As a module: `with Radosgw() as s3: s3.endpoint, s3.access_key, s3.secret_key`.
As a program: prints "PORT <n>" once S3 answers and stops everything when stdin closes.

radosgw 16 (Debian 12) needs RADOS, so this starts one monitor, one OSD on the `memstore`
object store (data in memory, gone on exit) and radosgw with the beast front end, all as child
processes in the foreground, in a temporary folder; about 15 s to start. Needs the Debian
packages ceph-mon, ceph-osd and radosgw (`available()` says whether they are installed).
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

ACCESS_KEY = "FERRYTESTACCESSKEY01"
SECRET_KEY = "ferry/test+secret=key0123456789abcdefghij"
TOOLS = ("ceph-mon", "ceph-osd", "radosgw", "ceph", "ceph-authtool", "monmaptool", "radosgw-admin")

CONFIG = """[global]
fsid = {fsid}
mon host = v1:127.0.0.1:{mon_port}
mon initial members = a
public network = 127.0.0.0/8
keyring = {d}/keyring
run dir = {d}/run
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
pid file = {d}/run/$name.pid
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
ms bind ipv6 = false
[mon]
mon data = {d}/mon.$id
[osd]
osd data = {d}/osd$id
keyring = {d}/osd$id/keyring
osd objectstore = memstore
memstore device bytes = {memory}
osd max object name len = 460
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {d}/rgw
keyring = {d}/rgw/keyring
"""


def available():
    return all(shutil.which(t) for t in TOOLS)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Radosgw:
    def __init__(self, memory_bytes=3 << 30):
        self.dir = tempfile.mkdtemp(prefix="ferry-radosgw-")
        self.memory_bytes = memory_bytes
        self.procs = []
        self.port = None
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def _run(self, *args, **kwargs):
        return subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=120, **kwargs)

    def _daemon(self, *args):
        log = open(os.path.join(self.dir, "log", f"{args[0]}.out"), "w")
        self.procs.append(subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def _wait(self, what, check, seconds=90):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"radosgw: a daemon exited while waiting for {what}; logs in {self.dir}/log")
            if check():
                return
            time.sleep(0.3)
        raise RuntimeError(f"radosgw: timed out waiting for {what}; logs in {self.dir}/log")

    def start(self):
        if not available():
            raise RuntimeError("Ceph is not installed (apt-get install ceph-mon ceph-osd radosgw)")
        d = self.dir
        for sub in ("run", "log", "mon.a", "osd0", "rgw"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        fsid = str(uuid.uuid4())
        mon_port, self.port = free_port(), free_port()
        conf = os.path.join(d, "ceph.conf")
        with open(conf, "w") as f:
            f.write(CONFIG.format(fsid=fsid, mon_port=mon_port, rgw_port=self.port, d=d,
                                  memory=self.memory_bytes))
        c = ["-c", conf]
        keyring = os.path.join(d, "keyring")
        self._run("ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
        self._run("ceph-authtool", keyring, "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *",
                  "--cap", "osd", "allow *", "--cap", "mgr", "allow *")
        monmap = os.path.join(d, "monmap")
        self._run("monmaptool", "--create", "--addv", "a", f"[v1:127.0.0.1:{mon_port}]", "--fsid", fsid, monmap)
        self._run("ceph-mon", *c, "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring)
        self._daemon("ceph-mon", *c, "-f", "-i", "a")
        osd_uuid = str(uuid.uuid4())
        osd_id = self._run("ceph", *c, "osd", "new", osd_uuid).stdout.strip()
        osd_keyring = os.path.join(d, f"osd{osd_id}", "keyring")
        os.makedirs(os.path.dirname(osd_keyring), exist_ok=True)
        self._run("ceph-authtool", "--create-keyring", osd_keyring, "--gen-key", "-n", f"osd.{osd_id}")
        self._run("ceph", *c, "auth", "add", f"osd.{osd_id}", "osd", "allow *", "mon", "allow profile osd",
                  "mgr", "allow profile osd", "-i", osd_keyring)
        self._run("ceph-osd", *c, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
        self._daemon("ceph-osd", *c, "-f", "-i", osd_id)
        self._run("ceph", *c, "auth", "get-or-create", "client.rgw.a", "mon", "allow rw", "osd", "allow rwx",
                  "-o", os.path.join(d, "rgw", "keyring"))
        self._wait("the OSD", lambda: "1 up" in self._run("ceph", *c, "osd", "stat").stdout)
        self._daemon("radosgw", *c, "-f", "-n", "client.rgw.a")

        def answers():
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=1).close()
                return True
            except urllib.error.HTTPError:
                return True  # any HTTP answer means the front end is up
            except OSError:
                return False

        self._wait("S3 on port %d" % self.port, answers)
        self._run("radosgw-admin", *c, "user", "create", "--uid=ferry", "--display-name=ferry",
                  f"--access-key={ACCESS_KEY}", f"--secret-key={SECRET_KEY}")
        return self

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with Radosgw() as server:
        print(f"PORT {server.port}", flush=True)
        sys.stdin.read()
