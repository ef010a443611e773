"""Everything a provider plugin needs, in one import.

A provider is written against the contract in :mod:`connected_objects.plugin.provider`
and a handful of helpers spread over the core. This module gathers them, so a
plugin needs one line of imports and no knowledge of the core's layout:

- the contract: :class:`Provider`, :class:`RemoteClient` and the optional
  extras (:class:`BatchClient`, :class:`ReferenceFolder`,
  :class:`EventDecoder`, :class:`WebhookProvider`, :class:`TokenRefresher`,
  :class:`CredentialsDeclarer`),
  the values they exchange (:class:`RemoteRecord`, :class:`Page`,
  :class:`Limits`, :class:`BatchOperation`, :class:`Scope`) and the
  :class:`ProviderContext` its routes get;
- the errors that tell the engines what to do (:class:`RetryableError`,
  :class:`ConflictError`, :class:`PermanentError`);
- HTTP: :func:`raise_for_response`, :func:`transport_error`, :func:`json_body`,
  :func:`retry_after`, and :func:`dumps`/:func:`loads` for JSON with exact
  decimals;
- webhooks: :class:`Route`, :class:`Request`, :class:`Response`,
  :class:`HTTPError`, :func:`hmac_matches`, :func:`basic_auth_matches`,
  :func:`parse_json_object`, :func:`identifier`, and the inbox
  (:class:`InboundEvent`, :func:`store_events`, :func:`digest_key`);
- OAuth 2.0: :func:`refresh_grant`; secrets: :func:`register_secrets`,
  :func:`register_basic` (never quoted in an error or a log);
- :func:`idempotency_key`, for a batch call's own key.

Example::

    >>> from connected_objects.plugin import API_VERSION, Limits, Provider, extras_of
    >>> class Notes:
    ...     name = "notes"
    ...     api_version = API_VERSION
    ...     entities = frozenset({"notes"})
    ...     def limits(self, scope):
    ...         return Limits(concurrency=4, per_minute=600)
    ...     def client(self, scope, http, credentials):
    ...         raise NotImplementedError
    ...     def fold_reference(self, entity, name, foreign_id):
    ...         return {"id": foreign_id}
    >>> isinstance(Notes(), Provider), extras_of(Notes()).names
    (True, ('fold_reference',))
"""

from __future__ import annotations

from ..exceptions import ConfigurationError
from ..exceptions import ConflictError
from ..exceptions import PermanentError
from ..exceptions import RemoteError
from ..exceptions import RetryableError
from ..exceptions import UnknownMarketplace
from ..plugin.oauth2 import refresh_grant
from ..queue.events import InboundEvent
from ..queue.events import digest_key
from ..queue.inbox import store as store_events
from ..scope import Scope
from ..util.hashing import idempotency_key
from ..util.http import json_body
from ..util.http import raise_for_response
from ..util.http import retry_after
from ..util.http import transport_error
from ..util.redaction import register_basic
from ..util.redaction import register_secrets
from ..util.values import dumps
from ..util.values import loads
from ..web.core import HTTPError
from ..web.core import Request
from ..web.core import Response
from ..web.core import Route
from ..web.core import basic_auth_matches
from ..web.core import hmac_matches
from ..web.core import identifier
from ..web.core import parse_json_object
from .provider import API_VERSION
from .provider import BatchClient
from .provider import BatchOperation
from .provider import CredentialsDeclarer
from .provider import EventDecoder
from .provider import Extras
from .provider import Limits
from .provider import Page
from .provider import Provider
from .provider import ProviderContext
from .provider import ReferenceFolder
from .provider import RemoteClient
from .provider import RemoteRecord
from .provider import TokenRefresher
from .provider import WebhookProvider
from .provider import extras_of

__all__ = [
    "API_VERSION",
    "BatchClient",
    "BatchOperation",
    "ConfigurationError",
    "ConflictError",
    "CredentialsDeclarer",
    "EventDecoder",
    "Extras",
    "HTTPError",
    "InboundEvent",
    "Limits",
    "Page",
    "PermanentError",
    "Provider",
    "ProviderContext",
    "ReferenceFolder",
    "RemoteClient",
    "RemoteError",
    "RemoteRecord",
    "Request",
    "Response",
    "RetryableError",
    "Route",
    "Scope",
    "TokenRefresher",
    "UnknownMarketplace",
    "WebhookProvider",
    "basic_auth_matches",
    "digest_key",
    "dumps",
    "extras_of",
    "hmac_matches",
    "idempotency_key",
    "identifier",
    "json_body",
    "loads",
    "parse_json_object",
    "raise_for_response",
    "refresh_grant",
    "register_basic",
    "register_secrets",
    "retry_after",
    "store_events",
    "transport_error",
]
