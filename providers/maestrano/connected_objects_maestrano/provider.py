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

Sign-in binds each AuthnRequest to the browser that started it with an HMAC'd
cookie; ``sso_secret=`` is that HMAC's key (a long random value only this
application holds, the same in every process). Without it the key is derived
from each marketplace's ``api.key``. ``sso.idp_initiated`` (off by default)
lets a marketplace's IdP sign users in without a request of ours.

Both webhooks are idempotent: a second delivery answers success and changes
nothing.

Configuration follows ``docs/writing-a-provider.md`` ("Configuration conventions"):
the marketplaces (the one positional argument: a :class:`Marketplaces`, or a
function returning the current one) and keyword arguments. For the registry's
zero-argument load, ``CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES`` (the old
``MNO_MARKETPLACES`` still read) holds the marketplaces as JSON and
``CONNECTED_OBJECTS_MAESTRANO_SSO_SECRET`` the sign-in binding key; without the
former no marketplace is configured and every route answers as for an unknown
one.

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
import logging
import secrets
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from functools import partial
from typing import Any

import httpx
from sqlalchemy.orm import Session

from connected_objects.plugin import API_VERSION
from connected_objects.plugin import ConfigurationError
from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import HTTPError
from connected_objects.plugin import InboundEvent
from connected_objects.plugin import Limits
from connected_objects.plugin import PassthroughTarget
from connected_objects.plugin import ProviderContext
from connected_objects.plugin import RemoteClient
from connected_objects.plugin import RemoteRecord
from connected_objects.plugin import Request
from connected_objects.plugin import Response
from connected_objects.plugin import Route
from connected_objects.plugin import Scope
from connected_objects.plugin import UnknownMarketplace
from connected_objects.plugin import digest_key
from connected_objects.plugin import identifier
from connected_objects.plugin import inbox_route
from connected_objects.plugin import link
from connected_objects.plugin import loads
from connected_objects.plugin import parse_json_object
from connected_objects.plugin import register_secrets
from connected_objects.plugin import request_import
from connected_objects.plugin import resolve
from connected_objects.plugin import setting
from connected_objects.plugin import tombstone_scope
from connected_objects.plugin import unlink

from .connec import BATCH_SIZE
from .connec import MEDIA_TYPE
from .connec import ConnecClient
from .connec import fold
from .connec import group_root
from .connec import record_from_connec
from .entities import ENTITIES
from .marketplaces import Marketplace
from .marketplaces import Marketplaces
from .sso import SsoGroup
from .sso import SsoHandler
from .sso import SsoUser
from .sso import acs_url
from .sso import binding_cookie
from .sso import binding_key
from .sso import bound_to_browser
from .sso import clear_binding_cookie
from .sso import form_fields
from .sso import inspect_response
from .sso import relay_state
from .sso import request_data
from .sso import saml_settings
from .sso import sp_entity_id
from .sso import verify_relay_state

__all__ = ["LIMITS", "MaestranoProvider"]

log = logging.getLogger("connected_objects_maestrano.sso")
#: Where a skipped part of a Connec! notification is reported (:func:`parse_notification`).
notifications_log = logging.getLogger("connected_objects_maestrano.notifications")

#: Connec!'s pace per group: 4 calls in flight, writes 50 to a batch call.
LIMITS = Limits(concurrency=4, batch_size=BATCH_SIZE)

GroupHook = Callable[[Session, Marketplace, str], None]
UserHook = Callable[[Session, Marketplace, str, str], None]


class MaestranoProvider:
    """Maestrano marketplaces: SSO, billing, account and Connec! webhooks, Connec! data sharing.

    :param marketplaces: the marketplaces served (each scope's marketplace is one of their keys), or
        a function returning the current set (:class:`DevPlatform`); default: from
        ``CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES``, else none.
    :param prefix: where the routes live (``{prefix}/{marketplace}/…``).
    :param app: this application's name, as Connec! is told it.
    :param on_group_deleted: runs when a marketplace cancels a group.
    :param on_user_removed: runs when a user leaves a group.
    :param sso: signs users in after single sign-on (without it the SSO routes are 404).
    :param initial_import: entities pulled when a group first connects.
    :param sso_secret: the key binding a sign-in to its browser (default:
        ``CONNECTED_OBJECTS_MAESTRANO_SSO_SECRET``, else derived per marketplace).
    :param limits: replaces Connec!'s pace per group (:data:`LIMITS`).
    :param extra_entities: Connec! collections synced beyond the ones declared in
        :data:`~connected_objects_maestrano.entities.ENTITIES` (the client speaks any
        collection: ``["sales_orders", "credit_notes"]``); a ``@connected`` model on an
        undeclared entity fails ``Hub.install()``.

    Its ``entities`` are the declared collections (:attr:`entity_catalog`), plus
    ``users`` and ``groups`` (the identity map's links of single sign-on and the
    account webhooks, not Connec! collections), plus ``extra_entities``.
    """

    name = "maestrano"
    api_version = API_VERSION
    #: The Connec! collections declared as data; writes to the read-only ones are refused before any request.
    entity_catalog: EntityCatalog = ENTITIES
    entities: frozenset[str] = ENTITIES.names | {"users", "groups"}
    #: None per connection: each marketplace's API credentials are in its configuration.
    required_credentials: tuple[str, ...] = ()

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
        sso_secret: str | bytes | None = None,
        limits: Limits | None = None,
        extra_entities: Collection[str] = (),
    ) -> None:
        if isinstance(extra_entities, str):
            raise ConfigurationError(f"extra_entities takes a list of collections, e.g. [{extra_entities!r}]")
        self.entities = type(self).entities | frozenset(extra_entities)
        if marketplaces is None:
            marketplaces = Marketplaces.from_env() if Marketplaces.env_variable() else Marketplaces()
        self._marketplaces = marketplaces
        self._limits = limits or LIMITS
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.app = app
        self.on_group_deleted = on_group_deleted
        self.on_user_removed = on_user_removed
        self.sso = sso
        self.initial_import = tuple(initial_import)
        if sso_secret is not None and not sso_secret:
            raise ConfigurationError("sso_secret must not be empty: pass a long random value, or None")
        if sso_secret is None:
            sso_secret = setting(None, self.name, "sso_secret", "") or None
        text = sso_secret.decode(errors="replace") if isinstance(sso_secret, bytes) else sso_secret
        register_secrets(text, owner=self)  # never quoted in an error or a log
        self._sso_secret = sso_secret.encode() if isinstance(sso_secret, str) else sso_secret

    def __repr__(self) -> str:
        return f"MaestranoProvider(prefix={self.prefix!r}, marketplaces={self.marketplaces!r})"

    @property
    def marketplaces(self) -> Marketplaces:
        """The current marketplaces (a :class:`DevPlatform`'s latest good copy when given one)."""
        source = self._marketplaces
        return source if isinstance(source, Marketplaces) else source()

    def limits(self, scope: Scope) -> Limits:
        """Connec!'s pace per group (:data:`LIMITS`), or the ``limits=`` given."""
        return self._limits

    def fold_reference(self, entity: str, name: str, foreign_id: str) -> Any:
        """References go out as Connec! id arrays, the form Connec! sends them in."""
        return fold(foreign_id)

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> RemoteClient:
        """A Connec! client for the scope's group, with the scope's marketplace credentials."""
        return ConnecClient(
            http, self.marketplaces.get(scope.marketplace), scope.account, app=self.app, catalog=self.entity_catalog
        )

    def passthrough(self, scope: Scope, credentials: Mapping[str, Any]) -> PassthroughTarget:
        """Raw calls for ``hub.remote(scope)``: under the group's collection root at Connec!
        (``{connec.host}{connec.base_path}/{group_id}``, so any collection, declared or not), with the
        marketplace's HTTP Basic credentials (its ``api.id`` and ``api.key``, never shown)."""
        marketplace = self.marketplaces.get(scope.marketplace)
        return PassthroughTarget(
            group_root(marketplace, scope.account),
            headers={"Accept": MEDIA_TYPE},  # as maestrano-ruby sends it (connec.py)
            auth=httpx.BasicAuth(marketplace.api.id, marketplace.api.key),
            timeout=marketplace.connec.timeout,
        )

    def decode_event(self, entity: str, payload: bytes) -> RemoteRecord:
        """A stored Connec! notification record (notifications carry full records)."""
        return record_from_connec(entity, loads(payload))

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

    def _refuse(self, marketplace: Marketplace, reason: str) -> HTTPError:
        """A refused sign-in: the reason goes to the log, the browser gets a generic 403."""
        log.warning("SAML response refused for marketplace %s: %s", marketplace.key, reason)
        return HTTPError(403, "sign-in refused: start again from your marketplace")

    def _consume(self, context: ProviderContext, marketplace: Marketplace, request: Request) -> Response:
        """Validate a SAML response in full, then sign the user in; nothing is written when it is refused."""
        from onelogin.saml2.response import OneLogin_Saml2_Response
        from onelogin.saml2.settings import OneLogin_Saml2_Settings

        if self.sso is None:
            raise HTTPError(404, "single sign-on is not configured")
        fields = form_fields(request.body)
        if not fields.get("SAMLResponse"):
            raise HTTPError(400, "SAMLResponse is missing")
        try:
            facts = inspect_response(fields["SAMLResponse"])
        except ValueError as exc:
            raise self._refuse(marketplace, str(exc)) from None
        request_id: str | None = None
        if facts.in_response_to:  # solicited: it must answer a request we issued to this very browser
            if len(facts.in_response_to) != 1:
                raise self._refuse(marketplace, "the response names several InResponseTo values")
            (request_id,) = facts.in_response_to
            relayed = verify_relay_state(marketplace, fields.get("RelayState") or "")
            if relayed is None:
                raise self._refuse(marketplace, "a solicited response without a RelayState we issued (or expired)")
            if relayed != request_id:
                raise self._refuse(marketplace, "InResponseTo is not the request named in the RelayState")
            if not bound_to_browser(
                marketplace, request_id, binding_key(marketplace, self._sso_secret), request.header("cookie")
            ):
                raise self._refuse(marketplace, "this browser holds no binding cookie for the request it answers")
        elif not marketplace.sso.idp_initiated:
            raise self._refuse(marketplace, "an unsolicited (IdP-initiated) response, and sso.idp_initiated is off")
        acs = acs_url(marketplace, self.prefix)
        if facts.assertions != 1:
            raise self._refuse(marketplace, f"the response holds {facts.assertions} assertions, not exactly one")
        if facts.destination != acs:
            raise self._refuse(marketplace, "Destination is not exactly our consume URL")
        if not facts.recipients or any(r != acs for r in facts.recipients):
            raise self._refuse(marketplace, "a SubjectConfirmationData has no Recipient, or not exactly ours")
        try:
            settings = OneLogin_Saml2_Settings(saml_settings(marketplace, self.prefix), sp_validation_only=True)
            response = OneLogin_Saml2_Response(settings, fields["SAMLResponse"])
            response.is_valid(request_data(marketplace, self.prefix, post=fields), request_id, raise_exceptions=True)
            attributes = response.get_attributes()
            assertion = response.get_assertion_id()
        except Exception as exc:  # python3-saml raises its validation errors, and on malformed documents
            raise self._refuse(marketplace, f"python3-saml: {type(exc).__name__}: {exc}") from None
        if not assertion:
            raise self._refuse(marketplace, "the assertion has no ID, so its replay could not be refused")
        try:
            user = SsoUser.from_attributes(attributes, marketplace.sso.creation_mode)
            group = SsoGroup.from_attributes(attributes)
        except ValueError as exc:
            raise self._refuse(marketplace, str(exc)) from None
        nonce = secrets.token_hex(8)
        with context.session_factory.begin() as session:  # a refusal raised in here rolls every write back
            saml = Scope(self.name, marketplace.key, "saml")
            for entity, once in (("saml_assertions", assertion), ("saml_requests", request_id)):
                if once is None:
                    continue
                seen = link(session, saml, entity, once, entity[:-1], once, meta={"nonce": nonce})
                if (seen.meta or {}).get("nonce") != nonce:
                    raise self._refuse(marketplace, f"{entity[5:-1]} {once} was already used")
            scope = Scope(self.name, marketplace.key, group.uid)
            linked_group = resolve(session, scope, "groups", group.uid)
            organization = self.sso.upsert_group(
                session, marketplace, group, linked_group.local_id if linked_group else None
            )
            if linked_group is None:
                link(session, scope, "groups", group.uid, *organization)
            linked_user = resolve(session, scope, "users", user.uid)
            person = self.sso.upsert_user(session, marketplace, user, linked_user.local_id if linked_user else None)
            if linked_user is None:
                link(session, scope, "users", user.uid, *person)
            self.sso.add_member(session, marketplace, organization, person, user.role)
            if context.connection_status(session, scope) is None:  # first sign-in of this group
                context.connect_scope(session, organization[0], organization[1], scope)
                for entity in self.initial_import:
                    request_import(session, scope, entity)
        location, headers = self.sso.sign_in(marketplace, person, organization)
        done = [("set-cookie", clear_binding_cookie(marketplace, request_id))] if request_id else []
        return Response(302, (("location", location), *headers, *done))

    def routes(self, context: ProviderContext) -> list[Route]:
        """The metadata, Connec!, account-webhook and single sign-on routes, each strict about its path
        and each one method: :meth:`metadata`, :meth:`connec_receive`, :meth:`delete_group`,
        :meth:`remove_user`, :meth:`saml_initialize`, :meth:`saml_consume`."""
        base = f"{self.prefix}/{{marketplace}}"
        sso_path = {"marketplace": self._configured}
        basic_path = {"marketplace": self._configured}
        group_path = {**basic_path, "group_id": identifier(128)}
        user_path = {**group_path, "user_id": identifier(128)}
        refused = _bad_credentials().response()
        return [
            Route("GET", f"{base}/saml/initialize", self.saml_initialize, params=sso_path),
            Route("POST", f"{base}/saml/consume", partial(self.saml_consume, context), params=sso_path),
            self.connec_receive(context, f"{base}/connec/receive", params=basic_path, refusal=refused),
            Route("GET", f"{base}/metadata", self.metadata, params=basic_path, refusal=refused),
            Route(
                "DELETE",
                f"{base}/account/group/{{group_id}}",
                partial(self.delete_group, context),
                params=group_path,
                refusal=refused,
            ),
            Route(
                "DELETE",
                f"{base}/account/group/{{group_id}}/user/{{user_id}}",
                partial(self.remove_user, context),
                params=user_path,
                refusal=refused,
            ),
        ]

    def metadata(self, request: Request) -> Response:
        """``GET …/metadata``: our configuration manifest for the marketplace (never a secret)."""
        marketplace = self._marketplace(request)
        manifest = marketplace.to_metadata()
        manifest["sso"]["entity_id"] = sp_entity_id(marketplace, self.prefix)  # the effective one
        return Response.json(200, manifest)

    def connec_receive(self, context: ProviderContext, path: str, **route: Any) -> Route:
        """``POST …/connec/receive``: a Connec! notification, behind the marketplace's credentials,
        each record stored in the inbox under its own group (:func:`parse_notification`)."""

        def verify(request: Request) -> str:
            return self._marketplace(request).key

        def parse(request: Request, marketplace: str) -> list[InboundEvent]:
            wanted = lambda entity: context.spec_for(self.name, entity) is not None  # noqa: E731
            return parse_notification(parse_json_object(request), marketplace, wanted)

        return inbox_route(context, self.name, path, verify=verify, parse=parse, **route)

    def delete_group(self, context: ProviderContext, request: Request) -> Response:
        """``DELETE …/account/group/{group_id}``: ``on_group_deleted`` runs, the group's connection is
        revoked and its connected objects are tombstoned (once: a second delivery changes nothing)."""
        marketplace = self._marketplace(request)
        group = request.params["group_id"]
        scope = Scope(self.name, marketplace.key, group)
        with context.session_factory.begin() as session:
            if context.connection_status(session, scope) in (None, "revoked"):
                return Response.json(200, {"success": True, "changed": False})
            if self.on_group_deleted is not None:
                self.on_group_deleted(session, marketplace, group)
            context.disconnect_scope(session, scope, f"group {group} deleted by marketplace {marketplace.key}")
            gone = tombstone_scope(session, scope)
        return Response.json(200, {"success": True, "changed": True, "tombstoned": gone})

    def remove_user(self, context: ProviderContext, request: Request) -> Response:
        """``DELETE …/account/group/{group_id}/user/{user_id}``: ``on_user_removed`` runs and the user's
        link in that group is tombstoned (once)."""
        marketplace = self._marketplace(request)
        group, user = request.params["group_id"], request.params["user_id"]
        scope = Scope(self.name, marketplace.key, group)
        with context.session_factory.begin() as session:
            if resolve(session, scope, "users", user) is None:
                return Response.json(200, {"success": True, "changed": False})
            if self.on_user_removed is not None:
                self.on_user_removed(session, marketplace, group, user)
            unlink(session, scope, "users", user)
        return Response.json(200, {"success": True, "changed": True})

    def saml_initialize(self, request: Request) -> Response:
        """``GET …/saml/initialize``: an AuthnRequest to the marketplace's identity provider, bound to
        this browser by a cookie."""
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
        cookie = binding_cookie(marketplace, authn.get_id(), binding_key(marketplace, self._sso_secret))
        return Response(302, (("location", url), ("set-cookie", cookie), ("cache-control", "no-store")))

    def saml_consume(self, context: ProviderContext, request: Request) -> Response:
        """``POST …/saml/consume``: a SAML response, validated in full (:meth:`_consume`), signs the user in."""
        marketplace = self._known(request)
        # SAMLResponse is base64 and RelayState ours: both ASCII. Anything else is refused here, before
        # hmac.compare_digest (which raises TypeError on non-ASCII str) in sso.verify_relay_state sees it.
        if not all(value.isascii() for value in form_fields(request.body).values()):
            raise HTTPError(400, "a SAML form holds only ASCII (a base64 SAMLResponse and our RelayState)")
        return self._consume(context, marketplace, request)


def _bad_credentials() -> HTTPError:
    """The one answer to wrong credentials and to an unknown marketplace key alike."""
    return HTTPError(401, "invalid credentials", [("www-authenticate", 'Basic realm="maestrano"')])


def parse_notification(body: Mapping[str, Any], marketplace: str, wanted: Callable[[str], bool]) -> list[InboundEvent]:
    """Validate a Connec! notification; one inbox event per record the application syncs, filed under its
    ``group_id``.

    A record of an entity this application syncs (``wanted``) is checked before any is kept: one without a
    ``group_id`` or an ``id`` refuses the whole delivery with a 400 and nothing is stored (it is never filed under
    an id of ``"None"`` to be fetched later), so Connec! sends it again. Every notified entity carries both: the
    payload on Maestrano's "Connec! Webhook" page (maestrano.atlassian.net/wiki/spaces/DEV/pages/18448400) and
    maestrano-ruby's README "Webhook Notifications"; the id is a plain Connec! id or an id array holding one
    (``connec_helper.rb``).

    Records of the other entities are not the application's business: Connec! buffers notifications and sends
    several entities in one request (same wiki page), so a malformed one of those is skipped with a warning
    (entity, position and what is wrong: never the record's content) and the rest of the delivery is kept, not
    refused and sent again for a record nobody reads.

    >>> record = {"id": "x1", "group_id": "cld-1", "title": "INV-1"}
    >>> synced = {"invoices"}.__contains__
    >>> [e.account for e in parse_notification({"invoices": [record], "events": "junk"}, "m", synced)]
    ['cld-1']
    """
    events = []
    for entity, records in body.items():
        synced = wanted(entity)
        if not isinstance(records, list):
            _malformed(synced, marketplace, entity, None, "must be a list of records")
            continue
        for n, record in enumerate(records):
            if not isinstance(record, dict):
                _malformed(synced, marketplace, entity, n, "must be an object")
                continue
            group = record.get("group_id")
            if not isinstance(group, str) or not group or len(group) > 128:
                _malformed(synced, marketplace, entity, n, "needs a group_id")
                continue
            try:
                rid = record_from_connec(entity, record).foreign_id
            except Exception:
                _malformed(synced, marketplace, entity, n, "needs an id (or an id array with a Connec! id)")
                continue
            if not synced:
                continue  # an entity this application does not sync
            key = digest_key(marketplace, entity, rid, record.get("updated_at"))
            events.append(InboundEvent(key, group, entity, json.dumps(record).encode()))
    return events


def _malformed(synced: bool, marketplace: str, entity: str, position: int | None, problem: str) -> None:
    """A malformed part of a notification: refuses the delivery (400) when the application syncs its entity,
    else is logged and skipped. What is logged names the entity and the position only, never a value sent."""
    if synced:
        where = f"{entity!r}" if position is None else f"{entity}[{position}]"
        raise HTTPError(400, f"{where} {problem}")
    notifications_log.warning(
        "Connec! notification for marketplace %r: skipped a malformed record of %r, an entity this application "
        "does not sync (%s %s); the rest of the delivery is kept",
        marketplace,
        entity[:64],
        "its value" if position is None else f"record {position}",
        problem,
    )
