"""The provider conformance suite, run against the generic sandbox provider."""

from __future__ import annotations

import httpx
import pytest

from connected_objects import Scope
from connected_objects.testing.conformance import ProviderConformance
from connected_objects.testing.conformance import Setup
from connected_objects.testing.invoicing import Base
from connected_objects.testing.invoicing import make_hub
from connected_objects.testing.sandbox import Sandbox
from connected_objects.testing.sandbox import SandboxProvider
from connected_objects.testing.sandbox import webhook_delivery


class TestSandboxProvider(ProviderConformance):
    entity = "customers"

    @pytest.fixture
    def setup(self, sqlite_engine):
        sandbox = Sandbox()
        Base.metadata.create_all(sqlite_engine)
        hub = make_hub(sqlite_engine, "http://sandbox")
        self.sandbox = sandbox
        yield Setup(
            provider=SandboxProvider("http://sandbox", page_size=10),
            scope=Scope("sandbox", "test", "acme"),
            credentials={"token": "t"},
            transport=httpx.ASGITransport(sandbox.app),
            webhooks=hub.webhooks(),
        )
        hub.uninstall()

    def sample(self, n):
        return {"name": f"customer {n}", "revision": 1}

    def changed(self, payload):
        return {**payload, "name": payload["name"] + " (edited)"}

    def seed(self, setup, count):
        self.sandbox.seed("acme", "customers", [self.sample(i) for i in range(count)])

    def delivery(self, setup, foreign_id, valid):
        body, headers = webhook_delivery([{"account": "acme", "entity": "customers", "id": foreign_id}])
        if not valid:
            headers["x-sandbox-signature"] = "forged"
        return "/sandbox/test/webhooks", body, headers
