"""``runlog ls``: one line per run, newest first, the differing arguments side by side."""

from __future__ import annotations

import sys

from ..fmt import (cut, error_text, flatten, fmt_duration, fmt_num, fmt_value, lower_is_better, printable,
                   printable_json, value_key)
from ..folder.trials import sweep_of
from .common import CliError, all_runs, newest_runs, out, settled, shown_status

NOTE_WIDTH = 40
ERROR_WIDTH = 40
ERROR_MIN = 16  # what an error keeps on a narrow terminal before argument columns go


def differing_args(runs: list[dict]) -> list[str]:
    """Argument names that take more than one value among the listed runs that have them.

    A name only some runs have (another script's) is not a difference by itself.
    """
    values: dict[str, set] = {}
    for r in runs:
        for k, v in flatten(r.get("args") or {}).items():
            values.setdefault(k, set()).add(value_key(v))  # 0 and 0.0: the same value
    return [k for k, vs in values.items() if len(vs) > 1]


def env_columns(runs: list[dict]) -> list[str]:
    """Python, host and framework versions (torch, …), when they differ among the listed runs."""
    values: dict[str, set] = {}
    for r in runs:
        for k, v in env_values(r).items():
            if v is not None:
                values.setdefault(k, set()).add(str(v))
    return [k for k, vs in values.items() if len(vs) > 1]


def env_values(r: dict) -> dict:
    fw = r.get("frameworks")
    return {"python": r.get("python"), "host": r.get("host"),
            **({k: v for k, v in fw.items()} if isinstance(fw, dict) else {})}


def select(runs: list[dict], n: int | None, status: str | None, grep: str | None,
           sort: str | None, sweep: str | None = None) -> list[dict]:
    for r in runs:
        r["shown_status"] = shown_status(r)
        if r["shown_status"] == "lost":  # its metrics and duration from what it wrote
            settled(r)
    if sweep:
        runs = [r for r in runs if r["id"] in of_sweep(runs, sweep)]
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


def of_sweep(runs: list[dict], spec: str) -> set[str]:
    """The ids of the listed runs that are trials of the sweep ``spec`` names (its id or a
    unique prefix of one)."""
    ids = {s["id"] for r in runs if (s := sweep_of(r)) is not None}
    matches = sorted(i for i in ids if i.startswith(spec))
    if spec in ids:
        matches = [spec]
    if not matches:
        raise CliError(f"no trials of a sweep {spec!r} among the runs")
    if len(matches) > 1:
        raise CliError(f"{spec!r} matches {len(matches)} sweeps: {', '.join(matches[:5])}")
    return {r["id"] for r in runs if (sweep_of(r) or {}).get("id") == matches[0]}


def _sweep_cell(r: dict) -> str:
    s = sweep_of(r)
    if s is None:
        return ""
    return s["id"] + (f" #{s['trial']}" if s.get("trial") is not None else "")


def extra_columns(runs: list[dict]) -> list[str]:
    """``sweep`` when a listed run is a sweep trial, ``error`` when one failed with an error."""
    out = []
    if any(sweep_of(r) is not None for r in runs):
        out.append("sweep")
    if any(error_text(r.get("error")) for r in runs):
        out.append("error")
    return out


def _haystack(r: dict) -> str:
    parts = [r["id"], r.get("name") or "", r.get("note") or "", r.get("notes") or "",
             " ".join(r.get("tags") or [])]
    parts += [f"{k}={fmt_value(v)}" for k, v in flatten(r.get("args") or {}).items()]
    return " ".join(parts).lower()


def rows(runs: list[dict], data: bool = False) -> tuple[list[str], list[list[str]]]:
    """The table as text: every cell one line of printable characters (``printable``),
    whichever format then shows it. ``data`` (CSV): durations in seconds, as numbers."""
    diff = differing_args(runs)
    envs = env_columns(runs)
    metric_names: dict[str, None] = {}
    for r in runs:
        metric_names.update(dict.fromkeys(r.get("metrics") or {}))
    args_shown = set(diff)
    extra = extra_columns(runs)
    header = ["id", "status", "duration", "note", *extra, *diff, *envs,
              *(f"{m} (metric)" if m in args_shown else m for m in metric_names)]
    table = []
    for r in runs:
        args = flatten(r.get("args") or {})
        note = (r.get("note") or "").replace("\n", " ")
        d = r.get("duration_s")
        duration = "" if d is None else (f"{d:g}" if data else fmt_duration(d))
        row = [r["id"], r.get("shown_status") or r.get("status") or "?", duration, note]
        row += [_sweep_cell(r) if c == "sweep" else error_text(r.get("error")) for c in extra]
        row += [fmt_value(args[k]) if k in args else "" for k in diff]
        ev = env_values(r)
        row += [str(ev.get(k) or "") for k in envs]
        ms = r.get("metrics") or {}
        row += [fmt_num(ms[m].get("last")) if m in ms else "" for m in metric_names]
        table.append([printable(c) for c in row])
    return [printable(h) for h in header], table


def ls(root: str, n: int | None = 20, status: str | None = None, grep: str | None = None,
       sort: str | None = None, fmt: str | None = None, tty: bool | None = None,
       sweep: str | None = None) -> int:
    if n is not None and n < 1:
        raise CliError(f"-n {n}: give at least 1 (or --all)")
    more = 0  # runs left out by -n
    if n is not None and not (status or grep or sort or sweep):
        # the common case reads only the end of the index
        runs = select(newest_runs(root, n), n, None, None, None)
        if len(runs) == n:
            more = max(_count_runs(root) - n, 0)
    else:
        every = all_runs(root)
        runs = select(every, n, status, grep, sort, sweep)
        if n is not None and not (status or grep or sweep):
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
    fixed = 4 + len(extra_columns(runs))
    if tty:
        _rich_table(header, table, len(differing_args(runs)) + len(env_columns(runs)), fixed)
    else:
        _plain(header, table, fixed)
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


def _plain(header: list[str], table: list[list[str]], fixed: int = 4) -> None:
    error = header.index("error") if "error" in header[4:fixed] else None
    cells = [header] + [[cut(c, NOTE_WIDTH) if i == 3 else cut(c, ERROR_WIDTH) if i == error else c
                         for i, c in enumerate(row)] for row in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    out("\n".join(lines) + "\n")


_STATUS_STYLE = {"finished": "green", "failed": "red", "killed": "red", "interrupted": "yellow",
                 "lost": "magenta", "running": "cyan"}


NOTE_MIN = 12  # what a note keeps on a narrow terminal before argument columns go


def fit_columns(header: list[str], table: list[list[str]], n_args: int,
                width: int, fixed: int = 4) -> tuple[list[int], int, int]:
    """Which columns a terminal of ``width`` shows. The id (what you type next), status,
    duration, note and metrics always; then the sweep and error columns (an error cut to
    what is left, at least ERROR_MIN) and the differing arguments while they fit, the
    rest left out (and counted) — never an id cut to look like another. Returns the
    columns, the note's width (what is left, between NOTE_MIN and NOTE_WIDTH) and the
    error's."""
    def w(i: int) -> int:
        return max(len(r[i]) for r in [header, *table]) + 2

    error = header.index("error") if "error" in header[4:fixed] else None
    args = list(range(fixed, fixed + n_args))
    always = [0, 1, 2, 3] + list(range(fixed + n_args, len(header)))
    used = sum(w(i) for i in always if i != 3) + min(w(3), NOTE_MIN + 2)
    shown = []
    for i in list(range(4, fixed)) + args:
        need = min(w(i), ERROR_MIN + 2) if i == error else w(i)
        if used + need > width:
            if i in args:
                break
            continue  # a sweep or error column that does not fit: the arguments may
        shown.append(i)
        used += need
    spare = max(width - used, 0)
    note = min(w(3) - 2, NOTE_WIDTH, max(NOTE_MIN, NOTE_MIN + spare))
    spare -= max(note - NOTE_MIN, 0)
    err = min(w(error) - 2, ERROR_WIDTH, ERROR_MIN + max(spare, 0)) if error in shown else 0
    return sorted(always + shown), max(note, len(header[3])), err


def _rich_table(header: list[str], table: list[list[str]], n_args: int, fixed: int = 4) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    keep, note_width, error_width = fit_columns(header, table, n_args, console.width, fixed)
    error = header.index("error") if "error" in header[4:fixed] else None
    t = Table(box=None, pad_edge=False, header_style="bold")
    for i in keep:
        whole = i not in (3, error)  # every column but the note and the error shows its whole value
        cut = note_width if i == 3 else error_width
        t.add_column(header[i], no_wrap=True, overflow="ellipsis" if not whole else "fold",
                     max_width=None if whole else cut,
                     min_width=max(len(r[i]) for r in [header, *table]) if whole else cut)
    for row in table:
        cells = [Text(row[i]) for i in keep]
        cells[1].stylize(_STATUS_STYLE.get(row[1], ""))
        t.add_row(*cells)
    console.print(t)
    hidden = n_args - sum(1 for i in keep if fixed <= i < fixed + n_args)
    if hidden:
        console.print(f"… {hidden} more differing argument{'s' if hidden != 1 else ''} "
                      "(widen the terminal, or --csv)", style="dim")
