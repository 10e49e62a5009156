"""The run record on disk. Nothing outside this package spells a file name or a record key
layout: it is written down in ``docs/record.md``.

- ``layout``: every path in a log directory and in a run folder.
- ``record``: run.json — the schema, new/upgrade/validate, atomic writes, and
  ``summary()``, the one projection every reader of many runs gets.
- ``index``: the log directory's index and run ids: append, read, newest,
  previous, resolve.
- ``logfile``: the ``run.log`` line, written and parsed.
- ``notes``: ``notes.md``, appended and parsed.
- ``metrics``: ``metrics.jsonl`` points and their summary.
"""
