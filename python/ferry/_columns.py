"""ByteColumn: one field of a batch (``ShardDataset(batched=True)``) as one buffer plus offsets.

A DataLoader worker hands each batch to the training process by pickling it through a pipe. A
list of 64 bytes objects of 100 KiB is copied through that pipe byte by byte; one uint8 torch
tensor in shared memory is passed as a handle (bench/RESULTS.md, 2026-12-02 (late): 11.9k against
14.3k samples/s through 2 workers). So a batch's bytes field is one contiguous buffer that C++
fills directly (``_core.SampleLoader.next_batch``), read as a sequence of bytes: in shared memory
when a worker's column is big enough to gain by it (SHARED_MIN_BYTES), else one bytes object.
"""

from __future__ import annotations

import operator
import sys

import numpy as np

# Below this a field's buffer travels through the pipe. A new shared-memory segment costs a file,
# a descriptor passed over a socket, a mapping on each side and a page fault per 4 KiB page, which
# on the 2-core development VM outweigh the pipe's copies below a few MB: through 2 workers
# (bench/loader_transport.py --size) the pipe was 3x faster at 544 KiB per batch and 1.2-2x at
# 4 MiB; at 6.4 MB each won 3 of 6 runs under another session's load (bench/RESULTS.md,
# 2026-12-02 (night)). Those costs are per new segment: refilling one went 4.8x faster.
SHARED_MIN_BYTES = 5 * 2**20


def allocate(size: int, shared: bool):
    """The buffer C++ fills with a column's `size` bytes (``_core.SampleLoader.next_batch``): in
    shared memory when `shared` and the buffer is big enough to gain by it, else None, for a
    bytes object that C++ makes."""
    return shared_buffer(size) if shared and size >= SHARED_MIN_BYTES else None


def shared_buffer(size: int):
    """A uint8 torch tensor of `size` bytes in a new shared-memory segment, to be filled in place,
    which DataLoader's pickler passes to the training process as a handle.

    Made empty and filled in place because letting torch's reducer move a filled plain tensor
    there at pickling time copies every byte once more, and so does
    ``torch.empty(size).share_memory_()``, which faults in private memory and copies it into the
    new segment; ``UntypedStorage._new_shared`` (the call torch.multiprocessing makes itself)
    does neither. Through 2 workers that was 7.9-8.9k samples/s of 6.4 MB batches, against
    6.6-8.3k and 4.5-6.6k (bench/loader_transport.py; bench/RESULTS.md, 2026-12-02 (night))."""
    import torch

    return torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(size))


def _uint8_array(buffer) -> np.ndarray:
    """A numpy view (no copy) of a torch tensor, numpy array or buffer-protocol object."""
    if not isinstance(buffer, np.ndarray):
        # A torch tensor (torch is optional: recognized by what it has, not imported).
        buffer = buffer.numpy() if hasattr(buffer, "is_shared") else np.frombuffer(buffer, dtype=np.uint8)
    if buffer.dtype != np.uint8 or buffer.ndim != 1 or not buffer.flags.c_contiguous:
        raise ValueError(f"ByteColumn: the buffer must be a contiguous 1-D uint8 array, got {buffer.dtype} "
                         f"of shape {buffer.shape}")
    return buffer


class ByteColumn:
    """The values of one bytes field of a batch: ``len(col)`` samples, ``col[i]`` the bytes of
    sample i, or None where that sample lacks the field; value i is ``data[offsets[i]:offsets[i+1]]``.

    It reads like the list of bytes webdataset's ``batched()`` gives: indexing (negative too),
    slices (a list), iteration, ``list(col)``, ``col.tolist()``, ``col == [b"...", ...]``. It is not
    a ``list`` (nor registered as a ``collections.abc.Sequence``: DataLoader's ``default_convert``
    would rebuild it element by element), so code that checks ``isinstance(x, list)`` needs
    ``col.tolist()``.

    Without copying: ``data`` (numpy uint8), ``offsets`` (numpy int64, ``len(col) + 1``),
    ``view(i)`` (a memoryview), and ``buffer``, the object that owns the bytes: for a column of
    SHARED_MIN_BYTES or more made inside a DataLoader worker a torch uint8 tensor in shared memory
    (``buffer.is_shared()``), so it reaches the training process as a handle, else a bytes object
    (so ``data`` is read-only). It pickles; plain ``pickle`` copies the bytes.
    """

    __slots__ = ("_buffer", "_data", "_view", "_offsets", "_bounds", "_missing")
    __hash__ = None  # mutable buffer, compares by value

    def __init__(self, buffer, offsets, missing=()) -> None:
        """`buffer`: the bytes of every value, back to back (a uint8 torch tensor or numpy array, or
        anything with the buffer protocol); `offsets`: where each value starts, then the end
        (non-decreasing, from 0 to the buffer's length); `missing`: the indices of the values that
        are None (each of length 0)."""
        data = _uint8_array(buffer)
        bounds = np.asarray(offsets)
        if bounds.ndim != 1 or len(bounds) < 1 or not np.issubdtype(bounds.dtype, np.integer):
            raise ValueError(f"ByteColumn: offsets must be a 1-D integer array of len(values) + 1, got "
                             f"{bounds.dtype} of shape {bounds.shape}")
        bounds = bounds.astype(np.int64, copy=False)
        if bounds[0] != 0 or bounds[-1] != len(data):
            raise ValueError(f"ByteColumn: offsets must run from 0 to the buffer's {len(data)} bytes, got "
                             f"{bounds[0]}..{bounds[-1]}")
        if (np.diff(bounds) < 0).any():
            raise ValueError(f"ByteColumn: offsets must not decrease, got one at index "
                             f"{int(np.argmax(np.diff(bounds) < 0)) + 1}")
        n = len(bounds) - 1
        absent = frozenset(operator.index(i) for i in missing)
        for i in absent:
            if not 0 <= i < n:
                raise ValueError(f"ByteColumn: missing index {i} is not in [0, {n})")
            if bounds[i] != bounds[i + 1]:
                raise ValueError(f"ByteColumn: value {i} is missing but has {bounds[i + 1] - bounds[i]} bytes")
        self._buffer, self._data, self._view = buffer, data, memoryview(data)
        self._offsets, self._bounds, self._missing = bounds, bounds.tolist(), absent

    @property
    def buffer(self):
        """The object that owns the bytes: a torch tensor (in shared memory, for a big column made
        inside a DataLoader worker), else bytes (or the numpy array a ByteColumn was made with)."""
        return self._buffer

    @property
    def data(self) -> np.ndarray:
        """Every value's bytes back to back, as a uint8 numpy array (no copy)."""
        return self._data

    @property
    def offsets(self) -> np.ndarray:
        """int64, ``len(self) + 1``: value i is ``data[offsets[i]:offsets[i + 1]]``."""
        return self._offsets

    @property
    def missing(self) -> tuple[int, ...]:
        """The indices of the samples that lack this field (their value is None), in order."""
        return tuple(sorted(self._missing))

    @property
    def nbytes(self) -> int:
        return len(self._data)

    def __len__(self) -> int:
        return len(self._bounds) - 1

    def _index(self, i) -> int:
        n = len(self._bounds) - 1
        j = operator.index(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"ByteColumn index {i} out of range for {n} values")
        return j

    def view(self, i) -> memoryview | None:
        """Value i without a copy (None where sample i lacks the field)."""
        j = self._index(i)
        return None if j in self._missing else self._view[self._bounds[j]:self._bounds[j + 1]]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        j = self._index(i)
        return None if j in self._missing else bytes(self._view[self._bounds[j]:self._bounds[j + 1]])

    def __iter__(self):
        view, bounds, missing = self._view, self._bounds, self._missing
        for j in range(len(bounds) - 1):
            yield None if j in missing else bytes(view[bounds[j]:bounds[j + 1]])

    def tolist(self) -> list[bytes | None]:
        return list(self)

    def __eq__(self, other):
        if isinstance(other, ByteColumn):
            other = other.tolist()
        elif not isinstance(other, (list, tuple)):
            return NotImplemented
        return len(other) == len(self) and all(a == b for a, b in zip(self, other))

    def __reduce__(self):
        # A torch tensor as it is: DataLoader's pickler passes one in shared memory as a handle.
        # Anything else as bytes, which pickle and unpickle with one copy each (a numpy array's
        # reduction copies its bytes once more on each side).
        buffer = self._buffer if hasattr(self._buffer, "is_shared") or isinstance(self._buffer, bytes) \
            else self._data.tobytes()
        return ByteColumn, (buffer, self._offsets, tuple(sorted(self._missing)))

    def __repr__(self) -> str:
        shown = ", ".join("None" if v is None else repr(v[:16]) + (f"...({len(v)} bytes)" if len(v) > 16 else "")
                          for v in self[:3])
        where = ", shared memory" if hasattr(self._buffer, "is_shared") and self._buffer.is_shared() else ""
        return (f"ByteColumn({len(self)} values, {self.nbytes} bytes, {len(self._missing)} missing{where}: "
                f"[{shown}{', ...' if len(self) > 3 else ''}])")


def refuse_collation() -> None:
    """Makes torch's default_collate refuse ByteColumns with a message that says what to pass.

    A DataLoader ``batch_size`` on top of ``ShardDataset(batched=True)`` would batch batches, and
    default_collate's own error ("found <class ByteColumn>") does not say why. Registered through
    default_collate's table of types, the way torch lets a type choose its collation; only once
    torch is already imported (a DataLoader is in use), so ferry.data does not import torch."""
    if "torch" not in sys.modules:
        return
    try:
        from torch.utils.data._utils.collate import default_collate_fn_map
    except ImportError:  # a torch without the table: its own error stands
        return
    default_collate_fn_map.setdefault(ByteColumn, _refuse_to_collate)


def _refuse_to_collate(batch, *, collate_fn_map=None):
    raise TypeError("ShardDataset(batched=True) yields whole batches (bytes fields as ByteColumn), "
                    "and a DataLoader batch_size would batch those batches: pass "
                    "DataLoader(dataset, batch_size=None), or batched=False for the DataLoader to "
                    "batch samples")
