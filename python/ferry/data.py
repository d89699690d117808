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

import hashlib
import operator
import os
import warnings
import weakref
from collections.abc import Iterable
from typing import Iterator

import numpy as np
# DataLoader workers seed numpy.random as they start. Imported here, in the parent, a forked
# worker finds it loaded: importing it right after the fork intermittently failed in CPython 3.11
# (KeyError in importlib's module lock; seen in about 1 of 3 runs of test_data_resume.py).
import numpy.random  # noqa: F401

from ferry import _columns, _core
from ferry._columns import ByteColumn  # also public here: the type of a batch's bytes fields


def shard_urls(shards: str | os.PathLike[str] | Iterable) -> list[str]:
    """The shard URLs named by a spec or a list of specs, in order. A spec is a path or URI,
    brace ranges and lists (``train-{0000..0099}.tar``, ``{a,b}.tar``), a local glob or an
    ``s3://`` prefix or wildcard (``ferry.io.list``), or ``@FILE``: a text file (path or URI) with
    one spec per line, blank lines and ``#`` comments skipped."""
    specs = [shards] if isinstance(shards, (str, os.PathLike)) else list(shards)
    return _core.expand_shards([os.fspath(s) for s in specs])


def _shard_identity(url: str) -> str:
    """A shard's URL as an index and a spec may both spell it: a local path made absolute."""
    return url if "://" in url else os.path.realpath(url)


def _shard_names_digest(urls: list[str], counts: list[int]) -> str:
    """What a resume state checks the shard list against: each shard's file name and count, in
    order (names, not URLs: a dataset moved to another folder or bucket resumes). Found by a
    probe: the same files listed in another order were accepted, repeating and losing samples."""
    names = "\n".join(f"{_core.without_query(url).rstrip('/').rsplit('/', 1)[-1]} {n}" for url, n in zip(urls, counts))
    return hashlib.sha256(names.encode()).hexdigest()[:16]


def _selected_from_index(indexed: list, wanted: list[str], index: str) -> list:
    """The index's entries for the shards `wanted`, in their order. Found by a probe: with both
    given, `shards` was ignored, so a train and a val set sharing an index both read every shard."""
    entries = {_shard_identity(entry[0]): entry for entry in indexed}
    missing = [url for url in wanted if _shard_identity(url) not in entries]
    if missing:
        raise ValueError(f"{len(missing)} of the {len(wanted)} shards given are not in the index "
                         f"{_core.redact_uris(index)} (first: {_core.redact_uris(missing[0])}): pass shards "
                         "the index lists, or no index to count them")
    return [entries[_shard_identity(url)] for url in wanted]


def samples(shards: str | os.PathLike[str] | Iterable) -> Iterator[dict]:
    """Samples of the shards ``shard_urls(shards)`` names, shard after shard, in order."""
    for uri in shard_urls(shards):
        yield from _core.SampleReader(uri)


try:  # a torch IterableDataset when torch is there (DataLoader needs the base class)
    from torch.utils.data import IterableDataset as _Base
except ImportError:  # pragma: no cover - exercised where torch is absent
    _Base = object


def _distributed_rank_and_world() -> tuple[int, int, str]:
    """(rank, world size, where they came from): torch.distributed's when it is initialized, else
    $RANK and $WORLD_SIZE (both or neither: the split is global, so $LOCAL_RANK /
    $LOCAL_WORLD_SIZE, a process's place within its node, are never used), else 0 and 1."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size(), "torch.distributed"
    except ImportError:
        pass
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is None and world is None:
        if "LOCAL_RANK" in os.environ:
            raise ValueError("$LOCAL_RANK is set but $RANK and $WORLD_SIZE are not: the split is "
                             "across all ranks, so it needs the global $RANK and $WORLD_SIZE (as "
                             "torchrun sets them), an initialized torch.distributed, or rank= and "
                             "world_size=")
        return 0, 1, "the default (no torch.distributed, no $RANK/$WORLD_SIZE)"
    if rank is None or world is None:
        have, missing = ("WORLD_SIZE", "RANK") if rank is None else ("RANK", "WORLD_SIZE")
        raise ValueError(f"${have} is set ({os.environ[have]}) but ${missing} is not, and "
                         "torch.distributed is not initialized: set both, or pass rank= and world_size=")
    try:
        return int(rank), int(world), "$RANK/$WORLD_SIZE"
    except ValueError:
        raise ValueError(f"$RANK / $WORLD_SIZE must be integers (got {rank!r} / {world!r})") from None


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """The rank and world size given, the missing ones from torch.distributed or the
    environment; checked, naming where they came from."""
    if rank is not None and world_size is not None:
        origin = "rank= and world_size="
    else:
        auto_rank, auto_world, found = _distributed_rank_and_world()
        origin = f"rank= and world_size= where given, else {found}"
        rank = auto_rank if rank is None else rank
        world_size = auto_world if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size}) (from {origin})")
    return rank, world_size


def _worker() -> tuple[int, int]:
    """(this DataLoader worker's id, the loader's num_workers); (0, 1) outside a worker."""
    info = _worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def _worker_info():
    try:
        from torch.utils.data import get_worker_info
    except ImportError:
        return None
    return get_worker_info()


class _SharedCounters:
    """A few int64 counters that DataLoader workers see change: the dataset's epoch, how often a
    state was loaded in the main process, the latest iteration (its id, epoch + 1 and loader
    workers, 0 in process; PackedDataset over token shards has one epoch, 0, so 1 once one began) and
    the iteration that resumed the loaded state (0: none yet). A
    worker holds a copy of the dataset made when it started (with persistent_workers=True, once
    for all epochs), so a plain attribute
    set in the main process afterwards never reaches it. These live in shared memory (a torch
    tensor's), which fork inherits and torch's multiprocessing pickler hands to spawned workers;
    a plain pickle copies the values. Without torch there are no loader workers: a list does."""

    EPOCH, GENERATION, LATEST_ITERATION, LATEST_EPOCH, LATEST_WORKERS, RESUMED_BY = range(6)

    def __init__(self) -> None:
        try:
            import torch

            self._cells = torch.zeros(6, dtype=torch.int64).share_memory_()
        except ImportError:
            self._cells = [0] * 6

    def __getitem__(self, slot: int) -> int:
        return int(self._cells[slot])

    def __setitem__(self, slot: int, value: int) -> None:
        self._cells[slot] = value


_UNSET = object()


def _iteration_id(info, iterations: int, token: int) -> int:
    """An id (odd, so never 0) that every worker of one loader iteration computes alike: the
    loader's base seed (new for each iter(loader); `token` in process) and the copy's count of
    iterations begun (a persistent worker's grows)."""
    base = info.seed - info.id if info is not None else token
    return (hash((base, iterations)) & ((1 << 62) - 1)) | 1
_STATE_FORMAT = "ferry-shard-dataset-state-v2"
_PACKED_STATE_FORMAT = "ferry-packed-dataset-state-v1"
_PACKED_WORKER_STATE_FORMAT = "ferry-packed-dataset-worker-state-v1"
_WORKER_STATE_FORMAT = "ferry-shard-dataset-worker-state-v1"


def _decode_text(b: bytes) -> str:
    return b.decode("utf-8")


def _decode_int(b: bytes) -> int:
    return int(b.decode("ascii").strip())


def _decode_json(b: bytes):
    import json

    return json.loads(b)


def _decode_npy(b: bytes):
    import io

    return np.load(io.BytesIO(b), allow_pickle=False)


# webdataset's names for the cheap fields (the part of the field after its last dot). Images,
# audio and pickles are left as bytes: a `transform` decodes those.
_DECODERS = {"txt": _decode_text, "text": _decode_text, "transcript": _decode_text,
             "cls": _decode_int, "cls2": _decode_int, "class": _decode_int, "count": _decode_int,
             "index": _decode_int, "inx": _decode_int, "id": _decode_int,
             "json": _decode_json, "jsn": _decode_json, "npy": _decode_npy}


def _decoder(field: str):
    return _DECODERS.get(field.rsplit(".", 1)[-1])


def _decoded(field: str, value: bytes, url: str, key: str):
    """`value` decoded as its field names it (or as it is); an error names the shard and sample."""
    decode = _decoder(field)
    if decode is None:
        return value
    try:
        return decode(value)
    except Exception as e:
        raise _core.CorruptionError(f"{_core.redact_uris(url)}: sample {key!r}: field {field!r} does not decode as "
                                    f".{field.rsplit('.', 1)[-1]} ({e})") from None


def _decode_sample(sample: dict) -> dict:
    for field, value in sample.items():
        if not field.startswith("__"):
            sample[field] = _decoded(field, value, sample["__url__"], sample["__key__"])
    return sample


def _decode_batch(batch: dict) -> dict:
    for field, column in batch.items():
        if not field.startswith("__") and _decoder(field) is not None:
            batch[field] = [None if value is None else _decoded(field, value, url, key)
                            for value, url, key in zip(column, batch["__url__"], batch["__key__"])]
    return batch


def _yielded(progress: dict) -> int:
    """The samples of its plan an iteration's record says were yielded: those skipped by its
    resume, then what its loader (while it runs) handed out."""
    loader = progress["loader"]
    return progress["skip"] + (loader.yielded() if loader is not None else 0)


class _Iterations:
    """This process's iterations of one dataset, for state_dict() to count the one training
    consumes: the one running, or when none is, the one that stopped last. Two running at once
    (zip(iter(ds), iter(ds)), or a peek next(iter(ds)) kept while a loop runs) cannot be told
    apart, so the count is refused then. Found by a probe: it followed the newest iteration, so a
    peek after 50 trained samples reset it to 1 and a resume repeated 49 of them."""

    def __init__(self) -> None:
        self._running: list[dict] = []  # progress records of iterations not stopped yet
        self._last_stopped: dict | None = None

    def begin(self, progress: dict, iterator=None) -> None:
        """`progress` runs until stop(progress), or until `iterator` is garbage (dropped unfinished)."""
        self._running.append(progress)
        if iterator is not None:
            weakref.finalize(iterator, self.stop, progress)

    def stop(self, progress: dict) -> None:
        if any(p is progress for p in self._running):
            self._running = [p for p in self._running if p is not progress]
            self._last_stopped = progress

    def counted(self) -> dict | None:
        if len(self._running) > 1:
            raise ValueError(f"{len(self._running)} iterations of this dataset are running in this "
                             "process, so state_dict() cannot tell which one training consumed: finish "
                             "or drop the others (e.g. a peek with next(iter(ds))), or pass the count")
        return self._running[0] if self._running else self._last_stopped


def _raising(error: Exception):
    raise error
    yield  # a generator: raises at its first next()


class ShardDataset(_Base):
    """WebDataset tar shards split exactly across ranks and loader workers.

        ds = ferry.data.ShardDataset("s3://bucket/train-{0000..0099}.tar", seed=0)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=4)
        for epoch in range(10):
            ds.set_epoch(epoch)
            for sample in loader: ...   # {"__key__", "__url__", field: bytes}

    With ``batched=True`` it yields whole batches of ``batch_size`` samples, assembled in C++ as one
    columnar dict, ``{"__key__": [str, ...], "__url__": [str, ...], field: ByteColumn}``; use it with
    ``DataLoader(ds, batch_size=None)``. A ByteColumn holds a field's values of the whole batch
    in one buffer plus offsets and reads like the list of bytes webdataset's ``batched()`` gives
    (``col[i]`` is bytes, or None where sample i lacks a field some other sample of the batch
    has; see ByteColumn). Inside a loader worker a big column's buffer (5 MiB or more) is a torch
    tensor in shared memory, so it reaches the training process as a handle instead of through
    the pipe that a DataLoader's inter-process queue is limited by. With ``decode=True`` the
    decoded fields are lists of their objects.

    ``decode=True`` turns the cheap fields into objects as webdataset's ``decode()`` names them
    (by the part after the field's last dot): txt/text to str, json to objects, cls/id/index to
    int, npy to numpy arrays; the rest stay bytes. ``transform`` is then called on each sample (or
    each batch, with ``batched=True``) in the loader worker, and what it returns is yielded: the
    place for a PIL or torchvision decoder.

    ``resampled=True`` draws whole shards with replacement instead, each rank and loader worker
    independently (seeded by seed, epoch, rank and worker), ``samples_per_epoch`` samples per
    rank (default: the dataset's size divided by the world size), split into whole batches per
    loader worker, as webdataset's ``resampled=True`` with ``with_epoch``, but counted per rank,
    so the epoch does not grow with ``num_workers``. It resumes exactly on the same split.

    One epoch is the shards in a (seed, epoch)-permuted order, read front to back, cut into
    `world_size` equal contiguous slices (every rank the same number of samples and of
    `batch_size` batches; `remainder="pad"` repeats samples from the start so none is lost,
    `"drop"` cuts so none repeats), each slice into whole batches per loader worker, each worker's
    stream mixed by a `shuffle_buffer` of samples. Needs the samples per shard: from `index` (a
    `ferry index` JSON, local or s3://, also accepted in place of `shards`; given both, `shards`
    picks the shards read from the index, in its order) or counted on the fly by streaming every
    shard once. ``set_epoch`` reaches loader workers, persistent ones too.
    rank / world_size default to torch.distributed, else $RANK / $WORLD_SIZE (both must be set;
    $LOCAL_RANK is never read: the split is global), else 0 / 1.

    Resume: ``state_dict()`` / ``load_state_dict()`` follow the protocol torchdata's
    ``StatefulDataLoader`` uses (the dataset counts what it yielded, in each loader worker), and
    ``state_dict(samples_seen=n, loader=dl)`` gives the state of a plain DataLoader. See
    ``state_dict`` and the README's resume table.

    Each iterator is a staged C++ pipeline: `readers` threads (default 1 for local files, 4 for
    URLs) read that many shards at once, a merge puts their samples back in plan order through
    the shuffle buffer, and bounded queues of `queue_capacity` samples join the stages, so memory
    stays bounded however slow the consumer (at most about (2 x readers + 4) x queue_capacity +
    shuffle_buffer samples). The order does not depend on the threads. ``on_error="fail"`` stops
    at the first bad shard with an error naming it (and the member and byte offset); ``"skip"``
    skips the rest of that shard, records ``(url, error, samples lost)`` in ``skipped`` and warns
    at the end of the iteration; that rank then yields fewer samples than the others.
    """

    def __init__(self, shards, *, index: str | None = None, rank: int | None = None,
                 world_size: int | None = None, seed: int = 0, shuffle: bool = True,
                 shuffle_buffer: int = 1000, remainder: str = "pad", batch_size: int | None = None,
                 batched: bool = False, decode: bool = False, transform=None,
                 resampled: bool = False, samples_per_epoch: int | None = None,
                 on_error: str = "fail", readers: int | None = None,
                 queue_capacity: int = 64) -> None:
        if index is None and isinstance(shards, (str, os.PathLike)) and _core.without_query(os.fspath(shards)).endswith(".json"):
            index = shards  # ShardDataset("index.json"): a `ferry index` file names the shards
        # (url, error, samples lost); None lost: the unreadable rest of a shard counted on the fly
        self.skipped: list[tuple[str, str, int | None]] = []
        if index is not None:
            indexed = [(url, size, n, None, version)
                       for url, size, n, version, _ in _core.read_index(os.fspath(index))]
            picked = shards is not None and shards is not index and not (isinstance(shards, (list, tuple)) and not shards)
            if picked:  # (None or [] with an index: every shard it lists)
                indexed = _selected_from_index(indexed, shard_urls(shards), os.fspath(index))
        else:
            indexed = self._count_samples(shard_urls(shards), on_error)
        self.urls = [u for u, _, _, _, _ in indexed]
        self.counts = [n for _, _, n, _, _ in indexed]
        # What was counted, checked as each shard opens: a shard rewritten since would be split
        # by stale counts (SourceChangedError instead).
        self._shards = [(url, size, version, n) for url, size, n, _, version in indexed]
        self.rank, self.world_size = _rank_and_world(rank, world_size)
        if batch_size is None:
            if batched:
                raise ValueError("batched=True yields batches of batch_size samples: pass batch_size")
            batch_size = 1
        if samples_per_epoch is not None and not resampled:
            raise ValueError("samples_per_epoch sets the length of a resampled epoch: pass resampled=True")
        if resampled and samples_per_epoch is None:  # an epoch's worth per rank, in whole batches
            samples_per_epoch = max(sum(self.counts) // self.world_size // batch_size, 1) * batch_size
        if resampled and (samples_per_epoch < 1 or samples_per_epoch % batch_size):
            raise ValueError(f"samples_per_epoch ({samples_per_epoch}) must be a positive multiple of "
                             f"batch_size ({batch_size})")
        self.resampled, self.samples_per_epoch = resampled, samples_per_epoch if resampled else None
        self.seed, self.shuffle, self.shuffle_buffer = seed, shuffle, shuffle_buffer
        self.remainder, self.batch_size, self.batched = remainder, batch_size, batched
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.decode, self.transform = decode, transform
        _core.LoaderOptions(on_error=on_error)  # checks it here, not in a loader worker
        self.on_error, self.readers, self.queue_capacity = on_error, readers or 0, queue_capacity
        self._shared = _SharedCounters()
        self._generation = 0     # the shared GENERATION this copy's _resume belongs to
        self._resume = None      # a loaded state: the next iteration of its epoch resumes it
        self._worker_state_spent = False  # a worker's state (StatefulDataLoader) was resumed
        self._iterations = 0     # iterations this copy began (a persistent worker's count)
        self._token = int.from_bytes(os.urandom(8), "little")  # names in-process iterations
        self._progress = None    # this process's latest iteration
        self._iterations_running = _Iterations()  # what state_dict() counts
        if self.skipped and not any(self.counts):
            raise _core.IoError(
                f"no samples to read: {len(self.skipped)} of {len(self.urls)} shards could not be "
                "read while counting samples (on_error='skip' left them out) and the rest hold "
                f"none; first error: {self.skipped[0][1]}")
        self._plan([], self._split(1))  # checks the options now

    def _count_samples(self, urls: list[str], on_error: str) -> list:
        """(url, bytes, samples, error) per shard, streaming each once. With on_error="skip" a
        shard that cannot be read to its end counts the samples before the damage (plans read
        those, and stop there) and is recorded in `skipped` with None samples lost: how many the
        unreadable rest held is unknown. With "fail" the first one (in shard order) is raised."""
        if on_error != "skip":
            try:
                return _core.index_shards(urls)
            except _core.Error as e:
                raise type(e)(f"{e} (while counting the shards' samples; on_error='skip' leaves out "
                              "shards that cannot be read)") from e
        indexed = _core.index_shards(urls, keep_going=True)
        bad = [(url, error, None) for url, _, _, error, _ in indexed if error is not None]
        if bad:
            self.skipped.extend(bad)
            kept = sum(n for url, _, n, error, _ in indexed if error is not None)
            warnings.warn(f"ferry.data: {len(bad)} of {len(urls)} shards could not be read to their end "
                          f"while counting samples; the {kept} samples before the damage are kept, the "
                          f"rest of those shards left out; first: {bad[0][1]}", RuntimeWarning, stacklevel=3)
        return indexed

    @property
    def epoch(self) -> int:
        return self._shared[_SharedCounters.EPOCH]

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration yields. Reaches DataLoader workers, persistent ones too."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._shared[_SharedCounters.EPOCH] = epoch

    # ---------------------------------------------------------------------------- plans

    def _split(self, num_workers: int) -> dict:
        return {"world_size": self.world_size, "num_workers": max(num_workers, 1),
                "batch_size": self.batch_size, "remainder": self.remainder,
                "shuffle_buffer": self.shuffle_buffer if self.shuffle else 0,
                "resampled": self.samples_per_epoch or 0}

    def _options(self, split: dict):
        return _core.SplitOptions(seed=self.seed, epoch=self.epoch, shuffle_shards=self.shuffle,
                                  world_size=split["world_size"], num_workers=split["num_workers"],
                                  batch_size=split["batch_size"], remainder=split["remainder"],
                                  resampled_samples=split["resampled"])

    def _segments(self, history: list) -> list:
        return [_core.ResumeSegment(options=self._options(s["split"]),
                                    shuffle_buffer=s["split"]["shuffle_buffer"],
                                    consumed=s["consumed"], next_worker=s["next_worker"])
                for s in history]

    def _plan(self, history: list, split: dict):
        return _core.plan_epoch(self.counts, self._options(split), self._segments(history))

    def _stream(self, num_workers: int, resume: dict | None) -> tuple[list, dict, dict | None]:
        """(history, split, continued) for this epoch under a loader of `num_workers`, resuming
        the rank state `resume` (or None): the plan is `_plan(history, split)`, and `continued`
        is the state's last segment when this run continues that very plan (same split: exact
        resume), else None."""
        split = self._split(num_workers)
        if resume is None or not resume["segments"]:
            return [], split, None
        segments = resume["segments"]
        if segments[-1]["split"] == split:
            return segments[:-1], split, segments[-1]
        return segments, split, None

    def __len__(self) -> int:
        """Samples (batches, with ``batched=True``) this rank yields this epoch, the same on every
        rank. In a resumed epoch this assumes the loader has as many workers as the interrupted
        run's."""
        r = self._pending_resume()
        workers = r["segments"][-1]["split"]["num_workers"] if r is not None and r["segments"] else 1
        history, split, continued = self._stream(workers, r)
        samples = self._plan(history, split).samples_per_rank
        samples -= sum(continued["consumed"]) if continued else 0
        return -(-samples // self.batch_size) if self.batched else samples

    def _pending_resume(self) -> dict | None:
        """The loaded rank state if this epoch's latest iteration resumed it or the next one
        will, else None (one iteration resumes it; the ones after it are whole)."""
        r = self._resume
        if r is None or r["epoch"] != self.epoch or r["format"] != _STATE_FORMAT:
            return None
        resumed_by = self._shared[_SharedCounters.RESUMED_BY]
        return r if resumed_by in (0, self._shared[_SharedCounters.LATEST_ITERATION]) else None

    def _begin_iteration(self, info) -> dict | None:
        """Records an iteration beginning in this process; returns the state it resumes, if any.
        Every worker of one loader iteration computes the same id: the loader's base seed (new
        for each iter(loader)) and the copy's iteration count (a persistent worker's grows)."""
        self._iterations += 1
        iteration = _iteration_id(info, self._iterations, self._token)
        shared, r, resume = self._shared, self._resume, None
        if r is not None and r["epoch"] == self.epoch:
            if r["format"] == _WORKER_STATE_FORMAT:  # handed to this worker for this iteration
                if not self._worker_state_spent:
                    resume, self._worker_state_spent = r, True
            elif shared[_SharedCounters.RESUMED_BY] in (0, iteration):
                resume = r
                shared[_SharedCounters.RESUMED_BY] = iteration
        shared[_SharedCounters.LATEST_ITERATION] = iteration
        shared[_SharedCounters.LATEST_EPOCH] = self.epoch + 1
        shared[_SharedCounters.LATEST_WORKERS] = info.num_workers if info is not None else 0
        return resume

    def _latest_loader_workers(self) -> int | None:
        """The loader workers of this epoch's latest iteration (0: in process), None if none."""
        if self._shared[_SharedCounters.LATEST_EPOCH] != self.epoch + 1:
            return None
        return self._shared[_SharedCounters.LATEST_WORKERS]

    # ---------------------------------------------------------------------------- resume

    def _state(self, segments: list) -> dict:
        return {"format": _STATE_FORMAT, "epoch": self.epoch, "seed": self.seed,
                "shuffle": self.shuffle, "shards": len(self.counts), "samples": sum(self.counts),
                "shard_names": _shard_names_digest(self.urls, self.counts),
                "samples_seen": sum(sum(s["consumed"]) for s in segments), "segments": segments}

    def state_dict(self, samples_seen: int | None = None, *, loader=None, num_workers: int | None = None,
                   loader_batch_size=_UNSET, drop_last: bool = False) -> dict:
        """Where this epoch stands, to resume it later, maybe on another world size or loader.

        ``state_dict()``: what the dataset counted itself. In a DataLoader worker that is the
        worker's own part (torchdata's ``StatefulDataLoader`` calls it there and keeps one per
        worker); in the process that iterated the dataset (a loop, ``DataLoader(num_workers=0)``
        or ``StatefulDataLoader(num_workers=0)``), the rank's. In the main process of a plain
        DataLoader with workers the dataset cannot know what the loader consumed (workers run
        ahead), so that is refused: pass the count instead.

        ``state_dict(samples_seen=n, loader=dl)``: the rank consumed ``n`` samples of this epoch
        (the same on every rank; count the samples of the batches consumed, from the epoch's
        start, and after a resume on from the state's ``samples_seen``) through DataLoader
        ``dl``. Its ``num_workers``, ``batch_size`` and ``drop_last`` say how it took samples from
        its workers; ``num_workers=``, ``loader_batch_size=`` and ``drop_last=`` give them without
        the loader. With 2 or more workers the loader's batch size is required.

        The state is small, JSON-serializable and the same on every rank; save it with the
        checkpoint.
        """
        info = _worker_info()
        if samples_seen is not None:
            given = samples_seen
            try:  # an int, or a numpy or torch integer
                samples_seen = operator.index(samples_seen)
            except TypeError:
                samples_seen = -1
            if samples_seen < 0:
                raise ValueError(f"samples_seen must be a count of samples (an int >= 0), got {given!r}")
        if samples_seen is None:
            if loader is not None or num_workers is not None or loader_batch_size is not _UNSET:
                raise TypeError("loader=, num_workers= and loader_batch_size= describe how "
                                "samples_seen was consumed: pass samples_seen too")
            return self._counted_state(info)
        if info is not None:
            raise ValueError("state_dict(samples_seen=...) describes a whole rank: call it in the "
                             "main process, not in a DataLoader worker")
        if loader is not None:
            num_workers, loader_batch_size = loader.num_workers, loader.batch_size
            drop_last = loader.drop_last
        latest = self._latest_loader_workers()
        if latest is not None and num_workers is None:
            num_workers = latest
        if latest is not None and num_workers != latest:
            raise ValueError(f"this epoch was read by a loader with num_workers={latest}, but the "
                             f"state is asked for num_workers={num_workers}: pass loader=<the DataLoader>")
        num_workers = num_workers or 0
        if num_workers >= 2 and loader is None and loader_batch_size is _UNSET:
            raise ValueError(
                f"with num_workers={num_workers} the state depends on how many samples the "
                "DataLoader takes from one worker at a time: pass loader=<the DataLoader>, or "
                "loader_batch_size=<its batch_size> (None for batch_size=None) and drop_last=")
        if num_workers >= 2 or loader is not None or loader_batch_size is not _UNSET:
            items = 1 if loader_batch_size in (None, _UNSET) else loader_batch_size
            turn = items * (self.batch_size if self.batched else 1)
        else:
            turn, drop_last = 1, False  # one stream: the loader's batching changes nothing
        history, split, _ = self._stream(num_workers, self._pending_resume())
        before = sum(sum(s["consumed"]) for s in history)
        if samples_seen < before:
            raise ValueError(f"samples_seen {samples_seen} is less than the {before} samples this "
                             "epoch had consumed when its resume state was saved (samples_seen "
                             "counts from the epoch's start, on from the state's samples_seen)")
        plan = self._plan(history, split)
        consumed, next_worker = _core.progress_after(plan.worker_samples(self.rank), turn,
                                                     bool(drop_last), samples_seen - before)
        return self._state(history + [{"split": split, "consumed": consumed, "next_worker": next_worker}])

    def _counted_state(self, info) -> dict:
        p = self._iterations_running.counted()
        counted = p is not None and p["epoch"] == self.epoch
        if info is not None:  # a loader worker's own part
            if not counted:  # asked before this worker's first iteration of the epoch
                r = self._resume if not self._worker_state_spent else None
                r = r if r is not None and r["epoch"] == self.epoch else self._pending_resume()
                history, split, plays, skip = self._worker_stream(info, r)
                p = {"history": history, "split": split, "plays": plays, "skip": skip, "loader": None}
            return {"format": _WORKER_STATE_FORMAT, "epoch": self.epoch, "seed": self.seed,
                    "shuffle": self.shuffle, "shards": len(self.counts), "samples": sum(self.counts),
                    "shard_names": _shard_names_digest(self.urls, self.counts), "history": p["history"], "split": p["split"], "worker": info.id,
                    "num_workers": info.num_workers, "plays": p["plays"], "yielded": _yielded(p)}
        if counted:  # iterated in this process: one stream, worker 0 of 1
            return self._state(p["history"] + [{"split": p["split"], "consumed": [_yielded(p)],
                                                 "next_worker": 0}])
        if self._latest_loader_workers():
            raise ValueError(
                "this epoch is being read by DataLoader workers, which run ahead of what the loader "
                "consumed, so the dataset cannot count it: pass the count, "
                "state_dict(samples_seen=<samples consumed this epoch>, loader=<the DataLoader>), or "
                "use torchdata's StatefulDataLoader, which asks each worker")
        r = self._pending_resume()
        if r is not None:
            return dict(r)  # loaded, not iterated yet: where it stands is where it stood
        return self._state([])

    def load_state_dict(self, state: dict) -> None:
        """Resume: the next iteration of ``state``'s epoch yields the rest of it.

        On the same split (world size, loader workers, batch size, remainder, shuffle buffer), it
        yields exactly the samples, in exactly the order, the interrupted run would have yielded
        next: each worker replays its shuffle buffer, skips the shards it had finished and drops
        the samples it had yielded. On another split each sample the interrupted run had not yet
        yielded comes once (``"drop"`` leaves fewer than a batch per rank; ``"pad"`` repeats a
        few to even out the ranks), split exactly across this run's ranks and workers, in a new
        order; checkpointing that epoch again works the same way, however many times the split
        changes. A worker's state (from StatefulDataLoader) resumes that worker on the same split
        only, but the whole ``StatefulDataLoader.state_dict()`` holds every worker's: given to
        ``load_state_dict`` here (before the new loader is made) it resumes on any split. Later
        epochs are whole again (``set_epoch``)."""
        if not isinstance(state, dict):
            raise TypeError(f"a ShardDataset state is a dict, got {type(state).__name__}")
        try:
            self._load_state(state)
        except KeyError as e:  # a truncated or hand-edited checkpoint
            raise ValueError(f"malformed ferry ShardDataset state: no field {e.args[0]!r}") from None
        except (TypeError, AttributeError) as e:
            raise ValueError(f"malformed ferry ShardDataset state: a field has the wrong type ({e})") from None

    def _load_state(self, state: dict) -> None:
        if "_snapshot" in state or "dataset_state" in state:
            state = self._rank_state_of_loader(state)
        fmt = state.get("format")
        if fmt == "ferry-shard-dataset-state-v1":
            state = self._upgraded_v1(state)
        elif fmt not in (_STATE_FORMAT, _WORKER_STATE_FORMAT):
            raise ValueError(f"not a ferry ShardDataset state (format {fmt!r}; expected {_STATE_FORMAT})")
        if (state["seed"], state["shuffle"]) != (self.seed, self.shuffle) or \
                (state["shards"], state["samples"]) != (len(self.counts), sum(self.counts)):
            raise ValueError("the state belongs to another dataset or seed: "
                             f"seed/shuffle {state['seed']}/{state['shuffle']} vs {self.seed}/{self.shuffle}, "
                             f"shards/samples {state['shards']}/{state['samples']} vs {len(self.counts)}/{sum(self.counts)}")
        names = _shard_names_digest(self.urls, self.counts)
        if state.get("shard_names", names) != names:  # states saved before it have none
            raise ValueError(f"the state was saved for other shards, or for these in another order (the "
                             f"same number, {len(self.counts)}, and {sum(self.counts)} samples, but other "
                             "file names or counts in order): resuming would repeat some samples and lose "
                             "others; list the shards as the run that saved it did")
        info = _worker_info()
        if fmt == _WORKER_STATE_FORMAT:
            if info is None:
                raise ValueError("this is one DataLoader worker's state (StatefulDataLoader keeps one "
                                 "per worker): load the loader's state with "
                                 "StatefulDataLoader.load_state_dict, which hands it to its worker")
            self._check_worker_state(state, info)
        saved_epoch = self.epoch
        self._resume = dict(state)
        self._worker_state_spent = False
        if info is None:
            # A new state: a persistent loader worker still holding the old one must not run on.
            self._generation = self._shared[_SharedCounters.GENERATION] + 1
            self._shared[_SharedCounters.GENERATION] = self._generation
            self._shared[_SharedCounters.RESUMED_BY] = 0
        self.set_epoch(state["epoch"])
        try:  # checks the state now: its segments must fit the dataset
            if fmt == _WORKER_STATE_FORMAT:
                self._plan(state["history"], state["split"])
            else:
                self._check_segments(self._resume["segments"])
        except Exception:
            self._resume = None
            self.set_epoch(saved_epoch)
            raise

    def _check_segments(self, segments: list) -> None:
        """Raises unless `segments` fit this dataset: planned as a chain, the last one included
        (a resampled epoch, which resumes only on its own split: its one segment)."""
        if not segments or not segments[-1]["split"].get("resampled"):
            self._plan(segments, self._split(1))
            return
        sizes = self._plan([], segments[0]["split"]).worker_samples(self.rank)
        consumed = segments[0]["consumed"]
        if len(segments) != 1 or len(consumed) != len(sizes) or any(c > n for c, n in zip(consumed, sizes)):
            raise _core.InvalidArgumentError(
                f"the resampled epoch's state does not fit its plan: consumed {consumed} of {sizes}")
        if segments[0]["split"]["world_size"] != self.world_size:
            self._plan(segments, self._split(1))  # refused now, unless the epoch was over

    @staticmethod
    def _rank_state_of_loader(state: dict) -> dict:
        """The rank's state in a StatefulDataLoader's state_dict(): with workers, each worker's
        part and whose turn came next, put together."""
        if "_snapshot" not in state:  # num_workers=0: the dataset's own state, the rank's
            return state["dataset_state"]
        if state.get("_steps_since_snapshot"):
            raise ValueError("the StatefulDataLoader state was taken between snapshots, so its worker "
                             "states are old: use snapshot_every_n_steps=1 (the default)")
        snapshot = state["_snapshot"]
        parts = [w.get("dataset_state") for w in snapshot["_worker_snapshots"].values()]
        if not parts or any(p is None or p.get("format") != _WORKER_STATE_FORMAT for p in parts):
            raise ValueError("not the state of a StatefulDataLoader over a ferry ShardDataset")
        n = parts[0]["num_workers"]
        plays = {p["worker"]: p["plays"] for p in parts}
        # Its workers play a rotation of the plan's (a resume continues the cycle where it was).
        if sorted(plays) != list(range(n)) or any(plays[(w + 1) % n] != (plays[w] + 1) % n for w in range(n)):
            raise ValueError(f"the StatefulDataLoader state does not hold all {n} workers' parts")
        consumed = [0] * n
        for p in parts:
            consumed[p["plays"]] = p["yielded"]
        next_worker = plays[(snapshot["_last_yielded_worker_id"] + 1) % n]
        first = parts[0]
        segments = first["history"] + [{"split": first["split"], "consumed": consumed,
                                         "next_worker": next_worker}]
        return {"format": _STATE_FORMAT, "epoch": first["epoch"], "seed": first["seed"],
                "shuffle": first["shuffle"], "shards": first["shards"], "samples": first["samples"],
                **({"shard_names": first["shard_names"]} if "shard_names" in first else {}),
                "samples_seen": sum(sum(s["consumed"]) for s in segments), "segments": segments}

    def _upgraded_v1(self, state: dict) -> dict:
        """A v1 state (one resume point; its loader took `batch_size` samples from a worker at a
        time, as v1 required) as a v2 one."""
        split = {"world_size": state["world_size"], "num_workers": state["num_workers"],
                 "batch_size": state["batch_size"], "remainder": state["remainder"],
                 "shuffle_buffer": state["shuffle_buffer"], "resampled": 0}
        if state["samples_per_rank"] % state["batch_size"]:
            raise _core.InvalidArgumentError(
                f"the resume point must be at a batch boundary ({state['samples_per_rank']} samples, "
                f"batch_size {state['batch_size']})")
        saved_epoch = self.epoch
        self.set_epoch(state["epoch"])
        try:
            sizes = self._plan([], split).worker_samples(0)
        finally:
            self.set_epoch(saved_epoch)
        consumed, next_worker = _core.progress_after(sizes, state["batch_size"], False,
                                                     state["samples_per_rank"])
        v2 = {k: state[k] for k in ("epoch", "seed", "shuffle", "shards", "samples")}
        return dict(v2, format=_STATE_FORMAT, samples_seen=state["samples_per_rank"],
                    segments=[{"split": split, "consumed": consumed, "next_worker": next_worker}])

    def _check_worker_state(self, state: dict, info) -> None:
        split = self._split(info.num_workers)
        if state["split"] != split or state["num_workers"] != info.num_workers or state["worker"] != info.id:
            raise _core.UnsupportedError(
                f"a StatefulDataLoader worker state resumes only the same worker on the same split: "
                f"saved by worker {state['worker']} of {state['num_workers']} with {state['split']}, "
                f"loaded by worker {info.id} of {info.num_workers} with {split}. To change the world "
                "size or the number of workers, give the whole StatefulDataLoader.state_dict() to the "
                "dataset, ds.load_state_dict(loader_state), and make the new loader without it")

    # ---------------------------------------------------------------------------- iteration

    def _worker_stream(self, info, resume: dict | None) -> tuple[list, dict, int, int]:
        """(history, split, plays, skip): this process's part of the epoch, resuming `resume`
        (or None), is the plan `_plan(history, split)` of worker `plays`, less its first `skip`
        samples."""
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        r = resume
        if r is not None and r["format"] == _WORKER_STATE_FORMAT:
            self._check_worker_state(r, info)
            return r["history"], r["split"], r["plays"], r["yielded"]
        history, split, continued = self._stream(num_workers, r)
        if continued is None:
            return history, split, worker, 0
        # The loader takes batches from its workers in turn from worker 0: this worker plays the
        # interrupted one whose turn comes next, so the sequence continues.
        plays, skip = _core.resume_worker(continued["consumed"], continued["next_worker"], worker)
        return history, split, plays, skip

    def _loader_args(self) -> tuple:
        """(urls, spans, LoaderOptions) for this process's (rank, loader worker), recording what
        state_dict() will count."""
        info = _worker_info()
        if info is not None:
            if self._generation != self._shared[_SharedCounters.GENERATION]:
                raise _core.UnsupportedError(
                    "load_state_dict was called after this DataLoader's persistent workers started, "
                    "so they hold the old state: create the DataLoader after loading the state")
        history, split, plays, skip = self._worker_stream(info, self._begin_iteration(info))
        skip = min(skip, self._plan(history, split).worker_samples(self.rank)[plays])
        request = _core.ReaderRequest(split=self._options(split), history=self._segments(history),
                                      rank=self.rank, plays=plays, skip_yielded=skip,
                                      shuffle_buffer=split["shuffle_buffer"])
        options = _core.LoaderOptions(readers=self.readers, queue_capacity=self.queue_capacity,
                                      on_error=self.on_error)
        self._progress = {"epoch": self.epoch, "history": history, "split": split, "plays": plays,
                          "skip": skip, "loader": None}
        return self._shards, request, options

    def _report_skipped(self, loader) -> None:
        skipped = loader.skipped()
        if skipped:
            self.skipped.extend(skipped)
            lost = sum(n for _, _, n in skipped if n is not None)
            warnings.warn(f"ferry.data: skipped {lost} samples of {len(skipped)} bad shards or "
                          f"samples; first: {skipped[0][1]}", RuntimeWarning, stacklevel=3)

    def __iter__(self):
        # Starts the loader now, not at the first next(): StatefulDataLoader asks for the state
        # between the two, and it must be this iteration's. An error is raised at the first
        # next(), though: a persistent DataLoader worker whose iter() raises dies without a word.
        try:
            loader = _core.SampleLoader(*self._loader_args())
        except Exception as e:
            return _raising(e)
        self._progress["loader"] = loader
        if self.batched:
            _columns.refuse_collation()
            items = self._batches(loader)
            if self.decode:
                items = map(_decode_batch, items)
        else:
            items = map(_decode_sample, loader) if self.decode else loader
        if self.transform is not None:
            items = map(self._transformed, items)
        iterator = self._drain(loader, items, self._progress)
        self._iterations_running.begin(self._progress, iterator)
        return iterator

    def _batches(self, loader):
        """The loader's batches, each bytes field a ByteColumn. In a DataLoader worker a column
        that goes to the training process as bytes may be filled in shared memory (see
        _columns.allocate); one that _decode_batch turns into objects here never is."""
        in_worker = _worker_info() is not None  # (never without torch)

        def allocate(field: str, size: int):
            return _columns.allocate(size, shared=in_worker and not (self.decode and _decoder(field)))

        for batch in iter(lambda: loader.next_batch(self.batch_size, allocate), None):
            for field, value in batch.items():
                if not field.startswith("__"):
                    batch[field] = ByteColumn(*value)
            yield batch

    def packed_batches(self, tokenizer, *, seq_len: int, batch_size: int, eod_id: int, field: str = "txt",
                       threads: int = 0):
        """This process's samples of the epoch, as iterating gives them, each sample's `field`
        encoded with `tokenizer` (as ``encode_ordinary`` encodes: sample text is data) on
        `threads` tokenizer threads (0: one per core) and packed in C++ into batches of
        `batch_size` rows of seq_len + 1 tokens: what PackedDataset yields (see it)."""
        loader = _core.PackedLoader(*self._loader_args(), tokenizer=tokenizer._core, field=field,
                                    seq_len=seq_len, batch_size=batch_size, eod_id=eod_id,
                                    threads=threads)
        iterator = self._drain(loader, loader, self._progress)
        self._iterations_running.begin(self._progress, iterator)
        return iterator

    def _transformed(self, item):
        try:
            out = self.transform(item)
        except Exception as e:
            keys, urls = item.get("__key__"), item.get("__url__")
            where = f"sample {keys!r} of {_core.redact_uris(str(urls))}" if isinstance(keys, str) else \
                f"the batch of samples {keys[0]!r}..{keys[-1]!r}" if keys else "an item"
            e.add_note(f"ferry.data: raised by transform on {where}")
            raise
        if out is None:
            # webdataset's map() drops such a sample; here it would break the split (every rank
            # the same number of samples) and what a resume counts.
            raise ValueError("transform returned None: ferry does not filter samples in transform, "
                             "since every rank must yield the same number; return the sample, or "
                             "filter after the loader")
        return out

    def _drain(self, loader, items, progress: dict):
        try:
            yield from items
            self._report_skipped(loader)
            progress["skip"], progress["loader"] = _yielded(progress), None  # keep the count, let the loader go
        finally:
            self._iterations_running.stop(progress)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_progress"] = None  # a live loader does not travel; a copy has not iterated
        state["_iterations_running"] = _Iterations()
        return state


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


def _token_shard_urls(source) -> list[str]:
    """The token shards `source` names: an index (``index.json``, as ferry.ray writes it, local or
    s3://) lists them; otherwise a path, URL, glob, range or @FILE, or a list of them."""
    if isinstance(source, (str, os.PathLike)) and _core.without_query(os.fspath(source)).endswith(".json"):
        urls = [url for url, *_ in _core.read_index(os.fspath(source))]
        if not urls:  # (an empty dataset's, from ferry.ray) said so, not as a split of 0 rows
            raise ValueError(f"{_core.redact_uris(os.fspath(source))} lists no token shards: nothing to pack")
        return urls
    return shard_urls(source)


def _token_shard_infos(shards) -> list[tuple]:
    """Each ferry token shard's header, read and checked (CorruptionError naming a file that is
    not one): what a split is planned from, and what each shard is checked against when read."""
    return [_core.read_token_shard_info(os.fspath(shard)) for shard in shards]


def _check_shards_encoded_by(shards: list, tokenizer) -> None:
    """ValueError naming the first token shard another tokenizer encoded (by the fingerprint
    `ferry tokenize` records): its ids would be packed with this tokenizer's end-of-document id."""
    for url, _, _, _, _, fingerprint, _, _ in shards:
        if fingerprint and fingerprint != tokenizer.fingerprint:
            raise ValueError(f"{_core.redact_uris(url)} was encoded by another tokenizer ({fingerprint}) "
                             f"than the one given ({tokenizer.fingerprint}): pass the tokenizer that "
                             "made the shards, or none and eod_id=")


def token_shard_rows(shards: list, seq_len: int, eod_id: int, batch_size: int, rank: int, world_size: int,
                     worker: int = 0, num_workers: int = 1) -> tuple[int, Iterator[tuple[np.ndarray, np.ndarray]]]:
    """An exact split of the packed rows of ferry token shards across ranks and loader workers.

    The stream is every shard's documents in list order, each followed by ``eod_id``, cut into
    rows as ``pack_tokens`` cuts it. Its length is known from the shard headers alone, so the
    rows are split before any token is read: every rank gets the same number of whole batches
    (``rows // (world_size x batch_size)``; the few rows left over are dropped), as contiguous
    rows of the global packing, and each of its loader workers a contiguous run of whole batches.
    A reader reads only the byte ranges of the shards its rows overlap, starting mid-document
    where its first row does. Returns (batches per rank, this reader's (row, doc_offsets)
    iterator).
    """
    reader = _core.TokenRowReader(_token_shard_infos(shards), seq_len=seq_len, batch_size=batch_size,
                                  rank=rank, world_size=world_size, worker=worker,
                                  num_workers=num_workers, eod_id=eod_id)

    def rows() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for batch in reader:
            yield from zip(batch["input_ids"], batch["doc_offsets"])

    return reader.batches_per_rank, rows()


def _check_end_of_document_id(tokenizer, eod_id: int) -> None:
    """ValueError when `eod_id` is not an id of `tokenizer`, or is an ordinary token that text
    encodes to (0 is "!" for GPT-2): where one document ends could then not be told from the
    ids, and a loss mask or attention reset made from them would be wrong without a word. A
    special token passes, and so does a SentencePiece control piece such as </s>, which no text
    encodes to."""
    added = tokenizer.get_added_tokens_decoder()
    if eod_id in added and added[eod_id].special:
        return
    if eod_id < tokenizer.get_vocab_size():
        text = tokenizer.decode([eod_id], skip_special_tokens=False)
        if tokenizer.encode(text, add_special_tokens=False).ids != [eod_id]:
            return
        what = f"{tokenizer.id_to_token(eod_id)!r}, an ordinary token that the text {text!r} encodes to"
    else:
        what = f"not an id of the tokenizer (it has {tokenizer.get_vocab_size()})"
    specials = sorted((i, t.content) for i, t in added.items() if t.special)
    listed = ", ".join(f"{content} = {i}" for i, content in specials[:8]) or "none"
    raise ValueError(f"eod_id {eod_id} is {what}: pass the id of a token that marks a document's end "
                     f"(the tokenizer's special tokens: {listed})")


def _bounded_int(name: str, value, low: int, high: int) -> int:
    """`value` as an int in [low, high]: TypeError for a non-integer (bool included), ValueError
    naming `name` and the value otherwise."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = operator.index(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


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
    pipeline behind the sample reader) or ferry token shards (already tokenized: a list, a spec,
    or the ``index.json`` ferry.ray writes; then ``tokenizer`` may be None and ``eod_id`` is
    required). Token shards are split exactly (``token_shard_rows``): their headers give the
    stream's length, so every rank gets the same number of batches (``len(ds)``), contiguous rows
    of one global packing, and no token is read twice. (For text shards, the rows a rank makes
    depend on its documents' token counts, known only once encoded; ranks may then differ by a
    few batches.) ``eod_id`` defaults to the tokenizer's ``<|endoftext|>``. ``rank`` /
    ``world_size`` (token shards) default as for ShardDataset.

    Over token shards it resumes exactly (``state_dict`` / ``load_state_dict``, the protocol
    torchdata's ``StatefulDataLoader`` uses); over text shards it has no state of its own, so a
    ``StatefulDataLoader`` replays the consumed batches (see the README's resume section).
    Token shards are read in packing order: there is no shuffling of rows.
    """

    def __new__(cls, source=None, *args, **kwargs):
        # Token shards resume, text does not: the state methods exist only on the token-shard
        # kind, since a StatefulDataLoader replays what it consumed from a dataset without them
        # (and only from such a one).
        if cls is PackedDataset and source is not None and not isinstance(source, ShardDataset):
            cls = _PackedTokenShards
        return super().__new__(cls)


    def __init__(self, source, tokenizer=None, *, seq_len: int, batch_size: int, field: str = "txt",
                 eod_id: int | None = None, threads: int | None = None, rank: int | None = None,
                 world_size: int | None = None) -> None:
        # Checked here, not at the first batch (where a bad value failed in the C++ loader's
        # argument conversion): the same bounds as the packer's. Rows are int32, so ids < 2^31.
        seq_len = _bounded_int("seq_len", seq_len, 1, 2**30 - 1)
        batch_size = _bounded_int("batch_size", batch_size, 1, 2**31 - 1)
        if eod_id is None:
            if tokenizer is None:
                raise ValueError("eod_id is needed: pass eod_id=, or a tokenizer to take its "
                                 "<|endoftext|> id from")
            eod_id = tokenizer.token_to_id("<|endoftext|>")
            if eod_id is None:
                raise ValueError("eod_id is needed: the tokenizer has no <|endoftext|> token")
        eod_id = _bounded_int("eod_id", eod_id, 0, 2**31 - 1)
        if tokenizer is not None:
            _check_end_of_document_id(tokenizer, eod_id)
        if threads is not None:
            threads = _bounded_int("threads", threads, 0, 2**31 - 1)
        if isinstance(source, ShardDataset) and tokenizer is None:
            raise ValueError("a ShardDataset source needs a tokenizer")
        self.source, self.tokenizer, self.field = source, tokenizer, field
        self.seq_len, self.batch_size, self.eod_id, self.threads = seq_len, batch_size, eod_id, threads
        if not isinstance(source, ShardDataset):
            self.source = _token_shard_urls(source)
            self.rank, self.world_size = _rank_and_world(rank, world_size)
            # The headers, read once: the split is planned from them, and each shard is checked
            # against them when read (a shard rewritten since raises SourceChangedError).
            self._shards = _token_shard_infos(self.source)
            if tokenizer is not None:
                _check_shards_encoded_by(self._shards, tokenizer)
            self._batches = self._token_rows(0, 1).batches_per_rank  # checks the split now

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.source, ShardDataset):
            self.source.set_epoch(epoch)

    def __len__(self) -> int:
        raise TypeError("the batches a rank packs from text shards are known only once encoded")

    def __iter__(self):
        # Loader workers share the cores: by default each gets its share of tokenizer threads.
        threads = self.threads or max(1, (os.cpu_count() or 1) // _worker()[1])
        yield from self.source.packed_batches(self.tokenizer, field=self.field, seq_len=self.seq_len,
                                              batch_size=self.batch_size, eod_id=self.eod_id,
                                              threads=threads)


class _PackedTokenShards(PackedDataset):
    """PackedDataset over ferry token shards: an exact split, and exact resume."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Resume: as ShardDataset's, one loaded state for the next iteration.
        self._shared = _SharedCounters()
        self._generation = 0
        self._resume = None
        self._worker_state_spent = False
        self._iterations = 0
        self._token = int.from_bytes(os.urandom(8), "little")
        self._progress = None  # this process's latest iteration: {"plays", "skip", "yielded"}
        self._iterations_running = _Iterations()  # what state_dict() counts

    def _token_rows(self, worker: int, num_workers: int, skip_batches: int = 0):
        return _core.TokenRowReader(self._shards, seq_len=self.seq_len, batch_size=self.batch_size,
                                    rank=self.rank, world_size=self.world_size, worker=worker,
                                    num_workers=num_workers, eod_id=self.eod_id,
                                    skip_batches=skip_batches)

    # ---------------------------------------------------------------------------- resume

    def _identity(self) -> dict:
        """What a state must agree on to resume here: the same stream (its shards' token and
        document counts, in order), cut and split alike."""
        counts = ",".join(f"{tokens}:{documents}" for _, _, _, tokens, documents, _, _, _ in self._shards)
        return {"shards": len(self._shards), "stream_tokens": sum(i[3] + i[4] for i in self._shards),
                "shards_digest": hashlib.sha256(counts.encode()).hexdigest()[:16],
                "seq_len": self.seq_len, "batch_size": self.batch_size, "eod_id": self.eod_id,
                "world_size": self.world_size}

    def _rank_state(self, num_workers: int, consumed: list, next_worker: int) -> dict:
        return dict(self._identity(), format=_PACKED_STATE_FORMAT, num_workers=num_workers,
                    consumed=consumed, next_worker=next_worker, batches_seen=sum(consumed))

    def _worker_batches(self, workers: int) -> list[int]:
        return [self._token_rows(w, workers).batches for w in range(workers)]

    def state_dict(self, batches_seen: int | None = None, *, loader=None, num_workers: int | None = None,
                   loader_batch_size=_UNSET, drop_last: bool = False) -> dict:
        """Where this rank stands in the epoch, to resume it exactly.

        ``state_dict()``: counted by the dataset itself, as torchdata's ``StatefulDataLoader``
        asks for it: in a DataLoader worker, that worker's part; in the process that iterated
        the dataset, the rank's. In the main process of a plain DataLoader with workers the
        dataset cannot know what the loader consumed (workers run ahead): pass the count.

        ``state_dict(batches_seen=n, loader=dl)``: the rank consumed ``n`` batches of this epoch
        (the dataset's batches, counted from the epoch's start, through a resume too) through
        DataLoader ``dl``, whose ``num_workers``, ``batch_size`` and ``drop_last`` say how it took
        them from its workers (``num_workers=``, ``loader_batch_size=``, ``drop_last=`` give them
        without the loader; with 2 or more workers the loader's batch size is required).

        The state resumes on the same shards, world size, loader workers, ``seq_len`` and
        ``batch_size`` with exactly the batches the interrupted run would have yielded next;
        anything else is refused. It is small, JSON-serializable and the same on every rank."""
        info = _worker_info()
        if batches_seen is None:
            if loader is not None or num_workers is not None or loader_batch_size is not _UNSET:
                raise TypeError("loader=, num_workers= and loader_batch_size= describe how "
                                "batches_seen was consumed: pass batches_seen too")
            return self._counted_state(info)
        given = batches_seen
        try:  # an int, or a numpy or torch integer; not a bool
            batches_seen = -1 if isinstance(batches_seen, bool) else operator.index(batches_seen)
        except TypeError:
            batches_seen = -1
        if batches_seen < 0:
            raise ValueError(f"batches_seen must be a count of batches (an int >= 0), got {given!r}")
        if info is not None:
            raise ValueError("state_dict(batches_seen=...) describes a whole rank: call it in the "
                             "main process, not in a DataLoader worker")
        if loader is not None:
            num_workers, loader_batch_size, drop_last = loader.num_workers, loader.batch_size, loader.drop_last
        latest = self._latest_loader_workers()
        num_workers = (latest if num_workers is None else num_workers) or 0
        if latest is not None and num_workers != latest:
            raise ValueError(f"this epoch was read by a loader with num_workers={latest}, but the "
                             f"state is asked for num_workers={num_workers}: pass loader=<the DataLoader>")
        if num_workers >= 2 and loader is None and loader_batch_size is _UNSET:
            raise ValueError(
                f"with num_workers={num_workers} the state depends on how many batches the "
                "DataLoader takes from one worker at a time: pass loader=<the DataLoader>, or "
                "loader_batch_size=<its batch_size> (None for batch_size=None) and drop_last=")
        p = self._progress
        if latest == 0 and p is not None and batches_seen != p["skip"] + p["yielded"]:
            raise ValueError(f"batches_seen={batches_seen}, but this process yielded "
                             f"{p['skip'] + p['yielded']} batches of the epoch (counted from its "
                             "start): count the dataset's batches, or call state_dict() to let it count")
        resumed = self._resume
        if resumed is not None and resumed.get("format") == _PACKED_STATE_FORMAT and \
                batches_seen < resumed["batches_seen"]:
            raise ValueError(f"batches_seen={batches_seen} is less than the {resumed['batches_seen']} "
                             "batches the loaded state had consumed: count from the epoch's start")
        workers = max(num_workers, 1)
        turn = 1 if loader_batch_size in (None, _UNSET) else loader_batch_size
        consumed, next_worker = _core.progress_after(self._worker_batches(workers), turn,
                                                     bool(drop_last), batches_seen, items="batches")
        return self._rank_state(workers, consumed, next_worker)

    def _latest_loader_workers(self) -> int | None:
        """The loader workers of the latest iteration (0: in process), None if none began."""
        if not self._shared[_SharedCounters.LATEST_EPOCH]:
            return None
        return self._shared[_SharedCounters.LATEST_WORKERS]

    def _counted_state(self, info) -> dict:
        p = self._iterations_running.counted()
        if info is not None:  # a loader worker's own part
            if p is None:  # asked before this worker's first iteration (StatefulDataLoader does)
                plays, skip = self._plays_and_skip(info, claim=False)
                p = {"plays": plays, "skip": skip, "yielded": 0}
            return dict(self._identity(), format=_PACKED_WORKER_STATE_FORMAT, worker=info.id,
                        num_workers=info.num_workers, plays=p["plays"], yielded=p["skip"] + p["yielded"])
        if p is not None:  # iterated in this process: one stream
            return self._rank_state(1, [p["skip"] + p["yielded"]], 0)
        if self._latest_loader_workers():
            raise ValueError(
                "this epoch is being read by DataLoader workers, which run ahead of what the loader "
                "consumed, so the dataset cannot count it here: with a StatefulDataLoader take "
                "loader.state_dict() (it asks each worker); with a plain DataLoader pass the count, "
                "state_dict(batches_seen=<batches consumed this epoch>, loader=<the DataLoader>)")
        if self._resume is not None and self._resume["format"] == _PACKED_STATE_FORMAT:
            return dict(self._resume)  # loaded, not iterated yet: where it stands is where it stood
        return self._rank_state(1, [0], 0)

    def load_state_dict(self, state: dict) -> None:
        """Resume: the next iteration yields exactly the batches the interrupted run would have
        yielded next (same shards, world size, loader workers, seq_len and batch_size; else
        refused). A worker's state (from StatefulDataLoader) resumes that worker; load the
        loader's state with ``StatefulDataLoader.load_state_dict``, which hands each worker its
        own."""
        if not isinstance(state, dict):
            raise TypeError(f"a PackedDataset state is a dict, got {type(state).__name__}")
        if "_snapshot" in state or "dataset_state" in state:
            raise ValueError("this is a StatefulDataLoader's state: give it to the new loader's "
                             "load_state_dict (with the same num_workers), not to the dataset's")
        fmt = state.get("format")
        if fmt not in (_PACKED_STATE_FORMAT, _PACKED_WORKER_STATE_FORMAT):
            raise ValueError(f"not a ferry PackedDataset state (format {fmt!r}; expected {_PACKED_STATE_FORMAT})")
        try:
            differs = {k: (state[k], v) for k, v in self._identity().items() if state[k] != v}
            self._check_progress(state, fmt)
        except KeyError as e:
            raise ValueError(f"malformed ferry PackedDataset state: no field {e.args[0]!r}") from None
        if differs:
            what = ", ".join(f"{k} {saved} (here {here})" for k, (saved, here) in differs.items())
            raise ValueError(f"the state belongs to another packing or split: {what}. A PackedDataset "
                             "state resumes on the same shards (in the same order), seq_len, "
                             "batch_size, eod_id and world size")
        info = _worker_info()
        if fmt == _PACKED_WORKER_STATE_FORMAT and info is None:
            raise ValueError("this is one DataLoader worker's state (StatefulDataLoader keeps one per "
                             "worker): load the loader's state with StatefulDataLoader.load_state_dict, "
                             "which hands it to its worker")
        self._resume, self._worker_state_spent = dict(state), False
        if info is None:  # a new state: persistent workers still holding the old one must not run on
            self._generation = self._shared[_SharedCounters.GENERATION] + 1
            self._shared[_SharedCounters.GENERATION] = self._generation
            self._shared[_SharedCounters.RESUMED_BY] = 0

    def _check_progress(self, state: dict, fmt: str) -> None:
        """ValueError unless the state's counts fit this dataset's plans (a hand-edited or
        truncated checkpoint must not resume somewhere else)."""
        def count(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 0

        workers = state["num_workers"]
        if not count(workers) or workers < 1:
            raise ValueError(f"malformed ferry PackedDataset state: num_workers {workers!r}")
        sizes = self._worker_batches(workers)
        if fmt == _PACKED_WORKER_STATE_FORMAT:
            plays, yielded = state["plays"], state["yielded"]
            if not (count(plays) and plays < workers and count(yielded) and yielded <= sizes[plays]):
                raise ValueError(f"malformed ferry PackedDataset state: worker {plays!r} yielded "
                                 f"{yielded!r} of a plan of {sizes}")
            return
        consumed, next_worker = state["consumed"], state["next_worker"]
        if not (isinstance(consumed, list) and len(consumed) == workers and all(map(count, consumed))
                and all(c <= n for c, n in zip(consumed, sizes)) and count(next_worker)
                and next_worker < workers and state["batches_seen"] == sum(consumed)):
            raise ValueError(f"malformed ferry PackedDataset state: consumed {consumed!r}, next_worker "
                             f"{next_worker!r}, batches_seen {state['batches_seen']!r} do not fit "
                             f"plans of {sizes} batches")

    def _plays_and_skip(self, info, claim: bool, iteration: int = 0) -> tuple[int, int]:
        """(the plan's worker this process reads, the batches of it to skip) under the loaded
        state, if it applies to this iteration; claiming it (`claim`) marks it used."""
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        r = self._resume
        if r is None:
            return worker, 0
        if r["format"] == _PACKED_WORKER_STATE_FORMAT:
            if self._worker_state_spent:
                return worker, 0
            if (r["worker"], r["num_workers"]) != (worker, workers):
                raise _core.UnsupportedError(
                    f"a StatefulDataLoader worker state resumes only the same worker of the same "
                    f"loader: saved by worker {r['worker']} of {r['num_workers']}, loaded by worker "
                    f"{worker} of {workers}")
            self._worker_state_spent = self._worker_state_spent or claim
            return r["plays"], r["yielded"]
        if self._shared[_SharedCounters.RESUMED_BY] not in (0, iteration):
            return worker, 0  # an earlier iteration resumed it; this one is whole
        if r["num_workers"] != workers:
            raise _core.UnsupportedError(
                f"the state was saved with {r['num_workers']} loader workers per rank and is resumed "
                f"with {workers}: a PackedDataset resumes exactly on the same number of workers only "
                "(each worker packs its own contiguous rows)")
        if claim:
            self._shared[_SharedCounters.RESUMED_BY] = iteration
        return _core.resume_worker(r["consumed"], r["next_worker"], worker)

    def _iter_token_rows(self):
        info = _worker_info()
        if info is not None and self._generation != self._shared[_SharedCounters.GENERATION]:
            raise _core.UnsupportedError(
                "load_state_dict was called after this DataLoader's persistent workers started, "
                "so they hold the old state: create the DataLoader after loading the state")
        self._iterations += 1
        iteration = _iteration_id(info, self._iterations, self._token)
        plays, skip = self._plays_and_skip(info, claim=True, iteration=iteration)
        shared = self._shared
        shared[_SharedCounters.LATEST_ITERATION] = iteration
        shared[_SharedCounters.LATEST_EPOCH] = 1  # epoch 0 + 1: its one epoch, recorded as ShardDataset does
        shared[_SharedCounters.LATEST_WORKERS] = info.num_workers if info is not None else 0
        workers = info.num_workers if info is not None else 1
        reader = self._token_rows(plays, workers, skip)
        progress = self._progress = {"plays": plays, "skip": skip, "yielded": 0}
        self._iterations_running.begin(progress)  # stopped when done, or closed when dropped
        try:
            for batch in reader:
                progress["yielded"] += 1  # counted before it is handed out: state_dict() follows next()
                yield batch
        finally:
            self._iterations_running.stop(progress)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_progress"] = None  # a copy has not iterated
        state["_iterations_running"] = _Iterations()
        return state

    def __len__(self) -> int:
        """Batches per epoch on every rank."""
        return self._batches

    def __iter__(self):
        yield from self._iter_token_rows()
