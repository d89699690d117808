"""safetensors files as torch tensors, mirroring `safetensors.torch`, plus `load_into_module`.

    import ferry.torch
    ferry.torch.save_file(state_dict, "model.safetensors")   # refuses tied tensors: see save_model
    ferry.torch.save_model(model, "model.safetensors")       # keeps one name per tied group
    missing, unexpected = ferry.torch.load_into_module(model, "model.safetensors")
    data = ferry.torch.save(state_dict)                        # bytes, as safetensors' save()
    state = ferry.torch.load_file(url, process_group=group)    # each byte read once per group
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Iterable, Mapping

import torch

from ferry import _core
from ferry._tensors import device_name, open_group_reader, open_reader, select_names

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


def _torch_dtype(dtype: str, name: str, uri: str) -> torch.dtype:
    torch_dtype = _TORCH_DTYPES.get(dtype)
    if torch_dtype is None:
        raise _core.UnsupportedError(f"{_core.redact_uris(uri)}: tensor '{name}': torch has no type for {dtype}")
    return torch_dtype


def _torch_tensor(raw: Any, dtype: str, shape: tuple[int, ...], name: str, uri: str) -> torch.Tensor:
    """The tensor a flat uint8 numpy view holds, sharing its memory where alignment allows."""
    torch_dtype = _torch_dtype(dtype, name, uri)
    flat = raw if isinstance(raw, torch.Tensor) else torch.from_numpy(raw)  # device or host
    itemsize = torch_dtype.itemsize
    if flat.numel() == 0:
        return torch.empty(shape, dtype=torch_dtype, device=flat.device)
    if flat.data_ptr() % itemsize != 0:
        flat = flat.clone()  # a file from another writer may misalign it; torch kernels need it
    return flat.view(torch_dtype).reshape(shape)


def load_file(
    filename: str | os.PathLike[str],
    device: str | int = "cpu",
    *,
    mode: str = "eager",
    process_group: Any = None,
    names: Iterable[str] | None = None,
    timeout: float | None = None,
    **options: Any,
) -> dict[str, torch.Tensor]:
    """Every tensor of a file, URL or `*.index.json` checkpoint, by name (see ferry.numpy), or
    only those in `names` (in eager mode only their bytes are read then, in ranged reads).

    With device="cuda:N" or N (eager mode) each file streams into one device allocation through
    pinned staging buffers; the tensors are views of it. With device="meta" the tensors are meta
    tensors of the file's shapes and dtypes, and only the header is read.

    process_group (a torch.distributed group, e.g. `torch.distributed.group.WORLD`): every rank
    of the group calls load_file together, and each byte of the file is read once across the
    group rather than once per rank:

        state = ferry.torch.load_file(url, device=f"cuda:{local_rank}", process_group=group)

    Each rank reads an equal share of the bytes (ranged reads) and the group's own collectives
    share them: broadcasts, or, when ranks pass different `names`, point-to-point messages that
    carry each tensor only to the ranks that asked for it. gloo exchanges on the CPU; NCCL on
    the device, when `device` is CUDA. Ranks must see the same file (same size and header; they
    may read different copies of it), else every rank raises InvalidArgumentError; an error on
    any rank (a failed read of its share, a missing name) raises on every rank, before any bytes
    are exchanged. Waiting for the other ranks' status takes at most `timeout` seconds (default:
    the group's own timeout), after which ferry.DeadlineError. Only mode="eager" applies; a
    sharded checkpoint is loaded shard by shard. With device="meta" no bytes are read and the
    group is not used."""
    if mode == "plaid":
        raise _core.InvalidArgumentError(
            "load_file keeps every tensor; plaid mode hands out views valid until the next "
            "tensor. Use ferry.safe_open(..., mode='plaid') or load_into_module to stream."
        )
    device = device_name(device)
    if process_group is not None and device != "meta":
        reader = open_group_reader(filename, process_group, mode=mode, device=device, names=names,
                                   timeout=timeout, **options)
    elif timeout is not None:
        raise _core.InvalidArgumentError(
            f"{_core.redact_uris(os.fspath(filename))}: timeout= bounds the waits of a process_group load; "
            "no process_group was given")
    else:
        selective = names is not None and mode == "eager" and device != "meta"
        reader = open_reader(filename, "lazy" if selective else mode, device="cpu" if selective else device,
                             **options)
    try:
        out = {}
        for name in select_names(reader, names):
            dtype, shape, _, _ = reader.info(name)
            if device == "meta":
                out[name] = torch.empty(shape, dtype=_torch_dtype(dtype, name, reader.uri), device="meta")
                continue
            tensor = _torch_tensor(reader.get(name), dtype, shape, name, reader.uri)
            out[name] = tensor if tensor.device == torch.device(device) else tensor.to(device)
        return out
    finally:
        reader.close()


def load(data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file given as bytes (e.g. from `save`), validated as a file
    is; a truncated or malformed one raises ferry.CorruptionError naming the offset or field.
    The tensors share one copy of the data, on the CPU."""
    return {
        name: _torch_tensor(raw, dtype, tuple(shape), name, "safetensors bytes")
        for name, dtype, shape, raw in _core.load_safetensors_bytes(data)
    }


def _span(tensor: torch.Tensor) -> tuple[int, int]:
    """The bytes [start, end) of its storage a tensor's elements reach (any strides >= 0)."""
    start = tensor.data_ptr()
    if tensor.numel() == 0:
        return start, start
    last = sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride()))
    return start, start + (last + 1) * tensor.element_size()


def _shared_groups(tensors: Mapping[str, torch.Tensor]) -> list[list[str]]:
    """Names whose tensors overlap in one storage, as sorted groups of two or more. Tensors
    that cut one storage into disjoint parts are not shared; meta and empty storages never are."""
    by_storage: dict[tuple, list[str]] = defaultdict(list)
    for name, tensor in tensors.items():
        storage = tensor.untyped_storage() if tensor.device.type != "meta" else None
        if storage is not None and storage.data_ptr() != 0 and storage.nbytes() != 0:
            by_storage[(tensor.device, storage.data_ptr(), storage.nbytes())].append(name)
    groups = []
    for names in by_storage.values():
        spans = sorted((_span(tensors[n]), n) for n in names)
        group, group_end = [spans[0][1]], spans[0][0][1]
        for (start, end), name in spans[1:]:
            if start < group_end:
                group.append(name)
            else:
                groups.append(group)
                group = [name]
            group_end = max(group_end, end)
        groups.append(group)
    return sorted(sorted(g) for g in groups if len(g) > 1)


def _items(tensors: Mapping[str, torch.Tensor], where: str) -> list[tuple]:
    """(name, dtype, shape, bytes) of each tensor for the writer, on the CPU and contiguous."""
    if not isinstance(tensors, Mapping):
        raise _core.InvalidArgumentError(f"{where}: expected a dict of str -> torch.Tensor, got {type(tensors).__name__}")
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise _core.InvalidArgumentError(f"{where}: tensor '{name}': expected a torch.Tensor, got {type(tensor).__name__}")
        st_dtype = _SAFETENSORS_DTYPES.get(tensor.dtype)
        if st_dtype is None:
            raise _core.InvalidArgumentError(f"{where}: tensor '{name}': {tensor.dtype} has no safetensors type")
        if tensor.layout != torch.strided:
            raise _core.InvalidArgumentError(
                f"{where}: tensor '{name}' is {tensor.layout}; safetensors holds dense tensors "
                "(.to_dense() makes one, possibly much larger)")
    shared = _shared_groups(tensors)
    if shared:
        raise _core.InvalidArgumentError(
            f"{where}: tensors {', '.join(map(str, shared))} share memory; saving them would write those "
            "bytes once per name and load them back as separate tensors. Save each storage under "
            "one name, or use ferry.torch.save_model(model, filename), which keeps one name of each "
            "tied group and records the others in the metadata")
    items = []
    for name, tensor in tensors.items():
        flat = tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8)
        items.append((name, _SAFETENSORS_DTYPES[tensor.dtype], tuple(tensor.shape), flat.numpy()))
    return items


def save_file(
    tensors: Mapping[str, torch.Tensor],
    filename: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
    *,
    checksums: bool = True,
) -> None:
    """Write tensors (any device; copied to the CPU, packed if not contiguous) to a safetensors
    file; see ferry.numpy. Tensors sharing memory (tied weights) are refused, as safetensors
    refuses them: use `save_model`."""
    path = os.fspath(filename)
    items = _items(tensors, _core.redact_uris(path))
    _core.write_safetensors(path, items, dict(metadata) if metadata else None, checksums)


def save(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> bytes:
    """The safetensors file of `tensors` as bytes, byte for byte what `safetensors.torch.save`
    returns (no checksums, the header padded to 8 bytes only). Tied tensors are refused as in
    `save_file`."""
    return _core.serialize_safetensors(_items(tensors, "save()"), dict(metadata) if metadata else None)


def _keep_one_name_per_storage(state: dict[str, torch.Tensor], prefer: set[str] = frozenset()) -> dict[str, list[str]]:
    """For each group of tied names: the one name kept (the first, sorted, of those covering the
    whole storage, preferring names in `prefer`) -> the others, as safetensors chooses them."""
    dropped: dict[str, list[str]] = {}
    for group in _shared_groups(state):
        complete = sorted(n for n in group if _covers_storage(state[n]))
        if not complete:
            raise _core.InvalidArgumentError(
                f"tensors {group} share memory but none of them covers the whole storage, so no "
                "one name can stand for the others; save copies (.clone()) if each is meant to "
                "be stored")
        keep = next((n for n in complete if n in prefer), complete[0])
        dropped[keep] = [n for n in group if n != keep]
    return dropped


def _covers_storage(tensor: torch.Tensor) -> bool:
    storage = tensor.untyped_storage()
    return tensor.data_ptr() == storage.data_ptr() and tensor.numel() * tensor.element_size() == storage.nbytes()


def save_model(
    model: torch.nn.Module,
    filename: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
    force_contiguous: bool = True,
    *,
    checksums: bool = True,
) -> None:
    """Save `model.state_dict()` with each group of tied (memory-sharing) tensors under one
    name, as `safetensors.torch.save_model` does: the first name, sorted, of those covering the
    whole storage. Each dropped name is recorded in the metadata as `dropped -> kept` (unless
    `metadata` already has that key); `load_model` ties them again. With force_contiguous=False
    a non-contiguous tensor is refused rather than packed."""
    state = model.state_dict()
    metadata = dict(metadata or {})
    for keep, dropped in _keep_one_name_per_storage(state).items():
        for name in dropped:
            metadata.setdefault(name, keep)
            del state[name]
    if not force_contiguous:
        for name, tensor in state.items():
            if not tensor.is_contiguous():
                raise _core.InvalidArgumentError(
                    f"{_core.redact_uris(os.fspath(filename))}: tensor '{name}' is not contiguous; "
                    "pass force_contiguous=True to save it packed")
    save_file(state, filename, metadata or None, checksums=checksums)


def load_model(
    model: torch.nn.Module,
    filename: str | os.PathLike[str],
    strict: bool = True,
    device: str | int = "cpu",
    *,
    mode: str = "plaid",
    **options: Any,
) -> tuple[set[str], list[str]]:
    """Load a file written by `save_model` (or any checkpoint) into `model` in place, with
    `safetensors.torch.load_model`'s handling of tied tensors: a tied name the file leaves out
    is not missing (its kept twin fills the storage), and one the file has anyway counts as
    unexpected. Returns (missing, unexpected) as safetensors does (a set and a list); with
    `strict`, either being non-empty raises ferry.InvalidArgumentError before any tensor is
    copied. Streams in plaid mode by default (see `load_into_module`); `device` is where the
    file's tensors are read to on their way into the model's own memory."""
    device = device_name(device)
    targets = model.state_dict(keep_vars=True)
    reader = open_reader(filename, mode, device=device, **options)
    try:
        names = reader.offset_keys()
        in_file = set(names)
        tied = _keep_one_name_per_storage(targets, prefer=in_file)
        missing = {n for n in targets if n not in in_file}
        unexpected = [n for n in sorted(names) if n not in targets]
        for dropped in tied.values():
            for name in dropped:
                if name in missing:
                    missing.remove(name)
                else:
                    unexpected.append(name)
        if strict and (missing or unexpected):
            raise _core.InvalidArgumentError(
                f"{_core.redact_uris(reader.uri)}: checkpoint does not match {type(model).__name__}: "
                f"missing {sorted(missing)}, unexpected {unexpected}")
        _copy_into(targets, reader, [n for n in names if n in targets], host=device == "cpu")
        return missing, unexpected
    finally:
        reader.close()


def load_into_module(
    module: torch.nn.Module,
    filename: str | os.PathLike[str],
    device: str | torch.device | None = None,
    *,
    mode: str = "plaid",
    strict: bool = True,
    process_group: Any = None,
    timeout: float | None = None,
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

    With process_group, every rank of the group loads together and each byte of the file is
    read once across the group (see `load_file`): each rank receives only the tensors its
    module has, then copies them in. The bytes are held once in memory on their way (no
    streaming): on the CPU with gloo, on the current CUDA device with NCCL. A mismatch (strict)
    or a shape mismatch on any rank raises on every rank, before any bytes are exchanged.
    """
    if device is not None:
        module.to(device)
    targets = module.state_dict(keep_vars=True)

    def plan(reader: Any) -> tuple[list[str], list[str], list[str]]:
        """(names to load, missing, unexpected); raises what a mismatch raises."""
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
        wanted = [n for n in names if n in targets]
        for name in wanted:
            _check_shape(reader, name, targets[name])
        return wanted, missing, unexpected

    if process_group is not None:
        from ferry._group import _backend_devices

        on = "cpu" if "cpu" in _backend_devices(process_group) else f"cuda:{torch.cuda.current_device()}"
        outcome: list[tuple] = []

        def select(reader: Any) -> list[str]:
            outcome.append(plan(reader))
            return outcome[-1][0]

        mode = "eager" if mode == "plaid" else mode  # plaid is only the default of the plain path
        reader = open_group_reader(filename, process_group, mode=mode, device=on, select=select,
                                   timeout=timeout, **options)
        wanted, missing, unexpected = outcome[-1]
    else:
        if timeout is not None:
            raise _core.InvalidArgumentError(
                f"{_core.redact_uris(os.fspath(filename))}: timeout= bounds the waits of a "
                "process_group load; no process_group was given")
        reader = open_reader(filename, mode, **options)
    try:
        if process_group is None:
            wanted, missing, unexpected = plan(reader)
        _copy_into(targets, reader, wanted, host=True)
        return missing, unexpected
    finally:
        reader.close()


def _check_shape(reader: Any, name: str, target: torch.Tensor) -> None:
    _, shape, _, _ = reader.info(name)
    if tuple(target.shape) != tuple(shape):
        raise _core.InvalidArgumentError(
            f"{_core.redact_uris(reader.uri)}: tensor '{name}': shape {list(shape)} in the file, "
            f"{list(target.shape)} in the module"
        )


def _copy_into(targets: Mapping[str, torch.Tensor], reader: Any, names: list[str], host: bool) -> None:
    """Copy tensors `names` of `reader` into `targets` (a module's parameters and buffers) in
    file order, in place. CPU targets of the file's dtype are read straight into their memory
    when the reader is on the host; others go through `Tensor.copy_`, which converts dtypes."""
    for name in names:
        dtype, shape, _, _ = reader.info(name)
        target = targets[name]
        _check_shape(reader, name, target)
        if (
            host
            and target.device.type == "cpu"
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
