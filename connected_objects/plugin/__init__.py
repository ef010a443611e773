"""Everything a provider plugin needs, in one import.

A provider is written against the contract in :mod:`connected_objects.plugin.provider`
and a handful of helpers spread over the core. This module gathers them, so a
plugin needs one line of imports and no knowledge of the core's layout:

- the contract: :class:`Provider`, :class:`RemoteClient` and the optional
  extras (:class:`BatchClient`, :class:`ReferenceFolder`,
  :class:`EventDecoder`, :class:`WebhookProvider`, :class:`TokenRefresher`,
  :class:`CredentialsDeclarer`, :class:`PassthroughProvider` with its :class:`PassthroughTarget`),
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
- OAuth 2.0: :class:`OAuth2` (an authorization server's endpoints, the
  application's client, the scopes) and :class:`OAuth2Provider` (the connect
  flow's and token refresh's methods on it), :func:`bearer_request`, :func:`bearer_json`, :func:`access_token`, and the
  single requests (:func:`code_grant`, :func:`refresh_grant`,
  :func:`revoke_token`); :class:`Authorization`, :class:`GrantedAccount`,
  :class:`TokenAnswer` (what a token endpoint answered, with the tokens' lifetimes);
- a webhook route in one call: :func:`inbox_route` (verify → parse → store in
  the inbox → answer), :func:`signed`, :class:`ThinEvents`, :func:`thin_payload`;
- the shared configuration: :class:`ProviderBase` (marketplace, prefix, limits,
  timeout, catalog), :func:`route_prefix`;
- entities and mappings declared as data: :class:`EntityCatalog`,
  :class:`EntitySpec`, :class:`ReadOnlyEntity`; :class:`ReadyMapping`,
  :class:`Reference`, :class:`Setting` (a field's value from the connection's
  settings), :func:`read_lines`, :func:`stored_lines`, :func:`value_of`;
- a provider's bookkeeping (:mod:`connected_objects.plugin.accounts`): the
  identity map (:func:`link`, :func:`resolve`, …), :func:`lock_connection`,
  :func:`request_import`;
- configuration: :func:`setting`, :func:`variable`, :func:`renamed`; secrets:
  :func:`register_secrets`, :func:`register_basic`, :func:`redact` (never quoted
  in an error or a log);
- :func:`idempotency_key`, for a batch call's own key.

A first-party provider imports nothing else of the core (``tests/test_provider_boundary.py``
checks it), so this module is the whole of what a provider may rely on.

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

from ..declare.mapping import Reference
from ..declare.settings import Setting
from ..exceptions import ConfigurationError
from ..exceptions import ConflictError
from ..exceptions import NotApplied
from ..exceptions import PermanentError
from ..exceptions import RemoteError
from ..exceptions import RetryableError
from ..exceptions import UnknownMarketplace
from ..queue.events import InboundEvent
from ..queue.events import digest_key
from ..queue.inbox import store as store_events
from ..scope import Scope
from ..states import WriteAction
from ..util.hashing import idempotency_key
from ..util.http import json_body
from ..util.http import raise_for_response
from ..util.http import retry_after
from ..util.http import transport_error
from ..util.redaction import redact
from ..util.redaction import register_basic
from ..util.redaction import register_secrets
from ..util.settings import renamed
from ..util.settings import setting
from ..util.settings import variable
from ..util.values import dumps
from ..util.values import loads
from ..web.body import read_json
from ..web.core import HTTPError
from ..web.core import Request
from ..web.core import Response
from ..web.core import Route
from ..web.core import basic_auth_matches
from ..web.core import hmac_matches
from ..web.core import identifier
from ..web.core import parse_json_object
from .accounts import link
from .accounts import local_type_name
from .accounts import lock_connection
from .accounts import request_import
from .accounts import resolve
from .accounts import resolve_local
from .accounts import tombstone_scope
from .accounts import unlink
from .base import ProviderBase
from .base import route_prefix
from .documents import PDF_TYPE
from .documents import fetch_pdf
from .entities import EntityCatalog
from .entities import EntitySpec
from .entities import ReadOnlyEntity
from .oauth2 import CLIENT_CREDENTIALS
from .oauth2 import OAuth2
from .oauth2 import OAuth2Provider
from .oauth2 import access_token
from .oauth2 import bearer_json
from .oauth2 import bearer_request
from .oauth2 import client_credentials_grant
from .oauth2 import code_grant
from .oauth2 import refresh_grant
from .oauth2 import revoke_token
from .provider import API_VERSION
from .provider import ActionClient
from .provider import Authorization
from .provider import BatchClient
from .provider import BatchOperation
from .provider import CredentialsDeclarer
from .provider import EventDecoder
from .provider import Extras
from .provider import GrantedAccount
from .provider import Limits
from .provider import Page
from .provider import Passthrough
from .provider import PassthroughProvider
from .provider import PassthroughTarget
from .provider import Provider
from .provider import ProviderContext
from .provider import ReferenceFolder
from .provider import RemoteClient
from .provider import RemoteRecord
from .provider import TokenAnswer
from .provider import TokenRefresher
from .provider import WebhookProvider
from .provider import extras_of
from .readymade import Lines
from .readymade import Option
from .readymade import ReadyMapping
from .readymade import read_lines
from .readymade import stored_lines
from .readymade import value_of
from .webhooks import ThinEvents
from .webhooks import counted
from .webhooks import inbox_route
from .webhooks import signed
from .webhooks import thin_payload

__all__ = [
    "API_VERSION",
    "CLIENT_CREDENTIALS",
    "PDF_TYPE",
    "ActionClient",
    "Authorization",
    "BatchClient",
    "BatchOperation",
    "ConfigurationError",
    "ConflictError",
    "CredentialsDeclarer",
    "EntityCatalog",
    "EntitySpec",
    "EventDecoder",
    "Extras",
    "GrantedAccount",
    "HTTPError",
    "InboundEvent",
    "Limits",
    "Lines",
    "NotApplied",
    "OAuth2",
    "OAuth2Provider",
    "Option",
    "Page",
    "Passthrough",
    "PassthroughProvider",
    "PassthroughTarget",
    "PermanentError",
    "Provider",
    "ProviderBase",
    "ProviderContext",
    "ReadOnlyEntity",
    "ReadyMapping",
    "Reference",
    "ReferenceFolder",
    "RemoteClient",
    "RemoteError",
    "RemoteRecord",
    "Request",
    "Response",
    "RetryableError",
    "Route",
    "Scope",
    "Setting",
    "ThinEvents",
    "TokenAnswer",
    "TokenRefresher",
    "UnknownMarketplace",
    "WebhookProvider",
    "WriteAction",
    "access_token",
    "basic_auth_matches",
    "bearer_json",
    "bearer_request",
    "client_credentials_grant",
    "code_grant",
    "counted",
    "digest_key",
    "dumps",
    "extras_of",
    "fetch_pdf",
    "hmac_matches",
    "idempotency_key",
    "identifier",
    "inbox_route",
    "json_body",
    "link",
    "loads",
    "local_type_name",
    "lock_connection",
    "parse_json_object",
    "raise_for_response",
    "read_json",
    "read_lines",
    "redact",
    "refresh_grant",
    "register_basic",
    "register_secrets",
    "renamed",
    "request_import",
    "resolve",
    "resolve_local",
    "retry_after",
    "revoke_token",
    "route_prefix",
    "setting",
    "signed",
    "store_events",
    "stored_lines",
    "thin_payload",
    "tombstone_scope",
    "transport_error",
    "unlink",
    "value_of",
    "variable",
]
