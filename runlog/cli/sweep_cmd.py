"""``runlog sweep``: what the command was asked, and which way it goes.

A grid or an optimisation on this machine (``sweep``), a Slurm job array
(``sweep_slurm``), one task of that array (``--worker``), or the table of a
sweep again (``sweep show``, from any node: ``sweep_table``).
"""

from __future__ import annotations

from . import sweep_table
from .common import CliError, out
from .sweep import Param, Sweep, fill, run_grid
from .sweep_launch import Interrupts


def sweep(root: str, cmd: list[str], params: list[str], jobs: int | None = None, maximize=None,
          minimize=None, trials: int | None = None, storage: str | None = None,
          name: str | None = None, note=None, tags=(), slurm: str | None = None,
          detach: bool = False, cancel_on_interrupt: bool = False, worker: str | None = None,
          gpus: str | None = None, gpus_per_trial: int = 1, repeat: int | None = None,
          seeds: str | None = None, prune: bool = False) -> int:
    if worker:
        from .sweep_slurm import work

        return work(root, worker)
    if cmd[:1] == ["show"]:
        return show(root, cmd[1] if len(cmd) > 1 else None)
    if not cmd:
        raise CliError("nothing to run: runlog sweep -p NAME=SPEC ... -- COMMAND ...")
    if not params:
        raise CliError("no parameters: give at least one -p NAME=SPEC")
    if jobs is not None and jobs < 1:
        raise CliError("-j needs at least 1")
    ps = [Param(p) for p in params]
    if len({p.name for p in ps}) != len(ps):
        raise CliError("a parameter is defined twice")
    seed_list = seed_values(repeat, seeds)
    if seed_list and any(p.name == "seed" for p in ps):
        raise CliError("-p seed=... and --repeat/--seeds both set the seed: use one of them")
    fill(cmd, ps, seeds=bool(seed_list))
    metric = maximize or minimize
    direction = "max" if maximize else ("min" if minimize else None)
    optimise = trials is not None or any(p.kind == "float" for p in ps)
    if optimise and not metric:
        what = "a float range" if any(p.kind == "float" for p in ps) else "--trials"
        raise CliError(f"{what} needs --max METRIC or --min METRIC (a grid takes lists and "
                       "ranges like 2..4)")
    if prune and not metric:
        raise CliError("--prune needs --max METRIC or --min METRIC: the metric it judges by")
    if slurm is not None:
        from .sweep_slurm import submit

        if gpus:
            raise CliError("--gpus is for sweeps on this machine; under Slurm ask for GPUs in "
                           "--slurm (e.g. --slurm='--gres=gpu:1')")
        return submit(root, cmd, ps, jobs or 1, metric, direction,
                      (trials or 20) if optimise else None, storage, name, note, tags, slurm,
                      detach=detach, cancel_on_interrupt=cancel_on_interrupt, seeds=seed_list,
                      prune=prune)
    if detach or cancel_on_interrupt:
        raise CliError("--detach and --cancel-on-interrupt are for --slurm sweeps")
    if storage and not optimise:
        raise CliError("--storage is for optimisation: add --trials K")
    slots = None
    if gpus:
        from .sweep_gpus import Slots

        slots = Slots.parse(gpus, gpus_per_trial, jobs)
        jobs = jobs or len(slots)
    # Ctrl-C and SIGTERM are noted, not raised, from before the sweep's file is claimed
    # until its summary is printed: the sweep stops at a point of its own choosing
    with Interrupts() as interrupts:
        s = Sweep(root, ps, cmd, jobs or 1, metric, direction, note, name, tags, gpus=slots,
                  seeds=seed_list, interrupts=interrupts)
        s.save()
        study = None
        try:
            if optimise or prune:  # a grid with --prune: its points in an Optuna study, in order
                from .sweep_study import run_optuna

                study = run_optuna(s, (trials or 20) if optimise else None, storage, name, prune)
            else:
                run_grid(s)
        finally:
            s.close()
        data = s.data()
        if study is not None:  # the study's table: every worker's trials, not only ours
            from . import sweep_study

            data["trials"] = sweep_study.rows(study)
        s.save(data)
        sweep_table.print_summary(data)
        if interrupts.new():  # one that came after the last trial ended: still 130
            s.stopping = True
    failed = [t for t in s.trials if t.status != "finished"]
    return 130 if s.stopping else (1 if failed and len(failed) == len(s.trials) else 0)


def seed_values(repeat: int | None, seeds: str | None) -> list[int] | None:
    """The seeds each configuration runs with: ``--repeat K`` is 0..K-1, ``--seeds 0,1,2``
    as given; None when neither is given."""
    if repeat is not None and seeds is not None:
        raise CliError("--repeat and --seeds both say how often: use one of them")
    if repeat is not None:
        if repeat < 1:
            raise CliError("--repeat needs at least 1")
        return list(range(repeat))
    if seeds is None:
        return None
    try:
        out = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"--seeds {seeds!r}: give integers, e.g. --seeds 0,1,2") from None
    if not out or len(set(out)) != len(out):
        raise CliError(f"--seeds {seeds!r}: give distinct integers, e.g. --seeds 0,1,2")
    return out


def show(root: str, spec: str | None) -> int:
    data = sweep_table.live(sweep_table.load(root, sweep_table.find(root, spec)))
    slurm = data.get("slurm") or {}
    q = None
    if slurm.get("job_id"):
        from .sweep_slurm import queue_state

        q = queue_state(slurm["job_id"])
    gone = q is not None and not (q["pending"] or q["running"])
    sweep_table.settle(root, data["trials"], gone=gone)
    sweep_table.print_summary(data)
    if q is not None and not gone:
        out(f"Slurm array {slurm['job_id']}: {q['running']} tasks running, "
            f"{q['pending']} queued\n")
    return 0
