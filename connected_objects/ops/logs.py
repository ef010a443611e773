"""Log output for workers and the CLI: plain text, or one JSON object per line.

``connected-objects worker --log-format json`` writes each record to stderr as
one JSON object (``time``, ``level``, ``logger``, ``message``, ``process``,
``exc_info`` with the traceback when there is one, and the record's ``co_*``
extras without their prefix, such as ``scope`` and ``change``), ready for a
log shipper. Both formats pass every record through the
:class:`~connected_objects.util.redaction.RedactingFilter` on the handler itself, so
no credential is written whichever logger a line came from.

Example::

    >>> import json, logging
    >>> from connected_objects.ops.logs import JsonFormatter
    >>> record = logging.LogRecord("connected_objects.worker", logging.WARNING, __file__, 1,
    ...                            "push failed: Authorization: Bearer at-0123456789", None, None)
    >>> record.co_scope = "xero/production/t-1"
    >>> item = json.loads(JsonFormatter().format(record))
    >>> item["level"], item["message"], item["scope"]
    ('WARNING', 'push failed: Authorization: [redacted]', 'xero/production/t-1')
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any
from typing import Literal

from ..util.redaction import RedactingFilter
from ..util.redaction import redact

__all__ = ["FORMATS", "TEXT_FORMAT", "JsonFormatter", "configure", "reset"]

#: The formats :func:`configure` takes.
FORMATS = ("text", "json")
#: The layout of a text line.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, every text redacted; ``co_*`` record attributes become fields."""

    def format(self, record: logging.LogRecord) -> str:
        item: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "process": record.process,
        }
        for key, value in record.__dict__.items():
            if key.startswith("co_"):
                item[key[3:]] = redact(value) if isinstance(value, str) else value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            item["exc_info"] = redact(record.exc_text)
        if record.stack_info:
            item["stack_info"] = redact(record.stack_info)
        return json.dumps(item, default=str)


def configure(
    fmt: Literal["text", "json"] | str = "text",
    level: str | int = "INFO",
    *,
    quiet: tuple[str, ...] = ("httpx", "httpcore"),
) -> logging.Handler:
    """Send log records at ``level`` and above to stderr in ``fmt``; returns the handler.

    Replaces the handler an earlier call installed (other handlers of the root logger stay).
    The ``quiet`` loggers (a line per request) log warnings only, unless ``level`` is DEBUG.
    :func:`reset` undoes it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        reset(old)
    handler = _Handler([(root, root.level), *((logging.getLogger(n), logging.getLogger(n).level) for n in quiet)])
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)
    return handler


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Our stderr handler, remembering the levels it changed."""

    def __init__(self, previous: list[tuple[logging.Logger, int]]) -> None:
        super().__init__()
        self.previous = previous


def reset(handler: logging.Handler) -> None:
    """Remove a handler :func:`configure` installed and give back the levels it changed."""
    root = logging.getLogger()
    root.removeHandler(handler)
    for logger, level in getattr(handler, "previous", []):
        logger.setLevel(level)
