"""The quickbooks provider for connected-objects: QuickBooks Online.

Installed as the distribution ``connected-objects-quickbooks``, it registers itself
under the entry-point group ``connected_objects.providers`` exactly as a third
party's plugin would.

Example::

    >>> from connected_objects.plugin import registry
    >>> registry.get("quickbooks").name
    'quickbooks'
"""

from __future__ import annotations

from .provider import QuickBooksProvider

__all__ = ["QuickBooksProvider"]
