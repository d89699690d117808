import contextlib
import hashlib
import os
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "servers"))

import nginx  # noqa: E402
import radosgw  # noqa: E402
from fault_server import FaultServer  # noqa: E402

# The `ferry` command installed next to this Python by `pip install .`, or $FERRY_BIN (a build
# tree's binary, while working on the CLI).
FERRY_BIN = Path(os.environ.get("FERRY_BIN") or Path(sys.executable).parent / "ferry")


def make_bytes(size: int, seed: int = 0) -> bytes:
    """Bytes that differ at every offset in a way a shifted range would not reproduce."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    (folder / "data.bin").write_bytes(make_bytes(2_500_007))
    (folder / "empty.bin").write_bytes(b"")
    (folder / "one.bin").write_bytes(b"\x07")
    return folder


@contextlib.contextmanager
def nginx_serving(folder):
    """nginx on a free loopback port serving `folder`; skips the test where nginx is missing."""
    if not nginx.available():
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    with nginx.Nginx(folder) as server:
        yield server


@pytest.fixture(scope="session")
def nginx_server(data_dir):
    with nginx_serving(data_dir) as server:
        yield server


@pytest.fixture(scope="session")
def fault_server(data_dir):
    server = FaultServer(str(data_dir))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def fault_server_at():
    """fault_server_at(folder) -> the URL of a FaultServer serving `folder`, stopped after the test."""
    servers = []

    def start(folder):
        server = FaultServer(str(folder))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def ferry_bin():
    if not FERRY_BIN.exists():
        pytest.skip(f"{FERRY_BIN} missing: install the package with scripts/build.sh")
    return str(FERRY_BIN)


# ---------------------------------------------------------------------------------------------
# S3: one radosgw on loopback per test module that asks for it (it takes ~15 s to start).

S3_BUCKET = "ferry-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    boto3 = pytest.importorskip("boto3")
    if not radosgw.available():
        pytest.skip("Ceph radosgw is not installed (apt-get install ceph-mon ceph-osd radosgw)")
    with radosgw.Radosgw() as server:
        client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                              aws_access_key_id=server.access_key,
                              aws_secret_access_key=server.secret_key)
        client.create_bucket(Bucket=S3_BUCKET)
        yield server, client


@pytest.fixture
def s3_env(s3, monkeypatch, tmp_path):
    server, client = s3
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws of the machine's user
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_NO_SIGN_REQUEST"):
        monkeypatch.delenv(name, raising=False)
    return server, client, monkeypatch
