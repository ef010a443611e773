"""``connected-objects demo``: the command this distribution adds to the core's CLI.

The core finds it through the entry point this distribution declares in the
group ``connected_objects.commands``; without it installed, the core's ``demo``
only says how to get it. The command prints the installed providers, plays
:func:`~connected_objects_demo.story.run` and sums up, exiting 1 at the first
step that does not check out:

>>> from connected_objects_demo.command import demo
>>> demo.name, [p.name for p in demo.params]
('demo', ['database'])
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console

from connected_objects.cli.tables import Listing
from connected_objects.plugin import registry

from .story import DemoFailure
from .story import run

__all__ = ["demo"]

console = Console()


@click.command()
@click.option(
    "--database",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("connected-objects-demo.sqlite"),
    show_default=True,
    help="SQLite file for the demo (replaced if it exists, kept afterwards).",
)
@click.pass_context
def demo(ctx: click.Context, database: Path) -> None:
    """Run the main job: the whole Maestrano story against the sandboxes, checked at every step."""
    started = time.monotonic()
    console.rule("connected-objects demo")
    root = ctx.find_root().command
    listing = root.get_command(ctx, "providers") if isinstance(root, click.Group) else None
    if listing is not None:  # the core's own table of the installed providers
        ctx.invoke(listing)
    if "maestrano" not in registry.names():
        raise click.ClickException("the maestrano provider is not installed; run 'uv sync' in the project")
    try:
        summary = run(database, console)
    except DemoFailure as exc:
        console.print(f"[bold red]✗ {exc}[/bold red]")
        raise SystemExit(1) from exc
    table = Listing("Connected objects per scope", ("scope", "connection", "linked", "pending or dead"))
    for row in summary.scopes:
        table.add(row[0], row[1], str(row[2]), str(row[3]))
    table.print(console)
    console.print(
        f"Pushed [bold]{summary.pushed}[/bold] changes, received [bold]{summary.received}[/bold] records, "
        f"retried [bold]{summary.retried}[/bold] pushes, [bold]{summary.dead}[/bold] dead; "
        f"billed {summary.billed_remote} through marketplaces and {summary.billed_local} locally."
    )
    console.print(f"All steps checked out in {time.monotonic() - started:.1f} s. Look again with:")
    console.print(f"  connected-objects status --database sqlite:///{database}")
