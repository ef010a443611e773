"""``connected-objects worker``: claim and push changes, apply inbound events, until interrupted.

It loads the application (``--app``), checks it (:meth:`~connected_objects.hub.Hub.check`),
and runs :class:`~connected_objects.worker.Worker` until SIGINT or SIGTERM, which
finish the work in progress. ``--until-idle`` stops when nothing is pending or in
flight (with a live line on a terminal, and ``--timeout S``), which suits cron jobs
and tests. The observability flags: ``--heartbeat S`` (``co_worker``, read by
``workers`` and ``health``), ``--metrics-port N`` (Prometheus), ``--log-format
json`` and ``--log-level``.

Exit codes: 0 done (or stopped by a signal); 1 an error (a schema that is behind,
a timeout); 2 a usage error; 3 (``--until-idle``) some changes or events died::

    $ connected-objects worker --app mypkg.sync:hub --until-idle --timeout 60
    worker host-1234-...: WorkerStats(claimed=12, applied=0, pushed=12, retried=0, deferred=0, dead=0, ...)

Example::

    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(worker, ["--app", "no_such_module:hub", "--until-idle"])
    >>> result.exit_code, "cannot import no_such_module" in result.output
    (2, True)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import click
from rich.console import Console

from ..exceptions import ConnectedObjectsError
from ..exceptions import ProviderNotFound
from ..hub import Hub
from ..worker import WorkerStats
from .common import UserError
from .common import app_option
from .common import console
from .common import ready_app

__all__ = ["worker"]


def _worker_telemetry_options(fn: Any) -> Any:
    """The worker's observability flags: heartbeat, metrics endpoint, log format and level, timeout."""
    options = [
        click.option(
            "--heartbeat",
            default=10.0,
            show_default=True,
            help="Seconds between heartbeats in co_worker (connected-objects workers / health read them).",
        ),
        click.option(
            "--metrics-port",
            type=int,
            default=None,
            help="Serve Prometheus metrics on this port at /metrics (needs connected-objects[prometheus]).",
        ),
        click.option("--metrics-host", default="0.0.0.0", show_default=True, help="Address the metrics listen on."),  # noqa: S104
        click.option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="Log lines on stderr as text, or one JSON object per line (redacted either way).",
        ),
        click.option(
            "--log-level",
            envvar="CONNECTED_OBJECTS_LOG_LEVEL",
            default="INFO",
            show_default=True,
            help="DEBUG, INFO, WARNING or ERROR (or CONNECTED_OBJECTS_LOG_LEVEL).",
        ),
        click.option(
            "--timeout",
            type=float,
            default=None,
            help="With --until-idle: give up after this many seconds, saying what is stuck (exit 1).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _configure_worker_logs(telemetry: dict[str, Any]) -> None:
    """Log to stderr as asked until the command ends (then the process's logging is as it was)."""
    from ..ops import logs

    handler = logs.configure(telemetry["log_format"], str(telemetry["log_level"]).upper())
    click.get_current_context().call_on_close(lambda: logs.reset(handler))


def _run_worker(hub: Hub, run: Any, telemetry: dict[str, Any]) -> WorkerStats:
    """Run the worker's coroutine with its metrics endpoint; a library error becomes one line and exit 1."""
    metrics = None
    try:
        if telemetry["metrics_port"] is not None:
            from ..ops.metrics import PrometheusMetrics

            metrics = PrometheusMetrics(hub.engine)
            port = metrics.serve(telemetry["metrics_port"], telemetry["metrics_host"])
            logging.getLogger("connected_objects.worker").info(
                "serving metrics at http://%s:%d/metrics", telemetry["metrics_host"], port
            )
        stats: WorkerStats = asyncio.run(run())
        return stats
    except ConnectedObjectsError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # the metrics port is taken
        raise click.ClickException(f"cannot serve metrics on port {telemetry['metrics_port']}: {exc}") from exc
    finally:
        if metrics is not None:
            metrics.close()


@click.command()
@app_option
@click.option("--batch", default=500, show_default=True, help="Changes claimed at once.")
@click.option("--lease", default=60.0, show_default=True, help="Seconds a claim is valid (renewed while working).")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between claims when idle.")
@click.option("--provider", "providers", multiple=True, help="Only push to this provider (repeatable).")
@click.option("--until-idle", is_flag=True, help="Stop when no change is pending or in flight.")
@click.option(
    "--polling/--no-polling",
    default=True,
    show_default=True,
    help="Poll the connections' change feeds on their cadences (never with --until-idle).",
)
@click.option("--max-polls", default=2, show_default=True, help="Polls this worker runs at once.")
@click.option(
    "--repair/--no-repair",
    default=True,
    show_default=True,
    help="The daily reconciles repair what they find (--no-repair: they only report it, in status).",
)
@click.option(
    "--schedule-every", default=5.0, show_default=True, help="Seconds between two looks for due polls and chores."
)
@_worker_telemetry_options
def worker(
    app_path: str,
    batch: int,
    lease: float,
    poll: float,
    providers: tuple[str, ...],
    until_idle: bool,
    polling: bool,
    max_polls: int,
    repair: bool,
    schedule_every: float,
    **telemetry: Any,
) -> None:
    """Claim and push changes until interrupted (SIGINT/SIGTERM finish the work in progress).

    Exit codes: 0 done (or stopped by a signal); 1 an error, such as a schema
    that is missing or behind (the message names the command to run) or an
    --until-idle run that timed out; 2 a usage error; 3 (--until-idle) some
    changes or events died in this run.
    """
    _configure_worker_logs(telemetry)
    hub = ready_app(app_path)
    try:
        runner = hub.worker(
            batch=batch,
            lease=lease,
            poll=poll,
            providers=list(providers) or None,
            heartbeat=telemetry["heartbeat"],
            polling=polling,
            max_polls=max_polls,
            schedule_every=schedule_every,
            repair=repair,
        )
    except ProviderNotFound as exc:
        raise UserError(f"--provider: {exc}") from exc
    progress = _worker_progress(runner) if until_idle else contextlib.nullcontext()

    async def run() -> WorkerStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with progress:
            stats = await runner.run(stop, until_idle=until_idle, timeout=telemetry["timeout"])
        console.print(f"worker {runner.name}: {stats}", markup=False, highlight=False, soft_wrap=True)  # one line
        return stats

    stats = _run_worker(hub, run, telemetry)
    if until_idle and stats.exit_code:  # the worker logged what died
        sys.exit(stats.exit_code)


@contextlib.contextmanager
def _worker_progress(runner: Any) -> Iterator[None]:
    """On a terminal, a live line of what ``runner`` has done so far (on stderr; nothing when piped)."""
    err = Console(stderr=True)
    if not err.is_terminal:
        yield
        return
    from rich.progress import Progress
    from rich.progress import SpinnerColumn
    from rich.progress import TextColumn
    from rich.progress import TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[detail]}"))
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True, refresh_per_second=8) as bar:
        task = bar.add_task("until idle:", detail="starting")

        def show() -> str:
            s = runner.stats
            return f"{s.pushed} pushed, {s.applied} applied, {s.retried} retried, {s.deferred} deferred, {s.dead} dead"

        bar.update(task, detail=show())
        updater = _Ticker(lambda: bar.update(task, detail=show()))
        with updater:
            yield


class _Ticker:
    """Calls ``tick`` a few times a second from a thread while the ``with`` block runs."""

    def __init__(self, tick: Callable[[], None], every: float = 0.125) -> None:
        import threading

        self.tick, self.every, self.done = tick, every, threading.Event()
        self.thread = threading.Thread(target=self._loop, name="connected-objects-progress", daemon=True)

    def _loop(self) -> None:
        while not self.done.wait(self.every):
            self.tick()

    def __enter__(self) -> _Ticker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self.tick()
