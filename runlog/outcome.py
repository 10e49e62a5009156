"""How a run ended: the one status table, and the Outcome a run is told as it ends.

A Python process tells its Outcome through exit hooks (an exception, sys.exit,
a signal); ``runlog run`` from its program's exit status and the signals it
was sent. Both resolve through ``status_of``.
"""

from __future__ import annotations

import os

from .folder import record

SIGINT, SIGTERM, SIGHUP = 2, 15, 1

# The statuses a run ends with are record.STATUSES. ``pruned`` is never derived from an exit
# code: it is what `runlog run` records when `runlog sweep --prune` stopped the trial (the sweep
# writes the file named by ``record.PRUNE_ENV`` before its SIGTERM), so the record says why.
PRUNED = "pruned"


def status_of(code: int, signum: int | None = None) -> str:
    """The one status table: from the exit code and the signal that ended the run."""
    if signum is not None:
        return "interrupted" if signum == SIGINT else "killed"
    if code == 0:
        return "finished"
    if code == 130:  # what a shell reports for a Ctrl-C, and Python for KeyboardInterrupt
        return "interrupted"
    return "failed"


def signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def error_info(exc_type, exc, tb) -> dict:
    """type, message and where, plus the last lines of the traceback."""
    import traceback

    try:  # the script's exception may fail to become text; the record still ends
        message = str(exc)
    except Exception:
        message = "<exception str() failed>"  # as Python's own traceback says it
    try:
        lines = "".join(traceback.format_exception(exc_type, exc, tb)).rstrip("\n").splitlines()
    except Exception:
        lines = [f"{getattr(exc_type, '__name__', 'Exception')}: {message}"]
    where = None
    try:
        frames = traceback.extract_tb(tb) if tb is not None else []
    except Exception:
        frames = []
    if frames:
        f = frames[-1]
        where = f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}"
    return {
        "type": getattr(exc_type, "__name__", "Exception"),
        "message": record.clean_text(message)[:2000],
        "where": where,
        "traceback": [record.clean_text(x) for x in lines[-20:]],
    }


def error_from_output(tail: list[str], code: int) -> dict:
    """The error of a program that failed, from the last lines it wrote to stderr."""
    import re

    pattern = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning)): ?(.*)$")
    for line in reversed(tail):
        m = pattern.match(line.strip())
        if m:
            return {"type": m.group(1).rsplit(".", 1)[-1], "message": m.group(2),
                    "where": None, "traceback": tail}
    return {"type": "ExitCode", "message": f"exited with code {code}", "where": None,
            "traceback": tail}


class Outcome:
    """What is known of how a run ended, told as it happens."""

    def __init__(self):
        self.error: dict | None = None
        self.signum: int | None = None
        self.signal_handled = False  # the script's own handler took the signal
        self.exit_status = None  # what the script passed to sys.exit(), or a process's code
        self.discard = False  # no experiment ran (--help, a usage error): remove the run

    def exception(self, exc_type, exc, tb) -> None:
        self.error = error_info(exc_type, exc, tb)

    def exited(self, status) -> None:
        self.exit_status = status

    def exit_caught(self) -> None:
        """The SystemExit of ``exited`` never ended the process: the script went on."""
        self.exit_status = None
        self.discard = False

    def ended_normally(self) -> None:
        """The script's top level returned: the process exits with 0, whatever SystemExit was
        caught or exception was shown (``sys.excepthook`` called by the script) on the way."""
        self.exit_caught()
        self.error = None

    def signalled(self, signum: int, handled: bool = False) -> None:
        self.signum = signum
        self.signal_handled = handled

    def process_ended(self, returncode: int, signals_seen: list[int], stderr_tail) -> None:
        """A program run by ``runlog run`` ended with ``returncode`` after ``signals_seen``."""
        if returncode < 0:
            self.signum = -returncode
            self.exit_status = 128 - returncode
        else:
            self.exit_status = returncode
            if signals_seen:
                self.signum, self.signal_handled = signals_seen[0], True
        if returncode > 0 and not signals_seen and returncode != 130:
            self.error = error_from_output(list(stderr_tail), returncode)

    def resolve(self) -> tuple[str, int, str | None]:
        """(status, exit code, signal name) — through the one table."""
        code = self._code()
        if self.signum is not None and not self.signal_handled:
            code = 128 + self.signum
        status = status_of(code, self.signum)
        s = self.exit_status
        if status == "failed" and self.error is None and not isinstance(s, int) and s is not None:
            # sys.exit("message") or any other object: Python prints it and exits with 1
            try:
                message = str(s)
            except Exception:
                message = f"<{type(s).__name__}>"
            self.error = {"type": "SystemExit", "message": record.clean_text(message)[:2000],
                          "where": None, "traceback": []}
        return status, code, signal_name(self.signum) if self.signum is not None else None

    def _code(self) -> int:
        s = self.exit_status
        if self.error is not None and s in (None, 0):
            return 130 if self.error.get("type") == "KeyboardInterrupt" else 1
        if s is None or s is False:
            return 0
        if isinstance(s, int):
            # what the process really exits with: sys.exit(256) is 0, sys.exit(-1) 255, and a
            # code no C long holds is -1 (255)
            return int(s) & 0xFF if -2 ** 63 <= s < 2 ** 63 else 255
        return 1
