"""Turning HTTP outcomes into the error tree, for provider clients.

Providers call :func:`raise_for_response` on every response and wrap
transport failures with :func:`transport_error`, so the dispatcher sees one
vocabulary: :class:`~connected_objects.exceptions.RetryableError` (timeouts,
resets, 5xx, 429 with its ``Retry-After``), :class:`~connected_objects.exceptions.ConflictError`
(409/412) and :class:`~connected_objects.exceptions.PermanentError` (other 4xx).
An error body is quoted (its first 500 characters) only after
:func:`~connected_objects.util.redaction.redact` has removed what it echoes of our
request: headers, tokens, secrets.

Example::

    >>> import httpx
    >>> from connected_objects.util.http import raise_for_response
    >>> from connected_objects.exceptions import RetryableError
    >>> response = httpx.Response(429, headers={"Retry-After": "7"}, text="slow down")
    >>> try:
    ...     raise_for_response(response)
    ... except RetryableError as err:
    ...     print(err.status, err.retry_after)
    429 7.0
"""

from __future__ import annotations

import datetime as dt
import json
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ..exceptions import ConflictError
from ..exceptions import PermanentError
from ..exceptions import RemoteError
from ..exceptions import RetryableError
from .redaction import redact
from .values import loads

__all__ = ["json_body", "raise_for_response", "retry_after", "transport_error"]


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta or HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


#: Characters of a remote error body kept in a message (after redaction).
DETAIL_LIMIT = 500


def _detail(response: httpx.Response) -> str:
    """The start of an error body, redacted *before* it is cut, so no clipped token half survives."""
    text = redact(response.text).strip().replace("\n", " ")
    return text[:DETAIL_LIMIT] or response.reason_phrase


def raise_for_response(response: httpx.Response, *, what: str = "request") -> None:
    """Raise the matching :class:`~connected_objects.exceptions.RemoteError` for a non-2xx response."""
    status = response.status_code
    if status < 400:
        return
    message = f"{what} failed with HTTP {status}: {_detail(response)}"
    if status == 429 or status >= 500 or status == 408:
        raise RetryableError(message, status=status, retry_after=retry_after(response))
    if status in (409, 412):
        raise ConflictError(message, status=status)
    raise PermanentError(message, status=status)


def transport_error(exc: httpx.HTTPError, *, what: str = "request") -> RemoteError:
    """A retryable error for a timeout, reset or other transport failure (never quoting headers)."""
    return RetryableError(redact(f"{what} failed: {type(exc).__name__}: {exc}"))


def json_body(response: httpx.Response, *, what: str = "request") -> Any:
    """The decoded JSON of a successful response (decimals exact); a cut-off or garbled body is retryable."""
    try:
        return loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RetryableError(
            f"{what} returned HTTP {response.status_code} with a body that is not JSON: {exc}",
            status=response.status_code,
        ) from exc
