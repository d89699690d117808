"""Group loads: each byte of a safetensors file read once across a torch.distributed group.

    group = torch.distributed.group.WORLD              # or new_group(...); gloo or NCCL
    state = ferry.torch.load_file(url, device="cuda:0", process_group=group)

Every rank of the group calls the same function with the same group (a collective). Steps:

1. Open. Each rank opens the file lazily (the header only: two small reads) and the ranks
   exchange a status: the file's size and a digest of its header, and the tensors the rank
   wants, or the error it hit. Any error, or ranks that see different files, make every rank
   raise before a tensor byte is read.
2. Plan. From the header and the wants every rank makes the same plan, with no message: the
   wanted bytes are laid out in file order and cut into one range per rank, of equal size.
   The cut is by bytes, not at tensor boundaries: an embedding table (5-20% of an LLM's bytes)
   or one huge tensor would otherwise leave its reader with several times the others' share,
   and the receivers place bytes by offset anyway, so a tensor cut between two ranks costs
   nothing. With verify_checksums the cuts move to tensor boundaries, since a checksum covers a
   whole tensor and its reader checks it. When ranks want different tensors, a tensor only one
   rank wants is read by that rank and sent nowhere; the others are cut as above.
3. Read. Each rank reads its range through TensorReader.read_range_into (ranged reads,
   `parallelism` at a time), then the ranks exchange a second status, so a rank whose read
   failed makes every rank raise instead of leaving them waiting for its bytes.
4. Exchange, with the group's own collectives: when every rank wants the same tensors, each
   rank broadcasts its range (one broadcast per rank, straight from and into the final
   buffer); otherwise point-to-point messages carry each piece only to the ranks that want it,
   so a rank asking for a subset receives only that subset. ferry opens no sockets of its own.

Both status exchanges wait at most `timeout` seconds (default: the group's own timeout) for
every rank, so a rank that never arrives (crashed, or not calling the load) makes the others
raise ferry.DeadlineError; a group that timed out is unusable afterwards, as torch's are.
The exchanges carry CPU tensors where the group's backend does (gloo) and CUDA tensors
otherwise (NCCL); the data travels on the target device when the backend carries it there.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any, Callable, Iterable, NamedTuple

from ferry import _core

# A tensor's offset in a rank's buffer keeps its file offset modulo this, so a file whose
# tensors are aligned gives aligned tensors, and tensors adjacent in the file stay adjacent
# (whole-file loads lay the buffer out exactly as the data buffer, read in one range per rank).
_ALIGN = 64


class _Tensor(NamedTuple):
    name: str
    dtype: str
    shape: tuple
    begin: int
    end: int


def _lay_out(tensors: list[_Tensor]) -> tuple[dict[str, int], int]:
    """name -> offset in a buffer holding `tensors` (file order), and the buffer's size."""
    layout: dict[str, int] = {}
    pos = 0
    for t in tensors:
        pos += (t.begin - pos) % _ALIGN
        layout[t.name] = pos
        pos += t.end - t.begin
    return layout, pos


def _cut(tensors: list[_Tensor], layout: dict[str, int], total: int, world: int,
         whole_tensors: bool) -> list[tuple[int, int]]:
    """One [lo, hi) of a layout per rank: equal byte shares, or, with `whole_tensors`, shares
    cut at the tensor start nearest to each equal cut (so a share is off by at most half a
    tensor on each side)."""
    cuts = [total * r // world for r in range(world + 1)]
    if whole_tensors:
        starts = sorted({layout[t.name] for t in tensors if t.end > t.begin} | {0, total})
        cuts = [min(starts, key=lambda s: (abs(s - c), s)) for c in cuts]
        for r in range(1, world + 1):  # nearest cuts never go backwards, but keep them sorted
            cuts[r] = max(cuts[r], cuts[r - 1])
        cuts[0], cuts[-1] = 0, total
    return [(cuts[r], cuts[r + 1]) for r in range(world)]


def _pieces(tensors: list[_Tensor], layout: dict[str, int], lo: int, hi: int) -> list[tuple]:
    """(tensor, layout offset, file offset, length) of each tensor's part in [lo, hi)."""
    out = []
    for t in tensors:
        start, n = layout[t.name], t.end - t.begin
        a, b = max(lo, start), min(hi, start + n)
        if a < b:
            out.append((t, a, t.begin + a - start, b - a))
    return out


def _coalesce(reads: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """(destination offset, file offset, length), neighbours in both merged into one read."""
    out: list[list[int]] = []
    for dst, src, n in reads:
        if out and out[-1][0] + out[-1][2] == dst and out[-1][1] + out[-1][2] == src:
            out[-1][2] += n
        else:
            out.append([dst, src, n])
    return [tuple(r) for r in out]


def _backend_devices(group: Any) -> set[str]:
    """The device types the group's backend carries: {"cpu"} for gloo, {"cuda"} for NCCL."""
    import torch.distributed as dist

    backend = str(dist.get_backend(group)).lower()
    types = set()
    for part in backend.split(","):  # "gloo", "nccl" or "cpu:gloo,cuda:nccl"
        name = part.split(":")[-1]
        if name in ("gloo", "mpi", "ucc"):
            types.add("cpu")
        if name in ("nccl", "ucc", "xccl", "hccl"):
            types.add("cuda")
    return types or {"cpu"}


class _Group:
    """The process group as this load uses it: ranks, devices, waits with a timeout."""

    def __init__(self, group: Any, uri: str, timeout: float | None) -> None:
        import torch
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise _core.InvalidArgumentError(
                f"{_core.redact_uris(uri)}: process_group given but torch.distributed is not "
                "initialised (call torch.distributed.init_process_group first)")
        self.group = group
        self.uri = _core.redact_uris(uri)
        self.rank = dist.get_rank(group)
        if self.rank < 0:
            raise _core.InvalidArgumentError(f"{self.uri}: this process is not a member of process_group")
        self.world = dist.get_world_size(group)
        self.devices = _backend_devices(group)
        self.status_device = (torch.device("cpu") if "cpu" in self.devices
                              else torch.device("cuda", torch.cuda.current_device()))
        if timeout is not None and not timeout > 0:
            raise _core.InvalidArgumentError(f"{self.uri}: timeout must be a positive number of seconds (got {timeout!r})")
        self.timeout = timeout

    def global_rank(self, rank: int) -> int:
        import torch.distributed as dist

        return dist.get_global_rank(self.group, rank)

    def wait(self, work: Any, what: str, bounded: bool = True) -> None:
        """Waits for `work`: at most `timeout` when `bounded` (the status exchanges), else as
        long as the group's own timeout allows (moving the bytes takes as long as it takes)."""
        try:
            if self.timeout is None or not bounded:
                work.wait()
            else:
                work.wait(datetime.timedelta(seconds=self.timeout))
        except RuntimeError as e:
            if "timed out" in str(e).lower() or "timeout" in str(e).lower():
                limit = self.timeout if bounded else None
                within = f"within {limit:g} s" if limit is not None else "within the group's timeout"
                raise _core.DeadlineError(
                    f"{self.uri}: {what}: not every rank of the process group answered {within} "
                    "(a rank that crashed, hangs, or did not make the same call); the group is "
                    "unusable after this") from e
            raise _core.IoError(f"{self.uri}: {what}: the process group failed: {e}") from e

    def all_gather_bytes(self, payload: bytes, what: str) -> list[bytes]:
        """Every rank's `payload`, by rank."""
        import torch
        import torch.distributed as dist

        device = self.status_device
        size = torch.tensor([len(payload)], dtype=torch.int64, device=device)
        sizes = [torch.zeros_like(size) for _ in range(self.world)]
        self.wait(dist.all_gather(sizes, size, group=self.group, async_op=True), what)
        lengths = [int(s.item()) for s in sizes]
        longest = max(lengths)
        mine = torch.zeros(longest, dtype=torch.uint8)
        if payload:
            mine[: len(payload)] = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
        mine = mine.to(device)
        gathered = [torch.empty(longest, dtype=torch.uint8, device=device) for _ in range(self.world)]
        self.wait(dist.all_gather(gathered, mine, group=self.group, async_op=True), what)
        return [bytes(g[:n].cpu().numpy().tobytes()) for g, n in zip(gathered, lengths)]

    def agree(self, status: dict, error: BaseException | None, what: str) -> list[dict]:
        """Exchanges each rank's status; raises on every rank if any rank failed (this rank's
        own error as it was; another's as the same ferry class, naming that rank)."""
        answers = [json.loads(a) for a in self.all_gather_bytes(json.dumps(status).encode(), what)]
        if error is not None:
            raise error
        for r, answer in enumerate(answers):
            if not answer["ok"]:
                cls = getattr(_core, answer["type"], None)
                if not (isinstance(cls, type) and issubclass(cls, _core.Error)):
                    cls = _core.Error
                raise cls(f"{self.uri}: rank {r} of {self.world} in the process group failed {what}, "
                          f"so every rank stops: {answer['message']}")
        return answers


def _failure(e: BaseException) -> dict:
    return {"ok": False, "type": type(e).__name__, "message": _core.redact_uris(str(e))}


def _identity(reader: Any, tensors: list[_Tensor]) -> tuple[int, str]:
    """(file size, SHA-256 of the header's content): what ranks must agree on."""
    content = json.dumps([reader.data_offset, reader.data_size,
                          [list(t[:3]) + [t.begin, t.end] for t in tensors],
                          sorted(reader.metadata().items()), sorted(reader.checksums().items())])
    return reader.data_offset + reader.data_size, hashlib.sha256(content.encode()).hexdigest()


class GroupLoad:
    """The tensors one rank asked for, after a group load: one buffer (on the target device)
    that the tensors view. The reader interface of ferry._tensors (offset_keys, info, get, ...)."""

    mode = "eager"

    def __init__(self, uri: str, tensors: list[_Tensor], wanted: list[str], layout: dict[str, int],
                 buffer: Any, metadata: dict, checksums: dict, rank: int) -> None:
        self.uri = uri
        self._tensors = {t.name: t for t in tensors}
        self._wanted = wanted
        self._layout = layout
        self._buffer = buffer
        self._metadata = metadata
        self._checksums = checksums
        self._rank = rank

    def offset_keys(self) -> list[str]:
        """The tensors this rank asked for (and holds), in file order."""
        return list(self._wanted)

    def metadata(self) -> dict[str, str]:
        return dict(self._metadata)

    def checksums(self) -> dict[str, str]:
        return dict(self._checksums)

    def info(self, name: str) -> tuple:
        """As a reader's info(); NotFoundError for a tensor of the file this rank did not load."""
        t = self._tensors.get(name)
        if t is None:
            raise _core.NotFoundError(f"{_core.redact_uris(self.uri)}: no tensor named '{name}'")
        if name not in self._layout:
            raise _core.NotFoundError(
                f"{_core.redact_uris(self.uri)}: tensor '{name}' was not loaded on rank {self._rank}: "
                "it is not among the names this rank asked the group load for")
        return t.dtype, t.shape, t.begin, t.end

    def _bytes(self, name: str) -> Any:
        self.info(name)
        if self._buffer is None:
            raise _core.InvalidArgumentError(f"{_core.redact_uris(self.uri)}: the file was closed")
        t = self._tensors[name]
        offset = self._layout[name]
        return self._buffer[offset: offset + t.end - t.begin]

    def get(self, name: str) -> Any:
        view = self._bytes(name)
        return view.numpy() if view.device.type == "cpu" else view

    def read_into(self, name: str, out: Any) -> None:
        view = self._bytes(name)
        target = memoryview(out).cast("B")
        if target.nbytes != view.numel():
            raise _core.InvalidArgumentError(
                f"{_core.redact_uris(self.uri)}: tensor '{name}' has {view.numel()} bytes; "
                f"the destination has {target.nbytes}")
        target[:] = memoryview(view.cpu().numpy())

    def read_slice(self, name: str, dims: list) -> Any:
        """The slice's bytes, a copy cut from the tensor already loaded."""
        import torch

        from ferry.torch import _torch_tensor

        self.info(name)
        t = self._tensors[name]
        whole = _torch_tensor(self._bytes(name), t.dtype, t.shape, name, self.uri)
        part = whole[tuple(slice(start, start + count * step, step) for start, count, step in dims)]
        flat = part.clone(memory_format=torch.contiguous_format).reshape(-1).view(torch.uint8)
        return flat.numpy() if flat.device.type == "cpu" else flat

    def close(self) -> None:
        self._buffer = None  # tensors handed out keep their memory


def _read_ranges(reader: Any, reads: list[tuple[int, int, int]], buffer: Any, staging_size: int) -> None:
    """Fills `buffer` (host or device) with the (buffer offset, data offset, length) reads."""
    import torch

    if buffer.device.type == "cpu":
        for dst, src, n in reads:
            reader.read_range_into(src, buffer[dst: dst + n].numpy())
        return
    staging = None  # device buffers fill through one page-locked chunk at a time
    for dst, src, n in reads:
        done = 0
        while done < n:
            step = min(n - done, staging_size)
            if staging is None:
                staging = torch.empty(min(staging_size, max(n for _, _, n in reads)), dtype=torch.uint8,
                                      pin_memory=torch.cuda.is_available())
            reader.read_range_into(src + done, staging[:step].numpy())
            buffer[dst + done: dst + done + step].copy_(staging[:step])
            done += step


def group_load(
    uri: str,
    process_group: Any,
    *,
    select: Callable[[Any], Iterable[str] | None] | None = None,
    device: str = "cpu",
    timeout: float | None = None,
    parallelism: int | None = None,
    part_size: int = 8 << 20,
    staging_buffer_size: int = 64 << 20,
    verify_checksums: bool = False,
    **unused: Any,
) -> GroupLoad:
    """Loads the tensors this rank wants from `uri` with each byte read once across the group
    (see the module docstring). `select(reader)` returns the names this rank wants (None: all)
    and may raise to refuse the file (e.g. a module that does not match); its error, like any
    other on any rank, makes every rank raise. A collective: every rank must call it."""
    import torch
    import torch.distributed as dist

    g = _Group(process_group, uri, timeout)
    where = g.uri

    # 1. Open, and agree on the file and on who wants what.
    reader = None
    try:
        error: BaseException | None = None
        try:
            reader = _core.TensorReader(uri, "lazy", parallelism=parallelism or 0, part_size=part_size,
                                        verify_checksums=verify_checksums)
            tensors = [_Tensor(n, *reader.info(n)) for n in reader.offset_keys()]
            size, digest = _identity(reader, tensors)
            metadata, checksums = reader.metadata(), reader.checksums()
            chosen = select(reader) if select is not None else None
            if chosen is not None:
                from ferry._tensors import select_names

                chosen = select_names(reader, chosen)
            status = {"ok": True, "size": size, "digest": digest,
                      "names": None if chosen is None else sorted(chosen)}
        except Exception as e:  # noqa: BLE001 - any error must reach the other ranks
            error, status = e, _failure(e)
        answers = g.agree(status, error, "while opening its file")
        identities = {(a["size"], a["digest"]) for a in answers}
        if len(identities) > 1:
            seen = "; ".join(f"rank {r}: {a['size']} bytes, header sha256 {a['digest'][:16]}"
                             for r, a in enumerate(answers))
            raise _core.InvalidArgumentError(
                f"{where}: the ranks of the process group do not see the same file ({seen}); "
                "every rank must load the same file (ferry compares its size and header, so "
                "ranks may read different copies of it)")

        # 2. Plan: the same on every rank, from what every rank now knows.
        all_names = [t.name for t in tensors]
        wants = [set(all_names) if a["names"] is None else set(a["names"]) for a in answers]
        mine = [t for t in tensors if t.name in wants[g.rank]]
        layout, size = _lay_out(mine)
        uniform = all(w == wants[0] for w in wants)
        exchange_on = torch.device(device) if torch.device(device).type in g.devices else torch.device("cpu")

        # 3. Read this rank's part, then agree that every rank could.
        error = None
        try:
            buffer = torch.empty(size, dtype=torch.uint8, device=exchange_on)
            if uniform:
                ranges = _cut(mine, layout, size, g.world, verify_checksums)
                lo, hi = ranges[g.rank]
                reads = _coalesce((at, src, n) for _, at, src, n in _pieces(mine, layout, lo, hi))
                _read_ranges(reader, reads, buffer, staging_buffer_size)
            else:
                wanters = {t.name: [r for r in range(g.world) if t.name in wants[r]] for t in tensors}
                own = [t for t in mine if wanters[t.name] == [g.rank]]
                _read_ranges(reader, _coalesce((layout[t.name], t.begin, t.end - t.begin) for t in own),
                             buffer, staging_buffer_size)
                shared = [t for t in tensors if len(wanters[t.name]) > 1]
                shared_layout, shared_size = _lay_out(shared)
                ranges = _cut(shared, shared_layout, shared_size, g.world, verify_checksums)
                lo, hi = ranges[g.rank]
                scratch = torch.empty(hi - lo, dtype=torch.uint8, device=exchange_on)
                pieces = _pieces(shared, shared_layout, lo, hi)
                _read_ranges(reader, _coalesce((at - lo, src, n) for _, at, src, n in pieces),
                             scratch, staging_buffer_size)
                for t, at, _, n in pieces:
                    if t.name in layout:
                        start = layout[t.name] + at - shared_layout[t.name]
                        buffer[start: start + n].copy_(scratch[at - lo: at - lo + n])
            status = {"ok": True}
        except Exception as e:  # noqa: BLE001 - any error must reach the other ranks
            error, status = e, _failure(e)
        g.agree(status, error, "while reading its part of the file")
    finally:
        if reader is not None:
            reader.close()

    # 4. Exchange.
    if g.world > 1:
        if uniform:
            works = []
            for src, (lo, hi) in enumerate(ranges):
                if hi > lo:
                    works.append(dist.broadcast(buffer[lo:hi], src=g.global_rank(src), group=g.group,
                                                async_op=True))
            for work in works:
                g.wait(work, "while exchanging the file's bytes", bounded=False)
        else:
            layouts: dict[int, dict[str, int]] = {g.rank: layout}

            def layout_of(r: int) -> dict[str, int]:
                if r not in layouts:
                    layouts[r] = _lay_out([t for t in tensors if t.name in wants[r]])[0]
                return layouts[r]

            _send_and_receive(g, _messages(shared, shared_layout, ranges, wanters, layout_of), scratch, buffer)
    if buffer.device != torch.device(device):
        buffer = buffer.to(device)
    return GroupLoad(uri, tensors, [t.name for t in mine], layout, buffer, metadata, checksums, g.rank)


def _messages(shared: list[_Tensor], shared_layout: dict[str, int], ranges: list[tuple[int, int]],
              wanters: dict[str, list[int]], layout_of: Callable[[int], dict[str, int]]) -> list[list[int]]:
    """[src, dst, offset in src's part, offset in dst's buffer, length] of every message, the
    same list on every rank: each piece goes from its reader to each other rank that wants it,
    neighbouring pieces between the same two ranks in one message."""
    messages: list[list[int]] = []
    last: dict[tuple[int, int], list[int]] = {}
    for src, (lo, hi) in enumerate(ranges):
        for t, at, _, n in _pieces(shared, shared_layout, lo, hi):
            for dst in wanters[t.name]:
                if dst == src:
                    continue
                src_offset = at - lo
                dst_offset = layout_of(dst)[t.name] + at - shared_layout[t.name]
                m = last.get((src, dst))
                if m is not None and m[2] + m[4] == src_offset and m[3] + m[4] == dst_offset:
                    m[4] += n
                    continue
                m = [src, dst, src_offset, dst_offset, n]
                messages.append(m)
                last[(src, dst)] = m
    return messages


def _send_and_receive(g: _Group, messages: list[list[int]], part: Any, buffer: Any) -> None:
    """This rank's side of `messages`: sends from `part` (its range), receives into `buffer`.
    NCCL gets them as one batch (it needs point-to-point calls grouped, or two ranks sending to
    each other first deadlock); gloo sends asynchronously, so plain isend/irecv do, each
    message told apart by its index as the tag."""
    import torch.distributed as dist

    ops = []
    for tag, (src, dst, src_offset, dst_offset, n) in enumerate(messages):
        if src == g.rank:
            ops.append((dist.isend, part[src_offset: src_offset + n], g.global_rank(dst), tag))
        elif dst == g.rank:
            ops.append((dist.irecv, buffer[dst_offset: dst_offset + n], g.global_rank(src), tag))
    if not ops:
        return
    if buffer.device.type == "cuda":
        works = dist.batch_isend_irecv([dist.P2POp(op, t, peer, g.group, tag) for op, t, peer, tag in ops])
    else:
        works = [op(t, peer, group=g.group, tag=tag) for op, t, peer, tag in ops]
    for work in works:
        g.wait(work, "while exchanging the file's bytes", bounded=False)


class _GroupShards:
    """A sharded checkpoint after a group load: one GroupLoad per shard, seen as one reader."""

    mode = "eager"

    def __init__(self, uri: str, weight_map: dict[str, str], metadata: dict, loads: dict[str, GroupLoad]) -> None:
        self.uri = uri
        self._weight_map = weight_map
        self._metadata = metadata
        self._loads = loads

    def _load_of(self, name: str) -> GroupLoad:
        file = self._weight_map.get(name)
        if file is None:
            raise _core.NotFoundError(f"{_core.redact_uris(self.uri)}: no tensor named '{name}'")
        return self._loads[file]

    def offset_keys(self) -> list[str]:
        return [k for load in self._loads.values() for k in load.offset_keys()]

    def metadata(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._metadata.items()}

    def checksums(self) -> dict[str, str]:
        return {k: v for load in self._loads.values() for k, v in load.checksums().items()}

    def info(self, name: str) -> tuple:
        return self._load_of(name).info(name)

    def get(self, name: str) -> Any:
        return self._load_of(name).get(name)

    def read_into(self, name: str, out: Any) -> None:
        self._load_of(name).read_into(name, out)

    def read_slice(self, name: str, dims: list) -> Any:
        return self._load_of(name).read_slice(name, dims)

    def close(self) -> None:
        for load in self._loads.values():
            load.close()


def _reader_options(options: dict) -> dict:
    return {k: options[k] for k in ("part_size", "verify_checksums") if k in options} | {
        "parallelism": options.get("parallelism") or 0}


def group_load_sharded(
    index_uri: str,
    process_group: Any,
    *,
    select: Callable[[Any], Iterable[str] | None] | None = None,
    timeout: float | None = None,
    **options: Any,
) -> _GroupShards:
    """A `*.index.json` checkpoint loaded shard by shard with group_load. The ranks first agree
    on the index (its weight_map's digest) and on every rank's names, so every rank takes part
    in the same shard loads in the same order; a shard no rank wants is not opened."""
    from ferry._tensors import _ShardedReader, select_names

    g = _Group(process_group, index_uri, timeout)
    error: BaseException | None = None
    try:
        # Shards open lazily (headers only) if `select` asks about their tensors.
        index = _ShardedReader(index_uri, "lazy", lambda u: _core.TensorReader(u, "lazy", **_reader_options(options)))
        weight_map = index._weight_map
        digest = hashlib.sha256(json.dumps(sorted(weight_map.items())).encode()).hexdigest()
        chosen = select(index) if select is not None else None
        names = None if chosen is None else select_names(index, chosen)
        index.close()
        status = {"ok": True, "digest": digest, "names": names}
    except Exception as e:  # noqa: BLE001 - any error must reach the other ranks
        error, status = e, _failure(e)
    answers = g.agree(status, error, "while reading the checkpoint index")
    if len({a["digest"] for a in answers}) > 1:
        seen = "; ".join(f"rank {r}: weight_map sha256 {a['digest'][:16]}" for r, a in enumerate(answers))
        raise _core.InvalidArgumentError(
            f"{g.uri}: the ranks of the process group do not see the same checkpoint index ({seen}); "
            "every rank must load the same checkpoint")
    wanted_anywhere = set(weight_map) if any(a["names"] is None for a in answers) else {
        n for a in answers for n in a["names"]}
    mine = set(weight_map) if names is None else set(names)
    loads: dict[str, GroupLoad] = {}
    try:
        for file in dict.fromkeys(weight_map.values()):
            if not any(weight_map[n] == file for n in wanted_anywhere):
                continue
            in_shard = [n for n in weight_map if weight_map[n] == file and n in mine]
            loads[file] = group_load(_core.resolve_reference(index_uri, file), process_group,
                                     select=lambda reader, in_shard=in_shard: in_shard, timeout=timeout, **options)
    except BaseException:
        for load in loads.values():
            load.close()
        raise
    return _GroupShards(index_uri, weight_map, index._index_metadata, loads)
