"""The xero provider for connected-objects: Xero.

Installed as the distribution ``connected-objects-xero``, it registers itself
under the entry-point group ``connected_objects.providers`` exactly as a third
party's plugin would.

Example::

    >>> from connected_objects import registry
    >>> registry.get("xero").name
    'xero'
"""

from __future__ import annotations

from .provider import XeroProvider

__all__ = ["XeroProvider"]
