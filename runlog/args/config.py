"""Arguments from config objects, click/typer and Hydra."""

from __future__ import annotations

import sys


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
