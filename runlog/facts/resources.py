"""What a run used: CPU time and peak memory, children included (getrusage, at the finish)."""

from __future__ import annotations

import sys


def usage(children_only: bool = False) -> dict:
    """``cpu_s``: user + system time of this process and its waited-for children (only the
    children under ``runlog run``: the program is one); ``peak_rss_bytes``: the largest
    resident set of this process or of any one child (not their sum)."""
    try:
        import resource
    except ImportError:  # Windows
        return {"cpu_s": None, "peak_rss_bytes": None}
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    sources = [kids] if children_only else [resource.getrusage(resource.RUSAGE_SELF), kids]
    cpu = sum(r.ru_utime + r.ru_stime for r in sources)
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    peak = max(r.ru_maxrss for r in sources) * scale
    return {"cpu_s": round(cpu, 3), "peak_rss_bytes": peak or None}
