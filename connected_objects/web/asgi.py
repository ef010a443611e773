"""The ASGI adapter: serve a :class:`~connected_objects.web.core.HttpApp` from FastAPI, Starlette or any ASGI server.

It only translates: reads the body (refusing with 413 as soon as it passes the
limit, before reading the rest), runs the sans-I/O core in a worker thread
(handlers write to the database), and writes the response. Mount it under any
prefix; the mount's ``root_path`` is stripped before routes are matched.

Example (FastAPI)::

    app = FastAPI()
    app.mount("/mno-enterprise", ASGIAdapter(hub.webhooks()))
"""

from __future__ import annotations

import asyncio
from typing import Any

from .core import HttpApp
from .core import HTTPError
from .core import Request
from .core import Response
from .core import content_length

__all__ = ["ASGIAdapter"]


class ASGIAdapter:
    """An ASGI 3 application around a :class:`HttpApp`."""

    def __init__(self, app: HttpApp) -> None:
        self.app = app

    def __repr__(self) -> str:
        return f"ASGIAdapter(routes={len(self.app.routes)})"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            if name in headers:  # repeated fields: cookies joined with "; " (RFC 9113 §8.2.3), others ", "
                value = headers[name] + ("; " if name == "cookie" else ", ") + value
            headers[name] = value
        response = await self._respond(scope, headers, receive)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
                + [(b"content-length", str(len(response.body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _respond(self, scope: dict[str, Any], headers: dict[str, str], receive: Any) -> Response:
        limit = self.app.max_body
        declared = headers.get("content-length")
        if declared is not None:
            length = content_length(declared)
            if length is None:
                return HTTPError(400, "invalid content-length").response()
            if length > limit:
                return HTTPError(413, f"body larger than {limit} bytes").response()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return HTTPError(400, "client disconnected").response()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return HTTPError(413, f"body larger than {limit} bytes").response()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        path = scope.get("path", "/")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        request = Request(scope.get("method", "GET"), path, headers, b"".join(chunks), query=query)
        return await asyncio.to_thread(self.app.handle, request)
