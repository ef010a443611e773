"""OAuth 2.0 access tokens kept fresh: refreshed before they expire, once, whatever the number of workers.

Providers such as QuickBooks Online and Xero hand out short-lived access
tokens (30 minutes to an hour) and a refresh token that is often **rotated**:
each refresh returns a new refresh token and the old one stops working. Two
workers refreshing the same connection at once would therefore lock the
account out. Here a refresh happens under the connection's row lock:

1. read the connection's ``token_expires_at`` (no lock); fresh enough → use
   the stored credentials;
2. otherwise take the row lock (an ``UPDATE`` of the row, which serialises
   writers on SQLite, PostgreSQL and MariaDB alike), read the credentials
   again — another worker may have refreshed while we waited — and only if
   they are still stale call the provider's token endpoint;
3. store the new credentials, sealed by the hub's vault, with their expiry,
   and commit, which releases the lock.

Every decision reads the hub's clock (``Hub(clock=...)``): whether a token
needs refreshing, and when the new tokens expire. The provider answers
lifetimes (:class:`~connected_objects.plugin.provider.TokenAnswer`), which
are dated here by that clock: the access token's, and the refresh token's
as the provider states it (QuickBooks' ``x_refresh_token_expires_in``; Xero's
documented 60 days), kept in ``co_connection.refresh_expires_at`` so that
:mod:`connected_objects.oauth.keepalive` renews an idle connection's refresh
token before it dies.

A refresh token the provider refuses (revoked, expired: OAuth's
``invalid_grant``) pauses the connection with the reason, so workers stop
calling the provider for it (its changes wait, nothing is lost) until the
application reconnects it with :func:`connected_objects.connections.connect`.

A provider opts in by having a ``refresh_token`` method (:class:`Refresher`).

Example: a token that is still fresh is used as stored, without a call::

    >>> import asyncio, datetime as dt
    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects import Hub, Scope, Vault, connections
    >>> from connected_objects.oauth import tokens as oauth
    >>> from connected_objects.store.models import metadata
    >>> from sqlalchemy.pool import StaticPool
    >>> engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    >>> metadata.create_all(engine)
    >>> vault = Vault([Vault.generate_key()])
    >>> hub = Hub(sessionmaker(engine), models=[], vault=vault)
    >>> scope = Scope("xero", "production", "tenant-1")
    >>> later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    >>> with hub.session_factory.begin() as s:
    ...     _ = connections.connect(s, "organization", 1, scope, vault=vault,
    ...                             credentials={"access_token": "a1", "refresh_token": "r1"})
    ...     oauth.store(s, scope, {"access_token": "a1", "refresh_token": "r1"}, later, vault)
    >>> asyncio.run(oauth.fresh_credentials(hub, scope, http=None))["access_token"]
    'a1'
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import select
from sqlalchemy import update

from .. import connections
from .. import signals
from ..exceptions import AuthorizationLost
from ..exceptions import ConfigurationError
from ..exceptions import PermanentError
from ..exceptions import RemoteError
from ..ops.tracing import span
from ..plugin.provider import TokenAnswer
from ..plugin.provider import TokenRefresher
from ..plugin.provider import extras_of
from ..scope import Scope
from ..store.models import connection as t
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of

if TYPE_CHECKING:
    import httpx

    from ..context import SyncContext
    from ..util.secrets import Vault

__all__ = [
    "AuthorizationLost",
    "Refresher",
    "dated",
    "expire",
    "fresh_credentials",
    "needs_refresh",
    "store",
]

#: Refresh this long before the access token expires.
MARGIN = dt.timedelta(minutes=5)


#: The Protocol of a provider whose connections hold OAuth 2.0 tokens
#: (declared in :mod:`connected_objects.plugin.provider`).
Refresher = TokenRefresher


def dated(
    answer: TokenAnswer | tuple[dict[str, Any], dt.datetime], now: dt.datetime
) -> tuple[dict[str, Any], dt.datetime, dt.datetime | None]:
    """A token endpoint's answer, received at ``now``: the credentials, when the access token
    expires, and when the refresh token dies (None: nobody said). An answer in the form before
    0.7, ``(credentials, expires_at)``, is already dated and says nothing of the refresh token.

    >>> import datetime as dt
    >>> from connected_objects.plugin import TokenAnswer
    >>> now = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    >>> _, access, refresh = dated(TokenAnswer({"access_token": "a"}, 1800, 60 * 86400), now)
    >>> access.isoformat(), refresh.isoformat()
    ('2026-12-01T00:30:00+00:00', '2027-01-30T00:00:00+00:00')
    """
    if isinstance(answer, TokenAnswer):
        return dict(answer.credentials), answer.expires_at(now), answer.refresh_expires_at(now)
    credentials, expires_at = answer
    return dict(credentials), expires_at, None


def store(
    db: DB,
    scope: Scope,
    credentials: Mapping[str, Any],
    expires_at: dt.datetime,
    vault: Vault | None,
    *,
    refresh_expires_at: dt.datetime | None = None,
) -> None:
    """Store refreshed credentials, sealed, with the access token's expiry and the refresh token's
    (``refresh_expires_at``; None: not known). The caller commits.

    Credentials carrying a ``grant`` id (one consent covering several accounts: the Xero
    organisations a user picked at once, :mod:`connected_objects.oauth.flow`) share their tokens: the
    other connections of the same owner and grant get the new tokens too, and both expiries, since the
    old refresh token stops working once rotated.
    """
    if vault is None:
        raise ConfigurationError("OAuth credentials are stored encrypted: give the Hub a vault=Vault(...)")
    conn = connection_of(db)
    where = (t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, t.c.account == scope.account)
    expiries = {"token_expires_at": expires_at, "refresh_expires_at": refresh_expires_at}
    conn.execute(
        update(t).where(*where).values(credentials=vault.seal(dict(credentials)), **expiries, updated_at=utcnow())
    )
    grant = credentials.get("grant")
    if not grant:
        return
    owner = conn.execute(select(t.c.owner_type, t.c.owner_id).where(*where)).first()
    if owner is None:
        return
    siblings = conn.execute(
        select(t.c.id, t.c.credentials).where(
            t.c.provider == scope.provider,
            t.c.marketplace == scope.marketplace,
            t.c.owner_type == owner.owner_type,
            t.c.owner_id == owner.owner_id,
            t.c.account != scope.account,
            t.c.status != "revoked",
            t.c.credentials.is_not(None),
        )
    ).all()
    shared = {k: credentials[k] for k in ("access_token", "refresh_token") if credentials.get(k)}
    for row in siblings:  # the few organisations of one owner, on a refresh: not a hot path
        theirs = vault.open(row.credentials)
        if theirs.get("grant") == grant:
            conn.execute(
                update(t).where(t.c.id == row.id).values(credentials=vault.seal({**theirs, **shared}),
                                                          **expiries, updated_at=utcnow())
            )  # fmt: skip


def expire(db: DB, scope: Scope, now: dt.datetime | None = None) -> None:
    """Mark the scope's access token expired at ``now`` (the provider refused it), so the next use refreshes it."""
    connection_of(db).execute(
        update(t)
        .where(t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, t.c.account == scope.account)
        .values(token_expires_at=now or utcnow(), updated_at=utcnow())
    )


def needs_refresh(expires_at: dt.datetime | None, now: dt.datetime | None = None) -> bool:
    """Whether an access token expiring at ``expires_at`` should be refreshed at ``now`` (default: the wall
    clock; the engines pass their hub's clock)."""
    return expires_at is not None and expires_at - MARGIN <= (now or utcnow())


def _expiry(db: DB, scope: Scope) -> dt.datetime | None:
    row = connection_of(db).execute(
        select(t.c.token_expires_at).where(
            t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, t.c.account == scope.account
        )
    )
    return row.scalar()


async def fresh_credentials(hub: SyncContext, scope: Scope, http: httpx.AsyncClient | None) -> dict[str, Any]:
    """The scope's credentials with an access token valid for at least :data:`MARGIN`.

    :raises AuthorizationLost: the refresh token was refused; the connection is now paused.
    """

    def peek() -> tuple[dict[str, Any], dt.datetime | None, connections.ConnectionInfo | None]:
        with hub.session_factory() as session:
            info = connections.get(session, scope)
            return connections.credentials(session, scope, hub.vault), _expiry(session, scope), info

    creds, expires_at, info = await asyncio.to_thread(peek)
    if not needs_refresh(expires_at, hub.clock()):
        return creds
    if info is not None and info.status != "active":  # never call the token endpoint for a stopped connection
        raise AuthorizationLost(
            f"the connection of {scope} is {info.status}: {info.status_reason or 'no reason given'}"
        )
    refresh = extras_of(hub.provider(scope.provider)).refresh_token
    if refresh is None:
        return creds  # the provider does not refresh; its own errors will tell
    if http is None:
        raise ConfigurationError("refreshing a token needs an HTTP client")
    session = hub.session_factory()
    try:

        def lock() -> tuple[dict[str, Any], dt.datetime | None]:
            conn = hub.connection(session)
            same = t.c.account == scope.account
            if creds.get("grant") and info is not None:  # a shared grant: lock every connection it may cover
                same = (t.c.owner_type == info.owner_type) & (t.c.owner_id == info.owner_id)
            conn.execute(  # the row lock: one refresh per connection (per shared grant) at a time
                update(t)
                .where(t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, same)
                .values(updated_at=utcnow())
            )
            return connections.credentials(conn, scope, hub.vault), _expiry(conn, scope)

        creds, expires_at = await asyncio.to_thread(lock)
        if not needs_refresh(expires_at, hub.clock()):  # another worker refreshed while we waited
            await asyncio.to_thread(session.commit)
            return creds
        try:
            asked = hub.clock()  # the lifetimes answered count from no later than this
            with span("connected_objects.refresh", scope=scope):
                fresh, until, refresh_until = dated(await refresh(scope, http, creds), asked)
        except PermanentError as exc:
            reason = f"authorization lost, reconnect the account: {exc.message}"

            def pause() -> None:
                connections.set_status(session.connection(), scope, "paused", reason)
                session.commit()

            await asyncio.to_thread(pause)
            signals.token_refresh_failed.send(scope.provider, scope=scope, error=reason)
            raise AuthorizationLost(reason, status=exc.status) from None
        except RemoteError as exc:
            await asyncio.to_thread(session.rollback)
            signals.token_refresh_failed.send(scope.provider, scope=scope, error=exc.message)
            raise

        def save() -> None:
            store(session.connection(), scope, fresh, until, hub.vault, refresh_expires_at=refresh_until)
            session.commit()

        await asyncio.to_thread(save)
        signals.token_refreshed.send(scope.provider, scope=scope)
        return fresh
    finally:
        await asyncio.to_thread(session.close)
