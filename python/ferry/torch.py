"""safetensors files as torch tensors, mirroring `safetensors.torch`, plus `load_into_module`.

    import ferry.torch
    ferry.torch.save_file(model.state_dict(), "model.safetensors")
    missing, unexpected = ferry.torch.load_into_module(model, "model.safetensors")
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from ferry import _core
from ferry._tensors import open_reader

_TORCH_DTYPES: dict[str, torch.dtype] = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I16": torch.int16,
    "U16": torch.uint16,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I32": torch.int32,
    "U32": torch.uint32,
    "F32": torch.float32,
    "C64": torch.complex64,
    "F64": torch.float64,
    "I64": torch.int64,
    "U64": torch.uint64,
}
for _name, _attr in (
    ("F8_E5M2", "float8_e5m2"),
    ("F8_E4M3", "float8_e4m3fn"),
    ("F8_E8M0", "float8_e8m0fnu"),
    ("F8_E4M3FNUZ", "float8_e4m3fnuz"),
    ("F8_E5M2FNUZ", "float8_e5m2fnuz"),
):
    if hasattr(torch, _attr):
        _TORCH_DTYPES[_name] = getattr(torch, _attr)
_SAFETENSORS_DTYPES = {v: k for k, v in _TORCH_DTYPES.items()}


def _torch_tensor(raw: Any, dtype: str, shape: tuple[int, ...], name: str, uri: str) -> torch.Tensor:
    """The tensor a flat uint8 numpy view holds, sharing its memory where alignment allows."""
    torch_dtype = _TORCH_DTYPES.get(dtype)
    if torch_dtype is None:
        raise _core.UnsupportedError(f"{_core.redact_uris(uri)}: tensor '{name}': torch has no type for {dtype}")
    flat = raw if isinstance(raw, torch.Tensor) else torch.from_numpy(raw)  # device or host
    itemsize = torch_dtype.itemsize
    if flat.numel() == 0:
        return torch.empty(shape, dtype=torch_dtype, device=flat.device)
    if flat.data_ptr() % itemsize != 0:
        flat = flat.clone()  # a file from another writer may misalign it; torch kernels need it
    return flat.view(torch_dtype).reshape(shape)


def load_file(
    filename: str | os.PathLike[str], device: str = "cpu", *, mode: str = "eager", **options: Any
) -> dict[str, torch.Tensor]:
    """Every tensor of a file, URL or `*.index.json` checkpoint, by name (see ferry.numpy).

    With device="cuda:N" (eager mode) each file streams into one device allocation through
    pinned staging buffers; the tensors are views of it."""
    if mode == "plaid":
        raise _core.InvalidArgumentError(
            "load_file keeps every tensor; plaid mode hands out views valid until the next "
            "tensor. Use ferry.safe_open(..., mode='plaid') or load_into_module to stream."
        )
    reader = open_reader(filename, mode, device=str(device), **options)
    try:
        out = {}
        for name in reader.offset_keys():
            dtype, shape, _, _ = reader.info(name)
            tensor = _torch_tensor(reader.get(name), dtype, shape, name, reader.uri)
            out[name] = tensor if tensor.device == torch.device(device) else tensor.to(device)
        return out
    finally:
        reader.close()


def save_file(
    tensors: Mapping[str, torch.Tensor],
    filename: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
    *,
    checksums: bool = True,
) -> None:
    """Write tensors (any device; copied to the CPU) to a safetensors file; see ferry.numpy."""
    items = []
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise _core.InvalidArgumentError(f"tensor '{name}': expected a torch.Tensor, got {type(tensor).__name__}")
        st_dtype = _SAFETENSORS_DTYPES.get(tensor.dtype)
        if st_dtype is None:
            raise _core.InvalidArgumentError(f"tensor '{name}': {tensor.dtype} has no safetensors type")
        flat = tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8)
        items.append((name, st_dtype, tuple(tensor.shape), flat.numpy()))
    _core.write_safetensors(os.fspath(filename), items, dict(metadata) if metadata else None, checksums)


def load_into_module(
    module: torch.nn.Module,
    filename: str | os.PathLike[str],
    device: str | torch.device | None = None,
    *,
    mode: str = "plaid",
    strict: bool = True,
    **options: Any,
) -> tuple[list[str], list[str]]:
    """Copy a checkpoint's tensors into `module`'s parameters and buffers, in place.

    Streams in plaid mode by default: host memory is the staging buffers, whatever the model
    size. Tensors are copied in file order straight into the existing storage (CPU tensors of the
    file's dtype are read straight into their memory; others go through `Tensor.copy_`, which
    converts dtypes); `device` first moves the module there. Returns (missing,
    unexpected) names like `Module.load_state_dict`; with `strict`, either being non-empty
    raises `ferry.InvalidArgumentError` before any tensor is copied. A shape mismatch always
    raises. Tied weights (names sharing one storage) count as loaded when one of them is.
    """
    if device is not None:
        module.to(device)
    targets = module.state_dict(keep_vars=True)
    reader = open_reader(filename, mode, **options)
    try:
        names = reader.offset_keys()
        in_file = set(names)
        loaded_storages = {targets[n].untyped_storage().data_ptr() for n in names if n in targets}
        missing = [
            n for n in targets
            if n not in in_file and targets[n].untyped_storage().data_ptr() not in loaded_storages
        ]
        unexpected = [n for n in names if n not in targets]
        if strict and (missing or unexpected):
            raise _core.InvalidArgumentError(
                f"{_core.redact_uris(reader.uri)}: checkpoint does not match the module: "
                f"missing {missing[:10]}{'...' if len(missing) > 10 else ''}, "
                f"unexpected {unexpected[:10]}{'...' if len(unexpected) > 10 else ''}"
            )
        for name in names:
            if name not in targets:
                continue
            dtype, shape, _, _ = reader.info(name)
            target = targets[name]
            if tuple(target.shape) != tuple(shape):
                raise _core.InvalidArgumentError(
                    f"{_core.redact_uris(reader.uri)}: tensor '{name}': shape {list(shape)} in the file, "
                    f"{list(target.shape)} in the module"
                )
            if (
                target.device.type == "cpu"
                and target.dtype == _TORCH_DTYPES.get(dtype)
                and target.is_contiguous()
                and target.numel() > 0
            ):
                # Straight into the parameter's memory: no staging copy, and a tensor
                # larger than a staging buffer needs no extra host memory.
                reader.read_into(name, target.detach().reshape(-1).view(torch.uint8).numpy())
                continue
            source = _torch_tensor(reader.get(name), dtype, shape, name, reader.uri)
            with torch.no_grad():
                target.copy_(source)  # completes before the next tensor reuses the staging buffer
        return missing, unexpected
    finally:
        reader.close()
