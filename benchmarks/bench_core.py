"""runlog's cost against the standard library, measured in the same run.

The machine is shared and noisy, so every figure is a ratio against a
baseline measured alongside it: baseline and candidate alternate, many times,
and the median (and best) of each is compared. Goals are printed, not
enforced: the script exits 0 unless it breaks.

    python benchmarks/bench_core.py            # ~1-2 minutes
    python benchmarks/bench_core.py --quick    # a smoke run, ~20 s
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

PY = sys.executable
GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}

RUNLOG_SCRIPT = """\
import logging, runlog
runlog.start(git={git})
log = logging.getLogger(__name__)
for i in range(100):
    log.info("step %d loss %.4f", i, 1.0 / (i + 1))
"""

STDLIB_SCRIPT = """\
import logging, sys
logging.basicConfig(filename="std.log", level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
console = logging.StreamHandler(sys.stderr)
console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
logging.getLogger().addHandler(console)
log = logging.getLogger(__name__)
for i in range(100):
    log.info("step %d loss %.4f", i, 1.0 / (i + 1))
"""


def env() -> dict:
    e = dict(os.environ, **GIT_ENV)
    for k in ("RUNLOG_DIR", "RUNLOG_NOTE", "RANK", "LOCAL_RANK", "RUNLOG_RUN_DIR",
              "PYTHONDONTWRITEBYTECODE"):  # bytecode is cached, as after any pip install
        e.pop(k, None)
    return e


def compile_runlog() -> None:
    import compileall

    import runlog

    compileall.compile_dir(os.path.dirname(runlog.__file__), quiet=1)


def git_repo() -> str:
    d = tempfile.mkdtemp(prefix="runlog-bench-")
    subprocess.run(["git", "init", "-q"], cwd=d, check=True, env=env())
    with open(os.path.join(d, ".gitignore"), "w") as f:
        f.write("logs/\n*.log\n")
    for name, text in (("a.py", RUNLOG_SCRIPT.format(git=True)),
                       ("b.py", RUNLOG_SCRIPT.format(git=False)), ("std.py", STDLIB_SCRIPT)):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    subprocess.run(["git", "add", "."], cwd=d, check=True, env=env())
    subprocess.run(["git", "commit", "-qm", "bench"], cwd=d, check=True, env=env())
    return d


def time_process(argv: list[str], cwd: str) -> float:
    t = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env(), check=True)
    return time.perf_counter() - t


def interleaved(fns: dict, reps: int) -> dict[str, list[float]]:
    """Run each function once per round, in rotating order, ``reps`` rounds."""
    names = list(fns)
    out = {n: [] for n in names}
    for i in range(reps):
        order = names[i % len(names):] + names[: i % len(names)]
        for n in order:
            out[n].append(fns[n]())
    return out


def in_subprocess(code: str, cwd: str) -> float:
    """Run code that prints one float (seconds) and return it."""
    p = subprocess.run([PY, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                       env=env(), check=True)
    return float(p.stdout.strip().splitlines()[-1])


ROWS: list[tuple] = []


def row(measure: str, ours: float, base: float, unit: str, goal: str, ok: bool,
        ratio: float | None = None) -> None:
    ratio = ours / base if ratio is None else ratio
    ROWS.append((measure, ours, base, unit, ratio, goal, "PASS" if ok else "MISS"))


def bench_process(repo: str, reps: int) -> None:
    res = interleaved({
        "runlog": lambda: time_process([PY, "a.py"], repo),
        "runlog_nogit": lambda: time_process([PY, "b.py"], repo),
        "stdlib": lambda: time_process([PY, "std.py"], repo),
    }, reps)
    base = statistics.median(res["stdlib"])
    ours = statistics.median(res["runlog"])
    row("whole process, in a git repo (start, 100 records, report)", ours * 1e3, base * 1e3, "ms",
        "<= 1.2x (never > 1.5x)", ours / base <= 1.2)
    nogit = statistics.median(res["runlog_nogit"])
    row("whole process, git=False", nogit * 1e3, base * 1e3, "ms", "(for comparison)", True)
    best = min(res["runlog"]) / min(res["stdlib"])
    row("whole process, best of each", min(res["runlog"]) * 1e3, min(res["stdlib"]) * 1e3, "ms",
        "<= 1.2x", best <= 1.2)


IMPORT_CODE = """\
import time
t = time.perf_counter()
import {module}
print(time.perf_counter() - t)
"""


def bench_import(repo: str, reps: int) -> None:
    res = interleaved({
        "runlog": lambda: in_subprocess(IMPORT_CODE.format(module="runlog"), repo),
        "logging": lambda: in_subprocess(IMPORT_CODE.format(module="logging"), repo),
    }, reps)
    ours, base = statistics.median(res["runlog"]), statistics.median(res["logging"])
    row("import runlog (baseline: import logging)", ours * 1e3, base * 1e3, "ms", "<= 10 ms",
        ours <= 0.010)


START_CODE = """\
import time, logging, argparse, json, subprocess, threading, runlog  # a training script has these
{preload}
t = time.perf_counter()
{call}
print(time.perf_counter() - t)
"""


def bench_start(repo: str, reps: int) -> None:
    outside = tempfile.mkdtemp(prefix="runlog-bench-norepo-")
    warm = "import runlog.run  # loaded, to time the call alone"
    call = "runlog.start(console=False)"
    res = interleaved({
        "repo": lambda: in_subprocess(START_CODE.format(preload=warm, call=call), repo),
        "norepo": lambda: in_subprocess(START_CODE.format(preload=warm, call=call), outside),
        "cold": lambda: in_subprocess(START_CODE.format(preload="", call=call), repo),
        "basic": lambda: in_subprocess(START_CODE.format(
            preload="", call="logging.basicConfig(filename='std.log', level=logging.INFO)"), repo),
    }, reps)
    base = statistics.median(res["basic"])
    for key, label, goal in (("repo", "in a git repo", 0.001), ("norepo", "outside a repo", 0.001),
                             ("cold", "first call, loading runlog's modules", None)):
        ours = statistics.median(res[key])
        row(f"start() call, {label} (baseline: basicConfig)", ours * 1e3, base * 1e3, "ms",
            "<= 1 ms" if goal else "(for comparison)", goal is None or ours <= goal)


THROUGHPUT_CODE = """\
import logging, os, sys, time
N = {n}
sys.stderr = open(os.devnull, "w")   # the console goes nowhere, the same for both
if {ours}:
    import runlog
    runlog.start(git=False, console=True, capture_output=False)
else:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fh = logging.FileHandler("std.log")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s"))
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root.addHandler(fh)
    root.addHandler(sh)
log = logging.getLogger("train")
t = time.perf_counter()
for i in range(N):
    log.info("step %d loss %.4f", i, 0.5)
print(time.perf_counter() - t)
"""


def bench_throughput(repo: str, reps: int, n: int) -> None:
    res = interleaved({
        "runlog": lambda: in_subprocess(THROUGHPUT_CODE.format(n=n, ours=True), repo),
        "stdlib": lambda: in_subprocess(THROUGHPUT_CODE.format(n=n, ours=False), repo),
    }, reps)
    ours, base = n / statistics.median(res["runlog"]), n / statistics.median(res["stdlib"])
    row("log records/s, file + console (baseline: FileHandler + StreamHandler)", ours, base,
        "rec/s", ">= 2x (never < 1x)", ours / base >= 2.0)


METRIC_CODE = """\
import json, os, time
N = {n}
if {ours}:
    import runlog
    run = runlog.start(git=False, console=False, capture_output=False)
    t = time.perf_counter()
    for i in range(N):
        run.metric("loss", 0.5, step=i)
else:
    f = open("bare.jsonl", "w")
    t = time.perf_counter()
    for i in range(N):
        f.write(json.dumps({{"name": "loss", "value": 0.5, "step": i, "time": time.time()}}) + "\\n")
    f.flush()
print(time.perf_counter() - t)
"""


def bench_metrics(repo: str, reps: int, n: int) -> None:
    res = interleaved({
        "runlog": lambda: in_subprocess(METRIC_CODE.format(n=n, ours=True), repo),
        "bare": lambda: in_subprocess(METRIC_CODE.format(n=n, ours=False), repo),
    }, reps)
    ours, base = n / statistics.median(res["runlog"]), n / statistics.median(res["bare"])
    row("metric calls/s (baseline: json.dumps + buffered write)", ours, base, "calls/s",
        ">= 200,000/s", ours >= 200_000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON too")
    a = ap.parse_args()
    reps = 5 if a.quick else 21
    compile_runlog()
    repo = git_repo()
    bench_process(repo, reps)
    bench_import(repo, reps)
    bench_start(repo, reps)
    bench_throughput(repo, 3 if a.quick else 9, 20_000 if a.quick else 50_000)
    bench_metrics(repo, 3 if a.quick else 9, 100_000 if a.quick else 300_000)
    w = max(len(r[0]) for r in ROWS)
    print(f"{'measure':<{w}}  {'runlog':>10}  {'baseline':>10}  {'unit':<7} {'ratio':>6}  goal")
    for m, ours, base, unit, ratio, goal, ok in ROWS:
        print(f"{m:<{w}}  {ours:>10.4g}  {base:>10.4g}  {unit:<7} {ratio:>5.2f}x  {goal}  {ok}")
    print(f"(median of {reps} interleaved rounds; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores)")
    if a.json:
        print(json.dumps(ROWS))


if __name__ == "__main__":
    main()
