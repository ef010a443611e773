"""Connections: a local owner row linked to one scope, with its credentials and switches.

A *connection* says "this organization is customer account X at provider P in
marketplace M". Captured changes of every row owned by the organization go to
each of its active connections; inbound events for the scope land on it.
A scope belongs to one owner at most (``co_connection`` is unique on the scope).

Credentials are sealed with a :class:`~connected_objects.secrets.Vault` before
they reach the table. ``directions`` switches entities per direction:
``{"Invoice": "push"}`` (also ``"pull"``, ``"both"``, the default, and ``"off"``).

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope, connections
    >>> from connected_objects.models import metadata
    >>> from connected_objects.secrets import Vault
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> vault = Vault([Vault.generate_key()])
    >>> with engine.begin() as db:
    ...     c = connections.connect(db, "organization", 7, Scope("xero", "production", "t-1"),
    ...                             credentials={"refresh_token": "r"}, vault=vault)
    ...     found = connections.for_owners(db, "xero", "organization", [7])
    ...     secret = connections.credentials(db, c.scope, vault)
    >>> c.status, [x.scope.account for x in found["7"]], secret
    ('active', ['t-1'], {'refresh_token': 'r'})
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy import and_
from sqlalchemy import select
from sqlalchemy import update

from .db import DB
from .db import connection_of
from .exceptions import ConfigurationError
from .identity import LocalId
from .identity import local_key
from .models import connection as t
from .models import utcnow
from .redaction import redact
from .scope import Scope
from .secrets import Vault
from .states import ConnectionStatus

__all__ = [
    "CACHE_KEY",
    "DIRECTIONS",
    "ConnectionInfo",
    "connect",
    "credentials",
    "disconnect",
    "for_owners",
    "get",
    "page",
    "set_status",
]

DIRECTIONS = ("both", "push", "pull", "off")
#: ``Session.info`` key under which capture caches connections for one transaction.
CACHE_KEY = "connected_objects.connections"


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A connection without its credentials."""

    id: int
    scope: Scope
    owner_type: str
    owner_id: str
    status: ConnectionStatus
    status_reason: str | None
    settings: Mapping[str, Any]
    directions: Mapping[str, str]
    #: When the stored OAuth access token expires (None: no expiring token).
    token_expires_at: dt.datetime | None = None

    def pushes(self, entity: str) -> bool:
        """Whether local changes of ``entity`` go out on this connection."""
        return self.status != "revoked" and self.directions.get(entity, "both") in ("both", "push")

    def pulls(self, entity: str) -> bool:
        """Whether remote changes of ``entity`` come in on this connection."""
        return self.status != "revoked" and self.directions.get(entity, "both") in ("both", "pull")

    @classmethod
    def from_row(cls, row: Row[Any]) -> ConnectionInfo:
        m = row._mapping
        return cls(
            id=m["id"],
            scope=Scope(m["provider"], m["marketplace"], m["account"]),
            owner_type=m["owner_type"],
            owner_id=m["owner_id"],
            status=m["status"],
            status_reason=m["status_reason"],
            settings=m["settings"] or {},
            directions=m["directions"] or {},
            token_expires_at=m.get("token_expires_at"),
        )


_COLUMNS = [c for c in t.c if c.name != "credentials"]


def _where_scope(scope: Scope) -> Any:
    return and_(t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, t.c.account == scope.account)


def _forget_cache(db: DB) -> None:
    info = getattr(db, "info", None)
    if isinstance(info, dict):
        info.pop(CACHE_KEY, None)


def connect(
    db: DB,
    owner_type: str,
    owner_id: LocalId,
    scope: Scope,
    *,
    credentials: Mapping[str, Any] | None = None,
    vault: Vault | None = None,
    settings: Mapping[str, Any] | None = None,
    directions: Mapping[str, str] | None = None,
) -> ConnectionInfo:
    """Connect an owner to a scope, or refresh and re-activate its existing connection.

    :raises ConfigurationError: the scope is connected to another owner, a
        direction is unknown, or credentials are given without a vault.
    """
    for entity, direction in (directions or {}).items():
        if direction not in DIRECTIONS:
            raise ConfigurationError(f"direction {direction!r} for {entity!r} is not one of {', '.join(DIRECTIONS)}")
    if credentials is not None and vault is None:
        raise ConfigurationError("credentials are stored encrypted: pass vault=Vault(...) to connect()")
    conn = connection_of(db)
    owner = local_key(owner_id)
    sealed = vault.seal(credentials) if credentials is not None and vault is not None else None
    now = utcnow()
    existing = conn.execute(select(*_COLUMNS).where(_where_scope(scope))).first()
    values: dict[str, Any] = {"status": "active", "status_reason": None, "failures": 0, "updated_at": now}
    if sealed is not None:
        values["credentials"] = sealed
    if settings is not None:
        values["settings"] = dict(settings)
    if directions is not None:
        values["directions"] = dict(directions)
    if existing is None:
        conn.execute(
            t.insert().values(
                provider=scope.provider,
                marketplace=scope.marketplace,
                account=scope.account,
                owner_type=owner_type,
                owner_id=owner,
                created_at=now,
                **{"settings": None, "directions": None, "credentials": None, **values},
            )
        )
    else:
        found = ConnectionInfo.from_row(existing)
        if (found.owner_type, found.owner_id) != (owner_type, owner):
            raise ConfigurationError(
                f"{scope} is already connected to {found.owner_type} {found.owner_id!r}; disconnect it there first"
            )
        conn.execute(update(t).where(t.c.id == found.id).values(**values))
    _forget_cache(db)
    result = get(conn, scope)
    assert result is not None
    return result


def get(db: DB, scope: Scope) -> ConnectionInfo | None:
    """The connection of a scope, or None."""
    row = connection_of(db).execute(select(*_COLUMNS).where(_where_scope(scope))).first()
    return None if row is None else ConnectionInfo.from_row(row)


def set_status(db: DB, scope: Scope, status: str, reason: str | None = None) -> bool:
    """Set a connection's status (``active``, ``paused``, ``revoked``) with a reason."""
    if status not in ("active", "paused", "revoked"):
        raise ConfigurationError(f"unknown connection status {status!r}")
    result = connection_of(db).execute(
        update(t).where(_where_scope(scope)).values(status=status, status_reason=redact(reason), updated_at=utcnow())
    )
    _forget_cache(db)
    return bool(result.rowcount)


def disconnect(db: DB, scope: Scope, reason: str = "disconnected") -> bool:
    """Revoke a connection: no more changes are captured for it. True if it existed."""
    return set_status(db, scope, "revoked", reason)


def for_owners(
    db: DB, provider: str, owner_type: str, owner_ids: Iterable[str], *, include_revoked: bool = False
) -> dict[str, list[ConnectionInfo]]:
    """Connections to ``provider`` of many owners, keyed by owner id; one SELECT."""
    ids = list(dict.fromkeys(owner_ids))
    found: dict[str, list[ConnectionInfo]] = {}
    if not ids:
        return found
    stmt = select(*_COLUMNS).where(t.c.provider == provider, t.c.owner_type == owner_type, t.c.owner_id.in_(ids))
    if not include_revoked:
        stmt = stmt.where(t.c.status != "revoked")
    for row in connection_of(db).execute(stmt):
        info = ConnectionInfo.from_row(row)
        found.setdefault(info.owner_id, []).append(info)
    return found


def credentials(db: DB, scope: Scope, vault: Vault | None) -> dict[str, Any]:
    """The decrypted credentials of a scope's connection ({} when none are stored)."""
    token = connection_of(db).execute(select(t.c.credentials).where(_where_scope(scope))).scalar()
    if token is None:
        return {}
    if vault is None:
        raise ConfigurationError(f"the connection of {scope} has stored credentials; configure a Vault to read them")
    return vault.open(token)


def page(db: DB, *, after_id: int | None = None, limit: int = 50) -> list[ConnectionInfo]:
    """One page of connections (without their credentials) in id order, after ``after_id`` (keyset)."""
    stmt = select(*_COLUMNS).order_by(t.c.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(t.c.id > after_id)
    return [ConnectionInfo.from_row(row) for row in connection_of(db).execute(stmt)]
