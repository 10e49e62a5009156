"""``runlog sweep --gpus``: one CUDA device slot per running trial, never shared.

The devices are cut into slots of ``--gpus-per-trial`` devices; a trial takes a
free slot when it starts (its ``CUDA_VISIBLE_DEVICES``) and gives it back only
once its process has exited, so two running trials never see the same device.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from .common import CliError

_NVIDIA_LINE = re.compile(r"^GPU (\d+):")


def from_nvidia_smi(text: str) -> list[str]:
    """Device indices from ``nvidia-smi -L`` ("GPU 0: NVIDIA A100 (UUID: GPU-…)")."""
    return [m.group(1) for m in map(_NVIDIA_LINE.match, text.splitlines()) if m]


def visible(env: dict | None = None) -> list[str] | None:
    """The devices CUDA_VISIBLE_DEVICES allows, or None when it is unset."""
    value = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [d.strip() for d in value.split(",") if d.strip() and d.strip() != "-1"]


def detect() -> list[str]:
    devs = visible()
    if devs is not None:
        if not devs:
            raise CliError("--gpus auto: CUDA_VISIBLE_DEVICES hides every GPU")
        return devs
    try:
        p = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        raise CliError("--gpus auto found no GPU: CUDA_VISIBLE_DEVICES is unset and nvidia-smi "
                       "is not there; give the devices, e.g. --gpus 0,1") from None
    devs = from_nvidia_smi(p.stdout) if p.returncode == 0 else []
    if not devs:
        raise CliError("--gpus auto found no GPU (nvidia-smi -L listed none)")
    return devs


class Slots:
    """Free CUDA_VISIBLE_DEVICES values, lowest devices first."""

    def __init__(self, slots: list[str]):
        self.all = list(slots)
        self.free = list(slots)

    @classmethod
    def parse(cls, spec: str, per_trial: int = 1, jobs: int | None = None) -> Slots:
        if per_trial < 1:
            raise CliError("--gpus-per-trial needs at least 1")
        devs = detect() if spec == "auto" else [d.strip() for d in spec.split(",") if d.strip()]
        if not devs:
            raise CliError(f"--gpus {spec!r} names no device: use --gpus 0,1,2,3 or --gpus auto")
        if len(set(devs)) != len(devs):
            raise CliError(f"--gpus {spec!r} names a device twice")
        n = len(devs) // per_trial
        if n == 0:
            raise CliError(f"--gpus-per-trial {per_trial} needs more than the {len(devs)} "
                           f"device(s) given")
        if len(devs) % per_trial:
            sys.stderr.write(f"runlog sweep: GPU {','.join(devs[n * per_trial:])} left unused "
                             f"({len(devs)} devices, {per_trial} per trial)\n")
        slots = cls([",".join(devs[i * per_trial:(i + 1) * per_trial]) for i in range(n)])
        if jobs is not None and jobs > n:
            raise CliError(f"-j {jobs} is more than the {n} GPU slot(s): each running trial "
                           "gets devices of its own")
        return slots

    def __len__(self) -> int:
        return len(self.all)

    def take(self) -> str:
        return self.free.pop(0)

    def give(self, slot: str) -> None:
        if slot in self.all and slot not in self.free:
            self.free.append(slot)
            self.free.sort(key=self.all.index)
