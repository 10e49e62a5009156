"""Records edited by hand or damaged: any JSON value in any field of run.json, of an index
line or of a sweep's summary, and odd notes, logs and caches, never crash a command or the
next run of the script. Each command prints what it can, or one `runlog: error:` line.

Real runs (a script in a git repository, a failing one, one under `runlog run`, a sweep),
real files edited as a person or a foreign tool would, real `runlog` processes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clean_env, git, write_script

RUNLOG = [sys.executable, "-m", "runlog"]

TRAIN = """\
import argparse, runlog
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--data", default="data.txt")
p.add_argument("--fail", action="store_true")
a = p.parse_args()
run = runlog.start(note="base", tags=["t1"])
for i in range(3):
    run.metric("loss", 1.0 / (i + 1), step=i)
run.add_note("a note")
if a.fail:
    raise ValueError("boom")
"""

# every value JSON can hold where another was written: raw JSON text, written as it is
SHAPES = {
    "list": "[1, \"a\", null]", "object": '{"a": {"b": 1}}', "number": "-7", "bool": "true",
    "huge": "1e400", "digits": "9" * 400,
    "text": json.dumps("\x1b[2J\u202e\x00-x /../..\r\nline"),
}

# what a reader uses, below the containers whose wrong type makes a record corrupt
RECORD_PATHS = (
    "schema", "name", "status", "exit_code", "signal", "started_at", "ended_at", "duration_s",
    "command_line", "cwd", "script", "script_path", "note", "host", "pid", "pid_start",
    "python", "previous", "tags.0", "command.0", "args_given.0", "args.lr",
    "git.commit", "git.short", "git.branch", "git.dirty", "git.changed_files", "git.patch",
    "git.patch_truncated", "metrics.loss.last", "metrics.loss.min", "metrics.loss.max",
    "metrics.loss.count", "metrics.loss.step", "error.type", "error.message", "error.where",
    "error.traceback", "env", "env.packages", "env.frameworks", "env.installed_hash",
    "machine", "machine.cpus", "machine.memory_bytes", "machine.gpus", "resources",
    "resources.cpu_s", "resources.peak_rss_bytes", "data", "data.data", "data.data.size",
    "data.data.fingerprint", "sweep", "sweep.params", "sweep.trial", "code_changes",
    "code_changes.files", "code_changes.commits", "segments", "scheduler", "startup_s",
)
INDEX_PATHS = RECORD_PATHS + ("frameworks", "notes", "metrics.loss", "git", "error", "args")
SWEEP_PATHS = ("id", "params", "metric", "direction", "trials", "trials.0", "trials.0.values",
               "trials.0.run", "trials.0.status", "trials.0.metric", "trials.0.exit_code",
               "trials.0.error", "trials.0.n")


def cli(logs: Path, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*RUNLOG, "--dir", str(logs), *args], capture_output=True, text=True,
                          errors="replace", env=clean_env(), timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A log directory of real runs of every kind, made once; each test copies it."""
    where = tmp_path_factory.mktemp("hostile")
    repo, logs = where / "repo", where / "logs"
    repo.mkdir()
    write_script(repo, TRAIN, name="train.py")
    (repo / "data.txt").write_text("hi\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "train")
    env = clean_env(RUNLOG_DIR=str(logs))
    for args in (["--lr", "0.1"], ["--fail"], ["--lr", "0.2"]):
        subprocess.run([sys.executable, "train.py", *args], cwd=repo, env=env,
                       capture_output=True, timeout=60)
    for cmd in (["run", "--", "sh", "-c", 'echo \'{"metric": "acc", "value": 0.5}\''],
                ["sweep", "-p", "x=1,2", "--", "sh", "-c", 'echo \'{"metric": "acc", "value": {x}}\'']):
        p = subprocess.run([*RUNLOG, "--dir", str(logs), *cmd], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
    return where


@pytest.fixture
def copy(base, tmp_path) -> Path:
    shutil.copytree(base, tmp_path / "w", symlinks=True)
    return tmp_path / "w"


def set_path(obj, path: str, raw: str) -> bool:
    """Put a marker at ``path`` (a missing leaf is added; a missing parent is not)."""
    *parents, leaf = path.split(".")
    for k in parents:
        obj = obj[int(k)] if isinstance(obj, list) and k.isdigit() and int(k) < len(obj) \
            else obj.get(k) if isinstance(obj, dict) else None
        if not isinstance(obj, (dict, list)):
            return False
    if isinstance(obj, list):
        if not (leaf.isdigit() and int(leaf) < len(obj)):
            return False
        obj[int(leaf)] = f"@@{raw}@@"
    else:
        obj[leaf] = f"@@{raw}@@"
    return True


def hostile(obj, paths, raw: str, indent=None) -> str:
    """``obj`` as JSON with every path that it has set to the raw JSON text ``raw``."""
    for p in paths:
        set_path(obj, p, raw)
    return json.dumps(obj, indent=indent).replace(json.dumps(f"@@{raw}@@"), raw)


def run_ids(logs: Path) -> list[str]:
    return sorted(p.name for p in logs.iterdir() if p.is_dir() and p.name[:1].isdigit())


def commands(logs: Path, out: Path) -> list[list[str]]:
    ids = run_ids(logs)
    sweep = next((logs / ".sweeps").glob("*.json"), Path("20990101-000000")).stem
    return [["ls", "--all"], ["ls", "--json"], ["ls", "--csv", "--sort", "loss"], ["ls", "--group"],
            ["ls", "--md", "--status", "finished"], ["show", "-1"], ["show", ids[1]],
            ["show", ids[1], "--json"], ["show", ids[1], "--patch"], ["report", ids[1]],
            ["report", ids[0], "--format", "md"], ["diff", ids[0], ids[2]],
            ["diff", ids[2], "--working"], ["tail", ids[1], "--no-follow"],
            ["journal", "--all", "-o", str(out / "j.html")],
            ["reproduce", ids[2], str(out / "repro")], ["sweep", "show", sweep],
            ["note", ids[1], "later"]]


def assert_calm(p: subprocess.CompletedProcess, what) -> None:
    """Output, or one `runlog: error:` line and exit 1; never a traceback."""
    assert "Traceback" not in p.stderr, (what, p.stderr)
    if p.returncode != 0:
        errors = [ln for ln in p.stderr.splitlines() if ln.startswith("runlog: error: ")]
        assert p.returncode == 1 and len(errors) == 1, (what, p.returncode, p.stderr)


def check_everything(where: Path) -> None:
    """Every read command (all at once: each reads, or writes a file of its own), then a new
    run of the script (whose start reads the last run)."""
    logs, repo = where / "logs", where / "repo"
    out = where / "out"
    out.mkdir(exist_ok=True)
    procs = [(args, subprocess.Popen([*RUNLOG, "--dir", str(logs), *args], cwd=repo, text=True,
                                     errors="replace", env=clean_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL))
             for args in commands(logs, out)]
    for args, proc in procs:
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"{args} hangs") from None
        assert_calm(subprocess.CompletedProcess(args, proc.returncode, "", err), args)
    p = subprocess.run([sys.executable, "train.py", "--lr", "0.5"], cwd=repo, capture_output=True,
                       text=True, errors="replace", env=clean_env(RUNLOG_DIR=str(logs)), timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    said = [ln for ln in p.stderr.splitlines()
            if ln.startswith("runlog:") and not ln.startswith("runlog: run ")]  # its start line
    assert not said, p.stderr


def make_hostile(where: Path, shape: str, index: bool) -> None:
    """Every run.json, the sweep's summary and (``index``) every index line with ``shape``
    in every field a reader uses; without ``index`` the index is gone (the folders are all
    there is)."""
    logs, raw = where / "logs", SHAPES[shape]
    # (a duration that is no number makes the record corrupt: test_record.py)
    paths = [p for p in RECORD_PATHS if p != "duration_s" or shape in ("number", "huge", "digits")]
    for d in run_ids(logs):
        f = logs / d / "run.json"
        f.write_text(hostile(json.loads(f.read_text()), paths, raw, indent=1))
    (f,) = (logs / ".sweeps").glob("*.json")
    f.write_text(hostile(json.loads(f.read_text()), SWEEP_PATHS, raw))
    f = logs / ".runlog-index.jsonl"
    if index:
        lines = [json.loads(ln) for ln in f.read_text().splitlines()]
        f.write_text("".join(hostile(e, INDEX_PATHS, raw) + "\n" for e in lines))
    else:
        f.unlink()


# each shape once, half of them with the index gone (every command then reads the folders)
@pytest.mark.parametrize("shape, index", [("list", False), ("object", True), ("number", True),
                                          ("huge", False), ("digits", True), ("text", False)])
def test_any_value_in_any_field_of_a_record_an_index_line_and_a_sweep(copy, shape, index):
    make_hostile(copy, shape, index)
    logs = copy / "logs"
    runs = len(run_ids(logs))
    check_everything(copy)
    p = cli(logs, "ls", "--all", "--json")
    assert len(p.stdout.splitlines()) == runs + 1, p.stderr  # none lost, and the new run
    assert "corrupt" not in p.stderr and "unreadable" not in p.stderr  # only index lines skipped


BYTES = {"missing": None, "garbage": b"\xff\xfe\x00\x01{[\n\x1b[2J", "deep": b"[" * 100000,
         "list": b"[1, 2]\n"}


@pytest.mark.parametrize("content", BYTES)
def test_any_bytes_in_any_file_a_reader_opens(copy, content):
    logs = copy / "logs"
    for pattern in ("*/run.json", "*/notes.md", "*/run.log", "*/report.md", "*/metrics.jsonl",
                    "*/code.patch", ".runlog-index.jsonl", ".runlog-latest/*", ".sweeps/*.json",
                    ".runlog-envs/*"):
        for f in logs.glob(pattern):
            if BYTES[content] is None:
                f.unlink()
            else:
                f.write_bytes(BYTES[content])
    check_everything(copy)


def test_a_metric_value_that_is_no_number_shows_as_missing_not_as_python(copy):
    logs = copy / "logs"
    (rid,) = [r for r in run_ids(logs) if "acc" in (logs / r / "run.json").read_text()][:1]
    path = logs / rid / "run.json"
    rec = json.loads(path.read_text())
    name = next(iter(rec["metrics"]))
    rec["metrics"][name]["last"] = "oops"
    rec["metrics"][name]["min"] = None
    path.write_text(json.dumps(rec))
    for args in (("show", rid), ("report", rid), ("ls", "--all"), ("tail", "--no-follow", rid)):
        p = cli(logs, *args)
        assert p.returncode == 0, (args, p.stderr)
        assert "None" not in p.stdout, (args, p.stdout)
    assert f"{name} —" in cli(logs, "report", rid).stdout
