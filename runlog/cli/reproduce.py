"""``runlog reproduce RUN [DIR] [--run]``: the run's code, as it ran, in a copy of its own.

The copy is a detached ``git worktree`` at the recorded commit with the saved
``code.patch`` applied (see ``runlog.copies``); the user's work tree, index,
HEAD and branches stay as they are. Then the environment now is checked
against the recorded one, and the command to re-run it there is printed;
``--run`` runs it there as a new run in the original's log directory, whose
record says ``reproduces: ID`` and which is compared with the original.
"""

from __future__ import annotations

import os
import tempfile

from .. import copies
from .. import git as gitstate
from ..fmt import command_line, printable, quote, shown_path
from ..folder.layout import RunFolder
from ..folder.record import start_dir
from ..mask import MASK
from ..report import env_settings, env_words
from .common import CliError, load, out


def rerun_words(rec: dict) -> list[str]:
    """The recorded command without a ``runlog run [options] --`` around it, its ``python``
    the interpreter the run used (``env.executable``) when that is still there: the same
    virtual environment, whichever is active in this shell."""
    cmd = [str(w) for w in rec.get("command") or []]
    if cmd[:2] == ["runlog", "run"] and "--" in cmd:
        cmd = cmd[cmd.index("--") + 1:]
    env = rec.get("env") if isinstance(rec.get("env"), dict) else {}
    exe = env.get("executable")
    if cmd and os.path.basename(cmd[0]).startswith("python") and isinstance(exe, str) \
            and os.path.isfile(exe) and os.access(exe, os.X_OK):
        cmd[0] = exe
    return cmd


def default_dir(top: str, run_id: str) -> str:
    """Next to the repository, never inside it (it would show in its ``git status``)."""
    return os.path.join(os.path.dirname(top), f"{os.path.basename(top)}-{run_id}")


def _repository(rec: dict) -> tuple[str, str]:
    """(the repository's top, the run's working directory relative to it)."""
    cwd = rec.get("cwd")
    top = gitstate.find_top(cwd) if cwd else None
    if top is not None:
        return top, os.path.relpath(cwd, top)
    top = gitstate.find_top(os.getcwd())
    if top is None:
        raise CliError(f"the repository of run {rec['id']} ({cwd}) is gone; run this inside a clone of it")
    return top, "."


def _start(rec: dict, top: str, rel_cwd: str, words: list[str]) -> tuple[str, list[str]]:
    """The directory to run the command from, relative to the repository's top, and the
    command. A script that changed directory before ``start()`` runs from where it was
    started (``started_in``); started outside the repository (``python proj/train.py``),
    from the top, its script named from there."""
    where = rec.get("started_in")
    if not isinstance(where, str) or not where or not rec.get("cwd"):
        return rel_cwd, words
    rel = os.path.relpath(os.path.realpath(where), os.path.realpath(top))
    if not rel.startswith(".."):
        return rel, words
    script = rec.get("script")
    if isinstance(script, str) and not os.path.isabs(script) and script in words[1:]:
        inside = os.path.relpath(os.path.realpath(os.path.join(where, script)), os.path.realpath(top))
        if not inside.startswith(".."):
            i = words.index(script, 1)
            return ".", [*words[:i], inside, *words[i + 1:]]
    return rel_cwd, words


def _checks(rec: dict, force: bool) -> tuple[dict, str | None, copies.Patch]:
    """The recorded code state, refused with one line when a copy cannot be made of it."""
    rid = rec["id"]
    g = rec.get("git")
    if not isinstance(g, dict):
        raise CliError(f"run {rid} recorded no code state (git=False, or not in a git repository)")
    if not g.get("commit"):
        raise CliError(f"run {rid} ran before the repository's first commit: no commit to check out")
    patch_path = os.path.abspath(RunFolder(rec["dir"]).file(g["patch"])) if g.get("patch") else None
    if patch_path and not os.path.isfile(patch_path):
        raise CliError(f"the saved changes of run {rid} ({patch_path}) are gone")
    patch = copies.read_patch(patch_path, bool(g.get("patch_truncated")))
    if g.get("patch_truncated") and not force:
        raise CliError(f"the saved patch of run {rid} was cut at 1 MB: a copy would lack part of its "
                       "changes (--force makes it anyway, without the cut part)")
    if patch.binary and not force:
        raise CliError(f"run {rid} changed binary files the patch does not hold "
                       f"({', '.join(patch.binary[:3])}): a copy would differ (--force makes it anyway)")
    return g, patch_path, patch


def _dest(dest: str | None, top: str, rid: str) -> str:
    dest = os.path.abspath(dest or default_dir(top, rid))
    inside = os.path.relpath(dest, top)
    if not inside.startswith(".."):
        raise CliError(f"{dest} is inside the repository at {top}: the copy would show in its "
                       "git status; give a DIR outside it")
    return dest


def _is_copy(dest: str, commit: str, patch_path: str | None) -> dict | None:
    """The check of an existing DIR that is already this run's copy, unchanged; else None."""
    if gitstate.find_top(dest) != dest:
        return None
    try:
        if copies.run_git(dest, "rev-parse", "HEAD").strip() != commit:
            return None
        with tempfile.TemporaryDirectory(prefix="runlog-") as scratch:
            check = copies.check_copy(dest, commit, patch_path, scratch)
    except gitstate.GitError:
        return None
    return check if check and check.get("exact") and not check.get("files") else None


def reproduce(root: str, spec: str | None, dest: str | None = None, *, run: bool = False,
              force: bool = False, note: str | None = None) -> int:
    root = os.path.abspath(root)
    rec = load(root, spec)
    rid = rec["id"]
    g, patch_path, patch = _checks(rec, force)
    top, rel_cwd = _repository(rec)
    try:
        if not copies.has_commit(top, g["commit"]):
            raise CliError(f"commit {g['short']} of run {rid} is not in the repository at {top} "
                           "any more (rewritten, or not fetched here)")
        dest = _dest(dest, top, rid)
        kind = "existing"
        check = None
        if os.path.exists(dest) and (not os.path.isdir(dest) or os.listdir(dest)):
            check = _is_copy(dest, g["commit"], patch_path) if run else None
            if check is None:
                why = f"is not an unchanged copy of run {rid}" if run else "is not empty"
                raise CliError(f"{dest} exists and {why}; give another DIR")
        else:
            kind, check = _make(top, dest, g, patch_path, patch, rid)
    except gitstate.GitError as e:
        raise CliError(str(e)) from None
    rel, words = _start(rec, top, rel_cwd, rerun_words(rec))
    work = os.path.normpath(os.path.join(dest, rel))
    os.makedirs(work, exist_ok=True)  # a folder holding only ignored or untracked-unsaved files
    lines = [_made(rec, g, dest, kind, patch)]
    lines += _faithful(check, patch)
    missing = _missing_arg_files(rec, words, work)
    lines += [f"  {w[1:]} (read as {w} in the command) is not in the copy (not in git): "
              "copy it there" for w in missing]
    env = _environment(rec, words, os.path.normpath(os.path.join(dest, rel_cwd)))
    lines += ["Environment now vs recorded:"] + [f"  {d}" for d in env] if env else \
        ["Environment: same Python and package versions as recorded"]
    note_text = note or f"reproduces {rid}"
    lines += _how_to_rerun(rec, dest, work, root, words, note_text, run)
    out("\n".join(lines) + "\n")
    if not run:
        return 0
    if not words:
        raise CliError(f"run {rid} recorded no command (a notebook?): nothing to run")
    if MASK in words:
        raise CliError(f"the recorded command of run {rid} has secrets masked ({MASK}): "
                       "run it by hand, with them, from the line above")
    if missing:
        raise CliError(f"{missing[0][1:]}, which the command reads ({missing[0]}), is not in the copy: "
                       f"copy it to {shown_path(work, os.getcwd())} and run this again")
    _set_environment(rec)
    from .runcmd import run_command

    os.chdir(work)
    return run_command(root, words, note=note_text, name=rec.get("name"), tags=rec.get("tags") or (),
                       reproduces=rid)


def _set_environment(rec: dict) -> None:
    """The environment variables that gave the run arguments, set again from the record
    (values later in the command's own environment do not win over them). A secret runlog
    masked is not replayed: the value this shell has is used, and said so; none is an error."""
    values, masked = env_settings(rec)
    for name in masked:
        if name not in os.environ:
            raise CliError(f"{name} gave run {rec['id']} an argument runlog masked as a secret: "
                           f"set it in this shell (export {name}=...) and run this again")
        out(f"  {name}: a secret runlog masked; the value set in this shell is used\n")
    os.environ.update(values)


def _missing_arg_files(rec: dict, words: list[str], work: str) -> list[str]:
    """The ``@file`` words (argparse's ``fromfile_prefix_chars``) of the command whose file
    is not in the copy: an ignored or large file the patch does not hold."""
    sources = set((rec.get("args_source") or {}).values())
    start = start_dir(rec) or ""
    return [w for w in words[1:] if len(w) > 1 and w[0] == "@"
            and not os.path.isfile(os.path.join(work, w[1:]))
            and (w[1:] in sources or os.path.isfile(os.path.join(start, w[1:])))]


def _make(top: str, dest: str, g: dict, patch_path: str | None, patch: copies.Patch,
          rid: str) -> tuple[str, dict | None]:
    made_parent = not os.path.isdir(os.path.dirname(dest))
    kind = copies.make_copy(top, dest, g["commit"])
    try:
        copies.apply_patch(dest, patch)
    except gitstate.GitError as e:
        copies.remove_copy(top, dest, kind)
        if made_parent:
            _rmdir_quiet(os.path.dirname(dest))
        raise CliError(f"the saved changes of run {rid} do not apply to {g['short']} ({e}); "
                       "nothing was made") from None
    with tempfile.TemporaryDirectory(prefix="runlog-") as scratch:
        return kind, copies.check_copy(dest, g["commit"], patch_path, scratch)


def _rmdir_quiet(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _made(rec: dict, g: dict, dest: str, kind: str, patch: copies.Patch) -> str:
    what = f"{g['short']}"
    n = len(patch.parts) - len(patch.binary)
    if n:
        what += f" + {g['patch']} ({n} file{'s' if n != 1 else ''})"
    how = {"worktree": "a git worktree (`git worktree remove` deletes it)",
           "clone": "a shared clone (git refused a worktree)",
           "existing": "made before, unchanged"}[kind]
    return f"Copy of run {rec['id']} at {shown_path(dest, os.getcwd())}: {what}, {how}"


def _faithful(check: dict | None, patch: copies.Patch) -> list[str]:
    lines = []
    if check and check.get("exact") and not check.get("files"):
        lines.append("  its files are the recorded code state (commit + saved changes)")
    elif check and check.get("files"):
        shown = ", ".join(p for p, _, _ in check["files"][:6])
        lines.append(f"  differs from the recorded state in: {shown}")
    for label, paths in (("not saved in the patch (large or binary), so not in the copy",
                          patch.not_saved),
                         ("binary changes not in the copy", patch.binary),
                         ("the patch was cut here; not in the copy", patch.cut)):
        if paths:
            more = f" +{len(paths) - 6}" if len(paths) > 6 else ""
            lines.append(f"  {label}: {', '.join(paths[:6])}{more}")
    return lines


def _environment(rec: dict, words: list[str], work: str) -> list[str]:
    from .envcheck import differences

    return differences(rec, words, work)


def _how_to_rerun(rec: dict, dest: str, work: str, root: str, words: list[str], note: str,
                  run: bool) -> list[str]:
    if not words:
        return ["No command was recorded (a notebook?): open the copy and run it from there."]
    cmd = [str(w) for w in rec.get("command") or []]
    if cmd[:2] == ["runlog", "run"]:
        options = cmd[2:cmd.index("--")] if "--" in cmd else []
        shown = command_line(["runlog", "run", "--note", note, *options, "--", *words])
    else:
        shown = f"{command_line(words)} --note {quote(note)}"
    values, masked = env_settings(rec)
    env = env_words({**values, **{k: MASK for k in masked}})
    where = quote(shown_path(work, os.getcwd()))
    lines = ["Re-run it there:" if not run else "Running it there as a new run:",
             f"  cd {where} && RUNLOG_DIR={quote(root)} {printable(env)}{shown}"]
    if MASK in words or masked:
        lines.append(f"  (values runlog masked as {MASK} are secrets: put them back)")
    if not run:
        lines.append(f"  or `runlog reproduce {rec['id']} {quote(shown_path(dest, os.getcwd()))} --run`: "
                     f"a run that records `reproduces: {rec['id']}` and is compared with it")
    return lines
