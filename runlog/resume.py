"""Which run a starting process continues, if any: preemption, requeue, ``resume=``.

- Explicitly: ``start(resume=ID)``, ``RUNLOG_RESUME=ID`` or ``runlog run
  --resume ID`` (ID as the CLI takes it: an id, a unique prefix, ``-1``…).
  Any run can be continued this way, a finished one too (to train it further).
- Automatically under Slurm: a process whose job (``SLURM_JOB_ID``, or
  ``SLURM_ARRAY_JOB_ID`` + ``SLURM_ARRAY_TASK_ID``) was restarted
  (``SLURM_RESTART_COUNT`` > 0) continues the newest run of the same script in
  that job, unless it finished. The run is found through a pointer written when
  the job's run started (``folder.segments``), else in the index's last lines.

A run whose process is still alive (same host, same pid and start time) is
never continued: the library says so once and starts a new run, ``runlog run``
stops with one line. The record of a continued run is the on-disk business of
``folder.segments``.
"""

from __future__ import annotations

import os

from .folder import index
from .folder.layout import RunFolder

ENV = "RUNLOG_RESUME"


class Refused(Exception):
    """A run that cannot be continued; the message is one line."""


def slurm(environ) -> dict | None:
    """The Slurm job this process is part of (``facts.scheduler``), None outside one, with
    ``key``: the name of the job across its restarts (an array task by its array job and
    task, as its own job id is per task)."""
    from .facts.scheduler import current

    job = current(environ)
    if job is None or job.get("kind") != "slurm":
        return None
    array, task = job.get("array_job_id"), job.get("array_task_id")
    restart = job.get("restart_count")
    job["restart_count"] = restart if isinstance(restart, int) else 0
    job["key"] = f"{array}_{task}" if array is not None and task is not None else str(job["job_id"])
    return job


class Plan:
    """What a starting run does: continue ``record`` (or start anew), as part of ``job``."""

    __slots__ = ("record", "job")

    def __init__(self, record: dict | None, job: dict | None):
        self.record, self.job = record, job

    def apply(self, fresh: dict, t0: float) -> dict:
        """The record to write: the old one with a new segment, or ``fresh`` (under a
        scheduler with its first segment, so a restart of the job can find it)."""
        from .folder import segments

        if self.record is None:
            if self.job:
                fresh["segments"] = [segments.segment(t0, self.job)]
            return fresh
        old = self.record
        end = RunFolder(old["dir"]).last_write() if old.get("status") == "running" else None
        return segments.reopen(old, fresh, t0, self.job, end)

    def marker(self, rec: dict) -> str:
        """The run.log line where a new segment begins."""
        n = len(rec.get("segments") or ())
        where = f" on {rec.get('host')}" if rec.get("host") else ""
        restart = self.job.get("restart_count") if self.job else None
        again = f", Slurm restart {restart}" if restart else ""
        return f"--- run {rec['id']} resumed (segment {n}){where}{again} ---"

    def remember(self, root: str, rec: dict) -> None:
        """Point the job's key at the run, for the job's next restart."""
        if self.job and rec.get("script_path"):
            from .folder import jobs

            jobs.remember(root, self.job["key"], rec["script_path"], rec["id"])


def plan(root: str, script_path: str | None, spec: str | None, environ=None) -> Plan | None:
    """The plan for a run starting now; raises ``Refused`` when ``spec`` cannot be
    continued. None: an ordinary new run outside a scheduler."""
    environ = os.environ if environ is None else environ
    job = slurm(environ)
    if spec:
        return Plan(_alive_check(_find(root, spec)), job)
    if job and job["restart_count"] > 0 and script_path:
        found = _of_job(root, job["key"], script_path)
        if found is not None:
            return Plan(_alive_check(found), job)
    return Plan(None, job) if job else None


def for_start(root: str, script_path: str | None, spec: str | None) -> Plan | None:
    """``plan()`` for the library: a run that cannot be continued is said once, and a
    new run starts instead. ``RUNLOG_RESUME`` is taken once per process."""
    global _env_taken
    if spec is None and not _env_taken:
        spec = os.environ.get(ENV) or None
        _env_taken = True
    try:
        return plan(root, script_path, spec)
    except Refused as e:
        from .console import say

        say(f"{e}; a new run is started")
        job = slurm(os.environ)
        return Plan(None, job) if job else None


_env_taken = False


def _find(root: str, spec: str) -> dict:
    """The full record of the run ``spec`` names, resolved as the CLI does."""
    n = index.minus_n(spec)
    if n is not None:
        got = index.newest(root, n) if n >= 1 else []
        if len(got) < n or n < 1:
            raise Refused(f"cannot resume {spec}: there are {len(got)} runs in {root}")
        run_id = got[n - 1]["id"]
    else:
        names = [i for i in index.run_ids(root) if i.startswith(spec)]
        if spec in names:
            names = [spec]
        if not names:
            raise Refused(f"cannot resume {spec!r}: no run matches it in {root}")
        if len(names) > 1:
            raise Refused(f"cannot resume {spec!r}: it matches {len(names)} runs "
                          f"({', '.join(sorted(names)[:3])}…)")
        run_id = names[0]
    rec = index.read_run(root, run_id)
    if rec is None:
        raise Refused(f"cannot resume {run_id}: it has no readable record")
    return rec


def _of_job(root: str, job_key: str, script_path: str) -> dict | None:
    """The unfinished run of this job's script, or None."""
    from .folder import jobs

    run_id = jobs.recall(root, job_key, script_path) or jobs.scan(root, job_key, script_path)
    if run_id is None:
        return None
    rec = index.read_run(root, run_id)
    if rec is None or rec.get("script_path") != script_path or rec.get("status") == "finished":
        return None
    return rec


def _alive_check(rec: dict) -> dict:
    from .folder.record import pid_alive

    here = os.uname().nodename if hasattr(os, "uname") else None
    if rec.get("status") == "running" and rec.get("host") in (None, here) and rec.get("pid") \
            and pid_alive(rec["pid"], rec.get("pid_start")):
        raise Refused(f"run {rec['id']} is still running (pid {rec['pid']}"
                      f"{' on ' + rec['host'] if rec.get('host') else ''}); it is not resumed")
    return rec
