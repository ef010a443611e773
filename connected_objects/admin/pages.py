"""The admin's pages (GET): connections, scopes, dead changes, dead events, workers, explain.

Every list is a keyset page: the rows after the last id shown (``?after=``),
one indexed query per page whatever the table's size, plus one row more than
shown to know whether a next page exists. Error texts and payloads pass
through :func:`~connected_objects.util.redaction.redact`; credentials are never
read (connections are listed without them).

Example: the dead changes of one scope, a page of two, then the next::

    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects import Scope
    >>> from connected_objects.queue import CHANGES, outbox
    >>> from connected_objects.admin import admin_app
    >>> from connected_objects.hub import Hub
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.web import Request
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> s = Scope("xero", "production", "t-1")
    >>> with engine.begin() as db:
    ...     _ = outbox.enqueue(db, [outbox.Change(s, "Contacts", "customer", str(i), "upsert") for i in range(3)])
    ...     claimed = CHANGES.claim(db, "w")
    ...     _ = CHANGES.bury(db, "w", [(c.id, "ValidationException: Name is required") for c in claimed])
    >>> admin = admin_app(Hub(sessionmaker(engine), models=[]), authorize=lambda request: True)
    >>> page = admin.handle(Request("GET", "/changes", {}, b"", query="scope=xero/production/t-1&limit=2"))
    >>> page.body.count(b"Name is required"), b'after=2">Next page' in page.body
    (2, True)
    >>> admin.handle(Request("GET", "/changes", {}, b"", query="limit=2&after=2")).body.count(b"Name is required")
    1
"""

from __future__ import annotations

from typing import Any

from .. import connections
from ..exceptions import ConfigurationError
from ..ops.explain import explain
from ..ops.explain import find_model
from ..ops.explain import primary_key
from ..queue import actions as queued_actions
from ..queue import inbox
from ..queue import outbox
from ..store import identity
from ..store.models import utcnow
from ..util.redaction import redact
from ..web.core import Request
from ..web.core import Response
from . import sources
from .config import AdminConfig
from .config import page_size
from .forms import Form
from .links import safe_link
from .rendering import stylesheet

__all__ = [
    "NOTICES",
    "changes_page",
    "connections_page",
    "events_page",
    "explain_page",
    "scopes_page",
    "style",
    "workers_page",
]

#: What a redirect after an action may announce (``?did=...&n=...``): fixed words, never echoed input.
NOTICES = {
    "retried": "{n} sent again",
    "discarded": "{n} discarded for good",
    "disconnected": "connection revoked",
}
PAYLOAD_SHOWN = 4000


def _common(form: Form) -> dict[str, Any]:
    did = form.text("did")
    template = NOTICES.get(did or "")
    n = form.integer("n") if template else None
    return {"notice": template.format(n=n or 0) if template else None}


def style(config: AdminConfig, request: Request) -> Response:
    return Response(200, (("content-type", "text/css; charset=utf-8"),), stylesheet())


def connections_page(config: AdminConfig, request: Request) -> Response:
    form = Form.of_query(request)
    limit = page_size(form.integer("limit"))
    with config.database() as db:
        rows = connections.page(db, after_id=form.integer("after"), limit=limit + 1)
        shown = rows[:limit]
        times = identity.last_sync_times(db, [c.scope for c in shown])
    items = []
    for c in shown:
        pushed, pulled = times.get(c.scope, (None, None))
        link = safe_link(config.reconnect_url(c)) if config.reconnect_url is not None else None
        items.append(
            {
                "id": c.id,
                "owner": f"{c.owner_type} {c.owner_id}",
                "scope": str(c.scope),
                "status": c.status,
                "reason": redact(c.status_reason),
                "last_push": pushed,
                "last_pull": pulled,
                "reconnect": link,
                "onboarding": c.onboarding,
                "settings": sorted((str(k), redact(str(v))) for k, v in c.settings.items()),
            }
        )
    after = shown[-1].id if len(rows) > limit else None
    return config.page(request, "connections.html", connections=items, next_after=after, **_common(form))


def scopes_page(config: AdminConfig, request: Request) -> Response:
    form = Form.of_query(request)
    limit = page_size(form.integer("limit"))
    with config.database() as db:
        rows = connections.page(db, after_id=form.integer("after"), limit=limit + 1)
        shown = rows[:limit]
        scopes = [c.scope for c in shown]
        changes = outbox.count_by_scope(db, scopes)
        events = inbox.count_by_scope(db, scopes)
        due = outbox.oldest_due(db, scopes)
    held = sources.holds(config.hub.limits_store, scopes)
    now = utcnow()
    items = []
    for c in shown:
        counts = changes.get(c.scope, {})
        hold = held.get(c.scope)
        oldest = due.get(c.scope)
        items.append(
            {
                "scope": str(c.scope),
                "status": c.status,
                "pending": counts.get("pending", 0),
                "in_flight": counts.get("in_flight", 0),
                "dead": counts.get("dead", 0),
                "dead_events": events.get(c.scope, {}).get("dead", 0),
                "oldest_due": None if oldest is None else _age((now - oldest).total_seconds()),
                "hold": None
                if hold is None
                else f"until {hold.until - now.timestamp():.0f} s from now: {redact(hold.reason)}",
            }
        )
    after = shown[-1].id if len(rows) > limit else None
    shared = config.hub.limits_store is not None
    return config.page(request, "scopes.html", scopes=items, next_after=after, shared_limits=shared, **_common(form))


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def changes_page(config: AdminConfig, request: Request) -> Response:
    form = Form.of_query(request)
    limit = page_size(form.integer("limit"))
    scope, error = form.scope("scope"), form.text("error")
    with config.database() as db:
        rows = outbox.page_changes(db, scope=scope, error=error, after_id=form.integer("after"), limit=limit + 1)
    shown = rows[:limit]
    items = [
        {
            "id": c.id,
            "scope": str(c.scope),
            "entity": c.entity,
            "row": f"{c.local_type} {c.local_id}",
            # the row explained: an action's own row (``invoice:send`` explains the invoice)
            "local_type": (queued_actions.target_of(c.local_type) or (c.local_type,))[0],
            "local_id": c.local_id,
            "operation": c.operation,
            "attempts": c.attempts,
            "error": redact(c.last_error) or "",
        }
        for c in shown
    ]
    after = shown[-1].id if len(rows) > limit else None
    filters = {"scope": str(scope) if scope else "", "error": error or ""}
    return config.page(request, "changes.html", changes=items, next_after=after, filters=filters, **_common(form))


def events_page(config: AdminConfig, request: Request) -> Response:
    form = Form.of_query(request)
    limit = page_size(form.integer("limit"))
    scope, error = form.scope("scope"), form.text("error")
    with config.database() as db:
        rows = inbox.page_events(db, scope=scope, error=error, after_id=form.integer("after"), limit=limit + 1)
    shown = rows[:limit]
    items = []
    for e in shown:
        text = e.payload[:PAYLOAD_SHOWN].decode("utf-8", "replace")
        items.append(
            {
                "id": e.id,
                "scope": str(e.scope) if e.scope else f"{e.provider}/{e.marketplace}/?",
                "entity": e.entity or "",
                "kind": e.kind,
                "attempts": e.attempts,
                "error": redact(e.last_error) or "",
                "payload": redact(text) + ("…" if len(e.payload) > PAYLOAD_SHOWN else ""),
            }
        )
    after = shown[-1].id if len(rows) > limit else None
    filters = {"scope": str(scope) if scope else "", "error": error or ""}
    return config.page(request, "events.html", events=items, next_after=after, filters=filters, **_common(form))


def workers_page(config: AdminConfig, request: Request) -> Response:
    with config.database() as db:
        rows = sources.workers(db)
        note = sources.workers_note(db)
    now = utcnow()
    items = [
        {
            "name": w.name,
            "host": w.host,
            "pid": w.pid,
            "started_at": w.started_at,
            "beat": None if w.beat_at is None else _age((now - w.beat_at).total_seconds()),
        }
        for w in rows
    ]
    return config.page(request, "workers.html", workers=items, note=note, **_common(Form.of_query(request)))


def explain_page(config: AdminConfig, request: Request) -> Response:
    form = Form.of_query(request)
    name, key = form.text("model"), form.text("id")
    models = sorted(m.__name__ for m in config.hub.models)
    context: dict[str, Any] = {"models": models, "chosen": name or "", "key": key or "", "found": None, "problem": None}
    if name and key:
        try:
            model = find_model(config.hub, name)
            found = explain(config.hub, model, primary_key(model, key, config.hub.engine.dialect.name))
        except ConfigurationError as exc:
            context["problem"] = redact(str(exc))
            return config.page(request, "explain.html", status=400, **context, **_common(form))
        context["found"] = {
            "sentence": found.sentence,
            "model": found.model,
            "local_id": found.local_id,
            "exists": found.exists,
            "scopes": [
                {
                    "scope": str(s.scope),
                    "connection": s.connection or "none",
                    "link": None if s.link is None else f"{s.link.entity} {s.link.foreign_id} ({s.link.status})",
                    "changes": [
                        {
                            "id": c.id,
                            "operation": c.operation,
                            "state": c.state,
                            "attempts": c.attempts,
                            "error": redact(c.last_error) or "",
                        }
                        for c in s.changes
                    ],
                    "missing": ", ".join(f"{m} {i}" for m, i in s.missing),
                    "next_attempt_at": s.next_attempt_at,
                    "sentence": s.sentence,
                }
                for s in found.scopes
            ],
            "history": [
                {
                    "at": e.at,
                    "direction": e.direction,
                    "operation": e.operation,
                    "outcome": e.outcome,
                    "scope": str(e.scope),
                    "foreign_id": e.foreign_id or "",
                    "latency": "" if e.latency_ms is None else f"{e.latency_ms} ms",
                    "message": redact(e.message) or "",
                }
                for e in found.history
            ],
        }
    return config.page(request, "explain.html", **context, **_common(form))
