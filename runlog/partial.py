"""Runs this process does not own: inside ``runlog run``, on a non-zero rank, or degraded.

- Inside ``runlog run`` the parent owns the record; ``start()`` here adds the
  program's log records, arguments and metrics to the parent's run.
- Distributed training: a process whose ``RANK`` (or ``LOCAL_RANK``) is not 0
  never makes a run. It writes ``rank<N>.log`` into the run it can identify —
  through ``runlog run`` or ``RUNLOG_RUN_ID`` — and otherwise logs to the
  console only. Only rank 0's metrics are recorded.
- When runlog cannot start at all (a read-only disk, …) the script still gets
  its console logging, and nothing is recorded.
"""

from __future__ import annotations

import os
import sys

from . import capture, child
from .logsetup import FileSink, RunHandler, attach, detach
from .metrics import Metrics


def rank() -> int | None:
    for var in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(var)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError:
                return None
    return None


def joined_dir(rank_: int | None = None) -> str | None:
    """The run folder another process made for us, if any."""
    d = child.run_dir()
    if d is not None:
        return d
    run_id = os.environ.get("RUNLOG_RUN_ID")
    if run_id and rank_:
        from .store import log_root

        d = os.path.join(log_root(), run_id)
        if os.path.isdir(d):
            return d
    return None


def _console_stream(console: bool):
    if not console:
        return None
    fd = os.environ.get(child.ENV_CONSOLE)
    if fd:
        try:
            # the terminal itself, not the pipe the parent logs: no line is logged twice
            return os.fdopen(int(fd), "w", buffering=1, closefd=False)
        except (OSError, ValueError):
            pass
    return sys.stderr


def join(args, note, levelno: int, console: bool, rank_: int | None):
    """start() where another process owns the run."""
    from .run import Run

    run_dir = joined_dir(rank_)
    if run_dir is None:
        return ConsoleRun(levelno, console)
    run_id = os.environ.get(child.ENV_ID) or os.path.basename(run_dir)
    run = Run(run_id, run_dir, os.path.dirname(run_dir), {"id": run_id, "status": "running"})
    run.joined = True
    capture.strip_note_from_argv()
    log = "run.log" if not rank_ else f"rank{rank_}.log"
    run.log_path = os.path.join(run_dir, log)
    sink = run._sink = FileSink(run.log_path)
    run._handler = RunHandler(sink, console=_console_stream(console), level=levelno)
    run._saved_root = attach(run._handler, levelno)
    if rank_:
        run.metrics = Metrics(None)  # rank 0 reports the metrics
        return run
    if args is not None:
        run._set_args(capture.config_args(args))
    else:
        ns, parser = capture.find_in_frames(sys._getframe(3))
        if ns is not None:
            run._set_args(capture.namespace_args(ns), None, parser, claim=True)
            run._args_from_parse = True
        else:
            capture.listen(run._on_parse)
    if note:
        sink.line("RUNLOG", f"note: {note}")
        child.add_note_file(run_dir, note)
    return run


class NullRun:
    """A run that records nothing, with the same methods as a Run."""

    id = dir = log_path = None
    finished = True
    joined = False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.finish()

    def metric(self, *a, **k) -> None:
        pass

    def log_metrics(self, *a, **k) -> None:
        pass

    def add_note(self, *a, **k) -> None:
        pass

    def set_args(self, *a, **k) -> None:
        pass

    def finish(self, *a, **k) -> None:
        pass


class ConsoleRun(NullRun):
    """Nothing recorded, but the script's logging still reaches the console."""

    def __init__(self, levelno: int = 20, console: bool = True):
        self.finished = False
        self.pid = os.getpid()
        self.metrics = Metrics(None)
        self._handler = None
        if console:
            self._handler = RunHandler(None, console=_console_stream(True), level=levelno)
            self._saved = attach(self._handler, levelno)

    def metric(self, name, value, step=None) -> None:
        self.metrics.add(name, value, step)

    def log_metrics(self, values, step=None) -> None:
        for k, v in values.items():
            self.metrics.add(k, v, step)

    def finish(self, *a, **k) -> None:
        if self._handler is not None:
            detach(self._handler, self._saved)
            self._handler = None
        self.finished = True
