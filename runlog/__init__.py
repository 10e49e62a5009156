"""runlog: one call at the top of a training script records the run and reports it.

    import runlog
    runlog.start()

``import runlog`` does nothing but define these functions; the work (and the
imports it needs) starts in ``start()``. One documented exception: when
``--note`` is on the command line, it is taken out of ``sys.argv`` here, so a
script that parses its arguments before ``start()`` does not reject it. The working
directory is read (not changed), for a script that changes it before ``start()``.
"""

from __future__ import annotations

import sys as _sys

__version__ = "0.1.0"
__all__ = ["start", "finish", "current", "metric", "log_metrics", "add_note", "Run"]


def start(args=None, *, note=None, name=None, tags=(), log_dir=None, level="INFO",
          console=True, capture_output=True, copy=False, git=True, resume=None):
    """Start recording a run: log file, arguments, note, code state, report at exit.

    ``resume``: the id (or prefix, or -1) of a run to continue in this process, as a
    requeued job does by itself (README: "Preemption and resume").
    If runlog itself fails (read-only disk, …) it says so once on stderr and
    returns a run that records nothing, so the script goes on.
    """
    try:
        # inside `runlog run`, a rank, or multiprocessing's worker running the script again
        if any(v in _JOIN_ENV for v in _os_environ()) or _in_mp_worker():
            from . import joined

            joins, rank = joined.applies()
            if joins:
                from .args.config import config_args
                from .console import level_number

                return joined.join(config_args(args) if args is not None else None, note,
                                   level_number(level), console, rank, capture_output)
        from .run import start as start_run

        return start_run(args, note=note, name=name, tags=tags, log_dir=log_dir, level=level,
                         console=console, capture_output=capture_output, copy=copy, git=git,
                         resume=resume)
    except (ValueError, TypeError):
        raise  # the caller's own mistake (a bad level, an unusable args object)
    except Exception as e:
        from . import active, joined
        from .console import say

        why = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.strerror else e
        say(f"could not start the run ({why}); the script goes on unrecorded")
        run = joined.ConsoleRun(console=console)
        active.set(run)
        return run


_JOIN_ENV = frozenset(("RANK", "LOCAL_RANK", "RUNLOG_RUN_DIR", "RUNLOG_RUN_ID",
                       "RUNLOG_OWNER_DIR"))  # joined.JOIN_ENV


def _in_mp_worker() -> bool:
    if "multiprocessing" not in _sys.modules:
        return False
    from .args.frames import in_reimported_main

    return in_reimported_main()


def _os_environ():
    import os

    return os.environ


def current():
    """The active run of this process, or None."""
    active = _sys.modules.get("runlog.active")
    return active.get() if active is not None else None


def finish(status=None) -> None:
    """Finish the active run now (it is also finished at exit). Idempotent."""
    run = current()
    if run is not None:
        run.finish(status)


_warned = False


def _active_or_warn(what: str):
    global _warned
    run = current()
    if run is None and not _warned:
        _warned = True
        from .console import say

        say(f"runlog.{what}() was called with no active run (call runlog.start() first); ignored")
    return run


def metric(name, value, step=None) -> None:
    """Record a metric point on the active run."""
    run = _active_or_warn("metric")
    if run is not None:
        run.metric(name, value, step)


def log_metrics(values, step=None) -> None:
    """Record several metric points on the active run."""
    run = _active_or_warn("log_metrics")
    if run is not None:
        run.log_metrics(values, step)


def add_note(text) -> None:
    """Append a note to the active run."""
    run = _active_or_warn("add_note")
    if run is not None:
        run.add_note(text)


def _take_note_early() -> None:
    # A script that parses its arguments before start() would have argparse
    # reject --note; so, only when --note is on the command line, take it out now.
    argv = getattr(_sys, "argv", None) or []
    if len(argv) < 2 or argv[0] in ("-m", "-c", "") or argv[0].endswith(
            ("runlog", "runlog/__main__.py")):  # runlog's own command line keeps its --note
        return
    for a in argv[1:]:
        if a == "--":
            return
        if a == "--note" or a.startswith("--note="):
            from .args import note

            note.strip_from_argv()
            return


_take_note_early()

# where the process is now: a script that changes directory before start() was started
# here if its sys.argv[0] says so (args/startdir.py checks it)
try:  # os is loaded already (site): no import of runlog's own modules here
    _cwd_at_import = _sys.modules["os"].getcwd()
except (OSError, KeyError):
    _cwd_at_import = None


def __getattr__(name):
    if name == "Run":
        from .run import Run

        return Run
    raise AttributeError(f"module 'runlog' has no attribute {name!r}")
