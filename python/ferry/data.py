"""Datasets: WebDataset-layout tar shards streamed from files, HTTP(S) or S3.

    import ferry.data
    for sample in ferry.data.samples("s3://bucket/shards/train-0000.tar"):
        sample["__key__"], sample["jpg"]      # bytes per field

Members are grouped as webdataset does: the key is the path up to the first dot of its last
component, the field the rest (lower-cased); consecutive members with one key form a sample.
Regular files only (directories and links are skipped); pax and GNU long names and gzip-
compressed shards are handled. A malformed shard raises ``ferry.CorruptionError`` naming the
shard and the byte offset; a field repeated within one sample does too.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import Iterator

import numpy as np

from ferry import _core


def shard_urls(shards: str | os.PathLike[str] | Iterable) -> list[str]:
    """The shard URLs named by a spec or a list of specs, in order. A spec is a path or URI,
    brace ranges and lists (``train-{0000..0099}.tar``, ``{a,b}.tar``), a local glob or an
    ``s3://`` prefix or wildcard (``ferry.io.list``), or ``@FILE``: a text file (path or URI) with
    one spec per line, blank lines and ``#`` comments skipped."""
    specs = [shards] if isinstance(shards, (str, os.PathLike)) else list(shards)
    return _core.expand_shards([os.fspath(s) for s in specs])


def samples(shards: str | os.PathLike[str] | Iterable) -> Iterator[dict]:
    """Samples of the shards ``shard_urls(shards)`` names, shard after shard, in order."""
    for uri in shard_urls(shards):
        yield from _core.SampleReader(uri)


try:  # a torch IterableDataset when torch is there (DataLoader needs the base class)
    from torch.utils.data import IterableDataset as _Base
except ImportError:  # pragma: no cover - exercised where torch is absent
    _Base = object


def _distributed_rank_and_world() -> tuple[int, int]:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:
        pass
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _worker() -> tuple[int, int]:
    try:
        from torch.utils.data import get_worker_info
    except ImportError:
        return 0, 1
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


class ShardDataset(_Base):
    """WebDataset tar shards split exactly across ranks and loader workers.

        ds = ferry.data.ShardDataset("s3://bucket/train-{0000..0099}.tar", seed=0)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=4)
        for epoch in range(10):
            ds.set_epoch(epoch)
            for sample in loader: ...   # {"__key__", "__url__", field: bytes}

    With ``batched=True`` it yields whole batches of ``batch_size`` samples, assembled in C++ as one
    columnar dict, ``{"__key__": [...], "__url__": [...], field: [bytes, ...]}`` (None where a
    sample lacks a field some other sample of the batch has), the shape webdataset's ``batched()`` gives; use it with
    ``DataLoader(ds, batch_size=None)``. A loader worker then hands over one object per batch
    instead of one per sample, which is what a DataLoader's inter-process queue is limited by.

    One epoch is the shards in a (seed, epoch)-permuted order, read front to back, cut into
    `world_size` equal contiguous slices (every rank the same number of samples and of
    `batch_size` batches; `remainder="pad"` repeats samples from the start so none is lost,
    `"drop"` cuts so none repeats), each slice into whole batches per loader worker, each worker's
    stream mixed by a `shuffle_buffer` of samples. Needs the samples per shard: from `index` (a
    `ferry index` JSON, local or s3://, also accepted in place of `shards`) or counted on the fly
    by streaming every shard once.
    rank / world_size default to torch.distributed, else $RANK / $WORLD_SIZE, else 0 / 1.

    Each iterator is a staged C++ pipeline: `readers` threads (default 1 for local files, 4 for
    URLs) read that many shards at once, a merge puts their samples back in plan order through
    the shuffle buffer, and bounded queues of `queue_capacity` samples join the stages, so memory
    stays bounded however slow the consumer (at most about (2 x readers + 4) x queue_capacity +
    shuffle_buffer samples). The order does not depend on the threads. ``on_error="fail"`` stops at the first bad shard with an error naming it (and
    the member and byte offset); ``"skip"`` skips the rest of that shard, records
    ``(url, error, samples lost)`` in ``skipped`` and warns at the end of the iteration; that rank
    then yields fewer samples than the others.
    """

    def __init__(self, shards, *, index: str | None = None, rank: int | None = None,
                 world_size: int | None = None, seed: int = 0, shuffle: bool = True,
                 shuffle_buffer: int = 1000, remainder: str = "pad", batch_size: int = 1,
                 batched: bool = False, on_error: str = "fail", readers: int | None = None,
                 queue_capacity: int = 64) -> None:
        if index is None and isinstance(shards, (str, os.PathLike)) and os.fspath(shards).endswith(".json"):
            index = shards  # ShardDataset("index.json"): a `ferry index` file names the shards
        if index is not None:
            indexed = _core.read_index(os.fspath(index))
        else:
            indexed = _core.index_shards(shard_urls(shards))
        self.urls = [u for u, _, _ in indexed]
        self.counts = [n for _, _, n in indexed]
        if rank is None or world_size is None:
            auto_rank, auto_world = _distributed_rank_and_world()
            rank = auto_rank if rank is None else rank
            world_size = auto_world if world_size is None else world_size
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle, self.shuffle_buffer = seed, shuffle, shuffle_buffer
        self.remainder, self.batch_size, self.batched = remainder, batch_size, batched
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
        # readers=None: the loader's choice, 1 for local shards, 4 for URLs (loader.h says why).
        self.on_error, self.readers, self.queue_capacity = on_error, readers or 0, queue_capacity
        self.skipped: list[tuple[str, str, int | None]] = []  # (url, error, samples lost)
        self.epoch = 0
        self._resume = None  # a loaded state_dict, for its epoch
        # Checks the options now, not in a loader worker.
        self._plan(0, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def state_dict(self, samples_seen: int, num_workers: int = 0) -> dict:
        """Where this epoch stands, to resume it later, maybe with another world size or loader.

        ``samples_seen``: the samples this rank has consumed this epoch (the same on every rank,
        e.g. steps x batch size, counted from the start of the epoch, also after a resume), at a
        batch boundary. ``num_workers``: the DataLoader's, which must take ``batch_size`` samples
        from a worker at a time (``DataLoader(ds, batch_size=ds.batch_size, num_workers=...)``),
        as it does. The state is small and the same on every rank; save it with the checkpoint.
        """
        r = self._resume
        if r is not None and r["epoch"] == self.epoch and not self._resumes_exactly(num_workers):
            raise _core.UnsupportedError(
                "checkpointing an epoch resumed on another world size, loader or batch size is not "
                "supported yet; checkpoint at epoch boundaries after such a resume")
        return {"format": "ferry-shard-dataset-state-v1", "epoch": self.epoch, "seed": self.seed,
                "shuffle": self.shuffle, "world_size": self.world_size,
                "num_workers": max(num_workers, 1), "batch_size": self.batch_size,
                "remainder": self.remainder, "shuffle_buffer": self.shuffle_buffer if self.shuffle else 0,
                "samples_per_rank": samples_seen, "shards": len(self.counts), "samples": sum(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        """Resume: the next iteration yields the rest of ``state``'s epoch. Run as before (world
        size, loader workers, batch size, remainder and shuffle buffer unchanged), it yields
        exactly the samples, in exactly the order, the interrupted run would have yielded next:
        each worker replays its shuffle buffer, skips the shards it had finished and drops the
        samples it had yielded. Otherwise each sample the interrupted run had not yet yielded
        comes once (none it had), split exactly across this run's ranks and workers, in a new
        order. The epochs after it are whole again."""
        if state.get("format") != "ferry-shard-dataset-state-v1":
            raise ValueError("not a ferry ShardDataset state (format ferry-shard-dataset-state-v1)")
        if (state["seed"], state["shuffle"]) != (self.seed, self.shuffle) or \
                (state["shards"], state["samples"]) != (len(self.counts), sum(self.counts)):
            raise ValueError("the state belongs to another dataset or seed: "
                             f"seed/shuffle {state['seed']}/{state['shuffle']} vs {self.seed}/{self.shuffle}, "
                             f"shards/samples {state['shards']}/{state['samples']} vs {len(self.counts)}/{sum(self.counts)}")
        self._resume = dict(state)
        self.epoch = state["epoch"]
        self._resplit_plan(0, 1)  # checks the state now

    def _resumes_exactly(self, num_workers: int) -> bool:
        """Whether this epoch continues a state saved under this very split and loader."""
        r = self._resume
        return (r is not None and r["epoch"] == self.epoch and r["world_size"] == self.world_size
                and r["num_workers"] == max(num_workers, 1) and r["batch_size"] == self.batch_size
                and r["remainder"] == self.remainder
                and r["shuffle_buffer"] == (self.shuffle_buffer if self.shuffle else 0))

    def _resplit_plan(self, worker: int, num_workers: int):
        r = self._resume
        return _core.plan_for_resumed(
            self.counts, self.rank, worker, self.seed, self.epoch, self.shuffle, self.world_size,
            num_workers, self.batch_size, self.remainder, r["world_size"], r["num_workers"],
            r["batch_size"], r["remainder"], r["shuffle_buffer"], r["samples_per_rank"])

    def _plan(self, worker: int, num_workers: int):
        r = self._resume
        if r is not None and r["epoch"] == self.epoch and not self._resumes_exactly(num_workers):
            return self._resplit_plan(worker, num_workers)
        return _core.plan_for(self.counts, self.rank, worker, self.seed, self.epoch, self.shuffle,
                              self.world_size, num_workers, self.batch_size, self.remainder)

    def __len__(self) -> int:
        """Samples this rank yields this epoch (the same on every rank). In a resumed epoch this
        assumes the loader has as many workers as the interrupted run's."""
        r = self._resume
        if r is None or r["epoch"] != self.epoch:
            return self._plan(0, 1)[0]
        samples = self._plan(0, r["num_workers"])[0]
        return samples - r["samples_per_rank"] if self._resumes_exactly(r["num_workers"]) else samples

    def _loader_args(self) -> tuple:
        """(urls, spans, shuffle_buffer, shuffle_seed, readers, queue_capacity, on_error,
        skip_yielded) for this process's (rank, loader worker)."""
        worker, num_workers = _worker()
        skip = 0
        if self._resumes_exactly(num_workers):
            # The interrupted loader took whole batches from its workers in turn, starting with
            # worker 0; this worker plays the one whose turn comes next, so the DataLoader's
            # round-robin (which starts again at its worker 0) continues the old sequence, and
            # skips the batches that one had yielded.
            batches = self._resume["samples_per_rank"] // self.batch_size
            worker = (worker + batches) % num_workers
            turns = batches // num_workers + (1 if worker < batches % num_workers else 0)
            skip = turns * self.batch_size
        _, _, spans = self._plan(worker, num_workers)
        skip = min(skip, sum(count for _, _, count in spans))
        seed = _core.shuffle_seed(self.seed, self.epoch, self.rank, worker)
        return (self.urls, spans, self.shuffle_buffer if self.shuffle else 0, seed, self.readers,
                self.queue_capacity, self.on_error, skip)

    def _report_skipped(self, loader) -> None:
        skipped = loader.skipped()
        if skipped:
            self.skipped.extend(skipped)
            lost = sum(n for _, _, n in skipped if n is not None)
            warnings.warn(f"ferry.data: skipped {lost} samples of {len(skipped)} bad shards or "
                          f"samples; first: {skipped[0][1]}", RuntimeWarning, stacklevel=3)

    def __iter__(self):
        loader = _core.SampleLoader(*self._loader_args())
        if self.batched:
            while (batch := loader.next_batch(self.batch_size)) is not None:
                yield batch
        else:
            yield from loader
        self._report_skipped(loader)


# ------------------------------------------------------------------------------- token packing


def pack_tokens(documents: Iterable, seq_len: int, eod_id: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pack documents of token ids into rows of ``seq_len + 1`` int32 tokens.

    Documents are joined into one stream, each followed by ``eod_id``. Row i is
    ``stream[i * seq_len : i * seq_len + seq_len + 1]``: consecutive rows share one token, so with
    ``inputs = row[:-1]`` and ``targets = row[1:]`` every token of the stream is a target exactly
    once. Yields ``(row, doc_offsets)`` where ``doc_offsets`` (int32) are the positions in the row
    where a segment starts (0 first, even mid-document) followed by ``seq_len + 1``: segment k is
    ``row[doc_offsets[k]:doc_offsets[k + 1]]``, the boundaries attention masking needs. The tail
    that does not fill a row is dropped. (The same packer as PackedDataset's C++ pipeline.)
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    packer = _core.TokenPacker(seq_len, eod_id)
    for number, doc in enumerate(documents):
        packer.add(_token_ids(doc, f"document {number}"))
        yield from packer.rows()


def _token_ids(doc, what: str) -> np.ndarray:
    """`doc` as contiguous uint32 ids; a negative or non-integer id is an error naming `what`
    (a cast would wrap it silently)."""
    ids = np.asarray(doc)
    if ids.dtype == np.uint32 and ids.flags.c_contiguous:
        return ids
    if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0):
        raise ValueError(f"{what}: token ids must be non-negative integers (got dtype {ids.dtype}, "
                         f"min {ids.min()})")
    return np.ascontiguousarray(ids, dtype=np.uint32)


def _open_token_shard(shard):
    from ferry._tensors import safe_open

    f = safe_open(os.fspath(shard), framework="np", mode="lazy")  # the header now, tensors on get
    problem = None
    if (f.metadata() or {}).get("ferry.format") != "token-shard-v1":
        problem = "__metadata__ ferry.format is not token-shard-v1"
    else:  # what the split computes from the header alone must hold
        for name, dtype in (("tokens", "U32"), ("doc_offsets", "U64")):
            if name not in f:
                problem = f"no tensor {name!r}"
            elif f.dtype(name) != dtype or len(f.shape(name)) != 1:
                problem = f"{name!r} is {f.dtype(name)} {list(f.shape(name))}, expected a 1-d {dtype}"
            if problem:
                break
        else:
            if f.shape("doc_offsets")[0] < 1:
                problem = "'doc_offsets' is empty (it holds documents + 1 entries)"
    if problem:
        f.close()
        raise _core.CorruptionError(f"{os.fspath(shard)}: not a ferry token shard ({problem})")
    return f


def _token_shard_arrays(shard) -> tuple[np.ndarray, np.ndarray]:
    with _open_token_shard(shard) as f:
        tokens, offsets = f.get_tensor("tokens"), f.get_tensor("doc_offsets").astype(np.int64)
    if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(tokens) or np.any(np.diff(offsets) < 0):
        raise _core.CorruptionError(f"{os.fspath(shard)}: doc_offsets do not tile tokens")
    return tokens, offsets


def token_shard_rows(shards: list, seq_len: int, eod_id: int, batch_size: int, rank: int, world_size: int,
                     worker: int = 0, num_workers: int = 1) -> tuple[int, Iterator[tuple[np.ndarray, np.ndarray]]]:
    """An exact split of the packed rows of ferry token shards across ranks and loader workers.

    The stream is every shard's documents in list order, each followed by ``eod_id``, cut into
    rows as ``pack_tokens`` cuts it. Its length is known from the shard headers alone, so the
    rows are split before any token is read: every rank gets the same number of whole batches
    (``rows // (world_size x batch_size)``; the few rows left over are dropped), as contiguous
    rows of the global packing, and each of its loader workers a contiguous run of whole batches.
    A reader reads only the shards its rows overlap, starting mid-document where its first row
    does. Returns (batches per rank, this reader's (row, doc_offsets) iterator).
    """
    if seq_len < 1 or batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"bad split: seq_len {seq_len}, batch_size {batch_size}, rank {rank} of {world_size}")
    lengths = []  # stream tokens per shard: its tokens plus one EOD per document
    for shard in shards:
        with _open_token_shard(shard) as f:
            lengths.append(f.shape("tokens")[0] + f.shape("doc_offsets")[0] - 1)
    stream = sum(lengths)
    rows = (stream - 1) // seq_len if stream > seq_len else 0
    batches = rows // (world_size * batch_size)
    if batches == 0:
        raise ValueError(f"{rows} packed rows of {seq_len} + 1 tokens cannot give each of {world_size} "
                         f"ranks a batch of {batch_size}")
    first = batches * worker // num_workers
    last = batches * (worker + 1) // num_workers
    first_row = rank * batches * batch_size + first * batch_size
    count = (last - first) * batch_size

    def read() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if count == 0:
            return
        begin = first_row * seq_len  # stream position of the first row
        packer, made, base = _core.TokenPacker(seq_len, eod_id), 0, 0
        for shard, length in zip(shards, lengths):
            if base + length <= begin:
                base += length
                continue
            tokens, offsets = _token_shard_arrays(shard)
            starts = offsets[:-1] + np.arange(len(offsets) - 1)  # document starts in the shard's stream
            doc = max(int(np.searchsorted(starts, begin - base, side="right")) - 1, 0)
            skip = max(begin - base - int(starts[doc]), 0) if len(starts) else 0
            for k in range(doc, len(offsets) - 1):
                packer.add(tokens[offsets[k] + skip : offsets[k + 1]])  # U32, checked at open
                skip = 0
                for row in packer.rows():
                    yield row
                    made += 1
                    if made == count:
                        return
            base += length

    return batches, read()


class PackedDataset(_Base):
    """Token-packed batches for language-model training.

        tok = ferry.Tokenizer.from_file("tokenizer.json")
        ds = ferry.data.PackedDataset(ferry.data.ShardDataset("train-{0000..0099}.tar"), tok,
                                      seq_len=2048, batch_size=8, field="txt")
        for batch in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2):
            batch["input_ids"]      # int32 [8, 2049]: inputs [:, :-1], targets [:, 1:]
            batch["doc_offsets"]    # 8 int32 arrays of segment starts (see pack_tokens)

    ``source`` is a ``ShardDataset`` (its rank/worker split, shuffle and ``on_error`` apply; the
    text is the sample's ``field``, encoded as ``encode_ordinary`` does on ``threads`` tokenizer
    threads, by default the cores divided among the DataLoader's workers, and packed by the C++
    pipeline behind the sample reader) or a list of ferry token shards (already tokenized; then ``tokenizer`` may be None and ``eod_id`` is
    required). Token shards are split exactly (``token_shard_rows``): their headers give the
    stream's length, so every rank gets the same number of batches (``len(ds)``), contiguous rows
    of one global packing, and no token is read twice. (For text shards, the rows a rank makes
    depend on its documents' token counts, known only once encoded; ranks may then differ by a
    few batches.) ``eod_id`` defaults to the tokenizer's ``<|endoftext|>``. ``rank`` /
    ``world_size`` (token shards) default as for ShardDataset.
    """

    def __init__(self, source, tokenizer=None, *, seq_len: int, batch_size: int, field: str = "txt",
                 eod_id: int | None = None, threads: int | None = None, rank: int | None = None,
                 world_size: int | None = None) -> None:
        if eod_id is None:
            eod_id = tokenizer.token_to_id("<|endoftext|>") if tokenizer is not None else None
            if eod_id is None:
                raise ValueError("eod_id is needed: the tokenizer has no <|endoftext|> token")
        if isinstance(source, ShardDataset) and tokenizer is None:
            raise ValueError("a ShardDataset source needs a tokenizer")
        self.source, self.tokenizer, self.field = source, tokenizer, field
        self.seq_len, self.batch_size, self.eod_id, self.threads = seq_len, batch_size, eod_id, threads
        if not isinstance(source, ShardDataset):
            self.source = [os.fspath(s) for s in source]
            auto_rank, auto_world = _distributed_rank_and_world()
            self.rank = auto_rank if rank is None else rank
            self.world_size = auto_world if world_size is None else world_size
            self._batches, _ = self._token_shard_split(0, 1)  # checks the shards and the split now

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.source, ShardDataset):
            self.source.set_epoch(epoch)

    def _token_shard_split(self, worker: int, num_workers: int):
        return token_shard_rows(self.source, self.seq_len, self.eod_id, self.batch_size, self.rank,
                                self.world_size, worker, num_workers)

    def __len__(self) -> int:
        """Batches per epoch on every rank (token shards only)."""
        if isinstance(self.source, ShardDataset):
            raise TypeError("the batches a rank packs from text shards are known only once encoded")
        return self._batches

    def __iter__(self):
        if isinstance(self.source, ShardDataset):
            # Loader workers share the cores: by default each gets its share of tokenizer threads.
            threads = self.threads or max(1, (os.cpu_count() or 1) // _worker()[1])
            loader = _core.PackedLoader(*self.source._loader_args(), self.tokenizer._core,
                                        self.field, self.seq_len, self.batch_size, self.eod_id,
                                        threads)
            yield from loader
            self.source._report_skipped(loader)
            return
        _, rows = self._token_shard_split(*_worker())
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == self.batch_size:
                yield {"input_ids": np.stack([r for r, _ in batch]), "doc_offsets": [o for _, o in batch]}
                batch = []
