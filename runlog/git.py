"""Revision, branch, dirty files and the patch of uncommitted changes.

Plain ``git`` calls, not GitPython: one ``git status --porcelain=v2`` answers
commit, branch and changed files in ~2 ms, GitPython's import alone costs
~90 ms, and its docs warn it leaks resources in long-running processes.
``start()`` starts ``git status`` at once (``Status``) and reads it on a
background thread; what the run is compared with is in ``codestate.py``.
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
    low = patch.lower()  # most patches name none of the words: no regex to compile (~1 ms)
    if not any(w in low for w in ("token", "secret", "passw", "key", "credential")):
        return False
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
    return _finish_git(args[0], _run_git(top, args), check)


def _run_git(top: str, args) -> tuple[int, bytes, bytes]:
    """``_spawn`` of ``git -C top ARGS`` (subprocess where there is no posix_spawn)."""
    argv = ("git", "-C", top, *args)
    try:
        if hasattr(os, "posix_spawnp"):
            return _spawn(argv, _env())
        import subprocess  # pragma: no cover - not POSIX

        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, env=_env(), timeout=60)
        return p.returncode, p.stdout, p.stderr
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except OSError as e:
        raise GitError(f"git {args[0]} failed: {e}") from None


def _env() -> dict:
    return dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")


def _finish_git(command: str, result: tuple[int, bytes, bytes], check: bool) -> bytes:
    rc, out, err = result
    if check and rc != 0:
        msg = err.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {command}: {msg[-1] if msg else rc}")
    return out


def _spawn(argv, env) -> tuple[int, bytes, bytes]:
    """Run a command and collect its output with posix_spawn and pipes.

    The subprocess module costs ~3 ms to import, on a thread that competes
    with the user's script for the GIL; this is all git needs.
    """
    return _collect(*_start(argv, env))


def _start(argv, env) -> tuple[int, int, int]:
    """The command started, its stdout and stderr on pipes: (pid, stdout fd, stderr fd)."""
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
    except BaseException:
        os.close(r_out)
        os.close(r_err)
        raise
    finally:
        os.close(w_out)
        os.close(w_err)
    return pid, r_out, r_err


def _collect(pid: int, r_out: int, r_err: int) -> tuple[int, bytes, bytes]:
    """Read a ``_start``-ed command's output to its end and reap it: (exit code, out, err)."""
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


class Status:
    """``git status`` of the repository holding ``cwd``, started now and read later.

    ``start()`` starts git on the script's thread (a posix_spawn: ~0.2 ms) so
    that git runs on another core at once, while the script goes on; the
    code-state thread reads its output (``result``). Starting it on that thread
    instead waits for the thread to get the GIL from a busy script first.
    """

    STATUS = ("status", "--porcelain=v2", "--branch", "--no-ahead-behind", "-z", "--untracked-files=all")

    def __init__(self, cwd: str, exclude: str | None = None, start: bool = True):
        self.top = find_top(cwd)
        self.specs = _pathspecs(self.top, exclude) if self.top else []
        self._started = None
        if self.top and start and hasattr(os, "posix_spawnp"):
            try:
                self._started = _start(("git", "-C", self.top, *self.STATUS, "--", *self.specs), _env())
            except Exception:  # git missing, no fds left: result() runs it again and says what failed
                self._started = None

    def result(self) -> bytes:
        """git's output (GitError when git is missing or fails)."""
        if self._started is not None:
            started, self._started = self._started, None
            return _finish_git("status", _collect(*started), True)
        return _git(self.top, *self.STATUS, "--", *self.specs)


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


def capture(cwd: str, run_dir: str | None, exclude: str | None = None,
            status: Status | None = None) -> dict | None:
    """The code state of the repository holding ``cwd``, or None outside one.

    Writes ``code.patch`` into ``run_dir`` when the tree has uncommitted changes.
    Raises GitError when git is missing or fails inside a repository. ``status``:
    its ``git status``, already started (``Status``).
    """
    status = status or Status(cwd, exclude, start=False)
    top, specs = status.top, status.specs
    if top is None:
        return None
    st = parse_status(status.result())
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
