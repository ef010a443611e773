"""The xero provider for connected-objects: Xero's Accounting API (Contacts, Invoices).

Installed as the distribution ``connected-objects-xero``, it registers itself
under the entry-point group ``connected_objects.providers`` exactly as a third
party's plugin would. :mod:`connected_objects_xero.client` talks to the API,
:mod:`connected_objects_xero.provider` adds limits and the webhook route, and
:mod:`connected_objects_xero.testing` is a fake Xero for tests.

Example::

    >>> from connected_objects.plugin import registry
    >>> registry.get("xero").name
    'xero'
"""

from __future__ import annotations

from .client import XeroClient
from .provider import XeroProvider

__all__ = ["XeroClient", "XeroProvider"]
