"""The recorded command is the one that ran: ``python -c CODE`` keeps its code, interpreter
options stay, on every Python (3.9 has no ``sys.orig_argv``: Linux's /proc tells)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parent.parent)
CODE = "import runlog, sys; runlog.start(git=False); print('argv', sys.argv[1:])"


def _python39() -> list[str]:
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3")))
    return found[:1] if sys.version_info >= (3, 10) else []


PYTHONS = [sys.executable, *_python39()]


def record_of(tmp_path: Path) -> dict:
    import json

    (d,) = [p for p in (tmp_path / "logs").iterdir() if p.is_dir() and not p.name.startswith(".")]
    return json.loads((d / "run.json").read_text())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/cmdline is Linux's")
@pytest.mark.parametrize("how", ["as it is", "without sys.orig_argv"])
@pytest.mark.parametrize("python", PYTHONS)
def test_python_dash_c_is_recorded_with_its_code(tmp_path, python, how):
    code = CODE if how == "as it is" else "import sys; sys.__dict__.pop('orig_argv', None); " + CODE
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run([python, "-u", "-c", code, "a b", "--note", "why", "-x"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "argv ['a b', '-x']" in proc.stdout
    r = record_of(tmp_path)
    assert r["command"] == [os.path.basename(python), "-u", "-c", code, "a b", "-x"]
    assert r["note"] == "why"


@pytest.mark.parametrize("python", PYTHONS)
def test_a_chdir_before_start_does_not_move_the_script(tmp_path, python):
    # sys.argv[0] is relative to where the process started: after a chdir it names no file
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "s.py").write_text(
        "import os, runlog\nos.chdir(os.path.dirname(os.path.abspath(__file__)))\n"
        f"runlog.start(git=False, log_dir={str(tmp_path / 'logs')!r})\n")
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run([python, "sub/s.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    r = record_of(tmp_path)
    assert r["script_path"] == os.path.realpath(tmp_path / "sub" / "s.py")
    assert r["command"][1:] == ["sub/s.py"]


def test_a_script_read_from_standard_input_has_no_script_path(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-", "a"], input="import runlog\nrunlog.start(git=False)\n",
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    r = record_of(tmp_path)
    assert r["command"] == ["python", "-", "a"] and r["script_path"] is None
