"""Export: the rows the application had before a company was connected reach the provider.

Capture sees the rows written after a connection is made; the rows that were
there before it would never be pushed until someone edits them. After
:func:`~connected_objects.receive.adopt.adopt` has linked what already exists
at the provider, :func:`export` enqueues every row of each connected model that
the connection's owner owns and that has no link in the scope, through the
ordinary outbox: coalescing, references first, the fleet's limits and
idempotency keys all apply, and the workers push them.

Rows adopting left ambiguous (``co_ambiguity``) are not exported: one of the
candidates may be the row's own record, and an operator decides. ``since``
exports only rows changed since a date (this fiscal year's invoices, say),
read from the model's ``changed_at`` attribute.

It is idempotent and resumable: a row already queued coalesces with its pending
change, and a row pushed (linked) since is not queued again. One query reads a
page of rows, one their links, one their ambiguities, one statement queues them.

Example::

    report = export(hub, Scope("quickbooks", "production", "9130354"))
    print(report.queued)  # {"Customer": 80, "Invoice": 100}
    hub.drain()

or ``connected-objects export --app myapp.sync:hub --scope quickbooks/production/9130354 [--since 2026-01-01]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Collection
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Mapper

from .. import connections
from ..exceptions import ConfigurationError
from ..queue import CHANGES
from ..queue import Change
from ..scope import Scope
from ..store import ambiguity
from ..store import identity

if TYPE_CHECKING:
    from ..context import SyncContext
    from ..declare import SyncSpec

__all__ = ["ExportReport", "export"]

#: Rows read and queued per statement.
PAGE = 1000


@dataclass
class ExportReport:
    """What :func:`export` queued, per entity, and what it left for an operator."""

    scope: Scope
    queued: dict[str, int] = field(default_factory=dict)
    #: Rows left out because adopting found them ambiguous, per entity.
    ambiguous: dict[str, int] = field(default_factory=dict)
    #: Entities the connection does not push, left alone.
    not_pushed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{entity}: {n} queued" for entity, n in self.queued.items()]
        parts += [f"{entity}: {n} ambiguous left for an operator" for entity, n in self.ambiguous.items() if n]
        parts += [f"{entity}: not pushed on this connection" for entity in self.not_pushed]
        return f"export to {self.scope}: " + ("; ".join(parts) or "nothing to do")


def export(
    hub: SyncContext,
    scope: Scope,
    *,
    entities: Collection[str] | None = None,
    since: dt.datetime | None = None,
    changed_at: str = "updated_at",
    progress: Callable[[str, int], None] | None = None,
) -> ExportReport:
    """Queue a push of every unlinked row the scope's owner owns, for every model connected to its provider.

    :param entities: only these entities.
    :param since: only rows whose ``changed_at`` attribute is at or after this time.
    :param progress: called with ``(entity, rows queued so far)`` after each page (a progress bar).
    :raises ConfigurationError: no connection; an unknown entity; ``since`` on a model without ``changed_at``.
    """
    with hub.session_factory() as session:
        info = connections.get(session, scope)
    if info is None:
        raise ConfigurationError(f"{scope} has no connection; connect it first")
    specs = hub.specs(scope.provider)
    if entities is not None:
        unknown = sorted(set(entities) - {s.entity for s in specs})
        if unknown:
            raise ConfigurationError(f"no model is connected to {scope.provider} entity {', '.join(unknown)}")
        specs = [s for s in specs if s.entity in entities]
    report = ExportReport(scope)
    with hub.session_factory.begin() as session:
        if info.onboarding in (None, "adopting", "live"):
            connections.set_onboarding(session, scope, "exporting")
    for spec in specs:
        if not info.pushes(spec.entity):
            report.not_pushed.append(spec.entity)
            continue
        queued, skipped = _export_model(hub, scope, info.owner_id, spec, since, changed_at, progress)
        report.queued[spec.entity] = queued
        report.ambiguous[spec.entity] = skipped
    return report


def _export_model(
    hub: SyncContext,
    scope: Scope,
    owner_id: str,
    spec: SyncSpec,
    since: dt.datetime | None,
    changed_at: str,
    progress: Callable[[str, int], None] | None,
) -> tuple[int, int]:
    model = spec.model
    mapper: Mapper[Any] = sa_inspect(model)
    if len(mapper.primary_key) != 1:
        raise ConfigurationError(f"export needs {model.__name__} to have a one-column primary key")
    pk = mapper.primary_key[0]
    where: list[Any] = [spec.owned_by(owner_id)]
    if since is not None:
        if changed_at not in mapper.attrs:
            raise ConfigurationError(
                f"export(since=...) reads {model.__name__}.{changed_at}, which it does not have; "
                "name the attribute holding when a row last changed: changed_at=..."
            )
        where.append(getattr(model, changed_at) >= since)
    queued = skipped = 0
    after: Any = None
    while True:
        with hub.session_factory.begin() as session:
            query = select(pk).where(*where).order_by(pk).limit(PAGE)
            if after is not None:
                query = query.where(pk > after)
            keys = list(session.scalars(query))
            if not keys:
                return queued, skipped
            after = keys[-1]
            ids = [identity.local_key(k) for k in keys]
            linked = identity.resolve_many_local(session, scope, spec.local_type, ids)
            held = ambiguity.held(session, scope, [(spec.local_type, i) for i in ids])
            skipped += len(held)
            changes = [
                Change(scope, spec.entity, spec.local_type, local_id, "upsert")
                for local_id in ids
                if local_id not in linked and (spec.local_type, local_id) not in held
            ]
            if changes:
                CHANGES.enqueue(session, changes)
            queued += len(changes)
        if progress is not None:
            progress(spec.entity, queued)
