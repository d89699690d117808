"""Checkpoint loading to CPU memory: ferry's four modes vs safetensors, tensorizer and read().

Run through `scripts/bench.sh --only tensors` (bench/run.py calls `run()` below). Each case runs
in a fresh process (so no case inherits another's page-faulted memory or allocator state) and
reports its own load time and peak memory above the process's baseline; the cases run
round-robin, median of `--repeat`. Before timing, every case's tensors are hashed and compared
with the checkpoint's, so a fast but wrong loader cannot win.

The checkpoint is generated (random bytes, TinyLlama-1.1B shapes in bf16: 201 tensors, 2.2 GB)
and cached under .cache/bench. The warm rows read it from the page cache. The cold rows drop its
pages first (posix_fadvise DONTNEED, checked with fincore) before each case, and compare with the
device's limit as `fio` measures it with O_DIRECT at queue depth 1 and 32. On a VM the host may
still cache the disk image, so "cold" there means "not in this kernel's page cache".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench"
PAGE = 4096


def tinyllama_shapes() -> dict[str, tuple[int, ...]]:
    hidden, inter, vocab, kv, layers = 2048, 5632, 32000, 256, 22
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "lm_head.weight": (vocab, hidden),
              "model.norm.weight": (hidden,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "self_attn.q_proj.weight": (hidden, hidden),
            p + "self_attn.k_proj.weight": (kv, hidden),
            p + "self_attn.v_proj.weight": (kv, hidden),
            p + "self_attn.o_proj.weight": (hidden, hidden),
            p + "mlp.gate_proj.weight": (inter, hidden),
            p + "mlp.up_proj.weight": (inter, hidden),
            p + "mlp.down_proj.weight": (hidden, inter),
            p + "input_layernorm.weight": (hidden,),
            p + "post_attention_layernorm.weight": (hidden,),
        })
    return shapes


def make_checkpoint() -> tuple[Path, Path]:
    """The safetensors checkpoint and the same tensors in tensorizer's format."""
    import numpy as np
    import torch

    st_path = CACHE / "tinyllama-bf16.safetensors"
    tz_path = CACHE / "tinyllama-bf16.tensors"
    if st_path.exists() and tz_path.exists():
        return st_path, tz_path
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    tensors = {}
    for name, shape in tinyllama_shapes().items():
        n = int(np.prod(shape))
        tensors[name] = torch.from_numpy(rng.integers(0, 1 << 16, n, dtype=np.uint16)).view(torch.bfloat16).reshape(shape)
    import ferry.torch
    from tensorizer import TensorSerializer

    ferry.torch.save_file(tensors, st_path)
    serializer = TensorSerializer(str(tz_path) + ".tmp")
    serializer.write_state_dict(tensors)
    serializer.close()
    os.replace(str(tz_path) + ".tmp", tz_path)
    return st_path, tz_path


# --- the worker: one case, one process -----------------------------------------------------


def touch(t) -> int:
    """One byte per page, so lazily mapped memory is really read (and the work is not skipped)."""
    import torch

    flat = t.reshape(-1).view(torch.uint8)
    return int(flat[::PAGE].sum()) if flat.numel() else 0


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def load_case(case: str, st_path: str, tz_path: str, url: str | None, sink) -> None:
    """Load every tensor, handing each (name, tensor) to `sink` in the case's natural order."""
    import numpy as np
    import torch

    if case == "read()":
        size = os.path.getsize(st_path)
        buf = np.empty(size, dtype=np.uint8)
        with open(st_path, "rb", buffering=0) as f:
            view = memoryview(buf)
            done = 0
            while done < size:
                done += f.readinto(view[done:])
        sink("file", torch.from_numpy(buf))
    elif case.startswith("ferry "):
        import ferry

        mode = case.split()[1]
        source = url if "HTTP" in case else st_path
        with ferry.safe_open(source, framework="pt", mode=mode) as f:
            for name in f.keys():
                sink(name, f.get_tensor(name))
    elif case == "safetensors safe_open":
        from safetensors import safe_open

        with safe_open(st_path, framework="pt") as f:
            for name in f.keys():
                sink(name, f.get_tensor(name))
    elif case == "safetensors load_file":
        from safetensors.torch import load_file

        for name, t in load_file(st_path).items():
            sink(name, t)
    elif case == "tensorizer":
        from tensorizer import TensorDeserializer

        with TensorDeserializer(tz_path, device="cpu") as d:
            for name, t in d.items():
                sink(name, t)
    else:
        raise SystemExit(f"unknown case {case!r}")


def load_into_preallocated(st_path: str, sink):
    """ferry plaid into tensors that already exist (a module's parameters): bytes stream from the
    staging buffers straight into them, so host memory beyond the destination is the staging.
    Returns the RSS baseline (destination allocated and faulted in) and the start time."""
    import ferry
    import torch

    with ferry.safe_open(st_path, mode="lazy") as f:  # the header only: lazy reads nothing yet
        dest = {n: torch.empty(f.shape(n), dtype=torch.bfloat16) for n in f.offset_keys()}
    for t in dest.values():
        t.view(-1).view(torch.uint8)[::PAGE] = 0  # fault the destination in before timing
    base = rss_kib("VmRSS")
    start = time.perf_counter()
    with ferry.safe_open(st_path, framework="pt", mode="plaid") as f:
        for name in f.keys():
            f.read_into(name, dest[name])
            sink(name, dest[name])
    return base, start


def worker(args) -> None:
    import torch  # noqa: F401  (imported before the baseline so it is not counted)

    hashes = {} if args.check else None
    checksum = 0

    def sink(name, t):
        nonlocal checksum
        if hashes is not None:
            hashes[name] = hashlib.blake2b(t.reshape(-1).view(torch.uint8).numpy().tobytes(), digest_size=16).hexdigest()
        checksum += touch(t)

    if args.case == "ferry plaid read_into":
        base, start = load_into_preallocated(args.st, sink)
    else:
        base = rss_kib("VmRSS")
        start = time.perf_counter()
        load_case(args.case, args.st, args.tz, args.url, sink)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mib": (rss_kib("VmHWM") - base) / 1024,
                      "hashes": hashes}))


# --- the driver ----------------------------------------------------------------------------


CASES = ["read()", "ferry eager", "ferry lazy", "ferry plaid", "ferry plaid read_into", "ferry mmap",
         "safetensors safe_open", "safetensors load_file", "tensorizer"]


def run_case(case, st, tz, url, check=False) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--case", case, "--st", str(st), "--tz", str(tz)]
    if url:
        cmd += ["--url", url]
    if check:
        cmd.append("--check")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(args, rows) -> None:
    sys.path.insert(0, str(REPO / "tests" / "servers"))
    from nginx import Nginx

    st, tz = make_checkpoint()
    data_bytes = os.path.getsize(st)  # header included: 4 KiB of 2.2 GB
    subprocess.run(["cat", str(st), str(tz)], check=True, stdout=subprocess.DEVNULL)  # warm
    with Nginx(st.parent) as server:
        url = server.url(st.name)
        cases = CASES + ["ferry eager over HTTP", "ferry plaid over HTTP"]
        want = run_case("ferry lazy", st, tz, None, check=True)["hashes"]
        for case in cases:
            if case in ("read()",):
                continue
            got = run_case(case, st, tz, url, check=True)["hashes"]
            if got != want:
                sys.exit(f"bench: {case} loaded different bytes")
        results = {c: [] for c in cases}
        for _ in range(args.repeat):
            for case in cases:
                results[case].append(run_case(case, st, tz, url))
    base = statistics.median(r["seconds"] for r in results["read()"])
    for case in cases:
        t = statistics.median(r["seconds"] for r in results[case])
        peak = max(r["peak_mib"] for r in results[case])
        rows.append(("checkpoint -> CPU (2.2 GB bf16)", f"{case} (peak +{peak:.0f} MiB)",
                     data_bytes / t / 1e9, base / t, "read() into a fresh buffer"))
    cold_rows(st, tz, args.repeat, rows)


# --- cold loads ----------------------------------------------------------------------------


COLD_CASES = ["ferry eager", "ferry plaid", "ferry mmap", "safetensors load_file"]


def evict(path: Path) -> None:
    """Drops the file's pages from the page cache (they are clean: nothing writes the file);
    exits if more than 1% stay resident, so a row is called cold only when it is."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    resident = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                              check=True, capture_output=True, text=True).stdout
    if int(resident) > os.path.getsize(path) // 100:
        sys.exit(f"bench: {path}: {int(resident)} bytes still in the page cache after DONTNEED")


def fio_gbps(path: Path, iodepth: int, block: str) -> float:
    """Sequential O_DIRECT read of the whole file by fio (libaio) at `iodepth` reads in flight."""
    out = subprocess.run(["fio", "--name=limit", f"--filename={path}", "--readonly", "--rw=read",
                          "--direct=1", "--ioengine=libaio", f"--iodepth={iodepth}", f"--bs={block}",
                          "--output-format=json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["jobs"][0]["read"]["bw_bytes"] / 1e9


def cold_rows(st: Path, tz: Path, repeat: int, rows) -> None:
    import shutil

    if shutil.which("fio") is None or shutil.which("fincore") is None:
        sys.exit("bench: the cold rows need fio and fincore (apt-get install fio util-linux)")
    workload = "checkpoint -> CPU, cold (2.2 GB bf16)"
    limits = {f"fio O_DIRECT QD{qd} bs={bs}": statistics.median(fio_gbps(st, qd, bs) for _ in range(repeat))
              for qd, bs in ((1, "16M"), (32, "1M"))}
    best = max(limits.values())
    results = {c: [] for c in COLD_CASES}
    for _ in range(repeat):
        for case in COLD_CASES:
            evict(st)
            results[case].append(run_case(case, st, tz, None))
    size = os.path.getsize(st)
    for name, gbps in limits.items():
        rows.append((workload, name, gbps, gbps / best, "fio O_DIRECT, best queue depth"))
    for case in COLD_CASES:
        t = statistics.median(r["seconds"] for r in results[case])
        peak = max(r["peak_mib"] for r in results[case])
        rows.append((workload, f"{case} (peak +{peak:.0f} MiB)", size / t / 1e9, size / t / 1e9 / best,
                     "fio O_DIRECT, best queue depth"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--case")
    parser.add_argument("--st")
    parser.add_argument("--tz")
    parser.add_argument("--url")
    parser.add_argument("--check", action="store_true")
    worker(parser.parse_args())
