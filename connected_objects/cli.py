"""The ``connected-objects`` command.

Run ``connected-objects --help`` for the list. The commands so far:

``demo [--database FILE]``
    the main job: the whole Maestrano story against the sandboxes over
    loopback HTTP, on a SQLite file, checked at every step (non-zero on a miss).
    It comes with the distribution ``connected-objects-demo``; other
    distributions may add commands too (entry-point group ``connected_objects.commands``).
``providers``
    the installed provider plugins, their distributions and versions.
``schema location | snippet | check | upgrade``
    where our migrations live, what to paste into an Alembic set-up, and
    checking or upgrading a database given by ``--url``.
``worker --app mypkg.sync:hub``
    claim and push changes until interrupted (``--until-idle`` to stop when done).
``pull --app ... --scope provider/marketplace/account --entity E``
    backfill or continue a pull from its stored cursor, with a progress bar.
``changes list | show | retry | discard``
    inspect dead (or any) changes and send them again or drop them.
``events list | show | retry | discard``
    the same for inbound events.
``explain --app ... MODEL ID [--json]``
    why one row is or isn't synced: its links, changes, last errors, next attempt, one sentence.
``status (--app ... | --database URL) [--json]``
    per scope: connected objects, queued/in-flight/dead changes and events, last error.

Every error text and payload a command prints passes through
:func:`~connected_objects.redaction.redact`, and log lines through its filter.

The app is an import path to a :class:`~connected_objects.hub.Hub` or to a
function returning one; ``CONNECTED_OBJECTS_APP`` may hold it instead.

Example::

    $ connected-objects schema check --url sqlite:///app.sqlite
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import sys
from importlib.metadata import entry_points
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine

from . import journal
from . import outbox
from . import registry
from . import schema
from .exceptions import ConnectedObjectsError
from .hub import Hub
from .provider import extras_of
from .redaction import install_log_filter
from .redaction import redact

__all__ = [
    "load_app",
    "main",
]

console = Console()


COMMANDS = "connected_objects.commands"
"""Entry-point group through which other distributions add commands (a click command each)."""


class _Elsewhere(click.Command):
    """A core command that only says which distribution provides it; that distribution's command replaces it."""


class _Commands(click.Group):
    """The core's commands, plus those other distributions declare in :data:`COMMANDS` (loaded when used)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(ep.name for ep in entry_points(group=COMMANDS))})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None and not isinstance(command, _Elsewhere):
            return command  # a distribution cannot shadow a core command
        for ep in entry_points(group=COMMANDS, name=cmd_name):
            origin = ep.dist.name if ep.dist else ep.value
            try:
                found = ep.load()
            except Exception as exc:  # a broken plugin must not break the other commands or --help
                return _broken(cmd_name, f"the {cmd_name!r} command of {origin} cannot be loaded: {exc}")
            if not isinstance(found, click.Command):
                return _broken(cmd_name, f"{origin} declares {ep.value!r} as {cmd_name!r}: not a click command")
            return found
        return command


def _broken(name: str, message: str) -> click.Command:
    def fail() -> None:
        raise click.ClickException(message)

    return click.Command(name, callback=fail, help=message)


@click.group(cls=_Commands)
@click.version_option(package_name="connected-objects")
def main() -> None:
    """Keep SQLAlchemy rows connected to remote business systems."""
    install_log_filter()  # whatever a command logs, no credential is printed


def _emit(item: dict[str, Any], *, indent: int | None = None) -> None:
    """Print one item as JSON (a line, or indented), every text field redacted: the CLI's one way out."""
    clean = {k: redact(v) if isinstance(v, str) else v for k, v in item.items()}
    click.echo(json.dumps(clean, indent=indent))


def _providers_table() -> Table:
    table = Table(title="Installed providers")
    table.add_column("provider")
    table.add_column("distribution")
    table.add_column("version")
    table.add_column("status")
    table.add_column("extras")
    dists = {ep.name: ep.dist for ep in entry_points(group=registry.GROUP)}
    for name in registry.names():
        dist = dists.get(name)
        extras = ""
        try:
            provider = registry.get(name)
            status = f"ok ({len(provider.entities)} entities)"
            extras = ", ".join(extras_of(provider).names)
        except ConnectedObjectsError as exc:
            status = f"[red]{exc}[/red]"
        dist_name = dist.name if dist else "(registered in-process)"
        table.add_row(name, dist_name, dist.version if dist else "", status, extras)
    return table


@main.command()
def providers() -> None:
    """List installed provider plugins."""
    console.print(_providers_table())


DEMO_ELSEWHERE = (
    "the demo is a separate distribution: `uv run connected-objects demo` from a checkout, "
    "or `pip install connected-objects-demo`"
)


@main.command(
    cls=_Elsewhere, context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False
)
def demo() -> None:
    """Run the main job (distribution connected-objects-demo, not installed here)."""
    raise click.ClickException(DEMO_ELSEWHERE)


@main.group(name="schema")
def schema_group() -> None:
    """Our Alembic migrations: where they are, how to use them, check and upgrade."""


@schema_group.command()
def location() -> None:
    """Print the directory of our Alembic environment."""
    click.echo(schema.location())


@schema_group.command()
def snippet() -> None:
    """Print the Alembic configuration to add to your project."""
    click.echo(schema.snippet(), nl=False)


@schema_group.command()
@click.option("--url", envvar="CONNECTED_OBJECTS_DATABASE_URL", required=True, help="SQLAlchemy database URL.")
def check(url: str) -> None:
    """Exit non-zero unless the co_* tables are up to date."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            schema.check(conn)
        click.echo(f"up to date ({schema.head()})")
    except ConnectedObjectsError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()


@schema_group.command()
@click.option("--url", envvar="CONNECTED_OBJECTS_DATABASE_URL", required=True, help="SQLAlchemy database URL.")
def upgrade(url: str) -> None:
    """Apply our migrations (standalone mode, version table co_alembic_version)."""
    engine = create_engine(url)
    try:
        schema.upgrade(engine)
        click.echo(f"upgraded to {schema.head()}")
    finally:
        engine.dispose()


def load_app(path: str) -> Hub:
    """Import ``module:attribute`` and return the Hub it names (calling it if it is a factory)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise click.BadParameter(f"{path!r} is not an import path like 'mypkg.sync:hub'", param_hint="--app")
    try:
        target: object = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise click.BadParameter(f"cannot import {path!r}: {exc}", param_hint="--app") from exc
    if not isinstance(target, Hub) and callable(target):
        try:
            target = target()
        except TypeError as exc:
            raise click.BadParameter(
                f"{path!r} must be a Hub or a function taking no arguments: {exc}", param_hint="--app"
            ) from exc
    if not isinstance(target, Hub):
        raise click.BadParameter(
            f"{path!r} is not a connected_objects Hub (got {type(target).__name__})", param_hint="--app"
        )
    return target


_app_option = click.option(
    "--app",
    "app_path",
    envvar="CONNECTED_OBJECTS_APP",
    required=True,
    help="Import path of your Hub, e.g. mypkg.sync:hub (or CONNECTED_OBJECTS_APP).",
)


@main.command()
@_app_option
@click.option("--batch", default=500, show_default=True, help="Changes claimed at once.")
@click.option("--lease", default=60.0, show_default=True, help="Seconds a claim is valid (renewed while working).")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between claims when idle.")
@click.option("--provider", "providers", multiple=True, help="Only push to this provider (repeatable).")
@click.option("--until-idle", is_flag=True, help="Stop when no change is pending or in flight.")
def worker(app_path: str, batch: int, lease: float, poll: float, providers: tuple[str, ...], until_idle: bool) -> None:
    """Claim and push changes until interrupted (SIGINT/SIGTERM finish the work in progress)."""
    level = os.environ.get("CONNECTED_OBJECTS_LOG_LEVEL")
    if level:
        logging.basicConfig(level=level.upper(), format="%(asctime)s %(process)d %(name)s %(message)s")
    hub = load_app(app_path)
    runner = hub.worker(batch=batch, lease=lease, poll=poll, providers=list(providers) or None)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stats = await runner.run(stop, until_idle=until_idle)
        console.print(f"worker {runner.name}: {stats}")

    asyncio.run(run())


@main.command(name="pull")
@_app_option
@click.option("--scope", "scope_text", required=True, help="provider/marketplace/account, e.g. xero/production/t-1")
@click.option("--entity", required=True, help="The remote collection, e.g. Invoices.")
def pull_command(app_path: str, scope_text: str, entity: str) -> None:
    """Backfill or continue pulling one entity of one scope, with a progress bar."""
    from rich.progress import Progress
    from rich.progress import SpinnerColumn
    from rich.progress import TextColumn
    from rich.progress import TimeElapsedColumn

    from .pull import pull
    from .scope import Scope

    parts = scope_text.split("/")
    if len(parts) != 3:
        raise click.BadParameter("use provider/marketplace/account", param_hint="--scope")
    hub = load_app(app_path)
    scope = Scope(*parts)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"pull {scope} {entity}", detail="starting", total=None)

        def show(stats: Any) -> None:
            progress.update(
                task,
                detail=f"{stats.records} records, {stats.pages} pages, "
                f"{stats.created} new, {stats.updated} updated, {stats.deleted} deleted",
            )

        stats = asyncio.run(pull(hub, scope, entity, progress=show))
    console.print(f"pulled {stats.records} records of {entity} for {scope}")


@main.group()
def changes() -> None:
    """Inspect and operate on outbox changes."""


@changes.command(name="list")
@_app_option
@click.option("--state", type=click.Choice(["pending", "in_flight", "dead"]), default="dead", show_default=True)
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def list_changes(app_path: str, state: str, limit: int, as_json: bool) -> None:
    """List changes (dead ones by default) with their last error."""
    hub = load_app(app_path)
    if state == "pending":
        with hub.session_factory() as session:  # fold in what was captured, as a worker would
            while journal.absorb(hub.connection(session)):
                session.commit()
            session.commit()
    with hub.session_factory() as session:
        found = outbox.list_changes(session, state=state, limit=limit)
    if as_json:
        for c in found:
            _emit(c.as_dict())
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
@_app_option
@click.argument("change_id", type=int)
def show_change(app_path: str, change_id: int) -> None:
    """Print one change as JSON, with its whole last error."""
    with load_app(app_path).session_factory() as session:
        change = outbox.get(session, change_id)
    if change is None:
        raise click.ClickException(
            f"no change {change_id} (pushed changes are deleted); `connected-objects changes list` shows the ids"
        )
    _emit(change.as_dict(), indent=2)


@changes.command(name="retry")
@_app_option
@click.argument("ids", nargs=-1, type=int, required=True)
def retry_changes(app_path: str, ids: tuple[int, ...]) -> None:
    """Send dead changes again."""
    hub = load_app(app_path)
    with hub.session_factory.begin() as session:
        count = outbox.retry(session, list(ids))
    click.echo(f"{count} change(s) queued again")


@changes.command(name="discard")
@_app_option
@click.argument("ids", nargs=-1, type=int, required=True)
def discard_changes(app_path: str, ids: tuple[int, ...]) -> None:
    """Drop dead changes for good."""
    hub = load_app(app_path)
    with hub.session_factory.begin() as session:
        count = outbox.discard(session, list(ids))
    click.echo(f"{count} change(s) discarded")


@main.command(name="status")
@click.option(
    "--app", "app_path", envvar="CONNECTED_OBJECTS_APP", help="Import path of your Hub (or CONNECTED_OBJECTS_APP)."
)
@click.option(
    "--database", "url", envvar="CONNECTED_OBJECTS_DATABASE_URL", help="Or a database URL: only co_* tables are read."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per scope.")
def status_command(app_path: str | None, url: str | None, as_json: bool) -> None:
    """Per scope: connected objects, pending/in-flight/dead changes and events, last error."""
    from .status import status

    if app_path:
        with load_app(app_path).session_factory() as session:
            rows = status(session)
    elif url:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                rows = status(conn)
        finally:
            engine.dispose()
    else:
        raise click.UsageError("say where to look: --app mypkg.sync:hub or --database URL")
    if as_json:
        for item in rows:
            _emit(item.as_dict())
        return
    table = Table(title="connected-objects status")
    for col in (
        "scope",
        "connection",
        "linked",
        "tombstoned",
        "pending",
        "in flight",
        "dead",
        "events",
        "parked",
        "dead events",
        "last error",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.scope),
            r.connection or "-",
            str(r.linked),
            str(r.tombstoned),
            str(r.pending_changes),
            str(r.in_flight_changes),
            str(r.dead_changes),
            str(r.pending_events),
            str(r.parked_records),
            str(r.dead_events),
            redact(r.last_error or "")[:60],
        )
    console.print(table)


@main.group()
def events() -> None:
    """Inspect and operate on inbound events (the inbox)."""


@events.command(name="list")
@_app_option
@click.option("--state", type=click.Choice(["pending", "in_flight", "dead"]), default="dead", show_default=True)
@click.option("--limit", default=100, show_default=True)
def list_events(app_path: str, state: str, limit: int) -> None:
    """List inbound events (dead ones by default) as JSON lines, without their payloads."""
    from . import inbox

    hub = load_app(app_path)
    with hub.session_factory() as session:
        for e in inbox.list_events(session, state=state, limit=limit):
            _emit(e.as_dict())


@events.command(name="retry")
@_app_option
@click.argument("ids", nargs=-1, type=int, required=True)
def retry_events(app_path: str, ids: tuple[int, ...]) -> None:
    """Apply dead events again."""
    from . import inbox

    hub = load_app(app_path)
    with hub.session_factory.begin() as session:
        count = inbox.retry(session, list(ids))
    click.echo(f"{count} event(s) queued again")


@events.command(name="show")
@_app_option
@click.argument("event_id", type=int)
@click.option("--payload-bytes", default=2000, show_default=True, help="How much of the payload to print.")
def show_event(app_path: str, event_id: int, payload_bytes: int) -> None:
    """Print one event as JSON, with the start of its payload."""
    from . import inbox

    with load_app(app_path).session_factory() as session:
        event = inbox.get(session, event_id)
    if event is None:
        raise click.ClickException(f"no event {event_id}; `connected-objects events list` shows the ids")
    _emit(event.as_dict(payload_bytes=payload_bytes), indent=2)


@events.command(name="discard")
@_app_option
@click.argument("ids", nargs=-1, type=int, required=True)
def discard_events(app_path: str, ids: tuple[int, ...]) -> None:
    """Drop dead events for good."""
    from . import inbox

    with load_app(app_path).session_factory.begin() as session:
        count = inbox.discard(session, list(ids))
    click.echo(f"{count} event(s) discarded")


# --- explain: why is this row (not) synced? ---------------------------------------------------------------------


@main.command(name="explain")
@_app_option
@click.argument("model_name", metavar="MODEL")
@click.argument("key", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the whole explanation as JSON.")
def explain_command(app_path: str, model_name: str, key: str, as_json: bool) -> None:
    """Why the MODEL row with primary key ID is or isn't synced (MODEL: a class name of the hub's
    models, or module:Class): its links, pending and dead changes, next attempt, in one sentence."""
    from .exceptions import ConfigurationError
    from .explain import explain
    from .explain import find_model
    from .explain import primary_key

    hub = load_app(app_path)
    try:
        model = find_model(hub, model_name)
        found = explain(hub, model, primary_key(model, key))
    except ConfigurationError as exc:
        raise click.ClickException(redact(str(exc))) from None
    if as_json:
        _emit(found.as_dict(), indent=2)
        return
    click.echo(f"{found.model} {found.local_id}: {found.sentence}")
    for item in found.scopes:
        link = f"{item.link.entity} {item.link.foreign_id} ({item.link.status})" if item.link else "not linked"
        click.echo(f"  {item.scope}: {item.sentence}")
        click.echo(f"    connection {item.connection or 'none'}; {link}")
        for change in item.changes:
            error = f": {redact(change.last_error)}" if change.last_error else ""
            click.echo(f"    change {change.id} {change.operation} {change.state}, attempt {change.attempts}{error}")
        if item.next_attempt_at is not None:
            click.echo(f"    next attempt at {item.next_attempt_at.isoformat()}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
