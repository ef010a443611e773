"""Worker processes that are SIGKILLed and restarted, then one last worker that must drain.

:class:`WorkerFleet` runs ``connected-objects worker --app MODULE:FUNC`` (as
``python -m connected_objects worker``) in ``size`` processes, all logging to
one file. :meth:`~WorkerFleet.kill_one` SIGKILLs one at random and starts its
replacement; :meth:`~WorkerFleet.reap` notices the ones that exited by
themselves (a worker should never do that: each is counted with its exit code,
then replaced). :meth:`~WorkerFleet.drain` stops them all and runs a final
``--until-idle`` worker, which must exit 0 before its deadline.

Example (a fleet whose "worker" is a Python that exits at once, to show the
bookkeeping without a database)::

    >>> import sys, tempfile, pathlib
    >>> from connected_objects.testing.chaos.workers import WorkerFleet
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "workers.log"
    >>> fleet = WorkerFleet("any:app", {}, log, size=2, command=[sys.executable, "-c", "raise SystemExit(1)"])
    >>> fleet.start()
    >>> for worker in fleet.workers:
    ...     _ = worker.wait()
    >>> fleet.reap(), fleet.exits
    (2, [1, 1])
    >>> fleet.stop()
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path

__all__ = ["WorkerFleet"]


class WorkerFleet:
    """``size`` worker processes of the app ``app`` (``MODULE:FUNC``), with ``env`` added to the environment.

    :param options: the worker's options (``--lease``, ``--poll``, ``--batch``, ...).
    :param command: the program to run instead of ``python -m connected_objects worker --app APP``.
    :param seed: which worker :meth:`kill_one` picks, repeatably.
    """

    def __init__(
        self,
        app: str,
        env: Mapping[str, str],
        log: Path,
        *,
        size: int = 3,
        options: Sequence[str] = ("--lease", "3", "--poll", "0.05", "--batch", "100"),
        command: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> None:
        self.app, self.env, self.log, self.size = app, dict(env), log, size
        self.options = list(options)
        self.command = list(command) if command is not None else None
        self._rng = random.Random(seed)
        self.workers: list[subprocess.Popen[bytes]] = []
        #: SIGKILLs sent; exit codes of workers that stopped by themselves (each was restarted)
        self.kills = 0
        self.exits: list[int] = []
        self.started = 0

    def __repr__(self) -> str:
        return f"WorkerFleet(app={self.app!r}, running={len(self.workers)}, kills={self.kills}, exits={self.exits})"

    def spawn(self, *extra: str) -> subprocess.Popen[bytes]:
        """One worker process (not part of the fleet), e.g. ``spawn("--until-idle")``."""
        args = self.command or [sys.executable, "-m", "connected_objects", "worker", "--app", self.app]
        args = [*args, *self.options, *extra] if self.command is None else args
        self.started += 1
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(args, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def start(self) -> None:
        """Start the fleet's workers."""
        self.workers = [self.spawn() for _ in range(self.size)]

    def kill_one(self) -> None:
        """SIGKILL one worker at random and start its replacement."""
        if not self.workers:
            return
        index = self._rng.randrange(len(self.workers))
        victim = self.workers[index]
        if victim.poll() is None:
            victim.send_signal(signal.SIGKILL)
            self.kills += 1
        victim.wait()
        self.workers[index] = self.spawn()

    def reap(self) -> int:
        """Replace the workers that exited by themselves; how many did."""
        found = 0
        for index, worker in enumerate(self.workers):
            code = worker.poll()
            if code is not None:
                found += 1
                self.exits.append(code)
                self.workers[index] = self.spawn()
        return found

    def stop(self) -> None:
        """SIGKILL every worker of the fleet (what they leave behind is the drain's job)."""
        self.reap()
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
                self.kills += 1
        for worker in self.workers:
            worker.wait()
        self.workers = []

    def drain(self, timeout: float, *, attempts: int = 3) -> tuple[bool, list[int], float]:
        """Run ``--until-idle`` workers one after another until one exits 0, at most ``attempts``, within ``timeout``.

        Returns whether one finished, the exit codes seen, and the seconds it took. A worker still
        running at the deadline is killed (exit code -9 in the list).
        """
        began = time.monotonic()
        deadline = began + timeout
        codes: list[int] = []
        for _ in range(attempts):
            worker = self.spawn("--until-idle")
            try:
                code = worker.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                codes.append(-9)
                break
            codes.append(code)
            if code == 0 or time.monotonic() >= deadline:
                break
        return (bool(codes) and codes[-1] == 0), codes, time.monotonic() - began
