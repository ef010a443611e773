from __future__ import annotations

from collections.abc import Iterator

import pytest

from connected_objects.plugin import registry

pytest_plugins = ["connected_objects.testing.databases"]


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    """Every test starts and ends with no in-process provider registrations."""
    registry.reset()
    registry.set_autoload(None)
    yield
    registry.reset()
    registry.set_autoload(None)


# -- outbound/inbound app fixtures ---------------------------------------------------------

import httpx  # noqa: E402
from sqlalchemy import Engine  # noqa: E402

from connected_objects import Scope  # noqa: E402
from connected_objects import connections  # noqa: E402
from connected_objects.hub import Hub  # noqa: E402
from connected_objects.testing.invoicing import Base  # noqa: E402
from connected_objects.testing.invoicing import Organization  # noqa: E402
from connected_objects.testing.invoicing import make_hub  # noqa: E402
from connected_objects.testing.sandbox import Sandbox  # noqa: E402

ACME = Scope("sandbox", "test", "acme")
GLOBEX = Scope("sandbox", "test", "globex")


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox()


@pytest.fixture
def hub(engine: Engine, sandbox: Sandbox) -> Iterator[Hub]:
    """The invoicing app on ``engine``, pushing to the in-process ``sandbox``; capture installed."""
    Base.metadata.create_all(engine)
    transport = httpx.ASGITransport(sandbox.app, raise_app_exceptions=False)
    app = make_hub(engine, "http://sandbox", transport=transport)
    yield app
    app.uninstall()


def add_organization(hub: Hub, org_id: int, *scopes: Scope) -> None:
    """An organization connected to ``scopes``."""
    with hub.session_factory.begin() as s:
        s.add(Organization(id=org_id, name=f"org {org_id}"))
        s.flush()
        for scope in scopes:
            connections.connect(s, "organization", org_id, scope)


@pytest.fixture
def org() -> object:
    return add_organization
