"""``connected-objects schema``: our Alembic migrations, where they live, and checking or upgrading a database.

``location`` and ``snippet`` help an application that runs Alembic itself, and
``triggers --app …`` prints the lines of a migration of yours that creates the
capture triggers of the models under ``capture="database"`` (``--install``
creates them at once, for an application without Alembic);
``check`` and ``upgrade`` work standalone on ``--database URL`` (version table
``co_alembic_version``). Only ``upgrade`` creates a SQLite file.

Example::

    >>> import tempfile, pathlib
    >>> from click.testing import CliRunner
    >>> url = f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'app.sqlite'}"
    >>> CliRunner().invoke(schema_group, ["check", "--database", url]).exit_code  # no file: usage error
    2
    >>> CliRunner().invoke(schema_group, ["upgrade", "--database", url]).output.startswith("upgraded to")
    True
    >>> CliRunner().invoke(schema_group, ["check", "--database", url]).output.startswith("up to date")
    True
"""

from __future__ import annotations

import click

from ..store import schema
from .common import UserError
from .common import app_option
from .common import database_option
from .common import open_engine
from .common import ready_app
from .common import required

__all__ = ["schema_group"]


@click.group(name="schema")
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
@database_option()
def check(database: str | None) -> None:
    """Exit non-zero unless the co_* tables are up to date (creates nothing)."""
    engine = open_engine(required(database))
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
    engine = open_engine(required(database), create=True)
    try:
        schema.upgrade(engine)
        click.echo(f"upgraded to {schema.head()}")
    finally:
        engine.dispose()


@schema_group.command(name="triggers")
@app_option
@click.option("--install", "install_now", is_flag=True, help="Create them now instead (for apps without Alembic).")
def triggers_command(app_path: str, install_now: bool) -> None:
    """Print the Alembic lines that create the capture triggers of the models under capture='database'."""
    from ..declare import triggers

    hub = ready_app(app_path, check=False)
    models = triggers.captured_models(hub.models)
    if not models:
        raise UserError("no model of this hub is @connected with capture='database': nothing needs triggers")
    wanted = [triggers.CaptureTriggers.of(model) for model in models]
    if install_now:
        with hub.engine.begin() as conn:
            # the triggers write into co_journal: without our tables every write to these tables would fail
            schema.check(conn)
            triggers.install(conn, wanted)
        click.echo(f"capture triggers created on {', '.join(t.table for t in wanted)}")
        return
    click.echo(triggers.migration(wanted), nl=False)
