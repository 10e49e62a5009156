"""The log directory: run ids, the index, listing runs, resolving "-1" or a prefix.

Each run is a folder named by its id. Besides the folders, the log directory
holds ``.runlog-index.jsonl``: one line per run event (started, finished,
noted), appended with a single write, so that listing 10,000 runs reads one
file instead of 10,000. The index is only a cache: a run folder it does not
know is read directly, and an index entry whose folder is gone is dropped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator  # not typing: its import costs 2 ms

from .record import RecordError, read_record

INDEX = ".runlog-index.jsonl"
NOTES = "notes.md"

# what the index keeps of a record: enough for ls, the report's comparison and --grep
INDEX_FIELDS = (
    "id", "name", "tags", "status", "exit_code", "started_at", "ended_at", "duration_s",
    "note", "script", "script_path", "args", "args_given", "metrics", "pid", "host",
    "git_short", "git_commit", "command_line", "notes",
)


def log_root(log_dir: str | os.PathLike | None = None) -> str:
    """The log directory: the argument, else $RUNLOG_DIR, else ./logs."""
    if log_dir is not None:
        return os.fspath(log_dir)
    return os.environ.get("RUNLOG_DIR") or "logs"


def new_run_dir(root: str, name: str | None = None, now: float | None = None) -> tuple[str, str]:
    """Create a fresh run folder and return (id, path).

    The id is the local start time, ``-<name>`` when named, and ``-2``, ``-3``…
    when another process took the same second: ``os.mkdir`` decides who wins,
    so concurrent starts never share a folder.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = f"{stamp}-{_safe_name(name)}" if name else stamp
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


def _safe_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "._+=" else "-" for c in str(name).strip())
    return keep.strip("-.")[:60] or "run"


def index_entry(record: dict, **extra) -> dict:
    git = record.get("git") or {}
    entry = {k: record.get(k) for k in INDEX_FIELDS if k in record}
    entry["git_short"] = git.get("short")
    entry["git_commit"] = git.get("commit")
    entry.update(extra)
    return entry


def append_index(root: str, entry: dict) -> None:
    """Append one line to the index with a single write (O_APPEND keeps lines whole)."""
    line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
    fd = os.open(os.path.join(root, INDEX), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_index(root: str) -> dict[str, dict]:
    """The newest index entry of every run, merged over its older ones."""
    entries: dict[str, dict] = {}
    try:
        with open(os.path.join(root, INDEX), "rb") as f:
            data = f.read()
    except OSError:
        return entries
    lines = [ln for ln in data.splitlines() if ln.strip()]
    try:  # one parse of all lines is twice as fast as one per line
        parsed = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:  # a torn last line after a crash, or junk: parse line by line
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except ValueError:
                continue  # the folder is the truth
    for entry in parsed:
        try:
            run_id = entry["id"]
            if not isinstance(run_id, str):
                continue
        except (KeyError, TypeError, IndexError):
            continue
        old = entries.get(run_id)
        if old is None:
            entries[run_id] = entry
        else:
            old.update(entry)
    return entries


def run_ids(root: str) -> list[str]:
    """Names of the folders in the log directory that hold a run.json."""
    try:
        it = os.scandir(root)
    except OSError:
        return []
    ids = []
    with it:
        for e in it:
            if e.name.startswith(".") or not e.is_dir():
                continue
            ids.append(e.name)
    return ids


def read_run(root: str, run_id: str, warn=None) -> dict | None:
    """A run folder's record, or None (with a warning for what looks like a broken run)."""
    path = os.path.join(root, run_id)
    try:
        record = read_record(path)
    except RecordError as e:
        if warn is not None and os.path.exists(os.path.join(path, "run.log")):
            warn(str(e))
        return None
    record["dir"] = path
    return record


def iter_records(root: str, warn=None, fresh_running: bool = True) -> Iterator[dict]:
    """Every run in the log directory, as index entries or full records, unordered.

    Entries the index has are used as they are, except a ``running`` one, which
    is read again from its folder (it may have finished after a hard kill left
    the index behind), and one without a status line (only notes: a run the
    index never saw start, noted later). Folders the index lacks are read from
    run.json; ones that are not runs are skipped, with a warning for a folder
    that looks like a broken run.
    """
    index = read_index(root)
    for run_id in run_ids(root):
        entry = index.get(run_id)
        status = entry.get("status") if entry is not None else None
        if status is not None and not (fresh_running and status == "running"):
            entry.setdefault("dir", os.path.join(root, run_id))
            yield entry
            continue
        record = read_run(root, run_id, warn)
        if record is None:
            continue
        if entry is not None and entry.get("notes"):
            record.setdefault("notes", entry["notes"])
        yield record


def newest_runs(root: str, n: int, warn=None) -> list[dict]:
    """The newest ``n`` runs, reading only the end of the index.

    Run ids start with their start time, so the newest ids are known from the
    folder names alone; their entries are near the end of the index. Lines are
    read backwards until each wanted run has its latest status line.
    """
    ids = sorted(run_ids(root), key=lambda i: (i[:15], i), reverse=True)
    wanted = ids[: n * 2 + 10]  # spare ones: a broken folder is skipped, not counted
    need = set(wanted)
    lines: dict[str, list[dict]] = {}
    for raw in _lines_backwards(os.path.join(root, INDEX)):
        if not need:
            break
        try:
            entry = json.loads(raw)
            run_id = entry["id"]
        except (ValueError, KeyError, TypeError):
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
        if got and got[-1].get("status") not in (None, "running"):
            merged: dict = {}
            for e in reversed(got):  # oldest first, newer values win
                merged.update(e)
            merged.setdefault("dir", os.path.join(root, run_id))
            out.append(merged)
        else:  # not in the index, or still running: the folder is the truth
            record = read_run(root, run_id, warn)
            if record is None:
                continue
            if got:
                for e in got:
                    if "notes" in e:
                        record.setdefault("notes", e["notes"])
                        break
            out.append(record)
        if len(out) == n:
            full_at = run_id[:15]
    # ids of the same second ("-2" … "-10", names) do not sort by time: order as sorted_runs does
    out.sort(key=_newest_first, reverse=True)
    return out[:n]


def sorted_runs(root: str, warn=None) -> list[dict]:
    """All runs, newest first (by start time, then id)."""
    runs = list(iter_records(root, warn=warn))
    runs.sort(key=_newest_first, reverse=True)
    return runs


def _newest_first(r: dict) -> tuple:
    """Start time, then the id with its collision number compared as a number (-9 < -10)."""
    run_id = r["id"]
    base, _, n = run_id.rpartition("-")
    if len(base) >= 15 and n.isdigit():
        return (str(r.get("started_at") or ""), base, int(n))
    return (str(r.get("started_at") or ""), run_id, 1)


def find_previous(root: str, script_path: str | None, before: str, exclude: str) -> dict | None:
    """The most recently finished run of the same script, started before ``before``.

    Reads the index from its end and parses only lines that name the script and
    a finished status, so the cost does not grow with the history.
    """
    if not script_path:
        return None
    key = b'"script_path":' + json.dumps(script_path, ensure_ascii=False).encode()
    for line in _lines_backwards(os.path.join(root, INDEX)):
        if key not in line or b'"status":"finished"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("id") != exclude and str(entry.get("started_at")) <= before:
            return entry
    return None


def _lines_backwards(path: str, block: int = 65536) -> Iterator[bytes]:
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


class NoSuchRun(LookupError):
    pass


def resolve(root: str, spec: str | None, runs: list[dict] | None = None) -> dict:
    """Find one run by full id, unique prefix, or -1 / -2 … (newest first)."""
    if runs is None:
        runs = sorted_runs(root)
    if not runs:
        raise NoSuchRun(f"no runs in {root}")
    if spec is None or spec == "":
        spec = "-1"
    if spec.startswith("-") and spec[1:].isdigit():
        n = int(spec[1:])
        if n < 1 or n > len(runs):
            raise NoSuchRun(f"no run {spec}: there are {len(runs)} runs in {root}")
        return runs[n - 1]
    exact = [r for r in runs if r["id"] == spec]
    if exact:
        return exact[0]
    matches = [r for r in runs if r["id"].startswith(spec)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NoSuchRun(f"no run matches {spec!r}")
    names = ", ".join(r["id"] for r in matches[:5])
    more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
    raise NoSuchRun(f"{spec!r} matches {len(matches)} runs: {names}{more}")


def add_note(run_dir: str, text: str, root: str | None = None) -> None:
    """Append a note with its time to a run's notes.md; notes are never rewritten."""
    import datetime

    text = str(text).strip()
    if not text:
        raise ValueError("a note needs some text")
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    path = os.path.join(run_dir, NOTES)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"## {stamp}\n\n{text}\n\n".encode())
    finally:
        os.close(fd)
    if root is not None:
        with open(path, encoding="utf-8") as f:
            notes = f.read()
        append_index(root, {"id": os.path.basename(run_dir), "notes": notes})
