"""Secrets stay out: values whose names look like credentials become ``***``."""

from __future__ import annotations

import os

MASK = "***"
# matched in the lower-cased name with "-" and "_" removed: API_KEY, api-key, apikey
_BASE = ("token", "secret", "password", "passwd", "apikey", "accesskey", "privatekey",
         "credential")
_cache: tuple[str, tuple[str, ...]] = ("", _BASE)


def _norm(name: str) -> str:
    return str(name).lower().replace("-", "").replace("_", "")


def _words() -> tuple[str, ...]:
    global _cache
    extra = os.environ.get("RUNLOG_MASK", "")
    if _cache[0] != extra:
        _cache = (extra, _BASE + tuple(_norm(w) for w in extra.split(",") if w.strip()))
    return _cache[1]


def is_secret(name: str) -> bool:
    """Whether a name looks like a credential's (RUNLOG_MASK=word,word adds words)."""
    n = _norm(name)
    return any(w in n for w in _words())


def mask_args(args):
    """A copy of an argument mapping with secret-looking values masked (nested too)."""
    if isinstance(args, dict):
        return {k: (MASK if is_secret(k) and v not in (None, "", False) and not isinstance(v, dict)
                    else mask_args(v)) for k, v in args.items()}
    if isinstance(args, list):
        return [mask_args(v) for v in args]
    return args


def mask_argv(argv: list[str]) -> list[str]:
    """Mask ``--api-key VALUE``, ``--api-key=VALUE`` and ``API_KEY=VALUE`` forms."""
    out = []
    hide_next = False
    for a in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        if a.startswith("-") and not a.startswith("--") and len(a) == 2:
            out.append(a)
            continue
        key, eq, _ = a.partition("=")
        if eq and is_secret(key.lstrip("-")) and (key.startswith("-") or key.isidentifier()):
            out.append(f"{key}={MASK}")
        elif a.startswith("--") and is_secret(a[2:]):
            out.append(a)
            hide_next = True
        else:
            out.append(a)
    return out
