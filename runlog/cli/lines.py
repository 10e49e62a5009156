"""One of the program's pipes under ``runlog run``: whole lines into run.log, in bulk.

The pass-through path of a chatty program. Each read (up to ``READ_SIZE``
bytes) is written to the terminal as it came, and its complete lines go to
run.log in ONE write with ONE timestamp: the prefix is put in front of every
line with ``bytes.replace``, not a Python step per line. A step per line is
taken only where a line needs it: a ``\\r`` redraw (kept at its final state),
a Python traceback on stderr (tagged ERROR), a line longer than the limit
(its head kept, the rest counted). An unfinished last line waits in a
``Pending`` (linear, bounded) until its newline or the end of the stream.
"""

from __future__ import annotations

import re
import time

from ..errblocks import ErrorBlocks
from ..folder.logfile import ERR, LogFile
from ..output import Pending

READ_SIZE = 1 << 20  # at most LINE_LIMIT: a line inside one read can never be over the limit
TRACEBACK = b"Traceback (most recent call last):"
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def _last_state(line: bytes) -> bytes:
    """What a terminal shows after ``\\r`` redraws a line (as ``output.last_state``)."""
    parts = line.split(b"\r")
    while len(parts) > 1 and parts[-1] == b"":
        parts.pop()
    return parts[-1] if parts[-1].strip() else b""


def clean(body: bytes) -> bytes:
    """Whole lines as run.log keeps them: valid UTF-8, no colours or cursor moves, a
    redrawn line at its final state. In bulk: a step per line only for lines with ``\\r``."""
    if not body.isascii():
        try:
            body.decode()  # valid UTF-8 (most output) is kept as it is
        except UnicodeDecodeError:
            body = body.decode("utf-8", "replace").encode()
    if b"\x1b" in body:  # a sequence never holds a newline: the whole block at once
        body = _ANSI.sub(b"", body)
    if b"\r" in body:
        body = b"\n".join([_last_state(ln) if b"\r" in ln else ln for ln in body.split(b"\n")])
    return body


class Stream:
    """Lines of one stream (``OUT`` or ``ERR``) for run.log, and for ``on_block``.

    ``on_block(tag, buf, start, end, t)`` gets the cleaned lines of a read
    joined by newlines as ``buf[start:end]`` (``buf`` is the read itself on the
    common path: around those bytes are the end of a line already given and
    the start of one not finished), ``tag`` being the stream's or ``ERROR`` for
    a traceback's lines.
    """

    def __init__(self, tag: str, log: LogFile, on_block):
        self.tag, self.log, self.on_block = tag, log, on_block
        self.errors = ErrorBlocks() if tag == ERR else None  # a traceback is an error
        self.pending = Pending(b"")

    def feed(self, data: bytes) -> None:
        last = data.rfind(b"\n")
        if last < 0:
            self.pending.feed(data)  # no line ends here: nothing for run.log yet
            return
        if len(data) > self.pending.limit:  # one read longer than a line may be: the slow way
            lines = self.pending.feed(data)
            self._emit(b"\n".join(lines), time.time())
            return
        head = None  # the line the last read left unfinished, finished by this one
        start = 0
        if self.pending:
            start = data.find(b"\n") + 1
            self.pending.feed(data[:start - 1])
            head = self.pending.take()
        if self._plain(data) and (head is None or self._plain(head)):
            # the common case: the read's lines go to run.log without a copy of the read
            t = time.time()
            self.log.write_lines(self.tag, data, start, last, t, head)
            if head is not None:
                self.on_block(self.tag, head, 0, len(head), t)
            if start <= last:
                self.on_block(self.tag, data, start, last, t)
        else:
            body = data[:last] if head is None else head + data[start - 1:last]
            self._emit(body, time.time())
        if last + 1 < len(data):
            self.pending.feed(data[last + 1:])

    def _plain(self, data: bytes) -> bool:
        """Lines that run.log keeps exactly as they came (no redraw, no colour, valid
        ASCII, no traceback)."""
        return (data.isascii() and b"\r" not in data and b"\x1b" not in data
                and (self.errors is None or (not self.errors.state and TRACEBACK not in data)))

    def _emit(self, body: bytes, t: float) -> None:
        body = clean(body)
        errors = self.errors
        if errors is None or (not errors.state and TRACEBACK not in body):
            self.log.write_bytes(*self.log.block(self.tag, body, t))
            self.on_block(self.tag, body, 0, len(body), t)
            return
        # a traceback in this read: lines grouped by their tag, still one write
        groups: list[tuple[str, list[bytes]]] = []
        for raw in body.split(b"\n"):
            tag = errors.tag(raw.decode(), self.tag)
            if groups and groups[-1][0] == tag:
                groups[-1][1].append(raw)
            else:
                groups.append((tag, [raw]))
        out = []
        for tag, lines in groups:
            block = b"\n".join(lines)
            out += self.log.block(tag, block, t)
            self.on_block(tag, block, 0, len(block), t)
        self.log.write_bytes(b"".join(out))

    def close(self) -> None:
        """The stream ended: an unfinished last line (a bar never ended) is still a line."""
        if self.pending:
            self._emit(self.pending.take(), time.time())
