"""The Optuna study behind a sweep: its storage, the workers' loop, and its table.

Every process working on one study — local sweeps on several machines, the
tasks of a Slurm array — takes trials with ``study.ask()``. Optuna numbers the
trials atomically in the storage, so the rule "a trial numbered past the
study's total is not run" gives each trial to exactly one worker without a
lock of our own. A grid's points are enqueued once (by the one process that
creates the study) and handed out by ``ask()`` the same way: Optuna moves a
waiting trial to running with a compare-and-set, so no point runs twice.

What a trial did is kept in the study as user attributes (``runlog``: its
sweep, command, host and Slurm task; ``runlog_run``; ``runlog_end``: its
status and exit code), so any process that can open the
storage prints the study's table, not only its own trials.
"""

from __future__ import annotations

import json
import os
import sys
import time

from .common import CliError

OVERFLOW = "runlog_overflow"  # a trial asked for after the total was reached: never run
JOURNAL_PREFIX = "journal:"


def need_optuna():
    try:
        import optuna
    except ImportError:
        raise CliError("this sweep needs Optuna: pip install 'runlog[sweep]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def normalise(storage: str | None) -> str | None:
    """A storage spec that means the same from any directory and any node.

    ``journal:PATH`` (or a path that is not a URL) is Optuna's journal file;
    ``sqlite:///relative.db`` becomes absolute; other URLs are kept.
    """
    if not storage:
        return None
    if storage.startswith(JOURNAL_PREFIX):
        return JOURNAL_PREFIX + os.path.abspath(storage[len(JOURNAL_PREFIX):])
    if "://" not in storage:
        return JOURNAL_PREFIX + os.path.abspath(storage)
    if storage.startswith("sqlite:///") and not storage.startswith("sqlite:////"):
        return "sqlite:///" + os.path.abspath(storage[len("sqlite:///"):])
    return storage


def open_storage(storage: str | None):
    """What ``optuna.create_study(storage=...)`` takes: None (in memory), a URL, or a journal."""
    if storage and storage.startswith(JOURNAL_PREFIX):
        from optuna.storages import JournalStorage

        try:
            from optuna.storages.journal import JournalFileBackend
        except ImportError:  # Optuna 3
            from optuna.storages import JournalFileStorage as JournalFileBackend
        path = storage[len(JOURNAL_PREFIX):]
        try:
            return JournalStorage(JournalFileBackend(path))
        except OSError as e:
            raise CliError(f"cannot open the journal file {path} ({e.strerror or e})") from None
    return storage


def open_study(storage: str | None, name: str, direction: str | None, create: bool = True,
               total: int | None = None, prune: bool = False):
    """Create or join the study (``create=False``: only join an existing one).

    With a small budget TPE's ten random start-up trials would be the whole search:
    a third of the budget is random, the rest guided; ``constant_liar`` keeps parallel
    workers from asking for the same point as a running trial. ``prune``: Optuna's
    median pruner, judging from the first finished trial on in a small study.
    """
    optuna = need_optuna()
    sampler = None
    if total is not None:
        sampler = optuna.samplers.TPESampler(n_startup_trials=max(2, min(10, total // 3)),
                                             constant_liar=True)
    pruner = None
    if prune:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, (total or 0) // 5)),
                                             n_warmup_steps=0)
    for attempt in range(6):
        try:
            if not create:
                return optuna.load_study(study_name=name, storage=open_storage(storage))
            return optuna.create_study(
                study_name=name, storage=open_storage(storage), sampler=sampler, pruner=pruner,
                direction="maximize" if direction == "max" else "minimize", load_if_exists=True)
        except CliError:
            raise
        except Exception as e:
            # workers starting together race to create the storage's tables: try again
            if attempt == 5 or (not create and type(e).__name__ == "KeyError"):
                msg = str(e).splitlines()[0] if str(e) else ""
                raise CliError(f"could not open the Optuna study {name!r} ({type(e).__name__}: "
                               f"{msg})") from None
            time.sleep(0.2 + 0.3 * attempt)
    raise AssertionError("unreachable")


def enqueue_grid(study, combos: list[dict]) -> None:
    """Put every grid point in a new study as a waiting trial, numbered 0..N-1."""
    if study.get_trials(deepcopy=False):
        return  # enqueued already: the submitter started again on the same study
    for values in combos:
        study.enqueue_trial(values)


def spent(study, total: int) -> bool:
    """Whether the study's total is given out already (a cheap check before asking)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if len(trials) < total:
        return False
    return not any(t.state == TrialState.WAITING and t.number < total for t in trials)


def study_name(cmd: list[str], params: list, direction, name: str | None) -> str:
    if name:
        return name
    import hashlib  # the same sweep started elsewhere joins the same study

    key = json.dumps([cmd, [p.spec for p in params], direction])
    return f"runlog-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def run_optuna(sweep, trials: int | None, storage: str | None, name: str | None,
               prune: bool = False):
    """An Optuna study over the sweep; ``trials`` None is a grid (``--prune`` without an
    optimisation): its points enqueued in order, the pruner comparing them as they run."""
    from .sweep import grid_points

    if sweep.launcher is not None:
        sweep.launcher.begin()  # it boots while Optuna is imported
    need_optuna()
    storage = normalise(storage)
    points = grid_points(sweep.params) if trials is None else None
    trials = len(points) if points is not None else trials
    study = open_study(storage, study_name(sweep.cmd, sweep.params, sweep.direction, name),
                       sweep.direction, total=None if points is not None else trials, prune=prune)
    if points is not None:
        enqueue_grid(study, points)
    if storage:  # a shared study: `sweep show` reads it, and the table is the study's
        sweep.meta.update(storage=storage, study=study.study_name, total=trials)
    if prune:
        sweep.meta["prune"] = True
    sweep.on_run = note_run
    if prune:
        from .sweep_prune import Pruner

        sweep.pruner = Pruner(sweep)
        sweep.on_poll = sweep.pruner.poll
    sys.stderr.write(f"runlog sweep {sweep.id}: study {study.study_name!r}, {trials} trials in "
                     f"all, {sweep.jobs} at a time here\n")
    work(sweep, study, trials, {p.name: p.distribution() for p in sweep.params})
    return study


class Config:
    """One Optuna trial: a configuration that runs once per seed (once without seeds)."""

    def __init__(self, handle, k: int):
        self.handle, self.k = handle, k
        self.trials: list = []
        self.done: list = []
        self.told = False


def work(sweep, study, total: int, dists: dict) -> None:
    """Take trials from the study until its total is given out; run ``sweep.jobs`` runs at
    once. With seeds each Optuna trial is ``len(seeds)`` runs, and is told their mean."""
    running: list = []
    pending: list = []  # (config, seed): runs of configurations asked for already
    configs: dict[int, Config] = {}
    sweep.configs = configs  # the pruner reads them
    seeds = sweep.seeds or [None]
    exhausted = False
    again = requeued(study)
    while (not exhausted and sweep.more()) or running:
        # a Ctrl-C is looked at only here (sweep.more, in wait_any): never between a
        # trial asked for and started, or collected and told
        while len(running) < sweep.jobs and sweep.more():
            if not pending:
                handle = None if exhausted else _next(sweep, study, total, dists, again)
                if handle is None:
                    exhausted = True
                    break
                configs[handle.number] = c = Config(handle, len(seeds))
                pending += [(c, seed) for seed in seeds]
            c, seed = pending.pop(0)
            if c.told or any(x.pruned for x in c.trials):
                continue  # pruned before this repeat started
            trial = sweep.launch(c.handle.number, dict(c.handle.params), c.handle, seed=seed)
            c.trials.append(trial)
            if len(c.trials) == 1:  # one write each: on a journal file every attribute
                _attrs(c.handle, runlog={  # is an fsync'd append
                    "sweep": sweep.id, "command": trial.shown_cmd, "host": os.uname().nodename,
                    "slurm_job": os.environ.get("SLURM_ARRAY_JOB_ID"),
                    "slurm_task": os.environ.get("SLURM_ARRAY_TASK_ID")})
            running.append(trial)
        if not running:
            break
        for t in sweep.wait_any(running):
            running.remove(t)
            sweep.collect(t)
            c = configs[t.n]
            c.done.append(t)
            if not t.noted and c.k == 1:
                _attrs(t.handle, runlog_run=t.run_id)
            if not c.told and (len(c.done) == c.k or any(x.pruned for x in c.done)) and \
                    all(x.proc.poll() is not None for x in c.trials):
                end(sweep, study, c)
    for c in configs.values():  # stopped before every repeat ran: told what did
        if not c.told and not any(x.proc.poll() is None for x in c.trials):
            end(sweep, study, c)


def _next(sweep, study, total: int, dists: dict, again: list):
    """The next Optuna trial to run, or None once the study's total is given out."""
    from optuna.trial import TrialState

    if again:  # what this task ran when Slurm requeued it: the same trial again
        handle = again.pop(0)
        _attrs(handle, runlog_end={})  # running again: no end yet
        return handle
    if spent(study, total):
        return None
    handle = study.ask(dists)
    if handle.number >= total:  # another worker took the last one first
        handle.set_user_attr(OVERFLOW, True)
        study.tell(handle, state=TrialState.PRUNED)
        return None
    return handle


def end(sweep, study, c: Config) -> None:
    """Tell the study how a configuration did: the mean of its finished runs' metric (all
    its repeats, or those that finished), pruned, or failed when none has a value."""
    from optuna.trial import TrialState

    runs = sorted(c.done, key=lambda t: -1 if t.seed is None else t.seed)
    if _in_slurm() and any(t.status != "finished" for t in runs) and (
            sweep.stopping or any(t.proc.returncode == -15 for t in runs)):
        # stopped by Slurm (requeue, preemption: a SIGTERM to every process of the job,
        # which may reach the trial before this worker): left running, for this task once
        # requeued
        return
    c.told = True
    values = [t.metric for t in runs if t.status == "finished" and t.metric is not None]
    pruned = any(t.pruned for t in runs)
    status = "pruned" if pruned else ("finished" if values else
                                      next((t.status for t in runs if t.status != "finished"),
                                           "failed"))
    info = {"status": status, "exit_code": runs[0].exit_code if runs else None}
    if sweep.seeds:  # each run, for the study's table
        info["runs"] = [{"run": t.run_id, "seed": t.seed, "status": t.status, "metric": t.metric,
                         "exit_code": t.exit_code} for t in runs]
    _attrs(c.handle, runlog_end=info)
    if pruned:
        study.tell(c.handle, state=TrialState.PRUNED)
        return
    if values and sweep.pruner is not None:
        sweep.pruner.final(c, runs)
    if values:
        study.tell(c.handle, sum(values) / len(values))
    else:  # failed, or never reported the metric: the study learns it failed
        study.tell(c.handle, state=TrialState.FAIL)


def _in_slurm() -> bool:
    return bool(os.environ.get("SLURM_ARRAY_JOB_ID"))


def requeued(study) -> list:
    """The trials this array task was running when Slurm stopped it, when it has been
    requeued (``SLURM_RESTART_COUNT`` > 0): they run again under the same numbers, so
    each trial still runs to its end once and the study's total holds."""
    import optuna
    from optuna.trial import TrialState

    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if not job or not (os.environ.get("SLURM_RESTART_COUNT") or "0").strip("0"):
        return []
    mine = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if (t.user_attrs.get("runlog") or {}).get("slurm_job") == job
            and (t.user_attrs.get("runlog") or {}).get("slurm_task") == task]
    # a live handle on an existing trial: Optuna's Trial(study, id), the id being FrozenTrial's
    return [optuna.trial.Trial(study, t._trial_id) for t in mine]


def note_run(trial) -> None:
    """Tell the study which run a trial is, as soon as `runlog run` has made it."""
    if trial.handle is not None and trial.run_id:
        _attrs(trial.handle, runlog_run=trial.run_id)
        trial.noted = True


def _attrs(handle, **attrs) -> None:
    for k, v in attrs.items():
        if v is None:
            continue
        try:
            handle.set_user_attr(k, v)
        except Exception as e:  # the storage hiccuped: the trial goes on; the table says less
            sys.stderr.write(f"runlog sweep: could not note {k} in the study ({type(e).__name__})\n")


# ------------------------------------------------------------------ the study's table

_STATES = {"RUNNING": "running", "WAITING": "queued", "COMPLETE": "finished", "FAIL": "failed",
           "PRUNED": "pruned"}


def rows(study) -> list[dict]:
    """Every trial of the study (by any worker) in the shape of the sweep file's trials."""
    out = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if attrs.get(OVERFLOW):
            continue
        began = attrs.get("runlog") if isinstance(attrs.get("runlog"), dict) else {}
        end = attrs.get("runlog_end") if isinstance(attrs.get("runlog_end"), dict) else {}
        state = t.state.name
        status = end.get("status") or _STATES.get(state, state.lower())
        values = dict(t.params) or dict(t.system_attrs.get("fixed_params") or {})
        value = t.value if state == "COMPLETE" else None
        row = {"n": t.number, "values": values, "run": attrs.get("runlog_run"),
               "status": status, "metric": value, "exit_code": end.get("exit_code"),
               "command_line": began.get("command") or "", "sweep": began.get("sweep"),
               "host": began.get("host")}
        runs = end.get("runs") if isinstance(end.get("runs"), list) else None
        if runs:  # repeats (--repeat/--seeds): one row per run, as a local sweep's file has
            out += [dict(row, run=r.get("run"), seed=r.get("seed"), status=r.get("status"),
                         metric=r.get("metric"), exit_code=r.get("exit_code"))
                    for r in runs if isinstance(r, dict)]
        else:
            out.append(row)
    return out


def counts(trial_rows: list[dict]) -> dict:
    """Configurations by state (the runs of one configuration's seeds are one): ``done`` is
    those that ended, finished, failed or pruned."""
    by: dict = {}
    for r in trial_rows:
        by.setdefault(r["n"], set()).add(r["status"])
    c = {"finished": 0, "running": 0, "failed": 0, "queued": 0, "pruned": 0}
    for states in by.values():
        for s in ("running", "queued", "finished", "pruned"):
            if s in states:
                c[s] += 1
                break
        else:
            c["failed"] += 1
    c["done"] = c["finished"] + c["failed"] + c["pruned"]
    return c
