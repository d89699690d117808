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
from typing import Iterator

from ferry import _core
from ferry import io as _io


def samples(shards: str | os.PathLike[str] | list) -> Iterator[dict]:
    """Samples of one shard, a list of shards, or a pattern (``ferry.io.list``), in order."""
    if isinstance(shards, (str, os.PathLike)):
        uris = _io.list(shards)  # a plain URI comes back as it is
    else:
        uris = [os.fspath(s) for s in shards]
    for uri in uris:
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

    One epoch is the shards in a (seed, epoch)-permuted order, read front to back, cut into
    `world_size` equal contiguous slices (every rank the same number of samples and of
    `batch_size` batches; `remainder="pad"` repeats samples from the start so none is lost,
    `"drop"` cuts so none repeats), each slice into whole batches per loader worker, each worker's
    stream mixed by a `shuffle_buffer` of samples. Needs the samples per shard: from `index` (a
    `ferry index` JSON, local or s3://) or counted on the fly by streaming every shard once.
    rank / world_size default to torch.distributed, else $RANK / $WORLD_SIZE, else 0 / 1.
    """

    def __init__(self, shards, *, index: str | None = None, rank: int | None = None,
                 world_size: int | None = None, seed: int = 0, shuffle: bool = True,
                 shuffle_buffer: int = 1000, remainder: str = "pad", batch_size: int = 1) -> None:
        if index is not None:
            indexed = _core.read_index(os.fspath(index))
        else:
            if isinstance(shards, (str, os.PathLike)):
                urls = [u for p in _core.expand_braces(os.fspath(shards)) for u in _io.list(p)]
            else:
                urls = [os.fspath(s) for s in shards]
            indexed = _core.index_shards(urls)
        self.urls = [u for u, _, _ in indexed]
        self.counts = [n for _, _, n in indexed]
        if rank is None or world_size is None:
            auto_rank, auto_world = _distributed_rank_and_world()
            rank = auto_rank if rank is None else rank
            world_size = auto_world if world_size is None else world_size
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle, self.shuffle_buffer = seed, shuffle, shuffle_buffer
        self.remainder, self.batch_size = remainder, batch_size
        self.epoch = 0
        # Checks the options now, not in a loader worker.
        self._plan(0, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _plan(self, worker: int, num_workers: int):
        return _core.plan_for(self.counts, self.rank, worker, self.seed, self.epoch, self.shuffle,
                              self.world_size, num_workers, self.batch_size, self.remainder)

    def __len__(self) -> int:
        """Samples this rank yields per epoch (the same on every rank)."""
        return self._plan(0, 1)[0]

    def __iter__(self):
        worker, num_workers = _worker()
        _, _, spans = self._plan(worker, num_workers)
        seed = _core.shuffle_seed(self.seed, self.epoch, self.rank, worker)
        yield from _core.PlanReader(self.urls, spans, self.shuffle_buffer if self.shuffle else 0, seed)
