"""How values, durations, statuses, paths and command lines are written for people.

Shared by the report, the console and every command of the CLI, so a value
reads the same wherever it is shown.
"""

from __future__ import annotations

import os

_INF = float("inf")

_LOWER_IS_BETTER = ("loss", "err", "mse", "mae", "rmse", "perplexity", "ppl", "wer", "cer",
                    "time", "latency", "nll", "bpd", "distance", "regret")
_HIGHER_IS_BETTER = ("acc", "f1", "auc", "precision", "recall", "score", "bleu", "rouge",
                     "map", "iou", "dice", "r2", "reward", "return", "top1", "top5", "ndcg",
                     "mrr", "hit", "success", "psnr", "ssim")


def lower_is_better(name: str) -> bool:
    n = name.lower()
    return any(w in n for w in _LOWER_IS_BETTER)


def higher_is_better(name: str) -> bool:
    n = name.lower()
    return not lower_is_better(n) and any(w in n for w in _HIGHER_IS_BETTER)


def same_value(a, b) -> bool:
    """The one equality of recorded values: 0 and 0.0 are the same setting, True and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


_KEYS_OF: dict[type, dict] = {float: {}, int: {}}  # value_key of numbers met, one dict a type


def value_key(v) -> str:
    """A key under which values that ``same_value`` calls equal collide."""
    known = _KEYS_OF.get(type(v))  # an exact float or int: its repr is kept (a journal keys
    if known is not None:           # the same arguments run after run)
        got = known.get(v)
        if got is None:
            if v != v:
                return "nan"
            try:
                got = repr(float(v))
            except OverflowError:
                got = repr(v)
            if v and len(known) < 4096:  # not 0.0 and -0.0: equal, with two keys
                known[v] = got
        return got
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return repr(float(v)) if v == v else "nan"
        except OverflowError:
            return repr(v)
    return repr(v)


def fmt_num(v) -> str:
    if type(v) is float:  # most values shown (a journal shows a dozen a run): tested first
        return _fmt_float(v)
    if v is None:  # a metric whose value is missing or was unreadable
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        if abs(v) < 10**15:
            return str(v)
        digits = str(abs(v))  # too big for a float: the same shape as f"{v:.4g}"
        mantissa = f"{digits[0]}.{digits[1:4]}".rstrip("0").rstrip(".")
        return f"{'-' if v < 0 else ''}{mantissa}e+{len(digits) - 1}"
    if isinstance(v, float):
        return _fmt_float(v)
    return str(v)


def _fmt_float(v: float) -> str:
    if v != v:  # nan (math is not imported: it costs start() ~0.2 ms)
        return "nan"
    if v in (_INF, -_INF):
        return "inf" if v > 0 else "-inf"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v)}.0"  # a float stays a float: dropout=0.0, not 0
    return f"{v:.4g}"


def fmt_change(a, b) -> tuple[str, str]:
    """Two different numbers written with enough digits to show that they differ."""
    sa, sb = fmt_num(a), fmt_num(b)
    if sa != sb or not all(isinstance(x, float) for x in (a, b)) or a == b:
        return sa, sb
    for digits in range(5, 18):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb:
            break
    return sa, sb


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
    """The best value of a metric whose name says which way is better (a learning-rate
    schedule has no best); None otherwise."""
    if lower_is_better(name):
        return m.get("min")
    if higher_is_better(name):
        return m.get("max")
    return None


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


def command_line(argv: list[str]) -> str:
    return " ".join(quote(a) for a in argv)


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


def quote(s: str) -> str:
    """Shell-quote like shlex.quote (whose import is not worth it on start())."""
    if not s:
        return "''"
    if _SAFE.issuperset(s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


def shown_path(path: str, cwd: str | None) -> str:
    """A path as the user would type it from where the script started."""
    rel = os.path.relpath(path, cwd or os.getcwd())
    return path if rel.startswith("..") else rel


# C0 controls but tab, DEL, C1 controls, and lone surrogates (which no terminal
# encoding can write). A terminal acts on these instead of showing them: ESC
# starts sequences that can recolour, retitle, move the cursor or write the
# clipboard (OSC 52); CR and BS overwrite what was shown.
_CONTROL = None
_NAMED = {"\n": "\\n", "\r": "\\r", "\b": "\\b", "\f": "\\f", "\v": "\\v", "\0": "\\0"}


def _escape(m) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


_BIDI = "\u2028\u2029\u202a-\u202e\u2066-\u2069"


def printable(text: str, *, lines: bool = False) -> str:
    """Recorded text fit for a terminal: every control character written out visibly.

    ``"\\x1b]52;c;…\\x07"`` becomes ``\\x1b]52;c;…\\x07`` as plain characters, a
    carriage return ``\\r``, a newline ``\\n``; tabs stay. With ``lines``, newlines
    stay too (for a block that is several lines by design), each line escaped
    alike. Idempotent, and a plain string comes back as it was.
    """
    global _CONTROL
    text = str(text)
    if text.isprintable():  # the common case, without loading re (start() writes through here)
        return text
    if _CONTROL is None:
        import re

        # also the bidi overrides and isolates (text that reads differently from what
        # it is) and the line/paragraph separators that some terminals break lines at
        _CONTROL = (re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]"),
                    re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]"))
    return _CONTROL[lines].sub(_escape, text)


def printable_json(json_text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) fit for a terminal.

    JSON escapes the C0 controls already; this writes DEL, the C1 controls and lone
    surrogates as ``\\uXXXX`` too. They can only occur inside strings, where the
    escape means the same: the document is unchanged as data.
    """
    global _JSON_CONTROL
    if _JSON_CONTROL is None:
        import re

        _JSON_CONTROL = re.compile(f"[\x7f-\x9f\ud800-\udfff{_BIDI}]")
    return _JSON_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)


_JSON_CONTROL = None


def cut(s: str, width: int) -> str:
    """``s`` on one line, at most ``width`` characters (the last one ``…`` when cut)."""
    s = " ".join(s.split()) if "\n" in s else s
    return s if len(s) <= width else s[: width - 1] + "…"


def error_text(err) -> str:
    """``Type: message`` of a recorded error; empty when there is none."""
    if not isinstance(err, dict):
        return ""
    return f"{err.get('type') or 'Error'}" + (f": {err['message']}" if err.get("message") else "")
