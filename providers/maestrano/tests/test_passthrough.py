"""``hub.remote(scope)`` against the Connec! sandbox over loopback HTTP: a collection the app does not declare,
read and written under the group's root with the scope's own marketplace credentials."""

from __future__ import annotations

import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.testing import FakeConnec
from connected_objects_maestrano.testing import marketplace_config
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Scope
from connected_objects import connections
from connected_objects.exceptions import PermanentError
from connected_objects.testing.sandbox import serve

A, B = "maestrano", "tenant-b"


def test_an_undeclared_collection_through_the_groups_root_with_its_marketplaces_credentials(engine: Engine):
    connec = FakeConnec({})
    with serve(connec.app) as url:
        configs = [marketplace_config(key) for key in (A, B)]
        for config in configs:  # Connec! of both marketplaces answered by the one sandbox, on loopback
            config["connec"]["host"] = url
        marketplaces = Marketplaces.from_config({"marketplaces": configs})
        connec.credentials = {m.api.id: m.api.key for m in marketplaces}
        hub = Hub(sessionmaker(engine), models=[], providers=[MaestranoProvider(marketplaces)])
        scope = Scope("maestrano", B, "cld-b")
        with hub.session_factory.begin() as s:
            connections.connect(s, "organization", 1, scope)
        assert "journals" not in hub.provider("maestrano").entities

        with hub.remote(scope) as remote:
            made = remote.post("journals", json={"journals": {"title": "Opening balances"}})
            listed = remote.get("journals").json()
            with pytest.raises(PermanentError, match="HTTP 404") as missing:
                remote.get("journals/no-such-id")
    assert made.status_code == 201
    assert [j["title"] for j in listed["journals"]] == ["Opening balances"]
    assert connec.auth_seen == {"cld-b": {marketplaces.get(B).api.id}}  # B's credentials, not A's
    assert marketplaces.get(B).api.key not in str(missing.value) + repr(missing.value)
