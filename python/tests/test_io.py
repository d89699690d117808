import pickle
import re

import pytest

import ferry
from conftest import REPO, make_bytes

DATA = make_bytes(2_500_007)


def test_version_is_the_one_cmake_declares():
    declared = re.search(r"project\(ferry VERSION ([0-9.]+)", (REPO / "CMakeLists.txt").read_text())
    assert ferry.__version__ == declared.group(1)


def test_read_local_file_whole_and_ranges(data_dir):
    path = data_dir / "data.bin"
    assert ferry.io.read(path) == DATA
    assert ferry.io.read(str(path), 5, 100) == DATA[5:105]
    assert ferry.io.read(path, len(DATA) - 1) == DATA[-1:]
    assert ferry.io.read(path, len(DATA)) == b""
    assert ferry.io.read(f"file://{path}", 1000, 3) == DATA[1000:1003]
    assert ferry.io.read(path, parallelism=3, part_size=65536) == DATA


def test_read_empty_and_one_byte_files(data_dir):
    assert ferry.io.read(data_dir / "empty.bin") == b""
    assert ferry.io.read(data_dir / "one.bin") == b"\x07"


def test_missing_file_is_file_not_found_naming_the_path(data_dir):
    missing = data_dir / "missing.bin"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))) as info:
        ferry.io.read(missing)
    assert isinstance(info.value, ferry.NotFoundError)
    assert isinstance(info.value, ferry.Error)


def test_directory_is_a_value_error(data_dir):
    with pytest.raises(ValueError, match="is a directory") as info:
        ferry.io.read(data_dir)
    assert isinstance(info.value, ferry.InvalidArgumentError)


def test_reading_past_the_end_names_offset_and_size(data_dir):
    with pytest.raises(ferry.OutOfRangeError, match=r"read of 10 bytes at offset 2500000 is past the end \(size 2500007\)"):
        ferry.io.read(data_dir / "data.bin", 2_500_000, 10)
    with pytest.raises(ValueError, match="past the end"):
        ferry.io.read(data_dir / "data.bin", 2_500_008)
    with pytest.raises(ValueError, match=">= 0"):
        ferry.io.read(data_dir / "data.bin", -1)


def test_unsupported_scheme_and_bad_uri():
    with pytest.raises(NotImplementedError, match="unsupported scheme 'gopher'") as info:
        ferry.io.read("gopher://127.0.0.1/x")
    assert isinstance(info.value, ferry.UnsupportedError)
    with pytest.raises(ferry.InvalidArgumentError, match="empty URI"):
        ferry.io.read("")


def test_errors_pickle_and_keep_their_class(data_dir):
    try:
        ferry.io.read(data_dir / "missing.bin")
    except ferry.Error as e:
        again = pickle.loads(pickle.dumps(e))
        assert type(again) is ferry.NotFoundError
        assert str(again) == str(e)


def test_every_error_class_has_both_bases():
    for name in ferry.__all__:
        cls = getattr(ferry, name)
        if isinstance(cls, type) and issubclass(cls, ferry.Error) and cls is not ferry.Error:
            assert cls.__module__ == "ferry"
            builtin = [b for b in cls.__mro__[1:] if b.__module__ == "builtins" and b is not Exception]
            assert builtin, f"{name} has no builtin base"


def test_http_reads_over_nginx(nginx_server):
    url = nginx_server.url("data.bin")
    assert ferry.io.read(url, parallelism=1) == DATA
    assert ferry.io.read(url, parallelism=4, part_size=100_000) == DATA
    assert ferry.io.read(url, 2_000_000, 12345) == DATA[2_000_000:2_012_345]
    assert ferry.io.read(nginx_server.url("empty.bin")) == b""


def test_http_404_is_file_not_found(nginx_server):
    url = nginx_server.url("missing.bin")
    with pytest.raises(FileNotFoundError, match=re.escape(url) + ": HTTP 404"):
        ferry.io.read(url)


def test_http_drops_resume_byte_for_byte(fault_server):
    url = f"{fault_server}/data.bin?id=py-drop&drop_after=300001&drops=4"
    assert ferry.io.read(url, parallelism=1) == DATA


def test_http_empty_object_with_a_bare_416(fault_server):
    # Some servers answer bytes=0-0 on an empty object with 416 and no Content-Range.
    assert ferry.io.read(f"{fault_server}/empty.bin?bare_416=1") == b""


def test_http_503_is_retried(fault_server):
    assert ferry.io.read(f"{fault_server}/data.bin?id=py-503&fail=503&fails=2") == DATA


def test_http_server_ignoring_range_is_read_as_one_transfer(fault_server):
    assert ferry.io.read(f"{fault_server}/data.bin?id=py-ignore&ignore_range=1") == DATA


def test_http_object_changing_is_refused(fault_server):
    with pytest.raises(ferry.SourceChangedError, match="changed while being read"):
        ferry.io.read(f"{fault_server}/data.bin?id=py-change&change_after=1")
