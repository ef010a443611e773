"""Reads through a scope's gate: a rate-limit answer holds the scope, then the read is tried again."""

from __future__ import annotations

import asyncio

import pytest

from connected_objects import RetryableError
from connected_objects import Scope
from connected_objects.limits.gates import ScopeGate
from connected_objects.plugin.provider import Limits
from connected_objects.plugin.provider import Page
from connected_objects.receive.gated import ATTEMPTS
from connected_objects.receive.gated import GatedReads


class Limited:
    """A feed that answers "limit reached, retry in a moment" ``refusals`` times, then a page."""

    def __init__(self, refusals: int, retry_after: float | None = 0.01) -> None:
        self.refusals, self.retry_after, self.calls = refusals, retry_after, 0

    async def changes(self, entity, cursor):
        self.calls += 1
        if self.calls <= self.refusals:
            raise RetryableError("limit reached", status=429, retry_after=self.retry_after)
        return Page([], "next", False)

    async def fetch(self, entity, ids):
        return []


def gate() -> ScopeGate:
    return ScopeGate(Limits(concurrency=2, per_minute=6000), scope=Scope("sandbox", "test", "acme"))


def test_a_rate_limited_read_holds_the_scope_and_is_tried_again():
    feed, g = Limited(refusals=2), gate()
    page = asyncio.run(GatedReads(feed, g).changes("Customer", None))
    assert (page.cursor, feed.calls) == ("next", 3)
    assert g.reason is not None and "limit reached" in g.reason


def test_a_read_refused_without_a_time_to_wait_is_not_retried():
    feed = Limited(refusals=1, retry_after=None)
    with pytest.raises(RetryableError):
        asyncio.run(GatedReads(feed, gate()).changes("Customer", None))
    assert feed.calls == 1


def test_a_read_still_refused_after_its_attempts_says_so():
    feed = Limited(refusals=ATTEMPTS)
    with pytest.raises(RetryableError):
        asyncio.run(GatedReads(feed, gate()).changes("Customer", None))
    assert feed.calls == ATTEMPTS
