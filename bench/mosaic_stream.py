"""MosaicML streaming on the benchmark's shards, run in its own virtualenv (bench/run.py makes it:
mosaicml-streaming imports torchvision, whose PyPI wheels do not load beside the CPU torch the
main .venv has). dataset_stream.py calls it as a subprocess on the same samples, same run.

  python mosaic_stream.py write OUT_DIR SHARD.tar...   # the shards' samples as MDS, once
  python mosaic_stream.py read MDS_DIR WORKERS BATCH REPEAT
      # REPEAT epochs of StreamingDataset(local=MDS_DIR, shuffle=True) through
      # DataLoader(num_workers=WORKERS), BATCH 0: samples, else batches of BATCH; prints JSON
      # {"seconds": [...], "samples": n, "bytes": b, "digest": ...} (the first epoch checked)

Samples are grouped from the tars as webdataset groups them; every field is an MDS `bytes`
column and the key a `str` column, so an epoch holds exactly the bytes the others read.
"""

import hashlib
import json
import sys
import tarfile
import time

from dataset_stream import grouped  # this folder: the grouping the other anchors use


def tar_samples(path):
    with tarfile.open(path) as tar:
        yield from grouped((m.name, tar.extractfile(m).read()) for m in tar if m.isfile())


def write(out_dir, shards):
    from streaming import MDSWriter

    writer = None
    for shard in shards:
        for sample in tar_samples(shard):
            if writer is None:
                columns = {k: ("str" if k == "__key__" else "bytes") for k in sample}
                writer = MDSWriter(out=out_dir, columns=columns, size_limit=1 << 26)
            writer.write({"__key__": sample["__key__"], **{k: v for k, v in sample.items() if k != "__key__"}})
    writer.finish()


def read(mds_dir, workers, batch, repeat):
    import torch
    from streaming import StreamingDataset
    from streaming.base.util import clean_stale_shared_memory

    def epoch():
        clean_stale_shared_memory()
        ds = StreamingDataset(local=mds_dir, shuffle=True, batch_size=batch or 1)
        loader = torch.utils.data.DataLoader(ds, batch_size=batch or None, num_workers=workers,
                                             collate_fn=None if batch else (lambda s: s))
        entries, total = [], 0
        for item in loader:
            rows = [dict(zip(item, values)) for values in zip(*item.values())] if batch else [item]
            for sample in rows:
                sizes = tuple(sorted((k, len(v)) for k, v in sample.items() if k != "__key__"))
                total += sum(n for _, n in sizes)
                entries.append((sample["__key__"], sizes))
        return entries, total

    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        entries, total = epoch()
        seconds.append(time.perf_counter() - start)
    digest = hashlib.sha256(repr(sorted(entries)).encode()).hexdigest()
    print(json.dumps({"seconds": seconds, "samples": len(entries), "bytes": total, "digest": digest}))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3:])
    else:
        read(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
