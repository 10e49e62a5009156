"""``runlog diff A B``: two runs side by side — arguments, metrics, notes, code."""

from __future__ import annotations

from ..fmt import flatten, fmt_num, fmt_value, printable
from ..folder import index
from ..folder.layout import RunFolder
from .common import CliError, load, newest_runs, out, read_notes
from .table import STATUS_STYLE, Column, terminal
from .table import render as table

MISSING = "—"


def arg_rows(a: dict, b: dict) -> list[tuple[str, str, str]]:
    fa, fb = flatten(a.get("args") or {}), flatten(b.get("args") or {})
    rows = []
    for k in list(fa) + [k for k in fb if k not in fa]:
        va = fmt_value(fa[k]) if k in fa else MISSING
        vb = fmt_value(fb[k]) if k in fb else MISSING
        if k not in fa or k not in fb or fa[k] != fb[k]:
            rows.append((printable(k), printable(va), printable(vb)))
    return rows


def metric_rows(a: dict, b: dict) -> tuple[list[tuple[str, str, str]], list[str]]:
    ma, mb = a.get("metrics") or {}, b.get("metrics") or {}
    rows, deltas = [], []
    for k in list(ma) + [k for k in mb if k not in ma]:
        va = ma.get(k, {}).get("last")
        vb = mb.get(k, {}).get("last")
        rows.append((printable(k), fmt_num(va) if k in ma else MISSING,
                     fmt_num(vb) if k in mb else MISSING))
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            d = vb - va
            deltas.append(("+" if d > 0 else "") + fmt_num(d) if d == d and d != 0 else "")
        else:
            deltas.append("")
    return rows, deltas


def _state(r: dict) -> tuple:
    """A record's code state: (commit, saved patch path or None)."""
    import os

    g = r.get("git") or {}  # an absolute path: git runs in the repository, not here
    patch = os.path.abspath(RunFolder(r["dir"]).file(g["patch"])) if g.get("patch") else None
    return (g.get("commit"), patch)


def _patch_text(a: dict, b: dict) -> str:
    """The two recorded code states as one textual diff (``--patch``)."""
    from .. import copies
    from .. import git as gitstate

    top = gitstate.find_top(b.get("cwd") or a.get("cwd") or ".")
    if top is None or not a.get("git") or not b.get("git"):
        return "(no code states to compare)\n"
    try:
        text = copies.tree_diff(top, _state(a), _state(b))
    except gitstate.GitError as e:
        return f"(could not compare: {e})\n"
    return text if text is not None else "(a saved patch no longer applies: no textual diff)\n"


def code_section(a: dict, b: dict) -> list[str]:
    from .. import codestate
    from .. import git as gitstate

    ga, gb = a.get("git") or {}, b.get("git") or {}
    if not ga or not gb:
        if not ga and not gb:
            return ["  (no git state recorded)"]
        return [f"  ({a['id'] if not ga else b['id']} recorded no git state)"]
    top = gitstate.find_top(b.get("cwd") or a.get("cwd") or ".")
    if top is None:
        return ["  (the repository is no longer at " + str(b.get("cwd")) + ")"]
    try:
        d = codestate.diff_states(top, _state(a), _state(b))
    except gitstate.GitError as e:
        return [f"  (could not compare: {e})"]
    lines = []
    if ga.get("short") != gb.get("short") or ga.get("dirty") or gb.get("dirty"):
        lines.append(f"  {ga.get('short') or MISSING}{' + changes' if ga.get('dirty') else ''}"
                     f" → {gb.get('short') or MISSING}{' + changes' if gb.get('dirty') else ''}")
    for c in d["commits"][:20]:
        lines.append(f"  {'+' if c.startswith('>') else '-'} {c[1:].strip()}")
    if len(d["commits"]) > 20:
        lines.append(f"  … {len(d['commits']) - 20} more commits")
    if d["files"]:
        lines.append("  files:" if d["exact"] else "  files (commits only; a patch did not apply):")
        for path, added, removed in d["files"]:
            lines.append(f"    {path}  +{added} -{removed}")
    if not d["commits"] and not d["files"]:
        lines.append("  same code")
    return lines


def env_section(a: dict, b: dict, console=None) -> str | None:
    """Packages, Python, machine, data and resources that differ (runs that recorded them)."""
    keys = ("env", "machine", "data", "resources")
    if not any(r.get(k) for r in (a, b) for k in keys):
        return None
    from ..facts.text import diff_rows

    rows = [[printable(c) for c in row] for row in diff_rows(a, b)]
    cols = [Column(), Column(wrap=True), Column(wrap=True)]
    return "Environment (A → B):\n" + (table(cols, rows, console=console).rstrip("\n") if rows else "  same")


def diff(root: str, spec_a: str, spec_b: str | None, patch: bool = False) -> int:
    # each RUN read on its own (the index's end, or one folder): the cost of the runs named,
    # not of the history; only an error or an ambiguous prefix lists every run
    runs = None
    ns = [index.minus_n(s) for s in (spec_a, spec_b)]
    if spec_b is not None and all(ns):  # None or 0 for any: each is found on its own
        # `diff -1 -2`: the newest runs found once for both (one listing of the log directory)
        runs = newest_runs(root, max(ns))
    b = load(root, spec_a if spec_b is None else spec_b, runs)
    if spec_b is None:
        if not b.get("previous"):
            raise CliError(f"run {b['id']} has no previous run to compare with; give two runs")
        a = load(root, b["previous"])
    else:
        a = load(root, spec_a, runs)
    if a["id"] == b["id"]:
        raise CliError("both arguments name the same run")
    console = terminal()
    # the tables clean their cells (``printable``); the rest is made printable here: recorded
    # text, one line per name, value or note whatever it holds
    head = [[f"{label} {r['id']}", r["shown_status"], r.get("note") or ""]
            for label, r in (("A", a), ("B", b))]
    parts = [table([Column(), Column(style=STATUS_STYLE.get), Column(wrap=True)], head, console=console,
                   indent=0).rstrip("\n")]
    cols = [Column(), Column(wrap=True), Column(wrap=True)]
    rows = arg_rows(a, b)
    parts.append("Arguments (A → B):\n" + (table(cols, rows, console=console).rstrip("\n")
                                            if rows else "  same"))
    mrows, deltas = metric_rows(a, b)
    if mrows:
        mcols = [Column(), Column(align="right"), Column(align="right"),
                 Column(align="right", priority=1)]
        parts.append("Metrics (last):\n" + table(mcols, [[*r, d] for r, d in zip(mrows, deltas)],
                                                  console=console).rstrip("\n"))
    for label, r in (("A", a), ("B", b)):
        notes = read_notes(r["dir"]).strip()
        if notes:
            parts.append(printable(f"Notes on {label}:\n" + "\n".join(
                f"  {ln}" for ln in notes.splitlines() if ln), lines=True))
    # and whatever else came from the run or git (commit subjects, file names)
    parts.append(printable("Code:\n" + "\n".join(code_section(a, b)), lines=True))
    env = env_section(a, b, console)
    if env:
        parts.append(env)
    out("\n\n".join(parts) + "\n")
    if patch:
        out("\n" + _patch_text(a, b))
    return 0


def diff_working(root: str, spec: str, patch: bool = False) -> int:
    """A run's recorded code state against the working tree of its repository now (captured
    as a run starting now would record it: tracked changes and untracked files)."""
    import os
    import tempfile

    from .. import copies
    from .. import git as gitstate

    a = load(root, spec)
    if not a.get("git"):
        raise CliError(f"run {a['id']} recorded no code state (git=False, or not in a git repository)")
    cwd = a.get("cwd") if a.get("cwd") and os.path.isdir(a["cwd"]) else os.getcwd()
    with tempfile.TemporaryDirectory(prefix="runlog-") as scratch:
        try:
            info = copies.working_state(cwd, os.path.abspath(root), scratch)
        except gitstate.GitError as e:
            raise CliError(f"could not read the working tree ({e})") from None
        if info is None:
            raise CliError(f"{cwd} is not in a git repository")
        where = info.pop("top")
        b = {"id": "working tree", "git": info, "dir": scratch, "cwd": cwd}
        head = (printable(f"A {a['id']}  {a['shown_status']}  {a.get('note') or ''}".rstrip())
                + "\n" + printable(f"B the working tree at {where}"))
        out(printable(head + "\n\nCode:\n" + "\n".join(code_section(a, b)), lines=True) + "\n")
        if patch:
            out("\n" + _patch_text(a, b))
    return 0
