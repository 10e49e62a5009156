"""What `runlog sweep` costs per trial, and its throughput in parallel, against plain tools.

    python benchmarks/bench_sweep.py [--trials N] [--rounds R]        # per-trial overhead
    python benchmarks/bench_sweep.py --throughput [--many 200] [-j 4]  # trials/min, xargs -P

Overhead: both sides run N trials of a tiny Python program one at a time,
interleaved over a few rounds; the difference per trial is what the sweep
machinery costs (a `runlog run` wrapper process, the record, the report, the
sweep file).

Throughput: the same 200 tiny commands run 4 at a time by `xargs -P 4` (the
baseline), by `runlog sweep -j 4` (a grid over the 200 values), by
`runlog sweep -j 4` optimising with Optuna over a journal file (the study's
bookkeeping per trial), and — when `sinfo` answers — by `runlog sweep --slurm
-j 4` (a 4-task array on the cluster, grid points handed out by the study),
measured in the same run in rotating order. Reported in trials per minute and
as a ratio to xargs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PROGRAM = "import json, sys\nprint(json.dumps({'metric': 'score', 'value': float(sys.argv[1])}))\n"


def _env() -> dict:
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _dir() -> str:
    d = tempfile.mkdtemp(prefix="runlog-bench-sweep-")
    with open(os.path.join(d, "p.py"), "w") as f:
        f.write(PROGRAM)
    return d


def overhead(trials: int, rounds: int) -> None:
    d, env = _dir(), _env()
    values = ",".join(str(i) for i in range(trials))
    direct, swept = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        for i in range(trials):
            subprocess.run([sys.executable, "p.py", str(i)], cwd=d, env=env,
                           stdout=subprocess.DEVNULL, check=True)
        direct.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "runlog", "sweep", "-p", f"v={values}", "--max",
                        "score", "--", sys.executable, "p.py", "{v}"], cwd=d, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        swept.append(time.perf_counter() - t)
    dm, sm = statistics.median(direct) / trials, statistics.median(swept) / trials
    print(f"per trial: direct {dm * 1e3:.1f} ms, under runlog sweep {sm * 1e3:.1f} ms; "
          f"overhead {(sm - dm) * 1e3:.1f} ms per trial ({sm / dm:.2f}x), "
          f"median of {rounds} rounds of {trials} trials")


def _slurm_up() -> bool:
    try:
        p = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return p.returncode == 0 and any(s.rstrip("*~#") in ("idle", "mix") for s in p.stdout.split())


def throughput(many: int, jobs: int, rounds: int, slurm: bool) -> None:
    env = _env()
    runlog = [sys.executable, "-m", "runlog"]
    cmd = [sys.executable, "p.py"]
    sides = {
        f"xargs -P {jobs}": lambda d: subprocess.run(
            ["xargs", "-P", str(jobs), "-n", "1", *cmd], input="\n".join(map(str, range(many))),
            text=True, cwd=d, env=env, stdout=subprocess.DEVNULL, check=True),
        f"runlog sweep -j {jobs} (grid)": lambda d: subprocess.run(
            [*runlog, "sweep", "-j", str(jobs), "-p", f"v=0..{many - 1}", "--", *cmd, "{v}"],
            cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True),
        f"runlog sweep -j {jobs} (Optuna, journal)": lambda d: subprocess.run(
            [*runlog, "sweep", "-j", str(jobs), "--trials", str(many), "--max", "score",
             "--storage", "journal:study.journal", "-p", f"v=0..{many - 1}", "--", *cmd, "{v}"],
            cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True),
    }
    if slurm:
        sides[f"runlog sweep --slurm -j {jobs} (grid)"] = lambda d: subprocess.run(
            [*runlog, "sweep", "--slurm", "-j", str(jobs), "-p", f"v=0..{many - 1}", "--", *cmd,
             "{v}"], cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            check=True)
    times: dict[str, list[float]] = {k: [] for k in sides}
    names = list(sides)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotating order
            d = _dir()
            t = time.perf_counter()
            sides[name](d)
            times[name].append(time.perf_counter() - t)
            shutil.rmtree(d, ignore_errors=True)
    base = statistics.median(times[names[0]])
    print(f"{many} tiny trials, {jobs} at a time, {os.cpu_count()} CPUs, median of {rounds} "
          f"round(s):")
    for name in names:
        m = statistics.median(times[name])
        print(f"  {name:38} {m:6.1f} s  {many / m * 60:7.0f} trials/min  "
              f"({m / base:.2f}x the time of xargs)")
    if not slurm:
        print("  (no Slurm here: sinfo did not answer; `bash .ci/slurm-up` starts one as root)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--throughput", action="store_true", help="trials/min in parallel vs xargs")
    ap.add_argument("--many", type=int, default=200, help="trials for --throughput")
    ap.add_argument("-j", type=int, default=4, help="trials at once for --throughput")
    ap.add_argument("--no-slurm", action="store_true", help="skip the Slurm side")
    a = ap.parse_args()
    if a.throughput:
        throughput(a.many, a.j, a.rounds, slurm=not a.no_slurm and _slurm_up())
    else:
        overhead(a.trials, a.rounds)


if __name__ == "__main__":
    main()
