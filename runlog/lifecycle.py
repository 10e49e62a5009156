"""The one life of a run: open → arguments → code state → finish, for ``start()`` and ``runlog run``.

Both ways of starting a run make it here, so they give the same record for
the same inputs: the same folder and first lines, the same note rule
(``args.note.decide``), the same code state and previous run, the same status
table (``status_of``), the same last writes (run.json, report.md, the index
line) and the same report. What differs is only how the end is learnt: a
Python process tells its ``Outcome`` through exit hooks, ``runlog run`` from
its program's exit status and the signals it was sent.
"""

from __future__ import annotations

import os
import threading
import time

from .folder import index, record
from .folder.layout import RunFolder
from .folder.logfile import RUNLOG, LogFile
from .folder.metrics import Metrics
from .mask import mask_args, mask_argv

from .outcome import Outcome
from .sigmask import held, no_interrupts, unmasked

GIT_WAIT_S = 5.0  # how long finish() waits for a slow git capture
FACTS_WAIT_S = 2.0  # … and for the machine and environment facts after it


def say(message: str) -> None:
    """runlog's one-line messages (console.say, loaded when first needed: it brings
    ``logging``, which ``runlog run`` does not otherwise need)."""
    from .console import say as say_

    say_(message)


# ---------------------------------------------------------------- the life of a run


class Lifecycle:
    """One run's record from its folder's making to its last write."""

    def __init__(self, root: str, *, command: list[str], script: str | None,
                 script_path: str | None, typed_note: str | None = None,
                 code_note: str | None = None, name=None, tags=(), t0: float | None = None,
                 secret_opts=None, reproduces: str | None = None,
                 own_process: bool = True, resume=None):
        from .args.note import decide
        from .fmt import command_line

        self.root = root
        self.t0 = time.time() if t0 is None else t0
        old = resume.record if resume is not None else None  # resume: a resume.Plan or None
        self.resumed = old is not None
        self.id, path = (old["id"], old["dir"]) if old else index.new_run_dir(root, name, self.t0)
        self.folder = RunFolder(path)
        self.dir = path
        self.typed_note = typed_note
        note = decide(typed_note, code_note)
        # the command as typed stays in memory only; what is written is masked with what is
        # known of the parser's secret options (``remask`` when the parser shows up)
        self._raw_command = [record.clean_text(a) for a in command]
        self._secret_opts = None if secret_opts is None else list(secret_opts)
        shown = self._masked_command()
        self.record = record.new_record(
            self.id, self.t0, command=shown, command_line=command_line(shown) if shown else None,
            script=script, script_path=script_path, note=note, name=name, tags=tags,
            reproduces=reproduces,  # `runlog reproduce --run`: compared with the run it reproduces
            scheduler=_scheduler(), own_process=own_process)
        if resume is not None:
            self.record = resume.apply(self.record, self.t0)
        self.own_process = own_process  # start(): the program is this process (not `runlog run`)
        self.facts = None  # facts.collect.Facts, once the code-state thread made it
        self.facts_done: threading.Event | None = None
        self.lock = threading.RLock()
        self.finished = False
        self.prev: dict | None = None
        self._failed: set[str] = set()
        self._git_done: threading.Event | None = None
        self._last_save = 0.0
        self.interrupted = False  # a Ctrl-C while the end waited for git
        self.log = LogFile(self.folder.log, say=say)
        from .fmt import printable

        # runlog's own lines are one line each, whatever the recorded text holds
        if old:
            self.log.line(RUNLOG, printable(resume.marker(self.record)), self.t0)
        else:
            self.log.line(RUNLOG, printable(
                f"run {self.id} started: {self.record['command_line'] or '(interactive)'}"), self.t0)
        if note and (not old or note != self.record.get("note")):  # a resumed run keeps its note
            self.log.line(RUNLOG, printable(f"note: {note}"), self.t0)
        self.metrics = Metrics(self.folder.metrics, say=say)
        if old:  # the summary so far; the exact one (repeated steps) is made at the finish
            self.metrics.summary = {k: dict(v) for k, v in (self.record.get("metrics") or {}).items()}
        self._plan = resume

    def opened(self) -> str:
        """What the console is told first: ``run ID`` (``resumed (segment N)``)."""
        n = len(self.record.get("segments") or ())
        return f"run {self.id} resumed (segment {n})" if self.resumed else f"run {self.id}"

    # ---------------------------------------------------------------- the command, masked

    def _masked_command(self, final: bool = False) -> list[str]:
        """The command with secrets masked. While the parser is unknown, a short option's
        value may be a secret's (``-p`` for ``--password``): hidden until the parser shows
        which are; at the end, without a parser, only what names say is secret."""
        if self._secret_opts is not None:
            return mask_argv(self._raw_command, self._secret_opts)
        masked = mask_argv(self._raw_command)
        from .mask import hide_short_values

        return masked if final else hide_short_values(masked)

    def remask(self, secret_opts=None, final: bool = False) -> None:
        """Mask the command again: the parser is known now (its secret options), or the
        run ends without one having shown (``final``: what names say is secret)."""
        from .fmt import command_line

        if not final:
            self._secret_opts = list(dict.fromkeys([*(self._secret_opts or ()), *(secret_opts or ())]))
        shown = self._masked_command(final)
        with self.lock:
            self.record["command"] = shown
            self.record["command_line"] = command_line(shown) if shown else None

    # ---------------------------------------------------------------- saying

    def fail_once(self, what: str, message: str) -> None:
        """Say once, on stderr, what could not be done; the script goes on."""
        if what not in self._failed:
            self._failed.add(what)
            say(f"{message}; the script goes on")

    # ---------------------------------------------------------------- writing

    def save(self) -> None:
        with self.lock:
            try:
                record.write(self.dir, self.record, pretty=self.finished)
                self._last_save = time.time()
            except OSError as e:
                self.fail_once("record", f"could not write {self.folder.record} ({e.strerror or e})")

    def save_now_and_then(self, metrics_summary: dict) -> None:
        """Keep the metrics summary in run.json fresh for `runlog ls`, at most every 10 s."""
        if time.time() - self._last_save > 10 and not self.finished:
            with self.lock:
                self.record["metrics"] = metrics_summary
            self.save()

    def announce(self) -> None:
        """The run's first index line (run.json is written by then)."""
        try:
            index.append_record(self.root, self.record)
        except OSError as e:
            self.fail_once("index", f"could not write the index of {self.root} ({e.strerror or e})")

    def set_args(self, args: dict, given: list[str], sources: dict | None = None) -> dict:
        """Record the arguments (masked) and write them at the top of the log; ``sources``:
        where a script's globals came from (``args.script_globals``)."""
        from .fmt import flatten

        masked = mask_args(record.jsonable(args))
        flat = flatten(masked)
        given = [g for g in dict.fromkeys(given or []) if g in masked or g in flat]
        with self.lock:
            self.record["args"] = masked
            self.record["args_given"] = given
            set_sources(self.record, sources)
        self.log.args_line(masked)
        self.save()
        return masked

    # ---------------------------------------------------------------- the code state

    def start_code_state(self, git: bool) -> None:
        """Capture the code state and find the previous run on a raw thread of its own (a fork
        waits for it: ``active.start_thread``). Threads inherit the signal mask: `runlog run`
        calls this with its signals blocked."""
        from .active import start_thread

        self.facts_done = threading.Event()
        if self.resumed:  # the code state and the previous run are the first segment's
            prev = self.record.get("previous")
            self.prev = index.read_run(self.root, prev) if prev else None
        elif not git:
            from .folder import trials

            self.prev = trials.previous(self.root, self.record)
            self.record["previous"] = self.prev["id"] if self.prev else None
        if self.resumed or not git:
            self._remember_job()
            with no_interrupts():  # born blocked, as the code-state thread below
                start_thread(self._gather_facts)
            return
        self._git_done = threading.Event()
        from .git import Status

        status = Status(self.record["cwd"], exclude=self.root)  # git starts now, on another core
        with no_interrupts():  # born blocked: a SIGTERM caught there would wait out a time.sleep
            start_thread(self._code_state, status)
            # the facts beside git, not after it: the end waits for the longer, not the sum
            start_thread(self._gather_facts)

    def _remember_job(self) -> None:
        """Under a scheduler, point its job at this run (off the script's thread with git)."""
        if self._plan is not None:
            try:
                self._plan.remember(self.root, self.record)
            except OSError as e:
                self.fail_once("jobs", f"could not note the run of this job ({e.strerror or e})")

    def _code_state(self, status=None) -> None:
        try:
            try:  # a signal for the script is handled by its main thread, never here
                import _signal

                _signal.pthread_sigmask(_signal.SIG_BLOCK, held())
            except (ImportError, AttributeError, OSError, ValueError):
                pass
            self._remember_job()
            from .codestate import code_state

            scratch = dict(self.record)  # captured off the lock; git can take a while
            prev = code_state(scratch, self.dir, self.root, self.fail_once, status)
            with self.lock:
                for key in ("git", "previous", "code_changes"):
                    if key in scratch:
                        self.record[key] = scratch[key]
                self.prev = prev
            # run.json first: a run killed from here on (a crash of the script, the OOM
            # killer) still names its code state, and run.log's line below says it is there
            self.save()
            info = scratch["git"]
            if info:
                n = len(info["changed_files"])
                dirty = f", {n} file{'s' if n != 1 else ''} changed" if info["dirty"] else ""
                at = info["short"] or "no commits yet on"  # a fresh `git init`
                self.log.line(RUNLOG, f"git: {at} {info['branch'] or '(detached)'}{dirty}")
        except Exception as e:
            self.fail_once("git", f"could not record the code state ({type(e).__name__}: {e})")
        finally:
            self._git_done.set()

    def _gather_facts(self) -> None:
        """The machine, the installed set, the previous run's whole record: off the script's thread."""
        from .facts.collect import gather_background

        gather_background(self, GIT_WAIT_S)

    @property
    def git_done(self) -> threading.Event | None:  # set once the code state is captured
        return self._git_done

    def wait_code_state(self, unmask: bool = False) -> None:
        """Wait (briefly) for the code state; a Ctrl-C here stops the wait, not the record.

        ``unmask``: the caller holds ``no_interrupts()``; a Ctrl-C may land only
        inside this wait, where it is caught.
        """
        done = self._git_done
        if done is None:
            return
        deadline = time.monotonic() + GIT_WAIT_S
        while not done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail_once("git", "git took too long; the code state is not recorded")
                return
            try:
                with unmasked(unmask):
                    done.wait(min(left, 0.25))
            except KeyboardInterrupt:
                self.interrupted = True
                self.fail_once("git", "interrupted while waiting for git; the code state is not recorded")
                return

    # ---------------------------------------------------------------- the end

    def adopt_joined(self) -> None:
        """What a Python program inside `runlog run` handed over: its arguments and its note."""
        from .folder import handoff

        joined = handoff.read_args(self.dir)
        if joined and isinstance(joined.get("secret_options"), list):
            self.remask([str(o) for o in joined["secret_options"]])
        with self.lock:
            r = self.record
            if joined:
                r["args"] = joined.get("args") or {}
                r["args_given"] = joined.get("args_given") or []
                set_sources(r, joined.get("args_source"))
            from .args.note import decide

            code_note = handoff.read_note(self.dir)
            typed = self.typed_note or (joined or {}).get("note")
            r["note"] = decide(typed, code_note)

    def finish(self, outcome: Outcome, status: str | None = None, metrics: dict | None = None,
               before_save=None) -> str:
        """The last writes: run.json, report.md, the index line. Returns the report."""
        self.wait_code_state()
        with no_interrupts():
            return self._finish(outcome, status, metrics, before_save)

    def _finish(self, outcome: Outcome, status, metrics, before_save) -> str:
        from .fmt import shown_path
        from .report import render

        t = time.time()
        if self.interrupted and outcome.error is None and outcome.signum is None:
            outcome.error = {"type": "KeyboardInterrupt", "message": "while the end waited for git",
                             "where": None, "traceback": []}
        st, code, sig = outcome.resolve()
        if status is not None:
            st = status
        if self._secret_opts is None:  # no parser ever showed: what names say is secret
            self.remask(final=True)
        with self.lock:
            self.finished = True
            r = self.record
            r["status"] = st
            r["exit_code"] = code
            if sig:
                r["signal"] = sig
            started = record.process_started_at(r.get("pid_start"))
            if started is not None and r.get("command"):  # a script's process, not a notebook
                # the time its process spent before start() (imports, data loading)
                r["startup_s"] = round(max(self.t0 - started, 0.0), 2)
            r["error"] = outcome.error
            r["ended_at"] = record.iso(t)
            r["duration_s"] = round(t - self.t0, 3)
            self.metrics.close()
            r["metrics"] = metrics if metrics is not None else self.metrics.summary
            if r.get("segments"):  # its duration is the segments' sum; a repeated step counts once
                from .folder import segments

                segments.close(r, t, st)
                if len(r["segments"]) > 1:
                    r["metrics"] = segments.summarize_run(self.dir, r)
        if self.facts_done is not None:
            from .facts.collect import gather_at_end

            gather_at_end(self, FACTS_WAIT_S)
        if before_save is not None:
            before_save(r)
        from .folder import notes

        later = notes.read(self.dir)  # read once: the report and the index line both carry them
        report = render({**r, "dir": shown_path(self.dir, record.start_dir(r)), "notes": later}, self.prev)
        self.log.line(RUNLOG, f"run {st} after {r['duration_s']:.1f} s")
        self.save()
        try:
            record.write_atomic(self.folder.report, report)
        except OSError as e:
            self.fail_once("report", f"could not write {self.folder.report} ({e.strerror or e})")
        try:
            index.append_record(self.root, r, later)
            if st == "finished":
                from .folder import latest

                latest.remember(self.root, r)
        except OSError:
            pass
        return report

    def close(self) -> None:
        self.metrics.close()
        self.log.close()


def _scheduler() -> dict | None:
    """The batch job this run is part of; nothing is imported outside one (start()'s cost)."""
    if not any(k in os.environ for k in _JOB_VARS):
        return None
    from .facts import scheduler

    return scheduler.current()


_JOB_VARS = ("SLURM_JOB_ID", "SLURM_JOBID", "PBS_JOBID", "LSB_JOBID")


def set_sources(r: dict, sources) -> None:
    """``args_source``: where each argument not the script's own came from, or nothing;
    a nested argument by its flattened name (``model.layers``)."""
    if isinstance(sources, dict) and sources:
        from .fmt import flatten

        known = flatten(r["args"]) if isinstance(r["args"], dict) else {}
        r["args_source"] = {str(k): str(v) for k, v in sources.items()
                            if k in r["args"] or k in known}
    else:
        r.pop("args_source", None)
