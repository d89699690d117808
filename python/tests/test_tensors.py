"""ferry.safe_open, ferry.numpy and ferry.torch against the reference `safetensors` package."""

import gc
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import ferry
import ferry.numpy

torch = pytest.importorskip("torch")
safetensors = pytest.importorskip("safetensors")
import ferry.torch  # noqa: E402
import safetensors.numpy  # noqa: E402
import safetensors.torch  # noqa: E402

from conftest import REPO, nginx_serving  # noqa: E402

MODES = ["eager", "lazy", "plaid", "mmap"]
SHARED_TENSORS = REPO.parent / "shared" / "data" / "tensors"
HOSTILE = REPO / "tests" / "data" / "safetensors_hostile"


def shared_files():
    if not SHARED_TENSORS.is_dir():
        return []
    return sorted(p for p in SHARED_TENSORS.rglob("*.safetensors") if "abuse" not in p.name)


def load_all(path, mode, framework="np", device="cpu", **options):
    """Every tensor through safe_open, copied (plaid views do not outlive the next tensor)."""
    out = {}
    with ferry.safe_open(path, framework=framework, device=device, mode=mode, **options) as f:
        for name in f.keys():
            t = f.get_tensor(name)
            out[name] = t.copy() if framework == "np" else t.clone()
    return out


def assert_same_numpy(got, want):
    assert sorted(got) == sorted(want)
    for name, w in want.items():
        g = got[name]
        assert g.dtype == w.dtype and g.shape == w.shape, name
        assert g.tobytes() == w.tobytes(), name


def assert_same_torch(got, want):
    assert sorted(got) == sorted(want)
    for name, w in want.items():
        g = got[name]
        assert g.dtype == w.dtype and g.shape == w.shape, name
        assert torch.equal(g.view(-1).view(torch.uint8), w.reshape(-1).view(torch.uint8)), name


# --- parity with safetensors on real files ---------------------------------------------------


@pytest.mark.skipif(not shared_files(), reason="shared test data (../shared/data/tensors) is absent")
@pytest.mark.parametrize("mode", MODES)
def test_real_files_load_like_safetensors(mode):
    for path in shared_files():
        want_np = safetensors.numpy.load_file(str(path))
        assert_same_numpy(load_all(path, mode), want_np)
        want_pt = safetensors.torch.load_file(str(path))
        assert_same_torch(load_all(path, mode, framework="pt"), want_pt)
        with safetensors.safe_open(str(path), framework="np") as ref, ferry.safe_open(path, mode=mode) as f:
            assert f.metadata() == ref.metadata()
            assert sorted(f.offset_keys()) == sorted(ref.keys())


def test_abuse_file_is_refused():
    path = SHARED_TENSORS / "syoyo_abuse_attempt_1.safetensors"
    if not path.exists():
        pytest.skip("shared test data (../shared/data/tensors) is absent")
    with pytest.raises(ferry.CorruptionError, match="header length 1000 runs past the end"):
        ferry.safe_open(path)


def hostile_cases():
    lines = (HOSTILE / "expected.tsv").read_text().splitlines()
    return [tuple(line.split("\t")) for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("name,expected", hostile_cases())
def test_hostile_files_are_refused_with_a_clear_error(name, expected):
    path = HOSTILE / name
    for mode in MODES:
        with pytest.raises(ferry.CorruptionError) as info:
            ferry.numpy.load_file(path, mode=mode) if mode != "plaid" else ferry.safe_open(path, mode=mode)
        assert str(path) in str(info.value) and expected in str(info.value)
    if name != "duplicate_names.safetensors":  # the reference keeps one of the duplicates
        with pytest.raises(safetensors.SafetensorError):
            safetensors.numpy.load_file(str(path))


# --- writing ---------------------------------------------------------------------------------


def every_dtype_tensors():
    g = torch.Generator().manual_seed(7)
    out = {}
    for dtype in [torch.bool, torch.uint8, torch.int8, torch.int16, torch.uint16, torch.float16,
                  torch.bfloat16, torch.int32, torch.uint32, torch.float32, torch.complex64,
                  torch.float64, torch.int64, torch.uint64, torch.float8_e4m3fn, torch.float8_e5m2]:
        high = 2 if dtype == torch.bool else 256  # a bool byte other than 0/1 is not a bool
        raw = torch.randint(0, high, (3, 5, dtype.itemsize), dtype=torch.uint8, generator=g)
        out[f"t.{str(dtype).split('.')[1]}"] = raw.view(dtype).reshape(3, 5)
    out["scalar"] = torch.tensor(2.5, dtype=torch.float32)
    out["empty"] = torch.zeros((0, 7), dtype=torch.bfloat16)
    return out


def test_files_ferry_writes_load_identically_in_safetensors(tmp_path):
    tensors = every_dtype_tensors()
    path = tmp_path / "all.safetensors"
    ferry.torch.save_file(tensors, path, metadata={"format": "pt", "note": "é\n\"q\""})
    assert_same_torch(safetensors.torch.load_file(str(path)), tensors)
    with safetensors.safe_open(str(path), framework="pt") as ref:
        metadata = ref.metadata()
    assert metadata["format"] == "pt" and metadata["note"] == "é\n\"q\""
    # The data buffer starts on a page; every tensor on a multiple of its element size.
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    assert (8 + header_len) % 4096 == 0
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    for name, entry in header.items():
        if name != "__metadata__":
            assert entry["data_offsets"][0] % tensors[name].element_size() == 0, name
    for mode in MODES:
        assert_same_torch(load_all(path, mode, framework="pt", verify_checksums=True), tensors)


def test_numpy_round_trip_and_byte_order(tmp_path):
    arrays = {
        "f32": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "big_endian": np.arange(5, dtype=">i4"),
        "bool": np.array([True, False, True]),
        "c64": np.array([1 + 2j], dtype=np.complex64),
        "scalar": np.float64(3.25),
        "strided": np.arange(20, dtype=np.int16).reshape(4, 5)[:, ::2],
    }
    path = tmp_path / "np.safetensors"
    ferry.numpy.save_file(arrays, path)
    ref = safetensors.numpy.load_file(str(path))
    for mode in ("eager", "lazy", "mmap"):
        got = ferry.numpy.load_file(path, mode=mode)
        for name, a in arrays.items():
            np.testing.assert_array_equal(got[name], np.asarray(a))
            np.testing.assert_array_equal(ref[name], np.asarray(a))
    assert got["big_endian"].dtype == np.dtype("<i4")


def test_bf16_is_uint16_bits_in_numpy_and_bfloat16_in_torch(tmp_path):
    t = torch.randn(4, 4).to(torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    ferry.torch.save_file({"x": t}, path)
    a = ferry.numpy.load_file(path)["x"]
    assert a.dtype == np.uint16 and np.array_equal(a, t.view(torch.uint16).numpy())
    assert ferry.torch.load_file(path)["x"].dtype == torch.bfloat16


def test_write_errors_leave_no_file(tmp_path):
    with pytest.raises(ferry.NotFoundError, match="no/such/dir"):
        ferry.numpy.save_file({"a": np.zeros(3)}, tmp_path / "no/such/dir/x.safetensors")
    with pytest.raises(ferry.InvalidArgumentError, match="metadata value 1 of key 'k' must be a str, not int"):
        ferry.numpy.save_file({"a": np.zeros(3)}, tmp_path / "x.safetensors", metadata={"k": 1})
    with pytest.raises(ferry.InvalidArgumentError, match="reserved"):
        ferry.numpy.save_file({"__metadata__": np.zeros(3)}, tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


# Regression: a lone surrogate (or a non-str) as a name escaped as a bare RuntimeError
# "std::bad_cast" (torch: for any non-str name); now the call says which key and why.
@pytest.mark.parametrize("framework", ["numpy", "torch"])
@pytest.mark.parametrize("name, metadata, message", [
    ("\ud800", None, "tensor name '\\ud800' is not valid Unicode: it holds a lone surrogate"),
    ("w", {"k": "a\udcff"}, "metadata value 'a\\udcff' of key 'k' is not valid Unicode"),
    ("w", {"\udfff": "v"}, "metadata key '\\udfff' is not valid Unicode"),
    (1, None, "tensor name 1 must be a str, not int"),
    (b"w", None, "tensor name b'w' must be a str, not bytes"),
    ("w", {2: "v"}, "metadata key 2 must be a str, not int"),
])
def test_unencodable_or_non_str_names_are_refused_naming_the_key(tmp_path, framework, name, metadata, message):
    path = tmp_path / "x.safetensors"
    if framework == "numpy":
        save, value = ferry.numpy.save_file, np.zeros(3, np.float32)
    else:
        save, value = ferry.torch.save_file, torch.zeros(3)
    with pytest.raises(ferry.InvalidArgumentError) as error:
        save({name: value}, path, metadata=metadata)
    assert isinstance(error.value, ValueError)  # as safetensors' UnicodeEncodeError
    assert str(error.value).startswith(f"{path}: {message}")
    assert list(tmp_path.iterdir()) == []


# --- modes -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Tensors smaller and larger than a 64 KiB staging buffer."""
    g = torch.Generator().manual_seed(1)
    tensors = {
        "embed": torch.randn(300, 257, generator=g).to(torch.bfloat16),
        "head": torch.randn(100, 200, generator=g),
        "norm": torch.randn(512, generator=g),
        "count": torch.tensor(9, dtype=torch.int64),
        "empty": torch.zeros(0, 3),
    }
    for i in range(30):
        tensors[f"layers.{i}.bias"] = torch.randn(100 + i, generator=g)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    ferry.torch.save_file(tensors, path)
    return path, tensors


SMALL_STAGING = {"staging_buffer_size": 64 * 1024, "staging_buffers": 2}


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_loads_every_tensor(checkpoint, mode):
    path, tensors = checkpoint
    assert_same_torch(load_all(path, mode, framework="pt", **SMALL_STAGING), tensors)


def test_plaid_keeping_every_tensor_is_safe(checkpoint):
    """tensorizer issue #30: a plaid load whose consumer keeps every tensor (copied out as a
    device copy would be) ends with every byte right, checked only at the end."""
    path, tensors = checkpoint
    kept = {}
    with ferry.safe_open(path, framework="pt", mode="plaid", **SMALL_STAGING) as f:
        for name in f.keys():
            kept[name] = f.get_tensor(name).clone()
    assert_same_torch(kept, tensors)


def test_plaid_evicted_differs_from_missing(checkpoint):
    path, _ = checkpoint
    with ferry.safe_open(path, mode="plaid", **SMALL_STAGING) as f:
        first, second = f.keys()[:2]
        f.get_tensor(first)
        f.get_tensor(second)
        with pytest.raises(ferry.EvictedError, match=f"'{first}' was evicted"):
            f.get_tensor(first)
        with pytest.raises(ferry.NotFoundError, match="no tensor named 'missing'"):
            f.get_tensor("missing")
        assert "missing" not in f and first in f


@pytest.mark.parametrize("mode", MODES)
def test_get_slice_matches_safetensors(checkpoint, mode):
    path, _ = checkpoint
    with safetensors.safe_open(str(path), framework="pt") as ref, \
            ferry.safe_open(path, framework="pt", mode=mode) as f:
        for index in [(slice(10, 20),), (slice(None), slice(5, 9)), (3,), (slice(None, None, 7),)]:
            got, want = f.get_slice("head")[index], ref.get_slice("head")[index]
            assert torch.equal(got, want), index
        s = f.get_slice("embed")
        assert s.get_shape() == [300, 257] and s.get_dtype() == "BF16"
        with pytest.raises(ferry.NotFoundError):
            f.get_slice("nope")


def test_plaid_keys_are_in_file_order_and_other_modes_sorted(checkpoint):
    path, _ = checkpoint
    with ferry.safe_open(path, mode="plaid") as f:
        plaid_keys = f.keys()
        assert plaid_keys == f.offset_keys()
    with ferry.safe_open(path, mode="lazy") as f:
        assert f.keys() == sorted(plaid_keys)


@pytest.mark.parametrize("mode", ["eager", "lazy", "mmap"])
def test_arrays_are_zero_copy_and_outlive_the_reader(checkpoint, mode):
    path, tensors = checkpoint
    with ferry.safe_open(path, mode=mode) as f:
        a = f.get_tensor("head")
        b = f.get_tensor("head")
    assert not a.flags.owndata and np.shares_memory(a, b)
    del f, b
    gc.collect()
    np.testing.assert_array_equal(a, tensors["head"].numpy())


def test_mmap_file_truncated_under_the_reader_is_an_error_not_sigbus(tmp_path):
    # Regression: touching a page past the new end killed the process with SIGBUS. get_tensor
    # now re-checks the size first. (Before the fix the view came back untouched: the test
    # failed without crashing.)
    path = tmp_path / "m.safetensors"
    ferry.numpy.save_file({"big": np.arange(50_000, dtype=np.float32), "small": np.ones(4, np.int8)}, path)
    with ferry.safe_open(path, mode="mmap") as f:
        kept = f.get_tensor("small").copy()
        size = path.stat().st_size
        with open(path, "r+b") as w:
            w.truncate(4096 + 8)
        for name in ("big", "small"):
            with pytest.raises(ferry.SourceChangedError, match=(
                    rf"m.safetensors: the file is now 4104 bytes but was {size} when mapped "
                    rf".*tensor '{name}' is refused.*SIGBUS")):
                f.get_tensor(name)
    assert kept.tolist() == [1, 1, 1, 1]


def test_verify_checksums_names_the_corrupt_tensor(checkpoint, tmp_path):
    path, _ = checkpoint
    bad = tmp_path / "bad.safetensors"
    shutil.copy(path, bad)
    data = bytearray(bad.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    begin = json.loads(data[8 : 8 + header_len])["norm"]["data_offsets"][0]
    data[8 + header_len + begin + 3] ^= 0x40
    bad.write_bytes(bytes(data))
    for mode in MODES:
        with pytest.raises(ferry.CorruptionError, match="tensor 'norm': checksum mismatch"):
            load_all(bad, mode, verify_checksums=True)
        load_all(bad, mode)  # not asked to verify: loads


def test_bad_options_are_clear(checkpoint):
    path, _ = checkpoint
    with pytest.raises(ferry.InvalidArgumentError, match="unknown mode 'fast'"):
        ferry.safe_open(path, mode="fast")
    with pytest.raises(ferry.InvalidArgumentError, match="unknown framework"):
        ferry.safe_open(path, framework="caffe")
    with pytest.raises(ferry.InvalidArgumentError, match="at least 2 staging buffers"):
        ferry.safe_open(path, mode="plaid", staging_buffers=1)
    with pytest.raises(ferry.InvalidArgumentError, match="plaid"):
        ferry.numpy.load_file(path, mode="plaid")


# --- HTTP and sharded checkpoints ------------------------------------------------------------


@pytest.fixture(scope="module")
def served(checkpoint, tmp_path_factory):
    path, tensors = checkpoint
    root = tmp_path_factory.mktemp("www")
    shutil.copy(path, root / "model.safetensors")
    with nginx_serving(root) as server:
        yield server, root, tensors


@pytest.mark.parametrize("mode", ["eager", "lazy", "plaid"])
def test_loads_over_http(served, mode):
    server, _, tensors = served
    url = server.url("model.safetensors")
    assert_same_torch(load_all(url, mode, framework="pt", **SMALL_STAGING), tensors)


def test_mmap_over_http_is_unsupported(served):
    server, _, _ = served
    with pytest.raises(ferry.UnsupportedError, match="mmap mode needs a local file"):
        ferry.safe_open(server.url("model.safetensors"), mode="mmap")


def write_sharded(folder: Path, tensors):
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for file, shard_names in shards.items():
        ferry.torch.save_file({n: tensors[n] for n in shard_names}, folder / file)
        weight_map.update({n: file for n in shard_names})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder / "model.safetensors.index.json"


def test_sharded_checkpoint_loads_as_one(checkpoint, tmp_path):
    _, tensors = checkpoint
    index = write_sharded(tmp_path, tensors)
    for mode in MODES:
        assert_same_torch(load_all(index, mode, framework="pt", **SMALL_STAGING), tensors)
    assert_same_torch(ferry.torch.load_file(index), tensors)
    with ferry.safe_open(index) as f:
        assert f.metadata() == {"total_size": str(sum(t.numel() * t.element_size() for t in tensors.values()))}
        with pytest.raises(ferry.NotFoundError, match="no tensor named 'x'"):
            f.get_tensor("x")


def test_sharded_checkpoint_over_http(served, checkpoint):
    server, root, tensors = served
    write_sharded(root, tensors)
    url = server.url("model.safetensors.index.json")
    assert_same_torch(load_all(url, "plaid", framework="pt", **SMALL_STAGING), tensors)


def test_broken_index_is_corruption(tmp_path):
    (tmp_path / "bad.index.json").write_text('{"weight_map": [1]}')
    with pytest.raises(ferry.CorruptionError, match="not a safetensors index"):
        ferry.safe_open(tmp_path / "bad.index.json")


# --- load_into_module ------------------------------------------------------------------------


class TinyLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(300, 64)
        self.block = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 64))
        self.norm = torch.nn.LayerNorm(64)
        self.head = torch.nn.Linear(64, 300, bias=False)
        self.head.weight = self.embed.weight  # tied
        self.register_buffer("steps", torch.tensor(0, dtype=torch.int64))


@pytest.mark.parametrize("mode", ["plaid", "eager", "mmap"])
def test_load_into_module(tmp_path, mode):
    torch.manual_seed(0)
    source = TinyLM()
    source.steps += 41
    path = tmp_path / "lm.safetensors"
    state = {k: v for k, v in source.state_dict().items() if k != "head.weight"}  # tied: once
    ferry.torch.save_file(state, path)
    target = TinyLM()
    missing, unexpected = ferry.torch.load_into_module(target, path, mode=mode, **SMALL_STAGING)
    assert (missing, unexpected) == ([], [])
    for name, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], value), name
    assert target.head.weight.data_ptr() == target.embed.weight.data_ptr()  # still tied


def test_load_into_module_converts_dtypes(tmp_path):
    torch.manual_seed(0)
    source = TinyLM()
    path = tmp_path / "lm16.safetensors"
    state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v
             for k, v in source.state_dict().items() if k != "head.weight"}
    ferry.torch.save_file(state, path)
    target = TinyLM()
    ferry.torch.load_into_module(target, path, **SMALL_STAGING)
    assert torch.equal(target.norm.weight, state["norm.weight"].float())


def test_read_into_caller_memory(checkpoint):
    path, tensors = checkpoint
    for mode in MODES:
        with ferry.safe_open(path, mode=mode, **SMALL_STAGING) as f:
            for name in f.keys():
                out = torch.empty_like(tensors[name])
                if out.numel():
                    f.read_into(name, out)
                assert torch.equal(out.view(-1).view(torch.uint8), tensors[name].reshape(-1).view(torch.uint8))


def test_load_into_module_mismatches(tmp_path):
    path = tmp_path / "lm.safetensors"
    ferry.torch.save_file({"embed.weight": torch.zeros(300, 64), "extra": torch.zeros(1)}, path)
    with pytest.raises(ferry.InvalidArgumentError, match="missing .*block.0.weight.*unexpected \\['extra'\\]"):
        ferry.torch.load_into_module(TinyLM(), path)
    missing, unexpected = ferry.torch.load_into_module(TinyLM(), path, strict=False)
    assert "block.0.weight" in missing and unexpected == ["extra"]
    ferry.torch.save_file({"embed.weight": torch.zeros(3, 64)}, path)
    with pytest.raises(ferry.InvalidArgumentError, match="shape \\[3, 64\\] in the file, \\[300, 64\\]"):
        ferry.torch.load_into_module(TinyLM(), path, strict=False)


@pytest.mark.skipif(ferry._core.cuda_device_count() > 0, reason="a CUDA device is present")
def test_cuda_without_a_gpu_is_a_clear_error(checkpoint):
    path, _ = checkpoint
    with pytest.raises(ferry.UnsupportedError, match="cannot load to cuda:0"):
        ferry.torch.load_file(path, device="cuda:0")
    with pytest.raises(ferry.UnsupportedError, match="cannot load to cuda:1"):
        ferry.safe_open(path, framework="pt", device="cuda:1", mode="plaid")
    ferry.torch.load_file(path)  # the CPU path is unaffected


@pytest.mark.skipif(ferry._core.cuda_device_count() == 0, reason="needs a CUDA GPU")
@pytest.mark.parametrize("mode", ["eager", "plaid"])
def test_cuda_load_matches_the_file(checkpoint, mode):
    path, tensors = checkpoint
    got = load_all(path, mode, framework="pt", device="cuda:0", **SMALL_STAGING)
    assert all(t.device.type == "cuda" for t in got.values())
    assert_same_torch({k: v.cpu() for k, v in got.items()}, tensors)
