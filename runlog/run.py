"""The Run handle and ``start()``: what must happen before the script's next line.

``start()`` makes the run through ``lifecycle`` (folder, first lines, record),
applies the process-wide patches in their order (``patches``), finds the
arguments (``args``) and returns. Git and finding the previous run happen on a
background thread that the finish waits for briefly.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from . import active
from . import patches as patches_mod
from .args import argparse_hook, config, frames
from .args import note as note_mod
from .args.given import namespace_args
from .console import (RunHandler, basic_config_while_running, config_while_running, has_console_handler,
                      level_number, say, show_report, write_quietly)
from .folder.layout import log_root
from .folder.record import clean_text, jsonable, start_dir
from .lifecycle import Lifecycle
from .sigmask import no_interrupts
from .mask import secret_options
from .outcome import Outcome

ENV_OWNER = "RUNLOG_OWNER_DIR"  # joined.ENV_OWNER (joined.py is not loaded by a plain run)


def _command() -> list[str]:
    argv = [clean_text(a) for a in frames.command_argv()]
    if argv and os.path.isabs(argv[0]) and os.path.basename(argv[0]).startswith("python"):
        argv[0] = os.path.basename(argv[0])
    _, rest = note_mod.take_note(argv[1:])
    return argv[:1] + rest


class Run:
    """One recorded run. Made by ``runlog.start()``.

    A run this process owns has a ``Lifecycle``; a run it joins (inside
    ``runlog run``, or as a non-zero rank) writes its log lines, metrics and
    arguments into a run another process owns and finishes nothing.
    """

    def __init__(self, life: Lifecycle | None, *, run_id: str | None = None,
                 run_dir: str | None = None, log=None, metrics=None):
        self._life = life
        if life is not None:
            run_id, run_dir, log, metrics = life.id, life.dir, life.log, life.metrics
        self.id = run_id
        self.dir = run_dir
        self.root = os.path.dirname(run_dir)
        self.log = log  # the run.log writer (a LogFile)
        self.log_path = log.path if log is not None else None
        self.metrics = metrics
        self.record = life.record if life is not None else {"id": run_id, "status": "running"}
        self.joined = life is None
        self.hand_over = None  # joined: gives the arguments to the run's owner (joined.py)
        self.pid = os.getpid()
        self.finished = False
        self.outcome = Outcome()
        self.patches = patches_mod.Patches()
        self.parser = None  # the parser whose parse gave the arguments
        self._lock = threading.RLock()
        self._tees: list = []
        self._console = None
        self._copy = False
        self._cells = None  # notebook cells followed during the run
        self._args_from_parse = False
        self._globals_argv = None  # no parser yet: the script's globals, at the first metric or the end
        self._warned: set[str] = set()
        self._forked = False  # this object was copied into a forked worker
        active.watch_forks()

    # ------------------------------------------------------------ public API

    def __repr__(self) -> str:
        return f"<runlog.Run {self.id} {self.record.get('status')}>"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and not self.finished:
            if issubclass(exc_type, SystemExit):
                self.outcome.exited(exc.code)
            else:
                self.record_exception(exc_type, exc, tb)
        self.finish()

    def metric(self, name: str, value, step: int | None = None) -> None:
        """Record one metric point: appended to metrics.jsonl, summarised in run.json."""
        if self.finished or self._forked:
            return self._not_recorded("metric")
        if self._globals_argv is not None:
            self._take_globals()
        self.metrics.add(name, value, step)
        if self._life is not None:
            self._life.save_now_and_then(self.metrics.summary)

    def log_metrics(self, values: dict, step: int | None = None) -> None:
        """Record several metrics at the same step."""
        if self.finished or self._forked:
            return self._not_recorded("log_metrics")
        import time

        if self._globals_argv is not None:
            self._take_globals()
        t = time.time()
        add = self.metrics.add
        for name, value in values.items():
            add(name, value, step, t)
        if self._life is not None:
            self._life.save_now_and_then(self.metrics.summary)

    def add_note(self, text: str) -> None:
        """Append a timestamped note to notes.md (never rewritten)."""
        from .folder import index, notes

        try:
            block = notes.append(self.dir, text)
            index.append_note(self.root, self.id, block)
        except OSError as e:
            self._say_once("note", f"could not add the note to {self.dir} ({e.strerror or e}); "
                                   "the script goes on")

    def set_args(self, args, given=None) -> None:
        """Record (or replace) the run's arguments from a config object."""
        self._globals_argv = None
        self._set_args(config.config_args(args), given)

    def finish(self, status: str | None = None) -> None:
        """End the run: final run.json, report.md, the report on the console. Idempotent."""
        with no_interrupts() as held:  # from here a Ctrl-C can only stop the wait for git
            with self._lock:
                if self.finished or os.getpid() != self.pid:
                    return
                self.finished = True
            life = self._life
            try:
                if life is not None and not self.outcome.discard:
                    self._last_writes(life, status, unmask=held.old is not None)
            finally:
                self._teardown()
                if life is not None and self.outcome.discard:
                    import shutil

                    life.wait_code_state()
                    shutil.rmtree(self.dir, ignore_errors=True)
                active.clear(self)

    def _last_writes(self, life, status, unmask: bool) -> None:
        for _ in range(3):
            try:
                if self._globals_argv is not None:
                    self._take_globals()
                life.wait_code_state(unmask=unmask)
                for tee in self._tees:
                    tee.drain()
                report = life.finish(self.outcome, status, before_save=self._save_cells)
                break
            except KeyboardInterrupt:  # let through by the wait for git, raised just after it
                life.interrupted = True  # the run still ends with its record: interrupted
        else:
            return
        show_report(report, self._console, notebook=self._cells is not None, copy=self._copy)

    # ------------------------------------------------------------ what the hooks tell

    def forked_copy(self) -> None:
        """This object is a copy in a forked worker (DataLoader, multiprocessing)."""
        self._forked = True

    def owned_here(self) -> bool:
        """Whether this process started the run and it is not finished yet."""
        return self.pid == os.getpid() and not self.finished

    def record_exception(self, exc_type, exc, tb) -> None:
        self.outcome.exception(exc_type, exc, tb)
        if self.log is not None and all(t._tag != "ERR" for t in self._tees):  # none logs it printed
            self.log.line("ERROR", "\n".join(self.outcome.error["traceback"]))

    # ------------------------------------------------------------ internals

    def _say_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            say(message)

    def _not_recorded(self, what: str) -> None:
        if self._forked:  # the summary lives in the parent: a point here would be in one, not both
            self._say_once(f"fork:{what}", f"run.{what}() in a worker process (pid {os.getpid()}) "
                                           "is not recorded; record metrics in the main process")
        else:
            self._say_once(f"after:{what}", f"run.{what}() after the run {self.id} finished; ignored")


    def _set_args(self, args: dict, given_=None, parser=None, claim: bool = False,
                  sources=None, secret=None) -> None:
        args = jsonable(args)
        if given_ is None:
            from .args.given import given_from_argv

            given_ = given_from_argv(list(args), sys.argv[1:], parser, args)
        if self._life is not None:
            self._life.set_args(args, given_, sources)
            return
        if secret is None and parser is not None:
            secret = secret_options(parser)
        masked = (self.hand_over(self.dir, args, given_, claim, secret, sources)
                  if self.hand_over else None)
        if masked is not None:
            if self.log is not None:
                self.log.args_line(masked)

    def _record_found(self, found) -> None:
        """Record what ``args.config`` found; settled arguments end the listening."""
        if found.settled:
            self._args_from_parse = True
            self._stop_listening()
        self._globals_argv = None
        if found.missed:
            self._say_once("args-missed", found.missed)
        if self._life is not None and found.secret:  # a parser's are known from start()
            self._life.remask(found.secret)
        self._set_args(found.args, found.given, found.parser, claim=found.claim,
                       sources=found.sources, secret=found.secret)

    def _take_globals(self) -> None:
        """Nothing parsed yet: absl's flags, fire's call, or the script's globals (``args.config.later``)."""
        (path, argv), self._globals_argv = self._globals_argv, None
        try:
            found = config.later(argv, path, self.root)
            if found is not None:
                self._record_found(found)
        except Exception as e:  # recording must never cost the run
            self._say_once("globals", f"could not record the script's arguments ({type(e).__name__}: {e})")

    def _on_parse(self, parser, namespace, given_=None, more=False) -> None:
        if (self._args_from_parse and not more) or self.finished:  # more: argparse_hook._follow
            return
        self._args_from_parse = True
        self._globals_argv = None
        self.parser = parser
        self._stop_listening()
        found = config.namespace_found(namespace, parser, given_)
        if self._life is not None:
            self._life.remask(secret_options(parser))
        self._set_args(found.args, found.given, parser, claim=True, sources=found.sources)

    def _stop_listening(self) -> None:
        argparse_hook.unlisten()
        if "runlog.args.jsonargs" in sys.modules:
            sys.modules["runlog.args.jsonargs"].unlisten()

    def _save_cells(self, record: dict) -> None:
        if self._cells is not None:
            try:
                record["cells"] = self._cells.save(self.dir)
            except OSError as e:
                self._life.fail_once("cells", f"could not save the notebook cells ({e.strerror or e})")

    def _teardown(self) -> None:
        self._stop_listening()
        self.patches.undo()
        self._tees = []
        if self._life is not None:
            self._life.close()
        else:
            if self.metrics is not None:
                self.metrics.close()
            if self.log is not None:
                self.log.close()


def capture_args(run: Run, args, scopes=None) -> None:
    """The run's arguments: given, found (``args.config.at_start``), or listened for."""
    if scopes is None:
        scopes = frames.caller_scopes()
    if args is not None:
        # start(args) with the Namespace of a parser at hand: the parser tells what was given
        ns, parser = frames.find_namespace(scopes)
        if ns is None or set(namespace_args(ns)) != set(args):
            parser = None
        run._set_args(args, None, parser)
        return
    found = config.at_start(scopes)
    if found is not None:
        run._record_found(found)
        if found.settled:  # else a parse after start() replaces it
            return
    argparse_hook.listen(run._on_parse, follow=True)
    if "jsonargparse" in sys.modules:
        from .args import jsonargs

        jsonargs.listen(run._on_parse)
    if found is None:
        run._globals_argv = (frames.script_file(), list(sys.argv[1:]))
    if run._life is not None:
        run._life.save()


def start(args=None, *, note=None, name=None, tags=(), log_dir=None, level="INFO",
          console=True, capture_output=True, copy=False, git=True, resume=None) -> Run:
    prior = active.get()
    if prior is not None:
        if "IPython" not in sys.modules or sys.modules["IPython"].get_ipython() is None:
            say(f"runlog.start() called while run {prior.id} is active; it goes on "
                "(finish it first to start another)")
            return prior
        prior.finish()  # a notebook cell run twice: the old run ends, a new one starts
    levelno = level_number(level)
    if args is not None:
        args = config.config_args(args)  # a TypeError here, before anything is made
    note_mod.strip_from_argv()
    # a later chdir must not move the run; Hydra may have changed directory already
    root = os.path.join(config.hydra_original_cwd() or os.getcwd(), log_root(log_dir))
    ip = None
    if "IPython" in sys.modules:  # a notebook or an IPython shell
        from . import notebook

        ip = notebook.shell()
    if ip is not None:
        command, script = [], notebook.notebook_path(ip)
    else:
        command, script = _command(), (sys.argv[0] if sys.argv and sys.argv[0] else None)
    script_path = frames.script_realpath(script)  # a chdir before start() does not move it
    scopes = frames.caller_scopes()
    parser = frames.find_parser(scopes)  # built already: its secret options mask the command
    life = Lifecycle(root, command=command, script=script, script_path=script_path,
                     typed_note=note_mod.typed(), code_note=note, name=name, tags=tags,
                     secret_opts=config.secret_options_at_start(parser),
                     resume=_plan(root, script_path, resume))
    run = Run(life)
    run._copy = copy
    p = run.patches
    p.apply("argparse", argparse_hook.install)
    if "jsonargparse" in sys.modules:  # it parses in a parse_args of its own
        from .args import jsonargs

        p.apply("jsonargparse", jsonargs.install)
    stderr = sys.stderr
    if console and not has_console_handler(logging.getLogger()):
        run._console = stderr
    handler = RunHandler(life.log, console=run._console, level=levelno)
    p.apply("root_logger", patches_mod.root_logger, handler, levelno)
    p.apply("basic_config", patches_mod.basic_config, basic_config_while_running, config_while_running)
    if console:
        run._console = run._console or stderr
    if capture_output:
        from .output import tee_streams

        tee_streams(run, life.log)
    try:
        capture_args(run, args, scopes)
    except Exception as e:  # finding the arguments must never cost the run
        say(f"could not record the arguments ({type(e).__name__}: {e})")
    if ip is not None:  # a notebook's globals are its cells' state, not a configuration
        run._globals_argv = None
    from . import exits

    exits.install(run, p, interactive=ip is not None, life=life)
    if ip is not None:
        run._cells = notebook.Cells(ip, run)
        p.apply("ipython", patches_mod.ipython_event, ip, "post_run_cell", run._cells.after_cell)
    # multiprocessing's spawned workers run this script's top level again: their start()
    # joins this run (joined.py) rather than making one each
    p.apply("environ", patches_mod.environ, ENV_OWNER, life.dir)
    active.set(run)
    if config.hydra_running():  # a Hydra job: its run ends with it (a multirun's jobs are runs each)
        from .hydrajobs import end_with_job

        end_with_job(run)
    life.announce()
    life.start_code_state(git)
    if console and run._console is not None:
        from .fmt import shown_path

        shown = shown_path(run.log_path, start_dir(life.record))
        write_quietly(run._console, f"runlog: {life.opened()} → {shown}\n")
    return run


def _plan(root: str, script_path: str | None, resume):
    """The run to continue (resume=, RUNLOG_RESUME, a requeued Slurm job); resume.py is
    loaded only when one may be asked for."""
    if resume is None and "RUNLOG_RESUME" not in os.environ and "SLURM_JOB_ID" not in os.environ:
        return None
    from .resume import for_start

    return for_start(root, script_path, None if resume is None else str(resume))


def current() -> Run | None:
    """The active run of this process (forked workers have none of their own)."""
    return active.get()
