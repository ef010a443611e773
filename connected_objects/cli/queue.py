"""``connected-objects changes`` and ``events``: the outbox's and the inbox's items, listed and operated on."""

from __future__ import annotations

import click
from rich.table import Table

from ..queue import journal
from ..queue import outbox
from ..util.redaction import redact
from .common import TRACEBACK_MARK
from .common import app_or_database
from .common import console
from .common import database_option
from .common import emit
from .common import open_db

__all__ = ["changes", "events"]


@click.group()
def changes() -> None:
    """Inspect and operate on outbox changes."""


@changes.command(name="list")
@app_or_database
@database_option()
@click.option("--state", type=click.Choice(["pending", "in_flight", "dead"]), default="dead", show_default=True)
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def list_changes(app_path: str | None, database: str | None, state: str, limit: int, as_json: bool) -> None:
    """List changes (dead ones by default) with their last error."""
    with open_db(app_path, database) as db:
        if state == "pending":  # fold in what was captured, as a worker would
            while journal.absorb(db):
                db.commit()
            db.commit()
        found = outbox.list_changes(db, state=state, limit=limit)
    if as_json:
        for c in found:
            emit(c.as_dict())
        return
    table = Table(title=f"{state} changes")
    for col in ("id", "scope", "entity", "row", "op", "attempts", "last error"):
        table.add_column(col)
    for c in found:
        table.add_row(
            str(c.id),
            str(c.scope),
            c.entity,
            f"{c.local_type} {c.local_id}",
            c.operation,
            str(c.attempts),
            redact(c.last_error or "")[:80],
        )
    console.print(table)


@changes.command(name="show")
@app_or_database
@database_option()
@click.argument("change_id", type=int)
def show_change(app_path: str | None, database: str | None, change_id: int) -> None:
    """Print one change as JSON, with its whole last error."""
    with open_db(app_path, database) as db:
        change = outbox.get(db, change_id)
    if change is None:
        raise click.ClickException(
            f"no change {change_id} (pushed changes are deleted); `connected-objects changes list` shows the ids"
        )
    emit(change.as_dict(), indent=2)
    if change.last_error and TRACEBACK_MARK in change.last_error:  # readable, and stdout stays JSON
        click.echo(f"\nchange {change_id}, last error:\n{redact(change.last_error)}", err=True)


@changes.command(name="retry")
@app_or_database
@database_option()
@click.argument("ids", nargs=-1, type=int, required=True)
def retry_changes(app_path: str | None, database: str | None, ids: tuple[int, ...]) -> None:
    """Send dead changes again."""
    with open_db(app_path, database, begin=True) as db:
        count = outbox.retry(db, list(ids))
    click.echo(f"{count} change(s) queued again")


@changes.command(name="discard")
@app_or_database
@database_option()
@click.argument("ids", nargs=-1, type=int, required=True)
def discard_changes(app_path: str | None, database: str | None, ids: tuple[int, ...]) -> None:
    """Drop dead changes for good."""
    with open_db(app_path, database, begin=True) as db:
        count = outbox.discard(db, list(ids))
    click.echo(f"{count} change(s) discarded")


@click.group()
def events() -> None:
    """Inspect and operate on inbound events (the inbox)."""


@events.command(name="list")
@app_or_database
@database_option()
@click.option("--state", type=click.Choice(["pending", "in_flight", "dead"]), default="dead", show_default=True)
@click.option("--limit", default=100, show_default=True)
def list_events(app_path: str | None, database: str | None, state: str, limit: int) -> None:
    """List inbound events (dead ones by default) as JSON lines, without their payloads."""
    from ..queue import inbox

    with open_db(app_path, database) as db:
        found = inbox.list_events(db, state=state, limit=limit)
    for e in found:
        emit(e.as_dict())


@events.command(name="retry")
@app_or_database
@database_option()
@click.argument("ids", nargs=-1, type=int, required=True)
def retry_events(app_path: str | None, database: str | None, ids: tuple[int, ...]) -> None:
    """Apply dead events again."""
    from ..queue import inbox

    with open_db(app_path, database, begin=True) as db:
        count = inbox.retry(db, list(ids))
    click.echo(f"{count} event(s) queued again")


@events.command(name="show")
@app_or_database
@database_option()
@click.argument("event_id", type=int)
@click.option("--payload-bytes", default=2000, show_default=True, help="How much of the payload to print.")
def show_event(app_path: str | None, database: str | None, event_id: int, payload_bytes: int) -> None:
    """Print one event as JSON, with the start of its payload."""
    from ..queue import inbox

    with open_db(app_path, database) as db:
        event = inbox.get(db, event_id)
    if event is None:
        raise click.ClickException(f"no event {event_id}; `connected-objects events list` shows the ids")
    emit(event.as_dict(payload_bytes=payload_bytes), indent=2)
    if event.last_error and TRACEBACK_MARK in event.last_error:  # readable, and stdout stays JSON
        click.echo(f"\nevent {event_id}, last error:\n{redact(event.last_error)}", err=True)


@events.command(name="discard")
@app_or_database
@database_option()
@click.argument("ids", nargs=-1, type=int, required=True)
def discard_events(app_path: str | None, database: str | None, ids: tuple[int, ...]) -> None:
    """Drop dead events for good."""
    from ..queue import inbox

    with open_db(app_path, database, begin=True) as db:
        count = inbox.discard(db, list(ids))
    click.echo(f"{count} event(s) discarded")
