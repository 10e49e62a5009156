"""Times as the record writes them: ISO 8601 with the local offset, to the millisecond."""

from __future__ import annotations

import time


def iso(t: float) -> str:
    """ISO 8601 with the local offset (no datetime import: start() is on the clock)."""
    lt = time.localtime(t)
    off = lt.tm_gmtoff or 0
    sign = "+" if off >= 0 else "-"
    off = abs(off) // 60
    ms = int((t - int(t)) * 1000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", lt)
            + f".{ms:03d}{sign}{off // 60:02d}:{off % 60:02d}")


def parse_iso(text) -> float | None:
    import datetime

    try:
        return datetime.datetime.fromisoformat(str(text)).timestamp()
    except (TypeError, ValueError):
        return None
