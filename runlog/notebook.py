"""Jupyter, Colab and IPython: a run that spans cells, and its cells saved with it.

In a notebook there is no script file and no command line; the code that ran
is the cells. Every cell executed while the run is open is saved to
``cells.py`` (the notebook's counterpart of ``code.patch``), a cell that
raises is logged with its traceback (the run goes on, as the notebook does),
and the report is shown as rendered Markdown.
"""

from __future__ import annotations

import os
import sys

from .folder.layout import RunFolder


def shell():
    """The running IPython shell, if any (imported by the notebook, never by us)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:
        return None


def notebook_path(ip) -> str | None:
    """The notebook's file, where the front end tells us (Jupyter Server, VS Code)."""
    ns = getattr(ip, "user_ns", {}) or {}
    for value in (ns.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME"),
                  ns.get("__session__")):
        if isinstance(value, str) and value:
            return value
    return None


class Cells:
    """Follows the cells executed during a run."""

    def __init__(self, ip, run):
        self.ip = ip
        self.run = run
        # the cell running start() is the last one IPython stored: In[len(In) - 1]
        inputs = (getattr(ip, "user_ns", {}) or {}).get("In")
        if isinstance(inputs, list) and len(inputs) > 1:
            self.first = len(inputs) - 1
        else:
            self.first = max(int(getattr(ip, "execution_count", 0) or 0), 1)

    def after_cell(self, result) -> None:
        """IPython's post_run_cell event (registered through ``patches``)."""
        error = getattr(result, "error_in_exec", None)
        log = self.run.log
        if error is None or log is None or self.run.finished:
            return
        import traceback

        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        n = getattr(getattr(result, "info", None), "cell_id", None) or getattr(
            result, "execution_count", "?")
        log.line("ERROR", f"cell [{n}] raised:\n{text.rstrip()}")

    def save(self, run_dir: str) -> str | None:
        inputs = (getattr(self.ip, "user_ns", {}) or {}).get("In") or []
        parts = []
        for n in range(self.first, len(inputs)):
            src = inputs[n]
            if src and src.strip():
                parts.append(f"# In[{n}]:\n{src.rstrip()}\n")
        if not parts:
            return None
        folder = RunFolder(run_dir)
        with open(folder.cells, "w", encoding="utf-8") as f:
            f.write("\n".join(parts))
        return os.path.basename(folder.cells)


def show_markdown(text: str) -> bool:
    """Render the report in the notebook; False where that is not possible."""
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
        return True
    except Exception:
        return False
