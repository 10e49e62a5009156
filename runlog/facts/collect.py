"""When and where the facts are gathered: on the code-state thread and at the finish.

``Facts.background`` runs on the thread that captures the code state (after
git): the installed set and its module map, the machine, the GPU sampler, the
previous run's full record. ``Facts.finish`` runs in the finish: imported
packages and frameworks (from ``sys.modules``), resources, data fingerprints.
Under ``runlog run`` the program is another process: a Python program hands its
``env`` over at its exit (``hand_over``, from ``joined.boot``); for any other
program only the platform is known.
"""

from __future__ import annotations

import os
import sys

from . import env as env_mod


class Facts:
    def __init__(self, root: str, own_process: bool = True):
        self.root = root
        self.own_process = own_process  # start(): this process is the program
        self.installed: env_mod.Installed | None = None
        self.machine: dict | None = None
        self.sampler = None
        self.installed_diff: dict | None = None

    def background(self, prev: dict | None) -> dict | None:
        """Off the script's thread. Returns the previous run's full record (or None)."""
        self.gather()
        return self.previous(prev)

    def gather(self) -> None:
        """The installed set and the machine (no need of the previous run: beside git)."""
        from . import machine

        if self.own_process:
            self.installed = env_mod.Installed(self.root)
        self.machine = machine.gather()
        if self.machine["gpus"]:
            from . import gpu

            self.sampler = gpu.Sampler([g["index"] for g in self.machine["gpus"]])

    def previous(self, prev: dict | None) -> dict | None:
        """The previous run's full record (the "Since" of environments), and what of the
        installed set changed since it."""
        full = None
        if prev and prev.get("id"):
            from ..folder import record

            try:
                full = record.read(os.path.join(self.root, prev["id"]))
            except record.RecordError:
                full = None
        if full and self.installed:
            self.installed_diff = installed_diff(self.root, full, self.installed)
        return full

    def finish(self, rec: dict, run_dir: str, started: float) -> dict:
        """The facts known at the end: {"env", "machine", "resources", "data"}."""
        from . import resources

        out: dict = {}
        if self.own_process:
            e = env_mod.gather(self.installed)
        else:
            e = read_handed_over(run_dir) or env_mod.without_python()
        if self.installed_diff and e.get("installed_hash") == self.installed.hash:
            e["installed_diff"] = self.installed_diff
        out["env"] = e
        out["machine"] = self.machine
        res = resources.usage(children_only=not self.own_process)
        if self.sampler is not None:
            if not self.sampler.utils:
                self.sampler.take()  # a run shorter than one sample still gets one
            res.update(self.sampler.stop())
        else:
            res.update(gpu_peak_memory_bytes=None, gpu_util_mean=None)
        out["resources"] = res
        out["data"] = {}
        if rec.get("args"):  # fingerprints of the arguments that name files or folders
            from ..fmt import flatten
            from . import data

            cwd = rec.get("cwd") or os.getcwd()
            out["data"] = data.fingerprints(flatten(rec["args"]), cwd, started, skip=(self.root,))
        return out


def gather_background(life, git_wait_s: float = 5.0) -> None:
    """On a ``Lifecycle``'s code-state thread: its ``facts``, and its previous run read whole
    (the "Since" line compares environments, data and resources)."""
    try:
        facts = Facts(life.root, life.own_process)
        facts.gather()
        git_done = life.git_done  # on a thread of its own beside git: the previous run is git's find
        if git_done is not None:
            git_done.wait(git_wait_s)
        full = facts.previous(life.prev)
        with life.lock:
            life.facts = facts
            if full is not None and life.prev is not None:
                life.prev = {**full, **life.prev}
            late = life.finished  # the end gave up waiting: no sampler may outlive the run
        if late and facts.sampler is not None:
            facts.sampler.stop()
    except Exception as e:
        life.fail_once("facts", f"could not record the machine and environment ({type(e).__name__}: {e})")
    finally:
        life.facts_done.set()


def gather_at_end(life, wait_s: float) -> None:
    """In a ``Lifecycle``'s finish: the facts known at the end, into its record."""
    if not life.facts_done.wait(wait_s):
        life.fail_once("facts", "the machine facts took too long; they are not recorded")
    try:
        facts = life.facts or Facts(life.root, life.own_process)  # the background part failed or is late
        got = facts.finish(life.record, life.dir, life.t0)
        with life.lock:
            life.record.update(got)
    except Exception as e:
        life.fail_once("facts", f"could not record the resources and data ({type(e).__name__}: {e})")


def installed_diff(root: str, prev: dict, inst: env_mod.Installed) -> dict | None:
    """Which distributions differ from the previous run's installed set (from the stored lists)."""
    pe = prev.get("env") if isinstance(prev.get("env"), dict) else {}
    ph = pe.get("installed_hash")
    if not ph or ph == inst.hash:
        return None
    old = env_mod.stored_list(root, ph)
    if old is None:
        return None
    changed = env_mod.list_changes(old, inst.lines)
    return {"previous": prev.get("id"), "count": len(changed), "changed": changed[:20]}


def read_handed_over(run_dir: str) -> dict | None:
    import json

    from ..folder.layout import RunFolder

    try:
        with open(RunFolder(run_dir).env, encoding="utf-8") as f:
            got = json.load(f)
        return got if isinstance(got, dict) else None
    except (OSError, ValueError):
        return None


def hand_over(run_dir: str) -> None:
    """At the exit of a Python program inside ``runlog run``: its ``env`` for the parent."""
    import json

    from ..folder.layout import RunFolder
    from ..folder.record import write_atomic

    try:
        inst = env_mod.Installed(os.path.dirname(os.path.abspath(run_dir)))
        e = env_mod.gather(inst, sys.modules)
        write_atomic(RunFolder(run_dir).env, json.dumps(e, ensure_ascii=False, default=str))
    except Exception:
        pass  # the program's exit is not ours to disturb; the parent records less
