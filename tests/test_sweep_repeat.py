"""`runlog sweep --repeat/--seeds` and `runlog ls --group`: mean ± std (n) over seeds, on real
runs; the expected numbers are computed here from the trials' own records."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import clean_env, integration
from runlog.fmt import fmt_num

RUNLOG = [sys.executable, "-m", "runlog"]

# A noisy but seeded function: the seed comes from --seed or, without it, from $SEED.
NOISY = """\
import argparse, json, os, random, sys
p = argparse.ArgumentParser()
p.add_argument("--x", type=int)
p.add_argument("--seed", type=int, default=None)
a = p.parse_args()
seed = a.seed if a.seed is not None else int(os.environ["SEED"])
if a.x == 2 and seed == 1 or a.x == 3:
    sys.exit(3)  # one repeat of x=2 fails; every repeat of x=3 does
rng = random.Random(seed * 100 + a.x)
print(json.dumps({"metric": "score", "value": -(a.x - 1) ** 2 + rng.gauss(0, 0.1)}))
"""


@pytest.fixture
def prog(tmp_path):
    (tmp_path / "noisy.py").write_text(textwrap.dedent(NOISY))
    return tmp_path


def runlog(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*RUNLOG, *args], cwd=cwd, capture_output=True, text=True,
                          env=clean_env(), timeout=300)


def records(cwd: Path) -> list[dict]:
    logs = cwd / "logs"
    return [json.loads((d / "run.json").read_text()) for d in sorted(logs.iterdir())
            if d.is_dir() and not d.name.startswith(".")]


def expected(values: list[float]) -> tuple[float, float | None]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
    return m, sd


def test_repeat_3_grid_shows_mean_std_n_from_the_records(prog):
    p = runlog(prog, "sweep", "-j", "2", "--repeat", "3", "--max", "score", "-p", "x=0,1,2,3",
               "--", sys.executable, "noisy.py", "--x", "{x}")
    assert p.returncode == 0, p.stderr
    rs = records(prog)
    assert len(rs) == 12  # 4 configurations x 3 seeds
    by: dict[int, list[dict]] = {}
    for r in rs:
        by.setdefault(r["sweep"]["trial"], []).append(r)
    assert sorted(by) == [0, 1, 2, 3]
    for n, runs in by.items():  # each configuration ran seeds 0, 1, 2 with its own value
        assert sorted(r["sweep"]["seed"] for r in runs) == [0, 1, 2]
        assert {r["sweep"]["params"]["x"] for r in runs} == {n}
    rows = {}
    for n, runs in by.items():
        done = [r["metrics"]["score"]["last"] for r in runs if r["status"] == "finished"]
        rows[n] = expected(done) if done else None
    assert len([r for r in by[2] if r["status"] == "failed"]) == 1
    lines = p.stdout.splitlines()
    table = {int(ln.split()[0]): ln for ln in lines[2:] if ln[:1].isdigit()}
    for n in (0, 1):
        m, sd = rows[n]
        assert f"{fmt_num(m)} ± {fmt_num(sd)} (3)" in table[n], table[n]
        assert "3 finished" in table[n]
    m, sd = rows[2]  # the failed repeat: the mean of the two that finished, n=2
    assert f"{fmt_num(m)} ± {fmt_num(sd)} (2)" in table[2]
    assert "2 finished, 1 failed" in table[2]
    assert table[3].rstrip().endswith("—") and "3 failed" in table[3]
    order = [int(ln.split()[0]) for ln in lines[2:] if ln[:1].isdigit()]
    scored = sorted((n for n in rows if rows[n]), key=lambda n: -rows[n][0])
    assert order == scored + [3]  # best mean first, the configuration with none last
    best = next(ln for ln in lines if ln.startswith("Best:"))
    assert best.startswith(f"Best: trial {scored[0]} (x={scored[0]}), score {fmt_num(rows[scored[0]][0])}")
    assert "(n=3)" in best
    # the sweep's file keeps each run with its seed; `sweep show` prints the same table
    show = runlog(prog, "sweep", "show")
    assert show.returncode == 0 and show.stdout == p.stdout


def test_seeds_fill_the_placeholder_and_ls_group_aggregates_them(prog):
    p = runlog(prog, "sweep", "--seeds", "7,8", "--max", "score", "-p", "x=0,1", "--",
               sys.executable, "noisy.py", "--x", "{x}", "--seed", "{seed}")
    assert p.returncode == 0, p.stderr
    rs = records(prog)
    assert sorted((r["sweep"]["trial"], r["sweep"]["seed"]) for r in rs) == [
        (0, 7), (0, 8), (1, 7), (1, 8)]
    for r in rs:  # {seed} went into the command: the program saw it as its --seed
        assert r["args"]["seed"] == r["sweep"]["seed"]
    g = runlog(prog, "ls", "--group", "--json")
    assert g.returncode == 0, g.stderr
    groups = [json.loads(ln) for ln in g.stdout.splitlines()]
    assert len(groups) == 2
    for grp in groups:
        runs = [r for r in rs if r["id"] in grp["runs"]]
        assert grp["n"] == 2 and sorted(grp["seeds"]) == [7, 8]
        assert {r["args"]["x"] for r in runs} == {grp["args"]["x"]} and "seed" not in grp["args"]
        m, sd = expected([r["metrics"]["score"]["last"] for r in runs])
        agg = grp["metrics"]["score"]
        assert agg["n"] == 2 and agg["mean"] == pytest.approx(m) and agg["std"] == pytest.approx(sd)


def test_seed_placeholder_without_repeat_is_an_error(prog):
    p = runlog(prog, "sweep", "-p", "x=0,1", "--", sys.executable, "noisy.py", "--seed", "{seed}",
               "--x", "{x}")
    assert p.returncode != 0 and "{seed}" in p.stderr
    p = runlog(prog, "sweep", "--repeat", "2", "--seeds", "1,2", "-p", "x=0,1", "--",
               sys.executable, "noisy.py", "--x", "{x}")
    assert p.returncode != 0 and p.stderr.startswith("runlog: error: --repeat and --seeds")


def test_ls_group_joins_hand_made_runs_that_differ_only_in_seed(prog):
    for x, seed in ((1, 0), (1, 1), (1, 2), (0, 0), (0, 1)):
        p = runlog(prog, "--dir", "logs", "run", "--", sys.executable, "noisy.py", "--x", str(x),
                   "--seed", str(seed))
        assert p.returncode == 0, p.stderr
    rs = records(prog)
    plain = runlog(prog, "--dir", "logs", "ls", "--group")
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0].split() == ["newest", "run", "n", "status", "x", "score"]
    assert len(lines) == 3  # the header and two groups: x=0 (newest) then x=1
    for line, x, n in ((lines[1], 0, 2), (lines[2], 1, 3)):
        m, sd = expected([r["metrics"]["score"]["last"] for r in rs if r["args"]["x"] == x])
        assert line.split()[1] == str(n) and f"{fmt_num(m)} ± {fmt_num(sd)}" in line, line
    c = runlog(prog, "--dir", "logs", "ls", "--group", "--csv")
    table = list(csv.DictReader(io.StringIO(c.stdout)))
    assert [row["n"] for row in table] == ["2", "3"]
    for row in table:
        vals = [r["metrics"]["score"]["last"] for r in rs if r["args"]["x"] == int(row["x"])]
        m, sd = expected(vals)
        assert float(row["score_mean"]) == pytest.approx(m)
        assert float(row["score_std"]) == pytest.approx(sd) and row["score_n"] == str(len(vals))
    # without --group every run is its own line
    assert len(runlog(prog, "--dir", "logs", "ls").stdout.splitlines()) == 6


def test_optuna_is_told_the_mean_of_the_repeats(prog):
    optuna = integration("optuna")
    from runlog.cli.sweep_study import open_storage

    store = prog / "study.log"
    p = runlog(prog, "sweep", "--trials", "3", "--repeat", "2", "-j", "2", "--max", "score",
               "--storage", f"journal:{store}", "-p", "x=0,1", "--", sys.executable, "noisy.py",
               "--x", "{x}")
    assert p.returncode == 0, p.stderr
    rs = records(prog)
    assert len(rs) == 6
    study = optuna.load_study(study_name=rs[0]["sweep"]["study"],
                              storage=open_storage(f"journal:{store}"))
    told = {t.number: t.value for t in study.get_trials()}
    assert sorted(told) == [0, 1, 2]
    for n, value in told.items():
        runs = [r for r in rs if r["sweep"]["trial"] == n]
        assert sorted(r["sweep"]["seed"] for r in runs) == [0, 1]
        assert value == pytest.approx(expected([r["metrics"]["score"]["last"] for r in runs])[0])
    assert "mean ± std (n)" in runlog(prog, "sweep", "show").stdout


# ---------------------------------------------------------------- --prune

# A bad configuration reports a falling accuracy and then waits for a file that never
# comes: only the pruner ends it. A good one reports a rising accuracy and finishes.
STEPPED = """\
import json, os, sys, time
quality, gate = sys.argv[1], sys.argv[2]
for step in range(4):
    acc = 0.5 + 0.1 * step if quality == "good" else 0.4 - 0.1 * step
    print(json.dumps({"metric": "acc", "value": acc, "step": step}), flush=True)
    if quality == "bad":
        while not os.path.exists(gate):
            time.sleep(0.05)
"""


def test_prune_stops_a_bad_trial_and_records_it_as_pruned(tmp_path):
    integration("optuna")
    (tmp_path / "stepped.py").write_text(textwrap.dedent(STEPPED))
    p = runlog(tmp_path, "sweep", "--prune", "--max", "acc", "-p", "q=good,bad,good", "--",
               sys.executable, "stepped.py", "{q}", str(tmp_path / "never"))
    assert p.returncode == 0, p.stderr
    rs = {r["sweep"]["trial"]: r for r in records(tmp_path)}
    assert sorted(rs) == [0, 1, 2]
    assert rs[0]["status"] == "finished" and rs[2]["status"] == "finished"
    assert rs[0]["metrics"]["acc"]["last"] == pytest.approx(0.8)
    bad = rs[1]
    assert bad["status"] == "pruned" and bad["signal"] == "SIGTERM" and bad["error"] is None
    assert not (tmp_path / "never").exists()
    assert "trial 1 pruned" in p.stderr
    table = [ln for ln in p.stdout.splitlines() if ln[:1].isdigit()]
    assert any(ln.split()[0] == "1" and "pruned" in ln for ln in table)
    ls = runlog(tmp_path, "--dir", "logs", "ls", "--status", "pruned")
    assert ls.returncode == 0
    assert [ln.split()[0] for ln in ls.stdout.splitlines()[1:]] == [bad["id"]]


def test_prune_needs_a_metric(prog):
    p = runlog(prog, "sweep", "--prune", "-p", "x=0,1", "--", sys.executable, "noisy.py",
               "--x", "{x}")
    assert p.returncode != 0 and p.stderr.startswith("runlog: error: --prune needs")
    assert not os.path.exists(prog / "logs")


@pytest.mark.parametrize("code, status", [
    ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", "pruned"),
    ("pass", "finished"),  # it ended on its own before the pruner's marker mattered
])
def test_runlog_run_records_pruned_only_for_a_program_the_sweep_stopped(tmp_path, code, status):
    marker = tmp_path / "marker"
    marker.write_text("pruned")
    p = subprocess.run([*RUNLOG, "--dir", "logs", "run", "--", sys.executable, "-c", code],
                       cwd=tmp_path, env=clean_env(RUNLOG_PRUNE_FILE=str(marker)),
                       capture_output=True, text=True, timeout=60)
    (r,) = records(tmp_path)
    assert r["status"] == status, p.stderr
    if status == "pruned":  # the exit status is still the signal's, for a calling shell
        assert p.returncode != 0 and r["exit_code"] == 143 and r["signal"] == "SIGTERM"


CURVE = """\
import argparse, json, random
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--seed", type=int)
a = p.parse_args()
rng = random.Random(a.seed)
for step in range(5):
    print(json.dumps({"metric": "loss", "value": 1 / (1 + a.lr * step) + rng.gauss(0, 0.05),
                      "step": step}))
"""


def test_plot_group_draws_the_mean_curve_of_a_run_and_its_other_seeds(tmp_path):
    (tmp_path / "curve.py").write_text(textwrap.dedent(CURVE))
    for lr, seed in ((0.5, 0), (0.5, 1), (0.5, 2), (0.1, 0)):
        p = runlog(tmp_path, "--dir", "logs", "run", "--", sys.executable, "curve.py", "--lr",
                   str(lr), "--seed", str(seed))
        assert p.returncode == 0, p.stderr
    rs = records(tmp_path)
    three = sorted((r for r in rs if r["args"]["lr"] == 0.5), key=lambda r: r["id"])
    p = runlog(tmp_path, "--dir", "logs", "plot", "--group", three[0]["id"], "-1")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 3  # the metric's head, then one curve per group, not per run
    mine = next(ln for ln in lines if f"{three[-1]['id']} (n=3)" in ln)
    m, _ = expected([r["metrics"]["loss"]["last"] for r in three])
    assert f"last {fmt_num(m)}" in mine
    assert any("(n=1)" in ln for ln in lines)
    integration("matplotlib")
    out = tmp_path / "g.png"
    p = runlog(tmp_path, "--dir", "logs", "plot", "--group", three[0]["id"], "-o", str(out))
    assert p.returncode == 0 and out.stat().st_size > 0


def test_journal_compare_shows_seeds_as_mean_and_band(tmp_path):
    from test_cli_journal import _driver

    (tmp_path / "curve.py").write_text(textwrap.dedent(CURVE))
    for lr, seed in ((0.5, 0), (0.5, 1), (0.5, 2), (0.1, 0)):
        p = runlog(tmp_path, "--dir", "logs", "run", "--", sys.executable, "curve.py", "--lr",
                   str(lr), "--seed", str(seed))
        assert p.returncode == 0, p.stderr
    rs = records(tmp_path)
    out = tmp_path / "j.html"
    assert runlog(tmp_path, "--dir", "logs", "journal", "-o", str(out)).returncode == 0
    driver = _driver()
    from selenium.webdriver.common.by import By

    try:
        driver.get(out.as_uri())
        for c in driver.find_elements(By.CSS_SELECTOR, ".card"):
            c.find_element(By.CSS_SELECTOR, "input.pick").click()
        driver.find_element(By.ID, "compare-btn").click()
        panel = driver.find_element(By.ID, "compare")
        legend = [s.text for s in panel.find_elements(By.CSS_SELECTOR, ".legend span")]
        assert len(legend) == 2 and sum("(n=3)" in t for t in legend) == 1
        assert len(panel.find_elements(By.CSS_SELECTOR, "svg path.band")) == 1
        m, sd = expected([r["metrics"]["loss"]["last"] for r in rs if r["args"]["lr"] == 0.5])
        cells = [td.text for td in panel.find_elements(By.CSS_SELECTOR, "td")]
        shown = next(c for c in cells if "±" in c)
        mean, _, rest = shown.partition(" ± ")
        assert float(mean) == pytest.approx(m, rel=1e-3) and rest.endswith("(3)")
        assert float(rest.split()[0]) == pytest.approx(sd, rel=2e-2)
        driver.find_element(By.ID, "compare-seeds").click()  # each run on its own again
        assert len(panel.find_elements(By.CSS_SELECTOR, ".legend span")) == 4
        assert not panel.find_elements(By.CSS_SELECTOR, "svg path.band")
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        driver.quit()
