"""Metric points in metrics.jsonl, and their running summary.

Each point is one line handed to the OS by a single ``os.write``, so a hard
kill loses at most the point being written. Lines are built by hand rather
than with ``json.dumps``: this is the hot path of a training loop.
"""

from __future__ import annotations

import json
import os
import time

from .layout import METRICS
from .logfile import AppendFile


def _num(value) -> float | int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    f = getattr(value, "__float__", None)  # numpy scalars, 0-d tensors
    if f is None or isinstance(value, (str, bytes)):
        raise TypeError(f"metric value must be a number, got {type(value).__name__}: {value!r:.60}")
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"metric value must be a number, got {type(value).__name__} ({e})") from None


def _step(step) -> int | None:
    """A step as an int; one that is no integer (2.5, inf, nan, text, an object) is no step."""
    import operator

    try:
        return operator.index(step)  # int, numpy integers, 0-d integer tensors
    except TypeError:
        pass
    if isinstance(step, (str, bytes)):
        return None
    try:
        f = float(step)
    except (TypeError, ValueError, OverflowError):
        return None
    return int(f) if f.is_integer() else None


_INFS = (float("inf"), float("-inf"))  # not math: its import costs start() ~0.2 ms


def _json_num(v) -> str:
    if type(v) is int:
        return str(v)
    if v != v:
        return "NaN"
    if v in _INFS:
        return "Infinity" if v > 0 else "-Infinity"
    return repr(float(v))


class Metrics:
    """Appends points to a run's metrics.jsonl and keeps last/min/max/count/step."""

    def __init__(self, path: str | None, say=None):
        self.path = path
        self.file = AppendFile(path, lazy=True, say=say) if path is not None else None
        self.summary: dict[str, dict] = {}
        self._names: dict[str, str] = {}
        self._renamed: dict[str, str] = {}  # names with undecodable bytes, as recorded
        self._batch: list[str] | None = None  # lines held for one write (add_many)

    def add(self, name: str, value, step=None, t: float | None = None, _from: str = "") -> None:
        v = _num(value)
        if step is not None and type(step) is not int:
            step = _step(step)
        if t is None:
            t = time.time()
        key = self._names.get(name)
        if key is None and name in self._renamed:
            name = self._renamed[name]
            key = self._names.get(name)
        if key is None:
            if not isinstance(name, str):
                raise TypeError(f"metric name must be a string, got {type(name).__name__}")
            if not name.isascii():  # undecodable bytes (surrogates) become U+FFFD
                clean = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                if clean != name:
                    self._renamed[name] = clean
                    return self.add(clean, value, step, t, _from)
            key = self._names[name] = json.dumps(name, ensure_ascii=False)
        s = self.summary.get(name)
        if s is None:
            self.summary[name] = {"last": v, "min": v, "max": v, "count": 1, "step": step}
        else:
            s["last"] = v
            if v < s["min"] or s["min"] != s["min"]:
                s["min"] = v
            if v > s["max"] or s["max"] != s["max"]:
                s["max"] = v
            s["count"] += 1
            if step is not None:
                s["step"] = step
        if self.file is not None:
            line = (f'{{"name":{key},"value":{_json_num(v)},'
                    f'"step":{"null" if step is None else step},"time":{t:.3f}{_from}}}\n')
            if self._batch is None:
                self.file.write(line)
            else:
                self._batch.append(line)

    def add_many(self, points, t: float, from_text: bool = False) -> None:
        """Several ``(name, value, step)`` points at one time, handed to the OS in one write
        (``runlog run`` reading a block of output); a bad point is skipped. ``from_text``:
        read from plain output (see ``read_points``)."""
        self._batch = []
        origin = ',"from":"text"' if from_text else ""
        try:
            for name, value, step in points:
                try:
                    self.add(name, value, step, t, origin)
                except (TypeError, ValueError, OverflowError):
                    continue
        finally:
            lines, self._batch = self._batch, None
            if lines and self.file is not None:
                self.file.write("".join(lines))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def read_points(run_dir: str) -> list[dict]:
    """All metric points of a run; a torn last line (after a hard kill) is skipped.

    Explicit beats guessed: a point read from the program's plain output
    (``"from": "text"``) is left out when the program recorded the same name
    itself (a JSON metric line, ``run.metric``) — it printed what it recorded.
    """
    points = []
    try:
        with open(os.path.join(run_dir, METRICS), encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    p = point(json.loads(line))
                except (ValueError, RecursionError):
                    continue
                if p is not None:
                    points.append(p)
    except OSError:
        pass
    if any(p.get("from") == "text" for p in points):
        points = explicit_over_text(points)
    return points


def point(p) -> dict | None:
    """A line of metrics.jsonl as a point every reader can use, or None when it is none (a
    line written by hand or by another tool): a string name and a number value (a bool is
    0 or 1); a step that is no integer, or a time that is no number, is left out."""
    if type(p) is not dict:
        return None
    name, value = p.get("name"), p.get("value")
    if type(name) is not str or not isinstance(value, (int, float)):
        return None
    if isinstance(value, bool):
        p["value"] = int(value)
    step = p.get("step")
    if step is not None and (type(step) is not int):
        del p["step"]
    t = p.get("time")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))):
        del p["time"]
    return p


def explicit_over_text(points: list) -> list:
    """The points without those read from text whose name was also recorded explicitly."""
    explicit = {p.get("name") for p in points if p.get("from") != "text"}
    return [p for p in points if not (p.get("from") == "text" and p.get("name") in explicit)]


def summarize(points) -> dict[str, dict]:
    m = Metrics(None)
    for p in points:
        try:
            m.add(p["name"], p["value"], p.get("step"), p.get("time"))
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
            continue
    return m.summary
