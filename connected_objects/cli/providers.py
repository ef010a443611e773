"""``connected-objects providers``: the installed provider plugins, their distributions, versions and extras.

A provider is found through the entry-point group ``connected_objects.providers``; a
provider that fails to load shows its error in the ``status`` column instead of
breaking the list.

Example::

    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(providers, [], terminal_width=200)
    >>> result.exit_code, "Installed providers" in result.output
    (0, True)
    >>> import json
    >>> listed = CliRunner().invoke(providers, ["--json"]).output.splitlines()
    >>> {"maestrano", "quickbooks", "xero"} <= {json.loads(line)["provider"] for line in listed}
    True
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click

from ..exceptions import ConnectedObjectsError
from ..plugin import registry
from ..plugin.provider import extras_of
from .common import console
from .common import emit
from .tables import Listing

__all__ = ["providers"]


def _installed() -> list[dict[str, str]]:
    """One item per registered provider: its name, distribution, version, status and extras."""
    dists = {ep.name: ep.dist for ep in entry_points(group=registry.GROUP)}
    found = []
    for name in registry.names():
        dist = dists.get(name)
        extras = ""
        try:
            provider = registry.get(name)
            status = f"ok ({len(provider.entities)} entities)"
            extras = ", ".join(extras_of(provider).names)
        except ConnectedObjectsError as exc:
            status = str(exc)
        found.append(
            {
                "provider": name,
                "distribution": dist.name if dist else "(registered in-process)",
                "version": dist.version if dist else "",
                "status": status,
                "extras": extras,
            }
        )
    return found


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per provider.")
def providers(as_json: bool) -> None:
    """List installed provider plugins."""
    found = _installed()
    if as_json:
        for item in found:
            emit(item)
        return
    table = Listing("Installed providers", ("provider", "distribution", "version", "status", "extras"))
    for item in found:
        table.add(*(item[col] or "-" for col in table.columns))
    table.print(console)
