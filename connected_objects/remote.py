"""Passthrough: raw calls to any endpoint of one connection, with its credentials, limits and errors managed.

Rows sync through the engines, but an application soon needs a call outside the synced entities:
an invoice's PDF, a profit-and-loss report, an attachment, a Connec! collection nobody declared.
Made by hand, each such call must find the connection's credentials, refresh an expired token
without locking the account out, keep to the provider's limits beside the workers, wait out a
429 and turn the provider's error into something readable without leaking a token.
``hub.remote(scope)`` does all of that once, for one connection:

- **the scope's base URL and authentication**, from the provider's :class:`PassthroughTarget`
  (QuickBooks ``…/v3/company/{realm}`` with its bearer token, Xero ``…/api.xro/2.0`` with
  ``xero-tenant-id``, a Connec! group's collection root with the marketplace's HTTP Basic): a path
  is relative to it, and an absolute URL elsewhere is refused, so credentials never leave for
  another host;
- **credentials as the workers get them**: :func:`connected_objects.oauth.tokens.fresh_credentials`,
  which refreshes an expiring token once across the fleet, under the connection's row lock; a 401
  marks the token expired (as a push does), refreshes it and tries the call once more;
- **the scope's limits and holds**: every call waits for a slot of the scope's
  :class:`~connected_objects.limits.gates.ScopeGate` on the hub's limits store, beside the workers'
  pushes and polls; a 429 holds the scope for all of them until its ``Retry-After``, then the call
  is tried again (:func:`connected_objects.receive.gated.through_gate`, at most a few times, and
  never for a hold longer than ``patience``);
- **our errors**: a paused or revoked connection is refused before any request; a failed answer is
  raised as a :class:`~connected_objects.exceptions.RemoteError` branch with the provider's own
  message (read by the provider's ``raise_for``), redacted like every error of the library.

``async with hub.remote(scope) as remote`` gives a :class:`Remote`; a synchronous application (a
WSGI view, a script) writes ``with hub.remote(scope) as remote`` and gets a :class:`SyncRemote`,
which runs the very same :class:`Remote` on a private event loop. Both answer ``httpx.Response``
objects, read in full; ``remote.run(helper, ...)`` runs a provider's async helper (an invoice's PDF)
from synchronous code.

Example, with a provider whose endpoints echo the path they were asked::

    >>> import httpx
    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from sqlalchemy.pool import StaticPool
    >>> from connected_objects import Hub, Scope, connections
    >>> from connected_objects.plugin import PassthroughTarget
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.testing import MemoryProvider
    >>> class Echoing(MemoryProvider):
    ...     def passthrough(self, scope, credentials):
    ...         return PassthroughTarget(f"http://api.test/{scope.account}")
    >>> echo = httpx.MockTransport(lambda request: httpx.Response(200, json={"path": request.url.path}))
    >>> engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    >>> metadata.create_all(engine)
    >>> hub = Hub(sessionmaker(engine), models=[], providers=[Echoing()], transport=echo)
    >>> scope = Scope("memory", "production", "acme")
    >>> with hub.session_factory.begin() as s:
    ...     _ = connections.connect(s, "organization", 1, scope)
    >>> with hub.remote(scope) as remote:
    ...     remote.get("reports/ProfitAndLoss").json()
    {'path': '/acme/reports/ProfitAndLoss'}
    >>> with hub.remote(scope) as remote:
    ...     remote.get("https://elsewhere.test/steal")
    Traceback (most recent call last):
    ...
    ValueError: 'https://elsewhere.test/steal' is not under this connection's base URL ...
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING
from typing import Any
from typing import Concatenate
from typing import ParamSpec
from typing import TypeVar

import httpx

from . import connections
from .exceptions import ConfigurationError
from .exceptions import PermanentError
from .exceptions import ProviderError
from .exceptions import RemoteError
from .limits.gates import ScopeGate
from .oauth import tokens as oauth
from .plugin.provider import PassthroughTarget
from .receive.gated import through_gate
from .scope import Scope
from .store.identity import local_key
from .store.identity import resolve_local
from .util.http import raise_for_response
from .util.http import transport_error

if TYPE_CHECKING:
    from .context import SyncContext

__all__ = ["PATIENCE", "Remote", "RemoteSession", "SyncRemote"]

P = ParamSpec("P")
T = TypeVar("T")

#: The longest hold (seconds) a call waits out by default; a longer one (a spent day quota) is raised.
PATIENCE = 120.0


class Remote:
    """An httpx-style client bound to one connection (what ``async with hub.remote(scope)`` gives).

    Paths are relative to :attr:`base_url`; ``params`` and ``headers`` add to (and override) the
    provider's own (QuickBooks' ``minorversion``, ``Accept: application/json``). Every call returns
    the successful ``httpx.Response`` or raises a :class:`~connected_objects.exceptions.RemoteError`.
    """

    def __init__(
        self,
        hub: SyncContext,
        scope: Scope,
        http: httpx.AsyncClient,
        gate: ScopeGate,
        target: Callable[[Scope, Mapping[str, Any]], PassthroughTarget],
        *,
        patience: float | None = PATIENCE,
    ) -> None:
        self.hub, self.scope, self.http, self.gate = hub, scope, http, gate
        self.patience = patience
        self._target = target
        self._base_url: str | None = None

    def __repr__(self) -> str:  # never the credentials
        return f"Remote({self.scope}, base_url={self._base_url!r})"

    @property
    def base_url(self) -> str:
        """The root every path is joined to (known once the connection was opened)."""
        if self._base_url is None:
            raise ConfigurationError("open the connection first: async with hub.remote(scope) as remote")
        return self._base_url

    async def open(self) -> None:
        """Check the connection and get its credentials (refreshed if they expire soon), as every call does."""
        await self._ready()

    async def _ready(self) -> PassthroughTarget:
        """The connection's target with fresh credentials; a stopped connection is refused before any request."""
        hub, scope = self.hub, self.scope

        def peek() -> connections.ConnectionInfo | None:
            with hub.session_factory() as session:
                return connections.get(session, scope)

        info = await asyncio.to_thread(peek)
        if info is None:
            raise ConfigurationError(f"{scope} has no connection: connect it first (connections.connect)")
        if info.status != "active":
            raise PermanentError(
                f"the connection of {scope} is {info.status} ({info.status_reason or 'no reason given'}): "
                "calls through it are refused until it is resumed or reconnected",
                code=f"connection-{info.status}",
            )
        target = self._target(scope, await oauth.fresh_credentials(hub, scope, self.http))
        self._base_url = target.base_url.rstrip("/")
        return target

    def _url(self, base: str, path: str) -> str:
        """``path`` joined to ``base``; an absolute URL elsewhere, or a ``..`` segment (which would climb out
        of the scope: another company's path with this company's token), is refused."""
        url = path if "://" in path else f"{base}/{path.lstrip('/')}"
        segments = url.split("?", 1)[0].split("#", 1)[0].split("/")
        if not url.startswith(base + "/") or ".." in segments or "." in segments:
            raise ValueError(f"{path!r} is not under this connection's base URL {base!r}: pass a path relative to it")
        return url

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
    ) -> httpx.Response:
        """Send ``method path`` through the scope's gate; the successful answer, read in full.

        :raises RemoteError: the provider refused or failed it (after the retries a 401 and a 429 get).
        :raises ValueError: ``path`` is an absolute URL outside :attr:`base_url`.
        """
        what = f"{self.scope.provider} {method.upper()} {path.split('?')[0]}"
        self._url(self.base_url, path)  # refused before any query or request

        async def send(target: PassthroughTarget) -> httpx.Response:
            wait = timeout if timeout is not None else target.timeout
            try:
                response = await self.http.request(
                    method,
                    self._url(target.base_url.rstrip("/"), path),
                    params={**target.params, **(params or {})},
                    headers={**target.headers, **(headers or {})},
                    auth=target.auth if target.auth is not None else httpx.USE_CLIENT_DEFAULT,
                    json=json,
                    content=content,
                    data=data,
                    files=files,
                    timeout=wait if wait is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.HTTPError as exc:
                raise transport_error(exc, what=what) from exc
            (target.raise_for or _generic)(response, what)
            return response

        # the connection is checked and its credentials made fresh before a slot is taken, so a refresh never
        # holds one; fresh means good for 5 minutes more, longer than the holds a call waits out (`patience`),
        # and a token that still ran out meanwhile is a 401, refreshed below
        target = await self._ready()
        try:
            return await through_gate(self.gate, lambda: send(target), patience=self.patience)
        except RemoteError as exc:
            if exc.status != 401 or self.hub.extras(self.scope.provider).refresh_token is None:
                raise
        # a token refused before its time (revoked, clock skew): expire it as a push would, refresh it once
        # under the connection's row lock, and try once more
        await asyncio.to_thread(self._expire)
        target = await self._ready()
        return await through_gate(self.gate, lambda: send(target), patience=self.patience)

    def _expire(self) -> None:
        with self.hub.session_factory() as session:
            oauth.expire(self.hub.connection(session), self.scope, self.hub.clock())
            session.commit()

    async def get(self, path: str, **options: Any) -> httpx.Response:
        """``GET path`` (options as in :meth:`request`)."""
        return await self.request("GET", path, **options)

    async def post(self, path: str, **options: Any) -> httpx.Response:
        """``POST path`` (options as in :meth:`request`)."""
        return await self.request("POST", path, **options)

    async def put(self, path: str, **options: Any) -> httpx.Response:
        """``PUT path`` (options as in :meth:`request`)."""
        return await self.request("PUT", path, **options)

    async def delete(self, path: str, **options: Any) -> httpx.Response:
        """``DELETE path`` (options as in :meth:`request`)."""
        return await self.request("DELETE", path, **options)

    async def foreign_id(self, record: object, entity: str) -> str:
        """The remote id of ``record`` in this scope: a foreign id as given (a ``str``), or a local
        ``@connected`` row's, read from the identity map.

        :raises ConfigurationError: the row is not linked to an ``entity`` record of this scope (yet).
        """
        if isinstance(record, str):
            return record
        from sqlalchemy import inspect

        state: Any = inspect(record, raiseerr=False)
        if state is None or state.identity is None:
            raise ConfigurationError(
                f"a {type(record).__name__} is neither a foreign id (str) nor a saved mapped row: "
                "pass the remote id, or the row once it is saved"
            )
        local_type, key = type(record), local_key(state.identity[0] if len(state.identity) == 1 else state.identity)

        def find() -> Any:
            with self.hub.session_factory() as session:
                return resolve_local(session, self.scope, local_type, key)

        link = await asyncio.to_thread(find)
        if link is None or link.entity != entity or not link.foreign_id:
            raise ConfigurationError(
                f"{local_type.__name__} {key} is not linked to an {entity} record of {self.scope} "
                "(not pushed yet? connected-objects explain shows where it stands)"
            )
        return str(link.foreign_id)


def _generic(response: httpx.Response, what: str) -> None:
    raise_for_response(response, what=what)


class _Loop:
    """A private event loop for the synchronous form (``asyncio.Runner`` without needing Python 3.11)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()


class SyncRemote:
    """The same :class:`Remote`, for synchronous code (what ``with hub.remote(scope)`` gives): each call
    runs on the session's private event loop, so it must not be used from inside a running one."""

    def __init__(self, remote: Remote, runner: _Loop) -> None:
        self.remote, self._runner = remote, runner

    def __repr__(self) -> str:
        return f"Sync{self.remote!r}"

    @property
    def scope(self) -> Scope:
        return self.remote.scope

    @property
    def base_url(self) -> str:
        return self.remote.base_url

    def run(self, helper: Callable[Concatenate[Remote, P], Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run an async helper written for a :class:`Remote` (``invoice_pdf(remote, "129")``) and return its result."""
        return self._runner.run(helper(self.remote, *args, **kwargs))

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """As :meth:`Remote.request`."""
        return self._runner.run(self.remote.request(method, path, **options))

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> httpx.Response:
        return self.request("PUT", path, **options)

    def delete(self, path: str, **options: Any) -> httpx.Response:
        return self.request("DELETE", path, **options)

    def foreign_id(self, record: object, entity: str) -> str:
        """As :meth:`Remote.foreign_id`."""
        return self._runner.run(self.remote.foreign_id(record, entity))


class RemoteSession:
    """What ``hub.remote(scope)`` returns: ``async with`` it for a :class:`Remote`, ``with`` it for a
    :class:`SyncRemote`. Opening checks the connection and gets fresh credentials; closing closes the
    HTTP client and stores the holds met.

    :raises ProviderError: the scope's provider has no ``passthrough`` (see
        :class:`~connected_objects.plugin.provider.PassthroughProvider`).
    """

    def __init__(self, hub: SyncContext, scope: Scope, *, patience: float | None = PATIENCE) -> None:
        target = hub.extras(scope.provider).passthrough
        if target is None:
            raise ProviderError(
                scope.provider,
                f"provider {scope.provider!r} does not offer passthrough calls: implement "
                "passthrough(scope, credentials) -> PassthroughTarget on it "
                "(connected_objects.plugin.PassthroughProvider)",
            )
        self.hub, self.scope, self.patience = hub, scope, patience
        self._target = target
        self._http: httpx.AsyncClient | None = None
        self._gate: ScopeGate | None = None
        self._runner: _Loop | None = None

    def __repr__(self) -> str:
        return f"RemoteSession({self.scope})"

    async def __aenter__(self) -> Remote:
        if self._http is not None:
            raise ConfigurationError(f"{self!r} is already open: call hub.remote(scope) again for another")
        provider = self.hub.provider(self.scope.provider)
        self._gate = ScopeGate(provider.limits(self.scope), self.hub.limits_store, scope=self.scope)
        self._http = self.hub.http_client()
        remote = Remote(self.hub, self.scope, self._http, self._gate, self._target, patience=self.patience)
        try:
            await remote.open()
        except BaseException:
            await self._close()
            raise
        return remote

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        http, gate, self._http, self._gate = self._http, self._gate, None, None
        if http is not None:
            await http.aclose()
        if gate is not None:
            await gate.settle()

    def __enter__(self) -> SyncRemote:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise ConfigurationError("inside a running event loop, use: async with hub.remote(scope) as remote")
        runner = _Loop()
        try:
            remote = runner.run(self.__aenter__())
        except BaseException:
            runner.close()
            raise
        self._runner = runner
        return SyncRemote(remote, runner)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            try:
                runner.run(self._close())
            finally:
                runner.close()
