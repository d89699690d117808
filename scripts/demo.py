"""ferry's demo: move bytes and a safetensors checkpoint from disk and from a loopback HTTP
server into memory, verify them, and report throughput; train a byte-level BPE tokenizer on this
repository's own text and encode with it; write the same text as WebDataset tar shards and
stream them as two ranks would, split exactly, then as token-packed batches. Uses only data it
generates (in .cache/demo/) or owns."""

import argparse
import hashlib
import io
import os
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

import ferry
import ferry.data
import ferry.numpy

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


def sample_checkpoint(folder: Path, mib: int) -> tuple[Path, dict]:
    """A checkpoint of float16/float32 tensors of transformer-like shapes, about `mib` MiB."""
    rng = np.random.default_rng(7)
    arrays, total, i = {}, 0, 0
    while total < mib << 20:
        arrays[f"layers.{i}.attn.weight"] = rng.standard_normal((1024, 1024), dtype=np.float32).astype(np.float16)
        arrays[f"layers.{i}.mlp.weight"] = rng.standard_normal((2816, 1024), dtype=np.float32).astype(np.float16)
        arrays[f"layers.{i}.norm.weight"] = rng.standard_normal(1024, dtype=np.float32)
        total += sum(a.nbytes for a in list(arrays.values())[-3:])
        i += 1
    path = folder / f"checkpoint-{mib}MiB.safetensors"
    ferry.numpy.save_file(arrays, path, metadata={"made_by": "scripts/demo.py"})
    return path, arrays


def timed_load(label, uri, arrays, mode, repeat=3):
    """One pass that checks every tensor (and ferry's checksums), then timed passes."""
    with ferry.safe_open(uri, mode=mode, verify_checksums=True) as f:
        for name in f.keys():
            if not np.array_equal(f.get_tensor(name), arrays[name]):  # plaid: before the next one
                sys.exit(f"demo: {label}: tensor {name} differs")
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with ferry.safe_open(uri, mode=mode) as f:
            for name in f.keys():
                # Touch every page: an mmap view is read only when used.
                f.get_tensor(name).reshape(-1).view(np.uint8)[::4096].sum()
        best = min(best, time.perf_counter() - start)
    size = sum(a.nbytes for a in arrays.values())
    note = "; zero-copy: maps the page cache" if mode == "mmap" else ""
    print(f"  {label:<34} {size / best / 1e9:6.2f} GB/s   ({len(arrays)} tensors, all checked{note})")


def own_text() -> list[str]:
    """This repository's own sources and docs, a document per file: text the project owns."""
    files = sorted(p for d in ("src", "python", "tools", "tests", "bench", "scripts") for p in (REPO / d).rglob("*")
                   if p.suffix in (".cc", ".h", ".py", ".md", ".sh"))
    return [p.read_text(encoding="utf-8", errors="replace") for p in files + [REPO / "README.md"]]


def tokenizer_demo(folder: Path) -> "ferry.Tokenizer":
    docs = own_text()
    size = sum(len(d.encode()) for d in docs)
    start = time.perf_counter()
    tok = ferry.Tokenizer.train_from_iterator(docs, vocab_size=4096, special_tokens=["<|endoftext|>"])
    trained = time.perf_counter() - start
    path = folder / "tokenizer.json"
    tok.save(path)
    print(f"tokenizer: {path.relative_to(REPO)} (byte-level BPE, 4096 tokens, trained on {len(docs)} of "
          f"ferry's own files, {size / 1e6:.1f} MB, in {trained:.2f} s)")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        batch = tok.encode_batch_ids(docs)  # the ids path: numpy arrays, no Encoding objects
        best = min(best, time.perf_counter() - start)
    tokens = sum(len(ids) for ids in batch)
    if [tok.decode(ids, skip_special_tokens=False) for ids in batch] != docs:
        sys.exit("demo: decode(encode(text)) differs from the text")
    print(f"  {'encode_batch, all cores':<34} {size / best / 1e6:6.1f} MB/s   ({tokens:,} tokens, "
          f"{size / tokens:.2f} bytes/token, decode checked)")
    try:
        import tokenizers
    except ImportError:
        return tok
    reference = tokenizers.Tokenizer.from_file(str(path))
    start = time.perf_counter()
    expected = [e.ids for e in reference.encode_batch(docs)]
    took = time.perf_counter() - start
    if expected != [ids.tolist() for ids in batch]:
        sys.exit("demo: Hugging Face tokenizers gives other ids for the trained tokenizer")
    print(f"  {'tokenizers encode_batch (same file)':<34} {size / took / 1e6:6.1f} MB/s   (same ids)")
    return tok


def dataset_demo(folder: Path, tok) -> None:
    """The repository's own files as 8 WebDataset shards (a sample per file: its text and path),
    streamed as 2 ranks with a shuffle buffer (the split checked exact), then packed."""
    docs = own_text()
    shards = []
    for s in range(8):
        shards.append(folder / f"own-{s}.tar")
        with tarfile.open(shards[-1], "w") as tar:
            for i in range(s, len(docs), 8):
                for field, data in (("txt", docs[i].encode()), ("id", b"%d" % i)):
                    info = tarfile.TarInfo(f"doc{i:05d}.{field}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    pattern = str(folder / "own-{0..7}.tar")
    print(f"dataset: {len(shards)} tar shards of ferry's own files ({len(docs)} samples)")
    start = time.perf_counter()
    ranks = [ferry.data.ShardDataset(pattern, rank=r, world_size=2, batch_size=4, shuffle_buffer=64, seed=1)
             for r in range(2)]
    keys = [[sample["__key__"] for sample in rank] for rank in ranks]
    took = time.perf_counter() - start
    if len(keys[0]) != len(keys[1]) or set(keys[0]) | set(keys[1]) != {f"doc{i:05d}" for i in range(len(docs))}:
        sys.exit("demo: the two ranks did not split the samples exactly")
    print(f"  {'2 ranks, shuffle 64, batch 4':<34} {len(keys[0])} samples each, every sample read "
          f"({len(docs) / took:,.0f} samples/s with counting)")
    start = time.perf_counter()
    packed = ferry.data.PackedDataset(ranks[0], tok, seq_len=512, batch_size=8)
    batches = list(packed)
    took = time.perf_counter() - start
    rows = sum(len(b["input_ids"]) for b in batches)
    print(f"  {'rank 0 token-packed, seq_len 512':<34} {len(batches)} batches of 8 x 513 int32 "
          f"({rows * 512 / took:,.0f} tokens/s)")


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
    checkpoint, arrays = sample_checkpoint(REPO / ".cache" / "demo", args.mib)
    with Nginx(path.parent) as server:
        url = server.url(path.name)
        timed_read("HTTP (nginx, loopback), 1 conn", url, expected, parallelism=1)
        timed_read("HTTP (nginx, loopback), 4 conns", url, expected, parallelism=4)
        print(f"checkpoint: {checkpoint.relative_to(REPO)} (safetensors, written by ferry)")
        for mode in ("eager", "lazy", "plaid", "mmap"):
            timed_load(f"{mode}, local file", checkpoint, arrays, mode)
        for mode in ("eager", "plaid"):
            timed_load(f"{mode}, HTTP (nginx, loopback)", server.url(checkpoint.name), arrays, mode)
    tok = tokenizer_demo(REPO / ".cache" / "demo")
    dataset_demo(REPO / ".cache" / "demo", tok)


if __name__ == "__main__":
    main()
