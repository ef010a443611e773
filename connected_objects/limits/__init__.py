"""Fleet-wide limits: where workers share request rates, concurrency and holds.

Every worker sends a scope's requests through a :class:`~connected_objects.limits.gates.ScopeGate`,
and the gate keeps to the provider's :class:`~connected_objects.plugin.provider.Limits`
through a :class:`LimitsStore`:

- :class:`MemoryLimits`: in the worker's memory; the default, right for one
  worker (each worker would otherwise spend the whole quota on its own);
- :class:`DatabaseLimits`: in the ``co_limit`` tables of the application's
  database (``Hub(limits_store="database")``), for a fleet of workers;
- :class:`RedisLimits`: in Redis (``Hub(limits_store="redis://…")``,
  ``pip install connected-objects[redis]``), for fleets sending more requests
  than the database should take (see docs/operations.md, "Scaling out").

:func:`from_setting` turns a setting (``"memory"``, ``"database"``, a Redis URL)
into a store.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects.limits import from_setting
    >>> from_setting("memory", create_engine("sqlite://"))
    MemoryLimits(keys=0)
    >>> from_setting("database", create_engine("sqlite://"))
    DatabaseLimits(dialect='sqlite', lease_seconds=120.0)
"""

from __future__ import annotations

from sqlalchemy import Engine

from ..exceptions import ConfigurationError
from .database import DatabaseLimits
from .memory import MemoryLimits
from .redis import RedisLimits
from .store import Hold
from .store import LimitsStore
from .store import Rate
from .store import Reservation
from .store import app_key
from .store import scope_key

__all__ = [
    "DatabaseLimits",
    "Hold",
    "LimitsStore",
    "MemoryLimits",
    "Rate",
    "RedisLimits",
    "Reservation",
    "app_key",
    "from_setting",
    "scope_key",
]


def from_setting(setting: str, engine: Engine) -> LimitsStore:
    """The store a setting names: ``"memory"``, ``"database"`` (on ``engine``) or a ``redis://`` URL."""
    if setting == "memory":
        return MemoryLimits()
    if setting == "database":
        return DatabaseLimits(engine)
    if setting.startswith(("redis://", "rediss://", "unix://")):
        return RedisLimits(setting)
    raise ConfigurationError(
        f"unknown limits store {setting.split('://')[0]!r}: use 'memory', 'database' or a redis:// URL"
    )
