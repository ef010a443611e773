"""The sans-I/O webhook core: requests in, responses out, no sockets and no framework.

Providers describe their inbound endpoints as :class:`Route` objects whose
handlers take a :class:`Request` (method, path, lower-cased headers, the raw
body and the path parameters) and return a :class:`Response`. A
:class:`WebhookApp` matches routes and turns every expected failure into the
right 4xx, so the thin adapters (:mod:`connected_objects.web.asgi`,
:mod:`connected_objects.web.wsgi`) only translate to and from their protocol.
Verification helpers compare secrets in constant time.

Example::

    >>> from connected_objects.web.core import Request, Response, Route, WebhookApp
    >>> def hello(request):
    ...     return Response.json(200, {"marketplace": request.params["marketplace"]})
    >>> app = WebhookApp([Route("POST", "/{marketplace}/hello", hello)])
    >>> app.handle(Request("POST", "/maestrano/hello", {}, b"")).body
    b'{"marketplace":"maestrano"}'
    >>> app.handle(Request("GET", "/maestrano/hello", {}, b"")).status
    405
    >>> app.handle(Request("POST", "/nowhere", {}, b"")).status
    404
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = [
    "DEFAULT_MAX_BODY",
    "HTTPError",
    "Request",
    "Response",
    "Route",
    "WebhookApp",
    "basic_auth_matches",
    "hmac_matches",
    "parse_json_object",
]

#: Bodies larger than this are refused with 413 before they are read (1 MiB).
DEFAULT_MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Request:
    """One inbound HTTP request, fully read."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header by case-insensitive name."""
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True)
class Response:
    """What to send back."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def json(cls, status: int, value: Any, headers: Sequence[tuple[str, str]] = ()) -> Response:
        body = json.dumps(value, separators=(",", ":")).encode()
        return cls(status, (("content-type", "application/json"), *headers), body)

    @classmethod
    def empty(cls, status: int = 200) -> Response:
        return cls(status)


class HTTPError(Exception):
    """Raise from a handler to answer with ``status`` and a JSON error message."""

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)

    def response(self) -> Response:
        return Response.json(self.status, {"error": self.message}, self.headers)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """``method`` + path pattern (``{name}`` segments become :attr:`Request.params`) → handler."""

    method: str
    pattern: str
    handler: Handler

    def __post_init__(self) -> None:
        parts = []
        for segment in self.pattern.strip("/").split("/"):
            if segment.startswith("{") and segment.endswith("}"):
                parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
            else:
                parts.append(re.escape(segment))
        object.__setattr__(self, "_regex", re.compile("^/" + "/".join(parts) + "$"))

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters if ``path`` matches, else None."""
        found = self._regex.match(path)  # type: ignore[attr-defined]
        return None if found is None else found.groupdict()


class WebhookApp:
    """A set of routes with a body-size limit; :meth:`handle` never raises for bad input."""

    def __init__(self, routes: Sequence[Route], *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.routes = list(routes)
        self.max_body = max_body

    def handle(self, request: Request) -> Response:
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(request.path)
            if params is None:
                continue
            if route.method != request.method:
                allowed.append(route.method)
                continue
            if len(request.body) > self.max_body:
                return HTTPError(413, f"body larger than {self.max_body} bytes").response()
            try:
                return route.handler(Request(request.method, request.path, request.headers, request.body, params))
            except HTTPError as exc:
                return exc.response()
        if allowed:
            return HTTPError(405, "method not allowed", [("allow", ", ".join(sorted(set(allowed))))]).response()
        return HTTPError(404, "not found").response()


def basic_auth_matches(header: str | None, username: str, password: str) -> bool:
    """Whether an ``Authorization: Basic ...`` header carries these credentials (constant time)."""
    if not header or not header.startswith("Basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{username}:{password}".encode()
    return hmac.compare_digest(decoded, expected)


def hmac_matches(secret: str | bytes, body: bytes, signature: str | None, *, encoding: str = "base64") -> bool:
    """Whether ``signature`` is the HMAC-SHA256 of ``body`` under ``secret`` (base64 or hex; constant time)."""
    if not signature:
        return False
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, body, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def parse_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or :class:`HTTPError` 415/400 with a reason."""
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if content_type not in ("application/json", "application/cloudevents+json", ""):
        raise HTTPError(415, "send application/json")
    try:
        value = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise HTTPError(400, "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise HTTPError(400, "body must be a JSON object")
    return value
