"""Test helpers for connected-objects and for applications that use it.

- :class:`MemoryProvider`: a provider whose remote records live in a dict,
  for fast unit tests (register it with :func:`connected_objects.plugin.registry.register`).
- :mod:`connected_objects.testing.databases`: clean SQLite, PostgreSQL and
  MariaDB databases for pytest (the same fixtures our own suite uses).

Example::

    >>> import asyncio
    >>> from connected_objects import Scope
    >>> from connected_objects.testing import MemoryProvider
    >>> provider = MemoryProvider()
    >>> client = provider.client(Scope("memory", "test", "acme"), None, {})
    >>> record = asyncio.run(client.create("notes", {"text": "hi"}, idempotency_key="k1"))
    >>> again = asyncio.run(client.create("notes", {"text": "hi"}, idempotency_key="k1"))
    >>> record.foreign_id == again.foreign_id, provider.creates
    (True, 1)
"""

from __future__ import annotations

from .memory import MemoryProvider

__all__ = ["MemoryProvider"]
