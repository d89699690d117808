"""Sharded datasets through a DataLoader: ferry.data.ShardDataset vs webdataset, same shards.

Run through `scripts/bench.sh --only datasets` (bench/run.py calls `run()`). Two generated
datasets (made once into .cache/bench/, page cache warm):

  text    32 shards x 2,000 samples: a "txt" of 1-16 KiB of generated words and a "cls"
  binary  16 shards x 256 samples: a 100 KiB random "bin" and a "cls"

Each is read for one epoch with the same shuffle buffer (1,000 samples) under
`torch.utils.data.DataLoader(ds, batch_size=None, num_workers=W)`, as samples and as batches of
64 for W = 0, 1, 2:

  webdataset  wds.WebDataset(urls, shardshuffle=False).shuffle(1000) [.batched(64)]
              (shards split by worker)
  ferry       ferry.data.ShardDataset(urls, index=..., shuffle_buffer=1000
              [, batch_size=64, batched=True]) (exact split)
  spdl        SPDL's thread pipeline in process: shards parsed by spdl.io.iter_tarfile on 2
              threads, the same shuffle buffer in Python, batches of 64 as columns
  mosaicml    StreamingDataset(local=MDS of the same samples, shuffle=True), in its own
              virtualenv as a subprocess (bench/mosaic_stream.py)

Cases run round-robin, median of `--repeat`. Before timing, each library's epoch is checked to
hold every sample exactly once with the right field sizes (the multiset of (key, sizes) is
compared; for webdataset's and ferry's batches too, through 2 workers), and every timed epoch's
sample and byte counts are checked. A timed consumer takes len() of every value: of bytes for
webdataset, of the bytes that iterating a ferry ByteColumn gives (a copy out of its buffer).

Token packing: ferry.data.PackedDataset over 8 of the text shards (read, shuffled, tokenized
with GPT-2's tokenizer.json on every core, packed into [8, 2049] int32 batches) as a fraction of
the raw `encode_ordinary_batch` of the same texts already in memory.
"""

import hashlib
import io
import json
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

from timing import median_seconds

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench" / "datasets"
GPT2 = REPO.parent / "shared" / "data" / "tokenizers" / "hf" / "gpt2_tokenizer.json"
# MosaicML streaming runs in its own virtualenv (bench/mosaic_stream.py says why), made by
# scripts/bench.sh.
ANCHORS_PYTHON = REPO / ".cache" / "bench" / "anchors-venv" / "bin" / "python"
MOSAIC = Path(__file__).resolve().parent / "mosaic_stream.py"
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
    return summary(loader(dataset, workers))


def summary(samples):
    """(samples, field bytes, digest of the sorted (key, field sizes)) of an epoch of samples."""
    entries, total = [], 0
    for sample in samples:
        sizes = tuple(sorted((k, len(v)) for k, v in sample.items() if not k.startswith("__")))
        total += sum(n for _, n in sizes)
        entries.append((sample["__key__"], sizes))
    digest = hashlib.sha256(repr(sorted(entries)).encode()).hexdigest()
    return len(entries), total, digest


def count(dataset, workers, batched):
    """(samples, field bytes) of one DataLoader epoch: what the timed runs do."""
    return count_items(loader(dataset, workers), batched)


def count_items(items, batched):
    """(samples, field bytes) of an epoch of samples or columnar batches."""
    samples = total = 0
    for item in items:
        fields = [v for k, v in item.items() if not k.startswith("__")]
        if batched:
            samples += len(item["__key__"])
            total += sum(len(b) for column in fields for b in column if b is not None)
        else:
            samples += 1
            total += sum(len(v) for v in fields)
    return samples, total


def unbatched(batches):
    """The samples of columnar batches (a list, or a ferry ByteColumn, per field; None where a
    sample lacks the field), for summary()."""
    for batch in batches:
        columns = {k: v for k, v in batch.items() if k == "__key__" or not k.startswith("__")}
        for i in range(len(batch["__key__"])):
            yield {k: v[i] for k, v in columns.items() if v[i] is not None}


def shuffled(items, size, seed=0):
    """A shuffle buffer of `size` items in Python, as webdataset's: for the anchors that have none."""
    import random

    rng, buffer = random.Random(seed), []
    for item in items:
        buffer.append(item)
        if len(buffer) >= size:
            i = rng.randrange(len(buffer))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            yield buffer.pop()
    rng.shuffle(buffer)
    yield from buffer


def grouped(members):
    """(name, bytes) tar members as webdataset groups them into samples: the key is the name up to
    the first dot of its last component, the field the rest; consecutive members share a key.
    For the anchors that read tars without webdataset's grouping (SPDL, the MosaicML writer)."""
    sample = None
    for name, data in members:
        dot = name.find(".", name.rfind("/") + 1)
        if sample is None or name[:dot] != sample["__key__"]:
            if sample is not None:
                yield sample
            sample = {"__key__": name[:dot]}
        sample[name[dot + 1:]] = data
    if sample is not None:
        yield sample


def spdl_samples(urls, batched):
    """SPDL (Meta's thread-based pipeline) over the same shards, in process as SPDL runs: two
    threads each read a whole shard and parse it with SPDL's native `iter_tarfile`, samples are
    grouped by key as webdataset groups them, then the same shuffle buffer (SPDL has no shuffle
    stage; this one is Python, like webdataset's) and, batched, `aggregate(64)`."""
    import spdl.io
    from spdl.pipeline import PipelineBuilder

    def load(path):
        with open(path, "rb") as f:
            data = f.read()
        return list(grouped((name, bytes(view)) for name, view in spdl.io.iter_tarfile(data)))

    def samples():
        pipeline = (PipelineBuilder().add_source(urls).pipe(load, concurrency=2, output_order="input")
                    .disaggregate().add_sink(256).build(num_threads=2))
        with pipeline.auto_stop():
            yield from pipeline

    items = shuffled(samples(), SHUFFLE)
    return columns_of_batches(items) if batched else items


def columns_of_batches(items):
    """Batches of BATCH samples as columnar dicts, the shape ferry's batched=True yields."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH:
            yield columns(batch)
            batch = []
    if batch:
        yield columns(batch)


def columns(samples):
    fields = {k for s in samples for k in s if k != "__key__"}
    return {"__key__": [s["__key__"] for s in samples], **{k: [s.get(k) for s in samples] for k in fields}}


def spdl_available() -> str | None:
    """None when SPDL imports, else why not."""
    try:
        import spdl.io  # noqa: F401
        import spdl.pipeline  # noqa: F401
    except Exception as e:  # an optional anchor: the table says it was not measured and why
        return f"{type(e).__name__}: {e}"
    return None


def mosaic_seconds(args, kind, paths, want) -> dict:
    """{label: median seconds} of MosaicML streaming's StreamingDataset on the same samples (as
    MDS, written once), through the same DataLoader settings; each epoch checked against `want`."""
    probe = subprocess.run([str(ANCHORS_PYTHON), "-c", "import streaming"], capture_output=True, text=True) \
        if ANCHORS_PYTHON.exists() else None
    if probe is None or probe.returncode != 0:
        why = probe.stderr.strip().splitlines()[-1] if probe else f"{ANCHORS_PYTHON} is missing"
        print(f"bench: MosaicML streaming not measured: {why} (scripts/bench.sh makes its virtualenv)")
        return {}
    mds = CACHE / f"{kind}-mds"
    if not (mds / "index.json").exists():
        subprocess.run([str(ANCHORS_PYTHON), str(MOSAIC), "write", str(mds), *map(str, paths)], check=True)
    out = {}
    for batch in (0, BATCH):
        shape = f"batches of {BATCH}" if batch else "samples"
        for workers in (0, 1, 2):
            run = subprocess.run([str(ANCHORS_PYTHON), str(MOSAIC), "read", str(mds), str(workers), str(batch),
                                  str(args.repeat)], capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"bench: MosaicML streaming failed ({kind}, {shape}, {workers} workers):\n{run.stderr[-2000:]}")
            result = json.loads(run.stdout.splitlines()[-1])
            if (result["samples"], result["bytes"], result["digest"]) != want:
                sys.exit(f"bench: MosaicML streaming read a different epoch than webdataset ({kind})")
            out[f"mosaicml, {shape}, {workers} workers"] = statistics.median(result["seconds"])
    return out


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
    for name, make in (("webdataset", webdataset), ("ferry", ferry_dataset)):  # and in batches
        if summary(unbatched(loader(make(True), 2))) != want:
            sys.exit(f"bench: {name}'s batches of {BATCH} hold a different epoch than webdataset's samples ({kind})")
    spdl_missing = spdl_available()
    if spdl_missing is None and summary(spdl_samples(urls, False)) != want:
        sys.exit(f"bench: SPDL read a different epoch than webdataset ({kind})")
    # (label, make, workers, batched); the webdataset case of each pair is the baseline.
    cases = {}  # (the dataset is made inside the clock: for ferry that reads the small index)
    for batched in (False, True):
        shape = f"batches of {BATCH}" if batched else "samples"
        for workers in (0, 1, 2):
            for name, make in (("webdataset", webdataset), ("ferry", ferry_dataset)):
                cases[f"{name}, {shape}, {workers} workers"] = \
                    lambda make=make, workers=workers, batched=batched: count(make(batched), workers, batched)
        if spdl_missing is None:  # SPDL's own threads, in process, instead of loader workers
            cases[f"spdl, {shape}, 0 workers"] = lambda batched=batched: count_items(spdl_samples(urls, batched), batched)

    def check(label, got):
        if got != want[:2]:
            sys.exit(f"bench: {label} yielded {got}, expected {want[:2]} ({kind})")

    seconds = median_seconds(cases, args.repeat, check)
    seconds.update(mosaic_seconds(args, kind, paths, want))
    samples, total = want[0], want[1]
    for label, t in seconds.items():
        anchors = [label.replace("ferry", a) for a in ("webdataset", "spdl", "mosaicml")] \
            if label.startswith("ferry") else [label.replace(label.split(",")[0], "webdataset")]
        for baseline in (a for a in anchors if a in seconds):
            rows.append((f"{kind} shards -> DataLoader, shuffle {SHUFFLE}",
                         f"{label}: {samples / t:,.0f} samples/s, {total / t / 1e6:,.0f} MB/s",
                         total / t / 1e9, seconds[baseline] / t, baseline))
    if spdl_missing is not None:
        print(f"bench: SPDL not measured: {spdl_missing}")


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
