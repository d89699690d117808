"""safetensors files as numpy arrays, mirroring `safetensors.numpy`.

    import ferry.numpy
    ferry.numpy.save_file({"w": np.ones((2, 3), np.float32)}, "m.safetensors")
    arrays = ferry.numpy.load_file("m.safetensors")            # or an http(s):// URL
    arrays = ferry.numpy.load(ferry.numpy.save(arrays))        # bytes, as safetensors.numpy

bfloat16 and float8 tensors come back as uint16 / uint8 arrays holding the raw bits.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from ferry import _core
from ferry._tensors import NUMPY_DTYPES, open_reader, numpy_array

# numpy dtype -> safetensors dtype for writing (raw-bit dtypes such as BF16 cannot be told apart
# from uint16 here; write those through ferry.torch).
_WRITE_DTYPES = {
    np.dtype(np_name): st_name
    for st_name, np_name in reversed(NUMPY_DTYPES.items())
    if st_name not in ("BF16",) and not st_name.startswith("F8_")
}


def load_file(
    filename: str | os.PathLike[str], *, mode: str = "eager", **options: Any
) -> dict[str, np.ndarray]:
    """Every tensor of a file, URL or `*.index.json` checkpoint, by name.

    `mode` is "eager" (default: one parallel read into one allocation, arrays are views of it)
    or "mmap" (views of the mapped file); "lazy" works too. `options` are those of
    `ferry.safe_open` (parallelism, part_size, verify_checksums, ...).
    """
    if mode == "plaid":
        raise _core.InvalidArgumentError(
            "load_file keeps every tensor; plaid mode hands out views valid until the next "
            "tensor. Use ferry.safe_open(..., mode='plaid') to stream."
        )
    reader = open_reader(filename, mode, **options)
    try:
        out = {}
        for name in reader.offset_keys():
            dtype, shape, _, _ = reader.info(name)
            out[name] = numpy_array(reader.get(name), dtype, shape, name, reader.uri)
        return out
    finally:
        reader.close()


def _as_little_endian_bytes(name: str, array: Any) -> tuple[str, tuple[int, ...], np.ndarray]:
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    st_dtype = _WRITE_DTYPES.get(np.dtype(dtype).newbyteorder("="))
    if st_dtype is None:
        raise _core.InvalidArgumentError(f"tensor '{name}': numpy dtype {array.dtype} has no safetensors type")
    flat = np.ascontiguousarray(array, dtype=dtype).reshape(-1).view(np.uint8)
    return st_dtype, tuple(array.shape), flat


def _items(tensor_dict: Mapping[str, Any]) -> list[tuple]:
    """(name, dtype, shape, little-endian bytes) of each array for the writer."""
    # names are checked (str, encodable) by _core
    return [(name, *_as_little_endian_bytes(name, array)) for name, array in tensor_dict.items()]


def save_file(
    tensor_dict: Mapping[str, Any],
    filename: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
    *,
    checksums: bool = True,
) -> None:
    """Write arrays to a safetensors file that every safetensors reader loads.

    The data buffer starts on a 4096-byte boundary and each tensor on a multiple of its element
    size; the file appears under `filename` only once complete (temporary file, fsync, rename).
    With `checksums`, each tensor's XXH3-64 is recorded in `__metadata__` for `ferry verify`.
    """
    _core.write_safetensors(os.fspath(filename), _items(tensor_dict), dict(metadata) if metadata else None, checksums)


def save(tensor_dict: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> bytes:
    """The safetensors file of `tensor_dict` as bytes, byte for byte what
    `safetensors.numpy.save` returns (no checksums, the header padded to 8 bytes only)."""
    return _core.serialize_safetensors(_items(tensor_dict), dict(metadata) if metadata else None)


def load(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file given as bytes, validated as a file is; a truncated or
    malformed one raises ferry.CorruptionError naming the offset or field. The arrays are
    writable views of one copy of the data."""
    return {
        name: numpy_array(raw, dtype, tuple(shape), name, "safetensors bytes")
        for name, dtype, shape, raw in _core.load_safetensors_bytes(data)
    }
