"""One content hash for everything the toolkit names by content: data, weights, settings, sets.

``content_hash(parts)`` is sha256 over the parts in order (``str`` parts as UTF-8), shortened to
16 hex digits (64 bits): enough to tell runs, caches and files apart, not a security digest.
Feeding the parts one by one equals hashing their concatenation, so a caller may stream them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def content_hash(parts: Iterable[bytes | str]) -> str:
    """16 hex digits of sha256 over ``parts`` (bytes, or str encoded as UTF-8), in order."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return digest.hexdigest()[:16]


def combine_hashes(a: str, b: str) -> str:
    """The hash of two hashes (e.g. the data of two runs merged), order-sensitive."""
    return content_hash([f"{a}+{b}"])
