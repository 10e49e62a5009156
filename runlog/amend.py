"""The end of a run told after its last writes: an atexit hook of the script that runs after
runlog's (registered before ``start()``) and ends the process with ``os._exit(code)``; or a
Ctrl-C that cut runlog's end short, after which the process dies by SIGINT.

The record, the report file and the index line are written again with the status and exit
code the process really ends with; the report already printed stays, so one line says so.
"""

from __future__ import annotations

import os


def watch_os_exit(life, outcome) -> None:
    """From runlog's atexit hook, once the run is finished: the process is ending, so the
    wrapper is never undone; it acts only in this process (not in a forked child)."""
    previous, pid = os._exit, os.getpid()

    def _exit(status):
        if os.getpid() == pid:
            exit_changed(life, outcome, status)
        previous(status)

    os._exit = _exit


def exit_changed(life, outcome, status) -> None:
    """``os._exit(status)`` after the run was finished at exit: record what the shell sees."""
    try:
        outcome.exited(status)
        st, code, _ = outcome.resolve()
        r = life.record
        if (r.get("status"), r.get("exit_code")) == (st, code):
            return
        _rewrite(life, st, code)
        from .console import say

        say(f"the process exits with {code} after the report; run {life.id} is recorded {st}")
    except Exception:  # the exit goes on, whatever the record does
        pass


def _rewrite(life, status: str, code: int) -> None:
    from .fmt import shown_path
    from .folder import index, notes, record
    from .folder.logfile import RUNLOG, LogFile
    from .report import render

    with life.lock:
        r = life.record
        r["status"], r["exit_code"] = status, code
        segs = r.get("segments")
        if segs and isinstance(segs[-1], dict):
            segs[-1]["status"] = status
    log = LogFile(life.folder.log)  # the run's own was closed with its finish
    log.line(RUNLOG, f"exit code {code} set by os._exit at exit: run {status}")
    log.close()
    life.save()
    later = notes.read(life.dir)
    report = render({**r, "dir": shown_path(life.dir, record.start_dir(r)), "notes": later}, life.prev)
    try:
        record.write_atomic(life.folder.report, report)
        index.append_record(life.root, r, later)
        if status == "finished":
            from .folder import latest

            latest.remember(life.root, r)
    except OSError:
        pass


def died_by_sigint(life) -> bool:
    """The run was recorded interrupted by a Ctrl-C at its end: the process is about to die by
    SIGINT, which the record names. True once said."""
    from .folder import index

    try:
        with life.lock:
            life.record["signal"] = "SIGINT"
        life.save()
        index.append_record(life.root, life.record)
    except Exception:
        pass
    return True
