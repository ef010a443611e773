"""connected-objects: keep SQLAlchemy rows connected to remote business systems.

The public API, re-exported from the modules that define it. Start with
:mod:`connected_objects.store.identity` (the identity map), :mod:`connected_objects.store.schema`
(migrations) and :mod:`connected_objects.plugin.registry` (provider plugins).

Example::

    >>> import connected_objects
    >>> connected_objects.Scope("xero", "production", "tenant-1").provider
    'xero'
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from . import connections
from . import oauth
from .context import SyncContext
from .declare import connected
from .declare.mapping import FieldMapping
from .declare.mapping import Reference
from .declare.settings import Setting
from .exceptions import AuthorizationLost
from .exceptions import CaptureError
from .exceptions import ConfigurationError
from .exceptions import ConflictError
from .exceptions import ConnectedObjectsError
from .exceptions import DrainTimeout
from .exceptions import DuplicateProvider
from .exceptions import IdentityConflict
from .exceptions import MissingReference
from .exceptions import NotApplied
from .exceptions import PermanentError
from .exceptions import ProviderError
from .exceptions import ProviderLoadError
from .exceptions import ProviderNotFound
from .exceptions import ProviderValidationError
from .exceptions import RemoteError
from .exceptions import RetryableError
from .exceptions import SchemaOutOfDate
from .exceptions import UnknownMarketplace
from .hub import Hub
from .plugin import registry
from .plugin.provider import API_VERSION
from .plugin.provider import Limits
from .plugin.provider import Page
from .plugin.provider import Provider
from .plugin.provider import RemoteClient
from .plugin.provider import RemoteRecord
from .push import capture
from .push.actions import request_action
from .queue import inbox
from .queue import journal
from .queue import outbox
from .receive.pull import pull
from .scope import Scope
from .store import identity
from .store import schema
from .store.history import History
from .store.identity import ConnectedObject
from .store.models import metadata
from .util.retry import RetryPolicy
from .util.secrets import Vault
from .worker import BackgroundWorker
from .worker import Worker

try:
    __version__ = _version("connected-objects")
except _PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"

__all__ = [
    "API_VERSION",
    "AuthorizationLost",
    "BackgroundWorker",
    "CaptureError",
    "ConfigurationError",
    "ConflictError",
    "ConnectedObject",
    "ConnectedObjectsError",
    "DrainTimeout",
    "DuplicateProvider",
    "FieldMapping",
    "History",
    "Hub",
    "IdentityConflict",
    "Limits",
    "MissingReference",
    "NotApplied",
    "Page",
    "PermanentError",
    "Provider",
    "ProviderError",
    "ProviderLoadError",
    "ProviderNotFound",
    "ProviderValidationError",
    "Reference",
    "RemoteClient",
    "RemoteError",
    "RemoteRecord",
    "RetryPolicy",
    "RetryableError",
    "SchemaOutOfDate",
    "Scope",
    "Setting",
    "SyncContext",
    "UnknownMarketplace",
    "Vault",
    "Worker",
    "__version__",
    "capture",
    "connected",
    "connections",
    "identity",
    "inbox",
    "journal",
    "metadata",
    "oauth",
    "outbox",
    "pull",
    "registry",
    "request_action",
    "schema",
]
