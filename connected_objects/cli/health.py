"""``connected-objects workers`` and ``health``: the running workers, and a probe for the whole sync.

Both read only, through :func:`~connected_objects.cli.common.reading`, with
``--app`` or ``--database URL``. ``workers`` lists what each worker wrote in its
heartbeat (host, pid, last beat, what it holds); ``health`` exits 0 when
healthy and 1 when the schema is behind, no worker beat recently, the oldest
due change waited too long or items are dead: a Kubernetes probe. Connections
that need their customer (a refresh token dying within ``--refresh-days``,
paused, revoked) are a ``warn`` line, which does not fail the probe::

    $ connected-objects health --database postgresql+psycopg://.../app --max-dead 10
    ok   schema: up to date (co_0016)
    FAIL workers: no worker beat in the last 60 s
    warn connections: 1 paused (quickbooks/production/9130354): the customers reconnect through your connect page

Example::

    >>> import tempfile, pathlib
    >>> from click.testing import CliRunner
    >>> from .schema import schema_group
    >>> url = f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'app.sqlite'}"
    >>> _ = CliRunner().invoke(schema_group, ["upgrade", "--database", url])
    >>> CliRunner().invoke(workers_command, ["--database", url, "--json"]).output  # none registered
    ''
    >>> CliRunner().invoke(health_command, ["--database", url]).exit_code  # and none beat: unhealthy
    1
"""

from __future__ import annotations

import sys

import click

from ..exceptions import ConnectedObjectsError
from ..store import schema
from ..util.redaction import redact
from .common import console
from .common import emit
from .common import emit_json
from .common import reading
from .common import ready_app
from .common import where
from .tables import Listing

__all__ = ["health_command", "workers_command"]


@click.command(name="workers")
@where
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per worker.")
def workers_command(app_path: str | None, database: str | None, as_json: bool) -> None:
    """List the workers that registered in co_worker: host, pid, started, last beat, what they hold."""
    from ..ops import heartbeat

    with reading(app_path, database) as conn:
        try:
            schema.check(conn)
        except ConnectedObjectsError as exc:
            raise click.ClickException(str(exc)) from exc
        found = heartbeat.workers(conn)
    if as_json:
        for w in found:
            emit(w.as_dict())
        return
    columns = ("name", "host", "pid", "started", "last beat", "changes held", "scopes")
    table = Listing("connected-objects workers", columns)
    for w in found:
        scopes = w.holds.get("scopes") or []
        table.add(
            w.name,
            w.host,
            str(w.pid),
            w.started_at.isoformat(timespec="seconds"),
            f"{w.age():.1f} s ago",
            str(w.holds.get("changes", 0)),
            ", ".join(scopes[:3]) + (f" and {len(scopes) - 3} more (--json lists all)" if len(scopes) > 3 else ""),
        )
    table.print(console)


@click.command(name="health")
@where
@click.option("--stale-after", default=60.0, show_default=True, help="Fail when no worker beat for this many seconds.")
@click.option(
    "--max-due-age", default=600.0, show_default=True, help="Fail when the oldest due change waited this many seconds."
)
@click.option("--max-dead", default=0, show_default=True, help="Fail when more changes and events than this are dead.")
@click.option(
    "--refresh-days",
    default=7.0,
    show_default=True,
    help="Warn about connections whose OAuth refresh token dies within this many days.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as one JSON object.")
def health_command(
    app_path: str | None,
    database: str | None,
    stale_after: float,
    max_due_age: float,
    max_dead: int,
    refresh_days: float,
    as_json: bool,
) -> None:
    """Exit 0 when sync is healthy, 1 when not (or the database cannot be read); 2 on a usage error.

    Checks the schema, the workers' heartbeats, the age of the oldest due change and the dead
    items; usable as a Kubernetes liveness or readiness probe. Warns (exit code unchanged) about
    connections whose refresh token dies soon, and paused or revoked ones.
    """
    from ..ops.health import check as check_health

    models = ready_app(app_path, check=False).models if app_path else ()
    with reading(app_path, database) as conn:
        report = check_health(
            conn,
            stale_after=stale_after,
            max_due_age=max_due_age,
            max_dead=max_dead,
            refresh_days=refresh_days,
            models=models,
        )
    if as_json:
        emit_json(report.as_dict())
    else:
        for c in report.checks:
            mark = "FAIL" if not c.ok else "warn" if c.warning else "ok  "
            click.echo(f"{mark} {c.name}: {redact(c.detail)}")
    if not report.ok:
        sys.exit(1)
