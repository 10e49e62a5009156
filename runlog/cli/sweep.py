"""``runlog sweep``: a grid or an Optuna optimisation over any command, in parallel.

Every trial is an ordinary ``runlog run`` (same record, note, report), started
as its own process in its own session — so a Ctrl-C reaches only the sweep,
which forwards it to each running trial exactly once. The sweep itself is a
small JSON file in ``<log dir>/.sweeps/`` that ``runlog sweep show`` reads.

- Only lists and integer ranges, no ``--trials``: a grid of every
  combination; ``--max``/``--min`` then rank it.
- A float range ``lo:hi[:log]`` or ``--trials K``: Optuna's ask-and-tell,
  with ``--storage URL`` for one study shared by sweeps on several machines.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from ..fmt import command_line, cut, error_text, fmt_num
from ..folder import record
from ..folder.layout import LogDir
from ..folder.record import write_atomic
from .common import CliError, number, out

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


def fill(cmd: list[str], params: list[Param]) -> None:
    """Check the placeholders: each one defined, each parameter used."""
    names = {p.name for p in params}
    used = set()
    for word in cmd:
        for m in PLACEHOLDER.finditer(word):
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
    def __init__(self, n: int, values: dict, cmd: list[str], proc, id_file: str, handle=None):
        self.n, self.values, self.cmd, self.proc, self.id_file = n, values, cmd, proc, id_file
        self.handle = handle  # the Optuna trial, when optimising
        self.run_id = None
        self.status = "running"
        self.metric = None
        self.exit_code = None
        self.error = None  # "Type: message" of a failed trial
        self.started = time.time()


class Sweep:
    def __init__(self, root: str, params: list[Param], cmd: list[str], jobs: int,
                 metric: str | None, direction: str | None, note, name, tags):
        self.root, self.params, self.cmd, self.jobs = root, params, cmd, jobs
        self.metric, self.direction = metric, direction
        self.note, self.tags = note, list(tags)
        os.makedirs(LogDir(root).sweeps, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{name}" if name else stamp
        n = 1
        while True:
            self.id = base if n == 1 else f"{base}-{n}"
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.close(fd)
                break
            except FileExistsError:
                n += 1
        self.trials: list[Trial] = []
        self.tmp = tempfile.mkdtemp(prefix="runlog-sweep-")
        self.stopping = False

    @property
    def path(self) -> str:
        return os.path.join(LogDir(self.root).sweeps, f"{self.id}.json")

    def launch(self, n: int, values: dict, handle=None) -> Trial:
        # each value as it goes into the command and the tags: as typed in -p, else shown()
        words = {p.name: p.spelled.get(repr(values[p.name]), shown(values[p.name])) for p in self.params}
        cmd = substitute(self.cmd, words)
        id_file = os.path.join(self.tmp, f"trial-{n}")
        argv = [sys.executable, "-m", "runlog", "--dir", self.root, "run"]
        if self.note:
            argv += ["--note", self.note]
        for t in [f"sweep:{self.id}", *(f"{k}={words[k]}" for k in values), *self.tags]:
            argv += ["--tag", t]
        env = dict(os.environ, RUNLOG_ID_FILE=id_file)
        proc = subprocess.Popen([*argv, "--", *cmd], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL if self.jobs > 1 else None,
                                stderr=subprocess.DEVNULL if self.jobs > 1 else None,
                                start_new_session=True)
        trial = Trial(n, values, cmd, proc, id_file, handle)
        self.trials.append(trial)
        sys.stderr.write(f"runlog sweep: trial {n} started: {command_line(cmd)}\n")
        sys.stderr.flush()
        return trial

    def collect(self, trial: Trial) -> None:
        trial.exit_code = trial.proc.returncode
        try:
            with open(trial.id_file, encoding="utf-8") as f:
                trial.run_id = f.read().strip() or None
        except OSError:
            trial.run_id = None
        rec = None
        if trial.run_id:
            try:
                rec = record.read(LogDir(self.root).run(trial.run_id).path)
            except record.RecordError:
                rec = None
        trial.status = (rec or {}).get("status") or ("finished" if trial.exit_code == 0
                                                      else "failed")
        trial.metrics = {k: v.get("last") for k, v in ((rec or {}).get("metrics") or {}).items()}
        trial.error = error_text((rec or {}).get("error")) or None
        if self.metric:
            v = trial.metrics.get(self.metric)
            trial.metric = v if isinstance(v, (int, float)) and v == v else None
        line = f"runlog sweep: trial {trial.n} {trial.status}"
        if self.metric:
            line += f", {self.metric} {fmt_num(trial.metric) if trial.metric is not None else '—'}"
        line += f" ({trial.run_id})" if trial.run_id else ""
        sys.stderr.write(line + (f": {trial.error}" if trial.error else "") + "\n")
        self.save()

    def save(self) -> None:
        data = {
            "id": self.id, "command": self.cmd, "params": {p.name: p.spec for p in self.params},
            "metric": self.metric, "direction": self.direction, "jobs": self.jobs,
            "trials": [{"n": t.n, "values": t.values, "run": t.run_id, "status": t.status,
                        "metric": t.metric, "exit_code": t.exit_code, "error": t.error,
                        "command_line": command_line(t.cmd)} for t in self.trials],
        }
        write_atomic(self.path, json.dumps(data, indent=1, default=str))

    def interrupt(self) -> None:
        """Stop starting trials; pass the interrupt to each running one, once."""
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
        while True:
            done = [t for t in running if t.proc.poll() is not None]
            if done:
                return done
            time.sleep(0.01)


def run_grid(sweep: Sweep) -> None:
    combos = list(itertools.product(*[p.choices for p in sweep.params]))
    sys.stderr.write(f"runlog sweep {sweep.id}: {len(combos)} trials, {sweep.jobs} at a time\n")
    running: list[Trial] = []
    pending = list(enumerate(combos))
    while (pending and not sweep.stopping) or running:
        try:
            while pending and len(running) < sweep.jobs and not sweep.stopping:
                n, combo = pending.pop(0)
                running.append(sweep.launch(n, dict(zip([p.name for p in sweep.params], combo))))
            for t in sweep.wait_any(running):
                running.remove(t)
                sweep.collect(t)
        except KeyboardInterrupt:
            sweep.interrupt()


def run_optuna(sweep: Sweep, trials: int, storage: str | None, study_name: str | None) -> None:
    try:
        import optuna
    except ImportError:
        raise CliError("--max/--min optimisation needs Optuna: pip install 'runlog[sweep]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if study_name is None:  # the same sweep started elsewhere joins the same study
        import hashlib

        key = json.dumps([sweep.cmd, [p.spec for p in sweep.params], sweep.direction])
        study_name = f"runlog-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    study = None
    for attempt in range(6):
        try:
            study = optuna.create_study(
                study_name=study_name, storage=storage,
                direction="maximize" if sweep.direction == "max" else "minimize",
                load_if_exists=True)
            break
        except Exception as e:
            # workers starting together race to create the storage's tables: try again
            if attempt == 5:
                msg = str(e).splitlines()[0] if str(e) else ""
                raise CliError(f"could not open the Optuna study ({type(e).__name__}: "
                               f"{msg})") from None
            time.sleep(0.2 + 0.3 * attempt)
    dists = {p.name: p.distribution() for p in sweep.params}
    from optuna.trial import TrialState

    sys.stderr.write(f"runlog sweep {sweep.id}: study {study.study_name!r}, {trials} trials in "
                     f"all, {sweep.jobs} at a time here\n")
    running: list[Trial] = []
    exhausted = False
    while (not exhausted and not sweep.stopping) or running:
        try:
            while not exhausted and not sweep.stopping and len(running) < sweep.jobs:
                handle = study.ask(dists)
                if handle.number >= trials:  # the study's budget is spent (by us or another worker)
                    study.tell(handle, state=TrialState.PRUNED)
                    exhausted = True
                    break
                running.append(sweep.launch(handle.number, dict(handle.params), handle))
            if not running:
                break
            for t in sweep.wait_any(running):
                running.remove(t)
                sweep.collect(t)
                if t.metric is not None and t.status == "finished":
                    study.tell(t.handle, t.metric)
                else:  # failed, or never reported the metric: the study learns it failed
                    study.tell(t.handle, state=TrialState.FAIL)
        except KeyboardInterrupt:
            sweep.interrupt()


# ------------------------------------------------------------------ the summary


def summary(data: dict) -> str:
    trials = data["trials"]
    metric, direction = data.get("metric"), data.get("direction")
    names = list(data["params"])
    if metric:
        scored = [t for t in trials if t.get("metric") is not None]
        scored.sort(key=lambda t: t["metric"], reverse=direction == "max")
        rows = scored + [t for t in trials if t.get("metric") is None]
    else:
        rows = sorted(trials, key=lambda t: t["n"])
    errors = any(t.get("error") for t in trials)
    header = ["trial", "run", "status", *names] + ([metric] if metric else []) + (["error"] if errors else [])
    table = [header]
    for t in rows:
        table.append([str(t["n"]), t.get("run") or "—", t.get("status") or "?",
                      *[shown(t["values"].get(k)) for k in names]]
                     + ([fmt_num(t["metric"]) if t.get("metric") is not None else "—"]
                        if metric else [])
                     + ([cut(t.get("error") or "", 60)] if errors else []))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [f"Sweep {data['id']}: {len(trials)} trials"
             + (f", best {metric} first" if metric else "")]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    if metric and rows and rows[0].get("metric") is not None:
        best = rows[0]
        lines.append(f"Best: trial {best['n']} ({best.get('run')}), {metric} "
                     f"{fmt_num(best['metric'])}. Re-run it:")
        lines.append(f"  runlog run -- {best['command_line']}")
    return "\n".join(lines) + "\n"


def show(root: str, spec: str | None) -> int:
    d = LogDir(root).sweeps
    try:
        ids = sorted(f[:-5] for f in os.listdir(d) if f.endswith(".json"))
    except OSError:
        ids = []
    if not ids:
        raise CliError(f"no sweeps in {root}")
    if spec is None or spec == "-1":
        chosen = ids[-1]
    else:
        matches = [i for i in ids if i.startswith(spec)]
        if len(matches) != 1:
            raise CliError(f"no sweep matches {spec!r}" if not matches else
                           f"{spec!r} matches {len(matches)} sweeps: {', '.join(matches[:5])}")
        chosen = matches[0]
    with open(os.path.join(d, f"{chosen}.json"), encoding="utf-8") as f:
        out(summary(json.load(f)))
    return 0


def sweep(root: str, cmd: list[str], params: list[str], jobs: int = 1, maximize=None,
          minimize=None, trials: int | None = None, storage: str | None = None,
          name: str | None = None, note=None, tags=()) -> int:
    if cmd[:1] == ["show"]:
        return show(root, cmd[1] if len(cmd) > 1 else None)
    if not cmd:
        raise CliError("nothing to run: runlog sweep -p NAME=SPEC ... -- COMMAND ...")
    if not params:
        raise CliError("no parameters: give at least one -p NAME=SPEC")
    if jobs < 1:
        raise CliError("-j needs at least 1")
    ps = [Param(p) for p in params]
    if len({p.name for p in ps}) != len(ps):
        raise CliError("a parameter is defined twice")
    fill(cmd, ps)
    metric = maximize or minimize
    direction = "max" if maximize else ("min" if minimize else None)
    optimise = trials is not None or any(p.kind == "float" for p in ps)
    if optimise and not metric:
        what = "a float range" if any(p.kind == "float" for p in ps) else "--trials"
        raise CliError(f"{what} needs --max METRIC or --min METRIC (a grid takes lists and "
                       "ranges like 2..4)")
    if storage and not optimise:
        raise CliError("--storage is for optimisation: add --trials K")
    s = Sweep(root, ps, cmd, jobs, metric, direction, note, name, tags)
    s.save()
    old = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if optimise:
            run_optuna(s, trials or 20, storage, name)
        else:
            run_grid(s)
    finally:
        signal.signal(signal.SIGTERM, old)
    s.save()
    with open(s.path, encoding="utf-8") as f:
        out(summary(json.load(f)))
    failed = [t for t in s.trials if t.status != "finished"]
    return 130 if s.stopping else (1 if failed and len(failed) == len(s.trials) else 0)
