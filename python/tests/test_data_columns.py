"""ShardDataset(batched=True)'s bytes fields as ferry.data.ByteColumn: one buffer plus offsets
per field, read as a list of bytes, moved out of DataLoader workers through shared memory.
Every batched read is compared with an uninterrupted per-sample read of the same epoch."""

import pickle

import numpy as np
import pytest

import ferry
import ferry.data
from ferry import _columns
from ferry.data import ByteColumn
from test_data import make_tar

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

SIZES = [7, 5, 9]  # samples per shard
BATCH = 4
BIG = _columns.SHARED_MIN_BYTES + 1000  # one value that makes its column shared


def bin_size(i, j):
    """Sizes of every kind: empty members, tiny ones, and big ones (a batch of them goes through
    shared memory)."""
    return (0, 1, BIG + i * 100 + j, 37)[(i + j) % 4]


def write_mixed_shards(folder):
    """Shards of samples with a txt and a cls each and a bin most of them have (every fifth lacks
    it: None in its batch's column)."""
    for i, n in enumerate(SIZES):
        members = []
        for j in range(n):
            key = f"s{i}/{j:04d}"
            members += [(f"{key}.txt", f"text {i} {j}".encode()), (f"{key}.cls", b"%d" % (j % 3))]
            if (i * 10 + j) % 5 != 4:
                members.append((f"{key}.bin", np.random.default_rng(i * 100 + j).bytes(bin_size(i, j))))
        make_tar(folder / f"mixed-{i}.tar", members)
    return str(folder / "mixed-{0..2}.tar")


def dataset(pattern, **options):
    return ferry.data.ShardDataset(pattern, rank=0, world_size=1, seed=3, shuffle_buffer=5,
                                   batch_size=BATCH, **options)


def unbatched(batches):
    """The samples of columnar batches as per-sample dicts (a None value: the sample lacks it)."""
    out = []
    for batch in batches:
        for i in range(len(batch["__key__"])):
            out.append({field: column[i] for field, column in batch.items() if column[i] is not None})
    return out


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("decode", [False, True])
def test_columns_hold_what_a_per_sample_read_gives(tmp_path, workers, decode):
    pattern = write_mixed_shards(tmp_path)
    want = list(dataset(pattern, decode=decode))  # uninterrupted, in process
    batches = list(DataLoader(dataset(pattern, batched=True, decode=decode), batch_size=None,
                              num_workers=workers))
    assert [len(b["__key__"]) for b in batches] == [BATCH] * (len(want) // BATCH)
    got = unbatched(batches)
    if workers:  # each worker's batches hold its part of the plan; the loader interleaves them
        got.sort(key=lambda s: s["__key__"])
        want.sort(key=lambda s: s["__key__"])
    assert got == want
    for batch in batches:
        assert isinstance(batch["__key__"], list) and isinstance(batch["__url__"], list)
        assert isinstance(batch["bin"], ByteColumn)
        for field in ("txt", "cls"):  # decoded fields are lists of their objects
            assert isinstance(batch[field], list if decode else ByteColumn), field
    assert any(None in b["bin"] for b in batches) and any(b"" in b["bin"] for b in batches)
    if workers:  # batches with a big value came through shared memory, the others the pipe
        kinds = {type(b["bin"].buffer) for b in batches}
        assert kinds == {torch.Tensor, bytes}, kinds


def test_a_transform_gets_the_columns(tmp_path):
    pattern = write_mixed_shards(tmp_path)
    want = {s["__key__"]: len(s.get("bin", b"")) for s in dataset(pattern)}

    def sizes(batch):
        return dict(batch, sizes=[-1 if v is None else len(v) for v in batch["bin"]],
                    column=type(batch["bin"]).__name__)

    got = {}
    for batch in DataLoader(dataset(pattern, batched=True, transform=sizes), batch_size=None, num_workers=2):
        assert batch["column"] == "ByteColumn"
        for key, size, value in zip(batch["__key__"], batch["sizes"], batch["bin"]):
            assert size == (-1 if value is None else len(value))
            got[key] = max(size, 0)
    assert got == want


def test_worker_batches_arrive_in_shared_memory(tmp_path):
    """Inside a loader worker the buffer is shared memory already when C++ fills it (seen by the
    transform, which runs there), not moved there by torch's pickler afterwards, and arrives as a
    shared tensor; a column too small to gain by it (cls) stays plain memory."""
    size = _columns.SHARED_MIN_BYTES // BATCH + 1  # a batch's bin just big enough to be shared
    make_tar(tmp_path / "big-0.tar", [m for j in range(12) for m in
                                      ((f"b/{j:03d}.bin", bytes([j]) * size), (f"b/{j:03d}.cls", b"%d" % j))])

    def where(batch):
        return dict(batch, filled_in_shared_memory=batch["bin"].buffer.is_shared())

    ds = dataset(str(tmp_path / "big-0.tar"), batched=True, transform=where)
    batches = list(DataLoader(ds, batch_size=None, num_workers=2))
    assert len(batches) == 3
    for batch in batches:
        assert batch["filled_in_shared_memory"] is True
        assert isinstance(batch["bin"].buffer, torch.Tensor) and batch["bin"].buffer.is_shared()
        assert isinstance(batch["cls"].buffer, bytes)  # pickled through the pipe
        assert [len(v) for v in batch["bin"]] == [size] * BATCH
        assert "shared memory" in repr(batch["bin"])
    # In process there is no other process to share with: plain memory, a bytes object.
    (first, *_) = dataset(str(tmp_path / "big-0.tar"), batched=True)
    assert isinstance(first["bin"].buffer, bytes) and not first["bin"].data.flags.writeable


def test_column_reads_as_a_sequence_of_bytes():
    values = [b"ab", None, b"", b"cdefg", b"\x00" * 100_000]
    col = column_of(values)
    assert len(col) == 5 and list(col) == values and col.tolist() == values
    assert col == values and col == tuple(values) and col != values[:-1] and col != [b"x"] * 5
    assert col[0] == b"ab" and col[1] is None and col[2] == b"" and col[-1] == values[-1] and col[-5] == b"ab"
    assert col[1:4] == values[1:4] and col[::-2] == values[::-2] and col[7:] == []
    for i in (5, -6, 100):
        with pytest.raises(IndexError, match=f"ByteColumn index {i} out of range for 5 values"):
            col[i]
    with pytest.raises(TypeError):
        col["0"]
    assert None in col and b"cdefg" in col and b"zz" not in col
    assert col.missing == (1,) and col.nbytes == 100_007 and col.offsets.tolist() == [0, 2, 2, 2, 7, 100_007]
    view = col.view(3)
    assert isinstance(view, memoryview) and bytes(view) == b"cdefg" and col.view(1) is None
    assert np.shares_memory(np.asarray(view), col.data)  # no copy
    assert repr(col) == "ByteColumn(5 values, 100007 bytes, 1 missing: [b'ab', None, b'', ...])"
    big = repr(column_of([b"\x01" * 100_000]))
    assert len(big) < 150 and "...(100000 bytes)" in big
    assert ByteColumn(b"", [0]) == [] and list(ByteColumn(bytearray(b"xy"), [0, 1, 2])) == [b"x", b"y"]


def column_of(values):
    joined = b"".join(v for v in values if v is not None)
    offsets = np.cumsum([0] + [0 if v is None else len(v) for v in values])
    return ByteColumn(np.frombuffer(joined, dtype=np.uint8).copy(), offsets,
                      [i for i, v in enumerate(values) if v is None])


def test_column_pickles(tmp_path):
    values = [b"one", None, b"", b"three" * 1000]
    for col in (column_of(values),
                ByteColumn(torch.frombuffer(bytearray(b"onethree"), dtype=torch.uint8).share_memory_(), [0, 3, 8])):
        back = pickle.loads(pickle.dumps(col))
        assert isinstance(back, ByteColumn) and back == col and back.missing == col.missing
        assert type(back.buffer) is (bytes if isinstance(col.buffer, (np.ndarray, bytes)) else torch.Tensor)
    pattern = write_mixed_shards(tmp_path)
    for batch in dataset(pattern, batched=True):
        assert pickle.loads(pickle.dumps(batch)) == batch


def test_bad_columns_are_clear_errors():
    with pytest.raises(ValueError, match=r"offsets must run from 0 to the buffer's 3 bytes, got 0\.\.2"):
        ByteColumn(b"abc", [0, 2])
    with pytest.raises(ValueError, match="offsets must not decrease, got one at index 2"):
        ByteColumn(b"abc", [0, 2, 1, 3])
    with pytest.raises(ValueError, match="offsets must be a 1-D integer array"):
        ByteColumn(b"abc", [0.0, 3.0])
    with pytest.raises(ValueError, match="value 0 is missing but has 3 bytes"):
        ByteColumn(b"abc", [0, 3], missing=[0])
    with pytest.raises(ValueError, match=r"missing index 4 is not in \[0, 1\)"):
        ByteColumn(b"abc", [0, 3], missing=[4])
    with pytest.raises(ValueError, match="contiguous 1-D uint8 array, got int32"):
        ByteColumn(np.zeros(3, dtype=np.int32), [0, 3])


@pytest.mark.parametrize("allocator, error, message", [
    (lambda size, shared: np.empty(size + 1, dtype=np.uint8), ferry.InvalidArgumentError,
     r"allocate\('bin', \d+\) returned a buffer of \d+ bytes"),
    (lambda size, shared: bytes(size), TypeError,
     r"allocate\('bin', \d+\) returned a bytes, not a writable contiguous 1-D uint8 CPU array"),
    (lambda size, shared: np.empty(size, dtype=np.int16), TypeError, "not a writable contiguous 1-D uint8"),
    (lambda size, shared: np.empty(2 * size, dtype=np.uint8)[::2], TypeError, "not a writable contiguous"),
])
def test_a_bad_buffer_from_the_allocator_is_a_clear_error(tmp_path, monkeypatch, allocator, error, message):
    make_tar(tmp_path / "d.tar", [("a.bin", b"12345"), ("b.bin", b"678")])
    monkeypatch.setattr(_columns, "allocate", allocator)
    with pytest.raises(error, match=message):
        list(dataset(str(tmp_path / "d.tar"), batched=True))


def test_empty_members_are_empty_values_not_none(tmp_path):
    make_tar(tmp_path / "e.tar", [("a.bin", b""), ("b.bin", b""), ("b.txt", b"x"), ("c.txt", b"")])
    (batch,) = ferry.data.ShardDataset(str(tmp_path / "e.tar"), shuffle=False, shuffle_buffer=0, batch_size=3,
                                       batched=True)
    assert batch["__key__"] == ["a", "b", "c"]
    assert batch["bin"] == [b"", b"", None] and batch["bin"].nbytes == 0
    assert batch["txt"] == [None, b"x", b""]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_loader_batch_size_on_batches_says_what_to_pass(tmp_path, workers):
    """A webdataset habit: DataLoader(batch_size=N) on a dataset that batches already. torch's
    own error named only the type; this one says what to pass."""
    ds = dataset(write_mixed_shards(tmp_path), batched=True)
    with pytest.raises(TypeError, match=r"pass DataLoader\(dataset, batch_size=None\), or batched=False"):
        next(iter(DataLoader(ds, batch_size=2, num_workers=workers)))
    assert len(next(iter(DataLoader(ds, batch_size=None, num_workers=workers)))["__key__"]) == BATCH
