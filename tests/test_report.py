"""The final report: printed at exit, saved as report.md, the essentials first, and
what changed since the previous run of the same script. Real runs first, then
render() on records made by hand."""

from __future__ import annotations

import os
import platform
import re

import pytest

from conftest import commit_all, git_out, write_script
from runlog.fmt import fmt_duration, status_text
from runlog.report import render

TRAIN = """\
import argparse, runlog
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--model", default="mlp")
p.add_argument("--fail", action="store_true")
args = p.parse_args()
run = runlog.start()
acc = round(0.5 + args.lr, 3)
for e in range(args.epochs):
    run.log_metrics({"loss": round(1 - acc + 0.1 * (args.epochs - 1 - e), 3), "acc": acc}, step=e)
if args.fail:
    raise RuntimeError("diverged")
"""

BOX = set("─│┌┐└┘├┤┬┴┼═║╔╗╚╝━┃")


@pytest.fixture
def repo(git_repo):
    write_script(git_repo, TRAIN, "train.py")
    commit_all(git_repo, "the training script")
    return git_repo


def printed_report(stderr: str) -> str:
    """The report as printed at exit: from its heading to the end of stderr."""
    i = stderr.index("## Run ")
    return stderr[i:]


def test_the_report_printed_at_exit(repo, run_script):
    proc, d, r = run_script(None, "--lr", "0.2", "--note", "warmer start", name="train.py")
    report = printed_report(proc.stderr)
    short = git_out(repo, "rev-parse", "--short=7", "HEAD").strip()
    lines = report.splitlines()
    # the machine and what the run used: one line each (their figures are this machine's)
    host, py = os.uname().nodename, platform.python_version()
    (machine,) = [ln for ln in lines if ln.startswith("- Machine: ")]
    (used,) = [ln for ln in lines if ln.startswith("- Resources: ")]
    assert lines.index(used) == lines.index(machine) + 1
    assert re.fullmatch(rf"- Machine: {re.escape(host)}, \d+ CPUs, Python {py}", machine), machine
    assert re.fullmatch(r"- Resources: peak RSS [\d.]+ MB, CPU [\d.]+ s", used), used
    lines.remove(machine)
    lines.remove(used)
    assert re.fullmatch(rf"## Run {r['id']} · finished · \d+\.\d\d s", lines[0])
    assert lines[1] == ""
    assert lines[2:] == [
        "- Note: warmer start",
        "- Re-run: `python train.py --lr 0.2`",
        f"- Git: {short} on main, clean",
        "- Metrics: loss 0.3, acc 0.7",
        "- Args given: lr=0.2",
        "- Defaults: epochs=2, model=mlp, fail=False",
        f"- Log: logs/{r['id']}/run.log",
    ]
    # saved as printed, short, plain Markdown
    assert (d / "report.md").read_text(encoding="utf-8") == report
    assert len(lines) + 2 <= 15 and not BOX & set(report)


def test_metrics_show_last_and_best(run_script):
    proc, _, _ = run_script("""\
        import runlog
        run = runlog.start(git=False)
        for loss, acc in [(0.5, 0.1), (0.2, 0.9), (0.3, 0.8)]:
            run.log_metrics({"loss": loss, "acc": acc})
        run.metric("lr", 0.1)
        """)
    # lower is better for a loss, higher for the rest; no "best" for a single point
    assert "- Metrics: loss 0.3 (best 0.2), acc 0.8 (best 0.9), lr 0.1\n" in proc.stderr


def test_since_the_previous_run_of_the_same_script(repo, run_script):
    _, _, first = run_script(None, "--lr", "0.1", name="train.py")
    proc, _, second = run_script(None, "--lr", "0.01", name="train.py")
    assert second["previous"] == first["id"]
    since = [ln for ln in proc.stderr.splitlines() if ln.startswith("- Since ")]
    assert since == [f"- Since {first['id']}: lr 0.1 → 0.01; loss 0.4 → 0.49; acc 0.6 → 0.51"]


def test_the_first_run_has_nothing_to_compare_with(repo, run_script):
    proc, _, r = run_script(None, name="train.py")
    assert r["previous"] is None and "Since" not in proc.stderr


def test_same_arguments_and_code(repo, run_script):
    _, _, first = run_script(None, name="train.py")
    proc, _, r = run_script(None, name="train.py")
    assert r["code_changes"] == {"commits": 0, "files": [], "same": True}
    assert f"- Since {first['id']}: same arguments and code" in proc.stderr


def test_uncommitted_changes_since_the_previous_run_are_named(repo, run_script):
    # clean, then model.py edited without a commit: the code is not the same, and "Since"
    # names the file (as runlog diff does), never "same arguments and code"
    (repo / "model.py").write_text("layers = 2\n")
    commit_all(repo, "a model")
    _, _, first = run_script(None, name="train.py")
    (repo / "model.py").write_text("layers = 3\n")
    proc, _, second = run_script(None, name="train.py")
    assert second["code_changes"] == {"commits": 0, "files": ["model.py"], "same": False}
    assert f"- Since {first['id']}: uncommitted changes differ (model.py)" in proc.stderr
    # the same uncommitted change again: the same code
    proc, _, third = run_script(None, name="train.py")
    assert third["code_changes"]["same"] is True
    assert f"- Since {second['id']}: same arguments and code" in proc.stderr
    # committed now: a new commit, but the content is what the last run had
    commit_all(repo, "three layers")
    proc, _, fourth = run_script(None, name="train.py")
    assert fourth["code_changes"] == {"commits": 1, "files": [], "same": False}


def test_a_run_without_a_recorded_code_state_never_claims_the_same_code():
    prev = record(id="p", args={"lr": 0.1})
    cur = record(args={"lr": 0.1}, code_changes=None)
    assert "- Since p: same arguments\n" in render(cur, prev)


def test_compared_with_the_previous_finished_run_only(repo, run_script):
    _, _, good = run_script(None, "--lr", "0.1", name="train.py")
    _, _, bad = run_script(None, "--lr", "0.5", "--fail", name="train.py", rc=1)
    assert bad["previous"] == good["id"]
    proc, _, r = run_script(None, "--lr", "0.3", name="train.py")
    assert r["previous"] == good["id"]
    assert f"- Since {good['id']}: lr 0.1 → 0.3;" in proc.stderr


def test_another_script_in_the_same_log_directory_is_not_compared(repo, run_script):
    run_script(None, name="train.py")
    proc, _, r = run_script("import runlog\nrunlog.start()\n", name="eval.py")
    assert r["previous"] is None and "Since" not in proc.stderr


def test_new_commits_and_their_files_since_the_previous_run(repo, run_script):
    _, _, first = run_script(None, name="train.py")
    (repo / "a.py").write_text("x = 2\n")
    (repo / "model.py").write_text("layers = 4\n")
    commit_all(repo, "a deeper model")
    proc, _, r = run_script(None, "--model", "cnn", name="train.py")
    assert r["code_changes"] == {"commits": 1, "files": ["a.py", "model.py"], "same": False}
    assert (f"- Since {first['id']}: model mlp → cnn; 1 new commit (a.py, model.py)"
            in proc.stderr)


def test_a_failed_run_reports_its_error(repo, run_script):
    proc, d, r = run_script(None, "--fail", name="train.py", rc=1)
    report = (d / "report.md").read_text()
    assert report.startswith(f"## Run {r['id']} · failed · ")
    assert "- Error: RuntimeError: diverged (train.py:13 in <module>)" in report
    # the error comes after the arguments, before the log path
    assert report.index("- Args given") < report.index("- Error") < report.index("- Log")


def test_uncommitted_changes_are_said_to_be_saved(repo, run_script):
    (repo / "a.py").write_text("x = 9\n")
    proc, _, r = run_script(None, name="train.py")
    assert (f"- Git: {r['git']['short']} on main, uncommitted changes in 1 file saved in "
            "code.patch") in proc.stderr


# ------------------------------------------------------------------ render() on its own


def record(**kw) -> dict:
    r = {"id": "20260101-120000", "status": "finished", "exit_code": 0, "duration_s": 83.2,
         "note": None, "command_line": "python train.py --lr 0.01", "git": None, "args": {},
         "args_given": [], "metrics": {}, "error": None}
    r.update(kw)
    return r


def test_render_the_essentials_in_order():
    r = record(
        note="smaller lr",
        git={"commit": "a" * 40, "short": "aaaaaaa", "branch": "main", "dirty": True,
             "changed_files": ["m.py", "n.py"], "patch": "code.patch", "patch_truncated": False},
        metrics={"loss": {"last": 0.21, "min": 0.2, "max": 1.5, "count": 10},
                 "acc": {"last": 0.93, "min": 0.1, "max": 0.93, "count": 10}},
        args={"lr": 0.01, "epochs": 10, "model": "mlp"}, args_given=["lr"],
        dir="logs/20260101-120000")
    assert render(r) == (
        "## Run 20260101-120000 · finished · 1 min 23 s\n"
        "\n"
        "- Note: smaller lr\n"
        "- Re-run: `python train.py --lr 0.01`\n"
        "- Git: aaaaaaa on main, uncommitted changes in 2 files saved in code.patch\n"
        "- Metrics: loss 0.21 (best 0.2), acc 0.93\n"
        "- Args given: lr=0.01\n"
        "- Defaults: epochs=10, model=mlp\n"
        "- Log: logs/20260101-120000/run.log\n")


def test_render_as_plain_text():
    text = render(record(args={"lr": 0.1}), fmt="text")
    assert text.startswith("Run 20260101-120000 · finished")
    assert "`" not in text and "#" not in text
    assert "- Re-run: python train.py --lr 0.01" in text


def test_render_a_bare_record():
    # an old or interrupted record with almost nothing in it still renders
    assert render({"id": "x"}) == "## Run x · ? · ?\n\n"


@pytest.mark.parametrize("git,line", [
    ({"short": "abc1234", "commit": "abc1234" + "0" * 33, "branch": None, "dirty": False},
     "- Git: abc1234 (detached HEAD), clean"),
    ({"short": None, "commit": None, "branch": "main", "dirty": True,
      "changed_files": ["a.py"], "patch": "code.patch"},
     "- Git: no commits yet on main, uncommitted changes in 1 file saved in code.patch"),
    ({"short": "abc1234", "commit": "c", "branch": "dev", "dirty": True,
      "changed_files": ["a", "b"], "patch": "code.patch", "patch_truncated": True},
     "- Git: abc1234 on dev, uncommitted changes in 2 files saved in code.patch, cut at 1 MB"),
    ({"short": "abc1234", "commit": "c", "branch": "dev", "dirty": True,
      "changed_files": ["a"], "patch": None},
     "- Git: abc1234 on dev, uncommitted changes in 1 file not saved"),
])
def test_render_git_states(git, line):
    assert line in render(record(git=git)).splitlines()


def test_render_without_git_has_no_git_line():
    assert "Git" not in render(record(git=None))


def test_render_since_the_previous_run():
    prev = record(id="20251231-235959", args={"lr": 0.1, "bs": 32, "old": 1},
                  metrics={"acc": {"last": 0.5}, "loss": {"last": 0.3}})
    cur = record(args={"lr": 0.01, "bs": 32, "wd": 0.1}, args_given=["lr"],
                 metrics={"acc": {"last": 0.7}, "loss": {"last": 0.3}},
                 code_changes={"commits": 2, "files": ["a.py", "b.py", "c.py", "d.py", "e.py"]})
    line = [ln for ln in render(cur, prev).splitlines() if ln.startswith("- Since")]
    assert line == ["- Since 20251231-235959: lr 0.1 → 0.01; wd (new) 0.1; old 1 (gone); "
                    "2 new commits (a.py, b.py, c.py, d.py +1); acc 0.5 → 0.7"]


def test_render_many_argument_changes_are_summarised():
    prev = record(id="p", args={f"a{i}": i for i in range(10)})
    cur = record(args={f"a{i}": i + 1 for i in range(10)})
    since = render(cur, prev).splitlines()[-1]
    assert since.startswith("- Since p: a0 0 → 1; a1 1 → 2;")
    assert since.endswith("a5 5 → 6; … 4 more arguments")


def test_render_nested_and_long_arguments():
    r = record(args={"model": {"depth": 12, "act": "gelu"}, "name": "a b",
                     **{f"option_{i}": "x" * 20 for i in range(12)}},
               args_given=["model.depth"])
    lines = render(r).splitlines()
    assert "- Args given: model.depth=12" in lines
    defaults = [ln for ln in lines if ln.startswith("- Defaults: ")][0]
    assert defaults.startswith("- Defaults: model.act=gelu, name='a b', option_0=")
    assert re.search(r", … \d+ more$", defaults) and len(defaults) < 220


def test_render_args_without_a_given_list():
    # a record from a config object with no command line: all of them are "Args"
    lines = render(record(args={"lr": 0.1}, args_given=None)).splitlines()
    assert "- Args: lr=0.1" in lines


def test_render_the_error():
    r = record(status="failed", exit_code=1,
               error={"type": "ValueError", "message": "bad shape", "where": "m.py:3 in f"})
    assert "- Error: ValueError: bad shape (m.py:3 in f)" in render(r)


@pytest.mark.parametrize("rec,text", [
    ({"status": "finished", "exit_code": 0}, "finished"),
    ({"status": "failed", "exit_code": 1}, "failed"),
    ({"status": "failed", "exit_code": 3}, "failed (exit 3)"),
    ({"status": "killed", "exit_code": 143, "signal": "SIGTERM"}, "killed by SIGTERM"),
    ({"status": "interrupted", "exit_code": 130}, "interrupted"),
    ({}, "?"),
])
def test_status_text(rec, text):
    assert status_text(rec) == text


@pytest.mark.parametrize("s,text", [(None, "?"), (0.5, "0.50 s"), (12.34, "12.3 s"),
                                    (83.2, "1 min 23 s"), (7322, "2 h 02 min"),
                                    (90000, "1 d 1 h")])
def test_durations(s, text):
    assert fmt_duration(s) == text


def test_no_box_drawing_anywhere():
    prev = record(id="p", args={"lr": 0.1})
    r = record(status="failed", note="n", args={"lr": 0.2}, args_given=["lr"],
               error={"type": "E", "message": "m"}, metrics={"acc": {"last": 1, "count": 1}},
               git={"short": "a", "commit": "a", "branch": "b", "dirty": False})
    for fmt in ("md", "text"):
        assert not BOX & set(render(r, prev, fmt=fmt))
