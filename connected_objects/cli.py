"""The ``connected-objects`` command.

Run ``connected-objects --help`` for the list. The commands so far:

``demo``
    the main job: builds a fresh SQLite database from our migrations, checks
    it, and lists the installed providers.
``providers``
    the installed provider plugins, their distributions and versions.
``schema location | snippet | check | upgrade``
    where our migrations live, what to paste into an Alembic set-up, and
    checking or upgrading a database given by ``--url``.

Example::

    $ connected-objects schema check --url sqlite:///app.sqlite
"""

from __future__ import annotations

import sys
import tempfile
from importlib.metadata import entry_points
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine

from . import registry
from . import schema
from .exceptions import ConnectedObjectsError

__all__ = ["main"]

console = Console()


@click.group()
@click.version_option(package_name="connected-objects")
def main() -> None:
    """Keep SQLAlchemy rows connected to remote business systems."""


def _providers_table() -> Table:
    table = Table(title="Installed providers")
    table.add_column("provider")
    table.add_column("distribution")
    table.add_column("version")
    table.add_column("status")
    dists = {ep.name: ep.dist for ep in entry_points(group=registry.GROUP)}
    for name in registry.names():
        dist = dists.get(name)
        try:
            provider = registry.get(name)
            status = f"ok ({len(provider.entities)} entities)"
        except ConnectedObjectsError as exc:
            status = f"[red]{exc}[/red]"
        table.add_row(name, dist.name if dist else "(registered in-process)", dist.version if dist else "", status)
    return table


@main.command()
def providers() -> None:
    """List installed provider plugins."""
    console.print(_providers_table())


@main.command()
@click.option(
    "--database",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file to use (default: a fresh temporary file).",
)
def demo(database: Path | None) -> None:
    """Run the main job on an embedded SQLite database."""
    with tempfile.TemporaryDirectory(prefix="connected-objects-demo-") as tmp:
        path = database or Path(tmp) / "demo.sqlite"
        engine = create_engine(f"sqlite:///{path}")
        try:
            console.rule("connected-objects demo")
            console.print(f"Database: [bold]{path}[/bold]")
            schema.upgrade(engine)
            with engine.connect() as conn:
                schema.check(conn)
                console.print(f"Schema: at [green]{schema.current(conn)}[/green] (head {schema.head()})")
            table = _providers_table()
            console.print(table)
            if not registry.names():
                raise click.ClickException("no provider is installed; run 'uv sync' in the project")
        finally:
            engine.dispose()


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
