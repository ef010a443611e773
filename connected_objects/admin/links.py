"""Which links the admin pages render: ``http(s)`` URLs and relative paths, nothing else.

The application hands the admin links (``reconnect_url`` answers, the mount
path). Jinja2's autoescaping keeps a link from breaking out of its attribute,
but not from being a ``javascript:`` or ``data:`` URL that runs when an
operator clicks it. :func:`safe_link` keeps a link only when its scheme is
``http`` or ``https``, or when it is a path on this site (``/connect/...``,
``settings?x=1``); anything else — another scheme, a protocol-relative
``//host``, a backslash some browsers read as a slash, a control character or
a space — is dropped (the page shows no link rather than a dangerous one).

Example::

    >>> from connected_objects.admin.links import safe_link
    >>> safe_link("https://app.example/connect/xero/start"), safe_link("/connect/quickbooks/start")
    ('https://app.example/connect/xero/start', '/connect/quickbooks/start')
    >>> safe_link("javascript:alert(1)"), safe_link(" JaVaScRiPt:alert(1)"), safe_link("//evil.example/x")
    (None, None, None)
    >>> safe_link("data:text/html,<b>"), safe_link("/\\\\evil.example"), safe_link(None)
    (None, None, None)
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["is_relative_path", "safe_link"]

_SCHEMES = frozenset({"http", "https"})


def is_relative_path(link: str) -> bool:
    """Whether ``link`` is a path on this site: no scheme, no host, not ``//…`` nor ``\\…``."""
    if not link or any(ord(c) <= 0x20 or c == "\x7f" for c in link):
        return False
    if link.startswith(("//", "\\", "/\\")):
        return False
    parts = urlsplit(link)
    return not parts.scheme and not parts.netloc and ":" not in link.split("/", 1)[0]


def safe_link(link: str | None) -> str | None:
    """``link`` when it is an ``http(s)`` URL with a host or a relative path, else None."""
    if not isinstance(link, str) or not link:
        return None
    if is_relative_path(link):
        return link
    if any(ord(c) <= 0x20 or c == "\x7f" or c == "\\" for c in link):
        return None
    parts = urlsplit(link)
    return link if parts.scheme.lower() in _SCHEMES and parts.netloc else None
