"""Outbox values: a :class:`Change` to record, and a :class:`ClaimedChange` as a worker sees it.

Example::

    >>> from connected_objects import Scope
    >>> from connected_objects.queue.changes import Change
    >>> Change(Scope("xero", "production", "t-1"), "Contacts", "customer", "7", "upsert").operation
    'upsert'
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from typing import Literal
from typing import NamedTuple

from sqlalchemy import Row

from ..scope import Scope
from ..states import ChangeState
from ..states import Operation
from ..states import Slot
from ..states import WriteAction
from ..util.values import dumps
from ..util.values import loads

__all__ = ["OPERATIONS", "Change", "ClaimedChange", "InDoubt"]

#: What a change can do.
OPERATIONS = ("upsert", "delete")


class Change(NamedTuple):
    """A change to record: push ``(local_type, local_id)`` to ``(scope, entity)``."""

    scope: Scope
    entity: str
    local_type: str
    local_id: str
    operation: Operation
    origin: str | None = None
    #: When the change happened (default: when it is written); the journal keeps each flush's time.
    at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class InDoubt:
    """A write that was sent for a change and whose outcome is not known yet: exactly what went out.

    It is stored on the change before the call leaves, and the next attempt repeats
    that very call, so the provider answers it as the same request whatever else the
    next claim holds (QuickBooks replays a batch's ``requestid`` with its first answer;
    each item is found again by its ``slot``, its ``bId``).

    >>> sent = InDoubt(7, "create", "Customer", "5f0c…", slot=3, write_key="a1b2…", payload={"DisplayName": "Acme"})
    >>> InDoubt.from_text(sent.to_text()) == sent
    True
    """

    #: The change that sent it (another change of the same object may repeat it later).
    change_id: int
    #: The write; ``perform`` for a queued action (:mod:`connected_objects.push.actions`), whose
    #: ``payload`` is the action's options and ``foreign_id`` the record it acts on.
    action: WriteAction | Literal["perform"]
    entity: str
    #: The call's idempotency key: a batch call's own key, or the single write's.
    key: str
    #: The write's position in its batch call (None: sent alone).
    slot: int | None = None
    #: The write's own idempotency key inside a batch call (a Connec! external id; None: ``key``).
    write_key: str | None = None
    payload: dict[str, Any] | None = None
    foreign_id: str | None = None
    version: str | None = None
    #: Every change whose write went out in the same batch call, in slot order: the call is repeated
    #: with all of them still in doubt, so a provider that keys whole calls (Xero) never sees a part of
    #: it first and then answers another part with that part's answer.
    call_changes: tuple[int, ...] = ()

    def to_text(self) -> str:
        """As stored in ``co_outbox.in_doubt`` (amounts and dates exactly, see :mod:`connected_objects.util.values`)."""
        body: dict[str, Any] = {
            "change": self.change_id,
            "action": self.action,
            "entity": self.entity,
            "key": self.key,
            "slot": self.slot,
            "write_key": self.write_key,
            "payload": self.payload,
            "foreign_id": self.foreign_id,
            "version": self.version,
        }
        if self.call_changes:
            body["with"] = list(self.call_changes)
        return dumps(body).decode()

    @classmethod
    def from_text(cls, text: str | bytes | None) -> InDoubt | None:
        """What :meth:`to_text` stored (None for an empty column)."""
        if not text:
            return None
        body = loads(text)
        return cls(
            int(body["change"]),
            body["action"],
            body["entity"],
            body["key"],
            slot=body.get("slot"),
            write_key=body.get("write_key"),
            payload=body.get("payload"),
            foreign_id=body.get("foreign_id"),
            version=body.get("version"),
            call_changes=tuple(int(i) for i in body.get("with") or ()),
        )


@dataclass(frozen=True, slots=True)
class ClaimedChange:
    """An outbox row as a worker (or an operator) sees it."""

    id: int
    scope: Scope
    entity: str
    local_type: str
    local_id: str
    operation: Operation
    revision: int
    attempts: int
    state: ChangeState
    slot: Slot | None
    last_error: str | None
    next_attempt_at: dt.datetime
    lease_owner: str | None
    #: How often the provider refused this object's write for good (part of the idempotency key).
    refusals: int = 0
    #: The write sent for it whose outcome is not known yet (repeated as the same call).
    in_doubt: InDoubt | None = None

    def as_dict(self) -> dict[str, Any]:
        """The change as JSON-ready values (the scope as ``provider/marketplace/account``, times in ISO 8601)."""
        return {
            "id": self.id,
            "scope": str(self.scope),
            "entity": self.entity,
            "local_type": self.local_type,
            "local_id": self.local_id,
            "operation": self.operation,
            "revision": self.revision,
            "state": self.state,
            "attempts": self.attempts,
            "refusals": self.refusals,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "lease_owner": self.lease_owner,
            "last_error": self.last_error,
        }

    @classmethod
    def from_row(cls, row: Row[Any]) -> ClaimedChange:
        """The change an outbox row holds."""
        m = row._mapping
        return cls(
            id=m["id"],
            scope=Scope(m["provider"], m["marketplace"], m["account"]),
            entity=m["entity"],
            local_type=m["local_type"],
            local_id=m["local_id"],
            operation=m["operation"],
            revision=m["revision"],
            attempts=m["attempts"],
            state=m["state"],
            slot=m["slot"],
            last_error=m["last_error"],
            next_attempt_at=m["next_attempt_at"],
            lease_owner=m["lease_owner"],
            refusals=m["refusals"],
            in_doubt=InDoubt.from_text(m["in_doubt"]) if "in_doubt" in m else None,
        )
