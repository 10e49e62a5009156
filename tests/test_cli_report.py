"""`runlog report`: reprinted, rebuilt for a run that never finished, copied for real."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from runlog.cli import main as cli
from runlog.clipboard import osc52

import cli_helpers
from conftest import clean_env

shared_history = cli_helpers.shared_history  # the fixture, for this module


def test_report_formats(shared_history, capsys):
    assert cli(shared_history.cli("report", "-3")) == 0
    md = capsys.readouterr().out
    assert md.startswith("## Run ") and "`python train.py --lr 0.3`" in md
    assert cli(shared_history.cli("report", "-3", "--format", "text")) == 0
    text = capsys.readouterr().out
    assert text.startswith("Run ") and "`" not in text and "## " not in text


def test_osc52_bytes():
    assert osc52("hi ✓") == "\x1b]52;c;aGkg4pyT\x07"


@pytest.fixture
def xserver():
    if not shutil.which("Xvfb") or not shutil.which("xclip"):
        pytest.skip("Xvfb and xclip are not installed (.ci/run installs them)")
    # Xvfb picks a free display itself and writes its number once it takes connections
    ready_r, ready_w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(ready_w), "-nolisten", "tcp"],
                            pass_fds=(ready_w,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(ready_w)
    with os.fdopen(ready_r) as ready:
        n = ready.readline().strip()
    if not n:
        pytest.fail(f"Xvfb ended without a display (exit {proc.wait()})")
    yield f":{n}"
    proc.terminate()
    proc.wait(timeout=10)


def test_report_copy_to_the_real_clipboard(shared_history, xserver):
    env = dict(os.environ, DISPLAY=xserver)
    env.pop("RUNLOG_DIR", None)
    p = subprocess.run([sys.executable, "-m", "runlog",
                        *shared_history.cli("report", "-2", "--copy")],
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "copied to the clipboard" in p.stderr
    got = _clipboard(env, lambda text: text == p.stdout)
    assert got == p.stdout and got.startswith(f"## Run {shared_history.ids()[2]}")


def _clipboard(env, ready) -> str:
    """The clipboard's text, read again until ``ready(text)`` (for 20 s at most): xclip
    hands the selection to a background copy of itself, which may take it a moment after
    the copying command returned."""
    deadline = time.monotonic() + 20
    while True:
        got = subprocess.run(["xclip", "-o", "-selection", "clipboard"], capture_output=True,
                             text=True, env=env, timeout=10).stdout
        if ready(got) or time.monotonic() > deadline:
            return got


def test_start_copy_puts_the_report_on_the_clipboard(project, xserver):
    env = dict(os.environ, DISPLAY=xserver)
    env.pop("RUNLOG_DIR", None)
    (project.path / "c.py").write_text("import runlog\nrunlog.start(copy=True, git=False, "
                                       "note='copied')\n")
    p = subprocess.run([sys.executable, "c.py"], cwd=project.path, capture_output=True,
                       text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    got = _clipboard(env, lambda text: "- Note: copied" in text)
    assert got.startswith("## Run ") and "- Note: copied" in got


def test_report_copy_without_a_clipboard_is_one_line(shared_history):
    env = dict(os.environ)
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "SSH_TTY", "SSH_CONNECTION", "RUNLOG_DIR"):
        env.pop(k, None)
    p = subprocess.run([sys.executable, "-m", "runlog", *shared_history.cli("report", "--copy")],
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("## Run ")  # the report is printed
    assert p.stderr.count("\n") == 1 and "could not copy the report" in p.stderr
    assert "http" not in p.stderr and "no display" in p.stderr  # a reason, not pyperclip's paragraph


KILLED = """\
import logging, runlog, time

run = runlog.start(git=False, console=False)
for i in range(1000):
    run.metric("loss", 1 / (i + 1), step=i)
    logging.info("step %d", i)
    if i == 5:
        print("ready", flush=True)
    time.sleep(0.02)
"""


def test_a_killed_run_gets_a_rebuilt_report_with_its_last_log_lines(project, capsys):
    (project.path / "k.py").write_text(KILLED)
    proc = subprocess.Popen([sys.executable, "k.py", "--note", "will be killed"],
                            cwd=project.path, env=clean_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (run_id,) = project.ids()
    assert project.record(run_id)["status"] == "running"  # nothing ran after the kill
    log = (project.logs / run_id / "run.log").read_text().splitlines()
    assert cli(project.cli("report")) == 0
    md = capsys.readouterr().out
    assert md.startswith(f"## Run {run_id} · lost · ")
    assert "- Note: will be killed" in md
    assert "- Metrics: loss " in md  # rebuilt from metrics.jsonl
    assert "Last log lines (ended without a word):" in md
    fenced = md.split("```\n")[1].splitlines()
    assert fenced == log[-len(fenced):] and 0 < len(fenced) <= 10
    assert cli(project.cli("report", "--format", "text")) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Run {run_id} · lost · ") and "```" not in text and "`" not in text
    assert text.rstrip("\n").endswith(log[-1])


def test_osc52_over_ssh_without_a_clipboard(shared_history, capsys):
    # the real path: no X display, SSH_TTY set, the escape written to the controlling terminal
    import pty

    env = clean_env(SSH_TTY="/dev/pts/99", SSH_CONNECTION="10.0.0.1 22 10.0.0.2 22", TERM="xterm")
    for k in ("DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(k, None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.execve(sys.executable, [sys.executable, "-m", "runlog", *shared_history.cli(
            "report", "-1", "--copy")], env)
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    start = seen.index(b"\x1b]52;c;")
    end = seen.index(b"\x07", start)
    copied = base64.b64decode(seen[start + 7:end]).decode()
    assert cli(shared_history.cli("report", "-1")) == 0
    assert copied == capsys.readouterr().out  # the whole report, byte for byte
    assert copied.startswith(f"## Run {shared_history.ids()[3]} · failed")
    assert b"report copied to the clipboard" in seen


def test_the_report_has_the_notes_added_later(tmp_path):
    # the report is what people paste: a note added after the run belongs in it
    logs = tmp_path / "logs"
    (tmp_path / "s.py").write_text("import runlog\nrunlog.start(git=False)\n")
    subprocess.run([sys.executable, "s.py"], cwd=tmp_path, check=True, capture_output=True,
                   env=clean_env())
    run = [sys.executable, "-m", "runlog", "--dir", str(logs)]
    for text in ("diverged after epoch 3", "lr too high\nretry with 1e-4", "third", "fourth"):
        subprocess.run([*run, "note", "-1", text], check=True, capture_output=True)
    out = subprocess.run([*run, "report"], capture_output=True, text=True, check=True).stdout
    noted = [ln for ln in out.splitlines() if ln.startswith("- Noted ")]
    assert len(noted) == 3 and noted[0].endswith(": lr too high retry with 1e-4")
    assert noted[-1].endswith(": fourth") and "- … 1 earlier notes (runlog show)" in out
    show = subprocess.run([*run, "show"], capture_output=True, text=True, check=True).stdout
    assert show.count("diverged after epoch 3") == 1  # all notes once, in its Notes section
