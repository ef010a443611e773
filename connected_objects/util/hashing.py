"""Stable digests: the content hash of a payload and the idempotency key of a write.

Both are deterministic, so every worker on every machine computes the same
value for the same input:

- :func:`content_hash` says whether a payload is what was last sent or
  received (an update that hashes the same is not pushed);
- :func:`idempotency_key` names a remote write, so that the provider answers
  a retried write from its first run instead of applying it twice.

Example::

    >>> from decimal import Decimal
    >>> from connected_objects.util.hashing import content_hash, idempotency_key
    >>> content_hash({"b": 1, "a": Decimal("2.50")}) == content_hash({"a": Decimal("2.50"), "b": 1})
    True
    >>> idempotency_key("create", "acme", 7) == idempotency_key("create", "acme", 7)
    True
    >>> len(idempotency_key("create", "acme", 7))
    36
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["content_hash", "idempotency_key"]


#: One encoder for every hash (``json.dumps`` with options would build one per call).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def content_hash(payload: Mapping[str, Any]) -> str:
    """A stable SHA-256 of a payload (keys sorted, non-JSON values as strings)."""
    return hashlib.sha256(_ENCODER.encode(payload).encode()).hexdigest()


def idempotency_key(*parts: object) -> str:
    """A 36-character key derived from ``parts``: the same parts give the same key.

    Fits QBO's ``requestid`` (50, 36 in batches), Xero's ``Idempotency-Key`` (128)
    and Connec! external ids.
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))
