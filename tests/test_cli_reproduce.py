"""`runlog reproduce` and `runlog diff RUN --working`: a run's code state, made again
from its commit and saved patch, in real git repositories; the user's tree never touched."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import one_error_line, runlog
from conftest import clean_env, git_out

from runlog.report import changes_since

TRAIN = """\
import argparse, runlog
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
a = p.parse_args()
run = runlog.start()
run.metric("loss", round(1 - a.lr, 3))
"""


def env() -> dict:
    # the recorded command starts with "python": this interpreter must be the one found
    return clean_env(PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


def snapshot(top: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file of a tree but .git and logs/: its bytes and whether it is executable."""
    out = {}
    for d, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if x not in (".git", "logs")]
        for f in files:
            p = os.path.join(d, f)
            if f == ".git":  # a worktree's link to its repository
                continue
            with open(p, "rb") as fh:
                out[os.path.relpath(p, top)] = (fh.read(), bool(os.stat(p).st_mode & stat.S_IXUSR))
    return out


def user_state(top: Path) -> dict:
    return {k: git_out(top, *args) for k, args in {
        "status": ("status", "--porcelain", "--untracked-files=all"),
        "cached": ("diff", "--cached"), "diff": ("diff",), "head": ("rev-parse", "HEAD"),
        "branches": ("branch", "--list", "--all"), "symbolic": ("symbolic-ref", "-q", "HEAD"),
    }.items()}


class Repo:
    """A repository with a run recorded in a dirty tree, then changed further."""

    def __init__(self, base: Path, sub: str = ""):
        self.top = base / "proj"
        self.top.mkdir()
        git_out(self.top, "-c", "init.defaultBranch=main", "init", "-q")
        self.cwd = self.top / sub if sub else self.top
        self.cwd.mkdir(exist_ok=True)
        self.logs = self.cwd / "logs"
        (self.cwd / "train.py").write_text(TRAIN)
        (self.top / ".gitignore").write_text("logs/\n")
        (self.top / "util.py").write_text("x = 1\n")
        (self.top / "old.py").write_text("gone = True\n")
        (self.top / "tool.sh").write_text("#!/bin/sh\necho hi\n")
        (self.top / "tool.sh").chmod(0o755)
        git_out(self.top, "add", ".")
        git_out(self.top, "commit", "-qm", "first")
        self.commit = git_out(self.top, "rev-parse", "HEAD").strip()

    def dirty(self) -> None:
        """A modified tracked file, a deleted one, new untracked ones, a staged new one."""
        (self.top / "util.py").write_text("x = 1\ny = 2\n")
        (self.top / "old.py").unlink()
        (self.cwd / "model.py").write_text("LAYERS = 4")  # no newline at the end
        (self.top / "empty.txt").write_text("")
        (self.top / "run2.sh").write_text("#!/bin/sh\necho two\r\n")
        (self.top / "run2.sh").chmod(0o755)
        (self.top / "staged.py").write_text("staged = 1\n")
        git_out(self.top, "add", "staged.py")

    def train(self, *args: str, script: str = "train.py") -> str:
        p = subprocess.run([sys.executable, script, *args], cwd=self.cwd, env=env(),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return self.ids()[-1]

    def ids(self) -> list[str]:
        return sorted(p.name for p in self.logs.iterdir() if p.is_dir() and not p.name.startswith("."))

    def record(self, run_id: str) -> dict:
        return json.loads((self.logs / run_id / "run.json").read_text())

    def change_further(self) -> None:
        """After the run: a new commit, then more uncommitted edits (HEAD moves on)."""
        (self.top / "util.py").write_text("x = 1\ny = 2\nz = 3\n")
        git_out(self.top, "commit", "-qam", "later")
        (self.top / "util.py").write_text("x = 100\n")
        (self.top / "later.txt").write_text("after the run\n")

    def runlog(self, *args: str) -> subprocess.CompletedProcess:
        return runlog(self.logs, *args, cwd=self.top, env=env())


@pytest.fixture
def repo(tmp_path) -> Repo:
    r = Repo(tmp_path)
    r.dirty()
    return r


def test_copy_is_the_recorded_state_and_the_users_tree_is_untouched(repo, tmp_path):
    rid = repo.train("--lr", "0.2")
    seen = snapshot(repo.top)  # what the run saw
    repo.change_further()
    before = user_state(repo.top)
    dest = tmp_path / "copy"
    p = repo.runlog("reproduce", rid, str(dest))
    assert p.returncode == 0, p.stderr
    assert snapshot(dest) == seen  # every file, byte for byte, and its executable bit
    assert user_state(repo.top) == before
    assert git_out(dest, "rev-parse", "HEAD").strip() == repo.commit
    assert "its files are the recorded code state" in p.stdout
    assert "a git worktree" in p.stdout
    exe = repo.record(rid)["env"]["executable"]  # the interpreter the run used
    assert f"cd {dest} && RUNLOG_DIR={repo.logs} {exe} train.py --lr 0.2 --note 'reproduces {rid}'" \
        in p.stdout
    # git lists the copy as a worktree, detached: no branch was made for it
    listed = git_out(repo.top, "worktree", "list", "--porcelain").split("\n\n")
    assert f"worktree {dest}\nHEAD {repo.commit}\ndetached" in listed


def test_default_dir_is_next_to_the_repository(repo):
    rid = repo.train()
    p = repo.runlog("reproduce", rid)
    assert p.returncode == 0, p.stderr
    dest = repo.top.parent / f"proj-{rid}"
    assert (dest / "util.py").read_text() == "x = 1\ny = 2\n"
    assert str(dest) in p.stdout


def test_a_run_in_a_subdirectory_reproduces_there(tmp_path):
    repo = Repo(tmp_path, sub="src")
    repo.dirty()
    rid = repo.train("--lr", "0.3")
    seen = snapshot(repo.top)
    repo.change_further()
    dest = tmp_path / "copy"
    p = repo.runlog("reproduce", rid, str(dest))
    assert p.returncode == 0, p.stderr
    assert snapshot(dest) == seen
    assert f"cd {dest / 'src'} && " in p.stdout
    p = repo.runlog("reproduce", rid, str(dest), "--run")  # the copy made above is reused
    assert p.returncode == 0, p.stderr
    new = repo.record(repo.ids()[-1])
    assert new["cwd"] == str(dest / "src") and new["reproduces"] == rid
    assert f"Since {rid} (reproduced): same arguments and code" in p.stderr


def test_run_makes_a_new_run_that_reproduces_the_original(repo, tmp_path):
    rid = repo.train("--lr", "0.2")
    repo.change_further()
    before = user_state(repo.top)
    p = repo.runlog("reproduce", rid, str(tmp_path / "copy"), "--run")
    assert p.returncode == 0, p.stderr
    ids = repo.ids()
    assert len(ids) == 2 and ids[0] == rid  # in the original's log directory, not the copy's
    assert not (tmp_path / "copy" / "logs").exists()
    new = repo.record(ids[1])
    assert new["reproduces"] == rid and new["previous"] == rid
    assert new["code_changes"]["same"] is True
    assert new["note"] == f"reproduces {rid}"
    assert new["args"] == {"lr": 0.2} and new["metrics"]["loss"]["last"] == 0.8
    report = (repo.logs / ids[1] / "report.md").read_text()
    assert f"- Since {rid} (reproduced): same arguments and code\n" in report
    assert user_state(repo.top) == before
    # and `runlog diff` of the two says so too
    d = repo.runlog("diff", rid, ids[1])
    code = d.stdout.split("Code:\n", 1)[1].split("\n\n")[0]
    assert d.returncode == 0 and code.rstrip().endswith("same code"), d.stdout


def test_diff_working_names_the_files_edited_since(repo):
    rid = repo.train()
    p = repo.runlog("diff", rid, "--working")
    assert p.returncode == 0, p.stderr
    assert p.stdout.rstrip().endswith("same code"), p.stdout
    (repo.top / "util.py").write_text("x = 1\ny = 2\nw = 9\n")
    (repo.top / "later.txt").write_text("new\n")
    before = user_state(repo.top)
    for how in (("--working",), (".",)):
        p = repo.runlog("diff", rid, *how)
        assert p.returncode == 0, p.stderr
        code = p.stdout.split("Code:\n", 1)[1]
        files = [ln.split()[0] for ln in code.splitlines() if ln.startswith("    ")]
        assert files == ["later.txt", "util.py"], p.stdout
        assert "    util.py  +1 -0" in code
        assert f"B the working tree at {repo.top}" in p.stdout
    p = repo.runlog("diff", rid, "--working", "--patch")
    assert "+w = 9\n" in p.stdout and "+new\n" in p.stdout
    assert "model.py" not in p.stdout  # the same in both
    assert user_state(repo.top) == before


def test_diff_patch_between_runs(repo):
    a = repo.train("--lr", "0.2")
    (repo.top / "util.py").write_text("x = 1\ny = 3\n")
    b = repo.train("--lr", "0.2")
    p = repo.runlog("diff", a, b, "--patch")
    assert p.returncode == 0, p.stderr
    assert "-y = 2\n+y = 3\n" in p.stdout


def test_reproduce_into_a_stale_worktree_place_makes_a_clone(repo, tmp_path):
    """A copy deleted with rm -rf leaves git's worktree entry behind; git then refuses a
    worktree there, and a shared clone is made instead — the same files."""
    rid = repo.train()
    seen = snapshot(repo.top)
    dest = tmp_path / "copy"
    assert repo.runlog("reproduce", rid, str(dest)).returncode == 0
    shutil.rmtree(dest)
    before = user_state(repo.top)
    p = repo.runlog("reproduce", rid, str(dest))
    assert p.returncode == 0, p.stderr
    assert "a shared clone" in p.stdout and "its files are the recorded code state" in p.stdout
    assert snapshot(dest) == seen
    assert user_state(repo.top) == before


# ---------------------------------------------------------------- refusals: one line, non-zero


def test_dir_not_empty(repo, tmp_path):
    rid = repo.train()
    dest = tmp_path / "full"
    dest.mkdir()
    (dest / "x").write_text("mine")
    p = repo.runlog("reproduce", rid, str(dest))
    assert p.returncode == 1 and "exists and is not empty" in one_error_line(p.stderr)
    assert (dest / "x").read_text() == "mine" and os.listdir(dest) == ["x"]
    p = repo.runlog("reproduce", rid, str(dest), "--run")
    assert p.returncode == 1 and "not an unchanged copy" in one_error_line(p.stderr)


def test_dir_inside_the_repository_is_refused(repo):
    rid = repo.train()
    before = user_state(repo.top)
    p = repo.runlog("reproduce", rid, str(repo.top / "copy"))
    assert p.returncode == 1 and "inside the repository" in one_error_line(p.stderr)
    assert user_state(repo.top) == before


def test_run_without_git_state(repo, tmp_path):
    (repo.top / "nogit.py").write_text("import runlog\nrunlog.start(git=False)\n")
    rid = repo.train(script="nogit.py")
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"))
    assert p.returncode == 1 and "recorded no code state" in one_error_line(p.stderr)
    p = repo.runlog("diff", rid, "--working")
    assert p.returncode == 1 and "recorded no code state" in one_error_line(p.stderr)
    assert not (tmp_path / "c").exists()


def test_commit_gone_from_the_repository(tmp_path):
    repo = Repo(tmp_path)
    git_out(repo.top, "checkout", "-qb", "experiment")
    (repo.top / "util.py").write_text("x = 'experiment'\n")
    git_out(repo.top, "commit", "-qam", "an experiment")
    rid = repo.train()
    gone = repo.record(rid)["git"]["commit"]
    git_out(repo.top, "checkout", "-q", "main")
    git_out(repo.top, "branch", "-qD", "experiment")
    git_out(repo.top, "reflog", "expire", "--expire=now", "--all")
    git_out(repo.top, "gc", "-q", "--prune=now")
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"))
    assert p.returncode == 1
    assert f"commit {gone[:7]} of run {rid} is not in the repository" in one_error_line(p.stderr)
    assert not (tmp_path / "c").exists()


def test_truncated_patch_is_refused_unless_forced(repo, tmp_path):
    (repo.top / "big.py").write_text("")
    git_out(repo.top, "add", "big.py")
    git_out(repo.top, "commit", "-qm", "big")
    (repo.top / "big.py").write_text("".join(f"line_{i} = {i}\n" for i in range(80_000)))  # > 1 MB
    rid = repo.train()
    assert repo.record(rid)["git"]["patch_truncated"] is True
    dest = tmp_path / "c"
    p = repo.runlog("reproduce", rid, str(dest))
    assert p.returncode == 1 and "cut at 1 MB" in one_error_line(p.stderr) and "--force" in p.stderr
    assert not dest.exists()
    p = repo.runlog("reproduce", rid, str(dest), "--force")
    assert p.returncode == 0, p.stderr
    assert "the patch was cut here; not in the copy: big.py" in p.stdout


def test_binary_change_is_refused_unless_forced(repo, tmp_path):
    (repo.top / "w.bin").write_bytes(b"\0\1\2")
    git_out(repo.top, "add", "w.bin")
    git_out(repo.top, "commit", "-qm", "weights")
    (repo.top / "w.bin").write_bytes(b"\0\1\3")
    (repo.top / "data.bin").write_bytes(b"\0" * 10)  # untracked binary: listed, not saved
    rid = repo.train()
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"))
    assert p.returncode == 1 and "binary files" in one_error_line(p.stderr)
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"), "--force")
    assert p.returncode == 0, p.stderr
    assert "binary changes not in the copy: w.bin" in p.stdout
    assert "not in the copy: data.bin" in p.stdout
    assert (tmp_path / "c" / "util.py").read_text() == "x = 1\ny = 2\n"  # the rest applied


def test_patch_that_no_longer_applies_leaves_nothing(repo, tmp_path):
    rid = repo.train()
    patch = repo.logs / rid / "code.patch"
    patch.write_text(patch.read_text().replace(" x = 1\n+y = 2", " x = 999\n+y = 2"))  # not its commit's
    before = git_out(repo.top, "worktree", "list")
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"))
    assert p.returncode == 1 and "do not apply" in one_error_line(p.stderr)
    assert not (tmp_path / "c").exists()
    assert git_out(repo.top, "worktree", "list") == before  # the half-made worktree is gone


# ---------------------------------------------------------------- the environment


def test_environment_differences_are_listed(repo, tmp_path):
    rid = repo.train()
    rec_path = repo.logs / rid / "run.json"
    rec = json.loads(rec_path.read_text())
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    st = data.stat()
    # the shapes the environment helper records (brief): written here as a newer runlog would
    rec["env"] = {"python": "3.0.1", "packages": {"pytest": "0.0.1", "surely-not-installed": "1.0"}}
    rec["data"] = {"train": {"path": str(data), "kind": "file", "size": st.st_size,
                             "mtime": st.st_mtime, "fingerprint": None},
                   "val": {"path": str(tmp_path / "val.csv"), "kind": "file", "size": 3, "mtime": 0}}
    rec_path.write_text(json.dumps(rec))
    data.write_text("a,b\n1,2\n3,4\n")
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    env_lines = p.stdout.split("Environment now vs recorded:\n", 1)[1].split("Re-run")[0]
    import pytest as pt

    assert f"Python 3.0.1 → {sys.version.split()[0]}" in env_lines
    assert f"pytest 0.0.1 → {pt.__version__}" in env_lines
    assert "surely-not-installed 1.0 → not installed" in env_lines
    assert f"data train ({data}) changed" in env_lines
    assert f"data val ({tmp_path / 'val.csv'}) missing" in env_lines


def test_older_record_without_env_is_checked_for_python_only(repo, tmp_path):
    rid = repo.train()
    rec_path = repo.logs / rid / "run.json"
    rec = json.loads(rec_path.read_text())
    del rec["env"]  # as a runlog before the environment facts wrote it
    rec_path.write_text(json.dumps(rec))
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    assert "package versions were not recorded" in p.stdout
    assert "Python" not in p.stdout.split("Re-run")[0]  # the same Python ran it


def test_since_says_reproduced():
    prev = {"id": "A", "args": {"lr": 0.1}, "metrics": {"loss": {"last": 0.5}}}
    rec = {"reproduces": "A", "args": {"lr": 0.1}, "code_changes": {"same": True, "files": []},
           "metrics": {"loss": {"last": 0.6}}}
    assert changes_since(rec, prev) == "Since A (reproduced): same arguments and code; loss 0.5 → 0.6"
    rec["args"] = {"lr": 0.2}
    assert changes_since(rec, prev).startswith("Since A (reproduced): same code; lr 0.1 → 0.2")
    rec["code_changes"] = {"same": False, "files": ["a.py"]}
    assert changes_since(rec, prev) == ("Since A (reproduced): lr 0.1 → 0.2; uncommitted changes "
                                        "differ (a.py); loss 0.5 → 0.6")
    del rec["reproduces"]
    assert changes_since(rec, prev).startswith("Since A: lr")


def test_a_runlog_run_command_reproduces_as_one(repo, tmp_path):
    p = subprocess.run([sys.executable, "-m", "runlog", "--dir", str(repo.logs), "run", "--name", "exp",
                        "--tag", "t1", "--", "python", "train.py", "--lr", "0.4"], cwd=repo.cwd,
                       env=env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rid = repo.ids()[-1]
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    exe = repo.record(rid)["env"]["executable"]  # the program's interpreter, handed over
    assert (f"RUNLOG_DIR={repo.logs} runlog run --note 'reproduces {rid}' --name exp --tag t1 -- "
            f"{exe} train.py --lr 0.4") in p.stdout
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"), "--run", "--note", "again")
    assert p.returncode == 0, p.stderr
    new = repo.record(repo.ids()[-1])
    assert new["name"] == "exp" and "-exp" in new["id"] and new["tags"] == ["t1"] and new["note"] == "again"
    assert new["reproduces"] == rid and new["args"] == {"lr": 0.4}
    assert f"Since {rid} (reproduced): same arguments and code" in p.stderr


def test_the_recorded_interpreter_is_used_when_it_is_still_there(repo, tmp_path):
    rid = repo.train()
    rec_path = repo.logs / rid / "run.json"
    rec = json.loads(rec_path.read_text())
    link = tmp_path / "venv-python3"
    link.symlink_to(sys.executable)
    rec["env"] = {"python": sys.version.split()[0], "executable": str(link), "packages": {}}
    rec_path.write_text(json.dumps(rec))
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    assert f" {link} train.py --note 'reproduces {rid}'" in p.stdout
    assert "Environment: same Python and package versions as recorded" in p.stdout
    rec["env"]["executable"] = str(tmp_path / "gone" / "python3")  # that venv was deleted
    rec_path.write_text(json.dumps(rec))
    p = repo.runlog("reproduce", rid, str(tmp_path / "c2"))
    assert f" python train.py --note 'reproduces {rid}'" in p.stdout


def test_masked_secrets_are_not_run(repo, tmp_path):
    key = 'p.add_argument("--api-key")\na = p.parse_args()'
    (repo.cwd / "sec.py").write_text(TRAIN.replace("a = p.parse_args()", key))
    rid = repo.train("--api-key", "abcdefgh12345", script="sec.py")
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"))
    assert p.returncode == 0 and "are secrets: put them back" in p.stdout
    p = repo.runlog("reproduce", rid, str(tmp_path / "c"), "--run")
    assert p.returncode == 1 and "secrets masked" in one_error_line(p.stderr)
    assert len(repo.ids()) == 1


def test_visible_gpus_follow_cuda_visible_devices():
    from runlog.cli.envcheck import visible

    # nvidia-smi --query-gpu=index,uuid,name --format=csv,noheader on a two-GPU node
    out = ("0, GPU-8a3c5f4e-1b2d-4c6e-9f0a-123456789abc, NVIDIA A100-SXM4-80GB\n"
           "1, GPU-77e1d0c2-3a4b-5c6d-7e8f-abcdefabcdef, Tesla T4\n")
    assert visible(out, None) == ["NVIDIA A100-SXM4-80GB", "Tesla T4"]
    assert visible(out, "1") == ["Tesla T4"]
    assert visible(out, "GPU-77e1d0c2") == ["Tesla T4"]
    assert visible(out, "1,0") == ["Tesla T4", "NVIDIA A100-SXM4-80GB"]
    assert visible(out, "") == [] and visible(out, "5,0") == []


def test_diff_with_a_relative_log_dir_from_a_subdirectory_compares_exactly(tmp_path):
    """git runs in the repository's top: the saved patches must be found from there too."""
    repo = Repo(tmp_path, sub="src")
    repo.dirty()
    a = repo.train()
    git_out(repo.top, "add", "-A")  # logs/ is ignored
    git_out(repo.top, "commit", "-qm", "second")
    (repo.top / "util.py").write_text("x = 5\n")
    b = repo.train()
    p = subprocess.run([sys.executable, "-m", "runlog", "--dir", "logs", "diff", a, b, "--patch"],
                       cwd=repo.cwd, env=env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "  files:\n    util.py  +1 -2\n" in p.stdout, p.stdout  # not "commits only"
    assert "+x = 5\n" in p.stdout
