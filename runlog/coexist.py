"""Living with the other tools of a training script (W&B, ...) that hook what runlog hooks.

People move to runlog from W&B, MLflow or TensorBoard and run both for a while: the other
tool hooks the same exits and streams, in either order. What runlog adds for that lives here.
"""

from __future__ import annotations

import sys


def excepthook(on_exception, run):
    """``patches.excepthook``, except that Python's own printer, when it is the hook runlog's
    calls on, does not print again a traceback that a hook set on top of runlog's has just
    printed.

    wandb's hook (``wandb.init()`` after ``start()``) prints the traceback, then calls the
    hook it found unless that is ``sys.__excepthook__``: it found runlog's, which called
    Python's printer, so the traceback came twice, on the terminal and in run.log. Called by
    Python itself (nobody above runlog's hook), the printer always prints."""
    from . import patches

    if sys.excepthook is not sys.__excepthook__:
        return patches.excepthook(on_exception)
    ours = []

    def python_printer(exc_type, exc, tb):
        if (ours and sys.excepthook is ours[0]) or not _just_shown(run, exc_type, exc, tb):
            sys.__excepthook__(exc_type, exc, tb)

    python_printer._runlog_undone = True  # never left behind: the undo puts back Python's own
    python_printer._runlog_previous = sys.__excepthook__
    sys.excepthook = python_printer
    try:
        undo = patches.excepthook(on_exception)
    finally:
        if sys.excepthook is python_printer:  # not installed after all
            sys.excepthook = sys.__excepthook__
    ours.append(sys.excepthook)
    return undo


def _just_shown(run, exc_type, exc, tb) -> bool:
    """Whether the last lines written to the run's stderr are this exception's traceback."""
    try:
        import traceback

        for tee in list(getattr(run, "_tees", ())):
            errors = getattr(tee, "_errors", None)
            if errors is None or errors.block is None or tee._pending:
                continue
            text = "".join(traceback.format_exception(exc_type, exc, tb)).rstrip("\n")
            return errors.block == text.split("\n")
    except Exception:
        pass
    return False


def std_stream(name: str, tee):
    """``patches.std_stream`` for a tee, except that the run's end leaves in place a tee whose
    own ``write`` another tool has replaced since, passing writes through.

    wandb, imported after ``start()``, replaces the ``write`` of the ``sys.stdout`` it finds
    (runlog's tee) to capture the console, for good. Putting the real stream back at the
    run's end would silently end wandb's capture of everything printed after it."""
    from . import patches

    undo = patches.std_stream(name, tee)

    def undo_unless_written_through():
        if getattr(sys, name, None) is tee and "write" in vars(tee):
            tee._runlog_undone = True
        else:
            undo()

    return undo_unless_written_through
