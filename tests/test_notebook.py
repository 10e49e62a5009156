"""A real notebook executed in a real kernel with nbclient: the run spans cells."""

from __future__ import annotations

import json


from conftest import integration

nbformat = integration("nbformat")
nbclient = integration("nbclient")
integration("ipykernel")

CELLS = [
    "import runlog, logging\nrun = runlog.start(note='from a notebook', git=False)\nlr = 0.1",
    "for i in range(3):\n    run.metric('loss', 1 / (i + 1), step=i)\n"
    "logging.getLogger('nb').info('trained with lr %s', lr)\nprint('printed')",
    "1 / 0",
    "print('still running:', runlog.current() is run)",
    "runlog.finish()",
    "print('after finish:', runlog.current())",
]


def execute(tmp_path, sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


def outputs(cell) -> str:
    text = []
    for o in cell.get("outputs", []):
        text.append(o.get("text") or "")
        text.append((o.get("data") or {}).get("text/markdown", ""))
        text.append(o.get("ename") or "")
    return "".join(text)


def test_run_spans_cells_and_saves_them(tmp_path):
    nb = execute(tmp_path, CELLS)
    (run_dir,) = [p for p in (tmp_path / "logs").iterdir() if p.is_dir() and not p.name.startswith(".")]
    r = json.loads((run_dir / "run.json").read_text())
    assert r["status"] == "finished"
    assert r["note"] == "from a notebook"
    assert r["metrics"]["loss"]["count"] == 3
    assert r["command"] == [] and r["cells"] == "cells.py"
    assert "still running: True" in outputs(nb.cells[3])
    assert "after finish: None" in outputs(nb.cells[5])
    # the report is rendered as Markdown in the notebook, not printed as text
    (md,) = [o for o in nb.cells[4]["outputs"] if o["output_type"] == "display_data"]
    assert md["data"]["text/markdown"].startswith(f"## Run {r['id']} · finished")
    cells = (run_dir / "cells.py").read_text()
    for src in CELLS[:5]:
        assert src in cells
    log = (run_dir / "run.log").read_text()
    assert "INFO    nb: trained with lr 0.1" in log
    assert "OUT     printed" in log
    assert "ZeroDivisionError: division by zero" in log  # a failing cell is logged, the run goes on


def test_with_block_ends_the_run(tmp_path):
    execute(tmp_path, ["import runlog\nwith runlog.start(git=False) as run:\n"
                       "    run.metric('acc', 0.9)\nprint(run.finished)"])
    (run_dir,) = [p for p in (tmp_path / "logs").iterdir() if p.is_dir() and not p.name.startswith(".")]
    r = json.loads((run_dir / "run.json").read_text())
    assert r["status"] == "finished" and r["metrics"]["acc"]["last"] == 0.9
