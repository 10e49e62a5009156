"""Arguments: captured with their defaults, and which were given, however the script
parses them. Every case is a real script run as a real process."""

from __future__ import annotations

import textwrap

import pytest

PARSER = """\
import argparse, enum, pathlib, sys, runlog

class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"

def make_parser():
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("-e", "--epochs", type=int, default=3)
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out"))
    p.add_argument("--mode", type=Mode, default=Mode.FAST)
    p.add_argument("--verbose", action="store_true")
    return p
"""

ORDERS = {
    # (a) start() first: the parse that follows is recorded
    "start-then-parse": "runlog.start(git=False)\nparser = make_parser()\nargs = parser.parse_args()\n",
    # (b) parse first: start() finds the Namespace (and parser) in the caller
    "parse-then-start": "parser = make_parser()\nargs = parser.parse_args()\nrunlog.start(git=False)\n",
    # (c) handed over explicitly
    "start-with-args": "parser = make_parser()\nargs = parser.parse_args()\nrunlog.start(args, git=False)\n",
    # (d) parse_known_args, the rest left to the script
    "parse-known-args": "runlog.start(git=False)\nargs, rest = make_parser().parse_known_args()\n"
                        "print('rest:', rest)\n",
    # a parser that exists only inside main(), parsed before or after start()
    "main-parse-then-start": "def main():\n    p = make_parser()\n    a = p.parse_args()\n"
                             "    runlog.start(git=False)\nmain()\n",
    "main-start-then-parse": "def main():\n    runlog.start(git=False)\n    p = make_parser()\n"
                             "    return p.parse_args()\nmain()\n",
}

DEFAULTS = {"lr": 0.1, "epochs": 3, "out": "out", "mode": "Mode.FAST", "verbose": False}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_every_order_records_values_defaults_and_what_was_given(run_script, order):
    extra = ["--unknown", "1"] if order == "parse-known-args" else []
    proc, d, r = run_script(PARSER + ORDERS[order], "--lr", "0.5", "--mode", "slow", "-e", "7",
                            "--out=runs/a", *extra)
    assert r["args"] == {"lr": 0.5, "epochs": 7, "out": "runs/a", "mode": "Mode.SLOW",
                         "verbose": False}
    assert sorted(r["args_given"]) == ["epochs", "lr", "mode", "out"]
    assert "args: lr=0.5 epochs=7 out=runs/a mode=Mode.SLOW verbose=False" in (
        d / "run.log").read_text()
    if extra:
        assert "rest: ['--unknown', '1']" in proc.stdout


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_nothing_given_records_the_defaults_and_an_empty_given_list(run_script, order):
    _, _, r = run_script(PARSER + ORDERS[order])
    assert r["args"] == DEFAULTS
    assert r["args_given"] == []


@pytest.mark.parametrize("order", ["start-then-parse", "parse-then-start", "start-with-args"])
def test_args_given_lists_exactly_the_options_on_the_command_line(run_script, order):
    # a flag, a short option glued to its value, an option given its default value,
    # and a positional; the options left alone are not "given"
    body = textwrap.dedent("""\
        import argparse, runlog
        p = argparse.ArgumentParser()
        p.add_argument("data")
        p.add_argument("--lr", type=float, default=0.1)
        p.add_argument("-b", "--batch", type=int, default=32)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--amp", action="store_true")
        p.add_argument("--tags", nargs="*", default=[])
        p.add_argument("--wd", type=float, default=0.0)
        """)
    body += {"start-then-parse": "runlog.start(git=False)\nargs = p.parse_args()\n",
             "parse-then-start": "args = p.parse_args()\nrunlog.start(git=False)\n",
             "start-with-args": "args = p.parse_args()\nrunlog.start(args, git=False)\n"}[order]
    _, _, r = run_script(body, "train.csv", "-b64", "--seed", "0", "--amp", "--tags", "x", "y")
    assert r["args"] == {"data": "train.csv", "lr": 0.1, "batch": 64, "seed": 0, "amp": True,
                         "tags": ["x", "y"], "wd": 0.0}
    assert sorted(r["args_given"]) == ["amp", "batch", "data", "seed", "tags"]


def test_an_abbreviated_long_option_counts_as_given(run_script):
    # argparse accepts any unique prefix: --epo for --epochs
    _, _, r = run_script(PARSER + ORDERS["parse-then-start"], "--epo", "9")
    assert r["args"]["epochs"] == 9
    assert r["args_given"] == ["epochs"]


@pytest.mark.xfail(strict=True, reason="known gap: when the parser is gone by start() (parsed in "
                   "a helper that returned only the Namespace), given is read from --long flags")
def test_a_short_option_parsed_in_a_helper_before_start(run_script):
    _, _, r = run_script("""\
        import argparse, runlog
        def get_args():
            p = argparse.ArgumentParser()
            p.add_argument("-e", "--epochs", type=int, default=3)
            p.add_argument("--lr", type=float, default=0.1)
            return p.parse_args()
        args = get_args()
        runlog.start(git=False)
        """, "-e", "5", "--lr", "0.2")
    assert r["args"] == {"epochs": 5, "lr": 0.2}
    assert sorted(r["args_given"]) == ["epochs", "lr"]


def test_subparsers_record_the_subcommand_and_its_options(run_script):
    _, _, r = run_script("""\
        import argparse, runlog
        runlog.start(git=False)
        p = argparse.ArgumentParser()
        p.add_argument("--seed", type=int, default=0)
        sub = p.add_subparsers(dest="cmd")
        t = sub.add_parser("train")
        t.add_argument("--layers", type=int, default=2)
        t.add_argument("--dropout", type=float, default=0.1)
        e = sub.add_parser("eval")
        e.add_argument("--split", default="val")
        p.parse_args()
        """, "--seed", "4", "train", "--layers", "5")
    assert r["args"] == {"seed": 4, "cmd": "train", "layers": 5, "dropout": 0.1}
    assert sorted(r["args_given"]) == ["cmd", "layers", "seed"]


def test_subparsers_parsed_before_start(run_script):
    _, _, r = run_script("""\
        import argparse, runlog
        p = argparse.ArgumentParser()
        sub = p.add_subparsers(dest="cmd")
        e = sub.add_parser("eval")
        e.add_argument("--split", default="val")
        e.add_argument("--k", type=int, default=1)
        args = p.parse_args()
        runlog.start(git=False)
        """, "eval", "--split", "test")
    assert r["args"] == {"cmd": "eval", "split": "test", "k": 1}
    assert "split" in r["args_given"] and "k" not in r["args_given"]


def test_values_json_cannot_hold_are_readable_strings(run_script, tmp_path):
    (tmp_path / "input.txt").write_text("data\n")
    _, d, r = run_script("""\
        import argparse, enum, pathlib, runlog
        class Color(enum.Enum):
            RED = 1
        p = argparse.ArgumentParser()
        p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results") / "x")
        p.add_argument("--color", type=lambda s: Color[s], default=Color.RED)
        p.add_argument("--data", type=argparse.FileType("r"))
        p.add_argument("--log", type=argparse.FileType("w"), default="-")
        p.add_argument("--shape", type=int, nargs=2, default=(3, 4))
        runlog.start(git=False)
        args = p.parse_args()
        print("read:", args.data.read().strip())
        """, "--data", "input.txt")
    assert r["args"] == {"out": "results/x", "color": "Color.RED", "data": "input.txt",
                         "log": "<stdout>", "shape": [3, 4]}
    # the report and the log show them as the user would write them
    assert "data=input.txt" in (d / "report.md").read_text()
    assert "out=results/x" in (d / "run.log").read_text()


def test_a_dict_is_recorded_as_given(run_script):
    _, d, r = run_script("""\
        import pathlib, runlog
        config = {"lr": 3e-4, "model": {"depth": 12, "act": "gelu"}, "out": pathlib.Path("o"),
                  "layers": (1, 2)}
        runlog.start(config, git=False)
        """)
    assert r["args"] == {"lr": 3e-4, "model": {"depth": 12, "act": "gelu"}, "out": "o",
                         "layers": [1, 2]}
    assert r["args_given"] == []
    # nested keys are flattened for reading, kept nested in the record
    assert "model.depth=12" in (d / "run.log").read_text()


def test_a_dataclass_is_recorded_with_its_fields(run_script):
    _, _, r = run_script("""\
        import dataclasses, enum, pathlib, runlog
        class Opt(enum.Enum):
            ADAM = "adam"
        @dataclasses.dataclass
        class Data:
            path: pathlib.Path = pathlib.Path("data/train")
            shuffle: bool = True
        @dataclasses.dataclass
        class Config:
            lr: float = 0.01
            opt: Opt = Opt.ADAM
            data: Data = dataclasses.field(default_factory=Data)
        runlog.start(Config(lr=0.5), git=False)
        """)
    assert r["args"] == {"lr": 0.5, "opt": "Opt.ADAM",
                         "data": {"path": "data/train", "shuffle": True}}


def test_a_dataclass_given_on_the_command_line_by_hand(run_script):
    # a script that fills its config from --key value itself: the keys on argv are given
    _, _, r = run_script("""\
        import dataclasses, sys, runlog
        @dataclasses.dataclass
        class Config:
            lr: float = 0.01
            epochs: int = 3
        c = Config()
        c.lr = float(sys.argv[sys.argv.index("--lr") + 1])
        runlog.start(c, git=False)
        """, "--lr", "0.2")
    assert r["args"] == {"lr": 0.2, "epochs": 3}
    assert r["args_given"] == ["lr"]


def test_start_with_something_that_is_not_a_config_is_the_callers_error(run_script):
    proc, d, _ = run_script("import runlog\nrunlog.start(42)\n", rc=1)
    assert "TypeError: runlog.start(args=...) needs a Namespace, mapping, dataclass" in proc.stderr
    assert d is None  # nothing was made for a call that could not work


def test_only_the_scripts_own_parse_counts(run_script):
    # a library parsing its own options later (with parse_known_args([])) is not the run's
    _, _, r = run_script("""\
        import argparse, runlog
        runlog.start(git=False)
        p = argparse.ArgumentParser()
        p.add_argument("--lr", type=float, default=0.1)
        p.parse_args()
        q = argparse.ArgumentParser()
        q.add_argument("--other", default="x")
        q.parse_known_args([])
        """, "--lr", "0.2")
    assert r["args"] == {"lr": 0.2} and r["args_given"] == ["lr"]


def test_argparse_imported_only_after_start_is_still_recorded(run_script):
    _, _, r = run_script("""\
        import runlog
        runlog.start(git=False)
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--k", type=int, default=1)
        p.parse_args()
        """, "--k", "5")
    assert r["args"] == {"k": 5} and r["args_given"] == ["k"]


@pytest.mark.parametrize("argv", [["--help"], ["--epochs", "many"]])
def test_help_or_a_usage_error_after_start_leaves_no_run(run_script, argv):
    # nothing was trained: no folder to clutter the history, no report
    proc, d, _ = run_script(PARSER + ORDERS["start-then-parse"], *argv, rc=None)
    assert proc.returncode == (0 if argv == ["--help"] else 2)
    assert d is None
    assert "## Run" not in proc.stderr
    assert ("usage:" in proc.stdout) if argv == ["--help"] else ("invalid int" in proc.stderr)


def test_secret_looking_arguments_are_masked(run_script):
    _, d, r = run_script("""\
        import argparse, runlog
        p = argparse.ArgumentParser()
        p.add_argument("--api-key")
        p.add_argument("--lr", type=float, default=0.1)
        args = p.parse_args()
        runlog.start(git=False)
        """, "--api-key", "sk-abcdef123456", "--lr", "0.3")
    assert r["args"] == {"api_key": "***", "lr": 0.3}
    assert "sk-abcdef123456" not in (d / "run.json").read_text()
    assert "sk-abcdef123456" not in (d / "run.log").read_text()
    assert "sk-abcdef123456" not in (d / "report.md").read_text()


@pytest.mark.parametrize("first", ["start", "parse"])
@pytest.mark.parametrize("argv,given", [([], []), (["ckpt/b"], ["resume"])])
def test_an_optional_positional_is_given_only_when_there(run_script, argv, given, first):
    body = textwrap.dedent("""\
        import argparse, pathlib, runlog
        p = argparse.ArgumentParser()
        p.add_argument("resume", nargs="?", type=pathlib.Path, default=pathlib.Path("ckpt/a"))
        p.add_argument("--lr", type=float, default=0.1)
        """)
    body += ("runlog.start(git=False)\nargs = p.parse_args()\n" if first == "start"
             else "args = p.parse_args()\nrunlog.start(git=False)\n")
    _, _, r = run_script(body, *argv)
    assert r["args"]["resume"] == (argv[0] if argv else "ckpt/a")
    assert r["args_given"] == given
