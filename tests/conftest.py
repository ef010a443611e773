from __future__ import annotations

from collections.abc import Iterator

import pytest

from connected_objects import registry

pytest_plugins = ["connected_objects.testing.databases"]


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    """Every test starts and ends with no in-process provider registrations."""
    registry.reset()
    registry.set_autoload(None)
    yield
    registry.reset()
    registry.set_autoload(None)
