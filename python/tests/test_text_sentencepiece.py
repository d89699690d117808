"""SentencePiece `.model` files read natively, held to the `sentencepiece` library's `encode(text)`
ids and `decode(ids)` text: the shared Unigram and Mistral BPE models, and models trained here
(BPE with byte fallback, Unigram, user-defined and control symbols, other normalizer settings) on
the shared corpora, over the corpora and hostile text. Also GPT-2's original data-gym pair
(encoder.json + vocab.bpe), held to tiktoken's gpt2 encoding and to the r50k_base rank file."""

from __future__ import annotations

import pickle
import random

import pytest

import ferry
from test_text import CORPORA, SHARED, TIKTOKEN_DIR, corpus_documents
from test_text_families import SP_DIR, every_code_point_texts, hostile_texts

spm = pytest.importorskip("sentencepiece")
from sentencepiece import sentencepiece_model_pb2 as model_pb2  # noqa: E402

SHARED_MODELS = {
    "unigram_en": SP_DIR / "sp_test_model_unigram_en.model",
    "mistral_7b_v1": SP_DIR / "mistral_7b_v1_tokenizer.model",
}
USER_DEFINED = ["<sep>", "[MASK]", "ﬁx", "▁▁"]
CONTROL = ["<ctrl>", "<cls>"]

# Text that SentencePiece's normalizer and models treat specially: NFKC-sensitive characters
# (ligatures, fullwidth forms, compatibility digits), combining sequences, control characters,
# U+FFFD, runs of spaces of several kinds, leading and trailing spaces, and the spellings of
# user-defined, control, unk and byte pieces.
SP_PIECES = [
    "ﬁ", "ﬂ", "ﬃ", "Ａｂｃ", "１２３", "①", "㍿", "Ⅻ", "½", "e\u0301", "\u0301", "a\u0308\u0301", "\u1100\u1161\u11a8",
    "\u0000", "\u0001", "\u0008", "\t", "\n", "\r\n", "\u000b", "\u001f", "\u007f", "\u0085", "\u00a0",
    "\u2002", "\u3000", "\u200b", "\u200d", "\ufeff", "\ufffd", "\U0001f600", "\U0001f469\u200d\U0001f4bb",
    "  ", "     ", "▁", "▁▁", "<unk>", "<s>", "</s>", "<0x41>", "<0xFF>", "<sep>", "[MASK]", "ﬁx", "<ctrl>",
    "<cls>", "hello", "Hello", "world", "the", "don't", "日本語", "中文", "한국어", "русский", "العربية",
]


def sp_hostile_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = ["", " ", "   ", "\t", "\n", " a", "a ", "  a  b  ", "a\u3000\u3000b", "\ufffd", "<sep>", " <sep> ",
             "a<sep>b", "<sep><sep>", "[MASK] ", "\u0000a"]
    for _ in range(count):
        parts = [rng.choice(SP_PIECES) for _ in range(rng.randint(1, 12))]
        sep = rng.choice(["", " ", "  ", "\n", "\t"])
        texts.append(rng.choice(["", " ", "  "]) + sep.join(parts) + rng.choice(["", " ", "  "]))
    return texts + hostile_texts(count // 2, seed)


def load_shared(name):
    path = SHARED_MODELS[name]
    if not path.exists():
        pytest.skip(f"{path} is absent (shared test data)")
    return ferry.Tokenizer.from_sentencepiece(path), spm.SentencePieceProcessor(model_file=str(path))


def assert_same(name, ours, ref, texts):
    expected = ref.encode(texts)
    got = ours.encode_batch_ids(texts)
    bad = [i for i, (e, g) in enumerate(zip(expected, got)) if e != g.tolist()]
    assert not bad, (f"{name}: {len(bad)} of {len(texts)} texts differ, first: {texts[bad[0]][:200]!r}: "
                     f"{expected[bad[0]][:30]} vs {got[bad[0]].tolist()[:30]}")
    for text, ids in zip(texts, expected):
        assert ours.decode(ids, skip_special_tokens=False) == ref.decode(ids), f"{name}: decode differs for {text[:200]!r}"


def assert_same_decode_of_random_ids(name, ours, ref, seed):
    """Any id sequence, byte pieces, control and unk pieces included, decodes as SentencePiece's."""
    rng = random.Random(seed)
    n = ref.get_piece_size()
    byte_ids = [i for i in range(n) if ref.is_byte(i)]
    for _ in range(500):
        ids = [rng.choice(byte_ids) if byte_ids and rng.random() < 0.5 else rng.randrange(n)
               for _ in range(rng.randint(0, 12))]
        assert ours.decode(ids, skip_special_tokens=False) == ref.decode(ids), f"{name}: {ids}"


@pytest.fixture(scope="module")
def documents():
    if not CORPORA.is_dir():
        pytest.skip("shared test data (../shared/data/corpora) is absent")
    return corpus_documents()


# ----------------------------------------------------------------------------- shared .model files


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_models_match_sentencepiece_on_every_corpus(name, documents):
    ours, ref = load_shared(name)
    assert_same(name, ours, ref, documents)


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_models_match_sentencepiece_on_every_corpus_line(name, documents):
    """Lines alone: many start or end with spaces, which whole documents have once."""
    ours, ref = load_shared(name)
    assert_same(name, ours, ref, [line for doc in documents for line in doc.split("\n")])
    # Documents up to 16 KB whole.
    assert_same(name, ours, ref, [doc for doc in documents if len(doc.encode()) <= 16384])


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_models_match_sentencepiece_on_hostile_text(name):
    ours, ref = load_shared(name)
    assert_same(name, ours, ref, sp_hostile_texts(2000, seed=5))
    assert_same_decode_of_random_ids(name, ours, ref, seed=5)


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_models_match_sentencepiece_on_every_code_point(name):
    ours, ref = load_shared(name)
    assert_same(name, ours, ref, every_code_point_texts())


def test_from_file_reads_a_model_by_name_or_first_byte(tmp_path):
    ours, ref = load_shared("unigram_en")
    by_name = ferry.Tokenizer.from_file(SHARED_MODELS["unigram_en"])
    renamed = tmp_path / "tokenizer.bin"
    renamed.write_bytes(SHARED_MODELS["unigram_en"].read_bytes())
    by_byte = ferry.Tokenizer.from_file(renamed)
    assert by_name == ours == by_byte
    assert by_byte.encode_ids("Hello world") == ref.encode("Hello world")
    with pytest.raises(ferry.UnsupportedError, match="sentencepiece file has no tokenizer.json form"):
        ours.to_str()


def test_vocabulary_is_the_models_pieces():
    ours, ref = load_shared("mistral_7b_v1")
    assert ours.vocab_size == ref.get_piece_size()
    for i in [0, 1, 2, 3, 100, 259, 1000, ref.get_piece_size() - 1]:
        assert ours.id_to_token(i) == ref.id_to_piece(i)
        assert ours.token_to_id(ref.id_to_piece(i)) == i


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_pickles_by_content(name):
    ours, ref = load_shared(name)
    back = pickle.loads(pickle.dumps(ours))
    assert back == ours and hash(back) == hash(ours) and back.fingerprint == ours.fingerprint
    assert back.encode_ids("Pickled ﬁne  text") == ref.encode("Pickled ﬁne  text")
    assert "format='sentencepiece'" in repr(back)


def modified(path, change) -> bytes:
    proto = model_pb2.ModelProto()
    proto.ParseFromString(path.read_bytes())
    change(proto)
    return proto.SerializeToString()


def from_proto(data: bytes, tmp_path, name="changed.model"):
    path = tmp_path / name
    path.write_bytes(data)
    return ferry.Tokenizer.from_sentencepiece(path)


def test_fingerprint_follows_scores_charsmap_and_flags(tmp_path):
    path = SHARED_MODELS["unigram_en"]
    ours, _ = load_shared("unigram_en")
    same = from_proto(modified(path, lambda p: None), tmp_path, "same.model")
    assert same.fingerprint == ours.fingerprint  # a re-serialization of the same content

    def rescore(p):
        p.pieces[500].score -= 0.25

    def recharsmap(p):
        data = bytearray(p.normalizer_spec.precompiled_charsmap)
        blob = 4 + int.from_bytes(data[:4], "little")  # where the replacement strings start
        last_letter = max(i for i in range(blob, len(data)) if chr(data[i]).isalpha() and data[i] < 0x80)
        data[last_letter] = ord("X") if data[last_letter] != ord("X") else ord("Y")
        p.normalizer_spec.precompiled_charsmap = bytes(data)

    def no_dummy_prefix(p):
        p.normalizer_spec.add_dummy_prefix = False

    prints = {ours.fingerprint}
    for change in (rescore, recharsmap, no_dummy_prefix):
        prints.add(from_proto(modified(path, change), tmp_path).fingerprint)
    assert len(prints) == 4


# -------------------------------------------------------------------------------- trained models

TRAINED = {
    # BPE with byte fallback, user-defined and control symbols, the default nmt_nfkc normalizer.
    "bpe_byte_fallback": dict(model_type="bpe", vocab_size=2000, byte_fallback=True),
    # Unigram with the same symbols.
    "unigram": dict(model_type="unigram", vocab_size=2000),
    # Unigram, case-folding NFKC, no dummy prefix, spaces kept as they are, byte fallback.
    "unigram_nfkc_cf": dict(model_type="unigram", vocab_size=2000, normalization_rule_name="nfkc_cf",
                            add_dummy_prefix=False, remove_extra_whitespaces=False, byte_fallback=True),
    # BPE without normalization whose pieces may cross spaces (no byte fallback: unks).
    "bpe_identity_across_spaces": dict(model_type="bpe", vocab_size=2000, normalization_rule_name="identity",
                                       split_by_whitespace=False, character_coverage=0.98),
}


def training_sentences() -> list[str]:
    sentences = []
    # English, three more Latin-script languages, Greek and Russian: an alphabet a 2000-piece
    # vocabulary covers, and enough else that the hostile text finds unknown characters.
    languages = ["de", "fr", "es", "el", "ru"]
    for path in [CORPORA / "tinyshakespeare.txt", *(CORPORA / "multilingual_sentences" / f"{x}.txt" for x in languages)]:
        if path.is_file():
            sentences += [line for line in path.read_text(errors="replace").splitlines() if line.strip()][:4000]
    return sentences


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if not CORPORA.is_dir():
        pytest.skip("shared test data (../shared/data/corpora) is absent")
    sentences = training_sentences()
    folder = tmp_path_factory.mktemp("sp_models")
    paths = {}
    for name, options in TRAINED.items():
        prefix = folder / name
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_prefix=str(prefix), user_defined_symbols=USER_DEFINED,
            control_symbols=CONTROL, num_threads=2, minloglevel=2, **options)
        paths[name] = prefix.with_suffix(".model")
    return paths


@pytest.mark.parametrize("name", TRAINED)
def test_trained_models_match_sentencepiece(name, trained, documents):
    path = trained[name]
    ours = ferry.Tokenizer.from_file(path)
    ref = spm.SentencePieceProcessor(model_file=str(path))
    # The file has what the test asks for.
    proto = model_pb2.ModelProto()
    proto.ParseFromString(path.read_bytes())
    types = {p.piece: p.type for p in proto.pieces}
    assert all(types[s] == model_pb2.ModelProto.SentencePiece.USER_DEFINED for s in USER_DEFINED)
    assert all(types[s] == model_pb2.ModelProto.SentencePiece.CONTROL for s in CONTROL)
    assert proto.trainer_spec.byte_fallback == TRAINED[name].get("byte_fallback", False)
    lines = [line for doc in documents for line in doc.split("\n")]
    assert_same(name, ours, ref, lines + [doc for doc in documents if len(doc.encode()) <= 16384])
    assert_same(name, ours, ref, sp_hostile_texts(1500, seed=17))
    assert_same_decode_of_random_ids(name, ours, ref, seed=17)
    # User-defined symbols come out whole, control symbols never match text.
    sep = ours.token_to_id("<sep>")
    assert sep in ours.encode_ids("a<sep>b") and ours.token_to_id("<ctrl>") not in ours.encode_ids("<ctrl>")


@pytest.mark.parametrize("name", TRAINED)
def test_trained_models_match_sentencepiece_on_whole_documents(name, trained, documents):
    ours = ferry.Tokenizer.from_file(trained[name])
    ref = spm.SentencePieceProcessor(model_file=str(trained[name]))
    assert_same(name, ours, ref, documents)


def test_pieces_across_spaces_are_really_there(trained):
    """The model trained with split_by_whitespace=False has pieces with U+2581 inside, so the
    whole normalized text is one input to its model (no cut before spaces)."""
    proto = model_pb2.ModelProto()
    proto.ParseFromString(trained["bpe_identity_across_spaces"].read_bytes())
    assert any("▁" in p.piece[1:].lstrip("▁") for p in proto.pieces)


# ------------------------------------------------------------------------------------ bad input


def test_malformed_model_files_are_clear_errors(tmp_path):
    path = SHARED_MODELS["unigram_en"]
    if not path.exists():
        pytest.skip(f"{path} is absent (shared test data)")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.model"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ferry.CorruptionError, match=r"truncated\.model: .* at byte \d+: .*runs past the end"):
        ferry.Tokenizer.from_sentencepiece(truncated)
    # Every prefix of the first kilobyte, and a few later cuts: an error or a tokenizer, no crash.
    for cut in list(range(0, 1024)) + list(range(1024, len(data), 4099)):
        try:
            from_proto(data[:cut], tmp_path, "cut.model")
        except (ferry.CorruptionError, ferry.UnsupportedError):
            pass
    # A score written as a varint (field 2 of the first piece, wire type 0 instead of 5).
    first = data.index(b"\x15")  # the first score tag (field 2, wire type 5): <unk>'s score 0 is left out
    wrong = data[:first] + b"\x10" + data[first + 1 :]
    with pytest.raises(ferry.CorruptionError, match=rf"wrong\.model: ModelProto\.pieces\[3\]\.score at byte {first}: "
                       r"expected wire type 32-bit \(5\), found varint \(0\)"):
        from_proto(wrong, tmp_path, "wrong.model")
    # A length that runs past the end.
    huge = b"\x0a\xff\xff\xff\xff\x0f" + data
    with pytest.raises(ferry.CorruptionError, match=r"huge\.model: ModelProto\.pieces at byte 1: length 4294967295 runs past"):
        from_proto(huge, tmp_path, "huge.model")

    def nan_score(p):
        p.pieces[7].score = float("nan")

    def inf_score(p):
        p.pieces[8].score = float("-inf")

    def duplicate(p):
        p.pieces[9].piece = p.pieces[10].piece

    for change, pattern in [(nan_score, r"pieces\[7\]\.score: .* not finite"),
                            (inf_score, r"pieces\[8\]\.score: .* not finite"),
                            (duplicate, r"pieces\[10\]\.piece: .* is also piece 9")]:
        with pytest.raises(ferry.CorruptionError, match=r"bad\.model: ModelProto\." + pattern):
            from_proto(modified(path, change), tmp_path, "bad.model")

    def word_model(p):
        p.trainer_spec.model_type = model_pb2.TrainerSpec.WORD

    with pytest.raises(ferry.UnsupportedError, match=r"TrainerSpec\.model_type: WORD models are not read"):
        from_proto(modified(path, word_model), tmp_path)
    unknown = modified(path, lambda p: None) + b"\x12\x02\x18\x09"  # trainer_spec { model_type: 9 }
    with pytest.raises(ferry.UnsupportedError, match=r"unknown model type 9"):
        from_proto(unknown, tmp_path)


# ----------------------------------------------------------------------------- GPT-2's data gym

GPT2_DIR = SHARED / "tokenizers" / "gpt2_original"


def data_gym_files():
    encoder, vocab = GPT2_DIR / "encoder.json", GPT2_DIR / "vocab.bpe"
    if not (encoder.exists() and vocab.exists()):
        pytest.skip(f"{GPT2_DIR} is absent (shared test data)")
    return encoder, vocab


def reference_gpt2():
    """tiktoken's own gpt2 encoding, its data-gym loader reading the local files."""
    tiktoken = pytest.importorskip("tiktoken")
    import tiktoken.load
    import tiktoken_ext.openai_public as openai_public

    encoder, vocab = data_gym_files()
    original = openai_public.data_gym_to_mergeable_bpe_ranks
    openai_public.data_gym_to_mergeable_bpe_ranks = lambda **k: tiktoken.load.data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(vocab), encoder_json_file=str(encoder))
    try:
        spec = openai_public.gpt2()
    finally:
        openai_public.data_gym_to_mergeable_bpe_ranks = original
    return tiktoken.Encoding(**spec)


def test_data_gym_matches_tiktoken_gpt2(documents):
    encoder, vocab = data_gym_files()
    ours = ferry.Tokenizer.from_data_gym(encoder, vocab)
    ref = reference_gpt2()
    texts = documents + hostile_texts(1000, seed=3) + ["<|endoftext|>", "a<|endoftext|>b"]
    expected = [ref.encode(t, allowed_special="all") for t in texts]
    got = ours.encode_batch_ids(texts)
    bad = [i for i, (e, g) in enumerate(zip(expected, got)) if e != g.tolist()]
    assert not bad, f"{len(bad)} of {len(texts)} differ, first: {texts[bad[0]][:200]!r}"
    assert ours.decode(expected[0], skip_special_tokens=False) == ref.decode(expected[0])
    assert ours.vocab_size == ref.n_vocab == 50257


def test_data_gym_is_the_r50k_rank_file(tmp_path):
    encoder, vocab = data_gym_files()
    ranks = TIKTOKEN_DIR / "r50k_base.tiktoken"
    if not ranks.exists():
        pytest.skip(f"{ranks} is absent (shared test data)")
    ours = ferry.Tokenizer.from_data_gym(encoder, vocab)
    assert ours == ferry.Tokenizer.from_tiktoken(ranks)  # same content, same fingerprint
    assert pickle.loads(pickle.dumps(ours)) == ours
    # Files that disagree are refused, as tiktoken asserts.
    lines = vocab.read_text(encoding="utf-8").split("\n")
    swapped = tmp_path / "vocab.bpe"
    swapped.write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]), encoding="utf-8")
    with pytest.raises(ferry.CorruptionError, match="encoder.json does not match vocab.bpe"):
        ferry.Tokenizer.from_data_gym(encoder, swapped)
    broken = tmp_path / "broken.bpe"
    broken.write_text("\n".join([lines[0], "a b c", *lines[2:]]), encoding="utf-8")
    with pytest.raises(ferry.CorruptionError, match="vocab.bpe line 2: expected two tokens, found 3"):
        ferry.Tokenizer.from_data_gym(encoder, broken)
