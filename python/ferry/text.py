"""Tokenizers with the ids of Hugging Face ``tokenizers`` and ``tiktoken``: byte-level BPE,
SentencePiece-style BPE with byte fallback, WordPiece, Unigram and WordLevel.

    tok = ferry.Tokenizer.from_file("tokenizer.json")          # ids as `tokenizers` gives them
    tok = ferry.Tokenizer.from_tiktoken("cl100k_base.tiktoken")  # ids as `tiktoken` gives them
    tok = ferry.Tokenizer.from_sentencepiece("tokenizer.model")  # ids as `sentencepiece` gives them
    tok = ferry.Tokenizer.from_data_gym("encoder.json", "vocab.bpe")  # GPT-2's original files
    ids = tok.encode("Hello world")
    batch = tok.encode_batch(texts)      # numpy uint32 arrays, encoded on every core
    text = tok.decode(ids)

A tokenizer is immutable. ``fingerprint`` is a SHA-256 over its content (vocabulary, merges,
added tokens, normalizer, split patterns, post-processor, Unicode table versions), the same in
every process and on every machine, so ``==``, ``hash()`` and ``pickle`` follow it and a tokenizer
can key a cache or travel to Ray/Dask/Spark workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ferry import _core

__all__ = ["Tokenizer"]


def _text_list(texts: Iterable[str | bytes]) -> list[str | bytes]:
    if isinstance(texts, (str, bytes)):
        raise TypeError("expected a list of texts, got a single text (use encode())")
    return texts if isinstance(texts, list) else list(texts)


class Tokenizer:
    """A tokenizer. Build one with ``from_file``, ``from_str`` or ``from_tiktoken``."""

    __slots__ = ("_core",)

    def __init__(self, core: _core.Tokenizer):
        self._core = core

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Load a Hugging Face ``tokenizer.json`` from a path or URL (http(s)://, s3://); a
        SentencePiece ``.model`` (by its name or its first byte) loads as ``from_sentencepiece``."""
        return cls(_core.Tokenizer.from_file(os.fspath(path)))

    @classmethod
    def from_sentencepiece(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Load a SentencePiece ``.model`` file (Unigram or BPE) natively: ``encode`` gives the ids
        of ``sentencepiece``'s ``encode(text)`` and ``decode`` its text. ``from_file`` reads a
        ``.model`` this way too."""
        return cls(_core.Tokenizer.from_sentencepiece(os.fspath(path)))

    @classmethod
    def from_data_gym(
        cls, encoder_json: str | os.PathLike[str], vocab_bpe: str | os.PathLike[str]
    ) -> Tokenizer:
        """Load GPT-2's original ``encoder.json`` + ``vocab.bpe`` pair as tiktoken reads it
        (``data_gym_to_mergeable_bpe_ranks``): the ids of tiktoken's ``gpt2`` / ``r50k_base``,
        and the same fingerprint as ``from_tiktoken("r50k_base.tiktoken")``."""
        return cls(_core.Tokenizer.from_data_gym(os.fspath(encoder_json), os.fspath(vocab_bpe)))

    @classmethod
    def from_str(cls, json: str | bytes, origin: str = "<string>") -> Tokenizer:
        """Load a ``tokenizer.json`` from its text; ``origin`` names it in error messages."""
        data = json.encode() if isinstance(json, str) else bytes(json)
        return cls(_core.Tokenizer.from_json(data, origin))

    @classmethod
    def from_tiktoken(
        cls,
        path: str | os.PathLike[str],
        name: str | None = None,
        pattern: str | None = None,
        special_tokens: Mapping[str, int] | None = None,
    ) -> Tokenizer:
        """Load a tiktoken rank file (``base64(token) rank`` per line).

        ``name`` ("r50k_base", "p50k_base", "cl100k_base", "o200k_base") gives that encoding's
        split pattern and special tokens; it is guessed from the file name when left out. Other
        rank files (llama3, deepseekv2, ...) need ``pattern`` and, if they have any,
        ``special_tokens``; both also override the named encoding's.
        """
        return cls(
            _core.Tokenizer.from_tiktoken(
                os.fspath(path), name or "", pattern or "", list((special_tokens or {}).items())
            )
        )

    @classmethod
    def train_from_iterator(
        cls,
        iterator: Iterable[str | bytes],
        vocab_size: int = 8192,
        *,
        min_frequency: int = 2,
        special_tokens: Sequence[str] = (),
    ) -> Tokenizer:
        """Train a GPT-2 style byte-level BPE tokenizer on the texts: special tokens get ids 0, 1,
        ..., then the 256 bytes, then merges by pair frequency (ties to the pair whose bytes sort
        first) until ``vocab_size`` or until no pair occurs ``min_frequency`` times. The result is
        a tokenizer.json (``save``/``to_str``) that Hugging Face ``tokenizers`` loads and encodes
        identically."""
        json = _core.train_bpe(iterator, vocab_size, min_frequency, list(special_tokens))
        return cls.from_str(json, origin="<trained>")

    def to_str(self) -> str:
        """The tokenizer.json text (tokenizers loaded from tokenizer.json or trained here)."""
        if self._core.format != "tokenizer.json":
            raise _core.UnsupportedError(f"{self._core.origin}: a {self._core.format} file has no tokenizer.json form")
        return self._core.source.decode()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``to_str()`` to ``path`` atomically (temporary file, then rename)."""
        target = os.fspath(path)
        tmp = f"{target}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_str())
        os.replace(tmp, target)

    # ----------------------------------------------------------------------------------- encode

    def encode(self, text: str | bytes, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``. Added/special tokens written in the text are matched (as in
        ``tokenizers``, and tiktoken's ``encode(allowed_special="all")``); ``add_special_tokens``
        applies the post-processor (e.g. a BOS id). ``bytes`` are encoded as they are, valid UTF-8
        or not. The GIL is released while encoding."""
        return self._core.encode(text, add_special_tokens, True)

    def encode_ordinary(self, text: str | bytes) -> list[int]:
        """Like ``encode`` but special-token text is encoded as plain text and no post-processor
        runs (tiktoken's ``encode_ordinary``)."""
        return self._core.encode(text, False, False)

    def encode_to_numpy(self, text: str | bytes, add_special_tokens: bool = True) -> np.ndarray:
        """``encode`` returning a numpy uint32 array (no Python ints are made)."""
        return self._core.encode_array(text, add_special_tokens, True)

    def encode_batch(
        self,
        texts: Iterable[str | bytes],
        add_special_tokens: bool = True,
        *,
        threads: int | None = None,
    ) -> list[np.ndarray]:
        """Encode many texts on ``threads`` threads (default: one per core); returns one numpy
        uint32 array per text, in order, each owning its memory (no copy). The first error
        stops the batch and is raised, naming the item."""
        return self._core.encode_batch(_text_list(texts), add_special_tokens, True, threads or 0)

    def encode_ordinary_batch(
        self, texts: Iterable[str | bytes], *, threads: int | None = None
    ) -> list[np.ndarray]:
        """``encode_ordinary`` over many texts, as ``encode_batch``."""
        return self._core.encode_batch(_text_list(texts), False, False, threads or 0)

    # ----------------------------------------------------------------------------------- decode

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = False) -> str:
        """The text of ``ids``; bytes that do not form valid UTF-8 (an id sequence cut inside a
        character) become U+FFFD. An id outside the vocabulary raises ``ferry.OutOfRangeError``."""
        return self._core.decode(ids, skip_special_tokens)

    def decode_bytes(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = False) -> bytes:
        """The exact bytes of ``ids``."""
        return self._core.decode_bytes(ids, skip_special_tokens)

    def decode_batch(
        self, batch: Iterable[Sequence[int] | np.ndarray], skip_special_tokens: bool = False
    ) -> list[str]:
        return [self._core.decode(ids, skip_special_tokens) for ids in batch]

    # ------------------------------------------------------------------------------- vocabulary

    def token_to_id(self, token: str | bytes) -> int | None:
        """The id of a token as the vocabulary spells it (tokenizer.json: ``"Ġthe"``; tiktoken:
        the raw bytes), or None."""
        return self._core.token_to_id(token)

    def id_to_token(self, id: int) -> str | bytes | None:
        """The vocabulary's spelling of ``id`` (``str`` for tokenizer.json, ``bytes`` for tiktoken),
        or None."""
        return self._core.id_to_token(id)

    def is_special(self, id: int) -> bool:
        return self._core.is_special(id)

    @property
    def vocab_size(self) -> int:
        """One more than the largest id, added tokens included."""
        return self._core.vocab_size

    @property
    def fingerprint(self) -> str:
        return self._core.fingerprint

    # --------------------------------------------------------------------------------- identity

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Tokenizer) and self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self):
        core = self._core
        if core.format == "tiktoken":
            name, pattern, specials = core.tiktoken_options
            return _from_ranks, (core.source, core.origin, name, pattern, specials)
        if core.format == "sentencepiece":
            return _from_sentencepiece, (core.source, core.origin)
        return _from_json, (core.source, core.origin)

    def __repr__(self) -> str:
        return (
            f"ferry.Tokenizer({_core.redact_uris(self._core.origin)!r}, format={self._core.format!r}, "
            f"vocab_size={self.vocab_size}, fingerprint={self.fingerprint[:26]}...)"
        )


def _from_json(source: bytes, origin: str) -> Tokenizer:
    return Tokenizer(_core.Tokenizer.from_json(source, origin))


def _from_ranks(source: bytes, origin: str, name: str, pattern: str, specials) -> Tokenizer:
    return Tokenizer(_core.Tokenizer.from_ranks(source, origin, name, pattern, list(specials)))


def _from_sentencepiece(source: bytes, origin: str) -> Tokenizer:
    return Tokenizer(_core.Tokenizer.from_sentencepiece_proto(source, origin))
