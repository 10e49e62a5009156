"""`runlog show` and `runlog report`, including the real clipboard."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from runlog.cli import main as cli
from runlog.report import osc52


def test_show_is_readable(history, capsys):
    ids = history.ids()
    assert cli(history.cli("note", ids[2], "cnn is slower per step")) == 0
    capsys.readouterr()
    assert cli(history.cli("show", "-2")) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Run {ids[2]} · finished")
    for section in ("Arguments:", "Metrics:", "Git:", "Notes:", "Files in "):
        assert section in out
    assert "cnn   (given)" in out
    assert "cnn is slower per step" in out and "code.patch" in out
    assert cli(history.cli("show", "-1")) == 0
    assert "Traceback:" in capsys.readouterr().out  # the failed run's traceback


def test_show_patch_and_json(history, capsys):
    assert cli(history.cli("show", "-2", "--patch")) == 0
    patch = capsys.readouterr().out
    assert "diff --git a/model.py b/model.py" in patch and "+LAYERS = 4" in patch
    assert cli(history.cli("show", history.ids()[0], "--patch")) == 1
    assert "saved no code changes" in capsys.readouterr().err
    assert cli(history.cli("show", "-1", "--json")) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["status"] == "failed" and raw["error"]["type"] == "RuntimeError"
    assert "dir" not in raw


def test_report_formats(history, capsys):
    assert cli(history.cli("report", "-3")) == 0
    md = capsys.readouterr().out
    assert md.startswith("## Run ") and "`python train.py --lr 0.3`" in md
    assert cli(history.cli("report", "-3", "--format", "text")) == 0
    text = capsys.readouterr().out
    assert text.startswith("Run ") and "`" not in text and "## " not in text


def test_osc52_bytes():
    assert osc52("hi ✓") == "\x1b]52;c;aGkg4pyT\x07"


def _free_display() -> int:
    for n in range(90, 200):
        if not os.path.exists(f"/tmp/.X{n}-lock") and not os.path.exists(f"/tmp/.X11-unix/X{n}"):
            return n
    pytest.skip("no free X display number")


@pytest.fixture
def xserver():
    if not shutil.which("Xvfb") or not shutil.which("xclip"):
        pytest.skip("Xvfb and xclip are not installed (.ci/run installs them)")
    n = _free_display()
    proc = subprocess.Popen(["Xvfb", f":{n}", "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(f"/tmp/.X11-unix/X{n}"):
            break
        time.sleep(0.05)
    yield f":{n}"
    proc.terminate()
    proc.wait(timeout=10)


def test_report_copy_to_the_real_clipboard(history, xserver):
    env = dict(os.environ, DISPLAY=xserver)
    env.pop("RUNLOG_DIR", None)
    p = subprocess.run([sys.executable, "-m", "runlog", *history.cli("report", "-2", "--copy")],
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "copied to the clipboard" in p.stderr
    got = subprocess.run(["xclip", "-o", "-selection", "clipboard"], capture_output=True,
                         text=True, env=env, timeout=10).stdout
    assert got == p.stdout and got.startswith(f"## Run {history.ids()[2]}")


def test_start_copy_puts_the_report_on_the_clipboard(project, xserver):
    env = dict(os.environ, DISPLAY=xserver)
    env.pop("RUNLOG_DIR", None)
    (project.path / "c.py").write_text("import runlog\nrunlog.start(copy=True, git=False, "
                                       "note='copied')\n")
    p = subprocess.run([sys.executable, "c.py"], cwd=project.path, capture_output=True,
                       text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    got = subprocess.run(["xclip", "-o", "-selection", "clipboard"], capture_output=True,
                         text=True, env=env, timeout=10).stdout
    assert got.startswith("## Run ") and "- Note: copied" in got


def test_report_copy_without_a_clipboard_is_one_line(history):
    env = dict(os.environ)
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "SSH_TTY", "SSH_CONNECTION", "RUNLOG_DIR"):
        env.pop(k, None)
    p = subprocess.run([sys.executable, "-m", "runlog", *history.cli("report", "--copy")],
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "could not copy the report" in p.stderr
