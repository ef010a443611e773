"""``connected-objects reconcile``: find what no feed reported in a connected company, and repair it.

It compares the provider's whole list of an entity (a page at a time, within the
scope's limits) with the identity map and your rows, and counts, per entity:
``gone`` (linked records the provider no longer has), ``unpushed`` (rows never
pushed), ``unlinked`` (records no row links), ``stale`` (newer versions never
applied) and ``ambiguous`` (rows a natural key cannot pair, left to you). A dry
run by default: it writes nothing but its report (kept for ``status`` and
``explain``); ``--repair`` repairs (see :mod:`connected_objects.receive.reconcile`)::

    $ connected-objects reconcile --app mypkg.sync:hub --scope xero/production/0b9c…
    dry run, nothing written: xero/production/0b9c…
      Items (product): 1 gone, 1 unlinked (212 records listed, 211 rows)
        gone: 4f6d…
        unlinked: 8a31…
    nothing was written but the report; run again with --repair to repair
    $ connected-objects reconcile --app mypkg.sync:hub --scope xero/production/0b9c… --entity Items --repair --json

Example::

    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(reconcile_command, ["--app", "nowhere:hub", "--scope", "xero"])
    >>> result.exit_code, "is not provider/marketplace/account" in result.output
    (2, True)
"""

from __future__ import annotations

import asyncio

import click

from .common import app_option
from .common import console
from .common import emit
from .common import parse_scope
from .common import ready_app

__all__ = ["reconcile_command"]

SCOPE_HELP = "provider/marketplace/account, e.g. xero/production/0b9c…"


@click.command(name="reconcile")
@app_option
@click.option("--scope", "scope_text", required=True, help=SCOPE_HELP)
@click.option("--entity", default=None, help="Only this entity (default: every connected one).")
@click.option("--repair", is_flag=True, help="Repair what is found (default: a dry run, only the report is stored).")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per entity.")
def reconcile_command(app_path: str, scope_text: str, entity: str | None, repair: bool, as_json: bool) -> None:
    """Compare a connected company's records with your rows and links; with --repair, repair the drift."""
    from ..receive.reconcile import reconcile

    parse_scope(scope_text)  # a malformed --scope fails before the app is imported
    hub = ready_app(app_path)
    scope = parse_scope(scope_text, hub)
    report = asyncio.run(reconcile(hub, scope, entity, repair=repair))
    if as_json:
        for e in report.entities:
            emit({"scope": str(scope), "repair": repair, **e.as_dict()})
        return
    head, *lines = report.summary().splitlines()
    console.print(head, markup=False, highlight=False)
    for e, line in zip(report.entities, lines, strict=True):  # each entity's examples under its own line
        console.print(line, markup=False, highlight=False, soft_wrap=True)
        for kind, ids in e.examples.items():
            if ids:
                console.print(f"    {kind}: {', '.join(ids)}", markup=False, highlight=False, soft_wrap=True)
    if not repair and not report.clean:
        console.print("nothing was written but the report; run again with --repair to repair", markup=False)
