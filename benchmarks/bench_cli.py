"""The command line on a real-sized history, against baselines measured in the same run.

    python benchmarks/bench_cli.py           # 10,000 runs, a 1 GB log, 2,000 journal runs
    python benchmarks/bench_cli.py --quick   # 2,000 runs, a 100 MB log, 500 journal runs

- `runlog ls` over N generated runs (goal <= 0.3 s), with the index and with
  the index deleted (the fallback reads every run.json); baseline: the
  interpreter starting and exiting (`python -c pass`).
- `runlog tail --no-follow -n 10` on a huge log, time to its output (goal
  <= 0.1 s beyond interpreter start); baseline: coreutils `tail -n 10`.
- `runlog journal` over M runs with curves: time to write, and the file size.
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

PY = sys.executable


def env() -> dict:
    e = dict(os.environ)
    for k in ("RUNLOG_DIR", "PYTHONDONTWRITEBYTECODE"):
        e.pop(k, None)
    return e


def make_runs(root: str, n: int, points: int = 0) -> None:
    """n finished runs, as runlog writes them: folders, run.json, index lines (+ metrics)."""
    os.makedirs(root, exist_ok=True)
    index = []
    t0 = time.time() - n * 60
    for i in range(n):
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(t0 + i * 60))
        rid = f"{stamp}-{i}"
        d = os.path.join(root, rid)
        os.mkdir(d)
        started = time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(t0 + i * 60))
        rec = {
            "schema": 1, "id": rid, "name": None, "tags": [], "status": "finished",
            "exit_code": 0, "error": None, "started_at": started, "ended_at": started,
            "duration_s": 12.5, "command": ["python", "train.py", "--lr", str(0.1 * (i % 7))],
            "command_line": f"python train.py --lr {0.1 * (i % 7)}", "cwd": "/w",
            "script": "train.py", "script_path": "/w/train.py", "note": f"trying lr variant {i}",
            "args": {"lr": 0.1 * (i % 7), "epochs": 10 + i % 3, "batch_size": 64, "seed": 0,
                     "model": {"layers": 2 + i % 4, "width": 128}},
            "args_given": ["lr"], "git": {"commit": "a" * 40, "short": "aaaaaaa",
                                          "branch": "main", "dirty": False, "changed_files": [],
                                          "patch": None, "patch_truncated": False},
            "host": "h", "pid": 1, "python": "3.11",
            "metrics": {"loss": {"last": 1 / (i + 1), "min": 1 / (i + 1), "max": 1.0,
                                 "count": 100, "step": 99},
                        "acc": {"last": 0.9, "min": 0.1, "max": 0.9, "count": 100, "step": 99}},
            "previous": None,
        }
        with open(os.path.join(d, "run.json"), "w") as f:
            json.dump(rec, f)
        with open(os.path.join(d, "run.log"), "w") as f:
            f.write(f"{started[:10]} {started[11:19]}.000 INFO    epoch 1 loss 0.5\n" * 20)
        if points:
            with open(os.path.join(d, "metrics.jsonl"), "w") as f:
                for s in range(points):
                    f.write(f'{{"name":"loss","value":{1 / (s + 1)},"step":{s},"time":0}}\n')
                    f.write(f'{{"name":"acc","value":{1 - 1 / (s + 2)},"step":{s},"time":0}}\n')
        from runlog.store import index_entry

        index.append(json.dumps(index_entry(rec), separators=(",", ":")))
    with open(os.path.join(root, ".runlog-index.jsonl"), "w") as f:
        f.write("\n".join(index) + "\n")


def timed(argv: list[str], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(),
                       check=True)
        out.append(time.perf_counter() - t)
    return out


def med(xs):
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n_runs, log_mb, n_journal, reps = (2000, 100, 500, 5) if a.quick else (10000, 1024, 2000, 9)
    tmp = tempfile.mkdtemp(prefix="runlog-bench-cli-")
    rows = []
    try:
        root = os.path.join(tmp, "logs")
        make_runs(root, n_runs)
        base = timed([PY, "-c", "pass"], reps)
        ls = timed([PY, "-m", "runlog", "--dir", root, "ls"], reps)
        ls_all = timed([PY, "-m", "runlog", "--dir", root, "ls", "--all", "--json"], reps)
        rows.append((f"runlog ls, {n_runs} runs", med(ls), med(base), "<= 0.3 s", med(ls) <= 0.3))
        rows.append((f"runlog ls --all --json, {n_runs} runs", med(ls_all), med(base), "",
                     True))
        os.rename(os.path.join(root, ".runlog-index.jsonl"), os.path.join(tmp, "index.bak"))
        ls_noidx = timed([PY, "-m", "runlog", "--dir", root, "ls"], max(3, reps // 3))
        rows.append((f"runlog ls, {n_runs} runs, index deleted", med(ls_noidx), med(base),
                     "(fallback)", True))
        shutil.rmtree(root)

        log = os.path.join(tmp, "big", "20260101-000000")
        os.makedirs(log)
        line = b"2026-01-01 00:00:00.000 INFO    step 123456 loss 0.123456 acc 0.98765 " + b"x" * 40 + b"\n"
        chunk = line * (1 << 20 // len(line) * 8)
        with open(os.path.join(log, "run.log"), "wb") as f:
            written = 0
            while written < log_mb << 20:
                f.write(chunk)
                written += len(chunk)
        with open(os.path.join(log, "run.json"), "w") as f:
            json.dump({"id": "20260101-000000", "status": "finished",
                       "started_at": "2026-01-01T00:00:00"}, f)
        big_root = os.path.dirname(log)
        tail = timed([PY, "-m", "runlog", "--dir", big_root, "tail", "--no-follow", "-n", "10"],
                     reps)
        coreutils = timed(["tail", "-n", "10", os.path.join(log, "run.log")], reps)
        rows.append((f"runlog tail -n 10, {log_mb} MB log", med(tail), med(base),
                     "<= 0.1 s beyond start-up", med(tail) - med(base) <= 0.1))
        rows.append((f"coreutils tail -n 10, {log_mb} MB log", med(coreutils), med(base), "", True))
        shutil.rmtree(big_root)

        jroot = os.path.join(tmp, "jlogs")
        make_runs(jroot, n_journal, points=200)
        out = os.path.join(tmp, "journal.html")
        jt = timed([PY, "-m", "runlog", "--dir", jroot, "journal", "-o", out], max(3, reps // 3))
        size = os.path.getsize(out)
        rows.append((f"runlog journal, {n_journal} runs x 2 curves of 200 points", med(jt),
                     med(base), f"file {size / 1e6:.1f} MB", True))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'runlog':>8}  {'python -c pass':>14}  ratio  goal")
    for m, ours, b, goal, ok in rows:
        flag = "" if not goal or goal.startswith(("(", "file")) else ("PASS" if ok else "MISS")
        print(f"{m:<{w}}  {ours:>7.3f}s  {b:>13.3f}s  {ours / b:>5.2f}x  {goal} {flag}".rstrip())
    print(f"(median of {reps} runs each; python {sys.version.split()[0]}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
