"""``connected-objects status``: per scope, the connection, linked objects, and the queues' state.

One row per scope: the connection's status, linked and tombstoned objects,
pending (including captured, not folded yet), in-flight and dead changes,
pending events, parked records, dead events and the last error. ``--json``
prints one object per scope instead. It reads only; ``--database URL`` is
enough (only ``co_*`` tables are read).

Example::

    >>> import tempfile, pathlib
    >>> from click.testing import CliRunner
    >>> from .schema import schema_group
    >>> url = f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'app.sqlite'}"
    >>> _ = CliRunner().invoke(schema_group, ["upgrade", "--database", url])
    >>> CliRunner().invoke(status_command, ["--database", url, "--json"]).output  # no scope yet
    ''
"""

from __future__ import annotations

import click
from rich.table import Table

from ..util.redaction import redact
from .common import app_or_database
from .common import console
from .common import database_option
from .common import emit
from .common import open_db

__all__ = ["status_command"]


@click.command(name="status")
@app_or_database
@database_option("Or a database URL: only co_* tables are read (or CONNECTED_OBJECTS_DATABASE_URL).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per scope.")
def status_command(app_path: str | None, database: str | None, as_json: bool) -> None:
    """Per scope: connected objects, pending/in-flight/dead changes and events, last error."""
    from ..ops.status import status

    with open_db(app_path, database) as db:
        rows = status(db)
    if as_json:
        for item in rows:
            emit(item.as_dict())
        return
    table = Table(title="connected-objects status")
    for col in (
        "scope",
        "connection",
        "onboarding",
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
            (f"{r.onboarding} ({r.held} held)" if r.held else r.onboarding) or "-",
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
