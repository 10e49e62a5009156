"""How the history-sized commands scale: time and peak memory at 1k, 10k and 100k runs.

    python benchmarks/bench_scale.py                 # 1,000 / 10,000 / 100,000 runs (~5 min)
    python benchmarks/bench_scale.py --sizes 1000,10000
    python benchmarks/bench_scale.py --data DIR      # keep the generated log dirs in DIR

Each figure is one fresh `runlog` process (median wall time of a few; peak RSS
from the kernel's accounting of that child, `wait4`). The columns after each
size are the ratio to the size before: the work grows 10x per step, so a
command that does the same work whatever the history shows ~1x, a linear one
~10x, and anything well above 10x grows faster than the work it must do.
`python -c pass` is measured alongside as the floor (interpreter start-up).
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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cli import env, make_runs  # noqa: E402  (the same synthetic runs, index lines by summary())

PY = sys.executable


def run_child(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{argv} exited {p.returncode}")
    return dt, usage.ru_maxrss * 1024


def measure(argv: list[str], reps: int) -> tuple[float, int]:
    got = [run_child(argv) for _ in range(reps)]
    return statistics.median(t for t, _ in got), max(m for _, m in got)


def previous_probe(root: str) -> list[str]:
    """start()'s lookup of the previous run, timed inside a process (the pointer is built)."""
    code = ("import sys,time; from runlog.folder import index; r=sys.argv[1];"
            "index.previous(r, '/w/train.py', '9999', '', build=True);"
            "t=time.perf_counter(); index.previous(r, '/w/train.py', '9999', '');"
            "dt=time.perf_counter()-t; import resource; print(dt)")
    return [PY, "-c", code, root]


def make(root: str, n: int) -> None:
    if os.path.exists(os.path.join(root, ".runlog-index.jsonl")):
        return
    shutil.rmtree(root, ignore_errors=True)
    make_runs(root, n, points=5)
    # a note added later to every tenth run, its line soon after the run's own, as in use
    path = os.path.join(root, ".runlog-index.jsonl")
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        for i, line in enumerate(lines):
            f.write(line + "\n")
            if i % 10 == 5:
                run_id = json.loads(lines[i - 3])["id"]
                f.write(json.dumps({"id": run_id, "notes_added": "- later: checked\n"}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--data", help="keep (and reuse) the generated log directories here")
    ap.add_argument("--only", help="comma-separated measure names to run")
    ap.add_argument("--make", nargs=2, metavar=("DIR", "N"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.make:  # in a child of its own: a forked child's peak RSS counts its parent's pages
        make(a.make[0], int(a.make[1]))
        return
    sizes = [int(s) for s in a.sizes.split(",")]
    base = a.data or tempfile.mkdtemp(prefix="runlog-bench-scale-")
    rl = [PY, "-m", "runlog"]
    measures = [
        ("ls", ["ls"]),
        ("ls --all --json", ["ls", "--all", "--json"]),
        ("ls --all --csv", ["ls", "--all", "--csv"]),
        ("ls --grep 'variant 5'", ["ls", "--grep", "variant 5"]),
        ("ls --all --grep 'variant 5' --json", ["ls", "--all", "--grep", "variant 5", "--json"]),
        ("show -1", ["show", "-1"]),
        ("diff -1 -2", ["diff", "-1", "-2"]),
        ("tail --no-follow -n 10", ["tail", "--no-follow", "-n", "10"]),
        ("journal (newest 500)", ["journal", "-o", "JOURNAL"]),
        ("journal --all", ["journal", "--all", "-o", "JOURNAL"]),
    ]
    if a.only:
        keep = set(a.only.split(","))
        measures = [m for m in measures if m[0] in keep]
    results: dict[str, dict[int, tuple[float, int]]] = {}
    try:
        for n in sizes:
            root = os.path.join(base, f"runs{n}")
            t = time.perf_counter()
            subprocess.run([PY, os.path.abspath(__file__), "--make", root, str(n)], check=True)
            print(f"# {n} runs ready ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
            reps = 3 if n <= 10000 else 1
            results.setdefault("python -c pass", {})[n] = measure([PY, "-c", "pass"], reps)
            for label, args in measures:
                args = [os.path.join(base, "journal.html") if a == "JOURNAL" else a for a in args]
                results.setdefault(label, {})[n] = measure([*rl, "--dir", root, *args], reps)
                print(f"#   {label}: {results[label][n][0]:.3f} s", file=sys.stderr)
            out = subprocess.run(previous_probe(root), capture_output=True, text=True, env=env(),
                                 check=True).stdout
            results.setdefault("previous() in start() [in-process]", {})[n] = (float(out), 0)
    finally:
        if not a.data:
            shutil.rmtree(base, ignore_errors=True)
    w = max(len(k) for k in results)
    head = f"{'runlog …':<{w}}" + "".join(f"  {f'{n:,} runs':>18}" for n in sizes)
    head += "".join(f"  {'x' + str(sizes[i + 1] // sizes[i]):>6}" for i in range(len(sizes) - 1))
    print(head)
    for label, by_n in results.items():
        cells = []
        for n in sizes:
            t, rss = by_n[n]
            cells.append(f"{t:7.3f} s {rss / 1e6:5.0f} MB" if rss else f"{t * 1000:9.2f} ms      ")
        ratios = [by_n[sizes[i + 1]][0] / by_n[sizes[i]][0] if by_n[sizes[i]][0] else 0
                  for i in range(len(sizes) - 1)]
        print(f"{label:<{w}}" + "".join(f"  {c:>18}" for c in cells)
              + "".join(f"  {r:5.1f}x" for r in ratios))
    print(f"(wall time: median of 3 processes, 1 at 100k; peak RSS of the process; python "
          f"{sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
