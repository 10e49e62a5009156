"""The note: why this run exists, from --note, RUNLOG_NOTE or start(note=...)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PARSER = """\
import argparse, sys, runlog
def make_parser():
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    return p
"""

ORDERS = {
    "start-then-parse": PARSER + "runlog.start(git=False)\nargs = make_parser().parse_args()\n"
                                 "print('argv:', sys.argv[1:])\n",
    "parse-then-start": PARSER + "args = make_parser().parse_args()\nrunlog.start(git=False)\n"
                                 "print('argv:', sys.argv[1:])\n",
}

FORMS = {"separate": ["--note", "why not, a smaller lr"], "equals": ["--note=why not, a smaller lr"]}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("order", sorted(ORDERS))
def test_note_on_a_script_that_does_not_define_it(run_script, order, form):
    proc, d, r = run_script(ORDERS[order], "--lr", "0.2", *FORMS[form])
    # argparse never saw it (it would have exited 2), the script's argv does not hold it
    assert "argv: ['--lr', '0.2']" in proc.stdout
    assert r["note"] == "why not, a smaller lr"
    assert r["args"] == {"lr": 0.2} and r["args_given"] == ["lr"]
    # the command recorded is the one to re-run: without the note
    assert r["command"] == ["python", "s.py", "--lr", "0.2"]
    assert r["command_line"] == "python s.py --lr 0.2"
    assert "- Note: why not, a smaller lr" in proc.stderr
    assert "note: why not, a smaller lr" in (d / "run.log").read_text()


def test_note_in_the_middle_of_the_arguments(run_script):
    proc, _, r = run_script(ORDERS["start-then-parse"], "--note", "first", "--lr", "0.3")
    assert r["note"] == "first" and r["args"] == {"lr": 0.3}
    assert r["command"] == ["python", "s.py", "--lr", "0.3"]


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("first", ["start", "parse"])
def test_a_parser_that_defines_note_still_gets_it(run_script, first, form):
    body = textwrap.dedent("""\
        import argparse, runlog
        p = argparse.ArgumentParser()
        p.add_argument("--note", default="")
        p.add_argument("--lr", type=float, default=0.1)
        """)
    body += ("runlog.start(git=False)\nargs = p.parse_args()\n" if first == "start"
             else "args = p.parse_args()\nrunlog.start(git=False)\n")
    body += "print('script sees:', args.note)\n"
    proc, _, r = run_script(body, *FORMS[form], "--lr", "0.5")
    assert "script sees: why not, a smaller lr" in proc.stdout
    assert r["note"] == "why not, a smaller lr"
    assert r["args"]["lr"] == 0.5
    assert "--note" not in r["command_line"]


def test_note_from_the_environment(run_script):
    proc, _, r = run_script("import runlog\nrunlog.start(git=False)\n",
                            env={"RUNLOG_NOTE": "from env"})
    assert r["note"] == "from env"
    assert "- Note: from env" in proc.stderr


def test_note_from_start(run_script):
    _, d, r = run_script("import runlog\nrunlog.start(git=False, note='in code')\n")
    assert r["note"] == "in code"
    assert "- Note: in code" in (d / "report.md").read_text()


def test_a_note_in_code_beats_the_environment(run_script):
    _, _, r = run_script("import runlog\nrunlog.start(git=False, note='in code')\n",
                         env={"RUNLOG_NOTE": "from env"})
    assert r["note"] == "in code"


def test_command_line_note_beats_the_environment(run_script):
    _, _, r = run_script("import runlog\nrunlog.start(git=False)\n", "--note", "typed",
                         env={"RUNLOG_NOTE": "from env"})
    assert r["note"] == "typed"


def test_no_note_anywhere(run_script):
    proc, d, r = run_script("import runlog\nrunlog.start(git=False)\n")
    assert r["note"] is None
    assert "Note:" not in proc.stderr and "note:" not in (d / "run.log").read_text()


def test_note_after_double_dash_belongs_to_the_script(run_script):
    proc, _, r = run_script("import sys, runlog\nrunlog.start(git=False)\nprint(sys.argv[1:])\n",
                            "--", "--note", "x")
    assert r["note"] is None
    assert "['--', '--note', 'x']" in proc.stdout
    assert r["command"] == ["python", "s.py", "--", "--note", "x"]


def test_unicode_and_quotes_in_a_note(run_script):
    note = "lr ÷ 10, \"warm\" restarts — it's 🚀"
    proc, d, r = run_script("import runlog\nrunlog.start(git=False)\n", "--note", note)
    assert r["note"] == note
    assert note in (d / "report.md").read_text(encoding="utf-8")


def test_note_added_during_the_run_goes_to_notes_md(run_script):
    _, d, r = run_script("""\
        import runlog
        run = runlog.start(git=False, note="why")
        run.add_note("loss spiked at step 40")
        runlog.add_note("second thought")
        """)
    notes = (d / "notes.md").read_text()
    assert notes.index("loss spiked at step 40") < notes.index("second thought")
    assert r["note"] == "why"  # the reason for the run is not rewritten by later notes


@pytest.mark.parametrize("module", ["pkg.train", "pkg"])
def test_note_on_a_module_run_with_dash_m_that_parses_first(tmp_path, module):
    (tmp_path / "pkg").mkdir()
    body = textwrap.dedent(ORDERS["parse-then-start"])
    for f in ("__init__.py", "__main__.py", "train.py"):
        (tmp_path / "pkg" / f).write_text("" if f == "__init__.py" else body)
    proc = subprocess.run([sys.executable, "-m", module, "--lr", "0.2", "--note", "why"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "- Note: why" in proc.stderr and "argv: ['--lr', '0.2']" in proc.stdout
    # the command to run it again names the module (Python 3.9, without sys.orig_argv, had
    # its file: `python /…/pkg/train.py`, which loses the package)
    assert f"- Re-run: `python -m {module} --lr 0.2`" in proc.stderr
