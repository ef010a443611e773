"""What the inbound engine does with claimed events, decided with no I/O.

The counterpart of :mod:`connected_objects.push.planning`: the engine
(:mod:`connected_objects.receive.engine`) claims events, and asks this module

- which records a group of events brings (:func:`sort_events`): records the
  event carries whole, foreign ids to fetch for the thin ones, parked records
  coming back, and events that cannot be decoded;
- what becomes of events that failed (:func:`failed`): each one is retried on
  its own backoff, or buried once its attempts are spent, by the same verdict
  outbound changes get (:meth:`~connected_objects.util.retry.RetryPolicy.next_attempt`);
  an unexpected exception (a bug) keeps its traceback and gets fewer attempts;
- what becomes of events that were applied (:func:`settled`): done, unless the
  record they bring was parked again (its reference is still missing), in which
  case the event waits on, never dropped.

The engine writes each :class:`EventLedger` in one transaction.

Example::

    >>> import datetime as dt
    >>> from connected_objects.exceptions import RetryableError
    >>> from connected_objects.queue import StoredEvent
    >>> from connected_objects.util.retry import RetryPolicy
    >>> now = dt.datetime(2026, 1, 1)
    >>> def event(id, attempts):
    ...     return StoredEvent(id, "sandbox", "test", "acme", "Customer", b"{}", attempts, "in_flight", None)
    >>> book = failed([(event(1, 1), RetryableError("busy")), (event(2, 3), RetryableError("busy"))],
    ...               retry=RetryPolicy(max_attempts=3), now=now)
    >>> [i for i, _, _ in book.later], [(e.id, error) for e, error in book.dead]
    ([1], [(2, 'busy')])
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

import httpx
from sqlalchemy.exc import DBAPIError

from ..exceptions import ConflictError
from ..exceptions import MissingReference
from ..exceptions import PermanentError
from ..exceptions import RetryableError
from ..oauth.tokens import AuthorizationLost
from ..plugin.provider import RemoteRecord
from ..push.planning import scrubbed_traceback
from ..queue import StoredEvent
from ..util.retry import RetryPolicy
from .parking import unpark

__all__ = ["EXPECTED", "EventLedger", "Sorted", "failed", "settled", "sort_events"]

#: What applying events may meet in ordinary operation; anything else is a bug, kept with its traceback.
EXPECTED: tuple[type[BaseException], ...] = (
    MissingReference,
    RetryableError,
    ConflictError,
    AuthorizationLost,
    httpx.HTTPError,
    DBAPIError,
)

#: A provider's ``decode_event``: an event's payload → the record it carries whole, or the foreign id to fetch.
Decoder = Callable[[str, bytes], "RemoteRecord | str"]


@dataclass
class Sorted:
    """What a group of events brings."""

    #: Records to apply: carried whole by their events, or parked records coming back.
    records: list[RemoteRecord] = field(default_factory=list)
    #: Event id → the foreign id it names, to fetch (several events may name one record).
    thin: dict[int, str] = field(default_factory=dict)
    #: Event id → the foreign id of the parked record it keeps.
    parked: dict[int, str] = field(default_factory=dict)
    #: Events that could not be decoded, with why.
    failures: list[tuple[StoredEvent, BaseException]] = field(default_factory=list)
    #: Foreign id → the delivery id of the (last) event that brought or named it, for the history.
    keys: dict[str, str] = field(default_factory=dict)


def sort_events(group: Sequence[StoredEvent], entity: str, decode: Decoder | None, provider: str) -> Sorted:
    """Decode each event of one (scope, entity) group; one that cannot be decoded fails alone."""
    out = Sorted()
    for event in group:
        try:
            if event.kind == "parked":
                record = unpark(event)
                out.parked[event.id] = record.foreign_id
                out.records.append(record)
                _key(out, record.foreign_id, event)
                continue
            if decode is None:
                raise PermanentError(f"provider {provider!r} cannot decode stored events (no decode_event)")
            item = decode(entity, event.payload)
        except Exception as exc:
            out.failures.append((event, exc))
            continue
        if isinstance(item, RemoteRecord):
            out.records.append(item)
            _key(out, item.foreign_id, event)
        else:
            out.thin[event.id] = item
            _key(out, item, event)
    return out


def _key(out: Sorted, foreign_id: str, event: StoredEvent) -> None:
    if event.dedupe_key is not None:
        out.keys[foreign_id] = event.dedupe_key


@dataclass
class EventLedger:
    """Everything one group's outcome writes, and what to tell after the commit."""

    #: Applied events, deleted.
    done: list[int] = field(default_factory=list)
    #: ``(event id, next attempt, error)``: waiting to be tried again.
    later: list[tuple[int, dt.datetime, str | None]] = field(default_factory=list)
    #: Events whose attempts are spent, with their error.
    dead: list[tuple[StoredEvent, str]] = field(default_factory=list)
    #: Unexpected exceptions (bugs) met, each once, with an event it concerned: logged with their traceback.
    unexpected: list[tuple[StoredEvent, BaseException]] = field(default_factory=list)
    #: The errors of the events retried (not of parked records waiting on), for the log.
    errors: list[str] = field(default_factory=list)

    def add(self, other: EventLedger) -> None:
        self.done.extend(other.done)
        self.later.extend(other.later)
        self.dead.extend(other.dead)
        self.unexpected.extend(other.unexpected)
        self.errors.extend(other.errors)


def failed(
    failures: Sequence[tuple[StoredEvent, BaseException]], *, retry: RetryPolicy, now: dt.datetime
) -> EventLedger:
    """Retry each failed event on its own backoff, or bury it once its own attempts are spent."""
    out = EventLedger()
    seen: set[int] = set()
    for event, exc in failures:
        unexpected = not isinstance(exc, EXPECTED)
        if unexpected and id(exc) not in seen:
            seen.add(id(exc))
            out.unexpected.append((event, exc))
        error = scrubbed_traceback(exc) if unexpected else str(exc)
        retry_after = exc.retry_after if isinstance(exc, RetryableError) else None
        when = retry.next_attempt(event.attempts, now=now, unexpected=unexpected, retry_after=retry_after)
        if when is None:
            out.dead.append((event, error))
        else:
            out.later.append((event.id, when, error))
            out.errors.append(error)
    return out


def settled(
    ready: Sequence[StoredEvent],
    *,
    parked: Mapping[int, str],
    waiting: Collection[str],
    retry: RetryPolicy,
    now: dt.datetime,
) -> EventLedger:
    """Applied events are done; a parked record that was parked again (``waiting``: foreign ids) waits on.

    A record waiting for its reference is not a failure: it keeps its error and is tried again on the
    backoff of its attempts, or at once when a link is made in its scope.
    """
    out = EventLedger()
    for event in ready:
        if parked.get(event.id) in waiting:
            out.later.append(
                (event.id, now + dt.timedelta(seconds=retry.delay(event.attempts)), event.last_error or "")
            )
        else:
            out.done.append(event.id)
    return out
