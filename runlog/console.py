"""The run's log handler (one record formatted once, written to run.log and the console),
and runlog's own one-line messages.

The standard ``FileHandler`` + ``StreamHandler`` pair formats every record
twice, calls ``time.strftime`` for each, takes a lock per handler and goes
through a buffered text layer that it flushes after every line. Here the time
prefix is computed once per second, the file line is handed to the OS with one
``os.write`` on an ``O_APPEND`` descriptor (a ``tail -f`` sees it at once, a
kill -9 loses nothing already logged, and lines from many threads or forked
workers never interleave), and no lock is needed.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import sys

from .folder import logfile

_COLORS = {
    "DEBUG": "\x1b[2m", "INFO": "\x1b[32m", "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m", "CRITICAL": "\x1b[1;31m",
}
_RESET = "\x1b[0m"
_LogRecord = logging.LogRecord


def say(message: str) -> None:
    """runlog's own one-line messages, straight to the real stderr."""
    _write_text(sys.__stderr__ or sys.stderr, f"runlog: {message}\n")


def _write_text(stream, text: str) -> None:
    """Write and flush; a stream detached or closed by the script since (it rewrapped the
    console: ``io.TextIOWrapper(sys.stderr.detach(), ...)``) gives way to its ``sys.stderr``."""
    for s in (stream, sys.stderr):
        try:
            if s is not None:
                s.write(text)
                s.flush()
            return
        except ValueError:  # detached, or closed
            if s is sys.stderr:
                return
        except Exception:
            return


def write_quietly(stream, text: str) -> None:
    """A line of runlog's own on the console, which may be gone (a closed pipe)."""
    try:
        stream.write(text)
        stream.flush()
    except Exception:
        pass


def show_report(report: str, stream, *, notebook: bool = False, copy: bool = False) -> None:
    """The final report: as Markdown in a notebook, else on the run's console (stderr);
    also on the clipboard with ``copy``."""
    if not (notebook and sys.modules["runlog.notebook"].show_markdown(report)):
        _write_text(stream or sys.__stderr__, "\n" + report)
    if copy:
        from .clipboard import copy as to_clipboard

        why = to_clipboard(report)
        if why:
            say(why)


def level_number(level) -> int:
    """``start(level=)`` as a number: 20, "INFO", "info"."""
    if isinstance(level, int):
        return level
    value = logging.getLevelName(str(level).upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}")
    return value


class RunHandler(logging.Handler):
    """Writes each record to run.log and, concisely, to the console."""

    def __init__(self, sink: logfile.LogFile | None, console=None, level: int = logging.NOTSET,
                 color: bool | None = None):
        super().__init__(level)
        self.sink = sink
        self.console = console
        if color is None:
            color = _wants_color(console)
        self.color = color
        self._sec = -1
        self._fprefix = self._cprefix = ""
        self._heads: dict[tuple[str, str], tuple[str, str]] = {}
        self._last = (None, None, "", "")  # the last record's level and logger, and their heads

    @property
    def runlog_sink(self):
        """The run.log this handler writes (None: the console only); what
        ``frames.written_by_log_handler`` looks for among the root's handlers."""
        return self.sink

    @property
    def console(self):
        return self._console

    @console.setter
    def console(self, stream) -> None:
        self._console = stream
        self._cfd = _direct_fd(stream)

    def emit(self, record: logging.LogRecord) -> bool:
        # The hot path of every log call: one message, one time prefix per second,
        # one os.write to the file, one to the console. Every step here is paid per
        # record; what can be is looked up once (a second, a logger) and kept.
        if self.filters and not self.filter(record):
            return False
        try:
            if type(record) is _LogRecord:  # getMessage() inline; a record class of the
                msg = record.msg  # program's own (setLogRecordFactory) keeps its own
                if type(msg) is not str:
                    msg = str(msg)
                if record.args:
                    msg = msg % record.args
            else:
                msg = record.getMessage()
            if record.exc_info or record.exc_text or record.stack_info:
                msg = _with_traceback(record, msg)
            level, name, fhead, chead = self._last
            if record.levelname is not level or record.name is not name:
                fhead, chead = self._make_heads(record.levelname, record.name)
            t = record.created
            sec = int(t)
            if sec != self._sec:
                self._new_second(sec)
            sink = self.sink
            if sink is not None:
                ms = int((t - sec) * 1000)
                line = f"{self._fprefix}{_MILLIS[ms] or _millis(t, sec)}{fhead}{msg}\n"
                fd = sink.fd
                try:  # the usual case inline; AppendFile.write does the rest (and says failures)
                    if fd is None or fd < 0:
                        raise OSError
                    data = line.encode()
                    n = _write(fd, data)
                    if n < len(data):  # a short write (a signal, a nearly full disk)
                        sink.write_bytes(data[n:])
                except (OSError, UnicodeEncodeError):
                    sink.write(line)
            console = self._console
            if console is not None:
                text = f"{self._cprefix}{chead}{msg}\n"
                cfd = self._cfd
                if cfd >= 0 and not _bars_possible:
                    try:
                        data = text.encode()
                        n = _write(cfd, data)
                        if n < len(data):  # a pipe's write cut short by a signal
                            _write_rest(cfd, data[n:])
                    except UnicodeEncodeError:  # the stream's errors= (backslashreplace) decides
                        console.write(text)
                        console.flush()
                elif _bars_possible and _active_bar() is not None:
                    # clear the bars, print above them, redraw them below
                    with _active_bar().external_write_mode(file=sys.stderr):
                        console.write(text)
                        console.flush()
                else:
                    console.write(text)
                    console.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
        return True

    # Handler.handle takes the handler's lock around emit(): none is needed (each write
    # above is one call), and the record goes straight in (one Python call a record less)
    handle = emit

    def _make_heads(self, level: str, name: str) -> tuple[str, str]:
        """What follows the time on a file line and on a console line, per level and logger."""
        heads = self._heads.get((level, name))
        if heads is None:
            who = "" if name == "root" or name == "__main__" else name + ": "
            if self.color:
                console = f"\x1b[0m {_COLORS.get(level, '')}{level:<7}{_RESET} {who}"
            else:
                console = f" {level:<7} {who}"
            heads = self._heads[(level, name)] = (logfile.head(level, who), console)
        self._last = (level, name, *heads)
        return heads

    def _new_second(self, sec: int) -> None:
        global _bars_possible
        self._sec = sec
        self._fprefix = logfile.second_prefix(sec)
        self._cprefix = self._fprefix[11:]
        if self.color:
            self._cprefix = f"\x1b[2m{self._cprefix}"
        _bars_possible = "tqdm.std" in sys.modules


_millis = logfile.millis
_MILLIS = logfile.MILLIS
_write = os.write


def _direct_fd(stream) -> int:
    """The descriptor under a text stream that holds nothing back, or -1.

    sys.stderr is unbuffered and write-through: a line handed straight to its
    descriptor can never overtake text written through the stream, and skips
    the text layer's encode, write and flush (a third of the console's cost).
    Any other stream (a notebook's, a buffered file, a non-UTF-8 terminal) is
    written through as before.
    """
    try:
        if (type(stream) is io.TextIOWrapper and stream.write_through
                and type(stream.buffer) is io.FileIO
                and codecs.lookup(stream.encoding).name == "utf-8"):
            return stream.fileno()
    except Exception:
        pass
    return -1


def _write_rest(fd: int, data: bytes) -> None:
    while data:
        n = _write(fd, data)
        if n <= 0:  # nothing taken: never spin on it
            return
        data = data[n:]


_bars_possible = False  # tqdm imported: checked once a second, not per record


def _with_traceback(record: logging.LogRecord, msg: str) -> str:
    if record.exc_info and not record.exc_text:
        record.exc_text = _fmt_exc(record.exc_info)
    if record.exc_text:
        msg = f"{msg}\n{record.exc_text}"
    if record.stack_info:
        msg = f"{msg}\n{record.stack_info}"
    return msg


def _active_bar():
    """tqdm's class when a tqdm progress bar is on screen, so lines go above it."""
    std = sys.modules.get("tqdm.std")
    if std is None:
        return None
    cls = getattr(std, "tqdm", None)
    instances = getattr(cls, "_instances", None)
    return cls if instances else None


def _fmt_exc(exc_info) -> str:
    import traceback

    return "".join(traceback.format_exception(*exc_info)).rstrip("\n")


def _wants_color(stream) -> bool:
    if stream is None or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except Exception:
        return False


def basic_config_while_running(original):
    """``logging.basicConfig`` while a run is active: as if runlog's handler were not there.

    Without this, a script that configures logging after ``start()`` would see
    its basicConfig do nothing (the root logger already has a handler). The
    script's own handler is bound to the real stderr, and runlog stops echoing
    to the console if the script now does it itself.
    """

    def basic_config(**kwargs):
        root = logging.getLogger()
        ours = [h for h in root.handlers if isinstance(h, RunHandler)]
        for h in ours:
            root.removeHandler(h)
        saved_err, saved_out = sys.stderr, sys.stdout
        sys.stderr = getattr(saved_err, "_stream", saved_err)  # past runlog's tee
        sys.stdout = getattr(saved_out, "_stream", saved_out)
        try:
            original(**kwargs)
        finally:
            sys.stderr, sys.stdout = saved_err, saved_out
            for h in ours:
                root.addHandler(h)
                if any(prints_to_console(x) for x in root.handlers):
                    h.console = None

    return basic_config


def config_while_running(original):
    """``logging.config.dictConfig``/``fileConfig`` while a run is active: the configuration
    replaces the root's handlers, runlog's with them (and closes it); runlog's is put back
    after it, so the script's records still reach run.log. Its console echo stops if the
    configuration now prints to the console itself."""

    def configure(*args, **kwargs):
        root = logging.getLogger()
        ours = [h for h in root.handlers if isinstance(h, RunHandler)]
        try:
            return original(*args, **kwargs)
        finally:
            for h in ours:
                if h not in root.handlers:
                    root.addHandler(h)
                if any(prints_to_console(x) for x in root.handlers):
                    h.console = None

    return configure


def has_console_handler(logger: logging.Logger) -> bool:
    """Whether the script already logs to the terminal (basicConfig before start(), absl's
    ``app.run``, a rich or colour handler): then runlog's console echo would double it."""
    return any(prints_to_console(h) for h in logger.handlers)


def prints_to_console(h) -> bool:
    """Whether a logging handler prints to stdout or stderr: a StreamHandler of any kind on
    one (not a file), absl's handler (through its ``python_handler``), rich's (its ``console``)."""
    std = [s for s in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__) if s is not None]
    if isinstance(h, RunHandler) or isinstance(h, logging.FileHandler):
        return False
    if isinstance(h, logging.StreamHandler):
        return any(getattr(h, "stream", None) is s for s in std)
    inner = getattr(h, "python_handler", None)  # absl.logging.ABSLHandler
    if isinstance(inner, logging.Handler) and inner is not h:
        return prints_to_console(inner)
    try:
        out = getattr(getattr(h, "console", None), "file", None)  # rich.logging.RichHandler
    except Exception:
        return False
    return (out is not None and any(out is s for s in std)) or _to_loguru(h)


def _to_loguru(h) -> bool:
    """Whether ``h`` is loguru's documented ``InterceptHandler`` (records handed to
    ``logger.opt(...).log(...)``, which prints them) while loguru prints to the console."""
    if "loguru" not in sys.modules:
        return False
    code = getattr(getattr(type(h), "emit", None), "__code__", None)
    if code is None or "opt" not in code.co_names:
        return False
    try:
        sinks = sys.modules["loguru"].logger._core.handlers.values()
        return any(type(getattr(x, "_sink", None)).__name__ == "StreamSink" for x in sinks)
    except Exception:
        return False
