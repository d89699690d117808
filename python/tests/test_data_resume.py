"""ShardDataset resume, epochs and splits under the loaders people run: a plain DataLoader and
torchdata's StatefulDataLoader, 0 and 2 workers, batches made by the dataset, by the loader or
none, pad and drop, resumed on the same split and on another world size. Every resumed run is
compared with an uninterrupted one."""

from collections import Counter

import pytest

import ferry
import ferry.data
from test_data import write_shards

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:'set_vital' is deprecated")  # torchdata 0.11 on torch 2.13

SIZES = [13, 0, 7, 21, 1, 9, 16]  # 67 samples, an empty shard, a one-sample shard
BATCH = 4       # the dataset's batch_size where the dataset batches
LOADER_BATCH = 3  # the DataLoader's where it batches (odd, so worker plans end in partial batches)
STEPS = 5       # loader steps before the interruption


def stateful_loader_class():
    return pytest.importorskip("torchdata.stateful_dataloader").StatefulDataLoader


def keys_of_item(item, batching):
    if batching == "dataset":
        return list(item["__key__"])
    if batching == "loader":
        return [s["__key__"] for s in item]
    return [item["__key__"]]


def make_dataset(pattern, batching, remainder, rank, world_size):
    options = dict(seed=5, shuffle_buffer=8, remainder=remainder, rank=rank, world_size=world_size)
    if batching == "dataset":
        return ferry.data.ShardDataset(pattern, batch_size=BATCH, batched=True, **options)
    return ferry.data.ShardDataset(pattern, **options)


def make_loader(kind, dataset, batching, workers):
    cls = DataLoader if kind == "plain" else stateful_loader_class()
    if batching == "loader":
        return cls(dataset, batch_size=LOADER_BATCH, num_workers=workers, collate_fn=list)
    return cls(dataset, batch_size=None, num_workers=workers)


def first_steps(loader, steps, batching="loader"):
    """The keys of the first `steps` items of `loader`, leaving it there."""
    keys = []
    for step, item in enumerate(loader):
        keys += keys_of_item(item, batching)
        if step + 1 == steps:
            break
    return keys


def interrupted(kind, dataset, batching, workers, steps):
    """Runs `steps` loader steps; returns (their keys, the state to resume from)."""
    loader = make_loader(kind, dataset, batching, workers)
    keys = first_steps(loader, steps, batching)
    if kind == "plain":
        state = dataset.state_dict(samples_seen=len(keys), loader=loader)
    else:
        state = loader.state_dict()
    return keys, state


def resumed(kind, dataset, batching, workers, state):
    """kind "plain" and "stateful": the state goes where that loader's users put it; "dataset":
    a StatefulDataLoader's state given to the dataset (the way to change the split)."""
    if kind == "dataset":
        dataset.load_state_dict(state)
        kind = "stateful"
    loader = make_loader(kind, dataset, batching, workers)
    if kind == "plain":
        dataset.load_state_dict(state)
    elif state is not None and dataset._resume is None:
        loader.load_state_dict(state)
    return [k for item in loader for k in keys_of_item(item, batching)]


def whole(kind, dataset, batching, workers):
    return [k for item in make_loader(kind, dataset, batching, workers) for k in keys_of_item(item, batching)]


LOADERS = ["plain", "stateful"]
BATCHINGS = ["dataset", "loader", "sample"]


def over_the_matrix(test):
    """Runs `test` for every loader x workers x batching x remainder."""
    for name, values in (("remainder", ["pad", "drop"]), ("batching", BATCHINGS), ("workers", [0, 2]),
                         ("kind", LOADERS)):
        test = pytest.mark.parametrize(name, values)(test)
    return test


@over_the_matrix
def test_resume_on_the_same_split_continues_the_uninterrupted_sequence(tmp_path, kind, workers, batching, remainder):
    pattern = write_shards(tmp_path, SIZES)
    for rank in range(2):
        reference = whole(kind, make_dataset(pattern, batching, remainder, rank, 2), batching, workers)
        seen, state = interrupted(kind, make_dataset(pattern, batching, remainder, rank, 2), batching, workers, STEPS)
        assert seen == reference[:len(seen)]
        rest = resumed(kind, make_dataset(pattern, batching, remainder, rank, 2), batching, workers, state)
        assert seen + rest == reference, (rank, len(seen))


@over_the_matrix
def test_resume_on_another_world_size_yields_each_remaining_sample(tmp_path, kind, workers, batching, remainder):
    pattern = write_shards(tmp_path, SIZES)
    everything = Counter(f"p{i}/{j:04d}" for i, n in enumerate(SIZES) for j in range(n))
    consumed, states = Counter(), []
    for rank in range(2):
        seen, state = interrupted(kind, make_dataset(pattern, batching, remainder, rank, 2), batching, workers, STEPS)
        consumed.update(seen)
        states.append(state)
    if kind == "stateful" and workers > 0:
        # Each worker's part resumes only that worker on its split...
        with pytest.raises(ferry.UnsupportedError, match="same worker on the same split"):
            resumed(kind, make_dataset(pattern, batching, remainder, 0, 3), batching, workers, states[0])
        # ... but the loader's whole state, given to the dataset, resumes on any split.
        kind = "dataset"
    if kind == "plain":
        assert states[0] == states[1]  # the same on every rank
    per_rank = [resumed(kind, make_dataset(pattern, batching, remainder, rank, 3), batching, workers, states[0])
                for rank in range(3)]
    assert len({len(keys) for keys in per_rank}) == 1  # every new rank the same number
    rest = Counter(k for keys in per_rank for k in keys)
    left = everything - consumed
    if remainder == "drop":
        assert max((consumed + rest).values()) == 1                 # nothing twice
        unit = 3 * (BATCH if batching == "dataset" else 1)
        assert sum((left - rest).values()) < unit                  # less than a batch per rank lost
    else:
        assert set(left) <= set(rest)                               # nothing lost


@pytest.mark.parametrize("remainder", ["pad", "drop"])
@pytest.mark.parametrize("workers", [0, 2])
def test_checkpointing_a_re_split_epoch_again_and_again(tmp_path, workers, remainder):
    """Elastic jobs checkpoint again: world 2 -> 3 -> 1, worker counts changing too; every
    sample of the epoch comes once (drop: less than a batch per rank lost at each split)."""
    pattern = write_shards(tmp_path, SIZES)
    everything = Counter(f"p{i}/{j:04d}" for i, n in enumerate(SIZES) for j in range(n))
    got, state, lost_bound = Counter(), None, 0
    for world, loader_workers, steps in [(2, workers, 3), (3, 2 - workers, 2), (1, workers, None)]:
        states = []
        for rank in range(world):
            ds = ferry.data.ShardDataset(pattern, seed=5, shuffle_buffer=8, remainder=remainder, rank=rank,
                                         world_size=world, batch_size=2, batched=True)
            if state is not None:
                ds.load_state_dict(state)
            loader = DataLoader(ds, batch_size=None, num_workers=loader_workers)
            seen = state["samples_seen"] if state is not None else 0
            for step, batch in enumerate(loader):
                got.update(batch["__key__"])
                seen += len(batch["__key__"])
                if step + 1 == steps:
                    break
            if steps is not None:
                states.append(ds.state_dict(samples_seen=seen, loader=loader))
        lost_bound += world * 2
        if steps is not None:
            assert all(s == states[0] for s in states)
            state = states[0]
    if remainder == "drop":
        assert max(got.values()) == 1
        assert sum((everything - got).values()) < lost_bound
    else:
        assert set(got) == set(everything)


@pytest.mark.parametrize("batching", BATCHINGS)
def test_a_stateful_loaders_state_given_to_the_dataset_resumes_exactly(tmp_path, batching):
    pattern = write_shards(tmp_path, SIZES)
    reference = whole("stateful", make_dataset(pattern, batching, "pad", 1, 2), batching, 2)
    seen, state = interrupted("stateful", make_dataset(pattern, batching, "pad", 1, 2), batching, 2, STEPS)
    rest = resumed("dataset", make_dataset(pattern, batching, "pad", 1, 2), batching, 2, state)
    assert seen + rest == reference


def test_loader_batch_size_other_than_the_datasets_resumes_exactly(tmp_path):
    """Defect: ShardDataset's default batch size under DataLoader(batch_size=8, num_workers=2);
    state_dict(samples_seen=40, num_workers=2) after 5 steps repeated 4 samples and lost 4.
    Without the loader's batch size the state is refused; with the loader it is exact."""
    pattern = write_shards(tmp_path, [60, 37, 50])
    reference = [s["__key__"] for b in DataLoader(ferry.data.ShardDataset(pattern, seed=1), batch_size=8,
                                                  num_workers=2, collate_fn=list) for s in b]
    ds = ferry.data.ShardDataset(pattern, seed=1)
    loader = DataLoader(ds, batch_size=8, num_workers=2, collate_fn=list)
    seen = first_steps(loader, 5)
    assert len(seen) == 40
    with pytest.raises(ValueError, match="pass loader=<the DataLoader>"):
        ds.state_dict(samples_seen=40, num_workers=2)
    state = ds.state_dict(samples_seen=40, loader=loader)
    assert state == ds.state_dict(samples_seen=40, num_workers=2, loader_batch_size=8)
    again = ferry.data.ShardDataset(pattern, seed=1)
    again.load_state_dict(state)
    rest = [s["__key__"] for b in DataLoader(again, batch_size=8, num_workers=2, collate_fn=list) for s in b]
    assert seen + rest == reference
    with pytest.raises(ValueError, match="falls inside a batch of the loader: its batches end at 40 and 48"):
        ds.state_dict(samples_seen=44, loader=loader)


def test_state_dict_num_workers_is_keyword_only(tmp_path):
    """Defect: a MosaicML-style state_dict(n, False) was taken as num_workers=0."""
    ds = ferry.data.ShardDataset(write_shards(tmp_path, [10]), seed=1)
    with pytest.raises(TypeError):
        ds.state_dict(4, False)


def test_plain_dataloader_workers_make_state_dict_without_a_count_refuse(tmp_path):
    """The main process of a plain DataLoader with workers cannot count what was consumed:
    state_dict() there says what to pass instead of returning a state of nothing consumed."""
    ds = ferry.data.ShardDataset(write_shards(tmp_path, [10, 10]), seed=1)
    for _ in zip(range(3), DataLoader(ds, batch_size=None, num_workers=2)):
        pass
    with pytest.raises(ValueError, match="read by DataLoader workers.*StatefulDataLoader"):
        ds.state_dict()


def test_stateful_dataloader_calls_state_dict_without_arguments(tmp_path):
    """Defect: StatefulDataLoader calls dataset.state_dict() in each worker, which raised
    TypeError (missing samples_seen) at iter() with 2 workers."""
    StatefulDataLoader = stateful_loader_class()
    ds = ferry.data.ShardDataset(write_shards(tmp_path, [10, 10]), seed=1)
    loader = StatefulDataLoader(ds, batch_size=None, num_workers=2)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    worker_states = state["_snapshot"]["_worker_snapshots"]
    assert {w["dataset_state"]["worker"] for w in worker_states.values()} == {0, 1}
    assert sum(w["dataset_state"]["yielded"] for w in worker_states.values()) == 1  # one sample taken


@pytest.mark.parametrize("persistent", [False, True])
def test_set_epoch_reaches_the_workers(tmp_path, persistent):
    """Defect: with persistent_workers=True epoch 1 repeated epoch 0's order."""
    pattern = write_shards(tmp_path, [20, 20, 20])
    ds = ferry.data.ShardDataset(pattern, seed=3, shuffle_buffer=10)
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=persistent)
    epochs = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        epochs.append([s["__key__"] for s in loader])
        fresh = ferry.data.ShardDataset(pattern, seed=3, shuffle_buffer=10)
        fresh.set_epoch(epoch)
        assert epochs[-1] == [s["__key__"] for s in DataLoader(fresh, batch_size=None, num_workers=2)]
    assert epochs[0] != epochs[1] != epochs[2]
    assert sorted(epochs[0]) == sorted(epochs[1])


def test_a_state_loaded_after_persistent_workers_started_is_refused(tmp_path):
    pattern = write_shards(tmp_path, [20, 20])
    ds = ferry.data.ShardDataset(pattern, seed=3)
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True)
    list(loader)
    ds.load_state_dict(ds.state_dict(samples_seen=4, loader=loader))
    with pytest.raises(ferry.UnsupportedError, match="create the DataLoader after loading the state"):
        list(loader)


def test_resume_state_is_checked(tmp_path):
    pattern = write_shards(tmp_path, [10, 10])
    ds = ferry.data.ShardDataset(pattern, rank=0, world_size=1, seed=1, batch_size=2)
    state = ds.state_dict(samples_seen=4)
    other = ferry.data.ShardDataset(pattern, rank=0, world_size=1, seed=2, batch_size=2)
    with pytest.raises(ValueError, match="another dataset or seed"):
        other.load_state_dict(state)
    with pytest.raises(ferry.InvalidArgumentError, match="falls inside a batch"):
        ds.state_dict(samples_seen=3, loader_batch_size=2)
    with pytest.raises(ferry.InvalidArgumentError, match="more than the 20 samples"):
        ds.state_dict(samples_seen=22)
    bad = dict(state, segments=[dict(state["segments"][0], consumed=[21])])
    with pytest.raises(ferry.InvalidArgumentError, match="more than the 20 of its plan"):
        ds.load_state_dict(bad)
    ds.load_state_dict(ds.state_dict(samples_seen=20))  # the end of the epoch: nothing left
    assert list(ds) == [] and len(ds) == 0
    ds.set_epoch(1)
    assert len(list(ds)) == 20  # the next epoch is whole
    with pytest.raises(ValueError, match="not a ferry ShardDataset state"):
        ds.load_state_dict({"format": "something else"})
    with pytest.raises(ValueError, match="malformed ferry ShardDataset state: no field 'segments'"):
        ds.load_state_dict({k: v for k, v in state.items() if k != "segments"})
    with pytest.raises(ValueError, match="malformed ferry ShardDataset state: no field 'consumed'"):
        ds.load_state_dict(dict(state, segments=[{"split": state["segments"][0]["split"], "next_worker": 0}]))
    with pytest.raises(ValueError, match="malformed ferry ShardDataset state: a field has the wrong type"):
        ds.load_state_dict(dict(state, segments=[dict(state["segments"][0], consumed="4")]))
    with pytest.raises(ValueError, match=r"samples_seen must be a count of samples \(an int >= 0\), got -4"):
        ds.state_dict(samples_seen=-4)


def test_a_version_1_state_still_resumes(tmp_path):
    pattern = write_shards(tmp_path, [13, 7, 21])
    options = dict(seed=5, shuffle_buffer=8, batch_size=4, rank=1, world_size=2)
    reference = [s["__key__"] for s in ferry.data.ShardDataset(pattern, **options)]
    v1 = {"format": "ferry-shard-dataset-state-v1", "epoch": 0, "seed": 5, "shuffle": True,
          "world_size": 2, "num_workers": 1, "batch_size": 4, "remainder": "pad", "shuffle_buffer": 8,
          "samples_per_rank": 8, "shards": 3, "samples": 41}
    ds = ferry.data.ShardDataset(pattern, **options)
    ds.load_state_dict(v1)
    assert [s["__key__"] for s in ds] == reference[8:]


def test_in_process_iteration_counts_itself(tmp_path):
    """A plain loop (or DataLoader(num_workers=0)) needs no count: state_dict() knows it."""
    pattern = write_shards(tmp_path, [13, 7, 21])
    reference = [s["__key__"] for s in ferry.data.ShardDataset(pattern, seed=2, shuffle_buffer=5)]
    ds = ferry.data.ShardDataset(pattern, seed=2, shuffle_buffer=5)
    it = iter(ds)
    head = [next(it)["__key__"] for _ in range(11)]
    state = ds.state_dict()
    assert state == ds.state_dict(samples_seen=11)
    again = ferry.data.ShardDataset(pattern, seed=2, shuffle_buffer=5)
    again.load_state_dict(state)
    assert again.state_dict() == state  # loaded, not yet iterated: it stands where it stood
    assert head + [s["__key__"] for s in again] == reference


def test_rank_and_world_size_from_the_environment(tmp_path, monkeypatch):
    pattern = write_shards(tmp_path, [10, 10])
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"\$WORLD_SIZE is set \(2\) but \$RANK is not"):
        ferry.data.ShardDataset(pattern)
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ValueError, match=r"\$LOCAL_RANK is set but \$RANK and \$WORLD_SIZE are not"):
        ferry.data.ShardDataset(pattern)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    ds = ferry.data.ShardDataset(pattern)
    assert (ds.rank, ds.world_size) == (1, 2)


@pytest.mark.parametrize("setup", ["loop", "plain-0", "plain-2", "plain-2-persistent", "stateful-0",
                                   "stateful-2", "stateful-2-persistent"])
def test_a_resume_applies_to_one_iteration_then_epochs_are_whole(tmp_path, setup):
    """Found by a newcomer: iterating the resumed epoch again (no set_epoch, as many webdataset
    users do) gave the remainder again, losing the resumed-over samples every pass."""
    pattern = write_shards(tmp_path, [13, 7, 21])
    kind, workers = (setup.split("-") + ["0"])[:2] if setup != "loop" else ("loop", "0")
    workers, persistent = int(workers), setup.endswith("persistent")

    def loader_of(ds):
        if kind == "loop":
            return ds
        cls = DataLoader if kind == "plain" else stateful_loader_class()
        return cls(ds, batch_size=None, num_workers=workers, persistent_workers=persistent)

    full = [s["__key__"] for s in loader_of(ferry.data.ShardDataset(pattern, seed=2, shuffle_buffer=5))]
    ds = ferry.data.ShardDataset(pattern, seed=2, shuffle_buffer=5)
    loader = loader_of(ds)
    head = [s["__key__"] for _, s in zip(range(6), loader)]
    if kind == "stateful":
        state = loader.state_dict()
    elif kind == "plain":
        state = ds.state_dict(samples_seen=6, loader=loader)
    else:
        state = ds.state_dict()
    again = ferry.data.ShardDataset(pattern, seed=2, shuffle_buffer=5)
    loader = loader_of(again)
    (loader if kind == "stateful" else again).load_state_dict(state)
    assert head + [s["__key__"] for s in loader] == full
    assert [s["__key__"] for s in loader] == full   # the same epoch again: whole
    assert [s["__key__"] for s in loader] == full


def test_a_count_without_the_loader_after_workers_read_the_epoch_is_refused(tmp_path):
    """Found by a newcomer: state_dict(samples_seen=6) after a 2-worker DataLoader was taken as
    one worker's stream: 3 samples lost, 3 repeated."""
    ds = ferry.data.ShardDataset(write_shards(tmp_path, [17, 40, 5]), seed=3, shuffle_buffer=10)
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    for _ in zip(range(6), loader):
        pass
    with pytest.raises(ValueError, match="pass loader=<the DataLoader>"):
        ds.state_dict(samples_seen=6)
    with pytest.raises(ValueError, match="read by a loader with num_workers=2"):
        ds.state_dict(samples_seen=6, num_workers=3, loader_batch_size=None)
    assert ds.state_dict(samples_seen=6, loader=loader) == ds.state_dict(samples_seen=6, num_workers=2,
                                                                         loader_batch_size=None)


def test_options_are_checked_where_they_are_given(tmp_path, monkeypatch):
    pattern = write_shards(tmp_path, [10, 10])
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=r"rank 1 is not in \[0, world_size=1\).*no torch.distributed"):
        ferry.data.ShardDataset(pattern, rank=1)
    with pytest.raises(ValueError, match=r"rank 5 is not in \[0, world_size=2\) \(from rank= and world_size="):
        ferry.data.ShardDataset(pattern, rank=5, world_size=2)
    monkeypatch.setenv("RANK", "4")
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match=r"rank 4 is not in \[0, world_size=3\).*\$RANK/\$WORLD_SIZE"):
        ferry.data.ShardDataset(pattern)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    with pytest.raises(ValueError, match="batched=True yields batches of batch_size samples: pass batch_size"):
        ferry.data.ShardDataset(pattern, batched=True)
    with pytest.raises(ValueError, match="transform returned None"):
        list(ferry.data.ShardDataset(pattern, transform=lambda s: None))


def test_decode_and_transform(tmp_path):
    import io
    import tarfile

    import numpy as np

    array = io.BytesIO()
    np.save(array, np.arange(3, dtype=np.int16))
    with tarfile.open(tmp_path / "d.tar", "w") as tar:
        for name, data in [("a.txt", "héllo".encode()), ("a.json", b'{"x": [1, 2]}'), ("a.cls", b" 7\n"),
                           ("a.npy", array.getvalue()), ("a.jpg", b"\xff\xd8raw")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (sample,) = ferry.data.ShardDataset(str(tmp_path / "d.tar"), decode=True)
    assert sample["txt"] == "héllo" and sample["json"] == {"x": [1, 2]} and sample["cls"] == 7
    assert sample["npy"].tolist() == [0, 1, 2] and sample["npy"].dtype == np.int16
    assert sample["jpg"] == b"\xff\xd8raw"  # images stay bytes: a transform decodes them
    wds = pytest.importorskip("webdataset")
    (reference,) = wds.WebDataset(str(tmp_path / "d.tar"), shardshuffle=False, empty_check=False).decode()
    for field in ("txt", "json", "cls"):  # what webdataset's decode() gives the same fields
        assert sample[field] == reference[field], field
    assert sample["npy"].tolist() == reference["npy"].tolist() and sample["npy"].dtype == reference["npy"].dtype
    (batch,) = ferry.data.ShardDataset(str(tmp_path / "d.tar"), decode=True, batched=True, batch_size=1,
                                       transform=lambda b: dict(b, n=len(b["__key__"])))
    assert batch["txt"] == ["héllo"] and batch["cls"] == [7] and batch["n"] == 1
    with tarfile.open(tmp_path / "bad.tar", "w") as tar:
        info = tarfile.TarInfo("b.json")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"{no"))
    with pytest.raises(ferry.CorruptionError, match=r"bad.tar: sample 'b': field 'json' does not decode as .json"):
        list(ferry.data.ShardDataset(str(tmp_path / "bad.tar"), decode=True))
    with pytest.raises(ferry.CorruptionError, match=r"bad.tar: sample 'b': field 'json' does not decode as .json"):
        list(ferry.data.ShardDataset(str(tmp_path / "bad.tar"), decode=True, batched=True, batch_size=1))


def test_resampled_epochs_draw_shards_with_replacement_per_rank(tmp_path):
    """webdataset's resampled=True + with_epoch, as DDP users run it: every rank the same number
    of samples, independent draws, an epoch length that does not grow with loader workers, and
    exact resume on the same split."""
    pattern = write_shards(tmp_path, [5, 0, 3, 8])
    ranks = [ferry.data.ShardDataset(pattern, resampled=True, samples_per_epoch=30, rank=r, world_size=2,
                                     seed=4, shuffle_buffer=4) for r in range(2)]
    keys = [[s["__key__"] for s in ds] for ds in ranks]
    assert [len(k) for k in keys] == [30, 30] and len(ranks[0]) == 30
    assert keys[0] != keys[1]
    assert len(set(keys[0])) < 30  # with replacement: a shard comes back
    through_workers = [s["__key__"] for s in DataLoader(ranks[0], batch_size=None, num_workers=2)]
    assert len(through_workers) == 30
    ranks[0].set_epoch(1)
    assert [s["__key__"] for s in ranks[0]] != keys[0]
    ds = ferry.data.ShardDataset(pattern, resampled=True, samples_per_epoch=30, seed=4, shuffle_buffer=4)
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=list)
    seen = first_steps(loader, 3)
    state = ds.state_dict(samples_seen=9, loader=loader)
    again = ferry.data.ShardDataset(pattern, resampled=True, samples_per_epoch=30, seed=4, shuffle_buffer=4)
    again.load_state_dict(state)
    rest = [s["__key__"] for b in DataLoader(again, batch_size=3, num_workers=2, collate_fn=list) for s in b]
    whole = [s["__key__"] for b in DataLoader(ferry.data.ShardDataset(pattern, resampled=True, samples_per_epoch=30,
                                                                       seed=4, shuffle_buffer=4),
                                               batch_size=3, num_workers=2, collate_fn=list) for s in b]
    assert seen + rest == whole
    other = ferry.data.ShardDataset(pattern, resampled=True, samples_per_epoch=30, seed=4, shuffle_buffer=4,
                                    rank=0, world_size=2)
    with pytest.raises(ferry.InvalidArgumentError, match="resampled epoch resumes only on the split it ran on"):
        other.load_state_dict(state)
        list(other)
    with pytest.raises(ValueError, match="pass resampled=True"):
        ferry.data.ShardDataset(pattern, samples_per_epoch=10)
    with pytest.raises(ValueError, match="multiple of batch_size"):
        ferry.data.ShardDataset(pattern, resampled=True, samples_per_epoch=10, batch_size=4)


def test_workers_forked_after_an_in_process_iteration(tmp_path):
    """A quick look in process (cut short, or to the end), then a DataLoader with workers: the
    forked workers hold a copy of that iteration's loader, whose threads are not theirs; one
    replacing it crashed with a segfault."""
    ds = ferry.data.ShardDataset(write_shards(tmp_path, [5, 0, 3, 8]), seed=4, shuffle_buffer=4)
    peek = iter(ds)
    next(peek)  # cut short: the loader is alive, its readers waiting
    for _ in range(3):
        assert len([s for s in DataLoader(ds, batch_size=None, num_workers=2)]) == 16
    list(ds)  # to the end
    assert len([s for s in DataLoader(ds, batch_size=None, num_workers=2)]) == 16
    del peek


def test_bad_shards_while_counting_fail_in_order_or_are_skipped(tmp_path):
    """Found by a newcomer: on_error="skip" failed in the constructor, counting a truncated shard;
    with two bad shards the one named varied from run to run. Found by a probe: the skip then
    left out the whole shard, the samples before the damage too (webdataset's warn_and_continue
    yields those)."""
    pattern = write_shards(tmp_path, [4, 5, 6, 7])
    # Each sample is one 512-byte header and 512 bytes of data: the cut falls inside sample 2, so
    # samples 0 and 1 are whole (the damage is in a member of another key).
    for i in (1, 3):
        path = tmp_path / f"part-00{i}.tar"
        path.write_bytes(path.read_bytes()[:2 * 1024 + 700])

    def readable(path):  # the keys ferry.data.samples yields before it raises
        keys = []
        with pytest.raises(ferry.CorruptionError, match="truncated"):
            for sample in ferry.data.samples(path):
                keys.append(sample["__key__"])
        return keys
    prefix = readable(tmp_path / "part-001.tar") + readable(tmp_path / "part-003.tar")
    assert prefix == ["p1/0000", "p1/0001", "p3/0000", "p3/0001"]
    for _ in range(3):
        with pytest.raises(ferry.CorruptionError, match=r"part-001.tar.*on_error='skip' leaves out"):
            ferry.data.ShardDataset(pattern)
    with pytest.warns(RuntimeWarning, match="2 of 4 shards could not be read to their end.*the 4 samples "
                                            "before the damage are kept"):
        ds = ferry.data.ShardDataset(pattern, on_error="skip")
    assert [url.rsplit("/", 1)[1] for url, _, _ in ds.skipped] == ["part-001.tar", "part-003.tar"]
    assert [lost for _, _, lost in ds.skipped] == [None, None]  # what the cut-off rest held is unknown
    assert ds.counts == [4, 2, 6, 2]
    kept = sorted([f"p0/{j:04d}" for j in range(4)] + [f"p2/{j:04d}" for j in range(6)] + prefix)
    assert sorted(s["__key__"] for s in ds) == kept
    # Split over ranks and loader workers, each kept sample comes exactly once, and reading
    # stops before the damage: the iteration itself skips nothing more.
    ranks = [ferry.data.ShardDataset(pattern, on_error="skip", rank=r, world_size=2, remainder="drop",
                                     seed=3, shuffle_buffer=4) for r in range(2)]
    seen = [s["__key__"] for r in ranks for s in DataLoader(r, batch_size=None, num_workers=2)]
    assert len(seen) == len(set(seen)) == 14 and set(seen) <= set(kept)
    assert all(len(r.skipped) == 2 for r in ranks)
    # Every shard left out: the error says why there is nothing, not just that there is nothing.
    for i in range(4):
        path = tmp_path / f"part-00{i}.tar"
        path.write_bytes(path.read_bytes()[:700])
    with pytest.warns(RuntimeWarning), pytest.raises(ferry.IoError, match=r"no samples to read: 4 of 4 shards "
                                                     r"could not be read.*first error: .*part-000.tar"):
        ferry.data.ShardDataset(pattern, on_error="skip")


def test_a_resampled_state_on_another_world_size_is_refused_when_loaded(tmp_path):
    pattern = write_shards(tmp_path, [5, 3, 8])
    ds = ferry.data.ShardDataset(pattern, resampled=True, samples_per_epoch=12, seed=1)
    it = iter(ds)
    for _ in range(5):
        next(it)
    state = ds.state_dict()
    other = ferry.data.ShardDataset(pattern, resampled=True, samples_per_epoch=12, seed=1, rank=0, world_size=2)
    with pytest.raises(ferry.InvalidArgumentError, match="resumes only on the split it ran on.*set_epoch"):
        other.load_state_dict(state)
    list(it)
    done = ds.state_dict()  # the epoch is over: nothing is left, on any split
    other.load_state_dict(done)
    assert list(other) == []
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        other.set_epoch(-1)


def test_an_error_in_transform_names_the_sample(tmp_path):
    ds = ferry.data.ShardDataset(write_shards(tmp_path, [3]), shuffle=False,
                                 transform=lambda s: s["missing"])
    with pytest.raises(KeyError) as raised:
        list(ds)
    assert any("raised by transform on sample 'p0/0000'" in note for note in raised.value.__notes__)


def test_spawned_workers_leave_nothing_behind(tmp_path):
    """Found by a newcomer: each spawned worker printed nanobind's "leaked 1 instances" of
    SampleLoader at exit (a finished iteration's loader was still referenced)."""
    import subprocess
    import sys

    pattern = write_shards(tmp_path, [6, 6])
    script = (
        "import ferry.data, torch.utils.data as d\n"
        f"ds = ferry.data.ShardDataset({pattern!r}, decode=True)\n"
        "n = sum(1 for _ in d.DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context='spawn'))\n"
        "assert n == 12, n\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "leaked" not in run.stderr, run.stderr


def test_shards_given_with_an_index_pick_what_is_read(tmp_path, ferry_bin):
    """Found by a probe: with index= given, shards= was ignored, so a train and a val set that
    share one index both read every shard (every val sample was also a train sample)."""
    import subprocess
    pattern = write_shards(tmp_path, [4, 5, 6, 7, 3])
    index = str(tmp_path / "index.json")
    subprocess.run([ferry_bin, "index", pattern, "-o", index], check=True, capture_output=True)
    train = ferry.data.ShardDataset(str(tmp_path / "part-{000..002}.tar"), index=index, rank=0, world_size=1)
    val = ferry.data.ShardDataset([str(tmp_path / "part-004.tar"), str(tmp_path / "part-003.tar")], index=index,
                                  rank=0, world_size=1, shuffle=False)
    assert (train.counts, val.counts) == ([4, 5, 6], [3, 7])  # in the order given
    train_keys, val_keys = [s["__key__"] for s in train], [s["__key__"] for s in val]
    assert len(train_keys) == len(set(train_keys)) == 15 and not set(train_keys) & set(val_keys)
    assert val_keys == [f"p4/{j:04d}" for j in range(3)] + [f"p3/{j:04d}" for j in range(7)]
    with pytest.raises(ValueError, match=r"1 of the 2 shards given are not in the index .*index.json "
                                         r"\(first: .*other.tar\)"):
        ferry.data.ShardDataset([str(tmp_path / "part-000.tar"), str(tmp_path / "other.tar")], index=index)
    assert len(ferry.data.ShardDataset(index, rank=0, world_size=1)) == 25  # the index alone: all


def test_a_state_is_refused_for_the_same_shards_listed_in_another_order(tmp_path):
    """Found by a probe: the check compared only the numbers of shards and samples, so the same
    files listed in another order resumed, repeating some samples and losing others."""
    write_shards(tmp_path, [5, 5, 6, 6])
    paths = [str(tmp_path / f"part-00{i}.tar") for i in range(4)]
    ds = ferry.data.ShardDataset(paths, rank=0, world_size=1, seed=1)
    it = iter(ds)
    for _ in range(7):
        next(it)
    state = ds.state_dict()
    swapped = ferry.data.ShardDataset([paths[1], paths[0], paths[3], paths[2]], rank=0, world_size=1, seed=1)
    with pytest.raises(ValueError, match="saved for other shards, or for these in another order"):
        swapped.load_state_dict(state)
    # The same names in another folder (a dataset moved) resume.
    moved = tmp_path / "moved"
    moved.mkdir()
    for p in paths:
        (moved / p.rsplit("/", 1)[1]).write_bytes(open(p, "rb").read())
    again = ferry.data.ShardDataset([str(moved / p.rsplit("/", 1)[1]) for p in paths], rank=0, world_size=1, seed=1)
    again.load_state_dict(state)
    assert len(list(again)) == 22 - 7


def test_a_second_iterator_does_not_reset_what_state_dict_counts(tmp_path):
    """Found by a probe: state_dict() counted the newest iterator, so a peek with next(iter(ds))
    after 50 trained samples set samples_seen to 1 and a resume repeated 49 samples."""
    pattern = write_shards(tmp_path, [30, 30])
    ds = ferry.data.ShardDataset(pattern, rank=0, world_size=1, seed=2)
    train = iter(ds)
    trained = [next(train)["__key__"] for _ in range(20)]
    peek = next(iter(ds))  # a peek: that iterator is dropped at once
    assert peek["__key__"] == trained[0]
    trained += [next(train)["__key__"] for _ in range(5)]
    state = ds.state_dict()
    assert state["samples_seen"] == 25
    kept = iter(ds)  # a second iterator kept alive: which one training consumes cannot be known
    next(kept)
    with pytest.raises(ValueError, match="2 iterations of this dataset are running in this process"):
        ds.state_dict()
    del kept
    assert ds.state_dict()["samples_seen"] == 25
    resumed = ferry.data.ShardDataset(pattern, rank=0, world_size=1, seed=2)
    resumed.load_state_dict(state)
    rest = [s["__key__"] for s in resumed]
    assert sorted(trained + rest) == sorted(s["__key__"] for s in ferry.data.ShardDataset(pattern, rank=0, world_size=1))
    # A loop that finished: its count stays what state_dict() reports.
    for _ in train:
        pass
    assert ds.state_dict()["samples_seen"] == 60
