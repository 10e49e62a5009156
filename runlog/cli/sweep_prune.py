"""``runlog sweep --prune``: Optuna's median pruner, fed from the trials' metrics.jsonl.

About twice a second while trials run, the sweep reads what each running
trial's ``metrics.jsonl`` gained since the last look (its size is the event:
nothing is parsed when it did not grow) and reports the optimised metric's new
points to the trial's Optuna trial (``trial.report(value, step)``; a point
without a step counts as the next one). A configuration that runs several
seeds reports a step once each of its runs has reached it, with their mean.
When ``should_prune()`` says so, the sweep stops the configuration's runs
(``Sweep.prune``: a marker file, then SIGTERM to each process group); their
records say ``pruned``.
"""

from __future__ import annotations

import json
import sys

from ..folder.layout import LogDir


class Curve:
    """The metric's points of one run, read as its metrics.jsonl grows."""

    def __init__(self, path: str, metric: str):
        self.path, self.metric = path, metric
        self.offset = 0
        self.partial = b""
        self.points: dict[int, float] = {}
        self.count = 0  # points without a step are numbered in order

    def read(self) -> bool:
        """Read what was appended; True when the metric got a new point."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return False
        if not data:
            return False
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()  # a line still being written
        grew = False
        for line in lines:
            if self.metric.encode() not in line:
                continue
            try:
                p = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if not isinstance(p, dict) or p.get("name") != self.metric:
                continue
            v = p.get("value")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
                continue
            step = p.get("step")
            step = step if isinstance(step, int) and not isinstance(step, bool) else self.count
            self.count += 1
            self.points[step] = float(v)
            grew = True
        return grew


class Pruner:
    def __init__(self, sweep):
        self.sweep = sweep
        self.curves: dict[str, Curve] = {}  # run id -> its curve
        self.reported: dict[int, set] = {}  # configuration -> steps told to Optuna

    def _curve(self, t) -> Curve | None:
        if not t.run_id:
            return None
        c = self.curves.get(t.run_id)
        if c is None:
            c = self.curves[t.run_id] = Curve(LogDir(self.sweep.root).run(t.run_id).metrics,
                                              self.sweep.metric)
        return c

    def poll(self, running: list) -> None:
        configs = getattr(self.sweep, "configs", {})
        for n in sorted({t.n for t in running}):
            c = configs.get(n)
            if c is None or c.told or any(t.pruned for t in c.trials):
                continue
            try:
                self._check(c)
            except Exception as e:  # the storage hiccuped: the trial runs on unpruned
                sys.stderr.write(f"runlog sweep: could not check trial {n} for pruning "
                                 f"({type(e).__name__}: {e})\n")

    def _check(self, c) -> None:
        curves = [self._curve(t) for t in c.trials]
        grew = False
        for curve in curves:
            if curve is not None:
                grew = curve.read() or grew
        if not grew or len(curves) < c.k or any(cv is None for cv in curves):
            return  # with seeds: a step counts once every repeat has reached it
        if self._report(c, curves) and c.handle.should_prune():
            for t in c.trials:
                self.sweep.prune(t)

    def _report(self, c, curves: list[Curve]) -> bool:
        done = self.reported.setdefault(c.handle.number, set())
        common = set.intersection(*(set(cv.points) for cv in curves)) - done
        for step in sorted(common):
            c.handle.report(sum(cv.points[step] for cv in curves) / len(curves), step)
            done.add(step)
        return bool(common)

    def final(self, c, runs: list) -> None:
        """Before a configuration is told its value: every step its finished runs logged,
        so the trials after it are compared with its whole curve (a trial faster than a
        poll is still a yardstick)."""
        curves = [self._curve(t) for t in runs if t.status == "finished"]
        curves = [cv for cv in curves if cv is not None]
        for cv in curves:
            cv.read()
        if curves:
            try:
                self._report(c, curves)
            except Exception as e:
                sys.stderr.write(f"runlog sweep: could not report trial {c.handle.number}'s "
                                 f"curve to the pruner ({type(e).__name__}: {e})\n")
