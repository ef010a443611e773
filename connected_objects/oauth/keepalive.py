"""OAuth grants kept alive: an idle connection's refresh token renewed before it dies.

A refresh token dies unused. Xero's dies 60 days after it was issued ("Unused refresh tokens
expire after 60 days", developer.xero.com/faq/oauth2); Intuit's when the
``x_refresh_token_expires_in`` of its token answer runs out (about 100 days). A company that
changes nothing for months makes no push, so nothing refreshes its tokens, and the first change
after that finds the grant dead (``invalid_grant``): the customer has to connect again.

:func:`keep_alive` prevents that. A worker calls it now and then; when nothing is due it is one
query:

1. one ``SELECT`` finds the connections whose refresh token (``co_connection.refresh_expires_at``,
   stored with every token answer by :mod:`connected_objects.oauth.tokens`) dies within ``within``
   (default :data:`RENEW_WITHIN`, 15 days: an idle Xero organisation is renewed after 45 days, the
   age the reference's target 12 alerts at, an idle QuickBooks company after about 86). A connection
   that holds no refresh token at all (a Xero custom connection, whose access tokens come by client
   credentials: :mod:`connected_objects.oauth.client_credentials`) has nothing to renew and is never due;
2. each active one whose access token lapsed while it sat idle goes through
   :func:`~connected_objects.oauth.tokens.fresh_credentials`, the path pushes take: under the
   connection's row lock, once per grant however many workers and organisations share it; the new
   refresh token is stored with its new expiry. (One whose access token is fresh was refreshed
   lately and its refresh token still dies soon: the provider did not extend it, as Intuit's
   five-year limit does not, and only a reconnect will.) At most ``limit`` token requests a pass;
3. one ``SELECT`` reads what they became: renewed (the refresh token now lives past the window) or not.

A refused refresh token pauses the connection, as it does on a push, and sends
``token-refresh-failed``. A connection that was not renewed is reported with the reason (the token
endpoint failed and the next pass tries again; the provider did not extend the token, so only a
reconnect will; the connection is paused), and when its refresh token dies within ``warn_within``
(default :data:`WARN_WITHIN`, 7 days), or it is paused, the ``connection-expiring`` signal
(:mod:`connected_objects.signals`) tells the application to ask the customer to reconnect. It is sent
on every pass while that lasts, with ``expires_at``: tell the customer once per expiry. Revoked
connections are left alone (they were disconnected), and so are paused ones whose token is dead
already (``connected-objects health`` lists both).

Example: a provider whose refresh tokens live 60 days unused, like Xero's; a company idle for 50 days
is renewed, with no push::

    >>> import asyncio, datetime as dt, httpx
    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from sqlalchemy.pool import StaticPool
    >>> from connected_objects import Hub, Scope, Vault, connections
    >>> from connected_objects.oauth import tokens as oauth
    >>> from connected_objects.oauth.keepalive import keep_alive
    >>> from connected_objects.plugin import API_VERSION, Limits, OAuth2, OAuth2Provider
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.testing.oauth import FakeAuthorizationServer
    >>> class Books(OAuth2Provider):
    ...     name, api_version, entities = "books", API_VERSION, frozenset({"invoices"})
    ...     oauth = OAuth2("http://id/authorize", "http://id/token", "http://id/revoke", "app", "s3cret",
    ...                    refresh_lifetime=dt.timedelta(days=60))
    ...     def limits(self, scope):
    ...         return Limits()
    ...     def client(self, scope, http, credentials):
    ...         raise NotImplementedError
    >>> now = [dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)]
    >>> identity = FakeAuthorizationServer("app", "s3cret", clock=lambda: now[0], refresh_expires_in=60 * 86400)
    >>> engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    >>> metadata.create_all(engine)
    >>> hub = Hub(sessionmaker(engine), models=[], vault=Vault([Vault.generate_key()]), providers=[Books()],
    ...           clock=lambda: now[0])
    >>> scope, first = Scope("books", "production", "company-1"), identity.issue()
    >>> with hub.session_factory.begin() as s:
    ...     _ = connections.connect(s, "organization", 1, scope, credentials=first, vault=hub.vault)
    ...     oauth.store(s, scope, first, now[0] + dt.timedelta(minutes=30), hub.vault,
    ...                 refresh_expires_at=now[0] + dt.timedelta(days=60))
    >>> async def chore():
    ...     async with httpx.AsyncClient(transport=httpx.ASGITransport(identity.app)) as http:
    ...         return await keep_alive(hub, http=http)
    >>> now[0] += dt.timedelta(days=30)
    >>> asyncio.run(chore()).due  # nothing due: one query, no request
    ()
    >>> now[0] += dt.timedelta(days=20)
    >>> report = asyncio.run(chore())
    >>> report.renewed == (scope,), identity.refreshes
    (True, 1)
    >>> with hub.session_factory() as s:
    ...     connections.get(s, scope).refresh_expires_at - now[0]
    datetime.timedelta(days=60)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select

from .. import signals
from ..exceptions import AuthorizationLost
from ..exceptions import ConnectedObjectsError
from ..exceptions import RemoteError
from ..scope import Scope
from ..store.models import connection as t
from ..util.redaction import redact
from . import tokens

if TYPE_CHECKING:
    import httpx

    from ..context import SyncContext

__all__ = ["RENEW_WITHIN", "WARN_WITHIN", "KeepAliveReport", "keep_alive"]

log = logging.getLogger("connected_objects.oauth.keepalive")

#: Renew a refresh token that dies within this long: an idle Xero organisation (60 days) after 45 days,
#: when the reference's target 12 alerts ("older than 45 days unused"), an idle QuickBooks company after
#: about 86 of its 101; two weeks of passes to get through an outage of the token endpoint.
RENEW_WITHIN = dt.timedelta(days=15)
#: Send ``connection-expiring`` for a connection not renewed whose refresh token dies within this long.
WARN_WITHIN = dt.timedelta(days=7)


@dataclass(frozen=True)
class KeepAliveReport:
    """What one :func:`keep_alive` pass did.

    :param due: the connections whose refresh token dies within the window, most urgent first.
    :param renewed: those whose refresh token now lives past it.
    :param failed: those not renewed, with why (redacted): refused (the connection is now paused), the
        token endpoint failed (the next pass tries again), not extended by the provider (only a
        reconnect renews it), or paused.
    :param expiring: those ``connection-expiring`` was sent for, with when their refresh token dies.
    :param waiting: those left for the next pass (more were due than ``limit`` refreshes a pass).
    """

    due: tuple[Scope, ...] = ()
    renewed: tuple[Scope, ...] = ()
    failed: Mapping[Scope, str] = field(default_factory=dict)
    expiring: Mapping[Scope, dt.datetime] = field(default_factory=dict)
    waiting: tuple[Scope, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (scopes as ``provider/marketplace/account``)."""
        return {
            "due": [str(s) for s in self.due],
            "renewed": [str(s) for s in self.renewed],
            "failed": {str(s): reason for s, reason in self.failed.items()},
            "expiring": {str(s): when.isoformat() for s, when in self.expiring.items()},
            "waiting": [str(s) for s in self.waiting],
        }


@dataclass(frozen=True)
class _Due:
    scope: Scope
    status: str
    reason: str | None
    expires_at: dt.datetime
    #: when its access token expires: a refresh renews only a connection whose access token is stale
    token_expires_at: dt.datetime | None
    #: the connections of one grant (one owner's Xero organisations) share both expiries
    grant: tuple[Any, ...]


async def keep_alive(
    hub: SyncContext,
    *,
    http: httpx.AsyncClient,
    now: dt.datetime | None = None,
    within: dt.timedelta = RENEW_WITHIN,
    warn_within: dt.timedelta = WARN_WITHIN,
    providers: Collection[str] | None = None,
    limit: int = 100,
) -> KeepAliveReport:
    """Renew the refresh tokens that die within ``within``; warn about those that could not be.

    :param http: the client token requests go through (a worker's shared client).
    :param now: the time to judge by (default ``hub.clock()``); the refreshes themselves date the new
        tokens by ``hub.clock()``.
    :param within: renew refresh tokens that die within this long (default :data:`RENEW_WITHIN`).
    :param warn_within: send ``connection-expiring`` for one not renewed that dies within this long, or
        that is paused (default :data:`WARN_WITHIN`).
    :param providers: only these providers' connections (default: all).
    :param limit: at most this many token requests a pass (one per grant), the most urgent first; the
        next pass takes the rest (:attr:`KeepAliveReport.waiting`), so a pass stays short.
    :returns: the :class:`KeepAliveReport`; nothing due costs one query and no request.
    """
    if warn_within > within:
        raise ValueError(f"keep_alive(warn_within={warn_within}) must not be longer than within={within}")
    if limit < 1:
        raise ValueError(f"keep_alive(limit={limit}) must be at least 1 token request a pass")
    now = now or hub.clock()
    due = await asyncio.to_thread(_due, hub, now, now + within, providers)
    if not due:
        return KeepAliveReport()
    # an active connection idle since its last refresh has a stale access token: a refresh renews it. One
    # whose access token is fresh was refreshed lately, and its refresh token still dies soon: the provider
    # did not extend it (Intuit's five-year limit), and refreshing again would not either.
    stale = [d for d in due if d.status == "active" and tokens.needs_refresh(d.token_expires_at, hub.clock())]
    grants: dict[tuple[Any, ...], list[_Due]] = {}  # the organisations of one grant: one request renews all
    for d in stale:
        grants.setdefault(d.grant, []).append(d)
    tried = [d for group in list(grants.values())[:limit] for d in group]
    waiting = {d.scope for group in list(grants.values())[limit:] for d in group}
    failed: dict[Scope, str] = {}
    for item in tried:  # one at a time: each holds its connection's row lock across the token request
        reason = await _renew(hub, item, http)
        if reason is not None:
            failed[item.scope] = redact(reason)
    after = await asyncio.to_thread(_states, hub, [item.scope for item in tried]) if tried else {}
    renewed: list[Scope] = []
    expiring: dict[Scope, dt.datetime] = {}
    for item in due:
        if item.scope in waiting:
            continue
        status, expires_at = after.get(item.scope, (item.status, item.expires_at))
        unknown = item.expires_at is None and expires_at is None  # refreshed, the provider states no expiry
        fresh = expires_at is not None and expires_at > now + within
        if item.scope not in failed and status == "active" and (fresh or (unknown and item.scope in after)):
            renewed.append(item.scope)  # by this pass, or by the refresh of a grant it shares
            continue
        if item.scope not in failed:
            failed[item.scope] = (
                f"the connection is {status}: {item.reason or 'no reason given'}"
                if status != "active"
                else f"{item.scope.provider} did not extend the refresh token (it dies {_when(expires_at, now)}): "
                "only a reconnect renews it"
            )
        if expires_at is not None and (status == "paused" or expires_at <= now + warn_within):
            expiring[item.scope] = expires_at
    left = tuple(d.scope for d in due if d.scope in waiting)
    report = KeepAliveReport(tuple(d.scope for d in due), tuple(renewed), failed, expiring, left)
    log.info("keep-alive: %d due, %d renewed, %d not, %d left for the next pass", len(due), len(renewed), len(failed),
             len(waiting))  # fmt: skip
    attempted = {item.scope for item in tried}
    for scope, reason in failed.items():  # a request that failed is news; a paused connection is not
        log.log(logging.WARNING if scope in attempted else logging.INFO, "keep-alive did not renew %s: %s", scope,
                reason)  # fmt: skip
    for scope, when in expiring.items():
        signals.connection_expiring.send(scope.provider, scope=scope, expires_at=when, reason=failed[scope])
    return report


async def _renew(hub: SyncContext, item: _Due, http: httpx.AsyncClient) -> str | None:
    """Refresh one due connection the way a push would; None when that went through, else why not."""
    try:
        if hub.extras(item.scope.provider).refresh_token is None:
            return f"{item.scope.provider} does not refresh tokens"
        await tokens.fresh_credentials(hub, item.scope, http)
    except AuthorizationLost as exc:  # refused: paused now, token-refresh-failed sent
        return exc.message
    except RemoteError as exc:  # the token endpoint failed: the next pass tries again
        return f"refreshing failed, to be tried again: {exc.message}"
    except ConnectedObjectsError as exc:  # the provider is not configured here, or no vault
        return exc.message
    return None


def _due(hub: SyncContext, now: dt.datetime, horizon: dt.datetime, providers: Collection[str] | None) -> list[_Due]:
    """The one query: connections whose refresh token dies by ``horizon``, not revoked, and (when paused)
    still alive, most urgent first."""
    stmt = (
        select(
            t.c.provider,
            t.c.marketplace,
            t.c.account,
            t.c.status,
            t.c.status_reason,
            t.c.refresh_expires_at,
            t.c.token_expires_at,
            t.c.owner_type,
            t.c.owner_id,
            t.c.credentials,
        )
        .where(
            or_(
                and_(
                    t.c.refresh_expires_at.is_not(None),
                    t.c.refresh_expires_at <= horizon,
                    t.c.status != "revoked",
                    or_(t.c.status == "active", t.c.refresh_expires_at > now),
                ),
                # its refresh token's expiry is not known (connected before it was kept, or with credentials
                # handed to connect()): renewed once idle for as long as `within`, which stores it
                and_(
                    t.c.refresh_expires_at.is_(None),
                    t.c.status == "active",
                    t.c.token_expires_at.is_not(None),
                    t.c.token_expires_at <= now - (horizon - now),
                ),
            )
        )
        .order_by(t.c.refresh_expires_at, t.c.id)
    )
    if providers is not None:
        stmt = stmt.where(t.c.provider.in_(sorted(providers)))
    with hub.session_factory() as session:
        rows = hub.connection(session).execute(stmt).all()
    return [
        _Due(
            Scope(r.provider, r.marketplace, r.account),
            r.status,
            r.status_reason,
            r.refresh_expires_at,
            r.token_expires_at,
            (r.provider, r.marketplace, r.owner_type, r.owner_id, r.refresh_expires_at, r.token_expires_at),
        )
        for r in rows
        if r.refresh_expires_at is not None or _has_refresh_token(hub, r.credentials)
    ]


def _has_refresh_token(hub: SyncContext, sealed: Any) -> bool:
    """Whether a connection whose refresh token's expiry is not known holds one at all: one without (a Xero
    custom connection, renewed by client credentials; credentials handed to ``connect()`` without one) has
    nothing to keep alive. Credentials the hub cannot open are kept in: the renewal says why it failed."""
    if sealed is None:
        return False
    if hub.vault is None:
        return True
    try:
        return bool(hub.vault.open(sealed).get("refresh_token"))
    except ConnectedObjectsError:
        return True


def _states(hub: SyncContext, scopes: Sequence[Scope]) -> dict[Scope, tuple[str, dt.datetime | None]]:
    """Each scope's status and refresh expiry now, in one query."""
    keys = {(s.provider, s.marketplace, s.account) for s in scopes}
    stmt = select(t.c.provider, t.c.marketplace, t.c.account, t.c.status, t.c.refresh_expires_at).where(
        t.c.account.in_(sorted({s.account for s in scopes}))
    )
    with hub.session_factory() as session:
        rows = hub.connection(session).execute(stmt).all()
    return {
        Scope(r.provider, r.marketplace, r.account): (r.status, r.refresh_expires_at)
        for r in rows
        if (r.provider, r.marketplace, r.account) in keys
    }


def _when(expires_at: dt.datetime | None, now: dt.datetime) -> str:
    if expires_at is None:
        return "at a time no longer known"
    days = (expires_at - now).total_seconds() / 86400
    return f"in {days:.1f} days" if days >= 0 else f"{-days:.1f} days ago, already"
