"""A sweep's table: printed at its end and by ``runlog sweep show [ID]``; on a terminal
drawn by the shared renderer (``cli/table.py``), fitted to its width.

A sweep whose trials live in a shared Optuna study (``--storage``, ``--slurm``)
is shown from the study — every worker's trials, on whatever node the command
runs — and falls back to the snapshot in its summary file when the study
cannot be opened (Optuna missing, the database unreachable).
"""

from __future__ import annotations

import json
import os
import sys

from ..fmt import cut, fmt_num, printable
from ..folder.layout import LogDir
from .common import CliError, out
from .table import STATUS_STYLE, Column, render, terminal


def _shown(v) -> str:
    if isinstance(v, float):
        return format(v, ".6g")
    return str(v)


ERROR_MIN = 16  # what an error keeps on a terminal before a parameter column goes


def summary(data: dict, console=None) -> str:
    """The sweep's table, best first, and how to re-run the best trial: drawn for
    ``console`` (a terminal) by the shared renderer, aligned plain text without."""
    trials = data["trials"]
    if data.get("seeds") or any(t.get("seed") is not None for t in trials):
        from .sweep_repeats import summary as by_configuration  # --repeat/--seeds

        return by_configuration(data)
    metric, direction = data.get("metric"), data.get("direction")
    names = list(data["params"])
    if metric:
        scored = [t for t in trials if t.get("metric") is not None]
        scored.sort(key=lambda t: t["metric"], reverse=direction == "max")
        rows = scored + sorted((t for t in trials if t.get("metric") is None), key=lambda t: t["n"])
    else:
        rows = sorted(trials, key=lambda t: t["n"])
    errors = any(t.get("error") for t in trials)  # a failed trial says why
    header = ["trial", "run", "status", *names] + ([metric] if metric else []) + (["error"] if errors else [])
    table = [header]
    for t in rows:
        table.append([str(t["n"]), t.get("run") or "—", t.get("status") or "?",
                      *[_shown(t["values"].get(k)) for k in names]]
                     + ([fmt_num(t["metric"]) if t.get("metric") is not None else "—"]
                        if metric else [])
                     + ([cut(t.get("error") or "", 60)] if errors else []))
    head = f"Sweep {data['id']}: {len(trials)} trials"
    if data.get("study"):
        head += f" in study {data['study']!r}"
        if data.get("total") is not None:
            head += f" (of {data['total']})"
    text = str if console is None else printable  # a terminal gets no control character
    lines = [text(head + (f", best {metric} first" if metric else ""))]
    if console is None:
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    else:
        lines.append(render(_columns(names, metric, errors), table[1:], console=console,
                            indent=0).rstrip("\n"))
    if metric and rows and rows[0].get("metric") is not None:
        best = rows[0]
        lines.append(text(f"Best: trial {best['n']} ({best.get('run')}), {metric} "
                          f"{fmt_num(best['metric'])}. Re-run it:"))
        lines.append(text(f"  runlog run -- {best['command_line']}"))
    return "\n".join(lines) + "\n"


def _columns(names: list[str], metric: str | None, errors: bool) -> list[Column]:
    """On a terminal: the trial, its run (what you type next) and status whole, and the
    metric, always; the error gives up width first, then goes; then the parameters, the
    rightmost first."""
    cols = [Column("trial", "right"), Column("run"), Column("status", style=STATUS_STYLE.get)]
    cols += [Column(k, priority=1) for k in names]
    cols += [Column(metric, "right")] if metric else []
    cols += [Column("error", priority=2, min_width=ERROR_MIN)] if errors else []
    return cols


def print_summary(data: dict) -> None:
    out(summary(data, terminal()))


def find(root: str, spec: str | None) -> str:
    """The id of the sweep ``spec`` names (a prefix, ``-1`` or nothing for the newest)."""
    d = LogDir(root).sweeps
    try:
        ids = sorted(f[:-5] for f in os.listdir(d) if f.endswith(".json") and not f.startswith("."))
    except OSError:
        ids = []
    if not ids:
        raise CliError(f"no sweeps in {root}")
    if spec is None or spec == "-1":
        return ids[-1]
    if spec in ids:
        return spec
    matches = [i for i in ids if i.startswith(spec)]
    if len(matches) != 1:
        raise CliError(f"no sweep matches {spec!r}" if not matches else
                       f"{spec!r} matches {len(matches)} sweeps: {', '.join(matches[:5])}")
    return matches[0]


def load(root: str, sweep_id: str) -> dict:
    path = LogDir(root).sweep(sweep_id)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError) as e:
        raise CliError(f"cannot read sweep {sweep_id} ({e.__class__.__name__}: {e})") from None
    if not isinstance(data, dict) or "params" not in data:
        raise CliError(f"sweep {sweep_id} has not started yet (its file is still empty)")
    from ..folder.shapes import fit_sweep  # a hand-edited file: every field of its shape

    return fit_sweep(data, sweep_id)


def live(data: dict) -> dict:
    """The sweep with its study's trials, when it has a shared study and it can be opened."""
    if not (data.get("storage") and data.get("study")):
        return data
    from . import sweep_study

    try:
        study = sweep_study.open_study(data["storage"], data["study"], data.get("direction"),
                                       create=False)
        data = dict(data, trials=sweep_study.rows(study))
    except CliError as e:
        sys.stderr.write(f"runlog sweep: {e}; showing the table as last saved\n")
    return data


def settle(root: str, rows: list[dict], gone: bool = False) -> None:
    """A trial the study still calls running, as its run's record has it: ``lost`` when its
    process is gone (on this host), or when its Slurm array has left the queue (``gone``)."""
    from ..folder import record
    from ..folder.layout import LogDir

    for r in rows:
        if r.get("status") != "running":
            continue
        if r.get("run"):
            try:
                r["status"] = record.shown_status(record.read(LogDir(root).run(r["run"]).path))
            except record.RecordError:
                pass
        if gone and r["status"] == "running":
            r["status"] = "lost"
