import re
import subprocess

from conftest import make_bytes

DATA = make_bytes(2_500_007)


def run(ferry_bin, *args):
    return subprocess.run([ferry_bin, *args], capture_output=True, timeout=120)


def test_version_and_help(ferry_bin):
    import ferry

    version = run(ferry_bin, "--version")
    assert version.returncode == 0
    assert version.stdout.decode().startswith(f"ferry {ferry.__version__} (")
    for args in (["--help"], []):
        out = run(ferry_bin, *args)
        assert out.returncode == 0
        assert "cat" in out.stdout.decode()


def test_cat_file_and_ranges(ferry_bin, data_dir):
    path = str(data_dir / "data.bin")
    assert run(ferry_bin, "cat", path).stdout == DATA
    assert run(ferry_bin, "cat", path, "--offset", "7", "--length", "1000").stdout == DATA[7:1007]
    assert run(ferry_bin, "cat", path, "--offset", str(len(DATA))).stdout == b""


def test_cat_http(ferry_bin, nginx_server):
    url = nginx_server.url("data.bin")
    assert run(ferry_bin, "cat", url).stdout == DATA
    out = run(ferry_bin, "cat", url, "--connections", "3", "--part-size", "65536", "--offset", "99")
    assert out.returncode == 0
    assert out.stdout == DATA[99:]


def test_cat_errors_are_one_line_naming_the_uri(ferry_bin, data_dir, nginx_server):
    cases = [
        ([str(data_dir / "missing.bin")], 66, "missing.bin: cannot open"),
        ([nginx_server.url("missing.bin")], 66, re.escape(nginx_server.url("missing.bin")) + ": HTTP 404"),
        ([str(data_dir / "data.bin"), "--offset", "1", "--length", str(len(DATA))], 64, "past the end"),
        ([str(data_dir)], 64, "is a directory"),
        (["ftp://127.0.0.1/x"], 64, "unsupported scheme"),
    ]
    for args, code, message in cases:
        out = run(ferry_bin, "cat", *args)
        assert out.returncode == code, (args, out)
        assert out.stdout == b""
        err = out.stderr.decode()
        assert err.count("\n") == 1 and err.startswith("ferry: "), err
        assert re.search(message, err), err


def test_cat_usage_error(ferry_bin):
    out = run(ferry_bin, "cat")
    assert out.returncode != 0
    assert b"uri" in out.stderr.lower()
