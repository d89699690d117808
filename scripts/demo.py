"""ferry's demo: move bytes from disk and from a loopback HTTP server into memory, verify them,
and report throughput. Uses only data it generates (in .cache/demo/)."""

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

import ferry

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "servers"))
from nginx import Nginx  # noqa: E402


def sample_file(folder: Path, mib: int) -> Path:
    path = folder / f"sample-{mib}MiB.bin"
    if not path.exists() or path.stat().st_size != mib << 20:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(2026)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for _ in range(mib):
                f.write(rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes())
        os.replace(tmp, path)
    return path


def timed_read(label, uri, expected, repeat=3, **kwargs):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        data = ferry.io.read(uri, **kwargs)
        best = min(best, time.perf_counter() - start)
        if hashlib.sha256(data).hexdigest() != expected:
            sys.exit(f"demo: {label}: bytes differ from the file")
    print(f"  {label:<34} {len(data) / best / 1e9:6.2f} GB/s   ({len(data) >> 20} MiB, sha256 ok)")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256, help="size of the sample file")
    args = parser.parse_args()

    path = sample_file(REPO / ".cache" / "demo", args.mib)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"ferry {ferry.__version__} ({ferry.cuda_description()})")
    print(f"sample: {path.relative_to(REPO)}")
    timed_read("local file, 1 thread", path, expected)
    timed_read("local file, 2 threads", path, expected, parallelism=2)
    with Nginx(path.parent) as server:
        url = server.url(path.name)
        timed_read("HTTP (nginx, loopback), 1 conn", url, expected, parallelism=1)
        timed_read("HTTP (nginx, loopback), 4 conns", url, expected, parallelism=4)


if __name__ == "__main__":
    main()
