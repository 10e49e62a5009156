"""Arguments from jsonargparse (and so LightningCLI): nested values, and where each came from.

jsonargparse's ``ArgumentParser`` subclasses argparse's but parses in its own
``parse_args`` (its ``parse_known_args`` raises), so argparse's hook never
sees it; ``install()`` wraps ``jsonargparse.ArgumentParser.parse_args`` when
the script has imported jsonargparse, and the first top-level parse while
someone listens is reported. A parse before ``start()`` is found as a
Namespace among the caller's variables (``frames.find_namespace``).

What a parse gave (``capture``):

- ``args``: the parsed config as a nested mapping (``--model.layers 4`` is
  ``{"model": {"layers": 4}}``), like Hydra's; a config file's path as typed;
- ``args_given``: the keys set by the command line words the parser read
  (``--lr 0.3``, ``--model.layers=4``, ``--model '{"layers": 4}'`` for the
  keys it sets, ``--model Net`` for every key under ``model``, a positional,
  the subcommand; under a subcommand its keys are ``fit.trainer.max_epochs``),
  and the config option itself (left out of ``args`` when not used);
- ``args_source``, when a config file was given (``--config cfg.yaml``, or a
  file for a dataclass/class option, ``--model model.yaml``): each key that
  file sets comes from it, as typed; the command line words are
  ``"command line"``; later words win, as jsonargparse applies them.

Values from environment variables (``default_env``) and default config
files are recorded but not as given. jsonargparse is never imported here.
"""

from __future__ import annotations

import os
import sys
import threading

from .script_globals import COMMAND_LINE

_local = threading.local()
_listener = None  # called as listener(parser, namespace) for the first top-level parse
_orig_parse_args = None
_cls = None


def is_namespace(obj) -> bool:
    return type(obj).__module__.startswith("jsonargparse") and hasattr(obj, "as_dict")


def _plain(value):
    """jsonargparse's Path objects as typed (``cfg.yaml``, not the absolute path)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if type(value).__module__.startswith("jsonargparse") and hasattr(value, "relative"):
        return str(value.relative)
    return value


def capture(namespace, parser=None, argv: list[str] | None = None):
    """``(args, given, sources)`` of a jsonargparse parse."""
    from ..fmt import flatten
    from ..folder.record import jsonable

    args = _plain(namespace.as_dict())
    if argv is None:
        parsed = getattr(parser, "args", None)  # what parse_args read (sys.argv[1:] or its args=)
        argv = parsed if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed) \
            else sys.argv[1:]
    if parser is None:  # a Namespace without its parser: by --key words
        from .given import given_from_argv

        return args, given_from_argv(list(flatten(jsonable(args))), list(argv)), {}
    _drop_unused_config_options(args, parser)
    flat = flatten(jsonable(args))
    given: list[str] = []
    sources: dict[str, str] = {}
    _walk(parser, list(argv), flat, "", given, sources)
    given = list(dict.fromkeys(given + [k for k, s in sources.items() if s == COMMAND_LINE]))
    if not any(s != COMMAND_LINE for s in sources.values()):
        sources = {}
    return args, given, sources


def _drop_unused_config_options(args: dict, parser, depth: int = 0) -> None:
    """A config file option that was not used (``config: None``) is no argument of the run."""
    for action in getattr(parser, "_actions", []):
        if _kind(action) == "file" and args.get(action.dest, 0) is None:
            del args[action.dest]
        subs = getattr(action, "_name_parser_map", None)
        if isinstance(subs, dict) and depth < 10:
            for name, sub in subs.items():
                if isinstance(args.get(name), dict):
                    _drop_unused_config_options(args[name], sub, depth + 1)


def _under(key: str, flat: dict) -> list[str]:
    """The recorded (flattened) keys a key names: itself, or every key below it."""
    if key in flat:
        return [key]
    return [k for k in flat if k.startswith(key + ".")]


def _set(sources: dict, keys, source: str) -> None:
    for k in keys:
        sources.pop(k, None)  # later words win: the last one is last in the dict
        sources[k] = source


def _file_keys(value: str, prefix: str, flat: dict) -> tuple[list[str], bool]:
    """The recorded keys a config (a file, or a YAML/JSON string) sets, and whether it is a file."""
    is_file = os.path.isfile(value)
    yaml = sys.modules.get("yaml")
    try:
        if is_file:
            with open(value, encoding="utf-8", errors="replace") as f:
                text = f.read(2_000_000)
        else:
            text = value
        loaded = yaml.safe_load(text) if yaml is not None else None  # jsonargparse imports yaml
    except Exception:
        return [], is_file
    if not isinstance(loaded, dict):
        return [], is_file
    from ..fmt import flatten

    keys: list[str] = []
    for k in flatten(loaded):
        keys += _under(prefix + k, flat)
    return list(dict.fromkeys(keys)), is_file


def _kind(action) -> str:
    name = type(action).__name__
    if name == "ActionConfigFile":
        return "file"
    if name == "_ActionConfigLoad":
        return "load"
    return ""


def _walk(parser, argv: list[str], flat: dict, prefix: str, given: list, sources: dict,
          depth: int = 0) -> None:
    from ..folder.record import jsonable

    opts = getattr(parser, "_option_string_actions", {})
    subs = None
    for action in getattr(parser, "_actions", []):
        if action.option_strings:
            continue
        if hasattr(action, "_name_parser_map"):
            subs = action
        else:
            key = prefix + action.dest
            if action.nargs not in ("?", "*", "...") or (
                    key in flat and flat[key] != jsonable(_plain(action.default))):
                _set(sources, _under(key, flat), COMMAND_LINE)
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            break
        if subs is not None and depth < 10 and a in subs._name_parser_map \
                and flat.get(prefix + str(subs.dest)) == a:
            given.append(prefix + str(subs.dest))
            _walk(subs._name_parser_map[a], argv[i:], flat, prefix + a + ".", given, sources,
                  depth + 1)
            return
        if len(a) < 2 or not a.startswith("-"):
            continue
        name, eq, value = a.partition("=")
        action = opts.get(name)
        if action is None:
            continue
        key = prefix + action.dest
        kind = _kind(action)
        if not kind:
            _set(sources, _under(key, flat), COMMAND_LINE)
            continue
        if not eq:
            if i >= len(argv):
                continue
            value, i = argv[i], i + 1
        keys, is_file = _file_keys(value, prefix if kind == "file" else key + ".", flat)
        if kind == "file":
            given.append(key)
        else:  # a file or a mapping for one option (a dataclass): all of it, if not by key
            keys = keys or _under(key, flat)
        _set(sources, keys, value if is_file else COMMAND_LINE)


# ---------------------------------------------------------------- the hook on parse_args


def _parse_args(self, args=None, namespace=None, *rest, **kwargs):
    if getattr(_local, "depth", 0):  # a subcommand's or a nested class's parse, inside one
        return _orig_parse_args(self, args, namespace, *rest, **kwargs)
    from . import argparse_hook

    args = argparse_hook.with_note(self, args)
    _local.depth = 1
    try:
        result = _orig_parse_args(self, args, namespace, *rest, **kwargs)
    finally:
        _local.depth = 0
    listener = _listener
    if listener is not None:
        try:
            listener(self, result)
        except Exception as e:  # recording must never break the script's parse
            from ..console import say

            say(f"could not record arguments ({type(e).__name__}: {e})")
    return result


def install():
    """Wrap ``jsonargparse.ArgumentParser.parse_args`` if the script imported jsonargparse.
    Returns the undo, or None when there is nothing to wrap."""
    global _orig_parse_args, _cls
    cls = getattr(sys.modules.get("jsonargparse"), "ArgumentParser", None)
    if cls is None or _orig_parse_args is not None or not callable(getattr(cls, "parse_args", None)):
        return None
    _cls, _orig_parse_args = cls, cls.parse_args
    cls.parse_args = _parse_args
    return _unwrap


def _unwrap() -> None:
    global _orig_parse_args, _cls
    if _cls is not None and _cls.__dict__.get("parse_args") is _parse_args:
        _cls.parse_args = _orig_parse_args
    _orig_parse_args = _cls = None


def listen(listener) -> None:
    global _listener
    _listener = listener


def unlisten() -> None:
    global _listener
    _listener = None
