"""SAML single sign-on per marketplace, validated in full (python3-saml, strict mode).

``GET {prefix}/{marketplace}/saml/initialize`` redirects to that marketplace's
identity provider with an AuthnRequest; its id travels in a ``RelayState``
signed with the marketplace's API key, so ``consume`` enforces
``InResponseTo`` without server-side state (an unsolicited, IdP-initiated
response carries no RelayState and is accepted without it).

``POST {prefix}/{marketplace}/saml/consume`` validates the response against
*our configured* URL for that marketplace (never the request's Host header):
signature, audience, destination and recipient, ``NotBefore`` /
``NotOnOrAfter`` (python3-saml allows 300 s of clock drift on Conditions), and
refuses an assertion id it has seen before (remembered in the identity map
under the marketplace's ``saml`` scope). Only then are the user and group turned
into local rows through the identity map and handed to the application.

The application plugs in with an :class:`SsoHandler`. Example of the attribute
parsing::

    >>> from connected_objects_maestrano.sso import SsoGroup, SsoUser
    >>> attrs = {"uid": ["usr-1"], "virtual_uid": ["usr-1.cld-9"], "email": ["a@b.c"], "name": ["Ada"],
    ...          "surname": ["L"], "group_uid": ["cld-9"], "group_name": ["Acme"], "group_role": ["Admin"],
    ...          "group_country": ["AU"], "group_has_credit_card": ["true"]}
    >>> SsoUser.from_attributes(attrs, "virtual").uid, SsoGroup.from_attributes(attrs).country
    ('usr-1.cld-9', 'AU')
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
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
    "LocalRef",
    "RowSignIn",
    "SsoGroup",
    "SsoHandler",
    "SsoUser",
    "relay_state",
    "saml_settings",
    "verify_relay_state",
]

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
        from connected_objects.identity import local_type_name

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
            "entityId": marketplace.sso.idm or marketplace.app_host,
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


def verify_relay_state(marketplace: Marketplace, value: str, *, max_age: float = 600.0) -> str | None:
    """The AuthnRequest id from a RelayState we issued for this marketplace, or None if forged or stale."""
    body, _, mac = value.rpartition(".")
    expected = hmac.new(marketplace.api.key.encode(), f"{marketplace.key}.{body}".encode(), hashlib.sha256)
    if not body or not hmac.compare_digest(expected.hexdigest(), mac):
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
