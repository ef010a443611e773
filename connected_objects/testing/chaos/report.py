"""What a chaos run did and what it found: :class:`ChaosReport` and one :class:`ProviderFindings` per provider.

A run fills in the faults it injected, the connections it cut, the workers it
killed and how the drain went; the end-state check fills in, per provider,
what is wrong there. :meth:`ChaosReport.problems` lists every failure in one
sentence each (empty: the run passed), and :meth:`ChaosReport.figures` is the
flat dictionary a bench prints as its JSON line.

Example::

    >>> from connected_objects.testing.chaos.report import ChaosReport, ProviderFindings
    >>> report = ChaosReport(drain_finished=True, drain_exit_codes=[0])
    >>> qbo = report.provider("quickbooks")
    >>> qbo.duplicated["Invoice"] = ["INV-7 x2"]
    >>> qbo.writes_received, qbo.writes_needed = 30, 20
    >>> report.problems()
    ['quickbooks: 1 Invoice duplicated (INV-7 x2)']
    >>> report.figures()["write_amplification"]
    1.5
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = ["ChaosReport", "ProviderFindings"]

#: How many examples a problem's sentence quotes.
EXAMPLES = 5


@dataclass
class ProviderFindings:
    """What is wrong at one provider, per entity: each list holds examples (a local key and a detail)."""

    name: str
    #: live local rows with more than one live record there
    duplicated: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    #: live local rows with no live record there
    lost: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    #: live local rows whose record there holds other values
    stale: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    #: deleted local rows whose record there is still live
    undeleted: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    #: live records there that no local row accounts for
    orphans: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    #: acknowledged webhooks whose change never reached the local row, or reached it twice
    webhooks_not_applied: list[str] = field(default_factory=list)
    webhooks_applied_twice: list[str] = field(default_factory=list)
    #: webhooks delivered, and acknowledged (2xx) by our endpoint
    webhooks_delivered: int = 0
    webhooks_acknowledged: int = 0
    #: faults injected into this provider's fake, by kind
    faults: dict[str, int] = field(default_factory=dict)
    #: write items the fake received, that arrived at all, and the fewest that do the job
    writes_received: int = 0
    writes_sent: int = 0
    writes_needed: int = 0

    @property
    def amplification(self) -> float:
        return round(self.writes_received / self.writes_needed, 3) if self.writes_needed else 0.0

    def problems(self) -> list[str]:
        out = []
        for what, found in (
            ("duplicated", self.duplicated),
            ("lost", self.lost),
            ("stale", self.stale),
            ("not deleted", self.undeleted),
            ("orphaned", self.orphans),
        ):
            for entity, examples in sorted(found.items()):
                if examples:
                    shown = ", ".join(examples[:EXAMPLES]) + (", ..." if len(examples) > EXAMPLES else "")
                    out.append(f"{self.name}: {len(examples)} {entity} {what} ({shown})")
        for what, examples in (
            ("acknowledged webhooks not applied", self.webhooks_not_applied),
            ("webhooks applied twice", self.webhooks_applied_twice),
        ):
            if examples:
                shown = ", ".join(examples[:EXAMPLES]) + (", ..." if len(examples) > EXAMPLES else "")
                out.append(f"{self.name}: {len(examples)} {what} ({shown})")
        return out

    def counts(self) -> dict[str, int]:
        def total(found: dict[str, list[str]]) -> int:
            return sum(len(v) for v in found.values())

        return {
            "duplicated": total(self.duplicated),
            "lost": total(self.lost),
            "stale": total(self.stale),
            "undeleted": total(self.undeleted),
            "orphans": total(self.orphans),
            "webhooks_not_applied": len(self.webhooks_not_applied),
            "webhooks_applied_twice": len(self.webhooks_applied_twice),
        }


@dataclass
class ChaosReport:
    """One chaos run: what was done to the system, and what the end-state check found."""

    backend: str = ""
    size: dict[str, int] = field(default_factory=dict)
    providers: dict[str, ProviderFindings] = field(default_factory=dict)
    #: database connections cut by the proxy, stalls, and connections refused during an outage
    connection_cuts: int = 0
    stalls: int = 0
    refused: int = 0
    outage_seconds: float = 0.0
    #: SIGKILLs sent to workers; exit codes of fleet workers that stopped by themselves
    kills: int = 0
    worker_exits: list[int] = field(default_factory=list)
    #: the final ``--until-idle`` worker(s): finished (exit 0 in time), their exit codes, seconds taken
    drain_finished: bool = False
    drain_exit_codes: list[int] = field(default_factory=list)
    drain_seconds: float = 0.0
    seconds: float = 0.0
    #: co_outbox and co_inbox rows left, by state; identity-map rows linking one local row twice
    outbox_left: dict[str, int] = field(default_factory=dict)
    inbox_left: dict[str, int] = field(default_factory=dict)
    journal_left: int = 0
    duplicate_links: list[str] = field(default_factory=list)
    #: dead changes' and events' last errors (examples), to say why
    dead_errors: list[str] = field(default_factory=list)
    #: webhook deliveries our endpoint never acknowledged (after the sender's retries); edits not made
    #: because their customer never reached the provider
    webhooks_unacknowledged: int = 0
    webhooks_skipped: int = 0

    def provider(self, name: str) -> ProviderFindings:
        """The findings of one provider (made on first use)."""
        return self.providers.setdefault(name, ProviderFindings(name))

    def problems(self) -> list[str]:
        """Every failure, one sentence each; empty when the run passed."""
        out = []
        if not self.drain_finished:
            out.append(f"the drain did not finish (final worker exit codes {self.drain_exit_codes})")
        elif any(self.drain_exit_codes):
            out.append(f"the drain needed restarts (final worker exit codes {self.drain_exit_codes})")
        if self.worker_exits:
            counts = dict(collections.Counter(self.worker_exits))
            out.append(f"{len(self.worker_exits)} workers exited by themselves (exit codes: count {counts})")
        for name, states in (("co_outbox", self.outbox_left), ("co_inbox", self.inbox_left)):
            if states:
                out.append(f"{name} not empty: {states}")
        if self.journal_left:
            out.append(f"co_journal not folded: {self.journal_left} rows")
        if self.duplicate_links:
            out.append(f"identity map links a local row twice: {self.duplicate_links[:EXAMPLES]}")
        for findings in self.providers.values():
            out.extend(findings.problems())
        if self.dead_errors and out:
            out.append("dead errors, e.g.: " + " | ".join(self.dead_errors[:3]))
        return out

    @property
    def write_amplification(self) -> float:
        received = sum(p.writes_received for p in self.providers.values())
        needed = sum(p.writes_needed for p in self.providers.values())
        return round(received / needed, 3) if needed else 0.0

    def figures(self) -> dict[str, Any]:
        """A flat summary (for a bench's JSON line)."""
        faults: collections.Counter[str] = collections.Counter()
        for findings in self.providers.values():
            faults.update(findings.faults)
        out: dict[str, Any] = {
            "backend": self.backend,
            **self.size,
            "passed": not self.problems(),
            "drain_finished": self.drain_finished,
            "drain_exit_codes": self.drain_exit_codes,
            "drain_seconds": round(self.drain_seconds, 2),
            "seconds": round(self.seconds, 1),
            "kills": self.kills,
            "worker_exits": len(self.worker_exits),
            "connection_cuts": self.connection_cuts,
            "stalls": self.stalls,
            "outage_seconds": self.outage_seconds,
            "faults": dict(sorted(faults.items())),
            "write_amplification": self.write_amplification,
            "outbox_left": sum(self.outbox_left.values()),
            "inbox_left": sum(self.inbox_left.values()),
            "duplicate_links": len(self.duplicate_links),
            "webhooks_unacknowledged": self.webhooks_unacknowledged,
            "webhooks_skipped": self.webhooks_skipped,
        }
        for name, findings in sorted(self.providers.items()):
            for key, value in findings.counts().items():
                out[f"{name}_{key}"] = value
            out[f"{name}_webhooks_acknowledged"] = findings.webhooks_acknowledged
            out[f"{name}_write_amplification"] = findings.amplification
        return out
