"""The batch scheduler a run is a job of: a few environment variables, cheap enough for start()."""

from __future__ import annotations

import os
from collections.abc import Mapping

# record key → Slurm variable
SLURM = {
    "job_id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "restart_count": "SLURM_RESTART_COUNT",
    "nodelist": "SLURM_JOB_NODELIST",
    "partition": "SLURM_JOB_PARTITION",
    "node": "SLURMD_NODENAME",
}
INTS = ("array_task_id", "restart_count")


def _value(key: str, raw: str):
    if key in INTS:
        try:
            return int(raw)
        except ValueError:
            return raw
    return raw


def current(environ: Mapping[str, str] = os.environ) -> dict | None:
    """The scheduler job this process runs in, or None outside one.

    Slurm: ``{"kind": "slurm", "job_id", "array_job_id", "array_task_id",
    "restart_count", "nodelist", "partition", "node"}`` (None where unset;
    the task id and restart count as ints). PBS and LSF: their job id only.
    """
    job = environ.get("SLURM_JOB_ID") or environ.get("SLURM_JOBID")
    if job:
        out = {"kind": "slurm"}
        for key, var in SLURM.items():
            raw = environ.get(var)
            out[key] = None if raw in (None, "") else _value(key, raw)
        out["job_id"] = job
        return out
    if environ.get("PBS_JOBID"):
        return {"kind": "pbs", "job_id": environ["PBS_JOBID"], "array_task_id":
                environ.get("PBS_ARRAY_INDEX") or environ.get("PBS_ARRAYID"),
                "nodelist": None, "partition": environ.get("PBS_QUEUE"), "node": None}
    if environ.get("LSB_JOBID"):
        return {"kind": "lsf", "job_id": environ["LSB_JOBID"],
                "array_task_id": environ.get("LSB_JOBINDEX") or None,
                "nodelist": environ.get("LSB_HOSTS"), "partition": environ.get("LSB_QUEUE"),
                "node": None}
    return None


def container(environ: Mapping[str, str] = os.environ, exists=os.path.exists) -> str | None:
    """Which container runtime the process seems to run in (a hint, not a proof)."""
    if environ.get("APPTAINER_CONTAINER") or environ.get("APPTAINER_NAME"):
        return "apptainer"
    if environ.get("SINGULARITY_CONTAINER") or environ.get("SINGULARITY_NAME"):
        return "singularity"
    if exists("/.dockerenv"):
        return "docker"
    if exists("/run/.containerenv"):
        return "podman"
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    return None
