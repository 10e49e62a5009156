"""Process-wide changes of a run seen from real training scripts: forks, signal handlers, loggers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parent.parent)

SLOW_GIT = """\
#!/bin/sh
# git, with `status` held until the file $HOLD_GIT_UNTIL exists (a big repository's slow status)
for a in "$@"; do
  if [ "$a" = status ]; then
    n=0
    while [ ! -e "$HOLD_GIT_UNTIL" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done
  fi
done
exec {git} "$@"
"""


@pytest.fixture
def slow_git(tmp_path):
    """A PATH whose git answers `status` only once the returned file exists."""
    real = shutil.which("git")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "git").write_text(SLOW_GIT.format(git=real))
    (bin_ / "git").chmod(0o755)
    until = tmp_path / "git-may-answer"
    return {"PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}", "HOLD_GIT_UNTIL": str(until),
            "PYTHONPATH": ROOT}, until


FORKS_WHILE_GIT_IS_SLOW = """\
    import os, sys, runlog
    from runlog import active

    def fork():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    active.FORK_WAIT_S = 0.2
    runlog.start()
    fork()  # git's status is still held: this fork waits its while, then forks anyway
    active.FORK_WAIT_S = 600
    for _ in range(4):  # a Pool's other workers: the same slow thread is not waited for again
        fork()
    open(sys.argv[1], "w").close()
    print("forked")
    """


def test_forks_wait_once_for_a_slow_git_status_not_once_each(run_script, git_repo, slow_git):
    """A Pool(16) made while `git status` runs 30 s in a big repository: each of its forks
    waited the whole FORK_WAIT_S, seconds added to the script for nothing."""
    env, until = slow_git
    proc, _, r = run_script(FORKS_WHILE_GIT_IS_SLOW, str(until), cwd=git_repo, env=env)
    assert proc.stdout == "forked\n" and r["status"] == "finished" and r["git"], proc.stderr
