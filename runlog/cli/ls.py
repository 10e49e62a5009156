"""``runlog ls``: one line per run, newest first, the differing arguments side by side."""

from __future__ import annotations

import sys

from ..fmt import (flatten, fmt_duration, fmt_num, fmt_value, lower_is_better, printable,
                   printable_json, value_key)
from .common import CliError, all_runs, newest_runs, out, settled, shown_status

NOTE_WIDTH = 40


def differing_args(runs: list[dict]) -> list[str]:
    """Argument names that take more than one value among the listed runs that have them.

    A name only some runs have (another script's) is not a difference by itself.
    """
    values: dict[str, set] = {}
    for r in runs:
        for k, v in flatten(r.get("args") or {}).items():
            values.setdefault(k, set()).add(value_key(v))  # 0 and 0.0: the same value
    return [k for k, vs in values.items() if len(vs) > 1]


def select(runs: list[dict], n: int | None, status: str | None, grep: str | None,
           sort: str | None) -> list[dict]:
    for r in runs:
        r["shown_status"] = shown_status(r)
        if r["shown_status"] == "lost":  # its metrics and duration from what it wrote
            settled(r)
    if status:
        wanted = {s.strip() for s in status.split(",") if s.strip()}
        runs = [r for r in runs if r["shown_status"] in wanted]
    if grep:
        g = grep.lower()
        runs = [r for r in runs if g in _haystack(r)]
    if sort:
        have = [r for r in runs if sort in (r.get("metrics") or {})]
        if not have:
            raise CliError(f"no listed run has a metric {sort!r}")
        low = lower_is_better(sort)

        def key(r):
            v = r["metrics"][sort].get("last")
            v = float("nan") if v is None else v
            return (v != v, v if low else -v)

        runs = sorted(have, key=key)
    if n is not None:
        runs = runs[:n]
    return runs


def _haystack(r: dict) -> str:
    parts = [r["id"], r.get("name") or "", r.get("note") or "", r.get("notes") or "",
             " ".join(r.get("tags") or [])]
    parts += [f"{k}={fmt_value(v)}" for k, v in flatten(r.get("args") or {}).items()]
    return " ".join(parts).lower()


def rows(runs: list[dict], data: bool = False) -> tuple[list[str], list[list[str]]]:
    """The table as text: every cell one line of printable characters (``printable``),
    whichever format then shows it. ``data`` (CSV): durations in seconds, as numbers."""
    diff = differing_args(runs)
    metric_names: dict[str, None] = {}
    for r in runs:
        metric_names.update(dict.fromkeys(r.get("metrics") or {}))
    args_shown = set(diff)
    header = ["id", "status", "duration", "note", *diff,
              *(f"{m} (metric)" if m in args_shown else m for m in metric_names)]
    table = []
    for r in runs:
        args = flatten(r.get("args") or {})
        note = (r.get("note") or "").replace("\n", " ")
        d = r.get("duration_s")
        duration = "" if d is None else (f"{d:g}" if data else fmt_duration(d))
        row = [r["id"], r.get("shown_status") or r.get("status") or "?", duration, note]
        row += [fmt_value(args[k]) if k in args else "" for k in diff]
        ms = r.get("metrics") or {}
        row += [fmt_num(ms[m].get("last")) if m in ms else "" for m in metric_names]
        table.append([printable(c) for c in row])
    return [printable(h) for h in header], table


def ls(root: str, n: int | None = 20, status: str | None = None, grep: str | None = None,
       sort: str | None = None, fmt: str | None = None, tty: bool | None = None) -> int:
    if n is not None and n < 1:
        raise CliError(f"-n {n}: give at least 1 (or --all)")
    more = 0  # runs left out by -n
    if n is not None and not (status or grep or sort):
        # the common case reads only the end of the index
        runs = select(newest_runs(root, n), n, None, None, None)
        if len(runs) == n:
            more = max(_count_runs(root) - n, 0)
    else:
        every = all_runs(root)
        runs = select(every, n, status, grep, sort)
        if n is not None and not (status or grep):
            more = max(len(every) - len(runs), 0)
    if fmt == "json":
        import json

        dumps = json.dumps  # one write: a flush per line costs 10,000 system calls
        out(printable_json("".join(dumps({k: v for k, v in r.items() if k != "dir"},
                                         ensure_ascii=False, default=str) + "\n" for r in runs)))
        return 0
    header, table = rows(runs, data=fmt == "csv")
    if fmt == "csv":
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(header)
        w.writerows(table)
        sys.stdout.flush()
        return 0
    if fmt == "md":
        esc = [[c.replace("|", "\\|") for c in row] for row in [header, *table]]
        out("| " + " | ".join(esc[0]) + " |\n")
        out("|" + "|".join("---" for _ in header) + "|\n")
        for row in esc[1:]:
            out("| " + " | ".join(row) + " |\n")
        return 0
    if not runs:
        sys.stderr.write("runlog: no runs match\n" if (status or grep) else f"runlog: no runs in {root}\n")
        return 0
    if tty is None:
        tty = sys.stdout.isatty()
    if tty:
        _rich_table(header, table, len(differing_args(runs)))
    else:
        _plain(header, table)
    if more:
        sys.stderr.write(f"runlog: … {more} more run{'s' if more != 1 else ''} "
                         "(use -n N or --all)\n")
    return 0


def _count_runs(root: str) -> int:
    """How many folders of the log directory hold a run (one stat each, no parsing)."""
    import os

    from ..folder.index import run_ids
    from ..folder.layout import LogDir

    d = LogDir(root)
    return sum(1 for i in run_ids(root) if os.path.exists(d.run(i).record))


def _plain(header: list[str], table: list[list[str]]) -> None:
    cells = [header] + [[_cut(c, NOTE_WIDTH) if i == 3 else c for i, c in enumerate(row)]
                        for row in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    out("\n".join(lines) + "\n")


def _cut(s: str, width: int) -> str:
    return s if len(s) <= width else s[: width - 1] + "…"


_STATUS_STYLE = {"finished": "green", "failed": "red", "killed": "red", "interrupted": "yellow",
                 "lost": "magenta", "running": "cyan"}


NOTE_MIN = 12  # what a note keeps on a narrow terminal before argument columns go


def fit_columns(header: list[str], table: list[list[str]], n_args: int,
                width: int) -> tuple[list[int], int]:
    """Which columns a terminal of ``width`` shows. The id (what you type next), status,
    duration, note and metrics always; the differing arguments while they fit, the
    rest left out (and counted) — never an id cut to look like another. Returns the
    columns and the note's width (what is left, between NOTE_MIN and NOTE_WIDTH)."""
    def w(i: int) -> int:
        return max(len(r[i]) for r in [header, *table]) + 2

    args = list(range(4, 4 + n_args))
    always = [0, 1, 2, 3] + list(range(4 + n_args, len(header)))
    used = sum(w(i) for i in always if i != 3) + min(w(3), NOTE_MIN + 2)
    shown = []
    for i in args:
        if used + w(i) > width:
            break
        shown.append(i)
        used += w(i)
    note = min(w(3) - 2, NOTE_WIDTH, max(NOTE_MIN, width - (used - min(w(3), NOTE_MIN + 2)) - 2))
    return sorted(always + shown), max(note, len(header[3]))


def _rich_table(header: list[str], table: list[list[str]], n_args: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    keep, note_width = fit_columns(header, table, n_args, console.width)
    t = Table(box=None, pad_edge=False, header_style="bold")
    for i in keep:
        whole = i != 3  # every column but the note shows its whole value
        t.add_column(header[i], no_wrap=True, overflow="ellipsis" if not whole else "fold",
                     max_width=note_width if i == 3 else None,
                     min_width=max(len(r[i]) for r in [header, *table]) if whole else note_width)
    for row in table:
        cells = [Text(row[i]) for i in keep]
        cells[1].stylize(_STATUS_STYLE.get(row[1], ""))
        t.add_row(*cells)
    console.print(t)
    hidden = n_args - sum(1 for i in keep if 4 <= i < 4 + n_args)
    if hidden:
        console.print(f"… {hidden} more differing argument{'s' if hidden != 1 else ''} "
                      "(widen the terminal, or --csv)", style="dim")
