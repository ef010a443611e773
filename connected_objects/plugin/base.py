"""What every HTTP provider sets up alike: marketplace, route prefix, limits, timeout, catalog.

A provider's constructor takes the same few arguments as every other provider's
(``docs/writing-a-provider.md``, "Configuration conventions"); :class:`ProviderBase`
holds them, with ``limits(scope)`` and a repr that shows no secret, so the
provider's own code is what is its own: the base URL, the client, the webhooks.

Example::

    >>> from connected_objects.plugin import EntityCatalog, EntitySpec, Limits, ProviderBase, Scope
    >>> class Notes(ProviderBase):
    ...     name = "notes"
    ...     entity_catalog = EntityCatalog([EntitySpec("notes", path="notes", id_field="id")])
    ...     entities = entity_catalog.names
    ...     default_limits = Limits(concurrency=4, per_minute=600)
    ...     def __init__(self, *, prefix="/notes", limits=None):
    ...         self.configure(marketplace=None, prefix=prefix, limits=limits, timeout=None, catalog=None)
    ...         self.base_url = "https://notes.example"
    >>> notes = Notes(prefix="hooks/")
    >>> notes
    Notes(marketplace='production', prefix='/hooks', base_url='https://notes.example')
    >>> notes.limits(Scope("notes", "production", "acme")).per_minute
    600
"""

from __future__ import annotations

from ..scope import Scope
from ..util.settings import setting
from .entities import EntityCatalog
from .provider import API_VERSION
from .provider import Limits

__all__ = ["ProviderBase", "route_prefix"]


def route_prefix(prefix: str) -> str:
    """A route prefix as routes are matched: one leading slash, none trailing; ``""`` for the root.

    >>> route_prefix("quickbooks/"), route_prefix("/"), route_prefix("/mno-enterprise")
    ('/quickbooks', '', '/mno-enterprise')
    """
    return "/" + prefix.strip("/") if prefix.strip("/") else ""


class ProviderBase:
    """The shared configuration of a provider; a subclass sets ``name``, ``entity_catalog``,
    ``entities`` and ``default_limits``, and calls :meth:`configure` from its constructor."""

    name: str
    api_version: int = API_VERSION
    entity_catalog: EntityCatalog
    entities: frozenset[str]
    #: The provider's published per-account limits (``limits=`` replaces them).
    default_limits: Limits
    marketplace: str
    base_url: str
    prefix: str
    timeout: float | None

    def configure(
        self,
        *,
        marketplace: str | None,
        prefix: str,
        limits: Limits | None,
        timeout: float | None,
        catalog: EntityCatalog | None,
    ) -> None:
        """Keep the shared arguments: ``marketplace`` (else ``CONNECTED_OBJECTS_<NAME>_MARKETPLACE``,
        else ``production``), the route ``prefix``, ``limits`` (else :attr:`default_limits`), the
        request ``timeout`` (None: the hub's) and a ``catalog`` replacing the declared entities."""
        if catalog is not None:
            self.entity_catalog, self.entities = catalog, catalog.names
        self.marketplace = setting(marketplace, self.name, "marketplace", "production")
        self.prefix = route_prefix(prefix)
        self._limits = limits or self.default_limits
        self.timeout = timeout

    def __repr__(self) -> str:  # never a secret
        return (
            f"{type(self).__name__}(marketplace={self.marketplace!r}, prefix={self.prefix!r}, "
            f"base_url={self.base_url!r})"
        )

    def limits(self, scope: Scope) -> Limits:
        """The provider's published per-account limits, or the ``limits=`` given."""
        return self._limits
