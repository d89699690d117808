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
