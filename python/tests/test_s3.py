"""s3:// sources against a real S3 server: Ceph radosgw on loopback (tests/servers/radosgw.py).

One server for the whole module (it takes ~15 s to start). boto3 is only used to set up buckets
and objects; every read under test goes through ferry's own SigV4 signing.
"""

import concurrent.futures
import contextlib
import os
import subprocess

import numpy as np
import pytest

import ferry
import ferry.numpy
from conftest import S3_BUCKET as BUCKET, make_bytes, radosgw

boto3 = pytest.importorskip("boto3")

SPECIAL_KEY = "dir/a b+c=é ü.bin"


def put(client, key, data):
    client.put_object(Bucket=BUCKET, Key=key, Body=data)
    return f"s3://{BUCKET}/{key}"


def test_reads_whole_ranges_and_in_parallel(s3_env):
    _, client, _ = s3_env
    data = make_bytes(3_000_017, seed=5)
    uri = put(client, "blob.bin", data)
    assert ferry.io.read(uri) == data
    assert ferry.io.read(uri, offset=1_234_567, length=100_001) == data[1_234_567:1_334_568]
    assert ferry.io.read(uri, parallelism=6, part_size=64 * 1024) == data


def test_keys_with_special_characters(s3_env):
    _, client, _ = s3_env
    uri = put(client, SPECIAL_KEY, b"special bytes")
    assert ferry.io.read(uri) == b"special bytes"


def test_dot_segments_are_part_of_the_key(s3_env):
    _, client, _ = s3_env
    put(client, "dots/b.bin", b"the wrong object")
    uri = put(client, "dots/a/../b.bin", b"the right object")
    assert ferry.io.read(uri) == b"the right object"


def test_empty_object(s3_env):
    _, client, _ = s3_env
    assert ferry.io.read(put(client, "empty.bin", b"")) == b""


def test_wrong_secret_is_refused_without_leaking_it(s3_env):
    _, client, monkeypatch = s3_env
    uri = put(client, "secret-test.bin", b"x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    with pytest.raises(ferry.PermissionDeniedError) as info:
        ferry.io.read(uri)
    message = str(info.value)
    assert uri in message and "SignatureDoesNotMatch" in message
    assert "wrong-secret-value" not in message


def test_anonymous_access_to_a_private_bucket_is_denied(s3_env):
    _, client, monkeypatch = s3_env
    uri = put(client, "private.bin", b"x")
    monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "true")
    with pytest.raises(ferry.PermissionDeniedError, match="AccessDenied.*sent unsigned"):
        ferry.io.read(uri)
    monkeypatch.delenv("AWS_NO_SIGN_REQUEST")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ferry.PermissionDeniedError, match="no credentials found"):
        ferry.io.read(uri)


def test_missing_key_and_bucket_name_both(s3_env):
    with pytest.raises(ferry.NotFoundError, match=f"s3://{BUCKET}/no/such/key.*NoSuchKey"):
        ferry.io.read(f"s3://{BUCKET}/no/such/key")
    with pytest.raises(ferry.NotFoundError, match="s3://no-such-bucket-here/k.*NoSuchBucket"):
        ferry.io.read("s3://no-such-bucket-here/k")


def test_bad_s3_uris(s3_env):
    with pytest.raises(ferry.InvalidArgumentError, match="names a bucket, not an object"):
        ferry.io.read(f"s3://{BUCKET}")
    with pytest.raises(ferry.InvalidArgumentError, match="3 to 63 characters"):
        ferry.io.read("s3://ab/key")


def test_credentials_from_a_profile(s3_env, tmp_path):
    server, client, monkeypatch = s3_env
    uri = put(client, "profile.bin", b"from a profile")
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(
        f"[ci]\naws_access_key_id = {server.access_key}\naws_secret_access_key = {server.secret_key}\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_PROFILE", "ci")
    assert ferry.io.read(uri) == b"from a profile"


def test_tensors_load_from_s3_in_every_network_mode(s3_env, tmp_path):
    _, client, _ = s3_env
    arrays = {"w": np.arange(300_000, dtype=np.float32).reshape(600, 500), "b": np.ones(7, np.int64)}
    path = tmp_path / "m.safetensors"
    ferry.numpy.save_file(arrays, path)
    uri = put(client, "models/m.safetensors", path.read_bytes())
    for mode in ("eager", "lazy", "plaid"):
        with ferry.safe_open(uri, mode=mode, verify_checksums=True, staging_buffer_size=256 * 1024) as f:
            for name in f.keys():
                np.testing.assert_array_equal(f.get_tensor(name), arrays[name])


def test_object_overwritten_mid_read_is_detected(s3_env, tmp_path):
    _, client, _ = s3_env
    arrays = {"a": np.zeros(1000, np.float32), "b": np.zeros(1000, np.float32)}
    path = tmp_path / "x.safetensors"
    ferry.numpy.save_file(arrays, path)
    uri = put(client, "changing.safetensors", path.read_bytes())
    with ferry.safe_open(uri, mode="lazy") as f:
        f.get_tensor("a")
        arrays["b"] += 1  # same size, different bytes: only the ETag tells
        ferry.numpy.save_file(arrays, path)
        put(client, "changing.safetensors", path.read_bytes())
        with pytest.raises(ferry.SourceChangedError, match="changed while being read"):
            f.get_tensor("b")


def test_cli_cat_and_inspect(s3_env, ferry_bin, tmp_path):
    _, client, _ = s3_env
    data = make_bytes(100_000, seed=9)
    uri = put(client, "cli.bin", data)
    out = subprocess.run([ferry_bin, "cat", uri, "--offset", "10", "--length", "1000"],
                         capture_output=True, check=True)
    assert out.stdout == data[10:1010]
    path = tmp_path / "m.safetensors"
    ferry.numpy.save_file({"w": np.ones((3, 4), np.float16)}, path)
    model = put(client, "cli/m.safetensors", path.read_bytes())
    inspected = subprocess.run([ferry_bin, "inspect", model, "--json"], capture_output=True, check=True)
    assert b'"name":"w"' in inspected.stdout and b'"F16"' in inspected.stdout


def test_listing_with_pagination_and_patterns(s3_env):
    _, client, _ = s3_env
    keys = [f"shards/train-{i:04d}.tar" for i in range(1005)]  # more than one 1000-key page
    keys += ["shards/val-0000.tar", "shards/sub/deep.tar", "shards/a b+c=é.tar", "other/x.tar"]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=BUCKET, Key=k, Body=b""), keys))
    under = ferry.io.list(f"s3://{BUCKET}/shards/")
    assert under == sorted(f"s3://{BUCKET}/{k}" for k in keys if k.startswith("shards/"))
    train = ferry.io.list(f"s3://{BUCKET}/shards/train-*.tar")
    assert len(train) == 1005 and train[0].endswith("train-0000.tar")
    assert ferry.io.list(f"s3://{BUCKET}/shards/*.tar")[-1] == f"s3://{BUCKET}/shards/val-0000.tar"
    assert f"s3://{BUCKET}/shards/sub/deep.tar" not in ferry.io.list(f"s3://{BUCKET}/shards/*.tar")
    assert ferry.io.list(f"s3://{BUCKET}/shards/a b*") == [f"s3://{BUCKET}/shards/a b+c=é.tar"]
    with pytest.raises(ferry.NotFoundError, match="no object matches"):
        ferry.io.list(f"s3://{BUCKET}/shards/*.zip")


def test_local_globs(tmp_path):
    for name in ("b.tar", "a.tar", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert ferry.io.list(tmp_path / "*.tar") == [str(tmp_path / "a.tar"), str(tmp_path / "b.tar")]
    assert ferry.io.list(tmp_path / "c.txt") == [str(tmp_path / "c.txt")]
    with pytest.raises(ferry.NotFoundError):
        ferry.io.list(tmp_path / "*.zip")


@pytest.mark.parametrize("size", [1000, 21 << 20, 75 << 20])  # one PUT; 3 parts; 10 parts (4 at once)
def test_save_file_uploads_to_s3(s3_env, size):
    _, client, _ = s3_env
    arrays = {"w": np.frombuffer(make_bytes(size, seed=3), dtype=np.uint8)}
    uri = f"s3://{BUCKET}/uploads/m-{size}.safetensors"
    ferry.numpy.save_file(arrays, uri, metadata={"k": "v"})
    got = ferry.numpy.load_file(uri, verify_checksums=True)
    np.testing.assert_array_equal(got["w"], arrays["w"])
    assert client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_failed_upload_leaves_nothing(s3_env):
    _, client, monkeypatch = s3_env
    uri = f"s3://{BUCKET}/uploads/denied.safetensors"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    with pytest.raises(ferry.PermissionDeniedError, match="SignatureDoesNotMatch"):
        ferry.numpy.save_file({"w": np.zeros(3 << 20, np.float32)}, uri)
    assert "Contents" not in client.list_objects_v2(Bucket=BUCKET, Prefix="uploads/denied")


def test_dataset_shards_stream_from_s3(s3_env, tmp_path, ferry_bin):
    import io as _io
    import tarfile

    import ferry.data

    _, client, _ = s3_env
    for i in range(2):
        buf = _io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for j in range(3):
                for field, data in (("txt", b"text %d %d" % (i, j)), ("cls", b"%d" % j)):
                    info = tarfile.TarInfo(f"s{i}/{j:03d}.{field}")
                    info.size = len(data)
                    tar.addfile(info, _io.BytesIO(data))
        put(client, f"wds/shard-{i}.tar", buf.getvalue())
    samples = list(ferry.data.samples(f"s3://{BUCKET}/wds/shard-*.tar"))
    assert [s["__key__"] for s in samples] == [f"s{i}/{j:03d}" for i in range(2) for j in range(3)]
    assert samples[4]["txt"] == b"text 1 1" and samples[4]["__url__"] == f"s3://{BUCKET}/wds/shard-1.tar"
    # An index written to S3, an exact split read from it, and the CLI streaming one rank.
    index = f"s3://{BUCKET}/wds/index.json"
    subprocess.run([ferry_bin, "index", f"s3://{BUCKET}/wds/shard-*.tar", "-o", index], check=True,
                   capture_output=True)
    ranks = [[s["__key__"] for s in ferry.data.ShardDataset(None, index=index, rank=r, world_size=2,
                                                            shuffle_buffer=2, batch_size=3)]
             for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == sorted(s["__key__"] for s in samples) and len(ranks[0]) == 3
    out = subprocess.run([ferry_bin, "stream", "--index", index, "--rank", "1", "--world-size", "2", "--json"],
                         capture_output=True, check=True, text=True)
    assert '"samples": 3' in out.stdout


@contextlib.contextmanager
def fault_s3(tmp_path, monkeypatch, credentials=None, **faults):
    """The loopback fault server as an S3 endpoint, serving tmp_path/bucket/*, with `faults`
    (FaultServer's s3_* options); requests unsigned unless `credentials` (key, secret) are given."""
    import threading

    from fault_server import FaultServer

    (tmp_path / "bucket").mkdir(exist_ok=True)
    server = FaultServer(str(tmp_path), **faults)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                     "AWS_ENDPOINT_URL_S3", "AWS_NO_SIGN_REQUEST", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(name, raising=False)
        if credentials:
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials[0])
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials[1])
        else:
            monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "true")
        yield server
    finally:
        server.shutdown()


@pytest.mark.parametrize("slowdowns", [3, 1000])
def test_s3_throttling_is_retried_then_reported(tmp_path, monkeypatch, slowdowns):
    """503 SlowDown (a throttled bucket) is retried; when it does not stop, the error names the
    bucket, the key and S3's code. Against the loopback fault server playing a throttled S3."""
    payload = os.urandom(100_000)
    with fault_s3(tmp_path, monkeypatch, s3_slowdown=slowdowns) as server:
        (tmp_path / "bucket" / "data.bin").write_bytes(payload)
        if slowdowns == 3:  # fewer than the retry budget (8 attempts without progress)
            assert ferry.io.read("s3://bucket/data.bin") == payload
            assert server.counters["(every request)"] > slowdowns  # it was refused, then served
        else:
            with pytest.raises(ferry.UnavailableError, match=r"s3://bucket/data.bin.*SlowDown"):
                ferry.io.read("s3://bucket/data.bin")


def test_a_request_signed_for_the_wrong_region_says_which_one(tmp_path, monkeypatch):
    """radosgw accepts any region, so this runs against the loopback fault server playing an S3
    that enforces one, as AWS does (400 AuthorizationHeaderMalformed with <Region>)."""
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    with fault_s3(tmp_path, monkeypatch, ("AKIDEXAMPLE", secret), s3_region="eu-west-1"):
        (tmp_path / "bucket" / "data.bin").write_bytes(b"x" * 1000)
        with pytest.raises(ferry.Error, match=r"s3://bucket/data.bin.*AuthorizationHeaderMalformed.*"
                                              r"expecting 'eu-west-1'.*set AWS_REGION=eu-west-1") as error:
            ferry.io.read("s3://bucket/data.bin")
        assert secret not in str(error.value)
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        assert ferry.io.read("s3://bucket/data.bin") == b"x" * 1000


def test_tensor_slices_from_s3_read_only_their_bytes(tmp_path, monkeypatch):
    """get_slice over s3:// asks for the slice's ranges only (the fault server playing S3 counts
    the body bytes it serves)."""
    rows = np.arange(64 * 8192, dtype=np.float32).reshape(64, 8192)  # 32 KiB rows
    with fault_s3(tmp_path, monkeypatch) as server:
        ferry.numpy.save_file({"w": rows}, tmp_path / "bucket" / "m.safetensors")
        for mode in ("lazy", "plaid"):
            with ferry.safe_open("s3://bucket/m.safetensors", mode=mode) as f:
                before = server.bytes_served["/bucket/m.safetensors"]
                np.testing.assert_array_equal(f.get_slice("w")[8:16], rows[8:16])
                assert server.bytes_served["/bucket/m.safetensors"] - before == 8 * 32768
