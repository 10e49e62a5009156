"""Secrets stay out of everything runlog writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from runlog.mask import mask_args, mask_argv

SCRIPT = """\
import argparse, runlog
p = argparse.ArgumentParser()
p.add_argument("--api-key")
p.add_argument("--db-password")
p.add_argument("--hf-token")
p.add_argument("--wandb-project")
p.add_argument("--lr", type=float, default=0.1)
runlog.start(git=False)
args = p.parse_args()
print("used", args.api_key[:2])
"""


def test_masked_in_record_command_report_and_log(tmp_path):
    (tmp_path / "s.py").write_text(textwrap.dedent(SCRIPT))
    env = dict(os.environ, RUNLOG_MASK="project")
    env.pop("RUNLOG_DIR", None)
    p = subprocess.run(
        [sys.executable, "s.py", "--api-key", "sk-SECRET1", "--db-password=SECRET2",
         "--hf-token", "SECRET3", "--wandb-project", "SECRET4", "--lr", "0.5"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "used sk" in p.stdout  # the script itself still gets the real values
    (d,) = [x for x in (tmp_path / "logs").iterdir() if x.is_dir()]
    everything = "".join(f.read_text() for f in d.iterdir()) + p.stderr
    everything += (tmp_path / "logs" / ".runlog-index.jsonl").read_text()
    for secret in ("SECRET1", "SECRET2", "SECRET3", "SECRET4"):
        assert secret not in everything
    r = json.loads((d / "run.json").read_text())
    assert r["args"]["api_key"] == "***" and r["args"]["lr"] == 0.5
    assert "--api-key '***'" in r["command_line"] or "--api-key ***" in r["command_line"]
    assert "--db-password=***" in r["command_line"]


def test_mask_argv_forms():
    assert mask_argv(["--api-key", "x", "--lr", "1", "--token=abc", "ACCESS_KEY=zz", "-p", "q"]) == [
        "--api-key", "***", "--lr", "1", "--token=***", "ACCESS_KEY=***", "-p", "q"]


def test_mask_args_nested_and_empty_values_left():
    assert mask_args({"db": {"password": "p", "host": "h"}, "token": None, "secret_sauce": ""}) == {
        "db": {"password": "***", "host": "h"}, "token": None, "secret_sauce": ""}


def test_patch_with_a_key_warns(tmp_path):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    env.pop("RUNLOG_DIR", None)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "s.py").write_text("import runlog\nrunlog.start()\n")
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "config.py").write_text('API_KEY = "sk-live-abcdef123456"\n')
    p = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, capture_output=True, text=True,
                       env=env, timeout=60)
    assert p.returncode == 0
    assert p.stderr.count("seems to hold a credential") == 1
