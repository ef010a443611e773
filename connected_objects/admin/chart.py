"""A chart drawn on the server: pushes and applies per minute as an SVG, no script, no inline style.

The overview draws the last day of the history (:func:`connected_objects.store.history.activity`)
with :func:`activity_svg`: two lines, pushes and applies per bucket, over a time axis with hour ticks
and a scale. The SVG uses presentation attributes only (``stroke``, ``fill``), which the admin's
Content-Security-Policy allows (it forbids inline ``style`` and every script). Numbers and labels
are made here from numbers and datetimes, never from user text, so nothing needs escaping beyond
what Jinja2 does anyway (the template marks the SVG safe).

Example::

    >>> import datetime as dt
    >>> from connected_objects.admin.chart import Point, activity_svg
    >>> t0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.timezone.utc)
    >>> points = [Point(t0 + dt.timedelta(minutes=i), i % 3, 1) for i in range(60)]
    >>> svg = activity_svg(points, width=600, height=160)
    >>> svg.startswith("<svg") and svg.count("<polyline") == 2 and "pushes" in svg
    True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["APPLY_COLOUR", "PUSH_COLOUR", "Point", "activity_svg"]

PUSH_COLOUR = "#1f6feb"
APPLY_COLOUR = "#d97706"
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 44, 12, 22, 26


class Point(NamedTuple):
    """One bucket: when it starts, and how many pushes and applies it holds."""

    start: dt.datetime
    pushes: int
    applies: int


def _nice(top: int) -> int:
    """The smallest of 1, 2, 5 times a power of ten at or above ``top`` (at least 1): the scale's top."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= top:
                return step * scale
        scale *= 10


def activity_svg(points: Sequence[Point], *, width: int = 900, height: int = 200, title: str = "") -> str:
    """``points`` as two lines (pushes, applies) in an SVG of ``width`` by ``height`` pixels."""
    plot_w = width - _MARGIN_LEFT - _MARGIN_RIGHT
    plot_h = height - _MARGIN_TOP - _MARGIN_BOTTOM
    top = _nice(max((max(p.pushes, p.applies) for p in points), default=0))
    n = max(len(points) - 1, 1)

    def x(i: int) -> float:
        return _MARGIN_LEFT + plot_w * i / n

    def y(value: int) -> float:
        return _MARGIN_TOP + plot_h * (1 - value / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f"<title>{title or 'Pushes and applies per minute'}</title>",
        f'<line x1="{_MARGIN_LEFT}" y1="{y(0):.1f}" x2="{width - _MARGIN_RIGHT}" y2="{y(0):.1f}" stroke="#999"/>',
        f'<line x1="{_MARGIN_LEFT}" y1="{_MARGIN_TOP}" x2="{_MARGIN_LEFT}" y2="{y(0):.1f}" stroke="#999"/>',
        f'<text x="{_MARGIN_LEFT - 6}" y="{_MARGIN_TOP + 4}" text-anchor="end" font-size="11">{top}</text>',
        f'<text x="{_MARGIN_LEFT - 6}" y="{y(0) + 4:.1f}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, p in enumerate(points):  # a tick and a label at each whole hour (every third when a day is shown)
        if p.start.minute == 0 and (len(points) <= 360 or p.start.hour % 3 == 0):
            parts.append(f'<line x1="{x(i):.1f}" y1="{y(0):.1f}" x2="{x(i):.1f}" y2="{y(0) + 4:.1f}" stroke="#999"/>')
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="middle" font-size="11">{p.start:%H:%M}</text>'
            )
    for name, colour, values in (
        ("pushes", PUSH_COLOUR, [p.pushes for p in points]),
        ("applies", APPLY_COLOUR, [p.applies for p in points]),
    ):
        line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline class="{name}" fill="none" stroke="{colour}" stroke-width="1.5" points="{line}"/>')
    legend_x = width - _MARGIN_RIGHT - 220
    for k, (name, colour, total) in enumerate(
        (
            ("pushes", PUSH_COLOUR, sum(p.pushes for p in points)),
            ("applies", APPLY_COLOUR, sum(p.applies for p in points)),
        )
    ):
        lx = legend_x + 110 * k
        parts.append(f'<rect x="{lx}" y="6" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="15" font-size="11">{name} {total}</text>')
    parts.append("</svg>")
    return "".join(parts)
