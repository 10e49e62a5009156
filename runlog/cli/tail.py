"""``runlog tail``: follow a run's log like ``tail -f`` on the newest file, with filters.

Context lines are found by reading the file backwards from its end, so the
first line shows at once however large the log is.
"""

from __future__ import annotations

import os
import re
import sys
import time

from ..fmt import fmt_duration, fmt_num, printable
from ..folder import record
from ..folder.layout import LOG, RunFolder
from ..folder.settle import settle
from ..folder.logfile import FATAL, LEVELS, LINE_CAP, last_lines, level_of
from .common import CliError, find, folder, shown_status

POLL_S = 0.1
CHUNK = 1 << 20  # read at most this much at once: a huge write is shown as it is read
STATUS_EVERY_S = 1.0


class Filter:
    def __init__(self, grep: str | None, level: str | None):
        try:
            self.regex = re.compile(grep) if grep else None
        except re.error as e:
            raise CliError(f"bad --grep pattern {grep!r}: {e}") from None
        if level is not None:
            lv = LEVELS.get(level.upper())
            if lv is None:
                raise CliError(f"unknown level {level!r} (use DEBUG, INFO, WARNING, ERROR, CRITICAL)")
            level = lv
        self.level = level
        self.current = 20

    def __call__(self, line: str) -> bool:
        if self.level is not None:
            lv = level_of(line)
            if lv is not None:
                self.current = lv
            elif line.startswith(FATAL):  # faulthandler's unprefixed block: the process crashed
                self.current = LEVELS["CRITICAL"]
            if self.current < self.level:
                return False
        return self.regex is None or self.regex.search(line) is not None


def _wait_for_run(root: str, spec: str | None) -> dict:
    said = False
    while True:
        if os.path.isdir(root):
            try:
                return find(root, spec)
            except CliError:
                if spec:
                    raise  # a RUN that is not there; without one, there is no run yet
        if not said:
            sys.stderr.write(f"runlog: waiting for a run in {root} …\n")
            sys.stderr.flush()
            said = True
        time.sleep(0.5)


def _status(run_dir: str) -> dict | None:
    try:
        r = record.read(run_dir)
    except record.RecordError:
        return None
    r["shown_status"] = shown_status(r)
    r["dir"] = run_dir
    return r


def _summary(r: dict) -> str:
    metrics = r.get("metrics") or {}
    ms = ", ".join(f"{k} {fmt_num(v.get('last'))}" for k, v in metrics.items())
    return printable(f"-- run {r['id']} {r['shown_status']} after {fmt_duration(r.get('duration_s'))}"
                     + (f" · {ms}" if ms else "")) + "\n"


def _next_run(root: str, seen: set, said: bool) -> str:
    """Wait for a run folder that is not in ``seen`` (a run started after we looked)."""
    from ..folder.index import run_ids

    while True:
        new = [i for i in (run_ids(root) if os.path.isdir(root) else [])
               if i not in seen and os.path.exists(os.path.join(root, i, LOG))]  # a run's folder
        if new:
            return max(new, key=lambda i: (i[:15], len(i), i))
        if not said:
            sys.stderr.write(f"runlog: waiting for the next run in {root} …\n")
            sys.stderr.flush()
            said = True
        time.sleep(POLL_S * 2)


def tail(root: str, spec: str | None, lines: int = 10, follow: bool = True,
         grep: str | None = None, level: str | None = None, next_: bool = False) -> int:
    if next_:  # every run that starts from now on, one after the other (a sweep's trials)
        if spec:
            raise CliError("--next follows the runs that start next: give no RUN")
        from ..folder.index import run_ids

        seen = set(run_ids(root)) if os.path.isdir(root) else set()
        said = False
        while True:
            run_id = _next_run(root, seen, said)
            said = True
            seen.add(run_id)
            _follow(root, {"id": run_id}, 0, True, grep, level)
    keep = Filter(grep, level)
    if follow:
        entry = _wait_for_run(root, spec)
    else:
        if not os.path.isdir(root):
            raise CliError(f"no log directory {root!r} (use --dir or RUNLOG_DIR)")
        entry = find(root, spec)
    return _follow(root, entry, lines, follow, grep, level, keep)


def _follow(root: str, entry: dict, lines: int, follow: bool, grep, level, keep=None) -> int:
    keep = keep or Filter(grep, level)
    run_dir = folder(root, entry).path
    path = RunFolder(run_dir).log
    write = sys.stdout.write
    flush = sys.stdout.flush
    try:
        ctx, offset = last_lines(path, lines, Filter(grep, level) if (grep or level) else None)
    except FileNotFoundError:
        ctx, offset = [], 0
    # a log line is shown, never obeyed: its control characters (a script's colours, a
    # progress bar's \r, an escape sequence in a logged value) are written out (``printable``)
    for line in ctx:
        write(printable(line) + "\n")
    flush()
    if not follow:
        return 0
    partial = b""
    over = 0  # bytes of the unfinished line not held (past LINE_CAP)
    next_status = 0.0
    f = None
    while True:
        if f is None:
            try:
                f = open(path, "rb")
                f.seek(offset)
            except FileNotFoundError:
                f = None
        chunk = f.read(CHUNK) if f is not None else b""
        if chunk:
            data = partial + chunk
            *complete, partial = data.split(b"\n")
            for raw in complete:
                if over or len(raw) > LINE_CAP:  # a line that grew past the cap ends here
                    over += max(len(raw) - LINE_CAP, 0)
                    line = raw[:LINE_CAP].decode("utf-8", "replace") + f" … [{over} more bytes not shown]"
                    over = 0
                else:
                    line = raw.decode("utf-8", "replace")
                if keep(line):
                    write(printable(line) + "\n")
                    flush()
            if len(partial) > LINE_CAP:  # a line without its newline yet: hold its start only
                over += len(partial) - LINE_CAP
                partial = partial[:LINE_CAP]
            continue
        now = time.monotonic()
        if now >= next_status:
            next_status = now + STATUS_EVERY_S
            r = _status(run_dir)
            if r is not None and r["shown_status"] != "running":
                if r["status"] == "running":  # lost: metrics and duration from what was written
                    r = settle(r, RunFolder(run_dir))
                rest = f.read() if f is not None else b""
                for raw in (partial + rest).split(b"\n"):
                    line = raw.decode("utf-8", "replace")
                    if line and keep(line):
                        write(printable(line) + "\n")
                write(_summary(r))
                flush()
                return 0
        time.sleep(POLL_S)
