"""The onboarding page: the rows adopting a company's existing books could not pair, and linking one by hand.

``GET /onboarding?scope=P/M/A`` lists the rows held as ambiguous in a scope (two local rows for one
remote name, or a name already taken by a record linked to another row), each with its remote
candidates; ``POST /onboarding`` links one to the record an operator picks
(:func:`connected_objects.receive.adopt.link_by_hand`), behind the admin's authorization and CSRF
check like every form. Nothing else is written, and nothing is sent to the provider.

Example::

    >>> import re
    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects import Hub, Scope
    >>> from connected_objects.admin import admin_app
    >>> from connected_objects.store import ambiguity
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.web.core import Request
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> acme = Scope("quickbooks", "production", "9130354")
    >>> with engine.begin() as db:
    ...     held = ambiguity.replace(db, acme, "Customer", "client", [("DisplayName", "globex", ["2", "3"], ["58"])])
    >>> admin = admin_app(Hub(sessionmaker(engine), models=[]), authorize=lambda request: True)
    >>> page = admin.handle(Request("GET", "/onboarding", {}, b"", query="scope=quickbooks/production/9130354"))
    >>> page.status, b"globex" in page.body, page.body.count(b'name="local_id"')
    (200, True, 2)
"""

from __future__ import annotations

from urllib.parse import urlencode

from ..exceptions import IdentityConflict
from ..receive.adopt import link_by_hand
from ..store import ambiguity
from ..util.redaction import redact
from ..web.core import HTTPError
from ..web.core import Request
from ..web.core import Response
from .config import AdminConfig
from .config import page_size
from .forms import Form

__all__ = ["link_held", "onboarding_page"]


def onboarding_page(config: AdminConfig, request: Request) -> Response:
    """The held rows of the ``scope`` in the query, with their candidates and a form to link each."""
    form = Form.of_query(request)
    scope = form.scope("scope")
    if scope is None:
        raise HTTPError(400, "scope (provider/marketplace/account) is required: open it from the Connections page")
    limit = page_size(form.integer("limit"))
    with config.database() as db:
        rows = ambiguity.rows(db, scope, limit=limit)
        total = ambiguity.count(db, scope)
    items = [
        {
            "entity": r["entity"],
            "local_type": r["local_type"],
            "local_id": r["local_id"],
            "key": r["natural_key"],
            "value": redact(r["value"]),
            "candidates": list(r["candidates"] or []),
        }
        for r in rows
    ]
    did = form.text("did")
    notice = "linked; the changes that waited for it go on" if did == "linked" else None
    return config.page(
        request, "onboarding.html", scope=str(scope), held=items, total=total, shown=len(items), notice=notice
    )


def link_held(config: AdminConfig, request: Request) -> Response:
    """Link the form's ``local_type``/``local_id`` to ``foreign_id`` (a candidate, or another record's id)."""
    form = Form.of_body(request)
    scope = form.scope("scope")
    entity, local_type, local_id = form.text("entity"), form.text("local_type"), form.text("local_id")
    foreign_id = (form.text("other") or form.text("foreign_id") or "").strip()
    if scope is None or not entity or not local_type or not local_id:
        raise HTTPError(400, "scope, entity, local_type and local_id are required: use the form on the page")
    if not foreign_id:
        raise HTTPError(400, "pick a candidate, or give the id of the record this row is")
    try:
        with config.database() as db:
            if (local_type, local_id) not in ambiguity.held(db, scope, [(local_type, local_id)]):
                raise HTTPError(404, f"{local_type} {local_id} is not held in {scope}")
            link_by_hand(db, scope, entity, local_type, local_id, foreign_id)
    except IdentityConflict as exc:
        raise HTTPError(409, str(exc)) from None
    return config.redirect(f"/onboarding?{urlencode({'scope': str(scope), 'did': 'linked'})}")
