"""Every state and action name, as ``Literal`` types: one place to read what a value can be.

The tables store these as short strings; the engines and the public
dataclasses are annotated with these types, so a typo is a type error.

Example::

    >>> from typing import get_args
    >>> from connected_objects.states import ChangeState, ConnectionStatus
    >>> get_args(ChangeState)
    ('pending', 'in_flight', 'dead')
    >>> get_args(ConnectionStatus)
    ('active', 'paused', 'revoked')
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "Action",
    "ApplyDecision",
    "ChangeState",
    "ConnectionStatus",
    "Drift",
    "EventKind",
    "HistoryDirection",
    "HistoryOperation",
    "HistoryOutcome",
    "LinkStatus",
    "Operation",
    "OutcomeStatus",
    "Slot",
    "WriteAction",
]

#: A captured change: push the row's current state, or delete its remote record; or a queued action on the
#: row's record (an invoice's ``send``, see :mod:`connected_objects.push.actions`).
Operation = Literal["upsert", "delete", "action"]
#: An outbox or inbox row: waiting (maybe until ``next_attempt_at``), leased to a worker, or failed for good.
ChangeState = Literal["pending", "in_flight", "dead"]
#: An outbox row's place in its object's order: ``p`` the next change, ``f`` the one being pushed.
Slot = Literal["p", "f"]
#: What the dispatcher does with a change (``perform``: a queued action on a linked record).
Action = Literal["create", "update", "delete", "perform", "skip", "defer", "dead"]
#: The writes of :data:`Action`, as a batch operation carries them.
WriteAction = Literal["create", "update", "delete"]
#: What became of a planned change.
OutcomeStatus = Literal["done", "retry", "defer", "dead"]
#: A connection: pushing and pulling, waiting (a refused token refresh), or ended.
ConnectionStatus = Literal["active", "paused", "revoked"]
#: An identity-map row: the remote record exists, or was deleted (a tombstone).
LinkStatus = Literal["linked", "deleted"]
#: An inbox row: a provider's notification, a queued backfill, or a record parked until its reference is linked.
EventKind = Literal["event", "import", "parked", "onboard"]
#: What the applier does with one remote record.
ApplyDecision = Literal["skip", "delete", "park", "keep_local", "update", "create"]
#: Which way a history entry went: a local change pushed, or a remote record applied.
HistoryDirection = Literal["push", "apply"]
#: What a history entry did to the record (on the provider's side for a push, locally for an apply).
HistoryOperation = Literal["create", "update", "delete", "action"]
#: How it went: done; refused by the provider for good; failed (retried, or dead after its attempts);
#: sent with its answer lost, so it may have happened; or nothing to do (unchanged, older, parked).
HistoryOutcome = Literal["ok", "refused", "failed", "in_doubt", "skipped"]
#: What a reconcile finds (:mod:`connected_objects.receive.reconcile`): a linked record the provider no longer
#: has, a row never pushed, a record no row links, a newer remote version never applied, and rows a natural key
#: cannot pair (left to an operator).
Drift = Literal["gone", "unpushed", "unlinked", "stale", "ambiguous"]
