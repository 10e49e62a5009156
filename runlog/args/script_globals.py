"""A script's configuration when it is not argparse: its top-level simple globals (nanoGPT style).

Scripts like nanoGPT's ``train.py`` set their configuration as module globals
(``batch_size = 12``), then run ``exec(open('configurator.py').read())``, which
executes a config file named on the command line (``config/x.py``) and applies
``--key=value`` overrides into ``globals()``. Nothing parses arguments, so
there is nothing to hook; what the run was given is in ``__main__`` once that
code has run. ``capture()`` reads it then (the caller chooses when: at the
first metric or at exit) and says where each value came from.

Which names count, read from the script's source with ``ast`` (nothing is
executed):

- names assigned at the module's top level — directly, or inside a top-level
  ``if``/``try``/``with`` (``if __name__ == "__main__":``), never inside a
  function, a class or a loop;
- if the top level has an ``exec(...)`` statement (the configurator), only
  names assigned before the first one: what comes after is derived state
  (``iter_num = 0``, ``tokens_per_iter = ...``);
- not a name that a top-level loop also assigns or a function declares
  ``global`` (state, not configuration: its value at exit is not what the run
  was given), nor one bound by an ``import``, nor one starting with ``_``;
- plus every name a config file given on the command line assigns.

A value is recorded when it is None, a bool, a number, a string of at most
``MAX_STR`` characters, or — when the script or a config file writes it as a
literal — a list or tuple of at most ``MAX_ITEMS`` such values. Modules,
functions, classes, runlog's own objects and everything else are left out.

Where each value came from: a bare command-line word that is an existing
``.py`` file is a config file, and the names its top level assigns came from
it; a ``--key=value`` (or ``--key value``) word for a recorded name came from
the command line. Later words win, as in nanoGPT's configurator.
"""

from __future__ import annotations

import os
import sys

from .frames import script_file  # noqa: F401 - where the script is, known from start()

# ``ast`` is imported where a source is read (at the first metric or at exit), not at
# start(): it costs start() ~1.5 ms and a script that parses arguments never needs it

MAX_STR = 1000
MAX_ITEMS = 20
COMMAND_LINE = "command line"


def _targets(node) -> list[str]:
    """Names bound by an assignment target (``a``, ``a, b``, ``(a, [b, c])``)."""
    import ast

    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [n for elt in node.elts for n in _targets(elt)]
    if isinstance(node, ast.Starred):
        return _targets(node.value)
    return []


def _assigned(stmt) -> list[tuple[str, object]]:
    """(name, value node or None) for each name one statement assigns."""
    import ast

    if isinstance(stmt, ast.Assign):
        one = len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
        return [(n, stmt.value if one else None) for t in stmt.targets for n in _targets(t)]
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        return [(n, stmt.value) for n in _targets(stmt.target)]
    if isinstance(stmt, ast.AugAssign):
        return [(n, None) for n in _targets(stmt.target)]
    return []


def _is_exec(stmt) -> bool:
    import ast

    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "exec")


def _reads_argv(node) -> bool:
    """Whether an expression reads ``sys.argv`` (or ``argv``, imported from sys)."""
    import ast

    return node is not None and any(
        (isinstance(n, ast.Attribute) and n.attr == "argv" and isinstance(n.value, ast.Name)
         and n.value.id == "sys") or (isinstance(n, ast.Name) and n.id == "argv")
        for n in ast.walk(node))


def _is_literal(node) -> bool:
    import ast

    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


class Names:
    """What a source file's top level assigns: ``config`` (name → whether a literal
    list/tuple is allowed) and ``excluded`` (imports, loop state)."""

    def __init__(self, source: str, stop_at_exec: bool = True):
        import ast

        self.config: dict[str, bool] = {}
        self.excluded: set[str] = set()
        self.from_argv: set[str] = set()  # assigned from sys.argv (``data = sys.argv[1]``)
        self.stopped = False
        tree = ast.parse(source)
        self._walk(tree.body, stop_at_exec)
        for node in ast.walk(tree):  # a function that rebinds a global (a step counter) keeps state in it
            if isinstance(node, ast.Global):
                self.excluded.update(node.names)
        for name in self.excluded:
            self.config.pop(name, None)

    def to_json(self) -> dict:
        return {"config": self.config, "excluded": sorted(self.excluded), "stopped": self.stopped,
                "argv": sorted(self.from_argv)}

    @classmethod
    def from_json(cls, got) -> Names | None:
        """What ``to_json`` kept (``sourcecache``), or None when it is not that shape."""
        if not (isinstance(got, dict) and isinstance(got.get("config"), dict)
                and isinstance(got.get("excluded"), list) and isinstance(got.get("argv"), list)):
            return None  # (a cache entry from before ``argv``: read again)
        names = cls.__new__(cls)
        names.config = {str(k): bool(v) for k, v in got["config"].items()}
        names.excluded = {str(n) for n in got["excluded"]}
        names.stopped = bool(got.get("stopped"))
        names.from_argv = {str(n) for n in got["argv"]}
        return names

    def _walk(self, body, stop_at_exec: bool) -> None:
        import ast

        for stmt in body:
            if stop_at_exec and _is_exec(stmt):
                self.stopped = True
            if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
                for node in ast.walk(stmt):  # what a top-level loop sets is state
                    if isinstance(node, (ast.Name,)) and isinstance(node.ctx, ast.Store):
                        self.excluded.add(node.id)
                continue
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                for alias in stmt.names:
                    self.excluded.add((alias.asname or alias.name).split(".")[0])
                continue
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.excluded.add(stmt.name)
                continue
            if self.stopped:
                continue
            for name, value in _assigned(stmt):
                if not name.startswith("_"):
                    literal = value is not None and isinstance(value, (ast.List, ast.Tuple)) \
                        and _is_literal(value)
                    self.config[name] = self.config.get(name, False) or literal
                    if _reads_argv(getattr(stmt, "value", None)):
                        self.from_argv.add(name)
            for field in ("body", "orelse", "finalbody"):  # if / try / with at the top level
                if isinstance(stmt, (ast.If, ast.Try, ast.With)) and hasattr(stmt, field):
                    self._walk(getattr(stmt, field), stop_at_exec)
            if isinstance(stmt, ast.Try):
                for h in stmt.handlers:
                    self._walk(h.body, stop_at_exec)


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            data = f.read(2_000_000)
        return data.decode("utf-8", "replace")
    except OSError:
        return None


def _names_of(path: str, stop_at_exec: bool, cache_root: str | None = None) -> Names | None:
    """What ``path``'s top level assigns; kept in ``cache_root``'s ``sourcecache`` while the
    file is unchanged (a script is run many times as it is: no parse, no ``ast`` import)."""
    entry = None
    if cache_root:
        from ..folder.sourcecache import Entry

        entry = Entry(cache_root, path, "globals" if stop_at_exec else "config-file")
        if entry.value is not None:
            if entry.value == "unreadable":
                return None
            cached = Names.from_json(entry.value)
            if cached is not None:
                return cached
    source = _read(path)
    if source is None:
        return None
    try:
        names = Names(source, stop_at_exec)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        names = None
    if entry is not None:
        entry.keep(names.to_json() if names is not None else "unreadable")
    return names


def config_files(argv: list[str]) -> list[str]:
    """Bare command-line words that name an existing ``.py`` file: exec-ed config files."""
    return [a for a in argv if not a.startswith("-") and "=" not in a and a.endswith(".py")
            and os.path.isfile(a)]


def _simple(value, literal_ok: bool) -> bool:
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return len(value) <= MAX_STR
    if literal_ok and isinstance(value, (list, tuple)) and len(value) <= MAX_ITEMS:
        return all(v is None or isinstance(v, (bool, int, float))
                   or (isinstance(v, str) and len(v) <= MAX_STR) for v in value)
    return False


def sources(names, argv: list[str], config_names: dict[str, Names]) -> dict[str, str]:
    """Where each of ``names`` came from, when not from the script: a config file (as
    typed) or the command line; later words win."""
    out: dict[str, str] = {}
    wanted = set(names)
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            break
        if (a.startswith("--") and len(a) > 2) or ("=" in a and not a.startswith("-")):
            key = a.lstrip("-").split("=", 1)[0]  # --key=value, --key value, key=value
            for k in (key, key.replace("-", "_")):
                if k in wanted:
                    out.pop(k, None)
                    out[k] = COMMAND_LINE
                    break
        elif a in config_names:
            for k in config_names[a].config:
                if k in wanted:
                    out.pop(k, None)
                    out[k] = a
    return out


def _a_word(value, argv: list[str]) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_a_word(v, argv) for v in value)
    if value is None or isinstance(value, bool):
        return False
    if str(value) in argv:
        return True
    if isinstance(value, (int, float)):  # float(sys.argv[1]) of "0.50", "1e-3"
        for w in argv:
            try:
                if float(w) == value:
                    return True
            except ValueError:
                continue
    return False


def capture(argv: list[str] | None = None, path: str | None = None,
            main=None, cache_root: str | None = None) -> tuple[dict, list[str], dict] | None:
    """``(args, given, args_source)`` from ``__main__``'s globals now, or None when the
    script (``path``, else ``script_file()``) is not a readable Python file or sets
    nothing that counts. ``cache_root``: the log directory whose ``sourcecache`` keeps
    what each unchanged source assigns."""
    main = main if main is not None else sys.modules.get("__main__")
    path = path or script_file()
    if not path or not str(path).endswith(".py"):
        return None
    g = vars(main)
    if not any(not k.startswith("_") and _simple(v, True) for k, v in list(g.items())):
        return None  # nothing could be recorded: no source to read
    script = _names_of(path, stop_at_exec=True, cache_root=cache_root)
    if script is None:
        return None
    argv = list(sys.argv[1:] if argv is None else argv)
    files = {f: n for f in config_files(argv)
             if (n := _names_of(f, stop_at_exec=False, cache_root=cache_root)) is not None}
    wanted: dict[str, bool] = dict(script.config)
    for n in files.values():
        for k, literal in n.config.items():
            wanted[k] = wanted.get(k, False) or literal
    args = {}
    for k, literal in wanted.items():
        if k in script.excluded or k.startswith("_") or k not in g:
            continue
        v = g[k]
        if _simple(v, literal):
            args[k] = list(v) if isinstance(v, tuple) else v
    if not args:
        return None
    src = sources(args, argv, files)
    for k in args:  # ``data = sys.argv[1]``: given when its value is a word of it
        if k in script.from_argv and k not in src and _a_word(args[k], argv):
            src[k] = COMMAND_LINE
    given = [k for k, s in src.items() if s == COMMAND_LINE]
    return args, given, src
