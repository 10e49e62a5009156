"""How a Python run learns its end: an uncaught exception, sys.exit, os._exit, SIGTERM/SIGHUP,
interpreter exit.

Each callback acts only in the process that started the run, so forked
workers (DataLoader, multiprocessing) never finish it; it tells the run's
``Outcome`` what happened and, where the process is ending, finishes the run.
The hooks themselves are installed and undone by ``patches``.
"""

from __future__ import annotations

import os
import sys

HANDLED_SIGNALS = ("SIGTERM", "SIGHUP")
# Signals that kill a process nobody handles them in, sent by schedulers and limits: Slurm's
# --signal=USR1@SECONDS warning before the time limit (a script without a handler dies of
# it), a CPU-time limit (SIGXCPU). Taken only while nobody else handles them: the run ends
# killed, then the process dies by the signal as it would have. SIGQUIT (Ctrl-\, to kill
# a process hung in C) is never taken, nor the timer signals profilers use.
DEADLY_SIGNALS = ("SIGUSR1", "SIGUSR2", "SIGXCPU")
SIGINT = 2


def install(run, patches_, interactive: bool = False, life=None) -> None:
    """Hook the exits for ``run`` (whose record ``life`` keeps). ``interactive`` (a notebook):
    cells handle their own exceptions and SystemExit, so only the signals and atexit apply."""
    import _thread
    import threading

    from . import patches
    from .sigmask import no_interrupts

    last_value = getattr(sys, "last_value", None)  # an older error, not the run's
    from .args.frames import main_module_frame, returned

    # the script's top level: once it has run, it tells whether a SystemExit ended it
    main_frame = None if interactive else main_module_frame()
    main_thread = threading.main_thread().ident

    def ends_process() -> bool:
        """Whether a SystemExit raised here can end the process: only in the main thread,
        inside the script's top level (not in a thread, not in an atexit hook of the script)."""
        if _thread.get_ident() != main_thread:
            return False
        try:
            f = sys._getframe(2) if main_frame is not None else None
        except ValueError:
            f = None
        while f is not None and f is not main_frame:
            f = f.f_back
        return main_frame is None or f is not None

    def on_exception(exc_type, exc, tb):
        if run.owned_here():
            run.outcome.exit_caught()  # an uncaught exception ends it, not a SystemExit caught before
            run.record_exception(exc_type, exc, tb)

    def on_exit(status):
        if run.owned_here() and ends_process():
            run.outcome.exited(status)
            from .args import argparse_hook

            parser = argparse_hook.parsing()
            # --help, --version or a usage error from the script's own parser: no experiment
            # ran, so the run folder is removed and no report printed (a run that has recorded
            # metrics did run: it keeps its record); another exit after a caught one: kept
            run.outcome.discard = parser is not None and (
                run.parser is None or parser is run.parser or argparse_hook.followed(parser)) \
                and not getattr(run.metrics, "summary", None)

    def on_os_exit(status):
        if run.owned_here():  # a forked worker's os._exit is its own business
            run.outcome.exited(status)
            run.finish()

    def on_signal(signum, frame, previous):
        if run.owned_here():
            if callable(previous):
                # The script handles this signal itself (say, to save a checkpoint):
                # let it decide; atexit finishes the run, marked killed, with the
                # exit code the script then chose.
                run.outcome.signalled(signum, handled=True)
                return previous(signum, frame)
            run.outcome.signalled(signum)
            try:
                run.finish()
            except Exception:
                pass
        elif callable(previous):
            return previous(signum, frame)
        _die_by(signum)

    def _ending():
        # an uncaught exception whose excepthook is no longer ours (set after
        # start(), by the script or a library): Python left it in sys.last_value
        exc = getattr(sys, "last_value", None)
        if run.outcome.error is None and not interactive and exc is not None \
                and exc is not last_value:
            run.outcome.exit_caught()
            try:
                run.record_exception(type(exc), exc, exc.__traceback__)
            except Exception:  # the error's text is lost, never the end of the record
                pass
        by_ctrl_c = main_frame is not None and _left_by_ctrl_c(main_frame, last_value)
        if by_ctrl_c:  # the process dies by SIGINT, as under `runlog run`: the record says so
            run.outcome.signalled(SIGINT)
        o = run.outcome
        if (o.exit_status is not None or o.error is not None) and main_frame is not None \
                and returned(main_frame):
            # the script's top level returned: whatever SystemExit was caught (or ended
            # only a thread) or exception the script showed itself, the process exits 0
            run.outcome.ended_normally()
        run.finish()
        if life is not None and run.finished and not run.outcome.discard:
            # an atexit hook of the script still to run may end the process by os._exit
            from .amend import watch_os_exit

            watch_os_exit(life, run.outcome)

    cut_short = []  # a Ctrl-C landed in runlog's atexit hook before the finish began

    def at_exit():
        # A Ctrl-C waits through the whole end (but for the wait for git, which takes it): one
        # landing in an import could leave its lock held, and the threads still capturing the
        # code state would wait for it forever (SIGTERM still acts); one landing between the
        # record's last write and the decision below would have the process exit 0 while the
        # record says interrupted. One held until the end is the end's own: the end is told.
        try:
            with no_interrupts((SIGINT,)):
                _at_exit_held()
        except KeyboardInterrupt:  # pending as the hook began, or delivered as the hold ends
            if run.owned_here() and not run.finished:
                try:
                    with no_interrupts((SIGINT,)):
                        _cut_short()
                        _decide()
                except KeyboardInterrupt:
                    pass

    def _at_exit_held():
        try:
            if not run.owned_here():
                return
            _ending()
        except KeyboardInterrupt:  # a Ctrl-C before the finish began: finish, interrupted
            if run.owned_here():
                _cut_short()
        except BaseException as e:  # a second Ctrl-C here must not lose the record
            from .console import say

            say(f"could not finish the run ({type(e).__name__}: {e})")
        _decide()

    def _cut_short():
        cut_short.append(True)
        try:
            with no_interrupts():  # a second Ctrl-C waits (but while git is waited for)
                if run.outcome.error is None:
                    run.outcome.exception(KeyboardInterrupt, KeyboardInterrupt(), None)
                run.finish()
        except BaseException as e:
            if not run.finished:
                from .console import say

                say(f"could not finish the run ({type(e).__name__}: {e})")

    def _decide():
        """The process ends as the record says: by SIGINT when a Ctrl-C ended the run."""
        by_ctrl_c = main_frame is not None and _left_by_ctrl_c(main_frame, last_value)
        if not by_ctrl_c and life is not None and (cut_short or life.interrupted) and run.finished \
                and run.pid == os.getpid() and life.record.get("status") == "interrupted" \
                and not life.record.get("signal"):
            # a Ctrl-C cut the end short (the wait for git): the record says interrupted, 130,
            # and so does the exit status — the process dies by SIGINT, as a Ctrl-C would
            from .amend import died_by_sigint

            by_ctrl_c = died_by_sigint(life)
        if by_ctrl_c:
            _still_die_by_sigint()

    if not interactive:
        from .coexist import excepthook

        patches_.apply("excepthook", excepthook, on_exception, run)
        patches_.apply("sys_exit", patches.sys_exit, on_exit)
        patches_.apply("os_exit", patches.os_exit, on_os_exit)
    patches_.apply("signals", patches.signals, HANDLED_SIGNALS, on_signal)
    patches_.apply("signals", patches.signals, DEADLY_SIGNALS, on_signal, True)
    patches_.apply("signal_module", patches.signal_module, HANDLED_SIGNALS, DEADLY_SIGNALS, on_signal)
    life = run._life
    if life is not None and life.log is not None:
        from .patches_exit import fatal_errors  # tracebacks of fatal signals into run.log

        patches_.apply("fatal_errors", fatal_errors, life.log.fd)
    patches_.apply("atexit", patches.at_exit, at_exit)


def _die_by(signum: int) -> None:
    """End the process as the signal would have, had nobody handled it."""
    import _signal

    from .patches_exit import real_signal_functions

    try:  # not through the wrap of the script's signal(), which would put runlog's back
        real_signal_functions()[0](signum, _signal.SIG_DFL)
    except (ValueError, OSError):
        pass
    os.kill(os.getpid(), signum)


def _left_by_ctrl_c(main_frame, older) -> bool:
    """Whether the script's top level was left by a KeyboardInterrupt that Python reported
    (``sys.last_value``), not an older one: then Python ends the process by SIGINT."""
    exc = getattr(sys, "last_value", None)
    if type(exc) is not KeyboardInterrupt or exc is older:
        return False
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame is not main_frame:
        tb = tb.tb_next
    return tb is not None


def _still_die_by_sigint() -> None:
    """Python ends a process whose top level a Ctrl-C left by SIGINT, as a shell or a
    scheduler expects, through a flag that every ``exec()`` or ``eval()`` of a string clears
    first (CPython's ``run_eval_code_obj``): a namedtuple or dataclass made by code run after
    the interrupt — on 3.13 formatting its traceback imports ``tokenize``, which makes one —
    had the process exit with 1. Code from a string that ends in KeyboardInterrupt sets it again."""
    try:
        exec("raise KeyboardInterrupt", {})
    except KeyboardInterrupt:
        pass
