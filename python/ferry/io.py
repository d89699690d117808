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
    connections for URLs, 1 thread for files). The GIL is released while reading.

    Raises ``ferry.OutOfRangeError`` (a ``ValueError``) if the range goes past the end,
    ``ferry.NotFoundError`` (a ``FileNotFoundError``) for a missing file or a 404, and other
    ``ferry.Error`` subclasses as their names say; every message names the URI.
    """
    if offset < 0 or (length is not None and length < 0):
        raise ValueError(f"{os.fspath(uri)}: offset and length must be >= 0 (got {offset}, {length})")
    return _core.read(
        os.fspath(uri), offset, length, parallelism=parallelism or 0, part_size=part_size
    )


__all__ = ["read"]
