"""S3 -> memory: ferry's parallel ranged read vs boto3 against a loopback Ceph radosgw.

Run through `scripts/bench.sh --only s3` (bench/run.py calls `run()`). One object of `--mib`
MiB (random bytes) is uploaded once; then, round-robin, median of `--repeat`, in this process:

  boto3 download_fileobj   boto3's default TransferConfig (8 MiB parts, 10 threads) into a BytesIO
  ferry, N connections     ferry.io.read("s3://...", parallelism=N): N signed ranged GETs at once
  ferry, local file        the same bytes from a local file (the no-network reference)
  curl -o /dev/null        one GET of a presigned URL by curl, bytes discarded: what this
                           server gives the cheapest possible client (the ceiling on this machine)

Each case's bytes are checked (SHA-256) before timing.
"""

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

from timing import median_seconds

REPO = Path(__file__).resolve().parent.parent


def run(args, rows) -> None:
    sys.path.insert(0, str(REPO / "tests" / "servers"))
    import boto3
    import ferry
    import radosgw
    from run import sample_file

    if not radosgw.available():
        sys.exit("bench: Ceph radosgw is not installed (scripts/bootstrap.sh test installs it)")
    path = sample_file(args.mib)
    data = path.read_bytes()
    expected = hashlib.sha256(data).hexdigest()
    with radosgw.Radosgw(memory_bytes=(args.mib << 20) * 2 + (1 << 30)) as server:
        client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                              aws_access_key_id=server.access_key,
                              aws_secret_access_key=server.secret_key)
        client.create_bucket(Bucket="bench")
        client.upload_file(str(path), "bench", path.name)
        del data
        os.environ.update({"AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": server.access_key,
                           "AWS_SECRET_ACCESS_KEY": server.secret_key, "AWS_REGION": "us-east-1"})
        uri = f"s3://bench/{path.name}"

        def boto3_download():
            buffer = io.BytesIO()
            client.download_fileobj("bench", path.name, buffer)
            return buffer.getbuffer()

        cases = [("boto3 download_fileobj (default config)", boto3_download)]
        for n in (1, args.connections, 2 * args.connections):
            cases.append((f"ferry, {n} connection{'s' if n > 1 else ''}",
                          lambda n=n: ferry.io.read(uri, parallelism=n)))
        cases.append(("ferry, local file", lambda: ferry.io.read(path)))
        from botocore.config import Config

        presigned = boto3.client(
            "s3", endpoint_url=server.endpoint, region_name="us-east-1",
            aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
            config=Config(signature_version="s3v4")).generate_presigned_url(
                "get_object", Params={"Bucket": "bench", "Key": path.name})
        cases.append(("curl -o /dev/null (presigned GET)",
                      lambda: subprocess.run(["curl", "-sf", "-o", "/dev/null", presigned], check=True)))
        for label, fn in cases:
            if label.startswith("curl"):
                continue  # discards the bytes; -f makes an error status fail the run
            if hashlib.sha256(fn()).hexdigest() != expected:
                sys.exit(f"bench: {label} returned wrong bytes")
        seconds = median_seconds(dict(cases), args.repeat)
    size = args.mib << 20
    base = seconds[cases[0][0]]
    for label, t in seconds.items():
        rows.append(("S3 loopback radosgw -> memory", label, size / t / 1e9, base / t, cases[0][0]))
