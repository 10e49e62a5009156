"""Arguments from config objects, click/typer and Hydra; and which library gave them.

Which library gave the script its arguments, each asked in turn (discovery
only; the run records what is found):

- at ``start()`` (``at_start``), for arguments parsed already: Hydra (which
  parses its own flags with argparse), the call python-fire is making (fire
  too parses flags of its own), absl's parsed flags, an argparse or
  jsonargparse Namespace among the caller's variables, a running click/typer
  command;
- later (``later``: at the first metric or at exit, when ``start()`` found
  nothing and no parse was seen since): absl's flags (``app.run`` parsed them
  after a top-level ``start()``), the call fire is making, and last the
  script's simple top-level globals.

The modules that read absl, fire and jsonargparse are loaded only when the
script imported that library: a plain run loads none of them.
"""

from __future__ import annotations

import sys

from . import frames
from .given import namespace_args


class Found:
    """Arguments and what is known of them. ``given`` None: matched against the command
    line (with ``parser``) by the recorder. ``secret``: option strings whose values are
    secrets, when no argparse parser tells them. ``settled``: a later argparse parse does
    not replace them. ``missed``: what could not be recorded, to be said once."""

    __slots__ = ("args", "given", "parser", "sources", "secret", "claim", "settled", "missed")

    def __init__(self, args: dict, given=None, parser=None, *, sources=None, secret=None,
                 claim: bool = False, settled: bool = True, missed: str | None = None):
        self.args, self.given, self.parser, self.sources = args, given, parser, sources or None
        self.secret, self.claim, self.settled, self.missed = secret, claim, settled, missed


def _fire() -> Found | None:
    if "fire.core" not in sys.modules:
        return None
    from . import fire_call

    got = fire_call.capture()
    if got is None:
        return None
    args, given, secret, missed = got
    return Found(args, given, secret=secret, claim=True, missed=missed)


def _absl(argv=None) -> Found | None:
    if "absl.flags" not in sys.modules:
        return None
    from . import absl_flags

    got = absl_flags.capture(argv)
    if got is None:
        return None
    args, given, sources, secret = got
    return Found(args, given, sources=sources, secret=secret, claim=True)


def namespace_found(ns, parser, given=None) -> Found:
    """A parsed Namespace: jsonargparse's nested, with what its words gave; argparse's flat,
    with what came from an ``@file`` or ConfigArgParse's config files and environment
    (``given``: what the parse's words named, when it was seen)."""
    if type(ns).__module__.startswith("jsonargparse"):
        from . import jsonargs

        if jsonargs.is_namespace(ns):
            args, given, sources = jsonargs.capture(ns, parser)
            return Found(args, given, parser, sources=sources, claim=True)
    from .parse_sources import refine

    args = _dataclasses_flat(namespace_args(ns))
    given, sources = refine(parser, sys.argv[1:], given, args)
    return Found(args, given, parser, sources=sources, claim=True)


def _dataclasses_flat(args: dict) -> dict:
    """A dataclass value (simple_parsing's ``add_arguments(Config, dest="config")``, once its
    parse is done) by its fields' dotted names, as its parser's options name them."""
    import dataclasses

    if not any(dataclasses.is_dataclass(v) and not isinstance(v, type) for v in args.values()):
        return args
    from ..fmt import flatten

    out: dict = {}
    for k, v in args.items():
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            out.update(flatten({k: dataclasses.asdict(v)}))
        else:
            out[k] = v
    return out


def _parsed_into_dataclasses(scopes) -> Found | None:
    """The dataclasses a parser filled (transformers' ``HfArgumentParser``:
    ``model_args, training_args = parser.parse_args_into_dataclasses()``, whose Namespace is
    gone): the parser among the caller's variables, and the dataclass instances beside it
    whose fields are all its options; their values, flat as the parse gave them."""
    parser = frames.find_parser(scopes)
    if parser is None:
        return None
    import dataclasses

    dests = {a.dest for a in getattr(parser, "_actions", ())}
    for scope in scopes:
        args: dict = {}
        for value in list(scope.values()):
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                names = [f.name for f in dataclasses.fields(value) if f.init]
                if names and set(names) <= dests:
                    args.update((n, getattr(value, n, None)) for n in names)
        if args:  # not settled: a parse after start() (of a parser built from defaults) wins
            return Found(args, None, parser, claim=True, settled=False)
    return None


def _tyro(scopes, argv=None) -> Found | None:
    """tyro's call under way (``tyro.cli(main)``), or the config object it returned."""
    if "tyro" not in sys.modules:
        return None
    from ..fmt import flatten
    from . import tyro_cli

    args = tyro_cli.call_in_progress() if argv is None else None
    if args is None:
        obj = tyro_cli.config_object(scopes)
        if obj is None:
            return None
        args = config_args(obj)
    else:  # a parameter that is a config object, nested
        args = {k: config_args(v) if tyro_cli.is_config(v) else v for k, v in args.items()}
    from ..folder.record import jsonable

    argv = sys.argv[1:] if argv is None else argv
    return Found(args, tyro_cli.given(list(flatten(jsonable(args))), argv), claim=True)


def secret_options_at_start(parser) -> list[str] | None:
    """Option strings whose values are secrets, known when ``start()`` writes its first
    lines: those of an argparse parser built already, and of the flags absl has defined."""
    from ..mask import secret_options

    opts = secret_options(parser) if parser is not None else None
    if "absl.flags" in sys.modules:
        from . import absl_flags

        more = absl_flags.secret_options()
        if more:
            opts = (opts or []) + more
    return opts


def at_start(scopes) -> Found | None:
    found = from_hydra(scopes)  # before argparse: Hydra parses its own flags with it
    if found is not None:
        return Found(config_args(found[0]), found[1])
    got = _fire() or _absl()  # before argparse: fire parses flags of its own with it
    if got is not None:
        return got
    ns, parser = frames.find_namespace(scopes)
    if ns is not None:
        return namespace_found(ns, parser)
    got = _parsed_into_dataclasses(scopes) or _tyro(scopes)
    if got is not None:
        return got
    found = from_click()
    if found is not None:
        return Found(config_args(found[0]), found[1])
    return None


def later(argv: list[str], path: str | None, cache_root: str | None) -> Found | None:
    got = _absl(argv) or _fire()
    main = sys.modules.get("__main__")
    if got is None and main is not None:
        got = _tyro([vars(main)], argv)
    if got is not None:
        return got
    from . import script_globals

    found = script_globals.capture(argv, path, cache_root=cache_root)
    if found is None:
        return None
    return Found(found[0], found[1], sources=found[2], claim=True, settled=False)


def config_args(obj) -> dict:
    """A config object's dict form: Namespace, mapping, dataclass, pydantic, OmegaConf."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return dict(obj)
    mod = type(obj).__module__ or ""
    if mod.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(obj, resolve=True)
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    for method in ("model_dump", "dict", "to_dict", "_asdict"):
        fn = getattr(obj, method, None)
        if callable(fn):
            try:
                value = fn()
            except TypeError:
                continue
            if isinstance(value, dict):
                return value
    if hasattr(obj, "keys") and hasattr(obj, "__getitem__"):
        return {k: obj[k] for k in obj.keys()}
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    raise TypeError(f"runlog.start(args=...) needs a Namespace, mapping, dataclass or config "
                    f"object, got {type(obj).__name__}")


def from_click() -> tuple[dict, list[str]] | None:
    """Parameters of the running click (or typer) command, with those given on the command line."""
    ctx = None
    for name in ("click.globals", "typer._click.globals"):  # newer typer vendors its own click
        mod = sys.modules.get(name)
        if mod is not None:
            ctx = mod.get_current_context(silent=True)
            if ctx is not None:
                break
    if ctx is None:
        return None
    ParameterSource = sys.modules[type(ctx).__module__].ParameterSource

    args: dict = {}
    given: list[str] = []
    chain = []
    while ctx is not None:
        chain.append(ctx)
        ctx = ctx.parent
    for c in reversed(chain):  # the group's options first, then the command's
        if c.info_name and c.parent is not None:
            args.setdefault("command", c.info_name)
        for name, value in c.params.items():
            args[name] = value
            try:
                if c.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                                    ParameterSource.ENVIRONMENT):
                    given.append(name)
            except Exception:
                pass
    return args, given


def hydra_running() -> bool:
    if "hydra" not in sys.modules or "omegaconf" not in sys.modules:
        return False
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized()


def from_hydra(scopes) -> tuple[object, list[str]] | None:
    """The config of a running @hydra.main function (found among ``scopes``, the
    caller's local variables) and the keys overridden on the command line."""
    if not hydra_running():
        return None
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    cfg = None
    for scope in scopes:
        for value in list(scope.values()):
            if isinstance(value, DictConfig):
                cfg = value
                break
        if cfg is not None:
            break
    if cfg is None:
        return None
    given = [o.lstrip("+~").split("=", 1)[0] for o in HydraConfig.get().overrides.task]
    return cfg, given


def hydra_original_cwd() -> str | None:
    """Where the user started a Hydra app that changed directory into its output folder."""
    if "hydra" not in sys.modules:
        return None
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return HydraConfig.get().runtime.cwd
    except Exception:
        pass
    return None
