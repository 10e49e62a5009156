"""The clipboard: the report copied where the user can paste it."""

from __future__ import annotations

import os


class _quiet_fds:
    """stdout and stderr on /dev/null while a clipboard tool starts.

    xclip and xsel fork a process that stays to serve the selection; it would
    inherit our stdout and hold a pipe open (``runlog report --copy | cat``
    would never end).
    """

    def __enter__(self):
        self.saved = []
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            for fd in (1, 2):
                self.saved.append((fd, os.dup(fd)))
                os.dup2(null, fd)
            os.close(null)
        except OSError:
            pass
        return self

    def __exit__(self, *exc):
        for fd, copy in self.saved:
            os.dup2(copy, fd)
            os.close(copy)


def osc52(text: str) -> str:
    """The terminal escape that puts text on the clipboard of the user's own machine."""
    import base64

    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"\x1b]52;c;{data}\x07"


def copy(text: str) -> str | None:
    """Put text on the clipboard. Returns None, or one line saying why it could not."""
    try:
        import pyperclip

        with _quiet_fds():
            pyperclip.copy(text)
        return None
    except Exception as e:  # no clipboard here: over SSH, OSC 52 reaches the user's terminal
        if os.environ.get("SSH_TTY") or os.environ.get("SSH_CONNECTION"):
            try:
                with open("/dev/tty", "w") as tty:
                    tty.write(osc52(text))
                return None
            except OSError:
                pass
        return f"could not copy the report: {_why(e)}"


def _why(e: Exception) -> str:
    """pyperclip's paragraph (with its URL) as a few words a user can act on."""
    text = str(e)
    if type(e).__name__ == "PyperclipException" or "copy/paste mechanism" in text:
        if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return "no clipboard here (no display; over SSH a terminal with OSC 52 gets it)"
        return "no clipboard program here (install xclip, xsel or wl-clipboard)"
    first = text.splitlines()[0].split(" http")[0].strip() if text.strip() else type(e).__name__
    return f"no clipboard here ({first[:100]})"
