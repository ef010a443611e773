"""Marketplaces: one immutable configuration per Maestrano marketplace key, many at once.

A :class:`Marketplace` holds everything one marketplace needs (API credentials
and host, SSO, Connec!, webhook paths). :class:`Marketplaces` is an immutable
set of them, looked up by key (an unknown key is an error, never a default)
or by API credentials (for webhooks whose route names no marketplace).
There is no "current marketplace" anywhere: pass the value where it is used.

Configuration comes from a mapping (a dict, a TOML file, the environment) or
from the Maestrano developer platform through :class:`DevPlatform`, which keeps
the last good copy when the platform is down or answers nonsense, and swaps
in a new set atomically.

Example::

    >>> from connected_objects_maestrano.marketplaces import Marketplaces
    >>> marketplaces = Marketplaces.from_config({"marketplaces": [{
    ...     "marketplace": "maestrano-uat", "environment": "uat",
    ...     "app": {"host": "https://app.example.com"},
    ...     "api": {"id": "app-1", "key": "s3cret", "host": "https://api-hub-uat.maestrano.io"},
    ... }]})
    >>> m = marketplaces.get("maestrano-uat")
    >>> m.api.base, "s3cret" in repr(m)
    ('/api/v1/', False)
    >>> marketplaces.by_credentials("app-1", "s3cret").key
    'maestrano-uat'
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import sys
import threading
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import httpx

from connected_objects.plugin import ConfigurationError
from connected_objects.plugin import UnknownMarketplace
from connected_objects.plugin import redact
from connected_objects.plugin import register_basic
from connected_objects.plugin import variable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found]

__all__ = [
    "LEGACY_MARKETPLACES_VARIABLE",
    "MARKETPLACES_VARIABLE",
    "ApiSettings",
    "ConnecSettings",
    "DevPlatform",
    "Marketplace",
    "Marketplaces",
    "SsoSettings",
    "WebhookSettings",
]

#: The variable holding the marketplaces as JSON, for the provider's zero-argument load.
MARKETPLACES_VARIABLE = variable("maestrano", "marketplaces")
#: Its older name, still read when the new one is not set.
LEGACY_MARKETPLACES_VARIABLE = "MNO_MARKETPLACES"


def _text(section: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = section.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"marketplace configuration: {where}.{key} must be a non-empty string")
    return value


@dataclass(frozen=True)
class ApiSettings:
    """The account API: ``api.id`` / ``api.key`` are the app's credentials at this marketplace."""

    id: str
    key: str = field(repr=False)
    host: str
    base: str = "/api/v1/"

    @property
    def url(self) -> str:
        return self.host.rstrip("/") + "/" + self.base.strip("/") + "/"


@dataclass(frozen=True)
class SsoSettings:
    """SAML single sign-on with the marketplace's identity provider."""

    idp: str | None = None
    idm: str | None = None
    init_path: str | None = None
    consume_path: str | None = None
    x509_fingerprint: str | None = None
    x509_certificate: str | None = field(default=None, repr=False)
    creation_mode: str = "real"
    #: Our SAML service-provider entity id at this marketplace (the ``Audience`` its IdP must
    #: name). None: ``{app.host}{prefix}/{marketplace}/metadata``, distinct per marketplace.
    entity_id: str | None = None
    #: Accept unsolicited (IdP-initiated) responses, which no browser binding can protect
    #: from login CSRF. Off unless configured.
    idp_initiated: bool = False


@dataclass(frozen=True)
class ConnecSettings:
    """The Connec! data-sharing API of the marketplace."""

    host: str | None = None
    base_path: str = "/api/v2"
    timeout: float = 180.0


@dataclass(frozen=True)
class WebhookSettings:
    """Where the marketplace calls us (paths relative to our app host)."""

    group_path: str | None = None
    group_user_path: str | None = None
    notification_path: str | None = None
    external_ids: bool = True


@dataclass(frozen=True)
class Marketplace:
    """One marketplace's whole configuration; immutable, passed where it is used."""

    key: str
    environment: str
    app_host: str
    api: ApiSettings
    sso: SsoSettings = SsoSettings()
    connec: ConnecSettings = ConnecSettings()
    webhooks: WebhookSettings = WebhookSettings()

    def __post_init__(self) -> None:
        # the API key (and the Basic credentials made of it) are never quoted in an error or a log
        register_basic(self.api.id, self.api.key, owner=self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Marketplace:
        """Build from the developer platform's shape (``webhooks``; the Ruby SDK's ``webhook`` is accepted too)."""
        if not isinstance(data, Mapping):
            raise ConfigurationError("marketplace configuration: each marketplace must be an object")
        key = _text(data, "marketplace", "")
        where = f"marketplaces[{key}]"
        app = data.get("app") or {}
        api = data.get("api") or {}
        sso = data.get("sso") or {}
        connec = data.get("connec") or {}
        hooks = data.get("webhooks") or data.get("webhook") or {}
        for name, section in (("app", app), ("api", api), ("sso", sso), ("connec", connec), ("webhooks", hooks)):
            if not isinstance(section, Mapping):
                raise ConfigurationError(f"marketplace configuration: {where}.{name} must be an object")
        account = hooks.get("account") or {}
        notifications = hooks.get("connec") or {}
        mode = sso.get("creation_mode", "real")
        if mode not in ("real", "virtual"):
            raise ConfigurationError(f"marketplace configuration: {where}.sso.creation_mode must be real or virtual")
        idp_initiated = sso.get("idp_initiated", False)
        if not isinstance(idp_initiated, bool):
            raise ConfigurationError(f"marketplace configuration: {where}.sso.idp_initiated must be true or false")
        entity_id = sso.get("entity_id")
        if entity_id is not None and (not isinstance(entity_id, str) or not entity_id):
            raise ConfigurationError(f"marketplace configuration: {where}.sso.entity_id must be a non-empty string")
        try:
            timeout = float(connec.get("timeout", 180))
        except (TypeError, ValueError):
            raise ConfigurationError(f"marketplace configuration: {where}.connec.timeout must be a number") from None
        return cls(
            key=key,
            environment=str(data.get("environment") or key),
            app_host=_text(app, "host", f"{where}.app"),
            api=ApiSettings(
                id=_text(api, "id", f"{where}.api"),
                key=_text(api, "key", f"{where}.api"),
                host=_text(api, "host", f"{where}.api"),
                base=str(api.get("base") or "/api/v1/"),
            ),
            sso=SsoSettings(
                idp=sso.get("idp"),
                idm=sso.get("idm"),
                init_path=sso.get("init_path"),
                consume_path=sso.get("consume_path"),
                x509_fingerprint=sso.get("x509_fingerprint"),
                x509_certificate=sso.get("x509_certificate"),
                creation_mode=mode,
                entity_id=entity_id,
                idp_initiated=idp_initiated,
            ),
            connec=ConnecSettings(
                host=connec.get("host"), base_path=str(connec.get("base_path") or "/api/v2"), timeout=timeout
            ),
            webhooks=WebhookSettings(
                group_path=account.get("group_path"),
                group_user_path=account.get("group_user_path"),
                notification_path=notifications.get("notification_path"),
                external_ids=bool(notifications.get("external_ids", True)),
            ),
        )

    def authenticate(self, authorization: str | None) -> bool:
        """Whether an ``Authorization: Basic`` header carries this marketplace's ``api.id:api.key`` (constant time)."""
        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            given = base64.b64decode(authorization[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, f"{self.api.id}:{self.api.key}".encode())

    def to_metadata(self) -> dict[str, Any]:
        """Our configuration manifest for this marketplace: an allow-list, never a secret."""
        return {
            "marketplace": self.key,
            "environment": self.environment,
            "app": {"host": self.app_host},
            "api": {"id": self.api.id, "host": self.api.host, "base": self.api.base, "lang": "python"},
            "sso": {
                "idm": self.sso.idm,
                "init_path": self.sso.init_path,
                "consume_path": self.sso.consume_path,
                "creation_mode": self.sso.creation_mode,
                "entity_id": self.sso.entity_id,
                "idp_initiated": self.sso.idp_initiated,
            },
            "connec": {"host": self.connec.host, "base_path": self.connec.base_path},
            "webhooks": {
                "account": {"group_path": self.webhooks.group_path, "group_user_path": self.webhooks.group_user_path},
                "connec": {
                    "external_ids": self.webhooks.external_ids,
                    "notification_path": self.webhooks.notification_path,
                },
            },
        }

    def secrets(self) -> tuple[str, ...]:
        """The values that must never be shown (for tests and log scrubbing)."""
        return tuple(s for s in (self.api.key, f"{self.api.id}:{self.api.key}") if s)


class Marketplaces:
    """An immutable set of marketplaces, by key."""

    def __init__(self, marketplaces: Iterable[Marketplace] = ()) -> None:
        found: dict[str, Marketplace] = {}
        for m in marketplaces:
            if m.key in found:
                raise ConfigurationError(f"marketplace {m.key!r} is configured twice")
            found[m.key] = m
        entity_ids = [m.sso.entity_id for m in found.values() if m.sso.entity_id]
        if len(entity_ids) != len(set(entity_ids)):
            raise ConfigurationError(
                "two marketplaces share one sso.entity_id: give each its own (or leave it out for the default), "
                "or an assertion issued for one would be accepted by the other"
            )
        self._by_key = found

    def __repr__(self) -> str:
        return f"Marketplaces({sorted(self._by_key)!r})"

    def __iter__(self) -> Iterator[Marketplace]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def keys(self) -> list[str]:
        return sorted(self._by_key)

    def get(self, key: str) -> Marketplace:
        """The marketplace called ``key``; :class:`UnknownMarketplace` if none is."""
        found = self._by_key.get(key)
        if found is None:
            known = ", ".join(sorted(self._by_key)) or "none"
            raise UnknownMarketplace(f"no marketplace {key!r} is configured (configured: {known})")
        return found

    def by_credentials(self, api_id: str, api_key: str) -> Marketplace | None:
        """The marketplace whose API credentials these are (for routes that name no marketplace)."""
        wanted = f"{api_id}:{api_key}".encode()
        match = None
        for m in self._by_key.values():  # compare against all, in constant time each
            if hmac.compare_digest(wanted, f"{m.api.id}:{m.api.key}".encode()):
                match = m
        return match

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Marketplaces:
        """From ``{"marketplaces": [ ... ]}`` (the developer platform's answer, or your own file)."""
        if not isinstance(config, Mapping):
            raise ConfigurationError("marketplace configuration must be an object with a 'marketplaces' list")
        if "error" in config:
            raise ConfigurationError(f"the marketplace configuration reports an error: {str(config['error'])[:200]}")
        items = config.get("marketplaces")
        if not isinstance(items, list):
            raise ConfigurationError("marketplace configuration must have a 'marketplaces' list")
        return cls(Marketplace.from_dict(item) for item in items)

    @classmethod
    def from_toml(cls, path: str | Path) -> Marketplaces:
        """From a TOML file with ``[[marketplaces]]`` tables."""
        with open(path, "rb") as handle:
            return cls.from_config(tomllib.load(handle))

    @staticmethod
    def env_variable() -> str | None:
        """The variable :meth:`from_env` reads by default: ``CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES``,
        else the older ``MNO_MARKETPLACES``, whichever is set (not empty); None when neither is."""
        for name in (MARKETPLACES_VARIABLE, LEGACY_MARKETPLACES_VARIABLE):
            if os.environ.get(name):
                return name
        return None

    @classmethod
    def from_env(cls, variable: str | None = None) -> Marketplaces:
        """From a JSON document in an environment variable (default: :meth:`env_variable`)."""
        variable = variable or cls.env_variable() or MARKETPLACES_VARIABLE
        raw = os.environ.get(variable)
        if not raw:
            raise ConfigurationError(f"set {variable} to the marketplaces JSON, or configure them another way")
        try:
            return cls.from_config(json.loads(raw))
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{variable} is not valid JSON: {exc.msg}") from None


class DevPlatform:
    """Marketplaces from the Maestrano developer platform, cached with a last-good fallback.

    ``GET {host}{api_path}marketplaces`` with HTTP Basic ``env_key:env_secret``.
    :meth:`reload` swaps in the new set atomically; when the platform is down or
    answers something malformed, the previous set stays and :attr:`last_error`
    says why.
    """

    def __init__(
        self,
        host: str,
        env_key: str,
        env_secret: str,
        *,
        api_path: str = "/api/config/v1/",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = host.rstrip("/") + "/" + api_path.strip("/") + "/marketplaces"
        self._auth = (env_key, env_secret)
        register_basic(env_key, env_secret, owner=self)
        self._timeout = timeout
        self._transport = transport
        self._current: Marketplaces | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"DevPlatform(url={self.url!r})"

    @property
    def marketplaces(self) -> Marketplaces:
        """The current set; loads it on first use (raising if there is no good copy yet)."""
        if self._current is None and not self.reload():
            raise ConfigurationError(f"no marketplace configuration yet: {self.last_error}")
        assert self._current is not None
        return self._current

    def reload(self) -> bool:
        """Fetch and swap in a new set; False (old set kept) if the platform failed or answered nonsense."""
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport) as http:
                response = http.get(self.url, auth=self._auth)
            if response.status_code != 200:
                raise ConfigurationError(f"the developer platform answered HTTP {response.status_code}")
            try:
                payload = response.json()
            except ValueError:
                raise ConfigurationError("the developer platform answered with something that is not JSON") from None
            fresh = Marketplaces.from_config(payload)
        except (httpx.HTTPError, ConfigurationError) as exc:
            self.last_error = redact(f"{type(exc).__name__}: {exc}")
            return False
        with self._lock:
            self._current = fresh
            self.last_error = None
        return True
