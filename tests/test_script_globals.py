"""Configurations that are not argparse: a nanoGPT-style script's module globals, recorded
as its arguments, with where each came from — real scripts, real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runlog.args.script_globals import Names, capture, sources

RUNLOG = [sys.executable, "-m", "runlog"]

# nanoGPT's configurator.py, as it is in karpathy/nanoGPT
CONFIGURATOR = '''\
"""
Poor Man's Configurator. Probably a terrible idea. Example usage:
$ python train.py config/override_file.py --batch_size=32
this will first run config/override_file.py, then override batch_size to 32
"""

import sys
from ast import literal_eval

for arg in sys.argv[1:]:
    if '=' not in arg:
        # assume it's the name of a config file
        assert not arg.startswith('--')
        config_file = arg
        print(f"Overriding config with {config_file}:")
        with open(config_file) as f:
            print(f.read())
        exec(open(config_file).read())
    else:
        # assume it's a --key=value argument
        assert arg.startswith('--')
        key, val = arg.split('=')
        key = key[2:]
        if key in globals():
            try:
                # attempt to eval it it (e.g. if bool, number, or etc)
                attempt = literal_eval(val)
            except (SyntaxError, ValueError):
                # if that goes wrong, just use the string
                attempt = val
            # ensure the types match ok
            assert type(attempt) == type(globals()[key])
            # cross fingers
            print(f"Overriding: {key} = {attempt}")
            globals()[key] = attempt
        else:
            raise ValueError(f"Unknown config key: {key}")
'''

CONFIG = """\
import time
out_dir = 'out-shakespeare-char'
n_layer = 2
dropout = 0.2
wandb_run_name = 'mini-gpt'
"""

# the shape of nanoGPT's train.py: config globals, the configurator, derived state, a loop
TRAIN = """\
import os
import json
import math
from math import pi
{start}
# -----------------------------------------------------------------------------
out_dir = 'out'
eval_interval = 2000
batch_size = 12
n_layer = 12
dropout = 0.0
bias = False
learning_rate = 6e-4
betas = (0.9, 0.95)
init_from = 'scratch'
device = 'cpu'
wandb_api_key = 'sk-not-for-the-record'
big = 'x' * 5000
_private = 3
config_keys = [k for k,v in globals().items() if not k.startswith('_')
               and isinstance(v, (int, float, bool, str))]
exec(open('configurator.py').read()) # overrides from command line or config file
config = {{k: globals()[k] for k in config_keys}} # will be useful for logging
# -----------------------------------------------------------------------------
tokens_per_iter = batch_size * 1024
iter_num = 0
best_val_loss = 1e9
def get_lr(it):
    return learning_rate
while True:
    lr = get_lr(iter_num)
    loss = 4.0 / (iter_num + 1) / n_layer
    {metric}
    iter_num += 1
    if iter_num > 3:
        break
device = 'changed-after-the-first-metric'
"""

PRINT_METRIC = 'print(json.dumps({"metric": "loss", "value": loss, "step": iter_num}))'


def env() -> dict:
    e = dict(os.environ)
    for k in ("RUNLOG_DIR", "RUNLOG_NOTE", "RUNLOG_RUN_DIR", "RUNLOG_RUN_ID", "RANK", "LOCAL_RANK"):
        e.pop(k, None)
    return e


def nanogpt(tmp_path: Path, start: str = "", metric: str = PRINT_METRIC) -> Path:
    (tmp_path / "configurator.py").write_text(CONFIGURATOR)
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "train_shakespeare_char.py").write_text(CONFIG)
    (tmp_path / "train.py").write_text(TRAIN.format(start=start, metric=metric))
    return tmp_path / "train.py"


def runs(logs: Path) -> list[dict]:
    return [json.loads((p / "run.json").read_text())
            for p in sorted(logs.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def python(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, *argv], cwd=tmp_path, capture_output=True, text=True,
                       env=env(), timeout=60)
    assert p.returncode == 0, p.stderr
    return p


def runlog_run(tmp_path: Path, *cmd: str) -> subprocess.CompletedProcess:
    p = subprocess.run([*RUNLOG, "run", "--no-git", "--", *cmd], cwd=tmp_path, capture_output=True,
                       text=True, env=env(), timeout=60)
    assert p.returncode == 0, p.stderr
    return p


NANOGPT_ARGS = {"out_dir", "eval_interval", "batch_size", "n_layer", "dropout", "bias",
                "learning_rate", "betas", "init_from", "device", "wandb_api_key",
                "wandb_run_name"}


def check_nanogpt_record(r: dict) -> None:
    a = r["args"]
    assert set(a) == NANOGPT_ARGS  # no loop state, derived values, imports, _names, huge strings
    assert a["n_layer"] == 1 and a["batch_size"] == 12 and a["dropout"] == 0.2
    assert a["learning_rate"] == 6e-4 and a["betas"] == [0.9, 0.95] and a["bias"] is False
    assert a["out_dir"] == "out-shakespeare-char"
    assert a["wandb_api_key"] == "***"
    assert r["args_given"] == ["n_layer"]
    cfg = "config/train_shakespeare_char.py"
    assert r["args_source"] == {"out_dir": cfg, "dropout": cfg, "wandb_run_name": cfg,
                                "n_layer": "command line"}


# ---------------------------------------------------------------- which names count


def test_the_configurator_marks_the_end_of_the_configuration():
    n = Names(TRAIN.format(start="", metric=""))
    assert "batch_size" in n.config and "betas" in n.config and n.config["betas"] is True
    assert "tokens_per_iter" not in n.config and "iter_num" not in n.config  # after exec()
    assert {"lr", "iter_num", "loss"} <= n.excluded  # set in a top-level loop
    assert {"os", "json", "math", "pi", "get_lr"} <= n.excluded
    assert "_private" not in n.config


def test_a_script_without_a_configurator_counts_its_top_level_and_main_block():
    n = Names(textwrap.dedent("""\
        import sys
        lr = 0.1
        try:
            import torch
            device = "cuda"
        except ImportError:
            device = "cpu"
        step = 0
        def main():
            global step
            hidden = 1
            step += 1
        if __name__ == "__main__":
            epochs = 3
            for e in range(epochs):
                best = e
        """))
    assert set(n.config) == {"lr", "device", "epochs"}
    assert {"best", "e", "step"} <= n.excluded


def test_later_words_win_and_dashes_match_underscores(tmp_path):
    cfg = tmp_path / "c.py"
    cfg.write_text("batch_size = 8\nlr = 1\n")
    files = {str(cfg): Names(cfg.read_text(), stop_at_exec=False)}
    src = sources({"batch_size", "lr", "n"}, ["--batch-size=4", str(cfg), "--n", "3"], files)
    assert src == {"batch_size": str(cfg), "lr": str(cfg), "n": "command line"}


def test_a_script_that_sets_nothing_simple_records_nothing(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import os\nx = os.environ\n")

    class Main:
        pass

    main = Main()
    main.x = os.environ
    assert capture([], str(script), main) is None


# ---------------------------------------------------------------- real runs


def test_zero_code_start_records_the_globals_after_the_configurator(tmp_path):
    nanogpt(tmp_path, start="import runlog\nrunlog.start()")
    python(tmp_path, "train.py", "config/train_shakespeare_char.py", "--n_layer=2")
    p = python(tmp_path, "train.py", "config/train_shakespeare_char.py", "--n_layer=1",
               "--note=one layer")
    first, second = runs(tmp_path / "logs")
    check_nanogpt_record(second)
    assert second["note"] == "one layer"
    assert "note" not in second["args"]
    assert second["args"]["device"] == "changed-after-the-first-metric"  # no metric: read at exit
    report = p.stderr[p.stderr.index("## Run"):]
    assert "- Args given: n_layer=1" in report
    assert "- From config/train_shakespeare_char.py: out_dir=out-shakespeare-char, dropout=0.2" in report
    assert "sk-not-for-the-record" not in report
    since = next(ln for ln in report.splitlines() if ln.startswith("- Since"))
    assert since.startswith(f"- Since {first['id']}: n_layer 2 → 1")
    log = (tmp_path / "logs" / second["id"] / "run.log").read_text()
    assert "args: out_dir=out-shakespeare-char" in log and "sk-not-for-the-record" not in log


def test_the_first_metric_is_when_the_globals_are_read(tmp_path):
    nanogpt(tmp_path, start="import runlog\nrunlog.start()",
            metric='runlog.metric("loss", loss, step=iter_num)')
    python(tmp_path, "train.py", "config/train_shakespeare_char.py", "--n_layer=1")
    (r,) = runs(tmp_path / "logs")
    check_nanogpt_record(r)
    assert r["args"]["device"] == "cpu"  # as it was when the first metric came
    assert r["metrics"]["loss"]["count"] == 4


def test_runlog_run_records_an_unchanged_nanogpt_script(tmp_path):
    nanogpt(tmp_path)
    runlog_run(tmp_path, sys.executable, "train.py", "config/train_shakespeare_char.py", "--n_layer=2")
    p = runlog_run(tmp_path, sys.executable, "train.py", "config/train_shakespeare_char.py",
                   "--n_layer=1", "--note", "why")
    first, second = runs(tmp_path / "logs")
    check_nanogpt_record(second)
    assert second["note"] == "why" and "note" not in second["args"]
    assert second["metrics"]["loss"]["count"] == 4
    assert "Since " + first["id"] + ": n_layer 2 → 1" in p.stderr
    show = subprocess.run([*RUNLOG, "show"], cwd=tmp_path, capture_output=True, text=True, env=env())
    lines = show.stdout.splitlines()
    assert next(ln for ln in lines if ln.split()[:1] == ["dropout"]).split() == [
        "dropout", "from", "config/train_shakespeare_char.py", "0.2"]
    assert next(ln for ln in lines if ln.split()[:1] == ["n_layer"]).split() == ["n_layer", "given", "1"]


def test_runlog_run_with_start_inside_reads_them_at_the_first_metric(tmp_path):
    nanogpt(tmp_path, start="import runlog\nrunlog.start()",
            metric='runlog.metric("loss", loss, step=iter_num)')
    runlog_run(tmp_path, sys.executable, "train.py", "config/train_shakespeare_char.py", "--n_layer=1")
    (r,) = runs(tmp_path / "logs")
    check_nanogpt_record(r)
    assert r["args"]["device"] == "cpu"


def test_a_bare_sys_argv_script_under_runlog_run_with_a_note(tmp_path):
    (tmp_path / "bare.py").write_text(textwrap.dedent("""\
        import subprocess, sys
        lr = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
        epochs = 3
        layers = [64, 64]
        subprocess.run([sys.executable, "helper.py"], check=True)  # a helper with globals of its own
        print("argv", sys.argv[1:])
        """))
    (tmp_path / "helper.py").write_text("helper_setting = 7\n")
    p = runlog_run(tmp_path, sys.executable, "bare.py", "0.01", "--note", "why")
    assert "argv ['0.01']" in p.stdout  # the program never sees the note
    (r,) = runs(tmp_path / "logs")
    assert r["note"] == "why"
    assert r["args"] == {"lr": 0.01, "epochs": 3, "layers": [64, 64]}
    # lr is assigned from sys.argv and its value is the command line's word: given
    assert r["args_given"] == ["lr"] and r["args_source"] == {"lr": "command line"}


def test_argparse_scripts_are_not_read_for_globals(tmp_path):
    (tmp_path / "ap.py").write_text(textwrap.dedent("""\
        import argparse, runlog
        run = runlog.start()
        width = 3
        p = argparse.ArgumentParser()
        p.add_argument("--lr", type=float, default=0.1)
        a = p.parse_args()
        run.metric("x", 1)
        """))
    python(tmp_path, "ap.py", "--lr", "0.2")
    runlog_run(tmp_path, sys.executable, "ap.py", "--lr", "0.3")
    for r in runs(tmp_path / "logs"):
        assert set(r["args"]) == {"lr"} and "args_source" not in r


@pytest.mark.parametrize("how", ["start", "run"])
def test_a_script_killed_by_its_own_error_still_has_its_globals(tmp_path, how):
    (tmp_path / "crash.py").write_text(("import runlog\nrunlog.start()\n" if how == "start" else "")
                                       + "seed = 3\nraise ValueError('diverged')\n")
    argv = [sys.executable, "crash.py"]
    if how == "run":
        argv = [*RUNLOG, "run", "--no-git", "--", *argv]
    p = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env(), timeout=60)
    assert p.returncode == 1
    (r,) = runs(tmp_path / "logs")
    assert r["status"] == "failed" and r["args"] == {"seed": 3}
    assert r["error"]["message"] == "diverged"


# ---------------------------------------------------------------- the source read once


CACHED = """\
import atexit, sys
print("ast-at-start", "ast" in sys.modules, flush=True)
# registered before start(), so it runs after runlog's finish has read the globals
atexit.register(lambda: print("ast-at-exit", "ast" in sys.modules, flush=True))
import runlog
runlog.start()
lr = 0.1
epochs = 3
{extra}
"""


def test_an_unchanged_script_is_read_once_and_an_edited_one_again(tmp_path):
    """What a script's top level assigns is kept per file (``.runlog-sources``) while the file is
    unchanged: a re-run reads no source and imports no ``ast``; an edit is seen at once."""
    script = tmp_path / "cfg.py"
    script.write_text(CACHED.format(extra=""))

    def run_once() -> tuple[dict, bool]:
        p = python(tmp_path, "cfg.py")
        if "ast-at-start True" in p.stdout:  # this interpreter loads ast before any script
            pytest.skip("ast is imported at start-up here; whether runlog parsed cannot be seen")
        ast_at_exit = p.stdout.split("ast-at-exit ")[1].split()[0] == "True"
        newest = max((r for r in runs(tmp_path / "logs")), key=lambda r: r["id"])
        return newest, ast_at_exit

    first, parsed = run_once()
    assert first["args"] == {"lr": 0.1, "epochs": 3} and parsed
    cache = tmp_path / "logs" / ".runlog-sources"
    assert len(list(cache.iterdir())) == 1
    second, parsed = run_once()
    assert second["args"] == {"lr": 0.1, "epochs": 3}
    assert not parsed  # the names came from the cache: no source parsed
    # an edit (a new global, one removed) is read again, however soon after
    script.write_text(CACHED.format(extra="batch = 8").replace("epochs = 3\n", ""))
    third, parsed = run_once()
    assert third["args"] == {"lr": 0.1, "batch": 8} and parsed
    # a broken or foreign cache entry is a miss, never a wrong record
    (entry,) = cache.iterdir()
    entry.write_text('{"path": "/elsewhere.py", "stamp": [1, 2, 3], "value": {"config": {"x": false}}}')
    fourth, _ = run_once()
    assert fourth["args"] == {"lr": 0.1, "batch": 8}
    entry.write_text("{not json")
    fifth, _ = run_once()
    assert fifth["args"] == {"lr": 0.1, "batch": 8}


def test_a_read_only_cache_costs_a_parse_not_the_record(tmp_path):
    script = tmp_path / "cfg.py"
    script.write_text(CACHED.format(extra=""))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / ".runlog-sources").write_text("a file where the folder would be\n")
    p = python(tmp_path, "cfg.py")
    (r,) = runs(tmp_path / "logs")
    assert r["args"] == {"lr": 0.1, "epochs": 3}
    assert "runlog:" not in p.stderr.replace("runlog: run ", "")  # nothing to say about a cache
