"""The few HTML pages of "Connect an account": the tenant picker and the refusals.

Everything shown is escaped; no page ever shows a token, a code, a verifier or
the state's signature (a refusal names what went wrong and what to do).

Example::

    >>> from connected_objects.oauth.pages import refusal
    >>> response = refusal(400, "Xero", "the state parameter is not one this application signed")
    >>> response.status, b"start again" in response.body, response.headers[0]
    (400, True, ('content-type', 'text/html; charset=utf-8'))
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ..plugin.provider import GrantedAccount
from ..web.core import Response

__all__ = ["page", "picker", "refusal"]

_STYLE = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}"
#: Pages are never framed, sniffed nor cached, send no referrer (they sit at the callback URL, which
#: holds the authorization code), and run no script: the admin pages' headers.
_HEADERS = (
    ("content-type", "text/html; charset=utf-8"),
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
)


def page(status: int, title: str, body: str, headers: Sequence[tuple[str, str]] = ()) -> Response:
    """An HTML page; ``body`` is already escaped markup."""
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return Response(status, (*_HEADERS, *headers), html.encode())


def refusal(status: int, provider: str, reason: str, *, again: str | None = None) -> Response:
    """A refused step: what went wrong, and a link to start again."""
    link = f'<p><a href="{escape(again)}">Start again</a></p>' if again else "<p>Please start again.</p>"
    return page(
        status,
        f"Connecting {provider} did not complete",
        f'<p role="alert">{escape(reason)}.</p><p>Nothing was connected; start again from your application.</p>' + link,
    )


def picker(provider: str, action: str, state: str, accounts: Sequence[GrantedAccount]) -> Response:
    """The form where the user picks which of the granted accounts to connect (each its own connection)."""
    rows = "".join(
        f'<li><label><input type="checkbox" name="account" value="{escape(a.scope.account)}"> '
        f"{escape(a.name or a.scope.account)}</label></li>"
        for a in accounts
    )
    body = (
        f"<p>{escape(provider)} gave access to these organisations. Pick the ones to connect.</p>"
        f'<form method="post" action="{escape(action)}"><input type="hidden" name="state" value="{escape(state)}">'
        f'<ul style="list-style:none;padding:0">{rows}</ul><button type="submit">Connect</button></form>'
    )
    return page(200, f"Choose what to connect to {provider}", body)
