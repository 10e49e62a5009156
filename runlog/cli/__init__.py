"""The ``runlog`` command: argparse subcommands, each a small ``_add_x`` + ``_cmd_x``.

``_cmd_x`` turns the parsed namespace into plain keyword arguments for a
command function that never sees argparse. Known errors print one line and
exit 1; anything else is a bug and shows its traceback.

Here: ``main``, the parser's frame, and ``runlog run`` (its parser and the quick
reading of its plain command lines, the start-up of every sweep trial); the other
commands' parsers are in ``cli/parser.py``, loaded only when one is parsed.
"""

from __future__ import annotations

import os
import sys

from .common import CliError, forget_warnings

TYPE_CHECKING = False  # typing itself costs `runlog run` 2 ms of start-up
if TYPE_CHECKING:
    import argparse

PROG = "runlog"
COMMANDS = ("tail", "ls", "show", "report", "note", "diff", "reproduce", "run", "sweep", "journal",
            "plot", "sync")  # in the order --help lists them


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="record any command, in any language",
                       description="Run COMMAND as a recorded run: its output passes through and "
                                   "into run.log, JSON lines like {\"metric\": \"acc\", "
                                   "\"value\": 0.91} become metrics, and so do plain ones like "
                                   "'score: 0.97' or a progress bar's loss=0.31 (README: Metrics "
                                   "from plain output); its exit code is returned. Put the "
                                   "command after --.")
    p.add_argument("--note", help="why this run exists")
    p.add_argument("--name", help="a word for the run id")
    p.add_argument("--tag", action="append", default=[], metavar="T", help="a tag (repeatable)")
    p.add_argument("--no-git", action="store_true", help="do not record the code state")
    p.add_argument("--metric-regex", action="append", default=[], metavar="REGEX",
                   help="read metrics from output lines with this regex instead of the built-in "
                        "rule: groups (?P<name>...) and (?P<value>...), or NAME=REGEX with a "
                        "(?P<value>...) or first group (repeatable)")
    p.add_argument("--no-text-metrics", action="store_true",
                   help="take metrics only from JSON metric lines, not from plain output "
                        "such as 'loss: 0.31' or a progress bar's loss=0.31")
    p.add_argument("--resume", metavar="ID",
                   help="continue run ID (id, prefix or -1) as a new segment of its record "
                        "instead of making a new run (also RUNLOG_RESUME=ID)")
    p.add_argument("cmd", nargs="...", metavar="-- COMMAND...")
    p.set_defaults(func=_cmd_run)


def _cmd_run(a) -> int:
    from .runcmd import run_command

    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    return run_command(a.dir, cmd, note=a.note, name=a.name, tags=a.tag, git=not a.no_git,
                       text_metrics=not a.no_text_metrics, metric_regex=a.metric_regex,
                       resume=a.resume)


def make_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` just the one command's (a command's start-up
    does not pay for building eleven subparsers: `runlog run` is on a sweep's every trial)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog=PROG, description="Follow, list, show, compare and annotate recorded runs.")
    parser.add_argument("--dir", metavar="DIR",
                        help="the log directory (default: $RUNLOG_DIR, else ./logs)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    if only == "run":
        _add_run(sub)
        return parser
    from .parser import BUILDERS

    for name in COMMANDS:
        if only is None or name == only:
            (_add_run if name == "run" else BUILDERS[name])(sub)
    return parser


def _command_word(argv: list[str]) -> str | None:
    """The command a command line names, when it is plainly one (else None: the full parser
    says what is wrong, or prints the help)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--dir":
            i += 2
            continue
        if a.startswith("--dir="):
            i += 1
            continue
        if a.startswith("-"):
            return None
        return a if a in COMMANDS else None
    return None


def _version() -> str:
    from .. import __version__

    return __version__


class _Args:
    """The parsed words of a plain ``runlog run`` command line (see ``_quick_run``)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


_RUN_VALUES = {"--note": "note", "--name": "name", "--tag": "tag", "--metric-regex": "metric_regex",
               "--resume": "resume"}
_RUN_FLAGS = {"--no-git": "no_git", "--no-text-metrics": "no_text_metrics"}


def _quick_run(argv: list[str]):
    """``[--dir DIR] run [OPTIONS] -- COMMAND...`` in its plain spellings, read without
    argparse (whose import, formatter and locale lookups are a good part of a sweep
    trial's fixed cost). Anything else — help, an abbreviation, a value that looks like
    an option, no ``--`` — returns None and goes to the real parser."""
    a = _Args(dir=None, note=None, name=None, tag=[], metric_regex=[], resume=None, no_git=False,
              no_text_metrics=False, cmd=None, func=_cmd_run)
    words = list(argv)
    if words[:1] == ["--dir"] and len(words) > 1 and not words[1].startswith("-"):
        a.dir, words = words[1], words[2:]
    if words[:1] != ["run"]:
        return None
    i = 1
    while i < len(words):
        w = words[i]
        if w == "--":
            a.cmd = words[i:]
            return a
        key, eq, value = w.partition("=")
        if key in _RUN_FLAGS and not eq:
            setattr(a, _RUN_FLAGS[key], True)
            i += 1
            continue
        if key not in _RUN_VALUES:
            return None
        if not eq:
            if i + 1 >= len(words) or words[i + 1].startswith("-"):
                return None
            value, i = words[i + 1], i + 1
        name = _RUN_VALUES[key]
        if isinstance(getattr(a, name), list):
            getattr(a, name).append(value)
        else:
            setattr(a, name, value)
        i += 1
    return None


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = _quick_run(words)
    if args is None:
        args = make_parser(_command_word(words)).parse_args(argv)
    if args.dir is None:
        args.dir = os.environ.get("RUNLOG_DIR") or "logs"
    forget_warnings()  # each command says once what it skipped (main() may run many times)
    try:
        return args.func(args) or 0
    except CliError as e:
        sys.stderr.write(f"{PROG}: error: {e}\n")
        return e.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _quiet_pipe()
        return 0
    except OSError as e:  # a read-only, unreadable or vanished place: one line, not a traceback
        where = f": {e.filename}" if e.filename else ""
        sys.stderr.write(f"{PROG}: error: {e.strerror or e}{where}\n")
        return 1


def _quiet_pipe() -> None:
    # the reader went away (`| head`): stop quietly, and keep Python from
    # complaining when it flushes stdout at exit
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def entry() -> None:
    sys.exit(main())
