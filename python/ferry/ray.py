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
3. A part whose shard is listed in the folder's ``index.json`` and is there with the listed size
   and SHA-256 is skipped; a listed one that is missing, cut short or damaged is written again.
   Any other part is encoded on the task's CPUs (``encode_batch``) and written through ferry's io
   layer (datasets/token_shard.h), atomically: a local temporary renamed into place, or an S3
   multipart upload that is aborted on failure. A failed attempt leaves no partial shard under a
   shard's name. (Unless ``overwrite=True``, a part that an existing index does not list is not
   written: see Re-runs.)
4. Once every task is done, the driver writes ``index.json`` (``ferry index``'s format, with each
   shard's SHA-256; shards listed by name, relative to the index) atomically. Shards are listed
   in the dataset's order when its DataContext preserves order, and sorted by name otherwise (Ray
   then finishes blocks in any order; by name, a re-run over the same input writes the same
   bytes).

Re-runs. A folder holds one run: the shards its index lists and the ferry.ray shards
(``tokens-<hash>.safetensors``) beside them. A re-run that makes the same shards (the same
documents, blocks and options) verifies them; before the first run has written its index, one
that makes them and more resumes it. Any other re-run is refused once its tasks have named its
shards (with an index, they write none of the new ones), and no index is written, unless
``overwrite=True``: the new index is then committed and the earlier run's shards it does not list
are removed (S3: left, with a warning, as ferry's io layer does not delete), so a glob over the
folder counts each document once. The options live in the shard names only: neither the index
nor a shard's header has a field for them that readers would not misread.

The tokenizer travels by content: it is put in Ray's object store once, as its pickle (the
tokenizer file's bytes, no path), and rebuilt once per worker process, cached by fingerprint; the
rebuilt tokenizer's fingerprint must equal the one sent.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
import threading
import urllib.parse
import warnings

import numpy as np

try:
    import pyarrow as pa
    import ray
    import ray.data
except ImportError as e:  # pragma: no cover - exercised where ray is absent
    raise ImportError(f"ferry.ray needs Ray Data ({e}): pip install 'ferry[ray]'") from e

from ferry import _core
from ferry.text import Tokenizer

__all__ = ["RESERVED_MAP_BATCHES_ARGS", "write_token_shards"]

INDEX_NAME = "index.json"
_SHARD_PREFIX, _SHARD_SUFFIX = "tokens-", ".safetensors"
# The names _EncodeBlock._name gives: only files named so are taken for (and removed as) an
# earlier run's shards, never someone else's files in the folder.
_SHARD_NAME = re.compile(r"tokens-[0-9a-f]{40}\.safetensors")
# What a shard's name hashes before the documents: bump it if the shard bytes for the same input
# ever change, so old shards are not taken for new ones.
_NAME_SCHEME = b"ferry.ray token shard v1"
# A URL's scheme as ferry's io layer tells one from a path (io/uri.cc, HasScheme).
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# map_batches arguments that write_token_shards sets itself (num_cpus is its own argument), or
# that would change what its function is given or must return.
RESERVED_MAP_BATCHES_ARGS = ("fn", "batch_size", "batch_format", "zero_copy_batch", "num_cpus", "fn_args",
                             "fn_kwargs", "fn_constructor_args", "fn_constructor_kwargs", "compute",
                             "udf_modifying_row_count")


def write_token_shards(
    dataset: ray.data.Dataset,
    tokenizer: Tokenizer,
    output_dir: str | os.PathLike[str],
    *,
    field: str = "text",
    add_special_tokens: bool = False,
    match_special_tokens: bool = False,
    target_shard_bytes: int = 64 << 20,
    num_cpus: float = 1,
    map_batches_args: dict | None = None,
    overwrite: bool = False,
) -> str:
    """Encode ``dataset[field]`` (one document per row) into ferry token shards and an
    ``index.json`` in ``output_dir`` (a local or shared path, ``file:///path``, or
    ``s3://bucket/prefix``; created if missing); returns the index's path. An empty dataset
    writes an empty index.

    ``add_special_tokens``: the post-processor's tokens around each document (off: a shard holds
    documents, and PackedDataset puts the end-of-document id between them).
    ``match_special_tokens``: special-token text written in a document (``<|endoftext|>``) is
    encoded as its id (off: as text, as ``ferry tokenize`` and ``encode_ordinary`` do).
    ``target_shard_bytes``: a block's documents are cut into parts of about this much UTF-8 text,
    one shard each (at about 4 bytes of text an id, a shard comes out near that size); a block
    smaller than that is one shard (``Dataset.repartition`` makes fewer, larger blocks).
    ``num_cpus``: CPUs each task asks Ray for (a fraction too); it encodes on ``max(1,
    int(num_cpus))`` threads.
    ``map_batches_args``: more arguments of ``Dataset.map_batches`` (``concurrency``, ``memory``,
    ``resources``, ``runtime_env``, ...); those in RESERVED_MAP_BATCHES_ARGS are refused. Ray
    retries a task whose worker died; a task that raises is retried as
    ``DataContext.max_map_retries`` and ``retried_map_errors`` say. A dataset whose
    ``DataContext.max_errored_blocks`` is not 0 is refused: Ray would drop a failed block's
    documents, and nothing in the index would show it.
    ``overwrite``: replace another run in the folder (see the module's Re-runs).

    The index lists the shards in the dataset's order when ``dataset.context.execution_options
    .preserve_order`` is set, and by shard name otherwise; PackedDataset packs in index order.

    Re-running into the same folder skips shards already there and verified, and writes the same
    files. Raises TypeError for a dataset that is not a Ray Dataset, a tokenizer that is not a
    ferry Tokenizer, or a column that is not strings; KeyError for a missing column; ValueError
    for an output_dir that is not a folder ferry can write (or an index's path), for a folder
    written with another tokenizer, or by another run (unless ``overwrite``); FileExistsError
    when output_dir is a file; ferry.CorruptionError for a folder whose index.json is not a ferry
    index. Errors found in a task name the row and the block's source file (when the dataset has
    a ``path`` column, as ``read_text(..., include_paths=True)`` gives).
    """
    _check_arguments(dataset, tokenizer, field, target_shard_bytes, num_cpus, map_batches_args)
    _check_no_block_is_dropped(dataset)
    _check_schema(dataset, field)
    out = _output_folder(output_dir)
    if _is_local(out):
        os.makedirs(out, exist_ok=True)
    index_uri = f"{out}/{INDEX_NAME}"
    indexed = _indexed_shards(index_uri)
    present = _shards_in(out)
    if not overwrite:
        _check_encoded_by(tokenizer, out, present)
    encode = _EncodeBlock(
        out, _ShippedTokenizer(tokenizer), field, add_special_tokens, match_special_tokens,
        target_shard_bytes, max(1, int(num_cpus)), indexed or {},
        # A run that adds shards to an indexed folder is another run, refused below: it writes none.
        may_add=overwrite or indexed is None,
    )
    shards = dataset.map_batches(
        encode, batch_size=None, batch_format="pyarrow", zero_copy_batch=True, num_cpus=num_cpus,
        **(map_batches_args or {}),
    )
    # A task's own exception (a missing column: KeyError, ...) reaches the caller as itself, not
    # wrapped in Ray Data's UserCodeException.
    shards.context.raise_original_map_exception = True
    rows = shards.take_all()
    if not dataset.context.execution_options.preserve_order:
        rows.sort(key=lambda row: row["name"])
    names = {row["name"] for row in rows}
    earlier = set(indexed or ()) | set(present)
    if not overwrite:
        _check_same_run(out, names, earlier, indexed is not None)
    entries = [(r["name"], r["bytes"], r["documents"], "", r["sha256"]) for r in rows]
    # An index that already says this is left alone: readers may have it open.
    if indexed is None or entries != [(name, size, documents, "", sha256)
                                      for name, (size, sha256, documents) in indexed.items()]:
        _core.write_index(index_uri, entries)
    _remove_replaced(out, sorted(earlier - names))  # none unless overwrite: refused above
    return index_uri


def _check_arguments(dataset, tokenizer, field, target_shard_bytes, num_cpus, map_batches_args) -> None:
    """TypeError or ValueError for an argument write_token_shards cannot take, before any work."""
    if not isinstance(dataset, ray.data.Dataset):
        raise TypeError(f"write_token_shards: expected a ray.data.Dataset, got {type(dataset).__name__}")
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"write_token_shards: expected a ferry.Tokenizer, got {type(tokenizer).__name__}")
    if not isinstance(field, str):
        raise TypeError(f"write_token_shards field: expected a column name (str), got {type(field).__name__}")
    if isinstance(target_shard_bytes, bool) or not isinstance(target_shard_bytes, int) or target_shard_bytes < 1:
        raise ValueError("write_token_shards target_shard_bytes: expected an integer >= 1, got "
                         f"{target_shard_bytes!r}")
    if isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float)) or not 0 < num_cpus < math.inf:
        raise ValueError(f"write_token_shards num_cpus: expected a number > 0 (CPUs per task, as "
                         f"map_batches takes them), got {num_cpus!r}")
    if map_batches_args is not None and not isinstance(map_batches_args, dict):
        raise TypeError(f"write_token_shards map_batches_args: expected a dict of map_batches arguments, "
                        f"got {type(map_batches_args).__name__}")
    reserved = [name for name in RESERVED_MAP_BATCHES_ARGS if name in (map_batches_args or {})]
    if reserved:
        raise ValueError(f"write_token_shards map_batches_args: {', '.join(reserved)} cannot be passed "
                         f"(reserved: {', '.join(RESERVED_MAP_BATCHES_ARGS)}, which write_token_shards sets "
                         "itself or which would change what its function is given; num_cpus is its own "
                         "argument)")


def _check_no_block_is_dropped(dataset: ray.data.Dataset) -> None:
    """ValueError when Ray may skip blocks that fail. The driver cannot count the input rows
    without running the pipeline twice (a read_text's ``count()`` reads every file), so a run that
    lost a block would look complete; refusing the setting is the check that costs nothing."""
    allowed = dataset.context.max_errored_blocks
    if allowed != 0:
        raise ValueError(f"write_token_shards: the dataset's DataContext.max_errored_blocks is {allowed}: "
                         "Ray would drop the documents of a block that fails, and the index would not show "
                         "it. Set dataset.context.max_errored_blocks = 0 (a failed run raises; run it again "
                         "to write what is missing)")


def _output_folder(output_dir: str | os.PathLike[str]) -> str:
    """`output_dir` as an absolute local path or an s3:// URL (file:// becomes its path).
    ValueError for another scheme or the path of an index, FileExistsError for a file."""
    text = os.fspath(output_dir)
    scheme = _SCHEME.match(text)
    kind = scheme.group(1).lower() if scheme else ""
    if kind == "s3":
        out = text.rstrip("/")
    elif kind in ("", "file"):
        out = os.path.abspath(_file_url_path(text) if kind else text)
    else:
        # Ray's local:// pins a job's tasks to the driver's node; ferry.ray's tasks write from
        # whichever node runs them, so taking it for a plain path would scatter the shards.
        hint = (" (Ray's local:// means the driver's node, but these tasks write from any node: pass a "
                "path that every node sees, or s3://)" if kind == "local" else "")
        raise ValueError(f"write_token_shards output_dir: {_core.redact_uris(text)}: ferry writes to a local "
                         f"path, file:// or s3://, not {kind}://{hint}")
    if out.rsplit("/", 1)[-1] == INDEX_NAME:
        raise ValueError(f"write_token_shards output_dir: {_core.redact_uris(out)} names an index, expected "
                         f"the folder to write it in: pass {_core.redact_uris(out.rsplit('/', 1)[0])}")
    if _is_local(out) and os.path.exists(out) and not os.path.isdir(out):
        raise FileExistsError(f"write_token_shards output_dir: {out} is a file, expected a folder (one that "
                              "does not exist is created)")
    return out


def _file_url_path(url: str) -> str:
    """The path of a file:///path or file://localhost/path URL, as ferry's io layer reads it."""
    host, slash, path = url[len("file://"):].partition("/")
    if not slash or host not in ("", "localhost"):
        raise ValueError(f"write_token_shards output_dir: {url}: expected file:///absolute/path")
    return urllib.parse.unquote("/" + path)


def _is_local(out: str) -> bool:
    return _SCHEME.match(out) is None


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
    # A column of Python objects is left to the tasks, which name the row that is not a string.
    if isinstance(kind, pa.DataType) and not (_is_strings(kind) or _holds_python_objects(kind)):
        raise TypeError(f"write_token_shards: column {field!r} is {kind}, expected strings (convert it "
                        "first, e.g. with Dataset.map_batches)")


def _is_strings(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _holds_python_objects(kind: pa.DataType) -> bool:
    """Ray's column of pickled Python objects, which it makes of values Arrow cannot hold as one
    type: mixed types such as str and int, or a str with a lone surrogate."""
    return getattr(kind, "extension_name", None) == "ray.data.arrow_pickled_object"


def _indexed_shards(index_uri: str) -> dict[str, tuple[int, str, int]] | None:
    """The shards an earlier run recorded in `index_uri`, {name: (bytes, sha256, documents)} in
    index order (None when there is no index). Only the index is read: a listed shard that is
    missing or damaged is the tasks' to write again."""
    try:
        listed = _core.read_index(index_uri)
    except _core.NotFoundError:
        return None
    except _core.CorruptionError as e:
        raise _core.CorruptionError(f"{e}; the folder holds an index.json ferry did not write: "
                                    "remove it, or write into another folder") from None
    shards = {}
    for url, size, documents, _, sha256 in listed:
        name = url.rsplit("/", 1)[-1]
        if not (_SHARD_NAME.fullmatch(name) and sha256):
            raise ValueError(f"{_core.redact_uris(index_uri)}: lists {_core.redact_uris(url)}, which "
                             "ferry.ray did not write (no tokens-<hash> name and SHA-256): write into "
                             "another folder")
        shards[name] = (size, sha256, documents)
    return shards


def _shards_in(out: str) -> list[str]:
    """The names of the ferry.ray shards in folder `out`, whether or not an index lists them."""
    if _is_local(out):
        names = os.listdir(out)
    else:
        try:
            names = [url.rsplit("/", 1)[-1]
                     for url in _core.expand_uri_pattern(f"{out}/{_SHARD_PREFIX}*{_SHARD_SUFFIX}")]
        except _core.NotFoundError:
            return []
    return sorted(name for name in names if _SHARD_NAME.fullmatch(name))


def _check_encoded_by(tokenizer: Tokenizer, out: str, names: list[str]) -> None:
    """ValueError when a shard of the folder records another tokenizer's fingerprint: a folder
    holds one tokenizer's shards, whose ids PackedDataset packs with one eod id. Checked even
    without an index, from the shards' headers."""
    for name in names:
        url = f"{out}/{name}"
        try:
            fingerprint = _core.read_token_shard_info(url)[5]
        except (_core.NotFoundError, _core.CorruptionError):
            # Damaged or gone since listed: this run writes it again if it is one of its own, and
            # _check_same_run refuses it as another run's otherwise.
            continue
        if fingerprint != tokenizer.fingerprint:
            raise ValueError(f"{_core.redact_uris(out)}: this folder was written with another tokenizer "
                             f"({fingerprint}, in {_core.redact_uris(url)}), not {tokenizer.fingerprint}: "
                             "write into another folder, or pass overwrite=True to replace its shards")


def _check_same_run(out: str, names: set[str], earlier: set[str], indexed: bool) -> None:
    """ValueError when this run's shards are not the earlier run's in the folder: some of those are
    not among this run's, or (once an index lists that run) this run makes shards it does not
    list. Without an index, this run's new shards resume the earlier, unfinished run."""
    missing = earlier - names
    added = names - earlier if indexed else set()
    if not (missing or added):
        return
    differ = []
    if missing:
        differ.append(f"{len(missing)} of its {len(earlier)} shards are not among this run's {len(names)}")
    if added:
        differ.append(f"{len(added)} of this run's {len(names)} shards are not in its index")
    left = ("its index.json and shards were left as they were" if indexed else
            "this run's shards were written beside them, and no index.json")
    raise ValueError(f"write_token_shards: {_core.redact_uris(out)} holds another run's shards "
                     f"({' and '.join(differ)}: other documents, blocks, target_shard_bytes, "
                     f"add_special_tokens or match_special_tokens); {left}. Pass overwrite=True to "
                     "replace that run (its shards the new index does not list are then removed), or "
                     "write into another folder")


def _remove_replaced(out: str, names: list[str]) -> None:
    """Removes the earlier run's shards `names`, which the index just committed does not list, so
    that a glob over the folder finds this run's alone. Under s3:// they are left, with a warning:
    ferry's io layer does not delete objects."""
    if not names:
        return
    if not _is_local(out):
        warnings.warn(f"write_token_shards: {len(names)} shards of the replaced run are left under "
                      f"{_core.redact_uris(out)} (ferry does not delete S3 objects; the index does not "
                      f"list them, a listing of the prefix does): {', '.join(names[:3])}"
                      + (", ..." if len(names) > 3 else ""), stacklevel=3)
        return
    for name in names:
        try:
            os.remove(os.path.join(out, name))
        except FileNotFoundError:
            pass  # a listed shard that was already gone


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
    """The map_batches function: one block (a pyarrow Table) in, one row per shard out. A shard
    that `written_before` does not list is written only when `may_add`; otherwise its row has a
    name but no size or checksum, and the driver refuses the run for it."""

    def __init__(self, out: str, tokenizer: _ShippedTokenizer, field: str, add_special_tokens: bool,
                 match_special_tokens: bool, target_shard_bytes: int, threads: int,
                 written_before: dict[str, tuple[int, str, int]], may_add: bool) -> None:
        self.out, self.tokenizer, self.field = out, tokenizer, field
        self.add_special_tokens, self.match_special_tokens = add_special_tokens, match_special_tokens
        self.target_shard_bytes, self.threads, self.written_before = target_shard_bytes, threads, written_before
        self.may_add = may_add

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
        elif not self.may_add:
            return {"name": name, "bytes": 0, "sha256": "", "documents": len(part)}
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
    for one that is not strings or holds a null, naming the row and the block's source file (Ray's
    `path` column, where the dataset has one)."""
    def where(row: int | None = None) -> str:
        if "path" in block.column_names and block.num_rows:
            place = f"the block from {_core.redact_uris(str(block['path'][row or 0]))}"
        else:
            place = f"a {block.num_rows}-row block (no 'path' column names its source)"
        return place if row is None else f"row {row} of {place}"
    if field not in block.column_names:
        raise KeyError(f"write_token_shards: {where()} has no column {field!r} (its columns: "
                       f"{', '.join(block.column_names)}); pass field= to name the text column")
    column = block[field]
    if _holds_python_objects(column.type):
        return _python_strings(column.to_pylist(), field, where)
    if not _is_strings(column.type):
        raise TypeError(f"write_token_shards: {where()}: column {field!r} is {column.type}, expected "
                        "strings (convert it first, e.g. with Dataset.map_batches)")
    if column.null_count:
        row = column.is_null().to_pylist().index(True)
        raise TypeError(f"write_token_shards: {where(row)}: column {field!r} is null, expected a string")
    return [s.encode() for s in column.to_pylist()]


def _python_strings(values: list, field: str, where) -> list[bytes]:
    """A column of Python objects (_holds_python_objects) as UTF-8, when each is a str that is
    valid Unicode; otherwise TypeError or ValueError naming the first row that is not."""
    documents = []
    for row, value in enumerate(values):
        if not isinstance(value, str):
            what = "null" if value is None else f"{type(value).__name__} {value!r:.40}"
            raise TypeError(f"write_token_shards: {where(row)}: column {field!r} is {what}, expected a "
                            "string (Ray keeps a column of mixed types, such as str and int, as Python "
                            "objects: convert it first, e.g. with Dataset.map_batches)")
        try:
            documents.append(value.encode())
        except UnicodeEncodeError as e:
            raise ValueError(f"write_token_shards: {where(row)}: column {field!r} is not valid Unicode "
                             f"text (a lone surrogate {value[e.start]!r} at character {e.start})") from None
    return documents


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
