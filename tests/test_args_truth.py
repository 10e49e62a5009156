"""The recorded arguments are those the script really parsed: intermixed parses (both shapes
CPython has had), and a --note that only a subcommand's parser defines."""

from __future__ import annotations

import pytest

INTERMIXED = """\
import argparse, sys, runlog
runlog.start(git=False)
p = argparse.ArgumentParser()
p.add_argument("files", nargs="*")
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--epochs", type=int, default=3)
"""

# CPython 3.12.8+, 3.13.1+ and 3.14 parse intermixed arguments in one pass that never calls
# parse_known_args; here a parser whose parse_known_args is argparse's own, unwrapped, takes
# that shape on any Python (the interpreters on this machine still have the older one)
NEW_SHAPE = """\
import argparse, sys
_own = argparse.ArgumentParser.parse_known_args  # before start(): argparse's own


class OnePass(argparse.ArgumentParser):
    parse_known_args = _own


import runlog
runlog.start(git=False)
p = OnePass()
p.add_argument("files", nargs="*")
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--epochs", type=int, default=3)
"""


@pytest.mark.parametrize("shape", ["two passes", "one pass"])
@pytest.mark.parametrize("call", ["parse_intermixed_args()", "parse_known_intermixed_args()[0]"])
def test_an_intermixed_parse_records_every_value(run_script, shape, call):
    script = INTERMIXED if shape == "two passes" else NEW_SHAPE
    script += f"a = p.{call}\nprint(sorted(vars(a).items()))\n"
    proc, d, r = run_script(script, "a.txt", "--lr", "0.5", "b.txt")
    assert "[('epochs', 3), ('files', ['a.txt', 'b.txt']), ('lr', 0.5)]" in proc.stdout
    assert r["args"] == {"files": ["a.txt", "b.txt"], "lr": 0.5, "epochs": 3}
    assert sorted(r["args_given"]) == ["files", "lr"]


def test_an_intermixed_usage_error_removes_the_run(run_script):
    proc, d, r = run_script(INTERMIXED + "p.parse_intermixed_args()\n", "--lr", "x", rc=2)
    assert d is None and "invalid float value" in proc.stderr


SUBCOMMANDS = """\
import argparse, runlog
p = argparse.ArgumentParser()
p.add_argument("--seed", type=int, default=0)
sub = p.add_subparsers(dest="cmd")
train = sub.add_parser("train")
train.add_argument("--note", default="")
train.add_argument("--lr", type=float, default=0.1)
evaluate = sub.add_parser("eval")
evaluate.add_argument("--split", default="val")
"""


@pytest.mark.parametrize("form", [["--note", "-why, not"], ["--note=-why, not"]])
@pytest.mark.parametrize("first", ["start", "parse"])
def test_a_note_only_a_subcommand_defines_still_reaches_it(run_script, first, form):
    body = SUBCOMMANDS + ("runlog.start(git=False)\nargs = p.parse_args()\n" if first == "start"
                          else "args = p.parse_args()\nrunlog.start(git=False)\n")
    body += "print('script sees:', repr(args.note), args.lr)\n"
    proc, _, r = run_script(body, "--seed", "2", "train", *form, "--lr", "0.5")
    assert "script sees: '-why, not' 0.5" in proc.stdout
    assert r["note"] == "-why, not"  # and it is still the run's note
    assert r["args"]["lr"] == 0.5 and r["args"]["cmd"] == "train"
    assert "--note" not in r["command_line"]
    # a subcommand that does not define it never sees it
    proc, _, r = run_script(body.replace("repr(args.note), args.lr", "repr(args.split)"), "eval",
                            "--note", "checking", "--split", "test")
    assert "script sees: 'test'" in proc.stdout and r["note"] == "checking"


def test_a_note_the_top_level_parser_defines_is_not_handed_to_its_subcommand(run_script):
    # given back in front, as one word: the subcommand's own arguments stay its own
    body = SUBCOMMANDS.replace('p.add_argument("--seed"', 'p.add_argument("--note", nargs="*")\n'
                               'p.add_argument("--seed"')
    body += "runlog.start(git=False)\nargs = p.parse_args()\nprint('script sees:', args.note, args.split)\n"
    proc, _, r = run_script(body, "--note", "top", "eval", "--split", "test")
    assert "script sees: ['top'] test" in proc.stdout and r["note"] == "top"


USAGE = """\
import argparse, runlog
runlog.start(git=False)
p = argparse.ArgumentParser()
p.add_argument("files", nargs="*")
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--warmup", type=int, default=0)
"""


@pytest.mark.parametrize("how", ["unrecognized", "unrecognized, intermixed", "the script's own check"])
def test_every_usage_error_of_the_scripts_parser_leaves_no_run(run_script, how):
    # nothing was trained, as for a value argparse rejects: no folder, no report
    body, argv = {
        "unrecognized": ("p.parse_args()\n", ["--bogus", "1"]),
        "unrecognized, intermixed": ("p.parse_intermixed_args()\n", ["a", "--bogus"]),
        "the script's own check": ("a = p.parse_args()\nif a.warmup > 0 and a.lr > 1:\n"
                                   "    p.error('--warmup needs --lr <= 1')\n",
                                   ["--lr", "2", "--warmup", "5"]),
    }[how]
    proc, d, _ = run_script(USAGE + body, *argv, rc=2)
    assert d is None and "## Run" not in proc.stderr
    assert "error:" in proc.stderr


def test_a_usage_error_after_metrics_keeps_the_run(run_script):
    # a run that recorded something did run: its record stays, failed with exit 2
    proc, d, r = run_script(USAGE + "a = p.parse_args()\nrunlog.current().metric('loss', 1.0)\n"
                            "p.error('late check')\n", rc=2)
    assert (r["status"], r["exit_code"]) == ("failed", 2)


PRE_PARSER = """\
import argparse, runlog
runlog.start(git=False)
config_parser = argparse.ArgumentParser(add_help=False)
config_parser.add_argument("-c", "--config", default="")
parser = argparse.ArgumentParser(parents=[config_parser])
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--api-key", default="")
parser.add_argument("--epochs", type=int, default=3)
cfg, remaining = config_parser.parse_known_args()
"""


@pytest.mark.parametrize("second", ["parser.parse_args(remaining)", "parser.parse_args()"])
def test_a_config_pre_parser_then_the_full_parser_records_both(run_script, second):
    # timm's train.py: a pre-parser takes --config, the full parser the rest
    proc, d, r = run_script(PRE_PARSER + f"args = {second}\nprint('lr', args.lr)\n",
                            "-c", "a.yaml", "--lr", "0.5", "--api-key", "sk-secret-1234")
    assert "lr 0.5" in proc.stdout
    assert r["args"] == {"config": "a.yaml", "lr": 0.5, "epochs": 3, "api_key": "***"}
    assert sorted(r["args_given"]) == ["api_key", "config", "lr"]
    assert "sk-secret-1234" not in (d / "run.json").read_text()


def test_help_after_a_config_pre_parser_leaves_no_run(run_script):
    proc, d, _ = run_script(PRE_PARSER + "parser.parse_args(remaining)\n", "--help")
    assert d is None and "--epochs" in proc.stdout


def test_a_later_parse_of_other_words_is_not_the_scripts_arguments(run_script):
    # the first parse read the whole command line: a library's parse of its own list after
    # it is not recorded, nor is a parse of the same words after a complete one
    _, _, r = run_script(PRE_PARSER.replace("cfg, remaining = config_parser.parse_known_args()\n", "")
                         + "args = parser.parse_args()\n"
                         + "lib = argparse.ArgumentParser()\nlib.add_argument('--depth', default=1)\n"
                         + "lib.parse_args(['--depth', '2'])\nconfig_parser.parse_known_args()\n",
                         "--lr", "0.5")
    assert r["args"] == {"config": "", "lr": 0.5, "epochs": 3, "api_key": ""}
    assert r["args_given"] == ["lr"]
    # a partial first parse, then a library's parse of words that are not the ones left
    _, _, r = run_script(PRE_PARSER + "lib = argparse.ArgumentParser()\nlib.add_argument('--depth')\n"
                         + "lib.parse_args(['--depth', '2'])\n", "-c", "b.yaml", "--lr", "0.5")
    assert r["args"] == {"config": "b.yaml"}


def test_parsed_before_start_the_full_parser_tells_what_was_given(run_script):
    # start() finds `args` and the parser that knows its names, not the pre-parser beside it
    body = PRE_PARSER.replace("runlog.start(git=False)\n", "") + \
        "args = parser.parse_args(remaining)\nrunlog.start(git=False)\n"
    _, _, r = run_script(body, "-c", "a.yaml", "--lr", "0.5")
    assert r["args"]["lr"] == 0.5 and "lr" in r["args_given"] and "epochs" not in r["args_given"]


def test_a_config_pre_parser_under_runlog_run(tmp_path):
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "pre.py").write_text(PRE_PARSER.replace("import argparse, runlog\nrunlog.start(git=False)\n",
                                                        "import argparse\n")
                                     + "args = parser.parse_args(remaining)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOG")}
    p = subprocess.run([sys.executable, "-m", "runlog", "run", "--no-git", "--", sys.executable, "pre.py",
                        "-c", "a.yaml", "--lr", "0.5", "--api-key", "sk-secret-1234"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    (d,) = [x for x in (tmp_path / "logs").iterdir() if x.is_dir() and not x.name.startswith(".")]
    r = json.loads((d / "run.json").read_text())
    assert r["args"] == {"config": "a.yaml", "lr": 0.5, "epochs": 3, "api_key": "***"}
    assert sorted(r["args_given"]) == ["api_key", "config", "lr"]
    assert "sk-secret-1234" not in (d / "run.json").read_text()


CONFIG_DEFAULTS = """\
import argparse, json, runlog
runlog.start(git=False)
parser = argparse.ArgumentParser()
parser.add_argument("--config")
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()
if args.config:  # the config file's values become the defaults; the command line still wins
    parser.set_defaults(**json.load(open(args.config)))
    args = parser.parse_args()
print("used", args.lr, args.epochs)
"""


def test_defaults_from_a_config_file_then_parsed_again_are_the_values_recorded(run_script, tmp_path):
    (tmp_path / "c.json").write_text('{"lr": 0.02, "epochs": 50}')
    proc, _, r = run_script(CONFIG_DEFAULTS, "--config", "c.json", "--epochs", "7")
    assert "used 0.02 7" in proc.stdout
    assert r["args"] == {"config": "c.json", "lr": 0.02, "epochs": 7}
    assert sorted(r["args_given"]) == ["config", "epochs"]
