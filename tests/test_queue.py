"""One behaviour suite for every leased queue: the outbox and inbox tables on each backend.

``Behaviour`` holds the tests; each ``Test…`` class below gives them a
``subject``: the queue, a way to put ``n`` items in it, and the transaction
each step runs in (a fresh one per step, committed, as workers do).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine

from connected_objects import Scope
from connected_objects.queue import CHANGES
from connected_objects.queue import EVENTS
from connected_objects.queue import Change
from connected_objects.queue import InboundEvent
from connected_objects.queue import Queue
from connected_objects.store.models import utcnow

SCOPE = Scope("memory", "test", "acme")


@dataclass
class Subject:
    queue: Queue[Any]
    put: Callable[[int], list[int]]
    step: Callable[[], contextlib.AbstractContextManager[Any]]


class Behaviour:
    def test_a_claim_leases_due_items_oldest_first_once(self, subject: Subject) -> None:
        ids = subject.put(3)
        with subject.step() as db:
            first = subject.queue.claim(db, "w1", limit=2)
        assert [i.id for i in first] == ids[:2]
        assert [(i.attempts, i.state) for i in first] == [(1, "in_flight")] * 2
        with subject.step() as db:
            rest = subject.queue.claim(db, "w2", limit=10)
            assert subject.queue.claim(db, "w3", limit=10) == []
        assert [i.id for i in rest] == ids[2:]

    def test_an_expired_lease_is_taken_over_with_one_more_attempt(self, subject: Subject) -> None:
        [item_id] = subject.put(1)
        with subject.step() as db:
            subject.queue.claim(db, "dies", lease=-1.0)  # claims, and its lease has run out
        with subject.step() as db:
            [again] = subject.queue.claim(db, "w2")
        assert (again.id, again.attempts) == (item_id, 2)
        with subject.step() as db:  # the dead worker lost the item
            assert subject.queue.finish(db, "dies", [item_id]) == 0
            assert subject.queue.claim(db, "w3") == []

    def test_only_the_lease_holder_renews_finishes_reschedules_or_buries(self, subject: Subject) -> None:
        ids = subject.put(2)
        with subject.step() as db:
            subject.queue.claim(db, "w1", lease=-1.0)
        with subject.step() as db:
            assert subject.queue.renew(db, "w2", ids) == 0
            assert subject.queue.finish(db, "w2", ids) == 0
            assert subject.queue.reschedule(db, "w2", [(ids[0], utcnow(), "no")]) == 0
            assert subject.queue.bury(db, "w2", [(ids[0], "no")]) == 0
            assert subject.queue.renew(db, "w1", ids, 60.0) == 2  # renewed in time: nothing to take over
        with subject.step() as db:
            assert subject.queue.claim(db, "w2") == []
            assert subject.queue.finish(db, "w1", ids) == 2
        with subject.step() as db:
            assert [subject.queue.get(db, i) for i in ids] == [None, None]
            assert subject.queue.list_items(db) == []

    def test_a_rescheduled_item_waits_until_its_time_and_an_uncounted_one_gets_its_attempt_back(
        self, subject: Subject
    ) -> None:
        later, soon = subject.put(2)
        with subject.step() as db:
            subject.queue.claim(db, "w1")
            past = utcnow() - dt.timedelta(seconds=1)
            hour = utcnow() + dt.timedelta(hours=1)
            items = [(later, hour, "503 from the provider"), (soon, past, None, False)]
            assert subject.queue.reschedule(db, "w1", items) == 2
        with subject.step() as db:
            [again] = subject.queue.claim(db, "w2")
            waiting = subject.queue.get(db, later)
        assert (again.id, again.attempts) == (soon, 1)  # the deferral cost no attempt
        assert waiting is not None and (waiting.state, waiting.attempts, waiting.last_error) == (
            "pending",
            1,
            "503 from the provider",
        )

    def test_a_buried_item_is_dead_until_retried_or_discarded(self, subject: Subject) -> None:
        kept, dropped = subject.put(2)
        with subject.step() as db:
            subject.queue.claim(db, "w1")
            assert subject.queue.bury(db, "w1", [(kept, "refused"), (dropped, "refused too")]) == 2
        with subject.step() as db:
            assert subject.queue.claim(db, "w2") == []
            dead = subject.queue.list_items(db, state="dead")
            assert [(i.id, i.state, i.last_error) for i in dead] == [
                (kept, "dead", "refused"),
                (dropped, "dead", "refused too"),
            ]
            assert subject.queue.retry(db, [kept]) == 1
            assert subject.queue.discard(db, [kept, dropped]) == 1  # only dead items are discarded
        with subject.step() as db:
            [again] = subject.queue.claim(db, "w2")
            assert subject.queue.get(db, dropped) is None
        assert (again.id, again.attempts) == (kept, 1)

    def test_stored_errors_are_redacted(self, subject: Subject) -> None:
        [item_id] = subject.put(1)
        with subject.step() as db:
            subject.queue.claim(db, "w1")
            subject.queue.bury(db, "w1", [(item_id, "401: Authorization: Bearer abc.def.ghi")])
        with subject.step() as db:
            item = subject.queue.get(db, item_id)
        assert item is not None and item.last_error is not None and "abc.def.ghi" not in item.last_error

    def test_the_queue_says_what_is_waiting_and_when(self, subject: Subject) -> None:
        with subject.step() as db:
            assert subject.queue.waiting(db) == (0, None)
        subject.put(2)
        with subject.step() as db:
            count, due = subject.queue.waiting(db)
        assert count == 2 and due is not None and due <= utcnow()


def _table_subject(engine: Engine, queue: Any, put: Callable[[Any, int], None]) -> Subject:
    def step() -> contextlib.AbstractContextManager[Any]:
        return engine.begin()

    def add(n: int) -> list[int]:
        with engine.begin() as db:
            before = {i.id for i in queue.list_items(db, limit=10_000)}
            put(db, n)
            return sorted({i.id for i in queue.list_items(db, limit=10_000)} - before)

    return Subject(queue, add, step)


class TestChangeQueue(Behaviour):
    @pytest.fixture
    def subject(self, engine: Engine) -> Subject:
        def put(db: Any, n: int) -> None:
            CHANGES.enqueue(db, [Change(SCOPE, "notes", "note", f"{k:04}", "upsert") for k in range(n)])

        return _table_subject(engine, CHANGES, put)


class TestEventQueue(Behaviour):
    @pytest.fixture
    def subject(self, engine: Engine) -> Subject:
        counter = iter(range(1_000_000))

        def put(db: Any, n: int) -> None:
            events = [InboundEvent(f"evt-{next(counter)}", "acme", "notes", b"{}") for _ in range(n)]
            EVENTS.store(db, SCOPE.provider, SCOPE.marketplace, events)

        return _table_subject(engine, EVENTS, put)
