"""What the script prints: a tee on stdout/stderr that logs whole lines to run.log.

Bytes pass through to the real stream at once; the log gets one line per
line written, with a progress bar redrawn with ``\\r`` kept at its final
state. Buffering is linear in what is written: a line is searched only in the
text that arrived since the last newline.
"""

from __future__ import annotations

import sys
import threading
import time

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

            _ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
        line = _ANSI.sub("", line)
    if "\r" not in line:
        return line
    parts = line.split("\r")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()  # "text\r": the cursor went back, the text stays
    return parts[-1] if parts[-1].strip() else ""


def _own_handlers() -> bool:
    """Whether the script made logging handlers besides runlog's (cheap: a list's length)."""
    logging = sys.modules.get("logging")
    return logging is not None and len(getattr(logging, "_handlerList", (1, 2))) > 1


class Tee:
    """Passes writes through to the real stream and logs whole lines to run.log."""

    def __init__(self, stream, log, tag: str):
        self._stream = stream
        self._log_file = log
        self._tag = tag
        self._parts: list[str] = []  # text since the last newline
        self._lock = threading.Lock()

    def write(self, s):
        n = self._stream.write(s)
        if s:
            try:
                if _own_handlers():
                    from .args.frames import written_by_log_handler

                    if written_by_log_handler():
                        return n
                self._log(s if isinstance(s, str) else str(s))
            except Exception:
                pass
        return n

    def _log(self, s: str) -> None:
        with self._lock:
            if "\n" not in s:
                if "\r" in s and self._parts:
                    # a redraw: only what follows the last "\r" can still be seen
                    self._parts = [last_state("".join(self._parts) + s) + ("\r" if s.endswith("\r") else "")]
                else:
                    self._parts.append(s)
                return
            head, *lines, rest = s.split("\n")
            first = "".join(self._parts) + head if self._parts else head
            now = time.time()
            line = self._log_file.line
            line(self._tag, last_state(first), now)
            for ln in lines:
                line(self._tag, last_state(ln), now)
            self._parts = [rest] if rest else []

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        return self._stream.flush()

    def drain(self) -> None:
        """Log a last unfinished line (a bar never ended with a newline)."""
        with self._lock:
            text = last_state("".join(self._parts))
            if text.strip():
                self._log_file.line(self._tag, text)
            self._parts = []

    def __getattr__(self, name):
        return getattr(self._stream, name)
