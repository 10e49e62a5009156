"""Runs that differ only in their seed, as one: mean ± std (n) per metric.

``runlog ls --group`` and the table of a sweep with ``--repeat``/``--seeds``
both aggregate here. A run's seed is the sweep key's ``seed`` or an argument
named ``seed`` (any case, at any depth: ``--seed``, ``train.seed``); two runs
are one group when they ran the same script with the same other arguments.
The std is the sample standard deviation (n − 1 in the denominator, as
``statistics.stdev`` and what papers report as "± std" over seeds); one run
has no std.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable

from ..fmt import flatten, fmt_num, fmt_value, lower_is_better, value_key


def mean_std(values: list[float]) -> dict:
    """``{"mean", "std", "n"}`` of the finite values (std None below two values)."""
    vs = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
          and math.isfinite(v)]
    n = len(vs)
    if not n:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(vs) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vs) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n}


def shown(agg: dict, n: bool = True) -> str:
    """``0.8123 ± 0.0107 (3)``; ``—`` when nothing was measured."""
    if not agg.get("n"):
        return "—"
    text = fmt_num(agg["mean"])
    if agg.get("std") is not None:
        text += f" ± {fmt_num(agg['std'])}"
    return text + (f" ({agg['n']})" if n else "")


def _is_seed(name: str) -> bool:
    """Whether the last part of a dotted name is "seed" in any case. Only the ASCII s, e and
    d lower to those letters and no character lowers to nothing, so that part is the last
    four characters: ``name.rsplit(".", 1)[-1].lower() == "seed"``, without the split."""
    return name[-4:].lower() == "seed" and (len(name) == 4 or name[-5] == ".")


def seed_of(r: dict):
    key = r.get("sweep")
    if isinstance(key, dict) and key.get("seed") is not None:
        return key["seed"]
    return next((v for k, v in flatten(r.get("args") or {}).items() if _is_seed(k)), None)


def group_key(r: dict, flat: dict | None = None) -> tuple:
    """``flat``: ``flatten(r["args"])``, when the caller has it already."""
    flat = flatten(r.get("args") or {}) if flat is None else flat
    args = {k: value_key(v) for k, v in flat.items() if not _is_seed(k)}
    # ordered as by str((name, key)): the names differ, and the repr of one name is never the
    # start of another's (its closing quote would be unescaped inside), so the names decide
    return (r.get("script_path") or r.get("script"), tuple(sorted(args.items(), key=_by_name)))


def _by_name(item: tuple) -> str:
    return repr(item[0])


_sha1 = None
_IDS: dict[tuple, str] = {}  # group key -> id: runs of one group share it


def group_id(r: dict, flat: dict | None = None) -> str:
    """A short stable name of a run's group (the journal's compare view joins by it): the
    sha1 of the key's repr. Kept by the key itself: of text and None, two keys are equal
    exactly when their reprs are."""
    global _sha1
    key = group_key(r, flat)
    try:
        got = _IDS.get(key)
    except TypeError:  # a script name of another type: not kept
        got = None
    if got is None:
        if _sha1 is None:
            from hashlib import sha1 as _sha1
        got = _sha1(repr(key).encode("utf-8", "surrogateescape")).hexdigest()[:12]
        if len(_IDS) < 4096 and (key[0] is None or type(key[0]) is str):
            _IDS[key] = got
    return got


class Group:
    def __init__(self, first: dict):
        self.runs: list[dict] = []
        self.args = {k: v for k, v in flatten(first.get("args") or {}).items() if not _is_seed(k)}

    def add(self, r: dict) -> None:
        self.runs.append(r)

    @property
    def finished(self) -> list[dict]:
        return [r for r in self.runs if (r.get("shown_status") or r.get("status")) == "finished"]

    def metrics(self, names: Iterable[str]) -> dict[str, dict]:
        """Each metric's last value over the group's finished runs."""
        done = self.finished
        return {m: mean_std([((r.get("metrics") or {}).get(m) or {}).get("last") for r in done])
                for m in names}

    def statuses(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for r in self.runs:
            s = r.get("shown_status") or r.get("status") or "?"
            c[s] = c.get(s, 0) + 1
        return c


def grouped(runs: Iterable[dict]) -> list[Group]:
    """The groups in the order of their newest run (the runs come newest first)."""
    groups: dict[tuple, Group] = {}
    for r in runs:
        k = group_key(r)
        g = groups.get(k)
        if g is None:
            g = groups[k] = Group(r)
        g.add(r)
    return list(groups.values())


def _differing(groups: list[Group]) -> list[str]:
    names: dict[str, set] = {}
    for g in groups:
        for k, v in g.args.items():
            names.setdefault(k, set()).add(value_key(v))
    every = [k for k in names if all(k in g.args for g in groups)]
    return [k for k in names if len(names[k]) > 1 or (k not in every and len(groups) > 1)]


def _metric_names(groups: list[Group]) -> list[str]:
    names: dict[str, None] = {}
    for g in groups:
        for r in g.runs:
            names.update(dict.fromkeys(r.get("metrics") or {}))
    return list(names)


def ls_group(runs: Iterable[dict], n: int | None, sort: str | None, fmt: str | None,
             tty: bool | None = None) -> int:
    """``runlog ls --group``: one row per group, the ``n`` newest groups (or best by
    ``--sort``'s mean)."""
    from .common import CliError, out
    from .table import markdown

    groups = grouped(runs)
    metrics = _metric_names(groups)
    aggs = {id(g): g.metrics(metrics) for g in groups}
    if sort:
        if sort not in metrics:
            raise CliError(f"no listed run has a metric {sort!r}")
        low = lower_is_better(sort)

        def key(g):
            m = aggs[id(g)][sort]["mean"]
            return (m is None, 0 if m is None else (m if low else -m))

        groups.sort(key=key)
    if n is not None:
        groups = groups[:n]
    diff = _differing(groups)
    if fmt == "json":
        import json

        for g in groups:
            out(json.dumps({
                "runs": [r["id"] for r in g.runs], "n": len(g.runs), "statuses": g.statuses(),
                "seeds": [seed_of(r) for r in g.runs], "args": g.args,
                "metrics": {m: a for m, a in aggs[id(g)].items() if a["n"]}},
                ensure_ascii=False, default=str) + "\n")
        return 0
    if fmt == "csv":
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["runs", "n", "status", *diff,
                    *(f"{m}_{s}" for m in metrics for s in ("mean", "std", "n"))])
        for g in groups:
            a = aggs[id(g)]
            w.writerow([" ".join(r["id"] for r in g.runs), len(g.runs), _status(g),
                        *(fmt_value(g.args[k]) if k in g.args else "" for k in diff),
                        *(("" if a[m][s] is None else repr(a[m][s])) if s != "n" else a[m]["n"]
                          for m in metrics for s in ("mean", "std", "n"))])
        sys.stdout.flush()
        return 0
    header = ["newest run", "n", "status", *diff, *metrics]
    table = [[g.runs[0]["id"], str(len(g.runs)), _status(g),
              *(fmt_value(g.args[k]) if k in g.args else "" for k in diff),
              *(shown(aggs[id(g)][m], n=aggs[id(g)][m]["n"] != len(g.runs)) for m in metrics)]
             for g in groups]
    if not table:
        sys.stderr.write("runlog: no runs match\n")
        return 0
    if fmt == "md":
        out(markdown(header, table))
        return 0
    from .table import STATUS_STYLE, Column, render, terminal

    cols = [Column("newest run"), Column("n", "right"),
            Column("status", style=lambda s: STATUS_STYLE.get(s.split()[-1]) if s else None),
            *(Column(k, priority=1, min_width=6) for k in diff),
            *(Column(m, "right") for m in metrics)]
    out(render(cols, table, console=terminal() if tty is not False else None, indent=0))
    return 0


def _status(g: Group) -> str:
    """``finished`` when all are; else ``2 finished, 1 failed``."""
    c = g.statuses()
    if len(c) == 1:
        return next(iter(c))
    return ", ".join(f"{k} {s}" for s, k in sorted(c.items(), key=lambda sk: -sk[1]))
