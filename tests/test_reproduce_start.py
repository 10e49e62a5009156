"""A run re-runs exactly from its record: the directory its command was started in (a script
that changes directory before start()), the environment variables that gave it arguments,
its @file, its note — in the report's Re-run line and in `runlog reproduce [--run]`.
Real git repositories, real scripts in real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import one_error_line, runlog
from conftest import clean_env, git_out

MOVES = """\
import argparse, os
import runlog
os.chdir(os.path.dirname(os.path.abspath(__file__)))
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--data", default="data.txt")
a = p.parse_args()
run = runlog.start()
run.metric("loss", round(1 - a.lr, 3))
open(a.data).read()  # a path relative to where the script moved
"""


def env(**extra) -> dict:
    e = clean_env(PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    e.pop("PWD", None)  # as a program that is no shell starts another: set below when it is
    e.update(extra)
    return e


class Proj:
    def __init__(self, base: Path):
        self.top = base / "proj"
        (self.top / "src").mkdir(parents=True)
        (self.top / "pkg").mkdir()
        git_out(self.top, "-c", "init.defaultBranch=main", "init", "-q")
        (self.top / ".gitignore").write_text("logs/\nsecret.txt\n")
        (self.top / "src" / "train.py").write_text(MOVES)
        (self.top / "src" / "data.txt").write_text("rows\n")
        (self.top / "pkg" / "__init__.py").write_text("")
        (self.top / "pkg" / "train.py").write_text(MOVES)
        (self.top / "pkg" / "data.txt").write_text("rows\n")
        git_out(self.top, "add", ".")
        git_out(self.top, "commit", "-qm", "first")
        self.logs = self.top / "src" / "logs"  # the script moves before start(): its logs/ is there

    def py(self, *args: str, cwd: Path | None = None, **extra) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, *args], cwd=cwd or self.top, env=env(**extra),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p

    def ids(self) -> list[str]:
        return sorted(p.name for p in self.logs.iterdir() if p.is_dir() and not p.name.startswith("."))

    def record(self, rid: str) -> dict:
        return json.loads((self.logs / rid / "run.json").read_text())

    def runlog(self, *args: str, **extra) -> subprocess.CompletedProcess:
        return runlog(self.logs, *args, cwd=self.top, env=env(**extra))


@pytest.fixture
def proj(tmp_path) -> Proj:
    return Proj(tmp_path)


def test_a_script_that_moves_before_start_reruns_from_where_it_was_started(proj, tmp_path):
    p = proj.py("src/train.py", "--lr", "0.2")  # no $PWD: the directory of `import runlog` tells
    (rid,) = proj.ids()
    r = proj.record(rid)
    assert r["cwd"] == str(proj.top / "src")  # where its relative paths point
    assert r["started_in"] == str(proj.top)  # where its command runs
    assert r["data"]["data"]["path"] == "data.txt" and r["data"]["data"]["size"] == 5
    assert f"- Re-run: `cd {proj.top} && python src/train.py --lr 0.2`" in p.stderr
    assert f"- Log: src/logs/{rid}/run.log" in p.stderr  # from where the command was typed
    rerun = subprocess.run(f"cd {proj.top} && {sys.executable} src/train.py --lr 0.2", shell=True,
                           cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr  # the line, pasted anywhere, runs
    (_, again) = proj.ids()
    dest = tmp_path / "copy"
    p = proj.runlog("reproduce", rid, str(dest))
    assert p.returncode == 0, p.stderr
    assert f"cd {dest} && RUNLOG_DIR={proj.logs} {sys.executable} src/train.py --lr 0.2 " in p.stdout
    assert "not in the copy" not in p.stdout  # data.txt is, relative to where the script moves
    p = proj.runlog("reproduce", rid, str(dest), "--run")
    assert p.returncode == 0, p.stderr
    new = proj.record(proj.ids()[-1])
    assert new["reproduces"] == rid and new["args"] == {"lr": 0.2, "data": "data.txt"}
    assert new["cwd"] == str(dest) and new["metrics"]["loss"]["last"] == 0.8  # `runlog run` did not move
    assert f"Since {rid} (reproduced): same arguments and code" in p.stderr


def test_started_outside_the_repository_reruns_from_the_copys_top(proj, tmp_path):
    p = proj.py("proj/src/train.py", "--lr", "0.3", cwd=tmp_path)
    rid = proj.ids()[-1]
    assert proj.record(rid)["started_in"] == str(tmp_path)
    assert f"- Re-run: `cd {tmp_path} && python proj/src/train.py --lr 0.3`" in p.stderr
    dest = tmp_path / "c"
    p = proj.runlog("reproduce", rid, str(dest), "--run")
    assert p.returncode == 0, p.stderr
    assert f"cd {dest} && RUNLOG_DIR={proj.logs} {sys.executable} src/train.py --lr 0.3 " in p.stdout
    new = proj.record(proj.ids()[-1])
    assert new["reproduces"] == rid and new["args"]["lr"] == 0.3
    assert f"Since {rid} (reproduced): same arguments and code" in p.stderr


def test_moving_before_import_runlog_is_known_from_the_shells_pwd(proj, tmp_path):
    script = MOVES.replace("import runlog\nos.chdir(os.path.dirname(os.path.abspath(__file__)))",
                           "os.chdir(os.path.dirname(os.path.abspath(__file__)))\nimport runlog")
    (proj.top / "src" / "early.py").write_text(script)
    proj.py("src/early.py", PWD=str(proj.top))  # as a shell sets it
    assert proj.record(proj.ids()[-1])["started_in"] == str(proj.top)
    # a $PWD that is not where it started (a program that started it elsewhere) is not taken
    proj.py("src/early.py", PWD=str(tmp_path))
    r = proj.record(proj.ids()[-1])
    assert "started_in" not in r and r["cwd"] == str(proj.top / "src")


def test_a_script_that_does_not_move_records_no_start_directory(proj):
    p = proj.py("train.py", "--lr", "0.3", cwd=proj.top / "src", PWD=str(proj.top))  # a stale $PWD
    r = proj.record(proj.ids()[-1])
    assert "started_in" not in r and r["cwd"] == str(proj.top / "src")
    assert "- Re-run: `python train.py --lr 0.3`" in p.stderr


def test_a_module_run_with_dash_m_that_moves(proj, tmp_path):
    proj.logs = proj.top / "pkg" / "logs"
    p = proj.py("-m", "pkg.train", "--lr", "0.4")  # sys.path[0] tells
    (rid,) = proj.ids()
    r = proj.record(rid)
    assert r["cwd"] == str(proj.top / "pkg") and r["started_in"] == str(proj.top)
    assert f"- Re-run: `cd {proj.top} && python -m pkg.train --lr 0.4`" in p.stderr
    dest = tmp_path / "copy"
    p = proj.runlog("reproduce", rid, str(dest), "--run")
    assert p.returncode == 0, p.stderr
    assert f"cd {dest} && " in p.stdout
    new = proj.record(proj.ids()[-1])
    assert new["reproduces"] == rid and new["args"]["lr"] == 0.4
    assert f"Since {rid} (reproduced): same arguments and code" in p.stderr


def test_an_older_record_without_a_start_directory_reproduces_from_its_cwd(proj, tmp_path):
    proj.py("train.py", "--lr", "0.5", cwd=proj.top / "src")
    rid = proj.ids()[-1]
    p = proj.runlog("reproduce", rid, str(tmp_path / "c"), "--run")
    assert p.returncode == 0, p.stderr
    assert f"cd {tmp_path / 'c' / 'src'} && " in p.stdout
    assert proj.record(proj.ids()[-1])["args"]["lr"] == 0.5


# ---------------------------------------------------------------- environment variables (ConfigArgParse)

CAP = """\
import configargparse, runlog
p = configargparse.ArgParser()
p.add_argument("--lr", type=float, default=0.1, env_var="TRAIN_LR")
p.add_argument("--api-key", default="none", env_var="API_KEY")
p.add_argument("--layers", type=int, nargs="+", default=[1], env_var="LAYERS")
a = p.parse_args()
run = runlog.start()
run.metric("loss", round(1 - a.lr, 3))
print("key", a.api_key)
"""


def test_reproduce_run_sets_the_environment_variables_that_gave_arguments(proj, tmp_path):
    pytest.importorskip("configargparse")
    (proj.top / "src" / "cap.py").write_text(CAP)
    p = proj.py("cap.py", cwd=proj.top / "src", TRAIN_LR="0.7", LAYERS="[3, 4]")
    rid = proj.ids()[-1]
    assert proj.record(rid)["args_source"] == {"lr": "$TRAIN_LR", "layers": "$LAYERS"}
    assert "- Re-run: `TRAIN_LR=0.7 LAYERS='[3, 4]' python cap.py`" in p.stderr
    dest = tmp_path / "c"
    p = proj.runlog("reproduce", rid, str(dest), TRAIN_LR="0.3")  # this shell has another value
    assert p.returncode == 0, p.stderr
    assert (f"cd {dest / 'src'} && RUNLOG_DIR={proj.logs} TRAIN_LR=0.7 LAYERS='[3, 4]' {sys.executable} "
            "cap.py ") in p.stdout
    p = proj.runlog("reproduce", rid, str(dest), "--run", TRAIN_LR="0.3")
    assert p.returncode == 0, p.stderr
    new = proj.record(proj.ids()[-1])
    assert new["args"]["lr"] == 0.7 and new["args"]["layers"] == [3, 4]
    assert new["args_source"] == {"lr": "$TRAIN_LR", "layers": "$LAYERS"}
    assert f"Since {rid} (reproduced): same arguments and code" in p.stderr


def test_a_masked_secret_from_the_environment_is_never_replayed(proj, tmp_path):
    pytest.importorskip("configargparse")
    (proj.top / "src" / "cap.py").write_text(CAP)
    proj.py("cap.py", cwd=proj.top / "src", TRAIN_LR="0.6", API_KEY="abcdefgh12345")
    rid = proj.ids()[-1]
    r = proj.record(rid)
    assert r["args"]["api_key"] == "***" and r["args_source"]["api_key"] == "$API_KEY"
    dest = tmp_path / "c"
    p = proj.runlog("reproduce", rid, str(dest))
    assert p.returncode == 0, p.stderr
    assert "API_KEY='***' " in p.stdout and "are secrets: put them back" in p.stdout
    assert "abcdefgh12345" not in p.stdout
    p = proj.runlog("reproduce", rid, str(dest), "--run")  # no API_KEY here: refused
    assert p.returncode == 1
    assert "API_KEY gave run" in one_error_line(p.stderr) and "export API_KEY=" in p.stderr
    assert len(proj.ids()) == 1
    p = proj.runlog("reproduce", rid, str(dest), "--run", API_KEY="mine-now-0000")
    assert p.returncode == 0, p.stderr
    assert "API_KEY: a secret runlog masked; the value set in this shell is used" in p.stdout
    new = proj.ids()[-1]
    assert "key mine-now-0000" in (proj.logs / new / "run.log").read_text()
    assert proj.record(new)["args"]["lr"] == 0.6  # the other variable, from the record


# ---------------------------------------------------------------- @file, --note, runlog run

AT = """\
import argparse, runlog
p = argparse.ArgumentParser(fromfile_prefix_chars="@")
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--epochs", type=int, default=1)
a = p.parse_args()
runlog.start().metric("loss", round(1 - a.lr, 3))
"""


def test_an_at_file_in_the_copy_is_read_there_and_one_not_in_it_is_named(proj, tmp_path):
    (proj.top / "src" / "at.py").write_text(AT)
    (proj.top / "src" / "args.txt").write_text("--lr\n0.25\n")  # untracked: saved in the patch
    (proj.top / "src" / "secret.txt").write_text("--epochs\n7\n")  # ignored: not in the copy
    proj.py("at.py", "@args.txt", "--note", "first try", cwd=proj.top / "src")
    rid = proj.ids()[-1]
    assert proj.record(rid)["command"][-1] == "@args.txt"  # the note is not in the command
    p = proj.runlog("reproduce", rid, str(tmp_path / "c"), "--run")
    assert p.returncode == 0, p.stderr
    new = proj.record(proj.ids()[-1])
    assert new["args"] == {"lr": 0.25, "epochs": 1} and new["note"] == f"reproduces {rid}"
    assert "--note" not in new["command"] and "first try" not in json.dumps(new)
    proj.py("at.py", "@secret.txt", cwd=proj.top / "src")
    rid = proj.ids()[-1]
    p = proj.runlog("reproduce", rid, str(tmp_path / "d"))
    assert p.returncode == 0, p.stderr
    assert "secret.txt (read as @secret.txt in the command) is not in the copy" in p.stdout
    p = proj.runlog("reproduce", rid, str(tmp_path / "d"), "--run")
    assert p.returncode == 1 and "secret.txt, which the command reads" in one_error_line(p.stderr)
    (tmp_path / "d" / "src" / "secret.txt").write_text("--epochs\n7\n")  # as it says
    p = proj.runlog("reproduce", rid, str(tmp_path / "d"), "--run")
    assert p.returncode == 0, p.stderr
    assert proj.record(proj.ids()[-1])["args"]["epochs"] == 7


def test_a_runlog_run_with_a_note_and_a_script_that_moves(proj, tmp_path):
    p = subprocess.run([sys.executable, "-m", "runlog", "--dir", str(proj.logs), "run", "--note", "why",
                        "--", "python", "src/train.py", "--lr", "0.3"], cwd=proj.top, env=env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rid = proj.ids()[-1]
    r = proj.record(rid)
    assert r["cwd"] == str(proj.top) and "started_in" not in r  # the wrapper did not move
    assert r["note"] == "why" and r["command"].count("--note") == 0
    p = proj.runlog("reproduce", rid, str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("--note") == 1 and "--note 'reproduces " in p.stdout
    p = proj.runlog("reproduce", rid, str(tmp_path / "c"), "--run")
    assert p.returncode == 0, p.stderr
    new = proj.record(proj.ids()[-1])
    assert new["reproduces"] == rid and new["args"]["lr"] == 0.3
    assert f"Since {rid} (reproduced): same arguments and code" in p.stderr


HYDRA = """\
import hydra, runlog
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=None)
def main(cfg: DictConfig):
    runlog.start().metric("loss", 0.5)


if __name__ == "__main__":
    main()
"""


def test_a_hydra_job_that_changes_directory_reruns_from_where_it_was_started(proj, tmp_path):
    pytest.importorskip("hydra")
    (proj.top / "src" / "app.py").write_text(HYDRA)
    (proj.top / ".gitignore").write_text("logs/\nsecret.txt\noutputs/\n")
    proj.logs = proj.top / "logs"  # Hydra's original directory's
    p = proj.py("src/app.py", "+lr=0.2", "hydra.job.chdir=True")
    rid = proj.ids()[-1]
    r = proj.record(rid)
    assert r["cwd"].startswith(str(proj.top / "outputs")) and r["started_in"] == str(proj.top)
    assert f"- Re-run: `cd {proj.top} && python src/app.py +lr=0.2 hydra.job.chdir=True`" in p.stderr
    assert f"- Log: logs/{rid}/run.log" in p.stderr
    p = proj.runlog("reproduce", rid, str(tmp_path / "c"), "--run")
    assert p.returncode == 0, p.stderr
    assert f"cd {tmp_path / 'c'} && " in p.stdout
    new = proj.record(proj.ids()[-1])
    assert new["reproduces"] == rid and new["args"] == r["args"] == {"lr": 0.2}


def test_a_value_from_a_secret_named_variable_is_masked_though_its_option_is_not(proj, tmp_path):
    # `--key` is no secret's name, but the value came from $OPENAI_API_KEY: it is one, and the
    # Re-run line would otherwise print `OPENAI_API_KEY=sk-...` for anyone to copy
    pytest.importorskip("configargparse")
    (proj.top / "src" / "key.py").write_text(
        "import configargparse, runlog\np = configargparse.ArgParser()\n"
        "p.add_argument('--key', env_var='OPENAI_API_KEY')\na = p.parse_args()\nrunlog.start()\n")
    p = proj.py("key.py", cwd=proj.top / "src", OPENAI_API_KEY="sk-abc123secret")
    rid = proj.ids()[-1]
    assert "sk-abc123secret" not in p.stderr
    r = proj.record(rid)
    assert r["args"]["key"] == "***" and r["args_source"]["key"] == "$OPENAI_API_KEY"
    assert "sk-abc123secret" not in (proj.logs / rid / "run.log").read_text()
    p = proj.runlog("reproduce", rid, str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    assert "sk-abc123secret" not in p.stdout and "OPENAI_API_KEY='***' " in p.stdout


def test_a_variable_whose_value_was_partly_masked_is_not_replayed_masked(proj, tmp_path):
    # a URL's password is masked inside the value: `DB_URL=postgres://u:***@h` set again by
    # --run would quietly give the new run a wrong value; it is a secret like a whole one
    pytest.importorskip("configargparse")
    (proj.top / "src" / "db.py").write_text(
        "import configargparse, runlog\np = configargparse.ArgParser()\n"
        "p.add_argument('--db', env_var='DB_URL')\na = p.parse_args()\nrunlog.start()\nprint('db', a.db)\n")
    proj.py("db.py", cwd=proj.top / "src", DB_URL="postgres://u:hunter2pw@h/x")
    rid = proj.ids()[-1]
    assert proj.record(rid)["args"]["db"] == "postgres://u:***@h/x"
    p = proj.runlog("reproduce", rid, str(tmp_path / "c"), "--run")
    assert p.returncode == 1 and "export DB_URL=" in p.stderr
    p = proj.runlog("reproduce", rid, str(tmp_path / "c"), "--run", DB_URL="postgres://u:pw2@h/x")
    assert p.returncode == 0, p.stderr
    assert "db postgres://u:pw2@h/x" in (proj.logs / proj.ids()[-1] / "run.log").read_text()


def test_a_variable_with_a_newline_or_quotes_is_set_again_as_it_was(proj, tmp_path):
    # printable() wrote the newline as the two characters \n inside '...': bash then set
    # DATA_DIR to a backslash and an n. The Re-run line typed into bash gives back the value.
    pytest.importorskip("configargparse")
    (proj.top / "src" / "dd.py").write_text(
        "import configargparse, runlog\np = configargparse.ArgParser()\n"
        "p.add_argument('--data', env_var='DATA_DIR')\na = p.parse_args()\nrunlog.start()\n")
    value = "/x y/it's\nnext\tline \u202e"
    p = proj.py("dd.py", cwd=proj.top / "src", DATA_DIR=value)
    (line,) = [ln for ln in p.stderr.splitlines() if ln.startswith("- Re-run: `")]
    assert line.isprintable() and line.endswith(" python dd.py`")
    words = line[len("- Re-run: `"):-len("python dd.py`")]
    check = subprocess.run(["bash", "-c", words + sys.executable + " -c 'import os, sys; "
                            "sys.stdout.write(os.environ[\"DATA_DIR\"])'"],
                           capture_output=True, text=True, env=env(), timeout=60)
    assert check.stdout == value, (line, check.stderr)
