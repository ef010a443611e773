"""The hub: one application's sync configuration, as an explicit value.

A :class:`Hub` ties together what the engines need: your session factory,
your connected models, the vault for credentials, the providers (from the
registry unless given), the retry policy and the HTTP settings. Build it once
at start-up and pass it where it is used; the CLI finds it by import path
(``connected-objects worker --app myapp.sync:hub``).

Example::

    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects.hub import Hub
    >>> from connected_objects.testing import MemoryProvider
    >>> hub = Hub(sessionmaker(create_engine("sqlite://")), models=[], providers=[MemoryProvider()])
    >>> hub.provider("memory").name
    'memory'
    >>> hub
    Hub(models=[], providers=['memory'])

**Start-up checks.** :meth:`Hub.install` first runs :meth:`Hub.check`, so a
mistake fails when the application starts, with the fix in the message, not
as rows that silently never sync: every provider named by a ``@connected``
model is known (given to the hub or registered; the closest name is
suggested), declares the model's entity, and every reference points at a local
type connected to the same provider; and the ``co_*`` tables are at the
version this release needs (:func:`connected_objects.store.schema.check` raises
:class:`~connected_objects.exceptions.SchemaOutOfDate` naming the migration
command). These run at ``install()``, not when the hub is built or the models
are decorated, so modules may be imported before providers are registered;
what a model can answer alone (its mapped attributes) is checked at
decoration time (:mod:`connected_objects.declare`).

    >>> from sqlalchemy import ForeignKey, Integer
    >>> from sqlalchemy.orm import DeclarativeBase, mapped_column
    >>> from connected_objects import FieldMapping
    >>> from connected_objects import connected
    >>> class Base(DeclarativeBase): pass
    >>> @connected("memroy", entity="notes", mapping=FieldMapping({"id": "Id"}))
    ... class Note(Base):
    ...     __tablename__ = "note"
    ...     id = mapped_column(Integer, primary_key=True)
    >>> Hub(sessionmaker(create_engine("sqlite://")), models=[Note], providers=[MemoryProvider()]).check()
    Traceback (most recent call last):
    ...
    connected_objects.exceptions.ProviderNotFound: Note is @connected to 'memroy': no provider named 'memroy'.
    Did you mean 'memory'? ...
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

import httpx
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from . import connections
from .connections import PROVIDERS_KEY
from .declare import SyncSpec
from .declare import specs_of
from .declare import triggers
from .exceptions import ConfigurationError
from .exceptions import ConnectedObjectsError
from .exceptions import ProviderNotFound
from .limits import LimitsStore
from .limits import from_setting
from .plugin import registry
from .plugin.provider import Extras
from .plugin.provider import Provider
from .plugin.provider import extras_of
from .push import capture
from .store import schema
from .store.history import History
from .store.models import utcnow
from .util.db import patiently
from .util.retry import RetryPolicy
from .util.secrets import Vault
from .util.suggest import did_you_mean
from .web.core import DEFAULT_MAX_BODY
from .web.core import RETRY_AFTER
from .web.core import HttpApp
from .web.core import Route

if TYPE_CHECKING:
    from .push.export import ExportReport
    from .receive.adopt import AdoptReport
    from .receive.reconcile import ReconcileReport
    from .remote import RemoteSession
    from .scope import Scope
    from .store.identity import LocalId
    from .worker import Worker
    from .worker import WorkerStats

__all__ = ["Hub"]


class Hub:
    """One application's connected-objects configuration.

    :param session_factory: the ``sessionmaker`` your application uses; capture
        is installed on it by :meth:`install`.
    :param models: your ``@connected`` model classes.
    :param vault: decrypts connection credentials (None: no stored credentials).
    :param providers: provider instances to use instead of the registry's.
    :param retry: the backoff policy for failed pushes.
    :param timeout: seconds for each provider request.
    :param transport: an httpx transport for every provider request (tests use
        ``httpx.ASGITransport`` to reach an in-process sandbox).
    :param defer_delay: seconds a change waits for a reference that another
        change is still pushing.
    :param http_shards: keep-alive clients per worker; each scope always uses the
        same one. httpcore's pool spends time quadratic in its number of
        connections (measured: 32 concurrent requests through one client run at
        40% of the rate of 8 clients), so a few smaller pools beat one big one.
    :param limits_store: where workers keep the providers' rate and concurrency
        limits and their holds after a 429 (:mod:`connected_objects.limits`):
        None (each worker its own memory: one worker), ``"database"`` (the
        ``co_limit`` tables: a fleet), a ``redis://`` URL, or a
        :class:`~connected_objects.limits.LimitsStore`.
    :param db_patience: seconds :meth:`check` waits for a database that is unavailable (restarting, a
        connection cut) before it fails; the worker has its own, longer patience.
    :param clock: the time now, aware UTC (default: the wall clock). Polls, reconciles, token keep-alive and
        history read it; a test moves it (with the sandboxes on the same clock) instead of sleeping.
    :param history: what the history of every push and apply keeps, and for how long
        (:class:`~connected_objects.store.history.History`; default: 30 days, the 50 newest entries
        per row, no payloads); ``History(enabled=False)`` records none.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        models: Iterable[type],
        vault: Vault | None = None,
        providers: Iterable[Provider] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        defer_delay: float = 1.0,
        http_shards: int = 8,
        limits_store: LimitsStore | str | None = None,
        db_patience: float = 30.0,
        clock: Callable[[], dt.datetime] = utcnow,
        history: History | None = None,
    ) -> None:
        self.session_factory = session_factory
        self._clock = clock
        if history is not None and not isinstance(history, History):
            raise ConfigurationError(
                f"Hub(history={history!r}): give a connected_objects.History, e.g. History(max_age=timedelta(days=30))"
            )
        self.history = history or History()
        self.db_patience = db_patience
        self.models = list(models)
        self.vault = vault
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.transport = transport
        self.defer_delay = defer_delay
        self.http_shards = max(1, http_shards)
        self._limits_setting = limits_store
        self._limits_store: LimitsStore | None = limits_store if not isinstance(limits_store, str) else None
        self._providers = {p.name: p for p in providers or ()}
        self._extras: dict[str, Extras] = {}
        self._specs: dict[tuple[str, str], SyncSpec] = {}
        # Sessions of this factory carry the hub's providers, so connections.connect() knows them too.
        session_factory.kw.setdefault("info", {}).setdefault(PROVIDERS_KEY, {}).update(self._providers)
        if triggers.captured_models(self.models):  # the applier marks its transactions for the triggers
            session_factory.kw["info"][capture.TRIGGERS_KEY] = True
        for model in self.models:
            specs = specs_of(model)
            if not specs:
                raise ConfigurationError(f"{model.__name__} is not decorated with @connected")
            for spec in specs:
                self._specs[(spec.local_type, spec.provider)] = spec

    def clock(self) -> dt.datetime:
        """The time now (aware UTC). ``Hub(clock=...)`` moves it for tests: polls, reconciles, token keep-alive
        and history read it, and so do the sandboxes given the same clock."""
        return self._clock()

    def __repr__(self) -> str:
        return f"Hub(models={[m.__name__ for m in self.models]!r}, providers={sorted(self._providers)!r})"

    @property
    def engine(self) -> Engine:
        """The engine the session factory binds to."""
        bind = self.session_factory.kw.get("bind")
        if not isinstance(bind, Engine):
            raise ConfigurationError("the hub's sessionmaker must be bound to an Engine: sessionmaker(engine)")
        return bind

    @property
    def limits_store(self) -> LimitsStore | None:
        """The limits store workers share (None: each worker keeps its own, in memory)."""
        if self._limits_store is None and isinstance(self._limits_setting, str):
            self._limits_store = from_setting(self._limits_setting, self.engine)
        return self._limits_store

    def connection(self, session: Session) -> Connection:
        """The session's connection for engine work (claims, pushes, applies).

        On MariaDB it runs READ COMMITTED, so concurrent workers' claims see each
        other's commits instead of a REPEATABLE READ snapshot.
        """
        if self.engine.dialect.name in ("mysql", "mariadb"):
            return session.connection(execution_options={"isolation_level": "READ COMMITTED"})
        return session.connection()

    def install(self, *, check: bool = True) -> None:
        """Check the configuration and the schema (:meth:`check`), then install change capture.

        :param check: ``False`` skips :meth:`check` (when the database is not
            reachable yet where the application is imported, say); call it later.
        :raises ProviderNotFound: a model is connected to an unknown provider.
        :raises SchemaOutOfDate: the ``co_*`` tables are missing or behind.
        :raises ConfigurationError: an unknown entity or reference.
        """
        if check:
            self.check()
        capture.install(self.session_factory)

    def check(self, *, database: bool = True) -> None:
        """Refuse a configuration that could not sync, naming the fix.

        Checks that every ``@connected`` provider is known (suggesting the
        closest name), that it declares the model's entity, that every
        reference's local type is connected to the same provider in this hub,
        and (``database=True``, when the session factory is bound to an engine)
        that the ``co_*`` tables are up to date and the capture triggers of the models under
        ``capture="database"`` are there and current.
        """
        known = self.provider_names()
        for spec in self._specs.values():
            where = f"{spec.model.__name__} is @connected to {spec.provider!r}"
            if spec.provider not in known:
                raise ProviderNotFound(spec.provider, tuple(known), where=where)
            entities = sorted(self.provider(spec.provider).entities)
            if spec.entity not in entities:
                raise ConfigurationError(
                    f"{where} with entity={spec.entity!r}, which {spec.provider} does not declare."
                    f"{did_you_mean(spec.entity, entities)} Its entities: {', '.join(entities)}."
                )
            connected_types = sorted(local for local, provider in self._specs if provider == spec.provider)
            for name, ref in (getattr(spec.mapping, "references", None) or {}).items():
                if (ref.local_type, spec.provider) not in self._specs:
                    raise ConfigurationError(
                        f"{where}: its reference {name!r} points at local type {ref.local_type!r}, and no model "
                        f"of that type is connected to {spec.provider} in this hub."
                        f"{did_you_mean(ref.local_type, connected_types)} "
                        f"Connected types: {', '.join(connected_types)}; a local type is the table name."
                    )
        bind = self.session_factory.kw.get("bind")
        if database and isinstance(bind, Engine):
            engine = bind

            def check_schema() -> None:
                with engine.connect() as connection:
                    schema.check(connection)
                    triggers.check(connection, self.models)

            patiently(check_schema, what="checking the co_* tables", patience=self.db_patience)

    def uninstall(self) -> None:
        """Remove change capture from the session factory."""
        capture.uninstall(self.session_factory)

    def provider(self, name: str) -> Provider:
        """The provider called ``name``: given to the hub, else from the registry."""
        found = self._providers.get(name)
        return found if found is not None else registry.get(name)

    def provider_names(self) -> list[str]:
        """Every provider name this hub can use: given to it or registered, sorted; imports nothing."""
        return sorted({*self._providers, *registry.names()})

    def spec(self, local_type: str, provider: str) -> SyncSpec | None:
        """How rows of ``local_type`` sync to ``provider``, or None."""
        return self._specs.get((local_type, provider))

    def extras(self, name: str) -> Extras:
        """The optional parts provider ``name`` implements (:func:`~connected_objects.plugin.provider.extras_of`)."""
        found = self._extras.get(name)
        if found is None:
            found = self._extras[name] = extras_of(self.provider(name))
        return found

    def specs(self, provider: str) -> list[SyncSpec]:
        """Every model connected to ``provider``, referenced models before the models that point at them."""
        return _referenced_first([spec for spec in self._specs.values() if spec.provider == provider])

    def spec_for(self, provider: str, entity: str) -> SyncSpec | None:
        """The model connected to ``provider``'s ``entity``, or None."""
        for spec in self._specs.values():
            if spec.provider == provider and spec.entity == entity:
                return spec
        return None

    def connection_status(self, session: Session, scope: Scope) -> str | None:
        """The status of ``scope``'s connection, or None when it has none (for provider routes)."""
        info = connections.get(session, scope)
        return None if info is None else info.status

    def connect_scope(self, session: Session, owner_type: str, owner_id: LocalId, scope: Scope) -> None:
        """Connect ``scope`` to an owner row without credentials (for provider routes: a sign-up)."""
        connections.connect(session, owner_type, owner_id, scope)

    def disconnect_scope(self, session: Session, scope: Scope, reason: str) -> bool:
        """Revoke ``scope``'s connection (for provider routes: an account cancelled); True when it had one."""
        return connections.disconnect(session, scope, reason)

    def webhooks(self, *, max_body: int = DEFAULT_MAX_BODY, retry_after: int = RETRY_AFTER) -> HttpApp:
        """Every inbound route of the hub's providers, as one sans-I/O app.

        Serve it with :class:`~connected_objects.web.ASGIAdapter` or
        :class:`~connected_objects.web.WSGIAdapter`. A provider contributes
        routes by satisfying :class:`~connected_objects.plugin.provider.WebhookProvider`:
        ``routes(context)`` gets this hub as its :class:`~connected_objects.plugin.provider.ProviderContext`.
        A delivery the database could not store is answered 503 with ``Retry-After: retry_after``.
        """
        routes: list[Route] = []
        for name in sorted({provider for _, provider in self._specs} | set(self._providers)):
            make = self.extras(name).routes
            if make is not None:
                routes.extend(make(self))
        return HttpApp(routes, max_body=max_body, retry_after=retry_after)

    def http_client(self) -> httpx.AsyncClient:
        """A new client for one worker shard: keep-alive, pooled, with the hub's timeout."""
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        kwargs: dict[str, Any] = {"timeout": self.timeout, "limits": limits}
        if self.transport is not None:
            kwargs["transport"] = self.transport
        return httpx.AsyncClient(**kwargs)

    def remote(self, scope: Scope) -> RemoteSession:
        """Raw calls to any endpoint of ``scope``'s provider, with the connection's credentials, limits and
        errors managed: ``async with hub.remote(scope) as remote`` (or ``with`` from synchronous code), then
        ``remote.get("reports/ProfitAndLoss")``. See :mod:`connected_objects.remote`.
        """
        from .remote import RemoteSession

        return RemoteSession(self, scope)

    def worker(self, **options: Any) -> Worker:
        """A :class:`~connected_objects.worker.Worker` for this hub (options as in its constructor).

        :raises ProviderNotFound: ``providers=`` names a provider that is not known.
        """
        from .worker import Worker

        known = self.provider_names()
        for name in options.get("providers") or ():
            if name not in known:
                raise ProviderNotFound(name, tuple(known), where=f"worker(providers=[{name!r}])")

        return Worker(self, **options)

    def adopt(self, scope: Scope, *, entities: Collection[str] | None = None, apply: bool = False) -> AdoptReport:
        """Pair a newly connected company's existing records with this app's rows by natural keys.

        A dry run unless ``apply``: see :func:`connected_objects.receive.adopt.adopt`. Runs its own
        event loop; from async code ``await adopt(hub, scope, ...)``.
        """
        from .receive.adopt import adopt

        _outside_event_loop("await adopt(hub, scope, ...) (connected_objects.receive.adopt)")
        return asyncio.run(adopt(self, scope, entities=entities, apply=apply))

    def export(
        self,
        scope: Scope,
        *,
        entities: Collection[str] | None = None,
        since: dt.datetime | None = None,
        changed_at: str = "updated_at",
    ) -> ExportReport:
        """Queue a push of every row of the scope's owner that has no counterpart there (after :meth:`adopt`).

        See :func:`connected_objects.push.export.export`; :meth:`drain` or the workers push them.
        """
        from .push.export import export

        return export(self, scope, entities=entities, since=since, changed_at=changed_at)

    def sync(self, scope: Scope, *, entities: Collection[str] | None = None, full: bool = False) -> list[str]:
        """Sync now: make ``scope``'s polls due at once (``full``: read everything again, creating nothing twice).

        The workers run them (see :func:`connected_objects.receive.polling.sync_now`); returns the entities.
        """
        from .receive.polling import sync_now

        return sync_now(self, scope, entities, full=full)

    def reconcile(self, scope: Scope, entity: str | None = None, *, repair: bool = False) -> ReconcileReport:
        """Find what no feed reported (records gone, rows never pushed, records nobody links, newer versions
        never applied) by comparing the provider's whole list with the identity map and the owner's rows.

        A dry run unless ``repair``: see :func:`connected_objects.receive.reconcile.reconcile`. Each entity's
        report is stored for ``status``. Runs its own event loop; from async code (a worker)
        ``await reconcile(hub, scope, entity, repair=True)``.
        """
        from .receive.reconcile import reconcile

        _outside_event_loop("await reconcile(hub, scope, entity, ...) (connected_objects.receive.reconcile)")
        return asyncio.run(reconcile(self, scope, entity, repair=repair))

    def drain(self, *, timeout: float | None = 120.0, raise_on_dead: bool = False, **options: Any) -> WorkerStats:
        """Push every due change, wait out retries, and return when nothing is left to do.

        Dead changes stay dead; they are logged at WARNING, counted in the stats
        (``stats.dead``, ``stats.dead_events``, ``stats.exit_code``) and, with
        ``raise_on_dead``, raised as a :class:`~connected_objects.exceptions.ConnectedObjectsError`.
        Runs its own event loop; from async code use ``await hub.worker().run(until_idle=True)``.

        :param timeout: seconds before giving up with :class:`~connected_objects.exceptions.DrainTimeout`,
            whose message says what is still waiting and the last errors it met (None: no limit).
        """
        _outside_event_loop("await hub.worker().run(until_idle=True)")
        stats = asyncio.run(self.worker(**options).run(until_idle=True, timeout=timeout))
        if raise_on_dead and stats.exit_code:
            raise ConnectedObjectsError(
                f"{stats.dead} changes and {stats.dead_events} events died while draining; "
                "see them with connected-objects changes list / events list"
            )
        return stats


def _outside_event_loop(use: str) -> None:
    """Refuse a synchronous entry point called inside a running event loop (asyncio.run would fail there,
    leaving a coroutine never awaited), naming what to ``await`` instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise ConfigurationError(f"inside a running event loop, use: {use}")


def _referenced_first(specs: list[SyncSpec]) -> list[SyncSpec]:
    """``specs`` ordered so that a model comes after the models its mapping references (a cycle keeps its order)."""
    by_type = {spec.local_type: spec for spec in specs}
    done: dict[str, SyncSpec] = {}

    def visit(spec: SyncSpec, seen: frozenset[str]) -> None:
        if spec.local_type in done or spec.local_type in seen:
            return
        for ref in spec.mapping.references.values():
            if ref.local_type in by_type:
                visit(by_type[ref.local_type], seen | {spec.local_type})
        done[spec.local_type] = spec

    for spec in specs:
        visit(spec, frozenset())
    return list(done.values())
