"""The ceiling a torch DataLoader's worker-to-main transport puts on binary batches.

    .venv/bin/python bench/loader_transport.py [--batches 300] [--workers 1 2] [--repeat 2]

Workers yield one prebuilt batch over and over (64 samples of 100 KiB random bytes, the shape of
bench/dataset_stream.py's binary rows), so no reading, parsing or shuffling is measured: only
what every library pays to get a batch from a worker to the training process, in three shapes:

  list of bytes     a columnar batch as webdataset and ferry's batched=True yield it (pickled)
  one bytes         the same bytes as one object plus int64 offsets (pickled)
  torch tensor      one fresh uint8 tensor plus offsets, which torch's reducer moves through
                    shared memory instead of the pipe

A loader yielding one of these shapes cannot go faster through W workers than its row here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

SAMPLES, SIZE = 64, 100 * 1024


class ConstantBatches(torch.utils.data.IterableDataset):
    def __init__(self, batches: int, shape: str):
        self.batches, self.shape = batches, shape

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        share = self.batches // (info.num_workers if info else 1)
        fields = [os.urandom(SIZE) for _ in range(SAMPLES)]
        joined = b"".join(fields)
        offsets = np.arange(SAMPLES + 1, dtype=np.int64) * SIZE
        for _ in range(share):
            if self.shape == "list of bytes":
                yield {"bin": list(fields)}
            elif self.shape == "one bytes":
                yield {"bin": bytes(joined), "offsets": offsets}
            else:  # a fresh tensor per batch, as a reader filling new memory would hand over
                yield {"bin": torch.frombuffer(bytearray(joined), dtype=torch.uint8),
                       "offsets": torch.from_numpy(offsets)}


def samples_per_second(batches: int, shape: str, workers: int) -> float:
    start = time.perf_counter()
    count = 0
    for batch in torch.utils.data.DataLoader(ConstantBatches(batches, shape), batch_size=None,
                                             num_workers=workers):
        count += len(batch["bin"]) if shape == "list of bytes" else len(batch["offsets"]) - 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print("| batch shape | workers | samples/s | MB/s |\n|---|---:|---:|---:|")
    for shape in ("list of bytes", "one bytes", "torch tensor"):
        for workers in args.workers:
            rate = statistics.median(samples_per_second(args.batches, shape, workers)
                                     for _ in range(args.repeat))
            print(f"| {shape} | {workers} | {rate:,.0f} | {rate * SIZE / 1e6:,.0f} |")


if __name__ == "__main__":
    main()
