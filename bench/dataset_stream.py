"""Tar shards -> samples: ferry vs webdataset on the same shards, local and over HTTP.

Run through `scripts/bench.sh --only datasets` (bench/run.py calls `run()`). Generated shards
(32 x 1,000 samples, each a 10 KiB "jpg" of random bytes plus a "cls"), page cache warm;
cases round-robin in this process, median of `--repeat`; each case's (key, field sizes) stream
is hashed and compared with webdataset's before timing.

  webdataset          wds.WebDataset(urls, shardshuffle=False): iterate every sample
  ferry.data.samples  the same from Python (C++ reading and grouping, dicts of bytes)
  ferry stream        the C++ path alone (`ferry stream --json`), no Python objects
"""

import hashlib
import io
import json
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench" / "shards"
SHARDS, PER_SHARD, JPG = 32, 1000, 10 * 1024


def make_shards() -> list[Path]:
    import numpy as np

    paths = [CACHE / f"train-{i:04d}.tar" for i in range(SHARDS)]
    if all(p.exists() for p in paths):
        return paths
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, path in enumerate(paths):
        tmp = path.with_suffix(".tmp")
        with tarfile.open(tmp, "w") as tar:
            for j in range(PER_SHARD):
                for field, data in (("jpg", rng.bytes(JPG)), ("cls", b"%d" % (j % 10))):
                    info = tarfile.TarInfo(f"s{i:04d}/{j:06d}.{field}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        tmp.rename(path)
    return paths


def fingerprint(samples) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    for s in samples:
        n += 1
        h.update(s["__key__"].encode())
        for field in sorted(k for k in s if not k.startswith("__")):
            h.update(b"%s=%d;" % (field.encode(), len(s[field])))
    return n, h.hexdigest()


def run(args, rows) -> None:
    sys.path.insert(0, str(REPO / "tests" / "servers"))
    import ferry.data
    import webdataset as wds
    from nginx import Nginx

    paths = make_shards()
    ferry_bin = str(Path(sys.executable).parent / "ferry")
    total_bytes = sum(p.stat().st_size for p in paths)
    with Nginx(CACHE) as server:
        for where, urls in (("local files", [str(p) for p in paths]),
                            ("HTTP (loopback nginx)", [server.url(p.name) for p in paths])):
            cases = [
                ("webdataset", lambda urls=urls: fingerprint(wds.WebDataset(urls, shardshuffle=False))),
                ("ferry.data.samples", lambda urls=urls: fingerprint(ferry.data.samples(urls))),
            ]
            want = cases[0][1]()
            for label, fn in cases[1:]:
                if fn() != want:
                    sys.exit(f"bench: {label} gave different samples than webdataset ({where})")
            cli = [ferry_bin, "stream", *urls, "--json"]
            if json.loads(subprocess.run(cli, capture_output=True, check=True).stdout)["samples"] != want[0]:
                sys.exit(f"bench: ferry stream counted a different number of samples ({where})")
            cases.append(("ferry stream (C++ only)", lambda cli=cli: subprocess.run(cli, capture_output=True, check=True)))
            times = {label: [] for label, _ in cases}
            for _ in range(args.repeat):
                for label, fn in cases:
                    start = time.perf_counter()
                    fn()
                    times[label].append(time.perf_counter() - start)
            base = statistics.median(times["webdataset"])
            for label, _ in cases:
                t = statistics.median(times[label])
                rows.append((f"tar shards -> samples, {where}",
                             f"{label}: {want[0] / t:,.0f} samples/s", total_bytes / t / 1e9,
                             base / t, "webdataset"))
