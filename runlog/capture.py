"""What the run was given: arguments, the note; and what it printed.

Arguments are captured three ways, whichever fits how the script is written:

- ``start()`` before ``parse_args()``: ``ArgumentParser.parse_known_args`` is
  wrapped while a run is active, and the first top-level parse is recorded
  (subparser parses happen inside it and are part of it). Which options were
  given is seen by wrapping ``ArgumentParser._get_values``, which argparse
  calls exactly for the actions it met on the command line.
- ``parse_args()`` before ``start()``: the ``Namespace`` is found among the
  local variables of the calling frames (and the parser, if it is there too,
  tells which options were given).
- ``start(args)``: a Namespace, mapping, dataclass or config object.
"""

from __future__ import annotations

import sys
import threading
import time

_local = threading.local()
_listener = None  # called as listener(parser, namespace, given) for the first top-level parse
_stashed_note: str | None = None
_note_taken = False
_patched = False
_orig_parse_known_args = None
_orig_get_values = None


# ---------------------------------------------------------------- the note


def take_note(argv: list[str]) -> tuple[str | None, list[str]]:
    """Remove ``--note TEXT`` / ``--note=TEXT`` from argv (before any ``--``)."""
    note = None
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            out.extend(argv[i:])
            break
        if a == "--note" and i + 1 < len(argv):
            note = argv[i + 1]
            i += 2
            continue
        if a.startswith("--note="):
            note = a[len("--note="):]
            i += 1
            continue
        out.append(a)
        i += 1
    return note, out


def strip_note_from_argv() -> None:
    """Take the note out of sys.argv once, so the script's parser never sees it.

    A parser that defines ``--note`` itself gets it back (see ``_parse_known_args``).
    """
    global _stashed_note, _note_taken
    if _note_taken:
        return
    _note_taken = True
    argv = getattr(sys, "argv", None)
    if not argv or not any(a == "--note" or a.startswith("--note=") for a in argv[1:]):
        return
    note, rest = take_note(argv[1:])
    if note is None:
        return
    _stashed_note = note
    sys.argv[1:] = rest
    _patch_argparse()


def stashed_note() -> str | None:
    return _stashed_note


# ---------------------------------------------------------------- argparse


def _defines_note(parser) -> bool:
    return "--note" in getattr(parser, "_option_string_actions", {})


def _parse_known_args(self, args=None, namespace=None):
    depth = getattr(_local, "depth", 0)
    if depth:
        return _orig_parse_known_args(self, args, namespace)
    if args is None and _stashed_note is not None and _defines_note(self):
        args = sys.argv[1:] + ["--note", _stashed_note]
    if _listener is None:
        return _orig_parse_known_args(self, args, namespace)
    _local.depth = 1
    _local.given = given = []
    try:
        result = _orig_parse_known_args(self, args, namespace)
    finally:
        _local.depth = 0
        _local.given = None
    listener = _listener
    if listener is not None:
        try:
            listener(self, result[0], given)
        except Exception as e:  # recording must never break the script's parse
            _say(f"could not record arguments ({e})")
    return result


def _get_values(self, action, arg_strings):
    given = getattr(_local, "given", None)
    if given is not None and (action.option_strings or arg_strings):
        given.append(action.dest)
    return _orig_get_values(self, action, arg_strings)


class _PatchOnImport:
    """A meta-path finder that patches argparse right after a later ``import argparse``.

    A script that never uses argparse does not pay for importing it; one that
    imports it after ``start()`` is still recorded.
    """

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
            _patch_argparse(module)

        loader.exec_module = exec_and_patch
        return spec


_hook = _PatchOnImport()


def _patch_argparse(argparse=None) -> None:
    global _patched, _orig_parse_known_args, _orig_get_values
    if _patched:
        return
    if argparse is None:
        argparse = sys.modules.get("argparse")
        if argparse is None:
            if _hook not in sys.meta_path:
                sys.meta_path.insert(0, _hook)
            return

    _orig_parse_known_args = argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_known_args = _parse_known_args
    if hasattr(argparse.ArgumentParser, "_get_values"):
        _orig_get_values = argparse.ArgumentParser._get_values
        argparse.ArgumentParser._get_values = _get_values
    _patched = True


def listen(listener) -> None:
    """Record the next top-level argparse parse through ``listener``."""
    global _listener
    _listener = listener
    _patch_argparse()


def unlisten() -> None:
    global _listener
    _listener = None


def namespace_args(ns, given: list[str] | None = None) -> dict:
    return {k: v for k, v in vars(ns).items() if not k.startswith("_")}


def find_in_frames(frame, depth: int = 30):
    """A Namespace (and its parser) among the caller's local variables, if any."""
    argparse = sys.modules.get("argparse")
    if argparse is None:
        return None, None
    ns_type, parser_type = argparse.Namespace, argparse.ArgumentParser
    ns = parser = None
    main = sys.modules.get("__main__")
    scopes = []
    f = frame
    while f is not None and depth > 0:
        scopes.append(f.f_locals)
        f = f.f_back
        depth -= 1
    if main is not None:
        scopes.append(vars(main))
    for scope in scopes:
        found = [(k, v) for k, v in list(scope.items()) if isinstance(v, ns_type)]
        if found:
            found.sort(key=lambda kv: kv[0] not in _ARGS_NAMES)
            ns = found[0][1]
            parser = _parser_in(scopes, parser_type)
            break
    return ns, parser


_ARGS_NAMES = ("args", "opts", "opt", "options", "flags", "cfg", "config", "hparams")


def _parser_in(scopes, parser_type):
    for scope in scopes:
        for value in list(scope.values()):
            if isinstance(value, parser_type):
                return value
    return None


def given_from_argv(keys, argv: list[str], parser=None, values=None) -> list[str]:
    """Which of ``keys`` appear on the command line, by option strings.

    With the parser (the script parsed before ``start()``), its own options are
    matched: exactly, glued to their value (``-b64``, ``--lr=0.1``), or by a
    unique prefix as argparse allows (``--epo``); a subcommand's options are
    matched after the subcommand; a positional is given when it is required or
    its value (from ``values``) is not its default.
    """
    if parser is not None:
        return _given_by_parser(parser, argv, values or {})
    flags = set()
    for a in argv:
        if a == "--":
            break
        if a.startswith("--"):
            flags.add(a[2:].split("=", 1)[0].replace("-", "_"))
    return [k for k in keys if k.replace("-", "_") in flags]


def _given_by_parser(parser, argv: list[str], values: dict, depth: int = 0) -> list[str]:
    from .record import jsonable

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


# ---------------------------------------------------------------- output


class Tee:
    """Passes writes through to the real stream and logs whole lines to run.log.

    A progress bar redrawn with ``\\r`` keeps only its latest state in the
    buffer, so the log gets its final state once, not every redraw.
    """

    def __init__(self, stream, sink, tag: str):
        self._stream = stream
        self._sink = sink
        self._tag = tag
        self._buf = ""
        self._lock = threading.Lock()

    def write(self, s):
        n = self._stream.write(s)
        if s:
            try:
                if not _from_logged_record(sys._getframe(1)):
                    self._log(s if isinstance(s, str) else str(s))
            except Exception:
                pass
        return n

    def _log(self, s: str) -> None:
        with self._lock:
            buf = self._buf + s
            if "\n" in buf:
                *lines, buf = buf.split("\n")
                now = time.time()
                for line in lines:
                    self._sink.line(self._tag, _last_state(line), now)
            if "\r" in buf:
                # keep a final "\r": the next write redraws the line, it does not extend it
                buf = _last_state(buf) + ("\r" if buf.endswith("\r") else "")
            self._buf = buf

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        return self._stream.flush()

    def drain(self) -> None:
        """Log a last unfinished line (a bar never ended with a newline)."""
        with self._lock:
            text = _last_state(self._buf)
            if text.strip():
                self._sink.line(self._tag, text)
            self._buf = ""

    def __getattr__(self, name):
        return getattr(self._stream, name)


_ANSI = None


def _last_state(line: str) -> str:
    """The text a terminal would show after carriage returns redraw a line.

    Cursor movements and colours (nested progress bars, coloured loggers) are
    dropped: the log is for reading and grepping.
    """
    global _ANSI
    if "\x1b" in line:
        if _ANSI is None:
            import re

            _ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
        line = _ANSI.sub("", line)
    if "\r" not in line:
        return line
    parts = line.split("\r")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()  # "text\r": the cursor went back, the text stays
    return parts[-1] if parts[-1].strip() else ""


def _from_logged_record(frame) -> bool:
    """Whether this write is a logging.StreamHandler printing a record that runlog's
    own handler on the root logger has already written to run.log."""
    if frame.f_code.co_name != "emit" or "record" not in frame.f_locals:
        return False
    logging = sys.modules.get("logging")
    if logging is None or not isinstance(frame.f_locals.get("self"), logging.StreamHandler):
        return False
    record = frame.f_locals["record"]
    logger = logging.getLogger(record.name) if record.name != "root" else logging.root
    while logger is not None:
        if logger is logging.root:
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def _say(message: str) -> None:
    from .logsetup import _say as say

    say(message)


# ---------------------------------------------------------------- other CLIs


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


def from_hydra(frame, depth: int = 30) -> tuple[object, list[str]] | None:
    """The config of a running @hydra.main function, and the keys overridden on the command line."""
    if "hydra" not in sys.modules or "omegaconf" not in sys.modules:
        return None
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    if not HydraConfig.initialized():
        return None

    cfg = None
    f = frame
    while f is not None and depth > 0 and cfg is None:
        for value in list(f.f_locals.values()):
            if isinstance(value, DictConfig):
                cfg = value
                break
        f = f.f_back
        depth -= 1
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
