"""runlog's core cost against the standard library, measured in the same run.

The machine is shared and noisy, so every figure is a ratio against a
baseline measured alongside it: baseline and candidate alternate (in rotating
order, after one discarded warm-up round), many times, and both the median and
the best (minimum time) of each are compared. Goals are printed, not
enforced: the script exits 0 unless it breaks.

    python benchmarks/bench_core.py            # ~1-2 minutes
    python benchmarks/bench_core.py --quick    # a smoke run, < 20 s

Measures (see benchmarks/README.md for what each ratio means):
  1. whole process: start(), 100 log records, exit with the report, in a git
     repository, against basicConfig(filename=...) + a console StreamHandler
  2. `import runlog` in a fresh interpreter, against `import logging`
  3. the `runlog.start()` call itself, against `logging.basicConfig(filename=...)`
  4. log records/s to file + console, against FileHandler + StreamHandler
  5. run.metric() calls/s, against json.dumps + write of the same point
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

PY = [sys.executable]  # the measured interpreter; --no-site adds -S
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}

# ---------------------------------------------------------------- the scripts

RUNLOG_SCRIPT = """\
import logging
import runlog
runlog.start(git={git})
log = logging.getLogger(__name__)
for i in range(100):
    log.info("step %d loss %.4f", i, 1.0 / (i + 1))
"""

# The same output as runlog's: a timestamped file and a console line with time and level.
STDLIB_SCRIPT = """\
import logging
import sys
logging.basicConfig(filename="std.log", level=logging.INFO,
                    format="%(asctime)s %(levelname)-8s %(name)s: %(message)s")
console = logging.StreamHandler(sys.stderr)
console.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
logging.getLogger().addHandler(console)
log = logging.getLogger(__name__)
for i in range(100):
    log.info("step %d loss %.4f", i, 1.0 / (i + 1))
"""

# every module of runlog's that start() loads (some lazily, inside start())
START_MODULES = ("runlog.run, runlog.exits, runlog.patches_exit, runlog.output, runlog.fmt, runlog.mask, "
                 "runlog.coexist, runlog.git")

IMPORT_CODE = """\
import time
t = time.perf_counter()
import {module}
t = time.perf_counter() - t
print(t)
"""

# What a training script has loaded anyway before it calls start().
START_CODE = """\
import time
import logging, argparse, runlog
{preload}
t = time.perf_counter()
{call}
t = time.perf_counter() - t
print(t)
"""

THROUGHPUT_CODE = """\
import logging, sys, time
N = {n}
# the console (stderr) is /dev/null for both sides: in_subprocess() starts us so
if {ours}:
    import runlog
    runlog.start(console=True, git=False)
else:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fh = logging.FileHandler("std.log")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s"))
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    root.addHandler(fh)
    root.addHandler(sh)
log = logging.getLogger("train")
t = time.perf_counter()
for i in range(N):
    log.info("step %d loss %.4f", i, 0.5)
t = time.perf_counter() - t
print(t)
"""

METRIC_CODE = """\
import json, time
N = {n}
if {ours}:
    import runlog
    run = runlog.start(console=False, git=False)
    t = time.perf_counter()
    for i in range(N):
        run.metric("loss", 0.5, step=i)
    t = time.perf_counter() - t
else:
    f = open("bare.jsonl", "w")
    t = time.perf_counter()
    for i in range(N):
        f.write(json.dumps({{"name": "loss", "value": 0.5, "step": i, "time": time.time()}}) + "\\n")
    f.flush()
    t = time.perf_counter() - t
print(t)
"""

# ---------------------------------------------------------------- helpers


def env() -> dict:
    """The environment of every measured process: no runlog settings, no rank,
    no forced colour; bytecode is cached, as after any pip install."""
    e = dict(os.environ, **GIT_ENV)
    for k in list(e):
        if k.startswith("RUNLOG_") or k in ("RANK", "LOCAL_RANK", "NO_COLOR", "FORCE_COLOR",
                                            "PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME"):
            del e[k]
    return e


ENV: dict = {}


def git(cwd: str, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, env=ENV, capture_output=True,
                          text=True).stdout


def make_repo(tmp: str, name: str = "repo") -> str:
    """A real git repository with one commit and a clean tree (logs are ignored)."""
    d = os.path.join(tmp, name)
    os.mkdir(d)
    git(d, "init", "-q")
    files = {".gitignore": "logs/\n*.log\n*.jsonl\n",
             "a.py": RUNLOG_SCRIPT.format(git=True),
             "b.py": RUNLOG_SCRIPT.format(git=False),
             "std.py": STDLIB_SCRIPT}
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    git(d, "add", ".")
    git(d, "commit", "-qm", "bench")
    return d


def make_dirty_repo(tmp: str) -> str:
    """The same repository with uncommitted work: a changed tracked file and a new one
    (so the run saves a code.patch: git status, git diff and the untracked file read)."""
    d = make_repo(tmp, "dirty")
    with open(os.path.join(d, ".gitignore"), "a") as f:
        f.write("# a local change\n")
    with open(os.path.join(d, "notes.py"), "w") as f:
        f.write("LR = 0.1  # not committed yet\n")
    return d


def make_plain_dir(tmp: str, name: str) -> str:
    d = os.path.join(tmp, name)
    os.mkdir(d)
    probe = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=d, env=ENV,
                           capture_output=True, text=True)
    if probe.returncode == 0:
        print(f"warning: {d} is inside the git repository {probe.stdout.strip()}; "
              "'outside a repo' is not", file=sys.stderr)
    return d


def preloaded_modules() -> list[str]:
    """Modules runlog imports that the measured interpreter has loaded before any script runs."""
    probe = ("import sys; print(' '.join(m for m in ('typing', 'json', 'signal', 'selectors', "
             "'logging', 'subprocess') if m in sys.modules))")
    p = subprocess.run([*PY, "-c", probe], capture_output=True, text=True, env=ENV)
    return p.stdout.split()


def compile_runlog() -> None:
    import compileall

    import runlog

    compileall.compile_dir(os.path.dirname(runlog.__file__), quiet=1)


def time_process(argv: list[str], cwd: str) -> float:
    """Wall time of a whole process, its output to /dev/null."""
    t = time.perf_counter()
    subprocess.run([*PY, *argv], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=ENV, check=True)
    return time.perf_counter() - t


_SNIPPETS: dict[str, str] = {}


def _snippet(code: str) -> str:
    """The code as a script file outside the benchmark's repository: a script, as users run
    one (``python -c`` would record a multi-line command, which no training script has)."""
    path = _SNIPPETS.get(code)
    if path is None:  # in a folder of their own: the script's folder is sys.path[0]
        if "" not in _SNIPPETS:
            _SNIPPETS[""] = tempfile.mkdtemp(prefix="runlog-bench-snippets-")
        folder = _SNIPPETS[""]
        path = _SNIPPETS[code] = os.path.join(folder, f"snippet{len(_SNIPPETS)}.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(code))
    return path


def in_subprocess(code: str, cwd: str) -> float:
    """Run code in a fresh interpreter (stderr to /dev/null); it prints seconds last."""
    p = subprocess.run([*PY, _snippet(code)], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, env=ENV)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark process failed (exit {p.returncode}):\n{code}")
    return float(lines[-1])


def interleaved(fns: dict, reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Each function once per round, the order rotating; warm-up rounds are dropped."""
    names = list(fns)
    out: dict[str, list[float]] = {n: [] for n in names}
    for i in range(warmup + reps):
        k = i % len(names)
        for n in names[k:] + names[:k]:
            v = fns[n]()
            if i >= warmup:
                out[n].append(v)
    return out


# ---------------------------------------------------------------- the table

ROWS: list[dict] = []


def add_time_row(measure: str, ours: list[float], base: list[float], goal: str, verdict) -> None:
    """A row from two lists of times (seconds), shown in ms; lower is better."""
    mo, mb = statistics.median(ours), statistics.median(base)
    ratio, best = mo / mb, min(ours) / min(base)
    ROWS.append({"measure": measure, "runlog": mo * 1e3, "baseline": mb * 1e3, "unit": "ms",
                 "ratio": ratio, "best": best, "goal": goal,
                 "result": verdict(mo * 1e3, ratio) if verdict else "-"})


def add_rate_row(measure: str, n: int, ours: list[float], base: list[float], unit: str,
                 goal: str, verdict) -> None:
    """A row from two lists of times for n operations, shown per second; higher is better."""
    ro, rb = n / statistics.median(ours), n / statistics.median(base)
    ratio, best = ro / rb, min(base) / min(ours)
    ROWS.append({"measure": measure, "runlog": ro, "baseline": rb, "unit": unit,
                 "ratio": ratio, "best": best, "goal": goal,
                 "result": verdict(ro, ratio) if verdict else "-"})


def at_most(goal: float, limit: float | None = None):
    def verdict(_value, ratio):
        if ratio <= goal:
            return "PASS"
        return "MISS (over limit)" if limit is not None and ratio > limit else "MISS"
    return verdict


def at_least(goal: float, limit: float | None = None):
    def verdict(_value, ratio):
        if ratio >= goal:
            return "PASS"
        return "MISS (under limit)" if limit is not None and ratio < limit else "MISS"
    return verdict


def absolute(pred):
    return lambda value, _ratio: "PASS" if pred(value) else "MISS"


def fmt(v: float) -> str:
    if v >= 10_000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def print_table(footer: str) -> None:
    head = ("measure", "runlog", "baseline", "unit", "ratio", "best", "goal", "result")
    cells = [head] + [(r["measure"], fmt(r["runlog"]), fmt(r["baseline"]), r["unit"],
                       f"{r['ratio']:.2f}x", f"{r['best']:.2f}x", r["goal"], r["result"])
                      for r in ROWS]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    right = {1, 2, 4, 5}
    for c in cells:
        print("  ".join(s.rjust(w) if i in right else s.ljust(w)
                        for i, (s, w) in enumerate(zip(c, widths))).rstrip())
    print(footer)


# ---------------------------------------------------------------- the measures


def bench_process(repo: str, dirty: str, reps: int) -> None:
    res = interleaved({
        "runlog": lambda: time_process(["a.py"], repo),
        "dirty": lambda: time_process(["a.py"], dirty),
        "nogit": lambda: time_process(["b.py"], repo),
        "stdlib": lambda: time_process(["std.py"], repo),
    }, reps)
    add_time_row("1 whole process, in a git repo", res["runlog"], res["stdlib"],
                 "<= 1.2x (limit 1.5x)", at_most(1.2, 1.5))
    add_time_row("1 whole process, uncommitted changes", res["dirty"], res["stdlib"],
                 "<= 1.2x (limit 1.5x)", at_most(1.2, 1.5))
    add_time_row("1 whole process, git=False", res["nogit"], res["stdlib"],
                 "(comparison)", None)
    if git(repo, "status", "--porcelain"):
        print("warning: the benchmark repository's tree became dirty", file=sys.stderr)


def bench_import(cwd: str, reps: int) -> None:
    res = interleaved({
        "runlog": lambda: in_subprocess(IMPORT_CODE.format(module="runlog"), cwd),
        "runlog_all": lambda: in_subprocess(IMPORT_CODE.format(module=START_MODULES), cwd),
        "logging": lambda: in_subprocess(IMPORT_CODE.format(module="logging"), cwd),
    }, reps)
    add_time_row("2 import runlog (vs import logging)", res["runlog"], res["logging"],
                 "<= 10 ms", absolute(lambda ms: ms <= 10))
    add_time_row("2 import runlog.run (what start() loads)", res["runlog_all"], res["logging"],
                 "(comparison)", None)


def bench_start(repo: str, outside: str, reps: int) -> None:
    call = "runlog.start()"
    base_call = "logging.basicConfig(filename='std.log', level=logging.INFO)"
    code = START_CODE.format(preload="", call=call)
    res = interleaved({
        "repo": lambda: in_subprocess(code, repo),
        "norepo": lambda: in_subprocess(code, outside),
        "warm": lambda: in_subprocess(START_CODE.format(preload=f"import {START_MODULES}",
                                                        call=call), repo),
        "basic": lambda: in_subprocess(START_CODE.format(preload="", call=base_call), repo),
    }, reps)
    ok = absolute(lambda ms: ms <= 1.0)
    add_time_row("3 start() call, in a git repo (vs basicConfig)", res["repo"], res["basic"],
                 "<= 1 ms", ok)
    add_time_row("3 start() call, outside a repo", res["norepo"], res["basic"], "<= 1 ms", ok)
    add_time_row("3 start() call, its modules preloaded", res["warm"], res["basic"],
                 "(comparison)", None)


def bench_throughput(cwd: str, reps: int, n: int) -> None:
    res = interleaved({
        "runlog": lambda: in_subprocess(THROUGHPUT_CODE.format(n=n, ours=True), cwd),
        "stdlib": lambda: in_subprocess(THROUGHPUT_CODE.format(n=n, ours=False), cwd),
    }, reps)
    add_rate_row(f"4 log records/s, file + console ({n:,})", n, res["runlog"], res["stdlib"],
                 "rec/s", ">= 2x (limit 1x)", at_least(2.0, 1.0))


def bench_metrics(cwd: str, reps: int, n: int) -> None:
    res = interleaved({
        "runlog": lambda: in_subprocess(METRIC_CODE.format(n=n, ours=True), cwd),
        "bare": lambda: in_subprocess(METRIC_CODE.format(n=n, ours=False), cwd),
    }, reps)
    add_rate_row(f"5 run.metric() calls/s ({n:,})", n, res["runlog"], res["bare"], "call/s",
                 ">= 200,000/s", absolute(lambda rate: rate >= 200_000))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions: a smoke run, < 20 s")
    ap.add_argument("--no-site", action="store_true",
                    help="measure interpreters started with -S (runlog found via PYTHONPATH), "
                         "for when this machine's site-packages preloads modules (see README)")
    ap.add_argument("--json", action="store_true", help="also print the rows as JSON")
    a = ap.parse_args()
    # rounds for the short processes / for the long (throughput, metrics) ones
    reps, long_reps = (9, 3) if a.quick else (41, 11)
    n_records, n_metrics = (20_000, 100_000) if a.quick else (20_000, 200_000)
    ENV.update(env())
    if a.no_site:
        import runlog

        PY.append("-S")
        top = os.path.dirname(os.path.dirname(os.path.abspath(runlog.__file__)))
        ENV["PYTHONPATH"] = os.pathsep.join(p for p in (top, ENV.get("PYTHONPATH")) if p)
    preloaded = preloaded_modules()
    t0 = time.perf_counter()
    compile_runlog()
    tmp = tempfile.mkdtemp(prefix="runlog-bench-core-")
    try:
        repo = make_repo(tmp)
        dirty = make_dirty_repo(tmp)
        outside = make_plain_dir(tmp, "plain")
        scratch = make_plain_dir(tmp, "scratch")
        bench_process(repo, dirty, reps)
        bench_import(scratch, reps)
        bench_start(repo, outside, reps)
        bench_throughput(scratch, long_reps, n_records)
        bench_metrics(scratch, long_reps, n_metrics)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if "" in _SNIPPETS:
            shutil.rmtree(_SNIPPETS[""], ignore_errors=True)
    print_table(f"ratio: runlog / baseline, medians (times: lower is better; rates: higher is "
                f"better); best: the same from each side's best round.\n{reps} interleaved rounds "
                f"({long_reps} for 4 and 5) in {time.perf_counter() - t0:.0f} s; python "
                f"{sys.version.split()[0]}{' -S' if a.no_site else ''}, {os.cpu_count()} cores, "
                f"load {os.getloadavg()[0]:.1f}" + (
                    f"\nnote: the measured interpreter imports {', '.join(preloaded)} at start-up, "
                    "before any script, so that cost is missing from runlog's figures (see --no-site)"
                    if preloaded else ""))
    if a.json:
        print(json.dumps(ROWS))


if __name__ == "__main__":
    main()
