"""Working copies of a recorded code state, and the working tree's state now.

``runlog reproduce`` makes a copy: a detached ``git worktree`` (or a shared
clone) at the recorded commit, with the saved ``code.patch`` applied. The
user's own work tree, index, HEAD and branches are never touched: the copy has
its own index, and the patch is applied there. ``runlog diff RUN --working``
captures the working tree as a run would (``git.capture``, into a scratch
folder) so both sides are compared the same way runs are.
"""

from __future__ import annotations

import os
import subprocess

from . import codestate
from . import git as gitstate

BINARY = "Binary files "
NOT_SAVED = "# untracked, not saved (large or binary): "


def run_git(top: str, *args: str, check: bool = True) -> str:
    """One git command in ``top``; a failure is a GitError with git's last line."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        p = subprocess.run(("git", "-C", top, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, env=env, timeout=300)
    except FileNotFoundError:
        raise gitstate.GitError("git is not installed") from None
    if check and p.returncode != 0:
        msg = p.stderr.decode(errors="replace").strip().splitlines()
        raise gitstate.GitError(f"git {args[0]}: {msg[-1] if msg else p.returncode}")
    return p.stdout.decode("utf-8", "surrogateescape")


def has_commit(top: str, commit: str) -> bool:
    try:
        p = subprocess.run(("git", "-C", top, "cat-file", "-e", f"{commit}^{{commit}}"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL, timeout=60)
    except FileNotFoundError:
        raise gitstate.GitError("git is not installed") from None
    return p.returncode == 0


# ---------------------------------------------------------------- the saved patch


class Patch:
    """A saved ``code.patch`` split by file, in order, with what it could not save.

    ``staged``: parts git wrote for a path new to the index (``git add``ed new
    files, renames); applied with ``--index`` in the copy so that the copy's own
    capture writes them the same way. ``binary``: tracked binary changes (saved
    as "Binary files … differ", not reproducible). ``not_saved``: untracked
    files too large or binary to inline.
    """

    def __init__(self, text: str, truncated: bool = False):
        self.parts: list[tuple[str, str]] = []
        self.not_saved: list[str] = []
        path = None
        for line in _lines(text):
            if line.startswith("diff --git "):
                path = line.rstrip("\n").rsplit(" b/", 1)[-1]
                self.parts.append((path, line))
            elif line.startswith(NOT_SAVED):
                self.not_saved.append(line[len(NOT_SAVED):].rstrip("\n"))
                path = None
            elif line.startswith("# runlog: patch cut"):
                path = None
            elif path is not None:
                self.parts[-1] = (path, self.parts[-1][1] + line)
        self.cut: list[str] = []
        if truncated and self.parts:  # the last file's diff was cut: unknown from there on
            self.cut = [self.parts.pop()[0]]
        self.binary = [p for p, t in self.parts if _is_binary(t)]

    def staged(self) -> str:
        return "".join(t for p, t in self.parts if p not in self.binary and _new_in_index(t))

    def rest(self) -> str:
        return "".join(t for p, t in self.parts if p not in self.binary and not _new_in_index(t))


def _lines(text: str) -> list[str]:
    """Lines split at "\n" only: a "\r" (or a form feed) is part of its line, as in git's diff."""
    parts = text.split("\n")
    last = parts.pop()
    return [p + "\n" for p in parts] + ([last] if last else [])


def _is_binary(part: str) -> bool:
    return any(ln.startswith(BINARY) and ln.rstrip().endswith(" differ") for ln in _lines(part))


def _new_in_index(part: str) -> bool:
    head = part.split("\n@@", 1)[0]
    return ("\nnew file mode " in head and "\nindex 0000000" in head) or "\nrename from " in head \
        or "\ncopy from " in head


def read_patch(path: str | None, truncated: bool = False) -> Patch:
    if not path:
        return Patch("")
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        return Patch(f.read(), truncated)


# ---------------------------------------------------------------- making a copy


def make_copy(top: str, dest: str, commit: str) -> str:
    """A detached copy of ``commit`` at ``dest``; returns "worktree" or "clone".

    A worktree shares the repository's objects and costs no copy of them; it
    adds an entry to ``git worktree list`` (nothing else of the user's
    repository changes). Where git refuses one (a bare-ish or odd repository,
    an old git), a ``git clone --shared --no-checkout`` borrows the objects
    the same way and is checked out at the commit.
    """
    try:
        run_git(top, "worktree", "add", "--detach", "--quiet", dest, commit)
        return "worktree"
    except gitstate.GitError:
        if os.path.isdir(dest) and os.listdir(dest):
            raise
    run_git(top, "clone", "--quiet", "--shared", "--no-checkout", top, dest)
    run_git(dest, "checkout", "--quiet", "--detach", commit)
    return "clone"


def remove_copy(top: str, dest: str, kind: str) -> None:
    """Undo ``make_copy`` (the patch did not apply): no half-made copy stays behind."""
    import shutil

    if kind == "worktree":
        run_git(top, "worktree", "remove", "--force", dest, check=False)
        run_git(top, "worktree", "prune", check=False)
    shutil.rmtree(dest, ignore_errors=True)


def apply_patch(dest: str, patch: Patch) -> None:
    """Apply the saved changes in the copy: new-to-index parts staged (as they were), the rest
    to its files only. Raises GitError when the patch does not apply."""
    import tempfile

    for text, index in ((patch.staged(), True), (patch.rest(), False)):
        if not text:
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".patch", delete=False, encoding="utf-8",
                                         errors="surrogateescape", newline="") as f:
            f.write(text)
        try:
            run_git(dest, "apply", "--whitespace=nowarn", *(["--index"] if index else []), f.name)
        finally:
            os.unlink(f.name)


# ---------------------------------------------------------------- the working tree now


def working_state(cwd: str, root: str, scratch: str) -> dict | None:
    """The code state of the repository holding ``cwd`` as a run starting now would record it
    (its patch written into ``scratch``); None outside a repository."""
    return gitstate.capture(cwd, scratch, exclude=root)


def tree_diff(top: str, a: tuple, b: tuple) -> str | None:
    """The textual diff between two code states (commit, patch path or None); None when one
    of them cannot be built (its patch no longer applies)."""
    ta, tb = codestate.state_tree(top, *a), codestate.state_tree(top, *b)
    if not ta or not tb:
        return None
    return run_git(top, "diff", "--no-color", "--no-ext-diff", ta, tb)


def check_copy(dest: str, commit: str, patch_path: str | None, scratch: str) -> dict | None:
    """Compare the copy with the recorded state: {"exact", "files"} (files that differ)."""
    info = gitstate.capture(dest, scratch)
    if info is None:
        return None
    mine = os.path.join(scratch, info["patch"]) if info.get("patch") else None
    return codestate.diff_states(dest, (commit, patch_path), (info["commit"], mine))
