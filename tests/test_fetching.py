"""Reading thin records one outcome per id (connected_objects.receive.fetching)."""

from __future__ import annotations

import asyncio

import pytest

from connected_objects.exceptions import AuthorizationLost
from connected_objects.exceptions import RetryableError
from connected_objects.plugin.provider import RemoteRecord
from connected_objects.receive.fetching import fetch_each


class Provider:
    """A client whose reads of ``bad`` fail with ``error``; it remembers every call."""

    def __init__(self, bad, error):
        self.bad, self.error, self.calls = set(bad), error, []

    async def fetch(self, entity, ids):
        self.calls.append(sorted(ids))
        if self.bad & set(ids):
            raise self.error
        return [RemoteRecord(entity, i, {"n": i}) for i in ids]


def test_a_batch_that_works_is_one_call():
    client = Provider(set(), RetryableError("x"))
    reads = asyncio.run(fetch_each(client, "customers", ["2", "1", "2"]))
    assert sorted(reads.records) == ["1", "2"] and not reads.failed
    assert client.calls == [["1", "2"]]


def test_a_failed_batch_is_read_again_one_id_at_a_time():
    client = Provider({"2"}, RetryableError("503", status=503))
    reads = asyncio.run(fetch_each(client, "customers", ["1", "2", "3"]))
    assert sorted(reads.records) == ["1", "3"]
    assert list(reads.failed) == ["2"] and reads.failed["2"].status == 503
    assert sorted(client.calls[1:]) == [["1"], ["2"], ["3"]]


@pytest.mark.parametrize(
    "error", [AuthorizationLost("refresh token refused"), RetryableError("429", status=429, retry_after=30.0)]
)
def test_what_every_read_would_meet_is_not_split(error):
    client = Provider({"2"}, error)
    reads = asyncio.run(fetch_each(client, "customers", ["1", "2", "3"]))
    assert reads.records == {} and set(reads.failed) == {"1", "2", "3"}
    assert client.calls == [["1", "2", "3"]]  # no storm of single reads into a rate limit or a refusal
