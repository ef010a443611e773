"""Chaos for the sync engines: the faults production sends, all at once, and a report of what broke.

The parts, one per module, each usable alone:

- :mod:`.proxy`: :class:`DatabaseProxy`, a TCP proxy in front of the database
  that cuts every connection at once, cuts at random, stalls, and refuses
  everything for a while (an outage);
- :mod:`.faults`: :class:`ProviderFaults`, ASGI middleware for any fake
  provider: 5xx, 429 with ``Retry-After``, stalls past the client's timeout and
  answers lost after the write (single writes and batch calls), counted, and a
  log of the writes the fake received;
- :mod:`.workers`: :class:`WorkerFleet`, worker processes SIGKILLed and
  restarted, and the final ``--until-idle`` drain;
- :mod:`.report`: :class:`ChaosReport`, what a run did and what its end-state
  check found, per provider.

The repository's own chaos run (QuickBooks Online and Xero fakes, customers
and invoices with updates, deletes and webhooks) is ``tests/test_chaos.py``
at a CI size and ``bench/chaos.py`` at full size.

Example::

    >>> from connected_objects.testing.chaos import ChaosReport
    >>> ChaosReport(drain_finished=True, drain_exit_codes=[0]).problems()
    []
"""

from __future__ import annotations

from .faults import ProviderFaults
from .proxy import DatabaseProxy
from .report import ChaosReport
from .report import ProviderFindings
from .workers import WorkerFleet

__all__ = ["ChaosReport", "DatabaseProxy", "ProviderFaults", "ProviderFindings", "WorkerFleet"]
