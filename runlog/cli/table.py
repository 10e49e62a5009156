"""One table renderer for the commands: rich on a terminal, aligned plain text in a pipe.

A table is columns (a header, an alignment, a priority) and rows of text. On a terminal
it fits the console's width the way ``ls`` does: the essential columns (priority 0: an
id, a status, a note) are never dropped and never cut — a long value wraps instead;
shrinkable columns give up width first, then the columns of the highest priority number
are left out, and one line says which. Piped, every cell is written whole, aligned with
two spaces, so ``grep``/``awk``/``cut`` see what was recorded.

Every cell goes through ``printable``: recorded text never moves the cursor.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Callable

from ..fmt import printable

GAP = 2  # spaces between two columns, in both forms
STATUS_STYLE = {"finished": "green", "failed": "red", "killed": "red", "interrupted": "yellow",
                "lost": "magenta", "running": "cyan"}


@dataclass(frozen=True)
class Column:
    header: str = ""
    align: str = "left"  # or "right" (numbers)
    priority: int = 0  # 0: always shown; a higher number is left out sooner on a narrow terminal
    min_width: int | None = None  # may shrink to this on a terminal (cut with "…", or wrapped)
    wrap: bool = False  # on a terminal a value too long for the line wraps (never cut)
    style: Callable[[str], str | None] | None = None  # a rich style for a cell, on a terminal


def terminal():
    """A rich Console when standard output is a terminal, else None (plain text)."""
    if not sys.stdout.isatty():
        return None
    from rich.console import Console

    return Console()


def _clean(cell) -> str:
    return printable("" if cell is None else str(cell)).replace("\t", " ")


def _width(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


WRAP_MIN = 20  # a wrapping column gives up width down to this before another column goes


def _least(c: Column) -> int | None:
    return c.min_width if c.min_width is not None else (WRAP_MIN if c.wrap else None)


def fit(columns: list[Column], rows: list[list[str]], width: int,
        indent: int = 0) -> tuple[list[int], dict[int, int], int]:
    """The columns a line of ``width`` cells shows, the shrinkable ones' widths, and the
    width of the line they make (more than ``width`` only when the essential ones are).

    Shrinkable columns give up width first (down to their ``min_width``); then the
    columns of the highest priority (the rightmost of equals first) are left out.
    Essential columns stay even when they alone are wider than the line.
    """
    show_header = any(c.header for c in columns)
    natural = [max([_width(r[i]) for r in rows] + [_width(c.header) if show_header else 0])
               for i, c in enumerate(columns)]
    keep = list(range(len(columns)))
    narrow: dict[int, int] = {}

    def total() -> int:
        return indent + sum(narrow.get(i, natural[i]) for i in keep) + GAP * (len(keep) - 1)

    for i in keep:
        c = columns[i]
        if total() <= width:
            break
        least = _least(c)
        if least is not None and natural[i] > least:
            narrow[i] = max(least, natural[i] - (total() - width))
    droppable = sorted((i for i in keep if columns[i].priority > 0),
                       key=lambda i: (columns[i].priority, i), reverse=True)
    for i in droppable:
        if total() <= width:
            break
        keep.remove(i)
        narrow.pop(i, None)
    for i in keep:  # still too wide: a wrapping column takes what is left, however little
        if columns[i].wrap and total() > width:
            narrow[i] = max(4, narrow.get(i, natural[i]) - (total() - width))
    return keep, narrow, total()


def render(columns: list[Column], rows: list[list], *, console=None, indent: int = 2) -> str:
    """The table as text ending in a newline: drawn by rich for ``console`` (a terminal,
    or a ``Console(file=StringIO(), width=N)`` in a test), aligned plain text without."""
    rows = [[_clean(c) for c in r] for r in rows]
    cols = [replace(c, header=_clean(c.header)) for c in columns]
    if not rows:
        return ""
    empty = [i for i, c in enumerate(cols) if not c.header and not any(r[i] for r in rows)]
    if empty:  # a column with nothing in it takes no room
        cols = [c for i, c in enumerate(cols) if i not in empty]
        rows = [[x for i, x in enumerate(r) if i not in empty] for r in rows]
    if console is None:
        return _plain(cols, rows, indent)
    return _rich(cols, rows, console, indent)


def _plain(columns: list[Column], rows: list[list[str]], indent: int) -> str:
    show_header = any(c.header for c in columns)
    cells = ([[c.header for c in columns]] if show_header else []) + rows
    widths = [max(_width(r[i]) for r in cells) for i in range(len(columns))]
    lines = []
    for r in cells:
        parts = []
        for c, text, w in zip(columns, r, widths):
            pad = " " * (w - _width(text))
            parts.append(pad + text if c.align == "right" else text + pad)
        lines.append((" " * indent + (" " * GAP).join(parts)).rstrip())
    return "\n".join(lines) + "\n"


def _rich(columns: list[Column], rows: list[list[str]], console, indent: int) -> str:
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    keep, narrow, needed = fit(columns, rows, console.width, indent)
    show_header = any(c.header for c in columns)
    t = Table(box=None, pad_edge=False, padding=(0, GAP // 2), show_header=show_header,
              header_style="bold", expand=False)
    for i in keep:
        c = columns[i]
        whole = max([_width(r[i]) for r in rows] + [_width(c.header)])
        if c.wrap:  # never cut: a value too long for the line goes on on the next
            t.add_column(c.header, justify=c.align, overflow="fold",
                         min_width=min(whole, narrow.get(i, whole)))
        elif i in narrow:  # shrinkable: cut to what the line leaves, with "…"
            t.add_column(c.header, justify=c.align, no_wrap=True, overflow="ellipsis",
                         max_width=narrow[i], min_width=narrow[i])
        else:  # whole, always: an id cut to look like another is worse than a wide line
            t.add_column(c.header, justify=c.align, no_wrap=True, min_width=whole)
    for r in rows:
        cells = []
        for i in keep:
            text = Text(r[i])
            style = columns[i].style(r[i]) if columns[i].style else None
            if style:
                text.stylize(style)
            cells.append(text)
        t.add_row(*cells)
    hidden = [columns[i].header or f"column {i + 1}" for i in range(len(columns))
              if i not in keep and any(r[i] for r in rows)]
    if needed > console.width:
        # only when the essential columns are wider than the terminal: drawn that wide (the
        # terminal wraps the line) rather than cut
        from io import StringIO

        from rich.console import Console

        console = Console(file=StringIO(), width=needed, force_terminal=console.is_terminal,
                          color_system=console.color_system, no_color=console.no_color)
    with console.capture() as cap:
        console.print(Padding(t, (0, 0, 0, indent)) if indent else t)
        if hidden:
            console.print(" " * indent + f"… {', '.join(hidden)} not shown (a wider terminal "
                          "shows them)", style="dim", highlight=False)
    return "\n".join(ln.rstrip() for ln in cap.get().splitlines()) + "\n"
