"""Every example a new user copies from runs and leaves a real run behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import integration

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def workdir(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path


def one_run(workdir: Path) -> dict:
    runs = [d for d in (workdir / "logs").iterdir() if d.is_dir() and not d.name.startswith(".")]
    assert len(runs) == 1
    return json.loads((runs[0] / "run.json").read_text())


def sh(workdir: Path, *argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    return subprocess.run(argv, cwd=workdir, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("argv,given", [
    (["examples/train.py", "--lr", "0.05", "--epochs", "3", "--note", "first try"],
     ["lr", "epochs"]),
    (["examples/hydra_app.py", "lr=0.3", "model.layers=4"], ["lr", "model.layers"]),
    (["examples/click_app.py", "--lr", "0.05", "data.csv"], ["lr", "data"]),
    (["examples/tqdm_train.py", "--steps", "50"], ["steps"]),
])
def test_python_examples(workdir, argv, given):
    p = sh(workdir, sys.executable, *argv)
    assert p.returncode == 0, p.stderr
    r = one_run(workdir)
    assert r["status"] == "finished"
    assert sorted(r["args_given"]) == sorted(given)
    assert r["metrics"]
    assert "## Run " in p.stderr


def test_shell_example_under_runlog_run(workdir):
    p = sh(workdir, sys.executable, "-m", "runlog", "run", "--", "./examples/train.sh", "0.3", "4")
    assert p.returncode == 0, p.stderr
    r = one_run(workdir)
    assert r["metrics"]["loss"]["count"] == 4 and r["metrics"]["acc"]["count"] == 4


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_example_under_runlog_run(workdir):
    p = sh(workdir, sys.executable, "-m", "runlog", "run", "--", "make", "-C", "examples", "train",
           "LR=0.2")
    assert p.returncode == 0, p.stderr
    r = one_run(workdir)
    assert r["args"] == {"LR": 0.2} and r["metrics"]["acc"]["count"] == 5


def test_notebook_example(workdir):
    nbformat = integration("nbformat")
    nbclient = integration("nbclient")
    nb = nbformat.read(workdir / "examples" / "notebook.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(workdir)}}).execute()
    r = one_run(workdir)
    assert r["status"] == "finished" and r["note"] == "trying runlog in a notebook"
    assert r["metrics"]["loss"]["count"] == 20
