"""The ``run.log`` line: written here, parsed here.

Every line starts with the local time to the millisecond, then a tag padded
to eight characters, then the text::

    2026-11-22 23:11:44.730 INFO    train: epoch 17/20  val_loss 0.0852
    2026-11-22 23:11:44.731 OUT     a line the script printed
    2026-11-22 23:11:44.732 ERR     a line it wrote to stderr
    2026-11-22 23:11:44.733 RUNLOG  run 20261122-231144 finished after 0.1 s

Tags are logging level names (for the script's own ``logging`` records,
followed by ``logger: `` unless it is the root or ``__main__`` logger),
``OUT``/``ERR`` for captured output, and ``RUNLOG`` for runlog's own lines.
A record of several lines continues on lines without the prefix.

Each line (or each block of whole lines that ``runlog run`` read at one
time) is handed to the OS with one write on an ``O_APPEND`` descriptor: a
``tail -f`` sees it at once, a kill -9 loses nothing already logged, and
lines from many threads or forked workers never interleave.
"""

from __future__ import annotations

import os
import time

from .layout import read_bytes

LEVEL_WIDTH = 8
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
PREFIX_LEN = 24  # "YYYY-mm-dd HH:MM:SS.mmm "
OUT, ERR, RUNLOG = "OUT", "ERR", "RUNLOG"
LEVELS = {"DEBUG": 10, "INFO": 20, OUT: 20, RUNLOG: 20, "WARNING": 30, "WARN": 30,
          ERR: 30, "ERROR": 40, "CRITICAL": 50}


def second_prefix(sec: int) -> str:
    """The date and time of a whole second, as a line starts (without milliseconds)."""
    return time.strftime(STAMP_FORMAT, time.localtime(sec))


def head(tag: str, who: str = "") -> str:
    """What follows the milliseconds: the padded tag, then the logger's name."""
    return f" {tag:<{LEVEL_WIDTH}}{who}"


MILLIS = [""] * 1000  # ".042" for 42 ms, made as they come: a format spec costs a line 0.17 us


def millis(t: float, sec: int) -> str:
    """The ".mmm" of a time ``t`` in its second ``sec``."""
    ms = int((t - sec) * 1000)
    text = MILLIS[ms]
    if not text:
        MILLIS[ms] = text = f".{ms:03d}"
    return text


def level_of(line: str) -> int | None:
    """The level of a log line, or None for a continuation line (traceback, multi-line message)."""
    if len(line) > PREFIX_LEN and line[4] == "-" and line[10] == " " and line[19] == ".":
        return LEVELS.get(line[PREFIX_LEN:PREFIX_LEN + LEVEL_WIDTH].strip())
    return None


FATAL = "Fatal Python error: "


def fatal_error(path: str, tail: int = 65536) -> dict | None:
    """The error of a process that died by a fatal signal, from the end of its run.log:
    faulthandler's ``Fatal Python error: Segmentation fault`` and the crashed thread's
    frames (innermost first), when nothing was logged after them. None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            os.lseek(fd, max(size - tail, 0), os.SEEK_SET)
            data = os.read(fd, tail)
        finally:
            os.close(fd)
    except OSError:
        return None
    at = data.rfind(FATAL.encode())
    if at < 0 or (at > 0 and data[at - 1:at] != b"\n"):
        return None
    lines = data[at:].decode("utf-8", "replace").splitlines()
    if any(level_of(ln) is not None for ln in lines):  # the run went on after it
        return None
    return fatal_from(lines)


def fatal_from(lines: list[str]) -> dict | None:
    """The error that faulthandler's lines tell (``lines[0]``: ``Fatal Python error: …``)."""
    if not lines or not lines[0].startswith(FATAL):
        return None
    frames, current = [], False
    for ln in lines[1:]:
        if ln.startswith(("Current thread", "Thread ", "Stack (most recent")):
            current = not ln.startswith("Thread ")
        elif current and ln.startswith("  File "):
            frames.append(ln.strip())
    where = None
    if frames:  # File "train.py", line 12 in step
        f = frames[0]
        name, _, rest = f[len('File "'):].partition('", line ')
        line_no, _, fn = rest.partition(" in ")
        where = f"{os.path.basename(name)}:{line_no} in {fn}" if line_no.isdigit() else None
    return {"type": "Fatal Python error", "message": lines[0][len(FATAL):].strip(),
            "where": where, "traceback": frames[:20]}


def line_time(line: str) -> float | None:
    """The time a line was written, from its prefix."""
    if level_of(line) is None and not (len(line) >= 23 and line[19] == "."):
        return None
    try:
        t = time.mktime(time.strptime(line[:19], STAMP_FORMAT))
        return t + int(line[20:23]) / 1000
    except (ValueError, OverflowError):
        return None


def started_line(path: str, run_id: str) -> tuple[str, str | None] | None:
    """(ISO start time, command line) from a run.log whose first line is runlog's own
    ``run ID started: COMMAND``; None for any other file."""
    try:
        with open(path, "rb") as f:
            first = f.readline(65536).decode("utf-8", "replace").rstrip("\n")
    except OSError:
        return None
    head_ = f"{RUNLOG:<{LEVEL_WIDTH}}run {run_id} started: "
    if level_of(first) is None or first[PREFIX_LEN:PREFIX_LEN + len(head_)] != head_:
        return None
    try:
        t = time.mktime(time.strptime(first[:19], STAMP_FORMAT)) + int(first[20:23]) / 1000
    except (ValueError, OverflowError):
        return None
    from .times import iso

    command = first[PREFIX_LEN + len(head_):]
    return iso(t), (None if command == "(interactive)" else command)


class AppendFile:
    """A file only ever appended to, each write handed to the OS at once.

    ``O_APPEND`` keeps every write whole even with many threads or forked
    workers writing; a failure (a full disk) is said once and the script goes on.
    With ``lazy``, the file is made on the first write (no empty metrics.jsonl).
    """

    def __init__(self, path: str, lazy: bool = False, say=None):
        self.path = path
        self.fd: int | None = None  # None: not opened yet; -1: closed or failed
        self.failed = False
        self._say = say
        if not lazy:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, text: str) -> None:
        try:
            data = text.encode()
        except UnicodeEncodeError:  # lone surrogates from undecodable input
            data = text.encode("utf-8", "backslashreplace")
        self.write_bytes(data)

    def write_bytes(self, data: bytes, *more: bytes) -> None:
        """``data`` (and ``more`` after it, in the same write: no copy to join them)."""
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            elif self.fd < 0:
                return
            if more:
                parts = (data, *more)
                n = os.writev(self.fd, parts)
                if n == sum(map(len, parts)):
                    return
                data = b"".join(parts)
            else:
                n = os.write(self.fd, data)
            while n < len(data):  # a short write (a signal, a nearly full disk)
                data = data[n:]
                n = os.write(self.fd, data)
        except OSError as e:
            if self.fd is None:
                self.fd = -1
            if not self.failed:
                self.failed = True
                if self._say is not None:
                    self._say(f"could not write {self.path} ({e.strerror or e}); the script goes on")

    def close(self) -> None:
        if self.fd is not None and self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
        self.fd = -1


class LogFile(AppendFile):
    """run.log: an AppendFile that writes whole lines with the time prefix."""

    def __init__(self, path: str, say=None):
        super().__init__(path, say=say)
        self._sec = -1
        self._prefix = ""
        self._heads: dict[str, str] = {}

    def stamp(self, t: float) -> str:
        sec = int(t)
        if sec != self._sec:
            self._sec = sec
            self._prefix = second_prefix(sec)
        return self._prefix + millis(t, sec)

    def line(self, tag: str, text: str, t: float | None = None) -> None:
        # every line the script prints comes here: the second's prefix and the tag's
        # head are made once, the line is one os.write (AppendFile.write for the rest)
        if t is None:
            t = time.time()
        sec = int(t)
        if sec != self._sec:
            self._sec = sec
            self._prefix = second_prefix(sec)
        tag_head = self._heads.get(tag)
        if tag_head is None:
            tag_head = self._heads[tag] = head(tag)
        ms = int((t - sec) * 1000)
        line = f"{self._prefix}{MILLIS[ms] or millis(t, sec)}{tag_head}{text}\n"
        fd = self.fd
        if fd is None or fd < 0:
            return self.write(line)
        try:
            data = line.encode()
            n = os.write(fd, data)
        except (OSError, UnicodeEncodeError):  # nothing written: write() says it, or escapes
            return self.write(line)
        if n < len(data):  # a short write (a signal, a nearly full disk)
            self.write_bytes(data[n:])

    def args_line(self, masked: dict) -> None:
        """The arguments line at the top of run.log (one line, whatever the values hold)."""
        from ..fmt import flatten, fmt_value, printable

        flat = flatten(masked)
        self.line(RUNLOG, printable("args: " + " ".join(f"{k}={fmt_value(v)}" for k, v in flat.items())))

    def block(self, tag: str, body: bytes, t: float) -> tuple[bytes, bytes, bytes]:
        """Many lines at one time, as pieces for one write: ``body`` is the lines' UTF-8
        text joined by newlines (none at its end); each gets the same prefix."""
        prefix = f"{self.stamp(t)}{head(tag)}".encode()
        return prefix, body.replace(b"\n", b"\n" + prefix), b"\n"

    def write_lines(self, tag: str, data: bytes, start: int, end: int, t: float,
                    first: bytes | None = None) -> None:
        """In one write, each with the same prefix: the line ``first`` (if given) and the
        lines ``data[start:end]`` (``data[end]`` is a newline, and so is ``data[start - 1]``
        when ``start``), without copying ``data`` first."""
        prefix = f"{self.stamp(t)}{head(tag)}".encode()
        out = data.replace(b"\n", b"\n" + prefix)
        keep = len(out) - len(prefix) - (len(data) - end - 1)  # through the last newline
        parts = [] if first is None else [prefix, first, b"\n"]
        if start <= end:  # data holds lines of its own (an empty one between two newlines)
            if start:
                parts.append(memoryview(out)[start:keep])  # from the prefix after data[start-1]
            else:
                parts += [prefix, memoryview(out)[:keep]]
        if parts:
            self.write_bytes(*parts)


# ---------------------------------------------------------------- reading from the end

BLOCK = 65536


def _complete_end(f, end: int) -> int:
    """Offset just past the last newline: what follows is a line still being written."""
    pos = end
    while pos > 0:
        step = min(BLOCK, pos)
        f.seek(pos - step)
        i = f.read(step).rfind(b"\n")
        if i >= 0:
            return pos - step + i + 1
        pos -= step
    return 0


LINE_CAP = 1 << 20  # bytes of one line ``last_lines`` gives (run.log keeps 1 MiB of a line)


class _Backwards:
    """``keep`` for lines met newest first. A record's continuation lines (a logged
    traceback, faulthandler's block after its first line) are judged after the line that
    starts the record, in their order, as ``keep`` judges them reading forward (its level
    filter goes by the record's first line). Returns the lines kept, newest first."""

    def __init__(self, keep):
        self.keep = keep
        self.pending: list[str] = []  # continuation lines met, newest first

    def __call__(self, line: str) -> list[str]:
        if level_of(line) is None and not line.startswith(FATAL):
            self.pending.append(line)
            return []
        return self._judge([line, *reversed(self.pending)])

    def rest(self) -> list[str]:
        """The oldest lines read, whose record began further back."""
        return self._judge(list(reversed(self.pending)))

    def _judge(self, group: list[str]) -> list[str]:
        self.pending = []
        return [ln for ln in group if self.keep(ln)][::-1]


def last_lines(path: str, n: int, keep=None, back_limit: int = 16 * 1024 * 1024,
               cap: int = LINE_CAP) -> tuple[list[str], int]:
    """The last ``n`` complete lines of a file (that ``keep`` accepts), read from the end.

    Returns them and the offset to follow from (the start of an unfinished last
    line). A line longer than ``cap`` bytes gives its first ``cap`` bytes and says
    how many more there are: the time and memory spent on a line are bounded
    however long it is, and the rest of the file is read no further back than
    its lines need. With ``keep``, at most ``back_limit`` bytes are searched.
    """
    data = read_bytes(path, BLOCK + 1)
    if len(data) <= BLOCK:  # a small file (most runs' logs): one read, no file object
        stop = data.rfind(b"\n") + 1
        if keep is None and stop <= cap:  # no line to cut or test: decoded in one go
            return (data[:stop].decode("utf-8", "replace").split("\n")[-n - 1:-1]
                    if n > 0 else []), stop
        found: list[str] = []
        back = _Backwards(keep) if keep is not None else None
        for raw in reversed(data[:stop].split(b"\n")[:-1]):
            if len(found) >= n:
                break
            line = raw[:cap].decode("utf-8", "replace")
            if len(raw) > cap:
                line += f" … [{len(raw) - cap} more bytes not shown]"
            if back is None:
                found.append(line)
            else:
                found.extend(back(line))
        if back is not None:
            found.extend(back.rest())
            del found[max(n, 0):]
        found.reverse()
        return found, stop
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        stop = _complete_end(f, end)
        found = []  # newest first
        back = _Backwards(keep) if keep is not None else None
        nl = stop - 1  # the newline that ends the line looked for
        buf, at = b"", max(nl, 0)  # buf: the bytes [at, nl) not yet used
        while nl >= 0 and len(found) < n:
            whole = True  # the line's bytes are all in buf
            i = buf.rfind(b"\n")
            size = BLOCK
            while i < 0 and at > 0:
                step = min(size, at)
                size = min(size * 2, 8 << 20)  # a long line: fewer, larger reads
                at -= step
                f.seek(at)
                block = f.read(step)
                if len(buf) <= cap:
                    buf = block + buf
                else:  # a line past the cap: its start is read again below, its middle never
                    buf, whole = block, False
                i = buf.rfind(b"\n")
            start = at + i + 1  # i = -1 at the start of the file
            size = nl - start
            if whole:
                raw = buf[i + 1: i + 1 + min(size, cap)]
            else:
                f.seek(start)
                raw = f.read(min(size, cap))
            line = raw.decode("utf-8", "replace")
            if size > cap:
                line += f" … [{size - cap} more bytes not shown]"
            if back is None:
                found.append(line)
            else:
                found.extend(back(line))
            nl = start - 1
            buf = buf[: max(i, 0)]
            if keep is not None and stop - at >= back_limit:
                break
    if back is not None:
        found.extend(back.rest())
        del found[max(n, 0):]
    found.reverse()
    return found, stop
