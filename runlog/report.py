"""The final report: a pure function of a record (and the previous run's).

Plain text that is also Markdown: a heading, then one bullet per fact, the
essentials first, so it reads the same in a terminal and in a notes app.
"""

from __future__ import annotations

import os

from .fmt import (best, flatten, fmt_change, fmt_duration, fmt_num, fmt_value, printable,
                  same_value, status_text)
from .folder.layout import LOG

MAX_ARG_CHANGES = 6  # argument changes named in the "Since" line
ARGS_WIDTH = 160  # characters of "other args" before the rest is summarised
MAX_NOTES = 3  # later notes in the report, newest last


def metric_changes(prev: dict, cur: dict, args=()) -> list[str]:
    """Metric changes; a metric that shares its name with an argument says it is one."""
    out = []
    for name, m in cur.items():
        p = prev.get(name)
        if not p:
            continue
        a, b = p.get("last"), m.get("last")
        if a is None or b is None or same_value(a, b) or (a != a and b != b):
            continue
        sa, sb = fmt_change(a, b)
        label = f"{name} (metric)" if name in args else name
        out.append(f"{label} {sa} → {sb}")
    return out


def arg_changes(prev: dict, cur: dict, given=()) -> list[str]:
    """Argument changes: values given on the command line first, then defaults changed
    in the code, then new and removed arguments."""
    a, b = flatten(prev or {}), flatten(cur or {})
    given_changed, default_changed, new, gone = [], [], [], []
    for k in b:
        if k not in a:
            new.append(f"{k} (new) {fmt_value(b[k])}")
        elif not same_value(a[k], b[k]):
            va, vb = (fmt_change(a[k], b[k]) if isinstance(a[k], float) and isinstance(b[k], float)
                      else (fmt_value(a[k]), fmt_value(b[k])))
            (given_changed if k in given else default_changed).append(f"{k} {va} → {vb}")
    for k in a:
        if k not in b:
            gone.append(f"{k} {fmt_value(a[k])} (gone)")
    return given_changed + default_changed + new + gone


def _startup(record: dict) -> str:
    """The time before start(), when it is worth a word (nanoGPT imports for seconds)."""
    s = record.get("startup_s")
    d = record.get("duration_s")
    if not isinstance(s, (int, float)) or s < 1 or (isinstance(d, (int, float)) and s < d / 10):
        return ""
    return f" (+ {fmt_duration(s)} before start())"


def _facts_changes(prev: dict, record: dict) -> list[str]:
    """Packages, Python, host, GPU, data and peak memory that changed (facts/text.py)."""
    if not any(record.get(k) for k in ("env", "machine", "data", "resources")):
        return []
    from .facts.text import since_parts

    return since_parts(prev, record)


def _facts_lines(record: dict) -> list[str]:
    """The report's Machine and Resources lines, for runs that recorded them."""
    if not record.get("machine") and not record.get("env") and not record.get("resources"):
        return []
    from .facts.text import machine_line, resources_line

    m, r = machine_line(record), resources_line(record)
    return ([f"- Machine: {m}"] if m else []) + ([f"- Resources: {r}"] if r else [])


def segments_text(record: dict) -> str | None:
    """A run resumed after a preemption: ``3 (12 min 04 s, 30 min 02 s, 5 min 01 s) ·
    restarted 2×``; None for a run of one segment."""
    segs = record.get("segments")
    if not isinstance(segs, list) or len(segs) < 2 or not all(isinstance(s, dict) for s in segs):
        return None
    from .folder.segments import seconds

    times = ", ".join(fmt_duration(seconds(s)) for s in segs)
    return f"{len(segs)} ({times}) · restarted {len(segs) - 1}×"


def env_settings(record: dict) -> tuple[dict[str, str], list[str]]:
    """The environment variables that set an argument (ConfigArgParse's ``env_var``:
    ``args_source`` ``$NAME``): ``({NAME: value as typed again}, [NAME of a masked secret])``."""
    from .mask import MASK

    args = flatten(record.get("args") or {})
    values: dict[str, str] = {}
    masked: list[str] = []
    for k, src in (record.get("args_source") or {}).items():
        name = src[1:] if isinstance(src, str) and src.startswith("$") else ""
        v = args.get(k)
        scalar = (str, int, float)
        if not name.isidentifier():
            continue
        if isinstance(v, list) and all(isinstance(x, scalar) and not isinstance(x, bool) for x in v):
            if any(isinstance(x, str) and MASK in x for x in v):
                masked.append(name)
            else:  # as ConfigArgParse reads a list from a variable: JSON
                from json import dumps

                values[name] = dumps(v)
        elif isinstance(v, scalar) and (v == MASK or isinstance(v, str) and MASK in v):
            masked.append(name)  # a URL's password masked inside it too: not the value it had
        elif isinstance(v, scalar):
            values[name] = str(v).lower() if isinstance(v, bool) else str(v)
    return values, masked


def _env_words(record: dict) -> str:
    """``cd DIR && `` for a script that changed directory before ``start()`` (``started_in``),
    then ``NAME=value `` for each environment variable that set an argument, so the Re-run
    line runs from where it was typed and gives the run its values."""
    from shlex import quote

    where = record.get("started_in")
    words = [f"cd {quote(where)} && "] if isinstance(where, str) and where else []
    return printable("".join(words)) + env_words(env_settings(record)[0])


def env_words(values: dict[str, str]) -> str:
    """``NAME=value `` words a shell sets exactly these values with, on one printable line: a
    value with a newline, a tab or another control character as ``$'...'`` (bash, zsh), which
    ``printable`` would have made a backslash and a letter inside ``'...'``."""
    from .fmt import quote

    def c(ch: str) -> str:
        if ch in "\\'":
            return "\\" + ch
        if ch.isprintable():
            return ch
        n = ord(ch)
        named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch)
        return named or (f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}")

    return "".join(f"{k}={quote(v)} " if v.isprintable() else f"{k}=$'{''.join(map(c, v))}' "
                   for k, v in values.items())


def changes_since(record: dict, prev: dict | None) -> str | None:
    """One line: what differs from the previous run of the same script."""
    if not prev:
        return None
    # a value from a config file was given as much as one typed on the command line
    given = set(record.get("args_given") or ()) | set(record.get("args_source") or ())
    parts = arg_changes(prev.get("args") or {}, record.get("args") or {}, given)
    if len(parts) > MAX_ARG_CHANGES:
        parts = parts[:MAX_ARG_CHANGES] + [f"… {len(parts) - MAX_ARG_CHANGES} more arguments"]
    args_changed = bool(parts)
    code = record.get("code_changes") or {}
    files = code.get("files") or []
    shown = ", ".join(files[:4]) + (f" +{len(files) - 4}" if len(files) > 4 else "")
    if code.get("commits"):
        n = code["commits"]
        parts.append(f"{n} new commit{'s' if n != 1 else ''}" + (f" ({shown})" if shown else ""))
    elif files:  # the same commit, other uncommitted changes: the code is not the same
        parts.append(f"uncommitted changes differ ({shown})")
    parts += _facts_changes(prev, record)
    # "same code" only when the recorded states are known to be equal
    same = "same arguments and code" if code.get("same") else "same arguments"
    how = ""
    if record.get("reproduces") == prev["id"]:  # a reproduction says first whether its code is
        how = " (reproduced)"
        if code.get("same"):
            parts.insert(0, "same code" if args_changed else same)
    parts += metric_changes(prev.get("metrics") or {}, record.get("metrics") or {},
                            set(flatten(record.get("args") or {})))
    text = "; ".join(parts) if parts else same
    return f"Since {prev['id']}{how}: {text}"


def _cut_list(items: list[str]) -> str:
    """``a=1, b=2, … 5 more``: at most ARGS_WIDTH characters of the list."""
    shown, width = [], 0
    for s in items:
        if width + len(s) > ARGS_WIDTH and shown:
            break
        shown.append(s)
        width += len(s) + 2
    rest = len(items) - len(shown)
    return ", ".join(shown) + (f", … {rest} more" if rest else "")


def render(record: dict, prev: dict | None = None, fmt: str = "md") -> str:
    """The report as it is printed, saved as report.md and copied.

    Every line is one fact, and recorded text stays text: a newline or a control
    character in a note, a name or a value is written out visibly (``printable``),
    so it can neither split a bullet nor act on the terminal that shows it.
    """
    md = fmt == "md"
    tick = "`" if md else ""
    lines = [f"{'## ' if md else ''}Run {record['id']} · {status_text(record)} · "
             f"{fmt_duration(record.get('duration_s'))}{_startup(record)}", ""]
    item = lines.append
    parts = segments_text(record)
    if parts:
        item(f"- Segments: {parts}")
    if record.get("note"):
        item(f"- Note: {record['note']}")
    if record.get("command_line"):
        item(f"- Re-run: {tick}{_env_words(record)}{record['command_line']}{tick}")
    git = record.get("git")
    if git:
        where = git.get("short") or "no commits yet"
        if git.get("branch"):
            where += f" on {git['branch']}"
        elif git.get("commit"):
            where += " (detached HEAD)"
        if git.get("dirty"):
            n = len(git.get("changed_files") or [])
            saved = f"saved in {git['patch']}" if git.get("patch") else "not saved"
            cut = ", cut at 1 MB" if git.get("patch_truncated") else ""
            where += f", uncommitted changes in {n} file{'s' if n != 1 else ''} {saved}{cut}"
        else:
            where += ", clean"
        item(f"- Git: {where}")
    if record.get("cells"):
        item(f"- Code: the notebook cells run, saved in {record['cells']}")
    metrics = record.get("metrics") or {}
    if metrics:
        parts = []
        for name, m in metrics.items():
            last, b = m.get("last"), best(name, m)
            s = f"{name} {fmt_num(last)}"
            if b is not None and b != last and m.get("count", 0) > 1:
                s += f" (best {fmt_num(b)})"
            parts.append(s)
        item("- Metrics: " + ", ".join(parts))
    args = flatten(record.get("args") or {})
    given = [k for k in record.get("args_given") or [] if k in args]
    if given:
        item("- Args given: " + ", ".join(f"{k}={fmt_value(args[k])}" for k in given))
    files: dict[str, list[str]] = {}  # a script's globals set by a config file it exec-ed
    for k, src in (record.get("args_source") or {}).items():
        if k in args and k not in given:
            files.setdefault(src, []).append(k)
    for src, names in files.items():
        item(f"- From {src}: " + _cut_list([f"{k}={fmt_value(args[k])}" for k in names]))
    taken = set(given).union(*files.values()) if files else set(given)
    others = [f"{k}={fmt_value(v)}" for k, v in args.items() if k not in taken]
    if others:
        label = "Defaults" if given or record.get("args_given") is not None else "Args"
        item(f"- {label}: " + _cut_list(others))
    lines += _facts_lines(record)
    since = changes_since(record, prev)
    if since:
        item(f"- {since}")
    later = record.get("notes")  # notes.md: added after the fact, with their times
    if later:
        from .folder.notes import split

        found = split(later)
        for stamp, text in found[-MAX_NOTES:]:
            item(f"- Noted {stamp}: {' '.join(text.split())}")
        if len(found) > MAX_NOTES:
            item(f"- … {len(found) - MAX_NOTES} earlier notes (runlog show)")
    err = record.get("error")
    if err:
        where = f" ({err['where']})" if err.get("where") else ""
        msg = f": {err['message']}" if err.get("message") else ""
        item(f"- Error: {err.get('type', 'Error')}{msg}{where}")
    if record.get("dir"):
        item(f"- Log: {os.path.join(record['dir'], LOG)}")
    return "\n".join(printable(ln) for ln in lines) + "\n"
