"""Every look at the caller's stack frames, in one place. A last resort, and why each is needed:

- ``caller_scopes()``: a script that parsed its arguments *before*
  ``start()`` (or runs under Hydra) handed them to nobody; the Namespace (and
  its parser) or the DictConfig is found among the local variables of the
  frames above the first frame outside runlog, then ``__main__``. Supported
  call shapes: ``start()`` called from the script's top level, from a
  ``main()`` (or any function up to 30 frames deep) that holds ``args``, or
  from a Hydra task function. No fixed depth is assumed: runlog's own frames
  are skipped by module name.
- ``innermost_locals(module, function)``: python-fire calls the script's
  function with the values it parsed from the command line and keeps them
  nowhere else; they are the locals (``fn``, ``varargs``, ``kwargs``) of its
  ``fire.core._CallAndUpdateTrace`` frame while that call runs. Supported
  call shapes: ``start()`` (or the first metric) called from the function
  fire called, up to 30 frames deeper; found by module and function name,
  never by depth.
- ``parse_called_by(module)``: a library that parses its own flags with
  argparse (fire's ``--verbose``, ``--trace``) is not the script parsing its
  arguments. The caller of the parse is the first frame outside runlog and
  ``argparse``.
- ``written_by_log_handler()``: a ``logging.StreamHandler`` of the script's
  that prints a record on the captured stderr; runlog's own handler on the
  root logger already wrote that record to run.log, so the echo is not
  logged twice. Looked at only when the script has handlers of its own.
- ``in_reimported_main()``: whether ``start()`` is called by the script's
  top level while multiprocessing's spawned worker runs it again as
  ``__mp_main__``. Supported call shape: ``runlog.start()`` at the script's
  top level (the first frame outside runlog is a ``<module>`` frame of
  ``__mp_main__``); a call from a function (a worker's own choice) is not it.
- ``main_module_code()``: the code object of the script's ``<module>`` frame,
  the outermost frame of the main thread, so that (Python 3.12+) a
  ``raise SystemExit(n)`` leaving it is seen.
"""

from __future__ import annotations

import os
import sys

MAX_DEPTH = 30
_ARGS_NAMES = ("args", "opts", "opt", "options", "flags", "cfg", "config", "hparams")


def _is_runlog(module: str) -> bool:
    return module == "runlog" or module.startswith("runlog.")


def _first_outside_runlog():
    f = sys._getframe(1)
    while f is not None and _is_runlog(str(f.f_globals.get("__name__", ""))):
        f = f.f_back
    return f


def in_reimported_main() -> bool:
    f = _first_outside_runlog()
    return (f is not None and f.f_code.co_name == "<module>"
            and f.f_globals.get("__name__") == "__mp_main__")


def caller_scopes(depth: int = MAX_DEPTH) -> list[dict]:
    """The local variables of the frames that called into runlog, innermost first,
    then ``__main__``'s globals."""
    scopes = []
    f = _first_outside_runlog()
    while f is not None and depth > 0:
        scopes.append(f.f_locals)
        f = f.f_back
        depth -= 1
    main = sys.modules.get("__main__")
    if main is not None:
        scopes.append(vars(main))
    return scopes


def innermost_locals(module: str, function: str, depth: int = MAX_DEPTH) -> dict | None:
    """The local variables of the innermost frame running ``function`` of ``module``
    among the frames that called into runlog, or None."""
    f = _first_outside_runlog()
    while f is not None and depth > 0:
        if f.f_code.co_name == function and f.f_globals.get("__name__") == module:
            return f.f_locals
        f = f.f_back
        depth -= 1
    return None


def parse_called_by(module: str) -> bool:
    """Whether the argparse parse under way was called by ``module`` (or a submodule)."""
    f = _first_outside_runlog()
    while f is not None and f.f_globals.get("__name__") == "argparse":
        f = f.f_back
    name = str(f.f_globals.get("__name__", "")) if f is not None else ""
    return name == module or name.startswith(module + ".")


def find_namespace(scopes):
    """A Namespace (and its parser) among the scopes, if any."""
    argparse = sys.modules.get("argparse")
    if argparse is None:
        return None, None
    ns_type, parser_type = argparse.Namespace, argparse.ArgumentParser
    for scope in scopes:
        found = [(k, v) for k, v in list(scope.items()) if isinstance(v, ns_type)]
        if found:
            # an args-like name first; of two (cfg and args), the fuller: a pre-parser's is smaller
            found.sort(key=lambda kv: (kv[0] not in _ARGS_NAMES, -len(vars(kv[1]))))
            ns = found[0][1]
            return ns, _parser_in(scopes, parser_type, set(vars(ns)))
    return None, None


def find_parser(scopes):
    """An ArgumentParser among the scopes (built, perhaps not parsed yet), or None."""
    argparse = sys.modules.get("argparse")
    return _parser_in(scopes, argparse.ArgumentParser) if argparse is not None else None


def _parser_in(scopes, parser_type, names=None):
    """The first parser in the scopes; with ``names`` (a Namespace's), the one that knows most
    of them (a config pre-parser beside the full parser is not the one that parsed it)."""
    best, best_n = None, -1
    for scope in scopes:
        for value in list(scope.values()):
            if isinstance(value, parser_type):
                if names is None:
                    return value
                n = len(names & {a.dest for a in getattr(value, "_actions", ())})
                if n > best_n:
                    best, best_n = value, n
    return best


def written_by_log_handler() -> bool:
    """Whether the current write to a captured stream comes from a logging handler
    printing a record that propagates to the root logger and that runlog's handler there
    logs (so the printed line is not logged again)."""
    logging = sys.modules.get("logging")
    if logging is None:
        return False
    f = sys._getframe(1)
    depth = 0
    # the tee's write, then a logging handler's emit: a StreamHandler's just above, rich's 6
    # up; loguru's own emit first when a handler hands the record to loguru (InterceptHandler)
    while f is not None and depth < 10:
        if (f.f_code.co_name == "emit" and "record" in f.f_locals
                and isinstance(f.f_locals.get("self"), logging.Handler)):
            break
        f = f.f_back
        depth += 1
    else:
        return False
    if f is None:
        return False
    record = f.f_locals["record"]
    logger = logging.getLogger(record.name) if record.name != "root" else logging.root
    while logger is not None:
        if logger is logging.root:
            break
        if not logger.propagate:
            return False
        logger = logger.parent
    else:
        return False
    # runlog's handler must still be there to take it: a dictConfig, or a library that
    # "resets" logging, may have taken it off the root; then the printed line is the record
    level = getattr(record, "levelno", 0)
    return any(getattr(h, "runlog_sink", None) is not None and level >= h.level
               for h in logging.root.handlers)


def main_module_frame():
    """``__main__``'s module frame, if the script's top level is on the stack."""
    main = sys.modules.get("__main__")
    f = sys._getframe(1)
    while f is not None:
        if f.f_code.co_name == "<module>" and main is not None and f.f_globals is vars(main):
            return f
        f = f.f_back
    return None


def main_module_code():
    """The code of ``__main__``'s module frame, if the script's top level is on the stack."""
    f = main_module_frame()
    return f.f_code if f is not None else None


def returned(frame) -> bool | None:
    """Whether a frame that has run to its end returned (True) or an exception left it
    (False): its last instruction is a return, or what raised. None when unreadable."""
    import opcode

    try:
        return opcode.opname[frame.f_code.co_code[frame.f_lasti]] in ("RETURN_VALUE", "RETURN_CONST")
    except (IndexError, TypeError, AttributeError, ValueError):
        return None


def script_file(cwd: str | None = None) -> str | None:
    """The running script's file. Python deletes ``__main__.__file__`` once the script's
    code has run (before exit hooks), so the caller keeps this from earlier; ``sys.argv[0]``
    (against ``cwd``, where the script started) when ``__file__`` is not set yet."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path and sys.argv and sys.argv[0] not in ("", "-c", "-m"):
        path = sys.argv[0]
    return os.path.join(cwd or os.getcwd(), path) if path else None


def script_realpath(script: str | None) -> str | None:
    """The script's real path. ``sys.argv[0]`` is relative to where the process started, which
    a ``chdir`` before ``start()`` has left; ``__main__.__file__`` is absolute (Python 3.9+).
    None for code that is no file (``-c``, ``-`` for standard input)."""
    if not script or script in ("-c", "-m", "-"):
        return None
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if isinstance(path, str) and os.path.isabs(path) and not os.path.isabs(script) \
            and os.path.basename(path) == os.path.basename(script):
        return os.path.realpath(path)
    return os.path.realpath(script)


def command_argv() -> list[str]:
    """The process's command line: ``sys.orig_argv`` (Python 3.10+); on Linux without it
    (3.9), ``/proc/self/cmdline``. Elsewhere 3.9 has only ``sys.argv``, where ``python -c``
    has lost its code and a module run with ``-m`` shows as its file — a command that would
    not run a package's relative imports — so it is named by ``-m`` and the module again
    (interpreter options such as ``-u`` are not known there)."""
    orig = getattr(sys, "orig_argv", None)
    if orig:
        return list(orig)
    proc = _proc_cmdline()
    if proc:
        return proc
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and sys.argv and spec.origin and sys.argv[0] == spec.origin:
        name = spec.name[:-len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        return ["python", "-m", name, *sys.argv[1:]]
    return ["python", *sys.argv]


def hydra_job_callbacks():
    """The callbacks of the Hydra job whose task function is on the stack, or None.

    Hydra's ``run_job`` (``hydra.core.utils``; 1.1 to 1.3) calls the task function with its
    ``callbacks`` in a local variable and tells them ``on_job_end`` with the job's result,
    also when the task raised (Hydra catches it, so no excepthook sees it in a multirun).
    """
    f = sys._getframe(1)
    while f is not None:
        if f.f_code.co_name == "run_job" and f.f_globals.get("__name__") == "hydra.core.utils":
            callbacks = f.f_locals.get("callbacks")
            return callbacks if isinstance(getattr(callbacks, "callbacks", None), list) else None
        f = f.f_back
    return None


def _proc_cmdline() -> list[str] | None:
    """This process's argv as the kernel keeps it (Linux), when it is still the command
    Python ran: a process title set since (``setproctitle``) no longer names what ran."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    words = [os.fsdecode(w) for w in raw.split(b"\0")]
    if words and words[-1] == "":
        words.pop()
    first = sys.argv[0] if sys.argv else ""
    if len(words) < 2 or not any(w in (first, "-c", "-m") for w in words[1:]):
        return None
    return words
