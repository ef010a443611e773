"""Reading the admin's query strings and form bodies, strictly.

Values come from ``application/x-www-form-urlencoded`` text (a query string
or a POST body). :class:`Form` answers single values, lists and typed values,
and raises :class:`~connected_objects.web.core.HTTPError` 400 naming the field
for anything malformed, so a handler never acts on half-read input.

Example::

    >>> from connected_objects.admin.forms import Form
    >>> form = Form.parse("id=3&id=4&scope=xero/production/t-1&after=")
    >>> form.ids("id"), str(form.scope("scope")), form.integer("after")
    ([3, 4], 'xero/production/t-1', None)
"""

from __future__ import annotations

from urllib.parse import parse_qs

from ..scope import Scope
from ..web.core import HTTPError
from ..web.core import Request

__all__ = ["MAX_IDS", "Form"]

#: The most ids one form may name (the pages show far fewer).
MAX_IDS = 1000


class Form:
    """Parsed ``name=value`` pairs."""

    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values

    @classmethod
    def parse(cls, text: str) -> Form:
        try:
            values = parse_qs(text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_IDS + 20)
        except ValueError as exc:
            raise HTTPError(400, f"unreadable form: {exc}") from None
        return cls(values)

    @classmethod
    def of_body(cls, request: Request) -> Form:
        kind = (request.header("content-type") or "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise HTTPError(415, "send the form as application/x-www-form-urlencoded")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPError(400, "the form is not UTF-8") from None
        return cls.parse(text)

    @classmethod
    def of_query(cls, request: Request) -> Form:
        return cls.parse(request.query)

    def text(self, name: str) -> str | None:
        """The field's value, stripped (None when absent or blank)."""
        found = self._values.get(name)
        value = found[-1].strip() if found else ""
        return value or None

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()) or len(value) > 18:
            raise HTTPError(400, f"{name} must be a whole number, not {value[:40]!r}")
        return int(value)

    def ids(self, name: str) -> list[int]:
        values = [v.strip() for v in self._values.get(name, []) if v.strip()]
        if len(values) > MAX_IDS:
            raise HTTPError(400, f"at most {MAX_IDS} {name} values at once")
        if any(not (v.isascii() and v.isdigit()) or len(v) > 18 for v in values):
            raise HTTPError(400, f"every {name} must be a whole number")
        return sorted({int(v) for v in values})

    def scope(self, name: str) -> Scope | None:
        value = self.text(name)
        if value is None:
            return None
        parts = value.split("/", 2)
        if len(parts) != 3:
            raise HTTPError(400, f"{name} must be provider/marketplace/account, not {value[:80]!r}")
        try:
            return Scope(*parts)
        except ValueError as exc:
            raise HTTPError(400, f"{name}: {exc}") from None
