"""Provider tests get the same database fixtures as the core suite."""

from __future__ import annotations

pytest_plugins = ["connected_objects.testing.databases"]
