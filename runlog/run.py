"""The Run and its lifecycle: start, the background git capture, finish.

``start()`` does only what must happen before the script's next line: make
the folder, open the log, hook the exits, write the first run.json. Git (a
subprocess or two) and finding the previous run for the report happen in a
background thread that ``finish()`` waits for briefly.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from . import capture, hooks, store
from .logsetup import (FileSink, RunHandler, _say, attach, detach, patch_basic_config,
                       unpatch_basic_config)
from .mask import mask_args, mask_argv
from .metrics import METRICS, Metrics
from .record import SCHEMA, clean_text, jsonable, write_record
from .report import command_line, render

GIT_WAIT_S = 5.0  # how long finish() waits for a slow git capture
_active: Run | None = None
_JOIN_ENV = {"RANK", "LOCAL_RANK", "RUNLOG_RUN_DIR", "RUNLOG_RUN_ID"}


def _iso(t: float) -> str:
    # ISO 8601 with the local offset, without importing datetime (start() is on the clock)
    lt = time.localtime(t)
    off = lt.tm_gmtoff or 0
    sign = "+" if off >= 0 else "-"
    off = abs(off) // 60
    ms = int((t - int(t)) * 1000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", lt)
            + f".{ms:03d}{sign}{off // 60:02d}:{off % 60:02d}")


def _level(level) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(str(level).upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}")
    return value


def _command() -> list[str]:
    argv = [clean_text(a) for a in getattr(sys, "orig_argv", None) or ["python", *sys.argv]]
    if argv and os.path.isabs(argv[0]) and os.path.basename(argv[0]).startswith("python"):
        argv[0] = os.path.basename(argv[0])
    _, rest = capture.take_note(argv[1:])
    return argv[:1] + rest


class Run:
    """One recorded run. Made by ``runlog.start()``."""

    def __init__(self, run_id: str, run_dir: str, root: str, record: dict):
        self.id = run_id
        self.dir = run_dir
        self.root = root
        self.log_path = os.path.join(run_dir, "run.log")
        self.record = record
        self.pid = os.getpid()
        self.finished = False
        self._discard = False
        self._parser = None
        self._cells = None  # notebook cells followed during the run
        self.joined = False  # inside `runlog run`: the parent process owns the record
        self._lock = threading.RLock()
        self._signal: int | None = None
        self._signal_handled = False  # the script's own handler took it
        self._error: dict | None = None
        self._git_done: threading.Event | None = None  # set when the git capture ends
        self._prev: dict | None = None
        self._sink: FileSink | None = None
        self._handler: RunHandler | None = None
        self._saved_root = None
        self._tees: list = []
        self._copy = False
        self._console = None
        self._args_from_parse = False
        self._last_save = 0.0
        self._failed: set[str] = set()
        self._t0 = time.time()
        self.metrics = Metrics(os.path.join(run_dir, METRICS))

    # ------------------------------------------------------------ public API

    def __repr__(self) -> str:
        return f"<runlog.Run {self.id} {self.record.get('status')}>"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and not self.finished:
            if issubclass(exc_type, SystemExit):
                hooks.exit_code_hint = exc.code
            else:
                self._note_exception(exc_type, exc, tb)
        self.finish()

    def metric(self, name: str, value, step: int | None = None) -> None:
        """Record one metric point: appended to metrics.jsonl, summarised in run.json."""
        self.metrics.add(name, value, step)
        self._maybe_save()

    def log_metrics(self, values: dict, step: int | None = None) -> None:
        """Record several metrics at the same step."""
        t = time.time()
        add = self.metrics.add
        for name, value in values.items():
            add(name, value, step, t)
        self._maybe_save()

    def add_note(self, text: str) -> None:
        """Append a timestamped note to notes.md (never rewritten)."""
        store.add_note(self.dir, text, root=self.root)

    def set_args(self, args, given=None) -> None:
        """Record (or replace) the run's arguments from a config object."""
        self._set_args(capture.config_args(args), given)

    def finish(self, status: str | None = None) -> None:
        """End the run: final run.json, report.md, the report on the console. Idempotent."""
        global _active
        with self._lock:
            if self.finished or os.getpid() != self.pid:
                return
            self.finished = True
        try:
            if not self.joined and not self._discard:
                self._finish(status)
        finally:
            self._teardown()
            if self._discard and not self.joined:
                import shutil

                if self._git_done is not None:
                    self._git_done.wait(GIT_WAIT_S)
                shutil.rmtree(self.dir, ignore_errors=True)
            if _active is self:
                _active = None

    # ------------------------------------------------------------ internals

    def _save(self) -> None:
        with self._lock:
            if self._discard:
                return
            try:
                write_record(self.dir, self.record, pretty=self.finished)
                self._last_save = time.time()
            except OSError as e:
                self._fail_once("record", f"could not write {self.dir}/run.json ({e.strerror or e})")

    def _maybe_save(self) -> None:
        # keep the summary in run.json fresh for `runlog ls`, at most every 10 s
        now = time.time()
        if now - self._last_save > 10 and not self.finished:
            with self._lock:
                self.record["metrics"] = self.metrics.summary
            self._save()

    def _fail_once(self, what: str, message: str) -> None:
        if what not in self._failed:
            self._failed.add(what)
            _say(f"{message}; the script goes on")

    def _set_args(self, args: dict, given=None, parser=None, claim: bool = False) -> None:
        args = jsonable(args)
        if given is None:
            given = capture.given_from_argv(list(args), sys.argv[1:], parser, args)
        from .report import flatten

        flat = flatten(args)
        given = [g for g in dict.fromkeys(given) if g in args or g in flat]
        if self.joined:
            from . import child

            if child.write_args(args, given, claim=claim):
                self._log_args(mask_args(args))
            return
        masked = mask_args(args)
        with self._lock:
            self.record["args"] = masked
            self.record["args_given"] = given
        self._log_args(masked)
        self._save()

    def _log_args(self, masked: dict) -> None:
        if self._sink is not None:
            from .report import flatten, fmt_value

            flat = flatten(masked)
            text = " ".join(f"{k}={fmt_value(v)}" for k, v in flat.items())
            self._sink.line("RUNLOG", f"args: {text}")

    def _on_parse(self, parser, namespace, given) -> None:
        if self._args_from_parse or self.finished:
            return
        self._args_from_parse = True
        self._parser = parser
        capture.unlisten()
        self._set_args(capture.namespace_args(namespace), given, claim=True)

    def _exit_in_parse(self, code) -> None:
        """The script exited while parsing its arguments (--help, a usage error):
        no experiment ran, so the run folder is removed and no report printed."""
        self._discard = True

    def _note_exception(self, exc_type, exc, tb) -> None:
        self._error = hooks.error_info(exc_type, exc, tb)
        if not self._tees and self._sink is not None:
            self._sink.line("ERROR", "\n".join(self._error["traceback"]))

    def _git_capture(self) -> None:
        try:
            self._git_capture_inner()
        except Exception as e:
            self._fail_once("git", f"could not record the code state ({type(e).__name__}: {e})")
        finally:
            self._git_done.set()

    def _git_capture_inner(self) -> None:
        from . import gitinfo

        scratch = dict(self.record)  # captured off the lock; git can take a while
        prev = gitinfo.code_state(scratch, self.dir, self.root, self._fail_once)
        with self._lock:
            for key in ("git", "previous", "code_changes"):
                if key in scratch:
                    self.record[key] = scratch[key]
            self._prev = prev
        info = scratch["git"]
        if self._sink is not None and info:
            n = len(info["changed_files"])
            dirty = f", {n} file{'s' if n != 1 else ''} changed" if info["dirty"] else ""
            self._sink.line("RUNLOG", f"git: {info['short']} {info['branch'] or '(detached)'}{dirty}")
        self._save()

    def _find_previous(self) -> dict | None:
        return store.find_previous(self.root, self.record.get("script_path"),
                                   self.record["started_at"], self.id)

    def _finish(self, status: str | None) -> None:
        t = time.time()
        if self._git_done is not None:
            if not self._git_done.wait(GIT_WAIT_S):
                self._fail_once("git", "git took too long; the code state is not recorded")
        for tee in self._tees:
            tee.drain()
        code = hooks.exit_code_hint
        st, exit_code = hooks.exit_status(self._error, self._signal, code, self._signal_handled)
        if status is not None:
            st = status
        with self._lock:
            r = self.record
            r["status"] = st
            r["exit_code"] = exit_code
            if self._signal is not None:
                import signal

                r["signal"] = signal.Signals(self._signal).name
            if self._error is None and st == "failed" and isinstance(code, str):
                self._error = {"type": "SystemExit", "message": code, "where": None, "traceback": []}
            r["error"] = self._error
            r["ended_at"] = _iso(t)
            r["duration_s"] = round(t - self._t0, 3)
            r["metrics"] = self.metrics.summary
        if self._cells is not None:
            try:
                r["cells"] = self._cells.save(self.dir)
            except OSError as e:
                self._fail_once("cells", f"could not save the notebook cells ({e.strerror or e})")
        report = render({**r, "dir": _shown(self.dir, r["cwd"])}, self._prev)
        if self._sink is not None:
            self._sink.line("RUNLOG", f"run {st} after {r['duration_s']:.1f} s")
        self._save()
        try:
            with open(os.path.join(self.dir, "report.md"), "w", encoding="utf-8") as f:
                f.write(report)
        except OSError as e:
            self._fail_once("report", f"could not write report.md ({e.strerror or e})")
        try:
            store.append_index(self.root, store.index_entry(r))
        except OSError:
            pass
        self._show(report)

    def _show(self, report: str) -> None:
        if self._cells is not None and sys.modules["runlog.notebook"].show_markdown(report):
            pass
        else:
            stream = self._console or sys.__stderr__
            try:
                if stream is not None:
                    stream.write("\n" + report)
                    stream.flush()
            except Exception:
                pass
        if self._copy:
            from .report import copy

            why = copy(report)
            if why:
                _say(why)

    def _teardown(self) -> None:
        capture.unlisten()
        if self._cells is not None:
            self._cells.close()
        hooks.uninstall(self)
        for tee in self._tees:
            if sys.stdout is tee:
                sys.stdout = tee._stream
            if sys.stderr is tee:
                sys.stderr = tee._stream
        self._tees = []
        if self._handler is not None:
            detach(self._handler, self._saved_root)
            self._handler = None
            unpatch_basic_config()
        self.metrics.close()
        if self._sink is not None:
            self._sink.close()


def new_record(run_id: str, t0: float, argv: list[str], script: str | None, *,
               note=None, name=None, tags=()) -> dict:
    """The first run.json of a run (also used by ``runlog run``)."""
    return {
        "schema": SCHEMA,
        "id": run_id,
        "name": name,
        "tags": list(tags),
        "status": "running",
        "exit_code": None,
        "error": None,
        "started_at": _iso(t0),
        "ended_at": None,
        "duration_s": None,
        "command": mask_argv(argv),
        "command_line": command_line(mask_argv(argv)) if argv else None,
        "cwd": os.getcwd(),
        "script": script,
        "script_path": os.path.realpath(script) if script and script not in ("-c", "-m") else None,
        "note": note,
        "args": {},
        "args_given": [],
        "git": None,
        "host": os.uname().nodename if hasattr(os, "uname") else None,
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "metrics": {},
        "previous": None,
    }


def start(args=None, *, note=None, name=None, tags=(), log_dir=None, level="INFO",
          console=True, capture_output=True, copy=False, git=True) -> Run:
    global _active
    if current() is not None:
        _active.finish()  # a notebook cell run twice: the old run ends, a new one starts
    levelno = _level(level)
    if args is not None:
        args = capture.config_args(args)  # a TypeError here, before anything is made
    if _JOIN_ENV.intersection(os.environ):  # inside `runlog run`, or a distributed rank
        from . import partial

        rank = partial.rank()
        if partial.joined_dir(rank) is not None or rank:
            run = _active = partial.join(args, note, levelno, console, rank)
            return run
    t0 = time.time()
    capture.strip_note_from_argv()
    note = note or capture.stashed_note() or os.environ.get("RUNLOG_NOTE") or None
    root = store.log_root(log_dir)
    # a later chdir must not move the run; Hydra may have changed directory already
    root = os.path.join(capture.hydra_original_cwd() or os.getcwd(), root)
    run_id, run_dir = store.new_run_dir(root, name, t0)
    ip = None
    if "IPython" in sys.modules:  # a notebook or an IPython shell
        from . import notebook

        ip = notebook.shell()
    if ip is not None:
        argv, script = [], notebook.notebook_path(ip)
    else:
        argv, script = _command(), (sys.argv[0] if sys.argv and sys.argv[0] else None)
    record = new_record(run_id, t0, argv, script, note=note, name=name, tags=tags)
    run = Run(run_id, run_dir, root, record)
    run._t0 = t0
    if ip is not None:
        run._cells = notebook.Cells(ip, run)
    run._copy = copy
    sink = run._sink = FileSink(run.log_path)
    sink.line("RUNLOG", f"run {run_id} started: {record['command_line'] or '(interactive)'}", t0)
    if note:
        sink.line("RUNLOG", f"note: {note}", t0)

    root_logger = logging.getLogger()
    stderr = sys.stderr
    if console and not _has_console_handler(root_logger):
        run._console = stderr
    run._handler = RunHandler(sink, console=run._console, level=levelno)
    run._saved_root = attach(run._handler, levelno)
    patch_basic_config()
    if console:
        run._console = run._console or stderr
    if capture_output:
        for attr, tag in (("stdout", "OUT"), ("stderr", "ERR")):
            stream = getattr(sys, attr)
            if stream is not None:
                tee = capture.Tee(stream, sink, tag)
                setattr(sys, attr, tee)
                run._tees.append(tee)

    try:
        _capture_args(run, args, sys._getframe(1))
    except Exception as e:  # finding the arguments must never cost the run
        _say(f"could not record the arguments ({type(e).__name__}: {e})")
    hooks.install(run, interactive=ip is not None)
    _active = run
    try:
        store.append_index(root, store.index_entry(record))
    except OSError:
        pass
    if git:
        import _thread

        # a raw thread: threading.Thread.start() waits for the thread to be
        # scheduled, which costs start() most of a millisecond
        run._git_done = threading.Event()
        _thread.start_new_thread(run._git_capture, ())
    else:
        run._prev = run._find_previous()
        record["previous"] = run._prev["id"] if run._prev else None
    if console and run._console is not None:
        _write(run._console, f"runlog: run {run_id} → {_shown(run.log_path, record['cwd'])}\n")
    return run


def _capture_args(run: Run, args, frame) -> None:
    """The run's arguments: given, or found in the caller's argparse, click or Hydra."""
    if args is not None:
        # start(args) with the Namespace of a parser at hand: the parser tells what was given
        ns, parser = capture.find_in_frames(frame)
        if ns is None or set(capture.namespace_args(ns)) != set(args):
            parser = None
        run._set_args(args, None, parser)
        return
    found = capture.from_hydra(frame)  # before argparse: Hydra parses its own flags with it
    if found is None:
        ns, parser = capture.find_in_frames(frame)
        if ns is not None:
            run._set_args(capture.namespace_args(ns), None, parser)
            run._args_from_parse = True
            return
        found = capture.from_click()
    if found is not None:
        config, given = found
        run._set_args(capture.config_args(config), given)
        run._args_from_parse = True
        return
    capture.listen(run._on_parse)
    run._save()


def _shown(path: str, cwd: str) -> str:
    """A path as the user would type it from where the script started."""
    rel = os.path.relpath(path, cwd)
    return path if rel.startswith("..") else rel


def _write(stream, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except Exception:
        pass


def _has_console_handler(logger: logging.Logger) -> bool:
    """Whether the script already logs to the terminal (basicConfig before start())."""
    for h in logger.handlers:
        if type(h) is logging.StreamHandler and getattr(h, "stream", None) in (
            sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__
        ):
            return True
    return False


def current() -> Run | None:
    """The active run of this process (forked workers have none of their own)."""
    run = _active
    if run is not None and (run.finished or getattr(run, "pid", None) != os.getpid()):
        return None
    return run
