"""Where an argparse parse's values came from when not every word it parsed was typed on
the command line.

- ``fromfile_prefix_chars`` (``python train.py @args.txt``): argparse reads the file's
  lines as words. The options only the file named are that file's (``args.txt``, as
  typed without its prefix), not given; the command line's own are given.
- ConfigArgParse (an ``ArgumentParser`` subclass that adds the values of config files
  and environment variables as words before it parses): what a config file set is that
  file's (as ConfigArgParse names it), what an environment variable set is ``$NAME``'s;
  neither is given. It records them itself (``_source_to_settings``) as it parses.

``refine`` returns the given names and ``args_source`` (every given name as
``"command line"``, as absl's ``--flagfile`` does), or the given names unchanged and
None when no word came from elsewhere.
"""

from __future__ import annotations

import os
import sys

_MAX_DEPTH = 5  # an @file naming another @file, as argparse allows


def refine(parser, argv: list[str], given, values: dict):
    """``(given, sources)`` of a parse of ``argv`` by ``parser``; ``given`` None: matched
    against the command line here when it is needed. A value of ``values`` that a
    secret-named environment variable gave is masked in place."""
    if parser is None:
        return given, None
    elsewhere: dict[str, str] = {}  # dest -> where it came from, when not the command line
    elsewhere.update(_configargparse(parser))
    words = list(argv)
    prefixes = getattr(parser, "fromfile_prefix_chars", None)
    if prefixes and any(w[:1] in prefixes for w in words if w):
        typed = [w for w in words if not (w and w[:1] in prefixes)]
        from .given import given_from_argv

        on_line = set(given_from_argv(list(values), typed, parser, values))
        positional = {a.dest for a in getattr(parser, "_actions", ()) if not a.option_strings}
        for w in words:
            if w and w[:1] in prefixes:
                named = given_from_argv(list(values), _file_words(parser, w, 0), parser, values)
                for dest in named:
                    if dest not in positional and dest not in on_line:
                        elsewhere[dest] = w[1:]
    if not elsewhere:
        return given, None
    from ..mask import MASK, is_secret

    for dest, where in elsewhere.items():  # `--key` read from $OPENAI_API_KEY is a secret too
        if where[:1] == "$" and is_secret(where[1:]) and values.get(dest) not in (None, "", False):
            values[dest] = MASK
    if given is None:
        from .given import given_from_argv

        given = given_from_argv(list(values), words, parser, values)
    given = [g for g in given if g not in elsewhere]
    sources = {k: v for k, v in elsewhere.items() if k in values}
    sources.update((g, "command line") for g in given if g in values)
    return given, sources


def _file_words(parser, word: str, depth: int) -> list[str]:
    """The words argparse reads from ``@file`` (its lines through the parser's own
    ``convert_arg_line_to_args``, a nested ``@file`` expanded); [] when it cannot be read
    (argparse's own parse said so already)."""
    try:
        with open(word[1:], encoding=_encoding()) as f:
            lines = f.read().splitlines()
    except (OSError, ValueError):
        return []
    out: list[str] = []
    for line in lines:
        for w in parser.convert_arg_line_to_args(line):
            if w and w[:1] in parser.fromfile_prefix_chars and depth < _MAX_DEPTH:
                out += _file_words(parser, w, depth + 1)
            else:
                out.append(w)
    return out


def _encoding():
    # argparse reads the file with the filesystem encoding and its error handler (3.12+)
    return sys.getfilesystemencoding() if sys.version_info >= (3, 12) else None


def _configargparse(parser) -> dict[str, str]:
    """ConfigArgParse's record of its last parse: each dest a config file or an
    environment variable set, with where from."""
    cap = getattr(sys.modules.get("configargparse"), "ArgumentParser", None)
    if not isinstance(cap, type) or not isinstance(parser, cap):
        return {}
    out: dict[str, str] = {}
    for key, settings in (getattr(parser, "_source_to_settings", None) or {}).items():
        key = str(key)
        if key.startswith("config_file|"):
            where = key.split("|", 1)[1]
            try:
                rel = os.path.relpath(where)
                where = rel if not rel.startswith("..") else where
            except ValueError:
                pass
        elif key == "environment_variables":
            where = None
        else:  # the command line, the defaults
            continue
        for name, (action, _value) in (settings or {}).items():
            dest = getattr(action, "dest", None)
            if dest:
                out[dest] = where if where is not None else f"${name}"
    return out
