"""Every run with its whole record, newest first, each run.json parsed once: for a reader
that needs all of every run (``journal --all``), where ``listing.stream`` gives the summaries
that a table needs.

The runs and their order are ``stream``'s: the folders say which runs there are, newest
first by their start second; the runs of one second are ordered by ``newest_first_key``;
a folder not named by a start time is placed by its record. What is read differs: each
run's run.json first, and the index only for a run whose run.json cannot be read (damaged,
or a run killed before its first record): its newest status line then stands for it, as
in ``stream``; without one, its run.log's start line (a lost run); else it is no run.

A reader that meets a run naming an older one (its previous) can read that one before its
turn (``ahead``); it is kept until then, not read twice. Memory holds the folder names,
one second's runs and at most ``AHEAD`` runs read ahead.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from . import record as _record
from .layout import file_in
from .listing import IndexScan, folders, lost_summary, newest_first_key, read_run

AHEAD = 256  # runs read before their turn and kept for it (beyond: read again then)


class EveryRun:
    """Iterated: ``(what stands for a run, its record)`` per run, newest first. What stands
    for it is its record (both are the same dict) or, when that cannot be read, its summary
    from the index or its run.log (the record is then None)."""

    def __init__(self, root: str, warn=None):
        self.root = root
        self.warn = warn
        stamped, odd = folders(root)
        self._names = sorted(stamped)  # oldest first: the runs still to come are _names[:_left]
        self._left = len(self._names)
        self._odd = odd
        self._odd_left: set[str] = set()  # folders not named by a time, with a run, not yet given
        self._group: list[tuple[str, tuple]] = []  # the second being given: (folder, item)
        self._next = 0  # the place in _group of the next run to give
        self._ahead: dict[str, tuple | None] = {}  # folder -> what it gives, read before its turn
        self._scan: IndexScan | None = None

    def __iter__(self) -> Iterator[tuple[dict, dict | None]]:
        try:
            yield from self._runs()
        finally:
            if self._scan is not None:
                self._scan.close()

    def _runs(self) -> Iterator[tuple[dict, dict | None]]:
        # a folder not named by its start time (renamed by hand) is placed by its record; only
        # its place is kept, the run is read again when it comes (they are rare)
        extra = []
        for name in self._odd:
            got = self._read(name, index=False)
            if got is not None:
                extra.append((newest_first_key(got[0]), name))
                self._odd_left.add(name)
        extra.sort(key=lambda e: e[0], reverse=True)
        names = self._names
        while self._left:
            second = names[self._left - 1][:15]
            lo = self._left - 1
            while lo and names[lo - 1][:15] == second:  # more runs of the same second
                lo -= 1
            group = []
            for name in reversed(names[lo:self._left]):
                got = self._take(name)
                if got is not None:
                    group.append((name, got))
            self._left = lo
            if len(group) > 1:
                group.sort(key=lambda g: newest_first_key(g[1][0]), reverse=True)
            self._group, self._next = group, 0
            while self._next < len(group):
                item = group[self._next][1]
                while extra and extra[0][0] > newest_first_key(item[0]):
                    got = self._odd_run(extra.pop(0)[1])
                    if got is not None:
                        yield got
                self._next += 1  # given: no longer ahead
                yield item
        self._group = []
        while extra:
            got = self._odd_run(extra.pop(0)[1])
            if got is not None:
                yield got
        wrong = self._scan.wrong if self._scan is not None else 0
        if wrong and self.warn is not None:  # torn lines are a crash's or NFS's: no news
            self.warn(f"{self._scan.path}: {wrong} line{'s' if wrong != 1 else ''} of the wrong "
                      "shape skipped (the run folders are read instead)")

    def _odd_run(self, name: str) -> tuple | None:
        self._odd_left.discard(name)
        return self._take(name, index=False)

    def _take(self, name: str, index: bool = True) -> tuple | None:
        if name in self._ahead:
            return self._ahead.pop(name)
        return self._read(name, index)

    def _read(self, name: str, index: bool = True) -> tuple | None:
        """What the folder gives: (its record, its record), (its summary, None), or None."""
        path = file_in(self.root, name)
        try:
            rec = _record.read(path)
        except _record.RecordError:
            pass
        else:
            if self._scan is not None:
                self._scan.skip((name,))
            return rec, rec
        if index:  # as ``listing.stream``: a finished run's index line stands for its record
            entry = self._index().entry(name)
            if entry is not None and entry.get("status") not in (None, "running"):
                _record.complete(entry)
                entry.setdefault("dir", path)
                return entry, None
        lost = lost_summary(self.root, name)
        if lost is None:
            read_run(self.root, name, self.warn)  # say once what is wrong with it
            return None
        return lost, None

    def _index(self) -> IndexScan:
        """The index, opened for the first run whose record cannot be read; the lines of the
        runs read already are passed over."""
        if self._scan is None:
            self._scan = IndexScan(self.root)
            self._scan.skip(self._names[self._left:])
        return self._scan

    def ahead(self, run_id: str) -> tuple[dict, dict | None] | None:
        """What the folder ``run_id`` will give when its turn comes, read now and kept for
        then; None when no folder of that name is still to come or it gives no run of that id
        (a run met already is the caller's to know)."""
        for name, item in self._group[self._next:]:  # a run of the second being given
            if name == run_id:
                return item if item[0].get("id") == run_id else None
        if run_id in self._ahead:
            got = self._ahead[run_id]
        else:
            i = bisect_left(self._names, run_id, 0, self._left)
            if i < self._left and self._names[i] == run_id:
                got = self._read(run_id)
            elif run_id in self._odd_left:
                got = self._read(run_id, index=False)
            else:
                return None
            self._ahead[run_id] = got
            if len(self._ahead) > AHEAD:
                del self._ahead[next(iter(self._ahead))]
        return got if got is not None and got[0].get("id") == run_id else None
