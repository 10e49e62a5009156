"""``runlog note``: append a timestamped note to a run; never rewrite one."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile

from .. import store
from .common import CliError, all_runs, find, out


# a shorter first word ("20 epochs is enough") is the note's, even if it prefixes a run id
MIN_PREFIX = 8


def _from_editor() -> str:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".md", prefix="runlog-note-", delete=False) as f:
        path = f.name
    try:
        try:
            rc = subprocess.call([*shlex.split(editor), path])
        except OSError as e:
            raise CliError(f"could not start the editor {editor!r} ({e.strerror or e}); "
                           "give the note as TEXT or set $EDITOR") from None
        if rc != 0:
            raise CliError(f"the editor {editor!r} exited with {rc}; no note added")
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    finally:
        os.unlink(path)


def note(root: str, words: list[str]) -> int:
    runs = all_runs(root)
    spec = None
    text_words = list(words)
    if len(words) >= 2:
        if words[0].startswith("-") and words[0][1:].isdigit():
            spec, text_words = words[0], words[1:]  # -N always names a run
        elif len(words[0]) >= MIN_PREFIX or _looks_like_run(words[0], runs):
            try:
                store.resolve(root, words[0], runs)
                spec, text_words = words[0], words[1:]
            except store.NoSuchRun as e:
                if any(r["id"].startswith(words[0]) for r in runs):
                    raise CliError(str(e)) from None  # meant a run, but which?
                # not a run: the first word of the note
    elif len(words) == 1 and _looks_like_run(words[0], runs):
        spec, text_words = words[0], []
    entry = find(root, spec, runs)
    text = " ".join(text_words).strip()
    if not text:
        if not sys.stdin.isatty() and not os.environ.get("EDITOR") and not os.environ.get("VISUAL"):
            raise CliError("no note given: runlog note [RUN] TEXT (or set $EDITOR)")
        text = _from_editor()
        if not text:
            raise CliError("empty note; nothing added")
    run_dir = entry.get("dir") or os.path.join(root, entry["id"])
    try:
        store.add_note(run_dir, text, root=root)
    except OSError as e:
        raise CliError(f"could not write the note to {run_dir} ({e.strerror or e})") from None
    out(f"noted on {entry['id']}\n")
    return 0


def _looks_like_run(word: str, runs: list[dict]) -> bool:
    if word.startswith("-") and word[1:].isdigit():
        return True
    return any(r["id"] == word for r in runs)
