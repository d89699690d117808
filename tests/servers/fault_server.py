"""A loopback HTTP server that serves files with injected faults, for ferry's retry tests.

Each request's query string chooses the faults; a per-`id` request counter lets a fault hit only
the first few requests, the way a real flaky link or a restarting server does:

  fail=STATUS&fails=K        the first K requests get STATUS (503, 429, ...) with Retry-After: 0
  drop_after=B&drops=K       the first K responses send B body bytes, then close the connection (FIN)
  reset_after=B&resets=K     the same, but reset the connection (RST)
  stall_after=B&stalls=K     the first K responses send B body bytes, then go silent for a minute
  latency=MS                 every response waits MS milliseconds first (a far server's round trip)
  short=B                    206 responses carry at most B bytes (less than asked; legal HTTP)
  ignore_range=1             answer 200 with the whole file, as servers without Range support do
  chunked=1                  send the body with chunked encoding and no Content-Length
  drip=B&drip_ms=MS          send the body B bytes at a time, MS milliseconds apart (a slow link)
  redirect=URL               always answer 302 to URL (another host, file://, ...)
  change_after=N&grow=G      after N requests the object is "replaced": new ETag and G extra bytes
  status=CODE                always answer CODE
  bare_416=1                 a 416 carries no Content-Range (as radosgw sends for empty objects)

S3 clients build their own URLs, so for them a fault is set on the server instead:
FaultServer(root, s3_slowdown=K) answers the first K requests, whatever their path, as a
throttled S3 does: 503 with an S3 XML error body, code SlowDown (and Retry-After: 0, so tests
need not wait out real back-off). FaultServer(root, s3_region="eu-west-1") refuses requests
signed for another region as AWS S3 does (radosgw accepts any region): 400
AuthorizationHeaderMalformed naming the region expected, with <Region> and x-amz-bucket-region.

`server.bytes_served[path]` counts the body bytes answered for each path (the size of every
206 or 200 body, even one a fault then cuts short), so a test can check how much a client read.

Run as a program it prints "PORT <n>" once listening and serves until its stdin closes, so a test
that dies never leaves it behind.
"""

import argparse
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LAST_MODIFIED = "Sat, 01 Jan 2000 00:00:00 GMT"


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root, port=0, s3_slowdown=0, s3_region=None):
        super().__init__(("127.0.0.1", port), Handler)
        self.root = root
        self.s3_slowdown = s3_slowdown
        self.s3_region = s3_region
        self.counters = {}
        self.bytes_served = {}
        self.lock = threading.Lock()

    def add_bytes_served(self, path, n):
        with self.lock:
            self.bytes_served[path] = self.bytes_served.get(path, 0) + n

    def count(self, key):
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + 1
            return self.counters[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def do_GET(self):
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        num = lambda name, default=0: int(q.get(name, default))
        n = self.server.count(q.get("id", self.path))
        if "latency" in q:
            time.sleep(num("latency") / 1000)
        if self.server.s3_slowdown and self.server.count("(every request)") <= self.server.s3_slowdown:
            return self.reply_s3_error(503, "SlowDown", "Please reduce your request rate.", url.path)
        if self.server.s3_region:
            # Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/s3/aws4_request, ...
            scope = self.headers.get("Authorization", "").split("Credential=")[-1].split(",")[0].split("/")
            signed_for = scope[2] if len(scope) > 2 else ""
            if signed_for != self.server.s3_region:
                return self.reply_s3_error(
                    400, "AuthorizationHeaderMalformed",
                    f"The authorization header is malformed; the region '{signed_for}' is wrong; "
                    f"expecting '{self.server.s3_region}'", url.path, region=self.server.s3_region)

        if "status" in q:
            return self.reply_status(num("status"))
        if "redirect" in q:
            self.send_response(302)
            self.send_header("Location", q["redirect"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if n <= num("fails"):
            return self.reply_status(num("fail", 503), retry_after="0")

        path = os.path.join(self.server.root, url.path.lstrip("/"))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return self.reply_status(404)
        etag = '"v1"'
        if "change_after" in q and n > num("change_after"):
            data += b"\0" * num("grow")
            etag = '"v2"'

        size = len(data)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng and not q.get("ignore_range"):
            first, _, last = rng.removeprefix("bytes=").partition("-")
            start = int(first)
            end = min(int(last) if last else size - 1, size - 1)
            if start >= size:
                self.send_response(416)
                if not q.get("bare_416"):
                    self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if "short" in q:
                end = min(end, start + num("short") - 1)
            status = 206
        body = data[start:end + 1]
        self.server.add_bytes_served(url.path, len(body))
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        if q.get("chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("ETag", etag)
            self.end_headers()
            for i in range(0, len(body), 65536):
                piece = body[i:i + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", LAST_MODIFIED)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

        if n <= num("drops") and "drop_after" in q:
            return self.send_then_close(body[:num("drop_after")], reset=False)
        if n <= num("resets") and "reset_after" in q:
            return self.send_then_close(body[:num("reset_after")], reset=True)
        if n <= num("stalls") and "stall_after" in q:
            self.wfile.write(body[:num("stall_after")])
            self.wfile.flush()
            time.sleep(60)
            return self.send_then_close(b"", reset=True)
        try:
            if "drip" in q:
                for i in range(0, len(body), num("drip")):
                    self.wfile.write(body[i:i + num("drip")])
                    self.wfile.flush()
                    time.sleep(num("drip_ms") / 1000)
                return
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def reply_status(self, code, retry_after=None):
        body = f"status {code}\n".encode()
        self.send_response(code)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def reply_s3_error(self, code, s3_code, message, resource, region=None):
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{s3_code}</Code>'
                f"<Message>{message}</Message><Resource>{resource}</Resource>"
                + (f"<Region>{region}</Region>" if region else "")
                + "<RequestId>FAULT</RequestId></Error>").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/xml")
        if region:
            self.send_header("x-amz-bucket-region", region)
        self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_then_close(self, prefix, reset):
        try:
            self.wfile.write(prefix)
            self.wfile.flush()
            if reset:  # SO_LINGER with a zero timeout turns close() into a RST
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True


def serve_until_stdin_closes(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
    server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    serve_until_stdin_closes(FaultServer(args.root))
