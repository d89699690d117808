"""ferry.tiktoken against tiktoken itself: ids, special-token safety, errors, decoding, attributes,
get_encoding from local rank files, pickling."""

from __future__ import annotations

import hashlib
import pickle
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest

import ferry
import ferry.tiktoken as ft
from test_text import CORPORA, TIKTOKEN_DIR, random_texts

tiktoken = pytest.importorskip("tiktoken")
import tiktoken.load  # noqa: E402
import tiktoken.model  # noqa: E402
import tiktoken_ext.openai_public as openai_public  # noqa: E402

pytestmark = pytest.mark.skipif(
    not TIKTOKEN_DIR.is_dir(), reason="shared test data (../shared/data/tokenizers/tiktoken) is absent"
)

NAMES = ["gpt2", "r50k_base", "p50k_base", "p50k_edit", "cl100k_base", "o200k_base"]
FILE_OF = {"gpt2": "r50k_base", "p50k_edit": "p50k_base"}


def rank_file(name: str) -> Path:
    return TIKTOKEN_DIR / f"{FILE_OF.get(name, name)}.tiktoken"


_REQUESTED_URLS: dict[str, list[str]] = {}


def reference_spec(name: str) -> dict:
    """tiktoken's own constructor for `name`, its downloads replaced by the local rank file; the
    URLs it asked for are kept in _REQUESTED_URLS."""
    ranks = tiktoken.load.load_tiktoken_bpe(str(rank_file(name)))
    urls = _REQUESTED_URLS.setdefault(name, [])
    saved = openai_public.load_tiktoken_bpe, openai_public.data_gym_to_mergeable_bpe_ranks

    def load(url, *args, **kwargs):
        urls.append(url)
        return ranks

    openai_public.load_tiktoken_bpe = load
    openai_public.data_gym_to_mergeable_bpe_ranks = lambda *a, **k: ranks
    try:
        return getattr(openai_public, name)()
    finally:
        openai_public.load_tiktoken_bpe, openai_public.data_gym_to_mergeable_bpe_ranks = saved


_REFERENCES: dict[str, object] = {}


def reference(name: str):
    if name not in _REFERENCES:
        _REFERENCES[name] = tiktoken.Encoding(**reference_spec(name))
    return _REFERENCES[name]


@pytest.fixture(autouse=True)
def local_ranks(monkeypatch, tmp_path):
    """Every test resolves named encodings from the shared rank files, through a folder of
    symlinks, and never from this machine's real tiktoken cache."""
    folder = tmp_path / "ranks"
    folder.mkdir()
    for stem in ("r50k_base", "p50k_base", "cl100k_base", "o200k_base"):
        (folder / f"{stem}.tiktoken").symlink_to(TIKTOKEN_DIR / f"{stem}.tiktoken")
    monkeypatch.setenv("FERRY_TIKTOKEN_DIR", str(folder))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "no-cache"))
    return folder


_OURS: dict[str, ft.Encoding] = {}


def ours(name: str) -> ft.Encoding:
    if name not in _OURS:
        _OURS[name] = ft.get_encoding(name)
    return _OURS[name]


def outcome(call):
    """What a call gives: ("ok", value) or ("raises", type, message)."""
    try:
        value = call()
    except Exception as e:  # noqa: BLE001 - comparing whatever each side raises
        return ("raises", type(e), str(e))
    return ("ok", value.tolist() if isinstance(value, np.ndarray) else value)


def special_texts(specials: list[str]) -> list[str]:
    """Special tokens at the start, middle and end, adjacent, repeated, partial, among surrogates
    and multi-byte text."""
    eot = "<|endoftext|>"
    other = [s for s in specials if s != eot]
    second = other[0] if other else eot
    texts = [
        "", "hello world", eot, f"{eot}hello", f"hello{eot}", f"hello {eot} world", f"{eot}{eot}",
        f"{eot}{second}", f"a{second}b{eot}c", f"{eot} {eot}  {eot}", "<|endoftext", "endoftext|>",
        "<|endoftext|", f"<|endo{eot}ftext|>", f"<<|endoftext|>>", f"{eot[:-1]}{eot}",
        f"x{eot}\n\n{second}\t", f"héllo wörld 日本語{eot}👍🏽", f"\ud83d\ude00{eot}\udc00",
        f"\ud800{second}\ud83d", "  " + eot + "  ", eot * 20, f"{second}" * 3 + "tail",
        f"not a special token{eot}hello", "hello not a special token",
    ]
    texts += [f"p{s}q{s}" for s in specials]
    return texts


MODES = [
    {},
    {"allowed_special": "all"},
    {"disallowed_special": ()},
    {"allowed_special": {"<|endoftext|>"}},
    {"allowed_special": {"<|endoftext|>"}, "disallowed_special": ()},
    {"allowed_special": "all", "disallowed_special": ()},
    {"allowed_special": {"<|endoftext|>", "not a special token"}},
    {"disallowed_special": {"<|endoftext|>"}},
    {"disallowed_special": ["hello"]},
    {"allowed_special": set(), "disallowed_special": "all"},
]


def modes_for(specials: list[str]) -> list[dict]:
    modes = list(MODES)
    others = [s for s in specials if s != "<|endoftext|>"]
    if others:
        modes.append({"allowed_special": set(others)})
        modes.append({"allowed_special": {others[0]}, "disallowed_special": {"<|endoftext|>"}})
        modes.append({"disallowed_special": frozenset(specials) - {others[0]}})
    return modes


@pytest.mark.parametrize("name", NAMES)
def test_encode_special_token_handling_matches_tiktoken(name):
    ref, enc = reference(name), ours(name)
    specials = sorted(ref.special_tokens_set)
    for text in special_texts(specials):
        for mode in modes_for(specials):
            expected = outcome(lambda: ref.encode(text, **mode))
            assert outcome(lambda: enc.encode(text, **mode)) == expected, (text, mode)
            assert outcome(lambda: enc.encode_to_numpy(text, **mode)) == expected, (text, mode)
    # The default refuses every special token, naming it.
    for special in specials:
        with pytest.raises(ValueError, match=f"disallowed special token '{special}'") as caught:
            enc.encode(f"some text {special}")
        assert type(caught.value) is ValueError


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base", "p50k_edit"])
def test_encode_matches_tiktoken_on_generated_text(name):
    ref, enc = reference(name), ours(name)
    for text in random_texts(400, seed=5):
        for mode in ({}, {"allowed_special": "all"}, {"disallowed_special": ()},
                     {"allowed_special": {"<|endoftext|>"}, "disallowed_special": ()}):
            assert outcome(lambda: enc.encode(text, **mode)) == outcome(lambda: ref.encode(text, **mode)), (text, mode)
        assert enc.encode_ordinary(text) == ref.encode_ordinary(text)


@pytest.mark.parametrize("name", ["r50k_base", "cl100k_base", "o200k_base"])
def test_encode_batch_matches_tiktoken(name):
    ref, enc = reference(name), ours(name)
    clean = random_texts(200, seed=9)
    clean = [t for t in clean if "<|endoftext|>" not in t and "<|fim_prefix|>" not in t and "<|endofprompt|>" not in t]
    mixed = special_texts(sorted(ref.special_tokens_set)) + clean
    assert enc.encode_ordinary_batch(mixed) == ref.encode_ordinary_batch(mixed)
    assert enc.encode_ordinary_batch(mixed, num_threads=1) == ref.encode_ordinary_batch(mixed)
    assert enc.encode_batch(clean) == ref.encode_batch(clean)
    for mode in MODES:
        expected = outcome(lambda: ref.encode_batch(mixed, **mode))
        assert outcome(lambda: enc.encode_batch(mixed, num_threads=3, **mode)) == expected, mode
    # The error names the special token of the first text holding a disallowed one.
    batch = ["fine", "also fine <|endofprompt|>", "then <|endoftext|>"]
    assert outcome(lambda: enc.encode_batch(batch)) == outcome(lambda: ref.encode_batch(batch))
    assert enc.encode_batch([]) == [] and enc.encode_ordinary_batch([]) == []


def invalid_utf8_ids(enc) -> list[list[int]]:
    """Id sequences whose bytes are not valid UTF-8: a multi-byte character's tokens cut short."""
    out = []
    for text in ("日本語", "👍🏽", "é", "\U0001fae8", "ქართული"):
        ids = enc.encode_ordinary(text)
        for cut in range(1, len(ids)):
            piece = enc.decode_bytes(ids[:cut])
            try:
                piece.decode("utf-8")
            except UnicodeDecodeError:
                out.append(ids[:cut])
    # single tokens that are lone UTF-8 bytes
    out += [[id] for id in range(128, 256)][:20]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_decode_variants_match_tiktoken(name):
    ref, enc = reference(name), ours(name)
    specials = sorted(ref.special_tokens_set)
    sequences = [ref.encode(t, allowed_special="all") for t in special_texts(specials)] + invalid_utf8_ids(ref)
    assert any(outcome(lambda: ref.decode(s, errors="strict"))[0] == "raises" for s in sequences)
    for ids in sequences:
        assert enc.decode_bytes(ids) == ref.decode_bytes(ids)
        assert enc.decode_bytes(np.array(ids, dtype=np.uint32)) == ref.decode_bytes(ids)
        for errors in ("replace", "strict", "ignore", "surrogateescape", "backslashreplace"):
            got = outcome(lambda: enc.decode(ids, errors=errors))
            assert got == outcome(lambda: ref.decode(ids, errors=errors)), (ids, errors)
        assert enc.decode(ids) == ref.decode(ids)
        assert enc.decode_tokens_bytes(ids) == ref.decode_tokens_bytes(ids)
        assert outcome(lambda: enc.decode_with_offsets(ids)) == outcome(lambda: ref.decode_with_offsets(ids))
    with pytest.raises(UnicodeDecodeError):
        enc.decode(invalid_utf8_ids(enc)[0], errors="strict")
    assert enc.decode_batch(sequences) == ref.decode_batch(sequences)
    assert enc.decode_batch(sequences, errors="ignore") == ref.decode_batch(sequences, errors="ignore")
    assert enc.decode_bytes_batch(sequences) == ref.decode_bytes_batch(sequences)


@pytest.mark.parametrize("name", NAMES)
def test_decode_of_unknown_ids_raises_as_tiktoken(name):
    ref, enc = reference(name), ours(name)
    unknown = [ref.n_vocab, ref.n_vocab + 5, 2**31]
    if name == "cl100k_base":
        unknown.append(100261)  # between the special tokens: no token
    for id in unknown:
        for call in ("decode", "decode_bytes"):
            assert outcome(lambda: getattr(enc, call)([1, id])) == outcome(lambda: getattr(ref, call)([1, id]))
        with pytest.raises(KeyError):
            enc.decode_single_token_bytes(id)
        with pytest.raises(KeyError):
            ref.decode_single_token_bytes(id)
    for bad in (-1, 2**32):
        with pytest.raises(OverflowError):
            ref.decode_single_token_bytes(bad)
        with pytest.raises(OverflowError):
            enc.decode_single_token_bytes(bad)
        with pytest.raises(OverflowError):
            ref.decode([bad])
        with pytest.raises(OverflowError):
            enc.decode([bad])


@pytest.mark.parametrize("name", NAMES)
def test_single_tokens_and_attributes_match_tiktoken(name):
    ref, enc = reference(name), ours(name)
    for special, id in ref._special_tokens.items():
        assert enc.decode_single_token_bytes(id) == ref.decode_single_token_bytes(id) == special.encode()
        assert enc.encode_single_token(special) == ref.encode_single_token(special) == id
        assert enc.is_special_token(id) and ref.is_special_token(id)
    rng = random.Random(3)
    for id in [0, 1, 255, 256, 1000] + rng.sample(range(ref.max_token_value), 300):
        got = outcome(lambda: enc.decode_single_token_bytes(id))
        want = outcome(lambda: ref.decode_single_token_bytes(id))
        assert got[:2] == want[:2], id
        if want[0] == "ok":
            assert enc.encode_single_token(want[1]) == ref.encode_single_token(want[1]) == id
            assert not enc.is_special_token(id)
    with pytest.raises(KeyError):
        enc.encode_single_token("this is not one token")
    assert enc.name == ref.name == name
    assert enc.n_vocab == ref.n_vocab
    assert enc.max_token_value == ref.max_token_value
    assert enc.eot_token == ref.eot_token
    assert enc.special_tokens_set == ref.special_tokens_set
    assert enc._special_tokens == ref._special_tokens
    assert enc._pat_str == ref._pat_str
    assert enc._mergeable_ranks == ref._mergeable_ranks
    assert enc.token_byte_values() == ref.token_byte_values()
    assert repr(enc) == repr(ref)


def test_the_constructor_takes_what_tiktokens_takes():
    spec = reference_spec("cl100k_base")
    ref, enc = tiktoken.Encoding(**spec), ft.Encoding(**spec)
    text = "Hello <|endoftext|> wörld <|fim_middle|> 123456"
    for mode in MODES:
        assert outcome(lambda: enc.encode(text, **mode)) == outcome(lambda: ref.encode(text, **mode))
    assert enc.n_vocab == ref.n_vocab and enc._mergeable_ranks == spec["mergeable_ranks"]
    assert enc == ft.get_encoding("cl100k_base")  # same name, pattern and content
    # A small encoding of its own, with a special token above the ranks.
    ranks = {bytes([b]): b for b in range(256)} | {b"ab": 256, b"abc": 257}
    small = dict(name="small", pat_str=r"\w+|\s+|[^\w\s]+", mergeable_ranks=ranks, special_tokens={"<eos>": 300})
    ref, enc = tiktoken.Encoding(**small), ft.Encoding(**small)
    for text in ("abc ab abcabc", "x<eos>y", "<eos>"):
        for mode in MODES + [{"allowed_special": {"<eos>"}}]:
            assert outcome(lambda: enc.encode(text, **mode)) == outcome(lambda: ref.encode(text, **mode)), (text, mode)
    assert (enc.n_vocab, enc.max_token_value) == (ref.n_vocab, ref.max_token_value) == (301, 300)
    with pytest.raises(KeyError):
        enc.eot_token
    ft.Encoding(**small, explicit_n_vocab=None)
    with pytest.raises(ValueError, match="explicit_n_vocab=259"):
        ft.Encoding(**small, explicit_n_vocab=259)


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"mergeable_ranks": {b"a": 0, b"b": 0}}, ValueError, "share rank 0"),
        ({"mergeable_ranks": {"a": 0}}, TypeError, "is not non-empty bytes"),
        ({"mergeable_ranks": {b"": 0}}, TypeError, "is not non-empty bytes"),
        ({"mergeable_ranks": {b"a": -1}}, ValueError, "not an int >= 0"),
        ({"mergeable_ranks": {}}, ValueError, "mergeable_ranks is empty"),
        ({"mergeable_ranks": [b"a"]}, TypeError, "must map bytes to int"),
        ({"special_tokens": {"<x>": 0}}, ferry.InvalidArgumentError, "already a rank"),
        ({"special_tokens": {"<x>": 5, "<y>": 5}}, ferry.InvalidArgumentError, "share id 5"),
        ({"special_tokens": {"": 5}}, TypeError, "not a non-empty str"),
        ({"pat_str": "("}, ferry.Error, "small"),
        ({"pat_str": ""}, TypeError, "pat_str"),
    ],
)
def test_bad_constructor_arguments_are_clear_errors(change, error, message):
    spec = {"pat_str": r"\S+|\s+", "mergeable_ranks": {b"a": 0, b"b": 1}, "special_tokens": {}} | change
    with pytest.raises(error, match=message):
        ft.Encoding("small", **spec)


def test_bad_call_arguments_are_clear_errors():
    enc = ours("cl100k_base")
    with pytest.raises(TypeError, match="allowed_special: expected 'all' or a set of str"):
        enc.encode("x", allowed_special="<|endoftext|>")
    with pytest.raises(TypeError, match="disallowed_special: expected 'all'"):
        enc.encode("x", disallowed_special="none")
    with pytest.raises(TypeError, match="expected str tokens"):
        enc.encode("x", allowed_special={1})
    with pytest.raises(TypeError, match="expected a str to encode, got bytes"):
        enc.encode(b"x")
    with pytest.raises(TypeError, match="expected a str to encode"):
        enc.encode_ordinary(None)
    with pytest.raises(TypeError, match="single text"):
        enc.encode_batch("abc")
    with pytest.raises(TypeError, match="batch item 1: expected a str, got int"):
        enc.encode_ordinary_batch(["a", 1])
    for threads in (0, -2, 1.5):
        with pytest.raises(ValueError, match="num_threads"):
            enc.encode_batch(["a"], num_threads=threads)
    with pytest.raises(TypeError):
        enc.decode(["a"])
    with pytest.raises(TypeError, match="expected an int id"):
        enc.is_special_token(1.0)


def test_surrogates_are_repaired_as_tiktoken_repairs_them():
    ref, enc = reference("cl100k_base"), ours("cl100k_base")
    texts = ["\ud83d\ude00", "a\ud83db", "\udc00\ud800", "x\ud83d\ude00\ud83dy <|endoftext|>\udfff", "\ud800" * 5]
    for text in texts:
        for mode in MODES:
            assert outcome(lambda: enc.encode(text, **mode)) == outcome(lambda: ref.encode(text, **mode)), (text, mode)
        assert enc.encode_ordinary(text) == ref.encode_ordinary(text)
    assert enc.encode_ordinary_batch(texts) == ref.encode_ordinary_batch(texts)


def test_corpora_match_tiktoken():
    if not CORPORA.is_dir():
        pytest.skip("shared test data (../shared/data/corpora) is absent")
    files = ["moby_dick_pg2701.txt", "hongloumeng_zh.txt"] + [
        f"multilingual_sentences/{lang}.txt" for lang in ("ar", "hi", "ja", "ko", "ru", "th", "el")
    ]
    lines = []
    for name in files:
        path = CORPORA / name
        if path.is_file():
            lines += path.read_bytes().decode("utf-8", errors="replace").splitlines(keepends=True)[:600]
    docs = ["".join(lines[i : i + 8]) for i in range(0, len(lines), 8)]
    assert len(lines) > 2000
    for name in ("cl100k_base", "o200k_base"):
        ref, enc = reference(name), ours(name)
        assert enc.encode_batch(docs) == ref.encode_batch(docs)
        assert [enc.encode(d) for d in docs[:200]] == [ref.encode(d) for d in docs[:200]]
        injected = [d[: len(d) // 2] + "<|endoftext|>" + d[len(d) // 2 :] for d in docs[:100]]
        assert enc.encode_batch(injected, allowed_special={"<|endoftext|>"}) == ref.encode_batch(
            injected, allowed_special={"<|endoftext|>"})
        assert outcome(lambda: enc.encode_batch(injected)) == outcome(lambda: ref.encode_batch(injected))
        assert enc.decode_batch(ref.encode_batch(docs)) == docs


# ------------------------------------------------------------------------------ get_encoding


def tiktoken_url(name: str) -> str:
    """The URL tiktoken's own constructor downloads `name`'s ranks from."""
    _REQUESTED_URLS.pop(name, None)
    reference_spec(name)
    (url,) = _REQUESTED_URLS[name]
    return url


def fresh_registry(monkeypatch):
    monkeypatch.setattr(ft, "_ENCODINGS", {})


@pytest.mark.parametrize("name", NAMES)
def test_get_encoding_reads_ferry_tiktoken_dir(name, monkeypatch):
    fresh_registry(monkeypatch)
    enc = ft.get_encoding(name)
    assert enc is ft.get_encoding(name)
    assert enc.name == name and isinstance(enc, ft.Encoding)
    assert enc.encode("hello <|endoftext|>", allowed_special="all") == reference(name).encode(
        "hello <|endoftext|>", allowed_special="all")


@pytest.mark.parametrize("variable", ["TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR", None])
def test_get_encoding_reads_tiktokens_cache(variable, monkeypatch, tmp_path):
    fresh_registry(monkeypatch)
    monkeypatch.delenv("FERRY_TIKTOKEN_DIR")
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR")
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    cache = tmp_path / "cache"
    if variable is None:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        cache = tmp_path / "data-gym-cache"
    else:
        monkeypatch.setenv(variable, str(cache))
    cache.mkdir()
    url = tiktoken_url("cl100k_base")
    (cache / hashlib.sha1(url.encode()).hexdigest()).symlink_to(rank_file("cl100k_base"))
    # tiktoken itself finds the file there (so no download happens) ...
    assert tiktoken.load.read_file_cached(url) == rank_file("cl100k_base").read_bytes()
    # ... and so does ferry.
    enc = ft.get_encoding("cl100k_base")
    assert enc.encode("tiktoken's cache") == reference("cl100k_base").encode("tiktoken's cache")
    with pytest.raises(ferry.NotFoundError):
        ft.get_encoding("o200k_base")


def test_a_missing_rank_file_names_every_place_looked(monkeypatch, tmp_path):
    fresh_registry(monkeypatch)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("FERRY_TIKTOKEN_DIR", str(empty))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    url = tiktoken_url("o200k_base")
    with pytest.raises(FileNotFoundError) as caught:
        ft.get_encoding("o200k_base")
    assert isinstance(caught.value, ferry.NotFoundError)
    message = str(caught.value)
    assert str(empty / "o200k_base.tiktoken") in message
    assert str(tmp_path / "cache" / hashlib.sha1(url.encode()).hexdigest()) in message
    assert url in message and "FERRY_TIKTOKEN_DIR" in message and "never downloads" in message
    # gpt2 reads r50k_base's ranks, and says so.
    with pytest.raises(ferry.NotFoundError, match="no local r50k_base.tiktoken"):
        ft.get_encoding("gpt2")
    monkeypatch.delenv("FERRY_TIKTOKEN_DIR")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    with pytest.raises(ferry.NotFoundError, match=r"FERRY_TIKTOKEN_DIR \(not set\).*cache is off"):
        ft.get_encoding("o200k_base")


def test_a_rank_file_with_other_content_is_refused(monkeypatch, tmp_path):
    fresh_registry(monkeypatch)
    lines = rank_file("r50k_base").read_bytes().splitlines(keepends=True)
    lines[300], lines[301] = lines[301], lines[300]
    (tmp_path / "r50k_base.tiktoken").write_bytes(b"".join(lines))
    monkeypatch.setenv("FERRY_TIKTOKEN_DIR", str(tmp_path))
    with pytest.raises(ferry.CorruptionError, match="r50k_base.tiktoken: not the r50k_base.tiktoken that OpenAI"):
        ft.get_encoding("r50k_base")


def test_unknown_encoding_names():
    with pytest.raises(ValueError, match="Unknown encoding 'cl200k'"):
        ft.get_encoding("cl200k")
    with pytest.raises(ValueError, match="Expected a string"):
        ft.get_encoding(None)
    with pytest.raises(ferry.UnsupportedError, match="same id 200018"):
        ft.get_encoding("o200k_harmony")
    assert set(ft.list_encoding_names()) == set(tiktoken.list_encoding_names()) - {"o200k_harmony"}


def test_model_names_map_as_in_tiktoken():
    models = list(tiktoken.model.MODEL_TO_ENCODING)
    models += [prefix + "2099-01-01" for prefix in tiktoken.model.MODEL_PREFIX_TO_ENCODING]
    models += ["gpt-4o", "gpt-4-32k", "gpt-4o-mini-x", "ft:gpt-4o-mini:org", "ft:gpt-4:org", "gpt-5-nano"]
    for model in models:
        assert ft.encoding_name_for_model(model) == tiktoken.model.encoding_name_for_model(model), model
    assert len(models) > 60
    for unknown in ("llama-3", "", "GPT-4"):
        with pytest.raises(KeyError):
            tiktoken.model.encoding_name_for_model(unknown)
        with pytest.raises(KeyError, match="Could not automatically map"):
            ft.encoding_name_for_model(unknown)
    assert ft.encoding_for_model("gpt-4") is ft.get_encoding("cl100k_base")
    assert ft.encoding_for_model("text-davinci-003").name == "p50k_base"


# ------------------------------------------------------------------------- pickling, wrapping


def test_pickle_round_trip_by_content(monkeypatch, tmp_path):
    for enc in (ours("cl100k_base"), ours("p50k_edit"), ft.Encoding(**reference_spec("r50k_base"))):
        data = pickle.dumps(enc)
        back = pickle.loads(data)
        assert back == enc and hash(back) == hash(enc) and back is not enc
        assert back.name == enc.name and back._special_tokens == enc._special_tokens
        text = "round <|endoftext|> trip"
        assert back.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")
        assert back.n_vocab == enc.n_vocab
    # By content: it unpickles where no rank file can be found.
    data = pickle.dumps(ours("o200k_base"))
    fresh_registry(monkeypatch)
    monkeypatch.setenv("FERRY_TIKTOKEN_DIR", str(tmp_path))
    assert pickle.loads(data).encode("x <|endofprompt|>", allowed_special="all") == reference("o200k_base").encode(
        "x <|endofprompt|>", allowed_special="all")
    assert ours("cl100k_base") != ours("o200k_base")
    assert ours("gpt2") != ours("r50k_base")  # the same ids under another name


def test_from_tokenizer_wraps_a_ferry_tokenizer():
    tok = ferry.Tokenizer.from_tiktoken(TIKTOKEN_DIR / "cl100k_base.tiktoken")
    enc = ft.Encoding.from_tokenizer(tok)
    assert enc.name == "cl100k_base" and enc.tokenizer is tok
    assert enc == ours("cl100k_base")
    with pytest.raises(ValueError, match="disallowed special token '<|endoftext|>'"):
        enc.encode("<|endoftext|>")
    llama = ferry.Tokenizer.from_tiktoken(
        TIKTOKEN_DIR / "llama3.tiktoken", pattern=r"\S+|\s+", special_tokens={"<|begin_of_text|>": 128000})
    wrapped = ft.Encoding.from_tokenizer(llama, name="llama3")
    assert wrapped.name == "llama3" and wrapped._pat_str == r"\S+|\s+"
    assert wrapped.special_tokens_set == {"<|begin_of_text|>"}
    assert wrapped.encode("<|begin_of_text|>hi", allowed_special="all")[0] == 128000
    with pytest.raises(ferry.UnsupportedError, match="tokenizer.json has no tiktoken form"):
        ft.Encoding.from_tokenizer(ferry.Tokenizer.train_from_iterator(["a b c"] * 10, vocab_size=300))
    with pytest.raises(TypeError, match="expected a ferry.Tokenizer"):
        ft.Encoding.from_tokenizer("cl100k_base")


@pytest.mark.parametrize("pat_str", [r"\w+|\s+|[^\w\s]+", r"\b\w|\W|\w", r"[\w]+|[^\w]"])
def test_word_character_patterns_split_as_tiktoken(pat_str):
    """tiktoken reads \\w as Rust regex does: marks in (PCRE2's own \\w leaves them out, which cut
    Hindi words), the joiners in, the Latin-1 superscripts out. Ranks hold every byte pair of the
    texts, so a piece cut elsewhere gives other ids."""
    texts = ["नमस्ते दुनिया, यह एक परीक्षण है।", "m² ½ x³", "a\u200db\u200cc", "a\u0301b Ⓐ_1"]
    pairs = dict.fromkeys(t.encode()[i : i + 2] for t in texts for i in range(len(t.encode()) - 1))
    ranks = {bytes([b]): b for b in range(256)} | {p: 256 + i for i, p in enumerate(pairs) if len(p) == 2}
    spec = dict(name="words", pat_str=pat_str, mergeable_ranks=ranks, special_tokens={})
    ref, enc = tiktoken.Encoding(**spec), ft.Encoding(**spec)
    for text in texts:
        assert enc.encode_ordinary(text) == ref.encode_ordinary(text), text
