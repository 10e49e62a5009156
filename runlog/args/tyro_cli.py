"""Arguments from tyro (``tyro.cli(Config)``, ``tyro.cli(main)``), which parses the command
line with a parser of its own, not argparse, and keeps the values nowhere but in what it
returns or the call it makes:

- ``tyro.cli(main)`` with ``start()`` inside ``main``: the parameters of the call tyro is
  making, read from its frame (defaults included);
- ``cfg = tyro.cli(Config)``: the config object among the caller's variables at
  ``start()`` — or among ``__main__``'s globals at the first metric or at exit (``start()``
  came first, or under ``runlog run``) — an instance of a dataclass, pydantic model or
  attrs class of the script or the project, not of a library; an args-like name first.

Given: the (flattened) names the command line's ``--name`` words name, as tyro spells them
(``--num-epochs`` for ``num_epochs``, ``--opt.beta`` for a nested field, ``--no-fast``).
tyro is never imported here.
"""

from __future__ import annotations

import sys

_NAMES = ("cfg", "config", "args", "conf", "opts", "options", "hparams", "params")
MAX_DEPTH = 60


def in_use() -> bool:
    return "tyro" in sys.modules


def call_in_progress() -> dict | None:
    """The parameters of the function tyro is calling, if ``start()`` runs inside it."""
    f = sys._getframe(1)
    for _ in range(MAX_DEPTH):
        if f is None or f.f_back is None:
            return None
        name = str(f.f_globals.get("__name__", ""))
        caller = str(f.f_back.f_globals.get("__name__", ""))
        if not (name == "runlog" or name.startswith("runlog.")):
            if caller == "tyro" or caller.startswith("tyro."):
                code = f.f_code
                n = code.co_argcount + code.co_kwonlyargcount
                return {k: f.f_locals[k] for k in code.co_varnames[:n] if k in f.f_locals}
        f = f.f_back
    return None


def config_object(scopes):
    """The config object tyro returned, among ``scopes`` (the innermost first), or None."""
    for scope in scopes:
        found = [(k, v) for k, v in list(scope.items()) if not k.startswith("_") and is_config(v)]
        if found:
            found.sort(key=lambda kv: kv[0] not in _NAMES)
            return found[0][1]
    return None


def is_config(value) -> bool:
    if isinstance(value, type):
        return False
    cls = type(value)
    if not (hasattr(cls, "__dataclass_fields__") or hasattr(cls, "__attrs_attrs__")
            or hasattr(cls, "model_fields")):
        return False
    mod = sys.modules.get(cls.__module__)
    if cls.__module__ == "__main__" or mod is None:
        return True
    path = str(getattr(mod, "__file__", "") or "")
    return bool(path) and not any(p in path for p in ("site-packages", "dist-packages")) \
        and not path.startswith(sys.base_prefix)


def given(flat_keys, argv: list[str]) -> list[str]:
    """The keys the command line's ``--name`` words name, in the keys' order."""
    named = set()
    for w in argv:
        if w == "--":
            break
        if w.startswith("--") and len(w) > 2:
            name = w[2:].split("=", 1)[0].replace("-", "_")
            named.add(name)
            if name.startswith("no_"):
                named.add(name[3:])
            named.add(name.replace(".no_", "."))
    return [k for k in flat_keys if k.replace("-", "_") in named]
