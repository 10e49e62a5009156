"""Arguments that argparse parsed from somewhere other than the command line's words — an
``@file`` (``fromfile_prefix_chars``), ConfigArgParse's config files and environment
variables — and the other common shapes of ML scripts' argument parsing (a
HfArgumentParser-like dataclass parser, simple_parsing, argparse in a function, ``sys.argv``
read by hand). Real scripts, real packages, real subprocesses, read back from run.json."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import clean_env, read_json, run_dirs, write_script

# ---------------------------------------------------------------- argparse @file

AT_FILE = """\
import argparse
import runlog
{before}p = argparse.ArgumentParser(fromfile_prefix_chars="@")
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--name", default="x")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
{after}print("lr", args.lr)
"""


@pytest.mark.parametrize("start", ["before the parse", "after the parse"])
def test_options_from_an_at_file_are_the_files_not_given(run_script, tmp_path, start):
    (tmp_path / "args.txt").write_text("--lr\n0.5\n--epochs=7\n--name\nfromfile\n")
    before = "runlog.start(git=False)\n" if start == "before the parse" else ""
    after = "" if before else "runlog.start(git=False)\n"
    # --name in the file, then on the command line: the command line's wins, as in argparse
    p, d, r = run_script(AT_FILE.format(before=before, after=after), "@args.txt", "--name", "foo")
    assert "lr 0.5" in p.stdout
    assert r["args"] == {"lr": 0.5, "epochs": 7, "name": "foo", "seed": 0}
    assert r["args_given"] == ["name"]
    assert r["args_source"] == {"lr": "args.txt", "epochs": "args.txt", "name": "command line"}
    assert r["command_line"].endswith("s.py @args.txt --name foo")  # re-runs as it ran
    report = (d / "report.md").read_text()
    assert "- Args given: name=foo" in report and "- From args.txt: lr=0.5, epochs=7" in report
    assert "- Defaults: seed=0" in report
    assert "args: lr=0.5 epochs=7 name=foo seed=0" in (d / "run.log").read_text()


def test_a_plain_parse_without_an_at_file_has_no_source(run_script):
    _, _, r = run_script(AT_FILE.format(before="runlog.start(git=False)\n", after=""), "--lr", "0.5")
    assert r["args_given"] == ["lr"] and "args_source" not in r


def _runlog_run(tmp_path, *argv, **env):
    p = subprocess.run([sys.executable, "-m", "runlog", "run", "--", sys.executable, *argv],
                       cwd=tmp_path, capture_output=True, text=True, env=clean_env(**env), timeout=60)
    assert p.returncode == 0, p.stderr
    (d,) = run_dirs(tmp_path / "logs")
    return read_json(d / "run.json")


def test_an_at_file_under_runlog_run(tmp_path):
    (tmp_path / "args.txt").write_text("--epochs=7\n")
    write_script(tmp_path, AT_FILE.format(before="", after="").replace("import runlog\n", ""))
    r = _runlog_run(tmp_path, "s.py", "@args.txt", "--lr=0.5")
    assert r["args"]["epochs"] == 7 and r["args_given"] == ["lr"]
    assert r["args_source"] == {"epochs": "args.txt", "lr": "command line"}


# ---------------------------------------------------------------- ConfigArgParse

CAP = """\
import configargparse
import runlog
{before}p = configargparse.ArgParser(default_config_files=["defaults.cfg"])
p.add_argument("-c", "--config", is_config_file=True)
p.add_argument("--lr", type=float, default=0.1, env_var="TRAIN_LR")
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--layers", type=int, default=1)
p.add_argument("--name", default="x")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
{after}print("args", vars(args))
"""


@pytest.mark.parametrize("start", ["before the parse", "after the parse"])
def test_configargparse_config_files_and_environment_are_sources_not_given(run_script, tmp_path,
                                                                             start):
    pytest.importorskip("configargparse")
    (tmp_path / "defaults.cfg").write_text("layers = 5\n")
    (tmp_path / "run.cfg").write_text("epochs = 9\nname = fromfile\n")
    before = "runlog.start(git=False)\n" if start == "before the parse" else ""
    after = "" if before else "runlog.start(git=False)\n"
    p, d, r = run_script(CAP.format(before=before, after=after), "-c", "run.cfg", "--name", "foo",
                         env={"TRAIN_LR": "0.7"})
    # the values the script uses (not only the config option, which ConfigArgParse parses first)
    assert r["args"] == {"config": "run.cfg", "lr": 0.7, "epochs": 9, "layers": 5, "name": "foo",
                         "seed": 0}
    assert r["args_given"] == ["config", "name"]
    assert r["args_source"] == {"lr": "$TRAIN_LR", "epochs": "run.cfg", "layers": "defaults.cfg",
                                "config": "command line", "name": "command line"}
    report = (d / "report.md").read_text()
    assert "- Args given: config=run.cfg, name=foo" in report
    assert "- From $TRAIN_LR: lr=0.7" in report and "- From run.cfg: epochs=9" in report
    assert "- From defaults.cfg: layers=5" in report and "- Defaults: seed=0" in report
    # the Re-run line sets the environment variable that gave lr its value
    assert "- Re-run: `TRAIN_LR=0.7 python s.py -c run.cfg --name foo`" in report


def test_configargparse_without_config_or_environment_is_a_plain_parse(run_script):
    pytest.importorskip("configargparse")
    _, _, r = run_script(CAP.format(before="runlog.start(git=False)\n", after=""), "--seed", "4")
    assert r["args"]["seed"] == 4 and r["args"]["lr"] == 0.1
    assert r["args_given"] == ["seed"] and "args_source" not in r


def test_configargparse_subclass_yaml_config_and_the_command_line_winning(run_script, tmp_path):
    pytest.importorskip("configargparse")
    pytest.importorskip("yaml")
    (tmp_path / "run.yaml").write_text("epochs: 9\nlr: 0.3\n")
    body = CAP.format(before="runlog.start(git=False)\n", after="").replace(
        'p = configargparse.ArgParser(default_config_files=["defaults.cfg"])',
        "class Parser(configargparse.ArgumentParser):\n    pass\n"
        "p = Parser(config_file_parser_class=configargparse.YAMLConfigFileParser)")
    _, _, r = run_script(body, "--config", "run.yaml", "--lr", "0.5", env={"TRAIN_LR": "0.7"})
    assert r["args"]["lr"] == 0.5 and r["args"]["epochs"] == 9  # the command line's lr wins
    assert r["args_given"] == ["config", "lr"]
    assert r["args_source"] == {"epochs": "run.yaml", "config": "command line", "lr": "command line"}


def test_configargparse_under_runlog_run(tmp_path):
    pytest.importorskip("configargparse")
    (tmp_path / "run.cfg").write_text("epochs = 9\n")
    write_script(tmp_path, CAP.format(before="", after="").replace("import runlog\n", ""))
    r = _runlog_run(tmp_path, "s.py", "--config", "run.cfg", "--seed", "2", TRAIN_LR="0.7")
    assert r["args"]["lr"] == 0.7 and r["args"]["epochs"] == 9 and r["args"]["seed"] == 2
    assert r["args_given"] == ["config", "seed"]
    assert r["args_source"] == {"lr": "$TRAIN_LR", "epochs": "run.cfg", "config": "command line",
                                "seed": "command line"}


# ---------------------------------------------------------------- other shapes, recorded as they are

HF_LIKE = """\
import argparse, dataclasses
import runlog

@dataclasses.dataclass
class ModelArguments:
    model_name: str = "gpt2"

@dataclasses.dataclass
class TrainingArguments:
    learning_rate: float = 5e-5
    num_train_epochs: int = 3

class Parser(argparse.ArgumentParser):  # the shape of transformers' HfArgumentParser
    def __init__(self, types):
        super().__init__()
        self.types = types
        for t in types:
            for f in dataclasses.fields(t):
                self.add_argument("--" + f.name, type=type(f.default), default=f.default)

    def parse_args_into_dataclasses(self):
        ns, rest = self.parse_known_args()
        return tuple(t(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(t)})
                     for t in self.types)

def main():
    {start}parser = Parser((ModelArguments, TrainingArguments))
    model_args, training_args = parser.parse_args_into_dataclasses()
    print(training_args)

if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("start", [True, False], ids=["start before the parse", "start after it"])
def test_a_dataclass_parser_subclass_like_hfargumentparser(run_script, start):
    # after it: no Namespace is left, the dataclasses beside the parser are the arguments
    body = HF_LIKE.replace("{start}", "runlog.start(git=False)\n    " if start else "")
    if not start:
        body = body.replace("    print(training_args)",
                            "    runlog.start(git=False)\n    print(training_args)")
    _, d, r = run_script(body, "--learning_rate", "0.001", "--model_name", "bert")
    assert r["args"] == {"model_name": "bert", "learning_rate": 0.001, "num_train_epochs": 3}
    assert r["args_given"] == ["learning_rate", "model_name"]


def test_a_parse_after_start_wins_over_default_dataclasses_beside_the_parser(run_script):
    _, _, r = run_script("""\
        import argparse, dataclasses
        import runlog

        @dataclasses.dataclass
        class Config:
            lr: float = 0.1
            epochs: int = 3

        defaults = Config()
        parser = argparse.ArgumentParser()
        for f in dataclasses.fields(defaults):
            parser.add_argument("--" + f.name, type=f.type, default=getattr(defaults, f.name))
        runlog.start(git=False)
        args = parser.parse_args()
        """.replace("type=f.type", "type=type(f.default)"), "--lr", "0.5")
    assert r["args"] == {"lr": 0.5, "epochs": 3} and r["args_given"] == ["lr"]


def test_argparse_in_a_function_main_calls_after_start(run_script):
    _, _, r = run_script("""\
        import argparse
        import runlog

        def parse():
            p = argparse.ArgumentParser()
            p.add_argument("--lr", type=float, default=0.1)
            p.add_argument("--epochs", type=int, default=3)
            return p.parse_args()

        def main():
            args = parse()
            runlog.metric("lr", args.lr)

        if __name__ == "__main__":
            runlog.start(git=False)
            main()
        """, "--lr", "0.5")
    assert r["args"] == {"lr": 0.5, "epochs": 3} and r["args_given"] == ["lr"]


@pytest.mark.parametrize("start", ["before the parse", "after it"])
def test_simple_parsing_nested_dataclasses(run_script, start):
    pytest.importorskip("simple_parsing")
    body = """\
        import dataclasses
        import runlog
        from simple_parsing import ArgumentParser

        @dataclasses.dataclass
        class Optim:
            beta: float = 0.9

        @dataclasses.dataclass
        class Config:
            lr: float = 0.1
            epochs: int = 3
            optim: Optim = dataclasses.field(default_factory=Optim)

        runlog.start(git=False)
        p = ArgumentParser()
        p.add_arguments(Config, dest="config")
        p.add_argument("--seed", type=int, default=0)
        args = p.parse_args()
        print(args.config)
        """
    if start == "after it":  # the Namespace holds a Config then: recorded by its fields' names
        body = body.replace("        runlog.start(git=False)\n", "").replace(
            "print(args.config)\n", "print(args.config)\n        runlog.start(git=False)\n")
    _, _, r = run_script(body, "--lr", "0.5", "--beta", "0.8")
    assert r["args"] == {"seed": 0, "config.lr": 0.5, "config.epochs": 3, "config.optim.beta": 0.8}
    assert r["args_given"] == ["config.lr", "config.optim.beta"]


def test_sys_argv_read_by_hand_into_globals(run_script):
    _, d, r = run_script("""\
        import sys
        import runlog
        lr = 0.1
        epochs = 3
        for a in sys.argv[1:]:
            k, v = a.lstrip("-").split("=")
            globals()[k] = type(globals()[k])(v)
        runlog.start(git=False)
        """, "--lr=0.5")
    assert r["args"] == {"lr": 0.5, "epochs": 3}
    assert r["args_given"] == ["lr"]
    assert "- Args given: lr=0.5" in (d / "report.md").read_text()


def test_key_value_words_without_dashes_read_by_hand_are_given(run_script):
    _, d, r = run_script("""\
        import sys
        import runlog
        runlog.start(git=False)
        lr = 0.1
        epochs = 3
        for a in sys.argv[1:]:
            k, v = a.lstrip("-").split("=")
            globals()[k] = type(globals()[k])(v)
        runlog.metric("loss", 1.0)
        """, "lr=0.5", "--epochs=4")
    assert r["args"] == {"lr": 0.5, "epochs": 4}
    assert r["args_given"] == ["lr", "epochs"]
    assert "- Args given: lr=0.5, epochs=4" in (d / "report.md").read_text()


@pytest.mark.parametrize("argv, given", [(["/tmp", "1e-3"], ["data_dir", "lr"]), (["/tmp"], ["data_dir"])])
def test_globals_assigned_from_sys_argv_are_given_when_the_command_line_gave_them(run_script, argv,
                                                                                  given):
    _, d, r = run_script("""\
        import sys
        import runlog
        data_dir = sys.argv[1]
        lr = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
        steps = 10
        runlog.start(git=False)
        """, *argv)
    assert r["args"] == {"data_dir": "/tmp", "lr": 0.001 if len(argv) > 1 else 0.1, "steps": 10}
    assert r["args_given"] == given
    assert "- Defaults: " in (d / "report.md").read_text()
