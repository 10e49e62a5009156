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
    cpu = sum(r.ru_utime + r.ru_stime for r in sources) - _own["cpu_s"]
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    # runlog's own children (git) are no part of the run: their CPU time is taken off,
    # and the children's peak counts only when some other child went above theirs
    peaks = [r.ru_maxrss for r in sources[:-1]]
    if kids.ru_maxrss > _own["maxrss"]:
        peaks.append(kids.ru_maxrss)
    peak = max(peaks, default=0) * scale
    return {"cpu_s": round(max(cpu, 0.0), 3), "peak_rss_bytes": peak or None}


_own = {"cpu_s": 0.0, "maxrss": 0}  # what runlog's own waited-for children used


def own_child(usage) -> None:
    """Note the usage (``os.wait4``'s) of a child runlog itself started and waited for."""
    _own["cpu_s"] += usage.ru_utime + usage.ru_stime
    _own["maxrss"] = max(_own["maxrss"], usage.ru_maxrss)
