"""What runlog's output capture costs a training script's own writes, at sizes x4.

A script under ``runlog.start()`` has its ``print()`` output passed through to
the terminal and logged, line by line, to ``run.log``. Each pattern below is
written N times by the script itself, with and without ``runlog.start()``,
stdout line-buffered, to a pseudo-terminal (or /dev/null); the loop's own
time is compared (median of interleaved rounds, each in a fresh process). The
goal: every pattern within 2x of bare Python, and linear in what is written
(the "x4" columns: the time's growth when N grows 4 times; 4.0 is linear).

    python benchmarks/bench_output.py            # ~1 minute
    python benchmarks/bench_output.py --quick    # a smoke run
    python benchmarks/bench_output.py --to devnull  # stdout to /dev/null
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

PATTERNS = {
    # progress dots: one character a write, flushed (issue 17: 35x at 320k before)
    "dots: print('.', end='', flush=True)": "print('.', end='', flush=True)",
    # a progress bar redrawn in place; run.log keeps its last state
    "bar: print(f'\\r{i}/{N}', end='', flush=True)": "print(f'\\r{i}/{N}', end='', flush=True)",
    # ordinary lines
    "lines: print(f'step {i} loss 0.5')": "print(f'step {i} loss 0.5')",
    # 100-byte writes that never end a line
    "no newline: write('x' * 100)": "sys.stdout.write(X100)",
}

SCRIPT = """\
import sys, time
sys.stdout.reconfigure(line_buffering=True)  # as on a terminal
if {ours}:
    import runlog
    runlog.start(git=False, console=False)
N = {n}
X100 = 'x' * 100
t = time.perf_counter()
for i in range(N):
    {stmt}
sys.stdout.flush()
t = time.perf_counter() - t
with open({out!r}, 'w') as f:
    f.write(repr(t))
"""


def one(stmt: str, n: int, ours: bool, cwd: str, to: str) -> float:
    out = os.path.join(cwd, "t.txt")
    code = SCRIPT.format(ours=ours, n=n, stmt=stmt, out=out)
    argv = [sys.executable, "-c", code]
    env = {**os.environ, "RUNLOG_DIR": os.path.join(cwd, "logs"), "TERM": "dumb"}
    if to == "devnull":
        with open(os.devnull, "w") as null:
            subprocess.run(argv, cwd=cwd, stdout=null, stderr=null, check=True, env=env)
    else:  # a terminal: a pseudo-terminal whose other end we read as fast as it comes
        master, slave = os.openpty()
        try:
            proc = subprocess.Popen(argv, cwd=cwd, stdout=slave, stderr=slave, env=env)
        finally:
            os.close(slave)
        try:
            while os.read(master, 1 << 16):
                pass
        except OSError:  # EIO: the program's end of the terminal is closed
            pass
        os.close(master)
        if proc.wait() != 0:
            raise SystemExit(f"the script failed ({proc.returncode})")
    with open(out) as f:
        return float(f.read())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two sizes, 3 rounds: a smoke run")
    ap.add_argument("--to", choices=("terminal", "devnull"), default="terminal",
                    help="where stdout goes: a pseudo-terminal read by this process (default), "
                         "or /dev/null (the bare writes cost least there: the harshest ratio)")
    a = ap.parse_args()
    sizes = [10_000, 40_000] if a.quick else [10_000, 40_000, 160_000, 640_000]
    reps = 3 if a.quick else 5
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="runlog-bench-output-") as cwd:
        for name, stmt in PATTERNS.items():
            by_n = {}
            for n in sizes:
                ours, bare = [], []
                for r in range(reps + 1):  # round 0 is a warm-up, dropped
                    pair = [(True, ours), (False, bare)]
                    for flag, got in (pair if r % 2 else pair[::-1]):
                        t = one(stmt, n, flag, cwd, a.to)
                        if r:
                            got.append(t)
                by_n[n] = (statistics.median(ours), statistics.median(bare))
            rows.append((name, by_n))
    w = max(len(r[0]) for r in rows)
    head = f"{'pattern (N writes)':<{w}}" + "".join(f"  {f'N={n:,}':>22}" for n in sizes)
    head += "".join(f"  {'x4':>5}" for _ in sizes[1:]) + "  goal"
    print(head)
    for name, by_n in rows:
        cells = "".join(f"  {by_n[n][0] * 1e3:8.1f} ms {by_n[n][0] / by_n[n][1]:5.2f}x bare"
                        for n in sizes)
        growth = "".join(f"  {by_n[b][0] / by_n[a][0]:5.1f}" for a, b in zip(sizes, sizes[1:]))
        worst = max(by_n[n][0] / by_n[n][1] for n in sizes)
        print(f"{name:<{w}}{cells}{growth}  <= 2x: {'PASS' if worst <= 2 else 'MISS'}")
    print(f"(runlog's time and its ratio to bare Python's at each N; medians of {reps} "
          f"interleaved rounds; {time.perf_counter() - t0:.0f} s; python "
          f"{sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"stdout to {'a pseudo-terminal' if a.to == 'terminal' else '/dev/null'})")


if __name__ == "__main__":
    main()
