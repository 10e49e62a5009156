"""Which arguments were given on the command line, when argparse could not say it itself.

When the script parsed before ``start()``, the parse happened unseen; the
command line is matched against the parser's own options instead (or, without
the parser, against ``--name`` words).
"""

from __future__ import annotations


def namespace_args(ns) -> dict:
    return {k: v for k, v in vars(ns).items() if not k.startswith("_")}


def given_from_argv(keys, argv: list[str], parser=None, values=None) -> list[str]:
    """Which of ``keys`` appear on the command line, by option strings, or as ``key=value``
    words (a nested key by its dotted name: ``model.layers=4``).

    With the parser, its own options are matched: exactly, glued to their value
    (``-b64``, ``--lr=0.1``), or by a unique prefix as argparse allows
    (``--epo``); a subcommand's options are matched after the subcommand; a
    positional is given when it is required or its value (from ``values``) is
    not its default.
    """
    if parser is not None:
        return _given_by_parser(parser, argv, values or {})
    flags = set()
    dotted = []  # key=value words (Hydra's overrides: lr=0.1, +model.layers=4)
    for a in argv:
        if a == "--":
            break
        if a.startswith("--"):
            flags.add(a[2:].split("=", 1)[0].replace("-", "_"))
        elif "=" in a and not a.startswith("-"):
            dotted.append(a.lstrip("+~").split("=", 1)[0])
    keys = list(keys)
    given = [k for k in keys if k.replace("-", "_") in flags]
    return given + [d for d in dict.fromkeys(dotted) if d.split(".", 1)[0] in keys and d not in given]


def _given_by_parser(parser, argv: list[str], values: dict, depth: int = 0) -> list[str]:
    from ..folder.record import jsonable

    opts = getattr(parser, "_option_string_actions", {})
    given: list[str] = []
    subparsers = None
    for action in getattr(parser, "_actions", []):
        if action.option_strings:
            continue
        if hasattr(action, "_name_parser_map"):
            subparsers = action
        elif action.nargs not in ("?", "*", "...") or (
                action.dest in values and values[action.dest] != jsonable(action.default)):
            given.append(action.dest)
    sub_at = None
    for i, a in enumerate(argv):
        if a == "--":
            break
        if subparsers is not None and a in subparsers._name_parser_map and (
                subparsers.dest in (None, "==SUPPRESS==") or values.get(subparsers.dest) == a):
            sub_at = i
            break
        if len(a) < 2 or a[0] not in getattr(parser, "prefix_chars", "-"):
            continue
        name = a.split("=", 1)[0]
        action = opts.get(name)
        if action is None and len(name) > 2 and name[1] == a[0]:  # --epo for --epochs
            if getattr(parser, "allow_abbrev", True):
                found = {opts[o] for o in opts if o.startswith(name)}
                action = found.pop() if len(found) == 1 else None
        elif action is None:
            action = opts.get(a[:2])  # -b64
        if action is not None:
            given.append(action.dest)
    if sub_at is not None and depth < 10:
        if subparsers.dest not in (None, "==SUPPRESS=="):
            given.append(subparsers.dest)
        sub = subparsers._name_parser_map[argv[sub_at]]
        given += _given_by_parser(sub, argv[sub_at + 1:], values, depth + 1)
    return given
