"""What the script prints: a tee on stdout/stderr that logs whole lines to run.log.

Bytes pass through to the real stream at once; the log gets one line per
line written, with a progress bar redrawn with ``\\r`` kept at its final
state. Buffering is linear in what is written: a line is searched only in the
text that arrived since the last newline.

``transformers``, ``datasets``, ``diffusers`` and many others give their top logger its own
``StreamHandler`` and turn ``propagate`` off. Made before ``start()``, that handler holds the
real stderr, not the tee: what it prints would reach the terminal and never run.log. Such
handlers are pointed at the tee for the run (the same bytes reach the same terminal) and put
back at the end; so are loguru's sinks on those streams (its default sink holds the stderr of
``from loguru import logger``).
"""

from __future__ import annotations

import sys
import threading
import time

from .errblocks import ErrorBlocks

_ANSI = None


def last_state(line: str) -> str:
    """The text a terminal would show after carriage returns redraw a line.

    Cursor movements and colours (nested progress bars, coloured loggers) are
    dropped: the log is for reading and grepping.
    """
    global _ANSI
    if "\x1b" in line:
        if _ANSI is None:
            import re

            # CSI (colours, cursor), OSC up to BEL or ST (rich's links to a source line,
            # window titles), then any other two-character escape
            _ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
        line = _ANSI.sub("", line)
    if "\r" not in line:
        return line
    parts = line.split("\r")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()  # "text\r": the cursor went back, the text stays
    return parts[-1] if parts[-1].strip() else ""


def _handlers_through(tee) -> bool:
    """Whether a logging handler of the script's may be writing through ``tee``.

    Such a handler's records also reach runlog's own handler, so what it
    prints is not logged again (``frames.written_by_log_handler``, a walk up
    the stack: ~1.5 us, too much for every write). Looked at again only when
    a handler was made or dropped (``logging._handlerList``, where every
    handler adds itself).
    """
    logging = sys.modules.get("logging")
    if logging is None:
        return False
    handlers = tee._handlers = getattr(logging, "_handlerList", None)
    if handlers is None:
        return True  # a logging we do not know: always look
    n = len(handlers)
    last = handlers[-1] if n else None
    if n != tee._handlers_n or last is not tee._handlers_last:
        tee._handlers_n, tee._handlers_last = n, last
        tee._handlers_through = _writes_through(logging, handlers, tee)
    return tee._handlers_through


def _writes_through(logging, handlers, tee) -> bool:
    import io

    for ref in list(handlers):
        h = ref() if callable(ref) else None
        if h is None or h is logging.lastResort or getattr(h, "runlog_sink", False) is not False:
            continue  # lastResort prints only records that reach no handler: never runlog's
        if not isinstance(h, logging.StreamHandler):
            if type(h).__module__ not in ("logging", "logging.handlers"):
                return True  # a handler of its own kind (rich's) may print through the tee
            continue
        try:
            stream = h.stream
        except Exception:
            return True
        # a real file or terminal stream bypasses the tee; the tee, or a wrapper of
        # some kind (colorama's) may lead to it
        if stream is tee or not isinstance(stream, io.IOBase):
            return True
    return False


_NONE: list = []  # no line completed (never appended to)
LINE_LIMIT = 1 << 20  # characters of one line kept in run.log; the rest is counted, not kept


class Pending:
    """The line being written, in pieces: linear in what is written, bounded in memory.

    Works on text or bytes alike. A piece holding ``\r`` redraws the line, so
    only what a terminal would still show is kept; a line longer than
    ``limit`` keeps its head and counts what is cut.
    """

    def __init__(self, empty, limit: int = LINE_LIMIT):
        self.empty = empty
        self.nl = empty.__class__("\n", "ascii") if isinstance(empty, bytes) else "\n"
        self.cr = empty.__class__("\r", "ascii") if isinstance(empty, bytes) else "\r"
        self.limit = limit
        self.parts: list = []
        self.size = 0
        self.cut = 0

    def feed(self, data) -> list:
        """Add what was written; returns the lines it completed."""
        if self.nl not in data:
            parts = self.parts  # a piece of a line (dots, a long line): appended
            if (parts and self.cr not in data and parts[-1][-1:] != self.cr
                    and self.size + len(data) <= self.limit):
                parts.append(data)
                self.size += len(data)
            else:
                self._add(data)
            return _NONE
        if data == self.nl:  # print()'s end
            return [self.take()]
        lines = []
        nl = self.nl
        start = 0
        while True:
            i = data.find(nl, start)
            if i < 0:
                self._add(data[start:] if start else data)
                return lines
            self._add(data[start:i])
            lines.append(self.take())
            start = i + 1

    def _add(self, piece) -> None:
        if not piece:
            return
        if self.cr in piece:  # a redraw: the state so far and this piece, collapsed
            joined = self.empty.join(self.parts) + piece
            state = _collapse(joined, self.cr)
            self.parts, self.size, self.cut = [state], len(state), 0
            return
        if self.parts and self.parts[-1].endswith(self.cr):  # the cursor went back: a redraw
            self.parts, self.size, self.cut = [], 0, 0
        room = self.limit - self.size
        if len(piece) > room:
            self.cut += len(piece) - max(room, 0)
            piece = piece[:max(room, 0)]
            if not piece:
                return
        self.parts.append(piece)
        self.size += len(piece)

    def take(self):
        """The line so far (and how much of it was cut), and start a new one."""
        parts = self.parts
        line = parts[0] if len(parts) == 1 else self.empty.join(parts)
        if self.cut:
            more = f" … [{self.cut} more characters not kept]"
            line += more.encode() if isinstance(line, bytes) else more
        self.parts, self.size, self.cut = [], 0, 0
        return line

    def __bool__(self) -> bool:
        return bool(self.parts)


def _collapse(text, cr):
    """What a redrawn line can still become: the text after the last ``\r`` (kept with the
    ``\r`` when nothing followed it yet, so the next write redraws rather than extends)."""
    head, _, tail = text.rpartition(cr)
    if tail:
        return tail
    prev = head.rpartition(cr)[2]
    return prev + cr


class Tee:
    """Passes writes through to the real stream and logs whole lines to run.log."""

    def __init__(self, stream, log, tag: str):
        self._stream = stream
        self._log_file = log
        self._tag = tag
        self._pending = Pending("")
        # reentrant: a signal handler that finishes the run (SIGTERM) may interrupt this very
        # tee in the middle of a write, and the finish drains it
        self._lock = threading.RLock()
        self._runlog_undone = False  # taken out of sys.stdout/stderr under someone's wrapper
        self._buffer_tee = None  # the bytes layer, once the script asks for it
        self._errors = ErrorBlocks() if tag == "ERR" else None
        self._handlers_n, self._handlers_last, self._handlers_through = -1, None, True
        logging = sys.modules.get("logging")  # the list every handler adds itself to
        self._handlers = getattr(logging, "_handlerList", None) if logging else None

    def write(self, s):
        n = self._stream.write(s)
        if s and not self._runlog_undone:
            try:
                if type(s) is not str:
                    s = str(s)
                # every write is looked at: a handler may write its record in pieces (tqdm's
                # logging redirect writes the message, then the newline)
                handlers = self._handlers  # _handlers_through() inline while nothing changed
                n_handlers = -1 if handlers is None else len(handlers)
                if n_handlers < 0 or n_handlers != self._handlers_n or (
                        n_handlers and handlers[-1] is not self._handlers_last):
                    through = _handlers_through(self)
                else:
                    through = self._handlers_through
                if through:
                    from .args.frames import written_by_log_handler

                    if written_by_log_handler():
                        return n
                with self._lock:
                    if s == "\n":  # print()'s end: the line so far, whole
                        text = self._pending.take()
                        if "\x1b" in text or "\r" in text:
                            text = last_state(text)
                        errors = self._errors
                        self._log_file.line(errors.tag(text, self._tag) if errors else self._tag, text)
                    else:
                        lines = self._pending.feed(s)
                        if lines:
                            self._lines(lines)
            except Exception:
                pass
        return n

    def _lines(self, lines: list) -> None:
        """Whole lines written: each to run.log (the lock held)."""
        now = time.time()
        line = self._log_file.line
        errors = self._errors
        for ln in lines:
            text = last_state(ln)
            line(errors.tag(text, self._tag) if errors else self._tag, text, now)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        return self._stream.flush()

    def drain(self) -> None:
        """Log a last unfinished line (a bar never ended with a newline)."""
        with self._lock:
            text = last_state(self._pending.take())
            if text.strip():
                self._log_file.line(self._tag, text)
            if self._buffer_tee is not None:
                self._buffer_tee.drain()

    @property
    def buffer(self):
        """The stream's bytes layer, whose writes are logged too (``rawout``)."""
        raw = self._stream.buffer
        if self._buffer_tee is None or self._buffer_tee._raw is not raw:
            from .rawout import BufferTee

            self._buffer_tee = BufferTee(raw, self, Pending(b""))
        return self._buffer_tee

    def detach(self):
        """The bytes layer, handed over (``io.TextIOWrapper(sys.stdout.detach(), ...)``): the
        logging one, as ``buffer`` gives, so what the new text layer writes is logged too."""
        buffer = self.buffer
        self._stream.detach()
        return buffer

    def __getattr__(self, name):
        return getattr(self._stream, name)


# ---------------------------------------------------------------- installing the tees


def tee_streams(run, log) -> None:
    """Tee stdout and stderr into ``log`` for ``run`` (its patches and its tees)."""
    from .coexist import std_stream

    p = run.patches
    for attr, tag in (("stdout", "OUT"), ("stderr", "ERR")):
        stream = getattr(sys, attr)
        if stream is not None:
            tee = Tee(stream, log, tag)
            p.apply(attr, std_stream, attr, tee)
            run._tees.append(tee)
    if run._tees:
        p.apply("library_handlers", library_handlers, list(run._tees))


def library_handlers(tees: list):
    """Point at ``tees`` the stream handlers, on loggers whose records never reach the root,
    that write to a stream a tee wraps; returns the undo, or None when there is none."""
    logging = sys.modules.get("logging")
    handler_list = getattr(logging, "_handlerList", None) or []
    wrapped = {id(t._stream): t for t in tees}
    moved = _loguru_sinks(wrapped)
    on_root = logging.root.handlers
    candidates = []
    for ref in list(handler_list):
        h = ref() if callable(ref) else None
        if (isinstance(h, logging.StreamHandler) and id(getattr(h, "stream", None)) in wrapped
                and h not in on_root):
            candidates.append(h)
    for logger in list(logging.root.manager.loggerDict.values()) if candidates else ():
        if not isinstance(logger, logging.Logger) or not logger.handlers or _reaches_root(logger):
            continue
        for h in list(logger.handlers):
            if h in candidates and all(h is not m[0] for m in moved):
                original = h.stream
                tee = wrapped.get(id(original))
                if tee is not None:
                    h.setStream(tee)
                    moved.append((h, original, tee))
    if not moved:
        return None

    def undo():
        for h, original, tee in moved:
            if isinstance(h, logging.Handler):
                if h.stream is tee:  # not pointed elsewhere since
                    h.setStream(original)
            elif getattr(h, "_stream", None) is tee:
                h._stream = original

    return undo


def _loguru_sinks(wrapped: dict) -> list:
    """loguru's sinks on a stream a tee wraps (its default one: the stderr of ``from loguru
    import logger``), pointed at the tee; [(sink, original, tee)]. Its internals, read
    carefully: a loguru that differs is left alone."""
    loguru = sys.modules.get("loguru")
    moved = []
    try:
        handlers = loguru.logger._core.handlers if loguru is not None else {}
        for handler in list(handlers.values()):
            sink = getattr(handler, "_sink", None)
            if type(sink).__name__ == "StreamSink" and id(getattr(sink, "_stream", None)) in wrapped:
                original = sink._stream
                tee = wrapped[id(original)]
                sink._stream = tee
                moved.append((sink, original, tee))
    except Exception:
        pass
    return moved


def _reaches_root(logger) -> bool:
    while logger is not None:
        if not logger.parent:
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return True
