"""``runlog run -- COMMAND``: record any program, in any language.

The program's stdout and stderr pass through to ours unchanged while every
line goes, timestamped, into run.log; lines that are JSON metric objects
become metric points. A Python program underneath is reached through a
``sitecustomize`` on PYTHONPATH (see ``runlog/_boot``) that records its
argparse arguments, and its own ``runlog.start()`` joins this run.

Signals are passed on to the program exactly once (see ``forward``).
"""

from __future__ import annotations

import collections
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time

from .. import joined
from ..args.note import take_note
from ..folder import record
from ..folder.logfile import OUT, RUNLOG
from ..folder.metrics import read_points, summarize
from ..folder.record import write_atomic
from ..lifecycle import Lifecycle
from ..outcome import PRUNED, Outcome
from ..textmetrics import TextMetrics
from .common import CliError, number
from .forward import SIGNALS, Sentinel, forward, in_the_child, which
from .lines import READ_SIZE, Stream

_JSON_LINE = re.compile(rb"^[ \t]*\{[^\n]*\"metric\"[^\n]*$", re.M)  # as a whole line
BOOT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_boot")


def _value(text: str):
    n = number(text)
    if n is not None:
        return n
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    return text


def command_args(cmd: list[str]) -> tuple[dict, list[str]]:
    """``KEY=VALUE`` words (make variables) and ``--key value`` options, as arguments."""
    args: dict = {}
    words = cmd[1:]
    i = 0
    while i < len(words):
        w = words[i]
        i += 1
        if w.startswith("--") and len(w) > 2:
            key, eq, val = w[2:].partition("=")
            if not eq:
                if i < len(words) and not words[i].startswith("-"):
                    val, i = words[i], i + 1
                else:
                    args[key.replace("-", "_")] = True
                    continue
            args[key.replace("-", "_")] = _value(val)
        elif "=" in w and not w.startswith("-") and w.split("=", 1)[0].isidentifier():
            key, _, val = w.partition("=")
            args[key] = _value(val)
    return args, list(args)


def script_of(cmd: list[str]) -> tuple[str, str]:
    """(shown name, identity key) of what is run, to find the previous run of the same thing."""
    exe = os.path.basename(cmd[0])
    if exe.startswith("python") and len(cmd) > 1:
        rest = [w for w in cmd[1:] if not w.startswith("-") or w == "-m"]
        if rest and rest[0] == "-m" and len(rest) > 1:
            return f"-m {rest[1]}", f"{os.getcwd()}::-m {rest[1]}"
        if rest:
            return rest[0], os.path.realpath(rest[0])
    # Targets, subcommands and scripts are part of what is run; option values,
    # KEY=VALUE settings and numbers are not (they are its arguments).
    words = [cmd[0]]
    skip = False
    for w in cmd[1:]:
        if skip:
            skip = False
        elif w.startswith("--"):
            skip = "=" not in w
        elif re.match(r"^[A-Za-z][\w./-]*$", w):
            words.append(w)
    shown = " ".join(words[:3]) + (" …" if len(words) > 3 else "")
    first = cmd[0] if os.sep in cmd[0] else (which(cmd[0]) or cmd[0])
    return shown, f"{os.getcwd()}::{os.path.realpath(first)} {' '.join(words[1:])}".rstrip()


def child_env(run_dir: str, run_id: str, console_fd: int | None) -> dict:
    env = dict(os.environ)
    env.pop("RUNLOG_ID_FILE", None)
    env.pop(record.SWEEP_ENV, None)  # a run the program starts itself is not the trial
    env.pop(record.PRUNE_ENV, None)
    env[joined.ENV_DIR] = os.path.abspath(run_dir)
    env[joined.ENV_ID] = run_id
    if console_fd is not None:
        env[joined.ENV_CONSOLE] = str(console_fd)
    paths = [BOOT_DIR]
    pkg_parent = os.path.dirname(os.path.dirname(BOOT_DIR))
    old = env.get("PYTHONPATH")
    if old:
        paths.append(old)
    paths.append(pkg_parent)  # last: only found if the program's Python lacks runlog
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")  # lines as they are printed, as on a terminal
    # a Python program killed by a segfault or abort() in an extension prints its frames
    # (to stderr: the terminal and run.log), and the record takes its error from them
    env.setdefault("PYTHONFAULTHANDLER", "1")
    return env


class Recorder:
    """The run of one command: a ``Lifecycle`` fed by the program's output and exit status."""

    def __init__(self, root: str, cmd: list[str], note, name, tags, git: bool,
                 reproduces: str | None = None, text: TextMetrics | None = None,
                 rule_words: list[str] | None = None, resume=None):
        self.cmd = cmd
        shown, key = script_of(cmd)
        argv = ["runlog", "run"]
        if name:
            argv += ["--name", name]
        for t in tags:
            argv += ["--tag", t]
        argv += rule_words or []  # how metrics are read from the output is part of the re-run
        # a note among the program's own words is typed as much as runlog run's --note;
        # it is not an argument, and it is not re-run
        word_note, words = take_note(cmd)
        argv += ["--", *words]
        typed = note or word_note or None
        self.life = Lifecycle(root, command=argv, script=shown, script_path=key,
                              typed_note=typed, name=name, tags=tags, reproduces=reproduces, resume=resume,
                              own_process=False)
        trial = record.sweep_key(os.environ.get(record.SWEEP_ENV))
        if trial is not None:  # a trial of `runlog sweep`: its sweep, trial number and values
            self.life.record["sweep"] = trial
        self.run_id, self.dir = self.life.id, self.life.dir
        id_file = os.environ.get("RUNLOG_ID_FILE")
        if id_file:  # `runlog sweep` learns which run is its trial
            try:
                write_atomic(id_file, self.run_id)
            except OSError:
                pass
        self.prune_file = os.environ.get(record.PRUNE_ENV)  # `runlog sweep --prune` writes it
        self.words = words
        self.sink = self.life.log
        self.stderr_tail: collections.deque = collections.deque(maxlen=12)
        self.fatal: list[str] = []  # faulthandler's lines, when the program is a Python that crashed
        self.metrics = self.life.metrics
        self.text = text  # metrics from plain output; None when off
        self.git = git

    def describe(self) -> None:
        """The arguments, run.json and the index line: written once the program is started
        (it needs only the run's folder and id), so it does not wait for them."""
        from ..mask import mask_argv

        args, given = command_args(mask_argv(self.words))
        self.life.set_args(args, given)
        self.life.announce()

    def start_git(self) -> None:
        """Capture the code state on a thread started after the signals are blocked:
        a thread inherits the mask, so a Ctrl-C can never land on it."""
        self.life.start_code_state(self.git)

    def on_block(self, tag: str, buf: bytes, start: int, end: int, t: float) -> None:
        """Lines the program wrote (cleaned, joined by newlines: ``buf[start:end]``): the
        stderr tail for the outcome, and the metrics among them."""
        if tag != OUT:
            tail = buf[max(start, end - 65536):end].rsplit(b"\n", 12)[-12:]
            self.stderr_tail.extend(ln.decode("utf-8", "replace") for ln in tail)
            at = buf.find(b"Fatal Python error: ", start, end)
            if at >= 0 and (at == start or buf[at - 1:at] == b"\n"):
                self.fatal = []
            if (at >= 0 or self.fatal) and len(self.fatal) < 200:
                part = buf[at if at >= 0 else start:end].decode("utf-8", "replace").split("\n")
                self.fatal.extend(part[:200 - len(self.fatal)])
        if b"{" in buf and b'"metric"' in buf:
            body = buf[start:end] if (start, end) != (0, len(buf)) else buf
            found = []
            for m in _JSON_LINE.finditer(body):
                try:
                    obj = json.loads(m.group())
                except (ValueError, TypeError, OverflowError, RecursionError):
                    continue  # not a metric line after all: it stays an output line
                if isinstance(obj, dict) and isinstance(obj.get("metric"), str) and "value" in obj:
                    found.append((obj["metric"], obj["value"], obj.get("step")))
            self.metrics.add_many(found, t)
        if self.text is not None and tag != "ERROR":  # never from a traceback
            self.metrics.add_many(self.text.scan(buf, start, end), t, from_text=True)

    def finish(self, returncode: int, signals_seen: list[int]) -> tuple[str, int]:
        outcome = Outcome()
        outcome.process_ended(returncode, signals_seen, self.stderr_tail)
        if returncode < 0 and outcome.error is None and self.fatal:  # PYTHONFAULTHANDLER's words
            from ..folder.logfile import fatal_from

            outcome.error = fatal_from(self.fatal)
        self.life.adopt_joined()
        self.metrics.close()
        status = None
        if self.prune_file and (signals_seen or returncode != 0) and os.path.exists(self.prune_file):
            status = PRUNED  # the sweep's pruner stopped it: not killed, not failed
        report = self.life.finish(outcome, status, metrics=summarize(read_points(self.dir)))
        self.life.close()
        return report, self.life.record["exit_code"]


def _write_all(fd: int, data: bytes) -> bool:
    try:
        while data:
            n = os.write(fd, data)
            data = data[n:]
        return True
    except OSError:
        return False  # our own stdout went away: keep recording, stop passing through


def run_command(root: str, cmd: list[str], note=None, name=None, tags=(), git=True,
                reproduces: str | None = None, text_metrics: bool = True, metric_regex=(),
                resume: str | None = None) -> int:
    if not cmd:
        raise CliError("nothing to run: runlog run [--note TEXT] -- COMMAND ...")
    text, rule_words = None, []
    if text_metrics:
        try:
            text = TextMetrics(metric_regex)
        except ValueError as e:
            raise CliError(str(e)) from None
        for r in metric_regex:
            rule_words += ["--metric-regex", r]
    else:
        rule_words = ["--no-text-metrics"]
    if which(cmd[0]) is None:
        raise CliError(f"command not found: {cmd[0]}", code=127)
    plan = _resume_plan(root, cmd, resume)
    # from the first write of the record on, a signal waits for pump() to pass it on
    # (the program starts with none blocked: see _in_the_child)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        rec = Recorder(root, cmd, note, name, tags, git, reproduces, text, rule_words, plan)
    except OSError as e:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        # as the library does: the program runs anyway, and one line says what is missing
        sys.stderr.write(f"runlog: could not create a run in {root} ({e.strerror or e}); "
                         f"running {cmd[0]} unrecorded\n")
        sys.stderr.flush()
        return _run_unrecorded(cmd)
    console_fd = os.dup(2)
    sys.stderr.write(f"runlog: {rec.life.opened()} → {rec.sink.path}\n")
    sys.stderr.flush()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=child_env(rec.dir, rec.run_id, console_fd),
                                pass_fds=(console_fd,), preexec_fn=in_the_child(old_mask))
    except OSError as e:
        rec.describe()
        rec.stderr_tail.append(f"runlog: could not start {cmd[0]}: {e.strerror or e}")
        rec.finish(127, [])
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        raise CliError(f"could not start {cmd[0]}: {e.strerror or e}", code=127) from None
    rec.start_git()  # a thread inherits the blocked signals: a Ctrl-C never lands on it
    rec.describe()
    sentinel = Sentinel()
    seen: list[int] = []
    try:
        pump(proc, rec, seen, sentinel)
        returncode = proc.wait()
    finally:
        os.close(console_fd)
        sentinel.stop()
    report, code = rec.finish(returncode, seen)
    sys.stderr.write("\n" + report)
    sys.stderr.flush()
    if returncode < 0:  # die as the program died, so a calling shell or make sees it
        sig = -returncode
        try:
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
            os.kill(os.getpid(), sig)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return code


def _resume_plan(root: str, cmd: list[str], spec: str | None):
    """The run this command continues (--resume, RUNLOG_RESUME, a requeued Slurm job)."""
    from .. import resume

    try:
        return resume.plan(root, script_of(cmd)[1], spec or os.environ.get(resume.ENV) or None)
    except resume.Refused as e:
        raise CliError(str(e)) from None


def _run_unrecorded(cmd: list[str]) -> int:
    """Run the program with our own stdin/stdout/stderr, as if runlog were not there."""
    try:
        proc = subprocess.Popen(cmd)
    except OSError as e:
        raise CliError(f"could not start {cmd[0]}: {e.strerror or e}", code=127) from None
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:  # the terminal's Ctrl-C reached the program too
            continue
    return 128 - code if code < 0 else code


def _widen(fd: int) -> None:
    """A bigger pipe (Linux): fewer, larger reads when the program writes fast."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), READ_SIZE)
    except (ImportError, OSError):
        pass  # over /proc/sys/fs/pipe-max-size for an unprivileged user, or not Linux


def pump(proc: subprocess.Popen, rec: Recorder, seen: list[int], sentinel: Sentinel) -> None:
    """Pass output through and into run.log until the program's pipes close."""
    sel = selectors.DefaultSelector()
    lines = {}
    for stream, tag, dest in ((proc.stdout, "OUT", 1), (proc.stderr, "ERR", 2)):
        sel.register(stream.fileno(), selectors.EVENT_READ, dest)
        lines[stream.fileno()] = Stream(tag, rec.sink, rec.on_block)
        _widen(stream.fileno())
    passing = {1: True, 2: True}
    exited_at = None
    interrupts = 0
    while sel.get_map():
        for key, _ in sel.select(timeout=0.05):
            fd = key.fd
            data = os.read(fd, READ_SIZE)
            if not data:
                sel.unregister(fd)
                lines[fd].close()
                continue
            dest = key.data
            if passing[dest]:
                passing[dest] = _write_all(dest, data)
            lines[fd].feed(data)
        while True:
            info = signal.sigtimedwait(SIGNALS, 0)
            if info is None:
                break
            seen.append(info.si_signo)
            interrupts += 1
            if interrupts >= 3 and proc.poll() is None:
                proc.kill()  # asked three times: stop waiting for a clean exit
                rec.sink.line(RUNLOG, "asked three times: the program was killed (SIGKILL)")
            else:  # said in run.log even when the program has just ended
                forward(proc, rec.sink, info, sentinel)
        if proc.poll() is not None:
            # the program is gone; a background child may hold the pipes open
            exited_at = exited_at or time.monotonic()
            if time.monotonic() - exited_at > 1.0:
                for fd in list(sel.get_map()):
                    sel.unregister(fd)
                    lines[fd].close()
    sel.close()
    proc.stdout.close()
    proc.stderr.close()
