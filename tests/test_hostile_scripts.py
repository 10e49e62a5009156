"""What real training scripts do to logging, the streams and the process after ``runlog.start()``:
the script goes on as without runlog, and run.log still holds what it logged and printed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import read_json, run_dirs, spawn, wait_for_line
from test_exit import NEWER

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "


def logged(d, text: str) -> list[str]:
    """The run.log lines holding ``text``, without their time."""
    return [ln[24:] for ln in (d / "run.log").read_text(encoding="utf-8").splitlines()
            if text in ln and re.match(STAMP, ln)]


def test_dict_config_after_start_keeps_the_scripts_records_in_the_log(run_script):
    proc, d, r = run_script("""\
        import logging, logging.config, runlog
        runlog.start(git=False)
        logging.config.dictConfig({
            "version": 1,
            "formatters": {"plain": {"format": "[%(name)s] %(message)s"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                                     "stream": "ext://sys.stdout"},
                         "file": {"class": "logging.FileHandler", "filename": "mine.log"}},
            "root": {"level": "INFO", "handlers": ["console", "file"]},
        })
        logging.getLogger("train").info("epoch 1 loss 0.5")
        print("printed after")
        """)
    assert r["status"] == "finished" and "Traceback" not in proc.stderr
    # the script's own handlers work as configured: its console and its file, once each
    assert proc.stdout.count("[train] epoch 1 loss 0.5\n") == 1
    assert (d.parent.parent / "mine.log").read_text() == "epoch 1 loss 0.5\n"
    # and the record still has the line, once, with no second console copy from runlog
    assert len(logged(d, "epoch 1 loss 0.5")) == 1, (d / "run.log").read_text()
    assert "epoch 1 loss 0.5" not in proc.stderr
    assert logged(d, "printed after") == ["OUT     printed after"]
    assert proc.stderr.count("## Run ") == 1


def test_root_handlers_replaced_by_the_script_still_leave_its_lines_in_the_log(run_script):
    proc, d, r = run_script("""\
        import logging, sys, runlog
        runlog.start(git=False)
        root = logging.getLogger()
        for h in list(root.handlers):  # a library "resetting" logging
            root.removeHandler(h)
        h = logging.StreamHandler(sys.stdout)
        h.setFormatter(logging.Formatter("%(levelname)s | %(message)s"))
        root.addHandler(h)
        logging.getLogger("train").warning("val loss went up")
        """)
    assert proc.stdout == "WARNING | val loss went up\n"
    assert logged(d, "val loss went up") == ["OUT     WARNING | val loss went up"]
    assert r["status"] == "finished" and proc.stderr.count("## Run ") == 1


def test_a_library_logger_that_does_not_propagate_is_in_the_log(run_script):
    # transformers, datasets, diffusers: the library's root logger has its own handler on
    # the stderr of the time it was made (before start()) and does not propagate
    proc, d, r = run_script("""\
        import logging, sys, runlog
        lib = logging.getLogger("transformers")
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(levelname)s|%(name)s] %(message)s"))
        lib.addHandler(handler)
        lib.propagate = False
        lib.setLevel(logging.INFO)
        run = runlog.start(git=False)
        logging.getLogger("transformers.trainer").info("***** Running training *****")
        logging.getLogger("train").info("epoch 1")
        run.finish()
        print("given back:", handler.stream is sys.__stderr__)
        """)
    assert proc.stdout == "given back: True\n"
    line = "[INFO|transformers.trainer] ***** Running training *****"
    assert proc.stderr.count(line) == 1
    assert logged(d, "Running training") == ["ERR     " + line]
    assert len(logged(d, "epoch 1")) == 1
    assert r["status"] == "finished"


FORK_AT_ONCE = """\
    import os, runlog
    run = runlog.start()  # git's status and the machine facts go on on threads of runlog's
    pid = os.fork()  # a DataLoader's workers, at once
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    print("forked")
    """


@pytest.mark.skipif(not NEWER, reason="no Python 3.12+ interpreter on PATH")
@pytest.mark.parametrize("python", NEWER)
def test_a_fork_right_after_start_is_not_beside_runlogs_threads(run_script, git_repo, python):
    """Python 3.12+ warns of a fork in a multi-threaded process (a lock another thread held
    stays held in the child): the fork waits for runlog's short-lived threads instead."""
    env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for _ in range(3):
        proc, _, r = run_script(FORK_AT_ONCE, cwd=git_repo, python=python, env=env)
        assert "multi-threaded" not in proc.stderr, proc.stderr
        assert proc.stdout == "forked\n" and r["status"] == "finished" and r["git"]


def test_the_interpreters_own_options_are_written_as_typed(tmp_path):
    """`python -W error -X dev -u`: options of Python, not the script's, so never taken for a
    short option holding a secret while the script's parser is not known yet."""
    from conftest import run_dirs, write_script

    write_script(tmp_path, """\
        import runlog
        runlog.start(git=False)
        print("ok")
        """)
    proc = subprocess.run([sys.executable, "-W", "error", "-X", "dev", "-u", "s.py", "-p", "hunter2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr
    (d,) = run_dirs(tmp_path / "logs")
    first = (d / "run.log").read_text().splitlines()[0]
    assert first.endswith(" started: python -W error -X dev -u s.py -p '***'"), first


TEE_CLASS = """\
    import sys, runlog

    class Logger:  # the tee many training repositories carry
        def __init__(self, path):
            self.terminal = sys.stdout
            self.log = open(path, "a")
        def write(self, message):
            self.terminal.write(message)
            self.log.write(message)
        def flush(self):
            self.terminal.flush()
            self.log.flush()
"""


@pytest.mark.parametrize("order", ["installed after start", "installed before start"])
def test_the_scripts_own_stdout_tee_class(run_script, order):
    first, second = "runlog.start(git=False)", 'sys.stdout = Logger("out.txt")'
    if order == "installed before start":
        first, second = second, first
    proc, d, r = run_script(TEE_CLASS + f"""\
    {first}
    {second}
    print("epoch 1 loss 0.5")
    import atexit
    atexit.register(lambda: print("at exit"))  # before runlog's own end (registered later)
    """)
    assert proc.stdout == "epoch 1 loss 0.5\nat exit\n" and r["status"] == "finished"
    assert (d.parent.parent / "out.txt").read_text() == "epoch 1 loss 0.5\nat exit\n"
    assert logged(d, "epoch 1") == ["OUT     epoch 1 loss 0.5"]
    assert logged(d, "at exit") == ["OUT     at exit"]
    assert proc.stderr.count("## Run ") == 1 and "Traceback" not in proc.stderr


def test_absl_app_run_logs_each_line_once_on_the_console_and_in_the_log(run_script):
    proc, d, r = run_script("""\
        from absl import app, flags, logging
        import runlog
        flags.DEFINE_float("lr", 0.1, "learning rate")
        def main(argv):
            runlog.start(git=False)  # absl's handler is on the root logger by now
            logging.info("step 1 loss %.2f", 0.5)
            print("printed")
        app.run(main)
        """, "--lr", "0.2")
    assert r["status"] == "finished" and r["args"] == {"lr": 0.2}
    assert proc.stderr.count("step 1 loss 0.50") == 1, proc.stderr  # absl's own line only
    assert logged(d, "step 1 loss") == ["INFO    absl: step 1 loss 0.50"]
    assert logged(d, "printed") == ["OUT     printed"]


def test_a_rich_handler_is_the_console_and_its_lines_are_logged_once(run_script):
    proc, d, r = run_script("""\
        import logging, runlog
        from rich.logging import RichHandler
        logging.basicConfig(level="INFO", format="%(message)s", handlers=[RichHandler()])
        runlog.start(git=False)
        logging.getLogger("train").info("rich epoch 1")
        """)
    assert r["status"] == "finished"
    assert proc.stdout.count("rich epoch 1") == 1 and "rich epoch 1" not in proc.stderr
    assert logged(d, "rich epoch 1") == ["INFO    train: rich epoch 1"]


def test_loguru_imported_before_start_is_in_the_log(run_script):
    pytest.importorskip("loguru", reason="loguru is in the test extra: pip install -e '.[test]'")
    proc, d, r = run_script("""\
        import sys
        from loguru import logger  # its default sink: the stderr of import time
        import runlog
        run = runlog.start(git=False)
        logger.info("loguru epoch 1")
        run.finish()
        sink = logger._core.handlers[0]._sink
        print("given back:", sink._stream is sys.stderr)
        """)
    assert proc.stderr.count("loguru epoch 1") == 1 and r["status"] == "finished"
    (line,) = logged(d, "loguru epoch 1")
    assert line.startswith("ERR     ") and line.endswith("| INFO     | __main__:<module>:5 - loguru epoch 1")
    assert proc.stdout == "given back: True\n"


@pytest.mark.parametrize("how", ["dictConfig", "fileConfig"])
def test_a_logging_config_after_start_keeps_runlogs_handler(run_script, how):
    """A configuration that sends the root's records to a file only: runlog's handler is put
    back after it, so they still reach run.log (and runlog's console echo, as before)."""
    config = {"dictConfig": """logging.config.dictConfig({
            "version": 1,
            "handlers": {"file": {"class": "logging.FileHandler", "filename": "mine.log"}},
            "root": {"level": "INFO", "handlers": ["file"]}})""",
              "fileConfig": 'logging.config.fileConfig("log.ini")'}[how]
    proc, d, r = run_script(f"""\
        import logging, logging.config, pathlib, runlog
        pathlib.Path("log.ini").write_text(
            "[loggers]\\nkeys=root\\n[handlers]\\nkeys=file\\n[formatters]\\nkeys=\\n"
            "[logger_root]\\nlevel=INFO\\nhandlers=file\\n"
            "[handler_file]\\nclass=FileHandler\\nargs=('mine.log',)\\n")
        runlog.start(git=False)
        {config}
        logging.getLogger("train").info("epoch 1 loss 0.5")
        """)
    assert (d.parent.parent / "mine.log").read_text() == "epoch 1 loss 0.5\n"
    assert logged(d, "epoch 1 loss") == ["INFO    train: epoch 1 loss 0.5"]
    assert proc.stderr.count("epoch 1 loss 0.5") == 1 and r["status"] == "finished"


SIGTERM_AFTER_START = """\
    import signal, sys, time, runlog
    run = runlog.start(git=False)
    def on_term(signum, frame):  # a checkpoint on preemption, set up in the training code
        print("checkpoint saved", flush=True)
        sys.exit(0)
    previous = signal.signal(signal.SIGTERM, on_term)
    print("mine:", signal.getsignal(signal.SIGTERM) is on_term, "previous callable:", callable(previous))
    print("ready", flush=True)
    time.sleep(60)
    """


def test_a_sigterm_handler_set_after_start_still_marks_the_run_killed(tmp_path):
    proc = spawn(tmp_path, SIGTERM_AFTER_START)
    wait_for_line(proc, "ready")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err  # the script decided how to end
    assert "checkpoint saved" in out
    (d,) = run_dirs(tmp_path / "logs")
    r = read_json(d / "run.json")
    assert (r["status"], r["signal"], r["exit_code"]) == ("killed", "SIGTERM", 0)
    assert err.count("## Run ") == 1


def test_the_scripts_signal_view_after_start(run_script):
    """What signal.signal/getsignal tell the script is what it set; SIG_DFL set by the script
    still ends the run as killed (runlog's handler stays under it)."""
    proc, d, r = run_script("""\
        import os, signal, runlog
        run = runlog.start(git=False)
        def mine(*a):
            pass
        runlogs = signal.signal(signal.SIGTERM, mine)
        assert runlogs is signal.SIG_DFL and signal.getsignal(signal.SIGTERM) is mine
        assert signal.signal(signal.SIGTERM, signal.SIG_DFL) is mine
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        print("ok", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        """, rc=-15)
    assert proc.stdout == "ok\n"
    assert (r["status"], r["signal"]) == ("killed", "SIGTERM")


def test_an_exception_whose_str_fails_still_ends_the_run_failed(run_script):
    proc, d, r = run_script("""\
        import runlog
        runlog.start(git=False)
        class BadError(Exception):
            def __str__(self):
                raise RuntimeError("no str")
        raise BadError()
        """, rc=1)
    assert (r["status"], r["exit_code"]) == ("failed", 1)
    assert r["error"]["type"] == "BadError" and r["error"]["message"] == "<exception str() failed>"
    assert r["error"]["where"] == "s.py:6 in <module>"
    assert proc.stderr.count("## Run ") == 1 and "could not" not in proc.stderr


def test_a_repository_with_no_commit_yet_is_said_so_in_the_log(run_script, tmp_path):
    from conftest import git_out

    git_out(tmp_path, "-c", "init.defaultBranch=main", "init", "-q")  # `git init` and a first script
    _, d, r = run_script("import runlog\nrunlog.start()\n")
    assert r["git"]["commit"] is None
    assert logged(d, "git: ") == ["RUNLOG  git: no commits yet on main, 1 file changed"]


def test_bytes_to_stdout_buffer_and_a_rewrapped_stdout_are_logged(run_script):
    """`sys.stdout.buffer.write(b"...")`, and the common `sys.stdout = io.TextIOWrapper(
    sys.stdout.buffer, encoding="utf-8")` (a console that is not UTF-8), after start()."""
    proc, d, r = run_script("""\
        import io, sys, runlog
        runlog.start(git=False)
        print("text first")
        sys.stdout.flush()
        sys.stdout.buffer.write(b"raw bytes\\n")
        sys.stdout.buffer.flush()
        sys.stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", line_buffering=True)
        print("rewrapped \\u00e9")
        sys.stderr.buffer.write("to stderr \\u2713\\n".encode())
        """)
    assert proc.stdout == "text first\nraw bytes\nrewrapped \u00e9\n" and r["status"] == "finished"
    assert logged(d, "text first") == ["OUT     text first"]
    assert logged(d, "raw bytes") == ["OUT     raw bytes"]
    assert logged(d, "rewrapped") == ["OUT     rewrapped \u00e9"]
    assert logged(d, "to stderr") == ["ERR     to stderr \u2713"]


def test_with_no_stderr_at_all_the_traceback_is_still_in_the_log(tmp_path):
    """Started with descriptor 2 closed (a daemon, `2>&-`): sys.stderr is None, so Python prints
    no traceback for the tee to catch; run.log still gets it."""
    from conftest import run_dirs, write_script

    write_script(tmp_path, """\
        import sys, runlog
        runlog.start(git=False)
        print("stderr is", sys.stderr)
        raise ValueError("diverged")
        """)
    proc = subprocess.run(["sh", "-c", f"'{sys.executable}' s.py 2>&-"], cwd=tmp_path,
                          stdout=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == "stderr is None\n"
    (d,) = run_dirs(tmp_path / "logs")
    assert read_json(d / "run.json")["status"] == "failed"
    log = (d / "run.log").read_text()
    assert "ERROR   Traceback (most recent call last):" in log and "\nValueError: diverged\n" in log


HYDRA_APP = """\
    import hydra, logging, runlog
    from omegaconf import DictConfig
    log = logging.getLogger(__name__)

    @hydra.main(version_base=None, config_path="conf", config_name="config")
    def main(cfg: DictConfig):
        run = runlog.start()
        log.info("training with lr %s", cfg.lr)
        run.metric("loss", cfg.lr)
        if cfg.lr > 0.25:
            raise ValueError("diverged")

    if __name__ == "__main__":
        main()
    """


def test_each_job_of_a_hydra_multirun_is_a_run_of_its_own(tmp_path):
    from conftest import write_script

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("lr: 0.1\nepochs: 2\n")
    write_script(tmp_path, HYDRA_APP)
    proc = subprocess.run([sys.executable, "s.py", "-m", "lr=0.1,0.2,0.3"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    runs = sorted(run_dirs(tmp_path / "logs"))
    records = [read_json(d / "run.json") for d in runs]
    assert [r["args"]["lr"] for r in records] == [0.1, 0.2, 0.3], proc.stderr
    assert [r["status"] for r in records] == ["finished", "finished", "failed"]
    assert records[2]["error"]["type"] == "ValueError"
    assert [r["metrics"]["loss"]["last"] for r in records] == [0.1, 0.2, 0.3]
    assert records[1]["previous"] == records[0]["id"]
    for d, lr in zip(runs, (0.1, 0.2, 0.3)):
        assert logged(d, "training with lr") == [f"INFO    training with lr {lr}"]
    assert proc.stderr.count("## Run ") == 3 and "is active" not in proc.stderr


def test_a_single_hydra_job_that_fails_is_recorded_failed(tmp_path):
    from conftest import write_script

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("lr: 0.5\n")
    write_script(tmp_path, HYDRA_APP)
    proc = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    (d,) = run_dirs(tmp_path / "logs")
    r = read_json(d / "run.json")
    assert (r["status"], r["exit_code"], r["error"]["type"]) == ("failed", 1, "ValueError")
    assert proc.stderr.count("## Run ") == 1


def test_loguru_intercepting_standard_logging_prints_and_logs_each_record_once(run_script):
    """loguru's documented InterceptHandler on the root: standard records are printed by
    loguru; runlog neither prints them again nor logs loguru's printed line beside the record."""
    pytest.importorskip("loguru", reason="loguru is in the test extra: pip install -e '.[test]'")
    proc, d, r = run_script("""\
        import logging, runlog
        from loguru import logger

        class InterceptHandler(logging.Handler):
            def emit(self, record):
                try:
                    level = logger.level(record.levelname).name
                except ValueError:
                    level = record.levelno
                logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())

        logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
        runlog.start(git=False)
        logging.getLogger("train").info("standard record")
        logger.info("loguru record")
        """)
    assert proc.stderr.count("standard record") == 1 and proc.stderr.count("loguru record") == 1
    assert logged(d, "standard record") == ["INFO    train: standard record"]
    assert len(logged(d, "loguru record")) == 1 and r["status"] == "finished"


def test_a_hydra_config_handed_to_start_keeps_what_the_command_line_overrode(tmp_path):
    from conftest import write_script

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("lr: 0.1\nmodel:\n  layers: 2\nepochs: 3\n")
    write_script(tmp_path, HYDRA_APP.replace("runlog.start()", "runlog.start(cfg)"))
    proc = subprocess.run([sys.executable, "s.py", "lr=0.2", "model.layers=4"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (d,) = run_dirs(tmp_path / "logs")
    r = read_json(d / "run.json")
    assert r["args"] == {"lr": 0.2, "model": {"layers": 4}, "epochs": 3}
    assert sorted(r["args_given"]) == ["lr", "model.layers"]
