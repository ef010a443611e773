"""Tables the CLI prints: side by side when they fit the terminal, one record per block when not.

A table is never cut to fit. A terminal too narrow for its columns (80 columns, or
a pipe, which rich treats as 80 unless ``COLUMNS`` says otherwise) gets each row as
a block instead, the first column as the block's heading and one ``name  value``
line per other column, each value whole (a long one runs on rather than losing its
end). Scripts read ``--json``, which every listing command has; these layouts are
for people.

Example::

    >>> from rich.console import Console
    >>> from connected_objects.cli.tables import Listing
    >>> listing = Listing("connected-objects status", ("scope", "connection", "pending"))
    >>> listing.add("xero/production/0b9c4c51-5c5a-4c2e-a6f3-9c6d3b1b9f10", "active", "3")
    >>> listing.print(Console(width=40, color_system=None))
    connected-objects status
    <BLANKLINE>
    xero/production/0b9c4c51-5c5a-4c2e-a6f3-9c6d3b1b9f10
      connection  active
      pending     3
    >>> listing.width()  # what it needs side by side: 80 columns would do
    79
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

__all__ = ["Listing"]

#: What a table adds around its cells: one border and two spaces of padding per column, one border more.
_EDGE = 3


class Listing:
    """Rows of text under named columns, printed whole whatever the terminal's width."""

    def __init__(self, title: str, columns: Sequence[str]) -> None:
        self.title = title
        self.columns = tuple(columns)
        self.rows: list[tuple[str, ...]] = []

    def add(self, *cells: str) -> None:
        """Add one row: one text per column."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(tuple(cells))

    def width(self) -> int:
        """The terminal width the side-by-side table needs to show every cell whole."""
        widest = [max([len(c)] + [_longest_line(row[i]) for row in self.rows]) for i, c in enumerate(self.columns)]
        return sum(widest) + _EDGE * len(widest) + 1

    def print(self, console: Console) -> None:
        """Print as a table if it fits ``console.width``, else as one block per row; no rows is one line."""
        if not self.rows:  # not an empty box of headers
            console.print(f"{self.title}: none", markup=False, highlight=False, soft_wrap=True)
            return
        if self.width() <= console.width:
            table = Table(title=self.title)
            for col in self.columns:
                table.add_column(col, overflow="fold")
            for row in self.rows:
                table.add_row(*row)
            console.print(table)
            return
        label = max(len(c) for c in self.columns[1:]) if len(self.columns) > 1 else 0
        lines = [self.title]
        for row in self.rows:
            lines.append("")
            lines.append(row[0])
            pairs = zip(self.columns[1:], row[1:], strict=True)
            lines.extend(f"  {name.ljust(label)}  {value}" for name, value in pairs)
        for line in lines:
            # soft_wrap: a long value runs on to the next line whole, never folded or ellipsised by rich
            console.print(line, markup=False, highlight=False, soft_wrap=True)


def _longest_line(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)
