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

from . import identity
from . import registry
from . import schema
from .exceptions import CaptureError
from .exceptions import ConfigurationError
from .exceptions import ConflictError
from .exceptions import ConnectedObjectsError
from .exceptions import DuplicateProvider
from .exceptions import IdentityConflict
from .exceptions import PermanentError
from .exceptions import ProviderError
from .exceptions import ProviderLoadError
from .exceptions import ProviderNotFound
from .exceptions import ProviderValidationError
from .exceptions import RemoteError
from .exceptions import RetryableError
from .exceptions import SchemaOutOfDate
from .exceptions import UnknownMarketplace
from .identity import ConnectedObject
from .models import metadata
from .provider import API_VERSION
from .provider import Limits
from .provider import Page
from .provider import Provider
from .provider import RemoteClient
from .provider import RemoteRecord
from .scope import Scope

try:
    __version__ = _version("connected-objects")
except _PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"

__all__ = [
    "API_VERSION",
    "CaptureError",
    "ConfigurationError",
    "ConflictError",
    "ConnectedObject",
    "ConnectedObjectsError",
    "DuplicateProvider",
    "IdentityConflict",
    "Limits",
    "Page",
    "PermanentError",
    "Provider",
    "ProviderError",
    "ProviderLoadError",
    "ProviderNotFound",
    "ProviderValidationError",
    "RemoteClient",
    "RemoteError",
    "RemoteRecord",
    "RetryableError",
    "SchemaOutOfDate",
    "Scope",
    "UnknownMarketplace",
    "__version__",
    "identity",
    "metadata",
    "registry",
    "schema",
]
