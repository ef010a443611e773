"""``connected-objects changes`` and ``events``: the outbox's and the inbox's items, listed and operated on.

Both groups come from one factory, :func:`queue_group`, so they take the same
commands and flags and print the same way:

``list [--state dead|pending|in_flight] [--scope P/M/A] [--error TEXT] [--after ID] [--limit N] [--json]``
    a table (``id``, ``scope``, ``entity``, ``what``, ``attempts``, ``last error``), or
    one JSON object per line with ``--json``: ``id``, ``state``, ``scope``, ``entity``,
    ``attempts``, ``last_error`` first, then the item's own fields. Oldest first,
    dead ones by default; ``--after`` the last id shown gives the next page.
``show ID``
    one item as indented JSON, with its whole last error (a kept traceback is
    also printed readably on stderr, so stdout stays JSON).
``retry ID...`` and ``discard ID...``
    send dead items again, or drop them for good.

**Listing never writes.** Changes a request captured sit in the journal
(``co_journal``) until a worker folds them into the outbox; ``changes list
--state pending`` reads them too (:func:`connected_objects.queue.journal.captured`)
and shows them after the outbox's, one per object, with no id yet (``journal``
in the table, ``null`` in JSON). ``list`` and ``show`` read in a transaction
that is never committed; only ``retry`` and ``discard`` commit.

Example::

    >>> import json, tempfile, pathlib
    >>> from click.testing import CliRunner
    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.queue import journal
    >>> from connected_objects.queue.outbox import Change
    >>> from .schema import schema_group
    >>> url = f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'app.sqlite'}"
    >>> _ = CliRunner().invoke(schema_group, ["upgrade", "--database", url])
    >>> engine = create_engine(url)
    >>> with engine.begin() as db:  # what capture writes when a row changes
    ...     journal.append(db, [Change(Scope("xero", "production", "t-1"), "Contacts", "customer", "7", "upsert")])
    1
    >>> listed = CliRunner().invoke(changes, ["list", "--database", url, "--state", "pending", "--json"])
    >>> item = json.loads(listed.output)
    >>> item["id"], item["state"], item["scope"], item["local_id"], item["operation"]
    (None, 'pending', 'xero/production/t-1', '7', 'upsert')
    >>> with engine.connect() as db:  # still in the journal: listing folded nothing
    ...     journal.size(db)
    1
    >>> CliRunner().invoke(events, ["list", "--database", url, "--json"]).output  # no dead event
    ''
    >>> engine.dispose()
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import click

from ..queue import inbox
from ..queue import journal
from ..queue import outbox
from ..queue.changes import Change
from ..queue.changes import ClaimedChange
from ..queue.events import StoredEvent
from ..scope import Scope
from ..util.db import DB
from ..util.redaction import redact
from .common import TRACEBACK_MARK
from .common import app_or_database
from .common import console
from .common import database_option
from .common import emit
from .common import open_db
from .common import parse_scope
from .tables import Listing

__all__ = ["INBOX", "OUTBOX", "STATES", "Items", "Listed", "changes", "events", "queue_group"]

#: The states ``list --state`` takes (the leased queue's, for changes and events alike).
STATES = ("pending", "in_flight", "dead")


@dataclass(frozen=True, slots=True)
class Listed:
    """One item as ``list`` shows it: the columns every queue has, and the item's own fields.

    >>> item = Listed(3, "dead", "xero/production/t-1", "Contacts", "upsert customer 7", 2, "400", {"revision": 1})
    >>> item.as_dict()
    {'id': 3, 'state': 'dead', 'scope': 'xero/production/t-1', 'entity': 'Contacts', 'attempts': 2,
     'last_error': '400', 'revision': 1}
    """

    id: int | None
    state: str
    scope: str | None
    entity: str | None
    #: What the item does, for the table: ``upsert customer 7`` for a change, its kind for an event.
    what: str
    attempts: int
    last_error: str | None
    #: The item's own fields (``ClaimedChange.as_dict``, ``StoredEvent.as_dict``).
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` line: the common fields first, then the item's own."""
        common = {
            "id": self.id,
            "state": self.state,
            "scope": self.scope,
            "entity": self.entity,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }
        return {**common, **{k: v for k, v in self.fields.items() if k not in common}}


@dataclass(frozen=True, slots=True)
class Items:
    """What :func:`queue_group` needs of one queue: how to list, get, retry and discard its items."""

    #: The group's name and its items' plural (``changes``); ``noun`` is the singular.
    name: str
    noun: str
    help: str
    #: ``(db, state, scope, error, after_id, limit)`` → the items shown, oldest first.
    page: Callable[[DB, str, Scope | None, str | None, int | None, int], list[Listed]]
    get: Callable[[DB, int], Any]
    retry: Callable[[DB, Sequence[int]], int]
    discard: Callable[[DB, Sequence[int]], int]
    #: ``retry``'s help: what happens to a retried item.
    retry_help: str
    #: ``show``'s JSON of one item, given ``show``'s own options.
    detail: Callable[..., dict[str, Any]]
    #: ``show``'s own options (click decorators), passed to ``detail``.
    show_options: tuple[Callable[[Any], Any], ...] = ()
    #: Said when ``show`` finds no such item (why one may be gone).
    gone: str = ""


def _listed_change(c: ClaimedChange) -> Listed:
    what = f"{c.operation} {c.local_type} {c.local_id}"
    return Listed(c.id, c.state, str(c.scope), c.entity, what, c.attempts, c.last_error, c.as_dict())


def _listed_capture(c: Change) -> Listed:
    """A change still in the journal: pending, no id, attempt or error yet."""
    fields = {
        "local_type": c.local_type,
        "local_id": c.local_id,
        "operation": c.operation,
        "captured_at": c.at.isoformat() if c.at is not None else None,
    }
    what = f"{c.operation} {c.local_type} {c.local_id}"
    return Listed(None, "pending", str(c.scope), c.entity, what, 0, None, fields)


def _list_changes(
    db: DB, state: str, scope: Scope | None, error: str | None, after: int | None, limit: int
) -> list[Listed]:
    found = [
        _listed_change(c)
        for c in outbox.page_changes(db, state=state, scope=scope, error=error, after_id=after, limit=limit)
    ]
    if state == "pending" and not error and len(found) < limit:  # captured, not folded yet: read, never folded
        found += [_listed_capture(c) for c in journal.captured(db, scope=scope, limit=limit - len(found))]
    return found


def _listed_event(e: StoredEvent) -> Listed:
    scope = str(e.scope) if e.scope is not None else None
    return Listed(e.id, e.state, scope, e.entity, e.kind, e.attempts, e.last_error, e.as_dict())


def _list_events(
    db: DB, state: str, scope: Scope | None, error: str | None, after: int | None, limit: int
) -> list[Listed]:
    found = inbox.page_events(db, state=state, scope=scope, error=error, after_id=after, limit=limit)
    return [_listed_event(e) for e in found]


def _change_detail(change: ClaimedChange) -> dict[str, Any]:
    return change.as_dict()


def _event_detail(event: StoredEvent, payload_bytes: int) -> dict[str, Any]:
    return event.as_dict(payload_bytes=payload_bytes)


OUTBOX = Items(
    name="changes",
    noun="change",
    help="Inspect and operate on outbox changes.",
    page=_list_changes,
    get=outbox.get,
    retry=outbox.retry,
    discard=outbox.discard,
    retry_help="Send dead changes again.",
    detail=_change_detail,
    gone=" (pushed changes are deleted)",
)
"""The outbox (``co_outbox``, and the journal for pending changes)."""

INBOX = Items(
    name="events",
    noun="event",
    help="Inspect and operate on inbound events (the inbox).",
    page=_list_events,
    get=inbox.get,
    retry=inbox.retry,
    discard=inbox.discard,
    retry_help="Apply dead events again.",
    detail=_event_detail,
    show_options=(
        click.option("--payload-bytes", default=2000, show_default=True, help="How much of the payload to print."),
    ),
)
"""The inbox (``co_inbox``): events, queued imports and parked records."""


def _table(title: str, items: Sequence[Listed]) -> Listing:
    table = Listing(title, ("id", "scope", "entity", "what", "attempts", "last error"))
    for item in items:
        table.add(
            "journal" if item.id is None else str(item.id),
            item.scope or "-",
            item.entity or "-",
            item.what,
            str(item.attempts),
            redact(item.last_error or "")[:80] or "-",
        )
    return table


def queue_group(queue: Items) -> click.Group:
    """The ``list``, ``show``, ``retry`` and ``discard`` commands of one queue, as a click group.

    >>> sorted(queue_group(OUTBOX).commands)
    ['discard', 'list', 'retry', 'show']
    """
    plural, noun = queue.name, queue.noun
    group = click.Group(queue.name, help=queue.help)

    @group.command(name="list", help=f"List {plural} (dead ones by default) with their last error; reads only.")
    @app_or_database
    @database_option()
    @click.option("--state", type=click.Choice(STATES), default="dead", show_default=True)
    @click.option("--scope", "scope_text", metavar="P/M/A", help="Only this provider/marketplace/account.")
    @click.option("--error", metavar="TEXT", help="Only those whose last error contains TEXT.")
    @click.option("--after", type=int, metavar="ID", help="Only ids after this one (the next page).")
    @click.option("--limit", default=100, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
    def list_items(
        app_path: str | None,
        database: str | None,
        state: str,
        scope_text: str | None,
        error: str | None,
        after: int | None,
        limit: int,
        as_json: bool,
    ) -> None:
        scope = parse_scope(scope_text) if scope_text else None
        with open_db(app_path, database) as db:  # never committed: listing writes nothing
            found = queue.page(db, state, scope, error, after, limit)
        if as_json:
            for item in found:
                emit(item.as_dict())
            return
        _table(f"{state} {plural}", found).print(console)

    @group.command(name="show", help=f"Print one {noun} as JSON, with its whole last error.")
    @app_or_database
    @database_option()
    @click.argument("item_id", type=int, metavar="ID")
    def show(app_path: str | None, database: str | None, item_id: int, **options: Any) -> None:
        with open_db(app_path, database) as db:
            item = queue.get(db, item_id)
        if item is None:
            raise click.ClickException(
                f"no {noun} {item_id}{queue.gone}; `connected-objects {plural} list` shows the ids"
            )
        emit(queue.detail(item, **options), indent=2)
        if item.last_error and TRACEBACK_MARK in item.last_error:  # readable, and stdout stays JSON
            click.echo(f"\n{noun} {item_id}, last error:\n{redact(item.last_error)}", err=True)

    for option in queue.show_options:
        option(show)

    @group.command(name="retry", help=queue.retry_help)
    @app_or_database
    @database_option()
    @click.argument("ids", nargs=-1, type=int, required=True)
    def retry(app_path: str | None, database: str | None, ids: tuple[int, ...]) -> None:
        with open_db(app_path, database, begin=True) as db:
            count = queue.retry(db, list(ids))
        click.echo(f"{count} {noun}(s) queued again")

    @group.command(name="discard", help=f"Drop dead {plural} for good.")
    @app_or_database
    @database_option()
    @click.argument("ids", nargs=-1, type=int, required=True)
    def discard(app_path: str | None, database: str | None, ids: tuple[int, ...]) -> None:
        with open_db(app_path, database, begin=True) as db:
            count = queue.discard(db, list(ids))
        click.echo(f"{count} {noun}(s) discarded")

    return group


changes = queue_group(OUTBOX)
events = queue_group(INBOX)
