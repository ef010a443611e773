"""The ``connected-objects demo`` command, in its own distribution so the core imports no provider.

``uv run connected-objects demo`` in a checkout installs and runs it; elsewhere
``pip install connected-objects-demo``. It adds ``demo`` to the core's
``connected-objects`` command through the entry-point group
``connected_objects.commands``:

>>> from importlib.metadata import entry_points
>>> [ep.value for ep in entry_points(group="connected_objects.commands", name="demo")]
['connected_objects_demo.command:demo']
"""

from __future__ import annotations

from .story import DemoFailure
from .story import Summary
from .story import run

__all__ = ["DemoFailure", "Summary", "run"]
