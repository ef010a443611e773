"""Values that cross the boundary: JSON that keeps money exact, and remote values back to column types.

Applications store money in ``Numeric`` columns (:class:`~decimal.Decimal`),
dates, timezone-aware datetimes, UUIDs and enums. The remote APIs speak JSON.
This module is the one place where the two meet:

- :func:`dumps` writes a payload as JSON bytes. A ``Decimal`` becomes a JSON
  number with exactly its digits (``Decimal("12.30")`` is written ``12.30``:
  never through a float); a ``date`` is ``YYYY-MM-DD``; a ``datetime`` is ISO
  8601 (with its offset when it has one); a ``UUID`` its canonical string; an
  ``Enum`` its value. These are the forms QuickBooks Online, Xero and Connec!
  document for request bodies. ``NaN`` and infinities are refused: no API
  takes them.
- :func:`loads` reads JSON with every non-integer number as a ``Decimal``, so
  an amount arrives with the digits the provider sent.
- :func:`to_column` (and :func:`converter`, the same for many values of one
  column) turns a decoded remote value into what a mapped column
  holds: a ``Decimal`` for ``Numeric``, a ``float`` for ``Float``, a ``date``
  from ``"2026-11-30"``, an aware ``datetime`` from ISO 8601 or the
  ``/Date(1573755038314+0000)/`` form Xero uses, a ``UUID``, an enum member by
  value. The applier calls it for every mapped column, so a mapping returns
  remote values as they are.

Example::

    >>> import datetime as dt, enum, uuid
    >>> from decimal import Decimal
    >>> from connected_objects.util.values import dumps, loads
    >>> class Status(enum.Enum):
    ...     OPEN = "open"
    >>> dumps({"total": Decimal("1234567890.12"), "due": dt.date(2026, 12, 31), "status": Status.OPEN})
    b'{"total":1234567890.12,"due":"2026-12-31","status":"open"}'
    >>> loads(b'{"TotalAmt": 0.10, "Qty": 3}')
    {'TotalAmt': Decimal('0.10'), 'Qty': 3}

and back into a column's type::

    >>> from sqlalchemy import Date, Numeric
    >>> from connected_objects.util.values import to_column
    >>> to_column(Numeric(12, 2), 19.99)
    Decimal('19.99')
    >>> to_column(Date(), "2026-12-31")
    datetime.date(2026, 12, 31)
    >>> from connected_objects.util.values import converter
    >>> converter(Numeric(12, 2))(19.99)
    Decimal('19.99')
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
import secrets
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import types as sqltypes

__all__ = ["converter", "dumps", "encode", "loads", "parse_datetime", "to_column"]

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def encode(value: Any) -> Any:
    """One non-JSON value in its JSON form (a ``Decimal`` is left as it is: :func:`dumps` writes it).

    :raises TypeError: for a value no provider format covers, naming its type.
    """
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):  # before date: a datetime is a date
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        raise TypeError("bytes cannot be sent as JSON; decode or base64-encode them in the mapping")
    raise TypeError(
        f"Object of type {type(value).__name__} cannot be sent as JSON; convert it in the mapping's to_remote"
    )


def dumps(payload: Any) -> bytes:
    """``payload`` as compact JSON bytes, decimals exact (see the module docstring)."""
    token = ""
    exact: list[str] = []

    def default(value: Any) -> Any:
        nonlocal token
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"{value} is not a number any API accepts; store a finite amount")
            if not token:
                token = secrets.token_hex(8)
            exact.append(str(value))
            return f"\x00{token}:{len(exact) - 1}\x00"
        return encode(value)

    text = json.dumps(payload, default=default, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if exact:  # each placeholder string becomes its number, digits as stored
        marker = re.compile(r'"\\u0000' + token + r':(\d+)\\u0000"')
        text = marker.sub(lambda found: exact[int(found.group(1))], text)
    return text.encode()


def loads(body: bytes | str) -> Any:
    """JSON with non-integer numbers as ``Decimal``."""
    return json.loads(body, parse_float=Decimal)


def parse_datetime(value: Any) -> dt.datetime | None:
    """An ISO 8601 or ``/Date(ms±hhmm)/`` timestamp as a datetime (aware when the text says its zone)."""
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        return None
    found = _MS_DATE.match(value.strip())
    if found:  # milliseconds since the epoch in UTC; the offset only says where it was shown
        return _EPOCH + dt.timedelta(milliseconds=int(found.group(1)))
    try:
        return dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


def to_column(column_type: Any, value: Any) -> Any:
    """``value`` (as decoded from a remote payload) converted for a column of ``column_type``.

    Values of the right type, ``None`` and types it does not know pass through.

    :raises ValueError: when the text cannot be read as the column's type, naming both.
    """
    if value is None:
        return None
    kind = _impl(column_type)
    if isinstance(kind, sqltypes.Enum) and kind.enum_class is not None:
        return value if isinstance(value, kind.enum_class) else kind.enum_class(value)
    if isinstance(kind, sqltypes.Boolean) or isinstance(value, bool):
        return value
    if isinstance(kind, sqltypes.Float):
        return float(value)
    if isinstance(kind, sqltypes.Numeric):
        return value if isinstance(value, Decimal) else Decimal(str(value))
    if isinstance(kind, sqltypes.Integer):
        return value if isinstance(value, int) else int(Decimal(str(value)))
    if isinstance(kind, sqltypes.DateTime):
        when = parse_datetime(value)
        if when is None:
            raise ValueError(f"{value!r} is not a date and time (ISO 8601)")
        return when
    if isinstance(kind, sqltypes.Date):
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        when = parse_datetime(value)
        if when is None:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")
        return when.date()
    if isinstance(kind, sqltypes.Uuid):
        if isinstance(value, uuid.UUID) or not kind.as_uuid:
            return value
        return uuid.UUID(str(value))
    if isinstance(kind, sqltypes.String) and isinstance(value, (Decimal, int, float)):
        return str(value)
    return value


def _impl(column_type: Any) -> Any:
    kind = column_type.type if hasattr(column_type, "type") else column_type
    if isinstance(kind, sqltypes.TypeDecorator):
        kind = kind.impl_instance if hasattr(kind, "impl_instance") else kind.impl
    return kind


def converter(column_type: Any) -> Callable[[Any], Any] | None:
    """:func:`to_column` for one column, its type looked at once: a function of a value that is not None,
    or None where every value passes through as it is."""
    kind = _impl(column_type)
    if isinstance(kind, sqltypes.Enum) and kind.enum_class is not None:
        members = kind.enum_class
        return lambda value: value if isinstance(value, members) else members(value)
    if isinstance(kind, sqltypes.Boolean):
        return None
    if isinstance(kind, sqltypes.Float):
        return lambda value: value if value.__class__ is float or isinstance(value, bool) else float(value)
    if isinstance(kind, sqltypes.Numeric):
        return lambda value: value if isinstance(value, (Decimal, bool)) else Decimal(str(value))
    if isinstance(kind, sqltypes.Integer):
        return lambda value: value if isinstance(value, int) else int(Decimal(str(value)))
    if isinstance(kind, (sqltypes.DateTime, sqltypes.Date, sqltypes.Uuid)):
        return lambda value: to_column(kind, value)
    if isinstance(kind, sqltypes.String):
        return lambda value: (
            str(value)
            if value.__class__ is not str and isinstance(value, (Decimal, int, float)) and not isinstance(value, bool)
            else value
        )
    return None
