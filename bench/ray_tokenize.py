"""A corpus -> token shards on a local Ray cluster: ferry.ray.write_token_shards vs Ray Data's own
path (map_batches with Hugging Face `tokenizers` encode_batch, written as parquet), same cluster,
same documents, same run; and ferry.ray vs plain `ferry tokenize` on this machine (Ray's cost).

Run through `scripts/bench.sh --only ray` (bench/run.py calls `run()`). Documents: the English
corpus (tinyshakespeare + Moby Dick, one document per non-empty line) and the 21
multilingual_sentences files, as text files read by `ray.data.read_text`. Before timing counts,
the ids of both Ray paths are checked equal, as multisets of documents (block order is Ray's).
Each case runs once per round into a fresh folder (a re-run into the same folder would skip).
The tokenizer's pickle size and its rebuild time on a worker are printed too.
"""

import collections
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
GPT2 = SHARED / "tokenizers" / "hf" / "gpt2_tokenizer.json"
FERRY = Path(sys.executable).parent / "ferry"


def corpora(folder: Path) -> dict[str, list[Path]]:
    english = folder / "english"
    english.mkdir()
    for name in ("tinyshakespeare.txt", "moby_dick_pg2701.txt"):
        shutil.copy(SHARED / "corpora" / name, english / name)
    return {"English": sorted(english.iterdir()),
            "multilingual": sorted((SHARED / "corpora" / "multilingual_sentences").glob("*.txt"))}


def ray_tokenizers(paths, tokenizer_file, out):
    """Ray Data's usual path: a tokenizers Tokenizer per task batch, ids to parquet."""
    import ray.data
    import tokenizers

    def encode(batch):
        tok = tokenizers.Tokenizer.from_file(tokenizer_file)  # what travels: the file name
        ids = [e.ids for e in tok.encode_batch(list(batch["text"]), add_special_tokens=False)]
        return {"ids": ids}

    ray.data.read_text([str(p) for p in paths]).filter(lambda r: r["text"] != "").map_batches(
        encode, batch_size=4096).write_parquet(str(out))


def run(args, rows):
    import pyarrow.parquet as pq
    import ray
    import ray.data

    import ferry
    import ferry.numpy
    import ferry.ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    tok = ferry.Tokenizer.from_file(GPT2)
    payload = pickle.dumps(tok)

    @ray.remote
    def rebuild(data):
        start = time.perf_counter()
        pickle.loads(data)
        return time.perf_counter() - start

    seconds = ray.get(rebuild.remote(payload))
    print(f"ray: tokenizer pickle {len(payload) / 1e6:.2f} MB, rebuilt on a worker in {seconds * 1e3:.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, paths in corpora(tmp).items():
            total = sum(len(l.encode()) for p in paths for l in p.read_text(encoding="utf-8").splitlines() if l)
            times = collections.defaultdict(list)
            sizes = {}
            for round_ in range(args.repeat):
                for case in ("ferry.ray", "ray+tokenizers", "ferry tokenize"):
                    out = tmp / f"{name}-{case.replace(' ', '_')}-{round_}"
                    start = time.perf_counter()
                    if case == "ferry.ray":
                        ds = ray.data.read_text([str(p) for p in paths]).filter(lambda r: r["text"] != "")
                        index = ferry.ray.write_token_shards(ds, tok, out)
                    elif case == "ray+tokenizers":
                        ray_tokenizers(paths, str(GPT2), out)
                    else:
                        subprocess.run([str(FERRY), "tokenize", "--tokenizer", str(GPT2), *map(str, paths),
                                        "-o", str(out) + ".safetensors"], check=True, capture_output=True)
                    times[case].append(time.perf_counter() - start)
                    if round_ == 0:
                        sizes[case] = sum(f.stat().st_size for f in Path(str(out) + (".safetensors" if case == "ferry tokenize" else "")).rglob("*") if f.is_file()) \
                            if case != "ferry tokenize" else Path(str(out) + ".safetensors").stat().st_size
                        if case == "ray+tokenizers":
                            theirs = collections.Counter(tuple(ids) for ids in pq.read_table(out)["ids"].to_pylist())
                            ours = collections.Counter()
                            for url, *_ in ferry._core.read_index(index):
                                shard = ferry.numpy.load_file(url)
                                o = shard["doc_offsets"]
                                ours.update(tuple(shard["tokens"][a:b].tolist()) for a, b in zip(o[:-1], o[1:]))
                            if ours != theirs:
                                sys.exit(f"bench ray: {name}: ferry.ray's ids differ from tokenizers'")
            med = {c: sorted(t)[len(t) // 2] for c, t in times.items()}
            mbps = {c: total / 1e6 / s for c, s in med.items()}
            for case, baseline in (("ferry.ray", "ray+tokenizers"), ("ferry.ray", "ferry tokenize")):
                rows.append((f"ray tokenize gpt2, {name} ({total / 1e6:.1f} MB text)",
                             f"{case} {mbps[case]:.1f} MB/s ({sizes[case] / 1e6:.1f} MB out) vs "
                             f"{baseline} {mbps[baseline]:.1f} MB/s ({sizes[baseline] / 1e6:.1f} MB out)",
                             mbps[case] / 1e3, med[baseline] / med[case], baseline))
    ray.shutdown()
