"""Shared fixtures: real git repositories, real runs made by real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}

TRAIN = """\
import argparse, logging, runlog, sys
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--model", default="mlp")
p.add_argument("--fail", action="store_true")
a = p.parse_args()
run = runlog.start()
log = logging.getLogger("train")
loss = 1.0
for e in range(a.epochs):
    loss *= 1 - a.lr
    run.log_metrics({"loss": loss, "acc": 1 - loss}, step=e)
    log.info("epoch %d loss %.4f", e, loss)
log.warning("learning rate %s may be high", a.lr) if a.lr > 0.4 else None
if a.fail:
    raise RuntimeError("diverged")
"""


def clean_env(**extra) -> dict:
    e = dict(os.environ, **GIT_ENV)
    for k in ("RUNLOG_DIR", "RUNLOG_NOTE", "RANK", "LOCAL_RANK", "RUNLOG_RUN_ID",
              "RUNLOG_RUN_DIR", "MLFLOW_TRACKING_URI"):
        e.pop(k, None)
    e.update(extra)
    return e


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, env=clean_env(), capture_output=True)


class Project:
    """A git repository with a training script, and the runs made in it."""

    def __init__(self, path: Path):
        self.path = path
        self.logs = path / "logs"
        git(path, "init", "-q")
        (path / "train.py").write_text(textwrap.dedent(TRAIN))
        (path / ".gitignore").write_text("logs/\n")
        git(path, "add", ".")
        git(path, "commit", "-qm", "first")

    def train(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "train.py", *args], cwd=self.path, env=clean_env(),
                           capture_output=True, text=True, timeout=60)
        if check:
            assert p.returncode == 0, p.stderr
        time.sleep(0.01)
        return p

    def ids(self) -> list[str]:
        return sorted(p.name for p in self.logs.iterdir() if p.is_dir())

    def record(self, run_id: str) -> dict:
        return json.loads((self.logs / run_id / "run.json").read_text())

    def cli(self, *args: str) -> list[str]:
        return ["--dir", str(self.logs), *args]


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)


def make_history(path: Path) -> Project:
    """Three finished runs and a failed one, a commit and an uncommitted change between."""
    pr = Project(path)
    pr.train("--lr", "0.1", "--note", "baseline")
    pr.train("--lr", "0.3", "--note", "higher lr")
    (path / "train.py").write_text((path / "train.py").read_text() + "# tweak\n")
    git(path, "commit", "-qam", "tweak the loop")
    (path / "model.py").write_text("LAYERS = 4\n")
    pr.train("--lr", "0.3", "--model", "cnn", "--note", "a cnn")
    pr.train("--lr", "0.9", "--fail", "--note", "too far", check=False)
    return pr


@pytest.fixture
def history(tmp_path) -> Project:
    return make_history(tmp_path)
