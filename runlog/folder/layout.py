"""Every name in a log directory and a run folder, and nothing else.

A log directory holds one folder per run (named by the run id), the index,
the sweeps' summaries and, by default, the journal. Anything else in it is
not a run and is ignored.
"""

from __future__ import annotations

import json
import os

# in a run folder
LOG = "run.log"            # the timestamped log (see logfile.py for its line)
RECORD = "run.json"        # the record (record.py)
METRICS = "metrics.jsonl"  # one metric point per line (metrics.py)
PATCH = "code.patch"       # uncommitted changes against the recorded commit
NOTES = "notes.md"         # notes added later, append-only (notes.py)
REPORT = "report.md"       # the final report
CELLS = "cells.py"         # a notebook run's executed cells
ARGS = "args.json"         # a program's own arguments, written from inside `runlog run`
NOTE = "note.txt"          # start(note=...) of a program inside `runlog run`
ENV = "env.json"           # the environment of a Python program inside `runlog run`

# in the log directory
INDEX = ".runlog-index.jsonl"
LATEST = ".runlog-latest"  # the last finished run of each script (latest.py)
SWEEPS = ".sweeps"
ENVS = ".runlog-envs"  # the installed set of each distinct environment (facts/env.py)
# in .sweeps/, per sweep id: its summary, the Optuna journal of a --slurm sweep without
# --storage, the batch script it submitted, and the folder of its Slurm tasks' output
SWEEP_FILES = {"summary": "{}.json", "journal": "{}.journal", "batch": "{}.sbatch",
               "slurm_out": "{}-slurm"}
JOBS = ".runlog-jobs"      # the run of each scheduler job and script (segments.py; a cache)
SOURCES = ".runlog-sources"  # what was read from a script's source, while unchanged (sourcecache.py)
JOURNAL = "journal.html"

ARTIFACTS = (LOG, PATCH, REPORT, NOTES, CELLS)  # the files a run is read by, besides its record


def rank_log(rank: int) -> str:
    """The log of distributed rank ``rank`` (rank 0 writes run.log)."""
    return LOG if not rank else f"rank{rank}.log"


_SLASH = os.sep == "/" and os.altsep is None  # POSIX: a path joined is a concatenation


def file_in(folder: str, name: str) -> str:
    """``os.path.join(folder, name)``, the same text without its generality where that is
    plain (it costs a reader of 100,000 runs ~0.3 us a path, six paths a journal card)."""
    if _SLASH and type(folder) is str and type(name) is str and folder and folder[-1] != "/" \
            and name[:1] != "/":
        return folder + "/" + name
    return os.path.join(folder, name)


class RunFolder:
    """The paths of one run folder."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"RunFolder({self.path!r})"

    def file(self, name: str) -> str:
        return file_in(self.path, name)

    @property
    def id(self) -> str:
        return os.path.basename(self.path)

    @property
    def log(self) -> str:
        return file_in(self.path, LOG)

    @property
    def record(self) -> str:
        return file_in(self.path, RECORD)

    @property
    def metrics(self) -> str:
        return file_in(self.path, METRICS)

    @property
    def patch(self) -> str:
        return file_in(self.path, PATCH)

    @property
    def notes(self) -> str:
        return file_in(self.path, NOTES)

    @property
    def report(self) -> str:
        return file_in(self.path, REPORT)

    @property
    def cells(self) -> str:
        return file_in(self.path, CELLS)

    @property
    def args(self) -> str:
        return file_in(self.path, ARGS)

    @property
    def note(self) -> str:
        return file_in(self.path, NOTE)

    @property
    def env(self) -> str:
        return file_in(self.path, ENV)

    def has_record(self) -> bool:
        return os.path.isfile(self.record)

    def last_write(self) -> float | None:
        """When anything the run writes was last written: a lost run ended then."""
        times = []
        for name in (LOG, METRICS, RECORD):
            try:
                times.append(os.path.getmtime(os.path.join(self.path, name)))
            except OSError:
                pass
        return max(times) if times else None


class LogDir:
    """The paths of one log directory."""

    __slots__ = ("root",)

    def __init__(self, root: str):
        self.root = root

    def run(self, run_id: str) -> RunFolder:
        return RunFolder(file_in(self.root, run_id))

    @property
    def index(self) -> str:
        return os.path.join(self.root, INDEX)

    @property
    def latest(self) -> str:
        return os.path.join(self.root, LATEST)

    @property
    def sweeps(self) -> str:
        return os.path.join(self.root, SWEEPS)

    @property
    def journal(self) -> str:
        return os.path.join(self.root, JOURNAL)

    def sweep(self, sweep_id: str, what: str = "summary") -> str:
        """A sweep's file in ``.sweeps/``: ``summary``, ``journal``, ``batch`` or ``slurm_out``."""
        return os.path.join(self.root, SWEEPS, SWEEP_FILES[what].format(sweep_id))

    @property
    def jobs(self) -> str:
        return os.path.join(self.root, JOBS)

    @property
    def sources(self) -> str:
        return os.path.join(self.root, SOURCES)


def log_root(log_dir: str | os.PathLike | None = None) -> str:
    """The log directory: the argument, else $RUNLOG_DIR, else ./logs."""
    if log_dir is not None:
        return os.fspath(log_dir)
    return os.environ.get("RUNLOG_DIR") or "logs"


def is_leftover(name: str) -> bool:
    """A temporary file of an atomic write that a crash left behind: never part of a run."""
    return name.endswith(".tmp")


def is_run_name(name: str) -> bool:
    """Whether a folder name in a log directory may be a run (hidden ones never are)."""
    return not name.startswith(".")


def read_bytes(path: str, limit: int = -1) -> bytes:
    """A regular file's bytes, or its first ``limit``: one open and one read for a small
    file, no file object (a reader of many runs opens several small files per run, and
    ``open()`` costs more than the read). Raises OSError as ``open`` does."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts: list[bytes] = []
        got, size = 0, 65536
        while limit < 0 or got < limit:
            want = size if limit < 0 else min(size, limit - got)
            data = os.read(fd, want)
            parts.append(data)
            got += len(data)
            if len(data) < want:  # a regular file reads short only at its end
                break
            size = min(size * 2, 8 << 20)  # a large file: fewer, larger reads
        return parts[0] if len(parts) == 1 else b"".join(parts)
    finally:
        os.close(fd)


# json.loads checks its arguments, looks for a byte order mark, picks an encoding for bytes
# and matches the whitespace around the value with a regular expression on every call: ~0.7
# us a call beside the C scanner's ~5 us for a run.json, and a reader of 100,000 runs parses
# two files a run. ``loads`` calls the scanner itself; text that is not one value from its
# first character, then nothing but JSON whitespace, goes to json.loads: the same value, or
# the same error, always.
_scan = json.JSONDecoder().scan_once  # the C scanner of json.loads (its default settings)


def loads(text: str):
    """``json.loads(text)`` for a str."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:  # leading whitespace, a byte order mark, no value: json.loads decides
        return json.loads(text)
    if end != len(text) and text[end:].lstrip(" \t\n\r"):
        return json.loads(text)  # more after the value: its error
    return value


def loads_bytes(data: bytes):
    """``json.loads(data)``, for bytes that start with ``[`` or ``{``: UTF-8, unless the second
    byte is 0 (json.loads then reads UTF-16 or -32)."""
    if len(data) < 2 or data[0] not in b"[{" or not data[1]:
        return json.loads(data)
    return loads(data.decode("utf-8", "surrogatepass"))
