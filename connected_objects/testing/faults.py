"""Faults any sandbox can suffer, as ASGI middleware: the answer lost after the write.

The worst moment for a client is when the provider has applied a write and
the answer never arrives (a reset, a timeout at the proxy). A client that
retries without the same idempotency key then creates a duplicate.
:class:`LoseAnswers` wraps any ASGI sandbox and, while armed, lets a write
run to completion, throws its answer away and drops the connection instead.

Example::

    >>> import asyncio, httpx
    >>> from starlette.applications import Starlette
    >>> from starlette.responses import JSONResponse
    >>> from starlette.routing import Route
    >>> from connected_objects.testing.faults import LoseAnswers
    >>> writes = []
    >>> async def create(request):
    ...     writes.append(await request.body())
    ...     return JSONResponse({"id": len(writes)})
    >>> app = LoseAnswers(Starlette(routes=[Route("/things", create, methods=["POST"])]))
    >>> app.arm()
    >>> async def main():
    ...     async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://fake") as http:
    ...         try:
    ...             await http.post("/things", content=b"a")
    ...         except Exception:  # over loopback HTTP: httpx.RemoteProtocolError
    ...             lost = "answer lost"
    ...         return lost, (await http.post("/things", content=b"b")).json()
    >>> asyncio.run(main()), len(writes)
    (('answer lost', {'id': 2}), 2)
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .sandbox import ResetResponse

__all__ = ["LoseAnswers"]


class LoseAnswers:
    """ASGI middleware: the next armed requests are applied by ``app``, then answered with a reset.

    :param app: the sandbox's ASGI app.
    :param methods: which requests count as writes.
    """

    def __init__(self, app: Any, *, methods: Collection[str] = ("POST", "PUT", "DELETE")) -> None:
        self.app = app
        self.methods = frozenset(m.upper() for m in methods)
        self.armed = 0
        #: How many answers were thrown away.
        self.lost = 0

    def __repr__(self) -> str:
        return f"LoseAnswers(armed={self.armed}, lost={self.lost})"

    def arm(self, times: int = 1) -> None:
        """Lose the answers of the next ``times`` writes."""
        self.armed += times

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.armed or scope["method"] not in self.methods:
            await self.app(scope, receive, send)
            return
        self.armed -= 1

        async def discard(message: Any) -> None:
            """The write happens; its answer goes nowhere."""

        await self.app(scope, receive, discard)
        self.lost += 1
        await ResetResponse()(scope, receive, send)
