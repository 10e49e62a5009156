"""Metric points: metrics.jsonl, the summary in run.json, the report, non-finite values."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runlog.folder.metrics import Metrics, read_points, summarize
from runlog.report import render


def run_script(tmp_path: Path, body: str, *args: str, **kw) -> subprocess.CompletedProcess:
    (tmp_path / "s.py").write_text(textwrap.dedent(body))
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    return subprocess.run([sys.executable, "s.py", *args], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=60, **kw)


def only_run(tmp_path: Path) -> Path:
    (d,) = [p for p in (tmp_path / "logs").iterdir() if p.is_dir() and not p.name.startswith(".")]
    return d


def test_points_and_summary(tmp_path):
    p = run_script(tmp_path, """\
        import runlog
        import numpy as np
        run = runlog.start(git=False)
        for step, (loss, acc) in enumerate([(1.0, 0.5), (0.5, 0.7), (0.7, 0.65)]):
            run.log_metrics({"loss": loss, "acc": np.float32(acc)}, step=step)
        runlog.metric("lr", 0.1)
        runlog.metric("flag", True)
        """)
    assert p.returncode == 0, p.stderr
    d = only_run(tmp_path)
    points = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert [(pt["name"], pt["value"], pt["step"]) for pt in points[:2]] == [
        ("loss", 1.0, 0), ("acc", 0.5, 0)]
    assert all(isinstance(pt["time"], float) for pt in points)
    m = json.loads((d / "run.json").read_text())["metrics"]
    assert m["loss"] == {"last": 0.7, "min": 0.5, "max": 1.0, "count": 3, "step": 2}
    assert m["acc"]["count"] == 3 and math.isclose(m["acc"]["max"], 0.7, rel_tol=1e-6)
    assert m["lr"] == {"last": 0.1, "min": 0.1, "max": 0.1, "count": 1, "step": None}
    assert m["flag"]["last"] == 1
    # the report: last and best (lower is better for a loss, higher for accuracy)
    assert "loss 0.7 (best 0.5)" in p.stderr
    assert "acc 0.65 (best 0.7)" in p.stderr


def test_non_finite_values_are_kept(tmp_path):
    p = run_script(tmp_path, """\
        import runlog
        run = runlog.start(git=False)
        run.metric("loss", 1.0)
        run.metric("loss", float("nan"))
        run.metric("grad", float("inf"))
        run.metric("grad", float("-inf"))
        """)
    assert p.returncode == 0, p.stderr
    d = only_run(tmp_path)
    values = [json.loads(x)["value"] for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2:] == [math.inf, -math.inf]
    m = json.loads((d / "run.json").read_text())["metrics"]
    assert math.isnan(m["loss"]["last"]) and m["loss"]["count"] == 2
    assert m["grad"]["max"] == math.inf and m["grad"]["min"] == -math.inf
    assert "loss nan" in p.stderr


def test_non_numeric_value_is_a_type_error(tmp_path):
    p = run_script(tmp_path, """\
        import runlog
        run = runlog.start(git=False)
        for bad in ("0.5", None, [1], {"a": 1}):
            try:
                run.metric("x", bad)
            except TypeError as e:
                print("TypeError:", e)
        try:
            run.metric(3, 1.0)
        except TypeError as e:
            print("TypeError:", e)
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("TypeError: metric") == 5
    assert "metric value must be a number, got str" in p.stdout
    d = only_run(tmp_path)
    assert not (d / "metrics.jsonl").exists() or (d / "metrics.jsonl").read_text() == ""


def test_hard_kill_loses_at_most_the_last_point(tmp_path):
    (tmp_path / "s.py").write_text(textwrap.dedent("""\
        import runlog, sys
        run = runlog.start(git=False)
        i = 0
        while True:
            run.metric("step", i, step=i)
            if i == 1000:
                print("ready", flush=True)
            i += 1
        """))
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    d = only_run(tmp_path)
    lines = (d / "metrics.jsonl").read_text().split("\n")
    complete = lines[:-1]  # what follows the last newline is at most one torn point
    values = [json.loads(x)["value"] for x in complete]
    assert values == list(range(len(values))) and len(values) > 1000
    assert len(read_points(str(d))) == len(values)
    assert summarize(read_points(str(d)))["step"]["count"] == len(values)


def test_summary_is_kept_fresh_while_running():
    m = Metrics(None)
    for v in [3, 1, 2]:
        m.add("x", v, step=v)
    assert m.summary["x"] == {"last": 2, "min": 1, "max": 3, "count": 3, "step": 2}
    m.add("y", float("nan"))
    m.add("y", 2.0)
    assert m.summary["y"]["min"] == 2.0 and m.summary["y"]["max"] == 2.0


@pytest.mark.parametrize("name,values,best", [
    ("val_loss", [0.5, 0.3, 0.4], "(best 0.3)"),
    ("accuracy", [0.5, 0.9, 0.8], "(best 0.9)"),
])
def test_report_shows_last_and_best(name, values, best):
    m = Metrics(None)
    for v in values:
        m.add(name, v)
    text = render({"id": "x", "status": "finished", "duration_s": 1.0, "metrics": m.summary})
    assert f"- Metrics: {name} {values[-1]} {best}" in text
