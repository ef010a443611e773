"""Server-side HTML from the admin's Jinja2 templates, autoescaped; Jinja2 is the ``admin`` extra.

Jinja2 is imported when the admin is built, not when connected-objects is:
without it :func:`environment` raises a
:class:`~connected_objects.exceptions.ConfigurationError` naming the extra
(``pip install 'connected-objects[admin]'``). Autoescaping is on for every
template, so a provider's message or a payload is shown as text, never as HTML.

Example::

    >>> from connected_objects.admin.rendering import render
    >>> b"&lt;script&gt;" in render("error.html", status=400, message="<script>", base="/admin")
    True
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING
from typing import Any

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    import jinja2

__all__ = ["environment", "render", "stylesheet"]


@cache
def environment() -> jinja2.Environment:
    """The templates' environment (made once)."""
    try:
        import jinja2
    except ImportError:
        raise ConfigurationError(
            "the admin pages render with Jinja2, which is not installed: pip install 'connected-objects[admin]'"
        ) from None
    folder = files("connected_objects.admin") / "templates"
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda value: "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")
    return env


def render(name: str, **context: Any) -> bytes:
    """Template ``name`` rendered with ``context``, as UTF-8."""
    return environment().get_template(name).render(**context).encode("utf-8")


@cache
def stylesheet() -> bytes:
    """The pages' one stylesheet (served by the admin itself: the policy allows no inline style)."""
    return (files("connected_objects.admin") / "static" / "admin.css").read_bytes()
