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
from .table import STATUS_STYLE, Column, markdown, render, terminal

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
       sweep: str | None = None, group: bool = False) -> int:
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

    if group:  # runs that differ only in their seed, as one row each (mean ± std)
        from .groups import ls_group

        return ls_group(shown(stream_runs(root, found, None), status, grep,
                              SweepFilter(root, sweep) if sweep else None), n, sort, fmt, tty)
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
        out(markdown(header, table))
        return 0
    if not table:
        if sweep:
            raise CliError(f"no trials of a sweep {sweep!r} among the runs")
        sys.stderr.write("runlog: no runs match\n" if narrowed else f"runlog: no runs in {root}\n")
        return 0
    console = terminal() if tty is None else _console() if tty else None
    if console is not None:
        _terminal(header, table, cols.extra, len(diff) + len(cols.envs), console)
    else:
        _plain(header, table, 4 + len(cols.extra))
    if more:
        sys.stderr.write(f"runlog: … {more} more run{'s' if more != 1 else ''} "
                         "(use -n N or --all)\n")
    return 0


def _console():
    from rich.console import Console

    return Console()


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


def _cut(header: list[str], table: list[list[str]], fixed: int) -> list[list[str]]:
    """The rows with the note cut to NOTE_WIDTH and the error to ERROR_WIDTH (the others whole)."""
    error = header.index("error") if "error" in header[4:fixed] else None
    return [[cut(c, NOTE_WIDTH) if i == 3 else cut(c, ERROR_WIDTH) if i == error else c
             for i, c in enumerate(row)] for row in table]


def _plain(header: list[str], table: list[list[str]], fixed: int = 4) -> None:
    cells = [header] + _cut(header, table, fixed)
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    out("\n".join(lines) + "\n")


NOTE_MIN = 12  # what a note keeps on a narrow terminal when the columns always shown do not fit
ARG = 3  # the priority of argument and environment columns: the first to go


def terminal_columns(header: list[str], extra: list[str], n_args: int) -> list[Column]:
    """The columns as a terminal shows them. The id (what you type next), status, duration,
    note (up to NOTE_WIDTH) and metrics always, the id and status never cut; then the sweep
    and error columns (an error cut to what is left, at least ERROR_MIN) and the differing
    arguments and environment facts, left to right, while they fit. The note keeps its
    width while an argument is shown, down to NOTE_MIN only when the columns always shown
    do not fit."""
    cols = [Column(header[0]), Column(header[1], style=STATUS_STYLE.get), Column(header[2]),
            Column(header[3], min_width=NOTE_MIN, firm=True)]
    for name in extra:
        h = header[len(cols)]
        cols.append(Column(h, priority=2, min_width=ERROR_MIN) if name == "error" else Column(h, priority=1))
    first = len(cols)
    cols += [Column(h, priority=ARG) for h in header[first:first + n_args]]
    cols += [Column(h, "right") for h in header[first + n_args:]]
    return cols


def left_out(hidden: list[Column]) -> str:
    """``… 3 more differing arguments (widen the terminal, or --csv)``, naming a sweep or
    error column left out too."""
    n = sum(1 for c in hidden if c.priority == ARG)
    others = [c.header for c in hidden if c.priority != ARG]
    parts = [f"{n} more differing argument{'s' if n != 1 else ''}"] if n else []
    if others:
        parts.append(f"the {' and '.join(others)} column{'s' if len(others) > 1 else ''}")
    said = " and ".join(parts) + ("" if n else " not shown")
    return f"… {said} (widen the terminal, or --csv)"


def _terminal(header: list[str], table: list[list[str]], extra: list[str], n_args: int,
              console) -> None:
    out(render(terminal_columns(header, extra, n_args), _cut(header, table, 4 + len(extra)),
               console=console, indent=0, left_out=left_out))
