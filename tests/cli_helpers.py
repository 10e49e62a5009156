"""What the CLI tests share beyond conftest's fixtures: the `runlog` command as a real
process, a log directory with things in it that are not runs, and table parsing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project, clean_env, make_history

RUNLOG = [sys.executable, "-m", "runlog"]


def runlog(logs: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    """`runlog --dir LOGS ARGS...` as its own process, output captured as text."""
    kw.setdefault("env", clean_env())
    return subprocess.run([*RUNLOG, "--dir", str(logs), *args], capture_output=True, text=True,
                          timeout=60, **kw)


@pytest.fixture(scope="module")
def shared_history(tmp_path_factory) -> Project:
    """conftest's ``history`` (the same four real runs), made once per test module for the
    tests that only read it; a test that adds notes or runs takes its own ``history``."""
    pr = make_history(tmp_path_factory.mktemp("history"))
    before = _snapshot(pr.logs)
    yield pr
    assert _snapshot(pr.logs) == before, "a test changed the shared history: give it `history`"


def _snapshot(logs: Path) -> dict:
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(logs) for f in files}


def add_mess(logs: Path) -> list[str]:
    """Put in the log directory what users and tools leave there, and broken runs.

    Returns the names of the two folders that look like broken runs (a run.log with an
    unreadable or wrong-typed run.json): each deserves one warning line, the rest none.
    """
    (logs / "README.txt").write_text("my notes about these runs\n")
    (logs / "journal.html").write_text("<html></html>")
    (logs / ".DS_Store").write_bytes(b"\0\1\2")
    (logs / "tensorboard").mkdir()
    (logs / "tensorboard" / "events.out").write_bytes(b"\0" * 10)
    (logs / "empty").mkdir()
    torn = logs / "20200101-000000"
    torn.mkdir()
    (torn / "run.json").write_text('{"schema": 1, "id": "20200101-00')  # cut mid-write
    (torn / "run.log").write_text("2020-01-01 00:00:00.000 INFO    hello\n")
    typed = logs / "20200101-000001"
    typed.mkdir()
    (typed / "run.json").write_text(json.dumps({"id": "20200101-000001", "args": [1, 2],
                                                "metrics": "none", "started_at": 5}))
    (typed / "run.log").write_text("x\n")
    not_a_record = logs / "20200101-000002"
    not_a_record.mkdir()
    (not_a_record / "run.json").write_text('[1, 2, 3]')  # a folder of someone else's JSON
    return [torn.name, typed.name]


def one_error_line(err: str, *, warnings: int = 0) -> str:
    """Assert stderr is ``warnings`` warning lines then one error line; return the error."""
    lines = err.splitlines()
    assert "Traceback" not in err, err
    assert len(lines) == warnings + 1, err
    assert all(ln.startswith("runlog: warning: ") for ln in lines[:-1]), err
    assert lines[-1].startswith("runlog: error: "), err
    return lines[-1]


def md_table(text: str) -> list[dict]:
    """A Markdown table as a list of rows keyed by the header (escaped pipes restored)."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]

    def cells(line: str) -> list[str]:
        inner = line.strip()[1:-1].replace("\\|", "\0")
        return [c.strip().replace("\0", "|") for c in inner.split("|")]

    header = cells(lines[0])
    assert set(lines[1]) <= set("|-: ")
    return [dict(zip(header, cells(ln))) for ln in lines[2:]]


def on_a_terminal(argv: list[str], columns: int, env: dict, cwd=None) -> str:
    """What a command writes to a real terminal (a pty) of ``columns``, colours and all.

    The pty is raw, so the bytes come as written ("\\n", not "\\r\\n"); they are read
    until the program closes its end (EIO on Linux, or EOF). It must exit 0.
    """
    import pty
    import tty

    master, slave = pty.openpty()
    tty.setraw(slave)
    env = dict(env, COLUMNS=str(columns), TERM="xterm-256color")
    p = subprocess.Popen(argv, cwd=cwd, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:
            break
        if not b:
            break
        chunks.append(b)
    os.close(master)
    assert p.wait(timeout=60) == 0, p.stderr.read()
    return b"".join(chunks).decode("utf-8")
