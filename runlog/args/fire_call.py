"""Arguments from python-fire (``fire.Fire(main)``): the parameters of the function fire called.

fire parses the command line into the call it makes and keeps the values
nowhere else, so they are read while that call runs (``frames.innermost_locals``):
at ``start()`` inside the function, or at the first metric when ``start()``
came before ``fire.Fire``. What the run was given:

- ``args``: every parameter of the function, defaults included, with the
  value fire passed (already parsed: ``--lr 0.5`` is the float 0.5);
  ``**kwargs`` are recorded by their own names, ``*args`` as a list;
- ``args_given``: the parameters the command line words fire consumed for
  the call name, by flag or by position (read with fire's own keyword parser,
  so as fire read them).

Only the call in progress is read: with ``fire.Fire(Trainer)`` and
``start()`` in ``Trainer.train``, the arguments consumed by ``Trainer()``
were given to a call that has returned: runlog says once that they are not
recorded. fire is
never imported here.
"""

from __future__ import annotations

import sys

from . import frames


def capture():
    """``(args, given, secret_options, missed)`` of the call fire is making, or None.
    ``missed`` says which earlier calls of the chain consumed command-line words, or None."""
    if "fire.core" not in sys.modules:
        return None
    loc = frames.innermost_locals("fire.core", "_CallAndUpdateTrace")
    if loc is None or "kwargs" not in loc or "fn" not in loc:
        return None
    import inspect

    fn, varargs, kwargs = loc["fn"], loc.get("varargs") or (), loc["kwargs"] or {}
    try:
        sig = inspect.signature(fn)
        bound = sig.bind(*varargs, **kwargs)  # fire puts the defaults it used in varargs
    except (TypeError, ValueError):
        return None
    bound.apply_defaults()
    args: dict = {}
    for name, value in bound.arguments.items():
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            args.update(value)
        else:
            args[name] = list(value) if kind is inspect.Parameter.VAR_POSITIONAL else value
    named = set(_given(fn, list(loc.get("consumed_args") or ())))
    given = [k for k in args if k in named]
    missed = _missed(loc.get("component_trace"))
    why = (f"fire: the arguments given to {', '.join(missed)} are not recorded, only those of "
           f"{getattr(fn, '__name__', 'the call')}()") if missed else None
    return args, given, _secret_options(args), why


def _given(fn, consumed: list[str]) -> list[str]:
    """The parameters the words fire consumed for this call name: by flag (``--lr``,
    ``--nofast``, ``-l``, extra ``**kwargs`` flags) or by position, read with fire's own
    keyword parser (so as fire read them); by ``--name`` words if that parser changed."""
    try:
        spec = sys.modules["fire.inspectutils"].GetFullArgSpec(fn)
        named, _, positional = sys.modules["fire.core"]._ParseKeywordArgs(consumed, spec)
    except Exception:
        from .given import given_from_argv

        return given_from_argv([w.lstrip("-").split("=")[0].replace("-", "_") for w in consumed
                                if w.startswith("--")], consumed)
    free = [a for a in spec.args if a not in named]
    given = list(named) + free[:len(positional)]
    if spec.varargs and len(positional) > len(free):
        given.append(spec.varargs)
    return given


def _secret_options(args: dict) -> list[str]:
    """fire takes ``--name``, ``-name``, ``--na-me`` for ``na_me``, and a unique first letter."""
    from ..mask import is_secret

    out: list[str] = []
    for name in args:
        if is_secret(name):
            for n in dict.fromkeys((name, name.replace("_", "-"))):
                out += ["--" + n, "-" + n]
            if sum(1 for other in args if other[:1] == name[:1]) == 1:
                out += ["-" + name[:1], "--" + name[:1]]
    return out


def _missed(trace) -> list[str]:
    """Targets of earlier calls in fire's trace that consumed command-line arguments."""
    out = []
    for element in getattr(trace, "elements", None) or ():
        if getattr(element, "args", None) and getattr(element, "_target", None) is not None \
                and getattr(element, "_action", None) in ("Instantiated class", "Called routine",
                                                          "Called callable"):
            out.append(str(element._target))
    return out
