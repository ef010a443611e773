"""The plugin contract: what a provider must be, as typed Protocols and values.

A provider is one kind of remote system (``maestrano``, ``quickbooks``, ``xero``,
or yours). It is published under the entry-point group
``connected_objects.providers``; the entry point's *name* is the provider's
name, stored in every ``co_*`` row, so it must never change::

    [project.entry-points."connected_objects.providers"]
    hubspot = "connected_objects_hubspot:HubSpotProvider"

The value is a class or a zero-argument factory returning an object that
satisfies :class:`Provider`. Its :meth:`Provider.client` makes a
:class:`RemoteClient` for one scope; the engines (dispatch, apply, pull) talk
only to that. Remote failures are raised as the
:class:`~connected_objects.exceptions.RemoteError` branches so the engines can
retry, refetch or give up correctly.

Example: the smallest provider that passes validation::

    >>> from connected_objects.plugin.provider import API_VERSION, Limits, Provider
    >>> class Echo:
    ...     name = "echo"
    ...     api_version = API_VERSION
    ...     entities = frozenset({"notes"})
    ...     def limits(self, scope):
    ...         return Limits(concurrency=2)
    ...     def client(self, scope, http, credentials):
    ...         raise NotImplementedError
    >>> isinstance(Echo(), Provider)
    True

Optional extras, each a Protocol here, detected once by :func:`extras_of`
(``connected-objects providers`` lists them per provider):

- :class:`BatchClient`: a client that sends a scope's writes
  ``Limits.batch_size`` at a time in one call;
- :class:`ReferenceFolder`: ``fold_reference(entity, name, foreign_id)``, how a
  reference appears in an outgoing payload (QBO ``{"value": id}``);
- :class:`EventDecoder`: ``decode_event(entity, payload)``, a stored webhook
  event as a record or as the id of a record to fetch;
- :class:`WebhookProvider`: ``routes(context)``, inbound HTTP routes, given a
  :class:`ProviderContext` (the session factory and what is synced);
- :class:`TokenRefresher`: ``refresh_token(scope, http, credentials)``, for
  OAuth 2.0 connections the core refreshes before they expire; it answers a
  :class:`TokenAnswer` (the credentials, and how long the access and refresh
  tokens live as the provider states it), which the core dates by its clock;
- :class:`CredentialsDeclarer`: ``required_credentials``, the keys a
  connection's credentials must hold; :func:`~connected_objects.connections.connect`
  refuses a connection without them, naming the missing keys
  (:func:`required_credentials` reads it, ``()`` when not declared).
- :class:`AccountConnector`: ``authorization()``, ``exchange_code(...)``,
  ``granted_accounts(...)`` and ``revoke(...)``, for providers whose users
  connect an account through the OAuth 2.0 authorization-code flow
  (:mod:`connected_objects.oauth.flow`).
- :class:`PassthroughProvider`: ``passthrough(scope, credentials)``, where and
  how a raw call to any endpoint of one scope goes (a :class:`PassthroughTarget`:
  its base URL, headers, auth and error reading), for ``Hub.remote(scope)``
  (:mod:`connected_objects.remote`).

- :class:`ActionClient`: a client with ``perform(entity, foreign_id, action, options,
  idempotency_key=...)``, which does one of the ``actions`` its catalog declares for the
  entity (an invoice's ``send``) to a record, under a key the provider replays.

A provider may also declare its entities as data, an
:class:`~connected_objects.plugin.entities.EntityCatalog` in ``entity_catalog``
(:class:`EntityDeclarations`; read with
:func:`~connected_objects.plugin.entities.catalog_of`): its client, its fake and the
conformance suite read it, and ``entities`` is then ``entity_catalog.names``.

    >>> from connected_objects.plugin.provider import extras_of, required_credentials
    >>> class Folding(Echo):
    ...     def fold_reference(self, entity, name, foreign_id):
    ...         return {"value": foreign_id}
    >>> extras_of(Folding()).names, extras_of(Echo()).names
    (('fold_reference',), ())
    >>> class Tokens(Echo):
    ...     required_credentials = ("access_token",)
    >>> required_credentials(Tokens()), required_credentials(Echo())
    (('access_token',), ())

This module does no I/O and imports no provider.
"""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import Final
from typing import Protocol
from typing import runtime_checkable

from ..scope import Scope
from ..states import WriteAction

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.orm import Session
    from sqlalchemy.orm import sessionmaker

    from ..declare import SyncSpec
    from ..exceptions import RemoteError
    from ..store.identity import LocalId
    from ..web.core import Route
    from .entities import EntityCatalog

__all__ = [
    "API_VERSION",
    "AccountConnector",
    "ActionClient",
    "Authorization",
    "BatchClient",
    "BatchOperation",
    "CredentialsDeclarer",
    "EntityDeclarations",
    "EventDecoder",
    "Extras",
    "GrantedAccount",
    "Limits",
    "Page",
    "Passthrough",
    "PassthroughProvider",
    "PassthroughTarget",
    "Provider",
    "ProviderContext",
    "ReferenceFolder",
    "RemoteClient",
    "RemoteRecord",
    "TokenAnswer",
    "TokenRefresher",
    "WebhookProvider",
    "extras_of",
    "required_credentials",
]

#: The contract version this core implements; a provider must declare the same.
API_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class RemoteRecord:
    """One record as the provider returned it."""

    entity: str
    foreign_id: str
    data: Mapping[str, Any] = field(default_factory=dict)
    #: The provider's concurrency token: QBO SyncToken, Xero UpdatedDateUTC, Connec! updated_at.
    version: str | None = None
    updated_at: datetime | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a change feed and the cursor to continue from."""

    records: Sequence[RemoteRecord]
    cursor: Any
    more: bool


@dataclass(frozen=True, slots=True)
class Limits:
    """What a provider allows per account; the dispatcher keeps under it.

    :param concurrency: requests in flight at once per account.
    :param per_minute: requests per minute per account (None: unlimited).
    :param batch_size: operations per batch call, where the provider has one (1: no batching).
    :param batches_per_minute: batch calls per minute per account, where the provider caps them
        apart (QuickBooks Online: 40).
    :param app_per_minute: requests per minute across every account of the provider, where the
        provider caps the whole app (Xero: 10,000); kept fleet-wide by a shared limits store.
    :param per_day: requests per UTC day per account, where the provider caps the day (Xero:
        5,000). Once spent, the account is held until the day ends (``status`` shows it).
    :param batch_counts_each: whether each operation of a batch call counts toward ``per_minute``
        and ``per_day`` (QuickBooks Online counts every item; Xero counts a call of 50 elements
        as one call: False).
    """

    concurrency: int = 4
    per_minute: float | None = None
    batch_size: int = 1
    batches_per_minute: float | None = None
    app_per_minute: float | None = None
    per_day: int | None = None
    batch_counts_each: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.batch_size < 1:
            raise ValueError("Limits.concurrency and Limits.batch_size must be at least 1")
        if self.per_minute is not None and self.per_minute <= 0:
            raise ValueError("Limits.per_minute must be positive or None")
        if self.batches_per_minute is not None and self.batches_per_minute <= 0:
            raise ValueError("Limits.batches_per_minute must be positive or None")
        if self.app_per_minute is not None and self.app_per_minute <= 0:
            raise ValueError("Limits.app_per_minute must be positive or None")
        if self.per_day is not None and self.per_day <= 0:
            raise ValueError("Limits.per_day must be positive or None")


@dataclass(frozen=True, slots=True)
class BatchOperation:
    """One write in a batch call: what :meth:`RemoteClient.create`, ``update`` or ``delete`` would send."""

    action: WriteAction
    entity: str
    idempotency_key: str
    payload: Mapping[str, Any] | None = None
    foreign_id: str | None = None
    version: str | None = None
    #: Its place in its batch call (a QBO ``bId``): the same on a repeat of the call (None: its position).
    slot: int | None = None


class RemoteClient(Protocol):
    """Calls to one scope's API. Every write carries a deterministic idempotency key."""

    async def create(self, entity: str, payload: Mapping[str, Any], *, idempotency_key: str) -> RemoteRecord: ...

    async def update(
        self,
        entity: str,
        foreign_id: str,
        payload: Mapping[str, Any],
        *,
        version: str | None,
        idempotency_key: str,
    ) -> RemoteRecord: ...

    async def delete(self, entity: str, foreign_id: str, *, version: str | None, idempotency_key: str) -> None: ...

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]: ...

    async def changes(self, entity: str, cursor: Any) -> Page: ...


@runtime_checkable
class BatchClient(RemoteClient, Protocol):
    """A :class:`RemoteClient` that can also send several writes in one call.

    The dispatcher uses it when the provider's :class:`Limits` allow a
    ``batch_size`` above 1. :meth:`batch` answers one result per operation, in
    order: the record for a create or update, ``None`` for a delete, or the
    :class:`~connected_objects.exceptions.RemoteError` that operation met. A
    failure of the whole call is raised.

    ``key`` is the call's idempotency key. A call whose answer was lost is sent
    again with the same key and the operations at the same ``slot`` (maybe only
    some of them, with others in the next claim), so a provider that keys
    whole calls (QuickBooks' ``requestid``) must send it as the call's key and
    each operation's slot as its place in the call, and answer an operation
    its replayed answer does not hold with
    :class:`~connected_objects.exceptions.NotApplied`. A provider that keys
    each operation (Connec!'s external ids) may ignore ``key``.

    A client whose API cannot mix every write in one call (Xero: one entity
    and one method a call) also has ``batch_group(action, entity)``: the
    group a write may share a call with, or None for a write sent alone. The
    dispatcher fills each call from one group only; without it, any writes
    share a call.
    """

    async def batch(
        self, operations: Sequence[BatchOperation], *, key: str
    ) -> Sequence[RemoteRecord | RemoteError | None]: ...


@runtime_checkable
class ActionClient(Protocol):
    """A :class:`RemoteClient` that can also act on a record: send an invoice by email, and so on.

    The actions an entity has are declared in the provider's catalog
    (:attr:`~connected_objects.plugin.entities.EntitySpec.actions`). The dispatcher calls
    :meth:`perform` once the record exists remotely, with the options the application gave
    (:func:`connected_objects.push.actions.request_action`) and an idempotency key recorded before
    the call leaves: a call whose answer was lost is repeated with the same key, so the provider
    must send it as its own idempotency key (QuickBooks ``requestid``, Xero ``Idempotency-Key``)
    and answer a repeat as the first call, without acting twice. It answers the record as the
    provider returns it, or None when the provider answers nothing; a refusal is raised as a
    :class:`~connected_objects.exceptions.PermanentError` with the provider's message.
    """

    async def perform(
        self, entity: str, foreign_id: str, action: str, options: Mapping[str, Any], *, idempotency_key: str
    ) -> RemoteRecord | None: ...


@runtime_checkable
class Provider(Protocol):
    """A kind of remote system whose records can be connected to local rows."""

    @property
    def name(self) -> str:
        """Must equal the entry-point name."""
        ...

    @property
    def api_version(self) -> int:
        """Must equal :data:`API_VERSION`."""
        ...

    @property
    def entities(self) -> Collection[str]:
        """The remote collections this provider can sync."""
        ...

    def limits(self, scope: Scope) -> Limits:
        """The rate and concurrency limits for one account."""
        ...

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> RemoteClient:
        """A client for one scope, sending through the shared ``http`` client."""
        ...


@runtime_checkable
class ReferenceFolder(Protocol):
    """A provider that writes references its own way in outgoing payloads."""

    def fold_reference(self, entity: str, name: str, foreign_id: str) -> Any:
        """The value that stands for ``foreign_id`` under ``name`` in an ``entity`` payload."""
        ...


@runtime_checkable
class EventDecoder(Protocol):
    """A provider whose webhook events are stored raw and decoded when a worker applies them."""

    def decode_event(self, entity: str, payload: bytes) -> RemoteRecord | str:
        """A stored event's record, or the foreign id of the record to fetch."""
        ...


@runtime_checkable
class ProviderContext(Protocol):
    """What a provider's routes may use of the application (a :class:`~connected_objects.Hub` is one)."""

    @property
    def session_factory(self) -> sessionmaker[Session]:
        """Sessions on the application's database (the inbox and identity map live there)."""
        ...

    def spec_for(self, provider: str, entity: str) -> SyncSpec | None:
        """The model synced with ``provider``'s ``entity``, or None."""
        ...

    def connection_status(self, session: Session, scope: Scope) -> str | None:
        """The status of ``scope``'s connection (``active``, ``paused``, ``revoked``), or None: not connected."""
        ...

    def connect_scope(self, session: Session, owner_type: str, owner_id: LocalId, scope: Scope) -> None:
        """Connect ``scope`` to an owner row (a route's own sign-up: no credentials, the provider holds them)."""
        ...

    def disconnect_scope(self, session: Session, scope: Scope, reason: str) -> bool:
        """Revoke ``scope``'s connection with a reason; True when it had one."""
        ...


@runtime_checkable
class WebhookProvider(Protocol):
    """A provider that receives webhooks (or SSO posts) through the hub's web app."""

    def routes(self, context: ProviderContext) -> Sequence[Route]:
        """Its inbound routes."""
        ...


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    """What a token endpoint answered (a code exchange or a refresh), as the provider states it.

    Lifetimes are durations, as OAuth gives them (``expires_in``), so the core dates them by its own
    clock (``Hub(clock=...)``) and keeps both expiries on the connection.

    :param credentials: what the connection keeps: the access token, the refresh token to use next
        (the one answered, or the one sent when the server does not rotate it), and anything else.
    :param expires_in: seconds the access token lives (RFC 6749 §5.1 ``expires_in``).
    :param refresh_expires_in: seconds the refresh token lives, as the provider states it in the
        answer (Intuit's ``x_refresh_token_expires_in``) or documents it (Xero: 60 days unused);
        None when nobody says.

    >>> import datetime as dt
    >>> answer = TokenAnswer({"access_token": "a2"}, expires_in=3600, refresh_expires_in=8726400)
    >>> now = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    >>> answer.expires_at(now).isoformat(), answer.refresh_expires_at(now).isoformat()
    ('2026-12-01T01:00:00+00:00', '2027-03-12T00:00:00+00:00')
    >>> "a2" in repr(answer)
    False
    """

    credentials: dict[str, Any] = field(repr=False)
    expires_in: float
    refresh_expires_in: float | None = None

    def expires_at(self, now: datetime) -> datetime:
        """When the access token expires, for an answer received at ``now``."""
        return now + timedelta(seconds=self.expires_in)

    def refresh_expires_at(self, now: datetime) -> datetime | None:
        """When the refresh token dies, for an answer received at ``now`` (None: not stated)."""
        return None if self.refresh_expires_in is None else now + timedelta(seconds=self.refresh_expires_in)


@runtime_checkable
class TokenRefresher(Protocol):
    """A provider whose connections hold OAuth 2.0 tokens, refreshed by the core before they expire."""

    async def refresh_token(
        self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]
    ) -> TokenAnswer | tuple[dict[str, Any], datetime]:
        """New credentials (access token, the refresh token to keep) and how long they live: a
        :class:`TokenAnswer` (or, as before 0.7, ``(credentials, when the access token expires)``,
        which leaves the refresh token's expiry unknown).

        Raise :class:`~connected_objects.exceptions.PermanentError` when the refresh
        token is refused (``invalid_grant``), a
        :class:`~connected_objects.exceptions.RetryableError` when the token endpoint is down.
        """
        ...


@runtime_checkable
class CredentialsDeclarer(Protocol):
    """A provider that says which credential keys every connection needs (checked at ``connect``)."""

    @property
    def required_credentials(self) -> Collection[str]:
        """Keys that ``connections.connect(..., credentials=...)`` must be given, non-empty."""
        ...


def required_credentials(provider: object) -> tuple[str, ...]:
    """The credential keys ``provider`` declares as required, sorted; ``()`` when it declares none."""
    if not isinstance(provider, CredentialsDeclarer):
        return ()
    declared = provider.required_credentials
    return (declared,) if isinstance(declared, str) else tuple(sorted(declared))


@dataclass(frozen=True, slots=True)
class Authorization:
    """Where and how a provider's users grant access (RFC 6749 §4.1.1).

    :param authorize_url: the provider's authorization endpoint.
    :param client_id: the application's OAuth 2.0 client id.
    :param scopes: the scopes asked for, sent space-separated.
    :param pkce: whether the provider takes PKCE (RFC 7636, ``S256``).
    :param params: further query parameters of the authorization request.
    """

    authorize_url: str
    client_id: str
    scopes: Sequence[str]
    pkce: bool = False
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GrantedAccount:
    """One account a grant gives access to: a QuickBooks company, a Xero organisation.

    :param scope: where its connection lives.
    :param name: what the user knows it by (shown when they pick).
    :param credentials: kept with the tokens, sealed (Xero: the connection id to remove on disconnect).
    """

    scope: Scope
    name: str | None = None
    credentials: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class AccountConnector(Protocol):
    """A provider whose users connect an account through the OAuth 2.0 authorization-code flow."""

    def authorization(self) -> Authorization:
        """The authorization endpoint, client id, scopes and whether PKCE is taken."""
        ...

    async def exchange_code(
        self, http: httpx.AsyncClient, code: str, redirect_uri: str, code_verifier: str | None
    ) -> TokenAnswer | tuple[dict[str, Any], datetime]:
        """The tokens an authorization code is worth, and how long they live (:class:`TokenAnswer`; or,
        as before 0.7, ``(tokens, when the access token expires)``).

        Raise :class:`~connected_objects.exceptions.PermanentError` when the code is refused.
        """
        ...

    async def granted_accounts(
        self, http: httpx.AsyncClient, credentials: Mapping[str, Any], callback: Mapping[str, str]
    ) -> Sequence[GrantedAccount]:
        """The accounts the grant covers, **as the provider answers them for these credentials**.

        ``callback`` is the redirect's query string (QuickBooks' ``realmId``): the browser's word,
        which anyone can edit. It may say which account to ask about, never which account is
        granted: confirm every account with the provider using the new access token (Xero: its
        ``GET /connections``; QuickBooks: reading that realm's ``CompanyInfo``) and raise
        :class:`~connected_objects.exceptions.PermanentError` when the provider refuses, so that
        nothing is stored.
        """
        ...

    async def revoke(
        self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any], *, whole_grant: bool
    ) -> None:
        """Undo the connection at the provider (the user disconnected); ``whole_grant``: no other
        connection shares its tokens, so revoke them too (else only this account's link)."""
        ...


@runtime_checkable
class EntityDeclarations(Protocol):
    """A provider whose entities are declared as data (path, id and version fields, delete style, …)."""

    @property
    def entity_catalog(self) -> EntityCatalog:
        """Every entity it syncs, writable and read only; ``entities`` is its ``names``."""
        ...


@dataclass(frozen=True, slots=True)
class PassthroughTarget:
    """Where one scope's raw calls go and how they are authenticated (for ``Hub.remote(scope)``).

    :param base_url: the root every relative path is joined to (QuickBooks ``…/v3/company/{realm}``,
        Xero ``…/api.xro/2.0``, a Connec! group's collection root).
    :param headers: sent with every call (the bearer token, Xero's ``xero-tenant-id``); a call's own
        headers win. Never shown in ``repr``.
    :param auth: an ``httpx.Auth`` sent with every call (Connec!'s HTTP Basic); never shown.
    :param params: query parameters sent with every call (QuickBooks' ``minorversion``); a call's own win.
    :param raise_for: ``raise_for(response, what)`` raises the provider's own error for a failed answer
        (its message, code and ``Retry-After`` read as its clients read them); None: the generic
        :func:`~connected_objects.util.http.raise_for_response`.
    :param timeout: seconds per call (None: the hub's).

    >>> target = PassthroughTarget("https://api.example.test/v1", headers={"Authorization": "Bearer at-1"})
    >>> "at-1" in repr(target), target.base_url
    (False, 'https://api.example.test/v1')
    """

    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    auth: httpx.Auth | None = field(default=None, repr=False)
    params: Mapping[str, str] = field(default_factory=dict)
    raise_for: Callable[[httpx.Response, str], None] | None = field(default=None, repr=False)
    timeout: float | None = None


class Passthrough(Protocol):
    """A client bound to one connection, as ``Hub.remote(scope)`` gives it
    (:class:`connected_objects.remote.Remote`), seen by a provider's helpers (an invoice's PDF):
    paths relative to the scope's base URL; the successful answer, or a
    :class:`~connected_objects.exceptions.RemoteError`."""

    @property
    def scope(self) -> Scope: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        timeout: float | None = None,
    ) -> httpx.Response: ...

    async def foreign_id(self, record: object, entity: str) -> str:
        """``record``'s remote id: a foreign id as given, or a local row's, read from the identity map."""
        ...


@runtime_checkable
class PassthroughProvider(Protocol):
    """A provider whose endpoints can be called raw through ``Hub.remote(scope)`` (reports, PDFs, attachments)."""

    def passthrough(self, scope: Scope, credentials: Mapping[str, Any]) -> PassthroughTarget:
        """Where ``scope``'s calls go and how they are authenticated, with these (fresh) ``credentials``."""
        ...


@dataclass(frozen=True, slots=True)
class Extras:
    """The optional parts one provider implements, as bound methods (None where absent)."""

    fold_reference: Callable[[str, str, str], Any] | None = None
    decode_event: Callable[[str, bytes], RemoteRecord | str] | None = None
    routes: Callable[[ProviderContext], Sequence[Route]] | None = None
    refresh_token: (
        Callable[
            [Scope, httpx.AsyncClient, Mapping[str, Any]], Awaitable[TokenAnswer | tuple[dict[str, Any], datetime]]
        ]
        | None
    ) = None
    #: The provider itself when it connects accounts through OAuth (:class:`AccountConnector`).
    connector: AccountConnector | None = None
    #: Where and how a scope's raw calls go (:class:`PassthroughProvider`), for ``Hub.remote(scope)``.
    passthrough: Callable[[Scope, Mapping[str, Any]], PassthroughTarget] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The extras present, in declaration order."""
        return tuple(
            n
            for n in ("fold_reference", "decode_event", "routes", "refresh_token", "connector", "passthrough")
            if getattr(self, n)
        )


def extras_of(provider: object) -> Extras:
    """Which optional Protocols ``provider`` satisfies: the one place the engines ask."""
    return Extras(
        fold_reference=provider.fold_reference if isinstance(provider, ReferenceFolder) else None,
        decode_event=provider.decode_event if isinstance(provider, EventDecoder) else None,
        routes=provider.routes if isinstance(provider, WebhookProvider) else None,
        refresh_token=provider.refresh_token if isinstance(provider, TokenRefresher) else None,
        connector=provider if isinstance(provider, AccountConnector) else None,
        passthrough=provider.passthrough if isinstance(provider, PassthroughProvider) else None,
    )
