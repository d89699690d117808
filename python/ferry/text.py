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

__all__ = ["AddedToken", "Encoding", "Tokenizer"]


def _text_list(texts: Iterable[str | bytes]) -> list[str | bytes]:
    if isinstance(texts, (str, bytes)):
        raise TypeError("expected a list of texts, got a single text (use encode())")
    return texts if isinstance(texts, list) else list(texts)


_DIRECTIONS = ("right", "left")


def _direction(value: str, what: str) -> bool:
    """True for "left"; a clear ValueError for anything but "left"/"right"."""
    if value not in _DIRECTIONS:
        raise ValueError(f"{what} direction {value!r}: expected 'right' or 'left'")
    return value == "left"


class Tokenizer:
    """A tokenizer. Build one with ``from_file``, ``from_str`` or ``from_tiktoken``.

    Its content (everything that decides ids) is immutable and named by ``fingerprint``. Padding
    and truncation are settings on top of it, as in ``tokenizers``: a tokenizer.json's
    ``"padding"``/``"truncation"`` apply from load, ``enable_*``/``no_*`` change them, and they
    do not enter the fingerprint, ``==`` or ``hash()``.
    """

    __slots__ = ("_core", "_truncation", "_padding", "_encode_special_tokens")

    def __init__(self, core: _core.Tokenizer):
        self._core = core
        self._truncation = core.default_truncation
        self._padding = core.default_padding
        self._encode_special_tokens = False

    @property
    def encode_special_tokens(self) -> bool:
        """As ``tokenizers``: when True, special tokens written in text are encoded as text by
        every encode call (as if each passed ``split_special_tokens=True``; for untrusted input).
        A setting like padding: it travels with pickles and stays out of the fingerprint."""
        return self._encode_special_tokens

    @encode_special_tokens.setter
    def encode_special_tokens(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"encode_special_tokens: expected a bool, got {type(value).__name__}")
        self._encode_special_tokens = value

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
        ``special_tokens``; both also override the named encoding's. For tiktoken's own API
        (``allowed_special``, ``decode_single_token_bytes``, ...) use ``ferry.tiktoken``.
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

    def to_tokenizers(self):
        """This tokenizer as a Hugging Face ``tokenizers.Tokenizer`` (which must be installed),
        for code that wants one, e.g. ``transformers.PreTrainedTokenizerFast(tokenizer_object=
        tok.to_tokenizers())``. Padding and truncation settings travel with it."""
        import json

        import tokenizers

        if self._core.format != "tokenizer.json":
            raise _core.UnsupportedError(
                f"{self._core.origin}: "
                + ("a tiktoken rank file" if self._core.format == "tiktoken" else "a SentencePiece .model")
                + " has no tokenizers form; load the model's tokenizer.json instead"
            )
        document = json.loads(self._core.source)
        document["truncation"] = None
        document["padding"] = None
        out = tokenizers.Tokenizer.from_str(json.dumps(document))
        if self._truncation is not None:
            out.enable_truncation(**self.truncation)
        if self._padding is not None:
            out.enable_padding(**self.padding)
        return out

    # --------------------------------------------------------------------------------- encode

    def encode(
        self,
        sequence: str | bytes | Sequence[str],
        pair: str | bytes | Sequence[str] | None = None,
        is_pretokenized: bool = False,
        add_special_tokens: bool = True,
        *,
        split_special_tokens: bool = False,
    ) -> _core.Encoding:
        """An ``Encoding`` of ``sequence`` (and ``pair``), as ``tokenizers.Tokenizer.encode``:
        added tokens written in the text are matched, the post-processor adds its special tokens
        (``add_special_tokens``), then truncation and padding apply as set.

        ``is_pretokenized``: ``sequence`` (and ``pair``) are lists of words, each encoded on its
        own. ``split_special_tokens``: special tokens written in the text are encoded as text (for
        untrusted input; transformers' option of that name). For ids alone, fastest:
        ``encode_ids`` / ``encode_to_numpy``."""
        if not is_pretokenized:
            # A list of two words would otherwise read as a pair: tokenizers refuses it too.
            for what, value in (("sequence", sequence), ("pair", pair)):
                if (value is not None or what == "sequence") and not isinstance(value, (str, bytes)):
                    raise TypeError(f"encode {what}: expected str, got {type(value).__name__} "
                                    "(pass is_pretokenized=True for a list of words)")
        elif not isinstance(sequence, (list, tuple)) or not isinstance(pair, (list, tuple, type(None))):
            raise TypeError("encode with is_pretokenized=True: expected lists of words, got "
                            f"{type(sequence).__name__}" + (f" and {type(pair).__name__}" if pair is not None else ""))
        item = sequence if pair is None else (sequence, pair)
        return self._core.encode_encoding(
            item, is_pretokenized, add_special_tokens, split_special_tokens or self._encode_special_tokens,
            self._truncation, self._padding
        )

    def encode_batch(
        self,
        input: Iterable[Any],
        is_pretokenized: bool = False,
        add_special_tokens: bool = True,
        *,
        split_special_tokens: bool = False,
        threads: int | None = None,
    ) -> list[_core.Encoding]:
        """``encode`` over a batch on ``threads`` threads (default: one per core). Items are texts
        or ``(text, pair)`` tuples (lists of words with ``is_pretokenized``). With padding set, the
        batch is padded together (``BatchLongest``: to its longest). The first error stops the
        batch and is raised, naming the item."""
        return self._core.encode_encoding_batch(
            _text_list(input), is_pretokenized, add_special_tokens, split_special_tokens or self._encode_special_tokens,
            self._truncation, self._padding, threads or 0, None,
        )

    def encode_batch_fast(
        self, input: Iterable[Any], is_pretokenized: bool = False, add_special_tokens: bool = True
    ) -> list[_core.Encoding]:
        """``tokenizers``' encode_batch without offsets (there tokens, offsets and word ids come
        back empty): ferry's ``encode_batch`` computes them only when read, so this is it, and
        they are all there."""
        return self.encode_batch(input, is_pretokenized, add_special_tokens)

    def encode_batch_arrays(
        self,
        input: Iterable[Any],
        is_pretokenized: bool = False,
        add_special_tokens: bool = True,
        *,
        split_special_tokens: bool = False,
        threads: int | None = None,
        dtype: Any = np.int64,
    ) -> dict[str, np.ndarray]:
        """``encode_batch`` as columns: ``{"input_ids": [batch, length], "attention_mask":
        [batch, length] uint8}`` numpy arrays built in C++, with no Python object per item (what
        ``transformers`` gives with ``return_tensors="np"``). Rows are padded as the padding
        settings say, and always to the longest row (with pad id 0 on the right when padding is
        off). ``dtype``: int64 (default, what embedding layers take), int32 or uint32."""
        ids, mask = self._core.encode_encoding_batch(
            _text_list(input), is_pretokenized, add_special_tokens, split_special_tokens or self._encode_special_tokens,
            self._truncation, self._padding, threads or 0, np.dtype(dtype).name,
        )
        return {"input_ids": ids, "attention_mask": mask}

    def encode_ids(
        self, text: str | bytes, add_special_tokens: bool = True, *, split_special_tokens: bool = False
    ) -> list[int]:
        """The ids of one text, with no ``Encoding`` and no truncation or padding: the fastest
        path (added tokens matched, the post-processor's special tokens added). ``bytes`` are
        encoded as they are, valid UTF-8 or not. The GIL is released while encoding."""
        return self._core.encode(text, add_special_tokens, True, split_special_tokens or self._encode_special_tokens)

    def encode_ordinary(self, text: str | bytes) -> list[int]:
        """Ids with special-token text encoded as plain text and no post-processor (tiktoken's
        ``encode_ordinary``)."""
        return self._core.encode(text, False, False)

    def encode_to_numpy(self, text: str | bytes, add_special_tokens: bool = True) -> np.ndarray:
        """``encode_ids`` returning a numpy uint32 array (no Python ints are made)."""
        return self._core.encode_array(text, add_special_tokens, True, self._encode_special_tokens)

    def encode_batch_ids(
        self,
        texts: Iterable[str | bytes],
        add_special_tokens: bool = True,
        *,
        split_special_tokens: bool = False,
        threads: int | None = None,
    ) -> list[np.ndarray]:
        """``encode_ids`` over many texts on ``threads`` threads (default: one per core): one
        numpy uint32 array per text, in order, each owning its memory (no copy), unpadded and
        untruncated. The first error stops the batch and is raised, naming the item."""
        return self._core.encode_batch(_text_list(texts), add_special_tokens, True, threads or 0,
                                       split_special_tokens or self._encode_special_tokens)

    def encode_ordinary_batch(
        self, texts: Iterable[str | bytes], *, threads: int | None = None
    ) -> list[np.ndarray]:
        """``encode_ordinary`` over many texts, as ``encode_batch_ids``."""
        return self._core.encode_batch(_text_list(texts), False, False, threads or 0)

    # ----------------------------------------------------------------------- padding, truncation

    def enable_padding(
        self,
        direction: str = "right",
        pad_id: int = 0,
        pad_type_id: int = 0,
        pad_token: str = "[PAD]",
        length: int | None = None,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        """Pad every encoding (``length``: to that many ids; None: a batch to its longest),
        rounded up to ``pad_to_multiple_of``, as ``tokenizers``."""
        _require_ints("enable_padding", pad_id=pad_id, pad_type_id=pad_type_id, length=length,
                      pad_to_multiple_of=pad_to_multiple_of)
        if not isinstance(pad_token, str):
            raise TypeError(f"enable_padding pad_token: expected a str, got {type(pad_token).__name__}")
        for what, value in (("pad_id", pad_id), ("pad_type_id", pad_type_id)):
            if not 0 <= value < 2**32:
                raise ValueError(f"enable_padding {what} {value}: expected an id in [0, 2**32 - 1]")
        options = _core.PaddingOptions()
        options.left = _direction(direction, "padding")
        if length is not None and length <= 0:
            raise ValueError(f"padding length {length}: expected a positive length, or None for the longest")
        if pad_to_multiple_of is not None and pad_to_multiple_of <= 0:
            raise ValueError(f"pad_to_multiple_of {pad_to_multiple_of}: expected a positive multiple, or None")
        options.length = length or 0
        options.pad_to_multiple_of = pad_to_multiple_of or 0
        options.pad_id = pad_id
        options.pad_type_id = pad_type_id
        options.pad_token = pad_token
        self._padding = options

    def no_padding(self) -> None:
        self._padding = None

    @property
    def padding(self) -> dict[str, Any] | None:
        """The padding settings as ``tokenizers`` reports them, or None."""
        p = self._padding
        if p is None:
            return None
        return {
            "length": p.length or None,
            "pad_to_multiple_of": p.pad_to_multiple_of or None,
            "pad_id": p.pad_id,
            "pad_token": p.pad_token,
            "pad_type_id": p.pad_type_id,
            "direction": "left" if p.left else "right",
        }

    def enable_truncation(
        self, max_length: int, stride: int = 0, strategy: str = "longest_first", direction: str = "right"
    ) -> None:
        """Cut encodings to ``max_length`` ids (the post-processor's special tokens included);
        what is cut goes to ``Encoding.overflowing`` in windows that repeat ``stride`` ids.
        ``strategy``: longest_first, only_first or only_second, as ``tokenizers``."""
        _require_ints("enable_truncation", max_length=max_length, stride=stride, optional=False)
        if max_length < 0 or stride < 0:
            raise ValueError(f"truncation max_length {max_length} and stride {stride} must not be negative")
        if max_length and stride >= max_length:
            raise ValueError(f"truncation stride {stride} must be below max_length {max_length}")
        added = self._core.special_tokens_to_add(False)
        if added <= max_length and max_length - added < stride:  # tokenizers' own check
            raise ValueError(
                f"truncation stride {stride} is above the effective max_length {max_length - added} "
                f"(max_length {max_length} less the {added} special tokens the post-processor adds)"
            )
        options = _core.TruncationOptions()
        options.max_length = max_length
        options.stride = stride
        options.strategy = strategy
        options.left = _direction(direction, "truncation")
        self._truncation = options

    def no_truncation(self) -> None:
        self._truncation = None

    @property
    def truncation(self) -> dict[str, Any] | None:
        """The truncation settings as ``tokenizers`` reports them, or None."""
        t = self._truncation
        if t is None:
            return None
        return {
            "max_length": t.max_length,
            "stride": t.stride,
            "strategy": t.strategy,
            "direction": "left" if t.left else "right",
        }

    def num_special_tokens_to_add(self, is_pair: bool) -> int:
        """How many ids the post-processor adds to one sequence or a pair."""
        return self._core.special_tokens_to_add(is_pair)

    # ----------------------------------------------------------------------------------- decode

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = True) -> str:
        """The text of ``ids``, without special tokens unless ``skip_special_tokens=False``
        (``tokenizers``' default). Bytes that do not form valid UTF-8 (an id sequence cut inside a
        character) become U+FFFD. An id outside the vocabulary raises ``ferry.OutOfRangeError``
        (``tokenizers`` drops it silently)."""
        return self._core.decode(_ids(ids, "decode"), skip_special_tokens)

    def decode_bytes(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = True) -> bytes:
        """The exact bytes of ``ids``."""
        return self._core.decode_bytes(_ids(ids, "decode_bytes"), skip_special_tokens)

    def decode_batch(
        self, sequences: Iterable[Sequence[int] | np.ndarray], skip_special_tokens: bool = True
    ) -> list[str]:
        out = []
        for i, ids in enumerate(sequences):
            try:
                out.append(self._core.decode(_ids(ids, f"decode_batch item {i}"), skip_special_tokens))
            except _core.Error as e:  # say which sequence: "position 0" alone would mislead
                raise type(e)(f"decode_batch item {i}: {e}") from None
        return out

    # ------------------------------------------------------------------------------- vocabulary

    def token_to_id(self, token: str | bytes) -> int | None:
        """The id of a token as the vocabulary spells it (tokenizer.json: ``"Ġthe"``; tiktoken:
        the raw bytes), or None."""
        return self._core.token_to_id(token)

    def id_to_token(self, id: int) -> str | bytes | None:
        """The vocabulary's spelling of ``id`` (``str`` for tokenizer.json, ``bytes`` for tiktoken),
        or None."""
        if not isinstance(id, (int, np.integer)) or isinstance(id, bool):
            raise TypeError(f"id_to_token: expected an int id, got {type(id).__name__}")
        if not 0 <= id < 2**32:
            raise OverflowError(f"id_to_token: id {id} is not a token id (0 <= id < 2**32)")
        return self._core.id_to_token(int(id))

    def is_special(self, id: int) -> bool:
        return self._core.is_special(id)

    def get_vocab(self, with_added_tokens: bool = True) -> dict[str | bytes, int]:
        """Token spelling -> id (``bytes`` keys for tiktoken rank files)."""
        return self._core.vocab(with_added_tokens)

    def get_vocab_size(self, with_added_tokens: bool = True) -> int:
        """The number of ids (added tokens included), or the model's own vocabulary's size."""
        return self._core.vocab_size if with_added_tokens else self._core.model_vocab_size

    def get_added_tokens_decoder(self) -> dict[int, AddedToken]:
        """Id -> ``AddedToken`` for every added token, as ``tokenizers``."""
        return {
            id: AddedToken(content, single_word, lstrip, rstrip, normalized, special)
            for id, content, special, single_word, lstrip, rstrip, normalized in self._core.added_tokens
        }

    def add_tokens(self, tokens: Any) -> int:
        raise _core.UnsupportedError(
            "a ferry Tokenizer is immutable (its fingerprint names its content, so it cannot change "
            "under a live object); use tok = tok.with_added_tokens([...]), which returns a new one"
        )

    add_special_tokens = add_tokens

    def with_added_tokens(self, tokens: Iterable[str | AddedToken], *, special: bool = False) -> Tokenizer:
        """A new tokenizer with ``tokens`` added (``special``: as special tokens, which
        ``decode`` skips), as ``tokenizers``' ``add_tokens``/``add_special_tokens`` would make it;
        this one is unchanged. Settings (padding, truncation) are kept."""
        import json

        if self._core.format != "tokenizer.json":
            raise _core.UnsupportedError(f"{self._core.origin}: with_added_tokens needs a tokenizer.json")
        document = json.loads(self._core.source)
        added = document.setdefault("added_tokens", None) or []
        document["added_tokens"] = added
        for token in tokens:
            if isinstance(token, str):
                token = AddedToken(token, special=special)
            elif not isinstance(token, AddedToken) and isinstance(getattr(token, "content", None), str):
                # tokenizers.AddedToken: the same fields
                token = AddedToken(token.content, token.single_word, token.lstrip, token.rstrip,
                                   token.normalized, getattr(token, "special", False))
            elif not isinstance(token, AddedToken):
                raise TypeError(f"with_added_tokens: expected str or ferry.AddedToken, got {type(token).__name__}")
            if not token.content:
                continue
            # A token already there is registered again with these flags (the loader keeps the
            # latest), as tokenizers' add_tokens does.
            added.append(
                {
                    "id": 0,  # ferry (like tokenizers) assigns ids itself, in file order
                    "content": token.content,
                    "single_word": token.single_word,
                    "lstrip": token.lstrip,
                    "rstrip": token.rstrip,
                    "normalized": token.normalized if token.normalized is not None else not (special or token.special),
                    "special": special or token.special,
                }
            )
        out = Tokenizer.from_str(json.dumps(document, ensure_ascii=False), origin=self._core.origin)
        out._truncation, out._padding = self._truncation, self._padding
        out._encode_special_tokens = self._encode_special_tokens
        return out

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
        settings = (self.truncation, self.padding, self._encode_special_tokens)
        if core.format == "tiktoken":
            name, pattern, specials = core.tiktoken_options
            return _from_ranks, (core.source, core.origin, name, pattern, specials), settings
        if core.format == "sentencepiece":
            return _from_sentencepiece, (core.source, core.origin), settings
        return _from_json, (core.source, core.origin), settings

    def __setstate__(self, settings) -> None:
        truncation, padding, *rest = settings  # (pickles before encode_special_tokens have two)
        self._encode_special_tokens = bool(rest and rest[0])
        self._truncation = self._padding = None
        if truncation is not None:
            self.enable_truncation(**truncation)
        if padding is not None:
            self.enable_padding(**padding)

    def __repr__(self) -> str:
        return (
            f"ferry.Tokenizer({_core.redact_uris(self._core.origin)!r}, format={self._core.format!r}, "
            f"vocab_size={self.vocab_size}, fingerprint={self.fingerprint[:26]}...)"
        )


class AddedToken:
    """An added token as ``tokenizers.AddedToken`` describes it: matched in text before the model
    runs (``single_word``: only as a word of its own; ``lstrip``/``rstrip``: taking the
    whitespace beside it; ``normalized``: matched after normalization; ``special``: skipped by
    ``decode``)."""

    __slots__ = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")

    def __init__(
        self,
        content: str,
        single_word: bool = False,
        lstrip: bool = False,
        rstrip: bool = False,
        normalized: bool | None = None,
        special: bool = False,
    ):
        self.content = content
        self.special = special
        self.single_word = single_word
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, AddedToken) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __hash__(self) -> int:
        return hash(self.content)

    def __str__(self) -> str:
        return self.content

    def __repr__(self) -> str:
        flags = ", ".join(f"{k}={getattr(self, k)}" for k in self.__slots__[1:])
        return f"AddedToken({self.content!r}, {flags})"


Encoding = _core.Encoding


def _require_ints(call: str, *, optional: bool = True, **values: Any) -> None:
    """A TypeError naming the argument for any value that is not an int (None allowed when
    `optional`), before the binding would print its signature instead."""
    for what, value in values.items():
        if value is None and optional:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{call} {what}: expected an int, got {type(value).__name__}")


def _ids(ids: Any, what: str) -> Any:
    if ids is None or isinstance(ids, (str, bytes)):
        raise TypeError(f"{what}: expected a sequence of int ids, got {type(ids).__name__}")
    return ids


def _from_json(source: bytes, origin: str) -> Tokenizer:
    return Tokenizer(_core.Tokenizer.from_json(source, origin))


def _from_ranks(source: bytes, origin: str, name: str, pattern: str, specials) -> Tokenizer:
    return Tokenizer(_core.Tokenizer.from_ranks(source, origin, name, pattern, list(specials)))


def _from_sentencepiece(source: bytes, origin: str) -> Tokenizer:
    return Tokenizer(_core.Tokenizer.from_sentencepiece_proto(source, origin))
