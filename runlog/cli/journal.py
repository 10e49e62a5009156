"""``runlog journal``: one self-contained HTML file to read the runs side by side.

Runs newest first, grouped by day, each a short card: status, duration, note,
later notes, final metrics, what changed since the previous run of the same
script, and small curves. The long material (all arguments, the code patch,
the log's tail) is folded away. Everything — data, styles, script — is inside
the one file, so it opens on a machine with no network.

The page is built by a small script from one embedded JSON document: 2,000
runs stay a few MB, and cards outside the screen are not laid out
(``content-visibility``), so it scrolls smoothly.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from importlib import resources
from itertools import islice, takewhile

from ..folder.every import EveryRun
from ..folder.layout import LogDir
from .common import CliError, check_root, out, stream_runs, warn
from .journal_data import card, remember

NEWEST = 500  # runs in a journal unless told otherwise (-n, --all, --since)


# Inside <script> the HTML parser still reads "<!--", "<script" and "</script": any of
# them in a note or a log line would end or swallow the element, and the page with it.
# In JSON, "<" and the others occur only inside strings, where \uXXXX means the same.
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                  "\u2029": "\\u2029"}


def script_safe(json_text: str) -> str:
    """JSON text that can sit inside a ``<script>`` element whatever its strings hold:
    no "<" at all (so no tag, comment or end tag), nor ">", "&", U+2028, U+2029."""
    for c, esc in _SCRIPT_UNSAFE.items():
        if c in json_text:  # a fast scan; replace() counts with a slower one, even for none
            json_text = json_text.replace(c, esc)
    return json_text


def since_time(text: str) -> str:
    """``--since``: a date (2026-11-01, 2026-11-01T14:00) or an age (30m, 12h, 7d, 2w), as the
    ISO time runs' ``started_at`` is compared with."""
    import re

    m = re.fullmatch(r"(\d+)\s*([mhdw])", text.strip())
    if m:
        secs = int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[m.group(2)]
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - secs))
    try:
        from datetime import datetime

        return datetime.fromisoformat(text.strip()).strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise CliError(f"--since {text!r}: give a date (2026-11-01) or an age (12h, 7d)") from None


def selected(root: str, limit: int | None, since: str | None) -> Iterator[dict]:
    """The runs of the journal, newest first, read one at a time."""
    runs: Iterator[dict] = stream_runs(root, want=limit)
    if since:
        runs = takewhile(lambda r: str(r.get("started_at") or "")[:19] >= since, runs)
    return islice(runs, limit) if limit else runs


def _listed(root: str, limit: int | None, since: str | None) -> Iterator[tuple[dict, dict | None]]:
    """(run, its "since" previous run) of a page of the newest runs (-n, --since): the runs'
    summaries are listed first, then each card reads its record. Memory holds per run its
    id, and the arguments (as JSON text) of each run a later one names as its previous."""
    listed: list[tuple[str, str | None]] = []  # (id, previous), newest first
    named: set[str] = set()  # the previous runs of the runs met so far (newer ones come first)
    args_of: dict[str, str | None] = {}  # id -> its arguments when named, else None
    whole: dict[str, dict] = {}  # the rare run with no record to read again (killed at start)
    for r in selected(root, limit, since):
        run_id, prev_id = r["id"], r.get("previous")
        listed.append((run_id, prev_id))
        if prev_id:
            named.add(prev_id)
        args_of[run_id] = json.dumps(r.get("args") or {}, separators=(",", ":"), default=str) \
            if run_id in named else None
        if r.get("shown_status") == "lost":
            whole[run_id] = r
    for run_id, prev_id in listed:
        r = whole.pop(run_id, None) or {"id": run_id}
        prev = None
        if prev_id and prev_id in args_of:  # a run older than the page has no "since"
            prev = {"id": prev_id}
            if args_of[prev_id] is not None:  # else (met before the run naming it) its record's
                prev["args"] = json.loads(args_of[prev_id])
        yield r, prev


def _every(root: str, fulls: dict) -> Iterator[tuple[dict, dict | None]]:
    """(run, its "since" previous run) of every run (--all), in one pass: each run.json is
    parsed once, for its card (``EveryRun``). A run's previous is on the page when it is a run:
    met already, or read ahead now (it is older) and kept for its own card. ``fulls``: the
    records the cards read, this pass's among them."""
    runs = EveryRun(root, warn)
    seen: set[str] = set()
    named: set[str] = set()  # the previous runs of the runs met so far (newer ones come first)
    args_of: dict[str, dict] = {}  # named before met and no record: its summary's arguments
    for entry, rec in runs:
        run_id, prev_id = entry["id"], entry.get("previous")
        seen.add(run_id)
        if prev_id:
            named.add(prev_id)
        if rec is None:
            if run_id in named:
                args_of[run_id] = entry.get("args") or {}
            r = entry if entry.get("shown_status") == "lost" else {"id": run_id}
        else:
            remember(fulls, run_id, rec)
            r = {"id": run_id}
        prev = None
        if prev_id in seen:  # a newer run, or itself: its record's arguments
            prev = {"id": prev_id}
            if prev_id in args_of:
                prev["args"] = args_of[prev_id]
        elif prev_id:
            got = runs.ahead(prev_id)
            if got is not None:  # else a run older than the page, or none: no "since"
                prev = {"id": prev_id, "args": got[0].get("args") or {}}
                if got[1] is not None:
                    remember(fulls, prev_id, got[1])
        yield r, prev


def write(root: str, f, limit: int | None = NEWEST, since: str | None = None) -> int:
    """The page into ``f``, card by card: memory holds one card (and what ``_listed`` or
    ``_every`` keep to find each run's "since")."""
    fulls: dict = {}  # records read lately: a card's, and its previous run's
    runs = _every(root, fulls) if limit is None and since is None else _listed(root, limit, since)
    page = resources.files("runlog.cli").joinpath("journal.html").read_text(encoding="utf-8")
    head, _, tail = page.partition("/*DATA*/null")
    f.write(head)
    f.write('{"runs":[')
    envs: dict[tuple, int] = {}  # runs of one machine and venv share one environment
    # one encoder for every card; a card is built from parsed JSON, so it has no cycle to check
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str,
                              check_circular=False).encode
    # cards encoded and written 64 at a time: one encoder call and one write, not one per card
    batch: list[dict] = []
    n = 0
    for r, prev in runs:
        batch.append(card(root, r, prev, envs, fulls))
        n += 1
        if len(batch) == 64:
            f.write(("," if n > 64 else "") + script_safe(encode(batch)[1:-1]))
            batch.clear()
    if batch:
        f.write(("," if n > len(batch) else "") + script_safe(encode(batch)[1:-1]))
    rest = json.dumps({"envs": [dict(e) for e in envs], "dir": os.path.abspath(root),
                       "made": time.strftime("%Y-%m-%d %H:%M")}, ensure_ascii=False,
                      separators=(",", ":"), default=str)
    f.write("]," + script_safe(rest[1:]))
    f.write(tail)
    return n


def _write_uncollected(root: str, f, limit: int | None = NEWEST, since: str | None = None) -> int:
    """``write`` with the cyclic garbage collector paused: the cards are parsed JSON and text,
    with no cycle to find, while the ids met grow to the history's size (walked again by every
    full collection: 0.17 s of a 100,000-run journal)."""
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        return write(root, f, limit, since)
    finally:
        if collecting:
            gc.enable()


def build(root: str, limit: int | None = NEWEST, since: str | None = None) -> str:
    import io

    buf = io.StringIO()
    write(root, buf, limit, since)
    return buf.getvalue()


def journal(root: str, output: str | None = None, open_it: bool = False,
            limit: int | None = None, every: bool = False, since: str | None = None) -> int:
    """The newest NEWEST runs unless ``limit`` (-n), ``every`` (--all) or ``since`` says."""
    if limit is None and not (every or since):
        limit = NEWEST
    if limit is not None and limit < 1:
        raise CliError(f"-n {limit}: give at least 1 (or --all)")
    since_iso = since_time(since) if since else None
    check_root(root)
    path = output or LogDir(root).journal
    if os.path.exists(path) and not os.path.isfile(path):
        # /dev/null, /dev/stdout, a FIFO: written into; a rename would replace the device
        # itself (as root, /dev/null became a 700 KB HTML file)
        with open(path, "w", encoding="utf-8") as f:
            n = _write_uncollected(root, f, limit, since_iso)
    else:
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                n = _write_uncollected(root, f, limit, since_iso)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    out(f"{path}\n")
    if limit and n == limit:
        sys.stderr.write(f"runlog: the newest {n} runs (-n N, --since or --all for more)\n")
    if open_it:
        import webbrowser

        webbrowser.open("file://" + os.path.abspath(path))
    return 0
