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
