"""The dispatcher's and the applier's decisions, on plain values: no database, no network."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from connected_objects import FieldMapping
from connected_objects import PermanentError
from connected_objects import Reference
from connected_objects import RetryableError
from connected_objects import RetryPolicy
from connected_objects import Scope
from connected_objects.plugin.provider import RemoteRecord
from connected_objects.push.planning import Outcome
from connected_objects.push.planning import failed
from connected_objects.push.planning import ledger
from connected_objects.push.planning import plan_change
from connected_objects.queue.outbox import ClaimedChange
from connected_objects.receive.apply import decide
from connected_objects.store.identity import ConnectedObject

SCOPE = Scope("quickbooks", "production", "9130")
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)
SPEC = SimpleNamespace(entity="Customer", mapping=FieldMapping({"name": "DisplayName"}))


def change(n=1, operation="upsert", attempts=1, revision=1, refusals=0) -> ClaimedChange:
    return ClaimedChange(
        n, SCOPE, "Customer", "customer", str(n), operation, revision, attempts, "in_flight", "f", None, NOW, "w",
        refusals,
    )  # fmt: skip


def link(status="linked", version="3", digest=None) -> ConnectedObject:
    return ConnectedObject(
        10, SCOPE, "Customer", "58", "customer", "1", version, digest, status, None, None, None,
    )  # fmt: skip


ROW = SimpleNamespace(name="Acme")


def test_a_new_row_is_a_create_keyed_by_the_row_and_renewed_by_a_refusal():
    first = plan_change(change(), scope=SCOPE, spec=SPEC, link=None, row=ROW)
    retried = plan_change(change(attempts=4, revision=3), scope=SCOPE, spec=SPEC, link=None, row=ROW)
    refused = plan_change(change(), scope=SCOPE, spec=SPEC, link=None, row=ROW, epoch=1)
    assert first.action == "create" and first.payload == {"DisplayName": "Acme"}
    assert first.key == retried.key  # a lost answer is replayed, never duplicated
    assert refused.key != first.key  # after a refusal, a new request


def test_a_row_recreated_after_a_remote_delete_is_a_new_generation():
    fresh = plan_change(change(), scope=SCOPE, spec=SPEC, link=None, row=ROW)
    again = plan_change(change(), scope=SCOPE, spec=SPEC, link=link(status="deleted"), row=ROW)
    assert again.action == "create" and again.key != fresh.key


def test_an_unchanged_payload_is_skipped_and_a_changed_one_is_an_update():
    same = plan_change(change(), scope=SCOPE, spec=SPEC, link=link(), row=ROW)
    digest = same.digest
    assert same.action == "update"
    assert plan_change(change(), scope=SCOPE, spec=SPEC, link=link(digest=digest), row=ROW).action == "skip"


def test_references_wait_fold_and_deletes_need_a_live_link():
    waiting = plan_change(change(), scope=SCOPE, spec=SPEC, link=None, row=ROW, missing=[("customer", "9")])
    assert (waiting.action, waiting.reason) == ("defer", "waiting for customer 9")
    references = {"CustomerRef": Reference("customer_id", "customer")}
    spec = SimpleNamespace(entity="Invoice", mapping=FieldMapping({}, references=references))
    folded = plan_change(
        change(), scope=SCOPE, spec=spec, link=None, row=ROW, refs={"CustomerRef": "58"},
        fold=lambda entity, name, fid: {"value": fid},
    )  # fmt: skip
    assert folded.payload == {"CustomerRef": {"value": "58"}}
    assert plan_change(change(operation="delete"), scope=SCOPE, spec=SPEC, link=None, row=None).action == "skip"
    assert plan_change(change(operation="delete"), scope=SCOPE, spec=SPEC, link=link(), row=None).action == "delete"
    assert plan_change(change(), scope=SCOPE, spec=SPEC, link=link(), row=None).action == "skip"  # deleted since


@pytest.mark.parametrize(
    ("error", "status", "refused"),
    [
        (PermanentError("Duplicate Name Exists Error", status=400), "dead", True),
        (RetryableError("HTTP 503", status=503), "retry", False),
        (KeyError("DisplayName"), "retry", False),  # unexpected: retried a few times
    ],
)
def test_failures_are_classified(error, status, refused):
    plan = plan_change(change(), scope=SCOPE, spec=SPEC, link=None, row=ROW)
    outcome = failed(plan, error)
    assert (outcome.status, outcome.refused) == (status, refused)


def test_an_unexpected_exception_keeps_its_traceback_and_dies_after_fewer_attempts():
    """Issue 13: a provider's KeyError is retried like a transient error, up to max_unexpected, with
    the scrubbed traceback as the error."""
    try:
        {"token": "Bearer at-0123456789abcdef"}["DisplayName"]
    except KeyError as exc:
        error = exc
    policy = RetryPolicy(max_attempts=10, max_unexpected=3)
    for attempts, dead in ((1, False), (2, False), (3, True)):
        plan = plan_change(change(attempts=attempts), scope=SCOPE, spec=SPEC, link=None, row=ROW)
        outcome = failed(plan, error)
        assert outcome.unexpected and outcome.status == "retry"
        assert outcome.error.startswith("KeyError: 'DisplayName'\n")
        assert "Traceback (most recent call last)" in outcome.error and "test_planning.py" in outcome.error
        assert "at-0123456789abcdef" not in outcome.error  # the source line quoted a token: scrubbed
        book = ledger([outcome], now=NOW, retry=policy, defer_delay=1.0)
        assert bool(book.dead) is dead and bool(book.later) is not dead
    transient = failed(plan, RetryableError("HTTP 503", status=503))
    assert not ledger([transient], now=NOW, retry=policy, defer_delay=1.0).dead  # attempt 3 of 10: not yet


def test_the_ledger_counts_a_refusal_into_the_key_and_settles_the_object():
    plan = plan_change(change(refusals=2), scope=SCOPE, spec=SPEC, link=None, row=ROW, epoch=2)
    book = ledger([failed(plan, PermanentError("refused"))], now=NOW, retry=RetryPolicy(), defer_delay=1.0)
    assert book.dead == [(1, "refused")] and book.refusals == {1: 3}
    assert book.settled == {("customer", "1")}
    assert [name for name, _ in book.signals] == ["change-dead"]


def test_the_ledger_retries_with_backoff_then_gives_up():
    policy = RetryPolicy(base=10.0, factor=2.0, cap=60.0, max_attempts=3)
    plan = plan_change(change(attempts=1), scope=SCOPE, spec=SPEC, link=None, row=ROW)
    book = ledger([Outcome(plan, "retry", error="503", retry_after=30.0)], now=NOW, retry=policy, defer_delay=1.0)
    [(ident, when, error, counted)] = book.later
    assert ident == 1 and counted and error == "503" and when >= NOW + dt.timedelta(seconds=30)
    assert book.refusals == {} and book.dead == []
    last = plan_change(change(attempts=3), scope=SCOPE, spec=SPEC, link=None, row=ROW)
    exhausted = ledger([Outcome(last, "retry", error="503")], now=NOW, retry=policy, defer_delay=1.0)
    assert exhausted.dead == [(1, "503")] and exhausted.refusals == {}  # not a refusal: the key is kept


def test_the_ledger_links_creates_syncs_updates_and_gives_back_deferred_attempts():
    create = plan_change(change(1), scope=SCOPE, spec=SPEC, link=None, row=ROW)
    update = plan_change(change(2), scope=SCOPE, spec=SPEC, link=link(), row=ROW)
    defer = plan_change(change(3), scope=SCOPE, spec=SPEC, link=None, row=ROW, missing=[("customer", "9")])
    book = ledger(
        [
            Outcome(create, "done", record=RemoteRecord("Customer", "77", version="0")),
            Outcome(update, "done", record=RemoteRecord("Customer", "58", version="4")),
            Outcome(defer, "defer", error=defer.reason, count_attempt=False),
        ],
        now=NOW,
        retry=RetryPolicy(),
        defer_delay=2.0,
    )
    # a create records the hash of what it carried: it is repeated with that payload until its outcome is known
    assert book.created == {"Customer": [("77", "customer", "1", "0", create.digest)]}
    assert book.synced == [(10, "4", update.digest)]
    assert book.finished == [1, 2]
    assert book.later == [(3, NOW + dt.timedelta(seconds=2.0), "waiting for customer 9", False)]


def test_the_applier_decides_from_versions_links_references_and_local_edits():
    record = RemoteRecord("Customer", "58", {"DisplayName": "Acme"}, version="4", updated_at=NOW)
    assert decide(record, link=None, has_row=False, waiting=False) == "create"
    assert decide(record, link=None, has_row=False, waiting=True) == "park"
    assert decide(record, link=link(version="4"), has_row=True, waiting=False) == "skip"  # not news
    assert decide(record, link=link(version="3"), has_row=True, waiting=False) == "update"
    later = NOW + dt.timedelta(minutes=1)
    assert decide(record, link=link(version="3"), has_row=True, waiting=False, edited_at=later) == "keep_local"
    assert decide(record, link=link(version="3"), has_row=True, waiting=False, edited_at=later, conflict="remote") == (
        "update"
    )
    gone = RemoteRecord("Customer", "58", {}, version="5", deleted=True)
    assert decide(gone, link=link(), has_row=True, waiting=False) == "delete"
    assert decide(gone, link=None, has_row=False, waiting=False) == "skip"
