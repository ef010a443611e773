"""The ``maestrano`` provider object: its marketplaces and its inbound routes.

Routes, under a configurable prefix (default ``/mno-enterprise``), each behind
the HTTP Basic credentials (``api.id:api.key``) of the marketplace named in the
path:

``GET {prefix}/{marketplace}/metadata``
    our configuration manifest for that marketplace (never a secret).
``POST {prefix}/{marketplace}/connec/receive``
    Connec! notifications: ``{entity: [records…]}``, records of several groups
    mixed; each record is stored in the inbox under its own group.
``DELETE {prefix}/{marketplace}/account/group/{group_id}``
    the group cancelled: the application's ``on_group_deleted`` hook runs, the
    group's connection is revoked and its connected objects are tombstoned.
``DELETE {prefix}/{marketplace}/account/group/{group_id}/user/{user_id}``
    a user left the group: ``on_user_removed`` runs and the user's link in that
    group is tombstoned.

Both webhooks are idempotent: a second delivery answers success and changes
nothing. A wrong marketplace key is 404, wrong credentials 401; neither writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import httpx
from sqlalchemy.orm import Session

from connected_objects import API_VERSION
from connected_objects import Limits
from connected_objects import RemoteClient
from connected_objects import RemoteRecord
from connected_objects import Scope
from connected_objects import UnknownMarketplace
from connected_objects import connections
from connected_objects import identity
from connected_objects import inbox
from connected_objects.web import HTTPError
from connected_objects.web import Request
from connected_objects.web import Response
from connected_objects.web import Route
from connected_objects.web.core import parse_json_object

from .connec import ConnecClient
from .connec import record_from_connec
from .marketplaces import Marketplace
from .marketplaces import Marketplaces

__all__ = ["MaestranoProvider"]

GroupHook = Callable[[Session, Marketplace, str], None]
UserHook = Callable[[Session, Marketplace, str, str], None]


class MaestranoProvider:
    """Maestrano marketplaces: SSO, billing, account and Connec! webhooks, Connec! data sharing."""

    name = "maestrano"
    api_version = API_VERSION
    entities = frozenset({"organizations", "people", "items", "invoices", "users", "groups"})

    def __init__(
        self,
        marketplaces: Marketplaces | Callable[[], Marketplaces] | None = None,
        *,
        prefix: str = "/mno-enterprise",
        app: str = "connected-objects",
        on_group_deleted: GroupHook | None = None,
        on_user_removed: UserHook | None = None,
    ) -> None:
        self._marketplaces = marketplaces if marketplaces is not None else Marketplaces()
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.app = app
        self.on_group_deleted = on_group_deleted
        self.on_user_removed = on_user_removed

    def __repr__(self) -> str:
        return f"MaestranoProvider(prefix={self.prefix!r}, marketplaces={self.marketplaces!r})"

    @property
    def marketplaces(self) -> Marketplaces:
        """The current marketplaces (a :class:`DevPlatform`'s latest good copy when given one)."""
        source = self._marketplaces
        return source if isinstance(source, Marketplaces) else source()

    def limits(self, scope: Scope) -> Limits:
        return Limits(concurrency=4)

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> RemoteClient:
        """A Connec! client for the scope's group, with the scope's marketplace credentials."""
        return ConnecClient(http, self.marketplaces.get(scope.marketplace), scope.account, app=self.app)

    def decode_event(self, entity: str, payload: bytes) -> RemoteRecord:
        """A stored Connec! notification record (notifications carry full records)."""
        return record_from_connec(entity, json.loads(payload))

    def _marketplace(self, request: Request) -> Marketplace:
        try:
            marketplace = self.marketplaces.get(request.params["marketplace"])
        except UnknownMarketplace:
            raise HTTPError(404, "unknown marketplace") from None
        if not marketplace.authenticate(request.header("authorization")):
            raise HTTPError(401, "invalid credentials", [("www-authenticate", 'Basic realm="maestrano"')])
        return marketplace

    def routes(self, hub: Any) -> list[Route]:
        """The metadata and account-webhook routes."""
        base = f"{self.prefix}/{{marketplace}}"

        def metadata(request: Request) -> Response:
            return Response.json(200, self._marketplace(request).to_metadata())

        def delete_group(request: Request) -> Response:
            marketplace = self._marketplace(request)
            group = request.params["group_id"]
            scope = Scope(self.name, marketplace.key, group)
            with hub.session_factory.begin() as session:
                info = connections.get(session, scope)
                if info is None or info.status == "revoked":
                    return Response.json(200, {"success": True, "changed": False})
                if self.on_group_deleted is not None:
                    self.on_group_deleted(session, marketplace, group)
                connections.disconnect(session, scope, f"group {group} deleted by marketplace {marketplace.key}")
                gone = identity.tombstone_scope(session, scope)
            return Response.json(200, {"success": True, "changed": True, "tombstoned": gone})

        def remove_user(request: Request) -> Response:
            marketplace = self._marketplace(request)
            group, user = request.params["group_id"], request.params["user_id"]
            scope = Scope(self.name, marketplace.key, group)
            with hub.session_factory.begin() as session:
                link = identity.resolve(session, scope, "users", user)
                if link is None:
                    return Response.json(200, {"success": True, "changed": False})
                if self.on_user_removed is not None:
                    self.on_user_removed(session, marketplace, group, user)
                identity.unlink(session, scope, "users", user)
            return Response.json(200, {"success": True, "changed": True})

        def receive(request: Request) -> Response:
            marketplace = self._marketplace(request)
            events = parse_notification(
                parse_json_object(request), marketplace.key, lambda entity: hub.spec_for(self.name, entity) is not None
            )
            with hub.session_factory.begin() as session:
                stored = inbox.store(session, self.name, marketplace.key, events)
            return Response.json(200, {"received": len(events), "stored": stored})

        return [
            Route("POST", f"{base}/connec/receive", receive),
            Route("GET", f"{base}/metadata", metadata),
            Route("DELETE", f"{base}/account/group/{{group_id}}", delete_group),
            Route("DELETE", f"{base}/account/group/{{group_id}}/user/{{user_id}}", remove_user),
        ]


def parse_notification(
    body: Mapping[str, Any], marketplace: str, wanted: Callable[[str], bool]
) -> list[inbox.InboundEvent]:
    """Validate a Connec! notification; one inbox event per record, filed under its ``group_id``."""
    events = []
    for entity, records in body.items():
        if not isinstance(records, list):
            raise HTTPError(400, f"{entity!r} must be a list of records")
        for n, record in enumerate(records):
            if not isinstance(record, dict):
                raise HTTPError(400, f"{entity}[{n}] must be an object")
            group = record.get("group_id")
            if not isinstance(group, str) or not group or len(group) > 128:
                raise HTTPError(400, f"{entity}[{n}] needs a group_id")
            try:
                rid = record_from_connec(entity, record).foreign_id
            except Exception:
                raise HTTPError(400, f"{entity}[{n}] needs an id (or an id array with a Connec! id)") from None
            if not wanted(entity):
                continue  # an entity this application does not sync
            key = inbox.digest_key(marketplace, entity, rid, record.get("updated_at"))
            events.append(inbox.InboundEvent(key, group, entity, json.dumps(record).encode()))
    return events
