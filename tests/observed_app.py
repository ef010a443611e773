"""A worker app for the issue-13 tests: the invoicing models pushed to a provider with a bug.

Customers sync to ``sandbox`` (a :class:`~connected_objects.testing.MemoryProvider` whose every
write raises ``KeyError('DisplayName')``, as a provider with a bug would) and to ``mirror`` (one
that works). Worker subprocesses load it with ``--app observed_app:hub_from_env`` (``tests/`` on
``PYTHONPATH``), configured by ``CO_APP_DATABASE_URL``; with ``CO_APP_SENTRY_FILE`` set, the
process sends its dead changes to Sentry (:mod:`connected_objects.ops.sentry`) through a
real ``sentry_sdk.init(transport=...)`` that writes each event to that file as a JSON line.
"""

from __future__ import annotations

import json
import os
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import RetryPolicy
from connected_objects.testing import MemoryProvider
from connected_objects.testing.invoicing import Customer

__all__ = ["hub_from_env"]


def _sentry_to_file(path: str) -> None:
    import sentry_sdk
    from sentry_sdk.transport import Transport

    class FileTransport(Transport):
        """Sentry's transport contract, writing events to a file instead of the network."""

        def capture_envelope(self, envelope: Any) -> None:
            with open(path, "a", encoding="utf-8") as out:
                for item in envelope.items:
                    event = item.get_event()
                    if event is not None:
                        out.write(json.dumps(event, default=str) + "\n")

    from connected_objects.ops.sentry import send_failures_to_sentry

    sentry_sdk.init(dsn="https://public@sentry.example/1", transport=FileTransport())
    send_failures_to_sentry()


def hub_from_env() -> Hub:
    """The hub for a worker process (see the module docs)."""
    engine = create_engine(os.environ["CO_APP_DATABASE_URL"])
    buggy = MemoryProvider("sandbox", entities=("customers", "invoices"), raise_on_write=KeyError("DisplayName"))
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Customer],
        providers=[buggy, MemoryProvider("mirror", entities=("contacts",))],
        retry=RetryPolicy(base=0.01, factor=2.0, cap=0.05, max_attempts=6, max_unexpected=3),
    )
    if os.environ.get("CO_APP_SENTRY_FILE"):
        _sentry_to_file(os.environ["CO_APP_SENTRY_FILE"])
    return hub
