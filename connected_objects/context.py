"""What the engines need of an application: the :class:`SyncContext` Protocol.

The dispatcher, the applier, pulls, token refreshes and workers take a
``SyncContext``, not the :class:`~connected_objects.Hub` class, so the arrows
point one way: :mod:`connected_objects.hub` builds the configuration and may
start a worker; no engine imports the hub. A :class:`~connected_objects.Hub`
satisfies it, and so does anything else with these attributes (a test double,
another framework's wiring).

Example::

    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects import Hub
    >>> from connected_objects.context import SyncContext
    >>> isinstance(Hub(sessionmaker(create_engine("sqlite://")), models=[]), SyncContext)
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Protocol
from typing import runtime_checkable

if TYPE_CHECKING:
    import datetime as dt

    import httpx
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session
    from sqlalchemy.orm import sessionmaker

    from .declare import SyncSpec
    from .limits import LimitsStore
    from .plugin.provider import Extras
    from .plugin.provider import Provider
    from .store.history import History
    from .util.retry import RetryPolicy
    from .util.secrets import Vault

__all__ = ["SyncContext"]


@runtime_checkable
class SyncContext(Protocol):
    """The application as the engines see it: its database, its models, its providers, its policies."""

    @property
    def session_factory(self) -> sessionmaker[Session]:
        """Sessions on the application's database."""
        ...

    @property
    def models(self) -> list[type]:
        """The ``@connected`` models."""
        ...

    @property
    def vault(self) -> Vault | None:
        """Seals credentials at rest (None: stored as given)."""
        ...

    @property
    def retry(self) -> RetryPolicy:
        """Backoff for failed pushes and events."""
        ...

    @property
    def defer_delay(self) -> float:
        """Seconds a change waits for a reference another change is pushing."""
        ...

    @property
    def http_shards(self) -> int:
        """Keep-alive HTTP clients per worker."""
        ...

    @property
    def limits_store(self) -> LimitsStore | None:
        """Where workers share rate limits and holds (None: each worker in its own memory)."""
        ...

    @property
    def history(self) -> History:
        """What the history of pushes and applies keeps (``History(enabled=False)``: nothing)."""
        ...

    def clock(self) -> dt.datetime:
        """The time now, aware UTC: what schedules, token expiries and history read (tests move it)."""
        ...

    def connection(self, session: Session) -> Connection:
        """The session's connection for engine work."""
        ...

    def provider(self, name: str) -> Provider:
        """A provider by name."""
        ...

    def extras(self, name: str) -> Extras:
        """The optional parts provider ``name`` implements."""
        ...

    def spec(self, local_type: str, provider: str) -> SyncSpec | None:
        """How rows of ``local_type`` sync to ``provider``."""
        ...

    def specs(self, provider: str) -> list[SyncSpec]:
        """Every model connected to ``provider``, referenced models first."""
        ...

    def spec_for(self, provider: str, entity: str) -> SyncSpec | None:
        """The model synced with ``provider``'s ``entity``."""
        ...

    def http_client(self) -> httpx.AsyncClient:
        """A new HTTP client for one worker shard."""
        ...
