"""Tokenize a Ray Data dataset into ferry token shards and an index, on the cluster's workers.

    import ray, ferry, ferry.ray
    ds = ray.data.read_parquet("s3://corpus/train/")     # any Dataset with a text column
    tok = ferry.Tokenizer.from_file("tokenizer.json")
    index = ferry.ray.write_token_shards(ds, tok, "s3://bucket/tokens/")
    ferry.data.PackedDataset(index, tok, seq_len=2048, batch_size=8)   # on every training rank

How it runs, one Ray task per block of the dataset (``map_batches`` over whole blocks):

1. The block's ``field`` column is checked (present, strings, no nulls) and cut into parts of
   about ``target_shard_bytes`` of text.
2. Each part is named by a SHA-256 over its documents, the tokenizer's fingerprint and the
   encode options: ``tokens-<hash>.safetensors``. The name derives from the input alone, so a
   task that Ray retries writes the same shard again, and a re-run finds it.
3. A part whose shard is already listed in the folder's ``index.json`` and is there with the
   listed size and SHA-256 is skipped. Any other part is encoded on the task's CPUs
   (``encode_batch``) and written through ferry's io layer (datasets/token_shard.h), atomically:
   a local temporary renamed into place, or an S3 multipart upload that is aborted on failure.
   A failed attempt leaves no partial shard under a shard's name.
4. Once every task is done, the driver writes ``index.json`` (``ferry index``'s format, with each
   shard's SHA-256; shards listed by name, relative to the index) atomically, shards sorted by
   name, so a re-run over the same input writes the same bytes.

The tokenizer travels by content: it is put in Ray's object store once, as its pickle (the
tokenizer file's bytes, no path), and rebuilt once per worker process, cached by fingerprint; the
rebuilt tokenizer's fingerprint must equal the one sent.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading

import numpy as np

try:
    import pyarrow as pa
    import ray
    import ray.data
except ImportError as e:  # pragma: no cover - exercised where ray is absent
    raise ImportError(f"ferry.ray needs Ray Data ({e}): pip install 'ferry[ray]'") from e

from ferry import _core
from ferry.text import Tokenizer

__all__ = ["write_token_shards"]

INDEX_NAME = "index.json"
_SHARD_PREFIX, _SHARD_SUFFIX = "tokens-", ".safetensors"
# What a shard's name hashes before the documents: bump it if the shard bytes for the same input
# ever change, so old shards are not taken for new ones.
_NAME_SCHEME = b"ferry.ray token shard v1"


def write_token_shards(
    dataset: ray.data.Dataset,
    tokenizer: Tokenizer,
    output_dir: str | os.PathLike[str],
    *,
    field: str = "text",
    add_special_tokens: bool = False,
    match_special_tokens: bool = False,
    target_shard_bytes: int = 64 << 20,
    num_cpus: int = 1,
    map_batches_args: dict | None = None,
) -> str:
    """Encode ``dataset[field]`` (one document per row) into ferry token shards and an
    ``index.json`` in ``output_dir`` (a local or shared path, or ``s3://bucket/prefix``); returns
    the index's path.

    ``add_special_tokens``: the post-processor's tokens around each document (off: a shard holds
    documents, and PackedDataset puts the end-of-document id between them).
    ``match_special_tokens``: special-token text written in a document (``<|endoftext|>``) is
    encoded as its id (off: as text, as ``ferry tokenize`` and ``encode_ordinary`` do).
    ``target_shard_bytes``: a block's documents are cut into parts of about this much UTF-8 text,
    one shard each (at about 4 bytes of text an id, a shard comes out near that size); a block
    smaller than that is one shard (``Dataset.repartition`` makes fewer, larger blocks).
    ``num_cpus``: CPUs each task asks Ray for, and the threads it encodes on.
    ``map_batches_args``: more arguments of ``Dataset.map_batches`` (``concurrency``, ``memory``,
    ``resources``, ``runtime_env``, ...). Ray retries a task whose worker died; a task that
    raises is retried as ``DataContext.max_map_retries`` and ``retried_map_errors`` say.

    Re-running into the same folder skips shards already there and verified, and writes the same
    files. Raises TypeError for a dataset that is not a Ray Dataset, a tokenizer that is not a
    ferry Tokenizer, or a column that is not strings; KeyError for a missing column; ValueError
    when the folder was written with another tokenizer; ferry.CorruptionError for a folder whose
    index.json is not a ferry index. Errors found in a task name the block's source file (when
    the dataset has a ``path`` column, as ``read_text(..., include_paths=True)`` gives) and the
    row.
    """
    if not isinstance(dataset, ray.data.Dataset):
        raise TypeError(f"write_token_shards: expected a ray.data.Dataset, got {type(dataset).__name__}")
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"write_token_shards: expected a ferry.Tokenizer, got {type(tokenizer).__name__}")
    if not isinstance(field, str):
        raise TypeError(f"write_token_shards field: expected a column name (str), got {type(field).__name__}")
    for name, value, low in (("target_shard_bytes", target_shard_bytes, 1), ("num_cpus", num_cpus, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"write_token_shards {name}: expected an integer >= {low}, got {value!r}")
    _check_schema(dataset, field)
    out = os.fspath(output_dir).rstrip("/")
    if not out.startswith("s3://"):
        out = os.path.abspath(out)
        os.makedirs(out, exist_ok=True)
    index_uri = f"{out}/{INDEX_NAME}"
    written_before = _indexed_shards(index_uri, tokenizer)
    encode = _EncodeBlock(
        out, _ShippedTokenizer(tokenizer), field, add_special_tokens, match_special_tokens,
        target_shard_bytes, num_cpus, written_before,
    )
    shards = dataset.map_batches(
        encode, batch_size=None, batch_format="pyarrow", zero_copy_batch=True, num_cpus=num_cpus,
        **(map_batches_args or {}),
    )
    # A task's own exception (a missing column: KeyError, ...) reaches the caller as itself, not
    # wrapped in Ray Data's UserCodeException.
    shards.context.raise_original_map_exception = True
    rows = shards.take_all()
    entries = sorted((r["name"], r["bytes"], r["documents"], "", r["sha256"]) for r in rows)
    # An index that already says this is left alone: readers may have it open.
    if entries != [(name, size, documents, "", sha256)
                   for name, (size, sha256, documents) in written_before.items()]:
        _core.write_index(index_uri, entries)
    return index_uri


def _check_schema(dataset: ray.data.Dataset, field: str) -> None:
    """The column checks of _documents, made here when the dataset's schema is known without
    running it (from_items' and from_arrow's are; a read_text's is not), so a wrong field fails
    before any task starts."""
    schema = dataset.schema(fetch_if_missing=False)
    if schema is None:
        return  # known only once blocks exist: each task checks its own
    if field not in schema.names:
        raise KeyError(f"write_token_shards: the dataset has no column {field!r} (its columns: "
                       f"{', '.join(schema.names)}); pass field= to name the text column")
    kind = schema.types[schema.names.index(field)]
    if isinstance(kind, pa.DataType) and not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise TypeError(f"write_token_shards: column {field!r} is {kind}, expected strings (convert it "
                        "first, e.g. with Dataset.map_batches)")


def _indexed_shards(index_uri: str, tokenizer: Tokenizer) -> dict[str, tuple[int, str, int]]:
    """The shards an earlier run recorded in `index_uri`, {name: (bytes, sha256, documents)}
    ({} when there is no index yet). ValueError when they were encoded by another tokenizer: a
    folder holds one tokenizer's shards, whose ids PackedDataset packs with one eod id."""
    try:
        listed = _core.read_index(index_uri)
    except _core.NotFoundError:
        return {}
    except _core.CorruptionError as e:
        raise _core.CorruptionError(f"{e}; the folder holds an index.json ferry did not write: "
                                    "remove it, or write into another folder") from None
    shards = {}
    for url, size, documents, _, sha256 in listed:
        name = url.rsplit("/", 1)[-1]
        if not (name.startswith(_SHARD_PREFIX) and sha256):
            raise ValueError(f"{_core.redact_uris(index_uri)}: lists {_core.redact_uris(url)}, which "
                             "ferry.ray did not write (no tokens-<hash> name and SHA-256): write into "
                             "another folder")
        shards[name] = (size, sha256, documents)
    if listed:
        url = listed[0][0]
        fingerprint = _core.read_token_shard_info(url)[5]
        if fingerprint != tokenizer.fingerprint:
            raise ValueError(f"{_core.redact_uris(os.path.dirname(index_uri))}: this folder was written "
                             f"with another tokenizer ({fingerprint}, in {_core.redact_uris(url)}), not "
                             f"{tokenizer.fingerprint}: write into another folder")
    return shards


# Tokenizers rebuilt in this worker process, by fingerprint: one rebuild per process, not one per
# task or block (a worker process runs many tasks).
_TOKENIZERS: dict[str, Tokenizer] = {}
_TOKENIZERS_LOCK = threading.Lock()


class _ShippedTokenizer:
    """A tokenizer on its way to workers: its pickle in the object store (one copy per node, not
    one per task), and the fingerprint it must have on arrival."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.fingerprint = tokenizer.fingerprint
        self.payload = ray.put(pickle.dumps(tokenizer))

    def get(self) -> Tokenizer:
        with _TOKENIZERS_LOCK:
            tokenizer = _TOKENIZERS.get(self.fingerprint)
            if tokenizer is None:
                tokenizer = pickle.loads(ray.get(self.payload))
                if tokenizer.fingerprint != self.fingerprint:
                    raise RuntimeError(f"the tokenizer arrived with fingerprint {tokenizer.fingerprint}, "
                                       f"not the {self.fingerprint} it was sent with")
                _TOKENIZERS[self.fingerprint] = tokenizer
            return tokenizer


class _EncodeBlock:
    """The map_batches function: one block (a pyarrow Table) in, one row per shard out."""

    def __init__(self, out: str, tokenizer: _ShippedTokenizer, field: str, add_special_tokens: bool,
                 match_special_tokens: bool, target_shard_bytes: int, threads: int,
                 written_before: dict[str, tuple[int, str, int]]) -> None:
        self.out, self.tokenizer, self.field = out, tokenizer, field
        self.add_special_tokens, self.match_special_tokens = add_special_tokens, match_special_tokens
        self.target_shard_bytes, self.threads, self.written_before = target_shard_bytes, threads, written_before

    def __call__(self, block: pa.Table) -> pa.Table:
        documents = _documents(block, self.field)
        rows = [self._shard(part) for part in _parts(documents, self.target_shard_bytes)]
        return pa.Table.from_pylist(rows, schema=_ROW_SCHEMA)

    def _shard(self, part: list[bytes]) -> dict:
        name = self._name(part)
        uri = f"{self.out}/{name}"
        if name in self.written_before:
            size, sha256, documents = self.written_before[name]
            if documents == len(part) and _size_and_sha256(uri) == (size, sha256):
                return {"name": name, "bytes": size, "sha256": sha256, "documents": documents}
        tokenizer = self.tokenizer.get()
        ids = tokenizer._core.encode_batch(part, self.add_special_tokens, self.match_special_tokens,
                                           self.threads)
        offsets = np.zeros(len(ids) + 1, dtype=np.uint64)
        np.cumsum([len(i) for i in ids], out=offsets[1:])
        tokens = np.concatenate(ids) if ids else np.zeros(0, dtype=np.uint32)
        _core.write_token_shard(uri, tokens, offsets, tokenizer.fingerprint)
        size, sha256 = _size_and_sha256(uri)  # of the bytes as stored, read back
        return {"name": name, "bytes": size, "sha256": sha256, "documents": len(part)}

    def _name(self, part: list[bytes]) -> str:
        h = hashlib.sha256(_NAME_SCHEME)
        for value in (self.tokenizer.fingerprint.encode(), bytes([self.add_special_tokens]),
                      bytes([self.match_special_tokens])):
            h.update(len(value).to_bytes(8, "little") + value)
        # Length-prefixed: no two different document lists hash the same bytes.
        h.update(np.array([len(d) for d in part], dtype="<u8").tobytes())
        for document in part:
            h.update(document)
        return f"{_SHARD_PREFIX}{h.hexdigest()[:40]}{_SHARD_SUFFIX}"


_ROW_SCHEMA = pa.schema([("name", pa.string()), ("bytes", pa.uint64()), ("sha256", pa.string()),
                         ("documents", pa.uint64())])


def _documents(block: pa.Table, field: str) -> list[bytes]:
    """The block's `field` values as UTF-8, in row order. KeyError for a missing column, TypeError
    for one that is not strings or holds a null, naming the block's source file (Ray's `path`
    column, where the dataset has one) and the row."""
    def where(row: int | None = None) -> str:
        place = "a block"
        if "path" in block.column_names and block.num_rows:
            place = f"the block from {_core.redact_uris(str(block['path'][row or 0]))}"
        return place + ("" if row is None else f", row {row}")
    if field not in block.column_names:
        raise KeyError(f"write_token_shards: {where()} has no column {field!r} (its columns: "
                       f"{', '.join(block.column_names)}); pass field= to name the text column")
    column = block[field]
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise TypeError(f"write_token_shards: {where()}: column {field!r} is {column.type}, expected "
                        "strings (convert it first, e.g. with Dataset.map_batches)")
    if column.null_count:
        row = column.is_null().to_pylist().index(True)
        raise TypeError(f"write_token_shards: {where(row)}: column {field!r} is null, expected a string")
    return [s.encode() for s in column.to_pylist()]


def _parts(documents: list[bytes], target_bytes: int) -> list[list[bytes]]:
    """`documents` cut into runs of at least `target_bytes` of text (the last may be less); a
    block of no documents is no part, so writes no shard."""
    parts, part, size = [], [], 0
    for document in documents:
        part.append(document)
        size += len(document)
        if size >= target_bytes:
            parts.append(part)
            part, size = [], 0
    if part:
        parts.append(part)
    return parts


def _size_and_sha256(uri: str) -> tuple[int, str] | None:
    """The object's size and SHA-256 as stored (None when it is not there)."""
    try:
        data = _core.read(uri, 0, None, parallelism=0, part_size=8 << 20)
    except _core.NotFoundError:
        return None
    return len(data), hashlib.sha256(data).hexdigest()

