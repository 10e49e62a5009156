"""``runlog plot``: metric curves of runs, in the terminal or as a PNG/SVG for a notes app."""

from __future__ import annotations


from ..fmt import fmt_num, printable
from ..folder.metrics import read_points
from .common import CliError, all_runs, find, folder, out

BLOCKS = "▁▂▃▄▅▆▇█"
WIDTH = 60


def series(run: dict, root: str) -> dict[str, list[tuple]]:
    d = folder(root, run).path
    s: dict[str, list[tuple]] = {}
    for i, p in enumerate(read_points(d)):
        v = p.get("value")
        if isinstance(v, (int, float)) and v == v and abs(v) != float("inf"):
            s.setdefault(p.get("name", "?"), []).append((p.get("step", i) if p.get("step")
                                                         is not None else i, v))
    return s


def sparkline(values: list[float], width: int = WIDTH) -> str:
    if len(values) > width:  # bucket means keep the shape
        k = len(values) / width
        values = [sum(values[int(i * k):max(int((i + 1) * k), int(i * k) + 1)])
                  / len(values[int(i * k):max(int((i + 1) * k), int(i * k) + 1)])
                  for i in range(width)]
    lo, hi = min(values), max(values)
    if hi == lo:
        return BLOCKS[3] * len(values)
    return "".join(BLOCKS[min(7, int((v - lo) / (hi - lo) * 7.999))] for v in values)


def shared_line(pts: list[tuple], lo: float, hi: float, x_lo: float, x_hi: float,
                width: int = WIDTH) -> str:
    """One run's curve on axes shared by every run shown: its steps place its points
    along the line (a run of 20 steps fills half of one of 40), its values share one
    scale (a curve twice as high draws twice as high). Past its last step it is blank."""
    cols: list[list[float]] = [[] for _ in range(width)]
    span = (x_hi - x_lo) or 1
    for x, v in pts:
        cols[min(width - 1, int((x - x_lo) / span * (width - 1) + 0.5))].append(v)
    filled = [i for i, c in enumerate(cols) if c]
    for i in range(filled[0] if filled else width, filled[-1] if filled else 0):
        if not cols[i]:  # between two points of the run: the line goes on
            cols[i] = cols[i - 1]
    out = []
    for c in cols:
        if not c:
            out.append(" ")
        elif hi == lo:
            out.append(BLOCKS[3])
        else:
            v = sum(c) / len(c)
            out.append(BLOCKS[min(7, max(0, int((v - lo) / (hi - lo) * 7.999)))])
    return "".join(out).rstrip()


def grouped_data(root: str, runs: list[dict], chosen: list[dict]) -> list[tuple]:
    """``--group``: each chosen run brings the runs that differ from it only in their seed
    (``groups``); each group is one curve, the mean by step of its finished runs (all its
    runs when none finished), with a band of ± one std where two or more have the step."""
    from .groups import group_key, grouped, mean_std

    keys = {group_key(r) for r in chosen}
    data = []
    for g in grouped(r for r in runs if group_key(r) in keys):
        members = g.finished or g.runs
        by_name: dict[str, dict] = {}
        for r in members:
            for name, pts in series(r, root).items():
                for x, v in pts:
                    by_name.setdefault(name, {}).setdefault(x, []).append(v)
        mean, band = {}, {}
        for name, steps in by_name.items():
            aggs = [(x, mean_std(vs)) for x, vs in sorted(steps.items())]
            mean[name] = [(x, a["mean"]) for x, a in aggs]
            band[name] = [(x, a["mean"] - a["std"], a["mean"] + a["std"]) for x, a in aggs
                          if a["std"] is not None]
        head = dict(g.runs[0], id=f"{g.runs[0]['id']} (n={len(members)})", band=band)
        data.append((head, mean))
    return data


def plot(root: str, specs: list[str], metric: str | None = None, output: str | None = None,
         group: bool = False) -> int:
    runs = all_runs(root)
    chosen = [find(root, s, runs) for s in (specs or ["-1"])]
    data = grouped_data(root, runs, chosen) if group else [(r, series(r, root)) for r in chosen]
    names: list[str] = []
    for _, s in data:
        names += [n for n in s if n not in names]
    if metric:
        if metric not in names:
            raise CliError(printable(f"no chosen run has a metric {metric!r} (they have: "
                                     f"{', '.join(names) or 'none'})"))
        names = [metric]
    if not names:
        raise CliError("the chosen runs recorded no metric points")
    if output:
        return _to_file(data, names, output)
    w = max(len(r["id"]) for r, _ in data)
    lines = []
    for name in names:
        curves = [(r, s[name]) for r, s in data if s.get(name)]
        every = [p for _, pts in curves for p in pts]
        lo, hi = min(v for _, v in every), max(v for _, v in every)
        x_lo, x_hi = min(x for x, _ in every), max(x for x, _ in every)
        lines.append(printable(name) + f"  (shared axes: steps {fmt_num(x_lo)}–{fmt_num(x_hi)}, "
                                       f"values {fmt_num(lo)}–{fmt_num(hi)})")
        for r, pts in curves:
            vals = [v for _, v in pts]
            line = shared_line(pts, lo, hi, x_lo, x_hi)
            lines.append(f"  {r['id']:<{w}}  {line:<{WIDTH}}  last {fmt_num(vals[-1])}  "
                         f"min {fmt_num(min(vals))}  max {fmt_num(max(vals))}")
    out("\n".join(lines) + "\n")
    return 0


LABEL_CHARS = 80  # of "id — note" in a figure's legend


def figure(plt, data, names: list[str]):
    """The curves of every run, one panel per metric, and one legend for all of them
    below the panels: a legend inside a panel sits on the curves it names."""
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    handles: dict[str, object] = {}
    for ax, name in zip(axes[0], names):
        for i, (r, s) in enumerate(data):
            pts = s.get(name)
            if pts:
                label = r["id"] + (f" — {r['note']}" if r.get("note") else "")
                label = label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"
                (line,) = ax.plot([x for x, _ in pts], [y for _, y in pts], linewidth=1.4,
                                  color=f"C{i % 10}")
                band = (r.get("band") or {}).get(name)
                if band:  # --group: mean ± std over the seeds
                    ax.fill_between([x for x, _, _ in band], [lo for _, lo, _ in band],
                                    [hi for _, _, hi in band], color=f"C{i % 10}", alpha=0.2,
                                    linewidth=0)
                handles.setdefault(label, line)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    left = axes[0][0].get_position().x0
    legend = fig.legend(list(handles.values()), list(handles), loc="upper left", fontsize=7,
                        frameon=False, bbox_to_anchor=(left, 0), bbox_transform=fig.transFigure)
    return fig, legend


def _to_file(data, names: list[str], output: str) -> int:
    if not output.lower().endswith((".png", ".svg", ".pdf")):
        raise CliError("-o needs a .png, .svg or .pdf file name")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError("plotting to a file needs matplotlib: pip install 'runlog[plot]'") from None
    fig, legend = figure(plt, data, names)
    try:
        # "tight" grows the canvas to hold the legend hung below the axes
        fig.savefig(output, dpi=130, bbox_inches="tight", bbox_extra_artists=[legend])
    except OSError as e:
        raise CliError(f"could not write {output} ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    out(f"{output}\n")
    return 0
