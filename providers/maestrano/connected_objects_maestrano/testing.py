"""Sandboxes for the Maestrano provider, for our tests and yours.

:class:`FakeDevPlatform` serves ``GET /api/config/v1/marketplaces`` behind HTTP
Basic auth, and can be switched down or made to answer garbage, to exercise the
last-good fallback. :func:`marketplace_config` makes a realistic marketplace
entry (the developer platform's shape) for tests.

Example::

    >>> import httpx
    >>> from connected_objects_maestrano import DevPlatform
    >>> from connected_objects_maestrano.testing import FakeDevPlatform, marketplace_config
    >>> platform = FakeDevPlatform([marketplace_config("maestrano-uat")])
    >>> source = DevPlatform("http://dev", "env-key", "env-secret", transport=httpx.WSGITransport(platform))
    >>> source.marketplaces.keys()
    ['maestrano-uat']
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

__all__ = ["FakeDevPlatform", "marketplace_config"]


def marketplace_config(key: str, *, api_id: str | None = None, api_key: str | None = None) -> dict[str, Any]:
    """One marketplace as the developer platform describes it."""
    return {
        "marketplace": key,
        "environment": key,
        "app": {"host": "https://app.example.com"},
        "api": {
            "id": api_id or f"app-{key}",
            "key": api_key or f"secret-key-of-{key}",
            "host": f"https://api-hub.{key}.example",
            "base": "/api/v1/",
        },
        "sso": {
            "idm": "https://app.example.com",
            "idp": f"https://api-hub.{key}.example",
            "init_path": f"/mno-enterprise/{key}/saml/initialize",
            "consume_path": f"/mno-enterprise/{key}/saml/consume",
            "x509_fingerprint": "01:02:03",
        },
        "connec": {"host": f"https://api-connec.{key}.example", "base_path": "/api/v2", "timeout": 180},
        "webhooks": {
            "account": {
                "group_path": f"/mno-enterprise/{key}/account/group/:id",
                "group_user_path": f"/mno-enterprise/{key}/account/group/:group_id/user/:id",
            },
            "connec": {"external_ids": True, "notification_path": f"/mno-enterprise/{key}/connec/receive"},
        },
    }


class FakeDevPlatform:
    """A WSGI app standing in for the developer platform."""

    def __init__(
        self,
        marketplaces: Iterable[dict[str, Any]],
        *,
        key: str = "env-key",
        secret: str = "env-secret",  # noqa: S107 - the fake's own test credential
    ) -> None:
        self.marketplaces = list(marketplaces)
        self.credentials = f"{key}:{secret}"
        self.down = False
        self.garbage: bytes | None = None
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.calls += 1
        if self.down:
            start_response("503 Service Unavailable", [("content-type", "text/plain")])
            return [b"down for maintenance"]
        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
        if environ.get("HTTP_AUTHORIZATION") != expected:
            start_response("401 Unauthorized", [("content-type", "application/json")])
            return [b'{"error": "unauthorized"}']
        if environ.get("PATH_INFO") != "/api/config/v1/marketplaces":
            start_response("404 Not Found", [("content-type", "application/json")])
            return [b'{"error": "not found"}']
        start_response("200 OK", [("content-type", "application/json")])
        return [self.garbage if self.garbage is not None else json.dumps({"marketplaces": self.marketplaces}).encode()]
