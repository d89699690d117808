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
    with pytest.raises(TypeError, match="row 2: column 'text' is null, expected a string"):
        ferry.ray.write_token_shards(nulls, tok, tmp_path / "nulls")
    for failed in ("missing", "numbers", "nulls"):  # nothing written by a failed call
        assert not (tmp_path / failed).exists() or os.listdir(tmp_path / failed) == []


def test_a_folder_of_another_tokenizer_or_a_corrupt_index_is_refused(cluster, tok, tmp_path):
    ds = ray.data.from_items([{"text": f"line {i}"} for i in range(50)])
    out = tmp_path / "out"
    ferry.ray.write_token_shards(ds, tok, out)
    before = folder_state(out)
    other = ferry.Tokenizer.from_file(SHARED / "tokenizers" / "hf" / "gpt_neox_20b_tokenizer.json")
    with pytest.raises(ValueError, match="this folder was written with another tokenizer"):
        ferry.ray.write_token_shards(ds, other, out)
    assert folder_state(out) == before

    (out / "index.json").write_text('{"format": "something else"}')
    with pytest.raises(ferry.CorruptionError, match="index.json: not a ferry shard index.*remove it"):
        ferry.ray.write_token_shards(ds, tok, out)


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


def test_writes_to_s3_through_ferrys_io_and_resumes_there(cluster, tok, s3_server):
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

    other = ferry.Tokenizer.from_file(SHARED / "tokenizers" / "hf" / "gpt_neox_20b_tokenizer.json")
    with pytest.raises(ValueError, match="this folder was written with another tokenizer") as refused:
        ferry.ray.write_token_shards(ds, other, out)
    with pytest.raises(ferry.Error) as failed:  # a bucket that is not there, found by a task
        ferry.ray.write_token_shards(ds, tok, "s3://no-such-bucket/tokens")
    for error in (refused, failed):
        assert server.secret_key not in str(error.value)
