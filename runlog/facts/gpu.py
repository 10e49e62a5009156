"""The GPUs a process may use, through NVML (``nvidia-ml-py``, the ``gpu`` extra) or
``nvidia-smi``; nothing, at no cost, where there is no NVIDIA driver.

``CUDA_VISIBLE_DEVICES`` decides which GPUs are the run's, as CUDA does: a list
of indices or ``GPU-<uuid>`` prefixes, an empty value hides all, and the list
ends at the first entry that names no GPU.
"""

from __future__ import annotations

import os

MIB = 1024 * 1024
INFO_FIELDS = "index,name,memory.total,driver_version,uuid"
USAGE_FIELDS = "index,memory.used,utilization.gpu"
SMI_TIMEOUT_S = 5.0


def which(name: str, path: str | None = None) -> str | None:
    """``shutil.which`` without importing shutil (a stat per PATH folder)."""
    for d in (os.environ.get("PATH", "") if path is None else path).split(os.pathsep):
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def present() -> bool:
    """Whether an NVIDIA driver could be there at all (stats only, no process started)."""
    return os.path.exists("/dev/nvidiactl") or which("nvidia-smi") is not None


def _num(s: str) -> int | None:
    try:
        return int(float(s))
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def parse_info(text: str) -> list[dict]:
    """``nvidia-smi --query-gpu=index,name,memory.total,driver_version,uuid
    --format=csv,noheader,nounits`` → the ``machine.gpus`` entries."""
    out = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 5 or _num(cells[0]) is None:
            continue
        mem = _num(cells[2])
        out.append({"index": _num(cells[0]), "name": cells[1],
                    "memory_bytes": mem * MIB if mem is not None else None,
                    "driver": cells[3], "uuid": cells[4]})
    return out


def parse_usage(text: str) -> dict[int, tuple[int | None, int | None]]:
    """``--query-gpu=index,memory.used,utilization.gpu`` → {index: (bytes used, % busy)}."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) >= 3 and _num(cells[0]) is not None:
            used = _num(cells[1])
            out[_num(cells[0])] = (used * MIB if used is not None else None, _num(cells[2]))
    return out


def visible(gpus: list[dict], cuda_visible: str | None) -> list[dict]:
    """The GPUs ``CUDA_VISIBLE_DEVICES`` leaves to the process, in its order."""
    if cuda_visible is None:
        return gpus
    out = []
    for token in (t.strip() for t in cuda_visible.split(",")):
        if not token:
            break
        if token.lstrip("-").isdigit():
            match = [g for g in gpus if g["index"] == int(token)]
        elif token.startswith("GPU-"):
            match = [g for g in gpus if str(g.get("uuid") or "").startswith(token)]
        else:  # MIG-… and anything else: not ours to map
            match = []
        if not match:
            break  # CUDA stops at the first entry that names no device
        if match[0] not in out:
            out.append(match[0])
    return out


def _smi(fields: str) -> str | None:
    exe = which("nvidia-smi")
    if exe is None:
        return None
    import subprocess

    try:
        p = subprocess.run([exe, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True, timeout=SMI_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):  # a hung driver: the timeout
        return None
    return p.stdout if p.returncode == 0 else None


def _nvml():
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    return pynvml


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def query(environ=os.environ) -> list[dict]:
    """The visible GPUs, or [] (at the cost of two stats) where there is no driver."""
    if not present():
        return []
    nv = _nvml()
    gpus = []
    if nv is not None:
        try:
            driver = _text(nv.nvmlSystemGetDriverVersion())
            for i in range(nv.nvmlDeviceGetCount()):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                gpus.append({"index": i, "name": _text(nv.nvmlDeviceGetName(h)),
                             "memory_bytes": int(nv.nvmlDeviceGetMemoryInfo(h).total),
                             "driver": driver, "uuid": _text(nv.nvmlDeviceGetUUID(h))})
        except Exception:
            gpus = []
    if not gpus:
        text = _smi(INFO_FIELDS)
        gpus = parse_info(text) if text else []
    return visible(gpus, environ.get("CUDA_VISIBLE_DEVICES"))


def usage(indices: list[int]) -> dict[int, tuple[int | None, int | None]]:
    """Memory used and utilisation now, for the given (physical) GPU indices."""
    nv = _nvml()
    if nv is not None:
        try:
            out = {}
            for i in indices:
                h = nv.nvmlDeviceGetHandleByIndex(i)
                out[i] = (int(nv.nvmlDeviceGetMemoryInfo(h).used),
                          int(nv.nvmlDeviceGetUtilizationRates(h).gpu))
            return out
        except Exception:
            pass
    text = _smi(USAGE_FIELDS)
    got = parse_usage(text) if text else {}
    return {i: got[i] for i in indices if i in got}


class Sampler:
    """Peak memory and mean utilisation of the run's GPUs, a sample every ``every`` s on a
    thread of its own (only started when the run has GPUs)."""

    def __init__(self, indices: list[int], every: float = 5.0, sample=usage):
        import threading

        self.indices, self.every, self._sample = indices, every, sample
        self.peak: int | None = None
        self.utils: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runlog-gpu", daemon=True)
        try:
            self._thread.start()
        except RuntimeError:
            # Python 3.12 starts no thread once the interpreter is shutting down, atexit
            # included: a script that ended before the facts were gathered. The finish
            # takes its one sample itself (``Facts.finish``).
            self._thread = None

    def take(self) -> None:
        got = self._sample(self.indices)
        if not got:
            return
        used = [u for u, _ in got.values() if u is not None]
        if used:
            self.peak = max(self.peak or 0, max(used))
        busy = [b for _, b in got.values() if b is not None]
        if busy:
            self.utils.append(round(sum(busy) / len(busy)))

    def _loop(self) -> None:
        while True:
            try:
                self.take()
            except Exception:
                return
            if self._stop.wait(self.every):
                return

    def stop(self) -> dict:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=SMI_TIMEOUT_S + 1)
        mean = round(sum(self.utils) / len(self.utils), 1) if self.utils else None
        return {"gpu_peak_memory_bytes": self.peak, "gpu_util_mean": mean}
