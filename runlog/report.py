"""The final report: a pure function of a record (and the previous run's), plus the clipboard.

Plain text that is also Markdown: a heading, then one bullet per fact, the
essentials first, so it reads the same in a terminal and in a notes app.
"""

from __future__ import annotations

import math
import os

MAX_ARG_CHANGES = 6  # argument changes named in the "Since" line
ARGS_WIDTH = 160  # characters of "other args" before the rest is summarised
_LOWER_IS_BETTER = ("loss", "err", "mse", "mae", "rmse", "perplexity", "ppl", "wer", "cer",
                    "time", "latency", "nll", "bpd", "distance", "regret")


def lower_is_better(name: str) -> bool:
    n = name.lower()
    return any(w in n for w in _LOWER_IS_BETTER)


def fmt_num(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v == 0:
            return "0"
        if v == int(v) and abs(v) < 1e15:
            return str(int(v)) if abs(v) >= 1e4 else f"{v:g}"
        return f"{v:.4g}"
    return str(v)


def fmt_value(v) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt_num(v)
    if isinstance(v, str):
        return v if v and " " not in v and "," not in v else repr(v)
    if isinstance(v, (dict, list)):
        import json

        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(v)


def fmt_duration(s) -> str:
    if s is None:
        return "?"
    s = float(s)
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"
    return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"


def status_text(record: dict) -> str:
    status = record.get("status") or "?"
    code = record.get("exit_code")
    if status == "killed" and record.get("signal"):
        return f"killed by {record['signal']}"
    if status == "failed" and code not in (None, 0, 1):
        return f"failed (exit {code})"
    return status


def best(name: str, m: dict):
    return m.get("min") if lower_is_better(name) else m.get("max")


def flatten(args: dict, prefix: str = "") -> dict:
    """Nested config keys as ``a.b.c`` for display; the record keeps them nested."""
    out = {}
    for k, v in args.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def metric_changes(prev: dict, cur: dict) -> list[str]:
    out = []
    for name, m in cur.items():
        p = prev.get(name)
        if not p:
            continue
        a, b = p.get("last"), m.get("last")
        if a is None or b is None or a == b:
            continue
        out.append(f"{name} {fmt_num(a)} → {fmt_num(b)}")
    return out


def arg_changes(prev: dict, cur: dict) -> list[str]:
    a, b = flatten(prev or {}), flatten(cur or {})
    out = []
    for k in b:
        if k not in a:
            out.append(f"{k} (new) {fmt_value(b[k])}")
        elif a[k] != b[k]:
            out.append(f"{k} {fmt_value(a[k])} → {fmt_value(b[k])}")
    for k in a:
        if k not in b:
            out.append(f"{k} {fmt_value(a[k])} (gone)")
    return out


def changes_since(record: dict, prev: dict | None) -> str | None:
    """One line: what differs from the previous run of the same script."""
    if not prev:
        return None
    parts = arg_changes(prev.get("args") or {}, record.get("args") or {})
    if len(parts) > MAX_ARG_CHANGES:
        parts = parts[:MAX_ARG_CHANGES] + [f"… {len(parts) - MAX_ARG_CHANGES} more arguments"]
    code = record.get("code_changes") or {}
    if code.get("commits"):
        n = code["commits"]
        files = code.get("files") or []
        shown = ", ".join(files[:4]) + (f" +{len(files) - 4}" if len(files) > 4 else "")
        parts.append(f"{n} new commit{'s' if n != 1 else ''}" + (f" ({shown})" if shown else ""))
    parts += metric_changes(prev.get("metrics") or {}, record.get("metrics") or {})
    text = "; ".join(parts) if parts else "same arguments and commit"
    return f"Since {prev['id']}: {text}"


def render(record: dict, prev: dict | None = None, fmt: str = "md") -> str:
    """The report as it is printed, saved as report.md and copied."""
    md = fmt == "md"
    tick = "`" if md else ""
    lines = [f"{'## ' if md else ''}Run {record['id']} · {status_text(record)} · "
             f"{fmt_duration(record.get('duration_s'))}", ""]
    item = lines.append
    if record.get("note"):
        item(f"- Note: {record['note']}")
    if record.get("command_line"):
        item(f"- Re-run: {tick}{record['command_line']}{tick}")
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
    others = [f"{k}={fmt_value(v)}" for k, v in args.items() if k not in given]
    if others:
        shown, width = [], 0
        for s in others:
            if width + len(s) > ARGS_WIDTH and shown:
                break
            shown.append(s)
            width += len(s) + 2
        rest = len(others) - len(shown)
        label = "Defaults" if given or record.get("args_given") is not None else "Args"
        item(f"- {label}: " + ", ".join(shown) + (f", … {rest} more" if rest else ""))
    since = changes_since(record, prev)
    if since:
        item(f"- {since}")
    err = record.get("error")
    if err:
        where = f" ({err['where']})" if err.get("where") else ""
        msg = f": {err['message']}" if err.get("message") else ""
        item(f"- Error: {err.get('type', 'Error')}{msg}{where}")
    if record.get("dir"):
        item(f"- Log: {os.path.join(record['dir'], 'run.log')}")
    return "\n".join(lines) + "\n"


def command_line(argv: list[str]) -> str:
    return " ".join(_quote(a) for a in argv)


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


def _quote(s: str) -> str:
    """Shell-quote like shlex.quote (whose import is not worth it on start())."""
    if not s:
        return "''"
    if _SAFE.issuperset(s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


# ---------------------------------------------------------------- clipboard


class _quiet_fds:
    """stdout and stderr on /dev/null while a clipboard tool starts.

    xclip and xsel fork a process that stays to serve the selection; it would
    inherit our stdout and hold a pipe open (``runlog report --copy | cat``
    would never end).
    """

    def __enter__(self):
        self.saved = []
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            for fd in (1, 2):
                self.saved.append((fd, os.dup(fd)))
                os.dup2(null, fd)
            os.close(null)
        except OSError:
            pass
        return self

    def __exit__(self, *exc):
        for fd, copy in self.saved:
            os.dup2(copy, fd)
            os.close(copy)


def osc52(text: str) -> str:
    """The terminal escape that puts text on the clipboard of the user's own machine."""
    import base64

    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"\x1b]52;c;{data}\x07"


def copy(text: str) -> str | None:
    """Put text on the clipboard. Returns None, or one line saying why it could not."""
    try:
        import pyperclip

        with _quiet_fds():
            pyperclip.copy(text)
        return None
    except Exception as e:  # no clipboard here: over SSH, OSC 52 reaches the user's terminal
        if os.environ.get("SSH_TTY") or os.environ.get("SSH_CONNECTION"):
            try:
                with open("/dev/tty", "w") as tty:
                    tty.write(osc52(text))
                return None
            except OSError:
                pass
        reason = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        return f"could not copy the report: no clipboard here ({reason[:120]})"
