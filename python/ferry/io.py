"""Bytes from any URI: a local path, file://, http:// or https://."""

from __future__ import annotations

import os

from ferry import _core


def read(
    uri: str | os.PathLike[str],
    offset: int = 0,
    length: int | None = None,
    *,
    parallelism: int | None = None,
    part_size: int = 8 << 20,
) -> bytes:
    """Return the bytes ``[offset, offset + length)`` of ``uri`` (to the end if ``length`` is None).

    HTTP reads retry transient failures and resume at the exact byte where a transfer broke. A
    large read is split into ``part_size`` requests issued ``parallelism`` at a time (default: 4
    connections for URLs, one thread per core for files). The GIL is released while reading.

    Raises ``ferry.OutOfRangeError`` (a ``ValueError``) if the range goes past the end,
    ``ferry.NotFoundError`` (a ``FileNotFoundError``) for a missing file or a 404, and other
    ``ferry.Error`` subclasses as their names say; every message names the URI.
    """
    if offset < 0 or (length is not None and length < 0):
        raise ValueError(f"{redact(os.fspath(uri))}: offset and length must be >= 0 (got {offset}, {length})")
    return _core.read(
        os.fspath(uri), offset, length, parallelism=parallelism or 0, part_size=part_size
    )


def redact(text: str) -> str:
    """``text`` with the secrets of every URI in it hidden: a userinfo password
    (``user:***@``) and credential query parameters (``X-Amz-Signature=***``, ``sig``, tokens,
    keys). Every message ferry prints goes through it; use it to log URIs the same way."""
    return _core.redact_uris(text)


__all__ = ["read", "redact"]


def list(pattern: str | os.PathLike[str]) -> list[str]:  # noqa: A001  (mirrors `ls`)
    """The URIs a shard pattern names, sorted.

    ``s3://bucket/prefix/`` lists every object under the prefix and ``s3://bucket/dir/*.tar``
    those matching shell wildcards (``*``, ``?``, ``[..]``; none crosses ``/``), through
    ListObjectsV2 with pagination; ``/data/shard-*.tar`` is a local glob. Anything without a
    wildcard comes back as it is. Raises ``ferry.NotFoundError`` when nothing matches.
    """
    return _core.expand_uri_pattern(os.fspath(pattern))
