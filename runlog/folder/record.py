"""run.json: the schema, new and upgraded records, atomic writes, and the one summary.

Sacred rewrites its run.json in place, so a crash mid-write leaves it corrupt.
Here every write goes to a temporary file in the same folder and is renamed
over the old one: a reader sees the old record or the new one, never half.

Every field is described in ``docs/record.md``. ``summary()`` is the only
projection of a record that readers of many runs get — the index line,
``runlog ls --json``, the journal and ``sync`` — so a running, finished and
lost run have the same keys.
"""

from __future__ import annotations

import enum
import json
import os
import sys
import time

from .layout import RECORD, file_in, loads, read_bytes
from .times import iso

SCHEMA = 1
STATUSES = ("running", "finished", "failed", "interrupted", "killed", "pruned")  # pruned: `sweep --prune`
SHOWN_STATUSES = STATUSES + ("lost",)  # lost: running, but its process is gone


# ---------------------------------------------------------------- values


def jsonable(value: object, _depth: int = 0) -> object:
    """Turn any argument value into something JSON holds, readably.

    Paths, enums, file objects and other objects become strings; containers
    are walked. Floats stay floats, including nan and inf.
    """
    if isinstance(value, str):
        return value if value.isascii() else clean_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if _depth > 20:
        return repr(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v, _depth + 1) for v in items]
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, os.PathLike):
        return clean_text(os.fspath(value)) if isinstance(os.fspath(value), str) else repr(value)
    name = getattr(value, "name", None)
    if hasattr(value, "read") or hasattr(value, "write"):
        # an open file from argparse.FileType: its name is what the user typed
        return clean_text(str(name)) if name is not None else repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    try:
        return clean_text(str(value))
    except Exception:  # a broken __str__ must not lose the record
        return object.__repr__(value)


def clean_text(s: str) -> str:
    """A string that UTF-8 can hold: undecodable bytes from argv (surrogates) become U+FFFD."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# ---------------------------------------------------------------- new record


def new_record(run_id: str, t0: float, *, command: list[str], command_line: str | None,
               script: str | None, script_path: str | None, note: str | None = None,
               name: str | None = None, tags=(), reproduces: str | None = None,
               scheduler: dict | None = None, sweep: dict | None = None,
               own_process: bool = False) -> dict:
    """The first run.json of a run; ``lifecycle`` fills the rest as the run goes on.

    ``reproduces``: the run id a ``runlog reproduce --run`` run reproduces (only then a key).
    ``own_process`` (``start()``): a script that changed directory before it has
    ``started_in``, the directory its command runs from (only then a key).
    """
    rec = {
        "schema": SCHEMA,
        "id": run_id,
        "name": clean_text(str(name)) if name is not None else None,
        "tags": [clean_text(str(t)) for t in tags],
        "status": "running",
        "exit_code": None,
        "error": None,
        "started_at": iso(t0),
        "ended_at": None,
        "duration_s": None,
        "command": command,
        "command_line": command_line,
        "cwd": clean_text(os.getcwd()),
        "script": script,
        "script_path": script_path,
        "note": note,
        "args": {},
        "args_given": [],
        "git": None,
        "host": os.uname().nodename if hasattr(os, "uname") else None,
        "pid": os.getpid(),
        "pid_start": process_start(os.getpid()),
        "python": sys.version.split()[0],
        "metrics": {},
        "previous": None,
        "scheduler": scheduler,
        "env": None,
        "machine": None,
        "resources": None,
        "data": None,
        "sweep": sweep,
    }
    if reproduces:
        rec["reproduces"] = reproduces
    if own_process:
        from ..args.startdir import started_in

        where = started_in()
        if where:
            rec["started_in"] = clean_text(where)
    return rec


def start_dir(rec: dict) -> str | None:
    """The directory the run's command was started in (and runs again from)."""
    where = rec.get("started_in")
    return where if isinstance(where, str) and where else rec.get("cwd")


# ---------------------------------------------------------------- a sweep's trial

SWEEP_ENV = "RUNLOG_SWEEP"  # `runlog sweep` hands each trial's ``sweep`` key to `runlog run`
PRUNE_ENV = "RUNLOG_PRUNE_FILE"  # the file `runlog sweep` writes before it stops a pruned trial
SWEEP_KEYS = ("id", "trial", "params", "seed", "gpus", "study")


def sweep_key(text: str | None) -> dict | None:
    """The ``sweep`` key of a trial's record from the JSON that `runlog sweep` passed, or
    None when it is absent or not an object (a stray variable must not break a run)."""
    if not text:
        return None
    try:
        given = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(given, dict) or not isinstance(given.get("id"), str):
        return None
    out = {k: jsonable(given.get(k)) for k in SWEEP_KEYS if k in given}
    for k in ("trial", "seed"):
        out.setdefault(k, None)
    if not isinstance(out.get("params"), dict):
        out["params"] = {}
    return out


# ---------------------------------------------------------------- reading and writing


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename; a failed write
    leaves no temporary file behind."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8", errors="replace") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def dumps(record: dict, pretty: bool = True) -> str:
    if not pretty:  # the C encoder: what start() can afford
        return json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")) + "\n"
    return json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n"


def write(run_dir: str, record: dict, pretty: bool = True) -> None:
    """Replace run.json; ``pretty=False`` for the writes while the run is going on."""
    try:
        text = dumps(record, pretty)
    except ValueError:  # a value JSON cannot hold in strict form (a circular config): as text
        text = dumps(jsonable(record), pretty)
    write_atomic(os.path.join(run_dir, RECORD), text)


class RecordError(Exception):
    """A run folder whose run.json is missing or unreadable."""


def read(run_dir: str) -> dict:
    """Read a run's record, filling fields that older records lack."""
    path = file_in(run_dir, RECORD)
    try:
        record = loads(read_bytes(path).decode("utf-8", "replace"))  # no file object
    except FileNotFoundError:
        raise RecordError(f"{run_dir}: no {RECORD}") from None
    except (OSError, ValueError, RecursionError) as e:
        raise RecordError(f"{path}: unreadable ({e.__class__.__name__}: {e})") from None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
        raise RecordError(f"{path}: not a runlog record")
    record = upgrade(record)
    bad = [k for k, types in _SHAPES.items() if not isinstance(record[k], types)]
    if isinstance(record["metrics"], dict):
        bad += [f"metrics.{k}" for k, m in record["metrics"].items() if not isinstance(m, dict)]
    if bad:
        raise RecordError(f"{path}: corrupt ({', '.join(bad[:3])} of the wrong type)")
    return _fit(record)  # every other field of a shape its readers can use


def _fit(record: dict) -> dict:
    """``shapes.fit``, imported at the first read (a start reads none), then called as itself."""
    global _fit
    from .shapes import fit as _fit
    return _fit(record)


# what readers index into or iterate: of another type, the record is corrupt
_SHAPES = {
    "args": dict, "metrics": dict, "git": (dict, type(None)), "error": (dict, type(None)),
    "tags": list, "command": list, "args_given": list,
    "duration_s": (int, float, type(None)),
}


def upgrade(record: dict) -> dict:
    """Records written by an older runlog stay readable: fill what they lack.

    Schema 0 (no "schema" key) lacked some fields; schema 1 is today's. Nothing
    is renamed, so an upgrade only adds keys with their empty values.
    """
    record.setdefault("schema", 0)
    for key in ("name", "note", "error", "git", "previous", "ended_at", "duration_s",
                "exit_code", "script", "script_path", "cwd", "host", "pid", "pid_start", "python",
                "command_line", "started_at", "scheduler", "env", "machine", "resources", "data",
                "sweep"):
        if key not in record:  # not setdefault: most records have every key, and a test is cheaper
            record[key] = None
    record.setdefault("tags", [])
    record.setdefault("status", "running")
    record.setdefault("command", [])
    record.setdefault("args", {})
    record.setdefault("args_given", [])
    record.setdefault("metrics", {})
    return record


# ---------------------------------------------------------------- the summary


SUMMARY_FIELDS = (
    "schema", "id", "name", "tags", "status", "exit_code", "signal", "started_at", "ended_at",
    "duration_s", "note", "script", "script_path", "command_line", "args", "args_given",
    "metrics", "pid", "pid_start", "host", "previous", "git", "error", "sweep", "python",
    "frameworks", "segments",
)
ERROR_MESSAGE = 200  # characters of an error's message in the summary
GIT_SUMMARY = ("commit", "short", "branch", "dirty")


def summary(record: dict) -> dict:
    """The projection of a record that every reader of many runs gets (and the index keeps).

    ``git`` is cut to commit, short, branch and dirty; ``notes`` (the text of
    notes.md) is added by the index when the run has notes.
    """
    out = {k: record.get(k) for k in SUMMARY_FIELDS}
    git = record.get("git")
    out["git"] = {k: git.get(k) for k in GIT_SUMMARY} if isinstance(git, dict) else None
    err = record.get("error")  # what `ls` shows of a failed run: its type and message, no traceback
    out["error"] = {"type": err.get("type"), "message": str(err.get("message") or "")[:ERROR_MESSAGE]} \
        if isinstance(err, dict) else None
    out["frameworks"] = frameworks_brief(record.get("env"))
    if record.get("notes"):
        out["notes"] = record["notes"]
    return out


def frameworks_brief(env) -> dict | None:
    """{"torch": "2.4.1", …}: the framework versions ``ls`` shows when they differ."""
    fw = env.get("frameworks") if isinstance(env, dict) else None
    if not isinstance(fw, dict) or not fw:
        return None
    return {k: v.get("version") for k, v in fw.items() if isinstance(v, dict)}


_SUMMARY_SHAPES = {
    "id": str, "status": (str, type(None)), "args": (dict, type(None)),
    "metrics": (dict, type(None)), "tags": (list, type(None)), "args_given": (list, type(None)),
    "git": (dict, type(None)), "duration_s": (int, float, type(None)), "error": (dict, type(None)),
    "sweep": (dict, type(None)),
    "started_at": (str, type(None)), "note": (str, type(None)), "name": (str, type(None)),
    "notes": (str, type(None)), "notes_added": str, "script_path": (str, type(None)),
    "frameworks": (dict, type(None)),
    "segments": (list, type(None)),
}


def summary_ok(entry: dict) -> bool:
    """Whether an index line has the shape readers rely on (valid JSON may still be wrong)."""
    for k, types in _SUMMARY_SHAPES.items():
        if k in entry and not isinstance(entry[k], types):
            return False
    m = entry.get("metrics")
    return not m or all(isinstance(v, dict) for v in m.values())


def from_index(entry: dict) -> dict:
    """An index line of any runlog version as a summary (older ones had ``git_short``/``git_commit``)."""
    if "git_short" in entry or "git_commit" in entry:
        short, commit = entry.pop("git_short", None), entry.pop("git_commit", None)
        if "git" not in entry:
            entry["git"] = {"commit": commit, "short": short, "branch": None, "dirty": None} \
                if commit or short else None
        complete(entry)  # a whole summary of an older runlog: the keys it did not write yet
    return _fit(entry)  # a hand-edited line: every field of a shape its readers can use


def process_start(pid) -> int | None:
    """When a process started, in clock ticks since boot (Linux); with the pid it names
    one process, where the pid alone may have been reused since."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError, TypeError):
        return None


def complete(entry: dict) -> dict:
    """A merged index entry with every summary key (older runlogs wrote fewer)."""
    if "status" in entry:
        for k in SUMMARY_FIELDS:
            if k not in entry:
                entry[k] = None
        if entry.get("tags") is None:
            entry["tags"] = []
        if entry.get("schema") is None:
            entry["schema"] = 0
    return entry


def process_started_at(pid_start: int | None) -> float | None:
    """The Unix time a process started, from its start in clock ticks since boot (Linux)."""
    if pid_start is None:
        return None
    try:
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + pid_start / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid, start=None) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, TypeError, ValueError):
        pass
    if start is not None:  # the pid is taken: by the same process, or a later one?
        now = process_start(pid)
        return now is None or now == start
    return True


def shown_status(r: dict) -> str:
    """``lost`` for a run still marked running whose process (on this host) is gone."""
    status = r.get("status") or "?"
    if r.get("shown_status") == "lost":  # decided already (a run killed while it started)
        return "lost"
    if status == "running" and r.get("host") in (None, os.uname().nodename):
        if r.get("pid") and not pid_alive(r["pid"], r.get("pid_start")):
            return "lost"
    return status
