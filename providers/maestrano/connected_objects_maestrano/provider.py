"""The ``maestrano`` provider object that the registry loads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from connected_objects import API_VERSION
from connected_objects import Limits
from connected_objects import RemoteClient
from connected_objects import Scope

__all__ = ["MaestranoProvider"]


class MaestranoProvider:
    """Maestrano marketplaces: SSO, billing, account and Connec! webhooks, Connec! data sharing."""

    name = "maestrano"
    api_version = API_VERSION
    entities = frozenset({"organizations", "people", "items", "invoices", "users", "groups"})

    def limits(self, scope: Scope) -> Limits:
        return Limits(concurrency=4)

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> RemoteClient:
        raise NotImplementedError(f"the {self.name} API client is not built yet")
