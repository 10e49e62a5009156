"""Arguments from tyro, which parses with a parser of its own (not argparse): real scripts,
the real package, real subprocesses, read back from run.json."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import clean_env, read_json, run_dirs, write_script

CONFIG = """\
import dataclasses
import tyro
import runlog

@dataclasses.dataclass
class Optim:
    beta: float = 0.9

@dataclasses.dataclass
class Config:
    lr: float = 0.1
    num_epochs: int = 3
    optim: Optim = dataclasses.field(default_factory=Optim)
"""


@pytest.mark.parametrize("start", ["after tyro.cli", "before tyro.cli", "before, with a metric"])
def test_tyro_cli_of_a_dataclass_records_the_config_it_returned(run_script, start):
    pytest.importorskip("tyro")
    top = "runlog.start(git=False)\n" if start != "after tyro.cli" else ""
    after = "runlog.start(git=False)\n" if not top else ""
    metric = "runlog.metric('loss', cfg.lr)\n" if "metric" in start else ""
    _, d, r = run_script(CONFIG + top + "cfg = tyro.cli(Config)\n" + after + metric + "print(cfg)\n",
                         "--lr", "0.5", "--optim.beta", "0.8", "--num-epochs", "4")
    assert r["args"] == {"lr": 0.5, "num_epochs": 4, "optim": {"beta": 0.8}}
    assert r["args_given"] == ["lr", "num_epochs", "optim.beta"]
    assert "- Args given: lr=0.5, num_epochs=4, optim.beta=0.8" in (d / "report.md").read_text()


def test_tyro_cli_of_a_function_that_starts_the_run(run_script):
    pytest.importorskip("tyro")
    _, _, r = run_script(CONFIG + """\
def main(cfg: Config, seed: int = 0, fast: bool = True) -> None:
    runlog.start(git=False)
    print(cfg, seed, fast)

tyro.cli(main)
""", "--cfg.lr", "0.5", "--no-fast")
    assert r["args"] == {"cfg": {"lr": 0.5, "num_epochs": 3, "optim": {"beta": 0.9}}, "seed": 0,
                         "fast": False}
    assert r["args_given"] == ["cfg.lr", "fast"]


def test_tyro_under_runlog_run(tmp_path):
    pytest.importorskip("tyro")
    write_script(tmp_path, CONFIG.replace("import runlog\n", "") + "cfg = tyro.cli(Config)\n")
    p = subprocess.run([sys.executable, "-m", "runlog", "run", "--", sys.executable, "s.py",
                        "--optim.beta", "0.5"], cwd=tmp_path, capture_output=True, text=True,
                       env=clean_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    (d,) = run_dirs(tmp_path / "logs")
    r = read_json(d / "run.json")
    assert r["args"] == {"lr": 0.1, "num_epochs": 3, "optim": {"beta": 0.5}}
    assert r["args_given"] == ["optim.beta"]
