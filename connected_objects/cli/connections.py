"""``connected-objects connections settings``: show or set one connection's settings.

Settings are the values a mapping takes per company (a Xero organisation's sales
account code, a QuickBooks company's default item): each mapping field holding a
:class:`~connected_objects.declare.settings.Setting`. Without ``KEY=VALUE`` pairs
the command shows the connection's settings, their defaults and the choices of
each from the company's own catalog (pulled through the provider and cached on the
connection when not cached yet; ``--refresh`` pulls them again). With pairs it
checks every value against the catalog and stores them all, or none: an unknown
setting or a value not in the catalog is one ``Error:`` line naming the setting,
the connection and the valid choices (exit 2). ``KEY=`` (empty) unsets a key, so
its default applies again::

    $ connected-objects connections settings --app mypkg.sync:hub --scope xero/production/t-1
    sales_account = 4000   (default 200; Accounts: 200 Sales, 4000 Services)
    $ connected-objects connections settings --app mypkg.sync:hub --scope xero/production/t-1 sales_account=999
    Error: setting sales_account of xero/production/t-1 is '999', not one of its Accounts: 200 (Sales), ...

Example::

    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(connections_group, ["settings", "--app", "x:hub", "--scope", "xero/p/t", "oops"])
    >>> result.exit_code, "KEY=VALUE" in result.output
    (2, True)
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from ..util.redaction import redact
from .common import UserError
from .common import app_option
from .common import emit
from .common import parse_scope
from .common import ready_app

__all__ = ["connections_group", "parse_pairs"]


def parse_pairs(pairs: tuple[str, ...]) -> dict[str, str | None]:
    """``KEY=VALUE`` arguments as a dict; an empty value is None (unset).

    >>> parse_pairs(("sales_account=4000", "tax="))
    {'sales_account': '4000', 'tax': None}
    """
    out: dict[str, str | None] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise UserError(f"{pair!r} is not KEY=VALUE (KEY= unsets a setting)")
        out[key.strip()] = value.strip() or None
    return out


@click.group(name="connections")
def connections_group() -> None:
    """Each connection's own settings (account codes, tax types, default items)."""


@connections_group.command(name="settings")
@app_option
@click.option("--scope", "scope_text", required=True, help="provider/marketplace/account, e.g. xero/production/t-1")
@click.option("--refresh", is_flag=True, help="Pull the company's catalogs again before showing or checking.")
@click.option("--json", "as_json", is_flag=True, help="Print the settings and their choices as JSON.")
@click.argument("pairs", nargs=-1, metavar="[KEY=VALUE]...")
def settings_command(app_path: str, scope_text: str, refresh: bool, as_json: bool, pairs: tuple[str, ...]) -> None:
    """Show a connection's settings with their choices, or check and set KEY=VALUE pairs."""
    from .. import connections
    from ..exceptions import ConfigurationError
    from ..push import catalogs

    values = parse_pairs(pairs)  # a malformed pair fails before the app is imported
    parse_scope(scope_text)
    hub = ready_app(app_path)
    scope = parse_scope(scope_text, hub)
    declared = catalogs.declared(hub, scope.provider)
    try:
        if values or refresh:
            info = asyncio.run(catalogs.apply(hub, scope, values, refresh=refresh))
        else:
            with hub.session_factory() as session:
                found = connections.get(hub.connection(session), scope)
            if found is None:
                raise ConfigurationError(f"{scope} has no connection; connect it first")
            info = found
        with hub.session_factory() as session:
            cached = connections.catalogs(hub.connection(session), scope)
        unloaded = catalogs.missing(declared, cached)
        if unloaded:
            cached = asyncio.run(catalogs.load(hub, scope, unloaded))
    except ConfigurationError as exc:
        raise UserError(redact(str(exc))) from None
    rows: list[dict[str, Any]] = []
    for name, setting in sorted(declared.items()):
        rows.append(
            {
                "name": name,
                "value": setting.value(info.settings),
                "set": name in info.settings,
                "default": setting.default,
                "catalog": setting.catalog,
                "choices": [{"value": v, "label": label} for v, label in catalogs.described(setting, cached)],
            }
        )
    if as_json:
        emit({"scope": str(scope), "settings": rows}, indent=2)
        return
    if not rows:
        click.echo(f"{scope}: no mapping of {scope.provider} holds a Setting")
    for row in rows:
        shown = ", ".join(f"{c['value']} {c['label']}".strip() for c in row["choices"][:20])
        more = f", … {len(row['choices']) - 20} more" if len(row["choices"]) > 20 else ""
        where = f"; {row['catalog']}: {shown}{more}" if row["catalog"] else ""
        state = "" if row["set"] else " (default)"
        click.echo(redact(f"{row['name']} = {row['value']}{state}   (default {row['default']}{where})"))
