"""``connected-objects schema``: our Alembic migrations, where they live, and checking or upgrading a database.

``location`` and ``snippet`` help an application that runs Alembic itself;
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
from .common import database_option
from .common import open_engine
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
