"""The settings page: the organization's accounts, "Connect to QuickBooks", "Connect to Xero", "Disconnect"."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from html import escape

from connected_objects.connections import ConnectionInfo
from connected_objects.oauth import ConnectFlow
from connected_objects.oauth import Owner

LABELS = {"quickbooks": "QuickBooks", "xero": "Xero"}


def settings_page(
    flow: ConnectFlow | None, owner: Owner, found: Mapping[str, Sequence[ConnectionInfo]], session: str
) -> str:
    """The HTML of the page (every value escaped); ``session`` is the signed-in session, which the
    disconnect forms' tokens are bound to."""
    sections = []
    for name, label in LABELS.items():
        if flow is None or name not in flow.providers:
            sections.append(f"<h2>{label}</h2><p>Connecting {label} accounts is not configured here.</p>")
            continue
        rows = []
        for c in found.get(name, []):
            form = ""
            if c.status != "revoked":
                form = (
                    f'<form method="post" action="{escape(flow.disconnect_path(name))}" style="display:inline">'
                    f'<input type="hidden" name="account" value="{escape(c.scope.account)}">'
                    f'<input type="hidden" name="token" value="{escape(flow.form_token(owner, session))}">'
                    f'<button type="submit">Disconnect {escape(c.scope.account)}</button></form>'
                )
            rows.append(
                f'<li data-account="{escape(c.scope.account)}" data-status="{escape(c.status)}">'
                f"{escape(c.scope.account)}: <strong>{escape(c.status)}</strong> {form}</li>"
            )
        button = "Reconnect" if any(c.status == "paused" for c in found.get(name, [])) else "Connect"
        sections.append(
            f"<h2>{label}</h2><ul>{''.join(rows) or '<li>not connected</li>'}</ul>"
            f'<p><a class="button" href="{escape(flow.start_path(name))}">{button} to {label}</a></p>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Settings</title></head>'
        f"<body><h1>Connected accounts</h1>{''.join(sections)}</body></html>"
    )
