"""Connections: a local owner row linked to one scope, with its credentials and switches.

A *connection* says "this organization is customer account X at provider P in
marketplace M". Captured changes of every row owned by the organization go to
each of its active connections; inbound events for the scope land on it.
A scope belongs to one owner at most (``co_connection`` is unique on the scope).

:func:`connect` checks the scope's provider before writing anything: it must
be known (given as ``provider=``, given to the :class:`~connected_objects.Hub`
whose session factory made ``db``, or registered), else
:class:`~connected_objects.exceptions.ProviderNotFound` names the closest
known name; and the credentials must hold every key the provider declares in
``required_credentials`` (QuickBooks and Xero: ``access_token``), else
:class:`~connected_objects.exceptions.ConfigurationError` names the missing keys.

Credentials are sealed with a :class:`~connected_objects.util.secrets.Vault` before
they reach the table. ``directions`` switches entities per direction:
``{"Invoice": "push"}`` (also ``"pull"``, ``"both"``, the default, and ``"off"``).

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope, connections
    >>> from connected_objects.plugin import registry
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.util.secrets import Vault
    >>> from connected_objects.testing import MemoryProvider
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> vault = Vault([Vault.generate_key()])
    >>> registry.register("memory", MemoryProvider)  # or installed, or given to your Hub
    >>> with engine.begin() as db:
    ...     c = connections.connect(db, "organization", 7, Scope("memory", "production", "t-1"),
    ...                             credentials={"refresh_token": "r"}, vault=vault)
    ...     found = connections.for_owners(db, "memory", "organization", [7])
    ...     secret = connections.credentials(db, c.scope, vault)
    >>> c.status, [x.scope.account for x in found["7"]], secret
    ('active', ['t-1'], {'refresh_token': 'r'})

A typo in the provider name is refused before anything is written::

    >>> with engine.begin() as db:
    ...     connections.connect(db, "organization", 8, Scope("memroy", "production", "t-2"))
    Traceback (most recent call last):
    ...
    connected_objects.exceptions.ProviderNotFound: no provider named 'memroy'. Did you mean 'memory'? ...
    >>> registry.deregister("memory")
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

from .exceptions import ConfigurationError
from .exceptions import ProviderNotFound
from .plugin import registry
from .plugin.provider import Provider
from .plugin.provider import required_credentials
from .queue import CHANGES
from .scope import Scope
from .states import ConnectionStatus
from .store.identity import LocalId
from .store.identity import local_key
from .store.models import connection as t
from .store.models import utcnow
from .util.db import DB
from .util.db import connection_of
from .util.redaction import redact
from .util.secrets import Vault

__all__ = [
    "CACHE_KEY",
    "DIRECTIONS",
    "ONBOARDING",
    "PROVIDERS_KEY",
    "ConnectionInfo",
    "catalogs",
    "connect",
    "credentials",
    "disconnect",
    "for_owners",
    "get",
    "page",
    "require",
    "set_onboarding",
    "set_settings",
    "set_status",
    "store_catalog",
]

DIRECTIONS = ("both", "push", "pull", "off")
#: ``Session.info`` key under which capture caches connections for one transaction.
CACHE_KEY = "connected_objects.connections"
#: ``Session.info`` key under which a :class:`~connected_objects.Hub` leaves its providers (name → provider)
#: on the sessions of its factory, so :func:`connect` knows providers given to the hub alone.
PROVIDERS_KEY = "connected_objects.providers"


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
    #: When the grant's refresh token dies as the provider stated it (None: not known); the worker's
    #: keep-alive renews it before (:mod:`connected_objects.oauth.keepalive`).
    refresh_expires_at: dt.datetime | None = None
    #: Where onboarding a company with existing books stands (:data:`ONBOARDING`); None: never onboarded.
    onboarding: str | None = None

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
            refresh_expires_at=m.get("refresh_expires_at"),
            onboarding=m.get("onboarding"),
        )


#: Every column but the sealed credentials and the catalogs cache (read on their own: :func:`catalogs`).
_COLUMNS = [c for c in t.c if c.name not in ("credentials", "catalogs")]


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
    provider: Provider | None = None,
) -> ConnectionInfo:
    """Connect an owner to a scope, or refresh and re-activate its existing connection.

    :param provider: the scope's provider, when neither the registry nor the
        hub that made ``db`` knows it (by default it is looked up there).
    :raises ProviderNotFound: no provider of that name is known (the message
        names the closest one).
    :raises ConfigurationError: the scope is connected to another owner, a
        direction is unknown, credentials are given without a vault, or they
        lack a key the provider requires.
    """
    for entity, direction in (directions or {}).items():
        if direction not in DIRECTIONS:
            raise ConfigurationError(f"direction {direction!r} for {entity!r} is not one of {', '.join(DIRECTIONS)}")
    if credentials is not None and vault is None:
        raise ConfigurationError("credentials are stored encrypted: pass vault=Vault(...) to connect()")
    needed = required_credentials(_provider_for(db, scope, provider))
    conn = connection_of(db)
    owner = local_key(owner_id)
    stored = t.c.credentials.is_not(None).label("has_credentials")
    existing = conn.execute(select(*[*_COLUMNS, stored]).where(_where_scope(scope))).first()
    missing = [key for key in needed if (credentials or {}).get(key) in (None, "")]
    if missing and not (credentials is None and existing is not None and existing._mapping["has_credentials"]):
        raise ConfigurationError(
            f"{scope.provider} connections need credentials {', '.join(needed)}; {scope} is missing "
            f"{', '.join(missing)}. Pass them to connect() as credentials=, with vault=, as the provider's "
            "OAuth flow returned them."
        )
    sealed = vault.seal(credentials) if credentials is not None and vault is not None else None
    now = utcnow()
    values: dict[str, Any] = {"status": "active", "status_reason": None, "failures": 0, "updated_at": now}
    if sealed is not None:
        values["credentials"] = sealed
        values["refresh_expires_at"] = None  # new tokens: their refresh token's life is stored with them, if known
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
        if found.status != "active":  # reactivated (reconnected): what waited for it goes now
            CHANGES.resume(conn, scope)
    _forget_cache(db)
    result = get(conn, scope)
    assert result is not None
    return result


def _provider_for(db: DB, scope: Scope, given: Provider | None) -> Provider:
    """The scope's provider: ``given``, else the hub's (through the session's info), else the registry's."""
    if given is not None:
        if given.name != scope.provider:
            raise ConfigurationError(f"provider={given.name!r} was given for a scope of {scope.provider!r}")
        return given
    info = getattr(db, "info", None)
    hub_providers: Mapping[str, Provider] = (info.get(PROVIDERS_KEY) if isinstance(info, dict) else None) or {}
    found = hub_providers.get(scope.provider)
    if found is not None:
        return found
    names = registry.names()
    if scope.provider in names:
        return registry.get(scope.provider)
    raise ProviderNotFound(scope.provider, tuple(sorted({*names, *hub_providers})))


def get(db: DB, scope: Scope) -> ConnectionInfo | None:
    """The connection of a scope, or None."""
    row = connection_of(db).execute(select(*_COLUMNS).where(_where_scope(scope))).first()
    return None if row is None else ConnectionInfo.from_row(row)


def require(db: DB, scope: Scope) -> ConnectionInfo:
    """The connection of a scope. :raises ConfigurationError: there is none (the message says how to make one)."""
    info = get(db, scope)
    if info is None:
        raise ConfigurationError(
            f"{scope} has no connection; connect it first (connections.connect, or the connect flow)"
        )
    return info


#: The onboarding states of a connection, in order: existing records being paired with local rows,
#: local rows with no counterpart being pushed, done; ``attention``: some rows could not be paired and
#: wait for an operator (``connected-objects adopt --scope ... --ambiguous``).
ONBOARDING = ("adopting", "exporting", "attention", "live")


def set_onboarding(db: DB, scope: Scope, state: str) -> bool:
    """Record where onboarding ``scope`` stands (one of :data:`ONBOARDING`); False if it has no connection."""
    if state not in ONBOARDING:
        raise ValueError(f"onboarding state {state!r} is not one of {', '.join(ONBOARDING)}")
    done = connection_of(db).execute(update(t).where(_where_scope(scope)).values(onboarding=state, updated_at=utcnow()))
    _forget_cache(db)
    return bool(done.rowcount)


def set_settings(db: DB, scope: Scope, values: Mapping[str, Any]) -> ConnectionInfo:
    """Merge ``values`` into a connection's settings (a value of None removes that key); check them
    first (:mod:`connected_objects.push.catalogs` does, against the company's catalogs).

    :raises ConfigurationError: the scope has no connection.
    """
    conn = connection_of(db)
    found = get(conn, scope)
    if found is None:
        raise ConfigurationError(f"{scope} has no connection; connect it first")
    merged = {**found.settings, **values}
    merged = {key: value for key, value in merged.items() if value is not None}
    conn.execute(update(t).where(t.c.id == found.id).values(settings=merged or None, updated_at=utcnow()))
    _forget_cache(db)
    result = get(conn, scope)
    assert result is not None
    return result


def catalogs(db: DB, scope: Scope) -> dict[str, Any]:
    """The cached catalogs of a scope's connection: ``{entity: {"loaded_at": ..., "records": [...]}}``."""
    found = connection_of(db).execute(select(t.c.catalogs).where(_where_scope(scope))).scalar()
    return dict(found or {})


def store_catalog(db: DB, scope: Scope, entity: str, records: list[dict[str, Any]]) -> None:
    """Cache ``records`` as the catalog ``entity`` of a scope's connection (replacing what was cached)."""
    conn = connection_of(db)
    cached = catalogs(conn, scope)
    cached[entity] = {"loaded_at": utcnow().isoformat(), "records": records}
    conn.execute(update(t).where(_where_scope(scope)).values(catalogs=cached))


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
