"""The sans-I/O webhook core: requests in, responses out, no sockets and no framework.

Providers describe their inbound endpoints as :class:`Route` objects whose
handlers take a :class:`Request` (method, path, lower-cased headers, the raw
body and the path parameters) and return a :class:`Response`. A
:class:`HttpApp` matches routes and turns every expected failure into the
right 4xx, so the thin adapters (:mod:`connected_objects.web.asgi`,
:mod:`connected_objects.web.wsgi`) only translate to and from their protocol.
Verification helpers compare secrets in constant time.

Every route is strict about its path: each ``{name}`` segment needs a check
(``params``) that the core runs before the handler, so a request naming a
marketplace or environment that is not configured is refused (404 unless the
route says otherwise) and its handler never runs, never writes. A route that
leaves a path parameter unchecked cannot be built. Bodies are read with the
one bounded JSON reader (:mod:`connected_objects.web.body`): too deep, too big
or not strict JSON is 400. :meth:`HttpApp.handle` never raises: anything
unexpected is logged with its traceback and answered with a generic 500.

A webhook is acknowledged only once it is stored. When the database cannot
take it (unreachable, connection cut, locked, pool exhausted), the answer is
``503 Service Unavailable`` with a ``Retry-After`` (:data:`RETRY_AFTER`
seconds, or ``HttpApp(retry_after=...)``): the transaction was rolled back,
nothing was kept, and the provider delivers again later, as QuickBooks,
Xero and Connec! do for any answer that is not 2xx. Neither a 2xx (the
delivery would be lost) nor a 500 (it says our code is broken).

Example::

    >>> from connected_objects.web.core import Request, Response, Route, HttpApp
    >>> def hello(request):
    ...     return Response.json(200, {"marketplace": request.params["marketplace"]})
    >>> known = {"maestrano", "maestrano-uat"}
    >>> app = HttpApp([Route("POST", "/{marketplace}/hello", hello, params={"marketplace": known.__contains__})])
    >>> app.handle(Request("POST", "/maestrano/hello", {}, b"")).body
    b'{"marketplace":"maestrano"}'
    >>> app.handle(Request("POST", "/elsewhere/hello", {}, b"")).status
    404
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
import logging
import re
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ..util.redaction import install_log_filter
from .body import DEFAULT_MAX_BODY
from .body import UnreadableBody
from .body import read_json

__all__ = [
    "DEFAULT_MAX_BODY",
    "RETRY_AFTER",
    "HTTPError",
    "HttpApp",
    "Request",
    "Response",
    "Route",
    "basic_auth_matches",
    "content_length",
    "hmac_matches",
    "identifier",
    "parse_json_object",
]

logger = logging.getLogger(__name__)
install_log_filter([logger.name])  # tracebacks of failed requests are logged redacted


@dataclass(frozen=True)
class Request:
    """One inbound HTTP request, fully read."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)
    #: The raw query string (without ``?``), as the adapter received it.
    query: str = ""

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
#: A path parameter's check: whether this value names something configured.
Check = Callable[[str], bool]

_NOT_FOUND = HTTPError(404, "not found").response()

#: Seconds a sender is asked to wait (``Retry-After``) when the database could not store its delivery.
RETRY_AFTER = 30


@dataclass(frozen=True)
class Route:
    """``method`` + path pattern (``{name}`` segments become :attr:`Request.params`) → handler.

    :param params: one check per ``{name}`` in the pattern, run before the
        handler; a value it refuses gets ``refusal`` and the handler never runs.
        Every path parameter must have one (``ValueError`` otherwise).
    :param refusal: the answer to a refused path parameter (default: 404). A
        route behind credentials can answer exactly as it does to bad
        credentials, so callers cannot tell which names exist.
    """

    method: str
    pattern: str
    handler: Handler
    params: Mapping[str, Check] = field(default_factory=dict)
    refusal: Response = _NOT_FOUND

    def __post_init__(self) -> None:
        parts = []
        names = []
        for segment in self.pattern.strip("/").split("/"):
            if segment.startswith("{") and segment.endswith("}"):
                names.append(segment[1:-1])
                parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
            else:
                parts.append(re.escape(segment))
        unchecked = sorted(set(names) - set(self.params))
        if unchecked:
            raise ValueError(
                f"route {self.method} {self.pattern} does not check its path parameter(s) {', '.join(unchecked)}: "
                "give Route(params={name: check}) a check against your configuration for each"
            )
        unknown = sorted(set(self.params) - set(names))
        if unknown:
            raise ValueError(f"route {self.method} {self.pattern} has no path parameter(s) {', '.join(unknown)}")
        object.__setattr__(self, "_regex", re.compile("^/" + "/".join(parts) + "$"))

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters if ``path`` matches, else None."""
        found = self._regex.match(path)  # type: ignore[attr-defined]
        return None if found is None else found.groupdict()

    def accepts(self, params: Mapping[str, str]) -> bool:
        """Whether every path parameter passes its check."""
        return all(check(params[name]) for name, check in self.params.items())


class HttpApp:
    """A set of routes with a body-size limit; :meth:`handle` never raises.

    :param retry_after: the ``Retry-After`` (seconds) of the 503 answered when the database cannot store.
    """

    def __init__(
        self, routes: Sequence[Route], *, max_body: int = DEFAULT_MAX_BODY, retry_after: int = RETRY_AFTER
    ) -> None:
        self.routes = list(routes)
        self.max_body = max_body
        self.retry_after = retry_after

    def handle(self, request: Request) -> Response:
        """The response to ``request``: the route's, a 4xx for what it refuses, a 503 with ``Retry-After``
        when the database could not store it, or a generic 500."""
        try:
            return self._dispatch(request)
        except HTTPError as exc:
            return exc.response()
        except UnreadableBody as exc:
            return HTTPError(400, str(exc)).response()
        except (DBAPIError, PoolTimeout) as exc:
            # nothing was stored (the handler's transaction rolled back): the sender must deliver again.
            # The driver's message stays in our log (redacted); the sender learns only that we are busy.
            reason = exc.orig if isinstance(exc, DBAPIError) else exc
            logger.warning(
                "an inbound %s request was not stored, the database failed; answered 503: %s",
                request.method,
                str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__,
            )
            headers = [("retry-after", str(self.retry_after))]
            return HTTPError(503, "temporarily unable to store the delivery; send it again later", headers).response()
        except Exception:
            # the traceback goes to the log, through the redacting filter (a secret in an exception's
            # message never reaches the log); the client learns nothing of it
            logger.exception("an inbound %s request failed unexpectedly", request.method)
            return HTTPError(500, "internal error: the details are in the server's log").response()

    def _dispatch(self, request: Request) -> Response:
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
            if not route.accepts(params):
                return route.refusal
            return route.handler(
                Request(request.method, request.path, request.headers, request.body, params, request.query)
            )
        if allowed:
            return HTTPError(405, "method not allowed", [("allow", ", ".join(sorted(set(allowed))))]).response()
        return _NOT_FOUND


def identifier(max_length: int = 128) -> Check:
    """A check for a path segment that names a remote account or user rather than configuration:
    1 to ``max_length`` printable characters. Handlers still look the id up (and write nothing
    for one they do not know).

    >>> identifier(8)("cld-1"), identifier(8)("cld-123456"), identifier()("a\\x00b")
    (True, False, False)
    """

    def check(value: str) -> bool:
        return 0 < len(value) <= max_length and value.isprintable()

    return check


def content_length(value: str) -> int | None:
    """A ``Content-Length`` value as a number, or None when it is not one (ASCII digits only:
    ``int()`` also takes ``"٣"`` and refuses 5,000 digits). Absurd lengths come back as 10**18.

    >>> content_length("42"), content_length("4 2"), content_length("\u0663"), content_length("9" * 5000)
    (42, None, None, 1000000000000000000)
    """
    digits = value.strip()
    if not digits or not (digits.isascii() and digits.isdigit()):
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else 10**18


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
    """The body as a JSON object (read by the bounded reader), or :class:`HTTPError` 415/400 with a reason."""
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if content_type not in ("application/json", "application/cloudevents+json", ""):
        raise HTTPError(415, "send application/json")
    try:
        value = read_json(request.body)
    except UnreadableBody as exc:
        raise HTTPError(400, str(exc)) from None
    if not isinstance(value, dict):
        raise HTTPError(400, "body must be a JSON object")
    return value
