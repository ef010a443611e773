"""The inbound engine: claimed events become local writes.

A :class:`Receiver` claims due events from the inbox (:data:`connected_objects.queue.EVENTS`),
groups them by (scope, entity), and for each group

1. sorts what the events bring (:func:`~connected_objects.receive.planning.sort_events`):
   records carried whole, foreign ids to fetch, parked records coming back;
2. fetches the thin ones, each record on its own outcome
   (:func:`~connected_objects.receive.fetching.fetch_each`), through a client made on the
   first fetch only (credentials refreshed then, not before);
3. applies what was read in one batch (:func:`~connected_objects.receive.apply.apply_fetching`);
4. records the outcome in one transaction: applied events deleted, failed ones retried on
   their own backoff or buried (:mod:`~connected_objects.receive.planning` decides), with
   ``event-dead`` sent after the commit.

A queued backfill (an ``import`` event) pulls the whole entity instead
(:func:`~connected_objects.receive.pull.pull`). The worker
(:class:`connected_objects.worker.Worker`) runs a receiver beside the dispatcher; a test or
a script may run one round itself.

Example::

    >>> import asyncio
    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects import Hub
    >>> from connected_objects.receive.engine import Receiver
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> hub = Hub(sessionmaker(engine), models=[])
    >>> metadata.create_all(engine)
    >>> async def one_round():
    ...     async with hub.http_client() as http:
    ...         return await Receiver(hub, "worker-1").round([http])
    >>> asyncio.run(one_round())
    Received(claimed=0, applied=0, dead=0)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from .. import signals
from ..exceptions import PermanentError
from ..oauth import tokens as oauth
from ..ops.failures import first_line
from ..ops.tracing import traced
from ..plugin.provider import RemoteClient
from ..plugin.provider import RemoteRecord
from ..push.export import ExportReport
from ..push.export import export
from ..queue import EVENTS
from ..queue import StoredEvent
from ..scope import Scope
from ..store.models import utcnow
from ..util.db import database_errors
from ..util.db import reason
from ..util.values import loads
from .adopt import AdoptReport
from .adopt import adopt
from .apply import apply_fetching
from .fetching import fetch_each
from .planning import EventLedger
from .planning import failed
from .planning import settled
from .planning import sort_events
from .pull import pull

if TYPE_CHECKING:
    from ..context import SyncContext

__all__ = ["Received", "Receiver"]

log = logging.getLogger("connected_objects.worker")


@dataclass(frozen=True)
class Received:
    """What one round did: events claimed, applied (deleted) and buried."""

    claimed: int = 0
    applied: int = 0
    dead: int = 0


class Receiver:
    """Claims inbound events and applies them, one (scope, entity) group at a time.

    :param worker: the lease owner name.
    :param batch: events claimed at once.
    :param lease: seconds a claim is valid.
    """

    def __init__(self, hub: SyncContext, worker: str, *, batch: int = 500, lease: float = 60.0) -> None:
        self.hub, self.worker, self.batch, self.lease = hub, worker, batch, lease

    def __repr__(self) -> str:
        return f"Receiver(worker={self.worker!r}, batch={self.batch})"

    async def round(self, clients: Sequence[httpx.AsyncClient]) -> Received:
        """Claim due events and apply them; a database failure is logged, and the leases bring the events back."""
        try:
            events = await asyncio.to_thread(self._claim)
        except database_errors() as exc:
            log.warning("claiming events failed, retrying: %s", reason(exc))
            return Received()
        groups: dict[tuple[str, str, str | None, str | None], list[StoredEvent]] = {}
        for event in events:
            groups.setdefault((event.provider, event.marketplace, event.account, event.entity), []).append(event)
        applied = dead = 0
        for (provider, marketplace, account, entity), group in groups.items():
            try:
                book = await self._group(provider, marketplace, account, entity, group, clients)
                await asyncio.to_thread(self._record, book)
            except database_errors() as exc:  # recording an outcome failed: the leases expire, the events come back
                log.warning(
                    "recording %d applied or failed events failed, they will be claimed again: %s",
                    len(group),
                    reason(exc),
                )
                continue
            self._tell(book)
            applied += len(book.done)
            dead += len(book.dead)
        return Received(len(events), applied, dead)

    @traced("connected_objects.claim_events")
    def _claim(self) -> list[StoredEvent]:
        with self.hub.session_factory.begin() as session:
            return EVENTS.claim(session, self.worker, limit=self.batch, lease=self.lease)

    def _renew(self, ids: list[int]) -> None:
        with self.hub.session_factory.begin() as session:
            EVENTS.renew(session, self.worker, ids, self.lease)

    def _record(self, book: EventLedger) -> None:
        """One transaction for the whole group's outcome."""
        if not (book.done or book.later or book.dead):
            return
        with self.hub.session_factory.begin() as session:
            if book.done:
                EVENTS.finish(session, self.worker, book.done)
            if book.later:
                EVENTS.reschedule(session, self.worker, book.later)
            if book.dead:
                EVENTS.bury(session, self.worker, [(e.id, error) for e, error in book.dead])

    def _tell(self, book: EventLedger) -> None:
        """After the commit: bugs logged with their traceback, retries in one line, each dead event signalled."""
        for event, exc in book.unexpected:
            log.error(
                "applying events of %s/%s %s raised an unexpected %s; the traceback is kept on the events "
                "(connected-objects events show %s)",
                event.provider,
                event.marketplace,
                event.entity,
                type(exc).__name__,
                event.id,
                exc_info=exc,
            )
        if book.errors:
            log.info(
                "applying %d events failed, retrying each on its own backoff: %s",
                len(book.errors),
                first_line(book.errors[0]),
            )
        for event, error in book.dead:
            signals.event_dead.send(event.provider, event=event, error=error)

    async def _group(
        self,
        provider: str,
        marketplace: str,
        account: str | None,
        entity: str | None,
        group: list[StoredEvent],
        clients: Sequence[httpx.AsyncClient],
    ) -> EventLedger:
        """One (scope, entity) group's outcome; a failure fails only the events it concerns."""
        now = utcnow()
        if account is None or entity is None:
            problem = PermanentError("event names no account or entity; the provider must resolve them")
            return failed([(e, problem) for e in group], retry=self.hub.retry, now=now)
        scope = Scope(provider, marketplace, account)
        book = EventLedger()
        onboards = [e for e in group if e.kind == "onboard"]
        if onboards:  # a newly connected company: adopt what it holds (or a dry run), then export the rest
            try:
                await self._onboard(scope, onboards[0])
            except Exception as exc:
                book.add(failed([(e, exc) for e in onboards], retry=self.hub.retry, now=now))
            else:
                book.done.extend(e.id for e in onboards)
            group = [e for e in group if e.kind != "onboard"]
        imports = [e for e in group if e.kind == "import"]
        group = [e for e in group if e.kind != "import"]
        if imports:  # a queued backfill: pull the whole entity from its cursor
            try:
                await pull(self.hub, scope, entity)
            except Exception as exc:
                book.add(failed([(e, exc) for e in imports], retry=self.hub.retry, now=now))
            else:
                book.done.extend(e.id for e in imports)
        if group:
            book.add(await self._apply(scope, entity, group, clients[hash(scope) % len(clients)]))
        return book

    async def _onboard(self, scope: Scope, event: StoredEvent) -> None:
        """Adopt the scope's existing books (a dry run unless the event says apply), then export the rest."""
        apply = bool(loads(event.payload).get("apply"))

        async def onboard() -> tuple[AdoptReport, ExportReport | None]:
            report = await adopt(self.hub, scope, apply=apply)
            return report, (await asyncio.to_thread(export, self.hub, scope) if apply else None)

        # a large company takes longer than a lease: keep the event's lease alive meanwhile, or another
        # worker would take it over and adopt the same company at the same time
        work = asyncio.ensure_future(onboard())
        while not (await asyncio.wait({work}, timeout=self.lease / 3))[0]:
            await asyncio.to_thread(self._renew, [event.id])
        report, exported = work.result()
        log.info("%s%s", report.summary(), f"\n{exported.summary()}" if exported is not None else "")
        signals.onboarded.send(scope.provider, scope=scope, report=report, export=exported)

    async def _apply(self, scope: Scope, entity: str, group: list[StoredEvent], http: httpx.AsyncClient) -> EventLedger:
        """Decode, fetch what is thin (each record on its own outcome), apply what was read in one batch."""
        sorted_ = sort_events(group, entity, self.hub.extras(scope.provider).decode_event, scope.provider)
        failures = list(sorted_.failures)
        records = list(sorted_.records)
        fetcher = _LazyClient(self.hub, scope, http)
        if sorted_.thin:
            reads = await fetch_each(fetcher, entity, sorted_.thin.values())
            records.extend(reads.records.values())
            failures.extend(
                (e, reads.failed[sorted_.thin[e.id]]) for e in group if sorted_.thin.get(e.id) in reads.failed
            )
        book = failed(failures, retry=self.hub.retry, now=utcnow())
        gone = {e.id for e, _ in failures}
        ready = [e for e in group if e.id not in gone]
        if not ready:
            return book
        try:
            applied = await apply_fetching(self.hub, scope, entity, records, fetcher, keys=sorted_.keys)
        except Exception as exc:
            book.add(failed([(e, exc) for e in ready], retry=self.hub.retry, now=utcnow()))
            return book
        book.add(
            settled(ready, parked=sorted_.parked, waiting=set(applied.parked_ids), retry=self.hub.retry, now=utcnow())
        )
        return book


class _LazyClient:
    """A scope's client, made (credentials refreshed) on the first fetch only, once for concurrent fetches."""

    def __init__(self, hub: SyncContext, scope: Scope, http: httpx.AsyncClient) -> None:
        self.hub, self.scope, self.http = hub, scope, http
        self._client: RemoteClient | None = None
        self._making = asyncio.Lock()

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]:
        if self._client is None:
            async with self._making:
                if self._client is None:
                    credentials = await oauth.fresh_credentials(self.hub, self.scope, self.http)
                    provider = self.hub.provider(self.scope.provider)
                    self._client = provider.client(self.scope, self.http, credentials)
        return await self._client.fetch(entity, foreign_ids)
