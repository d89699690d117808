"""Host -> GPU: ferry's device load against a plain pinned copy and the reference loaders.

    .venv/bin/python bench/gpu/h2d.py [--repeat 5] [--device cuda:0]

Needs a CUDA GPU and a CUDA build of torch (exits with a message otherwise). Cases, each timed
from the call to the last byte on the device (torch.cuda.synchronize), page cache warm:

  pinned cudaMemcpy   one pinned host buffer of the checkpoint's size copied to the device: the
                      host->device limit, without any file reading (the baseline)
  ferry               ferry.torch.load_file(path, device=...): pinned staging buffers, reads
                      overlapping asynchronous copies, one device allocation
  safetensors         safetensors.torch.load_file(path, device=...)
  tensorizer          TensorDeserializer(path, device=...)

Every loader's tensors are compared with the checkpoint on the device before timing. Uses the
checkpoint bench/tensor_load.py generates (.cache/bench).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import tensor_load  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cuda:0")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("bench/gpu: no CUDA device visible to torch; nothing to measure here")
    import ferry
    import ferry.torch
    import safetensors.torch
    from tensorizer import TensorDeserializer

    st, tz = tensor_load.make_checkpoint()
    size = st.stat().st_size
    device = torch.device(args.device)

    pinned = torch.empty(size, dtype=torch.uint8, pin_memory=True)
    pinned.view(-1)[::4096] = 1
    on_device = torch.empty(size, dtype=torch.uint8, device=device)

    def pinned_copy():
        on_device.copy_(pinned, non_blocking=True)

    def load_ferry():
        return ferry.torch.load_file(st, device=args.device)

    def load_safetensors():
        return safetensors.torch.load_file(str(st), device=args.device)

    def load_tensorizer():
        with TensorDeserializer(str(tz), device=args.device) as d:
            return dict(d.items())

    cases = [("pinned cudaMemcpy", pinned_copy), ("ferry", load_ferry),
             ("safetensors", load_safetensors), ("tensorizer", load_tensorizer)]
    want = safetensors.torch.load_file(str(st))
    for label, fn in cases[1:]:
        got = fn()
        for name, t in want.items():
            if not torch.equal(got[name].cpu().view(torch.uint8), t.view(torch.uint8)):
                sys.exit(f"bench/gpu: {label} loaded different bytes for {name}")
        del got
    times = {label: [] for label, _ in cases}
    for _ in range(args.repeat):
        for label, fn in cases:
            torch.cuda.synchronize(device)
            start = time.perf_counter()
            result = fn()
            torch.cuda.synchronize(device)
            times[label].append(time.perf_counter() - start)
            del result
            torch.cuda.empty_cache()
    print(f"\n{torch.cuda.get_device_name(device)}, {size / 1e9:.2f} GB checkpoint, median of {args.repeat}\n")
    print("| case | GB/s | ratio to pinned cudaMemcpy |")
    print("|---|---:|---:|")
    base = statistics.median(times["pinned cudaMemcpy"])
    for label, _ in cases:
        t = statistics.median(times[label])
        print(f"| {label} | {size / t / 1e9:.2f} | {base / t:.2f}x |")


if __name__ == "__main__":
    main()
