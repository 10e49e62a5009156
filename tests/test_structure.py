"""The package's shape, read from its source with ast (nothing is imported or run):
no import circles, the CLI uses no private core name, and only folder/layout.py
spells a run-folder file name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import runlog

PKG = Path(runlog.__file__).parent
FILE_NAMES = ("run.json", "run.log", "metrics.jsonl", "notes.md", "report.md", "code.patch",
              ".runlog-index.jsonl")


def modules() -> dict[str, tuple[Path, ast.Module]]:
    """runlog's modules by dotted name (a package by its own name), parsed."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return out


MODULES = modules()


def is_cli(name: str) -> bool:
    return name == "runlog.cli" or name.startswith("runlog.cli.")


# ---------------------------------------------------------------- imports


def import_targets(name: str, is_package: bool, node) -> list[tuple[str, str]]:
    """(runlog module, local name it binds) for one import statement of module ``name``."""
    if isinstance(node, ast.Import):
        return [(a.name, a.asname or a.name.split(".")[0]) for a in node.names]
    package = name if is_package else name.rpartition(".")[0]
    base = node.module or ""
    if node.level:
        up = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(up + ([node.module] if node.module else []))
    return [(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base, a.asname or a.name)
            for a in node.names]


def owner(target: str) -> str | None:
    """The runlog module an import reaches (``runlog.folder.x.y`` → ``runlog.folder.x``)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def imports(name: str) -> set[str]:
    """The runlog modules ``name`` imports, at its top or lazily inside a function."""
    path, tree = MODULES[name]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target, _ in import_targets(name, path.name == "__init__.py", node):
                mod = owner(target)
                # a package's __init__ runs before its modules: that edge is no circle
                if mod and mod != name and not name.startswith(mod + "."):
                    found.add(mod)
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, done = [], set()

    def visit(node, path):
        if node in path:
            found.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for dep in sorted(graph.get(node, ())):
            visit(dep, path + [node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def test_the_modules_are_found():
    assert {"runlog", "runlog.folder.layout", "runlog.cli.runcmd", "runlog.args.note",
            "runlog.patches", "runlog.lifecycle"} <= set(MODULES)
    # at its top and lazily inside it
    assert {"runlog.folder.metrics", "runlog.git", "runlog.codestate"} <= imports("runlog.lifecycle")


def test_circles_are_found():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_not_even_through_lazy_imports():
    assert circles({name: imports(name) for name in MODULES}) == []


# ---------------------------------------------------------------- the CLI and private names


def private_uses(name: str, tree: ast.Module, is_package: bool = False) -> list[str]:
    """``_private`` names a CLI module imports from, or reads off, a module outside the CLI."""
    bad, core = [], set()  # core: local names bound to modules outside the CLI
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        for alias, (target, local) in zip(node.names, import_targets(name, is_package, node)):
            mod = owner(target)
            if mod is None or is_cli(mod):
                continue
            binds_module = target.endswith("." + alias.name) if isinstance(node, ast.ImportFrom) \
                else bool(alias.asname)
            if binds_module:
                core.add(local)  # `from ..folder import index`, `import runlog.x as x`
            elif alias.name.startswith("_") and not alias.name.startswith("__"):
                bad.append(f"line {node.lineno} imports {alias.name} from {mod}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in core and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            bad.append(f"line {node.lineno} uses {node.value.id}.{node.attr}")
    return sorted(bad, key=lambda b: int(b.split()[1]))


def test_the_private_name_check_catches_both_forms():
    code = ("from ..folder.record import _SHAPES, jsonable\nfrom ..folder import index\n"
            "from .common import _helper\nindex._merge({}, {})\nindex.read('x')\n"
            "import runlog.patches as p\np._Process()\n")
    assert private_uses("runlog.cli.fake", ast.parse(code)) == [
        "line 1 imports _SHAPES from runlog.folder.record", "line 4 uses index._merge",
        "line 7 uses p._Process"]


def test_the_cli_imports_no_private_name_from_the_core():
    bad = {str(path.relative_to(PKG.parent)): private_uses(name, tree, path.name == "__init__.py")
           for name, (path, tree) in MODULES.items() if is_cli(name)}
    assert {k: v for k, v in bad.items() if v} == {}


# ---------------------------------------------------------------- file names


SPELLS = re.compile(r"(?:.*[/\\])?(?:%s)(?:\.\w+)*" % "|".join(re.escape(n) for n in FILE_NAMES))


def spelled(tree: ast.Module) -> list[str]:
    """String constants in code (not docstrings) that are a run-folder file name or a path
    ending in one; prose that mentions one (a help text, a message) is fine."""
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
             and id(n) not in docs and SPELLS.fullmatch(n.value)]
    return [f"line {n.lineno}: {n.value!r}" for n in sorted(found, key=lambda n: n.lineno)]


def test_the_file_name_check_catches_names_and_paths():
    code = ('"""Writes run.json."""\nA = "run.json"\nB = f"{d}/notes.md"\nC = "run.json.tmp"\n'
            'D = "print the raw run.json"\n')
    assert spelled(ast.parse(code)) == ["line 2: 'run.json'", "line 3: '/notes.md'",
                                        "line 4: 'run.json.tmp'"]


def test_only_layout_spells_a_run_folder_file_name():
    bad = {str(path.relative_to(PKG.parent)): spelled(tree)
           for name, (path, tree) in MODULES.items() if name != "runlog.folder.layout"}
    assert {k: v for k, v in bad.items() if v} == {}
    _, layout = MODULES["runlog.folder.layout"]
    assert set(FILE_NAMES) <= {n.value for n in ast.walk(layout) if isinstance(n, ast.Constant)}
