"""The environment now against the one a run recorded: Python, packages, GPUs, data.

Package versions are asked of the Python the re-run would use, not of the
Python running ``runlog``: the interpreter the run recorded (``env.executable``)
when it is still there — ``reproduce`` puts it in the command — else the
command's own ``python`` found on PATH, else this one. Runs recorded before runlog kept
``env``, ``machine`` or ``data`` are checked for what they have (their Python).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

PROBE = """\
import json, sys
from importlib import metadata
out = {}
for n in json.loads(sys.argv[1]):
    try:
        out[n] = metadata.version(n)
    except Exception:
        out[n] = None
print(json.dumps({"python": sys.version.split()[0], "packages": out}))
"""


def interpreter(command: list[str], env: dict) -> str:
    """The Python a re-run of ``command`` would use (see the module's docstring)."""
    recorded = env.get("executable")
    if isinstance(recorded, str) and os.path.isfile(recorded) and os.access(recorded, os.X_OK):
        return recorded
    if command and os.path.basename(command[0]).startswith("python"):
        found = shutil.which(command[0])
        if found:
            return found
    return sys.executable


def probe(python: str, names: list[str]) -> dict | None:
    """Python version and the versions of ``names`` in ``python``; None if it cannot say."""
    try:
        p = subprocess.run([python, "-I", "-c", PROBE, json.dumps(names)], capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        return json.loads(p.stdout) if p.returncode == 0 else None
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def gpu_names() -> list[str]:
    """Names of the GPUs a process started here would see ([] without one: no error, no wait)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        p = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,name", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return visible(p.stdout, os.environ.get("CUDA_VISIBLE_DEVICES")) if p.returncode == 0 else []


def visible(csv: str, mask: str | None) -> list[str]:
    """GPU names from ``nvidia-smi --query-gpu=index,uuid,name`` rows, as CUDA_VISIBLE_DEVICES
    (indices or UUIDs, in its order) leaves them."""
    rows = [[c.strip() for c in ln.split(",", 2)] for ln in csv.splitlines() if ln.count(",") >= 2]
    if mask is None:
        return [r[2] for r in rows]
    out = []
    for want in (w.strip() for w in mask.split(",") if w.strip()):
        match = [r for r in rows if r[0] == want or r[1] == want or r[1].startswith(want)]
        if not match:
            break  # CUDA stops at the first device it cannot find
        out.append(match[0][2])
    return out


def _gpus(names: list[str]) -> str:
    if not names:
        return "none"
    return ", ".join(f"{names.count(n)}× {n}" if names.count(n) > 1 else n for n in dict.fromkeys(names))


def data_state(entry: dict, cwd: str | None) -> str | None:
    """"missing", "changed" or None (same size and modification time) for a recorded path."""
    path = entry.get("path")
    if not isinstance(path, str):
        return None
    full = os.path.join(cwd or "", path)
    try:
        st = os.stat(full)
    except OSError:
        return "missing"
    if entry.get("kind") == "file" or (entry.get("kind") is None and os.path.isfile(full)):
        size, mtime = entry.get("size"), entry.get("mtime")
        if isinstance(size, int) and size != st.st_size:
            return "changed"
        if isinstance(mtime, (int, float)) and abs(mtime - st.st_mtime) > 1.0:  # as rounded
            return "changed"
    fp = _fingerprint()
    if fp is not None and entry.get("fingerprint"):
        try:
            if fp(full) != entry["fingerprint"]:
                return "changed"
        except Exception:  # its shape is the data helper's: a mismatch here is not the user's
            pass
    return None


def _fingerprint():
    """The data fingerprint of ``runlog.facts.data`` when that module exists."""
    try:
        from ..facts import data  # type: ignore[attr-defined]
    except ImportError:
        return None
    fn = getattr(data, "fingerprint", None)
    return fn if callable(fn) else None


def differences(rec: dict, command: list[str], copy_cwd: str | None = None) -> list[str]:
    """What differs between the environment now and the one ``rec`` ran in, one line each."""
    lines: list[str] = []
    env = rec.get("env") if isinstance(rec.get("env"), dict) else {}
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    python = interpreter(command, env)
    now = probe(python, sorted(packages))
    if now is None:
        lines.append(f"could not ask {python} for its Python and package versions")
    else:
        was = env.get("python") or rec.get("python")
        if was and was != now["python"]:
            lines.append(f"Python {was} → {now['python']} ({python})")
        for name in sorted(packages):
            old, new = packages[name], now["packages"].get(name)
            if new is None:
                lines.append(f"{name} {old} → not installed")
            elif str(old) != new:
                lines.append(f"{name} {old} → {new}")
        if not packages and not rec.get("env"):
            lines.append("package versions were not recorded (an older runlog)")
    machine = rec.get("machine")
    if isinstance(machine, dict) and isinstance(machine.get("gpus"), list):
        was_gpus = [str(g.get("name")) for g in machine["gpus"] if isinstance(g, dict)]
        now_gpus = gpu_names()
        if sorted(was_gpus) != sorted(now_gpus):
            lines.append(f"GPU {_gpus(was_gpus)} → {_gpus(now_gpus)}")
    data = rec.get("data")
    if isinstance(data, dict):
        for arg, entry in data.items():
            if not isinstance(entry, dict):
                continue
            state = data_state(entry, rec.get("cwd"))
            if state:
                lines.append(f"data {arg} ({entry.get('path')}) {state}")
            path = entry.get("path")
            if copy_cwd and state != "missing" and isinstance(path, str) and not os.path.isabs(path) \
                    and not os.path.exists(os.path.join(copy_cwd, path)):
                lines.append(f"data {arg} ({path}) is not in the copy (not in git): link or copy it there")
    return lines
