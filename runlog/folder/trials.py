"""Sweep trials in the record: which sweep a run belongs to, and which run a trial is compared with.

A trial of ``runlog sweep`` is an ordinary run that says so in two ways: its
tags (``sweep:ID`` and one ``name=value`` per parameter, as every runlog has
written them) and, from newer runlogs, the record key ``sweep`` =
``{"id", "trial", "params", "seed"}``. ``sweep_of()`` reads either.

"What changed since" means most for a trial when it is compared with a
sibling it differs from in one parameter: ``previous()`` picks, among the
sweep's finished trials of the same script started before it, the one that
differs in the fewest parameters (none — another seed — or one), the newest
of those; failing that, the sweep's best trial so far (by the sweep's
``--max``/``--min`` metric); failing that, the script's previous run as for
any run (``index.previous``).
"""

from __future__ import annotations

import json
import os

from . import index
from . import record as _record
from .layout import LogDir

TAG = "sweep:"


def sweep_of(r: dict) -> dict | None:
    """``{"id", "trial", "params"}`` of a sweep trial's record or summary, else None."""
    key = r.get("sweep")
    tags = r.get("tags") if isinstance(r.get("tags"), list) else []
    typed = {}  # name=value tags: each value as typed in -p (1e-3, not 0.001)
    for t in tags:
        name, eq, value = str(t).partition("=")
        if eq and name.isidentifier():
            typed[name] = value
    if isinstance(key, dict) and isinstance(key.get("id"), str):
        params = dict(key["params"]) if isinstance(key.get("params"), dict) else {}
        for name, value in typed.items():  # shown as typed where it is the same value
            if name in params and _norm(value) == _norm(params[name]):
                params[name] = value
        return {"id": key["id"], "trial": key.get("trial"), "params": params}
    found = next((t[len(TAG):] for t in tags if isinstance(t, str) and t.startswith(TAG)), None)
    if not found:
        return None
    return {"id": found, "trial": None, "params": typed}


def _norm(v):
    """A parameter's value as compared: ``1e-3``, ``0.001`` and 0.001 are one value."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v))
    except ValueError:
        return str(v)


def differences(a: dict, b: dict) -> int:
    return sum(1 for k in set(a) | set(b) if _norm(a.get(k)) != _norm(b.get(k)))


def _sweep_file(root: str, sweep_id: str) -> dict | None:
    if os.sep in sweep_id or sweep_id.startswith("."):
        return None
    try:
        with open(LogDir(root).sweep(sweep_id), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError):
        return None
    from .shapes import fit_sweep

    return fit_sweep(data, sweep_id)


def siblings(root: str, sweep_id: str, data: dict | None) -> list[dict]:
    """The sweep's trials as run summaries (with ``dir``): those its file names, else (no
    file, or one that names no run yet) those the index holds, read from the index's end
    back to the sweep's start."""
    out: dict[str, dict] = {}
    if data is not None:
        for t in data.get("trials") or []:
            run_id = t.get("run") if isinstance(t, dict) else None
            if isinstance(run_id, str) and run_id not in out:
                rec = index.read_run(root, run_id)
                if rec is not None:
                    s = _record.summary(rec)
                    s["dir"] = rec["dir"]
                    out[run_id] = s
        if out:  # else (trials run elsewhere, by a scheduler) the index may know them
            return list(out.values())
    needle = sweep_id.encode("utf-8", "surrogateescape")
    since = sweep_id[:15]  # a sweep id starts with its start time, as a run id does
    for _, line in index.lines_backwards(LogDir(root).index):
        if needle not in line and b'"running"' not in line:
            continue
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        if entry.get("status") == "running" and entry["id"][:15] < since and since[:8].isdigit():
            break  # started before the sweep: every trial's line is after this one
        s = sweep_of(entry)
        if s is not None and s["id"] == sweep_id and entry["id"] not in out \
                and entry.get("status") not in (None, "running") and _record.summary_ok(entry):
            out[entry["id"]] = _record.from_index(entry)
    return list(out.values())


def _best(data: dict | None, candidates: list[dict]) -> dict | None:
    metric, direction = (data or {}).get("metric"), (data or {}).get("direction")
    if not isinstance(metric, str) or direction not in ("max", "min"):
        return None
    scored = []
    for c in candidates:
        v = ((c.get("metrics") or {}).get(metric) or {}).get("last")
        if isinstance(v, (int, float)) and v == v:
            scored.append((v, c))
    if not scored:
        return None
    pick = max if direction == "max" else min
    return pick(scored, key=lambda vc: vc[0])[1]


def previous_trial(root: str, rec: dict) -> dict | None:
    """The run a sweep trial is compared with (see the module's doc), or None."""
    me = sweep_of(rec)
    if me is None:
        return None
    data = _sweep_file(root, me["id"])
    before, script = str(rec.get("started_at")), rec.get("script_path")
    done = [c for c in siblings(root, me["id"], data)
            if c.get("id") != rec.get("id") and c.get("status") == "finished"
            and c.get("script_path") == script and str(c.get("started_at")) <= before]
    close = []
    for c in done:
        s = sweep_of(c)
        n = differences(me["params"], s["params"]) if s is not None else 99
        if n <= 1:
            close.append((n, str(c.get("started_at")), c["id"], c))
    if close:
        close.sort(key=lambda t: (t[1], t[2]), reverse=True)  # the newest …
        close.sort(key=lambda t: t[0])  # … of those that differ least
        return close[0][3]
    return _best(data, done)


def previous(root: str, rec: dict, build: bool = False) -> dict | None:
    """The run ``rec`` is compared with: the run it ``reproduces``; for a sweep trial,
    ``previous_trial``; otherwise (or when it finds none) the script's previous run
    (``index.previous``)."""
    if rec.get("reproduces"):
        return index.read_run(root, rec["reproduces"])
    try:
        found = previous_trial(root, rec)
    except OSError:
        found = None
    if found is not None:
        return found
    return index.previous(root, rec.get("script_path"), rec["started_at"], rec["id"], build=build)
