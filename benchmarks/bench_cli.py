"""The command line on a real-sized history, against baselines measured in the same run.

    python benchmarks/bench_cli.py           # 10,000 runs, a 1 GB log, 2,000 journal runs
    python benchmarks/bench_cli.py --quick   # 2,000 runs, a 100 MB log, 500 journal runs

- `runlog ls` over N generated runs (goal <= 0.3 s), with the index and with
  the index deleted (the fallback reads run.json files); `show -1`, `ls --grep`
  and `tail --no-follow` among those N runs. Baselines: the interpreter starting
  and exiting (`python -c pass`) and listing the folder (`ls -1 DIR | wc -l`).
- `runlog tail --no-follow -n 10` on a huge log: time to its first line of
  output (goal <= 0.1 s); baseline: coreutils `tail -n 10` to its first line.
- `runlog journal` over M runs with curves: time to write, and the file size.

Every figure is the median of several runs, each a fresh process.
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
        from runlog.folder.record import summary

        index.append(json.dumps(summary(rec), separators=(",", ":")))
    with open(os.path.join(root, ".runlog-index.jsonl"), "w") as f:
        f.write("\n".join(index) + "\n")


def timed(argv: list[str], reps: int) -> list[float]:
    """Wall time of a whole process, ``reps`` times."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(),
                       check=True)
        out.append(time.perf_counter() - t)
    return out


def first_line(argv: list[str], reps: int) -> list[float]:
    """Time from starting a process to its first line on stdout, ``reps`` times."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env())
        line = p.stdout.readline()
        out.append(time.perf_counter() - t)
        p.stdout.read()
        p.wait()
        assert line, f"{argv} printed nothing"
    return out


def med(xs):
    return statistics.median(xs)


def big_log(path: str, mb: int) -> None:
    """A real (not sparse) log of ``mb`` MB: one 8 MB block of log lines written over and over."""
    line = (b"2026-01-01 00:00:00.000 INFO    step 123456 loss 0.123456 acc 0.98765 "
            + b"x" * 40 + b"\n")
    block = line * ((8 << 20) // len(line))
    with open(path, "wb") as f:
        written = 0
        while written < mb << 20:
            f.write(block)
            written += len(block)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n_runs, log_mb, n_journal, reps = (2000, 100, 500, 5) if a.quick else (10000, 1024, 2000, 9)
    tmp = tempfile.mkdtemp(prefix="runlog-bench-cli-")
    rows = []  # (measure, seconds, baseline name, baseline seconds, goal, met)
    rl = [PY, "-m", "runlog"]
    try:
        root = os.path.join(tmp, "logs")
        make_runs(root, n_runs)
        py = med(timed([PY, "-c", "pass"], reps))
        listing = med(timed(["sh", "-c", f"ls -1 {root} | wc -l"], reps))
        ls = med(timed([*rl, "--dir", root, "ls"], reps))
        rows.append((f"runlog ls, {n_runs} runs", ls, "python -c pass", py, "<= 0.3 s",
                     ls <= 0.3))
        rows.append(("", ls, "ls -1 DIR | wc -l", listing, "", None))
        for label, args in (("runlog ls --all --json", ["ls", "--all", "--json"]),
                            ("runlog ls --grep 'variant 5'", ["ls", "--grep", "variant 5"]),
                            ("runlog show -1", ["show", "-1"]),
                            ("runlog tail --no-follow -1", ["tail", "--no-follow"])):
            t = med(timed([*rl, "--dir", root, *args], reps))
            rows.append((f"{label}, {n_runs} runs", t, "python -c pass", py, "", None))
        index = os.path.join(root, ".runlog-index.jsonl")
        os.rename(index, os.path.join(tmp, "index.bak"))
        for label, args in (("runlog ls", ["ls"]), ("runlog ls --all", ["ls", "--all"])):
            t = med(timed([*rl, "--dir", root, *args], max(3, reps // 3)))
            rows.append((f"{label}, {n_runs} runs, no index", t, "python -c pass", py,
                         "(fallback)", None))
        shutil.rmtree(root)

        log_dir = os.path.join(tmp, "big", "20260101-000000")
        os.makedirs(log_dir)
        log = os.path.join(log_dir, "run.log")
        big_log(log, log_mb)
        with open(os.path.join(log_dir, "run.json"), "w") as f:
            json.dump({"id": "20260101-000000", "status": "finished",
                       "started_at": "2026-01-01T00:00:00"}, f)
        big_root = os.path.dirname(log_dir)
        tail = med(first_line([*rl, "--dir", big_root, "tail", "--no-follow", "-n", "10"], reps))
        coreutils = med(first_line(["tail", "-n", "10", log], reps))
        rows.append((f"runlog tail -n 10, {log_mb} MB log, first line", tail, "tail -n 10",
                     coreutils, "<= 0.1 s", tail <= 0.1))
        rows.append(("", tail, "python -c pass", py, "", None))
        grep = med(first_line([*rl, "--dir", big_root, "tail", "--no-follow", "-n", "10", "-g",
                               "step"], reps))
        rows.append((f"runlog tail -n 10 -g step, {log_mb} MB log, first line", grep,
                     "tail -n 10", coreutils, "", None))
        shutil.rmtree(big_root)

        jroot = os.path.join(tmp, "jlogs")
        make_runs(jroot, n_journal, points=200)
        out = os.path.join(tmp, "journal.html")
        jt = med(timed([*rl, "--dir", jroot, "journal", "-o", out], max(3, reps // 3)))
        size = os.path.getsize(out)
        rows.append((f"runlog journal, {n_journal} runs x 2 curves of 200 points", jt,
                     "python -c pass", py, f"(file {size / 1e6:.1f} MB)", None))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    w = max(len(r[0]) for r in rows)
    bw = max(len(r[2]) for r in rows)
    print(f"{'measure':<{w}}  {'runlog':>8}  {'baseline':<{bw}}  {'':>8}  {'ratio':>7}  goal")
    for m, ours, bname, b, goal, ok in rows:
        flag = "" if ok is None else ("PASS" if ok else "MISS")
        print(f"{m:<{w}}  {ours:>7.3f}s  {bname:<{bw}}  {b:>7.3f}s  {ours / b:>6.1f}x  "
              f"{goal} {flag}".rstrip())
    print(f"(medians of {reps} runs each, fewer for the slow fallbacks; python "
          f"{sys.version.split()[0]}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
