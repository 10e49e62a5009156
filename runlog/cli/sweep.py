"""``runlog sweep``: a grid or an Optuna optimisation over any command, in parallel.

Every trial is an ordinary ``runlog run`` (same record, note, report), started
as its own process in its own session — so a Ctrl-C reaches only the sweep,
which forwards it to each running trial. The sweep's own Ctrl-C and SIGTERM are
noted, not raised (``sweep_launch.Interrupts``): its loops look at them between
one trial's bookkeeping and the next (``Sweep.more``), so every trial started
is collected, and told to the study, before the sweep ends. The sweep itself is a
small JSON file in ``<log dir>/.sweeps/`` that ``runlog sweep show`` reads.

- Only lists and integer ranges, no ``--trials``: a grid of every
  combination; ``--max``/``--min`` then rank it.
- A float range ``lo:hi[:log]`` or ``--trials K``: Optuna's ask-and-tell,
  with ``--storage URL`` for one study shared by sweeps on several machines
  (``sweep_study``).
- ``--slurm OPTS``: one Slurm job array whose tasks are workers of one study
  (``sweep_slurm``); ``--gpus``: a CUDA device slot per running trial
  (``sweep_gpus``). The table and ``runlog sweep show`` are in ``sweep_table``.
- ``--repeat K``/``--seeds``: each configuration runs once per seed (``sweep_repeats``);
  ``--prune``: Optuna's median pruner over the trials' metrics.jsonl (``sweep_prune``).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import sys
import tempfile
import time

from ..fmt import command_line, error_text, fmt_num
from ..folder import record
from ..folder.layout import LogDir
from ..folder.record import write_atomic
from . import sweep_launch
from .common import CliError, number

PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")


# ------------------------------------------------------------------ parameters


class Param:
    """One ``-p NAME=SPEC``: choices, an integer range, or a float range."""

    def __init__(self, text: str):
        name, eq, spec = text.partition("=")
        name = name.strip()
        if not eq or not name.isidentifier() or not spec:
            raise CliError(f"bad parameter {text!r}: use NAME=a,b,c or NAME=2..4 or NAME=lo:hi[:log]")
        self.name, self.spec = name, spec
        self.kind, self.choices, self.low, self.high, self.log = "choices", None, None, None, False
        self.spelled: dict[str, str] = {}  # a choice as typed: -p lr=1e-3 puts 1e-3 in the command
        m = re.fullmatch(r"(-?\d+)\.\.(-?\d+)", spec)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise CliError(f"bad range for {name}: {lo}..{hi} is empty")
            self.kind, self.low, self.high = "int", lo, hi
            self.choices = list(range(lo, hi + 1))
        elif ":" in spec and "," not in spec:
            parts = spec.split(":")
            if len(parts) not in (2, 3) or any(number(p) is None for p in parts[:2]) or (
                    len(parts) == 3 and parts[2] != "log"):
                raise CliError(f"bad float range for {name}: {spec!r} (use lo:hi or lo:hi:log)")
            self.kind, self.low, self.high = "float", float(parts[0]), float(parts[1])
            self.log = len(parts) == 3
            if self.low >= self.high or (self.log and self.low <= 0):
                raise CliError(f"bad float range for {name}: {spec!r}")
        else:
            self.choices = [_value(v) for v in spec.split(",")]
            self.spelled = {repr(v): w for v, w in zip(self.choices, spec.split(","))}

    def distribution(self):
        import optuna

        if self.kind == "int":
            return optuna.distributions.IntDistribution(self.low, self.high)
        if self.kind == "float":
            return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)
        return optuna.distributions.CategoricalDistribution(self.choices)


def _value(text: str):
    n = number(text)  # "true" stays text: it is put back into the command as written
    return text if n is None else n


def shown(v) -> str:
    if isinstance(v, float):
        return format(v, ".6g")
    return str(v)


def fill(cmd: list[str], params: list[Param], seeds: bool = False) -> None:
    """Check the placeholders: each one defined, each parameter used (``{seed}`` is
    defined by ``--repeat``/``--seeds``)."""
    names = {p.name for p in params} | ({"seed"} if seeds else set())
    used = set()
    for word in cmd:
        for m in PLACEHOLDER.finditer(word):
            if m.group(1) == "seed" and "seed" not in names:
                raise CliError("the command uses {seed}: give --repeat K or --seeds 0,1,2 "
                               "(or -p seed=...)")
            if m.group(1) not in names:
                raise CliError(f"the command uses {{{m.group(1)}}} but no -p {m.group(1)}=... "
                               "defines it")
            used.add(m.group(1))
    unused = [p.name for p in params if p.name not in used]
    if unused:
        raise CliError(f"parameter {unused[0]!r} is not used in the command: put "
                       f"{{{unused[0]}}} where its value goes")


def substitute(cmd: list[str], values: dict) -> list[str]:
    return [PLACEHOLDER.sub(lambda m: shown(values[m.group(1)]), w) for w in cmd]


# ------------------------------------------------------------------ trials


class Trial:
    """One run of a configuration: ``n`` is the configuration (grid point or Optuna trial),
    ``seed`` which of its repeats (None without ``--repeat``/``--seeds``)."""

    def __init__(self, n: int, values: dict, cmd: list[str], proc, id_file: str, handle=None,
                 gpus: str | None = None, seed: int | None = None):
        self.n, self.values, self.cmd, self.proc, self.id_file = n, values, cmd, proc, id_file
        self.seed = seed
        self.pruned = False  # stopped by the pruner (--prune)
        self.handle = handle  # the Optuna trial, when optimising
        self.gpus = gpus  # its CUDA_VISIBLE_DEVICES, with --gpus
        self.shown_cmd = command_line(cmd)
        self.run_id = None
        self.noted = False  # the study was told its run id
        self.status = "running"
        self.metric = None
        self.metrics: dict = {}
        self.exit_code = None
        self.error = None  # "Type: message" of a failed trial
        self.started = time.time()


def new_id(root: str, name: str | None) -> str:
    """A fresh sweep id (the start time, then the name), its file made to claim it."""
    sweeps = LogDir(root).sweeps
    os.makedirs(sweeps, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{name}" if name else stamp
    n = 1
    while True:
        sweep_id = base if n == 1 else f"{base}-{n}"
        try:
            os.close(os.open(LogDir(root).sweep(sweep_id),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            return sweep_id
        except FileExistsError:
            n += 1


class Sweep:
    """The trials this process runs. ``meta`` is what the sweep file says about the sweep
    beyond its trials (its study, storage, Slurm array); a Slurm worker gets the id of
    the sweep it works for and never writes the file (the submitter owns it)."""

    def __init__(self, root: str, params: list[Param], cmd: list[str], jobs: int,
                 metric: str | None, direction: str | None, note, name, tags,
                 sweep_id: str | None = None, gpus=None, seeds: list[int] | None = None,
                 interrupts: sweep_launch.Interrupts | None = None):
        self.root, self.params, self.cmd, self.jobs = root, params, cmd, jobs
        self.metric, self.direction = metric, direction
        self.note, self.tags = note, list(tags)
        self.worker = sweep_id is not None
        self.id = sweep_id or new_id(root, name)
        self.meta: dict = {}
        self.gpus = gpus  # a sweep_gpus.Slots, or None
        self.seeds = seeds  # each configuration runs once per seed (--repeat, --seeds)
        if seeds:
            self.meta["seeds"] = seeds
        self.trials: list[Trial] = []
        self.tmp = tempfile.mkdtemp(prefix="runlog-sweep-")
        self.stopping = False
        self.on_run = None  # called with a trial once its run id is known
        self.on_poll = None  # called about twice a second while trials run (the pruner)
        self.pruner = None  # a sweep_prune.Pruner with --prune
        self.launcher = sweep_launch.Launcher.open()  # forks the trials (None: new interpreters)
        # the signals it heeds: entered (``with``) by the command that runs the sweep
        self.interrupts = interrupts or sweep_launch.Interrupts()

    def close(self) -> None:
        """No more trials from this process: its launcher may exit."""
        if self.launcher is not None:
            self.launcher.close()

    @property
    def path(self) -> str:
        return LogDir(self.root).sweep(self.id)

    def launch(self, n: int, values: dict, handle=None, seed: int | None = None) -> Trial:
        # each value as it goes into the command and the tags: as typed in -p, else shown()
        words = {p.name: p.spelled.get(repr(values[p.name]), shown(values[p.name])) for p in self.params}
        if seed is not None:
            words["seed"] = str(seed)
        cmd = substitute(self.cmd, words)
        id_file = os.path.join(self.tmp, f"trial-{n}" + (f"-seed{seed}" if seed is not None else ""))
        argv = ["--dir", self.root, "run"]
        if self.note:
            argv += ["--note", self.note]
        for t in [f"sweep:{self.id}", *(f"{k}={words[k]}" for k in values), *self.tags]:
            argv += ["--tag", t]
        key = {"id": self.id, "trial": n, "params": values,
               "seed": seed if seed is not None else values.get("seed")}
        if self.meta.get("study"):
            key["study"] = self.meta["study"]
        env = dict(os.environ, RUNLOG_ID_FILE=id_file)
        env.pop("RUNLOG_RESUME", None)  # each trial is a run of its own, never a resumed one
        env[record.PRUNE_ENV] = id_file + ".pruned"  # written before the pruner stops it
        if seed is not None:
            env["SEED"] = str(seed)
        gpus = self.gpus.take() if self.gpus else None
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = key["gpus"] = gpus
        env[record.SWEEP_ENV] = json.dumps(key, default=str)
        try:
            proc = sweep_launch.start(self.launcher, [*argv, "--", *cmd], env, quiet=self.jobs > 1)
        except BaseException:
            if self.gpus:
                self.gpus.give(gpus)
            raise
        trial = Trial(n, values, cmd, proc, id_file, handle, gpus, seed)
        self.trials.append(trial)
        sys.stderr.write(f"runlog sweep: trial {_which(trial)} started"
                         + (f" on GPU {gpus}" if gpus is not None else "")
                         + f": {trial.shown_cmd}\n")
        sys.stderr.flush()
        return trial

    def _read_id(self, trial: Trial) -> None:
        try:
            with open(trial.id_file, encoding="utf-8") as f:
                trial.run_id = f.read().strip() or None
        except OSError:
            trial.run_id = None

    def collect(self, trial: Trial) -> None:
        trial.exit_code = trial.proc.returncode
        if self.gpus and trial.gpus is not None:
            self.gpus.give(trial.gpus)
        self._read_id(trial)
        rec = None
        if trial.run_id:
            try:
                rec = record.read(LogDir(self.root).run(trial.run_id).path)
            except record.RecordError:
                rec = None
        if getattr(trial.proc, "lost", False):  # its launcher went away: the record knows
            trial.exit_code = (rec or {}).get("exit_code", trial.exit_code)
        trial.status = (rec or {}).get("status") or ("finished" if trial.exit_code == 0
                                                      else "failed")
        trial.metrics = {k: v.get("last") for k, v in ((rec or {}).get("metrics") or {}).items()}
        trial.error = error_text((rec or {}).get("error")) or None
        if self.metric:
            v = trial.metrics.get(self.metric)
            trial.metric = v if isinstance(v, (int, float)) and v == v else None
        line = f"runlog sweep: trial {_which(trial)} {trial.status}"
        if self.metric:
            line += f", {self.metric} {fmt_num(trial.metric) if trial.metric is not None else '—'}"
        line += f" ({trial.run_id})" if trial.run_id else ""
        sys.stderr.write(line + (f": {trial.error}" if trial.error else "") + "\n")
        self.save()

    def data(self) -> dict:
        return {
            "id": self.id, "command": self.cmd, "params": {p.name: p.spec for p in self.params},
            "metric": self.metric, "direction": self.direction, "jobs": self.jobs, **self.meta,
            "trials": [{"n": t.n, "values": t.values, "run": t.run_id, "status": t.status,
                        "metric": t.metric, "exit_code": t.exit_code, "error": t.error,
                        "command_line": t.shown_cmd, **({"gpus": t.gpus} if t.gpus else {}),
                        **({"seed": t.seed} if t.seed is not None else {})}
                       for t in self.trials],
        }

    def save(self, data: dict | None = None) -> None:
        if not self.worker:
            write_atomic(self.path, json.dumps(data or self.data(), indent=1, default=str))

    def prune(self, trial: Trial) -> None:
        """Stop a trial the pruner gave up on: say so where its `runlog run` looks (so its
        record says ``pruned``, not ``killed``), then SIGTERM its process group."""
        if trial.pruned or trial.proc.poll() is not None:
            return
        trial.pruned = True
        try:
            write_atomic(trial.id_file + ".pruned", "pruned")
        except OSError:
            pass
        try:
            os.killpg(trial.proc.pid, signal.SIGTERM)
        except OSError:
            pass
        sys.stderr.write(f"runlog sweep: trial {_which(trial)} pruned ({trial.run_id})\n")

    def more(self) -> bool:
        """Whether to start more trials: not once a Ctrl-C or SIGTERM came (heeded here)."""
        self.heed()
        return not self.stopping

    def heed(self) -> None:
        """Act on the signals noted since the last look: each stops the sweep (once) and
        is passed on to the running trials."""
        if self.interrupts.new():
            self.interrupt()

    def interrupt(self) -> None:
        """Stop starting trials; pass the interrupt to each running one."""
        if not self.stopping:
            sys.stderr.write("runlog sweep: interrupted: no new trials; stopping the running ones\n")
        self.stopping = True
        for t in self.trials:
            if t.proc.poll() is None:
                try:
                    t.proc.send_signal(signal.SIGINT)
                except OSError:
                    pass

    def wait_any(self, running: list[Trial]) -> list[Trial]:
        """Wait until at least one running trial ends; return those that ended."""
        polled = time.monotonic()
        while True:
            self.heed()
            done = [t for t in running if t.proc.poll() is not None]
            if done:
                return done
            for t in running:
                if t.run_id is None and self.on_run and os.path.exists(t.id_file):
                    self._read_id(t)
                    if t.run_id:
                        self.on_run(t)
            if self.on_poll is not None and time.monotonic() - polled >= 0.5:
                polled = time.monotonic()
                for t in running:
                    if t.run_id is None:
                        self._read_id(t)
                self.on_poll(running)
            ids = self.on_run and any(t.run_id is None for t in running)  # id files looked for
            sweep_launch.wait([t.proc for t in running], 0.01 if ids else (
                max(0.0, 0.5 - (time.monotonic() - polled)) if self.on_poll else 1.0),
                wake=self.interrupts.fd)


def _which(t: Trial) -> str:
    return f"{t.n}" if t.seed is None else f"{t.n} seed {t.seed}"


def run_grid(sweep: Sweep) -> None:
    combos = list(itertools.product(*[p.choices for p in sweep.params]))
    seeds = sweep.seeds or [None]
    sys.stderr.write(f"runlog sweep {sweep.id}: {len(combos)} trials"
                     + (f" x {len(seeds)} seeds" if sweep.seeds else "")
                     + f", {sweep.jobs} at a time\n")
    running: list[Trial] = []
    pending = [(n, combo, seed) for n, combo in enumerate(combos) for seed in seeds]
    while (pending and sweep.more()) or running:
        while pending and len(running) < sweep.jobs and sweep.more():
            n, combo, seed = pending.pop(0)
            running.append(sweep.launch(n, dict(zip([p.name for p in sweep.params], combo)),
                                        seed=seed))
        for t in sweep.wait_any(running):
            running.remove(t)
            sweep.collect(t)


def grid_points(params: list[Param]) -> list[dict]:
    names = [p.name for p in params]
    return [dict(zip(names, c)) for c in itertools.product(*[p.choices for p in params])]
