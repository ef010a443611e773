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
``status (--app ... | --database URL) [--json]``
    per scope: connected objects, queued/in-flight/dead changes and events, last error.
``workers (--app ... | --database URL) [--json]``
    the running workers, from their heartbeats: host, pid, last beat, what they hold.
``health (--app ... | --database URL) [--stale-after S] [--max-due-age S] [--max-dead N]``
    exit 0 when healthy, 1 when the schema is behind, no worker beat recently, the
    oldest due change waited too long or items are dead (a Kubernetes probe).

``worker`` takes ``--metrics-port N`` (Prometheus, ``connected-objects[prometheus]``),
``--log-format json``, ``--heartbeat S`` and, with ``--until-idle``, ``--timeout S``; it
exits 1 on an error (a schema that is behind, a timeout) and 3 when, with
``--until-idle``, something died.

Every error text and payload a command prints passes through
:func:`~connected_objects.redaction.redact`, and log lines through its filter.

The app is an import path to a :class:`~connected_objects.hub.Hub` or to a
function returning one; ``CONNECTED_OBJECTS_APP`` may hold it instead.

Example::

    $ connected-objects schema check --url sqlite:///app.sqlite
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError

from . import journal
from . import outbox
from . import registry
from . import schema
from .exceptions import ConnectedObjectsError
from .hub import Hub
from .provider import extras_of
from .redaction import install_log_filter
from .redaction import redact
from .worker import WorkerStats

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


# -- worker telemetry, workers and health (issue 13) -----------------------------------------

#: What a kept traceback starts with (``changes show`` prints it readably on stderr).
_TRACEBACK_MARK = "Traceback (most recent call last)"


def _worker_telemetry_options(fn: Any) -> Any:
    """The worker's observability flags: heartbeat, metrics endpoint, log format and level, timeout."""
    options = [
        click.option(
            "--heartbeat",
            default=10.0,
            show_default=True,
            help="Seconds between heartbeats in co_worker (connected-objects workers / health read them).",
        ),
        click.option(
            "--metrics-port",
            type=int,
            default=None,
            help="Serve Prometheus metrics on this port at /metrics (needs connected-objects[prometheus]).",
        ),
        click.option("--metrics-host", default="0.0.0.0", show_default=True, help="Address the metrics listen on."),  # noqa: S104
        click.option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="Log lines on stderr as text, or one JSON object per line (redacted either way).",
        ),
        click.option(
            "--log-level",
            envvar="CONNECTED_OBJECTS_LOG_LEVEL",
            default="INFO",
            show_default=True,
            help="DEBUG, INFO, WARNING or ERROR (or CONNECTED_OBJECTS_LOG_LEVEL).",
        ),
        click.option(
            "--timeout",
            type=float,
            default=None,
            help="With --until-idle: give up after this many seconds, saying what is stuck (exit 1).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _configure_worker_logs(telemetry: dict[str, Any]) -> None:
    """Log to stderr as asked until the command ends (then the process's logging is as it was)."""
    from .telemetry import logs

    handler = logs.configure(telemetry["log_format"], str(telemetry["log_level"]).upper())
    click.get_current_context().call_on_close(lambda: logs.reset(handler))


def _run_worker(hub: Hub, run: Any, telemetry: dict[str, Any]) -> WorkerStats:
    """Run the worker's coroutine with its metrics endpoint; a library error becomes one line and exit 1."""
    metrics = None
    try:
        if telemetry["metrics_port"] is not None:
            from .telemetry.metrics import PrometheusMetrics

            metrics = PrometheusMetrics(hub.engine)
            port = metrics.serve(telemetry["metrics_port"], telemetry["metrics_host"])
            logging.getLogger("connected_objects.worker").info(
                "serving metrics at http://%s:%d/metrics", telemetry["metrics_host"], port
            )
        stats: WorkerStats = asyncio.run(run())
        return stats
    except ConnectedObjectsError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # the metrics port is taken
        raise click.ClickException(f"cannot serve metrics on port {telemetry['metrics_port']}: {exc}") from exc
    finally:
        if metrics is not None:
            metrics.close()


@contextlib.contextmanager
def _reading(app_path: str | None, url: str | None) -> Iterator[Connection]:
    """A connection to the application's database, for read-only commands (never creates a file)."""
    from sqlalchemy.engine import make_url

    if app_path:
        engine = load_app(app_path).engine
    elif url:
        parsed = make_url(url)
        on_disk = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
        if on_disk and not os.path.exists(str(parsed.database)):
            raise click.ClickException(f"no SQLite database at {parsed.database}; check --database")
        engine = create_engine(url)
    else:
        raise click.UsageError("say where to look: --app mypkg.sync:hub or --database URL")
    try:
        with engine.connect() as conn:
            yield conn
    except DBAPIError as exc:
        raise click.ClickException(f"cannot read the database: {redact(str(exc.orig))}") from exc
    finally:
        if not app_path:
            engine.dispose()


_where_options = [
    click.option(
        "--app", "app_path", envvar="CONNECTED_OBJECTS_APP", help="Import path of your Hub (or CONNECTED_OBJECTS_APP)."
    ),
    click.option(
        "--database",
        "url",
        envvar="CONNECTED_OBJECTS_DATABASE_URL",
        help="Or a database URL: only co_* tables are read.",
    ),
]


def _where(fn: Any) -> Any:
    for option in reversed(_where_options):
        fn = option(fn)
    return fn


@main.command(name="workers")
@_where
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per worker.")
def workers_command(app_path: str | None, url: str | None, as_json: bool) -> None:
    """List the workers that registered in co_worker: host, pid, started, last beat, what they hold."""
    from . import heartbeat
    from .health import check_schema

    with _reading(app_path, url) as conn:
        try:
            check_schema(conn)
        except ConnectedObjectsError as exc:
            raise click.ClickException(str(exc)) from exc
        found = heartbeat.workers(conn)
    if as_json:
        for w in found:
            _emit(w.as_dict())
        return
    table = Table(title="connected-objects workers")
    for col in ("name", "host", "pid", "started", "last beat", "changes held", "scopes"):
        table.add_column(col)
    for w in found:
        scopes = w.holds.get("scopes") or []
        table.add_row(
            w.name,
            w.host,
            str(w.pid),
            w.started_at.isoformat(timespec="seconds"),
            f"{w.age():.1f} s ago",
            str(w.holds.get("changes", 0)),
            ", ".join(scopes[:3]) + (" ..." if len(scopes) > 3 else ""),
        )
    console.print(table)


@main.command(name="health")
@_where
@click.option("--stale-after", default=60.0, show_default=True, help="Fail when no worker beat for this many seconds.")
@click.option(
    "--max-due-age", default=600.0, show_default=True, help="Fail when the oldest due change waited this many seconds."
)
@click.option("--max-dead", default=0, show_default=True, help="Fail when more changes and events than this are dead.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as one JSON object.")
def health_command(
    app_path: str | None, url: str | None, stale_after: float, max_due_age: float, max_dead: int, as_json: bool
) -> None:
    """Exit 0 when sync is healthy, 1 when not (or the database cannot be read); 2 on a usage error.

    Checks the schema, the workers' heartbeats, the age of the oldest due change and the dead
    items; usable as a Kubernetes liveness or readiness probe.
    """
    from .health import check as check_health

    with _reading(app_path, url) as conn:
        report = check_health(conn, stale_after=stale_after, max_due_age=max_due_age, max_dead=max_dead)
    if as_json:
        _emit_nested(report.as_dict())
    else:
        for c in report.checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {redact(c.detail)}")
    if not report.ok:
        sys.exit(1)


def _emit_nested(item: dict[str, Any]) -> None:
    click.echo(redact(json.dumps(item)))


@main.command()
@_app_option
@click.option("--batch", default=500, show_default=True, help="Changes claimed at once.")
@click.option("--lease", default=60.0, show_default=True, help="Seconds a claim is valid (renewed while working).")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between claims when idle.")
@click.option("--provider", "providers", multiple=True, help="Only push to this provider (repeatable).")
@click.option("--until-idle", is_flag=True, help="Stop when no change is pending or in flight.")
@_worker_telemetry_options
def worker(
    app_path: str,
    batch: int,
    lease: float,
    poll: float,
    providers: tuple[str, ...],
    until_idle: bool,
    **telemetry: Any,
) -> None:
    """Claim and push changes until interrupted (SIGINT/SIGTERM finish the work in progress).

    Exit codes: 0 done (or stopped by a signal); 1 an error, such as a schema
    that is missing or behind (the message names the command to run) or an
    --until-idle run that timed out; 2 a usage error; 3 (--until-idle) some
    changes or events died in this run.
    """
    _configure_worker_logs(telemetry)
    hub = load_app(app_path)
    runner = hub.worker(
        batch=batch, lease=lease, poll=poll, providers=list(providers) or None, heartbeat=telemetry["heartbeat"]
    )

    async def run() -> WorkerStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stats = await runner.run(stop, until_idle=until_idle, timeout=telemetry["timeout"])
        console.print(f"worker {runner.name}: {stats}")
        return stats

    stats = _run_worker(hub, run, telemetry)
    if until_idle and stats.exit_code:  # the worker logged what died
        sys.exit(stats.exit_code)


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
    if change.last_error and _TRACEBACK_MARK in change.last_error:  # readable, and stdout stays JSON
        click.echo(f"\nchange {change_id}, last error:\n{redact(change.last_error)}", err=True)


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
    if event.last_error and _TRACEBACK_MARK in event.last_error:  # readable, and stdout stays JSON
        click.echo(f"\nevent {event_id}, last error:\n{redact(event.last_error)}", err=True)


@events.command(name="discard")
@_app_option
@click.argument("ids", nargs=-1, type=int, required=True)
def discard_events(app_path: str, ids: tuple[int, ...]) -> None:
    """Drop dead events for good."""
    from . import inbox

    with load_app(app_path).session_factory.begin() as session:
        count = inbox.discard(session, list(ids))
    click.echo(f"{count} event(s) discarded")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
