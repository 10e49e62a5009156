"""A sweep's table when each configuration ran several seeds (``--repeat``/``--seeds``).

One row per configuration (grid point or Optuna trial): its seeds, how its runs
ended, its parameters and the metric as ``mean ± std (n)`` over the runs that
finished with a value, best mean first. The best line names the configuration.
"""

from __future__ import annotations

from ..fmt import fmt_num
from .groups import mean_std, shown


def _shown(v) -> str:
    return format(v, ".6g") if isinstance(v, float) else str(v)


def configurations(trials: list[dict], metric: str | None) -> list[dict]:
    by: dict = {}
    for t in trials:
        c = by.setdefault(t["n"], {"n": t["n"], "values": t.get("values") or {}, "runs": []})
        c["runs"].append(t)
    for c in by.values():
        c["runs"].sort(key=lambda t: (t.get("seed") is None, t.get("seed") or 0))
        done = [t for t in c["runs"] if t.get("status") == "finished"]
        c["agg"] = mean_std([t.get("metric") for t in done]) if metric else None
    return list(by.values())


def _statuses(runs: list[dict]) -> str:
    c: dict[str, int] = {}
    for t in runs:
        c[t.get("status") or "?"] = c.get(t.get("status") or "?", 0) + 1
    return ", ".join(f"{k} {s}" for s, k in sorted(c.items(), key=lambda sk: -sk[1]))


def summary(data: dict) -> str:
    metric, direction = data.get("metric"), data.get("direction")
    names = list(data["params"])
    configs = configurations(data["trials"], metric)
    scored = [c for c in configs if c["agg"] and c["agg"]["n"]]
    scored.sort(key=lambda c: c["agg"]["mean"], reverse=direction == "max")
    rows = scored + sorted((c for c in configs if c not in scored), key=lambda c: c["n"])
    header = ["trial", "seeds", "runs", *names] + ([f"{metric} mean ± std (n)"] if metric else [])
    table = [header]
    for c in rows:
        table.append([str(c["n"]), ",".join(str(t.get("seed")) for t in c["runs"]),
                      _statuses(c["runs"]), *[_shown(c["values"].get(k)) for k in names]]
                     + ([shown(c["agg"])] if metric else []))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    k = len(data.get("seeds") or []) or max((len(c["runs"]) for c in configs), default=0)
    head = f"Sweep {data['id']}: {len(configs)} configurations x {k} seeds, {len(data['trials'])} runs"
    if data.get("study"):
        head += f" in study {data['study']!r}"
    lines = [head + (f", best mean {metric} first" if metric else "")]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    if metric and scored:
        best = rows[0]
        params = ", ".join(f"{k}={_shown(best['values'].get(k))}" for k in names)
        a = best["agg"]
        lines.append(f"Best: trial {best['n']} ({params}), {metric} {fmt_num(a['mean'])}"
                     + (f" ± {fmt_num(a['std'])}" if a["std"] is not None else "")
                     + f" (n={a['n']}). Its runs: runlog ls --sweep {data['id']} --group; "
                     "re-run its first seed:")
        lines.append(f"  runlog run -- {best['runs'][0].get('command_line') or ''}")
    return "\n".join(lines) + "\n"
