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
    checking or upgrading a database given by ``--database``.
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
``status [--json]``
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

**Where to look.** Commands that run your code take ``--app``: an import path
``package.module:hub`` to a :class:`~connected_objects.hub.Hub` or to a
function returning one; ``--app package.module`` means ``package.module:hub``.
The current directory is on ``sys.path`` for it, as with uvicorn, celery and
flask; ``CONNECTED_OBJECTS_APP`` may hold it instead. Commands that only read
or change the ``co_*`` tables (``status``, ``changes``, ``events``, ``schema
check``/``upgrade``) take ``--app`` or ``--database URL``
(``CONNECTED_OBJECTS_DATABASE_URL``); ``--url`` is still accepted there.

**Errors and exit codes.** A mistake is one line saying what to do, never a
traceback: ``0`` success; ``1`` the command could not do its job (a start-up
check of the application failed; the schema is behind: the line names the
migration command; the database refused);
``2`` a usage error (an unknown option or value, a bad ``--scope``, an
unknown provider, with the closest name suggested, an ``--app`` that cannot
be imported, a SQLite file that does not exist). Only ``schema upgrade``
creates a database: every other command refuses a SQLite URL to a missing
file and leaves no file behind.

Every error text and payload a command prints passes through
:func:`~connected_objects.util.redaction.redact`, and log lines through its filter.

Example::

    $ connected-objects schema check --database sqlite:///app.sqlite
    Error: no SQLite database at /srv/app/app.sqlite; check --database ..., or create it with ...
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
from collections.abc import Callable
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from typing import TypeVar

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import URL
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import NoSuchModuleError

from ..exceptions import ConnectedObjectsError
from ..exceptions import ProviderNotFound
from ..hub import Hub
from ..plugin import registry
from ..plugin.provider import extras_of
from ..queue import journal
from ..queue import outbox
from ..scope import Scope
from ..store import schema
from ..util.db import DB
from ..util.redaction import install_log_filter
from ..util.redaction import redact
from ..util.suggest import did_you_mean
from ..worker import WorkerStats

__all__ = [
    "DATABASE_ENV",
    "UserError",
    "database_option",
    "load_app",
    "main",
    "open_db",
    "open_engine",
    "parse_scope",
    "ready_app",
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

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a library error or a database refusal becomes one line, not a traceback."""
        try:
            return super().invoke(ctx)
        except ConnectedObjectsError as exc:
            raise click.ClickException(str(exc)) from exc
        except DBAPIError as exc:
            first = (str(exc.orig) if exc.orig is not None else str(exc)).strip().splitlines()[0]
            raise click.ClickException(
                f"the database refused: {redact(first)}. Check the database URL, and the schema: "
                "connected-objects schema check --database URL"
            ) from exc


class UserError(click.ClickException):
    """A usage error, shown as one ``Error: ...`` line (exit code 2), without click's usage banner."""

    exit_code = 2


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


F = TypeVar("F", bound=Callable[..., Any])

DATABASE_ENV = "CONNECTED_OBJECTS_DATABASE_URL"


def _alias(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta["connected_objects.database"] = value


def _database(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    alias = ctx.meta.get("connected_objects.database")
    explicit = ctx.get_parameter_source("database") == click.core.ParameterSource.COMMANDLINE
    return value if explicit or alias is None else alias


def database_option(help: str = "SQLAlchemy database URL (or CONNECTED_OBJECTS_DATABASE_URL).") -> Callable[[F], F]:
    """``--database URL`` (the one name across commands), with ``--url`` as a hidden alias."""

    def decorate(f: F) -> F:
        f = click.option("--database", "database", envvar=DATABASE_ENV, metavar="URL", callback=_database, help=help)(f)
        return click.option("--url", hidden=True, expose_value=False, is_eager=True, callback=_alias)(f)

    return decorate


def _missing_sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names, when it does not exist (None: not SQLite, in memory, or there)."""
    if url.get_backend_name() != "sqlite":
        return None
    name = url.database or ""
    if name in ("", ":memory:") or name.startswith("file:") or url.query.get("mode") == "memory":
        return None
    path = Path(name)
    return None if path.exists() else path.resolve()


def _parse_url(text: str, option: str = "--database") -> URL:
    try:
        return make_url(text)
    except ArgumentError:
        raise UserError(
            f"{option}: {redact(text)!r} is not a database URL; write it like sqlite:///app.sqlite "
            "or postgresql+psycopg://user@host/dbname"
        ) from None


def _require_file(url: URL, where: str) -> None:
    missing = _missing_sqlite_file(url)
    if missing is not None:
        shown = url.render_as_string(hide_password=True)
        raise UserError(
            f"no SQLite database at {missing} ({where}); check the path (relative to {Path.cwd()}), "
            f"or create it with: connected-objects schema upgrade --database {shown}"
        )


def open_engine(text: str, *, create: bool = False, option: str = "--database") -> Engine:
    """An engine for a URL given on the command line; a missing SQLite file is refused unless ``create``."""
    url = _parse_url(text, option)
    if not create:
        _require_file(url, option)
    try:
        return create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise UserError(f"{option}: cannot use {url.render_as_string(hide_password=True)}: {exc}") from exc


@schema_group.command()
@database_option()
def check(database: str | None) -> None:
    """Exit non-zero unless the co_* tables are up to date (creates nothing)."""
    engine = open_engine(_required(database))
    try:
        with engine.connect() as conn:
            schema.check(conn)
        click.echo(f"up to date ({schema.head()})")
    finally:
        engine.dispose()


@schema_group.command()
@database_option()
def upgrade(database: str | None) -> None:
    """Apply our migrations (standalone mode, version table co_alembic_version); creates a SQLite file."""
    engine = open_engine(_required(database), create=True)
    try:
        schema.upgrade(engine)
        click.echo(f"upgraded to {schema.head()}")
    finally:
        engine.dispose()


def _required(database: str | None) -> str:
    if not database:
        raise UserError("say which database: --database URL (or CONNECTED_OBJECTS_DATABASE_URL)")
    return database


def _on_path(directory: str) -> None:
    """Put ``directory`` first on ``sys.path``, as ``python -m`` and uvicorn/celery/flask do for --app."""
    if directory not in sys.path and not (directory == os.getcwd() and "" in sys.path):
        sys.path.insert(0, directory)


def load_app(path: str) -> Hub:
    """Import ``module:attribute`` (``module`` alone: ``module:hub``) and return the Hub it names.

    The current directory is searched first. A function is called to make the hub.
    """
    module_name, _, attr = path.partition(":")
    attr = attr or "hub"
    if not module_name or module_name.startswith(".") or not all(part.isidentifier() for part in attr.split(".")):
        raise UserError(f"--app {path!r} is not an import path like 'mypkg.sync:hub' (or 'mypkg.sync')")
    _on_path(os.getcwd())
    try:
        target: object = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        parts = module_name.split(".")
        if exc.name in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}:
            raise UserError(
                f"--app {path!r}: cannot import {module_name}: no module named {exc.name!r} in {os.getcwd()} "
                "or on sys.path; "
                "run the command from your project's directory, or check the spelling"
            ) from exc
        raise UserError(f"--app {path!r}: importing {module_name} failed: {exc}; install what it imports") from exc
    except ConnectedObjectsError as exc:  # a start-up check in the application's own modules: exit 1, as hub.check()
        raise click.ClickException(f"importing {module_name}: {exc}") from exc
    for part in attr.split("."):
        found = getattr(target, part, None)
        if found is None:
            names = [n for n in dir(target) if not n.startswith("_")]
            raise UserError(
                f"--app {path!r}: {module_name} has no {part!r}.{did_you_mean(part, names)} "
                f"Name your Hub: --app {module_name}:NAME"
            )
        target = found
    if not isinstance(target, Hub) and callable(target):
        try:
            target = target()
        except TypeError as exc:
            raise UserError(f"--app {path!r} must be a Hub or a function taking no arguments: {exc}") from exc
    if not isinstance(target, Hub):
        raise UserError(f"--app {path!r} is not a connected_objects Hub (got {type(target).__name__})")
    return target


def ready_app(path: str, *, check: bool = True) -> Hub:
    """:func:`load_app`, with its database file required and, with ``check``, :meth:`Hub.check` run."""
    hub = load_app(path)
    bind = hub.session_factory.kw.get("bind")
    if isinstance(bind, Engine):
        _require_file(bind.url, f"the engine of --app {path}")
    if check:
        hub.check()
    return hub


@contextlib.contextmanager
def open_db(app_path: str | None, database: str | None, *, begin: bool = False) -> Iterator[DB]:
    """A session of ``--app``'s hub or a connection to ``--database``, after checking the schema.

    Creates nothing; ``begin`` commits at the end (the commands that change rows).
    """
    if app_path:
        hub = ready_app(app_path, check=False)
        with hub.session_factory() as session:
            schema.check(hub.connection(session))
            yield session
            if begin:
                session.commit()
        return
    if not database:
        raise UserError("say where to look: --app mypkg.sync:hub or --database URL")
    engine = open_engine(database)
    try:
        with engine.connect() as conn:
            if engine.dialect.name in ("mysql", "mariadb"):
                conn = conn.execution_options(isolation_level="READ COMMITTED")
            schema.check(conn)
            yield conn
            if begin:
                conn.commit()
    finally:
        engine.dispose()


def parse_scope(text: str, hub: Hub | None = None) -> Scope:
    """``provider/marketplace/account`` as a Scope; a bad string (or, given the hub, an unknown provider)
    is a :class:`UserError`."""
    parts = text.split("/")
    if len(parts) != 3 or not all(parts):
        raise UserError(f"--scope {text!r} is not provider/marketplace/account, e.g. xero/production/TENANT-ID")
    try:
        scope = Scope(*parts)
    except ValueError as exc:
        raise UserError(f"--scope {text!r}: {exc}") from exc
    known = hub.provider_names() if hub is not None else []
    if hub is not None and scope.provider not in known:
        raise UserError(f"--scope {text!r}: {ProviderNotFound(scope.provider, tuple(known))}")
    return scope


_app_option = click.option(
    "--app",
    "app_path",
    envvar="CONNECTED_OBJECTS_APP",
    required=True,
    help="Import path of your Hub, e.g. mypkg.sync:hub or mypkg.sync (or CONNECTED_OBJECTS_APP).",
)
_app_or_database = click.option(
    "--app",
    "app_path",
    envvar="CONNECTED_OBJECTS_APP",
    help="Import path of your Hub (or CONNECTED_OBJECTS_APP); or give --database.",
)


# -- worker telemetry, workers and health -----------------------------------------

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
    from ..ops import logs

    handler = logs.configure(telemetry["log_format"], str(telemetry["log_level"]).upper())
    click.get_current_context().call_on_close(lambda: logs.reset(handler))


def _run_worker(hub: Hub, run: Any, telemetry: dict[str, Any]) -> WorkerStats:
    """Run the worker's coroutine with its metrics endpoint; a library error becomes one line and exit 1."""
    metrics = None
    try:
        if telemetry["metrics_port"] is not None:
            from ..ops.metrics import PrometheusMetrics

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
def _reading(app_path: str | None, database: str | None) -> Iterator[Connection]:
    """A connection for the read-only operator commands: no schema check (``health`` reports it), no file created."""
    if app_path:
        engine = ready_app(app_path, check=False).engine
    elif database:
        engine = open_engine(database)
    else:
        raise UserError("say where to look: --app mypkg.sync:hub or --database URL")
    try:
        with engine.connect() as conn:
            yield conn
    except DBAPIError as exc:
        raise click.ClickException(f"cannot read the database: {redact(str(exc.orig))}") from exc
    finally:
        if not app_path:
            engine.dispose()


def _where(fn: Any) -> Any:
    return _app_or_database(database_option("Or a database URL: only co_* tables are read.")(fn))


@main.command(name="workers")
@_where
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per worker.")
def workers_command(app_path: str | None, database: str | None, as_json: bool) -> None:
    """List the workers that registered in co_worker: host, pid, started, last beat, what they hold."""
    from ..ops import heartbeat

    with _reading(app_path, database) as conn:
        try:
            schema.check(conn)
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
    app_path: str | None, database: str | None, stale_after: float, max_due_age: float, max_dead: int, as_json: bool
) -> None:
    """Exit 0 when sync is healthy, 1 when not (or the database cannot be read); 2 on a usage error.

    Checks the schema, the workers' heartbeats, the age of the oldest due change and the dead
    items; usable as a Kubernetes liveness or readiness probe.
    """
    from ..ops.health import check as check_health

    with _reading(app_path, database) as conn:
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
    hub = ready_app(app_path)
    try:
        runner = hub.worker(
            batch=batch, lease=lease, poll=poll, providers=list(providers) or None, heartbeat=telemetry["heartbeat"]
        )
    except ProviderNotFound as exc:
        raise UserError(f"--provider: {exc}") from exc
    progress = _worker_progress(runner) if until_idle else contextlib.nullcontext()

    async def run() -> WorkerStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with progress:
            stats = await runner.run(stop, until_idle=until_idle, timeout=telemetry["timeout"])
        console.print(f"worker {runner.name}: {stats}")
        return stats

    stats = _run_worker(hub, run, telemetry)
    if until_idle and stats.exit_code:  # the worker logged what died
        sys.exit(stats.exit_code)


@contextlib.contextmanager
def _worker_progress(runner: Any) -> Iterator[None]:
    """On a terminal, a live line of what ``runner`` has done so far (on stderr; nothing when piped)."""
    err = Console(stderr=True)
    if not err.is_terminal:
        yield
        return
    from rich.progress import Progress
    from rich.progress import SpinnerColumn
    from rich.progress import TextColumn
    from rich.progress import TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[detail]}"))
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True, refresh_per_second=8) as bar:
        task = bar.add_task("until idle:", detail="starting")

        def show() -> str:
            s = runner.stats
            return f"{s.pushed} pushed, {s.applied} applied, {s.retried} retried, {s.deferred} deferred, {s.dead} dead"

        bar.update(task, detail=show())
        updater = _Ticker(lambda: bar.update(task, detail=show()))
        with updater:
            yield


class _Ticker:
    """Calls ``tick`` a few times a second from a thread while the ``with`` block runs."""

    def __init__(self, tick: Callable[[], None], every: float = 0.125) -> None:
        import threading

        self.tick, self.every, self.done = tick, every, threading.Event()
        self.thread = threading.Thread(target=self._loop, name="connected-objects-progress", daemon=True)

    def _loop(self) -> None:
        while not self.done.wait(self.every):
            self.tick()

    def __enter__(self) -> _Ticker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self.tick()


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

    from ..receive.pull import pull

    parse_scope(scope_text)  # a malformed --scope fails before the app is imported
    hub = ready_app(app_path)
    scope = parse_scope(scope_text, hub)
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
@_app_or_database
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
@_app_or_database
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
    _emit(change.as_dict(), indent=2)
    if change.last_error and _TRACEBACK_MARK in change.last_error:  # readable, and stdout stays JSON
        click.echo(f"\nchange {change_id}, last error:\n{redact(change.last_error)}", err=True)


@changes.command(name="retry")
@_app_or_database
@database_option()
@click.argument("ids", nargs=-1, type=int, required=True)
def retry_changes(app_path: str | None, database: str | None, ids: tuple[int, ...]) -> None:
    """Send dead changes again."""
    with open_db(app_path, database, begin=True) as db:
        count = outbox.retry(db, list(ids))
    click.echo(f"{count} change(s) queued again")


@changes.command(name="discard")
@_app_or_database
@database_option()
@click.argument("ids", nargs=-1, type=int, required=True)
def discard_changes(app_path: str | None, database: str | None, ids: tuple[int, ...]) -> None:
    """Drop dead changes for good."""
    with open_db(app_path, database, begin=True) as db:
        count = outbox.discard(db, list(ids))
    click.echo(f"{count} change(s) discarded")


@main.command(name="status")
@_app_or_database
@database_option("Or a database URL: only co_* tables are read (or CONNECTED_OBJECTS_DATABASE_URL).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per scope.")
def status_command(app_path: str | None, database: str | None, as_json: bool) -> None:
    """Per scope: connected objects, pending/in-flight/dead changes and events, last error."""
    from ..ops.status import status

    with open_db(app_path, database) as db:
        rows = status(db)
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
@_app_or_database
@database_option()
@click.option("--state", type=click.Choice(["pending", "in_flight", "dead"]), default="dead", show_default=True)
@click.option("--limit", default=100, show_default=True)
def list_events(app_path: str | None, database: str | None, state: str, limit: int) -> None:
    """List inbound events (dead ones by default) as JSON lines, without their payloads."""
    from ..queue import inbox

    with open_db(app_path, database) as db:
        found = inbox.list_events(db, state=state, limit=limit)
    for e in found:
        _emit(e.as_dict())


@events.command(name="retry")
@_app_or_database
@database_option()
@click.argument("ids", nargs=-1, type=int, required=True)
def retry_events(app_path: str | None, database: str | None, ids: tuple[int, ...]) -> None:
    """Apply dead events again."""
    from ..queue import inbox

    with open_db(app_path, database, begin=True) as db:
        count = inbox.retry(db, list(ids))
    click.echo(f"{count} event(s) queued again")


@events.command(name="show")
@_app_or_database
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
    _emit(event.as_dict(payload_bytes=payload_bytes), indent=2)
    if event.last_error and _TRACEBACK_MARK in event.last_error:  # readable, and stdout stays JSON
        click.echo(f"\nevent {event_id}, last error:\n{redact(event.last_error)}", err=True)


@events.command(name="discard")
@_app_or_database
@database_option()
@click.argument("ids", nargs=-1, type=int, required=True)
def discard_events(app_path: str | None, database: str | None, ids: tuple[int, ...]) -> None:
    """Drop dead events for good."""
    from ..queue import inbox

    with open_db(app_path, database, begin=True) as db:
        count = inbox.discard(db, list(ids))
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
    from ..exceptions import ConfigurationError
    from ..ops.explain import explain
    from ..ops.explain import find_model
    from ..ops.explain import primary_key

    hub = load_app(app_path)
    try:
        model = find_model(hub, model_name)
        found = explain(hub, model, primary_key(model, key, hub.engine.dialect.name))
    except ConfigurationError as exc:
        raise UserError(redact(str(exc))) from None  # a model or key the hub does not have: usage
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
