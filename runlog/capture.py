"""Capturing what the script prints: a tee on ``sys.stdout``/``sys.stderr``, and the handlers
of library loggers that print to those streams but never reach runlog's root handler.

``transformers``, ``datasets``, ``diffusers`` and many others give their top logger its own
``StreamHandler`` and turn ``propagate`` off. Made before ``start()``, that handler holds the
real stderr, not the tee: what it prints would reach the terminal and never run.log. Such
handlers are pointed at the tee for the run (the same bytes reach the same terminal) and put
back at the end; so are loguru's sinks on those streams (its default sink holds the stderr of
``from loguru import logger``).
"""

from __future__ import annotations

import sys

from . import patches as patches_mod


def tee_streams(run, log) -> None:
    """Tee stdout and stderr into ``log`` for ``run`` (its patches and its tees)."""
    from .output import Tee

    p = run.patches
    for attr, tag in (("stdout", "OUT"), ("stderr", "ERR")):
        stream = getattr(sys, attr)
        if stream is not None:
            tee = Tee(stream, log, tag)
            p.apply(attr, patches_mod.std_stream, attr, tee)
            run._tees.append(tee)
    if run._tees:
        p.apply("library_handlers", library_handlers, list(run._tees))


def library_handlers(tees: list):
    """Point at ``tees`` the stream handlers, on loggers whose records never reach the root,
    that write to a stream a tee wraps; returns the undo, or None when there is none."""
    logging = sys.modules.get("logging")
    handler_list = getattr(logging, "_handlerList", None) or []
    wrapped = {id(t._stream): t for t in tees}
    moved = _loguru_sinks(wrapped)
    on_root = logging.root.handlers
    candidates = []
    for ref in list(handler_list):
        h = ref() if callable(ref) else None
        if (isinstance(h, logging.StreamHandler) and id(getattr(h, "stream", None)) in wrapped
                and h not in on_root):
            candidates.append(h)
    for logger in list(logging.root.manager.loggerDict.values()) if candidates else ():
        if not isinstance(logger, logging.Logger) or not logger.handlers or _reaches_root(logger):
            continue
        for h in list(logger.handlers):
            if h in candidates and all(h is not m[0] for m in moved):
                original = h.stream
                tee = wrapped.get(id(original))
                if tee is not None:
                    h.setStream(tee)
                    moved.append((h, original, tee))
    if not moved:
        return None

    def undo():
        for h, original, tee in moved:
            if isinstance(h, logging.Handler):
                if h.stream is tee:  # not pointed elsewhere since
                    h.setStream(original)
            elif getattr(h, "_stream", None) is tee:
                h._stream = original

    return undo


def _loguru_sinks(wrapped: dict) -> list:
    """loguru's sinks on a stream a tee wraps (its default one: the stderr of ``from loguru
    import logger``), pointed at the tee; [(sink, original, tee)]. Its internals, read
    carefully: a loguru that differs is left alone."""
    loguru = sys.modules.get("loguru")
    moved = []
    try:
        handlers = loguru.logger._core.handlers if loguru is not None else {}
        for handler in list(handlers.values()):
            sink = getattr(handler, "_sink", None)
            if type(sink).__name__ == "StreamSink" and id(getattr(sink, "_stream", None)) in wrapped:
                original = sink._stream
                tee = wrapped[id(original)]
                sink._stream = tee
                moved.append((sink, original, tee))
    except Exception:
        pass
    return moved


def _reaches_root(logger) -> bool:
    while logger is not None:
        if not logger.parent:
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return True
