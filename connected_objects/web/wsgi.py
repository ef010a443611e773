"""The WSGI adapter: serve a :class:`~connected_objects.web.core.HttpApp` from Flask, Django or any WSGI server.

It reads at most the body-size limit (413 beyond it, decided from
``CONTENT_LENGTH`` before reading), hands the request to the sans-I/O core
and writes the response. ``SCRIPT_NAME`` (the mount prefix) is not part of
the matched path.

Example (Flask)::

    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/mno-enterprise": WSGIAdapter(hub.webhooks())})
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

from .core import HttpApp
from .core import HTTPError
from .core import Request
from .core import Response
from .core import content_length

__all__ = ["WSGIAdapter"]

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    302: "Found",
    303: "See Other",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class WSGIAdapter:
    """A WSGI application around a :class:`HttpApp`."""

    def __init__(self, app: HttpApp) -> None:
        self.app = app

    def __repr__(self) -> str:
        return f"WSGIAdapter(routes={len(self.app.routes)})"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = self._respond(environ)
        status = f"{response.status} {_REASONS.get(response.status, 'Status')}"
        start_response(status, [*response.headers, ("content-length", str(len(response.body)))])
        return [response.body]

    def _respond(self, environ: dict[str, Any]) -> Response:
        headers = {
            key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        length = content_length(str(environ.get("CONTENT_LENGTH") or "0"))
        if length is None:
            return HTTPError(400, "invalid content-length").response()
        if length > self.app.max_body:
            return HTTPError(413, f"body larger than {self.app.max_body} bytes").response()
        headers["content-length"] = str(length)
        body = environ["wsgi.input"].read(length) if length else b""
        path = environ.get("PATH_INFO", "/") or "/"
        prefix = environ.get("SCRIPT_NAME", "")
        if prefix and path.startswith(prefix + "/"):  # some servers and test clients keep the mount prefix
            path = path[len(prefix) :]
        query = str(environ.get("QUERY_STRING", ""))
        return self.app.handle(Request(environ.get("REQUEST_METHOD", "GET"), path, headers, body, query=query))
