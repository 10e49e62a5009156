"""runlog in the same script as W&B, MLflow, TensorBoard, rich, pdb and input(): people move
over and run both for a while. Each tool keeps its own capture, the script never crashes,
nothing is printed twice or lost, and runlog's record stays true — in either order of start.
Real packages (the integrations extra), real subprocesses, real signals."""

from __future__ import annotations

import os
import pty
import sqlite3
import struct
import subprocess
import sys

import pytest

from conftest import integration, run_dirs, write_script


def logged(d, tag: str) -> list[str]:
    """run.log's lines of ``tag``, without their stamp."""
    out = []
    for ln in (d / "run.log").read_text(encoding="utf-8").splitlines():
        rest = ln[24:]
        if rest[:8].rstrip() == tag:
            out.append(rest[8:])
    return out


# ---------------------------------------------------------------- Weights & Biases, offline

WANDB = """\
    import os, signal, sys, logging, runlog
    import wandb
    order, what = sys.argv[1], sys.argv[2]
    logging.basicConfig(level=logging.INFO)
    if order == "runlog-first":
        run = runlog.start({"lr": 0.1}, git=False)
    w = wandb.init(project="p", dir=os.getcwd(), config={"lr": 0.1})
    if order == "wandb-first":
        run = runlog.start({"lr": 0.1}, git=False)
    print("hello from print")
    logging.getLogger("train").info("epoch 1 logged")
    print("to stderr", file=sys.stderr)
    for i in range(3):
        w.log({"loss": 1.0 / (i + 1)})
        run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
    if what == "raise":
        raise RuntimeError("diverged")
    if what == "exit3":
        sys.exit(3)
    if what == "term":
        os.kill(os.getpid(), signal.SIGTERM)
    if what == "finish":
        wandb.finish()
        print("after wandb finish")
    print("end")
    """

WANDB_ENDS = {"ok": (0, "finished"), "raise": (1, "failed"), "exit3": (3, "failed"),
              "term": (-15, "killed"), "finish": (0, "finished")}


def wandb_env(tmp_path) -> dict:
    return {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path),
            "WANDB_DISABLE_GIT": "true"}


def wandb_console(tmp_path) -> str:
    (out,) = (tmp_path / "wandb").glob("offline-run-*/files/output.log")
    return out.read_text()


HOOK_ON_TOP_PLAIN = """\
    import sys, traceback, runlog
    runlog.start(git=False)
    found = sys.excepthook
    def hook(t, e, tb):  # wandb's shape, printing
        traceback.print_exception(t, e, tb)
        found(t, e, tb)
    sys.excepthook = hook
    if sys.argv[1] == "group":  # asyncio.TaskGroup's, anyio's
        raise ExceptionGroup("tasks", [ValueError("a"), TypeError("b")])
    try:
        raise ValueError("bad")  # one line, not chained
    except ValueError:
        traceback.print_exc()  # the script shows it, then lets it go: the hook prints it again
        raise
    """


@pytest.mark.parametrize("what, line, times", [("shown", "ValueError: bad", 2),
                                               ("group", "  | ExceptionGroup: tasks (2 sub-exceptions)", 1)])
def test_a_hook_on_top_printing_a_one_line_error_or_a_group(run_script, what, line, times):
    # a traceback printed right after another is not chained to it (no "The above exception"
    # line between): the two once each, not the second twice; a group is a traceback too
    proc, d, r = run_script(HOOK_ON_TOP_PLAIN, what, rc=1)
    assert r["status"] == "failed"
    assert proc.stderr.splitlines().count(line) == times, proc.stderr
    assert logged(d, "ERROR").count(line) == times


@pytest.mark.parametrize("order", ["runlog-first", "wandb-first"])
@pytest.mark.parametrize("what", sorted(WANDB_ENDS))
def test_wandb_offline_in_the_same_script(run_script, tmp_path, order, what):
    integration("wandb")
    code, status = WANDB_ENDS[what]
    proc, d, r = run_script(WANDB, order, what, env=wandb_env(tmp_path), rc=code)
    assert r["status"] == status
    assert r["exit_code"] == (143 if what == "term" else code)
    assert r["args"] == {"lr": 0.1}
    assert r["metrics"]["loss"]["count"] == 3
    assert (r["error"] or {}).get("message") == ("diverged" if what == "raise" else None)
    # printed once to the terminal, logged once
    assert proc.stdout.count("hello from print") == 1
    assert logged(d, "OUT").count("hello from print") == 1
    assert logged(d, "INFO") == ["train: epoch 1 logged"]
    assert proc.stderr.count("## Run ") == 1  # one report
    if what == "raise":
        # wandb's hook prints the traceback and calls the hook it found: never twice
        assert proc.stderr.splitlines().count("RuntimeError: diverged") == 1, proc.stderr
        assert logged(d, "ERROR").count("RuntimeError: diverged") == 1
    if what in ("ok", "raise", "exit3"):
        # wandb's own console capture still sees what the script printed (its service
        # writes it on the way out)
        assert "hello from print" in wandb_console(tmp_path)
    if what == "finish":
        assert logged(d, "OUT")[-2:] == ["after wandb finish", "end"]


HOOK_ON_TOP = """\
    import sys, traceback, runlog
    runlog.start(git=False)
    found = sys.excepthook
    def hook(t, e, tb):  # wandb's shape: print, then call the hook found unless Python's own
        if sys.argv[1] == "prints":
            traceback.print_exception(t, e, tb)
        else:
            print("hook saw", t.__name__, file=sys.stderr)
        found(t, e, tb)
    sys.excepthook = hook
    def load():
        try:
            {}["k"]
        except KeyError as e:
            raise ValueError("bad\\nsecond line") from e
    if sys.argv[2] == "shown":  # the script prints it itself, then lets it go: Python prints it again
        try:
            load()
        except ValueError:
            traceback.print_exc()
            raise
    load()
    """


@pytest.mark.parametrize("hook, shown, times", [("prints", "", 1), ("quiet", "", 1),
                                                ("prints", "shown", 2), ("quiet", "shown", 2)])
def test_a_hook_on_top_that_prints_the_traceback_gets_it_printed_once(run_script, hook, shown, times):
    proc, d, r = run_script(HOOK_ON_TOP, hook, shown or "-", rc=1)
    assert r["status"] == "failed" and r["error"]["message"] == "bad\nsecond line"
    lines = proc.stderr.splitlines()
    assert lines.count("ValueError: bad") == times, proc.stderr
    assert lines.count("KeyError: 'k'") == times  # the chained one with it
    assert logged(d, "ERROR").count("ValueError: bad") == times


def test_wandb_imported_after_start_keeps_its_console_capture(run_script, tmp_path):
    # wandb patches the write of the sys.stdout it finds at its import: runlog's tee. The run
    # ending first must not take wandb's capture away from what the script prints next.
    integration("wandb")
    proc, d, r = run_script("""\
        import os, runlog
        run = runlog.start(git=False)
        import wandb
        w = wandb.init(project="p", dir=os.getcwd())
        print("during both")
        run.finish()
        print("after runlog's end")
        wandb.finish()
        print("after both")
        """, env=wandb_env(tmp_path))
    assert r["status"] == "finished"
    assert proc.stdout.count("after runlog's end") == 1
    assert "after runlog's end" not in (d / "run.log").read_text()
    assert wandb_console(tmp_path).splitlines()[:2] == ["during both", "after runlog's end"]


# ---------------------------------------------------------------- MLflow, a local store

MLFLOW = """\
    import sys, runlog, mlflow
    order, what = sys.argv[1], sys.argv[2]
    if order == "runlog-first":
        run = runlog.start({"lr": 0.1}, git=False)
    mlflow.autolog()
    with mlflow.start_run():
        if order == "mlflow-first":
            run = runlog.start({"lr": 0.1}, git=False)
        mlflow.log_param("lr", 0.1)
        print("hello from print")
        for i in range(3):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
            run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
        if what == "raise":
            raise RuntimeError("diverged")
    print("end")
    """


@pytest.mark.parametrize("order", ["runlog-first", "mlflow-first"])
@pytest.mark.parametrize("what", ["ok", "raise"])
def test_mlflow_in_the_same_script(run_script, tmp_path, order, what):
    integration("mlflow")
    db = tmp_path / "mlflow.db"
    proc, d, r = run_script(MLFLOW, order, what, rc=1 if what == "raise" else 0,
                            env={"MLFLOW_TRACKING_URI": f"sqlite:///{db}"})
    assert r["status"] == ("failed" if what == "raise" else "finished")
    assert r["metrics"]["loss"]["count"] == 3 and r["args"] == {"lr": 0.1}
    with sqlite3.connect(db) as c:
        (ml_status,) = c.execute("select status from runs").fetchone()
        steps = c.execute("select step from metrics where key = 'loss' order by step").fetchall()
    assert ml_status == ("FAILED" if what == "raise" else "FINISHED")
    assert steps == [(0,), (1,), (2,)]
    assert proc.stdout.count("hello from print") == 1 and logged(d, "OUT")[0] == "hello from print"
    if what == "raise":
        assert r["error"]["message"] == "diverged"
        assert proc.stderr.splitlines().count("RuntimeError: diverged") == 1


# ---------------------------------------------------------------- tensorboardX


def tf_records(path) -> list[bytes]:
    """The records of a TFRecord file (length, its crc, data, its crc)."""
    data, out, i = path.read_bytes(), [], 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        out.append(data[i + 12:i + 12 + n])
        i += 12 + n + 4
    return out


@pytest.mark.parametrize("order", ["runlog-first", "writer-first"])
def test_tensorboardx_writer_while_runlog_captures(run_script, tmp_path, order):
    integration("tensorboardX")
    from tensorboardX.proto.event_pb2 import Event

    proc, d, r = run_script("""\
        import sys, runlog
        order = sys.argv[1]
        if order == "runlog-first":
            run = runlog.start(git=False)
        from tensorboardX import SummaryWriter
        w = SummaryWriter(logdir="tb")
        if order == "writer-first":
            run = runlog.start(git=False)
        for i in range(3):
            w.add_scalar("loss", 1.0 / (i + 1), i)
            run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
            print("step", i)
        w.close()
        """, order)
    (events,) = (tmp_path / "tb").iterdir()
    got = [Event.FromString(b) for b in tf_records(events)]
    assert [(e.step, e.summary.value[0].simple_value) for e in got if e.summary.value] == \
        [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert r["metrics"]["loss"]["count"] == 3
    assert logged(d, "OUT") == ["step 0", "step 1", "step 2"] and proc.stdout.count("step") == 3


# ---------------------------------------------------------------- rich

RICH = """\
    import logging, sys, runlog
    from rich.console import Console
    from rich.logging import RichHandler
    from rich.progress import track
    order = sys.argv[1]
    if order == "runlog-first":
        run = runlog.start(git=False)
    logging.basicConfig(level="INFO", format="%(message)s", handlers=[RichHandler()])
    console = Console()
    if order == "rich-first":
        run = runlog.start(git=False)
    for i in track(range(3), description="training"):
        logging.getLogger("train").info("rich epoch %d", i)
    console.print("[bold]console print[/bold] done")
    console.log("console log line")
    print("plain end")
    """


def on_a_pty(cwd, *args) -> str:
    """Run s.py on a real terminal; what it wrote there."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(TERM="xterm-256color", COLUMNS="100")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "s.py", *args], cwd=cwd, env=env, stdin=slave,
                            stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, out
    return out.decode("utf-8", "replace")


@pytest.mark.parametrize("order", ["runlog-first", "rich-first"])
def test_rich_on_a_terminal(tmp_path, order):
    # on a terminal rich draws a live bar, colours, and links (OSC 8) to the source line:
    # the terminal gets them, run.log gets the text
    write_script(tmp_path, RICH)
    shown = on_a_pty(tmp_path, order)
    assert "console print" in shown and "\x1b]8;" in shown
    (d,) = run_dirs(tmp_path / "logs")
    assert logged(d, "INFO") == ["train: rich epoch 0", "train: rich epoch 1", "train: rich epoch 2"]
    out = logged(d, "OUT")
    assert out[0].startswith("training ") and out[0].endswith("100% 0:00:00")
    assert out[1] == "console print done"
    assert out[2].split()[1:] == ["console", "log", "line", "s.py:15"], out[2]
    assert out[3] == "plain end" and len(out) == 4
    assert "\x1b" not in (d / "run.log").read_text() and "file://" not in (d / "run.log").read_text()


@pytest.mark.parametrize("order", ["runlog-first", "rich-first"])
def test_rich_through_pipes(run_script, order):
    proc, d, _ = run_script(RICH, order)
    assert proc.stdout.count("rich epoch 1") == 1 and proc.stdout.count("console print done") == 1
    assert logged(d, "INFO")[1] == "train: rich epoch 1"
    out = logged(d, "OUT")
    assert out[1] == "console print done" and out[-1] == "plain end" and len(out) == 4


# ---------------------------------------------------------------- input() and pdb


def test_input_prompt_and_pdb_after_start_on_real_pipes(tmp_path):
    """The prompt reaches the reader before the script waits for the answer (the tee flushes
    through), and the answer reaches the script. Each reply is sent only once its prompt
    was read: a prompt held back in a buffer would hang here."""
    write_script(tmp_path, """\
        import runlog
        run = runlog.start({"lr": 0.1}, git=False)
        name = input("your name? ")
        print("got", repr(name))
        x = 41
        breakpoint()
        print("after the debugger", x)
        """)
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=tmp_path, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONBREAKPOINT"})
    seen = []

    def until(text: bytes) -> bytes:
        buf = b""
        while not buf.endswith(text):
            c = os.read(proc.stdout.fileno(), 1)
            assert c, f"the output ended before {text!r}: {buf!r} {proc.stderr.read()!r}"
            buf += c
        seen.append(buf)
        return buf

    def reply(s: str) -> None:
        proc.stdin.write(s.encode())
        proc.stdin.flush()

    try:
        until(b"your name? ")
        reply("bob\n")
        assert until(b"(Pdb) ").startswith(b"got 'bob'\n")
        reply("p x + 1\n")
        assert until(b"(Pdb) ") == b"42\n(Pdb) "
        reply("x = 7\n")
        until(b"(Pdb) ")
        reply("c\n")
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert rest == b"after the debugger 7\n"
    (d,) = run_dirs(tmp_path / "logs")
    out = logged(d, "OUT")
    assert out[0] == "your name? got 'bob'" and out[-1].endswith("after the debugger 7")
    assert "(Pdb) 42" in out
