"""args/argparse_hook.py: the wrapped ArgumentParser methods that see a parse happen."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap

import pytest

from runlog.args import argparse_hook

WRAPPED = ("parse_known_args", "parse_known_intermixed_args", "_get_values", "error")


def methods() -> dict:
    return {k: argparse.ArgumentParser.__dict__[k] for k in WRAPPED}


@pytest.fixture
def hooked():
    assert not argparse_hook.installed(), "the test process must start unpatched"
    before = methods()
    undo = argparse_hook.install()
    yield
    argparse_hook.unlisten()
    undo()
    assert methods() == before


class Listener:
    """Hears one parse, as a run does: it stops listening when it hears one."""

    def __init__(self):
        self.heard = []
        argparse_hook.listen(self)

    def __call__(self, parser, namespace, given):
        argparse_hook.unlisten()
        self.heard.append((parser, vars(namespace), sorted(given)))


def train_parser(seen=None) -> argparse.ArgumentParser:
    def noting(text):  # a type= that looks at what is being parsed
        if seen is not None:
            seen.append(argparse_hook.parsing())
        return text

    p = argparse.ArgumentParser(prog="train")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--tag", type=noting, default="t")
    p.add_argument("--flag", action="store_true")
    return p


def test_install_and_undo_restore_the_methods_exactly():
    assert not argparse_hook.installed()
    before = methods()
    undo = argparse_hook.install()
    try:
        assert all(methods()[k] is not before[k] for k in WRAPPED)
        argparse_hook.install()  # a second install wraps nothing twice: one undo is enough
        assert argparse.ArgumentParser.parse_known_args is argparse_hook._parse_known_args
    finally:
        undo()
    assert all(methods()[k] is before[k] for k in WRAPPED)
    assert not argparse_hook.installed()
    undo()  # twice: nothing more to undo
    assert all(methods()[k] is before[k] for k in WRAPPED)


def test_undo_keeps_a_replacement_made_after_it():
    before = methods()
    undo = argparse_hook.install()

    def theirs(self, args=None, namespace=None):
        return before["parse_known_args"](self, args, namespace)

    argparse.ArgumentParser.parse_known_args = theirs
    try:
        undo()
        assert argparse.ArgumentParser.__dict__["parse_known_args"] is theirs
        assert argparse.ArgumentParser.__dict__["_get_values"] is before["_get_values"]
    finally:
        argparse.ArgumentParser.parse_known_args = before["parse_known_args"]


def test_listen_hears_the_first_parse_and_what_was_given(hooked):
    ear = Listener()
    p = train_parser()
    ns = p.parse_args(["--lr", "0.2", "--flag"])
    p.parse_args(["--epochs", "9"])  # a second parse: not the run's arguments
    assert ear.heard == [(p, vars(ns), ["flag", "lr"])]


def test_a_subparser_parse_is_part_of_the_top_level_one(hooked):
    ear = Listener()
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    sub = p.add_subparsers(dest="cmd")
    train = sub.add_parser("train")
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("data")
    p.parse_args(["--seed", "1", "train", "--epochs", "5", "d.csv"])
    ((parser, values, given),) = ear.heard
    assert parser is p and values == {"seed": 1, "cmd": "train", "epochs": 5, "data": "d.csv"}
    assert {"seed", "cmd", "epochs", "data"} <= set(given)


def test_parsing_is_the_parser_during_a_parse_and_none_after(hooked):
    seen = []
    p = train_parser(seen)
    assert argparse_hook.parsing() is None
    p.parse_args(["--tag", "x"])
    assert seen == [p] and argparse_hook.parsing() is None


def test_a_usage_error_is_heard_by_nobody_and_leaves_no_parse(hooked, capsys):
    ear = Listener()
    p = train_parser()
    with pytest.raises(SystemExit):
        p.parse_args(["--lr", "not a number"])
    assert ear.heard == [] and argparse_hook.parsing() is None
    p.parse_args(["--epochs", "4"])
    assert [g for _, _, g in ear.heard] == [["epochs"]]


def test_a_listener_that_fails_never_breaks_the_parse(hooked, capfd):
    def broken(parser, namespace, given):
        argparse_hook.unlisten()
        raise RuntimeError("boom")

    argparse_hook.listen(broken)
    assert train_parser().parse_args(["--lr", "2"]).lr == 2
    assert "runlog: could not record arguments (RuntimeError: boom)" in capfd.readouterr().err


def run_fresh(code: str) -> str:
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_argparse_imported_later_is_patched_by_the_meta_path_finder():
    out = run_fresh("""\
        import sys
        from runlog.args import argparse_hook as h
        assert "argparse" not in sys.modules, "argparse was imported before the test"
        undo = h.install()
        assert h.installed() and h._finder in sys.meta_path
        import argparse
        assert argparse.ArgumentParser.parse_known_args is h._parse_known_args
        assert h._finder not in sys.meta_path  # one shot
        heard = []
        h.listen(lambda p, ns, given: (h.unlisten(), heard.append(sorted(given))))
        p = argparse.ArgumentParser()
        p.add_argument("--lr", default=1)
        p.add_argument("--epochs", default=2)
        p.parse_args(["--lr", "3"])
        undo()
        assert "parse_known_args" not in vars(argparse.ArgumentParser) or \\
            argparse.ArgumentParser.parse_known_args is not h._parse_known_args
        print(heard)
        """)
    assert out == "[['lr']]\n"


def test_undo_before_argparse_is_imported_removes_the_finder():
    out = run_fresh("""\
        import sys
        from runlog.args import argparse_hook as h
        undo = h.install()
        undo()
        assert not h.installed() and h._finder not in sys.meta_path
        import argparse
        print(argparse.ArgumentParser.parse_known_args.__module__)
        """)
    assert out == "argparse\n"


def test_a_parser_that_defines_note_gets_the_note_back():
    out = run_fresh("""\
        import sys, argparse
        from runlog.args import note
        sys.argv = ["s.py", "--note", "why", "--lr", "2"]
        note.strip_from_argv()
        mine = argparse.ArgumentParser()
        mine.add_argument("--note")
        mine.add_argument("--lr")
        other = argparse.ArgumentParser()
        other.add_argument("--lr")
        print(sys.argv[1:], vars(mine.parse_args()), vars(other.parse_args()))
        """)
    assert out == "['--lr', '2'] {'note': 'why', 'lr': '2'} {'lr': '2'}\n"
