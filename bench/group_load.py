"""Group loads over loopback HTTP: one process vs a gloo group of N, on one generated file.

    PYTHONPATH=<ferry package> python bench/group_load.py [--mb 200] [--ranks 1 2 4] [--repeat 3]

Each group is N fresh processes (init by file://) that load the file from a loopback nginx with
ferry.torch.load_file(url, process_group=WORLD) after a barrier (N=1: no group, a plain eager
load). Reported per N: the slowest rank's load time (median of --repeat), the body bytes nginx
served to each rank (its access log), and a check: every rank's tensors hash to the file's.
One machine's loopback is not a network: this measures the overheads of splitting and
exchanging, not the gain over a storage link that one reader cannot fill.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "servers"))


def digest(state) -> str:
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def worker(rank: int, world: int, rendezvous: str, url: str, out: str) -> None:
    import torch.distributed as dist

    import ferry.torch

    group = None
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=300))
        group = dist.group.WORLD
        dist.barrier()
    start = time.perf_counter()
    state = ferry.torch.load_file(url, process_group=group)
    seconds = time.perf_counter() - start
    with open(out, "w") as f:
        json.dump({"seconds": seconds, "digest": digest(state)}, f)
    os._exit(0)


def make_file(folder: Path, mb: int) -> Path:
    import torch

    from ferry.torch import save_file

    path = folder / f"group-{mb}mb.safetensors"
    g = torch.Generator().manual_seed(0)
    state, left, i = {}, mb << 20, 0
    while left > 0:  # 8 MiB bf16 tensors with a few odd sizes, as a model's layers are
        n = min(left, (8 << 20) + (i % 3) * 4096) // 2
        state[f"layers.{i}.weight"] = torch.randn(n, generator=g).to(torch.bfloat16)
        left -= 2 * n
        i += 1
    save_file(state, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        rank, world, rendezvous, url, out = args.worker
        worker(int(rank), int(world), rendezvous, url, out)
        return

    from nginx import Nginx

    import ferry.torch

    with tempfile.TemporaryDirectory(prefix="ferry-group-bench-") as tmp:
        folder = Path(tmp)
        path = make_file(folder, args.mb)
        size = path.stat().st_size
        want = digest(ferry.torch.load_file(path))
        with Nginx(folder, access_log=True) as server:
            for world in args.ranks:
                times, per_rank = [], {}
                for rep in range(args.repeat):
                    run = folder / f"run-{world}-{rep}"
                    run.mkdir()
                    tag = f"w{world}r{rep}"
                    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(r), str(world),
                                               str(run / "rendezvous"), server.url(f"{path.name}?{tag}&rank={r}"),
                                               str(run / f"{r}.json")]) for r in range(world)]
                    for p in procs:
                        if p.wait(timeout=600) != 0:
                            sys.exit(f"a rank of the {world}-rank group failed")
                    results = [json.loads((run / f"{r}.json").read_text()) for r in range(world)]
                    if any(res["digest"] != want for res in results):
                        sys.exit(f"{world} ranks: a rank's tensors differ from the file's")
                    times.append(max(res["seconds"] for res in results))
                    if rep == 0:
                        for uri, _, body, _, _ in server.requests():
                            if f"?{tag}&" in uri:
                                r = int(uri.rsplit("rank=", 1)[1])
                                per_rank[r] = per_rank.get(r, 0) + body
                total = sum(per_rank.values())
                print(f"{world} rank(s): {statistics.median(times):.3f} s (slowest rank, median of "
                      f"{args.repeat}: {', '.join(f'{t:.3f}' for t in times)}); served {total / size:.4f}x "
                      f"the {size / 1e6:.1f} MB file, by rank {dict(sorted(per_rank.items()))}", flush=True)


if __name__ == "__main__":
    main()
