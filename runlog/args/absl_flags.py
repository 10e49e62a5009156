"""Arguments from absl-py's flags (``flags.DEFINE_float("lr", 0.1, ...)`` and ``app.run(main)``).

absl keeps every flag of the process in one registry, ``flags.FLAGS``: the
script's own, and those absl itself (``logtostderr``, ``verbosity``, …) and
any library defines. What the run was given:

- every flag the script defines — in ``__main__`` (absl names that module by
  ``sys.argv[0]``) or in a module of the project (a file outside
  site-packages and the standard library) — with its value after parsing,
  default or not;
- and any other flag that is ``present`` on the command line
  (``--verbosity=1``): it was given, so it is part of the run.

``args_given`` are the flags ``present`` whose name is on the command line
(``--lr``, ``-lr``, ``--lr=0.5``, ``--nofast``, a short name); a flag that
is present only through a ``--flagfile`` is not given but comes from that
file, in ``args_source`` (written only when a flag file was used).

Read once the flags are parsed — at ``start()`` inside ``main`` or, when
``start()`` came before ``app.run``, at the first metric or at exit. absl is
never imported here: only what the script imported is read.
"""

from __future__ import annotations

import os
import sys

from .script_globals import COMMAND_LINE


def _registry(parsed: bool = True):
    mod = sys.modules.get("absl.flags")
    flags = getattr(mod, "FLAGS", None)
    if flags is None:
        return None
    try:
        return flags if flags.is_parsed() or not parsed else None
    except Exception:
        return None


def _secret(f, is_secret) -> list[str]:
    """Every spelling of a flag that takes a secret value (absl takes -name as well as --name)."""
    if f.boolean or not is_secret(f.name):
        return []
    spellings = [f.name] + ([f.short_name] if f.short_name else [])
    return [d + s for s in spellings for d in ("--", "-")]


def secret_options() -> list[str]:
    """The spellings of every flag defined so far whose value is a secret: known at
    ``start()``, before ``app.run`` parses, so the first lines written mask them."""
    flags = _registry(parsed=False)
    if flags is None:
        return []
    from ..mask import is_secret

    try:
        return [o for defined in flags.flags_by_module_dict().values() for f in defined
                for o in _secret(f, is_secret)]
    except Exception:
        return []


def _is_project(module_name: str, stdlib: str) -> bool:
    """Whether the module that defined a flag is the script or one of the project's."""
    mod = sys.modules.get(module_name)
    if mod is None:  # absl names __main__ by sys.argv[0], a path
        return True
    path = getattr(mod, "__file__", None)
    if not path:
        return False
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not os.path.abspath(path).startswith(stdlib + os.sep)


def _value(value):
    """A flag's value; an ml_collections ConfigDict (``config_flags``) as a mapping."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            got = to_dict()
            if isinstance(got, dict):
                return got
        except Exception:
            pass
    return value


def _on_command_line(flags, argv: list[str]) -> tuple[set[str], list[str]]:
    """The flags named on the command line (by any spelling) and the flag files given."""
    named: set[str] = set()
    files: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            break
        if len(a) < 2 or not a.startswith("-"):
            continue
        name, eq, value = a.lstrip("-").partition("=")
        if name == "flagfile":
            if not eq and i < len(argv):
                value, i = argv[i], i + 1
            files.append(value)
            continue
        for n in (name, name[2:] if name.startswith("no") else None):
            if n and n in flags:
                named.add(flags[n].name)
                break
    return named, files


def capture(argv: list[str] | None = None):
    """``(args, given, sources, secret_options)`` from absl's parsed flags, or None when
    absl is not imported, has not parsed, or the script defines no flags of its own."""
    flags = _registry()
    if flags is None:
        return None
    from ..mask import is_secret

    stdlib = os.path.dirname(os.path.abspath(os.__file__))
    own, others = [], []
    for module, defined in flags.flags_by_module_dict().items():
        project = _is_project(module, stdlib)
        for f in defined:
            if project:
                own.append(f)
            elif f.present:
                others.append(f)
    if not own:
        return None
    argv = list(sys.argv[1:] if argv is None else argv)
    named, files = _on_command_line(flags, argv)
    args: dict = {}
    given: list[str] = []
    sources: dict[str, str] = {}
    secret: list[str] = []
    for f in own + others:
        if f.name in args:
            continue
        args[f.name] = _value(f.value)
        if f.present:
            if f.name in named or not files:
                given.append(f.name)
                sources[f.name] = COMMAND_LINE
            else:
                sources[f.name] = ", ".join(files)
        secret += _secret(f, is_secret)
    for f in own + others:
        _config_file(f, args, given, sources)
    if not any(s != COMMAND_LINE for s in sources.values()):
        sources = {}
    return args, given, sources, secret


def _config_file(f, args: dict, given: list[str], sources: dict) -> None:
    """ml_collections' ``config_flags.DEFINE_config_file("config")``: its ``--config.lr=0.5``
    overrides are flags of their own, already in the config's values (recorded nested, given
    by their flattened names); what the command line did not override is the file's."""
    value = args.get(f.name)
    try:
        filename = getattr(f, "config_filename", None)
    except Exception:
        filename = None
    if not isinstance(value, dict) or not isinstance(filename, str) or not filename:
        return
    from ..fmt import flatten

    for name in [k for k in args if k.startswith(f.name + ".")]:
        del args[name]
    for key in flatten({f.name: value}):
        sources[key] = COMMAND_LINE if key in given else filename
