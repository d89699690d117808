"""ferry.ray.write_token_shards on a real local Ray cluster (2 CPUs, loopback only), started once
for the module: ids against `ferry tokenize` of the same documents, re-runs, retried tasks, bad
input. Corpora and the tokenizer come from the shared test data."""

import os

# A single-node cluster on the loopback address: without this, Ray binds its node to the
# machine's outward address (only macOS/Windows default to loopback).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import collections
import hashlib
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

import ferry
import ferry.data
import ferry.numpy

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ferry[ray]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'ray[data]')")
import ferry.ray  # noqa: E402
from conftest import S3_BUCKET  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
GPT2 = SHARED / "tokenizers" / "hf" / "gpt2_tokenizer.json"
SHAKESPEARE = SHARED / "corpora" / "tinyshakespeare.txt"
MULTILINGUAL = SHARED / "corpora" / "multilingual_sentences"

pytestmark = pytest.mark.skipif(not (GPT2.exists() and SHAKESPEARE.exists() and MULTILINGUAL.is_dir()),
                                reason="shared test data (../shared/data) is absent")


S3_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")


@pytest.fixture(scope="module")
def s3_server(request):
    """The module's radosgw (conftest's `s3`), or None where it cannot run."""
    try:
        return request.getfixturevalue("s3")
    except pytest.skip.Exception:
        return None


@pytest.fixture(scope="module")
def cluster(s3_server):
    # The workers find S3 credentials as a cluster's nodes do, in their environment: set before
    # the cluster starts (a runtime_env would also write them into Ray's own logs).
    saved = {name: os.environ.get(name) for name in S3_ENV}
    if s3_server is not None:
        server, _ = s3_server
        os.environ.update(zip(S3_ENV, (server.endpoint, server.access_key, server.secret_key, "us-east-1")))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    yield
    ray.shutdown()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def tok():
    return ferry.Tokenizer.from_file(GPT2)


@pytest.fixture(scope="module")
def other_tok():
    return ferry.Tokenizer.from_file(SHARED / "tokenizers" / "hf" / "gpt_neox_20b_tokenizer.json")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Text files (one document per line) of English and several other scripts: a few blocks each."""
    folder = tmp_path_factory.mktemp("corpus")
    lines = [l for l in SHAKESPEARE.read_text(encoding="utf-8").splitlines() if l][:6000]
    for i in range(3):
        (folder / f"en-{i}.txt").write_text("\n".join(lines[i::3]) + "\n", encoding="utf-8")
    for language in ("ar", "de", "hi", "ja", "ru", "zh"):
        path = MULTILINGUAL / f"{language}.txt"
        if path.exists():
            (folder / f"{language}.txt").write_bytes(path.read_bytes())
    return folder


def documents_of(folder):
    """Every document of the corpus files, as `ferry tokenize` reads them (a non-empty line each)."""
    out = []
    for path in sorted(folder.iterdir()):
        out += [l.rstrip("\r") for l in path.read_text(encoding="utf-8").split("\n") if l.rstrip("\r")]
    return out


def shard_documents(paths):
    """Each document's ids, read through ferry's safetensors reader, as tuples."""
    out = []
    for path in paths:
        shard = ferry.numpy.load_file(path)
        tokens, offsets = shard["tokens"], shard["doc_offsets"]
        out += [tuple(tokens[a:b].tolist()) for a, b in zip(offsets[:-1], offsets[1:])]
    return out


def indexed(index):
    return [url for url, *_ in ferry._core.read_index(index)]


def folder_state(folder):
    """{name: (bytes' SHA-256, mtime_ns)} of every file, hidden ones (temporaries) included."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in Path(folder).iterdir()}


def test_ids_equal_ferry_tokenize_and_pack_evenly(cluster, tok, corpus, tmp_path, ferry_bin):
    ds = ray.data.read_text(str(corpus), override_num_blocks=12)
    index = ferry.ray.write_token_shards(ds, tok, tmp_path / "out", target_shard_bytes=64 << 10)
    assert index == str(tmp_path / "out" / "index.json")
    shards = indexed(index)
    assert len(shards) > 12  # many blocks, and blocks cut to the target size
    assert {Path(s).name for s in shards} | {"index.json"} == set(os.listdir(tmp_path / "out"))

    reference = tmp_path / "reference.safetensors"
    subprocess.run([ferry_bin, "tokenize", "--tokenizer", str(GPT2), *sorted(map(str, corpus.iterdir())),
                    "-o", str(reference)], check=True, capture_output=True)
    ours = shard_documents(shards)
    theirs = shard_documents([reference])
    assert len(ours) == len(documents_of(corpus))
    # Every document exactly once (block order is Ray's), ids as `ferry tokenize` gives them.
    assert collections.Counter(ours) == collections.Counter(theirs)
    assert sum(ferry._core.read_index(index)[i][2] for i in range(len(shards))) == len(ours)

    # The index is what training ranks read: every rank gets the same number of batches.
    packed = [ferry.data.PackedDataset(index, tok, seq_len=128, batch_size=4, rank=r, world_size=3)
              for r in range(3)]
    whole = ferry.data.PackedDataset(str(reference), tok, seq_len=128, batch_size=4, rank=0, world_size=3)
    assert len({len(p) for p in packed}) == 1 and len(packed[0]) == len(whole) > 0
    assert sum(1 for _ in packed[2]) == len(packed[2])


def test_rerun_skips_verified_shards_and_rewrites_a_damaged_one(cluster, tok, corpus, tmp_path):
    ds = ray.data.read_text(str(corpus), override_num_blocks=6)
    out = tmp_path / "out"
    ferry.ray.write_token_shards(ds, tok, out, target_shard_bytes=64 << 10)
    first = folder_state(out)
    ferry.ray.write_token_shards(ds, tok, out, target_shard_bytes=64 << 10)
    assert folder_state(out) == first  # the same bytes, and no shard rewritten (same mtimes)

    damaged, kept = sorted(n for n in first if n.startswith("tokens-"))[:2]
    path = out / damaged
    path.write_bytes(path.read_bytes()[:-1] + b"\0")  # same size, another checksum
    ferry.ray.write_token_shards(ds, tok, out, target_shard_bytes=64 << 10)
    again = folder_state(out)
    assert {n: h for n, (h, _) in again.items()} == {n: h for n, (h, _) in first.items()}
    assert again[damaged][1] != first[damaged][1] and again[kept] == first[kept]


@pytest.fixture
def map_retries():
    """Ray Data retries a task whose UDF raised this test's injected error (a dead worker's task
    is retried anyway)."""
    context = ray.data.DataContext.get_current()
    saved = context.max_map_retries, context.retried_map_errors
    context.max_map_retries, context.retried_map_errors = 2, ["injected failure"]
    yield
    context.max_map_retries, context.retried_map_errors = saved


@pytest.mark.parametrize("failure", ["raises", "worker dies"])
def test_a_task_that_fails_once_is_retried_into_the_same_shards(cluster, tok, corpus, tmp_path, map_retries,
                                                                failure):
    marker = tmp_path / "failed-once"

    def fails_on_first_attempt(batch):
        # The first attempt of the task holding the first Arabic line fails; its retry passes.
        if not marker.exists() and any(t.startswith("\u0627") for t in batch["text"]):
            marker.write_text("failed")
            if failure == "worker dies":
                os._exit(1)
            raise RuntimeError("injected failure")
        return batch

    ds = ray.data.read_text(str(corpus), override_num_blocks=6).map_batches(fails_on_first_attempt, batch_size=None)
    index = ferry.ray.write_token_shards(ds, tok, tmp_path / "out")
    assert marker.exists()
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == sorted([Path(u).name for u in indexed(index)] + ["index.json"])  # no temporaries
    ours = shard_documents(indexed(index))
    assert collections.Counter(ours) == collections.Counter(
        tuple(ids.tolist()) for ids in tok.encode_ordinary_batch(documents_of(corpus)))

    # The same documents with no failure: the same files.
    clean = ray.data.read_text(str(corpus), override_num_blocks=6)
    ferry.ray.write_token_shards(clean, tok, tmp_path / "clean")
    assert {n: h for n, (h, _) in folder_state(tmp_path / "clean").items()} == \
        {n: h for n, (h, _) in folder_state(tmp_path / "out").items()}


def test_other_sources_and_column_names(cluster, tok, tmp_path):
    texts = [f"document {i}: " + "word " * (i % 17) + "<|endoftext|>" for i in range(500)]
    items = ray.data.from_items([{"body": t, "n": i} for i, t in enumerate(texts)], override_num_blocks=5)
    index = ferry.ray.write_token_shards(items, tok, tmp_path / "items", field="body")
    expected = collections.Counter(tuple(ids.tolist()) for ids in tok.encode_ordinary_batch(texts))
    assert collections.Counter(shard_documents(indexed(index))) == expected

    pq.write_table(pa.table({"text": texts}), tmp_path / "docs.parquet", row_group_size=100)
    parquet = ray.data.read_parquet(str(tmp_path / "docs.parquet"))
    index = ferry.ray.write_token_shards(parquet, tok, tmp_path / "parquet")
    assert collections.Counter(shard_documents(indexed(index))) == expected

    # Special-token text as its id, and the post-processor's tokens, when asked for.
    index = ferry.ray.write_token_shards(items, tok, tmp_path / "special", field="body",
                                         match_special_tokens=True)
    eot = tok.token_to_id("<|endoftext|>")
    assert all(doc[-1] == eot for doc in shard_documents(indexed(index)))


def test_bad_input_is_refused_naming_what_and_where(cluster, tok, corpus, tmp_path):
    with pytest.raises(TypeError, match="expected a ray.data.Dataset, got list"):
        ferry.ray.write_token_shards(["text"], tok, tmp_path / "a")
    with pytest.raises(TypeError, match="expected a ferry.Tokenizer"):
        ferry.ray.write_token_shards(ray.data.from_items([{"text": "x"}]), tok.to_tokenizers(), tmp_path / "a")
    with pytest.raises(ValueError, match="target_shard_bytes"):
        ferry.ray.write_token_shards(ray.data.from_items([{"text": "x"}]), tok, tmp_path / "a",
                                     target_shard_bytes=0)

    # A missing column, found in a task: the error names the block's source file.
    text = ray.data.read_text(str(corpus / "de.txt"), include_paths=True).map_batches(
        lambda b: b.drop_columns(["text"]), batch_format="pyarrow")
    with pytest.raises(KeyError, match=r"the block from .*de\.txt has no column 'text' \(its columns: path\)"):
        ferry.ray.write_token_shards(text, tok, tmp_path / "missing")
    with pytest.raises(KeyError, match="no column 'body'"):
        ferry.ray.write_token_shards(ray.data.from_items([{"text": "x"}]), tok, tmp_path / "b", field="body")

    numbers = ray.data.from_items([{"text": i} for i in range(10)])
    with pytest.raises(TypeError, match="column 'text' is int64, expected strings"):
        ferry.ray.write_token_shards(numbers, tok, tmp_path / "numbers")
    nulls = ray.data.from_arrow(pa.table({"text": ["a", "b", None, "d"]}))
    with pytest.raises(TypeError, match=r"row 2 of a 4-row block \(no 'path' column names its source\): "
                                        "column 'text' is null, expected a string"):
        ferry.ray.write_token_shards(nulls, tok, tmp_path / "nulls")
    for failed in ("missing", "numbers", "nulls"):  # nothing written by a failed call
        assert not (tmp_path / failed).exists() or os.listdir(tmp_path / failed) == []


def test_a_folder_of_another_tokenizer_or_a_corrupt_index_is_refused(cluster, tok, other_tok, tmp_path):
    ds = ray.data.from_items([{"text": f"line {i}"} for i in range(50)])
    out = tmp_path / "out"
    ferry.ray.write_token_shards(ds, tok, out)
    before = folder_state(out)
    with pytest.raises(ValueError, match="this folder was written with another tokenizer"):
        ferry.ray.write_token_shards(ds, other_tok, out)
    assert folder_state(out) == before

    (out / "index.json").write_text('{"format": "something else"}')
    with pytest.raises(ferry.CorruptionError, match="index.json: not a ferry shard index.*remove it"):
        ferry.ray.write_token_shards(ds, tok, out)


def test_shards_of_another_tokenizer_are_refused_without_an_index(cluster, tok, other_tok, tmp_path):
    ds = ray.data.from_items([{"text": f"line {i}"} for i in range(50)], override_num_blocks=2)
    out = tmp_path / "out"
    ferry.ray.write_token_shards(ds, tok, out)
    (out / "index.json").unlink()
    before = folder_state(out)
    with pytest.raises(ValueError, match="this folder was written with another tokenizer.*overwrite=True"):
        ferry.ray.write_token_shards(ds, other_tok, out)
    assert folder_state(out) == before

    index = ferry.ray.write_token_shards(ds, other_tok, out, overwrite=True)
    assert sorted(os.listdir(out)) == sorted([Path(u).name for u in indexed(index)] + ["index.json"])
    assert {ferry._core.read_token_shard_info(u)[5] for u in indexed(index)} == {other_tok.fingerprint}


def test_a_rerun_that_makes_other_shards_is_refused_unless_overwrite(cluster, tok, tmp_path):
    out = tmp_path / "out"
    first = ray.data.from_items([{"text": f"line {i}"} for i in range(60)], override_num_blocks=3)
    ferry.ray.write_token_shards(first, tok, out)
    before = folder_state(out)
    other = ray.data.from_items([{"text": f"other {i}"} for i in range(20)], override_num_blocks=2)
    with pytest.raises(ValueError, match=r"holds another run's shards \(3 of its 3 shards are not among this "
                                         r"run's 2 and 2 of this run's 2 shards are not in its index: .*"
                                         r"left as they were\. Pass overwrite=True"):
        ferry.ray.write_token_shards(other, tok, out)
    # Other options or other blocks over the same documents make other shards too.
    for again, options in ((first, {"add_special_tokens": True}), (first.repartition(2), {})):
        with pytest.raises(ValueError, match="holds another run's shards"):
            ferry.ray.write_token_shards(again, tok, out, **options)
    assert folder_state(out) == before  # nothing written by a refused run

    index = ferry.ray.write_token_shards(other, tok, out, overwrite=True)
    assert sorted(os.listdir(out)) == sorted([Path(u).name for u in indexed(index)] + ["index.json"])
    assert len(shard_documents(sorted(out.glob("*.safetensors")))) == 20  # a glob counts each once


@pytest.mark.filterwarnings("ignore:Use 'expr' instead of 'fn'")  # a filter as users write it
def test_an_empty_dataset_writes_an_empty_index(cluster, tok, tmp_path):
    empty = ray.data.from_items([{"text": "x"}]).filter(lambda row: False)
    index = ferry.ray.write_token_shards(empty, tok, tmp_path / "out")
    assert ferry._core.read_index(index) == []
    with pytest.raises(ValueError, match="index.json lists no token shards: nothing to pack"):
        ferry.data.PackedDataset(index, tok, seq_len=8, batch_size=1)

    # Into the folder of an earlier run, it is another run: refused, that run's index kept.
    ferry.ray.write_token_shards(ray.data.from_items([{"text": "x"}]), tok, tmp_path / "full")
    before = folder_state(tmp_path / "full")
    with pytest.raises(ValueError, match=r"1 of its 1 shards are not among this run's 0"):
        ferry.ray.write_token_shards(empty, tok, tmp_path / "full")
    assert folder_state(tmp_path / "full") == before


def test_a_rerun_rewrites_a_listed_shard_that_is_missing_or_cut_short(cluster, tok, tmp_path):
    ds = ray.data.from_items([{"text": f"line {i}"} for i in range(60)], override_num_blocks=3)
    out = tmp_path / "out"
    index = ferry.ray.write_token_shards(ds, tok, out)
    first = {n: h for n, (h, _) in folder_state(out).items()}
    shard = out / Path(indexed(index)[0]).name
    shard.write_bytes(shard.read_bytes()[:100])
    ferry.ray.write_token_shards(ds, tok, out)
    assert {n: h for n, (h, _) in folder_state(out).items()} == first
    shard.unlink()
    ferry.ray.write_token_shards(ds, tok, out)
    assert {n: h for n, (h, _) in folder_state(out).items()} == first


def test_a_context_that_drops_failed_blocks_is_refused(cluster, tok, tmp_path):
    ds = ray.data.from_items([{"text": "x"}])
    ds.context.max_errored_blocks = 1
    with pytest.raises(ValueError, match="max_errored_blocks is 1: Ray would drop the documents of a block"):
        ferry.ray.write_token_shards(ds, tok, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_index_keeps_the_dataset_order_when_its_context_preserves_it(cluster, tok, tmp_path):
    texts = [f"document {i}" for i in range(80)]
    ordered = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=8)
    ordered.context.execution_options.preserve_order = True
    index = ferry.ray.write_token_shards(ordered, tok, tmp_path / "ordered")
    expected = [tuple(ids.tolist()) for ids in tok.encode_ordinary_batch(texts)]
    assert shard_documents(indexed(index)) == expected

    # Otherwise Ray finishes blocks in any order, and the index lists the shards by name.
    unordered = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=8)
    index = ferry.ray.write_token_shards(unordered, tok, tmp_path / "by_name")
    names = [Path(u).name for u in indexed(index)]
    assert names == sorted(names) and len(names) == 8


def test_output_dir_is_a_path_file_url_or_s3_and_other_schemes_are_refused(cluster, tok, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds = ray.data.from_items([{"text": "x"}])
    index = ferry.ray.write_token_shards(ds, tok, f"file://{tmp_path}/from%20a%20url/")
    assert index == str(tmp_path / "from a url" / "index.json") and os.path.exists(index)
    for url in ("gs://bucket/tokens", "hf://datasets/me/tokens", "https://host/tokens", "local:///tmp/tokens"):
        with pytest.raises(ValueError, match=r"ferry writes to a local path, file:// or s3://, not \w+://"):
            ferry.ray.write_token_shards(ds, tok, url)
    with pytest.raises(ValueError, match="Ray's local:// means the driver's node"):
        ferry.ray.write_token_shards(ds, tok, "local:///tmp/tokens")
    assert os.listdir(tmp_path) == ["from a url"]  # no folder named after a URL in the working directory

    with pytest.raises(ValueError, match=r"b/index.json names an index, expected the folder to write it in: "
                                         r"pass .*/b$"):
        ferry.ray.write_token_shards(ds, tok, tmp_path / "b" / "index.json")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FileExistsError, match="a-file is a file, expected a folder"):
        ferry.ray.write_token_shards(ds, tok, tmp_path / "a-file")


def test_arguments_and_values_are_refused_naming_the_row_and_what_was_expected(cluster, tok, tmp_path):
    ds = ray.data.from_items([{"text": "x"}])
    with pytest.raises(ValueError, match=r"batch_size, fn_kwargs cannot be passed \(reserved: fn, batch_size, "
                                         "batch_format, zero_copy_batch, num_cpus, fn_args"):
        ferry.ray.write_token_shards(ds, tok, tmp_path / "a",
                                     map_batches_args={"fn_kwargs": {}, "concurrency": 1, "batch_size": 8})
    # A fraction of a CPU, as map_batches takes it (encoding on one thread).
    assert len(indexed(ferry.ray.write_token_shards(ds, tok, tmp_path / "half", num_cpus=0.5))) == 1

    # Ray keeps values Arrow cannot hold as strings as Python objects: the task names the row.
    mixed = ray.data.from_pandas(pd.DataFrame({"text": pd.Series(["a", "b", 5, "c"], dtype=object)}))
    with pytest.raises(TypeError, match=r"row 2 of a 4-row block .*: column 'text' is int 5, expected a "
                                        r"string \(Ray keeps a column of mixed types, such as str and int"):
        ferry.ray.write_token_shards(mixed, tok, tmp_path / "mixed")
    surrogate = ray.data.from_items([{"text": "ok"}, {"text": "bad\ud800"}], override_num_blocks=1)
    with pytest.raises(ValueError, match=r"row 1 of a 2-row block .*: column 'text' is not valid Unicode text "
                                         r"\(a lone surrogate '\\ud800' at character 3\)"):
        ferry.ray.write_token_shards(surrogate, tok, tmp_path / "surrogate")


def test_the_tokenizer_travels_by_content_and_is_rebuilt_once_per_process(cluster, tok):
    assert pickle.loads(pickle.dumps(tok)) == tok
    shipped = ferry.ray._ShippedTokenizer(tok)

    @ray.remote
    def rebuild_twice(shipped):
        first, second = shipped.get(), shipped.get()
        return first is second, first.fingerprint

    same, fingerprint = ray.get(rebuild_twice.remote(shipped))
    assert same and fingerprint == tok.fingerprint

    forged = ferry.ray._ShippedTokenizer(tok)
    forged.fingerprint = "0" * 64
    with pytest.raises(Exception, match="the tokenizer arrived with fingerprint .* not the 0000"):
        ray.get(rebuild_twice.remote(forged))


def test_writes_to_s3_through_ferrys_io_and_resumes_there(cluster, tok, other_tok, s3_server):
    if s3_server is None:
        pytest.skip("Ceph radosgw is not installed (apt-get install ceph-mon ceph-osd radosgw)")
    server, client = s3_server
    texts = [f"a line {i} " + "of text " * (i % 11) for i in range(900)]
    ds = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=3)
    out = f"s3://{S3_BUCKET}/ray/tokens"
    index = ferry.ray.write_token_shards(ds, tok, out)
    assert index == f"{out}/index.json"

    def objects():
        listed = client.list_objects_v2(Bucket=S3_BUCKET, Prefix="ray/tokens/")["Contents"]
        return {o["Key"]: (o["ETag"], o["LastModified"]) for o in listed}

    first = objects()
    assert len(first) == 4  # three shards and the index: no multipart leftovers
    urls = indexed(index)
    docs = [tuple(ids.tolist()) for ids in tok.encode_ordinary_batch(texts)]
    ours = []
    for url in urls:
        shard = ferry.numpy.load(ferry.io.read(url))
        ours += [tuple(shard["tokens"][a:b].tolist())
                 for a, b in zip(shard["doc_offsets"][:-1], shard["doc_offsets"][1:])]
    assert collections.Counter(ours) == collections.Counter(docs)
    assert len(ferry.data.PackedDataset(index, tok, seq_len=64, batch_size=2, rank=0, world_size=1)) > 0

    ferry.ray.write_token_shards(ds, tok, out)
    assert objects() == first  # every shard verified and skipped, the index left alone

    with pytest.raises(ValueError, match="this folder was written with another tokenizer") as refused:
        ferry.ray.write_token_shards(ds, other_tok, out)
    with pytest.raises(ferry.Error) as failed:  # a bucket that is not there, found by a task
        ferry.ray.write_token_shards(ds, tok, "s3://no-such-bucket/tokens")
    for error in (refused, failed):
        assert server.secret_key not in str(error.value)

    # Another run is refused there too; overwrite=True replaces it, but cannot delete the two old
    # shards it does not make (its one block is the first block of the earlier run).
    fewer = ray.data.from_items([{"text": t} for t in texts[:300]], override_num_blocks=1)
    with pytest.raises(ValueError, match="holds another run's shards"):
        ferry.ray.write_token_shards(fewer, tok, out)
    assert objects() == first
    with pytest.warns(UserWarning, match="2 shards of the replaced run are left under"):
        ferry.ray.write_token_shards(fewer, tok, out, overwrite=True)
    assert len(indexed(index)) == 1
