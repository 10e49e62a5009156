"""Arguments and the note, captured from real scripts run as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import clean_env

PARSER = """\
import argparse, enum, pathlib, runlog
class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"
def make_parser():
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out"))
    p.add_argument("--mode", type=Mode, default=Mode.FAST)
    p.add_argument("--verbose", action="store_true")
    return p
"""

CASES = {
    "start-then-parse": PARSER + "runlog.start(git=False)\nargs = make_parser().parse_args()\n",
    "parse-then-start": PARSER + "args = make_parser().parse_args()\nrunlog.start(git=False)\n",
    "start-with-args": PARSER + "args = make_parser().parse_args()\nrunlog.start(args, git=False)\n",
    "parse-known-args": PARSER + "runlog.start(git=False)\n"
                                 "args, rest = make_parser().parse_known_args()\nprint(rest)\n",
    "parser-in-main": PARSER + "def main():\n    p = make_parser()\n    a = p.parse_args()\n"
                               "    runlog.start(git=False)\nmain()\n",
}


def run(tmp_path, body, *args, **env):
    (tmp_path / "s.py").write_text(textwrap.dedent(body))
    p = subprocess.run([sys.executable, "s.py", *args], cwd=tmp_path, capture_output=True,
                       text=True, env=clean_env(**env), timeout=60)
    assert p.returncode == 0, p.stderr
    (d,) = [x for x in (tmp_path / "logs").iterdir() if x.is_dir()]
    return p, json.loads((d / "run.json").read_text()), d


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_order(tmp_path, case):
    extra = ["--unknown", "1"] if case == "parse-known-args" else []
    p, r, d = run(tmp_path, CASES[case], "--lr", "0.5", "--mode", "slow", "--verbose", *extra)
    assert r["args"] == {"lr": 0.5, "epochs": 3, "out": "out", "mode": "Mode.SLOW",
                         "verbose": True}
    assert sorted(r["args_given"]) == ["lr", "mode", "verbose"]
    assert "args: lr=0.5 epochs=3" in (d / "run.log").read_text()


def test_subparsers(tmp_path):
    _, r, _ = run(tmp_path, """\
        import argparse, runlog
        runlog.start(git=False)
        p = argparse.ArgumentParser()
        p.add_argument("--seed", type=int, default=0)
        sub = p.add_subparsers(dest="cmd")
        t = sub.add_parser("train")
        t.add_argument("--layers", type=int, default=2)
        t.add_argument("--data", type=argparse.FileType("r"))
        e = sub.add_parser("eval")
        e.add_argument("--split", default="val")
        p.parse_args()
        """, "train", "--layers", "5", "--data", "s.py")
    assert r["args"] == {"seed": 0, "cmd": "train", "layers": 5, "data": "s.py"}
    assert sorted(r["args_given"]) == ["cmd", "data", "layers"]


def test_a_library_parsing_later_does_not_count(tmp_path):
    _, r, _ = run(tmp_path, """\
        import argparse, runlog
        runlog.start(git=False)
        p = argparse.ArgumentParser()
        p.add_argument("--lr", type=float, default=0.1)
        p.parse_args()
        q = argparse.ArgumentParser()
        q.add_argument("--other", default="x")
        q.parse_known_args([])
        """, "--lr", "0.2")
    assert r["args"] == {"lr": 0.2}


@pytest.mark.parametrize("order", ["start-then-parse", "parse-then-start"])
@pytest.mark.parametrize("form", [["--note", "why not"], ["--note=why not"]])
def test_note_on_a_script_that_does_not_define_it(tmp_path, order, form):
    p, r, _ = run(tmp_path, CASES[order], "--lr", "0.2", *form)
    assert r["note"] == "why not"
    assert "--note" not in " ".join(r["command"]) and "--note" not in r["command_line"]
    assert "- Note: why not" in p.stderr


def test_a_parser_that_defines_note_still_gets_it(tmp_path):
    p, r, _ = run(tmp_path, """\
        import argparse, runlog
        p = argparse.ArgumentParser()
        p.add_argument("--note", default="")
        runlog.start(git=False)
        print("script sees:", p.parse_args().note)
        """, "--note", "mine too")
    assert "script sees: mine too" in p.stdout
    assert r["note"] == "mine too"


def test_note_from_env_and_argument(tmp_path):
    _, r, _ = run(tmp_path, "import runlog\nrunlog.start(git=False)\n", RUNLOG_NOTE="from env")
    assert r["note"] == "from env"
    sub = tmp_path / "b"
    sub.mkdir()
    _, r, _ = run(sub, "import runlog\nrunlog.start(git=False, note='in code')\n",
                  RUNLOG_NOTE="from env")
    assert r["note"] == "in code"


def test_note_after_double_dash_is_the_scripts(tmp_path):
    p, r, _ = run(tmp_path, """\
        import sys, runlog
        runlog.start(git=False)
        print(sys.argv[1:])
        """, "--", "--note", "x")
    assert r["note"] is None and "['--', '--note', 'x']" in p.stdout


def test_import_runlog_is_light():
    code = ("import sys, runlog\n"
            "heavy = [m for m in ('git', 'rich', 'pyperclip', 'logging', 'subprocess', 'json',"
            " 'argparse') if m in sys.modules]\nprint(heavy)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=clean_env(), timeout=60)
    assert p.stdout.strip() == "[]", p.stdout
