"""Revision, branch, dirty files and the patch of uncommitted changes.

Plain ``git`` calls, not GitPython: one ``git status --porcelain=v2`` answers
commit, branch and changed files in ~2 ms, GitPython's import alone costs
~90 ms, and its docs warn it leaks resources in long-running processes. The
whole capture runs in a background thread started by ``start()``.
"""

from __future__ import annotations

import os
import re

from .folder.layout import PATCH, RunFolder
PATCH_LIMIT = 1_000_000  # bytes of code.patch kept; the rest is cut and flagged
UNTRACKED_FILE_LIMIT = 100_000  # untracked files larger than this are listed, not inlined
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


_SECRET_LINE = (
    r"^\+.*(token|secret|passw(or)?d|api[-_]?key|access[-_]?key|private[-_]?key|credential)"
    r"\w*['\"]?\s*[:=]\s*['\"][^'\"\s]{8,}['\"]")


def looks_secret(patch: str) -> bool:
    """Whether added lines of a patch seem to assign a literal credential."""
    return re.search(_SECRET_LINE, patch, re.IGNORECASE | re.MULTILINE) is not None


class GitError(Exception):
    pass


def find_top(path: str) -> str | None:
    """The top of the work tree holding ``path``, found without running git."""
    path = os.path.abspath(path)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def _git(top: str, *args: str, check: bool = True) -> bytes:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    argv = ("git", "-C", top, *args)
    try:
        if hasattr(os, "posix_spawnp"):
            rc, out, err = _spawn(argv, env)
        else:  # pragma: no cover - not POSIX
            import subprocess

            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, env=env, timeout=60)
            rc, out, err = p.returncode, p.stdout, p.stderr
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except OSError as e:
        raise GitError(f"git {args[0]} failed: {e}") from None
    if check and rc != 0:
        msg = err.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {args[0]}: {msg[-1] if msg else rc}")
    return out


def _spawn(argv, env) -> tuple[int, bytes, bytes]:
    """Run a command and collect its output with posix_spawn and pipes.

    The subprocess module costs ~3 ms to import, on a thread that competes
    with the user's script for the GIL; this is all git needs.
    """
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    try:
        pid = os.posix_spawnp(argv[0], list(argv), env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, w_out, 1),
            (os.POSIX_SPAWN_DUP2, w_err, 2),
            (os.POSIX_SPAWN_CLOSE, r_out),
            (os.POSIX_SPAWN_CLOSE, r_err),
        ], setpgroup=0,  # its own process group: a Ctrl-C at the terminal does not kill it
            setsigmask=())  # not the git thread's blocked signals
    finally:
        os.close(w_out)
        os.close(w_err)
    try:
        import select  # not selectors: its import costs ~1 ms on the git thread

        chunks = {r_out: [], r_err: []}
        poller = select.poll()
        for fd in chunks:
            poller.register(fd, select.POLLIN)
        open_fds = set(chunks)
        while open_fds:
            for fd, _ in poller.poll():
                data = os.read(fd, 65536)
                if data:
                    chunks[fd].append(data)
                else:
                    poller.unregister(fd)
                    open_fds.discard(fd)
        out, err = chunks[r_out], chunks[r_err]
    finally:
        os.close(r_out)
        os.close(r_err)
    if hasattr(os, "wait4"):  # its usage is runlog's, not the run's (resources.own_child)
        _, status, usage = os.wait4(pid, 0)
        from .facts.resources import own_child

        own_child(usage)
    else:  # pragma: no cover - not POSIX
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(out), b"".join(err)


def _pathspecs(top: str, exclude: str | None) -> list[str]:
    """Whole repository, minus the log directory if it lies inside it."""
    specs = [":(top)"]
    if exclude:
        rel = os.path.relpath(os.path.abspath(exclude), top)
        if not rel.startswith(".."):
            specs.append(f":(top,exclude){rel}")
    return specs


def parse_status(out: bytes) -> dict:
    """Parse ``git status --porcelain=v2 --branch -z`` into commit, branch, files."""
    commit = branch = None
    changed: list[str] = []
    untracked: list[str] = []
    fields = out.split(b"\0")
    i = 0
    while i < len(fields):
        f = fields[i].decode("utf-8", "surrogateescape")
        i += 1
        if not f:
            continue
        if f.startswith("# branch.oid "):
            oid = f[len("# branch.oid "):]
            commit = None if oid == "(initial)" else oid
        elif f.startswith("# branch.head "):
            head = f[len("# branch.head "):]
            branch = None if head == "(detached)" else head
        elif f[0] == "1":
            changed.append(f.split(" ", 8)[8])
        elif f[0] == "2":
            changed.append(f.split(" ", 9)[9])
            i += 1  # the original path of a rename follows as its own field
        elif f[0] == "u":
            changed.append(f.split(" ", 10)[10])
        elif f[0] == "?":
            untracked.append(f[2:])
    return {"commit": commit, "branch": branch, "changed": changed, "untracked": untracked}


def _untracked_patch(top: str, paths: list[str], budget: int) -> tuple[str, list[str]]:
    """Untracked small text files as "new file" diffs; bigger or binary ones listed."""
    parts, skipped = [], []
    for rel in paths:
        full = os.path.join(top, rel)
        try:
            if os.path.getsize(full) > min(UNTRACKED_FILE_LIMIT, budget):
                skipped.append(rel)
                continue
            with open(full, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if b"\0" in data[:8192]:
            skipped.append(rel)
            continue
        text = data.decode("utf-8", "replace")
        lines = text.split("\n")  # not splitlines(): "\r", "\f" and others stay in their line
        if lines[-1] == "":
            lines.pop()
        body = "".join(f"+{line}\n" for line in lines)
        if text and not text.endswith("\n"):
            body += "\\ No newline at end of file\n"
        mode = "100755" if os.stat(full).st_mode & 0o100 else "100644"
        part = f"diff --git a/{rel} b/{rel}\nnew file mode {mode}\n"
        if lines:  # an empty file is the header alone, as git writes it (a hunk would be corrupt)
            part += f"--- /dev/null\n+++ b/{rel}\n@@ -0,0 +1,{len(lines)} @@\n{body}"
        parts.append(part)
        budget -= len(part)
    return "".join(parts), skipped


def capture(cwd: str, run_dir: str | None, exclude: str | None = None) -> dict | None:
    """The code state of the repository holding ``cwd``, or None outside one.

    Writes ``code.patch`` into ``run_dir`` when the tree has uncommitted changes.
    Raises GitError when git is missing or fails inside a repository.
    """
    top = find_top(cwd)
    if top is None:
        return None
    specs = _pathspecs(top, exclude)
    out = _git(top, "status", "--porcelain=v2", "--branch", "--no-ahead-behind", "-z",
               "--untracked-files=all", "--", *specs)
    st = parse_status(out)
    dirty = bool(st["changed"] or st["untracked"])
    info = {
        "commit": st["commit"],
        "short": st["commit"][:7] if st["commit"] else None,
        "branch": st["branch"],
        "dirty": dirty,
        "changed_files": st["changed"] + st["untracked"],
        "patch": None,
        "patch_truncated": False,
        "top": top,
    }
    if dirty and run_dir is not None:
        base = st["commit"] or EMPTY_TREE
        tracked = b""
        if st["changed"]:
            tracked = _git(top, "diff", base, "--no-color", "--no-ext-diff", "--", *specs)
        patch = tracked.decode("utf-8", "replace")
        extra, skipped = _untracked_patch(top, st["untracked"], PATCH_LIMIT - len(patch))
        patch += extra
        if skipped:
            patch += "".join(f"# untracked, not saved (large or binary): {p}\n" for p in skipped)
        if len(patch) > PATCH_LIMIT:
            patch = patch[:PATCH_LIMIT] + "\n# runlog: patch cut at 1 MB\n"
            info["patch_truncated"] = True
        with open(RunFolder(run_dir).patch, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(patch)
        info["patch"] = PATCH
        if looks_secret(patch):
            info["patch_secret_warning"] = True
    return info


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


def code_state(record: dict, run_dir: str, root: str, say) -> dict | None:
    """Capture the code state of a starting run and compare it with the previous run.

    Fills ``git``, ``previous`` and ``code_changes`` of ``record`` (the caller
    holds its lock around this) and returns the previous run's index entry.
    ``say`` is told, once each, what could not be done. A run that ``reproduces``
    another is compared with that one.
    """
    from .folder.trials import previous

    try:
        info = capture(record["cwd"], run_dir, exclude=root)
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
