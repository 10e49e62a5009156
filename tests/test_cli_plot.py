"""`runlog plot`: curves of real runs, in the terminal and as files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import integration

from runlog.cli import main as cli
from runlog.cli.plot import sparkline


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    d = tmp_path_factory.mktemp("plot")
    (d / "t.py").write_text(textwrap.dedent("""\
        import runlog, sys
        run = runlog.start(git=False, note="lr " + sys.argv[1])
        lr = float(sys.argv[1])
        loss = 1.0
        for step in range(40):
            loss *= 1 - lr
            run.metric("loss", loss, step=step)
        run.metric("final", 1.0)
        """))
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    for lr in ("0.05", "0.2"):
        subprocess.run([sys.executable, "t.py", lr], cwd=d, env=env, check=True,
                       capture_output=True)
    return d / "logs"


def test_terminal_plot(logs, capsys):
    assert cli(["--dir", str(logs), "plot", "-2", "-1", "-m", "loss"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("loss  (shared axes: steps 0–39, values ") and len(lines) == 3
    slow, fast = (line.split()[1] for line in lines[1:])  # lr 0.05, then lr 0.2
    assert len(slow) == len(fast) == 60  # one x axis: both runs span it
    assert slow[0] == "█" and fast[0] < slow[0]  # 0.95 and 0.8 after a step, on one scale
    assert fast[-1] == "▁" and slow[-1] > "▁"  # on one scale, the slow run ends higher
    assert "min 0.0001329" in lines[2]  # 0.8 ** 40


def test_terminal_plot_shares_its_axes(tmp_path, capsys):
    # two runs whose curves differ 2x, of 20 and 40 steps: they must not draw alike
    (tmp_path / "t.py").write_text(textwrap.dedent("""\
        import runlog, sys
        run = runlog.start(git=False)
        scale, steps = float(sys.argv[1]), int(sys.argv[2])
        for step in range(steps):
            run.metric("acc", scale * step / 40, step=step)
        """))
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    for scale, steps in (("1", "40"), ("0.5", "20")):
        subprocess.run([sys.executable, "t.py", scale, steps], cwd=tmp_path, env=env,
                       check=True, capture_output=True)
    assert cli(["--dir", str(tmp_path / "logs"), "plot", "-2", "-1"]) == 0
    full, half = capsys.readouterr().out.splitlines()[1:3]
    full, half = full[2:].split("  ", 1)[1], half[2:].split("  ", 1)[1]
    full, half = full[:60].rstrip(), half[:60].rstrip()
    assert len(full) == 60 and 28 <= len(half) <= 31  # 20 of 40 steps: half the x axis
    assert full[-1] == "█" and max(half) <= "▂"  # half the value: a quarter of the height


def test_file_plot(logs, tmp_path, capsys):
    integration("matplotlib")
    png, svg = tmp_path / "c.png", tmp_path / "c.svg"
    assert cli(["--dir", str(logs), "plot", "-2", "-1", "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert cli(["--dir", str(logs), "plot", "-1", "-m", "loss", "-o", str(svg)]) == 0
    text = svg.read_text()
    assert "<svg" in text and "lr 0.2" in text


def test_file_plot_legend_is_off_the_curves(logs):
    # one legend for every panel, below them: its box on the canvas meets no panel's
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from runlog.cli.common import all_runs
    from runlog.cli.plot import figure, series

    runs = all_runs(str(logs))[:2]
    data = [(r, series(r, str(logs))) for r in runs]
    fig, legend = figure(plt, data, ["loss", "final"])
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box = legend.get_window_extent(renderer)
        texts = [t.get_text() for t in legend.get_texts()]
        assert sorted(texts) == sorted(f"{r['id']} — {r['note']}" for r in runs)
        for ax in fig.axes:
            panel = ax.get_tightbbox(renderer)  # the panel with its ticks and labels
            assert box.y1 <= panel.y0 or box.x1 <= panel.x0 or box.x0 >= panel.x1, (box, panel)
    finally:
        plt.close(fig)


def test_errors(logs, capsys):
    assert cli(["--dir", str(logs), "plot", "-m", "nope"]) == 1
    assert "no chosen run has a metric 'nope'" in capsys.readouterr().err
    assert cli(["--dir", str(logs), "plot", "-o", "x.txt"]) == 1
    assert "-o needs a .png" in capsys.readouterr().err


def test_sparkline_buckets_long_series():
    assert sparkline(list(range(1000)), 10) == "▁▁▂▃▄▅▆▇██"  # 10 bucket means, rising
    assert sparkline([2, 2, 2]) == "▄▄▄"
