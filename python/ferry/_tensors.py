"""safe_open and the pieces ferry.numpy and ferry.torch share: readers, shards, dtype tables."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable, Iterator

from ferry import _core
from ferry import io as _io

MODES = ("eager", "lazy", "plaid", "mmap")

# safetensors dtype -> numpy dtype name. numpy has no bfloat16 or float8: those come back as
# same-sized unsigned integers holding the raw bits.
NUMPY_DTYPES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "F8_E5M2": "uint8",
    "F8_E4M3": "uint8",
    "F8_E8M0": "uint8",
    "F8_E4M3FNUZ": "uint8",
    "F8_E5M2FNUZ": "uint8",
    "I16": "int16",
    "U16": "uint16",
    "F16": "float16",
    "BF16": "uint16",
    "I32": "int32",
    "U32": "uint32",
    "F32": "float32",
    "C64": "complex64",
    "F64": "float64",
    "I64": "int64",
    "U64": "uint64",
}


# Frameworks safetensors serves that ferry does not (yet): asking for one is UnsupportedError.
_OTHER_FRAMEWORKS = ("flax", "jax", "mlx", "paddle", "tf", "tensorflow")


def device_name(device: Any) -> str:
    """A torch device as a string: an int is a CUDA device index (0 -> "cuda:0"), as in torch
    and safetensors; "meta" means shapes and dtypes only."""
    if isinstance(device, int) and not isinstance(device, bool):
        if device < 0:
            raise _core.InvalidArgumentError(f"device index {device} is negative")
        return f"cuda:{device}"
    return str(device)


class _ShardedReader:
    """A `model.safetensors.index.json` checkpoint seen as one reader.

    Shards open on first use, with the same options, so `keys()` costs one small read and a
    plaid load holds one shard's staging buffers at a time.
    """

    def __init__(self, index_uri: str, mode: str, open_shard: Callable[[str], Any]) -> None:
        self.uri = index_uri
        self.mode = mode
        try:
            index = json.loads(_io.read(index_uri))
            weight_map = index["weight_map"]
            if not isinstance(weight_map, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
            ):
                raise TypeError("weight_map must map tensor names to shard file names")
        except (ValueError, KeyError, TypeError) as e:
            raise _core.CorruptionError(f"{_core.redact_uris(index_uri)}: not a safetensors index ({e})") from None
        self._weight_map: dict[str, str] = weight_map
        self._index_metadata = index.get("metadata") or {}
        self._open_shard = open_shard
        self._shards: dict[str, Any] = {}

    def _shard(self, file: str) -> Any:
        reader = self._shards.get(file)
        if reader is None:
            if self.mode == "plaid":  # stream one shard at a time: one set of staging buffers
                self.close()
            reader = self._open_shard(_core.resolve_reference(self.uri, file))
            self._shards[file] = reader
        return reader

    def _shard_of(self, name: str) -> Any:
        file = self._weight_map.get(name)
        if file is None:
            raise _core.NotFoundError(f"{_core.redact_uris(self.uri)}: no tensor named '{name}'")
        return self._shard(file)

    def offset_keys(self) -> list[str]:
        # Shard by shard in the order the index first names them, file order inside each.
        keys: list[str] = []
        for file in dict.fromkeys(self._weight_map.values()):
            keys += [k for k in self._shard(file).offset_keys() if self._weight_map.get(k) == file]
        return keys

    def metadata(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._index_metadata.items()}

    def checksums(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for file in dict.fromkeys(self._weight_map.values()):
            out.update(self._shard(file).checksums())
        return out

    def info(self, name: str) -> tuple:
        return self._shard_of(name).info(name)

    def get(self, name: str) -> Any:
        return self._shard_of(name).get(name)

    def read_into(self, name: str, out: Any) -> None:
        self._shard_of(name).read_into(name, out)

    def read_slice(self, name: str, dims: list) -> Any:
        return self._shard_of(name).read_slice(name, dims)

    def close(self) -> None:
        for reader in self._shards.values():
            reader.close()
        self._shards.clear()


class _DeviceReader:
    """A whole file streamed into one CUDA allocation (owned by torch) through ferry's pinned
    staging buffers; tensors are views of it, valid for as long as they are held."""

    def __init__(self, uri: str, device: str, options: dict) -> None:
        import torch

        torch_device = torch.device(device)
        index = torch_device.index if torch_device.index is not None else 0
        count = _core.cuda_device_count()
        if count == 0:
            raise _core.UnsupportedError(f"{_core.redact_uris(uri)}: cannot load to {device} ({_core.cuda_description()})")
        self._header = _core.TensorReader(uri, "lazy")  # the header only: lazy reads nothing yet
        self.uri = uri
        self.mode = "plaid"
        self._memory = torch.empty(self._header.data_size, dtype=torch.uint8, device=torch_device)
        _core.load_to_device(uri, self._memory.data_ptr(), self._memory.numel(), index, **options)

    def offset_keys(self) -> list[str]:
        return self._header.offset_keys()

    def metadata(self) -> dict[str, str]:
        return self._header.metadata()

    def checksums(self) -> dict[str, str]:
        return self._header.checksums()

    def info(self, name: str) -> tuple:
        return self._header.info(name)

    def get(self, name: str) -> Any:
        _, _, begin, end = self._header.info(name)
        return self._memory[begin:end]

    def read_into(self, name: str, out: Any) -> None:
        raise _core.UnsupportedError(f"{_core.redact_uris(self.uri)}: read_into takes host memory; this file is on the device")

    def read_slice(self, name: str, dims: list) -> Any:
        """The slice's bytes, a device copy cut from the tensor already in device memory."""
        import torch

        from ferry.torch import _torch_tensor

        dtype, shape, begin, end = self._header.info(name)
        whole = _torch_tensor(self._memory[begin:end], dtype, shape, name, self.uri)
        part = whole[tuple(slice(start, start + count * step, step) for start, count, step in dims)]
        return part.clone(memory_format=torch.contiguous_format).reshape(-1).view(torch.uint8)

    def close(self) -> None:
        self._header.close()


def open_reader(
    filename: str | os.PathLike[str],
    mode: str = "eager",
    *,
    device: str = "cpu",
    parallelism: int | None = None,
    part_size: int = 8 << 20,
    staging_buffers: int = 2,
    staging_buffer_size: int = 64 << 20,
    verify_checksums: bool = False,
) -> Any:
    """A `_core.TensorReader`, or a `_ShardedReader` for `*.index.json`. With a CUDA `device`,
    eager and plaid load the whole file into device memory (`_DeviceReader`); lazy and mmap
    read on the CPU and the caller moves tensors. With device="meta" only the header is read
    (a lazy reader), whatever the mode."""
    uri = os.fspath(filename)
    if mode not in MODES:
        raise _core.InvalidArgumentError(f"{_core.redact_uris(uri)}: unknown mode {mode!r} (expected one of {MODES})")
    if device == "meta":
        mode, device = "lazy", "cpu"

    def open_one(u: str) -> Any:
        if device != "cpu" and mode in ("eager", "plaid"):
            return _DeviceReader(u, device, {
                "parallelism": parallelism or 0, "part_size": part_size,
                "staging_buffers": staging_buffers, "staging_buffer_size": staging_buffer_size})
        return _core.TensorReader(
            u,
            mode,
            parallelism=parallelism or 0,
            part_size=part_size,
            staging_buffers=staging_buffers,
            staging_buffer_size=staging_buffer_size,
            verify_checksums=verify_checksums,
        )

    if _core.without_query(uri).endswith(".index.json"):
        return _ShardedReader(uri, mode, open_one)
    return open_one(uri)


def open_group_reader(
    filename: str | os.PathLike[str],
    process_group: Any,
    *,
    mode: str = "eager",
    device: str = "cpu",
    names: Iterable[str] | None = None,
    select: Callable[[Any], Iterable[str] | None] | None = None,
    timeout: float | None = None,
    **options: Any,
) -> Any:
    """A reader holding the tensors this rank wants (`names`, or what `select(reader)` returns;
    all by default), loaded with each byte read once across `process_group` (see
    ferry._group). A collective: every rank of the group must make the same call."""
    uri = os.fspath(filename)
    if mode != "eager":
        raise _core.InvalidArgumentError(
            f"{_core.redact_uris(uri)}: a process_group load reads each rank's part of the file once "
            "and shares it, so every rank holds all the tensors it asked for, as in mode='eager'; "
            f"mode={mode!r} does not apply (pass names= to load fewer tensors)")
    if select is None and names is not None:
        select = lambda reader: names  # noqa: E731
    from ferry._group import group_load, group_load_sharded

    if _core.without_query(uri).endswith(".index.json"):
        return group_load_sharded(uri, process_group, select=select, device=device, timeout=timeout, **options)
    return group_load(uri, process_group, select=select, device=device, timeout=timeout, **options)


def select_names(reader: Any, names: Iterable[str] | None) -> list[str]:
    """The tensors of `reader` to load, in file order: all, or `names` (each must exist)."""
    keys = reader.offset_keys()
    if names is None:
        return keys
    where = _core.redact_uris(reader.uri)
    if isinstance(names, (str, bytes)):
        raise _core.InvalidArgumentError(f"{where}: names must be a list of tensor names, not a {type(names).__name__}")
    wanted = set()
    for name in names:
        if not isinstance(name, str):
            raise _core.InvalidArgumentError(f"{where}: names must be tensor names (str), got {name!r}")
        reader.info(name)  # NotFoundError naming the file and the tensor
        wanted.add(name)
    return [k for k in keys if k in wanted]


def numpy_array(raw: Any, dtype: str, shape: tuple[int, ...], name: str, uri: str) -> Any:
    """The numpy array a flat uint8 view holds (no copy)."""
    np_dtype = NUMPY_DTYPES.get(dtype)
    if np_dtype is None:
        raise _core.UnsupportedError(
            f"{_core.redact_uris(uri)}: tensor '{name}': numpy has no type for {dtype}; use framework='pt'"
        )
    return raw.view(np_dtype).reshape(shape)


class safe_open:
    """Opens a safetensors file, URL or `*.index.json` checkpoint, like `safetensors.safe_open`.

        with ferry.safe_open("model.safetensors", framework="pt", mode="plaid") as f:
            for name in f.keys():
                consume(name, f.get_tensor(name))

    mode:
      eager  every tensor read at open, in parallel, into one allocation (the default)
      lazy   each tensor read on first access, then cached
      plaid  tensors streamed in file order through `staging_buffers` x `staging_buffer_size`
             bytes; a tensor is a view valid until the next `get_tensor` (copy it to keep it).
             Asking again for one already passed raises `ferry.EvictedError`. `keys()` lists
             tensors in file order, the order that streams the file once.
      mmap   zero-copy views of a private mapping (local files only)

    With framework="pt" and device="cuda:N" (or N), eager and plaid stream the whole file into
    one device allocation through pinned staging buffers (reads overlap the copies); tensors are
    views of it and stay valid. lazy and mmap read on the CPU and move each tensor. With
    device="meta" tensors and slices are meta tensors (shape and dtype) and no tensor byte is
    read.

    With process_group (a torch.distributed group; every rank of it opens the file together)
    each byte is read once across the group: every rank reads an equal share of the bytes with
    ranged reads and the group's collectives (gloo on the CPU, NCCL on CUDA) share them, so each
    rank holds every tensor, or only `names` (the tensors that rank asks for: it receives only
    those, and keys() lists them). The ranks must see the same file (size and header: else
    InvalidArgumentError on every rank), and an error on any rank raises on every rank; the
    waits for the other ranks' status last at most `timeout` seconds (default: the group's
    timeout). Only the default mode, eager, applies. See ferry._group for how.

    Arrays share memory with the reader where the mode allows; they stay valid after `close()`
    (except plaid views, whose bytes a later tensor may overwrite). `metadata()` leaves out the
    per-tensor checksums ferry's writer records; `checksums()` returns them.
    """

    def __init__(
        self,
        filename: str | os.PathLike[str],
        framework: str = "np",
        device: str = "cpu",
        *,
        mode: str = "eager",
        parallelism: int | None = None,
        part_size: int = 8 << 20,
        staging_buffers: int = 2,
        staging_buffer_size: int = 64 << 20,
        verify_checksums: bool = False,
        process_group: Any = None,
        names: Iterable[str] | None = None,
        timeout: float | None = None,
    ) -> None:
        if framework in ("np", "numpy"):
            self._framework = "np"
        elif framework in ("pt", "torch"):
            self._framework = "pt"
        elif framework in _OTHER_FRAMEWORKS:
            raise _core.UnsupportedError(
                f"framework {framework!r} is not supported; ferry supports 'np' (or 'numpy': numpy "
                "arrays) and 'pt' (or 'torch': torch tensors)")
        else:
            raise _core.InvalidArgumentError(
                f"unknown framework {framework!r} (expected 'np' or 'pt')"
            )
        self._device = device_name(device)
        if self._device != "cpu" and self._framework == "np":
            raise _core.InvalidArgumentError(f"numpy arrays live on the CPU (device={device!r})")
        options = dict(
            parallelism=parallelism,
            part_size=part_size,
            staging_buffers=staging_buffers,
            staging_buffer_size=staging_buffer_size,
            verify_checksums=verify_checksums,
        )
        device = self._device if self._framework == "pt" else "cpu"
        if process_group is not None and device != "meta":
            self._reader = open_group_reader(
                filename, process_group, mode=mode, device=device, names=names, timeout=timeout, **options)
        elif names is not None or timeout is not None:
            raise _core.InvalidArgumentError(
                f"{_core.redact_uris(os.fspath(filename))}: names= and timeout= belong to a process_group "
                "load; without a group, get_tensor reads only the tensors asked for (mode='lazy')")
        else:
            self._reader = open_reader(filename, mode, device=device, **options)

    def __enter__(self) -> "safe_open":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._reader.close()

    @property
    def mode(self) -> str:
        return self._reader.mode

    def keys(self) -> list[str]:
        """Tensor names: sorted, as safetensors lists them; in file order in plaid mode."""
        keys = self._reader.offset_keys()
        return keys if self._reader.mode == "plaid" else sorted(keys)

    def offset_keys(self) -> list[str]:
        """Tensor names in the order their bytes appear in the file."""
        return self._reader.offset_keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, name: object) -> bool:
        try:
            self._reader.info(name)
        except _core.NotFoundError:
            return False
        return True

    def metadata(self) -> dict[str, str] | None:
        return self._reader.metadata() or None

    def checksums(self) -> dict[str, str]:
        """Tensor name -> XXH3-64 recorded by ferry's writer (hex), for tensors that have one."""
        return self._reader.checksums()

    def dtype(self, name: str) -> str:
        """The safetensors dtype name, e.g. 'BF16'."""
        return self._reader.info(name)[0]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._reader.info(name)[1])

    def read_into(self, name: str, out: Any) -> None:
        """Copy tensor `name` into `out`, memory the caller owns: a C-contiguous numpy array,
        CPU torch tensor or other writable buffer of exactly the tensor's byte size. Lazy and
        plaid modes read straight into it: no tensor-sized buffer of ferry's own is needed."""
        if type(out).__module__ == "torch" and hasattr(out, "untyped_storage"):
            if out.device.type != "cpu" or not out.is_contiguous():
                raise _core.InvalidArgumentError(f"read_into('{name}'): needs a contiguous CPU tensor")
            out = out.detach().reshape(-1).view(__import__("torch").uint8).numpy()
        self._reader.read_into(name, out)

    def get_slice(self, name: str) -> "TensorSlice":
        """A handle that reads part of a tensor, like safetensors' `get_slice`:
        `f.get_slice("w")[:, 1024:2048]`, `.get_shape()`, `.get_dtype()`."""
        self._reader.info(name)  # NotFoundError now, not at the first index
        return TensorSlice(self, name)

    def get_tensor(self, name: str) -> Any:
        dtype, shape, _, _ = self._reader.info(name)
        if self._device == "meta":
            return self._meta_tensor(dtype, shape, name)
        return self._framework_tensor(self._reader.get(name), dtype, shape, name)

    def _meta_tensor(self, dtype: str, shape: tuple[int, ...], name: str) -> Any:
        import torch

        from ferry.torch import _torch_dtype

        return torch.empty(shape, dtype=_torch_dtype(dtype, name, self._reader.uri), device="meta")

    def _framework_tensor(self, raw: Any, dtype: str, shape: tuple[int, ...], name: str) -> Any:
        """The numpy array or torch tensor (on this file's device) that flat bytes `raw` hold."""
        if self._framework == "np":
            return numpy_array(raw, dtype, shape, name, self._reader.uri)
        from ferry.torch import _torch_tensor  # torch is imported only when asked for

        tensor = _torch_tensor(raw, dtype, shape, name, self._reader.uri)
        return tensor if tensor.device.type != "cpu" or self._device == "cpu" else tensor.to(self._device)


class SliceIndexError(_core.OutOfRangeError, IndexError):
    """An index outside a tensor's dimensions: an IndexError, as for any array."""


def _is_int(item: Any) -> bool:
    """A Python or numpy integer (not a bool, which indexes as a mask)."""
    if isinstance(item, int):
        return not isinstance(item, bool)
    dtype = getattr(item, "dtype", None)  # numpy scalars; torch tensors are left to torch
    return (type(item).__module__ == "numpy" and getattr(item, "ndim", None) == 0
            and getattr(dtype, "kind", None) in ("i", "u"))


def plan_slice(index: Any, shape: tuple[int, ...], where: str) -> tuple[list, tuple[int, ...]] | None:
    """([(start, count, step)] per dimension, result shape) for a basic index: ints (negative
    ones count from the end), slices with positive steps, one Ellipsis, None, or a tuple of
    these, fewer than the dimensions meaning whole trailing ones. None for any other index
    (lists, arrays, bools, several Ellipses): the caller indexes the whole tensor with it."""
    items = index if isinstance(index, tuple) else (index,)
    if not all(item is Ellipsis or item is None or isinstance(item, slice) or _is_int(item) for item in items):
        return None
    if sum(item is Ellipsis for item in items) > 1:
        return None
    consumed = sum(item is not None and item is not Ellipsis for item in items)
    if consumed > len(shape):
        raise SliceIndexError(f"{where}: too many indices for tensor of dimension {len(shape)}")
    if Ellipsis not in items:
        items = items + (Ellipsis,)
    at = items.index(Ellipsis)
    items = items[:at] + (slice(None),) * (len(shape) - consumed) + items[at + 1:]
    dims: list[tuple[int, int, int]] = []
    out: list[int] = []
    for item in items:
        if item is None:
            out.append(1)
            continue
        d, size = len(dims), shape[len(dims)]
        if isinstance(item, slice):
            start, stop, step = item.indices(size)  # TypeError / ValueError as Python's own
            if step < 0:
                raise _core.InvalidArgumentError(f"{where}: step must be greater than zero (got {step})")
            count = len(range(start, stop, step))
            dims.append((start if count else 0, count, step))
            out.append(count)
        else:
            i = int(item)
            if not -size <= i < size:
                raise SliceIndexError(f"{where}: index {i} is out of bounds for dimension {d} with size {size}")
            dims.append((i % size, 1, 1))
    return dims, tuple(out)


class TensorSlice:
    """Part of a tensor, read on indexing (see `safe_open.get_slice`). The result is a copy, as
    in safetensors, so it stays valid whatever the mode.

    A basic index (ints, slices with positive steps, Ellipsis, None) reads only the bytes it
    selects: rows `w[a:b]` in one read, `w[:, a:b]` one run per row, neighbouring runs read
    together when the gap between them is small. Any other index (lists, arrays, bools) is
    applied by the framework's own indexing to a copy of the whole tensor (read as a slice, so a
    plaid reader's stream is left alone)."""

    def __init__(self, file: safe_open, name: str) -> None:
        self._file = file
        self._name = name

    def get_shape(self) -> list[int]:
        return list(self._file.shape(self._name))

    def get_dtype(self) -> str:
        return self._file.dtype(self._name)

    def __getitem__(self, index: Any) -> Any:
        reader = self._file._reader
        dtype, shape, _, _ = reader.info(self._name)
        where = f"{_core.redact_uris(reader.uri)}: tensor '{self._name}'"
        plan = plan_slice(index, tuple(shape), where)
        if plan is None:
            return self[...][index]
        dims, out_shape = plan
        if self._file._device == "meta":
            return self._file._meta_tensor(dtype, out_shape, self._name)
        raw = reader.read_slice(self._name, dims)
        return self._file._framework_tensor(raw, dtype, out_shape, self._name)
