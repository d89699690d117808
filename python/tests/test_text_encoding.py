"""The `tokenizers` Encoding API: every attribute, offsets and word ids and the maps between ids,
words and characters included, for single inputs, pairs, pretokenized words and padded/truncated
batches with their overflowing windows, held to Hugging Face `tokenizers` on every tokenizer.json
in the test data, on corpus text and hostile text. Written as a `tokenizers` user calls it: the
same method names, arguments and defaults."""

from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pytest

import ferry
from test_text import BYTE_LEVEL_JSON, SHARED, documents, hf_path  # noqa: F401 (a fixture)
from test_text_families import FAMILIES, hostile_texts, reference

tokenizers = pytest.importorskip("tokenizers")

ATTRIBUTES = ("ids", "tokens", "type_ids", "attention_mask", "special_tokens_mask", "sequence_ids", "n_sequences",
              "offsets", "word_ids")
NAMES = list(FAMILIES) + BYTE_LEVEL_JSON
SENTENCEPIECE = SHARED / "tokenizers" / "sentencepiece"


def path_of(name):
    return FAMILIES[name] if name in FAMILIES else hf_path(name)


def pair_of(name):
    """ferry's tokenizer and the reference, both loaded from the same file with its settings
    (llama2: the reference is phi3-compatible content that tokenizers can load)."""
    path = path_of(name)
    if not path.is_file():
        pytest.skip(f"{path} is absent (shared test data)")
    if name == "llama2" or name in FAMILIES:
        ref = reference(name)  # loads with no_padding/no_truncation
        ours = ferry.Tokenizer.from_file(path)
        ours.no_padding()
        ours.no_truncation()
        return ours, ref
    return ferry.Tokenizer.from_file(path), tokenizers.Tokenizer.from_file(str(path))


def maps(e) -> dict:
    """Every map of an Encoding between ids, words and characters, at every id, every word (and
    one past the last) of each sequence, and at characters sampled over the offsets (each end,
    each start, and past the last), so that the answers None are compared too."""
    n = len(e)
    # The first ids and the last (long documents would make the scans quadratic).
    tokens = sorted(set(range(min(n, 200))) | {n - 1, n, n + 1} - {-1})
    words = sorted({w for w in e.word_ids[:200] if w is not None})
    ends = sorted({p for start, end in e.offsets[:200] for p in (start, end, end + 1)})[:200]
    out = {"token_to_chars": [e.token_to_chars(i) for i in tokens],
           "token_to_word": [e.token_to_word(i) for i in tokens],
           "token_to_sequence": [e.token_to_sequence(i) for i in tokens]}
    for s in range(e.n_sequences + 1):
        out[f"word_to_tokens {s}"] = [e.word_to_tokens(w, s) for w in words + [len(words) + 1]]
        out[f"word_to_chars {s}"] = [e.word_to_chars(w, s) for w in words + [len(words) + 1]]
        out[f"char_to_token {s}"] = [e.char_to_token(c, s) for c in ends]
        out[f"char_to_word {s}"] = [e.char_to_word(c, s) for c in ends]
    return out


def attributes(e) -> dict:
    out = {k: getattr(e, k) for k in ATTRIBUTES}
    out["len"] = len(e)
    out["maps"] = maps(e)
    out["overflowing"] = [attributes(o) for o in e.overflowing]
    return out


def assert_same(ours_encodings, ref_encodings, context):
    assert len(ours_encodings) == len(ref_encodings)
    for i, (a, b) in enumerate(zip(ours_encodings, ref_encodings)):
        got, want = attributes(a), attributes(b)
        if got != want:
            bad = {k: (got[k], want[k]) for k in got if got[k] != want[k]}
            raise AssertionError(f"{context}, item {i}: {str(bad)[:2000]}")


def sample_texts(seed: int, count: int = 60) -> list[str]:
    rng = random.Random(seed)
    words = ["hello", "world", "the", "tokenizer", "ünïcödé", "日本語", "😀", "don't", "a.b", "[SEP]",
             "<s>", "</s>", "<|endoftext|>", "[MASK]", "  ", "\n", "x" * 30, "123 456"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 40))) for _ in range(count)]
    return texts + [t for t in hostile_texts(count // 2, seed) if t]


@pytest.mark.parametrize("name", NAMES)
def test_encode_and_pairs_match_tokenizers(name, documents):
    ours, ref = pair_of(name)
    singles = sample_texts(1) + documents[::97][:40]
    pairs = list(zip(singles[::2], singles[1::2]))
    for add_special_tokens in (True, False):
        context = f"{name}, add_special_tokens={add_special_tokens}"
        assert_same([ours.encode(t, add_special_tokens=add_special_tokens) for t in singles],
                    [ref.encode(t, add_special_tokens=add_special_tokens) for t in singles], context)
        assert_same([ours.encode(a, b, add_special_tokens=add_special_tokens) for a, b in pairs],
                    [ref.encode(a, b, add_special_tokens=add_special_tokens) for a, b in pairs], context + ", pairs")
        assert_same(ours.encode_batch(pairs + singles, add_special_tokens=add_special_tokens),
                    ref.encode_batch(pairs + singles, add_special_tokens=add_special_tokens), context + ", batch")


@pytest.mark.parametrize("name", ["bert_base_uncased", "phi3_mini", "gpt2", "unigram_en"])
def test_pretokenized_words_match_tokenizers(name):
    ours, ref = pair_of(name)
    rng = random.Random(5)
    words = [["Hello", "world", "!"], ["ünïcödé", "日本語", "x"], [], ["don't", " spaced ", "a"]]
    words += [[w for w in t.split(" ") if w][:20] for t in sample_texts(6, 20)]
    for w in words:
        assert_same([ours.encode(w, is_pretokenized=True)], [ref.encode(w, is_pretokenized=True)], f"{name} {w!r}")
    pairs = [(a, b) for a, b in zip(words[::2], words[1::2])]
    rng.shuffle(pairs)
    assert_same(ours.encode_batch(pairs, is_pretokenized=True), ref.encode_batch(pairs, is_pretokenized=True),
                f"{name} pretokenized pairs")


TRUNCATIONS = [
    dict(max_length=1),
    dict(max_length=6, stride=2),
    dict(max_length=9, stride=3, strategy="only_first"),
    dict(max_length=9, strategy="only_second", direction="left"),
    dict(max_length=16, stride=5, direction="left"),
    dict(max_length=40, strategy="longest_first"),
]
PADDINGS = [None, dict(), dict(direction="left", pad_id=3, pad_token="<pad>", pad_type_id=1),
            dict(length=48), dict(pad_to_multiple_of=8, direction="left")]


@pytest.mark.parametrize("name", ["bert_base_uncased", "phi3_mini", "gpt2", "whisper_large_v3", "unigram_en"])
def test_truncation_and_padding_match_tokenizers(name):
    ours, ref = pair_of(name)
    # Short texts: with a pair, every overflowing window of one sequence combines with every one
    # of the other (tokenizers' merge), so long texts cut into windows of one id make millions.
    texts = [t for t in sample_texts(7, 60) if t.strip() and len(t) <= 80][:24]
    singles = texts[:12]
    pairs = list(zip(texts[::2], texts[1::2]))
    checked = refused = 0
    for truncation in TRUNCATIONS:
        for padding in PADDINGS:
            for batch in (singles, pairs, pairs[:1], singles[:1]):
                ours.no_truncation(), ref.no_truncation(), ours.no_padding(), ref.no_padding()
                ours.enable_truncation(**truncation)
                ref.enable_truncation(**truncation)
                if padding is not None:
                    ours.enable_padding(**padding)
                    ref.enable_padding(**padding)
                assert ours.truncation == ref.truncation
                assert ours.padding == ref.padding
                context = f"{name} truncation={truncation} padding={padding} batch of {len(batch)}"
                try:
                    want = ref.encode_batch(batch)
                except BaseException as e:  # tokenizers raises Exception, or panics (stride too long)
                    with pytest.raises(ValueError):
                        ours.encode_batch(batch)
                    refused += 1
                    continue
                assert_same(ours.encode_batch(batch), want, context)
                one = batch[0]
                assert_same([ours.encode(*one) if isinstance(one, tuple) else ours.encode(one)],
                            [ref.encode(*one) if isinstance(one, tuple) else ref.encode(one)], context + " encode")
                checked += 1
    assert checked > 60 and refused > 0  # both paths ran


def test_tokenizer_json_padding_and_truncation_apply_at_load(documents):
    path = hf_path("all_minilm_l6_v2")
    if not path.is_file():
        pytest.skip(f"{path} is absent (shared test data)")
    ours, ref = ferry.Tokenizer.from_file(path), tokenizers.Tokenizer.from_file(str(path))
    assert ours.truncation == ref.truncation == {"max_length": 256, "stride": 0, "strategy": "longest_first",
                                                  "direction": "right"}
    assert ours.padding == ref.padding
    long_text = documents[0] * 4
    assert len(ours.encode(long_text)) == 256
    texts = [long_text, "short", "a bit longer text here", ""]
    assert_same(ours.encode_batch(texts), ref.encode_batch(texts), "all_minilm defaults")
    assert_same([ours.encode(t) for t in texts], [ref.encode(t) for t in texts], "all_minilm defaults, encode")
    # Settings are not content: they change on a live object without changing its identity.
    fingerprint = ours.fingerprint
    ours.no_padding()
    ours.no_truncation()
    assert ours.fingerprint == fingerprint and ours == ferry.Tokenizer.from_file(path)
    assert len(ours.encode(long_text)) > 256


def test_settings_travel_with_pickle():
    ours, _ = pair_of("bert_base_uncased")
    ours.enable_truncation(12, stride=2, strategy="only_first", direction="left")
    ours.enable_padding(length=20, pad_id=7, pad_token="[X]", direction="left")
    clone = pickle.loads(pickle.dumps(ours))
    assert clone.truncation == ours.truncation and clone.padding == ours.padding
    assert attributes(clone.encode("a b c d e f g h i j k l m n o p q r", "pair")) == attributes(
        ours.encode("a b c d e f g h i j k l m n o p q r", "pair"))


@pytest.mark.parametrize("name", ["bert_base_uncased", "phi3_mini", "gpt2"])
def test_encode_batch_arrays_are_the_padded_encodings(name):
    ours, ref = pair_of(name)
    texts = sample_texts(8, 30)
    for padding in (None, dict(direction="left", pad_id=5), dict(pad_to_multiple_of=16)):
        ours.no_padding()
        ref.enable_padding(**(padding or {}))
        if padding is not None:
            ours.enable_padding(**padding)
        columns = ours.encode_batch_arrays(texts)
        want = ref.encode_batch(texts)
        assert columns["input_ids"].dtype == np.int64 and columns["attention_mask"].dtype == np.uint8
        assert columns["input_ids"].tolist() == [e.ids for e in want], padding
        assert columns["attention_mask"].tolist() == [e.attention_mask for e in want], padding
    small = ours.encode_batch_arrays(texts[:3], dtype=np.uint32)["input_ids"]
    assert small.dtype == np.uint32
    with pytest.raises(ValueError, match="dtype float32"):
        ours.encode_batch_arrays(texts[:3], dtype=np.float32)


def test_split_special_tokens_encodes_special_text_as_text():
    ours, ref = pair_of("bert_base_uncased")
    texts = ["a [SEP] b [MASK] c", "[CLS][CLS]", "no specials"]
    ref.encode_special_tokens = True
    assert_same([ours.encode(t, split_special_tokens=True) for t in texts], [ref.encode(t) for t in texts],
                "split_special_tokens")
    assert ours.encode_ids(texts[0], split_special_tokens=True) == ref.encode(texts[0]).ids
    assert [a.tolist() for a in ours.encode_batch_ids(texts, split_special_tokens=True)] == [
        e.ids for e in ref.encode_batch(texts)]
    ref.encode_special_tokens = False
    assert ours.encode(texts[0]).ids == ref.encode(texts[0]).ids != ours.encode(texts[0], split_special_tokens=True).ids


@pytest.mark.parametrize("name", NAMES)
def test_vocabulary_and_decode_defaults_match_tokenizers(name):
    ours, ref = pair_of(name)
    assert ours.get_vocab() == ref.get_vocab(with_added_tokens=True)
    assert ours.get_vocab(with_added_tokens=False) == ref.get_vocab(with_added_tokens=False)
    assert ours.get_vocab_size() == ref.get_vocab_size(with_added_tokens=True)
    assert ours.get_vocab_size(with_added_tokens=False) == ref.get_vocab_size(with_added_tokens=False)
    theirs = ref.get_added_tokens_decoder()
    mine = ours.get_added_tokens_decoder()
    assert sorted(mine) == sorted(theirs)
    for id, token in theirs.items():
        got = mine[id]
        assert (got.content, got.special, got.single_word, got.lstrip, got.rstrip, got.normalized) == (
            token.content, token.special, token.single_word, token.lstrip, token.rstrip, token.normalized), id
    for pair in (False, True):
        assert ours.num_special_tokens_to_add(pair) == ref.num_special_tokens_to_add(pair)
    for text in sample_texts(9, 20):
        ids = ref.encode(text).ids
        assert ours.decode(ids) == ref.decode(ids), text  # both skip special tokens by default
        assert ours.decode_batch([ids, ids[:3]]) == ref.decode_batch([ids, ids[:3]])


def test_with_added_tokens_returns_a_new_tokenizer_with_their_ids():
    ours, ref = pair_of("gpt2")
    before = ours.fingerprint
    grown = ours.with_added_tokens(["<tool>", ferry.AddedToken("<sep>", special=True)])
    ref.add_tokens(["<tool>"])
    ref.add_special_tokens(["<sep>"])
    text = "call <tool> then<sep>done"
    assert grown.encode(text).ids == ref.encode(text).ids
    assert grown.decode(grown.encode(text).ids) == ref.decode(ref.encode(text).ids)
    assert ours.fingerprint == before and grown.fingerprint != before
    assert ours.encode(text).ids != grown.encode(text).ids
    with pytest.raises(ferry.UnsupportedError, match="with_added_tokens"):
        ours.add_tokens(["<x>"])
    with pytest.raises(ferry.UnsupportedError, match="immutable"):
        ours.add_special_tokens(["<x>"])


def test_to_tokenizers_gives_the_same_encodings():
    ours, _ = pair_of("bert_base_uncased")
    ours.enable_truncation(8)
    ours.enable_padding(length=10)
    theirs = ours.to_tokenizers()
    assert isinstance(theirs, tokenizers.Tokenizer)
    texts = sample_texts(10, 10)
    assert_same(ours.encode_batch(texts), theirs.encode_batch(texts), "to_tokenizers")


# Strings that test each alignment rule of tokenizers' NormalizedString: combining marks (NFD and
# NFC move them), emoji ZWJ sequences and flags (byte-level tokens inside one character), CJK
# (BERT spaces it), accents NFD expands, lowercase that grows (İ) or not (ß), controls BERT drops,
# runs of whitespace, ligatures NFKC expands, added and special tokens inside text.
ALIGNMENT_TEXTS = [
    "", " ", "   ", "\t\n", "Hello world!", "  leading and trailing  ", "a\u0301e\u0300\u0323o\u0302\u0323",
    "e\u0323\u0302 vs \u1ec7", "👨\u200d👩\u200d👧\u200d👦 family 🏳️\u200d🌈 flag 🇫🇷", "中文字符 and 日本語のテキスト",
    "Café naïve RÉSUMÉ", "İstanbul STRASSE Straße ǅ", "a\x00b\x07c\x1fd\ufffd e", "x  \t\n  y     z",
    "ﬁ ﬀ ﬃ ㎏ Ⅻ ½ ²", "한국어 \u1100\u1161\u11a8", "don't stop 123456 3.14 ¡hola!", "<|endoftext|>hi<|endoftext|>",
    "[CLS] text [SEP] more [MASK]", " <s> x </s> <unk>", "▁already ▁spaced", "\u0301 leading mark",
    "السلام عليكم", "ไทย ภาษา", "Ελληνικά ΣΑΣ", "\r\n\r\n", "x" * 120, "é" * 130,
]


@pytest.mark.parametrize("name", NAMES)
def test_offsets_and_word_ids_match_tokenizers_on_hostile_text(name):
    ours, ref = pair_of(name)
    texts = ALIGNMENT_TEXTS + hostile_texts(120, 11)
    for add_special_tokens in (True, False):
        assert_same([ours.encode(t, add_special_tokens=add_special_tokens) for t in texts],
                    [ref.encode(t, add_special_tokens=add_special_tokens) for t in texts],
                    f"{name}, add_special_tokens={add_special_tokens}")


@pytest.mark.parametrize("name", NAMES)
def test_offsets_match_tokenizers_on_the_corpora(name, documents):
    """Every corpus document (multilingual text, code), whole: offsets index the document. The
    maps between them, which are computed from these, are compared on the texts above (over all
    of the corpora they cost minutes of Python)."""
    ours, ref = pair_of(name)
    for i, (a, b) in enumerate(zip(ours.encode_batch(documents), ref.encode_batch(documents), strict=True)):
        assert (a.ids, a.offsets, a.word_ids) == (b.ids, b.offsets, b.word_ids), f"{name}, corpus document {i}"


def test_offsets_are_computed_only_when_read():
    """The ids path computes no alignment: an Encoding keeps its input and runs the offsets pass
    on the first read of offsets, word ids or a map, which gives the same ids."""
    ours, ref = pair_of("bert_base_uncased")
    words = ["Hello", "wörld"]
    e, r = ours.encode(words, is_pretokenized=True), ref.encode(words, is_pretokenized=True)
    words.append("changed after the encode")  # the input is kept as it was
    assert e.ids == r.ids
    assert e.offsets == r.offsets == [(0, 0), (0, 5), (0, 5), (0, 0)]
    assert e.word_ids == r.word_ids == [None, 0, 1, None]
    with pytest.warns(DeprecationWarning, match="word_ids"):
        assert e.words == e.word_ids
    assert repr(e).startswith("Encoding(num_tokens=4,")


def test_maps_take_tokenizers_arguments_and_say_none_where_it_does():
    ours, ref = pair_of("bert_base_uncased")
    a, b = ours.encode("Hello there, wörld", "second one"), ref.encode("Hello there, wörld", "second one")
    assert a.char_to_token(13, sequence_index=0) == b.char_to_token(13, sequence_index=0) == 4
    assert a.char_to_token(0, 1) == b.char_to_token(0, 1)
    assert a.char_to_token(500) is None and b.char_to_token(500) is None
    assert a.word_to_tokens(word_index=1, sequence_index=1) == b.word_to_tokens(word_index=1, sequence_index=1)
    assert a.word_to_chars(3) == b.word_to_chars(3)
    assert a.token_to_chars(token_index=0) is None and b.token_to_chars(token_index=0) is None  # [CLS]: no sequence
    assert a.token_to_word(0) is None and b.token_to_word(0) is None
    assert a.char_to_word(7, 0) == b.char_to_word(7, 0)
    for encoding in (a, b):  # a negative position: OverflowError in both
        with pytest.raises(OverflowError):
            encoding.char_to_token(-1)
    with pytest.raises(TypeError, match="^char_pos: expected an int, got str$"):
        a.char_to_token("7")
    assert a.char_to_token(np.int64(7)) == b.char_to_token(7)


def test_offsets_through_the_unigram_precompiled_normalizer_and_nfkc():
    """Unigram with SentencePiece's charsmap (Precompiled: a grapheme cluster replaced as a whole)
    and NFKC through a Sequence: ligatures, full-width forms and combining marks."""
    base = json.loads(FAMILIES["unigram_en"].read_text(encoding="utf-8")) if FAMILIES["unigram_en"].is_file() else None
    if base is None:
        pytest.skip(f"{FAMILIES['unigram_en']} is absent (shared test data)")
    texts = ALIGNMENT_TEXTS + ["Ａｂｃ １２３ ｶﾀｶﾅ", "ﬁne ﬂow", "a\u0308\u0301 x\u20dd"] + hostile_texts(60, 3)
    for normalizer in (base["normalizer"], {"type": "Sequence", "normalizers": [{"type": "NFKC"}, base["normalizer"]]},
                       {"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "Lowercase"}, {"type": "StripAccents"},
                                                            {"type": "Strip", "strip_left": True, "strip_right": True}, {"type": "Nmt"}]}):
        data = dict(base, normalizer=normalizer)
        ours = ferry.Tokenizer.from_str(json.dumps(data))
        ref = tokenizers.Tokenizer.from_str(json.dumps(data))
        assert_same([ours.encode(t) for t in texts], [ref.encode(t) for t in texts], json.dumps(normalizer)[:80])


def test_a_component_that_cannot_track_offsets_says_so():
    """SentencePiece's own normalizer (.model files) does not track alignment yet: offsets are a
    clear error naming it, never a guess; ids are unaffected."""
    model = FAMILIES["unigram_en"].parent / "sp_test_model_unigram_en.model"
    if not model.is_file():
        pytest.skip(f"{model} is absent (shared test data)")
    ours = ferry.Tokenizer.from_file(model)
    e = ours.encode("Hello world")
    assert e.ids
    with pytest.raises(ferry.UnsupportedError, match="normalizer sentencepiece"):
        e.offsets


def test_bad_arguments_get_clear_errors():
    ours, _ = pair_of("bert_base_uncased")
    with pytest.raises(ValueError, match="pad_to_multiple_of 0"):
        ours.enable_padding(pad_to_multiple_of=0)
    with pytest.raises(ValueError, match="stride 8 must be below max_length 8"):
        ours.enable_truncation(8, stride=8)
    with pytest.raises(ValueError, match="direction 'up'"):
        ours.enable_truncation(8, direction="up")
    with pytest.raises(ValueError, match="strategy \"first\""):
        ours.enable_truncation(8, strategy="first")
    ours.enable_truncation(4, stride=2)  # 4 less [CLS] and [SEP] leaves 2: not above the stride
    with pytest.raises(ValueError, match="max_length 4 less the 2 special tokens the post-processor adds: "
                                         "truncation stride 2 must be below the length kept, 2"):
        ours.encode("a b c d e f g h")
    ours.enable_truncation(3, strategy="only_second")
    with pytest.raises(ValueError, match="only_second needs a pair"):
        ours.encode("a b c d e f g h")
    ours.no_truncation()
    with pytest.raises(ferry.OutOfRangeError, match="id 40000 at position 1"):
        ours.decode([101, 40000])
    with pytest.raises(TypeError, match="batch item 2: expected a str"):
        ours.encode_batch(["a", "b", 3])
    with pytest.raises(TypeError, match="batch item 1: expected str or bytes, got int"):
        ours.encode_batch_ids(["a", 7])
    with pytest.raises(TypeError, match="is_pretokenized=True"):
        ours.encode(["a", "b", "c"])
    with pytest.raises(TypeError, match="a pretokenized sequence is a list of str"):
        ours.encode(["a", 1], is_pretokenized=True)



def test_a_newcomers_bad_calls_get_the_error_tokenizers_gives_or_a_clearer_one():
    """Found by a newcomer from tokenizers: a str with surrogates was repaired in silence, and its
    offsets then indexed the repaired text, not the caller's ("x\\ud83d\\ude00y": y at 2, not 3);
    negative indices printed nanobind's overloads; decode_batch named no item; a .model's
    to_tokenizers called it a tiktoken file."""
    ours, ref = pair_of("gpt2")
    for text in ("x\ud83d\ude00y", "a\ud800"):
        with pytest.raises(TypeError):
            ref.encode(text)
        with pytest.raises(ValueError, match=r"surrogate \(U\+D8(3D|00)\) at index 1, which is not Unicode text"):
            ours.encode(text)
    with pytest.raises(ValueError, match=r"batch item 1: the text has a surrogate \(U\+DC00\) at index 0"):
        ours.encode_batch(["fine", ("\udc00", "pair")])
    with pytest.raises(ValueError, match=r"batch item 0: .*U\+D800"):
        ours.encode_batch([["a", "\ud800"]], is_pretokenized=True)
    assert ours.encode_ids("x\ud83d\ude00y") == ours.encode_ids("x😀y")  # the ids path repairs, as tiktoken does
    encoding, reference = ours.encode("hello world"), ref.encode("hello world")
    for call, argument in [("char_to_token", "char_pos"), ("char_to_word", "char_pos"), ("token_to_chars", "token_index"),
                           ("token_to_word", "token_index"), ("token_to_sequence", "token_index"),
                           ("word_to_tokens", "word_index"), ("word_to_chars", "word_index"),
                           ("truncate", "max_length"), ("pad", "length")]:
        with pytest.raises(OverflowError):
            getattr(reference, call)(-1)
        with pytest.raises(OverflowError, match=rf"^{argument} -1: expected an int >= 0$"):
            getattr(encoding, call)(-1)
    with pytest.raises(OverflowError, match=r"^sequence_index -2: expected an int >= 0$"):
        encoding.char_to_token(0, -2)
    with pytest.raises(OverflowError, match=r"^pad_id 4294967296: expected an id in \[0, 2\*\*32 - 1\]$"):
        encoding.pad(20, pad_id=2**32)
    with pytest.raises(ValueError, match=r"^enable_padding pad_type_id -1: expected an id in \[0, 2\*\*32 - 1\]$"):
        ours.enable_padding(pad_type_id=-1)
    assert ours.padding is None
    with pytest.raises(ferry.OutOfRangeError, match=r"^decode_batch item 1: .*id 99999 at position 0 is not in"):
        ours.decode_batch([[15496], [99999]])
    model = SENTENCEPIECE / "mistral_7b_v1_tokenizer.model"
    if model.is_file():
        with pytest.raises(ferry.UnsupportedError, match=r"mistral_7b_v1_tokenizer.model: a SentencePiece .model has "
                                                         "no tokenizers form"):
            ferry.Tokenizer.from_file(model).to_tokenizers()


def test_a_template_without_pair_refuses_pairs(tmp_path):
    ours, _ = pair_of("bert_base_uncased")
    data = json.loads(ours.to_str())
    data["post_processor"] = {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}],
                              "special_tokens": {}}
    tok = ferry.Tokenizer.from_str(json.dumps(data), origin="nopair.json")
    assert tok.encode("a b").ids == tok.encode_ids("a b")
    with pytest.raises(ValueError, match="nopair.json: cannot encode a pair"):
        tok.encode("a", "b")


def test_a_list_of_two_words_is_not_taken_for_a_pair():
    """Found by review: encode(["a", "b"]) without is_pretokenized was encoded as a pair;
    tokenizers refuses it."""
    ours, ref = pair_of("bert_base_uncased")
    for value in (["a", "b"], ("a", "b")):
        with pytest.raises(TypeError):
            ref.encode(value)
        with pytest.raises(TypeError, match="is_pretokenized=True"):
            ours.encode(value)
    with pytest.raises(TypeError, match="encode pair: expected str, got list"):
        ours.encode("a", ["b", "c"])
    with pytest.raises(TypeError, match="encode sequence: expected str, got NoneType"):
        ours.encode(None)
    with pytest.raises(TypeError, match="lists of words, got str"):
        ours.encode("a b", is_pretokenized=True)
    assert ours.encode(["a", "b"], is_pretokenized=True).ids == ref.encode(["a", "b"], is_pretokenized=True).ids


def test_with_added_tokens_re_registers_an_existing_token_as_tokenizers():
    """Found by review: adding a token that is already there changed nothing; tokenizers
    registers it again with the new flags ([SEP] becomes a normalized, non-special token)."""
    ours, ref = pair_of("bert_base_uncased")
    grown = ours.with_added_tokens(["[SEP]"])
    ref.add_tokens(["[SEP]"])
    text = "hello [SEP] [sep] there"
    assert grown.encode(text).ids == ref.encode(text).ids
    assert grown.decode(grown.encode(text).ids) == ref.decode(ref.encode(text).ids)
    tokenizers_token = tokenizers.AddedToken("<q>", single_word=True)
    ref.add_tokens([tokenizers_token])
    grown = grown.with_added_tokens([tokenizers_token])  # the reference's AddedToken is read too
    assert grown.encode("a <q> b").ids == ref.encode("a <q> b").ids
    assert str(ferry.AddedToken("[PAD]")) == str(tokenizers.AddedToken("[PAD]")) == "[PAD]"


def test_bad_argument_types_name_the_argument():
    """Found by review: these printed nanobind's signature dump instead."""
    ours, _ = pair_of("bert_base_uncased")
    with pytest.raises(TypeError, match="decode: expected a sequence of int ids, got NoneType"):
        ours.decode(None)
    with pytest.raises(TypeError, match="decode_batch item 1: expected a sequence"):
        ours.decode_batch([[101], None])
    with pytest.raises(OverflowError, match="id -1"):
        ours.id_to_token(-1)
    with pytest.raises(TypeError, match="expected an int id, got str"):
        ours.id_to_token("5")
    with pytest.raises(TypeError, match="pad_id: expected an int, got str"):
        ours.enable_padding(pad_id="0")
    with pytest.raises(TypeError, match="max_length: expected an int, got NoneType"):
        ours.enable_truncation(max_length=None)
    ours.enable_truncation(16, stride=3, strategy="only_first")
    with pytest.raises(ValueError, match="max_length 13 needs 77 ids removed, and the sequence the strategy truncates has only 2"):
        ours.encode("a b", " ".join(["word"] * 88))


# tokenizers' Encoding.truncate / pad (in place) and Encoding.merge, in sequences a user writes:
# truncate to windows, pad them, merge with another encoding.
EDITS = [
    [("truncate", (5,), {})],
    [("truncate", (6, 2), {"direction": "left"})],
    [("truncate", (0,), {})],
    [("truncate", (4, 1), {}), ("pad", (12,), {})],
    [("pad", (40,), {"direction": "left", "pad_id": 3, "pad_type_id": 1, "pad_token": "<pad>"}), ("truncate", (9, 3), {})],
    [("pad", (2,), {})],
]


@pytest.mark.parametrize("name", ["bert_base_uncased", "phi3_mini", "gpt2"])
@pytest.mark.parametrize("edits", range(len(EDITS)))
def test_encoding_truncate_pad_and_merge_match_tokenizers(name, edits):
    ours, ref = pair_of(name)
    texts = sample_texts(seed=edits, count=8)
    for i, text in enumerate(texts):
        pair = texts[(i + 1) % len(texts)] if i % 2 else None
        a, b = ours.encode(text, pair), ref.encode(text, pair)
        for method, args, kwargs in EDITS[edits]:
            getattr(a, method)(*args, **kwargs)
            getattr(b, method)(*args, **kwargs)
        assert_same([a], [b], (name, EDITS[edits], text[:60]))
        # A short second encoding with a window of its own: merge pairs every window of one with
        # each of the other's, so long ones would make thousands.
        other_a, other_b = ours.encode("merge me, please"), ref.encode("merge me, please")
        other_a.truncate(3)
        other_b.truncate(3)
        merged = (ferry.Encoding.merge([a, other_a]), tokenizers.Encoding.merge([b, other_b]))
        assert_same([merged[0]], [merged[1]], (name, "merge", text[:60]))
    assert attributes(ferry.Encoding.merge([])) == attributes(tokenizers.Encoding.merge([]))


def test_encoding_edits_leave_other_encodings_alone_and_refuse_bad_arguments():
    ours, ref = pair_of("bert_base_uncased")
    e = ours.encode("one two three four five six seven")
    window = e.overflowing  # none yet
    e.truncate(4, 1)
    window = e.overflowing[0]
    before = window.ids
    window.pad(10)
    assert e.overflowing[0].ids == before  # the parent's window is its own value
    with pytest.raises(ValueError, match='truncation direction: expected "right" or "left", got "middle"'):
        e.truncate(3, direction="middle")
    with pytest.raises(ValueError, match='padding direction: expected "right" or "left", got "up"'):
        e.pad(10, direction="up")
    # tokenizers panics here (PanicException); ferry says what is wrong and changes nothing.
    ids = e.ids
    with pytest.raises(ValueError, match="stride 2 must be below the length kept, 2"):
        e.truncate(2, 2)
    assert e.ids == ids


def test_each_padded_position_keeps_the_pad_token_it_was_padded_with():
    """Found by the newcomer review: a second pad, or a merge, spelled every padded position with
    the latest pad_token."""
    ours, ref = pair_of("bert_base_uncased")
    a, b = ours.encode("hello world"), ref.encode("hello world")
    for e in (a, b):
        e.pad(6, pad_id=5, pad_token="A")
        e.pad(8, pad_id=9, pad_token="B", direction="left")
    assert_same([a], [b], "two pads")
    xs = [ours.encode("hi"), ours.encode("yo")]
    ys = [ref.encode("hi"), ref.encode("yo")]
    for e, token in zip(xs + ys, ["C", "D", "C", "D"]):
        e.pad(5, pad_token=token)
    assert_same([ferry.Encoding.merge(xs)], [tokenizers.Encoding.merge(ys)], "merge")
    ours.enable_padding(length=12)  # the tokenizer's own padding, then an Encoding.pad
    ref.enable_padding(length=12)
    a, b = ours.encode("one two three four five six"), ref.encode("one two three four five six")
    a.pad(14, pad_token="<p>")
    b.pad(14, pad_token="<p>")
    assert_same([a], [b], "tokenizer padding, then pad")


def test_encoding_merge_and_pad_refuse_bad_items_without_crashing():
    """Found by the newcomer review: None in Encoding.merge's list was a segfault."""
    ours, _ = pair_of("bert_base_uncased")
    e = ours.encode("hello")
    for items in ([e, None], [None], [None, e]):
        with pytest.raises(TypeError, match="is None, not an Encoding"):
            ferry.Encoding.merge(items)
    with pytest.raises(TypeError):
        ferry.Encoding.merge([e, 1])
    with pytest.raises(ferry.OutOfRangeError, match="length 9223372036854775808 is more ids"):
        e.pad(2**63)


class _EncodingsDataset:  # a map-style dataset whose items are Encodings, as users write one
    def __init__(self, tokenizer, texts):
        self.tokenizer, self.texts = tokenizer, texts

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, i):
        return self.tokenizer.encode(*self.texts[i]) if isinstance(self.texts[i], tuple) else \
            self.tokenizer.encode(self.texts[i])


@pytest.mark.parametrize("name", ["bert_base_uncased", "gpt2", "unigram_en"])
def test_encodings_pickle_as_tokenizers_encodings_do(name):
    """Found by a newcomer: pickling an Encoding raised TypeError, so DataLoader workers could
    not return them, as they return tokenizers' Encodings."""
    ours, ref = pair_of(name)
    for tokenizer in (ours, ref):
        tokenizer.enable_truncation(9, stride=2)
        tokenizer.enable_padding(pad_to_multiple_of=4)
    # Short texts: a pair's overflowing windows combine each with each (thousands for long ones).
    texts = [t for t in sample_texts(3, 40) if t.strip() and len(t) <= 60][:8]
    pairs = list(zip(texts[::2], texts[1::2]))
    ours_encodings, ref_encodings = ours.encode_batch(texts + pairs), ref.encode_batch(texts + pairs)
    assert_same([pickle.loads(pickle.dumps(e)) for e in ours_encodings],
                [pickle.loads(pickle.dumps(e)) for e in ref_encodings], f"{name}, unpickled")
    # An unpickled Encoding needs no tokenizer, and pads, truncates and merges as one that has one.
    a, b = pickle.loads(pickle.dumps(ours_encodings[0])), pickle.loads(pickle.dumps(ref_encodings[0]))
    a.pad(40, pad_token="<p>"), b.pad(40, pad_token="<p>")
    a.truncate(30, stride=3), b.truncate(30, stride=3)
    assert_same([a, ferry.Encoding.merge([a, ours_encodings[1]])],
                [b, tokenizers.Encoding.merge([b, ref_encodings[1]])], f"{name}, edited after unpickling")
    torch_data = pytest.importorskip("torch.utils.data")
    loader = torch_data.DataLoader(_EncodingsDataset(ours, texts + pairs), batch_size=4, num_workers=2,
                                   collate_fn=list)
    one_by_one = [ref.encode(*t) if isinstance(t, tuple) else ref.encode(t) for t in texts + pairs]
    assert_same([e for batch in loader for e in batch], one_by_one, f"{name}, through 2 DataLoader workers")


def test_a_bad_encoding_pickle_is_refused_clearly():
    good = pickle.dumps(pair_of("gpt2")[0].encode("hello world"))
    state = ferry.Encoding.__reduce_ex__(pickle.loads(good), 2)[2]
    assert state[0] == 1 and len(state) == 11
    for bad, why in [((1, [1], [0]), "expected a tuple of 11 starting with version 1"),
                     ((2,) + state[1:], "expected a tuple of 11 starting with version 1"),
                     (state[:6] + ([b"a"] * 3,) + state[7:], "fields of different lengths"),
                     (state[:1] + (["x"] * len(state[1]),) + state[2:], "a field of the wrong type"),
                     (state[:6] + (["t"] * len(state[1]),) + state[7:], "a token that is not bytes"),
                     (state[:5] + ([(0, 0, 99)],) + state[6:], "a sequence range outside the ids")]:
        encoding = ferry.Encoding.__new__(ferry.Encoding)
        with pytest.raises(ferry.InvalidArgumentError, match=rf"not a ferry Encoding's pickle \({why}\)"):
            encoding.__setstate__(bad)
    sentencepiece = SENTENCEPIECE / "mistral_7b_v1_tokenizer.model"
    if sentencepiece.is_file():  # offsets cannot be computed there: pickled without them
        e = pickle.loads(pickle.dumps(ferry.Tokenizer.from_file(sentencepiece).encode("hello world")))
        assert e.tokens == ["▁hell", "o", "▁world"]
        with pytest.raises(ferry.UnsupportedError, match="Encoding.offsets: this Encoding has no offsets"):
            e.offsets


@pytest.mark.parametrize("name", ["gpt2", "bert_base_uncased"])
def test_encode_special_tokens_and_encode_batch_fast_are_tokenizers(name):
    """Found by a newcomer: setting encode_special_tokens (tokenizers' switch for untrusted text)
    raised AttributeError, and encode_batch_fast was missing."""
    ours, ref = pair_of(name)
    texts = ["<|endoftext|>hi [CLS] there [SEP]", "[MASK] <s> plain", "no specials"]
    fingerprint = ours.fingerprint
    assert ours.encode_special_tokens is False and ref.encode_special_tokens is False
    ours.encode_special_tokens = ref.encode_special_tokens = True
    assert_same([ours.encode(t) for t in texts], [ref.encode(t) for t in texts], f"{name}, encode_special_tokens")
    assert_same(ours.encode_batch(texts), ref.encode_batch(texts), f"{name}, encode_special_tokens batch")
    assert ours.encode_ids(texts[0]) == ref.encode(texts[0]).ids
    assert [a.tolist() for a in ours.encode_batch_ids(texts)] == [e.ids for e in ref.encode_batch(texts)]
    assert ours.fingerprint == fingerprint  # a setting, not content
    assert pickle.loads(pickle.dumps(ours)).encode_special_tokens is True
    ours.encode_special_tokens = ref.encode_special_tokens = False
    assert_same([ours.encode(t) for t in texts], [ref.encode(t) for t in texts], f"{name}, special tokens matched")
    # tokenizers' fast batch leaves tokens, offsets and word ids empty; ferry's has them all.
    fields = ("ids", "type_ids", "attention_mask", "special_tokens_mask")
    assert [[getattr(e, f) for f in fields] for e in ours.encode_batch_fast(texts)] == \
        [[getattr(e, f) for f in fields] for e in ref.encode_batch_fast(texts)]
    assert_same(ours.encode_batch_fast(texts), ref.encode_batch(texts), f"{name}, encode_batch_fast")
    with pytest.raises(TypeError, match="encode_special_tokens: expected a bool, got int"):
        ours.encode_special_tokens = 1
