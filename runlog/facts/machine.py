"""The machine a run ran on: host, CPU, memory, GPUs, container — read off the script's thread."""

from __future__ import annotations

import os

from .scheduler import container


def cpu_model(path: str = "/proc/cpuinfo") -> str | None:
    """The CPU's model name (Linux; the first 16 KB of cpuinfo hold it)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(16384)
    except OSError:
        return None
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in head.splitlines():
            k, sep, v = line.partition(":")
            if sep and k.strip() == key and v.strip():
                return " ".join(v.split())
    return None


def memory_bytes(path: str = "/proc/meminfo") -> int | None:
    try:
        # utf-8, not ascii: the same text from /proc, and its codec is loaded already (ascii: +0.15 ms)
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def cpus() -> int | None:
    """The CPUs this process may run on (a Slurm job's share, not the node's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _gpus(environ) -> list[dict]:
    """The visible GPUs; without an NVIDIA driver (its device file, nvidia-smi on PATH), [] at
    the cost of a few stats — gpu.py is not even loaded."""
    if not os.path.exists("/dev/nvidiactl"):
        for d in environ.get("PATH", "").split(os.pathsep):
            if os.path.isfile(os.path.join(d or ".", "nvidia-smi")):
                break
        else:
            return []
    from . import gpu

    return gpu.query(environ)


def gather(environ=os.environ) -> dict:
    return {
        "host": os.uname().nodename if hasattr(os, "uname") else None,
        "cpu_model": cpu_model(),
        "cpus": cpus(),
        "memory_bytes": memory_bytes(),
        "gpus": _gpus(environ),
        "container": container(environ),
    }
