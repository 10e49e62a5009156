"""The exit paths: sys.excepthook, sys.exit, SIGTERM/SIGHUP and atexit.

Every hook chains to what was there before and acts only in the process that
started the run, so forked workers (DataLoader, multiprocessing) never finish
it. Installed once per run by ``Run``; removed at finish where still ours.
"""

from __future__ import annotations

import atexit
import os
try:  # the C module: the same functions without building signal's enums (~1 ms)
    import _signal as signal
except ImportError:  # pragma: no cover - not CPython
    import signal
import sys
import traceback

_run = None  # the run these hooks serve
_prev_excepthook = None
_prev_exit = None
_prev_signals: dict[int, object] = {}
_atexit_registered = False
exit_code_hint = None  # what the script passed to sys.exit()
_interactive = False
_last_value = None  # sys.last_value when the run started: an older error, not the run's
HANDLED_SIGNALS = ("SIGTERM", "SIGHUP")


def error_info(exc_type, exc, tb) -> dict:
    """type, message and where, plus the last lines of the traceback."""
    lines = "".join(traceback.format_exception(exc_type, exc, tb)).rstrip("\n").splitlines()
    where = None
    frames = traceback.extract_tb(tb) if tb is not None else []
    if frames:
        f = frames[-1]
        where = f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}"
    return {
        "type": exc_type.__name__,
        "message": str(exc)[:2000],
        "where": where,
        "traceback": lines[-20:],
    }


def _ours(run) -> bool:
    return run is not None and run is _run and run.pid == os.getpid() and not run.finished


def _excepthook(exc_type, exc, tb):
    run = _run
    if _ours(run):
        try:
            run._note_exception(exc_type, exc, tb)
        except Exception:
            pass
    hook = _prev_excepthook or sys.__excepthook__
    hook(exc_type, exc, tb)


def _exit(status=None):
    global exit_code_hint
    exit_code_hint = status
    run = _run
    if _ours(run):
        caller = sys._getframe(1)
        if caller.f_code.co_name == "exit" and caller.f_globals.get("__name__") == "argparse":
            # --help, --version or a usage error from the script's own parser
            parser = caller.f_locals.get("self")
            if run._parser is None or parser is run._parser:
                run._exit_in_parse(status)
    (_prev_exit or _raise_exit)(status)


def _raise_exit(status=None):
    raise SystemExit(status)


def _on_signal(signum, frame):
    run = _run
    prev = _prev_signals.get(signum, signal.SIG_DFL)
    if _ours(run):
        run._signal = signum
        if callable(prev):
            # The script handles this signal itself (say, to save a checkpoint):
            # let it decide; atexit finishes the run, marked killed, with the
            # exit code the script then chose.
            run._signal_handled = True
            return prev(signum, frame)
        try:
            run.finish()
        except Exception:
            pass
    elif callable(prev):
        return prev(signum, frame)
    # die as the signal would have killed us
    try:
        signal.signal(signum, signal.SIG_DFL)
    except (ValueError, OSError):
        pass
    os.kill(os.getpid(), signum)


def _at_exit():
    run = _run
    if _ours(run):
        try:
            # an uncaught exception whose excepthook is no longer ours (set after
            # start(), by the script or a library): Python left it in sys.last_value
            exc = getattr(sys, "last_value", None)
            if run._error is None and not _interactive and exc is not None and exc is not _last_value:
                run._note_exception(type(exc), exc, exc.__traceback__)
            run.finish()
        except Exception as e:
            from .logsetup import _say

            _say(f"could not finish the run ({e})")


def install(run, interactive: bool = False) -> None:
    """Hook the exits. ``interactive`` (a notebook): cells handle their own
    exceptions and SystemExit, so only atexit and the signals apply."""
    global _run, _prev_excepthook, _prev_exit, _atexit_registered, exit_code_hint
    global _interactive, _last_value
    _run = run
    exit_code_hint = None
    _interactive = interactive
    _last_value = getattr(sys, "last_value", None)
    if sys.excepthook is not _excepthook and not interactive:
        _prev_excepthook = sys.excepthook
        sys.excepthook = _excepthook
    if sys.exit is not _exit and not interactive:
        _prev_exit = sys.exit
        sys.exit = _exit
    if not _atexit_registered:
        atexit.register(_at_exit)
        _atexit_registered = True
    import threading

    if threading.current_thread() is threading.main_thread():
        for name in HANDLED_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                prev = signal.getsignal(signum)
                if prev in (signal.SIG_IGN, _on_signal) or prev is None:
                    continue  # ignored on purpose (nohup), or set outside Python
                signal.signal(signum, _on_signal)
                _prev_signals[signum] = prev
            except (ValueError, OSError):
                pass


def uninstall(run) -> None:
    """Put back what install() replaced, where nobody has replaced it since."""
    global _run, _prev_excepthook, _prev_exit
    if run is not _run:
        return
    _run = None
    if sys.excepthook is _excepthook:
        sys.excepthook = _prev_excepthook or sys.__excepthook__
        _prev_excepthook = None
    if sys.exit is _exit and _prev_exit is not None:
        sys.exit = _prev_exit
        _prev_exit = None
    for signum, prev in list(_prev_signals.items()):
        try:
            if signal.getsignal(signum) is _on_signal:
                signal.signal(signum, prev)
            del _prev_signals[signum]
        except (ValueError, OSError):
            pass  # not the main thread: leave ours, it only chains once the run is gone


def exit_status(error: dict | None, signum: int | None, code,
                handled: bool = False) -> tuple[str, int | None]:
    """(status, exit_code) from how the script ended.

    ``handled``: the script's own handler took the signal and the process
    then ended its own way, so the exit code is the one it ended with.
    """
    if signum is not None:
        if not handled:
            return "killed", 128 + signum
        return "killed", exit_status(error, None, code)[1]
    if error is not None:
        if error.get("type") == "KeyboardInterrupt":
            return "interrupted", 130
        return "failed", 1
    if code is None or code == 0:
        return "finished", 0
    if isinstance(code, int):
        return "failed", code
    return "failed", 1
