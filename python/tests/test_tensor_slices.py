"""safe_open(...).get_slice(name)[index]: values against `safetensors`, and only the slice's bytes read."""

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

import ferry

torch = pytest.importorskip("torch")
safetensors = pytest.importorskip("safetensors")
import ferry.torch  # noqa: E402
import safetensors.torch  # noqa: E402

from fault_server import FaultServer  # noqa: E402  (tests/servers, on the path via conftest)

MODES = ["eager", "lazy", "plaid", "mmap"]
SMALL_STAGING = {"staging_buffer_size": 64 * 1024, "staging_buffers": 2}

# Index forms safetensors' get_slice takes in both frameworks (numpy: no None).
BASIC = [
    (), Ellipsis, 0, -1, 2, slice(None), slice(1, 4), slice(-3, None), slice(None, -2),
    slice(None, None, 2), slice(1, None, 3), slice(4, 1), slice(-100, 100), slice(5, 5),
    (slice(None), 1), (slice(None), -2), (1, 2), (slice(1, 3), slice(None, None, 2)),
    (Ellipsis, 1), (Ellipsis, slice(0, 2)), (0, Ellipsis), (1, Ellipsis, 2),
    (slice(None), slice(None), slice(2, 5)), (slice(None, None, 2), 3, slice(None, None, 3)),
    (np.int64(1), slice(np.int32(1), None)), (-1, -1, -1),
]
# Forms only torch accepts: None, and the advanced ones ferry applies to the whole tensor.
TORCH_ONLY = [None, (slice(None), None), (None, 1, Ellipsis), [0, 2], (0, slice(None), [1, 0]),
              [True, False, True, False, True, False], torch.tensor(1), (Ellipsis, Ellipsis)]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """One file with every shape kind (3-D, 1-D, 0-d, empty) in several dtypes, written by
    safetensors so both libraries read the same bytes."""
    g = torch.Generator().manual_seed(5)
    tensors = {
        "f32": torch.randn(6, 5, 7, generator=g),
        "bf16": torch.randn(6, 5, 7, generator=g).to(torch.bfloat16),
        "f16": torch.randn(6, 4, 9, generator=g).to(torch.float16),
        "bool": torch.rand(6, 5, 7, generator=g) > 0.5,
        "i64": torch.randint(-1000, 1000, (6, 3, 2), generator=g),
        "u8": torch.randint(0, 255, (6, 5, 7), generator=g, dtype=torch.uint8),
        "vector": torch.arange(50, dtype=torch.int32),
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros(6, 0, 3),
        "empty_lead": torch.zeros(0, 4),
    }
    path = tmp_path_factory.mktemp("slices") / "m.safetensors"
    safetensors.torch.save_file(tensors, str(path))
    return path


def outcome(fn):
    """(value, None) or (None, exception type), for comparing what two libraries do."""
    try:
        return fn(), None
    except Exception as e:  # noqa: BLE001 - comparing kinds of failure is the point
        return None, e


def same_array(got, want):
    if isinstance(want, torch.Tensor):
        return got.dtype == want.dtype and got.shape == want.shape and torch.equal(got, want)
    return got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("framework", ["pt", "np"])
def test_values_match_safetensors_for_every_index_form(matrix, mode, framework):
    forms = BASIC + (TORCH_ONLY if framework == "pt" else [])
    with safetensors.safe_open(str(matrix), framework=framework) as ref, \
            ferry.safe_open(matrix, framework=framework, mode=mode, **SMALL_STAGING) as f:
        names = [n for n in ref.keys() if not (framework == "np" and n == "bf16")]
        checked = 0
        for name in names:
            for index in forms:
                want, want_error = outcome(lambda: ref.get_slice(name)[index])
                got, got_error = outcome(lambda: f.get_slice(name)[index])
                if want_error is None:
                    assert got_error is None, (name, index, got_error)
                    assert same_array(got, want), (name, index)
                    checked += 1
                else:  # safetensors refuses it: so must ferry (or ferry reads it as numpy would)
                    if got_error is None:
                        assert framework == "np" and same_array(got, ref.get_tensor(name)[index]), (name, index)
                    elif isinstance(want_error, IndexError):
                        assert isinstance(got_error, IndexError), (name, index, got_error)
        assert checked > 100


def test_bf16_slices_are_raw_bits_in_numpy(matrix):
    want = safetensors.torch.load_file(str(matrix))["bf16"][1:3, :, ::2]
    with ferry.safe_open(matrix, framework="np") as f:
        got = f.get_slice("bf16")[1:3, :, ::2]
    assert got.dtype == np.uint16 and np.array_equal(got, want.view(torch.uint16).numpy())


@pytest.mark.parametrize("mode", MODES)
def test_out_of_range_and_bad_steps_are_clear_errors(matrix, mode):
    with ferry.safe_open(matrix, framework="pt", mode=mode) as f:
        s = f.get_slice("f32")
        with pytest.raises(IndexError, match=(
                r"m.safetensors: tensor 'f32': index 6 is out of bounds for dimension 0 with size 6")):
            s[6]
        with pytest.raises(ferry.OutOfRangeError, match="index -6 is out of bounds for dimension 1 with size 5"):
            s[:, -6]
        with pytest.raises(IndexError, match="too many indices for tensor of dimension 3"):
            s[0, 0, 0, 0]
        with pytest.raises(IndexError, match="too many indices for tensor of dimension 0"):
            f.get_slice("scalar")[0]
        with pytest.raises(ValueError, match="step must be greater than zero"):
            s[::-1]
        with pytest.raises(ValueError, match="slice step cannot be zero"):
            s[::0]
        with pytest.raises(TypeError):
            s[1.5:]
        assert f.get_slice("scalar")[...].item() == 2.5


def test_plaid_slices_neither_evict_nor_hand_out(matrix):
    want = safetensors.torch.load_file(str(matrix))
    with ferry.safe_open(matrix, framework="pt", mode="plaid", **SMALL_STAGING) as f:
        first, second = f.keys()[:2]
        f.get_tensor(first)
        for name in f.keys():
            f.get_slice(name)[...]
            if f.shape(name) and f.shape(name)[0]:
                f.get_slice(name)[[0]]  # an advanced index: a copy of the whole tensor, indexed
        f.get_tensor(first)  # still the current tensor: no EvictedError
        f.get_tensor(second)  # every later one still unread: no EvictedError
        with pytest.raises(ferry.EvictedError):
            f.get_tensor(first)
        assert torch.equal(f.get_slice(first)[1:], want[first][1:])  # evicted, read again


def test_sharded_checkpoint_slices(matrix, tmp_path):
    tensors = safetensors.torch.load_file(str(matrix))
    safetensors.torch.save_file({k: tensors[k] for k in ("f32", "bool")}, str(tmp_path / "a.safetensors"))
    safetensors.torch.save_file({k: tensors[k] for k in ("i64",)}, str(tmp_path / "b.safetensors"))
    weight_map = {"f32": "a.safetensors", "bool": "a.safetensors", "i64": "b.safetensors"}
    (tmp_path / "m.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with ferry.safe_open(tmp_path / "m.safetensors.index.json", framework="pt", mode="lazy") as f:
        assert torch.equal(f.get_slice("i64")[2:4, 1], tensors["i64"][2:4, 1])
        assert torch.equal(f.get_slice("bool")[:, 3], tensors["bool"][:, 3])


@pytest.mark.skipif(ferry._core.cuda_device_count() == 0, reason="needs a CUDA GPU")
@pytest.mark.parametrize("mode", MODES)
def test_slice_to_a_cuda_device(matrix, mode):
    want = safetensors.torch.load_file(str(matrix))["f32"][2:4, :, 1::2]
    with ferry.safe_open(matrix, framework="pt", device="cuda:0", mode=mode) as f:
        got = f.get_slice("f32")[2:4, :, 1::2]
    assert got.device.type == "cuda" and torch.equal(got.cpu(), want)


# --- bytes read ------------------------------------------------------------------------------


@pytest.fixture
def counting_server(tmp_path):
    """A file of BF16 tensors with 512 KiB rows, served by a FaultServer counting its bytes."""
    g = torch.Generator().manual_seed(2)
    tensors = {"w": torch.randn(16, 262144, generator=g).to(torch.bfloat16),
               "b": torch.randn(1000, generator=g)}
    safetensors.torch.save_file(tensors, str(tmp_path / "m.safetensors"))
    server = FaultServer(str(tmp_path))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/m.safetensors", tensors
    server.shutdown()


@pytest.mark.parametrize("mode", ["lazy", "plaid"])
def test_http_slices_read_only_their_bytes(counting_server, mode):
    server, url, tensors = counting_server
    w = tensors["w"]
    with ferry.safe_open(url, framework="pt", mode=mode) as f:
        def served_for(index):
            before = server.bytes_served.get("/m.safetensors", 0)
            got = f.get_slice("w")[index]
            assert torch.equal(got, w[index]), index
            return server.bytes_served["/m.safetensors"] - before

        assert served_for(slice(4, 6)) == 2 * 262144 * 2  # leading rows: their bytes exactly
        assert served_for(7) == 262144 * 2
        # An inner range: one run per row, 8000 bytes each, rows 512 KiB apart: one range
        # request per row, so exactly the slice's bytes.
        assert served_for((slice(None), slice(1000, 5000))) == 16 * 8000
        assert served_for((slice(1, 3), slice(0, 2))) == 2 * 4
        # Every other element: gaps of 2 bytes are read through rather than split.
        nbytes = w.numel() * 2
        assert nbytes // 2 < served_for((slice(None), slice(None, None, 2))) <= nbytes
        assert served_for((Ellipsis, slice(0, 0))) == 0


def test_http_eager_slices_read_nothing_more(counting_server):
    server, url, tensors = counting_server
    with ferry.safe_open(url, framework="pt", mode="eager") as f:
        before = dict(server.bytes_served)
        assert torch.equal(f.get_slice("w")[3:5, 7], tensors["w"][3:5, 7])
        assert server.bytes_served == before


PEAK_RSS_SCRIPT = r"""
import sys
import torch
library, path, mode = sys.argv[1:]

def status(field):  # kB
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

if library == "ferry":
    import ferry
    f = ferry.safe_open(path, framework="pt", mode=mode)
else:
    import safetensors
    f = safetensors.safe_open(path, framework="pt")
with open("/proc/self/clear_refs", "w") as c:
    c.write("5")  # the peak (VmHWM) starts again from the current RSS
base = status("VmRSS")
kept = [f.get_slice(f"t{i}")[0:512] for i in range(4)]  # 1/8 of each tensor's rows
# Every value used (safetensors' slices may be views of pages not read yet): no temporaries.
assert [float(k.sum()) for k in kept] == [float(i * 512 * 2048) for i in range(4)]
print((status("VmHWM") - base) * 1024)
"""


@pytest.fixture(scope="module")
def four_32mib_tensors(tmp_path_factory):
    path = tmp_path_factory.mktemp("rss") / "four.safetensors"
    safetensors.torch.save_file({f"t{i}": torch.full((4096, 2048), float(i)) for i in range(4)}, str(path))
    return path


def peak_rss_growth(library, path, mode=""):
    out = subprocess.run([sys.executable, "-c", PEAK_RSS_SCRIPT, library, str(path), mode],
                         check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


@pytest.mark.parametrize("mode", MODES)
def test_peak_memory_of_a_row_slice_is_the_slice(four_32mib_tensors, mode):
    """Issue 17: a 1/8 row slice of four 32 MiB tensors grew peak RSS by ~150 MiB. Now it
    grows by the slices (16 MiB) and a little, as safetensors' does."""
    slices = 4 * 512 * 2048 * 4
    growth = peak_rss_growth("ferry", four_32mib_tensors, mode)
    reference = peak_rss_growth("safetensors", four_32mib_tensors)
    print(f"{mode}: ferry {growth / 2**20:.1f} MiB, safetensors {reference / 2**20:.1f} MiB")
    assert growth <= slices + (8 << 20)
    assert growth <= max(reference, slices) + (8 << 20)
