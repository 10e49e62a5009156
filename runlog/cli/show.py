"""``runlog show`` and ``runlog report``: one run, whole or as its report."""

from __future__ import annotations

import json
import os
import sys

from ..clipboard import copy as copy_text
from ..fmt import flatten, fmt_num, fmt_value, printable, printable_json
from ..folder.layout import RunFolder, is_leftover
from ..folder.logfile import last_lines
from ..report import render
from .common import CliError, load, out, previous_of, read_notes, settled
from .table import Column, terminal
from .table import render as table

LOG_TAIL = 10  # log lines a rebuilt report of a lost run ends with


def _log_tail(run_dir: str, n: int) -> list[str]:
    try:
        return last_lines(RunFolder(run_dir).log, n)[0]
    except OSError:
        return []


def report_text(root: str, record: dict, fmt: str = "md", notes: bool = True) -> str:
    record = settled(record)
    if notes:  # the report people paste has the notes added later too
        record["notes"] = read_notes(record["dir"])
    text = render(record, previous_of(root, record), fmt=fmt)
    if record["status"] in ("lost", "running"):
        tail = _log_tail(record["dir"], LOG_TAIL)
        if tail:
            fence = "```" if fmt == "md" else ""
            body = "\n".join(printable(ln) for ln in tail)
            what = "ended without a word" if record["status"] == "lost" else "still running"
            text += f"\nLast log lines ({what}):\n\n" + (f"{fence}\n{body}\n{fence}\n" if fence
                                                          else body + "\n")
    return text


def report(root: str, spec: str | None, copy: bool = False, fmt: str = "md") -> int:
    record = load(root, spec)
    text = report_text(root, record, fmt)
    out(text)
    if copy:
        why = copy_text(text)
        if why:  # the report is printed: one line says why it is not on the clipboard too
            sys.stderr.write(f"runlog: {why}\n")
            return 0
        sys.stderr.write("runlog: report copied to the clipboard\n")
    return 0


def show(root: str, spec: str | None, patch: bool = False, as_json: bool = False) -> int:
    record = load(root, spec)
    run_dir = record["dir"]
    if as_json:
        raw = {k: v for k, v in record.items() if k not in ("dir", "shown_status")}
        out(printable_json(json.dumps(raw, indent=2, ensure_ascii=False, default=str)) + "\n")
        return 0
    if patch:
        git = record.get("git") or {}
        path = RunFolder(run_dir).file(git["patch"]) if git.get("patch") else RunFolder(run_dir).patch
        if not os.path.exists(path):
            raise CliError(f"run {record['id']} saved no code changes (its tree was clean)")
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        # the patch as saved when it goes to a file or `git apply`; on a terminal, the
        # control characters its lines may hold are shown, not obeyed
        out(printable(text, lines=True) if sys.stdout.isatty() else text)
        return 0
    console = terminal()
    # every part is printable already: recorded text never moves the cursor (``printable``),
    # and the tables (``table.render``) clean their cells themselves
    parts = [printable(report_text(root, record, "text", notes=False).rstrip("\n"), lines=True)]
    segs = record.get("segments")
    if isinstance(segs, list) and len(segs) > 1:
        parts.append(printable("Segments:\n" + "\n".join(segment_lines(segs)), lines=True))
    args = flatten(record.get("args") or {})
    if args:
        given = set(record.get("args_given") or [])
        src = record.get("args_source") or {}  # which a config file (or flag file) set
        # where it came from before the value: a long value (a list) then pushes nothing out of line
        rows = [[k, "given" if k in given else f"from {src[k]}" if k in src else "", fmt_value(v)]
                for k, v in args.items()]
        cols = [Column(), Column(), Column(wrap=True)]
        parts.append("Arguments:\n" + table(cols, rows, console=console).rstrip("\n"))
    metrics = record.get("metrics") or {}
    if metrics:
        rows = [[k, fmt_num(m.get("last")), fmt_num(m.get("min")), fmt_num(m.get("max")),
                 str(m.get("count") if m.get("count") is not None else ""),
                 str(m["step"]) if m.get("step") is not None else ""] for k, m in metrics.items()]
        cols = [Column("metric"), Column("last", "right"), Column("min", "right", priority=2),
                Column("max", "right", priority=2), Column("points", "right", priority=3),
                Column("step", "right", priority=1)]
        parts.append("Metrics:\n" + table(cols, rows, console=console).rstrip("\n"))
    git = record.get("git")
    if git:
        lines = [f"  commit {git.get('commit') or '(none yet)'}",
                 f"  branch {git.get('branch') or '(detached)'}"]
        if git.get("changed_files"):
            lines.append("  uncommitted: " + ", ".join(git["changed_files"]))
        parts.append(printable("Git:\n" + "\n".join(lines), lines=True))
    parts += _facts(record)
    notes = read_notes(run_dir).strip()
    if notes:
        parts.append(printable("Notes:\n" + "\n".join(f"  {ln}" if ln else ""
                                                      for ln in notes.splitlines()), lines=True))
    err = record.get("error")
    if err and err.get("traceback"):
        parts.append(printable("Traceback:\n" + "\n".join(f"  {ln}" for ln in err["traceback"]),
                               lines=True))
    files = []
    for name in sorted(n for n in os.listdir(run_dir) if not is_leftover(n)):
        try:
            files.append([name, _size(os.path.getsize(os.path.join(run_dir, name)))])
        except OSError:
            pass
    parts.append(printable(f"Files in {run_dir}:", lines=True) + "\n"
                 + table([Column(), Column(align="right")], files, console=console).rstrip("\n"))
    out("\n\n".join(parts) + "\n")
    return 0


def _facts(record: dict) -> list[str]:
    """Environment, Machine, Scheduler, Resources and Data, for runs that recorded them."""
    if not any(record.get(k) for k in ("env", "machine", "scheduler", "resources", "data")):
        return []
    from ..facts.text import show_sections

    return show_sections(record)


def segment_lines(segs: list) -> list[str]:
    """One line per segment of a resumed run: when, how long, how it ended, where."""
    from ..fmt import fmt_duration
    from ..folder.segments import seconds

    lines = []
    for i, s in enumerate(segs, 1):
        if not isinstance(s, dict):
            continue
        where = f"{s.get('host') or '?'} pid {s.get('pid') or '?'}"
        if s.get("job"):
            where += f", job {s['job']}" + (f" restart {s['restart']}" if s.get("restart") else "")
        lines.append(f"  {i}  {s.get('started_at') or '?'}  {fmt_duration(seconds(s)):>12}  "
                     f"{s.get('status') or '?':<11}  {where}")
    return lines


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
