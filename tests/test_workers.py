"""Workers that multiprocessing starts anew ("spawn", "forkserver": a DataLoader's, a Pool's,
a ProcessPoolExecutor's) run the script's top level again, ``runlog.start()`` with it.
They must join the run of the process that started them, never make runs of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import run_dirs

POOL_SCRIPT = """\
import logging, multiprocessing as mp, sys
import runlog
run = runlog.start(git=False)
log = logging.getLogger("train")

def work(x):
    log.info("worker %d", x)
    print("printed by worker", x)
    return x * x

if __name__ == "__main__":
    with mp.get_context(sys.argv[1]).Pool(2) as pool:
        total = sum(pool.map(work, range(4)))
    run.metric("total", total)
    log.info("parent done")
"""


def _run(cwd: Path, body: str, *args: str, env=None, argv=None) -> subprocess.CompletedProcess:
    (cwd / "s.py").write_text(textwrap.dedent(body))
    e = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOG_")}
    e.update(env or {})
    return subprocess.run(argv or [sys.executable, "s.py", *args], cwd=cwd, capture_output=True,
                          text=True, env=e, timeout=120)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_workers_started_anew_join_the_run(tmp_path, method):
    p = _run(tmp_path, POOL_SCRIPT, method)
    assert p.returncode == 0, p.stderr
    (d,) = run_dirs(tmp_path / "logs")  # one run, not one more per worker
    record = json.loads((d / "run.json").read_text())
    assert record["status"] == "finished" and record["metrics"]["total"]["last"] == 14
    assert p.stderr.count("## Run ") == 1  # one report: the parent's
    log = (d / "run.log").read_text()
    for i in range(4):  # as a forked worker's would, their records and prints are in the log
        assert f"INFO    train: worker {i}" in log
        assert f"OUT     printed by worker {i}" in log
    assert "parent done" in log


def test_a_workers_metrics_are_not_recorded_and_it_says_so(tmp_path):
    p = _run(tmp_path, """\
        import concurrent.futures as cf, multiprocessing as mp
        import runlog
        run = runlog.start(git=False)

        def work(x):
            run.metric("from_worker", x)
            return x

        if __name__ == "__main__":
            with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
                list(ex.map(work, range(3)))
            run.metric("loss", 0.5)
        """)
    assert p.returncode == 0, p.stderr
    (d,) = run_dirs(tmp_path / "logs")
    record = json.loads((d / "run.json").read_text())
    assert set(record["metrics"]) == {"loss"}
    assert p.stderr.count("in a worker process") == 1  # once, from the one worker
    assert "from_worker" not in (d / "metrics.jsonl").read_text()


def test_workers_after_the_run_finished_record_nothing(tmp_path):
    p = _run(tmp_path, """\
        import multiprocessing as mp
        import runlog
        runlog.start(git=False)

        def work(x):
            return x

        if __name__ == "__main__":
            runlog.finish()
            with mp.get_context("spawn").Pool(2) as pool:
                print(sum(pool.map(work, range(4))))
        """)
    assert p.returncode == 0, p.stderr
    assert len(run_dirs(tmp_path / "logs")) == 1
    assert "6" in p.stdout and p.stderr.count("## Run ") == 1


def test_workers_under_runlog_run_join_its_run_and_hand_over_nothing(tmp_path):
    body = """\
        import argparse, logging, multiprocessing as mp
        import runlog
        ap = argparse.ArgumentParser()
        ap.add_argument("--lr", type=float, default=0.1)
        args = ap.parse_args()
        run = runlog.start()

        def work(x):
            logging.getLogger("w").info("worker %d", x)
            return x

        if __name__ == "__main__":
            with mp.get_context("spawn").Pool(2) as pool:
                pool.map(work, range(3))
            run.metric("acc", 0.9)
        """
    p = _run(tmp_path, body, argv=[sys.executable, "-m", "runlog", "run", "--no-git", "--",
                                   sys.executable, "s.py", "--lr", "0.5"])
    assert p.returncode == 0, p.stderr
    (d,) = run_dirs(tmp_path / "logs")
    record = json.loads((d / "run.json").read_text())
    assert record["status"] == "finished"
    assert record["args"] == {"lr": 0.5} and record["args_given"] == ["lr"]
    assert record["metrics"]["acc"]["last"] == 0.9
    log = (d / "run.log").read_text()
    assert all(f"w: worker {i}" in log for i in range(3))


def test_a_subprocess_of_the_run_still_makes_its_own(tmp_path):
    # the variable that tells workers which run to join reaches every child; a program
    # the script starts (not a multiprocessing worker) still records a run of its own
    (tmp_path / "child.py").write_text("import runlog\nrunlog.start(git=False)\nprint('child')\n")
    p = _run(tmp_path, """\
        import subprocess, sys
        import runlog
        runlog.start(git=False)
        subprocess.run([sys.executable, "child.py"], check=True)
        """)
    assert p.returncode == 0, p.stderr
    dirs = run_dirs(tmp_path / "logs")
    assert len(dirs) == 2
    scripts = sorted(json.loads((d / "run.json").read_text())["script"] for d in dirs)
    assert scripts == ["child.py", "s.py"]
