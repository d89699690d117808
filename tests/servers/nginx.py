"""Start Debian's nginx on a free loopback port serving one folder, for tests and benchmarks.

As a module: `with Nginx(root) as server: server.url("file.bin")`. With Nginx(root,
access_log=True) nginx logs every request, and `server.requests()` returns what it served
(request URI with its query, status, body bytes, all bytes, Range header): a test can count
the bytes a client read.
As a program: prints "PORT <n>" once nginx accepts connections and stops it when stdin closes.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONFIG = """
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
  {access_log}
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path {prefix}/client_body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  types {{ }}
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{port};
    root {root};
  }}
}}
"""


def available():
    return os.path.exists(NGINX)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LOG_FORMAT = """log_format counted '$request_uri $status $body_bytes_sent $bytes_sent "$http_range"';"""


class Nginx:
    def __init__(self, root, access_log=False):
        self.root = os.path.abspath(root)
        self.access_log = access_log
        self.prefix = tempfile.mkdtemp(prefix="ferry-nginx-")
        self.proc = None
        self.port = None

    def start(self):
        if not available():
            raise RuntimeError(f"nginx not found at {NGINX} (apt-get install nginx-light)")
        for _ in range(5):  # the free port may be taken between probing and binding
            self.port = free_port()
            conf = os.path.join(self.prefix, "nginx.conf")
            with open(conf, "w") as f:
                log = (f"{LOG_FORMAT} access_log {self.prefix}/access.log counted;" if self.access_log
                       else "access_log off;")
                f.write(CONFIG.format(prefix=self.prefix, port=self.port, root=self.root, access_log=log))
            self.proc = subprocess.Popen([NGINX, "-p", self.prefix, "-c", conf, "-e", os.path.join(self.prefix, "error.log")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return self
                except OSError:
                    time.sleep(0.02)
            self.stop()
        raise RuntimeError(f"nginx did not start; see {self.prefix}/error.log")

    def requests(self):
        """[(request URI, status, body bytes sent, bytes sent, Range header)] of every request
        answered so far (nginx writes a line as each request completes); needs access_log=True."""
        out = []
        with open(os.path.join(self.prefix, "access.log")) as f:
            for line in f:
                uri, status, body, total, rng = line.rstrip("\n").split(" ", 4)
                out.append((uri, int(status), int(body), int(total), rng.strip('"')))
        return out

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.prefix, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    with Nginx(args.root) as server:
        print(f"PORT {server.port}", flush=True)
        sys.stdin.read()
