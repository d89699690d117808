"""The `tokenizers` Encoding API: ferry vs Hugging Face `tokenizers`, same texts, same run.

Run through `scripts/bench.sh --only encoding` (bench/run.py calls `run()`). BERT (WordPiece)
and Phi-3 (SentencePiece BPE) tokenizer.json on 64-line English chunks and on single
multilingual sentences, batches of 1024 on every core, with truncation to 128 ids (stride 16,
overflowing kept) and padding to the batch's longest:
  encode_batch         list of Encodings; every attribute ferry computes (ids, tokens, type_ids,
                       attention_mask, special_tokens_mask, sequence_ids, overflowing) is checked
                       equal first; the timed call reads .ids and .attention_mask of each
  offsets              the same, reading .offsets and .word_ids too (what token classification and
                       question answering read): ferry computes them in a second pass when first
                       read, tokenizers always (so the encode_batch row charges it for them too)
  columns              ferry encode_batch_arrays (numpy [batch, len]) vs tokenizers encode_batch
                       then numpy arrays of ids and attention masks (what a collate function does)
Every attribute, offsets and word ids included, is checked equal first.
"""

from pathlib import Path

from timing import median_seconds
from tokenize_text import SHARED, chunks

ATTRIBUTES = ("ids", "tokens", "type_ids", "attention_mask", "special_tokens_mask", "sequence_ids", "offsets",
              "word_ids")


def texts() -> dict[str, list[str]]:
    corpus = SHARED / "corpora"
    sentences = []
    for path in sorted((corpus / "multilingual_sentences").glob("*.txt")):
        sentences += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {
        "English chunks": chunks([corpus / "tinyshakespeare.txt"])[:1024],
        "multilingual sentences": sentences[:4096],
    }


def attributes(e) -> tuple:
    return tuple(getattr(e, k) for k in ATTRIBUTES) + (tuple(attributes(o) for o in e.overflowing),)


def run(args, rows):
    import numpy as np
    import tokenizers

    import ferry

    for name in ("bert_base_uncased", "phi3_mini"):
        path = SHARED / "tokenizers" / "hf" / f"{name}_tokenizer.json"
        if not path.is_file():
            print(f"encoding: {path} absent, skipped")
            continue
        ours, ref = ferry.Tokenizer.from_file(path), tokenizers.Tokenizer.from_file(str(path))
        for tok in (ours, ref):
            tok.enable_truncation(128, stride=16)
            tok.enable_padding()
        for kind, docs in texts().items():
            batches = [docs[i : i + 1024] for i in range(0, len(docs), 1024)]
            mb = sum(len(d.encode()) for d in docs) / 1e6
            for batch in batches:
                assert [attributes(e) for e in ours.encode_batch(batch)] == [attributes(e) for e in ref.encode_batch(batch)]
                cols = ours.encode_batch_arrays(batch)
                want = ref.encode_batch(batch)
                assert cols["input_ids"].tolist() == [e.ids for e in want]
            cases = {
                "tokenizers encode_batch": lambda: [(e.ids, e.attention_mask) for b in batches for e in ref.encode_batch(b)],
                "ferry encode_batch": lambda: [(e.ids, e.attention_mask) for b in batches for e in ours.encode_batch(b)],
                "tokenizers offsets": lambda: [(e.ids, e.offsets, e.word_ids) for b in batches for e in ref.encode_batch(b)],
                "ferry offsets": lambda: [(e.ids, e.offsets, e.word_ids) for b in batches for e in ours.encode_batch(b)],
                "tokenizers columns": lambda: [(np.array([e.ids for e in es], dtype=np.int64),
                                                np.array([e.attention_mask for e in es], dtype=np.uint8))
                                               for es in (ref.encode_batch(b) for b in batches)],
                "ferry columns": lambda: [ours.encode_batch_arrays(b) for b in batches],
            }
            t = median_seconds(cases, args.repeat)
            for label, baseline in (("ferry encode_batch", "tokenizers encode_batch"), ("ferry offsets", "tokenizers offsets"),
                                    ("ferry columns", "tokenizers columns")):
                for case in (label, baseline):
                    print(f"encoding {name} {kind}: {case}: {mb / t[case]:.1f} MB/s")
                ratio = t[baseline] / t[label]
                print(f"encoding {name} {kind}: {label} {ratio:.2f}x {baseline}")
                rows.append((f"encoding {name} {kind}", label, mb / t[label] / 1e3, ratio, baseline))
