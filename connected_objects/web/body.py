"""The one bounded JSON reader every inbound route shares.

A webhook body is the sender's until proven otherwise, and a valid signature
only proves who sent it, not that it is sane. :func:`read_json` refuses, with
:class:`UnreadableBody` (the web core answers ``400`` with its message, which
never quotes the body):

- a body longer than ``max_bytes``;
- JSON nested deeper than ``max_depth``, found *before* :func:`json.loads`
  runs by one linear, non-recursive scan that counts brackets outside strings
  (so the parser's recursion is never reached, whatever the depth);
- anything that is not strict JSON: invalid UTF-8, ``NaN``/``Infinity``,
  a number too large to be finite, an integer past Python's digit limit;
- strings holding a NUL or an unpaired surrogate, which databases refuse to
  store (PostgreSQL text, SQLite's UTF-8 encoder).

Example::

    >>> from connected_objects.web.body import read_json
    >>> read_json(b'{"events": [{"id": "1"}]}')
    {'events': [{'id': '1'}]}
    >>> read_json(b"[" * 100_000)
    Traceback (most recent call last):
    ...
    connected_objects.web.body.UnreadableBody: the body nests JSON deeper than 64 levels
    >>> read_json(b'{"n": 1e999}')
    Traceback (most recent call last):
    ...
    connected_objects.web.body.UnreadableBody: the body is not JSON
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["DEFAULT_MAX_BODY", "MAX_DEPTH", "UnreadableBody", "read_json"]

#: Bodies larger than this are refused (1 MiB); the web core uses the same limit (413).
DEFAULT_MAX_BODY = 1024 * 1024
#: The deepest JSON nesting accepted. Real deliveries nest fewer than ten levels.
MAX_DEPTH = 64

_SPECIAL = re.compile(rb'["\[\]{}]')
# The rest of a JSON string after its opening quote. Unambiguous (each byte is consumed one way),
# so a missing closing quote costs one linear pass, never backtracking blow-up.
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class UnreadableBody(ValueError):
    """A request body :func:`read_json` refuses; the message is generic and safe to send back."""


def read_json(data: bytes, *, max_bytes: int = DEFAULT_MAX_BODY, max_depth: int = MAX_DEPTH) -> Any:
    """``data`` as a JSON value, or :class:`UnreadableBody` saying why not (see the module docstring)."""
    if len(data) > max_bytes:
        raise UnreadableBody(f"the body is larger than {max_bytes} bytes")
    if _deeper_than(data, max_depth):
        raise UnreadableBody(f"the body nests JSON deeper than {max_depth} levels")
    try:
        value = json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UnreadableBody("the body is not JSON") from None
    if not _storable(value):
        raise UnreadableBody("the body holds a NUL character or an unpaired surrogate")
    return value


def _deeper_than(data: bytes, limit: int) -> bool:
    """Whether JSON parsing ``data`` would go more than ``limit`` levels deep (linear, no recursion).

    The scan agrees with the parser on every byte the parser would read: at a
    stray closer or an unterminated string the parser stops with an error, so
    the scan may stop there too.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    position = 0
    while True:
        found = _SPECIAL.search(data, position)
        if found is None:
            return False
        byte = data[found.start()]
        position = found.end()
        if byte == 0x22:  # a string: skip to its closing quote
            rest = _STRING_REST.match(data, position)
            if rest is None:
                return False
            position = rest.end()
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
            if depth < 0:
                return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _storable(value: Any) -> bool:
    """No string (key or value) anywhere in ``value`` holds a NUL or a lone surrogate (iterative)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True
