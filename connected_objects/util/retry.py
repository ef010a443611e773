"""When to try a failed change again: exponential backoff with full jitter.

The n-th retry waits a random time between 0 and ``min(cap, base * factor**(n-1))``
seconds ("full jitter", so many workers failing at once do not retry in
step), but never less than a provider's ``Retry-After``. After
``max_attempts`` attempts a change is dead; after ``max_unexpected`` when
what failed was an unexpected exception (a bug in a provider or a mapping,
kept with its traceback), which rarely heals by waiting.

Defaults follow the providers' own habits: base 5 s, factor 5, cap 6 h (QBO's
longest webhook retry gap), 10 attempts.

Example::

    >>> import random
    >>> from connected_objects.util.retry import RetryPolicy
    >>> policy = RetryPolicy(base=1.0, factor=2.0, cap=10.0, max_attempts=3)
    >>> policy.ceiling(1), policy.ceiling(3), policy.ceiling(10)
    (1.0, 4.0, 10.0)
    >>> 0 <= policy.delay(3, rng=random.Random(1)) <= 4.0
    True
    >>> policy.delay(1, retry_after=30.0) >= 30.0
    True
    >>> policy.exhausted(3)
    True
    >>> policy.exhausted(2, unexpected=True), RetryPolicy().exhausted(3, unexpected=True)
    (False, True)

:meth:`RetryPolicy.next_attempt` is the one verdict both engines ask of a failed
attempt, a pushed change's or an applied event's: when to try again, or None to bury::

    >>> import datetime as dt
    >>> now = dt.datetime(2026, 1, 1)
    >>> policy.next_attempt(3, now=now) is None, policy.next_attempt(1, now=now, retry_after=60.0) >= now
    (True, True)
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, a cap and a maximum number of attempts."""

    base: float = 5.0
    factor: float = 5.0
    cap: float = 6 * 3600.0
    max_attempts: int = 10
    #: Attempts an unexpected exception (not a provider's refusal nor a transient error) gets.
    max_unexpected: int = 3

    def __post_init__(self) -> None:
        if self.base < 0 or self.factor < 1 or self.cap < 0 or self.max_attempts < 1 or self.max_unexpected < 1:
            raise ValueError(
                "RetryPolicy needs base >= 0, factor >= 1, cap >= 0, max_attempts >= 1 and max_unexpected >= 1"
            )

    def ceiling(self, attempt: int) -> float:
        """The longest wait after the ``attempt``-th failed attempt."""
        return min(self.cap, self.base * self.factor ** max(0, attempt - 1))

    def delay(self, attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempt``-th failed attempt."""
        jittered = (rng or random).uniform(0.0, self.ceiling(attempt))
        return max(jittered, retry_after or 0.0)

    def exhausted(self, attempt: int, *, unexpected: bool = False) -> bool:
        """Whether ``attempt`` attempts are all a change gets (fewer when they met an unexpected exception)."""
        return attempt >= (min(self.max_unexpected, self.max_attempts) if unexpected else self.max_attempts)

    def next_attempt(
        self,
        attempt: int,
        *,
        now: dt.datetime,
        unexpected: bool = False,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> dt.datetime | None:
        """When to try again after the ``attempt``-th failed attempt, or None: its attempts are spent, bury it.

        Both engines decide here, so a change and an event that fail alike are treated alike.
        """
        if self.exhausted(attempt, unexpected=unexpected):
            return None
        return now + dt.timedelta(seconds=self.delay(attempt, retry_after=retry_after, rng=rng))
