"""Recorded text is shown, never obeyed.

Real runs whose note, name, tags, argument names and values, metric names, error,
notes, log lines, commit subjects and file names hold control characters — an OSC 52
that would write the viewer's clipboard, CSI sequences, bare carriage returns,
newlines, C1 controls — then every command that prints them, as a real process. Not
one control character reaches stdout (a newline only ends a line), and the Markdown
report stays one line per fact.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys

import pytest

from cli_helpers import on_a_terminal
from conftest import commit_all, git_out

OSC52 = "\x1b]52;c;SGFja2Vk\x07"  # "Hacked" to the clipboard
CSI = "\x1b[2J\x1b[H"  # clear the screen, cursor home
NOTE = f"why {OSC52} {CSI}\rover"  # --note: OSC 52, CSI and a bare CR

SCRIPT = """\
import argparse, logging, os, sys
import runlog

OSC52 = "\\x1b]52;c;SGFja2Vk\\x07"
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--evil\\x1b[7m-key\\x9b", default="d\\x1b]0;title\\x07")
p.add_argument("--value", default="plain")
p.add_argument("--end", default="finish")
a = p.parse_args()
run = runlog.start(name="n\\x1b[31mame" + OSC52, tags=["t\\x1b[5m", "two\\nlines", "c1\\x85"])
log = logging.getLogger("hostile")
run.metric("loss\\n- Fake: bullet\\x1b[2J", 0.5, step=0)
run.metric("loss\\n- Fake: bullet\\x1b[2J", 0.25 * a.lr, step=1)
run.metric("acc\\x1b]52;c;QUND\\x07", 0.9)
run.metric("plain", a.lr)
log.info("line one %s then\\rcarriage", OSC52)
log.warning("colours \\x1b[31mred\\x1b[0m del\\x7f c1\\x9b31m bell\\x07 bs\\x08")
print("printed " + OSC52 + " and \\x1b[1A up")
run.add_note("later " + OSC52 + "\\r\\nsecond line \\x1b[2J \\u202egnp.exe \\u2028next")
if a.end == "fail":
    raise RuntimeError("boom " + OSC52 + "\\r\\nsecond \\x9b31m line")
if a.end == "lose":
    sys.stdout.flush(); sys.stderr.flush()
    os.kill(os.getpid(), 9)  # a hard kill: the run is left lost
"""

# every C0 control but TAB and LF, DEL, and every C1 control
# and the bidi overrides and isolates (text that reads other than it is), and the
# line and paragraph separators
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(text: str, what: str) -> None:
    bad = FORBIDDEN.search(text)
    if bad is not None:
        at = bad.start()
        raise AssertionError(f"{what}: {bad.group()!r} at {at}: {text[max(0, at - 80):at + 40]!r}")


def stdout_of(logs, *args: str) -> str:
    """`runlog --dir LOGS ARGS...` run where the user works, its stdout checked clean."""
    p = subprocess.run([sys.executable, "-m", "runlog", "--dir", str(logs), *args],
                       capture_output=True, timeout=60, cwd=logs.parent)
    assert p.returncode == 0, (args, p.stderr.decode("utf-8", "replace"))
    text = p.stdout.decode("utf-8")  # strict: no lone surrogate or broken byte either
    clean(text, "runlog " + " ".join(args))
    return text


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Three runs in a git repository: finished, failed, lost; hostile text everywhere."""
    repo = tmp_path_factory.mktemp("hostile")
    git_out(repo, "-c", "init.defaultBranch=main", "init", "-q")
    (repo / "train.py").write_text(SCRIPT, encoding="utf-8")
    commit_all(repo, "first")
    env = dict(os.environ)
    for k in ("RUNLOG_DIR", "RUNLOG_NOTE", "RUNLOG_RUN_ID", "RUNLOG_RUN_DIR"):
        env.pop(k, None)

    def train(*args, rc):
        p = subprocess.run([sys.executable, "train.py", *args], cwd=repo, env=env,
                           capture_output=True, timeout=60)
        assert p.returncode == rc, p.stderr.decode("utf-8", "replace")
        return p

    first = train("--note", NOTE, "--value", "v1\x1b]52;c;QUJD\x07\r\nX", rc=0)
    # a commit whose subject, and an uncommitted file whose name, hold escapes
    (repo / "model.py").write_text("x = 1\n")
    commit_all(repo, "subject " + OSC52 + " \x1b[2J")
    (repo / "evil\x1b[2Jname.py").write_text("y = 2\n")
    train("--note", NOTE, "--value", "v2\x1b[2J", "--lr", "0.3",
          "--evil\x1b[7m-key\x9b", "given\x1b]52;c;R0lWRU4=\x07\n", "--end", "fail", rc=1)
    train("--note", NOTE, "--lr", "0.5", "--end", "lose", rc=-9)
    logs = repo / "logs"
    ids = sorted(d.name for d in logs.iterdir() if d.is_dir() and not d.name.startswith("."))
    assert len(ids) == 3
    return repo, logs, ids, first


def test_the_runs_really_hold_the_hostile_text(hostile):
    repo, logs, ids, _ = hostile
    rec = json.loads((logs / ids[1] / "run.json").read_text(encoding="utf-8"))
    assert rec["note"] == NOTE
    assert rec["status"] == "failed" and OSC52 in rec["error"]["message"]
    assert any("\n" in m and "\x1b" in m for m in rec["metrics"])
    assert any("\x1b" in k for k in rec["args"]) and "\x1b" in rec["args"]["value"]
    assert "\x1b" in rec["name"] and "two\nlines" in rec["tags"]
    assert any("\x1b" in f for f in rec["git"]["changed_files"])
    assert OSC52 in (logs / ids[1] / "run.log").read_text(encoding="utf-8")


@pytest.mark.parametrize("args", [
    ("ls",), ("ls", "--all"), ("ls", "--md"), ("ls", "--csv"), ("ls", "--json"),
    ("ls", "--grep", "why"), ("show",), ("show", "-2"), ("show", "-3"), ("show", "--json"),
    ("report",), ("report", "-2"), ("report", "-3"), ("report", "-2", "--format", "text"),
    ("report", "-1", "--format", "text"), ("diff", "-2", "-1"), ("diff", "-3", "-2"),
    ("diff", "-2"), ("tail", "--no-follow", "-n", "50"), ("tail", "-2", "--no-follow", "-n", "50"),
    ("tail", "-3", "--no-follow", "-n", "50"), ("plot", "-3", "-2"),
])
def test_no_control_character_reaches_stdout(hostile, args):
    repo, logs, ids, _ = hostile
    text = stdout_of(logs, *args)
    assert text.strip()
    if args[0] in ("ls", "show", "diff") and "--json" not in args and "--csv" not in args:
        assert "\\x1b]52;c;SGFja2Vk\\x07" in text  # shown, written out
    if args[0] == "tail":
        assert "\\x1b]52;c;SGFja2Vk\\x07" in text and "\\r" in text


def test_what_git_holds_is_shown_too(hostile):
    repo, logs, ids, _ = hostile
    assert "subject \\x1b]52;c;SGFja2Vk\\x07 \\x1b[2J" in stdout_of(logs, "diff", "-3", "-2")
    assert "uncommitted: evil\\x1b[2Jname.py" in stdout_of(logs, "show", "-2")


def test_the_json_formats_stay_the_same_data(hostile):
    repo, logs, ids, _ = hostile
    runs = [json.loads(ln) for ln in stdout_of(logs, "ls", "--json").splitlines()]
    assert [r["note"] for r in runs] == [NOTE] * 3
    shown = json.loads(stdout_of(logs, "show", "-2", "--json"))
    assert shown == {k: v for k, v in json.loads(
        (logs / ids[1] / "run.json").read_text(encoding="utf-8")).items()}


def test_csv_and_markdown_tables_keep_one_row_per_run(hostile):
    repo, logs, ids, _ = hostile
    rows = list(csv.reader(io.StringIO(stdout_of(logs, "ls", "--csv"))))
    assert len(rows) == 1 + 3 and len({len(r) for r in rows}) == 1
    assert rows[1][3] == "why \\x1b]52;c;SGFja2Vk\\x07 \\x1b[2J\\x1b[H\\rover"
    md = stdout_of(logs, "ls", "--md").splitlines()
    assert len(md) == 2 + 3 and all(ln.startswith("| ") or ln.startswith("|-") for ln in md)
    assert len({ln.count(" | ") for ln in md if ln.startswith("| ")}) == 1
    plain = stdout_of(logs, "ls").splitlines()
    assert len(plain) == 1 + 3


def _bullets_are_lines(text: str) -> None:
    lines = text.splitlines()
    assert lines[0].startswith("## Run ") and lines[1] == ""
    body = lines[2:lines.index("Last log lines (ended without a word):")] \
        if "Last log lines (ended without a word):" in lines else lines[2:]
    body = [ln for ln in body if ln]
    assert body and all(ln.startswith("- ") for ln in body), text
    labels = [ln[2:].split(":", 1)[0] for ln in body]
    assert len(labels) == len(set(labels)), text  # no bullet forged by a newline
    assert "Fake" not in labels


def test_the_markdown_report_is_one_line_per_fact(hostile):
    repo, logs, ids, _ = hostile
    for run_id in ids:
        saved = logs / run_id / "report.md"
        if saved.exists():  # the lost run never wrote one
            text = saved.read_text(encoding="utf-8")
            clean(text, str(saved))
            _bullets_are_lines(text)
        _bullets_are_lines(stdout_of(logs, "report", run_id))
    failed = stdout_of(logs, "report", ids[1]).splitlines()
    metrics = [ln for ln in failed if ln.startswith("- Metrics: ")][0]
    assert "loss\\n- Fake: bullet\\x1b[2J 0.075, acc\\x1b]52;c;QUND\\x07 0.9" in metrics
    err = [ln for ln in failed if ln.startswith("- Error: ")][0]
    assert "boom \\x1b]52;c;SGFja2Vk\\x07\\r\\nsecond \\x9b31m line" in err


def test_the_report_at_exit_is_clean(hostile):
    _, _, _, first = hostile
    err = first.stderr.decode("utf-8")
    report = err[err.index("## Run "):]  # the console log before it is the script's own
    clean(report, "the report printed at exit")


def test_the_rich_table_on_a_terminal(hostile):
    """On a terminal ``ls`` colours its own cells (SGR) and nothing else."""
    repo, logs, ids, _ = hostile
    text = on_a_terminal([sys.executable, "-m", "runlog", "--dir", str(logs), "ls"], 400,
                         dict(os.environ), cwd=repo)
    assert "why \\x1b]52;c;SGFja2Vk\\x07" in text
    clean(re.sub(r"\x1b\[[0-9;]*m", "", text), "runlog ls on a terminal")


def test_printable_writes_controls_out_and_keeps_text():
    from runlog.fmt import printable, printable_json

    assert printable("plain text, ünïcödé → 😀\tand a tab") == "plain text, ünïcödé → 😀\tand a tab"
    assert printable(NOTE) == "why \\x1b]52;c;SGFja2Vk\\x07 \\x1b[2J\\x1b[H\\rover"
    assert printable("a\nb\r\nc\x00\x7f\x85\x9b\ud800") == "a\\nb\\r\\nc\\0\\x7f\\x85\\x9b\\ud800"
    assert printable("a\nb\r\nc", lines=True) == "a\nb\\r\nc"
    every = "".join(map(chr, range(0x100))) + "\ud800\udfff\u202e\u2066\u2028"
    for lines in (False, True):
        once = printable(every, lines=lines)
        assert printable(once, lines=lines) == once  # idempotent
        assert not FORBIDDEN.search(once.replace("\n", "") if lines else once)
        assert "\n" not in once or lines
    data = json.dumps({"k\x85": "\x7f\x1b\ud800"}, ensure_ascii=False)
    assert json.loads(printable_json(data)) == json.loads(data)
    assert not FORBIDDEN.search(printable_json(data))
