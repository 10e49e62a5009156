"""The bytes layer under a captured stream: ``sys.stdout.buffer``, its writes logged too.

A script that writes bytes (``sys.stdout.buffer.write(b"...")``) or puts its own text layer
on the bytes one (``sys.stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8")``,
common where the console is not UTF-8) writes past the text tee. The tee hands out this
wrapper as its ``buffer``: bytes pass through at once, whole lines go to run.log as the
tee's own lines. Loaded only when a script asks for the buffer.
"""

from __future__ import annotations


class BufferTee:
    """Passes bytes through to the stream's buffer and logs whole lines through ``tee``
    (an ``output.Tee``; ``pending``: its ``Pending`` for bytes)."""

    def __init__(self, raw, tee, pending):
        self._raw = raw
        self._tee = tee
        self._pending = pending

    def write(self, b):
        n = self._raw.write(b)
        tee = self._tee
        if b and not tee._runlog_undone:
            try:
                with tee._lock:
                    lines = self._pending.feed(bytes(b))
                    if lines:
                        tee._lines([self._text(ln) for ln in lines])
            except Exception:
                pass
        return n

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def drain(self) -> None:
        """Log a last unfinished line."""
        with self._tee._lock:
            if self._pending:
                self._tee._lines([self._text(self._pending.take())])

    def _text(self, line: bytes) -> str:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:  # the console's own encoding, then
            try:
                return line.decode(getattr(self._tee._stream, "encoding", None) or "utf-8", "replace")
            except LookupError:
                return line.decode("utf-8", "replace")

    def __getattr__(self, name):
        return getattr(self._raw, name)
