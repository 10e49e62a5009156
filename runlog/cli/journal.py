"""``runlog journal``: one self-contained HTML file to read the runs side by side.

Runs newest first, grouped by day, each a short card: status, duration, note,
later notes, final metrics, what changed since the previous run of the same
script, and small curves. The long material (all arguments, the code patch,
the log's tail) is folded away. Everything — data, styles, script — is inside
the one file, so it opens on a machine with no network.

The page is built by a small script from one embedded JSON document: 2,000
runs stay a few MB, and cards outside the screen are not laid out
(``content-visibility``), so it scrolls smoothly.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from importlib import resources
from itertools import islice, takewhile

from ..fmt import error_text, flatten, fmt_duration, fmt_num, fmt_value, status_text
from ..folder import notes, record
from ..folder.layout import LogDir, RunFolder
from ..folder.logfile import last_lines
from ..folder.trials import sweep_of
from ..report import arg_changes
from .common import CliError, check_root, folder, out, settled, shown_status, stream_runs

POINTS = 80  # points kept per curve: plenty for a card, light for 2,000 runs
PATCH_CHARS = 20_000
LOG_LINES = 15
NEWEST = 500  # runs in a journal unless told otherwise (-n, --all, --since)


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


def _value(p, i: int) -> tuple[str, tuple] | None:
    """(name, (step, value)) of a parsed point; None for one that is no point."""
    try:
        v = p.get("value")
    except AttributeError:
        return None
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v \
            or v in (float("inf"), float("-inf")):
        return None
    step = p.get("step")
    return p.get("name", "?"), (step if isinstance(step, int) else i, v)


def curves(run_dir: str) -> dict[str, list]:
    """Each metric's curve, downsampled as metrics.jsonl is read: a run of a million points
    costs a read of the file, not a list of a million parsed points."""
    global _NAME
    if _NAME is None:
        import re

        _NAME = re.compile(rb'\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")')
    by: dict[tuple[bytes, bool], Curve] = {}
    try:
        f = open(RunFolder(run_dir).metrics, "rb")
    except OSError:
        return {}
    with f:
        head = f.read(65536)
        if len(head) < 65536 and head.count(b"\n") <= POINTS:  # a short run: nothing to thin
            lines = head.splitlines()
            try:  # one parse of all lines is twice as fast as one per line
                points = json.loads(b"[" + b",".join(lines) + b"]")
            except (ValueError, RecursionError):  # a torn last line: line by line
                points = [p for p in map(_loads, lines) if p is not None]
            series: dict[str, list] = {}
            for i, p in enumerate(points):
                got = _value(p, i)
                if got is not None:
                    series.setdefault(got[0], []).append([got[1][0], round(got[1][1], 6)])
            return {k: v for k, v in series.items() if len(v) > 1}
        f.seek(0)
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
        return "\n".join(ln if len(ln) <= LOG_LINE_CHARS else ln[:LOG_LINE_CHARS] + " …"
                         for ln in lines)
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


def exact(v) -> str:
    """An argument as the compare view shows it: ``fmt_value``, unless that rounds a float
    (two learning rates that differ in the 5th digit must not look the same)."""
    text = fmt_value(v)
    if isinstance(v, float) and v == v and abs(v) != float("inf"):
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
            fulls[r["id"]] = record.read(folder(root, r).path)
        except record.RecordError:
            fulls[r["id"]] = dict(r)
        while len(fulls) > 64:
            del fulls[next(iter(fulls))]
    return fulls[r["id"]]


def card(root: str, r: dict, prev: dict | None, envs: dict | None = None,
         fulls: dict | None = None) -> dict:
    from ..facts.text import machine_line, resources_line, since_parts

    fulls = {} if fulls is None else fulls
    run_dir = folder(root, r).path
    full = dict(_full(root, r, fulls))
    full["shown_status"] = shown_status(full)
    full["dir"] = run_dir
    full = settled(full)
    metrics = full.get("metrics") or r.get("metrics") or {}
    since = None
    if prev is not None:
        changes = arg_changes(prev.get("args") or {}, full.get("args") or {})
        files = (full.get("code_changes") or {}).get("files") or []
        since = {"id": prev["id"], "args": changes, "files": files[:20],
                 "commits": (full.get("code_changes") or {}).get("commits") or 0,
                 "env": since_parts(_full(root, prev, fulls), full)}
    git = full.get("git") or {}
    return {
        "id": full["id"],
        "day": str(full.get("started_at") or "")[:10],
        "time": str(full.get("started_at") or "")[11:16],
        "status": full["shown_status"],
        "status_text": status_text({**full, "status": full["shown_status"]}),
        "duration": fmt_duration(full.get("duration_s")) if full.get("duration_s") is not None
        else "",
        "script": full.get("script") or "",
        "command": full.get("command_line") or "",
        "note": full.get("note") or "",
        "notes": notes.split(notes.read(run_dir)),
        "metrics": {k: {"last": fmt_num(m.get("last")), "min": fmt_num(m.get("min")),
                        "max": fmt_num(m.get("max"))} for k, m in metrics.items()},
        "args": {k: exact(v) for k, v in flatten(full.get("args") or {}).items()},
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
    }


def sweep_line(r: dict) -> str:
    """``sweep ID · trial N · lr=1e-3 layers=2`` for a sweep trial, else empty."""
    s = sweep_of(r)
    if s is None:
        return ""
    trial = f" · trial {s['trial']}" if s.get("trial") is not None else ""
    params = " ".join(f"{k}={v}" for k, v in s["params"].items())
    return f"sweep {s['id']}{trial}" + (f" · {params}" if params else "")


# Inside <script> the HTML parser still reads "<!--", "<script" and "</script": any of
# them in a note or a log line would end or swallow the element, and the page with it.
# In JSON, "<" and the others occur only inside strings, where \uXXXX means the same.
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                  "\u2029": "\\u2029"}


def script_safe(json_text: str) -> str:
    """JSON text that can sit inside a ``<script>`` element whatever its strings hold:
    no "<" at all (so no tag, comment or end tag), nor ">", "&", U+2028, U+2029."""
    for c, esc in _SCRIPT_UNSAFE.items():
        json_text = json_text.replace(c, esc)
    return json_text


def _env_index(envs: dict, facts: dict) -> int | None:
    if not facts:
        return None
    key = json.dumps(facts, sort_keys=True, default=str)
    return envs.setdefault(key, len(envs))



def since_time(text: str) -> str:
    """``--since``: a date (2026-11-01, 2026-11-01T14:00) or an age (30m, 12h, 7d, 2w), as the
    ISO time runs' ``started_at`` is compared with."""
    import re

    m = re.fullmatch(r"(\d+)\s*([mhdw])", text.strip())
    if m:
        secs = int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[m.group(2)]
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - secs))
    try:
        from datetime import datetime

        return datetime.fromisoformat(text.strip()).strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise CliError(f"--since {text!r}: give a date (2026-11-01) or an age (12h, 7d)") from None


def selected(root: str, limit: int | None, since: str | None) -> Iterator[dict]:
    """The runs of the journal, newest first, read one at a time."""
    runs: Iterator[dict] = stream_runs(root, want=limit)
    if since:
        runs = takewhile(lambda r: str(r.get("started_at") or "")[:19] >= since, runs)
    return islice(runs, limit) if limit else runs


def write(root: str, f, limit: int | None = NEWEST, since: str | None = None) -> int:
    """The page into ``f``, card by card: memory holds one card, plus per run its id and
    arguments (as JSON text) for the "changed since" of the runs after it."""
    listed: list[tuple[str, str | None]] = []  # (id, previous), newest first
    args_of: dict[str, str] = {}
    whole: dict[str, dict] = {}  # the rare run with no record to read again (killed at start)
    for r in selected(root, limit, since):
        listed.append((r["id"], r.get("previous")))
        args_of[r["id"]] = json.dumps(r.get("args") or {}, separators=(",", ":"), default=str)
        if r.get("shown_status") == "lost":
            whole[r["id"]] = r
    page = resources.files("runlog.cli").joinpath("journal.html").read_text(encoding="utf-8")
    head, _, tail = page.partition("/*DATA*/null")
    f.write(head)
    f.write('{"runs":[')
    envs: dict[str, int] = {}  # runs of one machine and venv share one environment
    fulls: dict = {}
    for k, (run_id, prev_id) in enumerate(listed):
        r = whole.pop(run_id, None) or {"id": run_id}
        prev = None
        if prev_id and prev_id in args_of:
            prev = {"id": prev_id, "args": json.loads(args_of[prev_id])}
        data = json.dumps(card(root, r, prev, envs, fulls), ensure_ascii=False, separators=(",", ":"),
                          default=str)
        f.write(("," if k else "") + script_safe(data))
    rest = json.dumps({"envs": [json.loads(e) for e in envs], "dir": os.path.abspath(root),
                       "made": time.strftime("%Y-%m-%d %H:%M")}, ensure_ascii=False,
                      separators=(",", ":"), default=str)
    f.write("]," + script_safe(rest[1:]))
    f.write(tail)
    return len(listed)


def build(root: str, limit: int | None = NEWEST, since: str | None = None) -> str:
    import io

    buf = io.StringIO()
    write(root, buf, limit, since)
    return buf.getvalue()


def journal(root: str, output: str | None = None, open_it: bool = False,
            limit: int | None = None, every: bool = False, since: str | None = None) -> int:
    """The newest NEWEST runs unless ``limit`` (-n), ``every`` (--all) or ``since`` says."""
    if limit is None and not (every or since):
        limit = NEWEST
    if limit is not None and limit < 1:
        raise CliError(f"-n {limit}: give at least 1 (or --all)")
    since_iso = since_time(since) if since else None
    check_root(root)
    path = output or LogDir(root).journal
    if os.path.exists(path) and not os.path.isfile(path):
        # /dev/null, /dev/stdout, a FIFO: written into; a rename would replace the device
        # itself (as root, /dev/null became a 700 KB HTML file)
        with open(path, "w", encoding="utf-8") as f:
            n = write(root, f, limit, since_iso)
    else:
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                n = write(root, f, limit, since_iso)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    out(f"{path}\n")
    if limit and n == limit:
        sys.stderr.write(f"runlog: the newest {n} runs (-n N, --since or --all for more)\n")
    if open_it:
        import webbrowser

        webbrowser.open("file://" + os.path.abspath(path))
    return 0
