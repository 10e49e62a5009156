"""``runlog ls``: one line per run, newest first, the differing arguments side by side."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from itertools import islice

from ..fmt import (cut, error_text, flatten, fmt_duration, fmt_num, fmt_value, lower_is_better,
                   printable, printable_json, value_key)
from ..folder.index import folders
from ..folder.layout import LogDir, RunFolder
from ..folder.trials import sweep_of
from .common import CliError, check_root, out, settled, shown_status, stream_runs

NOTE_WIDTH = 40
ERROR_WIDTH = 40
ERROR_MIN = 16  # what an error keeps on a narrow terminal before argument columns go


class Columns:
    """The columns that depend on every listed run, gathered one run at a time: the
    arguments that differ (two values seen are enough to know), the environment facts
    that differ (Python, host, framework versions), whether a sweep or an error column is
    needed, and the metric names."""

    def __init__(self):
        self.values: dict[str, set] = {}
        self.env: dict[str, set] = {}
        self.metrics: dict[str, None] = {}
        self.sweep = self.error = False

    def add(self, r: dict) -> None:
        for k, v in flatten(r.get("args") or {}).items():
            seen = self.values.setdefault(k, set())
            if len(seen) < 2:
                seen.add(value_key(v))  # 0 and 0.0: the same value
        for k, v in env_values(r).items():
            if v is not None:
                seen = self.env.setdefault(k, set())
                if len(seen) < 2:
                    seen.add(str(v))
        self.metrics.update(dict.fromkeys(r.get("metrics") or {}))
        self.sweep = self.sweep or sweep_of(r) is not None
        self.error = self.error or bool(error_text(r.get("error")))

    @property
    def diff(self) -> list[str]:
        return [k for k, vs in self.values.items() if len(vs) > 1]

    @property
    def envs(self) -> list[str]:
        return [k for k, vs in self.env.items() if len(vs) > 1]

    @property
    def extra(self) -> list[str]:
        """``sweep`` when a listed run is a sweep trial, ``error`` when one failed with an error."""
        return [c for c, on in (("sweep", self.sweep), ("error", self.error)) if on]

    def header(self) -> list[str]:
        diff = self.diff
        args_shown = set(diff)
        return [printable(h) for h in ["id", "status", "duration", "note", *self.extra, *diff,
                                       *self.envs,
                                       *(f"{m} (metric)" if m in args_shown else m
                                         for m in self.metrics)]]

    def row(self, r: dict, data: bool = False, diff: list[str] | None = None) -> list[str]:
        args = flatten(r.get("args") or {})
        note = (r.get("note") or "").replace("\n", " ")
        d = r.get("duration_s")
        duration = "" if d is None else (f"{d:g}" if data else fmt_duration(d))
        segs = r.get("segments")
        if not data and isinstance(segs, list) and len(segs) > 1:  # a resumed run: its segments
            duration += f" ×{len(segs)}"
        row = [r["id"], r.get("shown_status") or r.get("status") or "?", duration, note]
        row += [_sweep_cell(r) if c == "sweep" else error_text(r.get("error")) for c in self.extra]
        row += [fmt_value(args[k]) if k in args else "" for k in (self.diff if diff is None else diff)]
        ev = env_values(r)
        row += [str(ev.get(k) or "") for k in self.envs]
        ms = r.get("metrics") or {}
        row += [fmt_num(ms[m].get("last")) if m in ms else "" for m in self.metrics]
        return [printable(c) for c in row]


def env_values(r: dict) -> dict:
    fw = r.get("frameworks")
    return {"python": r.get("python"), "host": r.get("host"),
            **({k: v for k, v in fw.items()} if isinstance(fw, dict) else {})}


def env_columns(runs: list[dict]) -> list[str]:
    """Python, host and framework versions (torch, …), when they differ among the listed runs."""
    cols = Columns()
    for r in runs:
        cols.add(r)
    return cols.envs


def _sweep_cell(r: dict) -> str:
    s = sweep_of(r)
    if s is None:
        return ""
    return s["id"] + (f" #{s['trial']}" if s.get("trial") is not None else "")


class SweepFilter:
    """The trials of the sweep ``spec`` names: its id, or a unique prefix of one (among the
    sweeps in ``.sweeps/``, else among the trials as they stream past)."""

    def __init__(self, root: str, spec: str):
        self.spec = spec
        try:
            known = {f[:-5] for f in os.listdir(LogDir(root).sweeps) if f.endswith(".json")}
        except OSError:
            known = set()
        matches = [spec] if spec in known else sorted(i for i in known if i.startswith(spec))
        if len(matches) > 1:
            raise CliError(f"{spec!r} matches {len(matches)} sweeps: {', '.join(matches[:5])}")
        self.chosen = matches[0] if matches else None

    def __call__(self, r: dict) -> bool:
        s = sweep_of(r)
        if s is None or not s["id"].startswith(self.spec):
            return False
        if self.chosen is None:
            self.chosen = s["id"]
        elif s["id"] != self.chosen:
            if s["id"] == self.spec:  # the exact id wins over a longer one it prefixes
                raise CliError(f"{self.spec!r} is a sweep and a prefix of {self.chosen!r}: "
                               "give the whole id")
            return False if self.chosen == self.spec else self._ambiguous(s["id"])
        return True

    def _ambiguous(self, other: str) -> bool:
        raise CliError(f"{self.spec!r} matches 2 sweeps: {self.chosen}, {other}")


def differing_args(runs: list[dict]) -> list[str]:
    """Argument names that take more than one value among the listed runs that have them.

    A name only some runs have (another script's) is not a difference by itself.
    """
    cols = Columns()
    for r in runs:
        cols.add(r)
    return cols.diff


def shown(runs: Iterable[dict], status: str | None, grep: str | None,
          sweep: SweepFilter | None = None) -> Iterator[dict]:
    """The runs as listed (status as shown, a lost run's figures from what it wrote), filtered."""
    wanted = {s.strip() for s in status.split(",") if s.strip()} if status else None
    g = grep.lower() if grep else None
    for r in runs:
        if sweep is not None and not sweep(r):
            continue
        r["shown_status"] = shown_status(r)
        if r["shown_status"] == "lost":  # its metrics and duration from what it wrote
            settled(r)
        if wanted is not None and r["shown_status"] not in wanted:
            continue
        if g is not None and g not in _haystack(r):
            continue
        yield r


def by_metric(runs: Iterable[dict], sort: str) -> list[dict]:
    have = [r for r in runs if sort in (r.get("metrics") or {})]
    if not have:
        raise CliError(f"no listed run has a metric {sort!r}")
    low = lower_is_better(sort)

    def key(r):
        v = r["metrics"][sort].get("last")
        v = float("nan") if v is None else v
        return (v != v, v if low else -v)

    return sorted(have, key=key)


def select(runs: list[dict], n: int | None, status: str | None, grep: str | None,
           sort: str | None) -> list[dict]:
    runs = list(shown(runs, status, grep))
    if sort:
        runs = by_metric(runs, sort)
    return runs[:n] if n is not None else runs


def _haystack(r: dict) -> str:
    parts = [r["id"], r.get("name") or "", r.get("note") or "", r.get("notes") or "",
             " ".join(r.get("tags") or [])]
    parts += [f"{k}={fmt_value(v)}" for k, v in flatten(r.get("args") or {}).items()]
    return " ".join(parts).lower()


def rows(runs: list[dict], data: bool = False) -> tuple[list[str], list[list[str]]]:
    """The table as text: every cell one line of printable characters (``printable``),
    whichever format then shows it. ``data`` (CSV): durations in seconds, as numbers."""
    cols = Columns()
    for r in runs:
        cols.add(r)
    diff = cols.diff
    return cols.header(), [cols.row(r, data, diff) for r in runs]


def ls(root: str, n: int | None = 20, status: str | None = None, grep: str | None = None,
       sort: str | None = None, fmt: str | None = None, tty: bool | None = None,
       sweep: str | None = None) -> int:
    """Runs are read as a stream, newest first: ``-n`` stops reading once it has its runs,
    and JSON and CSV of every run (``--all``) hold one run at a time, whatever the history.
    A table (terminal, plain or Markdown) sizes its columns by every row, so it holds its
    rows as text (~1 kB a run), never the runs."""
    if n is not None and n < 1:
        raise CliError(f"-n {n}: give at least 1 (or --all)")

    check_root(root)
    narrowed = bool(status or grep or sweep)
    found = folders(root)  # listed once, for the runs and for the count of those left out

    def listed() -> Iterator[dict]:
        got = shown(stream_runs(root, found, None if (narrowed or sort) else n), status, grep,
                    SweepFilter(root, sweep) if sweep else None)
        if sort:
            got = iter(by_metric(got, sort))
        return got if n is None else islice(got, n)

    if fmt == "json":
        _json_lines(listed())
        return 0
    cols, runs = _columns(listed, every=n is None and not sort)
    diff = cols.diff
    if fmt == "csv":
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(cols.header())
        w.writerows(cols.row(r, True, diff) for r in runs)
        sys.stdout.flush()
        return 0
    header, table = cols.header(), [cols.row(r, False, diff) for r in runs]
    more = 0  # runs left out by -n
    if n is not None and len(table) == n and not narrowed:
        more = max(_count_runs(root, found) - n, 0)
    if fmt == "md":
        esc = [[c.replace("|", "\\|") for c in row] for row in [header, *table]]
        out("| " + " | ".join(esc[0]) + " |\n")
        out("|" + "|".join("---" for _ in header) + "|\n")
        for row in esc[1:]:
            out("| " + " | ".join(row) + " |\n")
        return 0
    if not table:
        if sweep:
            raise CliError(f"no trials of a sweep {sweep!r} among the runs")
        sys.stderr.write("runlog: no runs match\n" if narrowed else f"runlog: no runs in {root}\n")
        return 0
    if tty is None:
        tty = sys.stdout.isatty()
    fixed = 4 + len(cols.extra)
    if tty:
        _rich_table(header, table, len(diff) + len(cols.envs), fixed)
    else:
        _plain(header, table, fixed)
    if more:
        sys.stderr.write(f"runlog: … {more} more run{'s' if more != 1 else ''} "
                         "(use -n N or --all)\n")
    return 0


def _columns(listed, every: bool) -> tuple[Columns, Iterable[dict]]:
    """The columns and the runs to fill them. Every run (``--all``): one pass over the runs
    for the columns, a second for the rows, so that no run is held; otherwise the few
    runs listed, held."""
    cols = Columns()
    if every:
        for r in listed():
            cols.add(r)
        return cols, listed()
    runs = list(listed())
    for r in runs:
        cols.add(r)
    return cols, runs


def _json_lines(runs: Iterable[dict]) -> None:
    """One JSON object per run, written in batches (a flush per line costs a system call each)."""
    import json

    dumps = json.dumps
    batch: list[str] = []
    for r in runs:
        batch.append(dumps({k: v for k, v in r.items() if k != "dir"}, ensure_ascii=False,
                           default=str) + "\n")
        if len(batch) >= 500:
            out(printable_json("".join(batch)))
            batch = []
    if batch:
        out(printable_json("".join(batch)))


def _count_runs(root: str, found: tuple[list[str], list[str]]) -> int:
    """How many folders of the log directory hold a run: those named by a start time, and
    the others that have a record (no stat for the 100,000 of a long history)."""
    stamped, odd = found
    return len(stamped) + sum(1 for i in odd if RunFolder(os.path.join(root, i)).has_record())


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
    duration, note (up to NOTE_WIDTH) and metrics always; then the sweep and error columns
    (an error cut to what is left, at least ERROR_MIN) and the differing arguments while
    they fit, the rest left out (and counted) — never an id cut to look like another, nor
    a note cut while an argument is shown. Returns the columns, the note's width (down to
    NOTE_MIN only when the columns always shown do not fit) and the error's."""
    def w(i: int) -> int:
        return max(len(r[i]) for r in [header, *table]) + 2

    error = header.index("error") if "error" in header[4:fixed] else None
    args = list(range(fixed, fixed + n_args))
    always = [0, 1, 2, 3] + list(range(fixed + n_args, len(header)))
    # the note keeps its width (up to NOTE_WIDTH) before any argument column is shown
    note_want = min(w(3), NOTE_WIDTH + 2)
    used = sum(w(i) for i in always if i != 3) + note_want
    shown = []
    for i in list(range(4, fixed)) + args:
        need = min(w(i), ERROR_MIN + 2) if i == error else w(i)
        if used + need > width:
            if i in args:
                break
            continue  # a sweep or error column that does not fit: the arguments may
        shown.append(i)
        used += need
    spare = width - used  # negative: even the columns always shown do not fit
    note = note_want - 2 if spare >= 0 else max(NOTE_MIN, note_want - 2 + spare)
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
