"""`runlog sync mlflow` against a real MLflow tracking server on loopback (SQLite backend)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import integration

mlflow = integration("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

RUNLOG = [sys.executable, "-m", "runlog"]
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}

SCRIPT = """\
import argparse, os, runlog, sys, time
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--api-token", default="")
p.add_argument("--comment", default="")
p.add_argument("--steps", type=int, default=20)
p.add_argument("--fail", action="store_true")
p.add_argument("--wait-for", help="after step 5, wait until this file exists")
a = p.parse_args()
run = runlog.start()
for step in range(a.steps):
    run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / a.steps}, step=step)
    if a.wait_for and step == 5:
        print("waiting", flush=True)
        while not os.path.exists(a.wait_for):
            time.sleep(0.05)
if a.fail:
    raise ValueError("boom")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if shutil.which("mlflow") is None:
        pytest.skip("the mlflow command is not installed")
    d = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    proc = subprocess.Popen(["mlflow", "server", "--backend-store-uri", f"sqlite:///{d}/db.sqlite",
                             "--default-artifact-root", str(d / "artifacts"), "--host",
                             "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("the MLflow server did not start")
        time.sleep(0.5)
    yield uri
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.fixture
def project(tmp_path):
    env = dict(os.environ, **GIT_ENV)
    env.pop("RUNLOG_DIR", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    (tmp_path / ".gitignore").write_text("logs/\n")
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "train"], cwd=tmp_path, check=True, env=env)
    return tmp_path, env


def train(project, *args):
    d, env = project
    return subprocess.run([sys.executable, "train.py", *args], cwd=d, env=env,
                          capture_output=True, text=True, timeout=60)


def sync(project, uri, *args, experiment):
    d, env = project
    return subprocess.run([*RUNLOG, "sync", "mlflow", "--tracking-uri", uri, "--experiment",
                           experiment, *args], cwd=d, env=env, capture_output=True, text=True,
                          timeout=180)


def runs_by_id(uri, experiment):
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    found = client.search_runs([exp.experiment_id], max_results=100)
    return client, {r.data.tags["runlog.id"]: r for r in found}


def test_sync_sends_everything_once(server, project):
    d, env = project
    long_comment = "x" * 900
    train(project, "--lr", "0.3", "--api-token", "SECRET-TOKEN", "--comment", long_comment,
          "--note", "first try")
    train(project, "--lr", "0.5", "--fail")
    logs = d / "logs"
    ids = sorted(p.name for p in logs.iterdir() if p.is_dir() and not p.name.startswith("."))
    subprocess.run([*RUNLOG, "note", ids[0], "looks stable"], cwd=d, env=env, check=True)
    p = sync(project, server, experiment="e1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("(created:") == 2
    client, by = runs_by_id(server, "e1")
    assert set(by) == set(ids)
    first = by[ids[0]]
    params = first.data.params
    assert params["lr"] == "0.3" and params["steps"] == "20"
    assert params["api_token"] == "***"
    assert len(params["comment"]) == 500 and params["comment"].endswith("…")
    tags = first.data.tags
    commit = json.loads((logs / ids[0] / "run.json").read_text())["git"]["commit"]
    assert tags["mlflow.source.git.commit"] == commit
    assert tags["mlflow.source.git.branch"] in ("master", "main")
    assert tags["mlflow.note.content"].startswith("first try") and "looks stable" in tags[
        "mlflow.note.content"]
    assert first.info.status == "FINISHED" and by[ids[1]].info.status == "FAILED"
    # the environment as tags, what the run used as system metrics
    assert tags["runlog.env.python"] == sys.version.split()[0]
    assert tags["runlog.machine.host"] == os.uname().nodename
    assert "runlog.env.installed_hash" in tags
    assert first.data.metrics["system/peak_rss_bytes"] > 0 and first.data.metrics["system/cpu_s"] > 0
    hist = client.get_metric_history(first.info.run_id, "loss")
    assert sorted(m.step for m in hist) == list(range(20))
    arts = {a.path for a in client.list_artifacts(first.info.run_id)}
    assert {"run.log", "report.md", "notes.md", "args.json"} <= arts
    full = json.loads(Path(client.download_artifacts(first.info.run_id, "args.json")).read_text())
    assert full["comment"] == long_comment and full["api_token"] == "***"
    for art in ("run.log", "report.md"):
        text = Path(client.download_artifacts(first.info.run_id, art)).read_text()
        assert "SECRET-TOKEN" not in text
    # syncing again changes nothing and duplicates nothing
    p = sync(project, server, experiment="e1")
    assert p.returncode == 0 and p.stdout == "2 runs already up to date\n"  # one line
    client, by2 = runs_by_id(server, "e1")
    assert len(by2) == 2
    assert len(client.get_metric_history(first.info.run_id, "loss")) == 20
    assert len(client.get_metric_history(first.info.run_id, "system/peak_rss_bytes")) == 1
    # a note added later is sent on the next sync, said as what it is
    subprocess.run([*RUNLOG, "note", ids[1], "crashed on purpose"], cwd=d, env=env, check=True)
    p = sync(project, server, experiment="e1")
    assert p.returncode == 0 and "0 params" not in p.stdout, p.stdout
    assert f"{ids[1]} → " in p.stdout and "(updated: files (notes, report, log))" in p.stdout
    _, by3 = runs_by_id(server, "e1")
    assert "crashed on purpose" in by3[ids[1]].data.tags["mlflow.note.content"]


def test_a_running_run_is_caught_up_later(server, project):
    d, env = project
    go = d / "go"
    proc = subprocess.Popen([sys.executable, "train.py", "--steps", "30", "--wait-for", str(go)],
                            cwd=d, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "waiting"  # held after step 5 until we say go
    p = sync(project, server, experiment="e2")
    assert p.returncode == 0, p.stderr
    client, by = runs_by_id(server, "e2")
    (mrun,) = by.values()
    assert mrun.info.status == "RUNNING"
    early = len(client.get_metric_history(mrun.info.run_id, "loss"))
    assert early == 6
    go.write_text("")
    proc.communicate(timeout=60)
    p = sync(project, server, experiment="e2")
    assert p.returncode == 0, p.stderr
    client, by = runs_by_id(server, "e2")
    (mrun,) = by.values()
    assert mrun.info.status == "FINISHED"
    hist = client.get_metric_history(mrun.info.run_id, "loss")
    assert sorted(m.step for m in hist) == list(range(30))  # the rest, and nothing twice


def test_watch_follows_new_runs(server, project):
    d, env = project
    train(project, "--lr", "0.3")  # a run (and so the log directory) before the watcher starts
    (old,) = (p.name for p in (d / "logs").iterdir() if p.is_dir() and not p.name.startswith("."))
    watcher = subprocess.Popen([*RUNLOG, "sync", "mlflow", "--tracking-uri", server,
                                "--experiment", "e3", "--watch"], cwd=d, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in watcher.stdout:
            if line.startswith(f"{old} → "):
                break  # it has sent what was there: from now on it watches
        else:
            pytest.fail(f"the watcher never synced the first run: {watcher.stderr.read()}")
        train(project, "--lr", "0.7")
        (new,) = (p.name for p in (d / "logs").iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name != old)
        for line in watcher.stdout:  # one line each time it sends the run (running, then ended)
            if line.startswith(f"{new} → "):
                _, by = runs_by_id(server, "e3")
                if by[new].info.status == "FINISHED":
                    break
        else:
            pytest.fail(f"the watcher never synced the new run: {watcher.stderr.read()}")
        assert by[new].data.params["lr"] == "0.7"
        assert set(by) == {old, new}
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 130 and "Traceback" not in err


def test_server_down_is_one_line(project):
    train(project)
    p = sync(project, f"http://127.0.0.1:{free_port()}", experiment="e4")
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runlog: error: ") and "MLflow" in lines[0]


def test_a_pruned_trial_is_killed_in_mlflow_with_its_status_as_a_tag(server, project):
    # what `runlog sweep --prune` does to a trial: the marker file, then SIGTERM
    d, env = project
    marker = d / "pruned"
    marker.write_text("pruned")
    p = subprocess.run([*RUNLOG, "run", "--", sys.executable, "-c",
                        "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"], cwd=d,
                       env=dict(env, RUNLOG_PRUNE_FILE=str(marker)), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode != 0
    (run_id,) = [q.name for q in (d / "logs").iterdir() if q.is_dir() and not q.name.startswith(".")]
    assert json.loads((d / "logs" / run_id / "run.json").read_text())["status"] == "pruned"
    assert sync(project, server, experiment="e-pruned").returncode == 0
    _, by = runs_by_id(server, "e-pruned")
    assert by[run_id].info.status == "KILLED"
    assert by[run_id].data.tags["runlog.status"] == "pruned"
