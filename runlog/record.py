"""run.json: the schema, values made JSON-safe, atomic reads and writes.

Sacred rewrites its run.json in place, so a crash mid-write leaves it corrupt.
Here every write goes to a temporary file in the same folder and is renamed
over the old one: a reader sees the old record or the new one, never half.
"""

from __future__ import annotations

import enum
import json
import os

SCHEMA = 1
RECORD = "run.json"
STATUSES = ("running", "finished", "failed", "interrupted", "killed")


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
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v, _depth + 1) for v in items]
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    name = getattr(value, "name", None)
    if hasattr(value, "read") or hasattr(value, "write"):
        # an open file from argparse.FileType: its name is what the user typed
        return str(name) if name is not None else repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    try:
        return str(value)
    except Exception:  # a broken __str__ must not lose the record
        return object.__repr__(value)


def clean_text(s: str) -> str:
    """A string that UTF-8 can hold: undecodable bytes from argv (surrogates) become U+FFFD."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def dumps(record: dict, pretty: bool = True) -> str:
    if not pretty:  # the C encoder: what start() can afford
        return json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")) + "\n"
    return json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n"


def write_record(run_dir: str, record: dict, pretty: bool = True) -> None:
    """Replace run.json; ``pretty=False`` for the writes while the run is going on."""
    write_atomic(os.path.join(run_dir, RECORD), dumps(record, pretty))


class RecordError(Exception):
    """A run folder whose run.json is missing or unreadable."""


def read_record(run_dir: str) -> dict:
    """Read a run's record, filling fields that older records lack."""
    path = os.path.join(run_dir, RECORD)
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        raise RecordError(f"{run_dir}: no {RECORD}") from None
    except (OSError, ValueError) as e:
        raise RecordError(f"{path}: unreadable ({e.__class__.__name__}: {e})") from None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
        raise RecordError(f"{path}: not a runlog record")
    record = upgrade(record)
    bad = [k for k, types in _SHAPES.items() if not isinstance(record[k], types)]
    if isinstance(record["metrics"], dict):
        bad += [f"metrics.{k}" for k, m in record["metrics"].items() if not isinstance(m, dict)]
    if bad:
        raise RecordError(f"{path}: corrupt ({', '.join(bad[:3])} of the wrong type)")
    for k in ("note", "name", "status", "started_at"):  # shown as text: a number is fine
        if record.get(k) is not None and not isinstance(record[k], str):
            record[k] = str(record[k])
    return record


# what readers index into or iterate: of another type, the record is corrupt
_SHAPES = {
    "args": dict, "metrics": dict, "git": (dict, type(None)), "error": (dict, type(None)),
    "tags": list, "command": list, "args_given": list,
    "duration_s": (int, float, type(None)),
}


def upgrade(record: dict) -> dict:
    """Records written by an older runlog stay readable: fill what they lack."""
    record.setdefault("schema", 0)
    for key in ("name", "note", "error", "git", "previous", "ended_at", "duration_s",
                "exit_code", "script", "cwd", "host", "pid", "python", "command_line",
                "started_at"):
        record.setdefault(key, None)
    record.setdefault("tags", [])
    record.setdefault("status", "running")
    record.setdefault("command", [])
    record.setdefault("args", {})
    record.setdefault("args_given", [])
    record.setdefault("metrics", {})
    return record
