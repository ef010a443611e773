"""What every command of ``connected-objects`` shares: where to look, errors, and the way out.

A command finds its data in one of two ways, and this module holds both:

- ``--app package.module:hub`` (:func:`load_app`, :func:`ready_app`) imports your
  :class:`~connected_objects.hub.Hub`, as uvicorn, celery and flask import an app;
- ``--database URL`` (:func:`database_option`, :func:`open_engine`) opens only the ``co_*``
  tables, for the commands that read or change nothing else.

:func:`open_db` gives either as one ``DB`` after checking the schema; :func:`reading` gives a
plain connection for the probes (``health`` reports the schema itself). Every mistake is a
:class:`UserError` (one line, exit code 2); everything printed goes through :func:`emit` or
:func:`emit_json`, so it is redacted.

Example::

    >>> parse_scope("xero/production/t-1")
    Scope(provider='xero', marketplace='production', account='t-1')
    >>> try:
    ...     parse_scope("xero")
    ... except UserError as exc:
    ...     print(exc.exit_code, exc.message)
    2 --scope 'xero' is not provider/marketplace/account, e.g. xero/production/TENANT-ID
    >>> emit({"id": 7, "last_error": "401 for https://api.example/?access_token=abc123"})
    {"id": 7, "last_error": "401 for https://api.example/?access_token=[redacted]"}
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import TypeVar

import click
from rich.console import Console
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
from ..scope import Scope
from ..store import schema
from ..util.db import DB
from ..util.redaction import redact
from ..util.suggest import did_you_mean

__all__ = [
    "DATABASE_ENV",
    "TRACEBACK_MARK",
    "Elsewhere",
    "UserError",
    "app_option",
    "app_or_database",
    "database_option",
    "emit",
    "emit_json",
    "load_app",
    "open_db",
    "open_engine",
    "parse_scope",
    "reading",
    "ready_app",
    "require_file",
    "required",
    "where",
]

#: Where tables and progress go (stdout).
console = Console()


class Elsewhere(click.Command):
    """A core command that only says which distribution provides it; that distribution's command replaces it."""


class UserError(click.ClickException):
    """A usage error, shown as one ``Error: ...`` line (exit code 2), without click's usage banner."""

    exit_code = 2


def emit(item: dict[str, Any], *, indent: int | None = None) -> None:
    """Print one item as JSON (a line, or indented), every text field redacted: the CLI's one way out."""
    clean = {k: redact(v) if isinstance(v, str) else v for k, v in item.items()}
    click.echo(json.dumps(clean, indent=indent))


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


def require_file(url: URL, where: str) -> None:
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
        require_file(url, option)
    try:
        return create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise UserError(f"{option}: cannot use {url.render_as_string(hide_password=True)}: {exc}") from exc


def required(database: str | None) -> str:
    """``database``, or a :class:`UserError` asking for ``--database`` (the commands that need one)."""
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
        require_file(bind.url, f"the engine of --app {path}")
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


app_option = click.option(
    "--app",
    "app_path",
    envvar="CONNECTED_OBJECTS_APP",
    required=True,
    help="Import path of your Hub, e.g. mypkg.sync:hub or mypkg.sync (or CONNECTED_OBJECTS_APP).",
)
app_or_database = click.option(
    "--app",
    "app_path",
    envvar="CONNECTED_OBJECTS_APP",
    help="Import path of your Hub (or CONNECTED_OBJECTS_APP); or give --database.",
)


#: What a kept traceback starts with (``changes show`` prints it readably on stderr).
TRACEBACK_MARK = "Traceback (most recent call last)"


@contextlib.contextmanager
def reading(app_path: str | None, database: str | None) -> Iterator[Connection]:
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


def where(fn: Any) -> Any:
    """``--app`` or ``--database``, for the commands that read only the ``co_*`` tables."""
    return app_or_database(database_option("Or a database URL: only co_* tables are read.")(fn))


def emit_json(item: dict[str, Any]) -> None:
    """Print a nested item as one JSON line, redacted as a whole (``health --json``)."""
    click.echo(redact(json.dumps(item)))
