"""Group loads (process_group=): real gloo groups of 2-4 processes (group_worker.py) against a
loopback nginx that logs the bytes it serves. Each byte is read once across the group (total
served <= 1.1x what was asked for), every rank ends with what a single-process load gives
(torch.equal, bf16 included), names= subsets reach only the ranks that ask, and ranks that
disagree on the file, or one that fails, make every rank raise, within the hang timeout."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import ferry
import ferry.torch

dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

from conftest import nginx  # noqa: E402

WORKER = Path(__file__).with_name("group_worker.py")
HANG_TIMEOUT = 300  # seconds a whole group may take before the test calls it a hang


def _state(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "embed": torch.randn(1000, 2048, generator=g).to(torch.bfloat16),  # 4 MB, cut between ranks
        "w.bf16": torch.randn(64, 1000, generator=g).to(torch.bfloat16),
        "layers.0.w": torch.randn(512, 1024, generator=g),
        "layers.1.w": torch.randn(512, 1024, generator=g),
        "layers.0.b": torch.randn(1024, generator=g).to(torch.float16),
        "ids": torch.randint(-2**40, 2**40, (100_000,), generator=g),
        "mask": torch.rand(4097, generator=g) > 0.5,
        "bytes": torch.randint(0, 256, (3_000_001,), generator=g, dtype=torch.uint8),
        "empty": torch.zeros(0, 5),
        "scalar": torch.tensor(2.5, dtype=torch.float64),
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from safetensors.torch import save_file as st_save_file

    folder = tmp_path_factory.mktemp("group")
    st_save_file(_state(1), str(folder / "model.safetensors"))  # the reference writer's layout
    other = _state(1)
    other["mask"] = other["mask"][:-1]  # the same names, one shape off: another file
    st_save_file(other, str(folder / "other.safetensors"))
    ferry.torch.save_file(_state(2), folder / "checked.safetensors")  # ferry's, with checksums
    state = _state(3)  # a sharded checkpoint: three shards and an index
    shards = {"a.safetensors": ["embed", "mask"], "b.safetensors": ["layers.0.w", "layers.0.b", "ids"],
              "c.safetensors": ["layers.1.w", "w.bf16", "bytes", "empty", "scalar"]}
    for file, names in shards.items():
        st_save_file({n: state[n] for n in names}, str(folder / file))
    weight_map = {n: file for file, names in shards.items() for n in names}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": "0"},
                                                                     "weight_map": weight_map}))
    return folder


@pytest.fixture(scope="module")
def server(files):
    if not nginx.available():
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    with nginx.Nginx(files, access_log=True) as s:
        yield s


def run_group(tmp_path: Path, world: int, cases: list[dict], backend: str = "gloo") -> dict:
    """Runs `cases` in one group of `world` processes; {(case id, rank): result}, a result being
    the saved tensors (moved to the CPU) or the error as a dict; results[case id, rank,
    "devices"] lists the devices the tensors were on."""
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), str(rank), str(world), str(tmp_path / "rendezvous"),
                           str(tmp_path / "cases.json"), str(out), backend],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for rank in range(world)
    ]
    deadline = time.monotonic() + HANG_TIMEOUT
    logs = []
    try:
        for p in procs:
            try:
                logs.append(p.communicate(timeout=max(1, deadline - time.monotonic()))[0].decode(errors="replace"))
            except subprocess.TimeoutExpired:
                pytest.fail(f"the group hung: not done after {HANG_TIMEOUT} s")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    results = {}
    for case in cases:
        for rank in range(world):
            pt, error = out / f"{case['id']}.{rank}.pt", out / f"{case['id']}.{rank}.json"
            if pt.exists():
                results[case["id"], rank] = torch.load(pt)
                results[case["id"], rank, "devices"] = json.loads((out / f"{case['id']}.{rank}.devices").read_text())
            elif error.exists():
                results[case["id"], rank] = json.loads(error.read_text())
            else:
                pytest.fail(f"case {case['id']}: rank {rank} left no result\n" + "\n".join(logs))
    return results


def expect_equal(got: dict, want: dict, names=None) -> None:
    names = sorted(want) if names is None else sorted(names)
    assert isinstance(got, dict) and "type" not in got, got
    assert sorted(got) == names
    for name in names:
        assert got[name].dtype == want[name].dtype, name
        assert got[name].shape == want[name].shape, name
        assert torch.equal(got[name], want[name]), name


def expect_raised(result: dict, cls: type, *phrases: str) -> None:
    assert isinstance(result, dict) and "type" in result, f"expected {cls.__name__}, got tensors"
    assert result["type"] == cls.__name__, result["traceback"]
    for phrase in phrases:
        assert phrase in result["message"], result["message"]


def served(server, case: str) -> dict[int, int]:
    """Body bytes nginx served for a case, by rank (each rank's URL names both)."""
    out: dict[int, int] = {}
    for uri, status, body, _, _ in server.requests():
        if f"case={case}&" in uri:
            rank = int(uri.rsplit("rank=", 1)[1])
            out[rank] = out.get(rank, 0) + body
    return out


def url(server, name: str, case: str, rank: int) -> str:
    return server.url(f"{name}?case={case}&rank={rank}")


def per_rank(server, world, name, case):
    return {str(r): url(server, name, case, r) for r in range(world)}


def test_four_ranks_read_each_byte_once_and_every_rank_gets_the_state_dict(files, server, tmp_path, fault_server_at):
    world = 4
    path = files / "model.safetensors"
    reference = ferry.torch.load_file(path)  # single process
    expect_equal(reference, _state(1))
    size = path.stat().st_size
    sizes = {n: t.numel() * t.element_size() for n, t in reference.items()}
    subsets = {"0": ["embed", "ids"], "1": ["layers.0.w", "layers.1.w", "embed"], "2": ["mask"], "3": []}
    same = ["embed", "layers.1.w", "scalar", "empty"]
    # A rank whose server replaces the file after it has opened it (FaultServer: new ETag and
    # more bytes from the fourth request on, after the three of opening) fails reading its part, with the same header.
    flaky = fault_server_at(files) + "/model.safetensors?id=flaky&change_after=3&grow=16"
    cases = [
        {"id": "full", "call": "load_file", "uri": "", "uri_by_rank": per_rank(server, world, "model.safetensors", "full")},
        {"id": "subsets", "call": "load_file", "uri": "", "names_by_rank": subsets,
         "uri_by_rank": per_rank(server, world, "model.safetensors", "subsets")},
        {"id": "same", "call": "load_file", "uri": "", "names": same,
         "uri_by_rank": per_rank(server, world, "model.safetensors", "same")},
        {"id": "local", "call": "load_file", "uri": str(path)},
        {"id": "open", "call": "safe_open", "uri": "", "names_by_rank": {"0": ["w.bf16", "ids"], "1": ["w.bf16"]},
         "uri_by_rank": per_rank(server, world, "model.safetensors", "open")},
        {"id": "module", "call": "load_into_module", "uri": "",
         "uri_by_rank": per_rank(server, world, "model.safetensors", "module")},
        {"id": "module_shape", "call": "load_into_module", "uri": str(path),
         "module_reshapes_by_rank": {"1": {"layers.0.b": [1023]}}},
        {"id": "mismatch", "call": "load_file", "uri": str(path), "uri_by_rank": {"2": str(files / "other.safetensors")}},
        {"id": "missing", "call": "load_file", "uri": str(path), "names_by_rank": {"3": ["embed", "nope"]}},
        {"id": "failure", "call": "load_file", "uri": str(path), "uri_by_rank": {"1": flaky}},
        {"id": "after", "call": "load_file", "uri": str(path)},  # the group still works
    ]
    results = run_group(tmp_path, world, cases)

    for rank in range(world):
        expect_equal(results["full", rank], reference)
    full = served(server, "full")
    assert sum(full.values()) <= 1.1 * size, full
    assert all(n < 0.3 * size for n in full.values()), full  # each rank read about a quarter
    print(f"\nbytes served for a {size}-byte file over 4 ranks: {full} (total {sum(full.values())})")

    for rank in range(world):
        expect_equal(results["subsets", rank], reference, subsets[str(rank)])
    union = sum(sizes[n] for n in {n for names in subsets.values() for n in names})
    got = served(server, "subsets")
    assert sum(got.values()) <= 1.1 * union + world * 64 * 1024, (got, union)  # + the headers
    assert got.get(2, 0) < sizes["embed"] / 2, got  # rank 2 wanted only the small mask

    for rank in range(world):
        expect_equal(results["same", rank], reference, same)
    wanted = sum(sizes[n] for n in same)
    assert sum(served(server, "same").values()) <= 1.1 * wanted + world * 64 * 1024

    for rank in range(world):
        expect_equal(results["local", rank], reference)
        expect_equal(results["after", rank], reference)

    opened = {0: ["w.bf16", "ids"], 1: ["w.bf16"], 2: sorted(reference), 3: sorted(reference)}
    for rank in range(world):
        got = results["open", rank]
        assert torch.equal(got.pop("slice:w.bf16[1:3, ::2]"), reference["w.bf16"][1:3, ::2])
        expect_equal(got, reference, opened[rank])

    for rank in range(world):
        got = results["module", rank]
        assert got.pop("missing").item() == 0 and got.pop("unexpected").item() == 0
        expect_equal(got, reference)
        expect_raised(results["module_shape", rank], ferry.InvalidArgumentError, "'layers.0.b': shape [1024]")
        expect_raised(results["mismatch", rank], ferry.InvalidArgumentError, "do not see the same file",
                      "rank 2:", "rank 0:")
    expect_raised(results["missing", 3], ferry.NotFoundError, "no tensor named 'nope'")
    expect_raised(results["failure", 1], ferry.SourceChangedError)
    for rank in (0, 1, 2):
        expect_raised(results["missing", rank], ferry.NotFoundError, "rank 3 of 4", "no tensor named 'nope'")
    for rank in (0, 2, 3):
        expect_raised(results["failure", rank], ferry.SourceChangedError, "rank 1 of 4",
                      "while reading its part of the file")
    for rank in range(world):
        assert results["failure", rank]["seconds"] < 60


def test_two_ranks_checksums_and_a_rank_that_never_arrives(files, server, tmp_path):
    world = 2
    checked = files / "checked.safetensors"
    reference = ferry.torch.load_file(checked)
    cases = [
        {"id": "checked", "call": "load_file", "uri": "", "kwargs": {"verify_checksums": True},
         "uri_by_rank": per_rank(server, world, "checked.safetensors", "checked")},
        {"id": "bf16", "call": "load_file", "uri": str(files / "model.safetensors"), "names": ["embed", "w.bf16"]},
        # Sharded: rank 1 wants tensors of two shards only, so shard a is read by rank 0 alone.
        {"id": "sharded", "call": "load_file", "uri": "", "names_by_rank": {"1": ["ids", "w.bf16", "scalar"]},
         "uri_by_rank": per_rank(server, world, "model.safetensors.index.json", "sharded")},
        {"id": "sharded_module", "call": "load_into_module", "uri": str(files / "model.safetensors.index.json")},
        # Rank 1 calls only after rank 0's call has given up: rank 0 must not wait for ever.
        {"id": "late", "call": "load_file", "uri": str(checked), "late_ranks": [1], "kwargs": {"timeout": 3}},
    ]
    results = run_group(tmp_path, world, cases)
    for rank in range(world):
        expect_equal(results["checked", rank], reference)
        expect_equal(results["bf16", rank], ferry.torch.load_file(files / "model.safetensors"), ["embed", "w.bf16"])
        expect_raised(results["late", rank], ferry.DeadlineError, "not every rank of the process group answered within 3 s")
        sharded = results["sharded_module", rank]
        assert sharded.pop("missing").item() == 0 and sharded.pop("unexpected").item() == 0
        expect_equal(sharded, _state(3))
    expect_equal(results["sharded", 0], _state(3))
    expect_equal(results["sharded", 1], _state(3), ["ids", "w.bf16", "scalar"])
    # Shard URLs are resolved against the index's, without its query: only this case asks
    # nginx for the shards, so their requests are this case's.
    shards = ("a.safetensors", "b.safetensors", "c.safetensors")
    shard_bytes = sum((files / f).stat().st_size for f in shards)
    got = sum(body for uri, _, body, _, _ in server.requests() if uri.lstrip("/") in shards)
    assert shard_bytes * 0.9 < got <= 1.1 * shard_bytes, (got, shard_bytes)
    got = served(server, "checked")
    assert sum(got.values()) <= 1.1 * checked.stat().st_size, got
    print(f"\nbytes served for a {checked.stat().st_size}-byte file over 2 ranks: {got}")


def test_a_group_load_needs_an_initialised_group_and_the_eager_mode(files):
    path = files / "model.safetensors"
    with pytest.raises(ferry.InvalidArgumentError, match="not initialised"):
        ferry.torch.load_file(path, process_group=object())
    with pytest.raises(ferry.InvalidArgumentError, match="mode='lazy' does not apply"):
        ferry.torch.load_file(path, mode="lazy", process_group=object())
    with pytest.raises(ferry.InvalidArgumentError, match="no process_group was given"):
        ferry.torch.load_file(path, timeout=3)
    with pytest.raises(ferry.InvalidArgumentError, match="belong to a process_group load"):
        ferry.safe_open(path, framework="pt", names=["embed"])
    with pytest.raises(ferry.InvalidArgumentError, match="no process_group was given"):
        ferry.torch.load_into_module(torch.nn.Module(), path, timeout=3)


def test_names_without_a_group_read_only_those_tensors(files):
    path = files / "model.safetensors"
    reference = ferry.torch.load_file(path)
    expect_equal(ferry.torch.load_file(path, names=["mask", "embed"]), reference, ["mask", "embed"])
    with pytest.raises(ferry.NotFoundError, match="no tensor named 'nope'"):
        ferry.torch.load_file(path, names=["nope"])
    with pytest.raises(ferry.InvalidArgumentError, match="names must be a list"):
        ferry.torch.load_file(path, names="embed")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_targets(files, server, tmp_path):
    """gloo exchanges on the CPU and the tensors land on the device; with two or more GPUs,
    NCCL exchanges device tensors (rank r on cuda:r) by the same code."""
    reference = ferry.torch.load_file(files / "model.safetensors")
    world = 2
    cases = [{"id": "gloo_cuda", "call": "load_file", "uri": str(files / "model.safetensors"),
              "kwargs": {"device": "cuda:0"}, "names_by_rank": {"1": ["embed", "mask"]}}]
    results = run_group(tmp_path / "gloo", world, cases)
    for rank in range(world):
        expect_equal(results["gloo_cuda", rank], reference, None if rank == 0 else ["embed", "mask"])
        assert results["gloo_cuda", rank, "devices"] == ["cuda:0"]
    if torch.cuda.device_count() < 2 or not dist.is_nccl_available():
        pytest.skip("NCCL needs two CUDA devices (one per rank)")
    by_rank = {str(r): {"device": f"cuda:{r}"} for r in range(world)}
    cases = [
        {"id": "nccl", "call": "load_file", "uri": "", "kwargs_by_rank": by_rank,
         "uri_by_rank": per_rank(server, world, "model.safetensors", "nccl")},
        {"id": "nccl_subset", "call": "load_file", "uri": str(files / "model.safetensors"),
         "kwargs_by_rank": by_rank, "names_by_rank": {"1": ["embed", "ids"]}},
    ]
    results = run_group(tmp_path / "nccl", world, cases, backend="nccl")
    for rank in range(world):
        expect_equal(results["nccl", rank], reference)
        assert results["nccl", rank, "devices"] == [f"cuda:{rank}"]
        expect_equal(results["nccl_subset", rank], reference, None if rank == 0 else ["embed", "ids"])
    assert sum(served(server, "nccl").values()) <= 1.1 * (files / "model.safetensors").stat().st_size
