"""Pulls: backfill and incremental sync from a provider's change feed, resumable by cursor.

:func:`pull` pages through ``client.changes(entity, cursor)`` starting from the
cursor stored in ``co_cursor`` for ``(scope, entity)``, applies each page
through :func:`~connected_objects.receive.apply.apply_records` and stores the next
cursor *in the same transaction* as the page's rows. A record whose reference
is not linked locally (an invoice whose contact was made at the provider) gets
the referenced record fetched and applied first; what cannot be fetched is
parked in the inbox in that same transaction, so the cursor never passes a
record that was neither applied nor kept. A pull killed at any point
resumes from the last page that committed; re-applying a page is harmless
(versions and the identity map make it a no-op), so nothing is lost or
duplicated. A first pull is a backfill; later ones are incremental.

Example::

    stats = await pull(hub, Scope("quickbooks", "production", "9130354"), "Invoice")

or ``connected-objects pull --app myapp.sync:hub --scope quickbooks/production/9130354 --entity Invoice``
(with a progress bar).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..limits.gates import ScopeGate
from ..oauth import tokens as oauth
from ..ops.tracing import traced
from ..scope import Scope
from ..store import cursors
from ..store.models import cursor as t
from ..store.models import utcnow
from .apply import apply_fetching
from .gated import GatedReads
from .polling import LeaseLost

if TYPE_CHECKING:
    from ..context import SyncContext

__all__ = ["PullStats", "load_cursor", "pull", "save_cursor"]


@dataclass
class PullStats:
    """What a pull did."""

    pages: int = 0
    records: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    #: Records kept in the inbox until their references are linked (``connected-objects events list``).
    parked: int = 0
    #: Referenced records fetched and applied first.
    fetched: int = 0


def load_cursor(session: Session, scope: Scope, entity: str) -> Any:
    """The stored position of ``(scope, entity)``'s pull, or None for a backfill from the start."""
    return session.execute(select(t.c.position).where(cursors.where(scope, entity))).scalar()


def save_cursor(session: Session, scope: Scope, entity: str, position: Any, *, lease_owner: str | None = None) -> None:
    """Store a pull position (inside the caller's transaction).

    :param lease_owner: a worker's poll: store it only while that worker holds the poll's lease.
    :raises LeaseLost: the lease was taken over; the caller's transaction is to be rolled back.
    """
    if lease_owner is not None:  # a poll: its row exists (it holds its lease), and is updated alone
        done = session.connection().execute(
            update(t)
            .where(cursors.where(scope, entity), t.c.lease_owner == lease_owner)
            .values(position=position, updated_at=utcnow())
        )
        if not done.rowcount:
            raise LeaseLost(f"the poll of {entity} for {scope} was taken over; it stops here, writing nothing")
        return
    cursors.upsert(session, scope, entity, {"position": position})


@traced("connected_objects.receive.pull", lambda hub, scope, entity, **kw: {"scope": scope, "entity": entity})
async def pull(
    hub: SyncContext,
    scope: Scope,
    entity: str,
    *,
    progress: Callable[[PullStats], None] | None = None,
    max_pages: int | None = None,
    gate: ScopeGate | None = None,
    lease_owner: str | None = None,
    http: httpx.AsyncClient | None = None,
) -> PullStats:
    """Pull ``entity`` of ``scope`` from its stored cursor to the end of the feed.

    :param progress: called after each committed page.
    :param max_pages: stop after this many pages (the next pull continues).
    :param gate: read through this gate (the scope's limits, a worker's poll share).
    :param lease_owner: a worker's poll (:mod:`~connected_objects.receive.polling`): each page is committed
        only while that worker still holds the poll's lease.
    :param http: the HTTP client to read with (default: a new one of the hub's).
    :raises LeaseLost: with ``lease_owner``, when the lease was taken over (the page is not applied).
    """
    stats = PullStats()
    with hub.session_factory() as session:
        position = load_cursor(session, scope, entity)
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(hub.http_client())
        creds = await oauth.fresh_credentials(hub, scope, http)
        remote = hub.provider(scope.provider).client(scope, http, creds)
        client: Any = GatedReads(remote, gate) if gate is not None else remote
        while max_pages is None or stats.pages < max_pages:
            page = await client.changes(entity, position)
            nxt = page.cursor

            def checkpoint(session: Session, nxt: Any = nxt) -> None:
                save_cursor(session, scope, entity, nxt, lease_owner=lease_owner)

            applied = await apply_fetching(hub, scope, entity, list(page.records), client, before_commit=checkpoint)
            position = nxt
            stats.pages += 1
            stats.records += len(page.records)
            stats.created += applied.created
            stats.updated += applied.updated
            stats.deleted += applied.deleted
            stats.parked += applied.parked
            stats.fetched += applied.fetched
            if progress is not None:
                progress(stats)
            if not page.more:
                break
    return stats
