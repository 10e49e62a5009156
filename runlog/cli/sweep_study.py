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
               total: int | None = None):
    """Create or join the study (``create=False``: only join an existing one).

    With a small budget TPE's ten random start-up trials would be the whole search:
    a third of the budget is random, the rest guided; ``constant_liar`` keeps parallel
    workers from asking for the same point as a running trial.
    """
    optuna = need_optuna()
    sampler = None
    if total is not None:
        sampler = optuna.samplers.TPESampler(n_startup_trials=max(2, min(10, total // 3)),
                                             constant_liar=True)
    for attempt in range(6):
        try:
            if not create:
                return optuna.load_study(study_name=name, storage=open_storage(storage))
            return optuna.create_study(
                study_name=name, storage=open_storage(storage), sampler=sampler,
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


def work(sweep, study, total: int, dists: dict) -> None:
    """Take trials from the study until its total is given out; run ``sweep.jobs`` at once."""
    from optuna.trial import TrialState

    running = []
    exhausted = False
    again = requeued(study)
    while (not exhausted and not sweep.stopping) or running:
        try:
            while not exhausted and not sweep.stopping and len(running) < sweep.jobs:
                if again:  # what this task ran when Slurm requeued it: the same trial again
                    handle = again.pop(0)
                    _attrs(handle, runlog_end={})  # running again: no end yet
                elif spent(study, total):
                    exhausted = True
                    break
                else:
                    handle = study.ask(dists)
                if handle.number >= total:  # another worker took the last one first
                    handle.set_user_attr(OVERFLOW, True)
                    study.tell(handle, state=TrialState.PRUNED)
                    exhausted = True
                    break
                trial = sweep.launch(handle.number, dict(handle.params), handle)
                # one write each: on a journal file every attribute is an fsync'd append
                _attrs(handle, runlog={
                    "sweep": sweep.id, "command": trial.shown_cmd, "host": os.uname().nodename,
                    "slurm_job": os.environ.get("SLURM_ARRAY_JOB_ID"),
                    "slurm_task": os.environ.get("SLURM_ARRAY_TASK_ID")})
                running.append(trial)
            if not running:
                break
            for t in sweep.wait_any(running):
                running.remove(t)
                sweep.collect(t)
                if not t.noted:
                    _attrs(t.handle, runlog_run=t.run_id)
                _attrs(t.handle, runlog_end={"status": t.status, "exit_code": t.exit_code})
                if sweep.stopping and t.status != "finished" and _in_slurm():
                    continue  # stopped by Slurm: left running, for this task once requeued
                if t.metric is not None and t.status == "finished":
                    study.tell(t.handle, t.metric)
                else:  # failed, or never reported the metric: the study learns it failed
                    study.tell(t.handle, state=TrialState.FAIL)
        except KeyboardInterrupt:
            sweep.interrupt()


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
        out.append({"n": t.number, "values": values, "run": attrs.get("runlog_run"),
                    "status": status, "metric": value, "exit_code": end.get("exit_code"),
                    "command_line": began.get("command") or "", "sweep": began.get("sweep"),
                    "host": began.get("host")})
    return out


def counts(trial_rows: list[dict]) -> dict:
    c = {"finished": 0, "running": 0, "failed": 0, "queued": 0}
    for r in trial_rows:
        s = r["status"]
        key = s if s in c else ("failed" if s != "pruned" else None)
        if key:
            c[key] += 1
    return c
