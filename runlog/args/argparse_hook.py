"""The wrapped ``ArgumentParser`` methods that see a parse happen.

- ``parse_known_args`` (which ``parse_args`` calls) and ``parse_known_intermixed_args``
  (which ``parse_intermixed_args`` calls): the first top-level parse while someone
  listens is reported to the listener; subparser parses, and the two passes of an
  intermixed parse before CPython 3.12.8/3.13.1 (later ones make one, without
  ``parse_known_args``), happen inside it and are part of it. A parser that defines
  ``--note`` itself gets back the note runlog took out of argv.
- ``_get_values``, which argparse calls exactly for the actions it met on the
  command line: which options were given.
- ``error``, argparse's usage error (``unrecognized arguments`` comes after the parse,
  from ``parse_args``; a script's own check may call it): ``parsing()`` names its parser.

The wrappers are installed through ``patches`` (``install()`` returns the undo)
and only when argparse is imported; a later ``import argparse`` is patched by a
one-shot meta-path finder, so a script that never uses argparse does not pay
for importing it.
"""

from __future__ import annotations

import sys
import threading

_local = threading.local()
_listener = None  # called as listener(parser, namespace, given) for the first top-level parse
_note: str | None = None  # handed back to a parser that defines --note
_orig: dict = {}  # the ArgumentParser methods wrapped, by name


def _defines_note(parser) -> bool:
    return "--note" in getattr(parser, "_option_string_actions", {})


# libraries that parse flags of their own with argparse (fire's --verbose, --trace):
# their parse is not the script's arguments
_FOR_THEMSELVES = ("fire",)


def with_note(parser, args):
    """The words a top-level parse of the command line reads: when the parser defines
    ``--note`` itself, the note runlog took out of argv goes back in, in front and as one
    word (``--note=TEXT``: a subcommand's words stay its own, a note may start with -)."""
    if args is None and _note is not None and _defines_note(parser):
        return [f"--note={_note}"] + sys.argv[1:]
    return args


def _subparser_note(parser, args):
    """Inside a parse of the command line whose top-level parser does not define ``--note``:
    the first subcommand's parser that does gets the note back."""
    if getattr(_local, "note_pending", False) and parser is not _local.parser \
            and _defines_note(parser):
        _local.note_pending = False
        return [f"--note={_note}"] + list(args or ())
    return args


def _for_itself(parser) -> bool:
    """A library's parse of its own flags; or ConfigArgParse's parse, with a throwaway
    plain parser, of which config file options the command line gives (its own parse,
    with its own parser, is the script's)."""
    cap = getattr(sys.modules.get("configargparse"), "ArgumentParser", None)
    mine = isinstance(cap, type) and not isinstance(parser, cap)
    if not mine and not any(m in sys.modules for m in _FOR_THEMSELVES):
        return False
    from .frames import parse_called_by

    return any(parse_called_by(m) for m in _FOR_THEMSELVES) or (mine and parse_called_by("configargparse"))


def _parse_known_args(self, args=None, namespace=None):
    return _top_level(_orig["parse_known_args"], self, args, namespace)


def _parse_known_intermixed_args(self, args=None, namespace=None):
    return _top_level(_orig["parse_known_intermixed_args"], self, args, namespace)


def _top_level(parse, self, args, namespace):
    global _follow
    if getattr(_local, "parser", None) is not None:  # a subparser or a pass, inside a parse
        return parse(self, _subparser_note(self, args), namespace)
    words = None if args is None else list(args)
    _local.note_pending = args is None and _note is not None and not _defines_note(self)
    args = with_note(self, args)
    listener = _listener
    follow = _follow if listener is None and _continues(words) else None
    if (listener is not None or follow is not None) and _for_itself(self):
        listener = follow = None
    _local.parser = self
    _local.following = self if follow is not None else None
    _local.given = given = [] if listener is not None or follow is not None else None
    try:
        result = parse(self, args, namespace)
    finally:
        _local.parser = _local.following = None
        _local.given = None
        _local.note_pending = False
    if given is None:
        return result
    try:
        if listener is not None and _listener is listener:
            listener(self, result[0], given)
            if _follows and words is None:  # the command line: what parses it next may add
                _follow = {"listener": listener, "values": dict(vars(result[0])),
                           "given": list(given), "left": list(result[1]), "parsers": {self: None}}
        elif follow is not None and _follow is follow:
            merged, given_all = _follow_up(follow, self, words, vars(result[0]), given, result[1])
            follow["listener"](self, _namespace(merged), given_all, more=True)
    except Exception as e:  # recording must never break the script's parse
        from ..console import say

        say(f"could not record arguments ({type(e).__name__}: {e})")
    return result


# After the first parse of the command line, two later parses add to what it recorded:
# - of the words it left (a config pre-parser, as in timm: ``cfg, rest =
#   pre.parse_known_args(); args = parser.parse_args(rest)``), or of the whole command line
#   by another parser: its values and what it was given join the earlier ones;
# - the same parser parsing the same words again (``parser.set_defaults(**config)`` from a
#   config file, then ``args = parser.parse_args()``): its values are the run's now.
_follow = None  # {"listener", "values", "given", "left": words left, "parsers": {parser: words}}
_follows = False  # the listener takes those later parses (``listen(..., follow=True)``)


def _follow_up(follow, parser, words, new, given, left):
    """The values and given so far with this parse's."""
    again = parser in follow["parsers"] and follow["parsers"][parser] == words
    values = follow["values"]
    merged = {**values, **new} if again else \
        {**values, **{k: v for k, v in new.items() if k not in values or k in given}}
    given_all = follow["given"] + [g for g in given if g not in follow["given"]]
    follow.update(values=merged, given=given_all)
    if not again:
        follow["left"] = list(left)
        follow["parsers"][parser] = words
    return merged, given_all


def _continues(words) -> bool:
    """Whether a parse reads what the first parse of the command line did, or words it left;
    a parser it has seen parsing the same words again is told apart by ``_follow_up``."""
    follow = _follow
    if follow is None:
        return False
    if words is None or words in follow["parsers"].values():
        return True
    left = iter(follow["left"])
    return bool(words) and all(any(w == x for x in left) for w in words)  # in order, from those


def _namespace(values: dict):
    import argparse

    return argparse.Namespace(**values)


def _get_values(self, action, arg_strings):
    given = getattr(_local, "given", None)
    if given is not None and (action.option_strings or arg_strings):
        given.append(action.dest)
    return _orig["_get_values"](self, action, arg_strings)


def _error(self, message):
    _local.erroring = self
    try:
        return _orig["error"](self, message)
    finally:
        _local.erroring = None


def parsing():
    """The parser whose top-level parse is under way in this thread (its --help or
    usage error is exiting), or whose usage error is; None otherwise."""
    parser = getattr(_local, "parser", None)
    return parser if parser is not None else getattr(_local, "erroring", None)


class _PatchOnImport:
    """A meta-path finder that patches argparse right after a later ``import argparse``."""

    def find_spec(self, name, path=None, target=None):
        if name != "argparse":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _wrap(module)

        loader.exec_module = exec_and_patch
        return spec


_finder = _PatchOnImport()


_WRAPPERS = {"parse_known_args": _parse_known_args,
             "parse_known_intermixed_args": _parse_known_intermixed_args,
             "_get_values": _get_values, "error": _error}


def _wrap(argparse) -> None:
    if _orig:
        return
    cls = argparse.ArgumentParser
    for name, wrapper in _WRAPPERS.items():
        if hasattr(cls, name):
            _orig[name] = getattr(cls, name)
            setattr(cls, name, wrapper)


def _unwrap() -> None:
    unfollow()
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    argparse = sys.modules.get("argparse")
    if argparse is not None and _orig:
        cls = argparse.ArgumentParser
        for name, original in _orig.items():
            if cls.__dict__.get(name) is _WRAPPERS[name]:  # not replaced by someone since
                setattr(cls, name, original)
    _orig.clear()


def install():
    """Wrap argparse now, or when it is imported. Returns the undo."""
    argparse = sys.modules.get("argparse")
    if argparse is None:
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
    else:
        _wrap(argparse)
    return _unwrap


def installed() -> bool:
    return bool(_orig) or _finder in sys.meta_path


def hand_back_note(note: str) -> None:
    """A parser that defines ``--note`` gets this note back (argv no longer has it)."""
    global _note
    _note = note
    from .. import patches

    patches.process.apply("argparse", install)


def listen(listener, follow: bool = False) -> None:
    """Report the next top-level argparse parse to ``listener`` (argparse must be installed);
    ``follow``: and, after a parse that left words of the command line, the parse of those
    (``listener(..., more=True)``, with the values so far)."""
    global _listener, _follows, _follow
    _listener, _follows, _follow = listener, follow, None


def unlisten() -> None:
    global _listener
    _listener = None


def followed(parser) -> bool:
    """Whether ``parser``'s parse is one that adds to the first parse of the command line
    (under way, or done: its usage error comes after it, from ``parse_args``)."""
    follow = _follow
    return follow is not None and (getattr(_local, "following", None) is parser
                                   or parser in follow["parsers"])


def unfollow() -> None:
    global _follow, _follows
    _follow, _follows = None, False
