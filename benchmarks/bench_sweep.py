"""Per-trial overhead of `runlog sweep` against running the same command directly.

    python benchmarks/bench_sweep.py [--trials N]

Both sides run N trials of a tiny Python program one at a time, interleaved
over a few rounds; the difference per trial is what the sweep machinery costs
(a `runlog run` wrapper process, the record, the report, the sweep file).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

PROGRAM = "import json, sys\nprint(json.dumps({'metric': 'score', 'value': float(sys.argv[1])}))\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="runlog-bench-sweep-")
    with open(os.path.join(d, "p.py"), "w") as f:
        f.write(PROGRAM)
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    values = ",".join(str(i) for i in range(a.trials))
    direct, swept = [], []
    for _ in range(a.rounds):
        t = time.perf_counter()
        for i in range(a.trials):
            subprocess.run([sys.executable, "p.py", str(i)], cwd=d, env=env,
                           stdout=subprocess.DEVNULL, check=True)
        direct.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "runlog", "sweep", "-p", f"v={values}", "--max",
                        "score", "--", sys.executable, "p.py", "{v}"], cwd=d, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        swept.append(time.perf_counter() - t)
    dm, sm = statistics.median(direct) / a.trials, statistics.median(swept) / a.trials
    print(f"per trial: direct {dm * 1e3:.1f} ms, under runlog sweep {sm * 1e3:.1f} ms; "
          f"overhead {(sm - dm) * 1e3:.1f} ms per trial ({sm / dm:.2f}x), "
          f"median of {a.rounds} rounds of {a.trials} trials")


if __name__ == "__main__":
    main()
