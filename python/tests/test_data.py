"""ferry.data: tar shards grouped into WebDataset samples (checked against webdataset), exact
splits, and token packing."""

import hashlib
import io
import itertools
import json
import random
import subprocess
import tarfile

import numpy as np
import pytest

import ferry
import ferry.data
import ferry.numpy
from conftest import REPO, nginx_serving

SHARDS = REPO.parent / "shared" / "data" / "shards" / "webdataset_testdata"
SHARED_TOKENIZERS = REPO.parent / "shared" / "data" / "tokenizers"


def shared_shards():
    return sorted(SHARDS.iterdir()) if SHARDS.is_dir() else []


def reference_samples(url):
    wds = pytest.importorskip("webdataset")
    return [{k: v for k, v in s.items() if not k.startswith("__local")}
            for s in wds.WebDataset(str(url), shardshuffle=False)]


@pytest.mark.skipif(not shared_shards(), reason="shared test data (../shared/data/shards) is absent")
@pytest.mark.parametrize("shard", shared_shards(), ids=lambda p: p.name)
def test_every_shared_shard_matches_webdataset(shard):
    got = list(ferry.data.samples(shard))
    assert got == reference_samples(shard)
    assert got, shard


def make_tar(path, members, fmt=tarfile.PAX_FORMAT):
    """members: (name, bytes) for files, (name, None) for directories, (name, '->target') links."""
    with tarfile.open(path, "w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(data, str):
                info.type = tarfile.SYMTYPE
                info.linkname = data[2:]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


LONG = "d/" + "x" * 150 + "/sample-001"


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_grouping_rules(tmp_path, fmt):
    members = [
        ("dir", None),
        ("a/one.JPG", b"j1"), ("a/one.cls", b"1"), ("a/one.seg.png", b"s1"),
        ("a/one-link.txt", "->a/one.cls"),
        ("__index.v1__", b"skipped"), ("README", b"no dot: ignored"),
        ("a.b/two.txt", b"t2"),
        ("a/one.extra", b"later"),  # the key comes back: a new sample
    ]
    if fmt != tarfile.USTAR_FORMAT:
        members.append((LONG + ".bin", b"long"))
    shard = make_tar(tmp_path / "s.tar", members, fmt)
    got = list(ferry.data.samples(shard))
    assert [s["__key__"] for s in got] == ["a/one", "a.b/two", "a/one"] + ([LONG] if fmt != tarfile.USTAR_FORMAT else [])
    assert got[0] == {"__key__": "a/one", "__url__": str(shard), "jpg": b"j1", "cls": b"1", "seg.png": b"s1"}
    assert got == reference_samples(shard)


def test_repeated_field_names_the_shard_and_key(tmp_path):
    shard = make_tar(tmp_path / "dup.tar", [("k.txt", b"1"), ("k.TXT", b"2")])
    with pytest.raises(ferry.CorruptionError, match=r"dup.tar: sample 'k' has field 'txt' twice"):
        list(ferry.data.samples(shard))


def test_hostile_archives_fail_cleanly(tmp_path):
    good = make_tar(tmp_path / "good.tar", [("k.bin", b"x" * 3000), ("l.bin", b"y")]).read_bytes()
    (tmp_path / "truncated.tar").write_bytes(good[:512 + 1000])
    with pytest.raises(ferry.CorruptionError, match=r"truncated.tar: .*(truncated|ends inside)"):
        list(ferry.data.samples(tmp_path / "truncated.tar"))
    bad = bytearray(good)
    header = good.index(b"l.bin")  # the second member's header
    bad[header + 1] ^= 0x01
    (tmp_path / "checksum.tar").write_bytes(bytes(bad))
    with pytest.raises(ferry.CorruptionError, match=r"checksum.tar: not a tar header at offset \d+"):
        list(ferry.data.samples(tmp_path / "checksum.tar"))
    huge = bytearray(good[:512])
    huge[124:136] = b"\x80" + b"\x00" * 3 + b"\x7f" + b"\xff" * 7  # base-256: ~2^63 bytes
    checksum = sum(huge[:148]) + 8 * 32 + sum(huge[156:512])
    huge[148:156] = b"%06o\x00 " % checksum
    (tmp_path / "huge.tar").write_bytes(bytes(huge) + b"\x00" * 1024)
    with pytest.raises(ferry.CorruptionError, match=r"huge.tar: member 'k.bin' at offset 0 claims \d+ bytes"):
        list(ferry.data.samples(tmp_path / "huge.tar"))
    (tmp_path / "zero.tar").write_bytes(b"")
    with pytest.raises(ferry.CorruptionError, match=r"zero.tar: the shard is empty \(0 bytes\), not a tar archive"):
        list(ferry.data.samples(tmp_path / "zero.tar"))
    (tmp_path / "notatar.tar").write_bytes(b"hello" * 200)
    with pytest.raises(ferry.CorruptionError, match="not a tar header at offset 0"):
        list(ferry.data.samples(tmp_path / "notatar.tar"))
    (tmp_path / "badgz.tgz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"garbage" * 10)
    with pytest.raises(ferry.CorruptionError, match="gzip"):
        list(ferry.data.samples(tmp_path / "badgz.tgz"))


def test_shards_over_http_and_patterns(tmp_path):
    for i in range(3):
        make_tar(tmp_path / f"shard-{i}.tar", [(f"s{i}-{j}.txt", b"%d" % j) for j in range(4)])
    local = list(ferry.data.samples(tmp_path / "shard-*.tar"))
    assert [s["__key__"] for s in local] == [f"s{i}-{j}" for i in range(3) for j in range(4)]
    with nginx_serving(tmp_path) as server:
        urls = [server.url(f"shard-{i}.tar") for i in range(3)]
        remote = list(ferry.data.samples(urls))
    assert [(s["__key__"], s["txt"]) for s in remote] == [(s["__key__"], s["txt"]) for s in local]
    assert remote[0]["__url__"] == urls[0]


def test_shard_lists_from_ranges_globs_and_a_file_of_urls(tmp_path, ferry_bin):
    for i in range(4):
        make_tar(tmp_path / f"shard-{i}.tar", [(f"s{i}.txt", b"%d" % i)])
    listed = tmp_path / "shards.txt"
    listed.write_text(f"# training shards\n{tmp_path}/shard-{{0..1}}.tar\n\n  {tmp_path}/shard-[3].tar  \n")
    got = ferry.data.shard_urls([f"@{listed}", str(tmp_path / "shard-2.tar")])
    assert got == [str(tmp_path / f"shard-{i}.tar") for i in (0, 1, 3, 2)]
    assert [s["__key__"] for s in ferry.data.samples(f"@{listed}")] == ["s0", "s1", "s3"]
    run = subprocess.run([ferry_bin, "index", f"@{listed}", "-o", str(tmp_path / "i.json")],
                         capture_output=True, text=True)
    assert run.returncode == 0 and "3 shards, 3 samples" in run.stdout, run.stderr
    (tmp_path / "nested.txt").write_text(f"{tmp_path}/shard-0.tar\n@{listed}\n")
    with pytest.raises(ferry.InvalidArgumentError, match=r"nested.txt:2: a shard list cannot name another list"):
        ferry.data.shard_urls(f"@{tmp_path / 'nested.txt'}")
    (tmp_path / "missing.txt").write_text(f"{tmp_path}/none-*.tar\n")
    with pytest.raises(ferry.NotFoundError, match=r"missing.txt:1: .*none-\*.tar"):
        ferry.data.shard_urls(f"@{tmp_path / 'missing.txt'}")
    with pytest.raises(ferry.NotFoundError, match=r"absent.txt"):
        ferry.data.shard_urls(f"@{tmp_path / 'absent.txt'}")


def test_ferry_index_counts_samples(tmp_path, ferry_bin):
    import json
    import subprocess

    for i, n in enumerate([0, 1, 5]):  # an empty shard, a one-sample shard
        make_tar(tmp_path / f"shard-{i:02d}.tar", [(f"k{j}.txt", b"x") for j in range(n)])
    out = tmp_path / "index.json"
    run = subprocess.run([ferry_bin, "index", str(tmp_path / "shard-{00..01}.tar"),
                          str(tmp_path / "shard-02*"), "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "3 shards, 6 samples" in run.stdout
    index = json.loads(out.read_text())
    assert index["format"] == "ferry-shard-index-v1" and index["total_samples"] == 6
    assert [(s["url"].rsplit("/", 1)[1], s["samples"]) for s in index["shards"]] == [
        ("shard-00.tar", 0), ("shard-01.tar", 1), ("shard-02.tar", 5)]
    assert index["shards"][2]["bytes"] == (tmp_path / "shard-02.tar").stat().st_size

    (tmp_path / "broken.tar").write_bytes(b"not a tar" * 100)
    bad = subprocess.run([ferry_bin, "index", str(tmp_path / "shard-01.tar"), str(tmp_path / "broken.tar"),
                          "-o", str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert bad.returncode == 65 and "broken.tar: not a tar header at offset 0" in bad.stderr
    assert not (tmp_path / "bad.json").exists()


def write_shards(folder, sizes):
    for i, n in enumerate(sizes):
        make_tar(folder / f"part-{i:03d}.tar", [(f"p{i}/{j:04d}.txt", b"%d/%d" % (i, j)) for j in range(n)])
    return str(folder / ("part-{000..%03d}.tar" % (len(sizes) - 1)))


def keys_of(dataset):
    return [s["__key__"] for s in dataset]


def test_shard_dataset_splits_exactly_across_ranks(tmp_path):
    pattern = write_shards(tmp_path, [7, 0, 1, 12, 5])  # 25 samples, an empty shard
    all_keys = {f"p{i}/{j:04d}" for i, n in enumerate([7, 0, 1, 12, 5]) for j in range(n)}
    for remainder in ("pad", "drop"):
        ranks = [ferry.data.ShardDataset(pattern, rank=r, world_size=3, batch_size=2, seed=5,
                                         shuffle_buffer=4, remainder=remainder) for r in range(3)]
        per_rank = [keys_of(d) for d in ranks]
        assert len({len(k) for k in per_rank}) == 1 and len(per_rank[0]) == len(ranks[0])
        assert len(per_rank[0]) % 2 == 0
        seen = [k for keys in per_rank for k in keys]
        if remainder == "pad":
            assert set(seen) == all_keys and len(per_rank[0]) == 10   # 25 -> 30
        else:
            assert len(seen) == len(set(seen)) == 24                   # 25 -> 24
    again = ferry.data.ShardDataset(pattern, rank=1, world_size=3, batch_size=2, seed=5, shuffle_buffer=4)
    assert keys_of(again) == keys_of(ferry.data.ShardDataset(pattern, rank=1, world_size=3, batch_size=2,
                                                             seed=5, shuffle_buffer=4))
    epoch0 = keys_of(again)
    again.set_epoch(1)
    assert keys_of(again) != epoch0


@pytest.mark.parametrize("edit, error", [
    (lambda i: i.update(total_samples=i["total_samples"] + 1), r'"total_samples" is 9 but the shards add up to 8'),
    (lambda i: i["shards"][1].update(samples=2**40), r"shard 1 claims 1099511627776 samples"),
    (lambda i: i["shards"][0].pop("bytes"), r"shard 0 lacks url, bytes or samples"),
    (lambda i: i.update(format="v0"), r'"format" is not "ferry-shard-index-v1"'),
])
def test_an_edited_index_is_refused(tmp_path, ferry_bin, edit, error):
    pattern = write_shards(tmp_path, [4, 4])
    subprocess.run([ferry_bin, "index", pattern, "-o", str(tmp_path / "index.json")], check=True,
                   capture_output=True)
    index = json.loads((tmp_path / "index.json").read_text())
    edit(index)
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(ferry.CorruptionError, match=r"index.json: not a ferry shard index \(" + error):
        ferry.data.ShardDataset(None, index=str(tmp_path / "index.json"))


def test_shard_dataset_with_an_index_and_rank_from_the_environment(tmp_path, ferry_bin, monkeypatch):
    import subprocess

    pattern = write_shards(tmp_path, [4, 4, 4, 4])
    subprocess.run([ferry_bin, "index", pattern, "-o", str(tmp_path / "index.json")], check=True,
                   capture_output=True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    ds = ferry.data.ShardDataset(None, index=str(tmp_path / "index.json"), shuffle=False)
    assert (ds.rank, ds.world_size, len(ds)) == (1, 2, 8)
    assert len(keys_of(ds)) == 8
    assert keys_of(ferry.data.ShardDataset(str(tmp_path / "index.json"), shuffle=False)) == keys_of(ds)


def test_shard_dataset_stops_at_a_bad_shard_or_skips_it(tmp_path, ferry_bin):
    pattern = write_shards(tmp_path, [4, 6, 4])
    subprocess.run([ferry_bin, "index", pattern, "-o", str(tmp_path / "index.json")], check=True,
                   capture_output=True)
    good = (tmp_path / "part-001.tar").read_bytes()
    cut = good.index(b"p1/0003.txt") + 512 + 3  # inside the fourth sample's member
    (tmp_path / "part-001.tar").write_bytes(good[:cut])
    options = dict(index=str(tmp_path / "index.json"), rank=0, world_size=1, shuffle=False)
    # Cut after it was indexed: the index's size and mtime no longer match, so no count is trusted.
    with pytest.raises(ferry.SourceChangedError, match=r"part-001.tar: the shard changed since"):
        keys_of(ferry.data.ShardDataset(None, **options))
    # An index that matches the shard as it is now (its counts stale): the bad member is found.
    index = json.loads((tmp_path / "index.json").read_text())
    stat = (tmp_path / "part-001.tar").stat()
    index["shards"][1].update(bytes=stat.st_size,
                              version=f"mtime {stat.st_mtime_ns // 10**9}.{stat.st_mtime_ns % 10**9:09d}")
    index["total_bytes"] = sum(shard["bytes"] for shard in index["shards"])
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(ferry.CorruptionError, match=r"part-001.tar: .* member 'p1/0003.txt'"):
        keys_of(ferry.data.ShardDataset(None, **options))
    skipping = ferry.data.ShardDataset(None, on_error="skip", **options)
    with pytest.warns(RuntimeWarning, match="skipped 3 samples of 1 bad shards"):
        keys = keys_of(skipping)
    # The damage is in p1/0003's member, so p1/0002 is whole and kept (webdataset keeps it too).
    assert keys == [f"p0/{j:04d}" for j in range(4)] + [f"p1/{j:04d}" for j in range(3)] + \
        [f"p2/{j:04d}" for j in range(4)]
    [(url, error, lost)] = skipping.skipped
    assert url.endswith("part-001.tar") and lost == 3 and "p1/0003.txt" in error
    with pytest.raises(ValueError, match="on_error must be"):
        ferry.data.ShardDataset(None, on_error="ignore", **options)
    # The CLI the same way: the first error, or the skip reported.
    cli = [ferry_bin, "stream", "--index", str(tmp_path / "index.json"), "--json"]
    failed = subprocess.run(cli, capture_output=True, text=True)
    assert failed.returncode == 65 and "part-001.tar" in failed.stderr and "p1/0003.txt" in failed.stderr
    skipped = subprocess.run(cli + ["--on-error", "skip"], capture_output=True, text=True, check=True)
    report = json.loads(skipped.stdout)
    assert (report["samples"], report["skipped_shards"], report["skipped_samples"]) == (11, 1, 3)
    assert "skipped 3 samples: " in skipped.stderr and "p1/0003.txt" in skipped.stderr


def test_batched_shard_dataset_yields_columns_of_the_same_samples(tmp_path):
    make_tar(tmp_path / "mixed-0.tar", [("a.txt", b"1"), ("a.cls", b"x"), ("b.txt", b"22"),
                                        ("c.txt", b"333"), ("c.cls", b"z"), ("d.txt", b"4")])
    make_tar(tmp_path / "mixed-1.tar", [(f"e{j}.txt", b"e%d" % j) for j in range(6)])
    options = dict(rank=0, world_size=1, seed=4, shuffle_buffer=3, batch_size=4)
    samples = list(ferry.data.ShardDataset(str(tmp_path / "mixed-*.tar"), **options))
    batches = list(ferry.data.ShardDataset(str(tmp_path / "mixed-*.tar"), batched=True, **options))
    assert [len(b["__key__"]) for b in batches] == [4, 4, 4]  # 10 samples padded to 12
    # A field no sample of a batch has is absent from that batch.
    columns = {k: [v for b in batches for v in b.get(k, [None] * len(b["__key__"]))]
               for k in ("__key__", "__url__", "txt", "cls")}
    assert columns["__key__"] == [s["__key__"] for s in samples]
    assert columns["__url__"] == [s["__url__"] for s in samples]
    assert columns["txt"] == [s["txt"] for s in samples]
    assert columns["cls"] == [s.get("cls") for s in samples]  # None where a sample has no cls


def test_batched_shard_dataset_under_a_dataloader(tmp_path):
    torch = pytest.importorskip("torch")
    pattern = write_shards(tmp_path, [9, 3, 6, 2])
    ds = ferry.data.ShardDataset(pattern, rank=0, world_size=1, batch_size=4, batched=True, seed=1,
                                 remainder="drop")
    got = [k for b in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2) for k in b["__key__"]]
    assert len(got) == len(set(got)) == 20 and len(ds) == 5  # batches


def rss_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_a_slow_consumer_does_not_grow_memory(tmp_path):
    """128 MiB of samples through a consumer slower than the readers: the process grows by the
    pipeline's queues and shuffle buffer (a few MiB), not by what the readers could read ahead."""
    import time

    sample = 128 * 1024
    for i in range(16):
        make_tar(tmp_path / f"big-{i:02d}.tar", [(f"b{i}/{j:03d}.bin", bytes([j]) * sample) for j in range(64)])
    ds = ferry.data.ShardDataset(str(tmp_path / "big-*.tar"), rank=0, world_size=1, seed=0,
                                 shuffle_buffer=16, queue_capacity=8)
    before = rss_bytes()
    peak, count = before, 0
    for s in ds:
        count += 1
        assert len(s["bin"]) == sample
        peak = max(peak, rss_bytes())
        time.sleep(0.0005)
    assert count == 16 * 64
    # (2 readers x 9 + 16 + 8 + 2) samples = 5.5 MiB held at most; allow the allocator slack.
    assert peak - before < 40 * 2**20, f"RSS grew by {(peak - before) / 2**20:.1f} MiB"


def test_shard_dataset_under_a_dataloader_with_two_workers(tmp_path):
    torch = pytest.importorskip("torch")
    pattern = write_shards(tmp_path, [9, 3, 6, 2])
    total = {f"p{i}/{j:04d}" for i, n in enumerate([9, 3, 6, 2]) for j in range(n)}
    seen = []
    for rank in range(2):
        ds = ferry.data.ShardDataset(pattern, rank=rank, world_size=2, batch_size=2, seed=1)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
        keys = [s["__key__"] for s in loader]
        assert len(keys) == len(ds) == 10
        seen += keys
    assert set(seen) == total and len(seen) == 20


RANK_SCRIPT = """
import json, sys
import torch.distributed as dist
import ferry.data
dist.init_process_group("gloo")
ds = ferry.data.ShardDataset(sys.argv[1], batch_size=3, seed=2)
keys = [s["__key__"] for s in ds]
counts = [None] * dist.get_world_size()
dist.all_gather_object(counts, len(keys))
json.dump({"rank": dist.get_rank(), "keys": keys, "counts": counts}, open(sys.argv[2], "w"))
dist.destroy_process_group()
"""


def test_shard_dataset_under_torch_distributed_gloo(tmp_path):
    pytest.importorskip("torch")
    import json
    import socket
    import subprocess
    import sys

    pattern = write_shards(tmp_path, [5, 8, 1, 0, 6])  # 20 samples over 2 ranks, batch 3 -> 12 each
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = {**__import__("os").environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "RANK": str(rank), "WORLD_SIZE": "2"}
        procs.append(subprocess.Popen([sys.executable, "-c", RANK_SCRIPT, pattern, str(tmp_path / f"r{rank}.json")],
                                      env=env))
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    results = [json.loads((tmp_path / f"r{r}.json").read_text()) for r in range(2)]
    assert [r["rank"] for r in results] == [0, 1]
    assert results[0]["counts"] == [12, 12]  # equal on every rank: no DDP hang at epoch end
    everything = results[0]["keys"] + results[1]["keys"]
    assert len(everything) == 24 and len(set(everything)) == 20  # pad: all present, 4 repeated


def test_ferry_stream_reports_and_splits(tmp_path, ferry_bin):
    import json
    import subprocess

    pattern = write_shards(tmp_path, [3, 5, 4])
    whole = subprocess.run([ferry_bin, "stream", pattern, "--json"], capture_output=True, text=True, check=True)
    assert json.loads(whole.stdout)["samples"] == 12
    subprocess.run([ferry_bin, "index", pattern, "-o", str(tmp_path / "i.json")], check=True, capture_output=True)
    keys = []
    for rank in range(2):
        out = subprocess.run([ferry_bin, "stream", "--index", str(tmp_path / "i.json"), "--rank", str(rank),
                              "--world-size", "2", "--keys"], capture_output=True, text=True, check=True)
        keys.append([line.split("\t")[1] for line in out.stdout.splitlines()])
        assert f"rank {rank}/2: 6 samples" in out.stderr
    assert len(keys[0]) == len(keys[1]) == 6 and len(set(keys[0] + keys[1])) == 12
    # One chain from counts to plan and shuffle seed: the CLI reads what ShardDataset yields.
    for rank, seed, epoch, buffer in ((0, 0, 0, 0), (1, 5, 2, 4), (0, 3, 1, 100)):
        out = subprocess.run([ferry_bin, "stream", "--index", str(tmp_path / "i.json"), "--rank", str(rank),
                              "--world-size", "2", "--seed", str(seed), "--epoch", str(epoch),
                              "--shuffle-buffer", str(buffer), "--keys"], capture_output=True, text=True, check=True)
        ds = ferry.data.ShardDataset(str(tmp_path / "i.json"), rank=rank, world_size=2, seed=seed,
                                     shuffle_buffer=buffer, shuffle=True)
        ds.set_epoch(epoch)
        assert [line.split("\t")[1] for line in out.stdout.splitlines()] == [s["__key__"] for s in ds]
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    bad = subprocess.run([ferry_bin, "stream", "--index", str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert bad.returncode == 65 and "not a ferry shard index" in bad.stderr


def test_ferry_stream_progress_shows_a_count_or_the_indexed_total(tmp_path, ferry_bin, fault_server_at):
    """Defect: the progress line read "896 / 0 100%" when the total was unknown."""
    import json
    import os
    import pty
    import subprocess

    write_shards(tmp_path, [4, 4, 4])
    subprocess.run([ferry_bin, "index", str(tmp_path / "part-{000..002}.tar"), "-o", str(tmp_path / "i.json")],
                   check=True, capture_output=True)
    base = fault_server_at(tmp_path)
    # Each response waits 150 ms, more than the line's 100 ms between redraws, so it is drawn.
    urls = f"{base}/part-{{000..002}}.tar?latency=150"

    def progress_of(*args):
        master, slave = pty.openpty()  # the line is drawn only on a terminal
        proc = subprocess.run([ferry_bin, "stream", *args], stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        out = b""
        try:
            while chunk := os.read(master, 4096):
                out += chunk
        except OSError:  # the terminal's other end is closed: all was read
            pass
        os.close(master)
        assert proc.returncode == 0, out
        return [line for line in out.decode().split("\r") if line.startswith("streaming")]

    unknown = progress_of(urls)
    assert unknown and all(" / " not in line and "%" not in line for line in unknown), unknown
    index = json.loads((tmp_path / "i.json").read_text())  # the same shards over HTTP, counted
    for shard in index["shards"]:
        shard["url"] = f"{base}/{os.path.basename(shard['url'])}?latency=150"
    (tmp_path / "http.json").write_text(json.dumps(index))
    known = progress_of("--index", str(tmp_path / "http.json"))
    assert known and all(" / 12 " in line for line in known), known


# ------------------------------------------------------------------------------- token packing


def stream_of(documents, eod):
    return np.concatenate([np.concatenate([np.asarray(d, dtype=np.int64), [eod]]) for d in documents])


@pytest.mark.parametrize("seq_len", [1, 3, 8, 100])
def test_pack_tokens_covers_the_stream_with_exact_boundaries(seq_len):
    rng = np.random.default_rng(seq_len)
    documents = [rng.integers(1, 1000, rng.integers(0, 40)) for _ in range(300)]  # some empty
    stream = stream_of(documents, eod=0)
    doc_starts = set(np.concatenate(([0], np.cumsum([len(d) + 1 for d in documents])[:-1])).tolist())
    rows = list(ferry.data.pack_tokens(documents, seq_len, eod_id=0))
    assert len(rows) == (len(stream) - 1) // seq_len  # every full row, the tail dropped
    for r, (row, offsets) in enumerate(rows):
        begin = r * seq_len
        assert row.dtype == np.int32 and len(row) == seq_len + 1
        assert row.tolist() == stream[begin : begin + seq_len + 1].tolist()
        assert offsets.dtype == np.int32 and offsets[0] == 0 and offsets[-1] == seq_len + 1
        inner = {begin + o for o in offsets[1:-1].tolist()}
        assert inner == {s for s in doc_starts if begin < s < begin + seq_len + 1}
        assert list(offsets) == sorted(set(offsets.tolist()))
    # Every token of the stream but the first is a target (row[1:]) exactly once.
    targets = np.concatenate([row[1:] for row, _ in rows]) if rows else np.empty(0)
    assert targets.tolist() == stream[1 : 1 + len(targets)].tolist()


def text_shards(folder, shards=4, per_shard=50, seed=0):
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "épsilon", "ζeta", "42", "\n"]
    texts = {}
    for i in range(shards):
        members = []
        for j in range(per_shard):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 60)))
            texts[f"s{i}/{j:04d}"] = text
            members += [(f"s{i}/{j:04d}.txt", text.encode()), (f"s{i}/{j:04d}.cls", b"1")]
        make_tar(folder / f"text-{i}.tar", members)
    return str(folder / ("text-{0..%d}.tar" % (shards - 1))), texts


def test_packed_dataset_packs_the_samples_a_rank_reads(tmp_path):
    pattern, texts = text_shards(tmp_path)
    tok = ferry.Tokenizer.train_from_iterator(list(texts.values()), vocab_size=400,
                                              special_tokens=["<|endoftext|>"])
    for rank in range(2):
        shards = ferry.data.ShardDataset(pattern, rank=rank, world_size=2, seed=3, shuffle_buffer=16)
        order = [s["__key__"] for s in shards]
        expected_stream = stream_of([tok.encode_ordinary(texts[k]) for k in order], eod=0)
        packed = ferry.data.PackedDataset(shards, tok, seq_len=16, batch_size=4)
        batches = list(packed)
        assert batches and all(b["input_ids"].shape == (4, 17) and b["input_ids"].dtype == np.int32 for b in batches)
        rows = [row for b in batches for row in b["input_ids"]]
        for r, row in enumerate(rows):
            assert row.tolist() == expected_stream[r * 16 : r * 16 + 17].tolist()
        assert all(len(b["doc_offsets"]) == 4 for b in batches)


# Regression: seq_len <= 0 and eod_id < 0 were accepted and failed at the first batch, once
# with nanobind's dump of the loader's C++ signature.
@pytest.mark.parametrize("arguments, error, message", [
    (dict(seq_len=0), ValueError, r"seq_len must be in \[1, 1073741823\], got 0"),
    (dict(seq_len=-5), ValueError, r"seq_len must be in \[1, 1073741823\], got -5"),
    (dict(seq_len=2**30), ValueError, r"seq_len must be in .*, got 1073741824"),
    (dict(eod_id=-1), ValueError, r"eod_id must be in \[0, 2147483647\], got -1"),
    (dict(eod_id=2**31), ValueError, r"eod_id must be in \[0, 2147483647\], got 2147483648"),
    (dict(batch_size=0), ValueError, r"batch_size must be in \[1, 2147483647\], got 0"),
    (dict(threads=-2), ValueError, r"threads must be in \[0, 2147483647\], got -2"),
    (dict(seq_len=16.0), TypeError, r"seq_len must be an integer, got 16.0 \(float\)"),
    (dict(eod_id=True), TypeError, r"eod_id must be an integer, got True \(bool\)"),
])
def test_packed_dataset_refuses_bad_arguments_at_construction(tmp_path, arguments, error, message):
    pattern, texts = text_shards(tmp_path, shards=1, per_shard=5)
    tok = ferry.Tokenizer.train_from_iterator(list(texts.values()), vocab_size=270,
                                              special_tokens=["<|endoftext|>"])
    tokens, _ = token_shards(tmp_path, [40])
    given = dict(dict(seq_len=4, batch_size=1), **arguments)
    with pytest.raises(error, match=message):
        ferry.data.PackedDataset(ferry.data.ShardDataset(pattern), tok, **given)
    with pytest.raises(error, match=message):
        ferry.data.PackedDataset(tokens, **dict(dict(eod_id=0), **given))
    # numpy integers are integers
    ds = ferry.data.PackedDataset(tokens, seq_len=np.int64(4), batch_size=np.int32(1), eod_id=np.uint32(0))
    assert len(ds) == len(ferry.data.PackedDataset(tokens, seq_len=4, batch_size=1, eod_id=0)) > 0


def test_packed_dataset_refuses_an_end_of_document_id_that_text_also_encodes_to(tmp_path):
    """Found by a probe: PackedDataset(shards, gpt2, eod_id=0) packed with "!" as the separator,
    so a document's end could not be told from a "!" in its text."""
    pattern, texts = text_shards(tmp_path, shards=1, per_shard=5)
    tok = ferry.Tokenizer.train_from_iterator(list(texts.values()), vocab_size=270,
                                              special_tokens=["<|endoftext|>"])
    shards = ferry.data.ShardDataset(pattern)
    ordinary = tok.encode("a", add_special_tokens=False).ids[0]
    with pytest.raises(ValueError, match=rf"eod_id {ordinary} is 'a', an ordinary token that the text 'a' "
                                         r"encodes to: .*special tokens: <\|endoftext\|> = "):
        ferry.data.PackedDataset(shards, tok, seq_len=4, batch_size=1, eod_id=ordinary)
    with pytest.raises(ValueError, match=r"eod_id 270 is not an id of the tokenizer \(it has 270\)"):
        ferry.data.PackedDataset(shards, tok, seq_len=4, batch_size=1, eod_id=270)
    eod = tok.token_to_id("<|endoftext|>")
    assert ferry.data.PackedDataset(shards, tok, seq_len=4, batch_size=1).eod_id == eod
    assert ferry.data.PackedDataset(shards, tok, seq_len=4, batch_size=1, eod_id=eod).eod_id == eod
    # A SentencePiece model's </s> is a control piece, not an added token: no text encodes to it.
    model = SHARED_TOKENIZERS / "sentencepiece" / "mistral_7b_v1_tokenizer.model"
    if model.is_file():
        mistral = ferry.Tokenizer.from_file(str(model))
        assert ferry.data.PackedDataset(shards, mistral, seq_len=4, batch_size=1, eod_id=2).eod_id == 2
        world = mistral.encode("world", add_special_tokens=False).ids
        assert len(world) == 1
        with pytest.raises(ValueError, match=rf"eod_id {world[0]} is '▁world', an ordinary token"):
            ferry.data.PackedDataset(shards, mistral, seq_len=4, batch_size=1, eod_id=world[0])


def test_packed_dataset_reads_ferry_token_shards(tmp_path, ferry_bin):
    pattern, texts = text_shards(tmp_path, shards=1, per_shard=80)
    tok = ferry.Tokenizer.train_from_iterator(list(texts.values()), vocab_size=300,
                                              special_tokens=["<|endoftext|>"])
    tok.save(tmp_path / "tok.json")
    docs = [t.replace("\n", " ") for t in texts.values() if t.strip()]
    (tmp_path / "docs.txt").write_text("".join(d + "\n" for d in docs))
    shard = tmp_path / "tokens.safetensors"
    subprocess.run([ferry_bin, "tokenize", "--tokenizer", str(tmp_path / "tok.json"), str(tmp_path / "docs.txt"),
                    "-o", str(shard)], check=True, capture_output=True)
    kept = [d for d in docs if d]
    expected = list(ferry.data.pack_tokens([tok.encode_ordinary(d) for d in kept], 32, 0))
    got = [row for b in ferry.data.PackedDataset([shard], seq_len=32, batch_size=1, eod_id=0) for row in b["input_ids"]]
    assert [r.tolist() for r in got] == [r.tolist() for r, _ in expected]
    not_a_token_shard = tmp_path / "plain.safetensors"
    ferry.numpy.save_file({"x": np.zeros(3, np.float32)}, not_a_token_shard)
    with pytest.raises(ferry.CorruptionError, match="not a ferry token shard"):
        list(ferry.data.PackedDataset([not_a_token_shard], seq_len=4, batch_size=1, eod_id=0))


def token_shards(tmp_path, docs_per_shard, seed=7):
    """ferry token shards of random documents (0-40 ids, empty ones included)."""
    rng = random.Random(seed)
    paths, docs = [], []
    for i, n in enumerate(docs_per_shard):
        shard_docs = [np.array([rng.randrange(1, 500) for _ in range(rng.choice([0, 1, 5, 17, 40]))],
                               dtype=np.uint32) for _ in range(n)]
        docs += shard_docs
        tokens = np.concatenate(shard_docs) if shard_docs else np.zeros(0, np.uint32)
        offsets = np.concatenate(([0], np.cumsum([len(d) for d in shard_docs], dtype=np.uint64))).astype(np.uint64)
        paths.append(tmp_path / f"tokens-{i}.safetensors")
        ferry.numpy.save_file({"tokens": tokens, "doc_offsets": offsets}, paths[-1],
                              metadata={"ferry.format": "token-shard-v1", "ferry.documents": str(n)})
    return paths, docs


def test_the_index_records_each_shards_checksum_and_refuses_a_bad_one(tmp_path):
    shard = tmp_path / "a.safetensors"
    ferry._core.write_token_shard(str(shard), np.arange(5, dtype=np.uint32), np.array([0, 2, 5], np.uint64), "")
    digest = hashlib.sha256(shard.read_bytes()).hexdigest()
    entries = [("a.safetensors", shard.stat().st_size, 2, "", digest)]
    ferry._core.write_index(str(tmp_path / "index.json"), entries)
    assert ferry._core.read_index(str(tmp_path / "index.json")) == [(str(shard), *entries[0][1:])]
    text = (tmp_path / "index.json").read_text()
    (tmp_path / "bad.json").write_text(text.replace(digest, digest[:-1] + "G"))
    with pytest.raises(ferry.CorruptionError, match='bad.json.*shard 0: "sha256" is not 64 lowercase hex'):
        ferry._core.read_index(str(tmp_path / "bad.json"))


def test_packed_dataset_reads_token_shards_through_their_index(tmp_path):
    paths, docs = token_shards(tmp_path, [5, 0, 3])
    entries = [(str(p), p.stat().st_size, n, "", hashlib.sha256(p.read_bytes()).hexdigest())
               for p, n in zip(paths, [5, 0, 3])]
    ferry._core.write_index(str(tmp_path / "index.json"), entries)
    by_index = ferry.data.PackedDataset(str(tmp_path / "index.json"), seq_len=4, batch_size=2, eod_id=0)
    by_list = ferry.data.PackedDataset(paths, seq_len=4, batch_size=2, eod_id=0)
    assert by_index.source == [str(p) for p in paths]
    assert [b["input_ids"].tolist() for b in by_index] == [b["input_ids"].tolist() for b in by_list]


def test_token_shards_split_into_equal_batches_of_one_global_packing(tmp_path):
    paths, docs = token_shards(tmp_path, [5, 0, 1, 13, 7])
    for seq_len in (3, 16):
        rows = list(ferry.data.pack_tokens(docs, seq_len, 0))
        for world, workers, batch in itertools.product((1, 2, 3), (1, 2, 3), (1, 2, 4)):
            per_rank = len(rows) // (world * batch)
            if per_rank == 0:
                with pytest.raises(ValueError, match="cannot give each of"):
                    ferry.data.token_shard_rows(paths, seq_len, 0, batch, 0, world)
                continue
            got = []
            for rank in range(world):
                mine = [r for w in range(workers)
                        for r in ferry.data.token_shard_rows(paths, seq_len, 0, batch, rank, world, w, workers)[1]]
                assert len(mine) == per_rank * batch, (seq_len, world, workers, batch, rank)
                got += mine
            want = rows[: len(got)]
            assert [r.tolist() for r, _ in got] == [r.tolist() for r, _ in want]
            assert [o.tolist() for _, o in got] == [o.tolist() for _, o in want]


@pytest.mark.parametrize("tensors, metadata, problem", [
    ({"tokens": np.zeros(3, np.uint32)}, True, r"no tensor 'doc_offsets'"),
    ({"tokens": np.zeros(3, np.float32), "doc_offsets": np.array([0, 3], np.uint64)}, True,
     r"'tokens' is F32 \[3\], expected a 1-d U32"),
    ({"tokens": np.zeros(3, np.uint32), "doc_offsets": np.zeros(0, np.uint64)}, True, r"'doc_offsets' is empty"),
    ({"tokens": np.zeros(3, np.uint32), "doc_offsets": np.array([0, 3], np.uint64)}, False,
     r"__metadata__ ferry.format is not token-shard-v1"),
])
def test_a_malformed_token_shard_is_named(tmp_path, tensors, metadata, problem):
    path = tmp_path / "bad.safetensors"
    ferry.numpy.save_file(tensors, path, metadata={"ferry.format": "token-shard-v1"} if metadata else None)
    with pytest.raises(ferry.CorruptionError, match=r"bad.safetensors: not a ferry token shard \(" + problem):
        ferry.data.PackedDataset([path], seq_len=2, batch_size=1, eod_id=0)


def test_pack_tokens_refuses_ids_a_cast_would_wrap():
    with pytest.raises(ValueError, match=r"document 1: token ids must be non-negative integers"):
        list(ferry.data.pack_tokens([[1, 2], [3, -1]], 2, 0))
    with pytest.raises(ValueError, match=r"document 0: token ids must be non-negative integers \(got dtype float64"):
        list(ferry.data.pack_tokens([np.array([1.5])], 2, 0))
    with pytest.raises(ferry.OutOfRangeError, match=r"token id 2147483648 at position 1 of a document does not fit int32"):
        list(ferry.data.pack_tokens([np.array([1, 2**31], np.uint32)], 2, 0))


def test_packed_dataset_over_token_shards_under_a_dataloader(tmp_path):
    torch = pytest.importorskip("torch")
    paths, docs = token_shards(tmp_path, [9, 4, 11], seed=3)
    rows = list(ferry.data.pack_tokens(docs, 8, 0))
    seen = []
    for rank in range(2):
        ds = ferry.data.PackedDataset(paths, seq_len=8, batch_size=3, eod_id=0, rank=rank, world_size=2)
        batches = list(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2))
        assert len(batches) == len(ds) == len(rows) // 6
        seen += [tuple(r.tolist()) for b in batches for r in b["input_ids"]]
    assert sorted(seen) == sorted(tuple(r.tolist()) for r, _ in rows[: len(seen)])


def test_ferry_tokenize_encodes_special_token_text_as_data(tmp_path, ferry_bin):
    """Found by a newcomer: `ferry tokenize` turned "<|endoftext|>" inside a document into the
    special id, where PackedDataset over text (and tiktoken's encode_ordinary) encode it as text:
    the two routes the README offers gave different data, with an end-of-document mid-document."""
    tok = ferry.Tokenizer.train_from_iterator(["hi there friend"] * 30, vocab_size=280,
                                              special_tokens=["<|endoftext|>"])
    tok.save(tmp_path / "tok.json")
    doc = "hi <|endoftext|> there"
    (tmp_path / "docs.txt").write_text(doc + "\n")
    for flag, want in (([], tok.encode_ordinary(doc)), (["--match-special-tokens"], tok.encode_ids(doc))):
        out = tmp_path / f"t{len(flag)}.safetensors"
        subprocess.run([ferry_bin, "tokenize", "--tokenizer", str(tmp_path / "tok.json"),
                        str(tmp_path / "docs.txt"), "-o", str(out), *flag], check=True, capture_output=True)
        assert ferry.numpy.load_file(out)["tokens"].tolist() == want
    assert tok.encode_ordinary(doc) != tok.encode_ids(doc)


def test_ferry_tokenize_refuses_what_is_not_text(tmp_path, ferry_bin):
    import gzip

    tok = ferry.Tokenizer.train_from_iterator(["hi there"] * 30, vocab_size=270)
    tok.save(tmp_path / "tok.json")
    (tmp_path / "docs.txt.gz").write_bytes(gzip.compress(b"hello\nworld\n"))
    (tmp_path / "weights.bin").write_bytes(b"abc\x00\x01\x02" * 100)
    for name, why in (("docs.txt.gz", "gzip-compressed"), ("weights.bin", "binary, not text (a NUL byte at offset 3)")):
        run = subprocess.run([ferry_bin, "tokenize", "--tokenizer", str(tmp_path / "tok.json"),
                              str(tmp_path / name), "-o", str(tmp_path / "out.safetensors")],
                             capture_output=True, text=True)
        assert run.returncode != 0 and f"{name}: {why}" in run.stderr, run.stderr
        assert not (tmp_path / "out.safetensors").exists()


def test_pack_tokens_takes_read_only_arrays():
    ids = np.frombuffer(np.arange(1, 10, dtype=np.uint32).tobytes(), dtype=np.uint32)
    assert not ids.flags.writeable
    rows = [r.tolist() for r, _ in ferry.data.pack_tokens([ids], 4, 0)]
    assert rows == [[1, 2, 3, 4, 5], [5, 6, 7, 8, 9]]


def test_text_shards_tokenized_once_then_split_into_equal_batches(tmp_path, ferry_bin):
    """The exact path for text: ferry tokenize the tar shards into a token shard, then every
    rank packs the same number of batches of one global stream."""
    pattern, texts = text_shards(tmp_path, shards=3, per_shard=40)
    tok = ferry.Tokenizer.train_from_iterator(list(texts.values()), vocab_size=300,
                                              special_tokens=["<|endoftext|>"])
    tok.save(tmp_path / "tok.json")
    out = tmp_path / "tokens.safetensors"
    run = subprocess.run([ferry_bin, "tokenize", "--tokenizer", str(tmp_path / "tok.json"), pattern,
                          "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    in_order = [tok.encode_ordinary(texts[s["__key__"]]) for s in ferry.data.samples(pattern)]
    rows = list(ferry.data.pack_tokens(in_order, 16, 0))
    per_rank = [list(ferry.data.PackedDataset([out], seq_len=16, batch_size=2, eod_id=0, rank=r, world_size=3))
                for r in range(3)]
    assert len({len(b) for b in per_rank}) == 1 and len(per_rank[0]) == len(rows) // 6
    got = [row.tolist() for batches in per_rank for b in batches for row in b["input_ids"]]
    assert got == [r.tolist() for r, _ in rows[: len(got)]]
    missing = subprocess.run([ferry_bin, "tokenize", "--tokenizer", str(tmp_path / "tok.json"), pattern,
                              "--field", "json", "--count"], capture_output=True, text=True)
    assert missing.returncode == 66 and "text-0.tar: sample 's0/0000' has no field 'json'" in missing.stderr


def test_packed_dataset_names_a_sample_without_the_text_field(tmp_path):
    pattern, texts = text_shards(tmp_path, shards=1, per_shard=3)
    tok = ferry.Tokenizer.train_from_iterator(list(texts.values()), vocab_size=300, special_tokens=["<|endoftext|>"])
    shards = ferry.data.ShardDataset(pattern, rank=0, world_size=1, shuffle=False)
    with pytest.raises(ferry.NotFoundError, match=r"text-0.tar: sample 's0/0000' has no field 'json' \(fields: txt, cls\)"):
        list(ferry.data.PackedDataset(shards, tok, seq_len=4, batch_size=1, field="json"))
    skipping = ferry.data.ShardDataset(pattern, rank=0, world_size=1, shuffle=False, on_error="skip")
    with pytest.warns(RuntimeWarning, match="skipped 3 samples"):
        assert list(ferry.data.PackedDataset(skipping, tok, seq_len=4, batch_size=1, field="json")) == []
    assert len(skipping.skipped) == 3


def test_ferry_stream_counts_tokens_and_packed_rows(tmp_path, ferry_bin):
    pattern, texts = text_shards(tmp_path)
    tok = ferry.Tokenizer.train_from_iterator(list(texts.values()), vocab_size=400, special_tokens=["<|endoftext|>"])
    tok.save(tmp_path / "tok.json")
    out = subprocess.run([ferry_bin, "stream", pattern, "--rank", "1", "--world-size", "2", "--tokenizer",
                          str(tmp_path / "tok.json"), "--field", "txt", "--seq-len", "16", "--json"],
                         check=True, capture_output=True, text=True)
    report = json.loads(out.stdout)
    # The order `ferry stream` reads in: shards permuted by seed 0, no shuffle buffer.
    keys = [s["__key__"] for s in ferry.data.ShardDataset(pattern, rank=1, world_size=2, seed=0, shuffle_buffer=0)]
    encoded = [tok.encode_ordinary(texts[k]) for k in keys]
    assert report["tokens"] == sum(len(e) for e in encoded)
    assert report["rows"] == len(list(ferry.data.pack_tokens(encoded, 16, 0)))
    missing = subprocess.run([ferry_bin, "stream", pattern, "--tokenizer", str(tmp_path / "tok.json"),
                              "--field", "json"], capture_output=True, text=True)
    assert missing.returncode == 66 and "text-0.tar: sample 's0/0000' has no field 'json'" in missing.stderr


# ----------------------------------------------------------------------------------- resume
