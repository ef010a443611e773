"""Run a real worker in a test until the state the test waits for is reached: never a timed sleep.

A worker that runs until stopped (``worker.run(stop)``) is what polls the feeds, reconciles and runs the
chores (a drain does none of these). :func:`work_until` runs one, with short intervals, checks
``condition()`` (in a thread: it may query the database) until it holds, then stops the worker and
returns it, its stats filled in. It fails the test, saying what it waited for, if the worker stops by
itself or ``timeout`` passes first: a bound for a broken build, not a measure of speed.

Example (a test's body; the hub's clock moved so a poll is due)::

    worker = work_until(hub, lambda: polled(engine) == 2, "the first polls")
    assert worker.scheduler.stats.polls == 2
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from ..hub import Hub
from ..worker import Worker

__all__ = ["work_until"]


def work_until(hub: Hub, condition: Callable[[], bool], what: str, *, timeout: float = 60.0, **options: Any) -> Worker:
    """Run ``hub``'s worker (polling, chores, short intervals; ``options`` for :class:`Worker`) until
    ``condition()`` holds; returns the stopped worker."""
    settings: dict[str, Any] = {"poll": 0.01, "schedule_every": 0.01, "check_schema": False, "heartbeat": 3600}
    settings.update(options)

    async def main() -> Worker:
        worker = Worker(hub, **settings)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        deadline = time.monotonic() + timeout
        try:
            while not await asyncio.to_thread(condition):
                if task.done():
                    task.result()
                    pytest.fail(f"the worker stopped before {what}")
                if time.monotonic() > deadline:
                    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
                await asyncio.sleep(0.01)  # the next look at the state
        finally:
            stop.set()
            await task
        return worker

    return asyncio.run(main())
