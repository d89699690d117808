"""ferry's benchmark runner: every workload is measured against its baseline in the same run, on
the same data, and every run checks its output. Prints a Markdown table with the ratios.

    scripts/bench.sh              # all workloads
    scripts/bench.sh --only http  # one of: file, http, datasets, s3, tensors, text (families: a
                                  # part of text), encoding, ray

Workloads
  file  local file -> memory: ferry ReadAt / ReadParallel vs a plain read() loop (C++, one
        process, page cache warm, same pre-faulted buffer)
  http  1 GiB over loopback nginx: `ferry cat` (1 and N connections) vs curl with the bytes
        discarded (`curl -s -o /dev/null`, and N curls each GETting 1/N of the file at once: the
        client-side ceiling on N connections), run round-robin; then 64 MiB from a loopback
        server that waits 50 ms before each response (tests/servers/fault_server.py latency=),
        as a far S3 endpoint does: ferry cat on 1 and N connections
  datasets  generated tar shards (text 1-16 KiB, binary 100 KiB) through a torch DataLoader:
        ferry.data.ShardDataset vs webdataset, SPDL (in process) and MosaicML streaming (MDS,
        own venv), 0-2 workers, samples and batches; PackedDataset vs raw encoding
        (bench/dataset_stream.py, bench/mosaic_stream.py)
  s3    1 GiB object on a loopback Ceph radosgw: ferry's parallel ranged read vs boto3
        download_fileobj and vs ferry on the local file (bench/s3_read.py)
  text  tokenizing English, multilingual text and code: ferry vs tokenizers and tiktoken, 1 thread
        and batch, ids checked equal (bench/tokenize_text.py)
  ray   a corpus to token shards on a local Ray cluster: ferry.ray.write_token_shards vs
        map_batches with tokenizers (parquet out), ids checked equal, and vs `ferry tokenize`
        (bench/ray_tokenize.py)
  tensors  a 2.2 GB bf16 checkpoint to CPU memory: ferry's modes (file and HTTP) vs safetensors,
        tensorizer and read(); each case a fresh process, outputs hashed and compared
        (bench/tensor_load.py)
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench"
sys.path.insert(0, str(REPO / "tests" / "servers"))
from nginx import Nginx  # noqa: E402
from timing import median_seconds  # noqa: E402

FERRY = Path(sys.executable).parent / "ferry"
BUILD = REPO / "build" / "release"


def sample_file(mib: int) -> Path:
    path = CACHE / f"random-{mib}MiB.bin"
    if not path.exists() or path.stat().st_size != mib << 20:
        CACHE.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".tmp"), "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        os.replace(path.with_suffix(".tmp"), path)
    return path


def sha256_of_command(cmd) -> str:
    h = hashlib.sha256()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
        for block in iter(lambda: proc.stdout.read(1 << 20), b""):
            h.update(block)
    if proc.returncode != 0:
        sys.exit(f"bench: {cmd} failed with {proc.returncode}")
    return h.hexdigest()


def sha256_of_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bench_file(args, rows):
    subprocess.run(["cmake", "--build", str(BUILD), "--target", "file_read_benchmark"], check=True,
                   stdout=subprocess.DEVNULL)
    path = sample_file(args.mib)
    out = subprocess.run([str(BUILD / "bench" / "file_read_benchmark"), str(path), "--repeat",
                          str(args.repeat), "--threads", str(os.cpu_count())],
                         check=True, capture_output=True, text=True).stdout
    results = [json.loads(line) for line in out.splitlines()]
    base = results[0]
    for r in results:
        rows.append(("file -> memory", r["case"] + (f" ({r['threads']} threads)" if r["threads"] > 1 else ""),
                     r["gbps"], r["gbps"] / base["gbps"], base["case"]))


def parallel_curls(url: str, size: int, n: int) -> list[str]:
    """One shell command: n curls at once, each GETting its 1/n of the object, bytes discarded."""
    step = -(-size // n)
    curls = [f"curl -s -r {i * step}-{min(size, (i + 1) * step) - 1} -o /dev/null '{url}' &" for i in range(n)]
    return ["sh", "-c", " ".join(curls) + " wait"]


def http_cases(url: str, size: int, connections: int) -> list[tuple[str, list[str]]]:
    cases = [("curl -s -o /dev/null", ["curl", "-s", "-o", "/dev/null", url]),
             (f"{connections} curls, 1/{connections} each, bytes discarded", parallel_curls(url, size, connections))]
    for n in (1, connections):
        cases.append((f"ferry cat, {n} connection{'s' if n > 1 else ''}",
                      [str(FERRY), "cat", url, "--connections", str(n)]))
    return cases


def measure_http(server_label, url, path, cases, baseline, args, rows):
    expected = sha256_of_file(path)
    for label, cmd in cases:  # every ferry configuration must produce the file's bytes
        if label.startswith("ferry") and sha256_of_command(cmd) != expected:
            sys.exit(f"bench: {label} produced wrong bytes")
    seconds = median_seconds({label: lambda cmd=cmd: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                              for label, cmd in cases}, args.repeat)
    size = path.stat().st_size
    for label, t in seconds.items():
        rows.append((server_label, label, size / t / 1e9, seconds[baseline] / t, baseline))


def bench_http(args, rows):
    path = sample_file(args.mib)
    with Nginx(path.parent) as server:
        url = server.url(path.name)
        cases = http_cases(url, path.stat().st_size, args.connections)
        measure_http("HTTP loopback nginx", url, path, cases, cases[0][0], args, rows)
        # ferry on N connections against the ceiling of N connections, too.
        gbps = {label: rate for group, label, rate, _, _ in rows if group == "HTTP loopback nginx"}
        n_curls, n_ferry = cases[1][0], cases[3][0]
        rows.append(("HTTP loopback nginx", n_ferry, gbps[n_ferry], gbps[n_ferry] / gbps[n_curls], n_curls))
    # A far server: each response waits 50 ms, which only more connections hide.
    small = sample_file(64)
    from fault_server import FaultServer
    import threading

    server = FaultServer(str(small.parent))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{small.name}?latency=50"
        cases = [case for case in http_cases(url, small.stat().st_size, args.connections) if case[0].startswith("ferry")]
        measure_http("HTTP loopback, 50 ms per response", url, small, cases, cases[0][0], args, rows)
    finally:
        server.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["file", "http", "datasets", "s3", "tensors", "text", "families", "encoding", "ray"])
    parser.add_argument("--quick", action="store_true", help="text: English corpus only")
    parser.add_argument("--mib", type=int, default=1024, help="size of the test file (MiB)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    if not FERRY.exists():
        sys.exit(f"bench: {FERRY} missing; run scripts/build.sh")
    if shutil.which("curl") is None:
        sys.exit("bench: curl missing (apt-get install curl)")

    rows = []
    if args.only in (None, "file"):
        bench_file(args, rows)
    if args.only in (None, "http"):
        bench_http(args, rows)
    if args.only in (None, "datasets"):
        import dataset_stream

        dataset_stream.run(args, rows)
    if args.only in (None, "s3"):
        import s3_read

        s3_read.run(args, rows)
    if args.only in (None, "tensors"):
        import tensor_load

        tensor_load.run(args, rows)
    if args.only in (None, "text"):
        import tokenize_text

        tokenize_text.run(args, rows)
    if args.only == "families":  # a part of "text"
        import tokenize_text

        tokenize_text.run_other_families(args, rows)
    if args.only in (None, "encoding"):
        import encoding_api

        encoding_api.run(args, rows)
    if args.only in (None, "ray"):
        import ray_tokenize

        ray_tokenize.run(args, rows)
    print(f"\n{args.mib} MiB file (io workloads), median of {args.repeat} runs, {os.cpu_count()} cores\n")
    print("| workload | case | GB/s | ratio | baseline |")
    print("|---|---|---:|---:|---|")
    for workload, case, gbps, ratio, baseline in rows:
        print(f"| {workload} | {case} | {gbps:.2f} | {ratio:.2f}x | {baseline} |")


if __name__ == "__main__":
    main()
