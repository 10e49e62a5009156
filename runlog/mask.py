"""Secrets stay out: values whose names look like credentials become ``***``."""

from __future__ import annotations

import os
import re

MASK = "***"
_BASE = ("token", "secret", "password", "passwd", "api[-_]?key", "access[-_]?key",
         "private[-_]?key", "credential")
_cache: tuple[str, re.Pattern] | None = None


def _pattern() -> re.Pattern:
    global _cache
    extra = os.environ.get("RUNLOG_MASK", "")
    if _cache is None or _cache[0] != extra:
        words = list(_BASE) + [re.escape(w.strip()) for w in extra.split(",") if w.strip()]
        _cache = (extra, re.compile("|".join(words), re.IGNORECASE))
    return _cache[1]


def is_secret(name: str) -> bool:
    return bool(_pattern().search(str(name)))


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
