"""Provider faults as ASGI middleware, for any fake: 5xx, 429, stalls and answers lost after the write.

:class:`ProviderFaults` wraps a fake provider's ASGI app (the QuickBooks or
Xero fake, the generic sandbox, yours) and hits a share of its requests, drawn
from a seeded generator and capped:

``500``
    an internal error, before anything is applied;
``429``
    throttled, with ``Retry-After``, before anything is applied;
``stall``
    the request waits ``stall`` seconds (longer than the client's timeout), then
    is applied anyway: the client gave up on a write that happens later;
``lost``
    the write is applied, then its answer is thrown away and the connection
    dropped (:class:`~connected_objects.testing.faults.LoseAnswers`), on single
    writes and batch calls alike: the case that makes duplicates.

It also logs every write the fake received (:attr:`ProviderFaults.writes`,
one :class:`Write` per request, with the number of items it carried, so a
batch of 30 counts 30), which is what write amplification is measured from.
Requests carrying the header ``x-chaos-exempt`` pass untouched and unlogged
(a test editing the fake "as a user" through its own API).

Example::

    >>> import asyncio, httpx
    >>> from starlette.applications import Starlette
    >>> from starlette.responses import JSONResponse
    >>> from starlette.routing import Route
    >>> from connected_objects.testing.chaos.faults import ProviderFaults
    >>> made = []
    >>> async def create(request):
    ...     made.append(await request.body())
    ...     return JSONResponse({"id": len(made)})
    >>> app = ProviderFaults(Starlette(routes=[Route("/things", create, methods=["POST"])]),
    ...                      rate=1.0, kinds=("lost",), seed=1, limit=1)
    >>> async def main():
    ...     async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://fake") as http:
    ...         try:
    ...             await http.post("/things", content=b"a")
    ...         except Exception:
    ...             pass  # over loopback HTTP: httpx.RemoteProtocolError
    ...         return (await http.post("/things", content=b"b")).json()
    >>> asyncio.run(main()), len(made), dict(app.injected), app.received
    ({'id': 2}, 2, {'lost': 1}, 2)
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..faults import LoseAnswers

__all__ = ["KINDS", "ProviderFaults", "Write", "count_items"]

KINDS = ("500", "429", "stall", "lost")
EXEMPT = b"x-chaos-exempt"


@dataclass(frozen=True)
class Write:
    """One write request as the fake saw it."""

    method: str
    path: str
    items: int
    #: ``None`` (answered normally), or the fault that hit it: ``500``, ``429``, ``stall``, ``lost``
    fault: str | None

    @property
    def received(self) -> bool:
        """Did the fake get to apply it (500s and 429s are answered before it does)?"""
        return self.fault not in ("500", "429")


def count_items(path: str, body: bytes) -> int:
    """Writes in one request: a QuickBooks ``BatchItemRequest``'s items, a Xero ``{"Entity": [...]}``'s
    elements, else 1.

    >>> count_items("/v3/company/1/batch", b'{"BatchItemRequest": [{}, {}, {}]}')
    3
    >>> count_items("/api.xro/2.0/Contacts", b'{"Contacts": [{"Name": "a"}, {"Name": "b"}]}')
    2
    >>> count_items("/api/acme/things", b"not json")
    1
    """
    try:
        data = json.loads(body)
    except ValueError:
        return 1
    if isinstance(data, dict):
        if isinstance(data.get("BatchItemRequest"), list):
            return max(1, len(data["BatchItemRequest"]))
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(data) == 1 and lists:
            return max(1, len(lists[0]))
    return 1


class ProviderFaults:
    """ASGI middleware injecting provider faults into ``app`` (see the module docstring).

    :param app: the fake's ASGI app.
    :param rate: the probability that a request is hit.
    :param kinds: the faults drawn from (:data:`KINDS`); ``lost`` hits writes only (a read gets a ``500``).
    :param retry_after: the ``Retry-After`` of an injected 429, in seconds.
    :param stall: how long a ``stall`` holds a request (make it longer than the client's timeout).
    :param seed: for a repeatable sequence.
    :param limit: inject at most this many faults (None: no cap).
    :param writes: the methods that count as writes.
    :param items: how many writes one request carries (default :func:`count_items`).
    """

    def __init__(
        self,
        app: Any,
        *,
        rate: float = 0.0,
        kinds: Sequence[str] = KINDS,
        retry_after: float = 0.05,
        stall: float = 2.0,
        seed: int | None = None,
        limit: int | None = None,
        writes: Collection[str] = ("POST", "PUT", "DELETE"),
        items: Callable[[str, bytes], int] = count_items,
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown or not 0 <= rate <= 1:
            raise ValueError(f"ProviderFaults: rate must be in [0, 1] and kinds among {KINDS}, not {sorted(unknown)}")
        self.app = app
        self.rate, self.kinds, self.retry_after, self.stall, self.limit = rate, tuple(kinds), retry_after, stall, limit
        self.write_methods = frozenset(m.upper() for m in writes)
        self.items = items
        self.lose = LoseAnswers(app, methods=self.write_methods)
        self._rng = random.Random(seed)
        #: faults injected, by kind
        self.injected: collections.Counter[str] = collections.Counter()
        #: every write request that arrived (exempt ones aside)
        self.writes: list[Write] = []
        self.enabled = True

    def __repr__(self) -> str:
        return f"ProviderFaults(rate={self.rate}, injected={dict(self.injected)}, writes={len(self.writes)})"

    @property
    def received(self) -> int:
        """Write items the fake received (applied or refused by it), faults before the write excluded."""
        return sum(w.items for w in self.writes if w.received)

    @property
    def sent(self) -> int:
        """Write items that arrived at all, the ones answered by an injected 500 or 429 included."""
        return sum(w.items for w in self.writes)

    def _draw(self, write: bool) -> str | None:
        if not self.enabled or self.rate <= 0 or self._rng.random() >= self.rate:
            return None
        if self.limit is not None and sum(self.injected.values()) >= self.limit:
            return None
        kind = self._rng.choice(self.kinds)
        if kind == "lost" and not write:
            kind = "500"
        self.injected[kind] += 1
        return kind

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or any(name == EXEMPT for name, _ in scope.get("headers", ())):
            await self.app(scope, receive, send)
            return
        write = scope["method"] in self.write_methods
        kind = self._draw(write)
        if write:
            body = await _read_body(receive)
            self.writes.append(Write(scope["method"], scope["path"], self.items(scope["path"], body), kind))
            receive = _replay(body, receive)
        if kind in ("500", "429"):
            await _answer(send, 500 if kind == "500" else 429, kind, self.retry_after)
            return
        if kind == "stall":
            await asyncio.sleep(self.stall)  # the client has given up by now; the write still happens
        if kind == "lost":
            self.lose.arm()
            await self.lose(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` giving the body already read, then whatever the client sends next (its disconnect)."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(send: Any, status: int, kind: str, retry_after: float) -> None:
    body = json.dumps({"error": f"injected {kind}"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 429:
        headers.append((b"retry-after", f"{retry_after:g}".encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
