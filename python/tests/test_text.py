"""Tokenizers: ids identical to Hugging Face `tokenizers` and `tiktoken`, identity, bad input."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import ferry

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
HF_DIR = SHARED / "tokenizers" / "hf"
TIKTOKEN_DIR = SHARED / "tokenizers" / "tiktoken"
CORPORA = SHARED / "corpora"

BYTE_LEVEL_JSON = ["gpt2", "gpt_neox_20b", "falcon", "whisper_large_v3", "torchtune_tiny_bpe_llama3style"]
NAMED_RANKS = ["r50k_base", "p50k_base", "cl100k_base", "o200k_base"]
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Rank files that are not OpenAI encodings, read with the Llama-3 split pattern by both sides.
OTHER_RANKS = ["llama3", "deepseekv2", "codestral"]

needs_data = pytest.mark.skipif(
    not HF_DIR.is_dir(), reason="shared test data (../shared/data/tokenizers) is absent"
)


def hf_path(name):
    return HF_DIR / f"{name}_tokenizer.json"


def corpus_documents() -> list[str]:
    """Every corpus file as documents of 64 lines (newlines kept), decoded as the references
    receive text: a Python str (invalid UTF-8 in UTF-8-test.txt becomes U+FFFD)."""
    docs = []
    for path in sorted(p for p in CORPORA.rglob("*") if p.is_file()):
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines(keepends=True)
        docs += ["".join(lines[i : i + 64]) for i in range(0, len(lines), 64)]
    return docs


@pytest.fixture(scope="module")
def documents():
    if not CORPORA.is_dir():
        pytest.skip("shared test data (../shared/data/corpora) is absent")
    return corpus_documents()


def reference_tiktoken(name: str):
    """A tiktoken Encoding for a local rank file, built by tiktoken's own constructor for the named
    encodings (its pattern and special tokens), with the ranks read from the local file."""
    tiktoken = pytest.importorskip("tiktoken")
    import tiktoken.load
    import tiktoken_ext.openai_public as openai_public

    path = TIKTOKEN_DIR / f"{name}.tiktoken"
    ranks = tiktoken.load.load_tiktoken_bpe(str(path))
    if name in NAMED_RANKS:
        original = openai_public.load_tiktoken_bpe
        openai_public.load_tiktoken_bpe = lambda *a, **k: ranks
        try:
            spec = getattr(openai_public, name)()
        finally:
            openai_public.load_tiktoken_bpe = original
    else:
        spec = {"name": name, "pat_str": LLAMA3_PATTERN, "mergeable_ranks": ranks, "special_tokens": {}}
    return tiktoken.Encoding(**spec)


def ferry_tiktoken(name: str):
    path = TIKTOKEN_DIR / f"{name}.tiktoken"
    if name in NAMED_RANKS:
        return ferry.Tokenizer.from_tiktoken(path)
    return ferry.Tokenizer.from_tiktoken(path, pattern=LLAMA3_PATTERN)


# A generator of hostile text: scripts, combining marks, emoji sequences, digits of many
# systems, whitespace runs of every kind, contractions in every case, characters next to
# replacement characters (what invalid UTF-8 turns into), and added-token strings.
PIECES = [
    "the", " The", "HELLO", "don't", "DON'T", "it's", "IT'S", "'ll", "'LL", "'ſ", "'S", "we've",
    "über", "naïve", "e\u0301", "a\u0308\u0301", "Ελληνικά", "русский", "עברית", "العربية",
    "हिन्दी", "தமிழ்", "ไทย", "中文字符", "日本語のテキスト", "한국어", "ქართული", "Հայերեն",
    "👍", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "1️⃣", "\U0001fae8", "0", "12", "123", "1234567",
    "٣٤٥", "१२३", "½", "²", "Ⅻ", "3.14", "1,000", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n",
    " \n ", "\u00a0", "\u3000", "\u2028", "\u0085", "\u200b", "\ufffd", "\ufffd\ufffd", "$", "!!",
    "...", "—", "«", "»", "(", ")", "{}", "<", ">", "/", "\\", "_", "__init__", "@", "#",
    "<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|0.00|>", "<|padding|>",
    ">>TITLE<<", "<|fim_prefix|>", "<|endofprompt|>", "x\u00ad", "\u0000", "\x7f", "ÿ",
]


def random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = [rng.choice(PIECES) for _ in range(rng.randint(1, 24))]
        sep = rng.choice(["", " ", "", "\n"])
        texts.append(sep.join(parts))
    texts += ["a" * 5000, " " * 3000, "1" * 2000, "\n" * 1000, "ab" * 2000 + " " * 10 + "c"]
    return texts


# ------------------------------------------------------------------------------- tokenizer.json


@needs_data
@pytest.mark.parametrize("name", BYTE_LEVEL_JSON)
def test_tokenizer_json_matches_tokenizers_on_every_corpus(name, documents):
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.Tokenizer.from_file(str(hf_path(name)))
    ours = ferry.Tokenizer.from_file(hf_path(name))
    expected = [e.ids for e in reference.encode_batch(documents, add_special_tokens=True)]
    got = ours.encode_batch_ids(documents)
    mismatches = [i for i, (e, g) in enumerate(zip(expected, got)) if e != g.tolist()]
    assert not mismatches, f"{name}: {len(mismatches)} of {len(documents)} documents differ, first: {documents[mismatches[0]][:200]!r}"


@needs_data
@pytest.mark.parametrize("name", BYTE_LEVEL_JSON)
def test_tokenizer_json_matches_tokenizers_on_generated_text(name):
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.Tokenizer.from_file(str(hf_path(name)))
    ours = ferry.Tokenizer.from_file(hf_path(name))
    for add_special_tokens in (True, False):
        texts = random_texts(1500, seed=7 + add_special_tokens)
        expected = reference.encode_batch(texts, add_special_tokens=add_special_tokens)
        for text, e in zip(texts, expected):
            assert ours.encode_ids(text, add_special_tokens=add_special_tokens) == e.ids, repr(text)


@needs_data
@pytest.mark.parametrize("name", BYTE_LEVEL_JSON)
def test_tokenizer_json_decode_matches_tokenizers(name, documents):
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.Tokenizer.from_file(str(hf_path(name)))
    ours = ferry.Tokenizer.from_file(hf_path(name))
    texts = random_texts(300, seed=3) + documents[:200]
    for text in texts:
        ids = ours.encode_ids(text)
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == reference.decode(ids, skip_special_tokens=skip)
        # decode(encode(x)) == x, for x as the normalizer leaves it (NeoX normalizes to NFC).
        normalized = unicodedata.normalize("NFC", text) if name == "gpt_neox_20b" else text
        assert ours.decode(ours.encode_ordinary(text), skip_special_tokens=False) == normalized


@needs_data
def test_whisper_template_and_added_tokens():
    ours = ferry.Tokenizer.from_file(hf_path("whisper_large_v3"))
    ids = ours.encode_ids("<|en|> hello")
    assert ids[:2] == [ours.token_to_id("<|startoftranscript|>"), ours.token_to_id("<|notimestamps|>")]
    assert ids[2] == ours.token_to_id("<|en|>")
    assert ids[-1] == ours.token_to_id("<|endoftext|>")
    assert ours.encode_ids("<|en|>", add_special_tokens=False) == [ours.token_to_id("<|en|>")]
    assert ours.encode_ordinary("<|en|>") != [ours.token_to_id("<|en|>")]
    assert ours.decode(ids, skip_special_tokens=True) == " hello"


FLAGGED_TOKENS = [
    # content, special, lstrip, rstrip, single_word, normalized
    ("<mask>", True, True, False, False, False),
    ("[END]", True, False, True, False, False),
    ("xyzzy", False, False, False, True, True),
    ("<both>", True, True, True, False, False),
    ("café", False, False, False, False, True),
    ("<sw>", False, True, True, True, False),
    ("zq", False, False, False, True, False),
    ("zqj", False, False, False, False, False),
]


@needs_data
@pytest.mark.parametrize("base", ["gpt2", "gpt_neox_20b"])
def test_added_token_flags_behave_as_in_tokenizers(tmp_path, base):
    """lstrip / rstrip / single_word / normalized / special on tokens of our own, with and without
    a normalizer (NeoX has NFC), against tokenizers on text built around them."""
    tokenizers = pytest.importorskip("tokenizers")
    data = json.loads(hf_path(base).read_text())
    next_id = max(t["id"] for t in data["added_tokens"]) + 1
    for content, special, lstrip, rstrip, single_word, normalized in FLAGGED_TOKENS:
        # tokenizers gives an added token that is already in the vocab that id, not the file's.
        assert content not in data["model"]["vocab"]
        data["added_tokens"].append(dict(id=next_id, content=content, special=special, lstrip=lstrip,
                                         rstrip=rstrip, single_word=single_word, normalized=normalized))
        next_id += 1
    path = tmp_path / "flagged.json"
    path.write_text(json.dumps(data))
    reference = tokenizers.Tokenizer.from_file(str(path))
    ours = ferry.Tokenizer.from_file(path)
    rng = random.Random(9)
    pool = [t[0] for t in FLAGGED_TOKENS] + ["cafe\u0301", "xyzzys", "axyzzy", "zqzq", " ", "  ", "\n", "x", "_", "é", "abab", "1"]
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 12))) for _ in range(3000)]
    for text in texts:
        assert ours.encode_ids(text) == reference.encode(text).ids, repr(text)
        assert ours.decode(ours.encode_ids(text), skip_special_tokens=True) == reference.decode(
            reference.encode(text).ids, skip_special_tokens=True), repr(text)


# ------------------------------------------------------------------------------------ tiktoken


@needs_data
@pytest.mark.parametrize("name", NAMED_RANKS + OTHER_RANKS)
def test_tiktoken_files_match_tiktoken_on_every_corpus(name, documents):
    reference = reference_tiktoken(name)
    ours = ferry_tiktoken(name)
    ok_docs, failing = [], []
    for doc in documents:
        try:
            ok_docs.append((doc, reference.encode_ordinary(doc)))
        except BaseException:  # tiktoken panics on bytes with no rank (deepseekv2, codestral)
            failing.append(doc)
    got = ours.encode_ordinary_batch([doc for doc, _ in ok_docs])
    mismatches = [doc for (doc, e), g in zip(ok_docs, got) if e != g.tolist()]
    assert not mismatches, f"{name}: {len(mismatches)} documents differ, first: {mismatches[0][:200]!r}"
    for doc in failing[:20]:
        with pytest.raises(ferry.InvalidArgumentError, match="cannot encode"):
            ours.encode_ordinary(doc)


@needs_data
@pytest.mark.parametrize("name", NAMED_RANKS + ["llama3"])
def test_tiktoken_files_match_tiktoken_on_generated_text(name):
    reference = reference_tiktoken(name)
    ours = ferry_tiktoken(name)
    for text in random_texts(1500, seed=11):
        assert ours.encode_ordinary(text) == reference.encode_ordinary(text), repr(text)
        assert ours.encode_ids(text) == reference.encode(text, allowed_special="all"), repr(text)
        assert ours.decode(ours.encode_ids(text), skip_special_tokens=False) == text


@needs_data
def test_p50k_ranks_are_not_contiguous_and_special_ids_fill_the_gap():
    ours = ferry_tiktoken("p50k_base")
    assert ours.encode_ids("<|endoftext|>") == [50256]
    assert ours.vocab_size == 50281
    assert ours.id_to_token(50256) == b"<|endoftext|>"
    assert ours.is_special(50256)


def test_tiktoken_long_pieces_encode_exactly(tmp_path):
    # A rank file of our own: all bytes plus merges of 'a' runs and a few pairs, so a 1 MB run of
    # one letter goes through the long-piece (heap) merge path.
    tiktoken = pytest.importorskip("tiktoken")
    import base64

    tokens = [bytes([b]) for b in range(256)] + [b"aa", b"aaaa", b"ab", b"aaaaaaaa", b"ba", b"bab"]
    rank_file = tmp_path / "tiny.tiktoken"
    rank_file.write_text("".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(tokens)))
    reference = tiktoken.Encoding(
        "tiny", pat_str=r"\S+|\s+", mergeable_ranks={t: i for i, t in enumerate(tokens)}, special_tokens={}
    )
    ours = ferry.Tokenizer.from_tiktoken(rank_file, pattern=r"\S+|\s+")
    rng = random.Random(5)
    for text in ["a" * 1_000_001, "ab" * 500, "".join(rng.choice("ab") for _ in range(20000)), "b" + "a" * 97]:
        assert ours.encode_ordinary(text) == reference.encode_ordinary(text)


# -------------------------------------------------------------------------------------- batch


@needs_data
def test_encode_batch_keeps_order_for_any_thread_count():
    ours = ferry.Tokenizer.from_file(hf_path("gpt2"))
    texts = random_texts(997, seed=1)
    expected = [ours.encode_ids(t) for t in texts]
    for threads in (1, 2, 3, 8):
        got = ours.encode_batch_ids(texts, threads=threads)
        assert [g.tolist() for g in got] == expected
        assert all(g.dtype == np.uint32 for g in got)
    assert ours.encode_batch_ids([]) == []
    assert ours.encode_to_numpy("hello world").tolist() == ours.encode_ids("hello world")


@needs_data
def test_encode_batch_reports_the_failing_item():
    ours = ferry_tiktoken("deepseekv2")
    bad = "\x00"  # no rank for byte 0 and no token containing it
    texts = ["fine"] * 50 + [bad] + ["fine"] * 50
    with pytest.raises(ferry.InvalidArgumentError, match="batch item 50: .*deepseekv2.tiktoken: cannot encode"):
        ours.encode_batch_ids(texts, threads=2)


@needs_data
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_encode_batch_works_in_a_forked_child():
    ours = ferry.Tokenizer.from_file(hf_path("gpt2"))
    texts = random_texts(200, seed=2)
    expected = [t.tolist() for t in ours.encode_batch_ids(texts, threads=2)]
    pid = os.fork()
    if pid == 0:  # child: must neither deadlock nor differ
        try:
            got = [t.tolist() for t in ours.encode_batch_ids(texts, threads=2)]
            os._exit(0 if got == expected else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# ----------------------------------------------------------------------------------- identity


def rewritten(tmp_path: Path, name: str, change) -> Path:
    data = json.loads(hf_path(name).read_text())
    change(data)
    out = tmp_path / f"{name}-{abs(hash(json.dumps(data, sort_keys=True))) % 10**8}.json"
    out.write_text(json.dumps(data, sort_keys=True, indent=1))
    return out


@needs_data
def test_fingerprint_is_the_content(tmp_path):
    base = ferry.Tokenizer.from_file(hf_path("gpt_neox_20b"))
    assert base.fingerprint.startswith("ferry-tok1-sha256:") and len(base.fingerprint) == 18 + 64
    assert ferry.Tokenizer.from_file(hf_path("gpt_neox_20b")).fingerprint == base.fingerprint
    # Keys reordered (sort_keys) and re-indented; padding and truncation do not decide ids.
    same = [
        rewritten(tmp_path, "gpt_neox_20b", lambda d: None),
        rewritten(tmp_path, "gpt_neox_20b", lambda d: d.update(padding={"strategy": "BatchLongest", "pad_id": 1}, truncation={"max_length": 8})),
    ]
    for path in same:
        assert ferry.Tokenizer.from_file(path).fingerprint == base.fingerprint, path

    def swap_merge(d):
        m = d["model"]["merges"]
        m[10], m[11] = m[11], m[10]

    def change_vocab(d):  # two tokens trade ids
        vocab = d["model"]["vocab"]
        a, b = (next(t for t, i in vocab.items() if i == n) for n in (5000, 5001))
        vocab[a], vocab[b] = 5001, 5000

    def flip_flag(d):
        d["added_tokens"][3]["lstrip"] = not d["added_tokens"][3]["lstrip"]

    def change_pattern(d):
        d["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}

    def drop_normalizer(d):
        d["normalizer"] = None

    prints = {base.fingerprint}
    for change in (swap_merge, change_vocab, flip_flag, change_pattern, drop_normalizer):
        fp = ferry.Tokenizer.from_file(rewritten(tmp_path, "gpt_neox_20b", change)).fingerprint
        assert fp not in prints, change.__name__
        prints.add(fp)


@needs_data
def test_fingerprint_is_the_same_in_another_process():
    base = ferry.Tokenizer.from_file(hf_path("whisper_large_v3"))
    code = f"import ferry; print(ferry.Tokenizer.from_file({str(hf_path('whisper_large_v3'))!r}).fingerprint)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == base.fingerprint


@needs_data
def test_pickle_equality_and_hashing_follow_the_fingerprint():
    gpt2 = ferry.Tokenizer.from_file(hf_path("gpt2"))
    r50k = ferry_tiktoken("r50k_base")
    for tok in (gpt2, r50k):
        clone = pickle.loads(pickle.dumps(tok))
        assert clone == tok and hash(clone) == hash(tok) and clone.fingerprint == tok.fingerprint
        assert clone.encode_ids("Hello there, world!") == tok.encode_ids("Hello there, world!")
    assert gpt2 != r50k
    cache = {gpt2: "hf", r50k: "tiktoken"}
    assert cache[ferry.Tokenizer.from_file(hf_path("gpt2"))] == "hf"
    assert ferry_tiktoken("r50k_base") in cache
    assert gpt2 != "gpt2"


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "text, error, message",
    [
        ("{", ferry.CorruptionError, "bad.json: not valid JSON"),
        ("[]", ferry.CorruptionError, r"bad.json: \(root\): expected an object"),
        ("{}", ferry.CorruptionError, "bad.json: model: missing"),
        ('{"model": {"type": "Mystery", "vocab": {}}}', ferry.UnsupportedError,
         'model.type: unsupported type "Mystery", supported are BPE'),
        ('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Mystery"}}',
         ferry.UnsupportedError, 'pre_tokenizer.type: unsupported type "Mystery", supported are ByteLevel'),
        ('{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}', ferry.CorruptionError,
         r'model.vocab\["a"\]: expected an id'),
        ('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}', ferry.CorruptionError,
         r'model.merges\[0\]: "b" is not in the vocab'),
        ('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}}', ferry.CorruptionError,
         r'model.merges\[0\]: expected "left right"'),
        ('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Mystery"}}',
         ferry.UnsupportedError, 'normalizer.type: unsupported type "Mystery", supported are NFC'),
        ('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"}}}',
         ferry.InvalidArgumentError, "bad.json: pre_tokenizer.pattern: "),
        ('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 1}]}',
         ferry.CorruptionError, r"added_tokens\[0\].content: expected a string"),
    ],
)
def test_malformed_tokenizer_json_is_a_clear_error(tmp_path, text, error, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(error, match=message):
        ferry.Tokenizer.from_file(path)


@pytest.mark.parametrize(
    "lines, message",
    [
        ("YQ== 0\nYg==\n", "bad.tiktoken:2: expected \"<base64 token> <rank>\""),
        ("YQ== 0\n!!!! 1\n", "bad.tiktoken:2: token \"!!!!\" is not base64"),
        ("YQ== 0\nYg 1\n", "bad.tiktoken:2: token \"Yg\" is not base64"),
        ("YQ== 0\nYg== 0\n", "bad.tiktoken:2: rank 0 appears twice"),
        ("YQ== 0\nYQ== 1\n", "bad.tiktoken: ranks: tokens 0 and 1 have the same bytes"),
        ("YQ== x\n", "bad.tiktoken:1: rank \"x\" is not a decimal number"),
        ("YQ== 99999999999\n", "bad.tiktoken:1: rank 99999999999 is far beyond the 1 lines"),
        ("YQ== 0\nYg== 8888885\n", "bad.tiktoken:2: rank 8888885 is far beyond"),
        ("", "bad.tiktoken: no ranks in the file"),
    ],
)
def test_malformed_tiktoken_file_is_a_clear_error(tmp_path, lines, message):
    path = tmp_path / "bad.tiktoken"
    path.write_text(lines)
    with pytest.raises(ferry.CorruptionError, match=message):
        ferry.Tokenizer.from_tiktoken(path, pattern=r"\S+")


def test_tiktoken_needs_a_pattern_unless_named(tmp_path):
    path = tmp_path / "custom.tiktoken"
    path.write_text("YQ== 0\n")
    with pytest.raises(ferry.InvalidArgumentError, match="custom.tiktoken: not one of the named encodings"):
        ferry.Tokenizer.from_tiktoken(path)
    with pytest.raises(ferry.InvalidArgumentError, match='unknown tiktoken encoding "gpt5"'):
        ferry.Tokenizer.from_tiktoken(path, name="gpt5")


@needs_data
def test_decode_of_unknown_ids_is_an_error():
    ours = ferry.Tokenizer.from_file(hf_path("gpt2"))
    with pytest.raises(ferry.OutOfRangeError, match="id 60000 at position 1 is not in the vocabulary"):
        ours.decode([1, 60000], skip_special_tokens=False)
    with pytest.raises(ferry.OutOfRangeError):
        ours.decode([-1], skip_special_tokens=False)


@needs_data
def test_invalid_utf8_bytes_round_trip():
    ours = ferry.Tokenizer.from_file(hf_path("gpt2"))
    data = b"abc \xff\xfe caf\xc3\xa9 \xe2\x82 end"
    assert ours.decode_bytes(ours.encode_ids(data), skip_special_tokens=False) == data
    assert ours.decode(ours.encode_ids(data), skip_special_tokens=False) == data.decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------- ferry tokenize


@needs_data
def test_cli_tokenize_writes_a_token_shard(tmp_path, ferry_bin):
    text = tmp_path / "docs.txt"
    text.write_text("first document, it's short\n\nsecond one: café 123\r\nthird\n")
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"text": "from json <|endoftext|>", "id": 1}\n{"id": 2, "text": "line two"}\n')
    shard = tmp_path / "out.safetensors"
    tokenizer = hf_path("gpt2")
    subprocess.run([ferry_bin, "tokenize", "--tokenizer", str(tokenizer), str(text), str(jsonl),
                    "-o", str(shard)], check=True, capture_output=True)
    tok = ferry.Tokenizer.from_file(tokenizer)
    documents = ["first document, it's short", "second one: café 123", "third", "from json <|endoftext|>", "line two"]
    with ferry.safe_open(shard, framework="np") as f:
        tokens, offsets = f.get_tensor("tokens"), f.get_tensor("doc_offsets")
        assert f.metadata()["ferry.tokenizer"] == tok.fingerprint
        assert f.metadata()["ferry.format"] == "token-shard-v1"
    assert tokens.dtype == np.uint32 and offsets.dtype == np.uint64
    assert len(offsets) == len(documents) + 1
    for i, doc in enumerate(documents):
        assert tokens[offsets[i] : offsets[i + 1]].tolist() == tok.encode_ordinary(doc)  # text is data

    counted = subprocess.run([ferry_bin, "tokenize", "--tokenizer", str(tokenizer), str(text), "--count", "--json"],
                             check=True, capture_output=True, text=True)
    assert json.loads(counted.stdout)["tokens"] == int(offsets[3])
    misused = subprocess.run([ferry_bin, "tokenize", "--tokenizer", str(tokenizer), str(text), "--count",
                              "--pattern", r"\S+"], capture_output=True, text=True)
    assert misused.returncode == 64
    assert f"{tokenizer}: tiktoken options (name, pattern, special tokens) are for .tiktoken" in misused.stderr


def test_cli_tokenize_bad_input_is_a_clear_error(tmp_path, ferry_bin):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    tok = tmp_path / "tiny.tiktoken"
    tok.write_text("".join(f"{__import__('base64').b64encode(bytes([b])).decode()} {b}\n" for b in range(256)))
    out = subprocess.run([ferry_bin, "tokenize", "--tokenizer", str(tok), str(bad), "--count"],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "not one of the named encodings" in out.stderr  # a rank file needs a known name here
    named = tmp_path / "cl100k_base.tiktoken"
    named.write_text(tok.read_text())
    out = subprocess.run([ferry_bin, "tokenize", "--tokenizer", str(named), str(bad), "-o", str(tmp_path / "o.st")],
                         capture_output=True, text=True)
    assert out.returncode == 65, out.stderr
    assert f'{bad}:2: no string field "text"' in out.stderr
    assert not (tmp_path / "o.st").exists()


# ------------------------------------------------------------------------------------ training


def own_text(lines: int = 4000, seed: int = 0) -> list[str]:
    """Text this test makes itself: sentences of made-up words with punctuation and numbers."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ren", "tu", "sha", "vo", "el", "in", "ar", "qu", "ü", "ñ", "ø"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(600)]
    out = []
    for _ in range(lines):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(3, 14)))
        out.append(sentence.capitalize() + rng.choice([".", "!", "?", ", 42.", " (1999)."]) + "\n")
    return out


def test_trained_tokenizer_loads_in_tokenizers_with_the_same_ids(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    texts = own_text()
    tok = ferry.Tokenizer.train_from_iterator(texts, vocab_size=700, min_frequency=2,
                                              special_tokens=["<|endoftext|>", "<pad>"])
    assert tok.vocab_size == 700
    assert tok.token_to_id("<|endoftext|>") == 0 and tok.is_special(0)
    path = tmp_path / "trained.json"
    tok.save(path)
    reference = tokenizers.Tokenizer.from_file(str(path))
    assert reference.get_vocab_size() == 700
    probe = own_text(300, seed=1) + random_texts(300, seed=4)
    for text in probe:
        assert tok.encode_ids(text) == reference.encode(text).ids, repr(text)
    assert ferry.Tokenizer.from_file(path) == tok
    # Training is deterministic, and what it learned compresses the text it saw.
    again = ferry.Tokenizer.train_from_iterator(texts, vocab_size=700, special_tokens=["<|endoftext|>", "<pad>"])
    assert again == tok
    sample = "".join(texts[:100])
    assert len(tok.encode_ids(sample)) < len(sample.encode()) / 2.5


def test_training_stops_at_min_frequency_and_checks_the_size():
    tok = ferry.Tokenizer.train_from_iterator(["ab ab ab cd"], vocab_size=1000, min_frequency=3)
    assert tok.vocab_size < 1000  # only pairs seen 3 times merge
    assert tok.encode_ids("ab") == [tok.token_to_id("ab")]
    assert len(tok.encode_ids("cd")) == 2
    with pytest.raises(ferry.InvalidArgumentError, match="vocab_size 100 leaves no room"):
        ferry.Tokenizer.train_from_iterator(["x"], vocab_size=100)


# ------------------------------------------------------- review findings: parity at the edges


def tiny_json(tmp_path, **parts) -> Path:
    """A byte-level tokenizer.json of our own: the 256 bytes plus a few merges."""
    vocab = {}
    for b in range(256):
        vocab[bytes_to_unicode_char(b)] = b
    vocab.update({"ab": 256, "Ġa": 257})
    data = {"model": {"type": "BPE", "vocab": vocab, "merges": ["a b", "Ġ a"]},
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "added_tokens": []}
    data.update(parts)
    path = tmp_path / f"tiny-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(data))
    return path


def bytes_to_unicode_char(b: int) -> str:
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    if b in printable:
        return chr(b)
    return chr(0x100 + [x for x in range(256) if x not in printable].index(b))


def added(content, id, **flags):
    return dict(dict(id=id, content=content, special=False, lstrip=False, rstrip=False,
                     single_word=False, normalized=False), **flags)


def test_added_token_ids_are_assigned_as_tokenizers_does(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    # Ids in the file that tokenizers does not honour: a new token gets the next free id, one
    # whose content is in the vocab gets that id.
    path = tiny_json(tmp_path, added_tokens=[added("<x>", 1000), added("<y>", 5), added("ab", 3),
                                             added("<x>", 7, rstrip=True)])
    reference = tokenizers.Tokenizer.from_file(str(path))
    ours = ferry.Tokenizer.from_file(path)
    for text in ["a<x>b", "\x05<y>", "ab<x>  ab", "<y><x> ab"]:
        assert ours.encode_ids(text) == reference.encode(text).ids, repr(text)
        assert ours.decode(ours.encode_ids(text), skip_special_tokens=False) == reference.decode(reference.encode(text).ids, skip_special_tokens=False)


def test_a_match_may_start_inside_the_previous_rstrip(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    path = tiny_json(tmp_path, added_tokens=[added("<a>", 258, rstrip=True), added(" <b>", 259)])
    reference = tokenizers.Tokenizer.from_file(str(path))
    ours = ferry.Tokenizer.from_file(path)
    for text in ["<a> <b>", "<a>  <b>x", "x <a> <b> <a>"]:
        assert ours.encode_ids(text) == reference.encode(text).ids, repr(text)


def test_no_decoder_joins_tokens_with_spaces(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    path = tiny_json(tmp_path, decoder=None)
    reference = tokenizers.Tokenizer.from_file(str(path))
    ours = ferry.Tokenizer.from_file(path)
    ids = ours.encode_ids("ab a b")
    assert ours.decode(ids, skip_special_tokens=False) == reference.decode(ids)


@pytest.mark.parametrize("pre_tokenizer, message", [
    ({"type": "Split", "pattern": {"Regex": "a*"}, "behavior": "Isolated"}, "can match the empty string"),
    ({"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "ByteLevel", "use_regex": False}]},
     "2 ByteLevel steps"),
])
def test_pipelines_ferry_would_split_differently_are_refused(tmp_path, pre_tokenizer, message):
    path = tiny_json(tmp_path, pre_tokenizer=pre_tokenizer)
    with pytest.raises(ferry.UnsupportedError, match=message):
        ferry.Tokenizer.from_file(path)


def test_hostile_sizes_are_refused(tmp_path):
    import base64

    template = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "X"}}] * 40 + [{"Sequence": {"id": "A"}}],
                "special_tokens": {"X": {"id": "X", "ids": [1] * 100, "tokens": ["x"] * 100}}}
    with pytest.raises(ferry.CorruptionError, match=r"post_processor.single: adds more than 1024 ids"):
        ferry.Tokenizer.from_file(tiny_json(tmp_path, post_processor=template))
    ranks = tmp_path / "long.tiktoken"
    ranks.write_text("".join(f"{base64.b64encode(bytes([b])).decode()} {b}\n" for b in range(256)) +
                     f"{base64.b64encode(b'a' * 2000).decode()} 256\n")
    with pytest.raises(ferry.CorruptionError, match="long.tiktoken:257: token of 2000 bytes, more than the 1024"):
        ferry.Tokenizer.from_tiktoken(ranks, pattern=r"\S+")


# Each edit gives one key twice in the text of tiny_json's file (json.dumps cannot write that); it
# applies to the last occurrence of its first string.
DUPLICATE_KEYS = [
    # tokenizers keeps the last value: "ab" would be 258 there, 256 in ferry before the check
    (('"ab": 256', '"ab": 256, "ab": 258'), r'model.vocab: key "ab" appears twice'),
    (('"model": {', '"decoder": null, "model": {'), r'\(root\): key "decoder" appears twice'),
    (('"add_prefix_space": false', '"add_prefix_space": false, "add_prefix_space": true'),
     r'decoder: key "add_prefix_space" appears twice'),
    (('"lstrip": false', '"lstrip": false, "lstrip": true'), r'added_tokens\[1\]: key "lstrip" appears twice'),
    (('"\\u0120a": 257', '"\\u0120a": 257, "\\u0120a": 257'), r'model.vocab: key "\u0120a" appears twice'),
]


@pytest.mark.parametrize("edit, message", DUPLICATE_KEYS)
def test_duplicate_keys_in_tokenizer_json_are_refused(tmp_path, edit, message):
    path = tiny_json(tmp_path, added_tokens=[added("<x>", 258), added("<y>", 259)])
    before, found, after = path.read_text().rpartition(edit[0])
    assert found
    path.write_text(before + edit[1] + after)
    with pytest.raises(ferry.CorruptionError, match=rf"{path.name}: {message} \(Hugging Face tokenizers"):
        ferry.Tokenizer.from_file(path)


def test_duplicate_vocab_key_is_read_as_the_last_by_tokenizers(tmp_path):
    # Why duplicates are refused rather than read: the reference keeps the last value.
    tokenizers = pytest.importorskip("tokenizers")
    path = tiny_json(tmp_path)
    path.write_text(path.read_text().replace('"ab": 256', '"ab": 256, "ab": 258', 1))
    assert tokenizers.Tokenizer.from_file(str(path)).encode("ab").ids == [258]


def test_tiktoken_custom_pattern_drops_what_it_does_not_match(tmp_path):
    tiktoken = pytest.importorskip("tiktoken")
    import base64

    tokens = [bytes([b]) for b in range(256)] + [b"ab", b"bc"]
    path = tmp_path / "w.tiktoken"
    path.write_text("".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(tokens)))
    reference = tiktoken.Encoding("w", pat_str=r"\w+", mergeable_ranks={t: i for i, t in enumerate(tokens)}, special_tokens={})
    ours = ferry.Tokenizer.from_tiktoken(path, pattern=r"\w+")
    for text in ["a.b c", "abc, bc!", "  ", "x"]:
        assert ours.encode_ordinary(text) == reference.encode_ordinary(text), repr(text)


@needs_data
def test_surrogates_are_repaired_as_tiktoken_does():
    reference = reference_tiktoken("cl100k_base")
    ours = ferry_tiktoken("cl100k_base")
    for text in ["a\udc80b \ud83d\ude00", "\ud800", "x\udfff\ud800y"]:
        assert ours.encode_ordinary(text) == reference.encode_ordinary(text), repr(text)


@needs_data
def test_decode_refuses_ids_it_would_have_to_cast():
    ours = ferry.Tokenizer.from_file(hf_path("gpt2"))
    assert ours.decode(np.array([71, 72], dtype=np.uint32), skip_special_tokens=False) == ours.decode([71, 72], skip_special_tokens=False)
    assert ours.decode(np.array([71, 72], dtype=np.int64), skip_special_tokens=False) == ours.decode([71, 72], skip_special_tokens=False)
    with pytest.raises(ferry.OutOfRangeError):
        ours.decode(np.array([2**32 + 71], dtype=np.int64), skip_special_tokens=False)
    with pytest.raises(TypeError):
        ours.decode(np.array([71.9]), skip_special_tokens=False)


def test_trainer_refuses_duplicate_special_tokens():
    with pytest.raises(ferry.InvalidArgumentError, match='special token "<s>" is listed twice'):
        ferry.Tokenizer.train_from_iterator(["abc"], vocab_size=300, special_tokens=["<s>", "<s>"])


def test_long_added_tokens_over_text_that_repeats_their_prefix(tmp_path):
    # The matcher is an Aho-Corasick automaton: a 4,001-byte token over 200 KB of its own prefix
    # is one linear scan (re-walking a trie from every byte made this quadratic).
    tokenizers = pytest.importorskip("tokenizers")
    path = tiny_json(tmp_path, added_tokens=[added("a" * 4000 + "b", 258), added("aab", 259), added("<x>", 260)])
    ours, reference = ferry.Tokenizer.from_file(path), tokenizers.Tokenizer.from_file(str(path))
    for text in ["a" * 200_000, "a" * 5000 + "b" + "aab<x>", "x" + "a" * 3999 + "b", "aa<x>aab" * 100]:
        assert ours.encode_ids(text) == reference.encode(text).ids, text[:40]
