"""The ceiling a torch DataLoader's worker-to-main transport puts on binary batches.

    .venv/bin/python bench/loader_transport.py [--batches 300] [--workers 1 2] [--repeat 2] [--size 102400]

Workers yield one prebuilt batch over and over (64 samples of --size random bytes; the default,
100 KiB, is the shape of bench/dataset_stream.py's binary rows), so no reading, parsing or shuffling is measured: only
what every library pays to get a batch from a worker to the training process, in these shapes:

  list of bytes     a columnar batch as webdataset's batched() yields it (pickled)
  one bytes         the same bytes as one object plus int64 offsets (pickled)
  torch tensor      one fresh uint8 tensor plus offsets, which torch's reducer moves through
                    shared memory instead of the pipe
  ByteColumn        ferry.data.ByteColumn as ShardDataset(batched=True) yields it: its buffer
                    allocated in shared memory, then filled (as C++ fills it; ferry does so for
                    buffers of ferry._columns.SHARED_MIN_BYTES or more, whatever --size), the
                    same allocated with torch.empty(n).share_memory_() instead, or a plain
                    tensor filled, which torch's reducer then moves to shared memory, or a bytes
                    object, pickled (as ferry does below SHARED_MIN_BYTES); and one segment
                    refilled for every batch, what recycling segments could reach at best (not
                    safe as it is: it overwrites batches the consumer may still hold)

A loader yielding one of these shapes cannot go faster through W workers than its row here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from ferry._columns import shared_buffer
from ferry.data import ByteColumn

SAMPLES = 64
COLUMN_SHARED = "ByteColumn, filled in shared memory"
COLUMN_SHARE_FIRST = "ByteColumn, filled in torch.empty().share_memory_()"
COLUMN_MOVED = "ByteColumn, filled, then moved by the reducer"
COLUMN_PLAIN = "ByteColumn, a bytes object (pickled)"
COLUMN_REUSED = "ByteColumn, one shared segment refilled (a segment pool's ceiling)"
COLUMNS = (COLUMN_SHARED, COLUMN_SHARE_FIRST, COLUMN_MOVED, COLUMN_PLAIN, COLUMN_REUSED)


class ConstantBatches(torch.utils.data.IterableDataset):
    def __init__(self, batches: int, shape: str, size: int):
        self.batches, self.shape, self.size = batches, shape, size

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        share = self.batches // (info.num_workers if info else 1)
        fields = [os.urandom(self.size) for _ in range(SAMPLES)]
        joined = b"".join(fields)
        offsets = np.arange(SAMPLES + 1, dtype=np.int64) * self.size
        segment = shared_buffer(len(joined))
        for _ in range(share):
            if self.shape == "list of bytes":
                yield {"bin": list(fields)}
            elif self.shape == "one bytes":
                yield {"bin": bytes(joined), "offsets": offsets}
            elif self.shape == "torch tensor":  # fresh per batch, as a reader filling new memory hands over
                yield {"bin": torch.frombuffer(bytearray(joined), dtype=torch.uint8),
                       "offsets": torch.from_numpy(offsets)}
            elif self.shape == COLUMN_PLAIN:  # a new bytes object, as C++ makes and fills one
                yield {"bin": ByteColumn(bytes(memoryview(joined)), offsets)}
            elif self.shape == COLUMN_REUSED:  # (overwrites batches the consumer may still hold)
                segment.numpy()[:] = np.frombuffer(joined, dtype=np.uint8)
                yield {"bin": ByteColumn(segment, offsets)}
            else:
                buffer = shared_buffer(len(joined)) if self.shape == COLUMN_SHARED else \
                    torch.empty(len(joined), dtype=torch.uint8)
                if self.shape == COLUMN_SHARE_FIRST:
                    buffer.share_memory_()
                buffer.numpy()[:] = np.frombuffer(joined, dtype=np.uint8)  # one copy, as C++ fills it
                yield {"bin": ByteColumn(buffer, offsets)}


def samples_per_second(batches: int, shape: str, size: int, workers: int) -> float:
    start = time.perf_counter()
    count = 0
    for batch in torch.utils.data.DataLoader(ConstantBatches(batches, shape, size), batch_size=None,
                                             num_workers=workers):
        count += len(batch["bin"]) if shape == "list of bytes" or shape in COLUMNS \
            else len(batch["offsets"]) - 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--size", type=int, default=100 * 1024, help="bytes per sample")
    args = parser.parse_args()
    cases = [(shape, workers) for shape in ("list of bytes", "one bytes", "torch tensor", *COLUMNS)
             for workers in args.workers]
    rates = {case: [] for case in cases}
    for _ in range(args.repeat):  # round-robin, so that a load that comes and goes hits every case
        for case in cases:
            rates[case].append(samples_per_second(args.batches, case[0], args.size, case[1]))
    print("| batch shape | workers | samples/s | MB/s |\n|---|---:|---:|---:|")
    for (shape, workers), runs in rates.items():
        rate = statistics.median(runs)
        print(f"| {shape} | {workers} | {rate:,.0f} | {rate * args.size / 1e6:,.0f} |")


if __name__ == "__main__":
    main()
