"""A run that never finished, made fit to be shown from what it wrote since its record."""

from __future__ import annotations

from .layout import RunFolder
from .record import shown_status
from .times import iso, parse_iso


def settle(record: dict, folder: RunFolder) -> dict:
    """A record fit to be shown: a run that never finished gets what it wrote since.

    Its metrics are summed up from metrics.jsonl; a lost run ends at its last
    written line (its ``ended_at`` and ``duration_s``), not at the time of reading.
    """
    if record.get("status") != "running":
        return record
    from . import segments
    from .metrics import read_points

    points = read_points(folder.path)
    if points:
        record["metrics"] = segments.summarize(points, segments.of(record))
    record["status"] = shown = record.get("shown_status") or shown_status(record)
    if shown == "lost":
        end = folder.last_write()
        start = parse_iso(record.get("started_at"))
        if end is not None:
            if start is not None and end < start:
                end = start  # a file time a little older than the first line's stamp
            record["ended_at"] = iso(end)
            if start is not None:
                record["duration_s"] = round(max(end - start, 0.0), 3)
            segments.settle(record, end)  # a resumed run: the sum of its segments
        if not record.get("error"):  # died by a fatal signal: faulthandler's lines end run.log
            from .logfile import fatal_error

            record["error"] = fatal_error(folder.log)
    return record
