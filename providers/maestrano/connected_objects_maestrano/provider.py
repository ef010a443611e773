"""The ``maestrano`` provider object: its marketplaces and its inbound routes.

Routes, under a configurable prefix (default ``/mno-enterprise``), each behind
the HTTP Basic credentials (``api.id:api.key``) of the marketplace named in the
path:

``GET {prefix}/{marketplace}/metadata``
    our configuration manifest for that marketplace (never a secret).
``GET {prefix}/{marketplace}/saml/initialize`` and ``POST …/saml/consume``
    SAML single sign-on with that marketplace's identity provider (see
    :mod:`connected_objects_maestrano.sso`).
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
nothing.

Every path parameter is checked before a handler runs. On the routes behind
Basic credentials an unknown marketplace key is answered exactly as wrong
credentials are (401, same headers, same body), so those routes do not tell
an unauthenticated caller which keys exist; nothing is written either way.
The single sign-on routes answer an unknown key with 404: they cannot hide it
(``saml/initialize`` redirects a browser to the marketplace's identity
provider), which is why marketplace keys are not treated as secrets. Group and
user ids must be 1 to 128 printable characters (anything else is refused like
an unknown key); the handlers look them up and write nothing for ids they do
not know.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
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
from connected_objects.web.core import identifier
from connected_objects.web.core import parse_json_object

from .connec import BATCH_SIZE
from .connec import ConnecClient
from .connec import fold
from .connec import record_from_connec
from .marketplaces import Marketplace
from .marketplaces import Marketplaces
from .sso import SsoGroup
from .sso import SsoHandler
from .sso import SsoUser
from .sso import form_fields
from .sso import relay_state
from .sso import request_data
from .sso import saml_settings
from .sso import verify_relay_state

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
        sso: SsoHandler | None = None,
        initial_import: Sequence[str] = (),
    ) -> None:
        self._marketplaces = marketplaces if marketplaces is not None else Marketplaces()
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.app = app
        self.on_group_deleted = on_group_deleted
        self.on_user_removed = on_user_removed
        self.sso = sso
        self.initial_import = tuple(initial_import)

    def __repr__(self) -> str:
        return f"MaestranoProvider(prefix={self.prefix!r}, marketplaces={self.marketplaces!r})"

    @property
    def marketplaces(self) -> Marketplaces:
        """The current marketplaces (a :class:`DevPlatform`'s latest good copy when given one)."""
        source = self._marketplaces
        return source if isinstance(source, Marketplaces) else source()

    def limits(self, scope: Scope) -> Limits:
        return Limits(concurrency=4, batch_size=BATCH_SIZE)

    def fold_reference(self, entity: str, name: str, foreign_id: str) -> Any:
        """References go out as Connec! id arrays, the form Connec! sends them in."""
        return fold(foreign_id)

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> RemoteClient:
        """A Connec! client for the scope's group, with the scope's marketplace credentials."""
        return ConnecClient(http, self.marketplaces.get(scope.marketplace), scope.account, app=self.app)

    def decode_event(self, entity: str, payload: bytes) -> RemoteRecord:
        """A stored Connec! notification record (notifications carry full records)."""
        return record_from_connec(entity, json.loads(payload))

    def _configured(self, key: str) -> bool:
        """Whether a marketplace called ``key`` is configured (now: the configuration may be reloaded)."""
        try:
            self.marketplaces.get(key)
        except UnknownMarketplace:
            return False
        return True

    def _marketplace(self, request: Request) -> Marketplace:
        """The path's marketplace when the request carries its credentials; an unknown key is
        refused exactly as wrong credentials are (the route check already did; this covers a reload)."""
        try:
            marketplace = self.marketplaces.get(request.params["marketplace"])
        except UnknownMarketplace:
            raise _bad_credentials() from None
        if not marketplace.authenticate(request.header("authorization")):
            raise _bad_credentials()
        return marketplace

    def _known(self, request: Request) -> Marketplace:
        try:
            return self.marketplaces.get(request.params["marketplace"])
        except UnknownMarketplace:
            raise HTTPError(404, "unknown marketplace") from None

    def _consume(self, hub: Any, marketplace: Marketplace, request: Request) -> Response:
        """Validate a SAML response in full, then sign the user in; nothing is written when it is refused."""
        from onelogin.saml2.auth import OneLogin_Saml2_Auth

        if self.sso is None:
            raise HTTPError(404, "single sign-on is not configured")
        fields = form_fields(request.body)
        if not fields.get("SAMLResponse"):
            raise HTTPError(400, "SAMLResponse is missing")
        request_id = None
        if fields.get("RelayState"):
            request_id = verify_relay_state(marketplace, fields["RelayState"])
            if request_id is None:
                raise HTTPError(403, "RelayState was not issued by us for this marketplace, or has expired")
        auth = OneLogin_Saml2_Auth(
            request_data(marketplace, self.prefix, post=fields), saml_settings(marketplace, self.prefix)
        )
        try:
            auth.process_response(request_id=request_id)
        except Exception as exc:  # python3-saml raises on malformed documents
            raise HTTPError(403, f"SAML response refused: {type(exc).__name__}") from None
        if auth.get_errors() or not auth.is_authenticated():
            raise HTTPError(403, f"SAML response refused: {auth.get_last_error_reason() or auth.get_errors()}")
        try:
            attributes = auth.get_attributes()
            user = SsoUser.from_attributes(attributes, marketplace.sso.creation_mode)
            group = SsoGroup.from_attributes(attributes)
        except ValueError as exc:
            raise HTTPError(403, f"SAML response refused: {exc}") from None
        assertion = auth.get_last_assertion_id()
        nonce = secrets.token_hex(8)
        with hub.session_factory.begin() as session:
            seen = identity.link(
                session,
                Scope(self.name, marketplace.key, "saml"),
                "saml_assertions",
                assertion,
                "saml_assertion",
                assertion,
                meta={"nonce": nonce},
            )
            if (seen.meta or {}).get("nonce") != nonce:
                raise HTTPError(403, "SAML response refused: this assertion was already used")
            scope = Scope(self.name, marketplace.key, group.uid)
            linked_group = identity.resolve(session, scope, "groups", group.uid)
            organization = self.sso.upsert_group(
                session, marketplace, group, linked_group.local_id if linked_group else None
            )
            if linked_group is None:
                identity.link(session, scope, "groups", group.uid, *organization)
            linked_user = identity.resolve(session, scope, "users", user.uid)
            person = self.sso.upsert_user(session, marketplace, user, linked_user.local_id if linked_user else None)
            if linked_user is None:
                identity.link(session, scope, "users", user.uid, *person)
            self.sso.add_member(session, marketplace, organization, person, user.role)
            if connections.get(session, scope) is None:  # first sign-in of this group
                connections.connect(session, organization[0], organization[1], scope)
                for entity in self.initial_import:
                    inbox.request_import(session, scope, entity)
        location, headers = self.sso.sign_in(marketplace, person, organization)
        return Response(302, (("location", location), *headers))

    def routes(self, hub: Any) -> list[Route]:
        """The metadata, Connec!, account-webhook and single sign-on routes, each strict about its path."""
        base = f"{self.prefix}/{{marketplace}}"
        sso_path = {"marketplace": self._configured}
        basic_path = {"marketplace": self._configured}
        group_path = {**basic_path, "group_id": identifier(128)}
        user_path = {**group_path, "user_id": identifier(128)}
        refused = _bad_credentials().response()

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

        def initialize(request: Request) -> Response:
            from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
            from onelogin.saml2.settings import OneLogin_Saml2_Settings
            from onelogin.saml2.utils import OneLogin_Saml2_Utils

            marketplace = self._known(request)
            settings = OneLogin_Saml2_Settings(saml_settings(marketplace, self.prefix), sp_validation_only=True)
            authn = OneLogin_Saml2_Authn_Request(settings)
            url = OneLogin_Saml2_Utils.redirect(
                settings.get_idp_data()["singleSignOnService"]["url"],
                {"SAMLRequest": authn.get_request(), "RelayState": relay_state(marketplace, authn.get_id())},
            )
            return Response(302, (("location", url),))

        def consume(request: Request) -> Response:
            marketplace = self._known(request)
            # SAMLResponse is base64 and RelayState ours: both ASCII. Anything else is refused here, before
            # hmac.compare_digest (which raises TypeError on non-ASCII str) in sso.verify_relay_state sees it.
            if not all(value.isascii() for value in form_fields(request.body).values()):
                raise HTTPError(400, "a SAML form holds only ASCII (a base64 SAMLResponse and our RelayState)")
            return self._consume(hub, marketplace, request)

        return [
            Route("GET", f"{base}/saml/initialize", initialize, params=sso_path),
            Route("POST", f"{base}/saml/consume", consume, params=sso_path),
            Route("POST", f"{base}/connec/receive", receive, params=basic_path, refusal=refused),
            Route("GET", f"{base}/metadata", metadata, params=basic_path, refusal=refused),
            Route("DELETE", f"{base}/account/group/{{group_id}}", delete_group, params=group_path, refusal=refused),
            Route(
                "DELETE",
                f"{base}/account/group/{{group_id}}/user/{{user_id}}",
                remove_user,
                params=user_path,
                refusal=refused,
            ),
        ]


def _bad_credentials() -> HTTPError:
    """The one answer to wrong credentials and to an unknown marketplace key alike."""
    return HTTPError(401, "invalid credentials", [("www-authenticate", 'Basic realm="maestrano"')])


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
