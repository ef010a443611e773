"""The maestrano provider for connected-objects.

Maestrano marketplaces: SSO, billing, account and Connec! webhooks, Connec! data sharing,
for any number of marketplaces at once. Installed as the distribution
``connected-objects-maestrano``, it registers itself under the entry-point group
``connected_objects.providers`` exactly as a third party's plugin would.

Example::

    >>> from connected_objects.plugin import registry
    >>> registry.get("maestrano").name
    'maestrano'
"""

from __future__ import annotations

from .marketplaces import DevPlatform
from .marketplaces import Marketplace
from .marketplaces import Marketplaces
from .provider import MaestranoProvider

__all__ = ["DevPlatform", "MaestranoProvider", "Marketplace", "Marketplaces"]
