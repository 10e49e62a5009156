"""``runlog sync mlflow``: send runs to an MLflow tracking server, idempotently.

Each runlog run becomes one MLflow run, found again by its ``runlog.id`` tag.
What was already sent is remembered on the server itself (tags counting the
metric points and the log's size), so a sync after a crash, from another
machine, or in ``--watch`` adds only what is new and never duplicates.
MLflow stays out of the training process: this command reads the records.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time

from ..fmt import flatten, fmt_value
from ..folder import layout, record
from ..folder.metrics import read_points
from .common import CliError, all_runs, find, folder, read_notes, settled, shown_status

PARAM_LIMIT = 500  # MLflow's limit on a parameter's value (older servers); longer is cut
BATCH = 1000  # metrics per log_batch call (MLflow's limit)
TAG_ID = "runlog.id"
TAG_POINTS = "runlog.synced_points"
TAG_FILES = "runlog.synced_files"  # sizes of the files last uploaded
STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "killed": "KILLED",
          "pruned": "KILLED",  # stopped by `sweep --prune`; the tag runlog.status says pruned
          "lost": "KILLED", "running": "RUNNING"}
ARTIFACTS = layout.ARTIFACTS


def _ms(iso: str | None) -> int | None:
    if not iso:
        return None
    import datetime

    try:
        return int(datetime.datetime.fromisoformat(iso).timestamp() * 1000)
    except ValueError:
        return None


def param_key(k: str) -> str:
    return re.sub(r"[^\w\-. /]", "_", k)[:250]


def param_value(v) -> str:
    s = fmt_value(v) if not isinstance(v, str) else v
    return s if len(s) <= PARAM_LIMIT else s[: PARAM_LIMIT - 1] + "…"


class Syncer:
    def __init__(self, tracking_uri: str | None, experiment: str | None):
        # fail fast when the server is down, instead of MLflow's minutes of retries
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "1")
        try:
            import mlflow  # noqa: F401
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise CliError("syncing needs MLflow: pip install 'runlog[mlflow]'") from None
        self.uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        self.client = MlflowClient(tracking_uri=self.uri)
        name = experiment or "runlog"
        exp = self.client.get_experiment_by_name(name)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(name)

    def find(self, run_id: str):
        found = self.client.search_runs([self.experiment_id],
                                        filter_string=f"tags.`{TAG_ID}` = '{run_id}'",
                                        max_results=2)
        return found[0] if found else None

    def sync(self, root: str, r: dict) -> str:
        """Create or update the MLflow run of one runlog run; say what was sent."""
        from mlflow.entities import Metric, Param, RunTag

        run_dir = folder(root, r).path
        status = shown_status(r)
        existing = self.find(r["id"])
        git = r.get("git") or {}
        notes = read_notes(run_dir).strip()
        description = "\n\n".join(x for x in (r.get("note") or "", notes) if x)
        tags = {TAG_ID: r["id"], "mlflow.runName": r["id"], "mlflow.source.type": "LOCAL",
                "mlflow.source.name": r.get("script") or "", "runlog.status": status,
                "runlog.command": (r.get("command_line") or "")[:5000]}
        if description:
            tags["mlflow.note.content"] = description
        if git.get("commit"):
            tags["mlflow.source.git.commit"] = git["commit"]
        if git.get("branch"):
            tags["mlflow.source.git.branch"] = git["branch"]
        env_tags, resources = facts_for_mlflow(r)
        tags.update(env_tags)
        if existing is None:
            mrun = self.client.create_run(self.experiment_id, start_time=_ms(r.get("started_at")),
                                          tags=tags, run_name=r["id"])
            mid, have_params, sent, files_sent = mrun.info.run_id, {}, 0, ""
        else:
            mid = existing.info.run_id
            have_params = existing.data.params
            sent = int(existing.data.tags.get(TAG_POINTS, "0") or 0)
            files_sent = existing.data.tags.get(TAG_FILES, "")
        args = flatten(r.get("args") or {})
        params = [Param(param_key(k), param_value(v)) for k, v in args.items()
                  if param_key(k) not in have_params]
        points = read_points(run_dir)
        new = [Metric(p["name"], float(p["value"]), int(p.get("time", 0) * 1000), p.get("step") or 0)
               for p in points[sent:] if isinstance(p.get("value"), (int, float))]
        have_metrics = existing.data.metrics if existing is not None else {}
        end = _ms(r.get("ended_at")) or 0
        new += [Metric(k, float(v), end, 0) for k, v in resources.items() if k not in have_metrics]
        for i in range(0, max(len(params), 1), 100):
            chunk = params[i:i + 100]
            if chunk:
                self.client.log_batch(mid, params=chunk)
        for i in range(0, len(new), BATCH):
            self.client.log_batch(mid, metrics=new[i:i + BATCH])
        all_tags = {**tags, TAG_POINTS: str(len(points))}
        # artifacts: the full arguments (params are cut), and the run's files that changed
        files_now = ",".join(str(_size(os.path.join(run_dir, n))) for n in ARTIFACTS)
        if files_now != files_sent or params:
            with tempfile.TemporaryDirectory(prefix="runlog-sync-") as tmp:
                full = os.path.join(tmp, "args.json")
                with open(full, "w", encoding="utf-8") as f:
                    json.dump(r.get("args") or {}, f, indent=1, ensure_ascii=False, default=str)
                self.client.log_artifact(mid, full)
            for name in ARTIFACTS:
                path = os.path.join(run_dir, name)
                if os.path.exists(path):
                    self.client.log_artifact(mid, path)
            all_tags[TAG_FILES] = files_now
        self.client.log_batch(mid, tags=[RunTag(k, v) for k, v in all_tags.items()])
        if status != "running":
            self.client.set_terminated(mid, STATUS.get(status, "FINISHED"),
                                       end_time=_ms(r.get("ended_at")))
        what = "created" if existing is None else "updated"
        if what == "updated" and not params and not new and files_now == files_sent:
            return None  # nothing new: said once, in the summary
        said = [f"{n} {what_}" for n, what_ in ((len(params), "params"), (len(new), "metric points")) if n]
        if what == "updated" and files_now != files_sent:
            said.append("files (notes, report, log)")
        return f"{r['id']} → {mid} ({what}: {', '.join(said) or 'the run'})"


def facts_for_mlflow(r: dict) -> tuple[dict[str, str], dict[str, float]]:
    """The environment as tags (versions may be corrected by a later sync; params may not),
    the resources as ``system/…`` metrics, once the run has ended."""
    tags: dict[str, str] = {}
    e = r.get("env") if isinstance(r.get("env"), dict) else {}
    m = r.get("machine") if isinstance(r.get("machine"), dict) else {}
    for key in ("python", "platform", "installed_hash"):
        if e.get(key):
            tags[f"runlog.env.{key}"] = str(e[key])
    for name, version in list((e.get("packages") or {}).items())[:40]:
        tags[f"runlog.pkg.{param_key(str(name))}"] = str(version)[:250]
    for name, info in (e.get("frameworks") or {}).items():
        if isinstance(info, dict):
            for k, v in info.items():
                if v is not None:
                    tags[f"runlog.{name}.{k}"] = str(v)
    for key in ("host", "cpu_model", "cpus", "memory_bytes", "container"):
        if m.get(key) is not None:
            tags[f"runlog.machine.{key}"] = str(m[key])
    gpus = [g for g in m.get("gpus") or [] if isinstance(g, dict)]
    if gpus:
        tags["runlog.machine.gpus"] = ", ".join(str(g.get("name")) for g in gpus)[:5000]
    sched = r.get("scheduler") if isinstance(r.get("scheduler"), dict) else {}
    for k, v in sched.items():
        if v is not None:
            tags[f"runlog.scheduler.{k}"] = str(v)
    res = r.get("resources") if isinstance(r.get("resources"), dict) else {}
    metrics = {f"system/{k}": v for k, v in res.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return tags, metrics if r.get("status") not in ("running", None) else {}


def _unreachable(e: Exception, uri: str | None) -> CliError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return CliError(f"could not sync to MLflow at {uri or 'the default tracking URI'} "
                    f"({msg[:200]}); nothing is lost, the next sync catches up")


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def _fingerprint(root: str, r: dict) -> tuple:
    f = folder(root, r)
    return tuple(_size(p) for p in (f.record, f.metrics, f.log, f.notes))


def sync(root: str, target: str, specs: list[str], tracking_uri: str | None = None,
         experiment: str | None = None, watch: bool = False, interval: float = 2.0) -> int:
    if target != "mlflow":
        raise CliError(f"unknown sync target {target!r} (runlog sync mlflow …)")
    try:
        syncer = Syncer(tracking_uri, experiment)
    except CliError:
        raise
    except Exception as e:
        raise _unreachable(e, tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")) from None
    seen: dict[str, tuple] = {}
    said = False
    unchanged = 0
    while True:
        if watch and not os.path.isdir(root):  # like tail: wait for the first run
            if not said:
                sys.stderr.write(f"runlog: waiting for runs in {root} …\n")
                sys.stderr.flush()
                said = True
            time.sleep(interval)
            continue
        runs = all_runs(root)
        chosen = [find(root, s, runs) for s in specs] if specs else runs
        for r in chosen:
            fp = _fingerprint(root, r)
            if seen.get(r["id"]) == fp:
                continue
            run_dir = folder(root, r).path
            try:  # the full record: the index keeps only a summary
                r = {**record.read(run_dir), "dir": run_dir}
            except record.RecordError:
                continue
            # a lost run ends at its last written line, not at the time of the sync
            r = settled(r)
            try:
                line = syncer.sync(root, r)
            except CliError:
                raise
            except Exception as e:
                raise _unreachable(e, syncer.uri) from None
            seen[r["id"]] = fp
            if line is None:
                unchanged += 1
                continue
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        if not watch:
            if unchanged:
                sys.stdout.write(f"{unchanged} run{'s' if unchanged != 1 else ''} already "
                                 f"up to date\n")
            return 0
        time.sleep(interval)
