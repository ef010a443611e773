"""The admin's first page: every connection at a glance, and a day of pushes and applies drawn as a chart.

Each scope has a *Sync now* button (its polls due at once) and a *Full resync* one (everything read again
through the identity map, creating nothing twice), which asks for a tick first. Per scope (a keyset page
of connections): its pending and dead counts, how long its oldest due
change has waited, the lag of each entity's poll (time since the last successful poll began), the
days left on its refresh token and where onboarding stands. Above them, the pushes and applies per
minute of the last 24 hours, read from the history in one ``GROUP BY``
(:func:`connected_objects.store.history.activity`) and drawn on the server as an SVG
(:mod:`connected_objects.admin.chart`): no script, so the page's policy stays ``script-src 'none'``.

Example::

    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects.admin import admin_app
    >>> from connected_objects.hub import Hub
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.web import Request
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> admin = admin_app(Hub(sessionmaker(engine), models=[]), authorize=lambda request: True)
    >>> page = admin.handle(Request("GET", "/", {}, b""))
    >>> page.status, b"<svg" in page.body, b"No connections yet" in page.body
    (200, True, True)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import connections
from ..exceptions import ConfigurationError
from ..ops.schedules import schedules
from ..queue import inbox
from ..queue import outbox
from ..receive.polling import sync_now
from ..store import history
from ..util.redaction import redact
from ..web.core import HTTPError
from ..web.core import Request
from ..web.core import Response
from .chart import Point
from .chart import activity_svg
from .config import AdminConfig
from .config import page_size
from .forms import Form

__all__ = ["overview_page", "sync"]

#: What a redirect after "sync" may announce (fixed words, never echoed input).
NOTICES = {"synced": "polls due now: {n}", "resynced": "full resyncs due now, everything read again: {n}"}

#: How far back the chart looks.
DAY = dt.timedelta(days=1)


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


def overview_page(config: AdminConfig, request: Request) -> Response:
    form = Form.of_query(request)
    limit = page_size(form.integer("limit"))
    now = config.hub.clock()
    with config.database() as db:
        rows = connections.page(db, after_id=form.integer("after"), limit=limit + 1)
        shown = rows[:limit]
        scopes = [x.scope for x in shown]
        changes = outbox.count_by_scope(db, scopes)
        events = inbox.count_by_scope(db, scopes)
        due = outbox.oldest_due(db, scopes)
        polls = schedules(db, now=now, scopes=scopes)
        buckets = history.activity(db, now - DAY, now)
    points = [Point(b.start, b.pushes, b.applies) for b in buckets]
    items: list[dict[str, Any]] = []
    for x in shown:
        counts = changes.get(x.scope, {})
        oldest = due.get(x.scope)
        expires = x.refresh_expires_at
        items.append(
            {
                "scope": str(x.scope),
                "status": x.status,
                "reason": redact(x.status_reason),
                "onboarding": x.onboarding or "",
                "pending": counts.get("pending", 0) + counts.get("in_flight", 0),
                "in_flight": counts.get("in_flight", 0),
                "dead": counts.get("dead", 0) + events.get(x.scope, {}).get("dead", 0),
                "oldest": None if oldest is None else _span((now - oldest).total_seconds()),
                "polls": [
                    {"entity": s.entity, "lag": _span(s.lag), "error": redact(s.poll_error) if s.poll_error else None}
                    for s in polls.get(x.scope, [])
                ],
                "refresh_days": None if expires is None else (expires - now).total_seconds() / 86400,
            }
        )
    after = shown[-1].id if len(rows) > limit else None
    chart = activity_svg(points, title="Pushes and applies per minute, last 24 hours")
    totals = (sum(p.pushes for p in points), sum(p.applies for p in points))
    did = form.text("did")
    notice = NOTICES[did].format(n=form.integer("n") or 0) if did in NOTICES else None
    return config.page(
        request, "overview.html", scopes=items, chart=chart, totals=totals, next_after=after, notice=notice
    )


def sync(config: AdminConfig, request: Request) -> Response:
    """ "Sync now" for the form's ``scope``: its polls due at once; with ``full=1`` (and ``confirm=yes``, the
    page's tick box) a full resync, everything read again through the identity map."""
    form = Form.of_body(request)
    scope = form.scope("scope")
    if scope is None:
        raise HTTPError(400, "scope (provider/marketplace/account) is required")
    full = form.text("full") == "1"
    if full and form.text("confirm") != "yes":
        raise HTTPError(400, "a full resync reads every record again: tick the box to confirm it")
    try:
        due = sync_now(config.hub, scope, full=full)
    except ConfigurationError as exc:
        raise HTTPError(404, str(exc)) from None
    return config.redirect(f"/?did={'resynced' if full else 'synced'}&n={len(due)}")
