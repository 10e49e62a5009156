"""The shape of every field a reader uses, made sure of once, where a record is read.

A run.json or an index line edited by hand, written by a foreign tool or damaged
may hold any JSON value anywhere: a list as the commit, 400 digits as the
duration, ``NaN`` as a pid, an object as a traceback line. ``fit`` turns such a
record into one every reader can use as it is: a value of the wrong type becomes
the field's empty value (null, or ``[]``), a number or bool where text belongs is
shown as text, and a number no float holds (or a negative size) is dropped. What
is already of its type is returned as it is, so a sound record costs one pass of
type tests. Keys that are not described here are kept as they are.

The top-level containers ``record.read`` checks (``args``, ``metrics``, ``git``…
of the wrong type make a record corrupt) are checked there, before this.
"""

from __future__ import annotations

_BIG = 2 ** 63


def text(v):
    """str or None; anything else (a number, a bool, a list) as its text."""
    if v is None or type(v) is str:
        return v
    return str(v)


def count(v):
    """A whole number from 0 to 2**63 (a size, a count, a pid), else None."""
    if type(v) is int:
        return v if 0 <= v < _BIG else None
    if type(v) is float and v.is_integer() and 0 <= v < _BIG:
        return int(v)
    return None


def integer(v):
    """A whole number of either sign that an int64 holds (an exit code), else None."""
    if type(v) is int:
        return v if -_BIG < v < _BIG else None
    if type(v) is float and v.is_integer() and -_BIG < v < _BIG:
        return int(v)
    return None


def seconds(v):
    """A finite, non-negative number of seconds (a duration, CPU time), else None."""
    if type(v) is float:
        return v if 0 <= v < 1e15 else None  # NaN fails both tests
    if type(v) is int:
        return v if 0 <= v < 10 ** 15 else None
    return None


def number(v):
    """A metric's value: any float (NaN and inf are values a loss can take), an int a float
    holds; else None."""
    if type(v) is float:
        return v
    if type(v) is int:
        return v if -1e300 < v < 1e300 else None
    return None


def flag(v):
    return v if v is None or type(v) is bool else None


def path(v):
    """A path as text; one holding a NUL (no system call takes it) is None."""
    v = text(v)
    return None if v is not None and "\0" in v else v


def texts(v):
    """A list of text: other scalars as text, containers and nulls left out."""
    if type(v) is not list:
        return []
    if not v or all(type(x) is str for x in v):
        return v
    return [text(x) for x in v if x is not None and text(x) is not None]


def commit(v):
    """A git revision as hex (it is passed to git: an option or a NUL must never be)."""
    if type(v) is not str or not 4 <= len(v) <= 64 or not v.isalnum():
        return None
    try:
        int(v, 16)
    except ValueError:
        return None
    return v


def filename(v):
    """A file in the run folder: one plain name, never a path out of it."""
    if type(v) is str and v and "/" not in v and "\\" not in v and "\0" not in v \
            and not v.startswith("."):
        return v
    return None


def run_id(v):
    """A run id as a reader may look it up: a plain name, no path."""
    return v if type(v) is str and filename(v) is not None else None


def anything(v):
    return v


def mapping(values):
    """An object whose every value has the shape ``values`` (values that fit to None are
    left out), else None."""
    fine = _FINE.get(values)

    def fit_map(v):
        if type(v) is not dict:
            return None
        if fine is not None and all(type(x) is fine for x in v.values()):
            return v  # a sound one, as it is (an environment's packages, read 100,000 times)
        out = {k: values(x) for k, x in v.items()}
        return out if None not in out.values() else {k: x for k, x in out.items() if x is not None}
    return fit_map


def obj(fields):
    """An object with the given fields fitted (other keys kept); anything else None."""
    fields = table(fields)

    def fit_obj(v):
        if type(v) is not dict:
            return None
        return fit_fields(v, fields)
    return fit_obj


def items(shape):
    """A list whose elements have ``shape``; elements that fit to None are left out."""
    def fit_list(v):
        if type(v) is not list:
            return None
        out = [shape(x) for x in v]
        return [x for x in out if x is not None]
    return fit_list


# shapes whose every value of one type is fine as it is: ``number`` and a float, ``text`` and a str
_FINE = {text: str, flag: bool, number: float}


def table(fields: dict) -> dict:
    """Fields as ``fit_fields`` reads them: name → (shape, the type whose every value is
    already fine for it, so that such a value costs a type test and no call)."""
    return {k: (shape, _FINE.get(shape)) for k, shape in fields.items()}


def fit_fields(d: dict, fields: dict) -> dict:
    """``d`` with each field of ``fields`` (a ``table``) fitted, in place; ``d`` is returned."""
    for k, v in d.items():  # replacing a key's value while iterating is allowed
        described = fields.get(k)
        if described is None or v is None or type(v) is described[1]:
            continue
        fitted = described[0](v)
        if fitted is not v:
            d[k] = fitted
    return d


def _paths(v: list) -> list:
    """Paths as text, none holding a NUL (no system call takes one)."""
    return v if not any("\0" in p for p in v) else [p for p in v if "\0" not in p]


def _metric(v):
    if type(v) is not dict:
        return None
    return fit_fields(v, _METRIC)


def _metrics(v):
    if type(v) is not dict:
        return None
    bad = [k for k, m in v.items() if _metric(m) is None]
    return {k: m for k, m in v.items() if k not in bad} if bad else v


def _frameworks(v):
    """The summary's ``{"torch": "2.4.1"}`` or the record's ``{"torch": {"version": …}}``."""
    if type(v) is not dict:
        return None
    return {k: (_framework(x) if type(x) is dict else text(x)) for k, x in v.items()}


_METRIC = table({"last": number, "min": number, "max": number, "count": count, "step": integer})
_framework = obj({"version": text, "cuda": text, "cudnn": text})
_GIT = {"commit": commit, "short": commit, "branch": text, "dirty": flag,
        "changed_files": lambda v: _paths(texts(v)), "patch": filename, "patch_truncated": flag}
_ERROR = {"type": text, "message": text, "where": text, "traceback": texts}
_SEGMENT = {"started_at": text, "ended_at": text, "status": text, "host": text, "pid": count,
            "job": text, "restart": count}
_SWEEP = table({"trial": integer, "params": lambda v: v if type(v) is dict else {},
               "seed": anything, "gpus": text, "study": text})
_ENV = {"python": text, "implementation": text, "executable": text, "platform": text,
        "installed_hash": text, "packages": mapping(text), "frameworks": _frameworks,
        "installed_diff": obj({"previous": run_id, "count": count, "changed": texts})}
_gpus = items(obj({"index": count, "name": text, "memory_bytes": count, "driver": text, "uuid": text}))
_MACHINE = {"host": text, "cpu_model": text, "cpus": count, "memory_bytes": count,
            "gpus": lambda v: _gpus(v) or [], "container": text}
_RESOURCES = {"cpu_s": seconds, "peak_rss_bytes": count, "gpu_peak_memory_bytes": count,
              "gpu_util_mean": seconds}
_DATUM = {"path": text, "kind": text, "size": count, "mtime": seconds, "fingerprint": text,
          "skipped": text, "written": flag, "entries": count}
_SCHEDULER = {"kind": text, "job_id": text, "array_job_id": text, "array_task_id": integer,
              "restart_count": count, "nodelist": text, "partition": text, "node": text}


def _sweep(v):
    if type(v) is not dict or type(v.get("id")) is not str:
        return None  # a trial names its sweep, or it is none
    return fit_fields(v, _SWEEP)


# every field of a record and of a summary (the index line) that a reader uses: text first
TEXTS = ("name", "status", "signal", "started_at", "ended_at", "command_line", "script", "note",
         "host", "python", "notes", "notes_added")
FIELDS = {
    "schema": count, "exit_code": integer, "duration_s": seconds, "startup_s": seconds,
    "cwd": path, "script_path": path, "pid": count, "pid_start": count, "previous": run_id,
    "reproduces": run_id, "cells": filename,
    "tags": texts, "command": texts, "args_given": texts, "args_source": mapping(text),
    "metrics": _metrics,
    "git": obj(_GIT), "error": obj(_ERROR), "sweep": _sweep,
    "segments": items(obj(_SEGMENT)), "env": obj(_ENV), "machine": obj(_MACHINE),
    "resources": obj(_RESOURCES), "data": mapping(obj(_DATUM)), "scheduler": obj(_SCHEDULER),
    "code_changes": obj({"commits": count, "files": texts, "same": flag}),
    "frameworks": _frameworks,
}


_ALL = table({**{k: text for k in TEXTS}, **FIELDS})


def fit(record: dict) -> dict:
    """The record (or summary) with every described field of its shape (in place); one
    pass over its keys (a sound record is read 100,000 times by `ls --all`)."""
    return fit_fields(record, _ALL)


# ---------------------------------------------------------------- a sweep's summary file

def _scalar(v):
    """A value a table shows and a set holds (a seed): text, a number, a bool or None."""
    return v if v is None or type(v) in (str, int, float, bool) else str(v)


_TRIAL = table({"values": lambda v: v if type(v) is dict else {}, "run": run_id, "status": text,
                "metric": number, "exit_code": integer, "error": text, "command_line": text,
                "seed": _scalar})
_SWEEP_FILE = {"id": text, "command": texts, "params": lambda v: v if type(v) is dict else {},
               "metric": text, "direction": lambda v: v if v in ("max", "min") else None,
               "jobs": count, "storage": text, "study": text, "total": count,
               "seeds": lambda v: [_scalar(x) for x in v] if type(v) is list else None}


def fit_sweep(data, sweep_id: str | None = None) -> dict | None:
    """A sweep's ``.sweeps/<id>.json`` with the shape its readers use, or None when it is
    no object. A trial that is no object is left out; one without a number gets its place."""
    if type(data) is not dict:
        return None
    if type(data.get("id")) is not str:
        data["id"] = sweep_id
    for k, shape in _SWEEP_FILE.items():
        if k in data:
            data[k] = shape(data[k])
    trials = data.get("trials")
    trials = [t for t in trials if type(t) is dict] if type(trials) is list else []
    for i, t in enumerate(trials):
        fit_fields(t, _TRIAL)
        t.setdefault("values", {})
        t.setdefault("command_line", "")
        if integer(t.get("n")) is None:
            t["n"] = i
    data["trials"] = trials
    return data
