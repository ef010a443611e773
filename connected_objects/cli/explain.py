"""``connected-objects explain MODEL ID``: why one row is or isn't synced, in one sentence per scope.

It loads the application (``--app``), finds the model by class name (or
``module:Class``), and prints the row's links, its pending and dead changes
with their last errors, when the next attempt is due, and its last pushes and
applies with their outcomes (``--history N``, 10 by default)::

    $ connected-objects explain --app mypkg.sync:hub Customer 42
    Customer 42: dead: xero refused it: Contact name is taken
      xero/production/t-1: dead: xero refused it: Contact name is taken
        connection active; not linked
        change 7 upsert dead, attempt 1: Contact name is taken
      last pushes and applies, newest first:
        2026-12-01 09:42:10 push create refused in xero/production/t-1: Contact name is taken
        2026-11-30 17:05:03 apply update ok in xero/production/t-1, record 8f2c (event 61d0)

A model or a key the hub does not know is a usage error (exit 2).

Example::

    >>> from click.testing import CliRunner
    >>> CliRunner().invoke(explain_command, ["--app", ".bad", "Customer", "1"]).exit_code
    2
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..util.redaction import redact
from .common import UserError
from .common import app_option
from .common import emit
from .common import load_app

if TYPE_CHECKING:
    from ..store.history import Entry

__all__ = ["describe", "explain_command"]


@click.command(name="explain")
@app_option
@click.argument("model_name", metavar="MODEL")
@click.argument("key", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the whole explanation as JSON.")
@click.option(
    "--history",
    "history",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many of the row's last pushes and applies to show.",
)
def explain_command(app_path: str, model_name: str, key: str, as_json: bool, history: int) -> None:
    """Why the MODEL row with primary key ID is or isn't synced (MODEL: a class name of the hub's
    models, or module:Class): its links, pending and dead changes, next attempt, in one sentence;
    and its last pushes and applies with their outcomes."""
    from ..exceptions import ConfigurationError
    from ..ops.explain import explain
    from ..ops.explain import find_model
    from ..ops.explain import primary_key

    hub = load_app(app_path)
    try:
        model = find_model(hub, model_name)
        found = explain(hub, model, primary_key(model, key, hub.engine.dialect.name), history=history)
    except ConfigurationError as exc:
        raise UserError(redact(str(exc))) from None  # a model or key the hub does not have: usage
    if as_json:
        emit(found.as_dict(), indent=2)
        return
    click.echo(f"{found.model} {found.local_id}: {found.sentence}")
    for item in found.scopes:
        link = f"{item.link.entity} {item.link.foreign_id} ({item.link.status})" if item.link else "not linked"
        click.echo(f"  {item.scope}: {item.sentence}")
        click.echo(f"    connection {item.connection or 'none'}; {link}")
        for change in item.changes:
            error = f": {redact(change.last_error)}" if change.last_error else ""
            click.echo(f"    change {change.id} {change.operation} {change.state}, attempt {change.attempts}{error}")
        for action in item.actions:
            error = f": {redact(action.last_error)}" if action.last_error else ""
            click.echo(f"    action {action.id} {action.local_type} {action.state}, attempt {action.attempts}{error}")
        if item.next_attempt_at is not None:
            click.echo(f"    next attempt at {item.next_attempt_at.isoformat()}")
        if item.reconciled_at is not None and item.reconcile is not None:
            drift = ", ".join(f"{n} {kind}" for kind, n in item.reconcile.items() if n) or "nothing to do"
            named = f"; this row: {', '.join(item.reconcile_named)}" if item.reconcile_named else ""
            click.echo(f"    last reconcile {item.reconciled_at:%Y-%m-%d %H:%M} UTC: {drift}{named}")
    if found.history:
        click.echo("  last pushes and applies, newest first:")
        for entry in found.history:
            click.echo(f"    {describe(entry)}")


def describe(entry: Entry) -> str:
    """One history entry on one line: when, which way, what, how it went, where, and the provider's word.

    >>> import datetime as dt
    >>> from connected_objects import Scope
    >>> from connected_objects.store.history import Entry
    >>> at = dt.datetime(2026, 12, 1, 9, 42, 10, tzinfo=dt.timezone.utc)
    >>> describe(Entry(Scope("xero", "production", "t-1"), "Contacts", "push", "update", "ok", at,
    ...                foreign_id="8f2c", latency_ms=212))
    '2026-12-01 09:42:10 push update ok in xero/production/t-1, record 8f2c, 212 ms'
    """
    from ..queue.actions import target_of

    acted = target_of(entry.local_type) if entry.operation == "action" and entry.local_type else None
    what = acted[1] if acted is not None else entry.operation  # an action by its name: "push send ok"
    line = f"{entry.at:%Y-%m-%d %H:%M:%S} {entry.direction} {what} {entry.outcome} in {entry.scope}"
    if entry.foreign_id is not None:
        line += f", record {entry.foreign_id}"
    if entry.direction == "apply" and entry.key is not None:
        line += f" (event {entry.key})"
    if entry.latency_ms is not None:
        line += f", {entry.latency_ms} ms"
    if entry.message:
        line += f": {redact(entry.message)}"
    return line
