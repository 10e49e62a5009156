"""Loaded by every Python program started under ``runlog run`` (through PYTHONPATH).

It records the program's argparse arguments into the run without any change
to the program, the way Guild AI captures flags, then hands over to any other
``sitecustomize`` the environment has. It never raises.
"""

import os
import sys


def _runlog_boot() -> None:
    if not os.environ.get("RUNLOG_RUN_DIR"):
        return
    try:
        from runlog import joined
    except ImportError:
        return  # runlog is not installed for this interpreter: the run still has its output
    try:
        joined.boot()
    except Exception as e:  # never stop the user's program
        sys.stderr.write(f"runlog: could not hook into {sys.argv[0] if sys.argv else 'python'} ({e})\n")


def _chain() -> None:
    """Run the sitecustomize this one shadows, if there is one."""
    here = os.path.dirname(os.path.abspath(__file__))
    mine = sys.modules.pop("sitecustomize", None)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        import sitecustomize  # noqa: F401
    except ImportError:
        if mine is not None:
            sys.modules["sitecustomize"] = mine
    except Exception as e:
        sys.stderr.write(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{e!r}\n")
    finally:
        sys.path[:] = saved


_runlog_boot()
_chain()
