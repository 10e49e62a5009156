"""The Python environment: interpreter, the distributions behind the imported modules, and
a short hash of the whole installed set.

What costs is mapping module names to distributions: each distribution's
``top_level.txt`` or ``RECORD``, read by ``top_levels`` (35 ms for 150
distributions; ``importlib.metadata.packages_distributions()`` gives the same
map in 300 ms, and importing it at a program's exit would cost the program
its exit status after a Ctrl-C: CPython forgets the interrupt once code runs
``exec`` on a string, as namedtuple does). It is done once per distinct
installed set and kept in the log directory (``.runlog-envs/<hash>.json``,
beside the full ``name==version`` list in ``<hash>.txt``); every later run in
the same environment lists the site-packages folders (about 1 ms) and reads
that file.
"""

from __future__ import annotations

try:  # hashlib would load OpenSSL too: 2 ms of every run's CPU
    from _blake2 import blake2b
except ImportError:  # another interpreter
    from hashlib import blake2b

import json
import os
import re
import sys
import time

from ..folder.layout import ENVS

SITE_DIRS = ("site-packages", "dist-packages")
FRAMEWORKS = ("torch", "jax", "tensorflow")
_NORM = re.compile(r"[-_.]+")


def norm(name: str) -> str:
    """A distribution name as PEP 503 compares them (``PyYAML`` = ``pyyaml``, ``a_b`` = ``a-b``)."""
    n = name.lower().replace("_", "-").replace(".", "-")  # the regex only for runs of them
    return _NORM.sub("-", n) if "--" in n else n


def base() -> dict:
    """What the interpreter says of itself (no file read, no subprocess)."""
    u = os.uname() if hasattr(os, "uname") else None
    plat = f"{u.sysname}-{u.release}-{u.machine}" if u else sys.platform
    return {"python": sys.version.split()[0], "implementation": sys.implementation.name.replace(
        "cpython", "CPython").replace("pypy", "PyPy"), "executable": sys.executable, "platform": plat}


def site_dirs(path: list[str] | None = None) -> list[str]:
    """The folders distributions are installed in: the site-packages on ``sys.path`` (the
    current folder and source folders are never listed: a data folder can be huge)."""
    return [p for p in (sys.path if path is None else path)
            if p and os.path.basename(p.rstrip(os.sep)) in SITE_DIRS]


def installed(dirs: list[str], read_files: list | None = None) -> dict[str, tuple[str, str]]:
    """Every installed distribution: normalised name → (name, version), read from the
    ``name-version.dist-info`` folder names alone. The first on the path wins, as for imports.
    ``read_files`` gets a True for each version that had to be read from a file."""
    out: dict[str, tuple[str, str]] = {}
    for d in dirs:
        try:
            entries = os.scandir(d)
        except OSError:
            continue
        with entries:
            for e in entries:
                n = e.name
                if n.endswith(".dist-info"):
                    name, _, version = n[:-10].partition("-")
                elif n.endswith(".egg-info"):
                    name, _, version = n[:-9].partition("-")
                    version = version.split("-py")[0]
                    if not version:
                        version = _egg_version(e.path)
                        if read_files is not None:
                            read_files.append(True)
                else:
                    continue
                if name:
                    key = norm(name)
                    if key not in out:
                        out[key] = (name, version or "?")
    return out


def _egg_version(path: str) -> str:
    try:
        with open(os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path,
                  encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def listing(dists: dict[str, tuple[str, str]]) -> list[str]:
    return sorted(f"{key}=={version}" for key, (_name, version) in dists.items())


def installed_hash(lines: list[str]) -> str:
    return blake2b("\n".join(lines).encode(), digest_size=6).hexdigest()


def top_levels(dirs: list[str]) -> dict[str, list[str]]:
    """Top-level module name → normalised names of the distributions that install it, from
    each ``*.dist-info``'s ``top_level.txt``, else the first parts of its ``RECORD``."""
    out: dict[str, set] = {}
    for d in dirs:
        try:
            names = [n for n in os.listdir(d) if n.endswith((".dist-info", ".egg-info"))]
        except OSError:
            continue
        for n in names:
            dist = norm(n.rsplit(".", 1)[0].partition("-")[0])
            tops = _read_lines(os.path.join(d, n, "top_level.txt"))
            if tops is None:
                tops = _record_tops(os.path.join(d, n, "RECORD"))
            for t in tops:
                out.setdefault(t, set()).add(dist)
    return {k: sorted(v) for k, v in out.items()}


def _read_lines(path: str) -> list[str] | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [ln.strip().replace("/", ".") for ln in f if ln.strip()]
    except OSError:
        return None


def _record_tops(path: str) -> list[str]:
    tops = set()
    for line in _read_lines(path) or ():
        first = line.split(",", 1)[0]
        part = first.split("/", 1)[0] if "/" in first else first
        if "/" not in first:  # a module file at the top: name.py, name.cpython-311-….so
            if not part.endswith((".py", ".so", ".pyd")):
                continue
            part = part.split(".", 1)[0]
        if part and not part.endswith((".dist-info", ".egg-info", ".data")) and part not in (
                "__pycache__", "..") and part.isidentifier():
            tops.add(part)
    return sorted(tops)


def module_map(root: str | None, digest: str, lines: list[str], dirs: list[str]) -> dict[str, list[str]]:
    """Top-level module name → normalised distribution names, cached per installed set."""
    d = os.path.join(root, ENVS) if root else None
    if d:
        try:
            with open(os.path.join(d, f"{digest}.json"), encoding="utf-8") as f:
                got = json.load(f)
            if isinstance(got, dict) and isinstance(got.get("modules"), dict):
                return got["modules"]
        except (OSError, ValueError, RecursionError):  # a broken cache: computed again
            pass
    mapping = top_levels(dirs)
    if d:
        from ..folder.record import write_atomic

        try:
            os.makedirs(d, exist_ok=True)
            write_atomic(os.path.join(d, f"{digest}.txt"), "\n".join(lines) + "\n")
            write_atomic(os.path.join(d, f"{digest}.json"),
                         json.dumps({"modules": mapping}, separators=(",", ":")))
        except OSError:
            pass  # a read-only log directory: computed again next time
    return mapping


def stored_list(root: str, digest: str) -> list[str] | None:
    """The ``name==version`` list kept for an installed set, if it is there."""
    if not digest or not re.fullmatch(r"[0-9a-f]{6,64}", str(digest)):
        return None
    try:
        with open(os.path.join(root, ENVS, f"{digest}.txt"), encoding="utf-8") as f:
            return [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return None


def list_changes(a: list[str], b: list[str]) -> list[str]:
    """Distribution names added, removed or at another version between two lists."""
    da = dict(x.split("==", 1) for x in a if "==" in x)
    db = dict(x.split("==", 1) for x in b if "==" in x)
    return sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))


def installed_cached(root: str | None, dirs: list[str]) -> dict[str, tuple[str, str]]:
    """``installed(dirs)``, kept while no site folder changed (a cache).

    Installing, removing or upgrading a distribution adds or removes a
    ``.dist-info`` folder, which changes its site folder's mtime; so while every
    folder has the inode and mtime it had, its listing is the one kept in
    ``.runlog-envs/sites-<hash of the folders>.json`` (a listing of 300 entries
    is ~0.4 ms of every run). A set with a version read from inside a folder (an
    old ``.egg-info`` without one in its name) is never kept.
    """
    if not root or not dirs:
        return installed(dirs)
    stamp = []
    for d in dirs:
        try:
            st = os.stat(d)
            stamp.append([d, st.st_ino, st.st_mtime_ns])
        except OSError:
            stamp.append([d, None, None])
    path = os.path.join(root, ENVS, f"sites-{installed_hash(dirs)}.json")
    try:
        with open(path, encoding="utf-8") as f:
            got = json.load(f)
        if got.get("stamp") == stamp:
            return {k: (n, v) for k, n, v in got["dists"]}
    except (OSError, ValueError, RecursionError, AttributeError, TypeError):
        pass  # none yet, or a broken one: listed again
    read_files: list = []
    dists = installed(dirs, read_files)
    # a folder changed in the last seconds may change again within its mtime's tick,
    # unseen (git's "racily clean" entries): such a listing is not kept
    settled = all(m is None or m < time.time_ns() - 2_000_000_000 for _d, _i, m in stamp)
    if settled and not read_files:
        from ..folder.record import write_atomic

        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_atomic(path, json.dumps({"stamp": stamp, "dists": [
                [k, n, v] for k, (n, v) in dists.items()]}, separators=(",", ":")))
        except OSError:
            pass  # a read-only log directory: listed again next time
    return dists


class Installed:
    """What the background thread learns of the installed set, for the finish to use."""

    def __init__(self, root: str | None, path: list[str] | None = None):
        dirs = site_dirs(path)
        dists = installed_cached(root, dirs)
        self.lines = listing(dists)
        self.hash = installed_hash(self.lines)
        self.names = {k: v[0] for k, v in dists.items()}
        self.versions = {k: v[1] for k, v in dists.items()}
        self.modules = module_map(root, self.hash, self.lines, dirs)


def imported(modules, inst: Installed) -> dict[str, str]:
    """{distribution: version} of the distributions behind the imported top-level modules."""
    out: dict[str, str] = {}
    for name in list(modules):
        if "." in name or name.startswith("_"):  # a submodule; a private helper (_distutils_hack)
            continue
        for dist in inst.modules.get(name, ()):
            if dist in inst.versions:
                out[inst.names[dist]] = inst.versions[dist]
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def frameworks(modules) -> dict[str, dict]:
    """torch (with its CUDA and cuDNN), jax and tensorflow — only when already imported."""
    out: dict[str, dict] = {}
    torch = modules.get("torch")
    if torch is not None:
        info = {"version": str(getattr(torch, "__version__", "?"))}
        try:
            info["cuda"] = torch.version.cuda
        except Exception:
            info["cuda"] = None
        try:
            info["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        except Exception:
            info["cudnn"] = None
        out["torch"] = info
    for name in ("jax", "tensorflow"):
        mod = modules.get(name)
        if mod is not None and getattr(mod, "__version__", None):
            out[name] = {"version": str(mod.__version__)}
    return out


def gather(inst: Installed | None, modules=None) -> dict:
    """The ``env`` of a Python process, from its own ``sys.modules``."""
    modules = sys.modules if modules is None else modules
    env = base()
    env["packages"] = imported(modules, inst) if inst else {}
    env["installed_hash"] = inst.hash if inst else None
    env["frameworks"] = frameworks(modules)
    return env


def without_python() -> dict:
    """The ``env`` of a program that is not Python (under ``runlog run``): runlog's own
    interpreter says nothing of it, so only the platform is recorded."""
    return {"python": None, "implementation": None, "executable": None,
            "platform": base()["platform"], "packages": {}, "installed_hash": None, "frameworks": {}}
