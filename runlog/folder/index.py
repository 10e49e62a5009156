"""The log directory: run ids, the index, listing runs, the previous run, resolving "-1" or a prefix.

Each run is a folder named by its id. Besides the folders, the log directory
holds the index: one JSON line per run event (started, finished, noted),
appended with a single write, so that listing 10,000 runs reads one file
instead of 10,000. The index is only a cache: a run folder it does not know is
read directly, an index entry whose folder is gone is dropped, and lines it
cannot parse are skipped.

Index lines are ``record.summary()`` of the run at that event, or
``{"id": ID, "notes_added": TEXT}`` when a note was added; the newest line of
a run wins key by key, and notes are concatenated.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator  # not typing: its import costs 2 ms

from . import record as _record
from .layout import LogDir, RunFolder, is_run_name


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


def _merge(old: dict | None, entry: dict) -> dict:
    added = entry.pop("notes_added", None)
    if old is None:
        old = entry
    else:
        old.update(entry)
    if isinstance(added, str):
        old["notes"] = (old.get("notes") or "") + added
    return old


def read(root: str, warn=None) -> dict[str, dict]:
    """The newest index entry of every run, merged over its older ones."""
    entries: dict[str, dict] = {}
    try:
        with open(LogDir(root).index, "rb") as f:
            data = f.read()
    except OSError:
        return entries
    lines = [ln for ln in data.splitlines() if ln.strip()]
    try:  # one parse of all lines is twice as fast as one per line
        parsed = json.loads(b"[" + b",".join(lines) + b"]")
    except (ValueError, RecursionError):  # a torn last line after a crash, or junk: line by line
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except (ValueError, RecursionError):
                continue  # the folder is the truth
    bad = 0
    for entry in parsed:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        if not _record.summary_ok(entry):
            bad += 1  # valid JSON of the wrong shape: the folder is the truth
            entries.pop(entry["id"], None)
            continue
        run_id = entry["id"]
        entries[run_id] = _merge(entries.get(run_id), _record.from_index(entry))
    if bad and warn is not None:
        warn(f"{LogDir(root).index}: {bad} line{'s' if bad != 1 else ''} of the wrong shape "
             "skipped (the run folders are read instead)")
    return entries


def run_ids(root: str) -> list[str]:
    """Names of the folders in the log directory that may hold a run."""
    try:
        it = os.scandir(root)
    except OSError:
        return []
    ids = []
    with it:
        for e in it:
            try:
                if is_run_name(e.name) and e.is_dir():
                    ids.append(e.name)
            except OSError:
                continue
    return ids


def read_run(root: str, run_id: str, warn=None) -> dict | None:
    """A run folder's full record, with ``dir``; None (with a warning for what looks
    like a broken run) when it has none."""
    folder = LogDir(root).run(run_id)
    try:
        rec = _record.read(folder.path)
    except _record.RecordError as e:
        if warn is not None and os.path.exists(folder.log):
            warn(str(e))
        return None
    rec["dir"] = folder.path
    return rec


def lost_summary(root: str, run_id: str) -> dict | None:
    """A run killed while it started, before its first run.json: its run.log says it began.

    Shown as lost, with what its log holds; a folder whose log runlog did not
    start is not a run.
    """
    from .logfile import started_line

    folder = LogDir(root).run(run_id)
    started = started_line(folder.log, run_id)
    if started is None or os.path.exists(folder.record):
        return None
    rec = _record.upgrade({"id": run_id, "status": "running", "started_at": started[0],
                           "command_line": started[1]})
    out = _record.summary(rec)
    out["dir"] = folder.path
    out["shown_status"] = "lost"
    return out


def _summary_of(root: str, run_id: str, entry: dict | None, warn) -> dict | None:
    rec = read_run(root, run_id, None)
    if rec is None:
        lost = lost_summary(root, run_id)
        if lost is None:
            read_run(root, run_id, warn)  # say once what is wrong with it
        return lost
    out = _record.summary(rec)
    out["dir"] = rec["dir"]
    if entry is not None and entry.get("notes"):
        out["notes"] = entry["notes"]
    return out


def summaries(root: str, warn=None) -> Iterator[dict]:
    """Every run in the log directory as its summary (with ``dir``), unordered.

    Index entries are used as they are, except a ``running`` one, which is read
    again from its folder (it may have finished after a hard kill left the index
    behind), and one without a status (only notes). Folders the index lacks are
    read from run.json; ones that are not runs are skipped.
    """
    index = read(root, warn)
    for run_id in run_ids(root):
        entry = index.get(run_id)
        status = entry.get("status") if entry is not None else None
        if status is not None and status != "running":
            entry.setdefault("dir", os.path.join(root, run_id))
            yield _record.complete(entry)
            continue
        out = _summary_of(root, run_id, entry, warn)
        if out is not None:
            yield out


def newest_first_key(r: dict) -> tuple:
    """Start time, then the id with its collision number compared as a number (-9 < -10)."""
    run_id = r["id"]
    base, _, n = run_id.rpartition("-")
    if len(base) >= 15 and n.isdigit():
        return (str(r.get("started_at") or ""), base, int(n))
    return (str(r.get("started_at") or ""), run_id, 1)


def sorted_runs(root: str, warn=None) -> list[dict]:
    """All runs' summaries, newest first (by start time, then id)."""
    runs = list(summaries(root, warn=warn))
    runs.sort(key=newest_first_key, reverse=True)
    return runs


def newest(root: str, n: int, warn=None) -> list[dict]:
    """The newest ``n`` runs' summaries, reading only the end of the index.

    Run ids start with their start time, so the newest ids are known from the
    folder names alone; their entries are near the end of the index. Lines are
    read backwards until each wanted run has its latest status line.
    """
    ids = sorted(run_ids(root), key=lambda i: (i[:15], i), reverse=True)
    wanted = ids[: n * 2 + 10]  # spare ones: a broken folder is skipped, not counted
    need = set(wanted)
    lines: dict[str, list[dict]] = {}
    for raw in lines_backwards(LogDir(root).index):
        if not need:
            break
        try:
            entry = json.loads(raw)
            run_id = entry["id"]
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
        if not isinstance(run_id, str) or not _record.summary_ok(entry):
            continue
        if run_id in need:
            lines.setdefault(run_id, []).append(entry)
            if "status" in entry:
                need.discard(run_id)
    out: list[dict] = []
    full_at = None  # the start second of the n-th run: later ones of that second may be newer
    for run_id in wanted:
        if full_at is not None and run_id[:15] != full_at:
            break
        got = lines.get(run_id)
        merged = None
        if got:
            for e in reversed(got):  # oldest first, newer values win
                merged = _merge(merged, _record.from_index(e))
        if merged is not None and merged.get("status") not in (None, "running"):
            _record.complete(merged)
            merged.setdefault("dir", os.path.join(root, run_id))
            out.append(merged)
        else:  # not in the index, or still running: the folder is the truth
            s = _summary_of(root, run_id, merged, warn)
            if s is None:
                continue
            out.append(s)
        if len(out) == n:
            full_at = run_id[:15]
    # ids of the same second ("-2" … "-10", names) do not sort by time: order as sorted_runs does
    out.sort(key=newest_first_key, reverse=True)
    return out[:n]


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
            latest.build(root, read(root))
        except OSError:
            pass  # a read-only log directory: the index serves
    return found


def _scan_previous(root: str, script_path: str, before: str, exclude: str) -> dict | None:
    # the path as this runlog writes it, and as an ASCII-only JSON writer would
    needles = {json.dumps(script_path, ensure_ascii=False).encode("utf-8", "surrogateescape"),
               json.dumps(script_path).encode("ascii")}
    for line in lines_backwards(LogDir(root).index):
        if b'"finished"' not in line or not any(n in line for n in needles):
            continue
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if (isinstance(entry, dict) and _record.summary_ok(entry) and entry.get("status") == "finished"
                and entry.get("script_path") == script_path and entry.get("id") != exclude
                and str(entry.get("started_at")) <= before):
            return _record.from_index(entry)
    return None


def lines_backwards(path: str, block: int = 65536) -> Iterator[bytes]:
    """The lines of a file, last first, read in blocks from its end."""
    try:
        f = open(path, "rb")
    except OSError:
        return
    with f:
        pos = f.seek(0, os.SEEK_END)
        rest = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            lines = (f.read(step) + rest).split(b"\n")
            rest = lines.pop(0)
            yield from reversed(lines)
        if rest:
            yield rest


# ---------------------------------------------------------------- resolving RUN


class NoSuchRun(LookupError):
    pass


def resolve(root: str, spec: str | None, runs: list[dict] | None = None) -> dict:
    """Find one run by full id, unique prefix, or -1 / -2 … (newest first).

    A whole id names that run or nothing: a folder of that name whose record
    is unreadable is an error, never another run that shares the prefix.
    """
    if spec is None or spec == "":
        spec = "-1"
    if not (spec.startswith("-") and spec[1:].isdigit()):
        exact = LogDir(root).run(spec)
        if is_run_name(spec) and os.sep not in spec and os.path.isdir(exact.path):
            found = [r for r in runs if r["id"] == spec] if runs is not None else []
            if found:
                return found[0]
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
    if spec.startswith("-") and spec[1:].isdigit():
        n = int(spec[1:])
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
    return RunFolder(entry.get("dir") or os.path.join(root, entry["id"]))
