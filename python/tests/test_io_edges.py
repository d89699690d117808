"""The I/O edges a user or an attacker meets: secrets in URLs, what remote indexes may name,
stalled and Range-less servers, data that changed under an index. Each test is named after the
defect it guards against."""

import json
import os
import subprocess
import warnings

import numpy as np
import pytest

import ferry
import ferry.data
import ferry.io
import ferry.numpy
import ferry.torch
from test_data import make_tar

CANARIES = ("CANARYPW", "CANARYSIG", "CANARYTOK", "CANARYCRED")


def assert_no_canary(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"{where} echoed a secret: {text!r}"


def failure_text(call) -> str:
    """Everything a user could see of a failed call: the message, repr, notes, warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Exception) as info:
            call()
    e = info.value
    seen = [str(e), repr(e), *getattr(e, "__notes__", []), *(str(w.message) for w in caught)]
    return "\n".join(seen)


def secret_urls(base: str) -> list[str]:
    """URLs holding each kind of credential, against a server that fails each request."""
    host = base.removeprefix("http://")
    return [
        f"http://user:CANARYPW@{host}/x.bin",
        f"http://CANARYTOK@{host}/x.bin",
        f"{base}/x.bin?status=403&X-Amz-Credential=CANARYCRED&X-Amz-Signature=CANARYSIG",
        f"{base}/x.bin?status=404&sig=CANARYSIG&access_token=CANARYTOK",
        f"{base}/shard.tar?status=403&token=CANARYTOK",
    ]


def python_entry_points(url):
    return {
        "ferry.io.read": lambda: ferry.io.read(url),
        "ferry.numpy.load_file": lambda: ferry.numpy.load_file(url),
        "ferry.torch.load_file": lambda: ferry.torch.load_file(url),
        "ferry.safe_open": lambda: ferry.safe_open(url, framework="np"),
        "ferry.text.Tokenizer.from_file": lambda: ferry.text.Tokenizer.from_file(url),
        "ShardDataset(shards)": lambda: next(iter(ferry.data.ShardDataset([url]))),
        "ShardDataset(index=...)": lambda: ferry.data.ShardDataset([], index=url),
        "ShardDataset(skip)": lambda: ferry.data.ShardDataset([url, url], rank=0, world_size=2,
                                                              on_error="skip"),
    }


def test_password_in_url_is_never_echoed_by_python(fault_server):
    for url in secret_urls(fault_server):
        for name, call in python_entry_points(url).items():
            text = failure_text(call)
            assert_no_canary(text, f"{name}({url})")
            assert "127.0.0.1" in text, f"{name}: the message must still name the URL: {text}"


def test_password_in_url_is_never_echoed_by_the_cli(fault_server, ferry_bin, tmp_path):
    (tmp_path / "doc.txt").write_text("hello\n")
    for url in secret_urls(fault_server):
        commands = [["cat", url], ["inspect", url], ["verify", url], ["load", url],
                    ["stream", url], ["stream", "--index", url], ["index", url, "-o", str(tmp_path / "i.json")],
                    ["tokenize", "--tokenizer", url, str(tmp_path / "doc.txt"), "--count"],
                    ["tokenize", "--tokenizer", url, url, "--count"]]
        for args in commands:
            run = subprocess.run([ferry_bin, *args], capture_output=True, text=True, timeout=120)
            assert run.returncode != 0, args
            assert_no_canary(run.stdout + run.stderr, f"ferry {' '.join(args[:1])} {url}")
            assert "127.0.0.1" in run.stderr, run.stderr


def test_aws_endpoint_url_userinfo_is_never_echoed(ferry_bin, monkeypatch):
    env = dict(os.environ, AWS_ENDPOINT_URL="http://AKID:CANARYPW@127.0.0.1:9",
               AWS_ACCESS_KEY_ID="AKID", AWS_SECRET_ACCESS_KEY="CANARYCRED", AWS_REGION="us-east-1")
    run = subprocess.run([ferry_bin, "cat", "s3://bucket/key"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode != 0
    assert_no_canary(run.stdout + run.stderr, "ferry cat s3:// with AWS_ENDPOINT_URL userinfo")
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    assert_no_canary(failure_text(lambda: ferry.io.read("s3://bucket/key")), "ferry.io.read(s3://)")


def test_redact_is_public_and_keeps_what_is_not_secret():
    assert ferry.io.redact("GET http://u:CANARYPW@h/a?sig=CANARYSIG&part=2 failed") == \
        "GET http://u:***@h/a?sig=***&part=2 failed"


# ---------------------------------------------------------------------------------------------
# What a remote index may name


def test_remote_safetensors_index_cannot_read_local_files(tmp_path, fault_server_at):
    local = tmp_path / "local"
    local.mkdir()
    ferry.numpy.save_file({"secret": np.arange(4, dtype=np.float32)}, local / "secret.safetensors")
    served = tmp_path / "served"
    served.mkdir()
    ferry.numpy.save_file({"w": np.ones(4, dtype=np.float32)}, served / "model-1.safetensors")
    base = fault_server_at(served)
    for entry in [(local / "secret.safetensors").as_uri(), "http://127.0.0.2:9/model-1.safetensors",
                  "//127.0.0.2/model-1.safetensors"]:
        (served / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"w": "model-1.safetensors", "secret": entry}}))
        url = f"{base}/model.safetensors.index.json"
        with pytest.raises(ferry.InvalidArgumentError, match="FERRY_ALLOW_CROSS_ORIGIN=1"):
            ferry.numpy.load_file(url)
    # A local-looking absolute path is a path on the index's server, never a local file.
    (served / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"secret": str(local / "secret.safetensors")}}))
    with pytest.raises(ferry.NotFoundError, match="HTTP 404"):
        ferry.numpy.load_file(f"{base}/model.safetensors.index.json")
    # Relative names beside the index still load, and a remote absolute path stays on its host.
    (served / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w": "model-1.safetensors"}}))
    assert ferry.numpy.load_file(f"{base}/model.safetensors.index.json")["w"].tolist() == [1.0] * 4
    (served / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w": "/model-1.safetensors"}}))
    assert ferry.numpy.load_file(f"{base}/model.safetensors.index.json")["w"].tolist() == [1.0] * 4


def test_cross_origin_index_is_an_explicit_opt_in(tmp_path, fault_server_at, monkeypatch):
    local = tmp_path / "local"
    local.mkdir()
    ferry.numpy.save_file({"w": np.arange(3, dtype=np.float32)}, local / "w.safetensors")
    served = tmp_path / "served"
    served.mkdir()
    (served / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w": (local / "w.safetensors").as_uri()}}))
    url = f"{fault_server_at(served)}/model.safetensors.index.json"
    with pytest.raises(ferry.InvalidArgumentError):
        ferry.numpy.load_file(url)
    monkeypatch.setenv("FERRY_ALLOW_CROSS_ORIGIN", "1")
    assert ferry.numpy.load_file(url)["w"].tolist() == [0.0, 1.0, 2.0]


def test_remote_shard_index_cannot_read_local_files(tmp_path, fault_server_at, ferry_bin):
    make_tar(tmp_path / "local.tar", [("a.txt", b"local secret")])
    served = tmp_path / "served"
    served.mkdir()
    make_tar(served / "remote.tar", [("b.txt", b"remote")])
    base = fault_server_at(served)

    def index(url):
        return {"format": "ferry-shard-index-v1", "total_samples": 1, "total_bytes": 10240,
                "shards": [{"url": url, "bytes": 10240, "samples": 1}]}

    (served / "bad.json").write_text(json.dumps(index((tmp_path / "local.tar").as_uri())))
    with pytest.raises(ferry.InvalidArgumentError, match="same scheme and host"):
        ferry.data.ShardDataset([], index=f"{base}/bad.json")
    run = subprocess.run([ferry_bin, "stream", "--index", f"{base}/bad.json"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 64 and "FERRY_ALLOW_CROSS_ORIGIN=1" in run.stderr, run.stderr

    (served / "good.json").write_text(json.dumps(index("remote.tar")))
    samples = list(ferry.data.ShardDataset([], index=f"{base}/good.json"))
    assert [s["txt"] for s in samples] == [b"remote"]


def test_remote_shard_list_stays_on_its_host(tmp_path, fault_server_at, ferry_bin):
    make_tar(tmp_path / "local.tar", [("a.txt", b"local secret")])
    served = tmp_path / "served"
    served.mkdir()
    make_tar(served / "remote.tar", [("b.txt", b"remote")])
    base = fault_server_at(served)
    (served / "bad.txt").write_text(f"remote.tar\n{(tmp_path / 'local.tar').as_uri()}\n")
    run = subprocess.run([ferry_bin, "stream", f"@{base}/bad.txt"], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 64 and "bad.txt:2:" in run.stderr and "same scheme and host" in run.stderr
    (served / "good.txt").write_text("remote.tar\n")
    run = subprocess.run([ferry_bin, "stream", "--keys", f"@{base}/good.txt"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and f"{base}/remote.tar\tb" in run.stdout, run.stderr


def test_ferry_index_records_local_shards_by_absolute_path(tmp_path, ferry_bin):
    (tmp_path / "data").mkdir()
    make_tar(tmp_path / "data" / "s.tar", [("a.txt", b"x")])
    (tmp_path / "out").mkdir()
    run = subprocess.run([ferry_bin, "index", "data/s.tar", "-o", "out/index.json"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "out" / "index.json").read_text())["shards"][0]["url"] == \
        str(tmp_path / "data" / "s.tar")
    # Read from elsewhere, it still names the same shard.
    assert len(list(ferry.data.ShardDataset([], index=str(tmp_path / "out" / "index.json")))) == 1
