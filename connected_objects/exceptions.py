"""The one error tree of connected-objects.

Every exception the library raises on purpose derives from
:class:`ConnectedObjectsError`, so ``except ConnectedObjectsError`` catches
them all. Each class's docstring is its default message, and each message
says what to do next::

    ConnectedObjectsError
    ├── ConfigurationError            the application's set-up is wrong
    │   ├── SchemaOutOfDate           run the migrations named in the message
    │   └── UnknownMarketplace        a marketplace key nobody configured
    ├── ProviderError                 anything about a provider plugin
    │   ├── ProviderNotFound          no plugin registered under that name
    │   ├── ProviderLoadError         the plugin's entry point failed to import
    │   ├── ProviderValidationError   the plugin does not meet the contract
    │   └── DuplicateProvider         two plugins claim one name
    ├── IdentityConflict              a link would break the identity map's uniqueness
    ├── CaptureError                  a write on a connected model cannot be captured
    ├── DrainTimeout                  drain() gave up waiting; the message says what is stuck
    └── RemoteError                   a provider's API refused or failed a call
        ├── RetryableError            try again later (timeouts, 5xx, 429)
        ├── ConflictError             stale version: refetch and re-apply
        └── PermanentError            the request itself is wrong; retrying will not help

Example::

    >>> from connected_objects.exceptions import RetryableError, RemoteError
    >>> err = RetryableError("rate limited", retry_after=2.5)
    >>> isinstance(err, RemoteError), err.retry_after
    (True, 2.5)

Secrets never go into messages or ``repr()``: errors carry names and ids only,
and every message (and a remote error's code) passes through
:func:`~connected_objects.util.redaction.redact` when the error is made, so a
provider's error page that echoes our request cannot carry a token out::

    >>> str(RetryableError("HTTP 502: proxy saw Authorization: Bearer at-0123456789"))
    'HTTP 502: proxy saw Authorization: [redacted]'
"""

from __future__ import annotations

from .util.redaction import redact
from .util.suggest import closest

__all__ = [
    "AuthorizationLost",
    "CaptureError",
    "ConfigurationError",
    "ConflictError",
    "ConnectedObjectsError",
    "DrainTimeout",
    "DuplicateProvider",
    "IdentityConflict",
    "MissingReference",
    "NotApplied",
    "PermanentError",
    "ProviderError",
    "ProviderLoadError",
    "ProviderNotFound",
    "ProviderValidationError",
    "RemoteError",
    "RetryableError",
    "SchemaOutOfDate",
    "UnknownMarketplace",
]


class ConnectedObjectsError(Exception):
    """connected-objects failed; the message says why and what to do."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(redact(message) or (self.__doc__ or type(self).__name__).strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigurationError(ConnectedObjectsError):
    """The application is configured wrongly; fix the setting named in the message."""


class SchemaOutOfDate(ConfigurationError):
    """The co_* tables are missing or older than this version of connected-objects."""


class DrainTimeout(ConnectedObjectsError):
    """Draining took longer than its timeout; the message says what is still waiting, and why."""


class UnknownMarketplace(ConfigurationError):
    """No marketplace is configured under that key; add it to the marketplace configuration."""


class ProviderError(ConnectedObjectsError):
    """A provider plugin could not be used."""

    def __init__(self, provider: str, message: str | None = None) -> None:
        self.provider = provider
        super().__init__(message)


class ProviderNotFound(ProviderError, LookupError):
    """No provider is registered under that name."""

    def __init__(self, provider: str, available: tuple[str, ...] = (), *, where: str | None = None) -> None:
        known = ", ".join(available) or "none"
        self.available = available
        self.suggestion = closest(provider, available)
        if self.suggestion is not None:
            message = (
                f"no provider named {provider!r}. Did you mean {self.suggestion!r}? (installed or registered: {known})"
            )
        else:
            message = (
                f"no provider named {provider!r} (entry-point group "
                f"'connected_objects.providers'; installed: {known}). Install its "
                f"distribution, e.g. 'uv add connected-objects-{provider}', or call "
                f"connected_objects.plugin.registry.register({provider!r}, ...)."
            )
        super().__init__(provider, f"{where}: {message}" if where else message)


class ProviderLoadError(ProviderError):
    """A provider's entry point raised while being imported."""


class ProviderValidationError(ProviderError):
    """A provider plugin does not meet the connected-objects plugin contract."""


class DuplicateProvider(ProviderError):
    """Two plugins claim the same provider name."""


class IdentityConflict(ConnectedObjectsError):
    """The link would connect a record or a row that is already connected elsewhere."""


class CaptureError(ConnectedObjectsError):
    """A write on a connected model cannot be captured into the outbox."""


class RemoteError(ConnectedObjectsError):
    """A provider's API refused or failed a call."""

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.status = status
        self.code = redact(code)
        super().__init__(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r}, code={self.code!r})"


class RetryableError(RemoteError):
    """The provider failed transiently (timeout, 5xx, rate limit); the change will be retried."""

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, code=code)


class NotApplied(RetryableError):
    """The provider answered that it did not apply this write (a batch call's answer without it): it can be
    sent again as a new call, with nothing to fear from a duplicate."""


class ConflictError(RemoteError):
    """The remote record changed since we last saw it; refetch it and re-apply the mapping."""


class PermanentError(RemoteError):
    """The provider rejected the request itself; fix the data, then retry the dead change."""


class AuthorizationLost(PermanentError):
    """The provider refused the refresh token; the connection is paused until it is reconnected."""


class MissingReference(ConnectedObjectsError):
    """A record points at a record that is not linked locally yet (the applier parks it, never drops it)."""
