"""The log directory: run ids, the index, listing runs, the previous run, resolving "-1" or a prefix.

Each run is a folder named by its id. Besides the folders, the log directory
holds the index: one JSON line per run event (started, finished, noted),
appended with a single write, so that listing 10,000 runs reads one file
instead of 10,000. The index is only a cache: a run folder it does not know is
read directly, an index entry whose folder is gone is dropped, and lines it
cannot parse are skipped. Reading many runs is ``listing.py``'s; it streams.

Index lines are ``record.summary()`` of the run at that event, or
``{"id": ID, "notes_added": TEXT}`` when a note was added; the newest line of
a run wins key by key, and notes are concatenated.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator  # not typing: its import costs 2 ms
from itertools import islice

from . import record as _record
from .layout import LogDir, RunFolder, file_in, is_run_name

# ``listing`` (the readers) is loaded when first read from: a run's start only creates its
# folder and appends to the index, and listing's patterns and heapq cost start() ~0.6 ms
_FROM_LISTING = ("IndexScan", "folders", "newest_first_key", "run_ids", "lines_backwards",
                 "lost_summary", "merge", "parse_line", "read_run", "stream")


def __getattr__(name: str):
    """``index.stream``, ``index.folders`` …: the readers, found here by callers."""
    if name in _FROM_LISTING:
        from . import listing

        return getattr(listing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def new_run_dir(root: str, name: str | None = None, now: float | None = None) -> tuple[str, str]:
    """Create a fresh run folder and return (id, path).

    The id is the local start time, ``-<name>`` when named, and ``-2``, ``-3``…
    when another process took the same second: ``os.mkdir`` decides who wins,
    so concurrent starts never share a folder, and an id is never reused.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = f"{stamp}-{safe_name(name)}" if name else stamp
    n = 1
    while True:
        run_id = base if n == 1 else f"{base}-{n}"
        path = os.path.join(root, run_id)
        try:
            os.mkdir(path)
            return run_id, path
        except FileExistsError:
            n += 1
            if n > 10000:
                raise
        except FileNotFoundError:
            os.makedirs(root, exist_ok=True)  # the first run in this log directory


def safe_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "._+=" else "-" for c in str(name).strip())
    return keep.strip("-.")[:60] or "run"


# ---------------------------------------------------------------- writing


def append(root: str, entry: dict) -> None:
    """Append one line to the index with a single write (O_APPEND keeps lines whole)."""
    line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
    fd = os.open(LogDir(root).index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)


def append_record(root: str, rec: dict, notes_text: str | None = None) -> None:
    """The run's summary as an index line. The line that ends a run carries the notes
    added while it went on, so a reader of the index's end (``newest``) has them."""
    line = _record.summary(rec)
    if line.get("status") not in (None, "running") and "notes" not in line:
        from .notes import read

        text = notes_text if notes_text is not None else read(os.path.join(root, rec["id"]))
        if text:
            line["notes"] = text
    append(root, line)


def append_note(root: str, run_id: str, block: str) -> None:
    """Only the new note goes to the index: its cost does not grow with the run's notes."""
    append(root, {"id": run_id, "notes_added": block})


# ---------------------------------------------------------------- reading


def read(root: str, warn=None) -> dict[str, dict]:
    """The newest index entry of every run, merged over its older ones (the whole index
    in memory: for a one-off pass, never for listing; ``stream`` lists)."""
    entries: dict[str, dict] = {}
    try:
        with open(LogDir(root).index, "rb") as f:
            data = f.read()
    except OSError:
        return entries
    from .listing import merge, parse_line

    lines = [ln for ln in data.splitlines() if ln.strip()]
    try:  # one parse of all lines is twice as fast as one per line
        parsed = json.loads(b"[" + b",".join(lines) + b"]")
    except (ValueError, RecursionError):  # a torn last line after a crash, or junk: line by line
        parsed = [parse_line(line)[0] for line in lines]  # torn lines give back what they can
    bad = 0
    for entry in parsed:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        if not _record.summary_ok(entry):
            bad += 1  # valid JSON of the wrong shape: the folder is the truth
            entries.pop(entry["id"], None)
            continue
        run_id = entry["id"]
        entries[run_id] = merge(entries.get(run_id), _record.from_index(entry))
    if bad and warn is not None:
        warn(f"{LogDir(root).index}: {bad} line{'s' if bad != 1 else ''} of the wrong shape "
             "skipped (the run folders are read instead)")
    return entries


def summaries(root: str, warn=None) -> Iterator[dict]:
    """Every run in the log directory as its summary (with ``dir``), newest first."""
    from .listing import stream

    return stream(root, warn)


def sorted_runs(root: str, warn=None) -> list[dict]:
    """All runs' summaries, newest first (by start time, then id), as a list."""
    from .listing import stream

    return list(stream(root, warn))


def newest(root: str, n: int, warn=None) -> list[dict]:
    """The newest ``n`` runs' summaries, reading only as much of the index's end as they need."""
    from .listing import stream

    return list(islice(stream(root, warn, want=n), n)) if n > 0 else []


def previous(root: str, script_path: str | None, before: str, exclude: str,
             build: bool = False) -> dict | None:
    """The most recently finished run of the same script, started before ``before``.

    First from the script's pointer (``latest``), which costs the same whatever
    the history. Otherwise the index is read from its end, parsing only lines that
    name the script and the word "finished" (the parsed values decide, so the
    separators the index was written with do not matter); with ``build`` (off the
    script's thread: it reads the whole index once per log directory) the
    pointers are then made for next time.
    """
    if not script_path:
        return None
    from . import latest

    got = latest.recall(root, script_path, before, exclude)
    if got is not latest.UNKNOWN:
        return got
    found = _scan_previous(root, script_path, before, exclude)
    if build and not os.path.exists(os.path.join(LogDir(root).latest, latest.COMPLETE)):
        try:
            latest.build(root, _finished(root))
        except OSError:
            pass  # a read-only log directory: the index serves
    return found


def _finished(root: str) -> dict[str, dict]:
    """Every run's newest finished line, reduced to what ``latest.build`` needs, oldest first:
    the index read once from its end, only lines with "finished" parsed, little kept."""
    from .listing import lines_backwards, parse_line

    newest: dict[str, dict] = {}
    for _, line in lines_backwards(LogDir(root).index):
        if b'"finished"' not in line:
            continue
        entry = parse_line(line)[0]
        if (entry is not None and entry.get("status") == "finished" and entry["id"] not in newest
                and isinstance(entry.get("script_path"), str)):
            newest[entry["id"]] = {"status": "finished", "script_path": entry["script_path"]}
    return dict(reversed(newest.items()))


def _scan_previous(root: str, script_path: str, before: str, exclude: str) -> dict | None:
    from .listing import lines_backwards, parse_line

    # the path as this runlog writes it, and as an ASCII-only JSON writer would
    needles = {json.dumps(script_path, ensure_ascii=False).encode("utf-8", "surrogateescape"),
               json.dumps(script_path).encode("ascii")}
    for _, line in lines_backwards(LogDir(root).index):
        if b'"finished"' not in line or not any(n in line for n in needles):
            continue
        entry = parse_line(line)[0]  # a torn line: the whole line another writer appended to it
        if (entry is not None and _record.summary_ok(entry) and entry.get("status") == "finished"
                and entry.get("script_path") == script_path and entry.get("id") != exclude
                and str(entry.get("started_at")) <= before):
            return _record.from_index(entry)
    return None


# ---------------------------------------------------------------- resolving RUN


class NoSuchRun(LookupError):
    pass


def minus_n(spec: str | None) -> int | None:
    """N of a ``-N`` run spec (``-1`` the newest run; ``-0`` is 0, which names none), else None."""
    return int(spec[1:]) if spec and spec[0] == "-" and spec[1:].isdigit() else None


def resolve(root: str, spec: str | None, runs: list[dict] | None = None) -> dict:
    """Find one run by full id, unique prefix, or -1 / -2 … (newest first).

    A whole id names that run or nothing: a folder of that name whose record
    is unreadable is an error, never another run that shares the prefix.
    """
    if spec is None or spec == "":
        spec = "-1"
    n = minus_n(spec)
    if n is None:
        exact = LogDir(root).run(spec)
        if is_run_name(spec) and os.sep not in spec and os.path.isdir(exact.path):
            found = [r for r in runs if r["id"] == spec] if runs is not None else []
            if found:
                return found[0]
            from .listing import lost_summary, read_run

            rec = read_run(root, spec)
            if rec is not None:
                return rec
            lost = lost_summary(root, spec)
            if lost is not None:
                return lost
            raise NoSuchRun(f"run {spec!r} has no readable record ({exact.record})")
    if runs is None:
        runs = sorted_runs(root)
    if not runs:
        raise NoSuchRun(f"no runs in {root}")
    if n is not None:
        if n < 1 or n > len(runs):
            raise NoSuchRun(f"no run {spec}: there are {len(runs)} runs in {root}")
        return runs[n - 1]
    matches = [r for r in runs if r["id"].startswith(spec)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NoSuchRun(f"no run matches {spec!r}")
    names = ", ".join(r["id"] for r in matches[:5])
    more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
    raise NoSuchRun(f"{spec!r} matches {len(matches)} runs: {names}{more}")


def folder_of(root: str, entry: dict) -> RunFolder:
    return RunFolder(entry.get("dir") or file_in(root, entry["id"]))
