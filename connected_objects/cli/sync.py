"""``connected-objects sync``: a connection's polls due now, or a full resync from the start of its feeds.

The workers poll each connection's change feeds on their own cadences
(:mod:`connected_objects.receive.polling`). ``sync`` makes them due at once, for every
entity the application receives from the scope or for those named; ``--full`` reads each
feed from its start again, through the identity map, so nothing is created twice (it asks
first; ``--yes`` answers for scripts)::

    $ connected-objects sync --app mypkg.sync:hub --scope xero/production/t-1
    due now: Contacts, Invoices (a worker polls them within its --schedule-every)
    $ connected-objects sync --app mypkg.sync:hub --scope xero/production/t-1 --entity Invoices --full --yes

Example::

    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(sync_command, ["--app", "nowhere:hub", "--scope", "xero"])
    >>> result.exit_code, "is not provider/marketplace/account" in result.output
    (2, True)
"""

from __future__ import annotations

import sys

import click

from .common import UserError
from .common import app_option
from .common import console
from .common import emit
from .common import parse_scope
from .common import ready_app

__all__ = ["sync_command"]


@click.command(name="sync")
@app_option
@click.option("--scope", "scope_text", required=True, help="provider/marketplace/account, e.g. xero/production/t-1")
@click.option("--entity", "entities", multiple=True, help="Only this entity (repeat for more).")
@click.option("--full", is_flag=True, help="Read everything again from the start of the feed (nothing is made twice).")
@click.option("--yes", is_flag=True, help="Do not ask before a full resync.")
@click.option("--json", "as_json", is_flag=True, help="Print the entities made due as JSON.")
def sync_command(
    app_path: str, scope_text: str, entities: tuple[str, ...], full: bool, yes: bool, as_json: bool
) -> None:
    """Make a connection's polls due now (--full: read its feeds again from the start)."""
    parse_scope(scope_text)  # a malformed --scope fails before the app is imported
    hub = ready_app(app_path)
    scope = parse_scope(scope_text, hub)
    if full and not yes:
        if not sys.stdin.isatty():
            raise UserError("a full resync reads every record again: confirm with --yes")
        click.confirm(
            f"Read every record of {', '.join(entities) or 'every entity'} of {scope} again from the start?",
            abort=True,
        )
    due = hub.sync(scope, entities=entities or None, full=full)
    if as_json:
        emit({"scope": str(scope), "due": due, "full": full})
        return
    what = "full resync due now" if full else "due now"
    console.print(f"{what}: {', '.join(due) or 'nothing'} (a worker polls them within its --schedule-every)")
