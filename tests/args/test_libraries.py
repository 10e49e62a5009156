"""Arguments from absl-py, jsonargparse and python-fire — real scripts, real packages, real
subprocesses, read back from run.json."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import clean_env, read_json, run_dirs, write_script

# ---------------------------------------------------------------- absl-py

ABSL_FLAGS = """\
from absl import app, flags
import runlog
flags.DEFINE_float("lr", 0.1, "learning rate")
flags.DEFINE_integer("epochs", 3, "epochs")
flags.DEFINE_bool("fast", True, "fast path")
flags.DEFINE_enum("opt", "adam", ["adam", "sgd"], "optimizer")
flags.DEFINE_string("db_password", None, "a secret", short_name="p")
FLAGS = flags.FLAGS
"""


@pytest.mark.parametrize("where", ["in main", "before app.run", "before app.run, metric"])
def test_absl_flags_the_script_defines_with_those_given(run_script, where):
    pytest.importorskip("absl")
    start = "    runlog.start(git=False)\n" if where == "in main" else ""
    metric = "    runlog.metric('loss', FLAGS.lr)\n" if "metric" in where else ""
    top = "" if where == "in main" else "runlog.start(git=False)\n"
    _, _, r = run_script(ABSL_FLAGS + top + "def main(argv):\n" + start + metric
                         + "    print('lr', FLAGS.lr)\napp.run(main)\n",
                         "--lr", "0.5", "--nofast", "-v", "1", "-p", "hunter22")
    # absl's own flags (logtostderr, run_with_pdb, …) are not the script's; verbosity was given
    assert r["args"] == {"lr": 0.5, "epochs": 3, "fast": False, "opt": "adam",
                         "db_password": "***", "verbosity": 1}
    assert r["args_given"] == ["lr", "fast", "db_password", "verbosity"]
    assert "args_source" not in r
    assert "hunter22" not in json.dumps(r)


def test_absl_flags_of_a_project_module_count_and_a_flagfile_is_their_source(run_script, tmp_path):
    pytest.importorskip("absl")
    write_script(tmp_path, """\
        from absl import flags
        flags.DEFINE_integer("layers", 2, "model depth")
        """, "model_flags.py")
    (tmp_path / "run.cfg").write_text("--epochs=7\n--layers=4\n")
    p, d, r = run_script(ABSL_FLAGS + "import model_flags\nrunlog.start(git=False)\n"
                         "def main(argv):\n    pass\napp.run(main)\n",
                         "--flagfile=run.cfg", "--lr", "0.5")
    assert r["args"] == {"lr": 0.5, "epochs": 7, "fast": True, "opt": "adam",
                         "db_password": None, "layers": 4}
    assert r["args_given"] == ["lr"]
    assert r["args_source"] == {"lr": "command line", "epochs": "run.cfg", "layers": "run.cfg"}
    report = (d / "report.md").read_text()
    assert "- Args given: lr=0.5" in report and "- From run.cfg: epochs=7, layers=4" in report


def test_absl_flags_of_a_program_under_runlog_run_that_never_starts_a_run(tmp_path):
    pytest.importorskip("absl")
    import subprocess

    write_script(tmp_path, ABSL_FLAGS.replace("import runlog\n", "")
                 + "def main(argv):\n    print('lr', FLAGS.lr)\napp.run(main)\n")
    p = subprocess.run([sys.executable, "-m", "runlog", "run", "--", sys.executable, "s.py",
                        "--lr=0.25", "-db_password", "hunter22"], cwd=tmp_path,
                       capture_output=True, text=True, env=clean_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    (d,) = run_dirs(tmp_path / "logs")
    r = read_json(d / "run.json")
    assert r["args"]["lr"] == 0.25 and r["args"]["db_password"] == "***"
    assert r["args_given"] == ["lr", "db_password"]
    assert "hunter22" not in r["command_line"]


# ---------------------------------------------------------------- jsonargparse

JSONARGPARSE = """\
import dataclasses
import jsonargparse, runlog

@dataclasses.dataclass
class Optim:
    name: str = "adam"
    lr: float = 0.1

parser = jsonargparse.ArgumentParser()
parser.add_argument("--config", action=jsonargparse.ActionConfigFile)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--optim", type=Optim, default=Optim())
parser.add_argument("--hf_token", type=str, default=None)
parser.add_argument("data", nargs="?", default="train.csv")
{before}
cfg = parser.parse_args()
{after}
print("epochs", cfg.epochs)
"""


@pytest.mark.parametrize("start", ["before the parse", "after the parse"])
def test_jsonargparse_values_nested_with_those_given(run_script, start):
    pytest.importorskip("jsonargparse")
    code = "runlog.start(git=False)"
    _, d, r = run_script(JSONARGPARSE.format(before=code if start == "before the parse" else "",
                                             after=code if start == "after the parse" else ""),
                         "--optim.lr", "0.5", "--hf_token=hf_SECRET1")
    assert r["args"] == {"epochs": 3, "optim": {"name": "adam", "lr": 0.5}, "hf_token": "***",
                         "data": "train.csv"}  # the unused --config is no argument
    assert r["args_given"] == ["optim.lr", "hf_token"]
    assert "args_source" not in r
    assert "- Args given: optim.lr=0.5, hf_token=***" in (d / "report.md").read_text()
    assert "hf_SECRET1" not in "".join(f.read_text() for f in d.iterdir())


def test_jsonargparse_config_file_is_the_source_of_what_it_sets(run_script, tmp_path):
    pytest.importorskip("jsonargparse")
    (tmp_path / "cfg.yaml").write_text("epochs: 9\noptim:\n  lr: 0.01\n  name: sgd\n")
    code = "runlog.start(git=False)"
    # later words win: --optim.name after the file is the command line's, --epochs before it is not
    _, d, r = run_script(JSONARGPARSE.format(before=code, after=""),
                         "--epochs", "4", "--config", "cfg.yaml", "--optim.name=rmsprop", "val.csv")
    assert r["args"] == {"config": ["cfg.yaml"], "epochs": 9,
                         "optim": {"name": "rmsprop", "lr": 0.01}, "hf_token": None,
                         "data": "val.csv"}
    assert sorted(r["args_given"]) == ["config", "data", "optim.name"]
    assert r["args_source"] == {"data": "command line", "epochs": "cfg.yaml", "optim.lr": "cfg.yaml",
                                "optim.name": "command line"}
    report = (d / "report.md").read_text()
    assert "- From cfg.yaml: epochs=9, optim.lr=0.01" in report


def test_jsonargparse_cli_subcommands_nest_under_the_command(run_script):
    pytest.importorskip("jsonargparse")
    _, _, r = run_script("""\
        import jsonargparse, runlog
        runlog.start(git=False)
        def fit(lr: float = 0.1, epochs: int = 3):
            \"\"\"Train.\"\"\"
        def test(ckpt: str = "last.ckpt"):
            \"\"\"Evaluate.\"\"\"
        jsonargparse.CLI([fit, test])
        """, "fit", "--lr", "0.3")
    assert r["args"] == {"subcommand": "fit", "fit": {"lr": 0.3, "epochs": 3}}
    assert r["args_given"] == ["subcommand", "fit.lr"]


def test_jsonargparse_cli_function_that_starts_the_run(run_script):
    pytest.importorskip("jsonargparse")
    _, _, r = run_script("""\
        import jsonargparse, runlog
        def main(lr: float = 0.1, epochs: int = 3):
            runlog.start(git=False)
        jsonargparse.CLI(main)
        """, "--epochs", "5")
    assert r["args"] == {"lr": 0.1, "epochs": 5}
    assert r["args_given"] == ["epochs"]


# ---------------------------------------------------------------- python-fire

FIRE = """\
import fire, runlog
{top}
def main(data, lr=0.1, epochs=3, fast=False, api_key=None, **extra):
    {inside}
    print("lr", lr)
fire.Fire(main)
"""


@pytest.mark.parametrize("where", ["in the function", "before fire.Fire, metric"])
def test_fire_records_the_function_parameters_and_those_given(run_script, where):
    pytest.importorskip("fire")
    top, inside = (("", "runlog.start(git=False)") if where == "in the function"
                   else ("runlog.start(git=False)", "runlog.metric('loss', lr)"))
    p, _, r = run_script(FIRE.format(top=top, inside=inside), "d.csv", "--epochs=5", "--nofast",
                         "--api-key", "sk-SECRET1", "--seed", "7")
    assert "lr 0.1" in p.stdout
    # fire's own --verbose/--interactive/--trace flags are not the script's arguments
    assert r["args"] == {"data": "d.csv", "lr": 0.1, "epochs": 5, "fast": False, "api_key": "***",
                         "seed": 7}
    assert r["args_given"] == ["data", "epochs", "fast", "api_key", "seed"]
    assert "sk-SECRET1" not in json.dumps(r)


def test_fire_before_fire_without_a_metric_records_none_of_fires_own_flags(run_script):
    pytest.importorskip("fire")
    _, _, r = run_script(FIRE.format(top="runlog.start(git=False)", inside="pass"), "d.csv")
    # the call is over at exit: nothing of fire's is known then (see README)
    assert not {"verbose", "interactive", "trace", "separator"} & set(r["args"])


def test_fire_class_chain_says_which_arguments_are_not_recorded(run_script):
    pytest.importorskip("fire")
    p, _, r = run_script("""\
        import fire, runlog
        class Trainer:
            def __init__(self, lr=0.1):
                self.lr = lr
            def train(self, epochs=3):
                runlog.start(git=False)
        fire.Fire(Trainer)
        """, "--lr", "0.5", "train", "--epochs", "4")
    assert r["args"] == {"epochs": 4} and r["args_given"] == ["epochs"]
    assert p.stderr.count("fire: the arguments given to Trainer are not recorded") == 1


# ---------------------------------------------------------------- what a plain run loads


def test_a_plain_run_loads_none_of_the_library_readers(run_script):
    p, _, r = run_script("""\
        import argparse, sys, runlog
        p = argparse.ArgumentParser()
        p.add_argument("--lr", type=float, default=0.1)
        args = p.parse_args()
        run = runlog.start(git=False)
        run.metric("loss", 1.0)
        mods = ("runlog.args.absl_flags", "runlog.args.fire_call", "runlog.args.jsonargs",
                "absl", "fire", "jsonargparse")
        print("loaded", [m for m in mods if m in sys.modules])
        """, "--lr", "0.2")
    assert r["args"] == {"lr": 0.2}
    assert "loaded []" in p.stdout
