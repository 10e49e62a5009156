"""`import runlog` is cheap and does nothing; start() stays off the heavy modules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import git_out, run_dirs


def python(code: str, cwd, *args: str) -> dict:
    p = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


# the heavy ones, and argparse and json: a script that never uses them does not pay for them
@pytest.mark.parametrize("module", ["git", "rich", "pyperclip", "logging", "subprocess",
                                    "argparse", "json"])
def test_import_runlog_pulls_in_none_of(module, tmp_path):
    code = (f"import sys\nassert {module!r} not in sys.modules\nimport runlog\n"
            f"print(str({module!r} in sys.modules).lower())")
    assert python(code, tmp_path) is False


def test_import_runlog_has_no_side_effects(tmp_path):
    code = """\
import json, os, signal, sys, threading
state = lambda: [list(sys.argv), sys.excepthook, sys.exit, sys.stdout, sys.stderr,
                 list(sys.meta_path), signal.getsignal(signal.SIGTERM),
                 signal.getsignal(signal.SIGINT), threading.active_count(),
                 sorted(os.listdir("."))]
before = state()
import runlog
after = state()
print(json.dumps({"same": before == after, "active": runlog.current() is None}))
"""
    assert python(code, tmp_path, "--lr", "0.1") == {"same": True, "active": True}
    assert list(tmp_path.iterdir()) == []  # no logs/ made


def test_start_leaves_git_rich_and_pyperclip_out_of_the_process(tmp_path):
    git_out(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    code = """\
import json, sys, runlog
run = runlog.start()  # with git: it runs the git program, never GitPython
run.finish()
print(json.dumps({m: m in sys.modules for m in ("git", "rich", "pyperclip", "subprocess")}))
"""
    got = python(code, tmp_path)
    assert got == {"git": False, "rich": False, "pyperclip": False, "subprocess": False}
    (d,) = run_dirs(tmp_path / "logs")
    assert json.loads((d / "run.json").read_text())["git"]["changed_files"] == ["a.py"]


def test_module_functions_without_a_run(tmp_path):
    code = """\
import json, runlog
runlog.finish()  # nothing to finish: fine
runlog.metric("x", 1)
runlog.metric("x", 2)  # said once
print(json.dumps({"current": runlog.current()}))
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and json.loads(p.stdout) == {"current": None}
    assert p.stderr.count("runlog.metric() was called with no active run") == 1
    assert list(tmp_path.iterdir()) == []


def test_import_with_a_note_takes_only_the_note(tmp_path):
    # The one documented side effect: with --note on the command line, `import runlog`
    # takes it out of sys.argv (so a parse before start() never sees it) — and nothing else.
    (tmp_path / "s.py").write_text("""\
import json, os, signal, sys, threading
state = lambda: [sys.excepthook, sys.exit, sys.stdout, sys.stderr,
                 signal.getsignal(signal.SIGTERM), threading.active_count(),
                 sorted(os.listdir("."))]
before, argv, path = state(), list(sys.argv), list(sys.meta_path)
heavy = ("argparse", "json.decoder", "logging", "subprocess", "rich", "git")
loaded = [m for m in heavy if m in sys.modules]
import runlog
print(json.dumps({"same": before == state(), "argv": sys.argv[1:], "was": argv[1:],
                  "new": [m for m in heavy if m in sys.modules and m not in loaded],
                  "finders": len(sys.meta_path) - len(path), "active": runlog.current() is None}))
""")
    p = subprocess.run([sys.executable, "s.py", "--lr", "0.1", "--note", "why not", "-v"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["was"] == ["--lr", "0.1", "--note", "why not", "-v"]
    assert got["argv"] == ["--lr", "0.1", "-v"]
    assert got["same"] and got["active"] and got["new"] == []
    assert got["finders"] == 1  # argparse, if the script imports it later, hands --note back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.py"]  # no logs/ made
