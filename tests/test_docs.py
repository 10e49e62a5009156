"""The README cannot drift from the command line: every command is shown there, with
an example, and has help text."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from runlog.cli import main, make_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = make_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_command_in_readme_with_example(name):
    assert f"`runlog {name}" in README, f"README does not describe `runlog {name}`"
    assert re.search(rf"^\$ runlog {name}\b", README, re.M), f"no `$ runlog {name}` example"


@pytest.mark.parametrize("name,sub", sorted(subcommands().items()))
def test_command_has_help(name, sub):
    assert sub.description and len(sub.description) > 20
    (action,) = [a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {c.dest: c.help for c in action._choices_actions}
    assert helps.get(name)
    for a in sub._actions:
        if a.option_strings and a.dest != "help":
            assert a.help, f"runlog {name} {a.option_strings[0]} has no help text"


def test_readme_set_up_commands():
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    assert "pip install -e . && python examples/train.py" in blocks[0]
    assert "pip install -e '.[test]' && python -m pytest" in blocks[1]


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_is_in_readme(name):
    sub = subcommands()[name]
    for a in sub._actions:
        if a.option_strings and a.dest != "help":
            assert any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", README)
                       for o in a.option_strings), f"README never mentions runlog {name} " \
                                                   f"{'/'.join(a.option_strings)}"


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_help_prints_usage_and_description(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: runlog {name}")
    words = subcommands()[name].description.split()
    assert " ".join(words[:6]) in " ".join(out.split())  # the description, however wrapped
