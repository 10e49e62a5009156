"""Which stderr lines are a Python traceback (an error, not just output)."""

from __future__ import annotations


class ErrorBlocks:
    """A Python traceback written to stderr is an error: its lines are tagged ERROR, not ERR,
    so ``runlog tail --level ERROR`` shows a crash. From "Traceback (most recent call
    last):" (an ExceptionGroup's "  + Exception Group Traceback ...") through the exception
    line, and chained tracebacks with it."""

    _JOINS = ("During handling of the above exception", "The above exception was the direct")
    _GROUP = "  + Exception Group Traceback (most recent call last):"  # ExceptionGroup's, indented

    def __init__(self):
        self.state = 0  # 0 outside, 1 inside a traceback, 2 right after one
        self.group = False  # inside an ExceptionGroup's
        self.block = None  # the lines since the last traceback began, bounded (``coexist``)

    def tag(self, line: str, default: str) -> str:
        group = line.startswith(self._GROUP)
        if group or line.startswith("Traceback (most recent call last):"):
            if self._joined():
                self.block.append(line)  # a chained one
            else:  # right after another without "The above exception ...": not chained to it
                self.block = [line]
            self.state, self.group = 1, group
            return "ERROR"
        if self.block is not None:
            if len(self.block) < 2000:
                self.block.append(line)
            else:
                self.block = None
        if self.state == 1:
            if not line[:1].isspace() and line.strip():
                if self.group and not line.startswith(self._JOINS):
                    self.state = 0  # a group's lines are all indented: this one is not its
                    return default
                self.state = 2  # the exception line closes the block
            return "ERROR"
        if self.state == 2 and (not line.strip() or line.startswith(self._JOINS)):
            return "ERROR"
        self.state = 0
        return default

    def _joined(self) -> bool:
        """Whether the block's last line but blank ones says the next traceback is chained
        to it (notes, ``add_note``, may come between its exception line and that one)."""
        for ln in reversed(self.block or ()):
            if ln.strip():
                return ln.startswith(self._JOINS)
        return False
