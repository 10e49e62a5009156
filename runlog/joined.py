"""Runs this process does not own: inside ``runlog run``, on a non-zero rank, or degraded.

- Inside ``runlog run`` the parent owns the record. A Python program under it
  is reached at interpreter start-up (``_boot/sitecustomize.py`` → ``boot()``):
  its first top-level argparse parse is handed over (see ``folder.handoff``).
  If it calls ``runlog.start()``, that joins the parent's run: its log records
  go to run.log, its metrics to metrics.jsonl, ``start(note=...)`` to the
  parent's record.
- Distributed training: a process whose ``RANK`` (or ``LOCAL_RANK``) is not 0
  never makes a run. It writes ``rank<N>.log`` into the run it can identify —
  through ``runlog run`` or ``RUNLOG_RUN_ID`` — and otherwise logs to the
  console only. Only rank 0's metrics are recorded.
- A worker that multiprocessing starts anew (the "spawn" and "forkserver"
  start methods: a DataLoader's or a Pool's) runs the script's top level again
  as ``__mp_main__``, ``runlog.start()`` with it. It never makes a run: it
  joins the run of the process that started it (``RUNLOG_OWNER_DIR``, set while
  that run is active, or ``runlog run``'s) as a forked worker would be in it:
  its log records and prints go to that run.log, its metrics are not recorded,
  and it finishes nothing. With no such run it records nothing.
- When runlog cannot start at all (a read-only disk, …) the script still gets
  its console logging, and nothing is recorded.
"""

from __future__ import annotations

import os
import sys

from . import patches as patches_mod
from .folder.layout import RunFolder, log_root, rank_log

ENV_DIR = "RUNLOG_RUN_DIR"
ENV_ID = "RUNLOG_RUN_ID"
ENV_CONSOLE = "RUNLOG_CONSOLE_FD"
ENV_OWNER = "RUNLOG_OWNER_DIR"  # the run of the process that starts multiprocessing workers
JOIN_ENV = ("RANK", "LOCAL_RANK", ENV_DIR, ENV_ID, ENV_OWNER)


# ---------------------------------------------------------------- inside `runlog run`


def parent_run_dir() -> str | None:
    d = os.environ.get(ENV_DIR)
    return d if d and os.path.isdir(d) else None


def is_worker() -> bool:
    """A multiprocessing / DataLoader / spawned worker, never the program itself."""
    argv = getattr(sys, "argv", None) or []
    if "--multiprocessing-fork" in argv or (argv and argv[0] == "-c"):
        return True
    mp = sys.modules.get("multiprocessing")
    if mp is not None:
        try:
            return mp.parent_process() is not None
        except Exception:
            return False
    return False


def boot() -> None:
    """Called from sitecustomize at interpreter start-up of a program inside `runlog run`."""
    if parent_run_dir() is None or is_worker():
        return
    from . import patches
    from .args import argparse_hook, note

    note.strip_from_argv()
    patches.process.apply("argparse", argparse_hook.install)
    argparse_hook.listen(_on_parse, follow=True)
    import atexit

    # registered first, so it runs last: every module the program imported is in sys.modules
    atexit.register(_hand_over_env, os.getpid())
    atexit.register(_globals_at_exit, os.getpid(), list(sys.argv[1:]), os.getcwd())


def _globals_at_exit(pid: int, argv: list[str], cwd: str) -> None:
    """A program that handed over no arguments (no argparse parse, no ``start(args=)``):
    absl's flags or its configuration globals, read as it ends (``args.config.later``). Only the
    program ``runlog run`` started: a helper script it runs has globals of its own."""
    try:
        d = parent_run_dir()
        if d is None or os.getpid() != pid or is_worker():
            return
        from .folder import handoff

        if handoff.read_args(d) is not None:
            return
        from .args import script_globals

        if not _is_the_program(d, cwd, script_globals):
            return
        from .args import config

        found = config.later(argv, script_globals.script_file(cwd), os.path.dirname(d))
        if found is not None:
            hand_over_args(d, found.args, found.given, claim=True, secret_opts=found.secret,
                           sources=found.sources)
    except Exception as e:  # never stop the user's program
        sys.stderr.write(f"runlog: could not record the script's arguments ({type(e).__name__}: {e})\n")


def _is_the_program(run_dir: str, cwd: str, script_globals) -> bool:
    """Whether this process runs the script ``runlog run`` was given (when it was given one)."""
    from .folder import record

    try:
        key = record.read(run_dir).get("script_path") or ""
    except record.RecordError:
        return True
    path = script_globals.script_file(cwd)
    if "::" in key or not path:  # not a Python script (make, a shell script, -m): cannot tell
        return True
    return os.path.realpath(path) == key


def _hand_over_env(pid: int) -> None:
    """The program's environment (packages it imported, frameworks) for the parent's record."""
    d = parent_run_dir()
    if d is not None and os.getpid() == pid and not is_worker():
        from .facts.collect import hand_over

        hand_over(d)


def _on_parse(parser, namespace, given, more=False) -> None:
    """The program's parse; ``more``: the parse of the words its first parse left (a config
    pre-parser's), which adds to what this process handed over."""
    from .args import argparse_hook
    from .args.given import namespace_args
    from .mask import secret_options

    argparse_hook.unlisten()
    if is_worker():
        return
    d = parent_run_dir()
    if d is not None:
        try:
            secret = secret_options(parser)
        except Exception:
            secret = []
        if more:
            from .folder import handoff

            before = handoff.read_args(d) or {}
            if before.get("pid") != os.getpid():  # another process's parse was handed over
                return
            secret = list(dict.fromkeys([*(before.get("secret_options") or []), *secret]))
        from .args.parse_sources import refine

        args = namespace_args(namespace)
        given, sources = refine(parser, sys.argv[1:], given, args)  # an @file's, a config file's
        hand_over_args(d, args, given, claim=not more, secret_opts=secret, sources=sources)


def hand_over_args(run_dir: str, args: dict, given, claim: bool, secret_opts=None,
                   sources=None) -> dict | None:
    """Give the parent's run this program's arguments (masked); None if another process
    of the program already did (with ``claim``) or the handover failed."""
    from .args import note
    from .folder.record import jsonable
    from .mask import mask_args

    masked = mask_args(jsonable(args))
    try:
        from .folder import handoff  # json: loaded when a parse is handed over, not at boot

        ok = handoff.write_args(run_dir, masked, given, note.stashed(),
                                sys.argv[0] if sys.argv else None, claim, secret_opts, sources)
    except OSError:
        return None
    return masked if ok else None


# ---------------------------------------------------------------- ranks


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
    d = parent_run_dir()
    if d is not None:
        return d
    run_id = os.environ.get(ENV_ID)
    if run_id and rank_:
        d = os.path.join(log_root(), run_id)
        if os.path.isdir(d):
            return d
    return None


def reimported_main() -> bool:
    """Whether this start() is the script's top level run again in a multiprocessing worker
    (only multiprocessing runs a module as ``__mp_main__``; its ``parent_process()`` is not
    set yet while it does)."""
    if "multiprocessing" not in sys.modules:
        return False
    from .args.frames import in_reimported_main

    return in_reimported_main()


def owner_dir() -> str | None:
    """The run of the process that started this multiprocessing worker, if any."""
    d = os.environ.get(ENV_OWNER)
    return d if d and os.path.isdir(d) else None


def applies() -> tuple[bool, int | None]:
    """Whether start() here joins another process's run (or records nothing, as a rank)."""
    if not any(v in os.environ for v in JOIN_ENV) and not reimported_main():
        return False, None
    r = rank()
    if reimported_main():  # a worker's start(): it joins, or records nothing, never a run
        return True, r
    return (joined_dir(r) is not None or bool(r)), r


def _console_stream(console: bool):
    if not console:
        return None
    fd = os.environ.get(ENV_CONSOLE)
    if fd:
        try:
            # the terminal itself, not the pipe the parent logs: no line is logged twice
            # unbuffered and write-through like sys.stderr, so the handler writes to it
            # with one os.write a line (console._direct_fd)
            import io

            return io.TextIOWrapper(io.FileIO(int(fd), "w", closefd=False),
                                    encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                                    errors="backslashreplace", write_through=True)
        except (OSError, ValueError, LookupError):
            pass
    return sys.stderr


def join(args, note, levelno: int, console: bool, rank_: int | None,
         capture_output: bool = True):
    """start() where another process owns the run."""
    from . import active
    from .args import note as note_mod
    from .console import RunHandler
    from .folder.logfile import LogFile
    from .folder.metrics import Metrics
    from .run import Run, capture_args

    run_dir = joined_dir(rank_)
    if reimported_main():  # multiprocessing's worker, not the program: as a forked one would be
        return _join_as_worker(run_dir or owner_dir(), levelno, console, rank_, capture_output)
    if run_dir is None:
        run = ConsoleRun(levelno, console)
        active.set(run)
        return run
    folder = RunFolder(run_dir)
    run_id = os.environ.get(ENV_ID) or folder.id
    note_mod.strip_from_argv()
    log = LogFile(folder.file(rank_log(rank_ or 0)))
    metrics = Metrics(None if rank_ else folder.metrics)  # rank 0 reports the metrics
    run = Run(None, run_id=run_id, run_dir=run_dir, log=log, metrics=metrics)
    run.hand_over = hand_over_args
    if not rank_:
        from .args import argparse_hook

        run.patches.apply("argparse", argparse_hook.install)
        if "jsonargparse" in sys.modules:
            from .args import jsonargs

            run.patches.apply("jsonargparse", jsonargs.install)
    handler = RunHandler(log, console=_console_stream(console), level=levelno)
    run.patches.apply("root_logger", patches_mod.root_logger, handler, levelno)
    active.set(run)
    if rank_:
        return run
    capture_args(run, args)
    if note:
        log.line("RUNLOG", f"note: {note}")
        try:
            from .folder import handoff

            handoff.write_note(run_dir, str(note))
        except OSError:
            pass
    return run


def _join_as_worker(run_dir: str | None, levelno: int, console: bool, rank_: int | None,
                    capture_output: bool):
    """A multiprocessing worker's start(): its log records (and, outside ``runlog run``, its
    prints) go to the run's log; it records no arguments, no metrics, and finishes nothing."""
    from . import active
    from .console import RunHandler
    from .folder.logfile import LogFile
    from .folder.metrics import Metrics
    from .run import Run

    if run_dir is None:
        run = ConsoleRun(levelno, console)
        active.set(run)
        return run
    folder = RunFolder(run_dir)
    log = LogFile(folder.file(rank_log(rank_ or 0)))
    run = Run(None, run_id=os.environ.get(ENV_ID) or folder.id, run_dir=run_dir, log=log,
              metrics=Metrics(None))
    run.forked_copy()  # run.metric() here says it is not recorded, once
    handler = RunHandler(log, console=_console_stream(console), level=levelno)
    run.patches.apply("root_logger", patches_mod.root_logger, handler, levelno)
    if capture_output and parent_run_dir() is None:  # under `runlog run` the pipe is captured
        from .output import tee_streams

        tee_streams(run, log)
    active.set(run)
    return run


# ---------------------------------------------------------------- nothing recorded


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
        from .console import RunHandler
        from .folder.metrics import Metrics

        self.finished = False
        self.pid = os.getpid()
        self.metrics = Metrics(None)
        self.patches = patches_mod.Patches()
        if console:
            handler = RunHandler(None, console=_console_stream(True), level=levelno)
            self.patches.apply("root_logger", patches_mod.root_logger, handler, levelno)

    def metric(self, name, value, step=None) -> None:
        self.metrics.add(name, value, step)

    def log_metrics(self, values, step=None) -> None:
        for k, v in values.items():
            self.metrics.add(k, v, step)

    def finish(self, *a, **k) -> None:
        self.patches.undo()
        self.finished = True
