"""One table renderer for the commands: rich on a terminal, aligned plain text in a pipe.

A table is columns (a header, an alignment, a priority) and rows of text. On a terminal
it fits the console's width: the essential columns (priority 0: an id, a status, a note)
are never dropped and never cut — a long value wraps instead; shrinkable columns give up
width first, then the columns of the highest priority number are left out (the
rightmost of equals first), and one line says which (or what ``left_out`` says). A
``firm`` column (``ls``'s note) keeps its width while any column can still go. Piped,
every cell is written whole, aligned with two spaces, so ``grep``/``awk``/``cut`` see
what was recorded.

Every cell goes through ``printable``: recorded text never moves the cursor.
"""

from __future__ import annotations

import sys

from ..fmt import printable

TYPE_CHECKING = False  # typing and dataclasses (inspect, ast) were ~9 ms of every table's start
if TYPE_CHECKING:
    from typing import Callable

GAP = 2  # spaces between two columns, in both forms
STATUS_STYLE = {"finished": "green", "failed": "red", "killed": "red", "interrupted": "yellow",
                "pruned": "yellow", "lost": "magenta", "running": "cyan"}


class Column:
    """A column's header and how it behaves (never changed once made: ``with_header`` copies)."""

    def __init__(self, header: str = "", align: str = "left", priority: int = 0,
                 min_width: int | None = None, wrap: bool = False,
                 style: Callable[[str], str | None] | None = None, firm: bool = False):
        self.header = header
        self.align = align  # or "right" (numbers)
        self.priority = priority  # 0: always shown; higher: left out sooner on a narrow terminal
        self.min_width = min_width  # may shrink to this on a terminal (cut with "…", or wrapped)
        self.wrap = wrap  # on a terminal a value too long for the line wraps (never cut)
        self.style = style  # a rich style for a cell, on a terminal
        self.firm = firm  # gives up width (to min_width) only when no droppable column is left

    def with_header(self, header: str) -> "Column":
        return Column(header, self.align, self.priority, self.min_width, self.wrap, self.style,
                      self.firm)

    def __repr__(self) -> str:
        return f"Column({self.header!r}, {self.align!r}, priority={self.priority})"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of text cells (``|`` escaped), as ``ls --md`` prints it."""
    esc = [[c.replace("|", "\\|") for c in row] for row in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in esc[1:]]
    return "\n".join(lines) + "\n"


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

    In turn, while the line is too wide: shrinkable columns give up width (down to their
    ``min_width``); the columns of the highest priority (the rightmost of equals first)
    are left out; ``firm`` columns give up width; wrapping ones take what is left. Then
    a column left out comes back if it fits in the room the others left (the lowest
    priority first, left to right; the first of a priority that does not fit keeps the
    rest of that priority out, so of equals the leftmost are shown), and shrunk columns
    take back what is still spare. Essential columns stay even when they alone are
    wider than the line.
    """
    show_header = any(c.header for c in columns)
    natural = [max([_width(r[i]) for r in rows] + [_width(c.header) if show_header else 0])
               for i, c in enumerate(columns)]
    keep = list(range(len(columns)))
    narrow: dict[int, int] = {}

    def total() -> int:
        return indent + sum(narrow.get(i, natural[i]) for i in keep) + GAP * (len(keep) - 1)

    def shrink(which: list[int]) -> None:
        for i in which:
            least = _least(columns[i])
            if total() > width and least is not None and natural[i] > least:
                narrow[i] = max(least, narrow.get(i, natural[i]) - (total() - width))

    shrink([i for i in keep if not columns[i].firm])
    gone = []
    for i in sorted((i for i in keep if columns[i].priority > 0),
                    key=lambda i: (columns[i].priority, i), reverse=True):
        if total() <= width:
            break
        keep.remove(i)
        gone.append(i)
    shrink([i for i in keep if columns[i].firm])
    for i in keep:  # still too wide: a wrapping column takes what is left, however little
        if columns[i].wrap and total() > width:
            narrow[i] = max(4, narrow.get(i, natural[i]) - (total() - width))
    closed: set[int] = set()
    for i in sorted(gone, key=lambda i: (columns[i].priority, i)):
        least = _least(columns[i])
        need = natural[i] if least is None else min(natural[i], least)
        if columns[i].priority in closed or total() + GAP + need > width:
            closed.add(columns[i].priority)
            continue
        keep.append(i)
        keep.sort()
        if need < natural[i]:
            narrow[i] = need
    for i in sorted(narrow):  # what is still spare goes back to the shrunk columns
        spare = width - total()
        if spare > 0:
            narrow[i] = min(natural[i], narrow[i] + spare)
        if narrow[i] >= natural[i]:
            del narrow[i]
    return keep, narrow, total()


def render(columns: list[Column], rows: list[list], *, console=None, indent: int = 2,
           left_out: Callable[[list[Column]], str | None] | None = None) -> str:
    """The table as text ending in a newline: drawn by rich for ``console`` (a terminal,
    or a ``Console(file=StringIO(), width=N)`` in a test), aligned plain text without.

    ``left_out``: the line under a terminal's table that says which columns (that hold
    something) it leaves out, from those columns; None for no line. By default it names
    them."""
    rows = [[_clean(c) for c in r] for r in rows]
    cols = [c.with_header(_clean(c.header)) for c in columns]
    if not rows:
        return ""
    empty = [i for i, c in enumerate(cols) if not c.header and not any(r[i] for r in rows)]
    if empty:  # a column with nothing in it takes no room
        cols = [c for i, c in enumerate(cols) if i not in empty]
        rows = [[x for i, x in enumerate(r) if i not in empty] for r in rows]
    if console is None:
        return _plain(cols, rows, indent)
    return _rich(cols, rows, console, indent, left_out)


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


def _rich(columns: list[Column], rows: list[list[str]], console, indent: int,
          left_out: Callable[[list[Column]], str | None] | None) -> str:
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
    hidden = [i for i in range(len(columns)) if i not in keep and any(r[i] for r in rows)]
    if not hidden:
        said = None
    elif left_out is not None:
        said = left_out([columns[i] for i in hidden])
    else:
        said = (f"… {', '.join(columns[i].header or f'column {i + 1}' for i in hidden)} not shown "
                "(a wider terminal shows them)")
    if needed > console.width:
        # only when the essential columns are wider than the terminal: drawn that wide (the
        # terminal wraps the line) rather than cut
        from io import StringIO

        from rich.console import Console

        console = Console(file=StringIO(), width=needed, force_terminal=console.is_terminal,
                          color_system=console.color_system, no_color=console.no_color)
    with console.capture() as cap:
        console.print(Padding(t, (0, 0, 0, indent)) if indent else t)
        if said:
            console.print(" " * indent + said, style="dim", highlight=False)
    # no trailing blanks, also where a style's end follows them (a padded header)
    import re

    return re.sub(r" +((?:\x1b\[[0-9;]*m)*)$", r"\1", cap.get().rstrip("\n"), flags=re.M) + "\n"
