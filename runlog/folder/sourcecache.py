"""What was read from a source file, kept while the file is unchanged: a cache.

Reading a script's configuration globals parses its source (``ast``: ~2 ms of
imports and parsing at every exit). A script is run many times unchanged, so
``.runlog-sources/<key>`` keeps, per file and per reading (``kind``), the
file's size, mtime and inode when it was read, and what was read. An entry
whose file has changed since, or that cannot be read, is a miss: the caller
reads the source again. Nothing here is ever the truth; deleting the folder
costs one parse per script.
"""

from __future__ import annotations

import json
import os

from .latest import key as _key
from .layout import LogDir
from .record import write_atomic


class Entry:
    """One file's entry: ``value`` is what was read (None: a miss); ``stamp`` is taken
    before the caller reads the file, so an edit during the read is a miss next time."""

    __slots__ = ("path", "value", "_file", "_stamp")

    def __init__(self, root: str, path: str, kind: str):
        self.path = os.path.abspath(path)
        self.value = None
        self._file = os.path.join(LogDir(root).sources, _key(f"{kind}\0{self.path}"))
        try:
            st = os.stat(self.path)
            self._stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        except OSError:
            self._stamp = None
            return
        try:
            with open(self._file, encoding="utf-8") as f:
                got = json.loads(f.read())
        except (OSError, ValueError):
            return
        if isinstance(got, dict) and got.get("path") == self.path and got.get("stamp") == self._stamp:
            self.value = got.get("value")

    def keep(self, value) -> None:
        """What was read now, for the next reader of the unchanged file."""
        if self._stamp is None:
            return
        text = json.dumps({"path": self.path, "stamp": self._stamp, "value": value},
                          ensure_ascii=False)
        try:
            try:
                write_atomic(self._file, text)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(self._file), exist_ok=True)
                write_atomic(self._file, text)
        except OSError:  # a cache: a read-only or full log directory costs a parse, nothing else
            pass
