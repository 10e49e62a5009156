"""The code state: commit, branch, dirty flag, changed files and code.patch, from
real repositories; and a run recorded without git when there is no repository
or no git program."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import clean_env, commit_all, git_out, read_json, run_dirs, write_script

SCRIPT = "import runlog\nrunlog.start()\nprint('done')\n"


@pytest.fixture
def repo(git_repo) -> Path:
    """The repository with the script committed: clean until a test changes it."""
    write_script(git_repo, SCRIPT)
    commit_all(git_repo, "the script")
    return git_repo


def test_clean_repo(repo, run_script):
    proc, d, r = run_script(None)
    head = git_out(repo, "rev-parse", "HEAD").strip()
    g = r["git"]
    assert g == {"commit": head, "short": head[:7], "branch": "main", "dirty": False,
                 "changed_files": [], "patch": None, "patch_truncated": False}
    assert not (d / "code.patch").exists()
    assert f"- Git: {head[:7]} on main, clean" in proc.stderr
    assert f"git: {head[:7]} main" in (d / "run.log").read_text()


def test_modified_tracked_and_small_untracked_files_are_in_the_patch(repo, run_script):
    (repo / "a.py").write_text("x = 2\n")
    (repo / "notes.txt").write_text("try a warmup\n")
    (repo / "sub dir").mkdir()
    (repo / "sub dir" / "ünï.py").write_text("y = 1")  # no final newline
    proc, d, r = run_script(None)
    g = r["git"]
    assert g["dirty"] is True
    assert sorted(g["changed_files"]) == ["a.py", "notes.txt", "sub dir/ünï.py"]
    assert g["patch"] == "code.patch" and g["patch_truncated"] is False
    patch = (d / "code.patch").read_text(encoding="utf-8")
    assert "-x = 1\n+x = 2\n" in patch
    assert "+try a warmup\n" in patch
    assert "+y = 1\n\\ No newline at end of file\n" in patch
    # the patch is the exact difference: applied in reverse it takes the tree back to HEAD
    git_out(repo, "apply", "-R", str(d / "code.patch"))
    assert (repo / "a.py").read_text() == "x = 1\n"
    assert not (repo / "notes.txt").exists() and not (repo / "sub dir" / "ünï.py").exists()
    assert "uncommitted changes in 3 files saved in code.patch" in proc.stderr


def test_the_commit_and_the_patch_rebuild_the_tree_byte_for_byte(repo, run_script, tmp_path):
    (repo / "a.py").write_text("x = 2\n")
    (repo / "pkg").mkdir()
    (repo / "pkg" / "__init__.py").write_text("")  # empty: a new package
    (repo / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    (repo / "feed.py").write_bytes(b"a = 1\n\x0c\nb = 2\n")  # a form feed between sections
    (repo / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "run.sh").chmod(0o755)
    _, d, r = run_script(None)
    copy = tmp_path.parent / f"{tmp_path.name}-copy"
    git_out(tmp_path.parent, "clone", "-q", str(repo), str(copy))
    git_out(copy, "checkout", "-q", r["git"]["commit"])
    git_out(copy, "apply", str(d / "code.patch"))
    for f in ["a.py", "pkg/__init__.py", "win.txt", "feed.py", "run.sh", "s.py"]:
        assert (copy / f).read_bytes() == (repo / f).read_bytes(), f
    assert os.access(copy / "run.sh", os.X_OK)


def test_staged_and_deleted_files_count_too(repo, run_script):
    (repo / "b.py").write_text("z = 1\n")
    git_out(repo, "add", "b.py")  # staged, never committed
    git_out(repo, "rm", "-q", "a.py")
    _, d, r = run_script(None)
    assert sorted(r["git"]["changed_files"]) == ["a.py", "b.py"]
    patch = (d / "code.patch").read_text()
    assert "deleted file mode" in patch and "-x = 1" in patch
    assert "new file mode" in patch and "+z = 1" in patch


def test_large_or_binary_untracked_files_are_listed_not_inlined(repo, run_script):
    (repo / "a.py").write_text("x = 3\n")
    (repo / "big.txt").write_text("a line of text\n" * 8000)  # 120 KB
    (repo / "weights.bin").write_bytes(bytes(range(256)) * 40)  # 10 KB, binary
    _, d, r = run_script(None)
    assert sorted(r["git"]["changed_files"]) == ["a.py", "big.txt", "weights.bin"]
    patch = (d / "code.patch").read_text()
    assert "+x = 3" in patch
    assert "untracked, not saved (large or binary): big.txt" in patch
    assert "untracked, not saved (large or binary): weights.bin" in patch
    assert "a line of text" not in patch
    assert len(patch) < 2000 and r["git"]["patch_truncated"] is False


def test_a_huge_change_is_cut_and_flagged(repo, run_script):
    (repo / "data.csv").write_text("".join(f"{i},{i * i}\n" for i in range(70_000)))
    commit_all(repo, "data")
    (repo / "data.csv").write_text("".join(f"{i},{-i}\n" for i in range(70_000)))
    proc, d, r = run_script(None)
    assert r["git"]["patch_truncated"] is True
    size = (d / "code.patch").stat().st_size
    assert 1_000_000 <= size < 1_001_000
    assert (d / "code.patch").read_text().endswith("# runlog: patch cut at 1 MB\n")
    assert "cut at 1 MB" in proc.stderr


def test_detached_head(repo, run_script):
    head = git_out(repo, "rev-parse", "HEAD").strip()
    git_out(repo, "checkout", "-q", "--detach")
    proc, _, r = run_script(None)
    assert r["git"]["branch"] is None and r["git"]["commit"] == head
    assert r["git"]["dirty"] is False
    assert f"- Git: {head[:7]} (detached HEAD), clean" in proc.stderr


def test_repo_with_no_commits(tmp_path, run_script):
    git_out(tmp_path, "-c", "init.defaultBranch=main", "init", "-q")
    (tmp_path / "model.py").write_text("layers = 3\n")
    proc, d, r = run_script(SCRIPT)
    g = r["git"]
    assert (g["commit"], g["short"], g["branch"], g["dirty"]) == (None, None, "main", True)
    assert sorted(g["changed_files"]) == ["model.py", "s.py"]
    patch = (d / "code.patch").read_text()
    assert "+layers = 3" in patch and "+runlog.start()" in patch
    assert "- Git: no commits yet on main" in proc.stderr


def test_outside_a_repository_git_is_null(tmp_path, run_script):
    assert not any((p / ".git").exists() for p in [tmp_path, *tmp_path.parents])
    proc, d, r = run_script(SCRIPT)
    assert r["git"] is None
    assert "runlog:" not in proc.stderr.replace(f"runlog: run {r['id']}", "")  # nothing to say
    assert "- Git:" not in proc.stderr and not (d / "code.patch").exists()


def test_no_git_program(repo, tmp_path, run_script):
    # PATH is one empty folder: no git to run. The interpreter is started by its
    # absolute path, not through a link in that folder: a link to a venv's python
    # outside the venv would no longer find the venv's site-packages (nor runlog).
    empty = tmp_path.parent / f"{tmp_path.name}-bin"
    empty.mkdir()
    (repo / "a.py").write_text("x = 2\n")
    proc, d, r = run_script(None, python=sys.executable, env={"PATH": str(empty)})
    assert proc.stdout == "done\n"
    assert r["status"] == "finished" and r["git"] is None
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith("runlog:")
            and not ln.startswith(f"runlog: run {r['id']}")]
    assert len(said) == 1 and "git" in said[0], proc.stderr
    assert not (d / "code.patch").exists()


def test_the_log_directory_inside_the_repository_is_not_a_change(repo, run_script):
    # logs/ is not in .gitignore: runlog leaves its own folder out of the code state
    _, _, first = run_script(None)
    _, _, second = run_script(None)
    assert (repo / "logs" / first["id"] / "run.log").exists()
    assert first["git"]["dirty"] is False and second["git"]["dirty"] is False


def test_a_log_directory_elsewhere_in_the_repository_is_not_a_change(repo, run_script):
    (repo / "exp").mkdir()
    (repo / "exp" / "old.txt").write_text("not ours\n")  # a real change in the same folder tree
    env = {"RUNLOG_DIR": "exp/runs"}
    run_script(None, env=env, logs="exp/runs")
    _, _, r = run_script(None, env=env, logs="exp/runs")
    assert r["git"]["changed_files"] == ["exp/old.txt"]


def test_run_from_a_subdirectory(repo, run_script):
    (repo / "src").mkdir()
    (repo / "a.py").write_text("x = 5\n")
    write_script(repo / "src", SCRIPT, "t.py")
    _, d, r = run_script(None, name="t.py", cwd=repo / "src")
    # paths are the repository's, the run folder is where the script ran
    assert d.parent == repo / "src" / "logs"
    assert sorted(r["git"]["changed_files"]) == ["a.py", "src/t.py"]
    assert r["git"]["branch"] == "main"


def test_git_false_records_no_code_state(repo, run_script):
    (repo / "a.py").write_text("x = 2\n")
    _, d, r = run_script("import runlog\nrunlog.start(git=False)\n", name="nogit.py")
    assert r["git"] is None and not (d / "code.patch").exists()


def test_a_git_error_inside_a_repository_is_one_line_and_the_run_goes_on(repo, run_script):
    (repo / ".git" / "HEAD").write_text("garbage\n")  # git no longer sees a repository here
    proc, _, r = run_script(None)
    assert proc.stdout == "done\n" and r["status"] == "finished" and r["git"] is None
    said = [ln for ln in proc.stderr.splitlines() if "code state" in ln]
    assert len(said) == 1 and said[0].startswith("runlog: could not record the code state")
    assert "Traceback" not in proc.stderr


def test_many_small_untracked_files_are_each_saved(repo, run_script):
    for i in range(50):
        (repo / f"f{i}.txt").write_text(f"{i}\n")
    _, d, r = run_script(None)
    assert len(r["git"]["changed_files"]) == 50
    assert (d / "code.patch").read_text().count("new file mode") == 50



def test_a_ctrl_c_right_after_start_leaves_the_code_state(git_repo):
    # A terminal's Ctrl-C goes to the whole foreground process group; git runs in its own,
    # so a run interrupted in its first milliseconds still records its code state.
    (git_repo / "a.py").write_text("x = 2\n")  # a change to record
    (git_repo / "s.py").write_text(textwrap.dedent("""\
        import os, signal, time, runlog
        def git_running():  # a git child of this process, right now
            for t in os.listdir("/proc/self/task"):
                try:  # the git thread may end while we look
                    with open(f"/proc/self/task/{t}/children") as f:
                        pids = f.read().split()
                except OSError:
                    continue
                for pid in pids:
                    try:
                        with open(f"/proc/{pid}/comm") as c:
                            if c.read().strip() == "git":
                                return True
                    except OSError:
                        pass
            return False
        runlog.start()
        for _ in range(200_000):  # until git is at work (it takes a few milliseconds)
            if git_running():
                break
        os.killpg(os.getpgid(0), signal.SIGINT)  # what the terminal does on Ctrl-C
        time.sleep(30)
        """))
    proc = subprocess.run([sys.executable, "s.py"], cwd=git_repo, capture_output=True, text=True,
                          env=clean_env(), timeout=60, start_new_session=True)
    (d,) = run_dirs(git_repo / "logs")
    r = read_json(d / "run.json")
    assert r["status"] == "interrupted", proc.stderr
    assert r["git"] is not None and r["git"]["changed_files"] == ["a.py", "s.py"], proc.stderr
    assert "could not record the code state" not in proc.stderr


def test_a_run_killed_once_its_code_state_is_logged_keeps_it_in_run_json(git_repo):
    # kill -9 (the OOM killer, a segfault in a CUDA library) right after run.log says "git:":
    # run.json already names the commit and the changed files
    (git_repo / "a.py").write_text("x = 3\n")
    (git_repo / "s.py").write_text(textwrap.dedent("""\
        import time, runlog
        runlog.start()
        time.sleep(60)
        """))
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=git_repo, env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            dirs = sorted(run_dirs(git_repo / "logs")) if (git_repo / "logs").exists() else []
            log = dirs[0] / "run.log" if dirs else None
            if log and log.exists() and "RUNLOG  git: " in log.read_text():
                break
            time.sleep(0.01)
        proc.kill()
    finally:
        proc.wait(timeout=60)
    (d,) = run_dirs(git_repo / "logs")
    r = read_json(d / "run.json")
    assert r["status"] == "running"  # as it was when the process died (ls shows it lost)
    assert r["git"]["commit"] and r["git"]["changed_files"] == ["a.py", "s.py"]
    assert (d / "code.patch").exists()


def test_a_long_run_has_its_code_state_in_run_json_while_it_runs(git_repo):
    # ls and show of a run still going show its code state
    (git_repo / "a.py").write_text("x = 2\n")
    (git_repo / "s.py").write_text(textwrap.dedent("""\
        import os, time, runlog
        runlog.start()
        deadline = time.monotonic() + 60
        while not os.path.exists("go") and time.monotonic() < deadline:
            time.sleep(0.02)
        """))
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=git_repo, env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        r = None
        while time.monotonic() < deadline:
            dirs = sorted(run_dirs(git_repo / "logs")) if (git_repo / "logs").exists() else []
            if dirs:
                try:
                    r = read_json(dirs[0] / "run.json")
                except (OSError, ValueError):  # not written yet
                    r = None
                if r and r.get("git"):
                    break
            time.sleep(0.02)
        assert r and r["status"] == "running" and r["git"]["changed_files"] == ["a.py", "s.py"]
    finally:
        (git_repo / "go").write_text("")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    (d,) = run_dirs(git_repo / "logs")
    assert read_json(d / "run.json")["status"] == "finished"
