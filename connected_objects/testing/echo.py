"""A misbehaving proxy for tests: error pages that echo the request, credentials included.

Some providers, proxies and web application firewalls answer a failed
request with a page that quotes it: its headers (``Authorization`` among
them) and its body (a form body holding ``refresh_token=…``). Whatever we
keep of such a page (an error message, a log line) would then hold the
connection's secrets in plain text. :class:`EchoingErrors` wraps any ASGI
app (a provider sandbox, the fake OAuth server) and turns every answer with
status ≥ 400, and every failure it is told to inject, into such a page, so a
test can prove that nothing of it survives :mod:`connected_objects.util.redaction`.

The page comes in three styles, as real ones do: ``json`` (the dump in the
fields error parsers read: ``error``, ``message``, QuickBooks' ``Fault``,
Xero's ``Message``), ``text`` (a raw HTTP dump) and ``html``.

Example::

    >>> import asyncio, httpx
    >>> from starlette.applications import Starlette
    >>> from connected_objects.testing.echo import EchoingErrors
    >>> echo = EchoingErrors(Starlette(), fail=lambda method, path: 502, style="text")
    >>> async def main():
    ...     async with httpx.AsyncClient(transport=httpx.ASGITransport(echo)) as http:
    ...         return await http.post("http://api/x", headers={"Authorization": "Bearer t0k3n"}, data={"a": "b"})
    >>> answer = asyncio.run(main())
    >>> answer.status_code, "authorization: Bearer t0k3n" in answer.text, "a=b" in answer.text, echo.echoed
    (502, True, True, 1)
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

from ._extra import missing

try:
    from starlette.types import ASGIApp
    from starlette.types import Message
    from starlette.types import Receive
    from starlette.types import Scope
    from starlette.types import Send
except ModuleNotFoundError as exc:  # the testing extra is not installed
    raise missing(exc) from exc

__all__ = [
    "STYLES",
    "EchoingErrors",
]

STYLES = ("json", "text", "html")
#: ``fail(method, path)`` → the status to answer with instead of calling the app, or None.
Failure = Callable[[str, str], "int | None"]


class EchoingErrors:
    """ASGI middleware: error answers (and injected failures) quote the request's headers and body.

    :param app: the wrapped app (a sandbox's ``.app``).
    :param fail: ``fail(method, path)`` returns a status to fail the request with
        before it reaches the app (a proxy refusing it), or None to let it through.
    :param style: ``json``, ``text`` or ``html``.

    :attr:`pages` holds the pages made, so a test can check that the echo really
    carried the secrets it then looks for everywhere else.
    """

    def __init__(self, app: ASGIApp, *, fail: Failure | None = None, style: str = "json") -> None:
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {style!r}")
        self.app = app
        self.fail = fail
        self.style = style
        self.pages: list[str] = []

    def __repr__(self) -> str:
        return f"EchoingErrors(style={self.style!r}, echoed={self.echoed})"

    @property
    def echoed(self) -> int:
        """How many echoing pages were sent."""
        return len(self.pages)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        status = self.fail(scope["method"], scope["path"]) if self.fail is not None else None
        if status is not None:
            await self._send_echo(send, scope, body, status, [], b"")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        held: dict[str, Any] = {}
        original = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held.update(message)
                return
            if held and message["type"] == "http.response.body":
                original.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_echo(send, scope, body, held["status"], held.get("headers", []), bytes(original))
                return
            await send(message)

        await self.app(scope, replay, capture)

    async def _send_echo(
        self, send: Send, scope: Scope, body: bytes, status: int, headers: list[Any], original: bytes
    ) -> None:
        page, content_type = self._page(scope, body, status, original.decode("utf-8", "replace"))
        self.pages.append(page)
        kept = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")]
        encoded = page.encode()
        kept += [(b"content-type", content_type), (b"content-length", str(len(encoded)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": kept})
        await send({"type": "http.response.body", "body": encoded})

    def _page(self, scope: Scope, body: bytes, status: int, original: str) -> tuple[str, bytes]:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope["path"] + (f"?{query}" if query else "")
        request_line = f"{scope['method']} {target} HTTP/1.1"
        text_body = body.decode("utf-8", "replace")
        dump = "\n".join([request_line, *(f"{k}: {v}" for k, v in headers), "", text_body])
        if self.style == "text":
            return f"HTTP {status}: {original}\n--- the request we refused ---\n{dump}", b"text/plain; charset=utf-8"
        if self.style == "html":
            page = (
                f"<html><head><title>{status} Error</title></head><body><h1>Request blocked</h1>"
                f"<p>{html.escape(original)}</p><pre>{html.escape(dump)}</pre></body></html>"
            )
            return page, b"text/html; charset=utf-8"
        quoted = f"{original} (request: {dump})"
        document = {
            "error": quoted,
            "message": quoted,
            "Message": quoted,
            "Fault": {"Error": [{"Message": quoted, "Detail": dump}], "type": "SystemFault"},
            "request": {"method": scope["method"], "target": target, "headers": dict(headers), "body": text_body},
        }
        return json.dumps(document), b"application/json"
