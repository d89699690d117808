"""tiktoken's API on ferry's tokenizer, so that switching is an import change:

    import ferry.tiktoken as tiktoken
    enc = tiktoken.get_encoding("cl100k_base")   # from $FERRY_TIKTOKEN_DIR or tiktoken's cache
    enc.encode("hello <|endoftext|>")            # ValueError: a special token's text, as tiktoken
    enc.encode("hello <|endoftext|>", allowed_special="all")   # [15339, 220, 100257]

Ids, errors and defaults are tiktoken 0.14's, checked against it in python/tests/
test_tiktoken_api.py. Where ferry differs it says so: ``get_encoding`` reads local rank files
only and never downloads; an Encoding pickles by content (tiktoken pickles registered encodings
by name); bad arguments that tiktoken lets through or fails on obscurely (``allowed_special`` as a
single str, a zero ``num_threads``, duplicate ranks) raise a clear error; ``o200k_harmony`` is not
available (it gives two special tokens the id 200018, and a ferry tokenizer has one per id).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import operator
import os
import re
import tempfile
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ferry import _core
from ferry.text import Tokenizer

__all__ = [
    "Encoding",
    "encoding_for_model",
    "encoding_name_for_model",
    "get_encoding",
    "list_encoding_names",
]

AllOr = Literal["all"]

# ------------------------------------------------------------------------------------ Encoding


class Encoding:
    """A tiktoken ``Encoding`` backed by a ``ferry.Tokenizer`` (C++ BPE, the GIL released while
    encoding). Build one as tiktoken does (name, split pattern, ranks, special tokens), with
    ``get_encoding``, or over a ferry tokenizer loaded from a rank file (``from_tokenizer``).
    Immutable and thread-safe."""

    def __init__(
        self,
        name: str,
        *,
        pat_str: str,
        mergeable_ranks: Mapping[bytes, int],
        special_tokens: Mapping[str, int],
        explicit_n_vocab: int | None = None,
    ):
        if not isinstance(name, str):
            raise TypeError(f"Encoding name: expected str, got {type(name).__name__}")
        if not isinstance(pat_str, str) or not pat_str:
            raise TypeError("pat_str: expected the split pattern as a non-empty str")
        ranks = _checked_ranks(name, mergeable_ranks)
        specials = _checked_specials(name, special_tokens)
        # The constructor's ranks become rank-file text, which the core parses and validates like
        # any .tiktoken file (about 0.1 s for o200k's 200k ranks). The name goes into the origin
        # only: the core's own named-encoding defaults must not apply to a user's encoding.
        rank_text = b"".join(
            base64.b64encode(token) + b" %d\n" % rank
            for token, rank in sorted(ranks.items(), key=operator.itemgetter(1))
        )
        origin = f"ferry.tiktoken.Encoding({name!r})".replace("/", "%2F")
        core = _core.Tokenizer.from_ranks(rank_text, origin, "", pat_str, list(specials.items()))
        self._setup(name, Tokenizer(core), pat_str)
        self._ranks = ranks
        if explicit_n_vocab:
            if len(ranks) + len(specials) != explicit_n_vocab or self.max_token_value != explicit_n_vocab - 1:
                raise ValueError(
                    f"Encoding {name!r}: explicit_n_vocab={explicit_n_vocab}, but there are {len(ranks)} ranks "
                    f"and {len(specials)} special tokens with largest id {self.max_token_value}"
                )

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer, name: str | None = None) -> Encoding:
        """The tiktoken API over a ``ferry.Tokenizer`` loaded from a rank file
        (``ferry.Tokenizer.from_tiktoken``); its special tokens are the encoding's. ``name``:
        default the tokenizer's encoding name (given, or guessed from the file name)."""
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"from_tokenizer: expected a ferry.Tokenizer, got {type(tokenizer).__name__}")
        core = tokenizer._core
        if core.format != "tiktoken":
            raise _core.UnsupportedError(
                f"{core.origin}: a tokenizer.json has no tiktoken form; load a .tiktoken rank file "
                "with ferry.Tokenizer.from_tiktoken"
            )
        given_name, pattern, _ = core.tiktoken_options
        # As the core does: no name given means the file name's stem names the encoding.
        stem = os.path.basename(core.origin.split("?")[0]).split(".")[0]
        encoding_name = given_name or stem
        if not pattern:
            pattern = _NAMED[encoding_name].pat_str  # the core loaded it, so the name is known
        out = cls.__new__(cls)
        out._setup(name if name is not None else encoding_name, tokenizer, pattern)
        return out

    def _setup(self, name: str, tokenizer: Tokenizer, pat_str: str) -> None:
        core = tokenizer._core
        self.name = name
        self._tokenizer = tokenizer
        self._core = core
        self._pat_str = pat_str
        self._special_tokens = {content: id for id, content, special, *_ in core.added_tokens if special}
        self._special_by_id = {id: content for content, id in self._special_tokens.items()}
        self._special_frozen = frozenset(self._special_tokens)
        self._special_token_values = set(self._special_by_id)
        self.max_token_value = core.vocab_size - 1
        self._ranks: dict[bytes, int] | None = None
        self._sorted_token_bytes: list[bytes] | None = None

    @property
    def tokenizer(self) -> Tokenizer:
        """The ``ferry.Tokenizer`` underneath (for ``encode_batch_ids``, fingerprints, ...)."""
        return self._tokenizer

    def __repr__(self) -> str:
        return f"<Encoding {self.name!r}>"

    # ----------------------------------------------------------------------------- encoding

    def encode_ordinary(self, text: str) -> list[int]:
        """The ids of ``text`` with special tokens' text encoded as ordinary text (the same as
        ``encode(text, disallowed_special=())``). Lone surrogates become U+FFFD, as in tiktoken."""
        return self._core.encode(_text(text), False, False)

    def encode(
        self,
        text: str,
        *,
        allowed_special: AllOr | Collection[str] = frozenset(),
        disallowed_special: AllOr | Collection[str] = "all",
    ) -> list[int]:
        """The ids of ``text``. Special tokens are matched only where ``allowed_special`` names
        them ("all": every one). Text equal to a token of ``disallowed_special`` ("all", the
        default: every special token not allowed) raises ``ValueError`` naming it, since
        untrusted text must not inject special tokens; ``disallowed_special=()`` turns the check
        off, and the text is then encoded as ordinary text."""
        allowed, disallowed = self._special_sets(allowed_special, disallowed_special)
        _text(text)
        if disallowed:
            self._check_disallowed(text, disallowed)
        if not allowed:
            return self._core.encode(text, False, False)
        if allowed is self._special_frozen:
            return self._core.encode(text, False, True)
        return self._encode_allowing([text], allowed, 1)[0]

    def encode_to_numpy(
        self,
        text: str,
        *,
        allowed_special: AllOr | Collection[str] = frozenset(),
        disallowed_special: AllOr | Collection[str] = "all",
    ) -> np.ndarray:
        """``encode`` as a numpy uint32 array (no Python int per id)."""
        allowed, disallowed = self._special_sets(allowed_special, disallowed_special)
        _text(text)
        if disallowed:
            self._check_disallowed(text, disallowed)
        if not allowed or allowed is self._special_frozen:
            return self._core.encode_array(text, False, bool(allowed))
        return np.array(self._encode_allowing([text], allowed, 1)[0], dtype=np.uint32)

    def encode_ordinary_batch(self, text: Sequence[str], *, num_threads: int = 8) -> list[list[int]]:
        """``encode_ordinary`` of every text, on ``num_threads`` threads in C++."""
        texts = _texts(text)
        return [ids.tolist() for ids in self._core.encode_batch(texts, False, False, _threads(num_threads))]

    def encode_batch(
        self,
        text: Sequence[str],
        *,
        num_threads: int = 8,
        allowed_special: AllOr | Collection[str] = frozenset(),
        disallowed_special: AllOr | Collection[str] = "all",
    ) -> list[list[int]]:
        """``encode`` of every text, on ``num_threads`` threads in C++. A disallowed special
        token raises for the first text (in order) that holds one, as tiktoken."""
        allowed, disallowed = self._special_sets(allowed_special, disallowed_special)
        texts = _texts(text)
        threads = _threads(num_threads)
        if disallowed:
            for item in texts:
                self._check_disallowed(item, disallowed)
        if not allowed or allowed is self._special_frozen:
            return [ids.tolist() for ids in self._core.encode_batch(texts, False, bool(allowed), threads)]
        return self._encode_allowing(texts, allowed, threads)

    def encode_single_token(self, text_or_bytes: str | bytes) -> int:
        """The id of a text that is one token (special tokens included); ``KeyError`` if none."""
        token = text_or_bytes.encode("utf-8") if isinstance(text_or_bytes, str) else bytes(text_or_bytes)
        id = self._core.token_to_id(token)
        if id is None:
            raise KeyError(token)
        return id

    # ----------------------------------------------------------------------------- decoding

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """The bytes of ``tokens``, special tokens included. ``KeyError`` for an id that is not in
        the vocabulary."""
        try:
            return self._core.decode_bytes(tokens, False)
        except _core.OutOfRangeError:
            self._raise_invalid_token(tokens)
            raise

    def decode(self, tokens: Sequence[int], errors: str = "replace") -> str:
        """``decode_bytes`` as text. Lossy by default: bytes that are not valid UTF-8 (ids cut
        inside a character) become U+FFFD; ``errors="strict"`` raises ``UnicodeDecodeError``."""
        return self.decode_bytes(tokens).decode("utf-8", errors=errors)

    def decode_single_token_bytes(self, token: int) -> bytes:
        """The bytes of one id, special tokens included; ``KeyError`` if it is not in the
        vocabulary."""
        token = operator.index(token)
        if not 0 <= token < 1 << 32:
            raise OverflowError(f"token {token} is out of range for a token id")
        out = self._core.id_to_token(token)
        if out is None:
            raise KeyError(token)
        return out

    def decode_tokens_bytes(self, tokens: Sequence[int]) -> list[bytes]:
        """The bytes of each id (to show how a text was cut)."""
        return [self.decode_single_token_bytes(token) for token in tokens]

    def decode_with_offsets(self, tokens: Sequence[int]) -> tuple[str, list[int]]:
        """The text of ``tokens`` and, per token, the index of the first character holding any of
        its bytes. Bytes that are not valid UTF-8 raise ``UnicodeDecodeError``, as tiktoken."""
        pieces = self.decode_tokens_bytes(tokens)
        offsets = []
        characters = 0  # characters started so far: bytes that are not UTF-8 continuation bytes
        for piece in pieces:
            starts_inside = 0x80 <= piece[0] < 0xC0
            offsets.append(max(0, characters - starts_inside))
            characters += sum(not 0x80 <= byte < 0xC0 for byte in piece)
        return b"".join(pieces).decode("utf-8", errors="strict"), offsets

    def decode_batch(
        self, batch: Sequence[Sequence[int]], *, errors: str = "replace", num_threads: int = 8
    ) -> list[str]:
        """``decode`` of every sequence (each is a few microseconds in C++: no threads needed)."""
        _threads(num_threads)
        return [self.decode(tokens, errors) for tokens in batch]

    def decode_bytes_batch(self, batch: Sequence[Sequence[int]], *, num_threads: int = 8) -> list[bytes]:
        """``decode_bytes`` of every sequence."""
        _threads(num_threads)
        return [self.decode_bytes(tokens) for tokens in batch]

    # -------------------------------------------------------------------------------- the rest

    def token_byte_values(self) -> list[bytes]:
        """The bytes of every mergeable token (special tokens left out), sorted."""
        if self._sorted_token_bytes is None:
            self._sorted_token_bytes = sorted(self._mergeable_ranks)
        return self._sorted_token_bytes

    @property
    def _mergeable_ranks(self) -> dict[bytes, int]:
        if self._ranks is None:
            self._ranks = self._core.vocab(False)
        return self._ranks

    @property
    def eot_token(self) -> int:
        return self._special_tokens["<|endoftext|>"]

    @functools.cached_property
    def special_tokens_set(self) -> set[str]:
        return set(self._special_tokens)

    def is_special_token(self, token: int) -> bool:
        if not isinstance(token, int):
            raise TypeError(f"is_special_token: expected an int id, got {type(token).__name__}")
        return token in self._special_token_values

    @property
    def n_vocab(self) -> int:
        """``max_token_value + 1`` (what tiktoken keeps for backwards compatibility)."""
        return self.max_token_value + 1

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, Encoding)
            and self.name == other.name
            and self._pat_str == other._pat_str
            and self._tokenizer.fingerprint == other._tokenizer.fingerprint
        )

    def __hash__(self) -> int:
        return hash((self.name, self._tokenizer.fingerprint))

    def __reduce__(self):
        # By content: the ferry Tokenizer pickles its rank file's bytes and options.
        return _restore, (self.name, self._pat_str, self._tokenizer)

    # ------------------------------------------------------------------------------- private

    def _special_sets(self, allowed_special: Any, disallowed_special: Any) -> tuple[frozenset[str], frozenset[str]]:
        """(allowed, disallowed) as tiktoken derives them; ``allowed`` is ``_special_frozen``
        itself when every special token is allowed, and holds special tokens only."""
        if isinstance(allowed_special, str):
            if allowed_special != "all":
                raise TypeError(
                    f"allowed_special: expected 'all' or a set of str, got the str {allowed_special!r} "
                    f"(for one token write {{{allowed_special!r}}})"
                )
            allowed = self._special_frozen
        elif not allowed_special:
            allowed = _EMPTY
        else:
            allowed = _str_set(allowed_special, "allowed_special") & self._special_frozen
            if allowed == self._special_frozen:
                allowed = self._special_frozen
        if isinstance(disallowed_special, str):
            if disallowed_special != "all":
                raise TypeError(
                    f"disallowed_special: expected 'all' or a collection of str, got the str "
                    f"{disallowed_special!r} (for one token write {{{disallowed_special!r}}})"
                )
            disallowed = self._special_frozen - allowed if allowed else self._special_frozen
        elif not disallowed_special:
            disallowed = _EMPTY
        else:
            disallowed = _str_set(disallowed_special, "disallowed_special")
        return allowed, disallowed

    def _check_disallowed(self, text: str, disallowed: frozenset[str]) -> None:
        """Raises tiktoken's ValueError where ``text`` holds a token of ``disallowed``. Every
        special token disallowed (the default): one Aho-Corasick scan in C++, GIL released.
        Otherwise that scan first rules out text with no special token at all (nearly all text),
        and a regex over the set, as tiktoken's, finds the token."""
        found = self._core.find_added_token(text)
        if disallowed is self._special_frozen or disallowed == self._special_frozen:
            if found is not None:
                _raise_disallowed(self._special_by_id[found])
            return
        if found is None and disallowed <= self._special_frozen:
            return
        match = _special_token_regex(disallowed).search(text)
        if match:
            _raise_disallowed(match.group())

    def _encode_allowing(self, texts: list[str], allowed: frozenset[str], threads: int) -> list[list[int]]:
        """Ids with only the ``allowed`` special tokens matched: each text is cut at them and the
        text between is encoded as ordinary text, all of it in one batch. The same ids as tiktoken,
        which also encodes the text between two special tokens on its own."""
        regex = _special_token_regex(allowed)
        plans: list[list[int | None]] = []  # per text: a special id, or None for the next gap
        gaps: list[str] = []
        for text in texts:
            plan: list[int | None] = []
            start = 0
            for match in regex.finditer(text):
                if match.start() > start:
                    gaps.append(text[start : match.start()])
                    plan.append(None)
                plan.append(self._special_tokens[match.group()])
                start = match.end()
            if start < len(text):
                gaps.append(text[start:])
                plan.append(None)
            plans.append(plan)
        encoded = iter(self._core.encode_batch(gaps, False, False, threads) if gaps else ())
        out = []
        for plan in plans:
            ids: list[int] = []
            for step in plan:
                if step is None:
                    ids += next(encoded).tolist()
                else:
                    ids.append(step)
            out.append(ids)
        return out

    def _raise_invalid_token(self, tokens: Sequence[int]) -> None:
        """tiktoken's error for the first id that cannot be decoded (the core's OutOfRangeError
        otherwise stands)."""
        for token in tokens:
            token = operator.index(token)
            if not 0 <= token < 1 << 32:
                raise OverflowError(f"token {token} is out of range for a token id")
            if self._core.id_to_token(token) is None:
                raise KeyError(f"Invalid token for decoding: {token}")


_EMPTY: frozenset[str] = frozenset()


def _restore(name: str, pat_str: str, tokenizer: Tokenizer) -> Encoding:
    out = Encoding.__new__(Encoding)
    out._setup(name, tokenizer, pat_str)
    return out


def _text(text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"expected a str to encode, got {type(text).__name__}")
    return text


def _texts(texts: Any) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise TypeError("expected a list of str, got a single text (use encode())")
    out = texts if isinstance(texts, list) else list(texts)
    for index, item in enumerate(out):
        if not isinstance(item, str):
            raise TypeError(f"batch item {index}: expected a str, got {type(item).__name__}")
    return out


def _threads(num_threads: Any) -> int:
    if not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads {num_threads!r}: expected a positive int")
    return num_threads


def _str_set(tokens: Any, what: str) -> frozenset[str]:
    out = tokens if isinstance(tokens, frozenset) else frozenset(tokens)
    for token in out:
        if not isinstance(token, str):
            raise TypeError(f"{what}: expected str tokens, got {type(token).__name__} {token!r}")
    return out


def _checked_ranks(name: str, ranks: Any) -> dict[bytes, int]:
    if not isinstance(ranks, Mapping):
        raise TypeError(f"Encoding {name!r}: mergeable_ranks must map bytes to int, got {type(ranks).__name__}")
    out = dict(ranks)
    seen: dict[int, bytes] = {}
    for token, rank in out.items():
        if not isinstance(token, bytes) or not token:
            raise TypeError(f"Encoding {name!r}: mergeable_ranks key {token!r} is not non-empty bytes")
        if not isinstance(rank, int) or rank < 0:
            raise ValueError(f"Encoding {name!r}: rank {rank!r} of {token!r} is not an int >= 0")
        if rank in seen:
            raise ValueError(f"Encoding {name!r}: tokens {seen[rank]!r} and {token!r} share rank {rank}")
        seen[rank] = token
    if not out:
        raise ValueError(f"Encoding {name!r}: mergeable_ranks is empty")
    return out


def _checked_specials(name: str, specials: Any) -> dict[str, int]:
    if not isinstance(specials, Mapping):
        raise TypeError(f"Encoding {name!r}: special_tokens must map str to int, got {type(specials).__name__}")
    out = dict(specials)
    for token, id in out.items():
        if not isinstance(token, str) or not token:
            raise TypeError(f"Encoding {name!r}: special token {token!r} is not a non-empty str")
        if not isinstance(id, int) or id < 0:
            raise ValueError(f"Encoding {name!r}: special token {token!r} has id {id!r}, not an int >= 0")
    return out


@functools.lru_cache(maxsize=128)
def _special_token_regex(tokens: frozenset[str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(token) for token in tokens))


def _raise_disallowed(token: str):
    raise ValueError(
        f"Encountered text corresponding to disallowed special token {token!r}.\n"
        "If you want this text to be encoded as a special token, "
        f"pass it to `allowed_special`, e.g. `allowed_special={{{token!r}, ...}}`.\n"
        "If you want this text to be encoded as normal text, disable the check for this token "
        f"by passing `disallowed_special=(enc.special_tokens_set - {{{token!r}}})`.\n"
        "To disable this check for all special tokens, pass `disallowed_special=()`.\n"
    )


# ------------------------------------------------------------------------- named encodings

_ENDOFTEXT = "<|endoftext|>"
_FIM = {"<|fim_prefix|>": 0, "<|fim_middle|>": 1, "<|fim_suffix|>": 2}
_ENDOFPROMPT = "<|endofprompt|>"

_R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_CONTRACTIONS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
_O200K_PATTERN = "|".join(
    [
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+" + _O200K_CONTRACTIONS,
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*" + _O200K_CONTRACTIONS,
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)

# The rank files tiktoken downloads, by file stem: (URL, SHA-256 of the file). tiktoken caches
# each under the SHA-1 of its URL.
_RANK_FILES = {
    "r50k_base": "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    "p50k_base": "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}


def _rank_file_url(stem: str) -> str:
    return f"https://openaipublic.blob.core.windows.net/encodings/{stem}.tiktoken"


class _Named:
    __slots__ = ("ranks", "pat_str", "special_tokens")

    def __init__(self, ranks: str, pat_str: str, special_tokens: dict[str, int]):
        self.ranks = ranks  # the rank file's stem
        self.pat_str = pat_str
        self.special_tokens = special_tokens


_NAMED = {
    # gpt2's ranks are r50k_base's (tiktoken builds them from GPT-2's vocab.bpe and encoder.json;
    # the result is the same file).
    "gpt2": _Named("r50k_base", _R50K_PATTERN, {_ENDOFTEXT: 50256}),
    "r50k_base": _Named("r50k_base", _R50K_PATTERN, {_ENDOFTEXT: 50256}),
    "p50k_base": _Named("p50k_base", _R50K_PATTERN, {_ENDOFTEXT: 50256}),
    "p50k_edit": _Named(
        "p50k_base", _R50K_PATTERN, {_ENDOFTEXT: 50256, **{t: 50281 + i for t, i in _FIM.items()}}
    ),
    "cl100k_base": _Named(
        "cl100k_base",
        _CL100K_PATTERN,
        {_ENDOFTEXT: 100257, **{t: 100258 + i for t, i in _FIM.items()}, _ENDOFPROMPT: 100276},
    ),
    "o200k_base": _Named("o200k_base", _O200K_PATTERN, {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018}),
}

_ENCODINGS: dict[str, Encoding] = {}
_LOCK = threading.Lock()


def list_encoding_names() -> list[str]:
    """The encodings ``get_encoding`` knows (tiktoken's, less o200k_harmony)."""
    return list(_NAMED)


def get_encoding(encoding_name: str) -> Encoding:
    """A named encoding (``list_encoding_names()``), read from a local rank file and kept for the
    process's lifetime. It looks for ``$FERRY_TIKTOKEN_DIR/<file>.tiktoken``, then in tiktoken's
    cache (``$TIKTOKEN_CACHE_DIR``, else ``$DATA_GYM_CACHE_DIR``, else ``<tmp>/data-gym-cache``,
    where tiktoken names the file by the SHA-1 of its download URL). It never downloads: a missing
    file raises ``ferry.NotFoundError`` (a ``FileNotFoundError``) listing where it looked, and a
    file whose SHA-256 is not the published one raises ``ferry.CorruptionError``."""
    if not isinstance(encoding_name, str):
        raise ValueError(f"Expected a string in get_encoding, got {type(encoding_name)}")
    encoding = _ENCODINGS.get(encoding_name)
    if encoding is not None:
        return encoding
    if encoding_name not in _NAMED:
        if encoding_name == "o200k_harmony":
            raise _core.UnsupportedError(
                "o200k_harmony gives the special tokens <|endofprompt|> and <|reserved_200018|> the "
                "same id 200018, and a ferry tokenizer has one token per id; use tiktoken for it"
            )
        raise ValueError(f"Unknown encoding {encoding_name!r}; ferry.tiktoken knows {', '.join(_NAMED)}")
    with _LOCK:
        encoding = _ENCODINGS.get(encoding_name)
        if encoding is None:
            encoding = _ENCODINGS[encoding_name] = _load_named(encoding_name)
        return encoding


def _load_named(name: str) -> Encoding:
    named = _NAMED[name]
    path = _find_rank_file(name, named.ranks)
    with open(path, "rb") as f:
        data = f.read()
    expected = _RANK_FILES[named.ranks]
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise _core.CorruptionError(
            f"{path}: not the {named.ranks}.tiktoken that OpenAI publishes (SHA-256 {actual}, "
            f"expected {expected}); replace it with {_rank_file_url(named.ranks)}"
        )
    core = _core.Tokenizer.from_ranks(data, path, "", named.pat_str, list(named.special_tokens.items()))
    return Encoding.from_tokenizer(Tokenizer(core), name)


def _find_rank_file(name: str, stem: str) -> str:
    looked = []
    folder = os.environ.get("FERRY_TIKTOKEN_DIR")
    if folder:
        path = os.path.join(folder, f"{stem}.tiktoken")
        if os.path.isfile(path):
            return path
        looked.append(f"{path} ($FERRY_TIKTOKEN_DIR)")
    else:
        looked.append("$FERRY_TIKTOKEN_DIR (not set)")
    url = _rank_file_url(stem)
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            cache, where = os.environ[variable], f"${variable}"
            break
    else:
        cache, where = os.path.join(tempfile.gettempdir(), "data-gym-cache"), "tiktoken's default cache"
    if cache:
        path = os.path.join(cache, hashlib.sha1(url.encode()).hexdigest())
        if os.path.isfile(path):
            return path
        looked.append(f"{path} ({where}, tiktoken's cache file for {url})")
    else:
        looked.append(f"{where} (empty: tiktoken's cache is off)")
    raise _core.NotFoundError(
        f"tiktoken encoding {name!r}: no local {stem}.tiktoken, and ferry never downloads. Looked at: "
        + "; ".join(looked)
        + f". Download {url} into a folder and set FERRY_TIKTOKEN_DIR to it, or run tiktoken's "
        f"get_encoding({name!r}) once to fill its cache."
    )


# ------------------------------------------------------------------------------------ models

# Model name -> encoding, and name prefix -> encoding (tried in order), as tiktoken 0.14 maps them.
_MODEL_PREFIXES = (
    ("o1-", "o200k_base"), ("o3-", "o200k_base"), ("o4-mini-", "o200k_base"), ("gpt-5", "o200k_base"),
    ("gpt-4.5-", "o200k_base"), ("gpt-4.1-", "o200k_base"), ("chatgpt-4o-", "o200k_base"),
    ("gpt-4o-", "o200k_base"), ("gpt-4-", "cl100k_base"), ("gpt-3.5-turbo-", "cl100k_base"),
    ("gpt-35-turbo-", "cl100k_base"), ("gpt-oss-", "o200k_harmony"), ("ft:gpt-4o", "o200k_base"),
    ("ft:gpt-4", "cl100k_base"), ("ft:gpt-3.5-turbo", "cl100k_base"), ("ft:davinci-002", "cl100k_base"),
    ("ft:babbage-002", "cl100k_base"),
)


def _models(encoding: str, names: str) -> dict[str, str]:
    return dict.fromkeys(names.split(), encoding)


_MODELS = {
    **_models("o200k_base", "o1 o3 o4-mini gpt-5 gpt-4.1 gpt-4o"),
    **_models(
        "cl100k_base",
        "gpt-4 gpt-3.5-turbo gpt-3.5 gpt-35-turbo davinci-002 babbage-002 text-embedding-ada-002 "
        "text-embedding-3-small text-embedding-3-large",
    ),
    **_models(
        "p50k_base",
        "text-davinci-003 text-davinci-002 code-davinci-002 code-davinci-001 code-cushman-002 "
        "code-cushman-001 davinci-codex cushman-codex",
    ),
    **_models("p50k_edit", "text-davinci-edit-001 code-davinci-edit-001"),
    **_models(
        "r50k_base",
        "text-davinci-001 text-curie-001 text-babbage-001 text-ada-001 davinci curie babbage ada "
        + " ".join(f"text-similarity-{m}-001" for m in ("davinci", "curie", "babbage", "ada"))
        + " "
        + " ".join(f"text-search-{m}-doc-001" for m in ("davinci", "curie", "babbage", "ada"))
        + " code-search-babbage-code-001 code-search-ada-code-001",
    ),
    **_models("gpt2", "gpt2 gpt-2"),
}


def encoding_name_for_model(model_name: str) -> str:
    """The encoding a model uses, by exact name and then by prefix; ``KeyError`` for a model it
    does not know."""
    if model_name in _MODELS:
        return _MODELS[model_name]
    for prefix, encoding in _MODEL_PREFIXES:
        if model_name.startswith(prefix):
            return encoding
    raise KeyError(
        f"Could not automatically map {model_name} to a tokeniser. "
        "Use ferry.tiktoken.get_encoding with the encoding's name instead."
    )


def encoding_for_model(model_name: str) -> Encoding:
    """``get_encoding(encoding_name_for_model(model_name))``."""
    return get_encoding(encoding_name_for_model(model_name))
