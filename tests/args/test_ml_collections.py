"""ml_collections' ``config_flags.DEFINE_config_file`` (absl): the config recorded nested,
its ``--config.x=`` overrides given, the rest from the config file. Real scripts, real
packages, real subprocesses."""

from __future__ import annotations

import pytest

from conftest import write_script

SCRIPT = """\
from absl import app, flags
from ml_collections import config_flags
import runlog
_CONFIG = config_flags.DEFINE_config_file("config", "cfg.py")
flags.DEFINE_integer("seed", 0, "seed")
{top}def main(argv):
    {start}print(_CONFIG.value.lr)
app.run(main)
"""


@pytest.mark.parametrize("where", ["in main", "before app.run"])
def test_config_file_flag_nested_with_overrides_given(run_script, tmp_path, where):
    pytest.importorskip("ml_collections")
    write_script(tmp_path, """\
        import ml_collections
        def get_config():
            c = ml_collections.ConfigDict()
            c.lr = 0.1
            c.epochs = 3
            c.model = ml_collections.ConfigDict({"layers": 2})
            return c
        """, "cfg.py")
    top = "runlog.start(git=False)\n" if where == "before app.run" else ""
    start = "" if top else "runlog.start(git=False)\n    "
    p, d, r = run_script(SCRIPT.format(top=top, start=start), "--config.lr=0.5",
                         "--config.model.layers", "4", "--seed", "2")
    assert "0.5" in p.stdout
    # the override flags are not recorded a second time beside the config they changed
    assert r["args"] == {"config": {"lr": 0.5, "epochs": 3, "model": {"layers": 4}}, "seed": 2}
    assert r["args_given"] == ["seed", "config.lr", "config.model.layers"]
    assert r["args_source"] == {"seed": "command line", "config.lr": "command line",
                                "config.model.layers": "command line", "config.epochs": "cfg.py"}
    report = (d / "report.md").read_text()
    assert "- Args given: seed=2, config.lr=0.5, config.model.layers=4" in report
    assert "- From cfg.py: config.epochs=3" in report
