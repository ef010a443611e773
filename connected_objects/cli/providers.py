"""``connected-objects providers``: the installed provider plugins, their distributions, versions and extras.

A provider is found through the entry-point group ``connected_objects.providers``; a
provider that fails to load shows its error in the ``status`` column instead of
breaking the list.

Example::

    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(providers, [], terminal_width=200)
    >>> result.exit_code, "Installed providers" in result.output
    (0, True)
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click
from rich.table import Table

from ..exceptions import ConnectedObjectsError
from ..plugin import registry
from ..plugin.provider import extras_of
from .common import console

__all__ = ["providers"]


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


@click.command()
def providers() -> None:
    """List installed provider plugins."""
    console.print(_providers_table())
