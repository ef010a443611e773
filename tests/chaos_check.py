"""The end-state check of a chaos run: the local rows against every provider's records, and the queues.

For each provider (QuickBooks and Xero), records are grouped by the ``ref``
every row carries into its payload (:mod:`chaos_books`), not by our identity
map, so a record the identity map forgot still counts:

- every live local row has exactly one live record (0: **lost**, 2 or more:
  **duplicated**) holding its latest values (else **stale**: name; number,
  total and customer);
- every deleted local row has no live record (else **not deleted**);
- no live record has a ref that no local row accounts for (**orphaned**);
- every acknowledged webhook is applied exactly once: an edit's name reached
  the local row, a record created at the provider has exactly one local row.

Then the queues: nothing pending, in flight or dead in ``co_outbox`` and
``co_inbox``, nothing left in ``co_journal``, no local row linked twice in the
identity map. Write amplification per provider is the write items the fake
received over the fewest that do the job: a create per live row that did not
come from that provider, an update per live row updated locally or edited at
the other provider, a delete per deleted row (a lower bound: a row deleted
before its create went out needs none).

Example: see :func:`chaos_run.run`, which calls :func:`check` last.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # chaos_books by name, as the workers import it

from chaos_books import QBO
from chaos_books import XERO
from chaos_books import ChaosCustomer
from chaos_books import ChaosInvoice
from chaos_run import Books
from chaos_run import Plan
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select

from connected_objects import Hub
from connected_objects.queue.journal import queued
from connected_objects.store.models import connected_object
from connected_objects.store.models import inbox
from connected_objects.store.models import outbox
from connected_objects.testing.chaos import ChaosReport
from connected_objects.testing.chaos import ProviderFindings

__all__ = ["check"]


def check(engine: Engine, hub: Hub, books: Books, plan: Plan, report: ChaosReport) -> None:
    """Fill ``report`` with what is wrong at each provider and in the queues."""
    with hub.session_factory() as s:
        customers = {str(c.ref): (c.id, c.name) for c in s.scalars(select(ChaosCustomer))}
        by_id = {cid: ref for ref, (cid, _) in customers.items()}
        invoices = {
            str(i.ref): (i.number, Decimal(i.total), by_id.get(i.customer_id, "?"))
            for i in s.scalars(select(ChaosInvoice))
        }
    qbo, xero = books.qbo, books.xero
    q = report.provider("quickbooks")
    x = report.provider("xero")

    # -- QuickBooks ---------------------------------------------------------------------------
    q_customers = qbo.live(QBO.account, "Customer")
    q_names = {rid: r.get("Notes") for rid, r in q_customers.items()}
    _compare(
        q,
        "Customer",
        local={ref: name for ref, (_, name) in customers.items()},
        remote=[(r.get("Notes"), r.get("DisplayName")) for r in q_customers.values()],
        deleted=plan.deleted,
    )
    _compare(
        q,
        "Invoice",
        local={ref: (number, float(total), cref) for ref, (number, total, cref) in invoices.items()},
        remote=[
            (
                r.get("PrivateNote"),
                (r.get("DocNumber"), float(r.get("TotalAmt") or 0), q_names.get(_ref(r, "CustomerRef", "value"), "?")),
            )
            for r in qbo.live(QBO.account, "Invoice").values()
        ],
        deleted=plan.deleted,
    )
    # -- Xero ---------------------------------------------------------------------------------
    x_customers = xero.live(XERO.account, "Contacts")
    x_names = {rid: r.get("ContactNumber") for rid, r in x_customers.items()}
    _compare(
        x,
        "Contacts",
        local={ref: name for ref, (_, name) in customers.items()},
        remote=[(r.get("ContactNumber"), r.get("Name")) for r in x_customers.values()],
        deleted=plan.deleted,
    )
    _compare(
        x,
        "Invoices",
        local={ref: (number, float(total), cref) for ref, (number, total, cref) in invoices.items()},
        remote=[
            (
                r.get("Reference"),
                (r.get("InvoiceNumber"), float(r.get("Total") or 0), x_names.get(_ref(r, "Contact", "ContactID"), "?")),
            )
            for r in xero.live(XERO.account, "Invoices").values()
        ],
        deleted=plan.deleted,
    )

    # -- webhooks -----------------------------------------------------------------------------
    for provider, findings in (("quickbooks", q), ("xero", x)):
        findings.webhooks_delivered = plan.delivered[provider]
        findings.webhooks_acknowledged = len(plan.acknowledged[provider])
        for ref in sorted(plan.acknowledged[provider]):
            if ref in plan.edited:
                _, name = plan.edited[ref]
                if ref in customers and customers[ref][1] != name:
                    findings.webhooks_not_applied.append(f"{ref}: local name {customers[ref][1]!r}, not {name!r}")
            elif ref in plan.created_remotely:
                with hub.session_factory() as s:
                    n = s.scalar(select(func.count()).select_from(ChaosCustomer).where(ChaosCustomer.ref == ref)) or 0
                if n == 0:
                    findings.webhooks_not_applied.append(f"{ref}: no local row")
                elif n > 1:
                    findings.webhooks_applied_twice.append(f"{ref}: {n} local rows")

    # -- faults and writes --------------------------------------------------------------------
    q.faults, x.faults = dict(books.qbo_faults.injected), dict(books.xero_faults.injected)
    q.writes_received, q.writes_sent = books.qbo_faults.received, books.qbo_faults.sent
    x.writes_received, x.writes_sent = books.xero_faults.received, books.xero_faults.sent
    live = set(customers) | set(invoices)
    for provider, findings in (("quickbooks", q), ("xero", x)):
        made, rewritten = _history(books, provider)
        creates = sum(1 for ref in live if plan.created_remotely.get(ref) != provider)
        # an update made before the create went out travels with it: needed only if the record was rewritten
        updates = sum(1 for ref in plan.updated if ref in live and ref in rewritten)
        updates += sum(1 for ref, (where, _) in plan.edited.items() if where != provider and ref in live)
        deletes = sum(1 for ref in plan.deleted if ref in made)  # a row deleted before its create needs nothing
        findings.writes_needed = creates + updates + deletes

    # -- queues and the identity map ----------------------------------------------------------
    with engine.connect() as conn:
        report.outbox_left = {
            str(k): int(v) for k, v in conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
        }
        report.inbox_left = {
            str(k): int(v)
            for k, v in conn.execute(
                select(inbox.c.state, func.count()).where(inbox.c.state != "done").group_by(inbox.c.state)
            )
        }
        report.journal_left = sum(queued(conn).values())
        co = connected_object.c
        for columns in ((co.local_type, co.local_id), (co.entity, co.foreign_id)):
            twice = conn.execute(
                select(co.provider, *columns, func.count()).group_by(co.provider, *columns).having(func.count() > 1)
            ).all()
            report.duplicate_links.extend(f"{row[0]} {row[1]} {row[2]} x{row[3]}" for row in twice)
        for table in (outbox, inbox):
            errors = conn.execute(select(table.c.last_error).where(table.c.state == "dead").limit(3)).scalars()
            report.dead_errors.extend(str(e)[:300] for e in errors)


def _compare(
    findings: ProviderFindings,
    entity: str,
    *,
    local: dict[str, Any],
    remote: Iterable[tuple[Any, Any]],
    deleted: set[str],
) -> None:
    """Local rows (ref → expected values) against live remote records ((ref, values) pairs)."""
    found: dict[str, list[Any]] = collections.defaultdict(list)
    for ref, values in remote:
        found[str(ref)].append(values)
    for ref, expected in sorted(local.items()):
        copies = found.get(ref, [])
        if not copies:
            findings.lost[entity].append(ref)
        elif len(copies) > 1:
            findings.duplicated[entity].append(f"{ref} x{len(copies)}")
        elif copies[0] != expected:
            findings.stale[entity].append(f"{ref}: {copies[0]!r} there, {expected!r} here")
    for ref in sorted(found):
        if ref in local:
            continue
        if ref in deleted:
            findings.undeleted[entity].append(f"{ref} x{len(found[ref])}")
        else:
            findings.orphans[entity].append(f"{ref} x{len(found[ref])}")


def _history(books: Books, provider: str) -> tuple[set[str], set[str]]:
    """The refs with a record at the provider (live or not), and those whose record was written after its create."""
    made: set[str] = set()
    rewritten: set[str] = set()
    if provider == "quickbooks":
        for (_, entity, _), r in books.qbo.records.items():
            ref = str(r.get("Notes" if entity == "Customer" else "PrivateNote"))
            made.add(ref)
            if int(r.get("SyncToken") or 0) > 0:
                rewritten.add(ref)
        return made, rewritten
    updated = {e["resourceId"] for e in books.xero.events if e["eventType"] == "UPDATE"}
    for (_, entity, rid), r in books.xero.records.items():
        ref = str(r.get("ContactNumber" if entity == "Contacts" else "Reference"))
        made.add(ref)
        if rid in updated:
            rewritten.add(ref)
    return made, rewritten


def _ref(record: dict[str, Any], field: str, key: str) -> str:
    value = record.get(field)
    return str(value.get(key)) if isinstance(value, dict) else ""
