"""``runlog sweep --slurm OPTS -j W``: one Slurm job array whose W tasks work on one study.

Submitting is ``sbatch --array=0-(W-1) --parsable`` of a small batch script
written next to the sweep's summary (``.sweeps/ID.sbatch``); each task runs
``runlog sweep --worker ID``, which reads the sweep from its summary file and
takes trials from the shared Optuna study (``sweep_study.work``) until the
study's total is given out. Placement is Slurm's, coordination the storage's:
no scheduler of our own. Plain ``sbatch`` rather than submitit: no extra
dependency, any command (not only Python callables), and the script is there
to read and resubmit by hand.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

from ..fmt import fmt_num
from ..folder.layout import LogDir
from . import sweep_study
from .common import CliError
from .sweep_launch import Interrupts


def queue_state(job_id: str) -> dict | None:
    """How many of the array's tasks Slurm holds queued and running; None when squeue is not
    there or does not answer (a busy controller is not an empty queue)."""
    try:
        p = subprocess.run(["squeue", "-h", "-r", "-j", str(job_id), "-o", "%T"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if p.returncode != 0 and "invalid job id" not in p.stderr.lower():
        return None
    states = p.stdout.split() if p.returncode == 0 else []  # "Invalid job id": it has left
    pending = sum(s in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED") for s in states)
    return {"pending": pending, "running": len(states) - pending}


def _sbatch(script: str, workers: int, opts: list[str], cwd: str) -> str:
    argv = ["sbatch", "--parsable", f"--array=0-{workers - 1}", *opts, script]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        raise CliError(f"sbatch failed: {e}") from None
    if p.returncode != 0:
        msg = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
        raise CliError(f"sbatch refused the array: {msg}")
    return p.stdout.strip().split(";")[0]


def batch_script(root: str, sweep_id: str, cwd: str) -> str:
    logs = LogDir(root)
    out_dir = logs.sweep(sweep_id, "slurm_out")
    os.makedirs(out_dir, exist_ok=True)
    path = logs.sweep(sweep_id, "batch")
    worker = [sys.executable, "-m", "runlog", "--dir", root, "sweep", "--worker", sweep_id]
    with open(path, "w", encoding="utf-8") as f:
        f.write("#!/bin/bash\n"
                f"#SBATCH --job-name=runlog-sweep-{sweep_id}\n"
                f"#SBATCH --output={os.path.join(out_dir, '%A_%a.out')}\n"
                f"# written by `runlog sweep --slurm`: each task of the array is a worker of\n"
                f"# sweep {sweep_id}'s study; resubmit with: sbatch --array=0-N {path}\n"
                f"cd {shlex.quote(cwd)}\n"
                f"exec {shlex.join(worker)}\n")
    return path


def submit(root: str, cmd: list[str], params: list, workers: int, metric, direction,
           trials: int | None, storage: str | None, name, note, tags, slurm: str, *,
           detach: bool = False, cancel_on_interrupt: bool = False, seeds=None,
           prune: bool = False) -> int:
    from .sweep import Sweep

    try:
        opts = shlex.split(slurm or "")
    except ValueError as e:
        raise CliError(f"--slurm {slurm!r}: {e}") from None
    if shutil.which("sbatch") is None:
        raise CliError("--slurm needs Slurm's sbatch on PATH (is this a login node?)")
    sweep_study.need_optuna()
    root = os.path.abspath(root)  # the workers may start elsewhere: every path absolute
    s = Sweep(root, params, cmd, workers, metric, direction, note, name, tags, seeds=seeds)
    if prune:
        s.meta["prune"] = True
    try:
        return _submit(s, trials, storage, name, slurm, opts, detach, cancel_on_interrupt)
    except CliError:
        for what in ("summary", "journal", "batch"):  # nothing was submitted: leave no sweep
            try:
                os.unlink(LogDir(root).sweep(s.id, what))
            except OSError:
                pass
        raise


def _submit(s, trials, storage, name, slurm, opts, detach, cancel_on_interrupt) -> int:
    from .sweep import grid_points

    root, params, workers, direction = s.root, s.params, s.jobs, s.direction
    storage = sweep_study.normalise(storage) or (
        sweep_study.JOURNAL_PREFIX + LogDir(root).sweep(s.id, "journal"))
    if storage.startswith("sqlite:"):
        sys.stderr.write("runlog sweep: warning: SQLite is not made for parallel workers and "
                         "corrupts on NFS (optuna#815); prefer the default journal file or a "
                         "database server\n")
    grid = trials is None
    points = grid_points(params) if grid else []
    total = len(points) if grid else trials
    study = sweep_study.open_study(storage, name or f"runlog-{s.id}", direction,
                                   prune=bool(s.meta.get("prune")))
    if grid:
        sweep_study.enqueue_grid(study, points)
    s.meta.update(kind="grid" if grid else "optuna", storage=storage, study=study.study_name,
                  total=total, note=s.note, tags=s.tags, cwd=os.getcwd(),
                  slurm={"options": slurm, "job_id": None})
    s.save()
    script = batch_script(root, s.id, os.getcwd())
    job = _sbatch(script, workers, opts, os.getcwd())
    s.meta["slurm"]["job_id"] = job
    s.save()
    sys.stderr.write(f"runlog sweep {s.id}: Slurm array {job} of {workers} tasks, {total} "
                     f"trials in study {study.study_name!r} ({storage})\n")
    if detach:
        sys.stderr.write(f"runlog sweep: follow it with: runlog sweep show {s.id}; cancel it "
                         f"with: scancel {job}\n")
        return 0
    return follow(s, study, job, total, cancel_on_interrupt)


def follow(s, study, job: str, total: int, cancel_on_interrupt: bool) -> int:
    """Show the study's progress until the array leaves Slurm's queue, then its table."""
    from . import sweep_table

    old = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    shown = Progress(total, s.metric, s.direction)
    interrupted = trimmed = False
    try:
        while True:
            rows = sweep_study.rows(study)
            q = queue_state(job)
            shown.update(rows, q)
            if q is not None and not (q["pending"] or q["running"]):
                break
            if q is None and not sweep_study.counts(rows)["running"] and sweep_study.spent(
                    study, total):
                break  # Slurm does not answer, but the study is done
            if q["pending"] and not trimmed and sweep_study.spent(study, total):
                # every trial is given out: a task still queued would start only to stop
                trimmed = subprocess.run(["scancel", "--state=PENDING", str(job)],
                                         capture_output=True).returncode == 0
            time.sleep(1.0)
    except KeyboardInterrupt:
        interrupted = True
        shown.close()
        _interrupted(s.id, job, cancel_on_interrupt)
    finally:
        shown.close()
        signal.signal(signal.SIGTERM, old)
    data = s.data()
    data["trials"] = sweep_study.rows(study)
    sweep_table.settle(s.root, data["trials"], gone=not interrupted)
    s.save(data)
    sweep_table.print_summary(data)
    if interrupted:
        return 130
    c = sweep_study.counts(data["trials"])
    if c["done"] < total:
        sys.stderr.write(f"runlog sweep: the Slurm array ended with {c['done']} "
                         f"of {total} trials done; its tasks' output is in "
                         f"{LogDir(s.root).sweep(s.id, 'slurm_out')}\n")
        return 1
    return 1 if c["finished"] == 0 else 0


def _interrupted(sweep_id: str, job: str, cancel: bool) -> None:
    if not cancel and sys.stdin.isatty() and sys.stderr.isatty():
        sys.stderr.write(f"\nCancel the Slurm array {job} (stops its running trials)? [y/N] ")
        sys.stderr.flush()
        try:
            cancel = sys.stdin.readline().strip().lower() in ("y", "yes")
        except (OSError, KeyboardInterrupt):
            cancel = False
    if cancel:
        p = subprocess.run(["scancel", str(job)], capture_output=True, text=True)
        if p.returncode == 0:
            sys.stderr.write(f"runlog sweep: cancelled the Slurm array {job}\n")
            _wait_gone(job)
            return
        sys.stderr.write(f"runlog sweep: scancel {job} failed: {p.stderr.strip()}\n")
    sys.stderr.write(f"runlog sweep: the Slurm array {job} goes on; see it with: runlog sweep show "
                     f"{sweep_id}; cancel it with: scancel {job}\n")


def _wait_gone(job: str, limit_s: float = 120.0) -> None:
    """After scancel, let the workers tell the study how their trials ended. A second
    Ctrl-C stops the waiting, not the summary: the table shows what the study has."""
    end = time.monotonic() + limit_s
    try:
        while time.monotonic() < end:
            q = queue_state(job)
            if q is not None and not (q["pending"] or q["running"]):
                return
            time.sleep(0.5)
    except KeyboardInterrupt:
        sys.stderr.write(f"runlog sweep: not waiting for the array {job} to end\n")


class Progress:
    """Trials done / running / failed, the array's tasks, the best so far: a rich bar on a
    terminal, a plain line on each change when piped."""

    def __init__(self, total: int, metric: str | None, direction: str | None):
        self.total, self.metric, self.direction = total, metric, direction
        self.last = None
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(BarColumn(bar_width=24), MofNCompleteColumn(),
                           TextColumn("{task.description}"), console=Console(stderr=True))
            self.task = self.bar.add_task("", total=total)
            self.bar.start()

    def text(self, rows: list[dict], q: dict | None, short: bool = False) -> str:
        c = sweep_study.counts(rows)
        parts = [f"{c['running']} running", f"{c['failed']} failed"]
        if not short:
            parts.insert(0, f"{c['done']}/{self.total} done")
        if q is not None:
            parts.append(f"Slurm: {q['running']} tasks running, {q['pending']} queued")
        scored = [r for r in rows if r.get("metric") is not None]
        if any(r.get("seed") is not None for r in rows) and self.metric:  # the best mean
            from .sweep_repeats import configurations

            scored = [{"n": c["n"], "metric": c["agg"]["mean"]}
                      for c in configurations(rows, self.metric) if c["agg"]["n"]]
        if scored and self.metric:
            pick = max if self.direction == "max" else min
            best = pick(scored, key=lambda r: r["metric"])
            parts.append(f"best {self.metric} {fmt_num(best['metric'])}"
                         + ("" if short else f" (trial {best['n']})"))
        return ", ".join(parts)

    def update(self, rows: list[dict], q: dict | None) -> None:
        line = self.text(rows, q, short=self.bar is not None)
        if self.bar is not None:
            c = sweep_study.counts(rows)
            self.bar.update(self.task, completed=c["done"], description=line)
        elif line != self.last:
            sys.stderr.write(f"runlog sweep: {line}\n")
            sys.stderr.flush()
        self.last = line

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def work(root: str, sweep_id: str) -> int:
    """One task of the array (``runlog sweep --worker ID``): trials until the study is done."""

    with Interrupts() as interrupts:  # Slurm's SIGTERM (or a Ctrl-C) noted, not raised
        return _work(root, sweep_id, interrupts)


def _work(root: str, sweep_id: str, interrupts) -> int:
    from . import sweep_table
    from .sweep import Param, Sweep

    data = sweep_table.load(root, sweep_id)
    params = [Param(f"{k}={v}") for k, v in data["params"].items()]
    s = Sweep(root, params, data["command"], 1, data.get("metric"), data.get("direction"),
              data.get("note"), None, data.get("tags") or [], sweep_id=sweep_id,
              seeds=data.get("seeds") or None, interrupts=interrupts)
    s.meta["study"] = data["study"]
    if s.launcher is not None:
        s.launcher.begin()  # it boots while Optuna is imported
    study = sweep_study.open_study(data["storage"], data["study"], data.get("direction"),
                                   total=None if data.get("kind") == "grid" else int(data["total"]),
                                   prune=bool(data.get("prune")))
    s.on_run = sweep_study.note_run
    if data.get("prune"):
        from .sweep_prune import Pruner

        s.pruner = Pruner(s)
        s.on_poll = s.pruner.poll
    task = os.environ.get("SLURM_ARRAY_TASK_ID", "?")
    sys.stderr.write(f"runlog sweep {sweep_id}: worker {task} on {os.uname().nodename}, study "
                     f"{data['study']!r}\n")
    try:
        sweep_study.work(s, study, int(data["total"]),
                         {p.name: p.distribution() for p in params})
    finally:
        s.close()
    sys.stderr.write(f"runlog sweep {sweep_id}: worker {task} done after {len(s.trials)} trials\n")
    return 130 if s.stopping else 0
