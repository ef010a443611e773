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
``reconcile --app ... --scope provider/marketplace/account [--entity E] [--repair] [--json]``
    what no feed reported (records gone, rows never pushed, records nobody links, newer
    versions never applied); a dry run unless ``--repair``.
``changes list | show | retry | discard``
    inspect dead (or any) changes and send them again or drop them; ``list`` takes
    ``--state``, ``--scope``, ``--error``, ``--after``, ``--limit`` and ``--json`` and only reads.
``events list | show | retry | discard``
    the same for inbound events (one factory makes both groups).
``connections settings --app ... --scope P/M/A [KEY=VALUE ...] [--refresh] [--json]``
    a connection's settings (account codes, tax types, default items) with the
    choices from the company's own catalogs; with pairs, checked and set.
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

**Layout.** One module per command group, each with its own examples:
:mod:`~connected_objects.cli.common` (``--app``/``--database``, errors, JSON out),
:mod:`~connected_objects.cli.providers`, :mod:`~connected_objects.cli.schema`,
:mod:`~connected_objects.cli.worker`, :mod:`~connected_objects.cli.pull`,
:mod:`~connected_objects.cli.reconcile`,
:mod:`~connected_objects.cli.queue` (``changes`` and ``events``, made by one factory),
:mod:`~connected_objects.cli.connections` (``connections settings``),
:mod:`~connected_objects.cli.status`, :mod:`~connected_objects.cli.health` (``workers``
and ``health``) and :mod:`~connected_objects.cli.explain`. This module holds the root
group, :func:`main`, and the commands other distributions add.

Example::

    $ connected-objects schema check --database sqlite:///app.sqlite
    Error: no SQLite database at /srv/app/app.sqlite; check --database ..., or create it with ...

    >>> from click.testing import CliRunner
    >>> sorted(main.commands)  # doctest: +NORMALIZE_WHITESPACE
    ['adopt', 'changes', 'connections', 'demo', 'events', 'explain', 'export', 'health', 'link',
     'providers', 'pull', 'reconcile', 'schema', 'status', 'sync', 'worker', 'workers']
    >>> CliRunner().invoke(main, ["status", "--scope", "x"]).exit_code  # an unknown option: usage
    2
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any

import click
from sqlalchemy.exc import DBAPIError

from ..exceptions import ConnectedObjectsError
from ..util.redaction import install_log_filter
from ..util.redaction import redact
from .common import DATABASE_ENV
from .common import Elsewhere
from .common import UserError
from .common import database_option
from .common import load_app
from .common import open_db
from .common import open_engine
from .common import parse_scope
from .common import ready_app
from .connections import connections_group
from .explain import explain_command
from .health import health_command
from .health import workers_command
from .onboard import adopt_command
from .onboard import export_command
from .onboard import link_command
from .providers import providers
from .pull import pull_command
from .queue import changes
from .queue import events
from .reconcile import reconcile_command
from .schema import schema_group
from .status import status_command
from .sync import sync_command
from .worker import worker

__all__ = [
    "COMMANDS",
    "DATABASE_ENV",
    "DEMO_ELSEWHERE",
    "UserError",
    "database_option",
    "load_app",
    "main",
    "open_db",
    "open_engine",
    "parse_scope",
    "ready_app",
]

COMMANDS = "connected_objects.commands"
"""Entry-point group through which other distributions add commands (a click command each)."""


class _Commands(click.Group):
    """The core's commands, plus those other distributions declare in :data:`COMMANDS` (loaded when used)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(ep.name for ep in entry_points(group=COMMANDS))})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None and not isinstance(command, Elsewhere):
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


def _broken(name: str, message: str) -> click.Command:
    def fail() -> None:
        raise click.ClickException(message)

    return click.Command(name, callback=fail, help=message)


@click.group(cls=_Commands)
@click.version_option(package_name="connected-objects")
def main() -> None:
    """Keep SQLAlchemy rows connected to remote business systems."""
    install_log_filter()  # whatever a command logs, no credential is printed


DEMO_ELSEWHERE = (
    "the demo is a separate distribution: `uv run connected-objects demo` from a checkout, "
    "or `pip install connected-objects-demo`"
)


@main.command(
    cls=Elsewhere, context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False
)
def demo() -> None:
    """Run the main job (distribution connected-objects-demo, not installed here)."""
    raise click.ClickException(DEMO_ELSEWHERE)


for _command in (
    providers,
    schema_group,
    worker,
    pull_command,
    sync_command,
    adopt_command,
    export_command,
    link_command,
    reconcile_command,
    connections_group,
    changes,
    events,
    status_command,
    workers_command,
    health_command,
    explain_command,
):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
