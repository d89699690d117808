"""One rank of a gloo group for test_tensor_distributed.py: runs a list of group loads, saves
what each returned (or raised) for the test to compare, and exits.

    python group_worker.py RANK WORLD RENDEZVOUS_FILE CASES_JSON OUT_DIR [BACKEND]

BACKEND is gloo (the default) or nccl (rank r then uses cuda:r).

Each case: {"id", "call": "load_file" | "safe_open" | "load_into_module", "uri", optional
"uri_by_rank" {rank: uri}, "names_by_rank" {rank: [names]}, "kwargs", "late_ranks" (ranks that
make their call only once every other rank's call has returned or raised: how a test makes a
rank arrive too late without depending on timing)}.
Results: OUT_DIR/<id>.<rank>.pt (the tensors), or OUT_DIR/<id>.<rank>.json (the error, with the
seconds the call took).
"""

import datetime
import json
import os
import sys
import time
import traceback

import torch
import torch.distributed as dist

import ferry
import ferry.torch


def module_for(shapes):
    """A module whose state_dict has exactly these names, shapes and dtypes (as buffers)."""
    root = torch.nn.Module()
    for name, (shape, dtype) in shapes.items():
        *path, leaf = name.split(".")
        owner = root
        for part in path:
            if not hasattr(owner, part):
                owner.add_module(part, torch.nn.Module())
            owner = getattr(owner, part)
        owner.register_buffer(leaf, torch.zeros(shape, dtype=dtype))
    return root


def run(case, rank, group):
    uri = case.get("uri_by_rank", {}).get(str(rank), case["uri"])
    kwargs = dict(case.get("kwargs", {}))
    kwargs.update(case.get("kwargs_by_rank", {}).get(str(rank), {}))
    names = case.get("names_by_rank", {}).get(str(rank), case.get("names"))
    if names is not None:
        kwargs["names"] = names
    if case["call"] == "load_file":
        return ferry.torch.load_file(uri, process_group=group, **kwargs)
    if case["call"] == "safe_open":
        with ferry.safe_open(uri, framework="pt", process_group=group, **kwargs) as f:
            out = {name: f.get_tensor(name).clone() for name in f.keys()}
            if "w.bf16" in out:
                out["slice:w.bf16[1:3, ::2]"] = f.get_slice("w.bf16")[1:3, ::2]
            return out
    if case["call"] == "load_into_module":
        with ferry.safe_open(uri, framework="pt", device="meta") as f:  # shapes only
            shapes = {n: (f.get_tensor(n).shape, f.get_tensor(n).dtype) for n in f.keys()}
        for name in case.get("module_drops_by_rank", {}).get(str(rank), []):
            shapes.pop(name)
        for name, shape in case.get("module_reshapes_by_rank", {}).get(str(rank), {}).items():
            shapes[name] = (tuple(shape), shapes[name][1])
        module = module_for(shapes)
        missing, unexpected = ferry.torch.load_into_module(module, uri, process_group=group, **kwargs)
        out = dict(module.state_dict())
        out["missing"] = torch.tensor([len(missing)])
        out["unexpected"] = torch.tensor([len(unexpected)])
        return out
    raise ValueError(f"unknown call {case['call']}")


def main():
    rank, world = int(sys.argv[1]), int(sys.argv[2])
    rendezvous, cases_json, out_dir = sys.argv[3], sys.argv[4], sys.argv[5]
    backend = sys.argv[6] if len(sys.argv) > 6 else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"file://{rendezvous}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    with open(cases_json) as f:
        cases = json.load(f)
    for case in cases:
        group = dist.group.WORLD
        if rank in case.get("late_ranks", []):  # arrive only once the others have finished
            others = [os.path.join(out_dir, f"{case['id']}.{r}") for r in range(world) if r not in case["late_ranks"]]
            while not all(os.path.exists(o + ".json") or os.path.exists(o + ".pt") for o in others):
                time.sleep(0.05)
        start = time.monotonic()
        base = os.path.join(out_dir, f"{case['id']}.{rank}")
        try:
            result = run(case, rank, group)
        except Exception as e:  # the test checks which ranks raised what
            with open(base + ".json.tmp", "w") as f:
                json.dump({"type": type(e).__name__, "message": str(e), "seconds": time.monotonic() - start,
                           "ferry": isinstance(e, ferry.Error), "traceback": traceback.format_exc()}, f)
            os.rename(base + ".json.tmp", base + ".json")
            continue
        torch.save({k: v.cpu() for k, v in result.items()}, base + ".pt.tmp")
        with open(base + ".devices.tmp", "w") as f:
            json.dump(sorted({str(v.device) for v in result.values()}), f)
        os.rename(base + ".devices.tmp", base + ".devices")
        os.rename(base + ".pt.tmp", base + ".pt")
    # Leave only once every rank has its results: a rank that exits closes its connections,
    # which would turn another rank's pending wait (a timeout under test) into a different error.
    deadline = time.monotonic() + 600
    for case in cases:
        for r in range(world):
            base = os.path.join(out_dir, f"{case['id']}.{r}")
            while not (os.path.exists(base + ".json") or os.path.exists(base + ".pt")):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
    sys.stdout.flush()
    # A case that leaves the group timed out makes a clean shutdown wait on it: leave at once.
    os._exit(0)


if __name__ == "__main__":
    main()
