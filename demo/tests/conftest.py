"""The demo's tests start and end with no in-process provider registrations, as the core suite's do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connected_objects.plugin import registry


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    registry.reset()
    registry.set_autoload(None)
    yield
    registry.reset()
    registry.set_autoload(None)
