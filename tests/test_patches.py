"""patches.py: every process-wide change runlog makes, installed and undone."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from runlog import patches
from runlog.patches import ORDER, Patches

SIG = signal.SIGUSR1  # a real signal this test process may take


@pytest.fixture(autouse=True)
def restored(monkeypatch):
    """Whatever a test changes in the process is put back, even when it fails."""
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    for obj, name in ((sys, "stdout"), (sys, "stderr"), (sys, "excepthook"), (sys, "exit"),
                      (logging, "basicConfig")):
        monkeypatch.setattr(obj, name, getattr(obj, name))
    handler = signal.getsignal(SIG)
    yield
    signal.signal(SIG, handler)
    root.setLevel(level)
    root.handlers[:] = handlers


def raise_signal_here() -> None:
    """Send SIG to this process and wait until its Python handler has run."""
    done = threading.Event()
    wrapped = signal.getsignal(SIG)

    def mark(signum, frame):  # runs after the handler under test
        done.set()

    signal.signal(SIG, lambda s, f: (wrapped(s, f), mark(s, f)))
    os.kill(os.getpid(), SIG)
    assert done.wait(60)
    signal.signal(SIG, wrapped)


# ---------------------------------------------------------------- each change and its undo


def test_root_logger_adds_the_handler_and_lowers_the_level():
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    h = logging.NullHandler()
    undo = patches.root_logger(h, logging.INFO)
    assert h in root.handlers and root.level == logging.INFO
    undo()
    assert h not in root.handlers and root.level == logging.WARNING


def test_root_logger_keeps_a_lower_level_and_one_set_since():
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    patches.root_logger(logging.NullHandler(), logging.INFO)()
    assert root.level == logging.DEBUG  # never raised
    root.setLevel(logging.WARNING)
    undo = patches.root_logger(logging.NullHandler(), logging.INFO)
    root.setLevel(logging.ERROR)  # the script's own choice, after start()
    undo()
    assert root.level == logging.ERROR


def test_basic_config_is_wrapped_and_put_back():
    original = logging.basicConfig
    calls = []

    def make(orig):
        def wrapper(**kw):
            calls.append(kw)
        return wrapper

    undo = patches.basic_config(make)
    logging.basicConfig(level=logging.INFO)
    assert calls == [{"level": logging.INFO}] and logging.basicConfig is not original
    undo()
    assert logging.basicConfig is original


@pytest.mark.parametrize("name", ["stdout", "stderr"])
def test_std_stream_is_replaced_and_put_back(name):
    original, tee = getattr(sys, name), io.StringIO()
    undo = patches.std_stream(name, tee)
    print("through the tee", file=getattr(sys, name))
    undo()
    assert getattr(sys, name) is original and tee.getvalue() == "through the tee\n"


def test_excepthook_tells_then_calls_the_previous_hook():
    told, previous_saw = [], []
    sys.excepthook = previous = lambda t, e, tb: previous_saw.append(t)  # noqa: E731
    undo = patches.excepthook(lambda t, e, tb: told.append(str(e)))
    try:
        raise ValueError("boom")
    except ValueError:
        sys.excepthook(*sys.exc_info())  # what the interpreter does with an uncaught one
    assert told == ["boom"] and previous_saw == [ValueError]
    undo()
    assert sys.excepthook is previous
    sys.excepthook(ValueError, ValueError("again"), None)
    assert told == ["boom"] and previous_saw == [ValueError, ValueError]


def test_excepthook_in_a_real_uncaught_exception_even_when_the_callback_fails():
    code = textwrap.dedent("""\
        from runlog import patches
        def told(t, e, tb):
            print("told", t.__name__, flush=True)
            raise RuntimeError("the callback fails")
        patches.excepthook(told)
        raise ValueError("boom")
        """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stdout == "told ValueError\n"
    assert p.stderr.rstrip().endswith("ValueError: boom")  # the default hook still printed it


def test_sys_exit_tells_then_exits_as_before():
    original, told = sys.exit, []
    undo = patches.sys_exit(told.append)
    with pytest.raises(SystemExit) as e:
        sys.exit(3)
    assert told == [3] and e.value.code == 3
    undo()
    assert sys.exit is original


def test_sys_exit_exits_even_when_the_callback_fails():
    def fails(status):
        raise RuntimeError("no")

    patches.sys_exit(fails)
    with pytest.raises(SystemExit) as e:
        sys.exit("text")
    assert e.value.code == "text"


def test_signals_a_real_signal_reaches_the_handler_with_the_previous_one():
    heard = []
    signal.signal(SIG, lambda s, f: heard.append("the script's own"))
    own = signal.getsignal(SIG)

    def on_signal(signum, frame, previous):
        heard.append(("runlog", signum))
        previous(signum, frame)

    undo = patches.signals(["SIGUSR1"], on_signal)
    assert signal.getsignal(SIG) is not own
    raise_signal_here()
    assert heard == [("runlog", SIG), "the script's own"]
    undo()
    assert signal.getsignal(SIG) is own
    raise_signal_here()
    assert heard[-1] == "the script's own" and len(heard) == 3


def test_signals_with_the_default_action_get_it_as_previous():
    signal.signal(SIG, signal.SIG_DFL)
    got = []
    undo = patches.signals(["SIGUSR1"], lambda s, f, prev: got.append(prev))
    raise_signal_here()
    assert got == [signal.SIG_DFL]
    undo()
    assert signal.getsignal(SIG) == signal.SIG_DFL


def test_signals_left_alone_when_ignored_unknown_or_off_the_main_thread():
    signal.signal(SIG, signal.SIG_IGN)  # nohup: ignored on purpose
    assert patches.signals(["SIGUSR1", "SIGNOSUCH"], lambda *a: None) is None
    assert signal.getsignal(SIG) == signal.SIG_IGN
    signal.signal(SIG, signal.SIG_DFL)
    result = []
    t = threading.Thread(target=lambda: result.append(patches.signals(["SIGUSR1"], print)))
    t.start()
    t.join()
    assert result == [None] and signal.getsignal(SIG) == signal.SIG_DFL


def test_at_exit_runs_at_exit_unless_undone():
    code = textwrap.dedent("""\
        from runlog import patches
        undo_a = patches.at_exit(lambda: print("a"))
        patches.at_exit(lambda: print("b"))
        undo_a()
        print("end")
        """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout == "end\nb\n", p.stderr


class FakeIPython:
    """Just the part of IPython's shell that runlog touches."""

    def __init__(self, fail=False):
        outer = self
        self.fail, self.callbacks = fail, []

        class Events:
            def register(self, event, fn):
                if outer.fail:
                    raise ValueError("unknown event")
                outer.callbacks.append((event, fn))

            def unregister(self, event, fn):
                outer.callbacks.remove((event, fn))

        self.events = Events()


def test_ipython_event_registered_and_unregistered():
    ip, fn = FakeIPython(), lambda result: None
    undo = patches.ipython_event(ip, "post_run_cell", fn)
    assert ip.callbacks == [("post_run_cell", fn)]
    undo()
    assert ip.callbacks == []
    undo()  # unregistering again fails inside IPython, quietly
    assert patches.ipython_event(FakeIPython(fail=True), "post_run_cell", fn) is None


# ---------------------------------------------------------------- two patches of one thing


def the_thing(kind):
    return {
        "basic_config": lambda: logging.basicConfig,
        "stdout": lambda: sys.stdout,
        "excepthook": lambda: sys.excepthook,
        "sys_exit": lambda: sys.exit,
        "signals": lambda: signal.getsignal(SIG),
        "root_logger": lambda: (logging.getLogger().level, logging.getLogger().handlers[:]),
    }[kind]()


def patch(kind, n):
    """runlog's n-th change of ``kind`` (two runs' worth), returning its undo."""
    if kind == "basic_config":
        return patches.basic_config(lambda orig: lambda **kw: None)
    if kind == "stdout":
        return patches.std_stream("stdout", io.StringIO())
    if kind == "excepthook":
        return patches.excepthook(lambda *a: None)
    if kind == "sys_exit":
        return patches.sys_exit(lambda status: None)
    if kind == "signals":
        return patches.signals(["SIGUSR1"], lambda *a: None)
    return patches.root_logger(logging.NullHandler(), (logging.INFO, logging.DEBUG)[n])


def someone_else_replaces(kind, before):
    """Another library changes the same thing after runlog; returns what must stay."""
    if kind == "root_logger":
        theirs = logging.StreamHandler(io.StringIO())
        logging.getLogger().setLevel(logging.CRITICAL)
        logging.getLogger().addHandler(theirs)
        return logging.CRITICAL, before[1] + [theirs]  # runlog's handlers go, theirs stays
    if kind == "signals":
        signal.signal(SIG, lambda s, f: None)
    else:
        obj, name = {"basic_config": (logging, "basicConfig"), "stdout": (sys, "stdout"),
                     "excepthook": (sys, "excepthook"), "sys_exit": (sys, "exit")}[kind]
        setattr(obj, name, lambda *a, **k: None)
    return the_thing(kind)


KINDS = ["basic_config", "stdout", "excepthook", "sys_exit", "signals", "root_logger"]


@pytest.fixture
def start_state():
    logging.getLogger().setLevel(logging.WARNING)
    signal.signal(SIG, signal.SIG_DFL)


@pytest.mark.parametrize("kind", KINDS)
def test_two_patches_undone_newest_first_leave_the_original(kind, start_state):
    original = the_thing(kind)
    undo_a, undo_b = patch(kind, 0), patch(kind, 1)
    undo_b()
    undo_a()
    assert the_thing(kind) == original


@pytest.mark.parametrize("kind", KINDS)
def test_two_patches_undone_oldest_first_leave_the_original(kind, start_state):
    original = the_thing(kind)
    undo_a, undo_b = patch(kind, 0), patch(kind, 1)
    undo_a()
    undo_b()
    assert the_thing(kind) == original


@pytest.mark.parametrize("order", ["newest first", "oldest first"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_replacement_made_after_runlog_is_never_clobbered(kind, order, start_state):
    before = the_thing(kind)
    undos = [patch(kind, 0), patch(kind, 1)]
    theirs = someone_else_replaces(kind, before)
    for undo in (reversed(undos) if order == "newest first" else undos):
        undo()
    assert the_thing(kind) == theirs


# ---------------------------------------------------------------- Patches


def test_apply_in_the_declared_order_and_refuse_another():
    p, made = Patches(), []

    def change(name):
        made.append(name)
        return lambda: None

    assert p.apply("root_logger", change, "root_logger")
    assert p.apply("stdout", change, "stdout") and p.apply("stdout", change, "stdout")
    with pytest.raises(RuntimeError, match="'basic_config' applied after 'stdout'"):
        p.apply("basic_config", change, "basic_config")
    with pytest.raises(ValueError, match="unknown patch"):
        p.apply("clipboard", change, "clipboard")
    assert not p.apply("signals", lambda: None)  # changed nothing: nothing to undo
    assert p.apply("excepthook", change, "excepthook")
    assert made == ["root_logger", "stdout", "stdout", "excepthook"]
    assert p.names() == ["root_logger", "stdout", "stdout", "excepthook"]


def test_every_name_in_order_is_accepted():
    p = Patches()
    for name in ORDER:
        assert p.apply(name, lambda: lambda: None)
    assert p.names() == list(ORDER)


def test_undo_newest_first_goes_on_after_a_failure_and_says_it_once(capfd):
    p, undone = Patches(), []

    def failing():
        raise OSError("gone")

    p.apply("argparse", lambda: lambda: undone.append("argparse"))
    p.apply("stdout", lambda: failing)
    p.apply("excepthook", lambda: lambda: undone.append("excepthook"))
    p.undo()
    assert undone == ["excepthook", "argparse"] and p.names() == []
    err = capfd.readouterr().err
    assert err == "runlog: could not undo stdout (OSError: gone)\n"
    p.undo()  # nothing left: nothing said
    assert undone == ["excepthook", "argparse"] and capfd.readouterr().err == ""
