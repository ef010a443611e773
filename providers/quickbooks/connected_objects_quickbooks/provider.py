"""The ``quickbooks`` provider object that the registry loads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from connected_objects import API_VERSION
from connected_objects import Limits
from connected_objects import RemoteClient
from connected_objects import Scope

__all__ = ["QuickBooksProvider"]


class QuickBooksProvider:
    """QuickBooks Online."""

    name = "quickbooks"
    api_version = API_VERSION
    entities = frozenset({"Customer", "Item", "Invoice"})

    def limits(self, scope: Scope) -> Limits:
        return Limits(concurrency=4)

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> RemoteClient:
        raise NotImplementedError(f"the {self.name} API client is not built yet")
