"""PackedDataset resume over ferry token shards under the loaders people run: a loop, a plain
DataLoader and torchdata's StatefulDataLoader, 0 and 2 workers, batches handed over as the
dataset makes them or collated again by the loader. Every resumed run is compared with an
uninterrupted one; what cannot resume exactly is refused with an error that says why."""

import json

import numpy as np
import pytest

import ferry
import ferry.data
from test_data import text_shards, token_shards

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:'set_vital' is deprecated")  # torchdata 0.11 on torch 2.13

SEQ_LEN, BATCH, STEPS = 8, 2, 3


def stateful_loader_class():
    return pytest.importorskip("torchdata.stateful_dataloader").StatefulDataLoader


def dataset(paths, rank=0, world_size=2, **kw):
    return ferry.data.PackedDataset(paths, seq_len=SEQ_LEN, batch_size=BATCH, eod_id=0, rank=rank,
                                    world_size=world_size, **kw)


def rows_of(item):
    """The rows of one loader item: a batch, or (loader batch_size) a list of batches."""
    batches = item if isinstance(item, list) else [item]
    return [tuple(row.tolist()) for b in batches for row in b["input_ids"]]


def make_loader(kind, ds, workers, loader_batch):
    cls = DataLoader if kind == "plain" else stateful_loader_class()
    if loader_batch:
        return cls(ds, batch_size=loader_batch, num_workers=workers, collate_fn=list)
    return cls(ds, batch_size=None, num_workers=workers)


def items(loader, limit=None):
    out = []
    for step, item in enumerate(loader):
        out.append(rows_of(item))
        if limit is not None and step + 1 == limit:
            break
    return out


@pytest.fixture
def shards(tmp_path):
    paths, _ = token_shards(tmp_path, [30, 0, 9, 41, 17], seed=4)
    return paths


@pytest.mark.parametrize("kind", ["plain", "stateful"])
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("loader_batch", [None, 2])
@pytest.mark.parametrize("rank", [0, 1])
def test_resume_continues_the_uninterrupted_sequence(shards, kind, workers, loader_batch, rank):
    whole = items(make_loader(kind, dataset(shards, rank), workers, loader_batch))
    assert len(whole) > STEPS + 1
    ds = dataset(shards, rank)
    loader = make_loader(kind, ds, workers, loader_batch)
    first = items(loader, STEPS)
    if kind == "plain":
        batches = sum(len(i) for i in first) // BATCH
        state = ds.state_dict(batches_seen=batches, loader=loader)
    else:
        state = loader.state_dict()
    state = json.loads(json.dumps(state))  # a checkpoint goes through a file
    again = dataset(shards, rank)
    if kind == "plain":
        again.load_state_dict(state)
        resumed = make_loader(kind, again, workers, loader_batch)
    else:
        resumed = make_loader(kind, again, workers, loader_batch)
        resumed.load_state_dict(state)
    rest = items(resumed)
    assert first + rest == whole
    # The resume applied to one iteration; the next one is the whole epoch again.
    assert items(resumed) == whole


def test_in_process_loop_counts_itself(shards):
    ds = dataset(shards, world_size=1)
    whole = [rows_of(b) for b in ds]
    it = iter(ds)
    first = [rows_of(next(it)) for _ in range(4)]
    state = ds.state_dict()
    assert state["batches_seen"] == 4
    again = dataset(shards, world_size=1)
    again.load_state_dict(state)
    assert again.state_dict() == state  # loaded, not iterated yet
    assert first + [rows_of(b) for b in again] == whole
    assert [rows_of(b) for b in again] == whole


def test_a_state_for_another_split_or_packing_is_refused(shards):
    ds = dataset(shards)
    state = ds.state_dict(batches_seen=2, num_workers=0)
    with pytest.raises(ValueError, match=r"another packing or split: world_size 2 \(here 3\)"):
        dataset(shards, world_size=3).load_state_dict(state)
    with pytest.raises(ValueError, match=r"seq_len 8 \(here 4\)"):
        ferry.data.PackedDataset(shards, seq_len=4, batch_size=BATCH, eod_id=0, rank=0,
                                 world_size=2).load_state_dict(state)
    with pytest.raises(ValueError, match="not a ferry PackedDataset state"):
        ds.load_state_dict({"format": "ferry-shard-dataset-state-v2"})
    with pytest.raises(ValueError, match="no field 'consumed'"):
        ds.load_state_dict({k: v for k, v in state.items() if k != "consumed"})
    # Saved with no loader workers, resumed with two: refused, not silently re-split.
    other = dataset(shards)
    other.load_state_dict(state)
    with pytest.raises(ferry.UnsupportedError, match="saved with 1 loader workers per rank and is resumed with 2"):
        list(DataLoader(other, batch_size=None, num_workers=2))


def test_a_count_through_workers_needs_the_loader(shards):
    ds = dataset(shards)
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    items(loader, 2)
    with pytest.raises(ValueError, match="workers, which run ahead"):
        ds.state_dict()
    with pytest.raises(ValueError, match="num_workers=2, but the state is asked for num_workers=0"):
        ds.state_dict(batches_seen=2, num_workers=0)
    with pytest.raises(ValueError, match="must be a count of batches"):
        ds.state_dict(batches_seen=-1, loader=loader)
    # A loader that takes 2 batches from a worker at a time cannot have consumed 3.
    with pytest.raises(ValueError, match="batches_seen 3 falls inside a batch of the loader: its batches end at 2 and 4 batches"):
        ds.state_dict(batches_seen=3, num_workers=2, loader_batch_size=2)


def test_a_state_loaded_after_persistent_workers_started_is_refused(shards):
    ds = dataset(shards)
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True)
    items(loader)
    ds.load_state_dict(ds.state_dict(batches_seen=2, loader=loader))
    with pytest.raises(ferry.UnsupportedError, match="persistent workers started"):
        items(loader)


@pytest.mark.parametrize("workers", [0, 2])
def test_text_shards_resume_through_a_stateful_loaders_replay(tmp_path, workers):
    """Found by a newcomer: with 0 workers a state_dict() of None made StatefulDataLoader neither
    load a state nor replay, so the resumed epoch started again from its first batch."""
    pattern, texts = text_shards(tmp_path, shards=2, per_shard=30)
    tok = ferry.Tokenizer.train_from_iterator(list(texts.values()), vocab_size=300,
                                              special_tokens=["<|endoftext|>"])

    def packed():
        return ferry.data.PackedDataset(ferry.data.ShardDataset(pattern, rank=0, world_size=1), tok,
                                        seq_len=SEQ_LEN, batch_size=BATCH, threads=1)

    cls = stateful_loader_class()
    whole = items(cls(packed(), batch_size=None, num_workers=workers))
    loader = cls(packed(), batch_size=None, num_workers=workers)
    first = items(loader, STEPS)
    state = loader.state_dict()
    resumed = cls(packed(), batch_size=None, num_workers=workers)
    resumed.load_state_dict(state)
    assert first + items(resumed) == whole
    # No state of its own (so the loader replays), and nothing that pretends to be one.
    assert not hasattr(packed(), "state_dict") and not hasattr(packed(), "load_state_dict")
    assert isinstance(packed(), ferry.data.PackedDataset)


def test_a_state_of_reordered_shards_is_refused(shards):
    ds = dataset(shards)
    state = ds.state_dict(batches_seen=2, num_workers=0)
    with pytest.raises(ValueError, match=r"shards_digest .* same shards \(in the same order\)"):
        dataset([shards[1], shards[0]] + shards[2:]).load_state_dict(state)


def test_hand_edited_or_miscounted_states_are_refused(shards):
    ds = dataset(shards, world_size=1)
    it = iter(ds)
    for _ in range(3):
        next(it)
    with pytest.raises(ValueError, match="this process yielded 3 batches"):
        ds.state_dict(batches_seen=12)  # samples, not batches (MosaicML's unit)
    with pytest.raises(ValueError, match="must be a count of batches"):
        ds.state_dict(batches_seen=True)
    state = ds.state_dict()
    again = dataset(shards, world_size=1)
    for bad in (dict(state, consumed=[-1], batches_seen=-1), dict(state, batches_seen=11),
                dict(state, next_worker=3), dict(state, consumed=[10**9], batches_seen=10**9)):
        with pytest.raises(ValueError, match="malformed ferry PackedDataset state"):
            again.load_state_dict(bad)
    again.load_state_dict(state)
    it = iter(again)
    next(it)
    with pytest.raises(ValueError, match="batches_seen=1, but this process yielded 4 batches"):
        again.state_dict(batches_seen=1)
    # Through workers the dataset cannot count, but a count below the loaded state's is wrong.
    two = dataset(shards, world_size=1)
    two.load_state_dict(two.state_dict(batches_seen=4, num_workers=2, loader_batch_size=None))
    loader = DataLoader(two, batch_size=None, num_workers=2)
    items(loader, 1)
    with pytest.raises(ValueError, match="batches_seen=2 is less than the 4 batches the loaded state had consumed"):
        two.state_dict(batches_seen=2, loader=loader)


def test_a_loader_state_given_to_the_dataset_says_where_it_goes(shards):
    cls = stateful_loader_class()
    loader = cls(dataset(shards), batch_size=None, num_workers=0)
    items(loader, 1)
    with pytest.raises(ValueError, match="a StatefulDataLoader's state: give it to the new loader's load_state_dict"):
        dataset(shards).load_state_dict(loader.state_dict())


def test_a_count_through_batching_workers_needs_the_loader_batch_size(shards):
    """Found by a newcomer: with a loader batch size and no loader=, the count was taken as one
    batch per turn, and the resume repeated and lost batches."""
    ds = dataset(shards)
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=list)
    items(loader, 5)
    with pytest.raises(ValueError, match="pass loader=<the DataLoader>, or loader_batch_size="):
        ds.state_dict(10)
    assert ds.state_dict(10, loader=loader) == ds.state_dict(10, num_workers=2, loader_batch_size=2)


def test_shards_are_named_as_anywhere_else_and_checked_against_the_tokenizer(tmp_path, shards):
    by_list = dataset(shards)
    assert len(dataset(str(tmp_path / "tokens-*.safetensors"))) == len(by_list)
    assert len(dataset(str(tmp_path / "tokens-{0..4}.safetensors"))) == len(by_list)
    (tmp_path / "list.txt").write_text("".join(f"{p}\n" for p in shards))
    assert len(dataset(f"@{tmp_path / 'list.txt'}")) == len(by_list)
    with pytest.raises(ValueError, match="eod_id is needed: pass eod_id=, or a tokenizer"):
        ferry.data.PackedDataset(shards, seq_len=SEQ_LEN, batch_size=BATCH)
    # A shard ferry tokenize wrote records its tokenizer; packing it with another is refused.
    corpus = ["the cat sat on the mat", "a dog ran", "the end of the story is near"] * 20
    mine = ferry.Tokenizer.train_from_iterator(corpus, vocab_size=300, special_tokens=["<|endoftext|>"])
    other = ferry.Tokenizer.train_from_iterator(corpus[:3], vocab_size=280, special_tokens=["<|endoftext|>"])
    ids = [mine.encode_ordinary(t) for t in corpus]
    tokens = np.concatenate([np.array(i, np.uint32) for i in ids])
    offsets = np.concatenate(([0], np.cumsum([len(i) for i in ids]))).astype(np.uint64)
    path = str(tmp_path / "mine.safetensors")
    ferry.data._core.write_token_shard(path, tokens, offsets, mine.fingerprint)
    assert len(ferry.data.PackedDataset([path], mine, seq_len=4, batch_size=1, rank=0, world_size=1)) > 0
    with pytest.raises(ValueError, match="mine.safetensors was encoded by another tokenizer"):
        ferry.data.PackedDataset([path], other, seq_len=4, batch_size=1, rank=0, world_size=1)
