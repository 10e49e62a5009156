"""A process killed by a fatal signal (a segfault or abort() in an extension): its Python
traceback lands in run.log (faulthandler), the process still dies by the signal, and the
CLI shows the lost run with that error."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from cli_helpers import runlog
from conftest import integration

CRASH = """\
import ctypes, logging, os, sys, runlog
run = runlog.start()
logging.getLogger(__name__).info("about to crash")

def load_batch():
    if sys.argv[1] == "abort":
        os.abort()  # a C library's assert
    ctypes.string_at(0)  # an extension reading address 0

load_batch()
"""


def newest(tmp_path) -> dict:
    """The newest run as `runlog ls --json` shows it (settled: lost, with what run.log says)."""
    return json.loads(runlog(tmp_path / "logs", "ls", "--json").stdout.splitlines()[0])


def no_faulthandler_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    env.update(extra)
    return env


def test_a_segfault_leaves_its_traceback_in_run_log_and_the_run_shows_the_error(run_script, tmp_path):
    proc, run_dir, rec = run_script(CRASH, "segv", rc=-signal.SIGSEGV, env=no_faulthandler_env())
    assert rec["status"] == "running"  # nothing could finish it
    log = (run_dir / "run.log").read_text()
    assert "about to crash" in log
    fatal = log[log.index("Fatal Python error: Segmentation fault"):]
    assert 'line 8 in load_batch' in fatal and 'line 10 in <module>' in fatal
    assert "Fatal Python error" not in proc.stderr  # runlog's copy goes to run.log only

    shown = newest(tmp_path)
    assert shown["status"] == "lost"
    assert shown["error"]["message"] == "Segmentation fault"
    assert shown["error"]["where"].endswith(" in string_at")  # the innermost frame, as a traceback's
    assert any("load_batch" in ln for ln in shown["error"]["traceback"])
    report = runlog(tmp_path / "logs", "report").stdout
    assert "- Error: Fatal Python error: Segmentation fault" in report
    ls = runlog(tmp_path / "logs", "ls").stdout
    assert "lost" in ls and "Segmentation fault" in ls


def test_an_abort_is_shown_where_the_script_called_it(run_script, tmp_path):
    _, run_dir, _ = run_script(CRASH, "abort", rc=-signal.SIGABRT, env=no_faulthandler_env())
    shown = newest(tmp_path)
    assert shown["status"] == "lost"
    assert (shown["error"]["message"], shown["error"]["where"]) == ("Aborted", "s.py:7 in load_batch")


def test_the_scripts_own_faulthandler_is_left_alone(run_script, tmp_path):
    proc, run_dir, _ = run_script(CRASH, "abort", rc=-signal.SIGABRT,
                                  env=no_faulthandler_env(PYTHONFAULTHANDLER="1"))
    assert "Fatal Python error: Aborted" in proc.stderr  # where the script asked for it
    assert "Fatal Python error" not in (run_dir / "run.log").read_text()
    shown = newest(tmp_path)
    assert shown["status"] == "lost" and shown["error"] is None


def test_after_its_run_finished_a_crash_writes_nothing_into_it(run_script, tmp_path):
    body = CRASH.replace("load_batch()\n", "run.finish()\nload_batch()\n")
    _, run_dir, rec = run_script(body, "abort", rc=-signal.SIGABRT, env=no_faulthandler_env())
    assert rec["status"] == "finished"
    assert "Fatal Python error" not in (run_dir / "run.log").read_text()


def test_a_faulthandler_the_script_enables_after_start_outlives_the_run(run_script, tmp_path):
    """The run's end switched faulthandler off, even when the script had enabled its own
    after start(): a later crash then printed no traceback at all."""
    body = CRASH.replace("load_batch()\n", "import faulthandler\nfaulthandler.enable()\n"
                                           "run.finish()\nload_batch()\n")
    proc, run_dir, rec = run_script(body, "abort", rc=-signal.SIGABRT, env=no_faulthandler_env())
    assert rec["status"] == "finished"
    assert "Fatal Python error: Aborted" in proc.stderr
    assert "Fatal Python error" not in (run_dir / "run.log").read_text()


def test_a_crash_logged_over_is_not_the_runs_error(run_script, tmp_path):
    """A worker that crashed earlier, then the main process was killed: the fatal lines are
    not run.log's end, so they are not taken as the run's error."""
    body = """\
    import os, signal, sys, ctypes, logging, runlog
    run = runlog.start()
    pid = os.fork()
    if pid == 0:
        ctypes.string_at(0)
    os.waitpid(pid, 0)
    logging.getLogger(__name__).info("the worker died; going on")
    os.kill(os.getpid(), signal.SIGKILL)
    """
    _, run_dir, _ = run_script(body, rc=-signal.SIGKILL, env=no_faulthandler_env())
    log = (run_dir / "run.log").read_text()
    assert log.index("Fatal Python error: Segmentation fault") < log.index("going on")
    shown = newest(tmp_path)
    assert shown["status"] == "lost" and shown["error"] is None


def test_runlog_run_of_a_python_that_segfaults_records_its_error(tmp_path):
    plain = CRASH.replace("import ctypes, logging, os, sys, runlog\nrun = runlog.start()\n",
                          "import ctypes, logging, os, sys\n")  # no runlog.start(): runlog run alone
    (tmp_path / "s.py").write_text(plain)
    p = runlog(tmp_path / "logs", "run", "--", sys.executable, "s.py", "segv", cwd=tmp_path,
               env=no_faulthandler_env())
    assert p.returncode == -signal.SIGSEGV, p.stderr  # runlog run ends as its program did
    assert "Fatal Python error: Segmentation fault" in p.stderr  # the program's own stderr
    shown = newest(tmp_path)
    assert (shown["status"], shown["signal"]) == ("killed", "SIGSEGV")
    assert shown["error"]["message"] == "Segmentation fault"
    rec = json.loads(runlog(tmp_path / "logs", "show", "--json").stdout)  # the record itself
    assert rec["error"]["where"].endswith(" in string_at")
    assert any("load_batch" in ln for ln in rec["error"]["traceback"])


NULL_CHECKS = """\
public class Npe {
    static int len(String s) { return s.length(); }
    public static int loop(int n) {
        int caught = 0;
        for (int i = 0; i < n; i++) {
            try { len((i % 2 == 0) ? "ab" : null); } catch (NullPointerException e) { caught++; }
        }
        return caught;
    }
}
"""


@pytest.mark.skipif(shutil.which("javac") is None, reason="no JDK (javac) on PATH")
def test_a_jvm_started_before_start_keeps_its_own_segfaults(run_script, tmp_path):
    """The JVM (JPype) raises SIGSEGVs of its own and handles them (null checks, the JIT):
    faulthandler, enabled over its handler, took each for a crash and killed the script."""
    integration("jpype")
    (tmp_path / "Npe.java").write_text(NULL_CHECKS)
    subprocess.run(["javac", "Npe.java"], cwd=tmp_path, check=True, timeout=120)
    proc, run_dir, rec = run_script("""\
        import jpype, runlog
        jpype.startJVM(classpath=["."])
        run = runlog.start(git=False)
        print("caught", jpype.JClass("Npe").loop(200000), flush=True)
        """, env=no_faulthandler_env())
    assert proc.stdout == "caught 100000\n" and rec["status"] == "finished"
