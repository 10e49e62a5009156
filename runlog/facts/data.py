"""Fingerprints of the files and folders a run's arguments name, capped in time.

A file up to ``FULL_HASH_BYTES`` is hashed whole; a bigger one by its size,
modification time and first and last MiB. A folder by the listing of its
entries (names, sizes, modification times), at most ``MAX_ENTRIES`` of them.
All of it stops after ``BUDGET_S``: what was not reached is recorded as
skipped, so a 1 TB dataset never delays the end of a run. A path the run
itself wrote (modified after it started) is marked ``written``: an output, not
data the run read, and never reported as "changed".
"""

from __future__ import annotations

try:  # hashlib would load OpenSSL too: 2 ms of every run's CPU
    from _blake2 import blake2b
except ImportError:  # another interpreter
    from hashlib import blake2b

import os
import time

MIB = 1024 * 1024
FULL_HASH_BYTES = 1 * MIB
MAX_ENTRIES = 10_000
BUDGET_S = 0.2
MAX_PATHS = 20


def candidates(flat_args: dict) -> dict[str, str]:
    """Argument values that could be paths (text, one line, not too long)."""
    out = {}
    for name, v in flat_args.items():
        if isinstance(v, str) and v and len(v) < 4096 and "\n" not in v and "\0" not in v \
                and not v.startswith(("http://", "https://", "s3://", "gs://")):
            out[name] = v
    return out


def _file_print(path: str, size: int, mtime: float) -> str:
    h = blake2b(digest_size=8)
    with open(path, "rb") as f:
        if size <= FULL_HASH_BYTES:
            h.update(f.read())
            return "b2:" + h.hexdigest()
        h.update(f"{size}:{mtime}".encode())
        h.update(f.read(MIB))
        f.seek(max(size - MIB, MIB))
        h.update(f.read(MIB))
    return "b2q:" + h.hexdigest()  # quick: size, mtime, first and last MiB


def _dir_print(path: str, deadline: float) -> tuple[str, int, float, int, bool]:
    """(fingerprint, total size, newest mtime, entries, complete) of a folder's listing."""
    h = blake2b(digest_size=8)
    size, newest, n = 0, 0.0, 0
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            n += 1
            if n > MAX_ENTRIES or time.monotonic() > deadline:
                return "b2l:" + h.hexdigest(), size, newest, n - 1, False
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            rel = os.path.relpath(e.path, path)
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
                h.update(f"{rel}/\n".encode("utf-8", "surrogateescape"))
            else:
                size += st.st_size
                newest = max(newest, st.st_mtime)
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return "b2l:" + h.hexdigest(), size, newest, n, True


def fingerprints(flat_args: dict, cwd: str, started: float | None = None, skip: tuple = (),
                 budget_s: float = BUDGET_S) -> dict[str, dict]:
    """``data``: {argument: {"path", "kind", "size", "mtime", "fingerprint", …}} for the
    arguments that name an existing file or folder (relative to ``cwd``). ``skip``: folders
    never looked into (the log directory: it changes with every run)."""
    deadline = time.monotonic() + budget_s
    skip = tuple(os.path.realpath(s) for s in skip)
    out: dict[str, dict] = {}
    for name, value in candidates(flat_args).items():
        path = os.path.join(cwd, os.path.expanduser(value))
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            continue
        real = os.path.realpath(path)
        if any(real == s or real.startswith(s + os.sep) or s.startswith(real + os.sep) for s in skip):
            continue
        if len(out) >= MAX_PATHS:
            break
        is_dir = os.path.isdir(path)
        entry = {"path": value, "kind": "dir" if is_dir else "file", "size": st.st_size,
                 "mtime": round(st.st_mtime, 3), "fingerprint": None}
        if time.monotonic() > deadline:
            entry["skipped"] = "time"
            out[name] = entry
            continue
        try:
            if is_dir:
                fp, size, newest, n, whole = _dir_print(path, deadline)
                entry.update(size=size, mtime=round(max(newest, st.st_mtime), 3), entries=n)
                entry["fingerprint"] = fp
                if not whole:
                    entry["skipped"] = "partial listing"
            elif os.path.isfile(path):
                entry["fingerprint"] = _file_print(path, st.st_size, st.st_mtime)
        except OSError as e:
            entry["skipped"] = f"unreadable ({e.strerror or e})"
        if started is not None and entry["mtime"] >= started:
            entry["written"] = True
        out[name] = entry
    return out
