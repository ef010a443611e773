"""The maestrano provider for connected-objects.

Maestrano marketplaces: SSO, billing, account and Connec! webhooks, Connec! data sharing.

Installed as the distribution ``connected-objects-maestrano``, it registers itself
under the entry-point group ``connected_objects.providers`` exactly as a third
party's plugin would.

Example::

    >>> from connected_objects import registry
    >>> registry.get("maestrano").name
    'maestrano'
"""

from __future__ import annotations

from .provider import MaestranoProvider

__all__ = ["MaestranoProvider"]
