"""``runlog note``: append a timestamped note to a run; never rewrite one."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile

from ..folder import index, notes
from .common import CliError, check_root, find, folder, is_id, is_run, out


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
    check_root(root)
    spec = None
    text_words = list(words)
    first = words[0] if words else ""
    minus_n = index.minus_n(first) is not None  # -N always names a run
    if len(words) >= 2 and (minus_n or ((len(first) >= MIN_PREFIX or _is_id(root, first))
                                        and is_run(root, first))):
        spec, text_words = first, words[1:]  # a prefix of several runs: find() says which
    elif len(words) == 1 and (minus_n or _is_id(root, first)):
        spec, text_words = first, []  # the editor, for that run
    entry = find(root, spec)
    text = " ".join(text_words).strip()
    if not text:
        if not sys.stdin.isatty() and not os.environ.get("EDITOR") and not os.environ.get("VISUAL"):
            raise CliError("no note given: runlog note [RUN] TEXT (or set $EDITOR)")
        text = _from_editor()
        if not text:
            raise CliError("empty note; nothing added")
    run_dir = folder(root, entry).path
    try:
        block = notes.append(run_dir, text)
        index.append_note(root, entry["id"], block)
    except ValueError as e:
        raise CliError(str(e)) from None
    except OSError as e:
        raise CliError(f"could not write the note to {run_dir} ({e.strerror or e})") from None
    out(f"noted on {entry['id']}\n")
    return 0


def _is_id(root: str, word: str) -> bool:
    return is_id(root, word)
