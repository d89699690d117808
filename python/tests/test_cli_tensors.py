"""`ferry inspect`, `ferry verify` and `ferry load` on files written by the reference library."""

import json
import re
import struct
import subprocess

import numpy as np
import pytest

from conftest import REPO, nginx_serving

safetensors_numpy = pytest.importorskip("safetensors.numpy")

HOSTILE = REPO / "tests" / "data" / "safetensors_hostile"
MODES = ["eager", "lazy", "plaid", "mmap"]
# XXH3-64 of no bytes (the reference value from xxHash's test vectors), so one recorded checksum
# is known right without a Python xxhash.
XXH3_EMPTY = "2d06800538d394c2"
WRONG = "0000000000000000"

TENSORS = {
    "embed.weight": np.arange(64 * 1000, dtype=np.float32).reshape(64, 1000),  # 256000 bytes
    "layers.0.bias": np.linspace(-1, 1, 33, dtype=np.float16),
    "scalar": np.array(7, dtype=np.int64),
    "empty": np.zeros((0, 5), dtype=np.float64),
    "mask": np.array([True, False, True]),
    "big.u8": (np.arange(3 * 8192 + 5) % 251).astype(np.uint8),  # spans several 4096-byte stages
}
DTYPES = {"embed.weight": "F32", "layers.0.bias": "F16", "scalar": "I64", "empty": "F64",
          "mask": "BOOL", "big.u8": "U8"}
METADATA = {"format": "np", "note": "written by safetensors.numpy"}


def run(ferry_bin, *args):
    return subprocess.run([ferry_bin, *map(str, args)], capture_output=True, timeout=120)


def read_header(path):
    """The header as the file holds it, parsed independently of ferry."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8 : 8 + n])


def write(path, metadata=None):
    safetensors_numpy.save_file(TENSORS, str(path), metadata={**METADATA, **(metadata or {})})
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tensors")
    write(folder / "model.safetensors")
    write(folder / "bad_checksums.safetensors", {
        "ferry.xxh3_64/embed.weight": WRONG,
        "ferry.xxh3_64/big.u8": WRONG,
        "ferry.xxh3_64/empty": XXH3_EMPTY,
    })
    return folder


@pytest.fixture(scope="module")
def server(files):
    with nginx_serving(files) as s:
        yield s


def assert_one_error_line(out, code, *texts):
    assert out.returncode == code, out
    err = out.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("ferry: "), err
    for text in texts:
        assert text in err, err


# --- inspect ---------------------------------------------------------------------------------


def test_inspect_json_matches_the_header_written(ferry_bin, files):
    path = files / "model.safetensors"
    out = run(ferry_bin, "inspect", path, "--json")
    assert out.returncode == 0, out
    assert out.stderr == b""
    got = json.loads(out.stdout)
    n, header = read_header(path)
    assert got["uri"] == str(path)
    assert got["header_size"] == n and got["data_offset"] == 8 + n
    assert got["total_bytes"] == sum(a.nbytes for a in TENSORS.values())
    assert got["total_bytes"] + 8 + n == path.stat().st_size
    assert got["metadata"] == METADATA

    by_name = {t["name"]: t for t in got["tensors"]}
    assert sorted(by_name) == sorted(TENSORS)
    for name, array in TENSORS.items():
        t = by_name[name]
        assert t["dtype"] == DTYPES[name] == header[name]["dtype"]
        assert t["shape"] == list(array.shape) == header[name]["shape"]
        assert t["bytes"] == array.nbytes
        assert t["data_offsets"] == header[name]["data_offsets"]
    offsets = [t["data_offsets"] for t in got["tensors"]]
    assert offsets == sorted(offsets), "tensors are listed in file order"


def test_inspect_text_table_totals_and_metadata(ferry_bin, files):
    path = files / "bad_checksums.safetensors"
    out = run(ferry_bin, "inspect", path)
    assert out.returncode == 0, out
    text = out.stdout.decode()
    lines = text.splitlines()
    assert lines[0] == str(path)
    assert lines[1].split() == ["name", "dtype", "shape", "bytes", "begin", "end"]
    _, header = read_header(path)
    rows = lines[2 : 2 + len(TENSORS)]
    names = [row.split()[0] for row in rows]
    assert names == sorted(TENSORS, key=lambda name: header[name]["data_offsets"])
    for row in rows:
        name = row.split()[0]
        begin, end = header[name]["data_offsets"]
        shape = "[" + ", ".join(str(d) for d in TENSORS[name].shape) + "]"
        assert re.fullmatch(rf"{re.escape(name)} +{DTYPES[name]} +{re.escape(shape)} +"
                            rf"{TENSORS[name].nbytes} +{begin} +{end}", row), row
    total = sum(a.nbytes for a in TENSORS.values())
    assert f"{len(TENSORS)} tensors, {total} bytes" in text
    n, _ = read_header(path)
    assert f"header {n} bytes; data buffer at file offset {n + 8}" in text
    assert "  format: np\n" in text and "  note: written by safetensors.numpy\n" in text
    assert "ferry.xxh3_64" not in text and WRONG not in text
    assert "3 tensors carry ferry checksums" in text
    assert "[]" in text  # the scalar's shape


def test_inspect_over_http_reads_the_same_header(ferry_bin, files, server):
    url = server.url("model.safetensors")
    local = json.loads(run(ferry_bin, "inspect", files / "model.safetensors", "--json").stdout)
    out = run(ferry_bin, "inspect", url, "--json")
    assert out.returncode == 0, out
    remote = json.loads(out.stdout)
    assert remote.pop("uri") == url
    local.pop("uri")
    assert remote == local
    assert run(ferry_bin, "inspect", url).stdout.decode().splitlines()[0] == url


def hostile_cases():
    lines = (HOSTILE / "expected.tsv").read_text().splitlines()
    return [tuple(line.split("\t")) for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("name,expected", hostile_cases())
def test_inspect_and_verify_refuse_hostile_files(ferry_bin, name, expected):
    path = HOSTILE / name
    for command in ("inspect", "verify"):
        out = run(ferry_bin, command, path)
        assert_one_error_line(out, 65, f"ferry: corruption: {path}: ", expected)
        assert out.stdout == b""


def test_inspect_missing_file_and_usage(ferry_bin, files):
    out = run(ferry_bin, "inspect", files / "missing.safetensors")
    assert_one_error_line(out, 66, str(files / "missing.safetensors"))
    out = run(ferry_bin, "inspect")
    assert out.returncode != 0 and b"uri" in out.stderr.lower()


# --- verify ----------------------------------------------------------------------------------


def test_verify_without_checksums_checks_structure_only(ferry_bin, files, server):
    total = sum(a.nbytes for a in TENSORS.values())
    for uri in (files / "model.safetensors", server.url("model.safetensors")):
        out = run(ferry_bin, "verify", uri)
        assert out.returncode == 0, out
        assert out.stderr == b""
        assert out.stdout.decode() == (
            f"{uri}: OK, {len(TENSORS)} tensors, {total} bytes; no checksums recorded (structure only)\n")


def mismatches(stderr):
    """{tensor: (recorded, actual)} from verify's per-tensor lines."""
    found = re.findall(r": tensor '([^']+)': checksum mismatch \(XXH3-64 recorded ([0-9a-f]{16}), "
                       r"data has ([0-9a-f]{16})\)", stderr)
    return {name: (recorded, actual) for name, recorded, actual in found}


def test_verify_reports_every_mismatch_then_fails(ferry_bin, files, server):
    path = files / "bad_checksums.safetensors"
    for uri in (path, server.url(path.name)):
        out = run(ferry_bin, "verify", uri)
        assert out.returncode == 65, out
        assert out.stdout == b""
        err = out.stderr.decode()
        lines = err.splitlines()
        assert len(lines) == 3 and all(line.startswith(f"ferry: corruption: {uri}: ") for line in lines), err
        bad = mismatches(err)
        assert sorted(bad) == ["big.u8", "embed.weight"]  # the empty tensor's checksum is right
        assert all(recorded == WRONG and actual != WRONG for recorded, actual in bad.values())
        assert lines[-1] == (f"ferry: corruption: {uri}: 2 of 3 recorded checksums do not match "
                             f"('embed.weight', 'big.u8')")


def test_verify_hashes_tensors_split_across_staging_buffers(ferry_bin, files, tmp_path):
    # The hashes verify computes must not depend on how tensors are cut into chunks: big.u8 and
    # embed.weight span many 4096-byte staging buffers, and none at the default size.
    path = files / "bad_checksums.safetensors"
    whole = mismatches(run(ferry_bin, "verify", path).stderr.decode())
    split = mismatches(run(ferry_bin, "verify", path, "--staging-buffer-size", 4096).stderr.decode())
    assert whole == split and len(whole) == 2

    # Recorded as verify computed them, every checksum now matches, chunked or not.
    good = write(tmp_path / "good.safetensors",
                 {f"ferry.xxh3_64/{name}": actual for name, (_, actual) in whole.items()}
                 | {"ferry.xxh3_64/empty": XXH3_EMPTY})
    total = sum(a.nbytes for a in TENSORS.values())
    for args in ([], ["--staging-buffer-size", 4096]):
        out = run(ferry_bin, "verify", good, *args)
        assert out.returncode == 0, out
        assert out.stdout.decode() == (f"{good}: OK, {len(TENSORS)} tensors, {total} bytes; "
                                       f"3 checksums verified (3 tensors without one)\n")


def test_verify_warns_about_a_checksum_for_a_missing_tensor(ferry_bin, tmp_path):
    path = write(tmp_path / "orphan.safetensors", {"ferry.xxh3_64/gone": WRONG})
    out = run(ferry_bin, "verify", path)
    assert out.returncode == 0, out
    assert out.stderr.decode() == (
        f"ferry: warning: {path}: checksum recorded for tensor 'gone', which the file does not hold\n")
    assert "no checksums recorded (structure only)" in out.stdout.decode()


# --- load ------------------------------------------------------------------------------------


def load_json(ferry_bin, uri, *args):
    out = run(ferry_bin, "load", uri, "--json", *args)
    assert out.returncode == 0, out
    assert out.stderr == b"", "no progress line when stderr is not a terminal"
    return json.loads(out.stdout)


def assert_loaded_everything(report, uri, mode):
    assert report["uri"] == str(uri) and report["mode"] == mode and report["device"] == "cpu"
    assert report["tensors"] == len(TENSORS)
    assert report["bytes"] == sum(a.nbytes for a in TENSORS.values())
    assert report["seconds"] > 0 and report["gb_per_s"] > 0
    assert report["peak_rss_mib"] > 0


@pytest.mark.parametrize("mode", MODES)
def test_load_local_file(ferry_bin, files, mode):
    path = files / "model.safetensors"
    assert_loaded_everything(load_json(ferry_bin, path, "--mode", mode), path, mode)
    report = load_json(ferry_bin, path, "--mode", mode, "--device", "cpu", "--parallelism", 3,
                       "--part-size", 4096, "--staging-buffers", 3, "--staging-buffer-size", 4096)
    assert_loaded_everything(report, path, mode)


def test_load_text_report(ferry_bin, files):
    path = files / "model.safetensors"
    out = run(ferry_bin, "load", path, "--mode", "plaid")
    assert out.returncode == 0, out
    text = out.stdout.decode()
    total = sum(a.nbytes for a in TENSORS.values())
    assert text.startswith(f"{path}: plaid load to cpu\n")
    assert re.search(rf"^  tensors +{len(TENSORS)}$", text, re.M)
    assert re.search(rf"^  bytes +{total} \(", text, re.M)
    assert re.search(r"^  seconds +\d+\.\d{3}$", text, re.M)
    assert re.search(r"^  GB/s +\d+\.\d{3}$", text, re.M)
    assert re.search(r"^  peak memory +\d+\.\d MiB", text, re.M)


@pytest.mark.parametrize("mode", ["eager", "lazy", "plaid"])
def test_load_over_http(ferry_bin, server, mode):
    url = server.url("model.safetensors")
    assert_loaded_everything(load_json(ferry_bin, url, "--mode", mode), url, mode)
    report = load_json(ferry_bin, url, "--mode", mode, "--parallelism", 2, "--part-size", 4096,
                       "--staging-buffer-size", 4096)
    assert_loaded_everything(report, url, mode)


def test_load_mmap_over_http_is_refused(ferry_bin, server):
    url = server.url("model.safetensors")
    assert_one_error_line(run(ferry_bin, "load", url, "--mode", "mmap"), 64, url, "mmap mode needs a local file")


@pytest.mark.parametrize("mode", MODES)
def test_load_verify(ferry_bin, files, mode):
    bad = files / "bad_checksums.safetensors"
    out = run(ferry_bin, "load", bad, "--mode", mode, "--verify")
    assert_one_error_line(out, 65, f"{bad}: tensor '", "checksum mismatch (XXH3-64 recorded 0000000000000000")
    # Without checksums --verify has nothing to compare and the load succeeds.
    report = load_json(ferry_bin, files / "model.safetensors", "--mode", mode, "--verify")
    assert report["verify"] is True and report["checksums_verified"] == 0


def test_load_device_and_mode_errors(ferry_bin, files):
    path = files / "model.safetensors"
    for device in ("cuda", "cuda:0"):
        assert_one_error_line(run(ferry_bin, "load", path, "--device", device), 64, str(path), "CUDA")
    assert_one_error_line(run(ferry_bin, "load", path, "--device", "tpu"), 64, str(path), "'tpu'")
    out = run(ferry_bin, "load", path, "--mode", "fast")
    assert out.returncode not in (0, 64, 65), out
    assert b"--mode" in out.stderr and out.stdout == b""
    assert_one_error_line(run(ferry_bin, "load", files / "missing.safetensors"), 66, "missing.safetensors")


def test_help_lists_the_tensor_commands(ferry_bin):
    text = run(ferry_bin, "--help").stdout.decode()
    for command in ("inspect", "verify", "load"):
        assert re.search(rf"^  {command} ", text, re.M), text


def test_verify_checks_the_checksums_ferry_writes(ferry_bin, tmp_path):
    import ferry.numpy

    path = tmp_path / "ferry.safetensors"
    ferry.numpy.save_file(TENSORS, path)
    ok = run(ferry_bin, "verify", path, "--staging-buffer-size", 4096)
    assert ok.returncode == 0, ok.stderr
    assert f"{len(TENSORS)} checksums verified" in ok.stdout.decode()
    data = bytearray(path.read_bytes())
    n, header = read_header(path)
    data[8 + n + header["big.u8"]["data_offsets"][0] + 9000] ^= 1
    path.write_bytes(bytes(data))
    bad = run(ferry_bin, "verify", path)
    assert bad.returncode == 65
    assert "tensor 'big.u8': checksum mismatch" in bad.stderr.decode()
