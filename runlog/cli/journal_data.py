"""What the journal shows of a run: its card (status, note, metrics, what changed since
the previous run, its environment) and its curves, read from its folder.

A card is plain JSON-able data; ``journal`` writes the cards into the page. The curves
are thinned as metrics.jsonl is read, so a run of a million points costs one read.
"""

from __future__ import annotations

import json

from ..fmt import error_text, flatten, fmt_duration, fmt_num, fmt_value, status_text
from ..facts.text import machine_line, resources_line, since_parts
from ..folder import notes, record
from ..folder.layout import RunFolder, loads_bytes, read_bytes
from ..folder.logfile import last_lines
from ..folder.trials import sweep_of
from ..report import arg_changes
from .common import folder, settled, shown_status
from .groups import group_id


POINTS = 80  # points kept per curve: plenty for a card, light for 2,000 runs
PATCH_CHARS = 20_000
LOG_LINES = 15


def downsample(points: list[tuple], n: int = POINTS) -> list[tuple]:
    if len(points) <= n:
        return points
    step = (len(points) - 1) / (n - 1)
    return [points[round(i * step)] for i in range(n)]


class Curve:
    """One metric's points, met one by one, in memory that does not grow with them: every
    ``stride``-th point is kept; when 2 x POINTS are kept, every other one goes and the
    stride doubles. The last point is always kept. Only kept points are parsed."""

    __slots__ = ("kept", "stride", "seen", "last")

    def __init__(self):
        self.kept: list = []
        self.stride = 1
        self.seen = 0
        self.last = None

    def add(self, item) -> None:
        if self.seen % self.stride == 0:
            self.kept.append(item)
            if len(self.kept) >= 2 * POINTS:
                self.kept = self.kept[::2]
                self.stride *= 2
        self.seen += 1
        self.last = item

    def items(self) -> list:
        return self.kept + ([self.last] if self.kept and self.kept[-1] is not self.last else [])


_NAME = None


def _loads(raw: bytes):
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _point(raw: bytes, i: int) -> tuple[str, tuple] | None:
    return _value(_loads(raw), i)


_INF = float("inf")


def _value(p, i: int) -> tuple[str, tuple] | None:
    """(name, (step, value)) of a parsed point; None for one that is no point."""
    try:
        v = p.get("value")
    except AttributeError:
        return None
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v or v in (_INF, -_INF):
        return None
    name = p.get("name")
    if type(name) is not str:  # a line no runlog wrote: no point (metrics.point)
        return None
    step = p.get("step")
    return name, (step if type(step) is int else i, v)


def _short(data: bytes) -> dict[str, list]:
    """The curves of a metrics.jsonl short enough to keep every point: one parse of all its
    lines (twice as fast as one per line), the points checked as ``_value`` does, inline."""
    lines = data.splitlines()
    try:
        points = loads_bytes(b"[" + b",".join(lines) + b"]")
    except (ValueError, RecursionError):  # a torn last line: line by line
        points = [p for p in map(_loads, lines) if p is not None]
    series: dict[str, list] = {}
    for i, p in enumerate(points):
        if type(p) is not dict:
            continue
        v = p.get("value")
        if type(v) is not float and (type(v) is not int and not isinstance(v, (int, float))
                                     or isinstance(v, bool)):
            continue
        if v != v or v == _INF or v == -_INF:
            continue
        step = p.get("step")
        if type(name := p.get("name")) is not str:
            continue
        pts = series.get(name)
        if pts is None:
            pts = series[name] = []
        pts.append([step if type(step) is int else i, round(v, 6)])
    return {k: v for k, v in series.items() if len(v) > 1}


def curves(run_dir: str) -> dict[str, list]:
    """Each metric's curve, downsampled as metrics.jsonl is read: a run of a million points
    costs a read of the file, not a list of a million parsed points."""
    global _NAME
    if _NAME is None:
        import re

        _NAME = re.compile(rb'\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")')
    path = RunFolder(run_dir).metrics
    try:
        head = read_bytes(path, 65536)
    except OSError:
        return {}
    if len(head) < 65536 and head.count(b"\n") <= POINTS:  # a short run: nothing to thin
        return _short(head)
    by: dict[tuple[bytes, bool], Curve] = {}
    try:
        f = open(path, "rb")
    except OSError:
        return {}
    with f:
        for i, raw in enumerate(f):
            m = _NAME.match(raw)  # runlog's own lines: the name without parsing the rest
            if m is None or b"NaN" in raw or b"Infinity" in raw or not raw.rstrip().endswith(b"}"):
                # another writer's line, a value that is no point, a torn last line: parse it
                got = _point(raw, i)
                if got is None:
                    continue
                key = json.dumps(got[0], ensure_ascii=False).encode("utf-8", "surrogateescape")
            else:
                key = m.group(1)
            # a point read from plain output is kept apart: dropped below when the same name
            # was also recorded explicitly (as ``metrics.read_points`` does)
            key = (key, b'"from":"text"' in raw)
            c = by.get(key)
            if c is None:
                c = by[key] = Curve()
            c.add((i, raw))
    explicit = {name for name, text in by if not text}
    series: dict[str, list] = {}
    for (name_key, text), c in by.items():
        if text and name_key in explicit:
            continue
        pts = []
        name = None
        for i, raw in c.items():
            got = _point(raw, i)
            if got is not None:
                name = got[0]
                pts.append(got[1])
        if name is not None and len(pts) > 1:
            series[name] = [[s, round(v, 6)] for s, v in downsample(pts)]
    return series


LOG_LINE_CHARS = 2000  # of each log line in a card: a 100 MB line stays a few kB here


def _tail(path: str, n: int) -> str:
    try:
        lines = last_lines(path, n)[0]
        if max(map(len, lines), default=0) > LOG_LINE_CHARS:  # rare: cut only then
            lines = [ln if len(ln) <= LOG_LINE_CHARS else ln[:LOG_LINE_CHARS] + " …" for ln in lines]
        return "\n".join(lines)
    except OSError:
        return ""


def _patch(run_dir: str, rec: dict) -> str:
    git = rec.get("git") or {}
    name = git.get("patch")
    if not name:
        return ""
    try:
        with open(RunFolder(run_dir).file(name), encoding="utf-8", errors="replace") as f:
            text = f.read(PATCH_CHARS + 1)
    except OSError:
        return ""
    return text if len(text) <= PATCH_CHARS else text[:PATCH_CHARS] + "\n… (cut; runlog show --patch)"


_EXACT: dict[type, dict] = {float: {}, int: {}}  # the text of each exact number met, a type


def exact(v) -> str:
    """An argument as the compare view shows it: ``fmt_value``, unless that rounds a float
    (two learning rates that differ in the 5th digit must not look the same). The text of a
    number is kept: the journal shows the same arguments run after run."""
    known = _EXACT.get(type(v))
    if known is None:
        return _exact(v)
    text = known.get(v)
    if text is None:
        text = _exact(v)
        if v and v == v and len(known) < 4096:  # not 0.0 and -0.0 (equal, two texts), not NaN
            known[v] = text
    return text


def _exact(v) -> str:
    text = fmt_value(v)
    if isinstance(v, float) and v == v and abs(v) != _INF:
        try:
            if float(text) != v:
                return repr(v)
        except ValueError:
            pass
    return text


ENV_KEYS = ("python", "implementation", "platform", "installed_hash")


def environment(full: dict) -> dict[str, str]:
    """The facts about where a run ran that the compare view lines up (flat, text): the
    interpreter, the host, the package versions, frameworks and GPUs — whichever the
    record has (``env`` and ``machine`` are read when present, never required)."""
    env = full.get("env") if isinstance(full.get("env"), dict) else {}
    machine = full.get("machine") if isinstance(full.get("machine"), dict) else {}
    facts: dict[str, str] = {}
    for k in ENV_KEYS:
        v = env.get(k) if env.get(k) is not None else (full.get(k) if k == "python" else None)
        if v is not None:
            facts[k] = str(v)
    host = machine.get("host") or full.get("host")
    if host:
        facts["host"] = str(host)
    for k in ("cpu_model", "cpus", "memory_bytes"):
        if machine.get(k) is not None:
            facts[k] = str(machine[k])
    gpus = machine.get("gpus")
    if isinstance(gpus, list) and gpus:
        facts["gpus"] = ", ".join(str(g.get("name", "?")) if isinstance(g, dict) else "?" for g in gpus)
    frameworks, packages = env.get("frameworks"), env.get("packages")  # any shape: never trusted
    for name, fw in sorted(frameworks.items() if isinstance(frameworks, dict) else ()):
        for k, v in (fw or {}).items() if isinstance(fw, dict) else ():
            if v is not None:
                facts[f"{name}.{k}"] = str(v)
    for name, version in sorted(packages.items() if isinstance(packages, dict) else ()):
        facts[f"pkg {name}"] = str(version)
    return facts


def _full(root: str, r: dict, fulls: dict) -> dict:
    """A run's whole record, read once for its card and the "since" of the run after it
    (a few recent ones kept: the journal streams, whatever the history)."""
    if r["id"] not in fulls:
        try:
            remember(fulls, r["id"], record.read(folder(root, r).path))
        except record.RecordError:
            remember(fulls, r["id"], dict(r))
    return fulls[r["id"]]


def remember(fulls: dict, run_id: str, full: dict) -> None:
    """A run's record kept among the recent ones (64: the journal streams, whatever the history)."""
    fulls[run_id] = full
    while len(fulls) > 64:
        del fulls[next(iter(fulls))]


def card(root: str, r: dict, prev: dict | None, envs: dict | None = None,
         fulls: dict | None = None) -> dict:
    fulls = {} if fulls is None else fulls
    run_dir = folder(root, r).path
    full = dict(_full(root, r, fulls))
    full["shown_status"] = shown_status(full)
    full["dir"] = run_dir
    full = settled(full)
    metrics = full.get("metrics") or r.get("metrics") or {}
    since = None
    if prev is not None:
        prev_args = prev["args"] if "args" in prev else _full(root, prev, fulls).get("args")
        changes = arg_changes(prev_args or {}, full.get("args") or {})
        files = (full.get("code_changes") or {}).get("files") or []
        since = {"id": prev["id"], "args": changes, "files": files[:20],
                 "commits": (full.get("code_changes") or {}).get("commits") or 0,
                 "env": since_parts(_full(root, prev, fulls), full)}
    git = full.get("git") or {}
    flat = flatten(full.get("args") or {})  # shown, and the group's key
    return {
        "id": full["id"],
        "day": str(full.get("started_at") or "")[:10],
        "time": str(full.get("started_at") or "")[11:16],
        "status": full["shown_status"],
        "status_text": status_text({"status": full["shown_status"], "exit_code": full.get("exit_code"),
                                    "signal": full.get("signal")}),
        "duration": fmt_duration(full.get("duration_s")) if full.get("duration_s") is not None
        else "",
        "script": full.get("script") or "",
        "command": full.get("command_line") or "",
        "note": full.get("note") or "",
        "notes": notes.split(notes.read(run_dir)),
        "metrics": {k: {"last": fmt_num(m.get("last")), "min": fmt_num(m.get("min")),
                        "max": fmt_num(m.get("max"))} for k, m in metrics.items()},
        "args": {k: exact(v) for k, v in flat.items()},
        "given": full.get("args_given") or [],
        "machine": machine_line(full) or "",
        "resources": resources_line(full) or "",
        "git": f"{git.get('short') or ''} {git.get('branch') or ''}".strip(),
        "dirty": bool(git.get("dirty")),
        "since": since,
        "curves": curves(run_dir),
        # runs of one machine and venv share one environment: kept once in DATA.envs
        "env": _env_index(envs, environment(full)) if envs is not None else None,
        "patch": _patch(run_dir, full),
        "log": _tail(RunFolder(run_dir).log, LOG_LINES),
        "error": error_text(full.get("error")),
        "sweep": sweep_line(full),
        "group": group_id(full, flat),  # runs that differ only in their seed share it (compare)
    }


def sweep_line(r: dict) -> str:
    """``sweep ID · trial N · lr=1e-3 layers=2`` for a sweep trial, else empty."""
    s = sweep_of(r)
    if s is None:
        return ""
    trial = f" · trial {s['trial']}" if s.get("trial") is not None else ""
    params = " ".join(f"{k}={v}" for k, v in s["params"].items())
    return f"sweep {s['id']}{trial}" + (f" · {params}" if params else "")


def _env_index(envs: dict, facts: dict) -> int | None:
    """The environment's place in DATA.envs, added when new (the key: its facts, sorted)."""
    if not facts:
        return None
    return envs.setdefault(tuple(sorted(facts.items())), len(envs))
