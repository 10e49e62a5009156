"""What the script prints, warns and logs lands in run.log, once, with a timestamp;
it still reaches the terminal; progress bars do not flood the log."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import pytest

from conftest import run_dirs, write_script

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "


def log_lines(d, tag=None):
    lines = (d / "run.log").read_text(encoding="utf-8").splitlines()
    if tag is None:
        return lines
    return [ln[len("2026-01-01 00:00:00.000 ") + 8:] for ln in lines
            if re.match(STAMP + re.escape(tag) + " ", ln)]


def test_print_reaches_the_terminal_and_the_log(run_script):
    proc, d, _ = run_script("""\
        import sys, runlog
        runlog.start(git=False)
        print("epoch 1 loss 0.5")
        print("two", "parts", sep="|")
        print("to stderr", file=sys.stderr)
        sys.stdout.write("no newline yet ")
        sys.stdout.write("now\\n")
        """)
    assert proc.stdout == "epoch 1 loss 0.5\ntwo|parts\nno newline yet now\n"
    assert "to stderr" in proc.stderr
    assert log_lines(d, "OUT") == ["epoch 1 loss 0.5", "two|parts", "no newline yet now"]
    assert log_lines(d, "ERR") == ["to stderr"]


def test_every_log_line_has_a_timestamp(run_script):
    _, d, _ = run_script("""\
        import logging, runlog
        runlog.start(git=False)
        print("printed")
        logging.getLogger("train").info("logged")
        """)
    lines = log_lines(d)
    assert lines and all(re.match(STAMP, ln) for ln in lines), lines


def test_the_scripts_own_logger_reaches_file_and_console(run_script):
    proc, d, _ = run_script("""\
        import logging, runlog
        log = logging.getLogger("train")
        runlog.start(git=False)
        log.info("epoch %d done", 3)
        log.debug("too detailed")
        log.warning("lr is high")
        """)
    text = (d / "run.log").read_text()
    assert re.search(STAMP + r"INFO    train: epoch 3 done$", text, re.M)
    assert re.search(STAMP + r"WARNING train: lr is high$", text, re.M)
    assert "too detailed" not in text
    # the console line is concise: time, level, logger, message; once
    assert proc.stderr.count("epoch 3 done") == 1
    assert re.search(r"^\d\d:\d\d:\d\d INFO    train: epoch 3 done$", proc.stderr, re.M)
    assert text.count("epoch 3 done") == 1  # not again through the stderr capture


def test_records_of_every_shape_read_as_logging_reads_them(run_script):
    """A record's message is what ``getMessage`` gives: %-args, a non-str message, and a record
    class of the program's own (``setLogRecordFactory``, e.g. brace-style messages)."""
    proc, d, _ = run_script("""\
        import logging, runlog

        class Brace(logging.LogRecord):
            def getMessage(self):
                return str(self.msg).format(*self.args) if self.args else str(self.msg)

        runlog.start(git=False)
        log = logging.getLogger("train")
        log.info("pct %d%% of %s", 50, "data")
        log.info({"lr": 0.1})
        log.info("literal %d kept without args")
        logging.setLogRecordFactory(Brace)
        log.info("loss {:.2f} at {}", 0.5, "epoch 1")
        filtered = logging.getLogger("quiet")
        for h in logging.getLogger().handlers:
            h.addFilter(lambda r: r.name != "quiet")
        filtered.warning("never written")
        log.info("after the filter")
        """)
    text = (d / "run.log").read_text()
    for line in ("train: pct 50% of data", "train: {'lr': 0.1}", "train: literal %d kept without args",
                 "train: loss 0.50 at epoch 1", "train: after the filter"):
        assert re.search(STAMP + "INFO    " + re.escape(line) + "$", text, re.M), line
        assert line in proc.stderr
    assert "never written" not in text and "never written" not in proc.stderr


def test_level_debug_and_console_off(run_script):
    proc, d, _ = run_script("""\
        import logging, runlog
        runlog.start(git=False, level="DEBUG", console=False)
        logging.getLogger("x").debug("fine detail")
        """)
    assert "fine detail" in (d / "run.log").read_text()
    assert "fine detail" not in proc.stderr


def test_warnings_are_in_the_log(run_script):
    proc, d, _ = run_script("""\
        import warnings, runlog
        runlog.start(git=False)
        warnings.warn("this op is deprecated")
        """)
    assert "UserWarning: this op is deprecated" in proc.stderr
    assert any("UserWarning: this op is deprecated" in ln for ln in log_lines(d, "ERR"))


def test_uncaught_traceback_is_in_the_log(run_script):
    proc, d, _ = run_script("""\
        import runlog
        runlog.start(git=False)
        def step():
            return 1 / 0
        step()
        """, rc=1)
    assert "ZeroDivisionError: division by zero" in proc.stderr  # still printed as usual
    err = log_lines(d, "ERROR")  # a traceback is an error: `tail --level ERROR` shows it
    assert err[0] == "Traceback (most recent call last):"
    assert any("return 1 / 0" in ln for ln in err)
    assert err[-1] == "ZeroDivisionError: division by zero"
    assert log_lines(d, "ERR") == []
    # once: runlog does not also write its own copy of the same traceback
    assert (d / "run.log").read_text().count("ZeroDivisionError: division by zero") == 1


BAR = """\
    import sys, runlog
    runlog.start(git=False)
    print("before")
    for i in range(1, 1001):
        sys.stderr.write(f"\\rtraining: {i:4d}/1000 [{'#' * (i // 100):<10}]")
        sys.stderr.flush()
    {end}
    print("after")
    """


@pytest.mark.parametrize("end", ["newline", "none"])
def test_a_progress_bar_leaves_its_final_state_once(run_script, end):
    body = BAR.replace("{end}", 'sys.stderr.write("\\n")' if end == "newline" else "pass")
    proc, d, _ = run_script(body)
    # the terminal got every redraw
    assert proc.stderr.count("training:") == 1000
    bars = [ln for ln in log_lines(d) if "training:" in ln]
    assert len(bars) == 1 and bars[0].endswith("training: 1000/1000 [##########]")
    text = (d / "run.log").read_text()
    assert "\r" not in text and " 999/1000" not in text
    assert log_lines(d, "OUT") == ["before", "after"]


def test_a_bar_redrawn_with_a_trailing_carriage_return(run_script):
    # tqdm's own style: "\r" + text, and at the end "\n"; some bars end "text\r"
    _, d, _ = run_script("""\
        import sys, runlog
        runlog.start(git=False)
        for i in range(1, 101):
            sys.stdout.write(f"step {i}/100\\r")
        sys.stdout.write("\\n")
        print("done")
        """)
    assert log_lines(d, "OUT") == ["step 100/100", "done"]


def test_colours_and_cursor_moves_are_dropped_from_the_log(run_script):
    _, d, _ = run_script("""\
        import runlog
        runlog.start(git=False)
        print("\\x1b[32mgreen\\x1b[0m text\\x1b[A")
        """)
    assert log_lines(d, "OUT") == ["green text"]


def test_capture_output_false_leaves_print_alone(run_script):
    proc, d, _ = run_script("""\
        import sys, logging, runlog
        runlog.start(git=False, capture_output=False)
        print("only on the terminal")
        logging.getLogger("x").info("still logged")
        assert sys.stdout is sys.__stdout__
        """)
    assert "only on the terminal" in proc.stdout
    text = (d / "run.log").read_text()
    assert "only on the terminal" not in text and "still logged" in text


def test_output_after_finish_is_not_captured(run_script):
    proc, d, _ = run_script("""\
        import sys, runlog
        runlog.start(git=False)
        print("during")
        runlog.finish()
        print("after")
        assert sys.stdout is sys.__stdout__ and sys.stderr is sys.__stderr__
        """)
    assert proc.stdout == "during\nafter\n"
    assert log_lines(d, "OUT") == ["during"]


def test_handlers_and_basic_config_are_left_to_the_script(run_script):
    proc, d, _ = run_script("""\
        import logging, runlog
        mine = logging.FileHandler("mine.log")
        logging.getLogger().addHandler(mine)
        runlog.start(git=False)
        logging.getLogger().warning("to both")
        runlog.finish()
        assert mine in logging.getLogger().handlers  # never removed
        assert not any(type(h).__name__ == "RunHandler" for h in logging.getLogger().handlers)
        """)
    assert "to both" in (d / "run.log").read_text()
    assert "to both" in (d.parent.parent / "mine.log").read_text()


def test_the_console_is_coloured_on_a_terminal(tmp_path):
    write_script(tmp_path, """\
        import logging, runlog
        runlog.start(git=False)
        logging.getLogger("train").warning("careful")
        """)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm"
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=tmp_path, env=env, stdin=slave,
                            stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=30) == 0
    text = out.decode()
    assert "\x1b[33mWARNING\x1b[0m train: careful" in text
    # the log file never holds colour codes
    (d,) = run_dirs(tmp_path / "logs")
    assert "\x1b" not in (d / "run.log").read_text()


def test_console_lines_keep_their_order_with_text_written_to_stderr(run_script):
    # the console line goes to stderr's descriptor directly: it must never overtake
    # what the script wrote through sys.stderr before it, a partial line included
    proc, d, _ = run_script("""\
        import logging, sys, runlog
        runlog.start(git=False)
        log = logging.getLogger("train")
        sys.stderr.write("dots:")
        for i in range(3):
            sys.stderr.write(".")
            log.info("step %d", i)
        print("a warning line", file=sys.stderr)
        log.warning("last")
        """)
    err = proc.stderr
    order = [err.index(s) for s in ("dots:.", "INFO    train: step 0", "INFO    train: step 1",
                                    "INFO    train: step 2", "a warning line",
                                    "WARNING train: last")]
    assert order == sorted(order), err


@pytest.mark.parametrize("encoding, shown", [("utf-8", "naïve ✓ \\udcff"),
                                             ("ascii", "na\\xefve \\u2713 \\udcff")])
def test_console_text_follows_the_streams_encoding(run_script, encoding, shown):
    # stderr's own errors= handler (backslashreplace) decides what cannot be encoded
    proc, d, _ = run_script("""\
        import logging, runlog
        runlog.start(git=False)
        logging.getLogger("train").info("naïve ✓ \\udcff")
        """, env={"PYTHONIOENCODING": encoding})
    raw = proc.stderr
    assert f"INFO    train: {shown}" in raw, raw
    assert "naïve ✓" in (d / "run.log").read_text(errors="replace")
