"""The rest of the safetensors API: save/load of bytes, save_model/load_model with tied tensors,
device=0 and "meta", and the frameworks ferry does not serve. Checked against `safetensors`."""

import json
import threading

import numpy as np
import pytest

import ferry
import ferry.numpy

torch = pytest.importorskip("torch")
safetensors = pytest.importorskip("safetensors")
import ferry.torch  # noqa: E402
import safetensors.numpy  # noqa: E402
import safetensors.torch  # noqa: E402

from fault_server import FaultServer  # noqa: E402  (tests/servers, on the path via conftest)


def every_dtype():
    g = torch.Generator().manual_seed(3)
    out = {}
    for i, dtype in enumerate(ferry.torch._TORCH_DTYPES.values()):
        raw = torch.randint(0, 255, (3, 5 + i), generator=g, dtype=torch.uint8)
        width = torch.empty((), dtype=dtype).element_size()
        out[f"t{i:02d}"] = raw[:, : (5 + i) // width * width].contiguous().view(dtype) if width > 1 else raw.view(dtype)
    out["bool"] = torch.tensor([True, False, True])
    out["scalar"] = torch.tensor(1.5, dtype=torch.float64)
    out["empty"] = torch.zeros(0, 3, dtype=torch.int32)
    out["Z"] = torch.ones(2, dtype=torch.float32)  # upper case sorts before lower
    return out


# safetensors writes `__metadata__` in hash order (it changes from run to run with two keys or
# more), so byte identity is checked with at most one key; test_metadata_order_is_sorted covers more.
METADATA = [None, {"format": "pt"}, {"a": 'quote " back \\ \b\f\n\r\t \x01 \x7f é \u2028 / 😀'}]


@pytest.mark.parametrize("metadata", METADATA)
def test_torch_save_is_byte_identical_to_safetensors(metadata):
    tensors = every_dtype()
    data = ferry.torch.save(tensors, metadata=metadata)
    assert data == safetensors.torch.save(tensors, metadata=metadata)
    back = ferry.torch.load(data)
    assert sorted(back) == sorted(tensors)
    for name, want in tensors.items():
        got = back[name]
        assert got.dtype == want.dtype and got.shape == want.shape
        assert torch.equal(got.reshape(-1).view(torch.uint8), want.reshape(-1).view(torch.uint8)), name
    assert ferry.torch.save({}) == safetensors.torch.save({})


def test_metadata_order_is_sorted_and_otherwise_identical():
    tensors = {"w": torch.ones(3)}
    metadata = {"b": "1", "a": "2", "c": "3"}
    ours, theirs = ferry.torch.save(tensors, metadata), safetensors.torch.save(tensors, metadata)
    assert ours == ferry.torch.save(tensors, dict(reversed(metadata.items())))  # deterministic
    assert b'"__metadata__":{"a":"2","b":"1","c":"3"}' in ours
    header = lambda d: json.loads(d[8:8 + int.from_bytes(d[:8], "little")])  # noqa: E731
    assert len(ours) == len(theirs) and header(ours) == header(theirs) and ours[-12:] == theirs[-12:]


@pytest.mark.parametrize("metadata", METADATA)
def test_numpy_save_is_byte_identical_to_safetensors(metadata):
    arrays = {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
        "big_endian": np.arange(5, dtype=">i4"),
        "u16": np.arange(7, dtype=np.uint16),
        "c64": np.array([1 + 2j], dtype=np.complex64),
        "b": np.array([True, False]),
        "s": np.array(3.25),
        "e": np.zeros((2, 0), dtype=np.int8),
    }
    data = ferry.numpy.save(arrays, metadata=metadata)
    assert data == safetensors.numpy.save(arrays, metadata=metadata)
    back = ferry.numpy.load(data)
    want = safetensors.numpy.load(data)
    assert sorted(back) == sorted(want)
    for name, w in want.items():
        assert back[name].dtype == w.dtype and back[name].shape == w.shape and np.array_equal(back[name], w)
        assert back[name].flags.writeable  # as safetensors' arrays are
    assert ferry.numpy.load(safetensors.numpy.save(arrays))["big_endian"].tolist() == [0, 1, 2, 3, 4]


def test_load_of_bad_bytes_names_the_field_and_offset():
    data = safetensors.torch.save({"w": torch.arange(10, dtype=torch.float32)})
    header_len = int.from_bytes(data[:8], "little")
    cases = [
        (data[:-3], rf"safetensors bytes: safetensors header: the tensors end at file offset {len(data)} "
                    rf"but the file has {len(data) - 3} bytes \(truncated\)"),
        (data[:5], "safetensors bytes: .*the file has 5 bytes, fewer than the 8-byte header length"),
        (data[:20], f"safetensors bytes: .*header length {header_len} runs past the end of the 20-byte file"),
        (data[:8] + b"{" * header_len + data[8 + header_len:], "safetensors bytes: .*not valid JSON"),
        (data + b"\0", "trailing bytes"),
    ]
    for bad, message in cases:
        for load in (ferry.torch.load, ferry.numpy.load):
            with pytest.raises(ferry.CorruptionError, match=message):
                load(bad)


class TiedLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(30, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.head = torch.nn.Linear(8, 30, bias=False)
        self.head.weight = self.embed.weight  # tied


def test_save_file_refuses_tied_tensors_and_points_to_save_model(tmp_path):
    model = TiedLM()
    path = tmp_path / "m.safetensors"
    with pytest.raises(RuntimeError, match="share memory"):
        safetensors.torch.save_file(model.state_dict(), str(path))  # the behaviour ferry follows
    for save in (lambda: ferry.torch.save_file(model.state_dict(), path), lambda: ferry.torch.save(model.state_dict())):
        with pytest.raises(ferry.InvalidArgumentError, match=(
                r"tensors \['embed.weight', 'head.weight'\] share memory.*ferry.torch.save_model")):
            save()
    assert list(tmp_path.iterdir()) == []
    # Disjoint parts of one storage are not shared: both libraries write them.
    base = torch.arange(10.0)
    parts = {"low": base[:5], "high": base[5:]}
    assert ferry.torch.save(parts) == safetensors.torch.save(parts)


def test_save_model_keeps_the_names_safetensors_keeps(tmp_path):
    torch.manual_seed(0)
    model = TiedLM()
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    ferry.torch.save_model(model, ours, metadata={"format": "pt"})
    safetensors.torch.save_model(model, str(theirs), metadata={"format": "pt"})
    with ferry.safe_open(ours) as a, safetensors.safe_open(str(theirs), framework="pt") as b:
        assert a.keys() == sorted(b.keys()) == ["embed.weight", "norm.bias", "norm.weight"]
        assert a.metadata() == b.metadata() == {"format": "pt", "head.weight": "embed.weight"}
    # The caller's metadata wins where it names a dropped tensor, and is not modified.
    mine = {"head.weight": "mine"}
    ferry.torch.save_model(model, ours, metadata=mine)
    assert ferry.safe_open(ours).metadata() == {"head.weight": "mine"} and mine == {"head.weight": "mine"}


def test_save_model_refuses_tied_names_none_of_which_covers_the_storage(tmp_path):
    class Halves(torch.nn.Module):
        def __init__(self):
            super().__init__()
            whole = torch.zeros(10)
            self.register_buffer("a", whole[:6])
            self.register_buffer("b", whole[4:])

    with pytest.raises(RuntimeError):
        safetensors.torch.save_model(Halves(), str(tmp_path / "x.safetensors"))
    with pytest.raises(ferry.InvalidArgumentError, match=r"\['a', 'b'\] share memory but none of them covers"):
        ferry.torch.save_model(Halves(), tmp_path / "y.safetensors")


def test_save_model_force_contiguous(tmp_path):
    class Transposed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("t", torch.arange(6.0).reshape(2, 3).t())

    path = tmp_path / "t.safetensors"
    with pytest.raises(ferry.InvalidArgumentError, match="tensor 't' is not contiguous; pass force_contiguous=True"):
        ferry.torch.save_model(Transposed(), path, force_contiguous=False)
    ferry.torch.save_model(Transposed(), path)
    assert torch.equal(ferry.torch.load_file(path)["t"], Transposed().t)


@pytest.mark.parametrize("mode", ["plaid", "eager", "lazy", "mmap"])
def test_load_model_matches_safetensors(tmp_path, mode):
    torch.manual_seed(1)
    source = TiedLM()
    path = tmp_path / "m.safetensors"
    safetensors.torch.save_model(source, str(path))
    ours, theirs = TiedLM(), TiedLM()
    result = ferry.torch.load_model(ours, path, mode=mode)
    assert result == safetensors.torch.load_model(theirs, str(path)) == (set(), [])
    for name, value in source.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value) and torch.equal(theirs.state_dict()[name], value)
    assert ours.head.weight.data_ptr() == ours.embed.weight.data_ptr()  # still tied


def test_load_model_missing_and_unexpected_like_safetensors(tmp_path):
    torch.manual_seed(2)
    state = TiedLM().state_dict()
    # Both tied names present, one tensor missing, one extra.
    partial = {"embed.weight": state["embed.weight"].clone(), "head.weight": state["embed.weight"].clone(),
               "norm.weight": state["norm.weight"], "extra": torch.zeros(2)}
    path = tmp_path / "partial.safetensors"
    safetensors.torch.save_file(partial, str(path))
    want = safetensors.torch.load_model(TiedLM(), str(path), strict=False)
    got = ferry.torch.load_model(TiedLM(), path, strict=False)
    assert got == want == ({"norm.bias"}, ["extra", "head.weight"])
    with pytest.raises(ferry.InvalidArgumentError, match=(
            r"checkpoint does not match TiedLM: missing \['norm.bias'\], unexpected \['extra', 'head.weight'\]")):
        ferry.torch.load_model(TiedLM(), path)


@pytest.mark.skipif(ferry._core.cuda_device_count() > 0, reason="a CUDA device is present")
def test_integer_device_is_a_cuda_index(tmp_path):
    path = tmp_path / "m.safetensors"
    ferry.torch.save_file({"w": torch.ones(3)}, path)
    with pytest.raises(ferry.UnsupportedError, match="cannot load to cuda:0"):
        ferry.torch.load_file(path, device=0)
    with pytest.raises(ferry.UnsupportedError, match="cannot load to cuda:1"):
        ferry.safe_open(path, framework="pt", device=1)
    with pytest.raises(ferry.InvalidArgumentError, match="device index -1 is negative"):
        ferry.torch.load_file(path, device=-1)


@pytest.mark.skipif(ferry._core.cuda_device_count() == 0, reason="needs a CUDA GPU")
def test_integer_device_loads_to_that_gpu(tmp_path):
    path = tmp_path / "m.safetensors"
    ferry.torch.save_file({"w": torch.arange(3.0)}, path)
    got = ferry.torch.load_file(path, device=0)["w"]
    assert got.device == torch.device("cuda:0") and got.cpu().tolist() == [0.0, 1.0, 2.0]


def test_meta_device_reads_only_the_header(tmp_path):
    tensors = {"w": torch.randn(64, 1024).to(torch.bfloat16), "b": torch.zeros(7, dtype=torch.int64)}
    safetensors.torch.save_file(tensors, str(tmp_path / "m.safetensors"))
    data = (tmp_path / "m.safetensors").read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    server = FaultServer(str(tmp_path))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/m.safetensors"
        served = lambda: server.bytes_served.pop("/m.safetensors")  # noqa: E731
        for mode in ("eager", "lazy", "mmap"):  # meta needs no bytes, so even mmap takes a URL
            got = ferry.torch.load_file(url, device="meta", mode=mode)
            assert {k: (v.device.type, v.dtype, v.shape) for k, v in got.items()} == {
                k: ("meta", v.dtype, v.shape) for k, v in tensors.items()}
            assert served() < header_end + 1024  # the size probe and the header: no tensor byte
        for mode in ("eager", "lazy", "plaid", "mmap"):
            with ferry.safe_open(url, framework="pt", device="meta", mode=mode) as f:
                assert f.get_tensor("w").is_meta and f.get_tensor("w").dtype == torch.bfloat16
                assert f.get_slice("w")[3:5, ::2].shape == (2, 512) and f.get_slice("w")[0].is_meta
                assert f.get_slice("b")[[0, 2]].shape == (2,)
            assert served() < header_end + 1024
        assert sum(t.numel() * t.element_size() for t in tensors.values()) > 100 * 1024
    finally:
        server.shutdown()
    with pytest.raises(ferry.InvalidArgumentError, match="numpy arrays live on the CPU"):
        ferry.safe_open(tmp_path / "m.safetensors", framework="np", device="meta")


@pytest.mark.parametrize("framework", ["flax", "jax", "mlx", "paddle", "tf"])
def test_frameworks_ferry_does_not_serve_are_unsupported(tmp_path, framework):
    path = tmp_path / "m.safetensors"
    ferry.numpy.save_file({"w": np.ones(2, np.float32)}, path)
    with pytest.raises(ferry.UnsupportedError, match=(
            f"framework '{framework}' is not supported; ferry supports 'np' .* and 'pt'")):
        ferry.safe_open(path, framework=framework)
