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
        return sorted(p.name for p in self.logs.iterdir() if p.is_dir() and not p.name.startswith("."))

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


# ------------------------------------------------------------------ the core's fixtures
#
# Tests of the core run real scripts in real subprocesses: ``run_script`` writes
# a script into the test's folder, runs it with this interpreter and hands back
# the process, the one run folder it made, and that run's record.

RUNLOG_ENV = ("RUNLOG_DIR", "RUNLOG_NOTE", "RUNLOG_RUN_ID", "RUNLOG_RUN_DIR", "RUNLOG_MASK", "RUNLOG_RESUME",
              "RANK", "LOCAL_RANK")


@pytest.fixture(autouse=True)
def _no_runlog_env(monkeypatch):
    """Subprocesses inherit this environment: no log directory, note or run to join
    from the shell that started pytest, and a git identity for the commits tests make."""
    for k in RUNLOG_ENV:
        monkeypatch.delenv(k, raising=False)
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)


def run_dirs(logs: Path) -> set[Path]:
    if not logs.is_dir():
        return set()
    return {d for d in logs.iterdir() if d.is_dir() and not d.name.startswith(".")}  # runs only


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_script(where: Path, body: str, name: str = "s.py") -> Path:
    path = where / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def run_script(tmp_path):
    """run_script(body, *args, ...) -> (proc, run_dir, record).

    ``body`` (dedented) is written to ``cwd/name`` unless it is None (the file is
    already there). The script runs with this Python in ``cwd`` (default: the test's
    tmp_path). ``rc`` is the exit code expected (None: any). ``run_dir`` is the one
    run folder the script made under ``cwd/logs`` (None if it made none).
    """

    def run(body, *args, name="s.py", cwd=None, env=None, rc=0, logs="logs",
            python=sys.executable):
        cwd = Path(cwd or tmp_path)
        if body is not None:
            write_script(cwd, body, name)
        before = run_dirs(cwd / logs)
        e = dict(os.environ)
        e.update(env or {})
        proc = subprocess.run([python, name, *args], cwd=cwd, env=e, capture_output=True,
                              text=True, timeout=60)
        if rc is not None:
            assert proc.returncode == rc, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        new = run_dirs(cwd / logs) - before
        assert len(new) <= 1, f"one run expected, got {sorted(new)}"
        if not new:
            return proc, None, None
        (run_dir,) = new
        return proc, run_dir, read_json(run_dir / "run.json")

    return run


def spawn(cwd: Path, body: str, *args: str, name: str = "s.py") -> subprocess.Popen:
    """Start a script that keeps running; its stdout is a text pipe to wait on."""
    write_script(cwd, body, name)
    return subprocess.Popen([sys.executable, name, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_line(proc: subprocess.Popen, text: str) -> None:
    """Read the process's stdout until a line holds ``text`` (it flushes it)."""
    for line in proc.stdout:
        if text in line:
            return
    raise AssertionError(f"{text!r} never printed; stderr: {proc.stderr.read()}")


def git_out(repo: Path, *args: str) -> str:
    p = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                       env=clean_env())
    return p.stdout


@pytest.fixture
def git_repo(tmp_path) -> Path:
    """tmp_path as a real git repository on branch main with one commit (a.py).

    The log directory is not ignored: runlog itself must leave it out of the code state.
    """
    git_out(tmp_path, "-c", "init.defaultBranch=main", "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git_out(tmp_path, "add", "a.py")
    git_out(tmp_path, "commit", "-qm", "first")
    return tmp_path


def commit_all(repo: Path, message: str = "more") -> str:
    """Commit everything but logs/ and return the new commit."""
    git_out(repo, "add", "--all", "--", ".", ":(exclude)logs")
    git_out(repo, "commit", "-qm", message)
    return git_out(repo, "rev-parse", "HEAD").strip()


def integration(module: str):
    """Import a package of the ``integrations`` extra, or skip saying how to get it.

    The default suite (``pip install -e '.[test]'``) stays lean; ``.ci/run`` and
    ``pip install -e '.[test,integrations]'`` run these tests too.
    """
    return pytest.importorskip(
        module, reason=f"{module} is in the integrations extra: pip install -e '.[test,integrations]'")
