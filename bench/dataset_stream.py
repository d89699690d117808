"""Sharded datasets through a DataLoader: ferry.data.ShardDataset vs webdataset, same shards.

Run through `scripts/bench.sh --only datasets` (bench/run.py calls `run()`). Two generated
datasets (made once into .cache/bench/, page cache warm):

  text    32 shards x 2,000 samples: a "txt" of 1-16 KiB of generated words and a "cls"
  binary  16 shards x 256 samples: a 100 KiB random "bin" and a "cls"

Each is read for one epoch with the same shuffle buffer (1,000 samples) under
`torch.utils.data.DataLoader(ds, batch_size=None, num_workers=W)`, as samples for W = 0, 1, 2
and as batches of 64 for W = 1, 2:

  webdataset  wds.WebDataset(urls, shardshuffle=False).shuffle(1000) [.batched(64)]
              (shards split by worker)
  ferry       ferry.data.ShardDataset(urls, index=..., shuffle_buffer=1000
              [, batch_size=64, batched=True]) (exact split)

Cases run round-robin, median of `--repeat`. Before timing, each library's epoch is checked to
hold every sample exactly once with the right field sizes (the multiset of (key, sizes) is
compared), and every timed epoch's sample and byte counts are checked.

Token packing: ferry.data.PackedDataset over 8 of the text shards (read, shuffled, tokenized
with GPT-2's tokenizer.json on every core, packed into [8, 2049] int32 batches) as a fraction of
the raw `encode_ordinary_batch` of the same texts already in memory.
"""

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

from timing import median_seconds

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench" / "datasets"
GPT2 = REPO.parent / "shared" / "data" / "tokenizers" / "hf" / "gpt2_tokenizer.json"
SHUFFLE = 1000
DATASETS = {"text": (32, 2000), "binary": (16, 256)}  # shards, samples per shard


def words(rng, n):
    """`n` pseudo-English words from a fixed 4,096-word vocabulary of syllables."""
    syllables = ["ka", "to", "ri", "men", "sha", "lo", "the", "an", "ver", "is", "dor", "el",
                 "pu", "qua", "st", "ing", "re", "on", "ex", "ly"]
    vocab = ["".join(rng.choice(syllables, size=1 + i % 4)) for i in range(4096)]
    return [vocab[i] for i in rng.integers(0, len(vocab), size=n)]


def make_dataset(kind: str) -> list[Path]:
    import numpy as np

    shards, per_shard = DATASETS[kind]
    folder = CACHE / kind
    paths = [folder / f"{kind}-{i:04d}.tar" for i in range(shards)]
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pool = " ".join(words(rng, 400_000)).encode()  # text samples are slices of this pool
    for i, path in enumerate(paths):
        tmp = path.with_suffix(".tmp")
        with tarfile.open(tmp, "w") as tar:
            for j in range(per_shard):
                if kind == "text":
                    size = int(rng.integers(1024, 16 * 1024 + 1))
                    start = int(rng.integers(0, len(pool) - size))
                    fields = (("txt", pool[start : start + size]), ("cls", b"%d" % (j % 10)))
                else:
                    fields = (("bin", rng.bytes(100 * 1024)), ("cls", b"%d" % (j % 10)))
                for field, data in fields:
                    info = tarfile.TarInfo(f"s{i:04d}/{j:06d}.{field}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        tmp.rename(path)
    return paths


BATCH = 64


def loader(dataset, workers):
    import torch

    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)


def epoch(dataset, workers):
    """(samples, field bytes, digest of the sorted (key, field sizes)) of one DataLoader epoch."""
    entries, total = [], 0
    for sample in loader(dataset, workers):
        sizes = tuple(sorted((k, len(v)) for k, v in sample.items() if not k.startswith("__")))
        total += sum(n for _, n in sizes)
        entries.append((sample["__key__"], sizes))
    digest = hashlib.sha256(repr(sorted(entries)).encode()).hexdigest()
    return len(entries), total, digest


def count(dataset, workers, batched):
    """(samples, field bytes) of one DataLoader epoch: what the timed runs do."""
    samples = total = 0
    for item in loader(dataset, workers):
        fields = [v for k, v in item.items() if not k.startswith("__")]
        if batched:
            samples += len(item["__key__"])
            total += sum(len(b) for column in fields for b in column if b is not None)
        else:
            samples += 1
            total += sum(len(v) for v in fields)
    return samples, total


def bench_loaders(args, rows, kind) -> None:
    import ferry.data
    import webdataset as wds

    paths = make_dataset(kind)
    urls = [str(p) for p in paths]
    index = CACHE / f"{kind}-index.json"
    if not index.exists():
        subprocess.run([str(Path(sys.executable).parent / "ferry"), "index", *urls, "-o", str(index)],
                       check=True, capture_output=True)

    def webdataset(batched):
        ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False).shuffle(SHUFFLE)
        return ds.batched(BATCH) if batched else ds

    def ferry_dataset(batched):
        return ferry.data.ShardDataset(urls, index=index, rank=0, world_size=1, shuffle_buffer=SHUFFLE,
                                       batch_size=BATCH if batched else 1, batched=batched)

    want = epoch(webdataset(False), 2)
    if epoch(ferry_dataset(False), 2) != want:  # every sample once, the same sizes
        sys.exit(f"bench: ferry read a different epoch than webdataset ({kind})")
    # (label, make, workers, batched); the webdataset case of each pair is the baseline.
    cases = {}  # (the dataset is made inside the clock: for ferry that reads the small index)
    for batched, workers_list in ((False, (0, 1, 2)), (True, (1, 2))):
        for workers in workers_list:
            shape = f"batches of {BATCH}" if batched else "samples"
            for name, make in (("webdataset", webdataset), ("ferry", ferry_dataset)):
                cases[f"{name}, {shape}, {workers} workers"] = \
                    lambda make=make, workers=workers, batched=batched: count(make(batched), workers, batched)

    def check(label, got):
        if got != want[:2]:
            sys.exit(f"bench: {label} yielded {got}, expected {want[:2]} ({kind})")

    seconds = median_seconds(cases, args.repeat, check)
    samples, total = want[0], want[1]
    for label, t in seconds.items():
        baseline = label.replace("ferry", "webdataset")
        rows.append((f"{kind} shards -> DataLoader, shuffle {SHUFFLE}",
                     f"{label}: {samples / t:,.0f} samples/s, {total / t / 1e6:,.0f} MB/s",
                     total / t / 1e9, seconds[baseline] / t, baseline))


def bench_packing(args, rows) -> None:
    import ferry
    import ferry.data

    if not GPT2.exists():
        print(f"bench: token packing skipped: {GPT2} is absent")
        return
    tok = ferry.Tokenizer.from_file(GPT2)
    urls = [str(p) for p in make_dataset("text")[:8]]
    texts = [s["txt"] for s in ferry.data.samples(urls)]
    total = sum(len(t) for t in texts)
    eod = tok.token_to_id("<|endoftext|>")
    expected_rows = (sum(len(ids) + 1 for ids in tok.encode_ordinary_batch(texts)) - 1) // 2048 // 8 * 8

    shards = ferry.data.ShardDataset(urls, rank=0, world_size=1, shuffle_buffer=SHUFFLE)

    def packed():
        ds = ferry.data.PackedDataset(shards, tok, seq_len=2048, batch_size=8, eod_id=eod)
        return sum(len(b["input_ids"]) for b in ds)

    if packed() != expected_rows:
        sys.exit("bench: PackedDataset made a different number of rows than the encoding implies")
    cases = {"encode_ordinary_batch (texts in memory)": lambda: tok.encode_ordinary_batch(texts),
             "PackedDataset (read + shuffle + encode + pack + batch)": packed}
    seconds = median_seconds(cases, args.repeat)
    raw = total / seconds["encode_ordinary_batch (texts in memory)"]
    for label, t in seconds.items():
        rate = total / t
        rows.append(("token packing, GPT-2, 8 text shards, all cores", f"{label}: {rate / 1e6:.1f} MB/s of text",
                     rate / 1e9, rate / raw, "ferry encode_ordinary_batch"))


def run(args, rows) -> None:
    for kind in DATASETS:
        bench_loaders(args, rows, kind)
    bench_packing(args, rows)
