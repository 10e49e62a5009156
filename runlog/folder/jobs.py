"""The run of each scheduler job: ``.runlog-jobs/<job>-<script key>`` holds its id.

A requeued Slurm job starts its script again; the pointer written when the
job's run started finds that run without reading the history. Like the index
it is a cache: without it the index's last lines are read (a run under a
scheduler carries its job in its segments, see ``segments``), and the run
folder decides.
"""

from __future__ import annotations

import os

from . import record as _record
from .layout import LogDir


def pointer(root: str, job_key: str, script_path: str) -> str:
    from .latest import key

    safe = "".join(c if c.isalnum() or c in "_-." else "-" for c in job_key)[:80]
    return os.path.join(LogDir(root).jobs, f"{safe}-{key(script_path)}")


def remember(root: str, job_key: str, script_path: str, run_id: str) -> None:
    path = pointer(root, job_key, script_path)
    try:
        _record.write_atomic(path, run_id)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _record.write_atomic(path, run_id)


def recall(root: str, job_key: str, script_path: str) -> str | None:
    try:
        with open(pointer(root, job_key, script_path), encoding="utf-8") as f:
            run_id = f.read().strip()
    except OSError:
        return None
    return run_id if run_id and os.sep not in run_id and not run_id.startswith(".") else None


def scan(root: str, job_key: str, script_path: str, max_lines: int = 20000) -> str | None:
    """Without a pointer: the newest run of the job's script in the index's last lines."""
    import json

    from .index import lines_backwards

    job = json.dumps(job_key).encode()
    needles = {json.dumps(script_path, ensure_ascii=False).encode("utf-8", "surrogateescape"),
               json.dumps(script_path).encode("ascii")}
    for n, (_, line) in enumerate(lines_backwards(LogDir(root).index)):
        if n >= max_lines:
            break
        if job not in line or not any(s in line for s in needles):
            continue
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(entry, dict) and entry.get("script_path") == script_path and any(
                isinstance(s, dict) and s.get("job") == job_key for s in entry.get("segments") or []):
            return entry.get("id") if isinstance(entry.get("id"), str) else None
    return None
