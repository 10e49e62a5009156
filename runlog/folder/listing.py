"""Many runs read at once, newest first, in memory that does not grow with the history.

The run folders say which runs exist; the index (``index.py`` writes it) says
what each holds without opening it. Both are read in the order ``ls`` shows:
folder names start with the start time, and the index is read from its end, so
a run's newest line is met first. The index is read in two steps: the first
only finds, for each run, where its newest status line is (and any note added
after it), without parsing JSON; a run is parsed when its turn to be shown
comes, and then forgotten. What stays in memory is the list of folder names
and the set of ids already met.

Every line is checked where it is used: a line that does not parse, belongs
to another run than its place says, or has the wrong shape is damage (a line
torn by a crash, or by two hosts appending at once on NFS); the run it was
for is read from its folder instead. Two lines run together (half a line
without its newline, then another writer's whole line) give back the whole
one. A run whose lines are all lost is still listed: the folders decide which
runs there are.
"""

from __future__ import annotations

import heapq
import json
import os
import re
from collections.abc import Iterator  # not typing: its import costs 2 ms

from . import record as _record
from .layout import LogDir, is_run_name

_ID = re.compile(rb'"id"\s*:\s*"((?:[^"\\]|\\.)*)"')
_NOTES_ADDED = re.compile(rb'"notes_added"\s*:')
_STATUS = re.compile(rb'"status"\s*:')
_START = re.compile(rb'\{\s*"(?:schema|id)"\s*:')  # where a line of runlog's begins
_STAMP = re.compile(r"\d{8}-\d{6}(?:-|$)")


def folders(root: str) -> tuple[list[str], list[str]]:
    """The log directory's folders that may hold a run: those named by a start time, newest
    first (runs of one second together, in no order yet), and the others."""
    try:
        names = os.listdir(root)  # no stat per entry: 100,000 names cost ~0.1 s
    except OSError:
        return [], []
    stamped = list(filter(_STAMP.match, names))
    odd = []
    if len(stamped) < len(names):
        odd = [n for n in set(names).difference(stamped)
               if is_run_name(n) and os.path.isdir(os.path.join(root, n))]
    return stamped, odd


def _newest_names(stamped: list[str], want: int | None) -> Iterator[str]:
    """The names newest first (the runs of one second together): the ``want`` newest found
    without sorting them all, the rest sorted only if the caller reads that far."""
    if want is None or want * 4 + 20 >= len(stamped):
        yield from sorted(stamped, reverse=True)
        return
    top = heapq.nlargest(want * 4 + 20, stamped)
    yield from top
    last = top[-1]
    yield from sorted((n for n in stamped if n < last), reverse=True)


def run_ids(root: str) -> list[str]:
    """Names of the folders in the log directory that may hold a run."""
    stamped, odd = folders(root)
    return stamped + odd


def merge(old: dict | None, entry: dict) -> dict:
    """A run's index line merged over its older ones: key by key, notes concatenated."""
    added = entry.pop("notes_added", None)
    if old is None:
        old = entry
    else:
        old.update(entry)
    if isinstance(added, str):
        old["notes"] = (old.get("notes") or "") + added
    return old


def read_run(root: str, run_id: str, warn=None) -> dict | None:
    """A run folder's full record, with ``dir``; None (with a warning for what looks
    like a broken run) when it has none."""
    folder = LogDir(root).run(run_id)
    try:
        rec = _record.read(folder.path)
    except _record.RecordError as e:
        if warn is not None and os.path.exists(folder.log):
            warn(str(e))
        return None
    rec["dir"] = folder.path
    return rec


def lost_summary(root: str, run_id: str) -> dict | None:
    """A run killed while it started, before its first run.json: its run.log says it began.

    Shown as lost, with what its log holds; a folder whose log runlog did not
    start is not a run.
    """
    from .logfile import started_line

    folder = LogDir(root).run(run_id)
    started = started_line(folder.log, run_id)
    if started is None or os.path.exists(folder.record):
        return None
    rec = _record.upgrade({"id": run_id, "status": "running", "started_at": started[0],
                           "command_line": started[1]})
    out = _record.summary(rec)
    out["dir"] = folder.path
    out["shown_status"] = "lost"
    return out


def summary_of(root: str, run_id: str, entry: dict | None, warn) -> dict | None:
    """A run's summary from its folder (the index had none, or only a ``running`` line)."""
    rec = read_run(root, run_id, None)
    if rec is None:
        lost = lost_summary(root, run_id)
        if lost is None:
            read_run(root, run_id, warn)  # say once what is wrong with it
        return lost
    out = _record.summary(rec)
    out["dir"] = rec["dir"]
    if entry is not None and entry.get("notes"):
        out["notes"] = entry["notes"]
    elif entry is None:  # the index lost its lines, or never had them: notes.md has the notes
        from .notes import read

        text = read(rec["dir"])
        if text:
            out["notes"] = text
    return out


def newest_first_key(r: dict) -> tuple:
    """Start time, then the id with its collision number compared as a number (-9 < -10)."""
    run_id = r["id"]
    base, _, n = run_id.rpartition("-")
    if len(base) >= 15 and n.isdigit():
        return (str(r.get("started_at") or ""), base, int(n))
    return (str(r.get("started_at") or ""), run_id, 1)


def lines_backwards(path: str, block: int = 65536) -> Iterator[tuple[int, bytes]]:
    """(offset, line) of each line of a file, last first, read in blocks from its end."""
    try:
        f = open(path, "rb", buffering=0)
    except OSError:
        return
    with f:
        pos = f.seek(0, os.SEEK_END)
        rest = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + rest
            lines = data.split(b"\n")
            rest = lines[0]
            end = pos + len(data)
            for line in reversed(lines[1:]):
                start = end - len(line)
                yield start, line
                end = start - 1
        if rest:
            yield 0, rest


class IndexScan:
    """The index read once from its end: where each run's newest status line is.

    ``entry(id)`` reads on only as far as that run needs, parses its lines, checks
    them and forgets them; ``torn`` and ``wrong`` count the lines that were not
    what they should be (their runs are read from their folders).
    """

    def __init__(self, root: str):
        self.path = LogDir(root).index
        self._lines = lines_backwards(self.path)
        self._refs: dict[str, list] = {}  # id -> [status line or None, newer lines...], (off, len)
        self._done: set[str] = set()  # ids whose newest status line is found
        self._fd: int | None = None
        self.over = False
        self.torn = 0  # lines that do not parse, or name another run than their place says
        self.wrong = 0  # valid JSON of the wrong shape

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._lines.close()

    def _step(self) -> None:
        try:
            off, line = next(self._lines)
        except StopIteration:
            self.over = True
            return
        line = line.rstrip(b"\r\t ")
        if not line:
            return
        if line[:1] == b"{" and line[-1:] == b"}" and _START.search(line, 1) is None:
            m = _ID.search(line)  # a whole line of runlog's: no JSON parsed yet
            if m is None:
                return
            raw = m.group(1)
            run_id = raw.decode("utf-8", "surrogateescape") if b"\\" not in raw else _unescape(raw)
            self._note(run_id, off, len(line), _NOTES_ADDED.search(line) is None
                       and _STATUS.search(line) is not None)
            return
        # the rare line that does not look whole: parse it to know (a torn one gives back
        # the whole line another writer appended to it, if any)
        entry, at = parse_line(line)
        if entry is None or at:
            self.torn += 1
        if entry is not None:
            self._note(entry["id"], off + at, len(line) - at,
                       "status" in entry and "notes_added" not in entry)

    def _note(self, run_id: str, off: int, n: int, is_status: bool) -> None:
        if run_id in self._done:
            return  # an older line of a run whose newest status line is known
        refs = self._refs.get(run_id)
        if refs is None:
            refs = self._refs[run_id] = [None]
        if is_status:
            refs[0] = (off, n)
            self._done.add(run_id)
        else:
            refs.append((off, n))

    def skip(self, run_ids) -> None:
        """Runs the caller has read from their folders: their lines are passed over, unkept."""
        for run_id in run_ids:
            self._refs.pop(run_id, None)
            self._done.add(run_id)

    def entry(self, run_id: str) -> dict | None:
        """The run's index lines merged (newest status line, notes added since), checked;
        None when the index has nothing usable for it."""
        while run_id not in self._done and not self.over:
            self._step()
        refs = self._refs.pop(run_id, None)
        self._done.add(run_id)
        if refs is None:
            return None
        merged = None
        status, newer = refs[0], refs[1:]
        for ref in ([status] if status else []) + newer[::-1]:  # oldest first, newer values win
            e = self._parse(run_id, ref)
            if e is not None:
                merged = merge(merged, _record.from_index(e))
        return merged

    def _parse(self, run_id: str, ref: tuple[int, int]) -> dict | None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        raw = os.pread(self._fd, ref[1], ref[0])
        try:
            e = json.loads(raw)
        except (ValueError, RecursionError):
            e = None
        if not isinstance(e, dict) or e.get("id") != run_id:
            self.torn += 1  # the folder is the truth
            return None
        if not _record.summary_ok(e):
            self.wrong += 1
            return None
        return e


def parse_line(line: bytes) -> tuple[dict | None, int]:
    """An index line as (entry, where it starts): a line of any JSON layout; for a torn one
    (half a line without its newline, then another writer's whole line) the whole line
    at the end, from the first place a line of runlog's can start that parses to the end."""
    try:
        e = json.loads(line)
    except (ValueError, RecursionError):
        e = None
        for m in _START.finditer(line, 1):
            try:
                e = json.loads(line[m.start():])
            except (ValueError, RecursionError):
                continue
            if isinstance(e, dict) and isinstance(e.get("id"), str):
                return e, m.start()
            break
        return None, 0
    return (e, 0) if isinstance(e, dict) and isinstance(e.get("id"), str) else (None, 0)


def _unescape(raw: bytes) -> str:
    try:
        return json.loads(b'"' + raw + b'"')
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")


def stream(root: str, warn=None, scan: IndexScan | None = None,
           found: tuple[list[str], list[str]] | None = None, want: int | None = None
           ) -> Iterator[dict]:
    """Every run in the log directory as its summary (with ``dir``), newest first.

    Index entries are used as they are, except a ``running`` one, which is read
    again from its folder (it may have finished after a hard kill left the index
    behind), and one without a status (only notes). Folders the index lacks are
    read from run.json; ones that are not runs are skipped. Runs are ordered by
    their folder's start second, and within a second as ``newest_first_key``.
    ``found``: what ``folders(root)`` gave, when the caller has it already; ``want``: how
    many runs the caller will likely read (the rest are ordered only if it reads on).
    """
    own = scan is None
    scan = scan or IndexScan(root)
    try:
        stamped, odd = found or folders(root)
        names = _newest_names(stamped, want)
        # a folder not named by its start time (renamed by hand) is placed by its record
        extra = sorted(filter(None, (_odd(root, i, warn) for i in odd)), key=newest_first_key,
                       reverse=True)
        group: list[dict] = []
        run_id = next(names, None)
        while run_id is not None:
            s = _one(root, run_id, scan, warn)
            if s is not None:
                group.append(s)
            after = next(names, None)
            if after is not None and after[:15] == run_id[:15]:
                run_id = after
                continue  # more runs of the same second: ordered together
            run_id = after
            group.sort(key=newest_first_key, reverse=True)
            for s in group:
                while extra and newest_first_key(extra[0]) > newest_first_key(s):
                    yield extra.pop(0)
                yield s
            group = []
        yield from extra
        if scan.wrong and warn is not None:  # torn lines are a crash's or NFS's: no news
            warn(f"{scan.path}: {scan.wrong} line{'s' if scan.wrong != 1 else ''} of the wrong "
                 "shape skipped (the run folders are read instead)")
    finally:
        if own:
            scan.close()


def _odd(root: str, run_id: str, warn) -> dict | None:
    """A folder whose name is not a start time: its index lines (if any) carry another id."""
    return summary_of(root, run_id, None, warn)


def _one(root: str, run_id: str, scan: IndexScan, warn) -> dict | None:
    entry = scan.entry(run_id)
    if entry is not None and entry.get("status") not in (None, "running"):
        _record.complete(entry)
        entry.setdefault("dir", os.path.join(root, run_id))
        return entry
    return summary_of(root, run_id, entry, warn)
