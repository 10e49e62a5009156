"""Where the command was started, when the script changed directory before ``start()``.

A script started as ``python src/train.py`` that runs
``os.chdir(os.path.dirname(os.path.abspath(__file__)))`` first is in ``src/`` when the
run starts: ``cwd`` (where its relative paths now point) is ``src/``, but the command
only runs again from the directory it was typed in. That directory is not kept by the
process; it is taken from what can be checked against the script itself:

- ``sys.path[0]`` for ``python -m pkg.mod`` (Python puts the starting directory there,
  unless ``-P``): accepted when ``pkg/mod.py`` below it is the module that runs;
- the working directory when ``runlog`` was imported, and ``$PWD`` (the shell's, which
  a program starting another with a different working directory does not change):
  accepted when ``sys.argv[0]`` relative to it is the script.

Each only when the command would not run from the working directory now, so a run that
did not move records nothing. None when nothing can be known for sure.
"""

from __future__ import annotations

import os
import sys

def _at_import() -> str | None:
    """The working directory when ``runlog`` was imported (``runlog/__init__.py`` keeps it)."""
    return getattr(sys.modules.get("runlog"), "_cwd_at_import", None)


def started_in() -> str | None:
    """The directory to start the command from again, when it is not the working directory
    now and is known for sure; else None (also when ``sys.argv`` or ``sys.path`` is odd)."""
    try:
        return _started_in()
    except Exception:
        return None


def _started_in() -> str | None:
    now = os.getcwd()
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    if not isinstance(file, str) or not os.path.isabs(file):
        return None
    real = os.path.realpath(file)
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name and name != "__main__":  # python -m NAME
        rel = os.path.join(*name.split(".")) + ".py"
        first = sys.path[0] if sys.path and not getattr(sys.flags, "safe_path", False) else None
        candidates = [first, _at_import(), os.environ.get("PWD")]
    else:
        argv0 = sys.argv[0] if sys.argv else ""
        if not isinstance(argv0, str) or not argv0 or os.path.isabs(argv0) or argv0 in ("-c", "-m", "-"):
            return None  # an absolute script path runs from anywhere
        rel = argv0
        candidates = [_at_import(), os.environ.get("PWD")]
    if _is(os.path.join(now, rel), real):
        return None
    for c in candidates:
        if isinstance(c, str) and os.path.isabs(c) and _is(os.path.join(c, rel), real):
            return os.path.normpath(c)
    return None


def _is(path: str, real: str) -> bool:
    try:
        return os.path.realpath(path) == real and os.path.isfile(path)
    except (OSError, ValueError):
        return False
