"""A run in segments: one folder for a run that was stopped and started again.

A Slurm job that is preempted or requeued starts its script again from the
top; the script reloads its checkpoint and goes on. Its record goes on too:
``segments`` lists each process that wrote the run — ``started_at``,
``ended_at``, ``status``, ``host``, ``pid``, and under a scheduler ``job``
(``JOBID`` or ``ARRAYJOB_TASK``) and ``restart`` (``SLURM_RESTART_COUNT``).
The first segment is the original run.

A segment's metric points are told apart by their time: a point belongs to the
segment that had started when it was written. When a segment logs a metric at
a step an earlier segment had reached, the training was rewound to a checkpoint
(TensorBoard purges such "expired" events on a restart too): the earlier
segments' points of that metric from that step on are dropped from the summary
— the later value wins, ``count`` counts no step twice, ``min``/``max`` are
over the points kept. metrics.jsonl keeps every point as written.

The job pointers that find a requeued job's run are in ``jobs``.
"""

from __future__ import annotations

import os

from .times import iso, parse_iso

KEYS = ("started_at", "ended_at", "status", "host", "pid")


# ---------------------------------------------------------------- the list


def segment(t0: float, job: dict | None = None) -> dict:
    """A segment starting now, in this process."""
    seg = {"started_at": iso(t0), "ended_at": None, "status": "running",
           "host": os.uname().nodename if hasattr(os, "uname") else None, "pid": os.getpid()}
    if job:
        seg["job"], seg["restart"] = job.get("key"), job.get("restart_count")
    return seg


def of(rec: dict) -> list[dict]:
    """The segments of a record: the list it has, else the run as its one segment."""
    segs = rec.get("segments")
    if isinstance(segs, list) and segs and all(isinstance(s, dict) for s in segs):
        return segs
    return [{k: rec.get(k) for k in KEYS}]


def count(rec: dict) -> int:
    segs = rec.get("segments")
    return len(segs) if isinstance(segs, list) else 1


def seconds(seg: dict) -> float | None:
    a, b = parse_iso(seg.get("started_at")), parse_iso(seg.get("ended_at"))
    return None if a is None or b is None else max(b - a, 0.0)


def total(segs: list[dict]) -> float | None:
    """The run's wall time: the sum of its segments' (the time between them not counted)."""
    times = [seconds(s) for s in segs]
    return round(sum(t for t in times if t is not None), 3) if any(t is not None for t in times) else None


def reopen(old: dict, fresh: dict, t0: float, job: dict | None, end: float | None) -> dict:
    """The record of a run going on in a new process: ``old`` as it was left, with this
    process's host, pid and start (from ``fresh``, a new record) and one segment more.

    ``end``: when a segment still marked running (its process gone) last wrote.
    """
    rec = dict(old)
    rec.pop("dir", None)
    rec.pop("shown_status", None)
    segs = [dict(s) for s in of(old)]
    last = segs[-1]
    if last.get("status") in (None, "running"):  # gone without a word: lost at its last write
        last["status"] = "lost"
        start = parse_iso(last.get("started_at"))
        if end is not None:
            last["ended_at"] = iso(max(end, start) if start is not None else end)
    elif last.get("ended_at") is None:
        last["ended_at"] = old.get("ended_at")
    segs.append(segment(t0, job))
    rec["segments"] = segs
    for k in ("host", "pid", "pid_start", "python"):
        rec[k] = fresh.get(k)
    rec.update(status="running", exit_code=None, error=None, ended_at=None)
    rec.pop("signal", None)
    rec.pop("startup_s", None)
    rec["duration_s"] = total(segs[:-1])
    return rec


def close(rec: dict, t: float, status: str) -> None:
    """The run ends: its last segment ends with it; ``duration_s`` is the segments' sum."""
    segs = rec.get("segments")
    if not isinstance(segs, list) or not segs or of(rec) is not segs:
        return
    segs[-1]["ended_at"] = iso(t)
    segs[-1]["status"] = status
    if len(segs) > 1:  # one segment: the run's own duration, to the clock's precision
        rec["duration_s"] = total(segs)


def settle(rec: dict, end: float | None) -> None:
    """A lost run in segments: its last segment ended at its last write."""
    segs = rec.get("segments")
    if not isinstance(segs, list) or not segs or end is None or of(rec) is not segs:
        return  # none, or not of the shape written (a damaged record is shown as it is)
    segs = rec["segments"] = [dict(s) for s in segs]
    start = parse_iso(segs[-1].get("started_at"))
    segs[-1]["ended_at"] = iso(max(end, start) if start is not None else end)
    segs[-1]["status"] = "lost"
    rec["duration_s"] = total(segs)


# ---------------------------------------------------------------- metrics across segments


def summarize(points: list[dict], segs: list[dict]) -> dict[str, dict]:
    """The metrics summary of a run in segments (see the module's text): a step repeated
    by a later segment keeps the later value; within a segment every point counts."""
    import bisect

    from .metrics import summarize as plain

    starts = [parse_iso(s.get("started_at")) for s in segs[1:]]
    starts = [t for t in starts if t is not None]
    if not starts:
        return plain(points)
    kept: dict[str, list[tuple[int, dict]]] = {}
    rewound: set[tuple[str, int]] = set()
    order = []
    for p in points:
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            continue
        t = p.get("time")
        seg = bisect.bisect_right(starts, t) if isinstance(t, (int, float)) else len(starts)
        name, step = p["name"], p.get("step")
        mine = kept.setdefault(name, [])
        if not mine:
            order.append(name)
        if isinstance(step, int) and (name, seg) not in rewound:
            rewound.add((name, seg))  # this segment's first step of the metric: rewound to it?
            mine[:] = [(s, q) for s, q in mine
                       if s == seg or not isinstance(q.get("step"), int) or q["step"] < step]
        mine.append((seg, p))
    return plain([p for name in order for _, p in kept[name]])


def summarize_run(run_dir: str, rec: dict) -> dict[str, dict]:
    from .metrics import read_points

    return summarize(read_points(run_dir), of(rec))
