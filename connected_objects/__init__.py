"""connected-objects: keep SQLAlchemy rows connected to remote business systems.

The public API, re-exported from the modules that define it. Start with
:mod:`connected_objects.identity` (the identity map), :mod:`connected_objects.schema`
(migrations) and :mod:`connected_objects.registry` (provider plugins).

Example::

    >>> import connected_objects
    >>> connected_objects.Scope("xero", "production", "tenant-1").provider
    'xero'
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from . import capture
from . import connections
from . import identity
from . import inbox
from . import journal
from . import oauth
from . import outbox
from . import registry
from . import schema
from .connected import connected
from .context import SyncContext
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
from .identity import ConnectedObject
from .mapping import FieldMapping
from .mapping import Reference
from .models import metadata
from .provider import API_VERSION
from .provider import Limits
from .provider import Page
from .provider import Provider
from .provider import RemoteClient
from .provider import RemoteRecord
from .pull import pull
from .retry import RetryPolicy
from .scope import Scope
from .secrets import Vault
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
    "schema",
]
