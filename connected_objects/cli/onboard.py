"""``connected-objects adopt``, ``export`` and ``link``: onboard a company that already keeps books.

``adopt`` pairs the company's existing records with the application's rows by
natural keys; a dry run by default (it writes nothing), ``--apply`` links the
matches. ``export`` queues the rows that have no counterpart, for the workers
to push. ``link`` settles an ambiguous row by hand::

    $ connected-objects adopt --app mypkg.sync:hub --scope quickbooks/production/9130354
    dry run, nothing written: quickbooks/production/9130354
      Customer (customer) by DisplayName, PrimaryEmailAddr.Address: 300 matched, 20 ambiguous, ...
    $ connected-objects adopt --app mypkg.sync:hub --scope quickbooks/production/9130354 --apply
    $ connected-objects link --app mypkg.sync:hub --scope quickbooks/production/9130354 \\
          --entity Customer --local customer/17 --remote 58
    $ connected-objects export --app mypkg.sync:hub --scope quickbooks/production/9130354 --since 2026-01-01

Example::

    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(adopt_command, ["--app", "nowhere:hub", "--scope", "qbo"])
    >>> result.exit_code, "is not provider/marketplace/account" in result.output
    (2, True)
"""

from __future__ import annotations

import asyncio
import datetime as dt

import click

from .common import UserError
from .common import app_option
from .common import console
from .common import emit
from .common import parse_scope
from .common import ready_app

__all__ = ["adopt_command", "export_command", "link_command"]

SCOPE_HELP = "provider/marketplace/account, e.g. quickbooks/production/9130354"


@click.command(name="adopt")
@app_option
@click.option("--scope", "scope_text", required=True, help=SCOPE_HELP)
@click.option("--entity", "entities", multiple=True, help="Only this entity (repeat for more).")
@click.option("--apply", "apply", is_flag=True, help="Link the matches and import remote-only records.")
@click.option("--ambiguous", "show_ambiguous", is_flag=True, help="List every ambiguous row, not a few.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per entity.")
def adopt_command(
    app_path: str, scope_text: str, entities: tuple[str, ...], apply: bool, show_ambiguous: bool, as_json: bool
) -> None:
    """Pair a connected company's existing records with your rows by natural keys (a dry run unless --apply)."""
    from ..receive.adopt import adopt

    parse_scope(scope_text)  # a malformed --scope fails before the app is imported
    hub = ready_app(app_path)
    scope = parse_scope(scope_text, hub)
    report = asyncio.run(adopt(hub, scope, entities=entities or None, apply=apply))
    if as_json:
        for e in report.entities:
            emit(
                {
                    "scope": str(scope),
                    "applied": apply,
                    "entity": e.entity,
                    "local_type": e.local_type,
                    "keys": list(e.keys),
                    "matched": e.matched,
                    "ambiguous": sum(len(a.local_ids) for a in e.ambiguous),
                    "local_only": e.local_only,
                    "remote_only": e.remote_only,
                    "linked": e.linked,
                    "imported": e.imported,
                    "skipped": e.skipped,
                }
            )
        return
    console.print(report.summary(), markup=False, highlight=False)
    for e in report.entities:
        if e.examples.get("matched"):
            pairs = ", ".join(f"{local}={remote}" for local, remote in e.examples["matched"])
            console.print(f"    e.g. matched {e.local_type}=remote: {pairs}", markup=False, highlight=False)
        shown = e.ambiguous if show_ambiguous else e.ambiguous[:5]
        for a in shown:
            console.print(
                f"    ambiguous {a.key}={a.value!r}: {e.local_type} {', '.join(a.local_ids)} "
                f"or remote {', '.join(a.foreign_ids)}",
                markup=False,
                highlight=False,
            )
        if len(e.ambiguous) > len(shown):
            console.print(f"    ... {len(e.ambiguous) - len(shown)} more (--ambiguous lists them all)", markup=False)
    if report.ambiguous_rows:
        console.print(
            f"{report.ambiguous_rows} rows are ambiguous: link each by hand (connected-objects link ...); "
            "they are not exported until then",
            markup=False,
        )
    if not apply:
        console.print("nothing was written; run again with --apply to link the matches", markup=False)


@click.command(name="export")
@app_option
@click.option("--scope", "scope_text", required=True, help=SCOPE_HELP)
@click.option("--entity", "entities", multiple=True, help="Only this entity (repeat for more).")
@click.option("--since", default=None, help="Only rows changed since this date (YYYY-MM-DD), by --changed-at.")
@click.option(
    "--changed-at", default="updated_at", show_default=True, help="The attribute holding a row's last change."
)
def export_command(
    app_path: str, scope_text: str, entities: tuple[str, ...], since: str | None, changed_at: str
) -> None:
    """Queue a push of every row of yours that has no counterpart in a connected company."""
    from rich.progress import Progress
    from rich.progress import SpinnerColumn
    from rich.progress import TextColumn

    from ..push.export import export

    parse_scope(scope_text)
    cutoff = _date(since) if since else None
    hub = ready_app(app_path)
    scope = parse_scope(scope_text, hub)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True) as bar:
        task = bar.add_task(f"export to {scope}", total=None)

        def show(entity: str, queued: int) -> None:
            bar.update(task, description=f"export to {scope}: {entity}, {queued} queued")

        report = export(hub, scope, entities=entities or None, since=cutoff, changed_at=changed_at, progress=show)
    console.print(report.summary(), markup=False, highlight=False)


@click.command(name="link")
@app_option
@click.option("--scope", "scope_text", required=True, help=SCOPE_HELP)
@click.option("--entity", required=True, help="The remote collection, e.g. Customer.")
@click.option("--local", "local", required=True, help="local_type/local_id, e.g. customer/17.")
@click.option("--remote", "foreign_id", required=True, help="The remote record's id.")
def link_command(app_path: str, scope_text: str, entity: str, local: str, foreign_id: str) -> None:
    """Link one of your rows to a remote record by hand (an ambiguous row adopting left)."""
    from ..push.rows import load_rows
    from ..receive.adopt import link_by_hand

    parse_scope(scope_text)
    local_type, _, local_id = local.partition("/")
    if not local_type or not local_id:
        raise UserError(f"--local {local!r} is not local_type/local_id, e.g. customer/17")
    hub = ready_app(app_path)
    scope = parse_scope(scope_text, hub)
    spec = hub.spec(local_type, scope.provider)
    if spec is None or spec.entity != entity:
        known = ", ".join(f"{s.local_type} ({s.entity})" for s in hub.specs(scope.provider)) or "none"
        raise UserError(f"no model of local type {local_type!r} syncs {entity!r} with {scope.provider}; known: {known}")
    with hub.session_factory.begin() as session:
        if not load_rows(session, spec, [local_id]):
            raise UserError(f"{local_type} {local_id} does not exist: nothing was linked")
        link_by_hand(session, scope, entity, local_type, local_id, foreign_id)
    console.print(f"linked {local_type} {local_id} to {entity} {foreign_id} in {scope}", markup=False)


def _date(text: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date: use YYYY-MM-DD", param_hint="--since") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
