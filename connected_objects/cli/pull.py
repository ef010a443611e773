"""``connected-objects pull``: backfill one entity of one scope, or continue from its stored cursor.

It runs the application's hub (``--app``) and shows a progress bar: records,
pages, and how many were new, updated or deleted. ``--scope`` is checked before
the application is imported, so a typo costs nothing::

    $ connected-objects pull --app mypkg.sync:hub --scope xero/production/t-1 --entity Invoices
    pulled 1204 records of Invoices for xero/production/t-1

Example::

    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(pull_command, ["--app", "nowhere:hub", "--scope", "xero", "--entity", "Invoices"])
    >>> result.exit_code, "is not provider/marketplace/account" in result.output
    (2, True)
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from .common import app_option
from .common import console
from .common import parse_scope
from .common import ready_app

__all__ = ["pull_command"]


@click.command(name="pull")
@app_option
@click.option("--scope", "scope_text", required=True, help="provider/marketplace/account, e.g. xero/production/t-1")
@click.option("--entity", required=True, help="The remote collection, e.g. Invoices.")
def pull_command(app_path: str, scope_text: str, entity: str) -> None:
    """Backfill or continue pulling one entity of one scope, with a progress bar."""
    from rich.progress import Progress
    from rich.progress import SpinnerColumn
    from rich.progress import TextColumn
    from rich.progress import TimeElapsedColumn

    from ..receive.pull import pull

    parse_scope(scope_text)  # a malformed --scope fails before the app is imported
    hub = ready_app(app_path)
    scope = parse_scope(scope_text, hub)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"pull {scope} {entity}", detail="starting", total=None)

        def show(stats: Any) -> None:
            progress.update(
                task,
                detail=f"{stats.records} records, {stats.pages} pages, "
                f"{stats.created} new, {stats.updated} updated, {stats.deleted} deleted",
            )

        stats = asyncio.run(pull(hub, scope, entity, progress=show))
    console.print(f"pulled {stats.records} records of {entity} for {scope}")
