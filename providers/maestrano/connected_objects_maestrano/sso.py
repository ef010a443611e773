"""SAML single sign-on per marketplace, validated in full (python3-saml, strict mode).

``GET {prefix}/{marketplace}/saml/initialize`` redirects to that marketplace's
identity provider with an AuthnRequest. Its id travels twice: in a
``RelayState`` signed with the marketplace's API key, and in a short-lived
cookie (:func:`binding_cookie`) that ties the request to *this browser*.

``POST {prefix}/{marketplace}/saml/consume`` accepts a response only when:

* it answers a request we issued to this browser: its ``InResponseTo`` equals
  the id in the signed RelayState *and* in the browser's binding cookie, and
  that id was never consumed before (login CSRF: an attacker's own valid
  response, posted from the victim's browser, has no cookie there). A response
  with no ``InResponseTo`` (IdP-initiated) is refused unless the marketplace
  sets ``sso.idp_initiated = true``;
* its ``Destination`` equals our consume URL exactly, and every bearer
  ``SubjectConfirmationData`` names it as ``Recipient`` (python3-saml checks a
  prefix and accepts a missing Recipient: :func:`inspect_response` adds the
  exact checks on the same safely parsed document);
* python3-saml validates it against *our configured* URL for that marketplace
  (never the request's Host header): signature, audience (our per-marketplace
  :func:`sp_entity_id`), issuer, ``NotBefore`` / ``NotOnOrAfter`` (300 s of
  clock drift on Conditions);
* its assertion id was never seen (remembered in the identity map under the
  marketplace's ``saml`` scope, with the consumed request id).

Only then are the user and group turned into local rows through the identity
map and handed to the application. A refusal answers a generic 403 and logs
its reason (logger ``connected_objects_maestrano.sso``); nothing is written.

The application plugs in with an :class:`SsoHandler`. Example of the attribute
parsing::

    >>> from connected_objects_maestrano.sso import SsoGroup, SsoUser
    >>> attrs = {"uid": ["usr-1"], "virtual_uid": ["usr-1.cld-9"], "email": ["a@b.c"], "name": ["Ada"],
    ...          "surname": ["L"], "group_uid": ["cld-9"], "group_name": ["Acme"], "group_role": ["Admin"],
    ...          "group_country": ["AU"], "group_has_credit_card": ["true"]}
    >>> SsoUser.from_attributes(attrs, "virtual").uid, SsoGroup.from_attributes(attrs).country
    ('usr-1.cld-9', 'AU')

and of the browser binding, a cookie only the browser that started request
``_r1`` carries back::

    >>> from connected_objects_maestrano.marketplaces import Marketplaces
    >>> m = Marketplaces.from_config({"marketplaces": [{"marketplace": "mno", "app": {"host": "https://app.example"},
    ...     "api": {"id": "app-1", "key": "k", "host": "https://hub.example"}}]}).get("mno")
    >>> header = binding_cookie(m, "_r1", b"server-side key")
    >>> header.split("=", 1)[0].startswith("__Host-co-saml-"), "SameSite=None" in header, "Secure" in header
    (True, True, True)
    >>> cookie = header.split(";", 1)[0]
    >>> bound_to_browser(m, "_r1", b"server-side key", cookie), bound_to_browser(m, "_r2", b"server-side key", cookie)
    (True, False)
    >>> sp_entity_id(m, "/mno-enterprise")
    'https://app.example/mno-enterprise/mno/metadata'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import Protocol
from urllib.parse import parse_qs
from urllib.parse import urlparse

from .marketplaces import Marketplace

__all__ = [
    "BINDING_MAX_AGE",
    "LocalRef",
    "ResponseFacts",
    "RowSignIn",
    "SsoGroup",
    "SsoHandler",
    "SsoUser",
    "acs_url",
    "binding_cookie",
    "binding_key",
    "bound_to_browser",
    "clear_binding_cookie",
    "inspect_response",
    "relay_state",
    "saml_settings",
    "sp_entity_id",
    "verify_relay_state",
]

log = logging.getLogger("connected_objects_maestrano.sso")

#: Seconds a started sign-in stays valid (the RelayState and the browser binding cookie).
BINDING_MAX_AGE = 600

LocalRef = tuple[str, str]  # (local_type, local_id)


def _first(attrs: Mapping[str, list[str]], *names: str) -> str | None:
    for name in names:
        values = attrs.get(name)
        if values and values[0] != "":
            return values[0]
    return None


@dataclass(frozen=True)
class SsoUser:
    """The signed-in user, as the marketplace describes them."""

    uid: str
    real_uid: str
    email: str | None
    first_name: str | None
    last_name: str | None
    country: str | None
    company_name: str | None
    role: str | None

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, list[str]], creation_mode: str = "real") -> SsoUser:
        real = _first(attrs, "uid")
        if not real:
            raise ValueError("the SAML response has no uid attribute")
        virtual = creation_mode == "virtual"
        return cls(
            uid=(_first(attrs, "virtual_uid") or real) if virtual else real,
            real_uid=real,
            email=_first(attrs, "virtual_email", "email") if virtual else _first(attrs, "email"),
            first_name=_first(attrs, "name"),
            last_name=_first(attrs, "surname"),
            country=_first(attrs, "country"),
            company_name=_first(attrs, "company_name"),
            role=_first(attrs, "group_role"),
        )


@dataclass(frozen=True)
class SsoGroup:
    """The user's group (the customer account at the marketplace)."""

    uid: str
    name: str | None
    email: str | None
    country: str | None
    currency: str | None
    timezone: str | None
    city: str | None
    has_credit_card: bool
    free_trial_end: str | None

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, list[str]]) -> SsoGroup:
        uid = _first(attrs, "group_uid")
        if not uid:
            raise ValueError("the SAML response has no group_uid attribute")
        return cls(
            uid=uid,
            name=_first(attrs, "group_name", "company_name"),
            email=_first(attrs, "group_email"),
            country=_first(attrs, "group_country", "country"),  # Java sends group_country, Ruby country
            currency=_first(attrs, "group_currency"),
            timezone=_first(attrs, "group_timezone"),
            city=_first(attrs, "group_city"),
            has_credit_card=(_first(attrs, "group_has_credit_card") or "").lower() == "true",
            free_trial_end=_first(attrs, "group_end_free_trial"),
        )


class SsoHandler(Protocol):
    """What the application does at sign-in: its rows, its membership, its session."""

    def upsert_group(self, session: Any, marketplace: Marketplace, group: SsoGroup, existing: str | None) -> LocalRef:
        """Create or update the organization for ``group`` (``existing``: its local id if linked)."""
        ...

    def upsert_user(self, session: Any, marketplace: Marketplace, user: SsoUser, existing: str | None) -> LocalRef:
        """Create or update the user (``existing``: their local id if linked)."""
        ...

    def add_member(
        self, session: Any, marketplace: Marketplace, organization: LocalRef, user: LocalRef, role: str | None
    ) -> None:
        """Make the user a member of the organization with ``role``."""
        ...

    def sign_in(
        self, marketplace: Marketplace, user: LocalRef, organization: LocalRef
    ) -> tuple[str, list[tuple[str, str]]]:
        """Where to send the browser after sign-in, and the headers (cookies) that sign the user in."""
        ...


class RowSignIn:
    """An :class:`SsoHandler` for the common shape: an organization model and a user model.

    A new group becomes ``organization(name=...)``, a new user ``user(email=...)``;
    membership sets the user's ``member`` attribute (and ``role``, when given) and
    sign-in answers ``landing`` with the ``Set-Cookie`` value ``cookie(user_id)``
    returns: the application's own login. Write your own handler for anything richer.

    :param organization: the organization model (primary key: one integer column).
    :param user: the user model.
    :param name: the organization attribute that gets the group's name.
    :param email: the user attribute that gets the user's email.
    :param member: the user attribute holding the organization's id.
    :param role: the user attribute holding the member's role, if any.
    :param landing: where the browser goes after sign-in.
    :param cookie: ``user_id -> Set-Cookie value`` signing the user in (None: no cookie).
    """

    def __init__(
        self,
        organization: type,
        user: type,
        *,
        name: str = "name",
        email: str = "email",
        member: str = "organization_id",
        role: str | None = None,
        landing: str = "/",
        cookie: Callable[[int], str] | None = None,
    ) -> None:
        from connected_objects.plugin import local_type_name

        self.organization, self.user = organization, user
        self.organization_type, self.user_type = local_type_name(organization), local_type_name(user)
        self.name, self.email, self.member, self.role = name, email, member, role
        self.landing, self.cookie = landing, cookie

    def _upsert(self, session: Any, model: type, existing: str | None, values: dict[str, Any]) -> str:
        row = session.get(model, int(existing)) if existing else None
        if row is None:
            row = model(**values)
            session.add(row)
            session.flush()
        return str(row.id)

    def upsert_group(self, session: Any, marketplace: Marketplace, group: SsoGroup, existing: str | None) -> LocalRef:
        values = {self.name: group.name or group.uid}
        return (self.organization_type, self._upsert(session, self.organization, existing, values))

    def upsert_user(self, session: Any, marketplace: Marketplace, user: SsoUser, existing: str | None) -> LocalRef:
        return (self.user_type, self._upsert(session, self.user, existing, {self.email: user.email}))

    def add_member(
        self, session: Any, marketplace: Marketplace, organization: LocalRef, user: LocalRef, role: str | None
    ) -> None:
        row = session.get(self.user, int(user[1]))
        if row is not None:
            setattr(row, self.member, int(organization[1]))
            if self.role is not None:
                setattr(row, self.role, role)

    def sign_in(
        self, marketplace: Marketplace, user: LocalRef, organization: LocalRef
    ) -> tuple[str, list[tuple[str, str]]]:
        headers = [("set-cookie", self.cookie(int(user[1])))] if self.cookie is not None else []
        return self.landing, headers


def acs_url(marketplace: Marketplace, prefix: str) -> str:
    """Our assertion consumer URL for this marketplace, from configuration."""
    return f"{marketplace.app_host.rstrip('/')}{prefix}/{marketplace.key}/saml/consume"


def sp_entity_id(marketplace: Marketplace, prefix: str) -> str:
    """Our SP entity id at this marketplace: ``sso.entity_id``, else this marketplace's own metadata URL.

    Distinct per marketplace by default, so two marketplaces whose IdP signs with
    the same key cannot accept each other's assertions (the Audience differs).
    """
    return marketplace.sso.entity_id or f"{marketplace.app_host.rstrip('/')}{prefix}/{marketplace.key}/metadata"


def saml_settings(marketplace: Marketplace, prefix: str) -> dict[str, Any]:
    """python3-saml settings for one marketplace (strict: signed assertions, exact audience)."""
    idp: dict[str, Any] = {
        "entityId": marketplace.sso.idp or marketplace.api.host,
        "singleSignOnService": {
            "url": marketplace.api.url + "auth/saml",
            "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
        },
    }
    if marketplace.sso.x509_certificate:
        idp["x509cert"] = marketplace.sso.x509_certificate
    elif marketplace.sso.x509_fingerprint:
        idp["certFingerprint"] = marketplace.sso.x509_fingerprint
        idp["certFingerprintAlgorithm"] = "sha1"
    return {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": sp_entity_id(marketplace, prefix),
            "assertionConsumerService": {
                "url": acs_url(marketplace, prefix),
                "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
            },
            "NameIDFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
        },
        "idp": idp,
        "security": {"wantAssertionsSigned": True, "wantMessagesSigned": False, "rejectDeprecatedAlgorithm": True},
    }


def request_data(
    marketplace: Marketplace, prefix: str, post: Mapping[str, str] | None = None, query: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The request as python3-saml wants it, built from our configured URL, not the client's headers."""
    url = urlparse(acs_url(marketplace, prefix))
    return {
        "https": "on" if url.scheme == "https" else "off",
        "http_host": url.netloc,
        "script_name": url.path,
        "post_data": dict(post or {}),
        "get_data": dict(query or {}),
    }


def relay_state(marketplace: Marketplace, request_id: str, *, now: float | None = None) -> str:
    """A RelayState carrying the AuthnRequest id, signed with the marketplace's API key."""
    body = base64.urlsafe_b64encode(json.dumps({"r": request_id, "t": int(now or time.time())}).encode()).decode()
    mac = hmac.new(marketplace.api.key.encode(), f"{marketplace.key}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def verify_relay_state(marketplace: Marketplace, value: str, *, max_age: float = BINDING_MAX_AGE) -> str | None:
    """The AuthnRequest id from a RelayState we issued for this marketplace, or None if forged or stale."""
    body, _, mac = value.rpartition(".")
    expected = hmac.new(marketplace.api.key.encode(), f"{marketplace.key}.{body}".encode(), hashlib.sha256)
    if not body or not hmac.compare_digest(expected.hexdigest().encode(), mac.encode("utf-8", "surrogateescape")):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body.encode()))
    except ValueError:
        return None
    if time.time() - float(data.get("t", 0)) > max_age:
        return None
    request_id = data.get("r")
    return request_id if isinstance(request_id, str) else None


def form_fields(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as single values."""
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _binding_name(marketplace: Marketplace, request_id: str, secure: bool) -> str:
    digest = hashlib.sha256(f"{marketplace.key}\0{request_id}".encode()).hexdigest()[:24]
    # __Host-: only a secure response from this very host may set it (no cookie tossing from a sibling domain)
    return f"{'__Host-' if secure else ''}co-saml-{digest}"


def _binding_mac(marketplace: Marketplace, request_id: str, key: bytes, issued: int) -> str:
    message = f"saml-browser-binding\0{marketplace.key}\0{request_id}\0{issued}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _secure(marketplace: Marketplace) -> bool:
    return urlparse(marketplace.app_host).scheme != "http"


def binding_cookie(marketplace: Marketplace, request_id: str, key: bytes, *, now: float | None = None) -> str:
    """The ``Set-Cookie`` value binding AuthnRequest ``request_id`` to the browser that started it.

    The value is the issue time and an HMAC (``key``: a server-side secret) of the
    marketplace, the request id and that time. It lives :data:`BINDING_MAX_AGE`
    seconds and is HttpOnly. The consume POST comes *cross-site*, from the IdP's
    page, and browsers send ``SameSite=Lax`` (their default) cookies only on
    top-level GETs across sites: the cookie must be ``SameSite=None``, which
    browsers accept only with ``Secure``. On a plain-``http`` app host (a
    development setup) it cannot be Secure, so it is ``SameSite=Lax`` there and
    works only with an IdP on the same site (e.g. both on localhost).
    """
    issued = int(now if now is not None else time.time())
    secure = _secure(marketplace)
    value = f"{issued}.{_binding_mac(marketplace, request_id, key, issued)}"
    flags = "Secure; HttpOnly; SameSite=None" if secure else "HttpOnly; SameSite=Lax"
    return f"{_binding_name(marketplace, request_id, secure)}={value}; Max-Age={BINDING_MAX_AGE}; Path=/; {flags}"


def clear_binding_cookie(marketplace: Marketplace, request_id: str) -> str:
    """The ``Set-Cookie`` value that deletes the binding cookie once its request is consumed."""
    secure = _secure(marketplace)
    flags = "Secure; HttpOnly; SameSite=None" if secure else "HttpOnly; SameSite=Lax"
    return f"{_binding_name(marketplace, request_id, secure)}=; Max-Age=0; Path=/; {flags}"


def _cookies(header: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in found:  # the first of two same-named cookies is the most specific
            found[name] = value.strip().strip('"')
    return found


def bound_to_browser(
    marketplace: Marketplace,
    request_id: str,
    key: bytes,
    cookie_header: str | None,
    *,
    max_age: float = BINDING_MAX_AGE,
) -> bool:
    """Whether the request's ``Cookie`` header carries our unexpired binding of ``request_id``."""
    value = _cookies(cookie_header).get(_binding_name(marketplace, request_id, _secure(marketplace)))
    if not value:
        return False
    issued, _, mac = value.partition(".")
    if not (issued.isascii() and issued.isdigit()) or not hmac.compare_digest(
        _binding_mac(marketplace, request_id, key, int(issued)).encode(), mac.encode("utf-8", "surrogateescape")
    ):
        return False
    return 0 <= time.time() - int(issued) <= max_age


@dataclass(frozen=True)
class ResponseFacts:
    """What the exact checks need from a SAML response, read before it is trusted."""

    in_response_to: frozenset[str]  # every InResponseTo: the Response's and each SubjectConfirmationData's
    destination: str | None
    recipients: tuple[str | None, ...]  # of each bearer SubjectConfirmationData
    assertions: int


def inspect_response(saml_response: str) -> ResponseFacts:
    """Read a base64 ``SAMLResponse`` with python3-saml's own decoder and hardened parser (no DTD, no entities).

    Raises ``ValueError`` when it is not a SAML ``Response`` document.
    """
    from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
    from onelogin.saml2.utils import OneLogin_Saml2_Utils
    from onelogin.saml2.xml_utils import OneLogin_Saml2_XML as XML

    try:
        root = XML.to_etree(OneLogin_Saml2_Utils.b64decode(saml_response))
    except Exception as exc:  # binascii, lxml and the parser's DTD/entity refusals
        raise ValueError(f"not a parseable SAML document ({type(exc).__name__})") from None
    if root.tag != f"{{{C.NS_SAMLP}}}Response":
        raise ValueError("not a samlp:Response")
    assertions = XML.query(root, "//saml:Assertion") + XML.query(root, "//saml:EncryptedAssertion")
    irt = {root.get("InResponseTo")}
    recipients: list[str | None] = []
    for confirmation in XML.query(root, "//saml:Assertion/saml:Subject/saml:SubjectConfirmation"):
        data = confirmation.find("saml:SubjectConfirmationData", namespaces=C.NSMAP)
        if data is not None:
            irt.add(data.get("InResponseTo"))
        if confirmation.get("Method") in (None, C.CM_BEARER):
            recipients.append(None if data is None else data.get("Recipient"))
    return ResponseFacts(
        in_response_to=frozenset(i for i in irt if i is not None),
        destination=root.get("Destination"),
        recipients=tuple(recipients),
        assertions=len(assertions),
    )


def binding_key(marketplace: Marketplace, secret: bytes | None) -> bytes:
    """The HMAC key of this marketplace's browser-binding cookies.

    From the provider's ``sso_secret`` when given, else derived from the
    marketplace's ``api.key`` (a server-side secret that never reaches a
    browser); domain-separated per marketplace either way.
    """
    root = secret if secret is not None else marketplace.api.key.encode()
    return hmac.new(root, f"connected-objects saml binding\0{marketplace.key}".encode(), hashlib.sha256).digest()
