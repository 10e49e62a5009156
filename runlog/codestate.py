"""A run's code state against another's: what differs between two recorded states (a
commit plus its saved patch), and ``code_state``, which captures a starting run's
(``git.capture``) and compares it with its previous run's. Also used by `runlog diff`
and `runlog reproduce`.
"""

from __future__ import annotations

import os

from .folder.layout import RunFolder
from .git import EMPTY_TREE, GitError, Status, _git, _spawn, capture


def changes_between(top: str, old: str, new: str) -> dict | None:
    """Commits and changed files from revision ``old`` to ``new``."""
    if not old or not new or old == new:
        return None
    try:
        count = int(_git(top, "rev-list", "--count", f"{old}..{new}").strip() or 0)
        files = _git(top, "diff", "--name-only", "-z", old, new).split(b"\0")
    except (GitError, ValueError):
        return None
    return {"commits": count, "files": [f.decode("utf-8", "replace") for f in files if f]}


def state_tree(top: str, commit: str | None, patch_path: str | None) -> str | None:
    """A tree object for a recorded code state: the commit plus its saved patch.

    Built in a throwaway index (GIT_INDEX_FILE), so the user's own index and
    work tree are never touched. None if the patch no longer applies.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="runlog-") as tmp:
        index = os.path.join(tmp, "index")
        env = dict(os.environ, GIT_INDEX_FILE=index, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")

        def git(*args: str) -> bytes:
            # through _spawn, as every git runlog starts: its usage is runlog's, not the run's
            rc, out, _ = _spawn(("git", "-C", top, *args), env)
            if rc != 0:
                raise GitError(f"git {args[0]} failed")
            return out

        try:
            git("read-tree", commit or EMPTY_TREE)
            if patch_path and os.path.getsize(patch_path) > 0:
                git("apply", "--cached", "--whitespace=nowarn", os.path.abspath(patch_path))
            return git("write-tree").decode().strip()
        except (GitError, OSError):
            return None


def diff_states(top: str, a: tuple, b: tuple) -> dict:
    """Commits between two recorded states and their code changes summarised by file.

    ``a`` and ``b`` are (commit, patch path or None).
    """
    out: dict = {"commits": [], "files": [], "exact": False}
    (ca, pa), (cb, pb) = a, b
    if ca and cb and ca != cb:
        try:
            log = _git(top, "log", "--oneline", "--no-decorate", "--left-right", f"{ca}...{cb}")
            out["commits"] = log.decode("utf-8", "replace").splitlines()
        except GitError:
            pass
    ta, tb = state_tree(top, ca, pa), state_tree(top, cb, pb)
    if ta and tb:
        out["exact"] = True
        if ta != tb:
            stat = _git(top, "diff", "--numstat", "-z", ta, tb).split(b"\0")
            out["files"] = _numstat(stat)
    elif ca and cb:
        stat = _git(top, "diff", "--numstat", "-z", ca, cb, check=False).split(b"\0")
        out["files"] = _numstat(stat)
    return out


def _numstat(fields: list[bytes]) -> list[tuple[str, str, str]]:
    files = []
    i = 0
    while i < len(fields):
        f = fields[i].decode("utf-8", "replace")
        i += 1
        if not f:
            continue
        added, removed, path = (f.split("\t", 2) + ["", ""])[:3]
        if not path:  # a rename: the two paths follow as their own fields
            path = fields[i + 1].decode("utf-8", "replace") if i + 1 < len(fields) else "?"
            i += 2
        files.append((path, added, removed))
    return files


def _patch_by_file(text: str) -> dict[str, str]:
    """A saved patch as {path: its part}, so two patches compare file by file."""
    parts: dict[str, str] = {}
    path = None
    for line in text.splitlines(keepends=True):
        if line.startswith("diff --git "):
            path = line.rstrip("\n").rsplit(" b/", 1)[-1]
            parts[path] = line
        elif line.startswith("# untracked, not saved"):
            parts[line.split(": ", 1)[-1].strip()] = line  # content unknown: named, as is
            path = None
        elif path is not None:
            parts[path] += line
    return parts


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def compare_states(top: str, prev_dir: str, prev_git: dict, run_dir: str, info: dict) -> dict:
    """What differs between two recorded code states (commit + saved patch).

    ``files``: the files whose content differs, committed or not; ``commits``:
    how many commits lie between; ``same``: whether the states are equal.
    """
    prev_commit, cur_commit = prev_git.get("commit"), info.get("commit")
    prev_patch = RunFolder(prev_dir).patch if prev_git.get("dirty") else None
    cur_patch = RunFolder(run_dir).patch if info.get("patch") else None
    a, b = _read(prev_patch) if prev_patch else "", _read(cur_patch) if cur_patch else ""
    if prev_commit == cur_commit:  # same commit: the saved patches say it all, file by file
        pa, pb = _patch_by_file(a), _patch_by_file(b)
        files = sorted(p for p in set(pa) | set(pb) if pa.get(p) != pb.get(p))
        return {"commits": 0, "files": files, "same": not files}
    between = changes_between(top, prev_commit, cur_commit) if prev_commit and cur_commit else None
    commits = (between or {}).get("commits", 0)
    if not a and not b and between is not None:
        files = between["files"]
    else:  # a commit and a patch on either side: build both states and compare them exactly
        d = diff_states(top, (prev_commit, prev_patch if a else None), (cur_commit, cur_patch if b else None))
        files = [path for path, _, _ in d["files"]]
    return {"commits": commits, "files": files, "same": not files and not commits}


def code_state(record: dict, run_dir: str, root: str, say, status: Status | None = None) -> dict | None:
    """Capture the code state of a starting run and compare it with the previous run.

    Fills ``git``, ``previous`` and ``code_changes`` of ``record`` (the caller
    holds its lock around this) and returns the previous run's index entry.
    ``say`` is told, once each, what could not be done. A run that ``reproduces``
    another is compared with that one. ``status``: its ``git status``, already started.
    """
    from .folder.trials import previous

    try:
        info = capture(record["cwd"], run_dir, exclude=root, status=status)
    except GitError as e:
        say("git", f"could not record the code state ({e})")
        info = None
    except OSError as e:
        say("git", f"could not save the code state ({e.strerror or e})")
        info = None
    if info and info.pop("patch_secret_warning", False):
        say("secret", f"warning: {RunFolder(run_dir).patch} seems to hold a credential (an added line "
                      "assigns a token, key or password); it is saved as it is")
    prev = previous(root, record, build=True)
    top = info.pop("top", None) if info else None
    changes = None
    if prev and info and top and prev.get("git"):
        try:
            changes = compare_states(top, os.path.join(root, prev["id"]), prev["git"], run_dir, info)
        except (GitError, OSError) as e:
            say("compare", f"could not compare the code with {prev['id']} ({e})")
    record["git"] = info
    record["previous"] = prev["id"] if prev else None
    if changes:
        record["code_changes"] = changes
    return prev
