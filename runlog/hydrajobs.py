"""A run started inside a Hydra job ends with that job.

A multirun (``python train.py -m lr=0.1,0.2``) calls the task function once per job in the
same process: each job is an experiment of its own, but a second ``start()`` found the first
job's run still active and joined it — one run with every job's metrics and the first job's
config. Hydra tells a job's callbacks its end and result (``on_job_end``), also when the task
raised (Hydra catches the exception; no excepthook sees it), so the run is finished there:
``finished``, or ``failed`` with the job's exception.
"""

from __future__ import annotations


def end_with_job(run) -> None:
    """If ``start()`` was called inside a Hydra job, finish ``run`` when the job ends."""
    from .args.frames import hydra_job_callbacks

    callbacks = hydra_job_callbacks()
    if callbacks is None:
        return
    try:
        from hydra.experimental.callback import Callback
    except ImportError:  # a Hydra without it (before 1.1): the run ends at exit, as before
        return

    class EndRun(Callback):
        def on_job_end(self, config=None, job_return=None, **kwargs) -> None:
            if self in callbacks.callbacks:  # this job's only: the next one starts a run of its own
                callbacks.callbacks.remove(self)
            if not run.owned_here():
                return
            status = getattr(getattr(job_return, "status", None), "name", None)
            exc = getattr(job_return, "_return_value", None)
            if status == "FAILED" and isinstance(exc, BaseException) and run.outcome.error is None:
                run.record_exception(type(exc), exc, exc.__traceback__)
            run.finish()

    callbacks.callbacks.append(EndRun())
