"""A webhook route in one call: verify, parse, store in the inbox, answer.

Every provider's webhook does the same four things, in this order, and each
step has one right answer when it fails:

1. **verify** the delivery (a signature over the raw body, Basic credentials):
   refused, it gets the route's ``refused`` answer (401 unless the provider
   says otherwise) and nothing is read or stored;
2. **parse** it into :class:`~connected_objects.queue.inbox.InboundEvent`\\ s,
   each filed under its own account: a body that is not what the provider sends
   raises :class:`~connected_objects.web.core.HTTPError` 400 (the shared bounded
   JSON reader raises its own 400 for a body too deep, too big or not JSON);
3. **store** them in the inbox, in one transaction (deduplicated by key, so a
   redelivery stores nothing twice); a database that cannot take them right now
   propagates to the web core, which answers 503 with ``Retry-After`` so the
   sender tries again;
4. **answer**: by default ``200 {"received": n, "stored": m}``; a provider whose
   sender wants something else (Xero: an empty 200) passes ``answer=``.

:func:`inbox_route` builds that :class:`~connected_objects.web.core.Route`; the
provider writes ``verify`` and ``parse`` and nothing else. :func:`signed` is the
``verify`` of the usual signature (base64 HMAC-SHA256 of the raw body in a
header); :class:`ThinEvents` decodes events stored with :func:`thin_payload`
(the id of a record for the worker to fetch).

Example::

    >>> import json
    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects.plugin import InboundEvent, Request, inbox_route
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> class Context:
    ...     session_factory = sessionmaker(engine)
    >>> def verify(request):
    ...     return "production" if request.header("x-token") == "let-me-in" else None
    >>> def parse(request, marketplace):
    ...     event = json.loads(request.body)
    ...     return [InboundEvent(event["id"], event["account"], "notes", request.body)]
    >>> route = inbox_route(Context(), "notes", "/notes/webhooks", verify=verify, parse=parse)
    >>> body = json.dumps({"id": "e-1", "account": "acme"}).encode()
    >>> route.handler(Request("POST", "/notes/webhooks", {"x-token": "let-me-in"}, body)).body
    b'{"received":1,"stored":1}'
    >>> route.handler(Request("POST", "/notes/webhooks", {"x-token": "let-me-in"}, body)).body
    b'{"received":1,"stored":0}'
    >>> route.handler(Request("POST", "/notes/webhooks", {}, body)).status
    401
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from ..queue.inbox import InboundEvent
from ..queue.inbox import store
from ..web.core import Check
from ..web.core import HTTPError
from ..web.core import Request
from ..web.core import Response
from ..web.core import Route
from ..web.core import hmac_matches
from .provider import ProviderContext

__all__ = ["ThinEvents", "Verify", "counted", "inbox_route", "signed", "thin_payload"]

#: The marketplace a verified delivery is filed under, or None: refused.
Verify = Callable[[Request], "str | None"]
#: The events of a verified delivery (filed under the marketplace ``verify`` gave).
Parse = Callable[[Request, str], Sequence[InboundEvent]]


def signed(key: str, header: str, marketplace: str, *, unconfigured: HTTPError | None = None) -> Verify:
    """The ``verify`` of a delivery signed with base64 HMAC-SHA256 of its raw body under ``key``, in
    ``header``: filed under ``marketplace`` when the signature matches (compared in constant time).

    Without a key every delivery is refused: with ``unconfigured`` (404: "webhooks are not
    configured"), else as a bad signature.

    >>> from connected_objects.plugin import Request
    >>> verify = signed("webhook-key-123", "x-signature", "production")
    >>> verify(Request("POST", "/hooks", {"x-signature": "forged"}, b"{}")) is None
    True
    """

    def verify(request: Request) -> str | None:
        if not key and unconfigured is not None:
            raise unconfigured
        return marketplace if key and hmac_matches(key, request.body, request.header(header)) else None

    return verify


def thin_payload(foreign_id: object, **details: Any) -> bytes:
    """What a thin event stores: the id of the record to fetch, and what else the provider keeps.

    >>> thin_payload(58, operation="updated")
    b'{"id": "58", "operation": "updated"}'
    """
    return json.dumps({"id": str(foreign_id), **details}).encode()


class ThinEvents:
    """``decode_event`` for a provider whose webhooks name records rather than carry them: a stored
    :func:`thin_payload` is the id for the worker to fetch."""

    def decode_event(self, entity: str, payload: bytes) -> str:
        """The id of the record to fetch."""
        return str(json.loads(payload)["id"])


def counted(received: int, stored: int) -> Response:
    """The default answer: ``200 {"received": n, "stored": m}`` (``m`` < ``n``: some were redeliveries).

    >>> counted(3, 2).body
    b'{"received":3,"stored":2}'
    """
    return Response.json(200, {"received": received, "stored": stored})


def inbox_route(
    context: ProviderContext,
    provider: str,
    path: str,
    *,
    verify: Verify,
    parse: Parse,
    answer: Callable[[int, int], Response] = counted,
    refused: Response | None = None,
    method: str = "POST",
    params: Mapping[str, Check] | None = None,
    refusal: Response | None = None,
) -> Route:
    """A route that verifies a delivery, parses it, stores its events in the inbox in one
    transaction, and answers.

    :param context: the application, as the provider's ``routes(context)`` got it.
    :param provider: the provider's name: the events are stored as its own.
    :param path: the route's path pattern (``{name}`` segments need a check in ``params``).
    :param verify: the marketplace to file the delivery under, or None to refuse it; it may
        also raise :class:`~connected_objects.web.core.HTTPError` for a refusal of its own
        (404: webhooks not configured).
    :param parse: the delivery's events; raises ``HTTPError(400, …)`` for a malformed body.
    :param answer: the answer to a stored delivery, from the events received and stored.
    :param refused: the answer when ``verify`` refuses (default 401 ``{"error": "bad signature"}``).
    :param params: the path parameters' checks, as :class:`~connected_objects.web.core.Route` takes them.
    :param refusal: the answer to a refused path parameter (default 404).
    """
    refused_answer = refused if refused is not None else HTTPError(401, "bad signature").response()

    def receive(request: Request) -> Response:
        marketplace = verify(request)
        if marketplace is None:
            return refused_answer
        events = parse(request, marketplace)
        stored = 0
        if events:
            with context.session_factory.begin() as session:
                stored = store(session, provider, marketplace, events)
        return answer(len(events), stored)

    extra = {} if refusal is None else {"refusal": refusal}
    return Route(method, path, receive, params=dict(params or {}), **extra)
