"""The record says how the process really ended: for every way a script can end, run.json's
exit_code and status and the report's status line agree with what the shell sees."""

from __future__ import annotations

import re
import signal

import pytest

USAGE = "import argparse\np = argparse.ArgumentParser()\np.add_argument('--lr', type=float)\n"

# name -> (the script after `runlog.start()`, what runs before it, the exit status the shell sees)
ENDS = {
    "sys.exit(0)": ("sys.exit(0)", "", 0),
    "sys.exit(None)": ("sys.exit(None)", "", 0),
    "sys.exit(3)": ("sys.exit(3)", "", 3),
    "sys.exit(message)": ("sys.exit('bad config')", "", 1),
    "sys.exit(256)": ("sys.exit(256)", "", 0),
    "sys.exit(-1)": ("sys.exit(-1)", "", 255),
    "sys.exit(True)": ("sys.exit(True)", "", 1),
    "sys.exit(130)": ("sys.exit(130)", "", 130),  # a code, not a death by SIGINT
    "sys.exit(2.5)": ("sys.exit(2.5)", "", 1),  # any other object: printed, exit 1
    "sys.exit(2**64)": ("sys.exit(2**64)", "", 255),  # too large for a C long: -1
    "SystemExit in a thread": (
        "def stop():\n    raise SystemExit(2)\n"
        "t = threading.Thread(target=stop)\nt.start()\nt.join()\n", "", 0),
    "sys.exit in a thread, then an exception": (
        "t = threading.Thread(target=sys.exit, args=(4,))\nt.start()\nt.join()\n"
        "raise ValueError('later')\n", "", 1),
    "caught sys.exit, then an exception": (
        "try:\n    sys.exit(3)\nexcept SystemExit:\n    pass\nraise ValueError('later')\n", "", 1),
    "caught sys.exit, then the end": (
        "try:\n    sys.exit(3)\nexcept SystemExit:\n    pass\nprint('went on')\n", "", 0),
    "caught sys.exit in a function, then an exception": (
        "def f():\n    try:\n        sys.exit(3)\n    except SystemExit:\n        pass\n"
        "f()\nraise KeyError('k')\n", "", 1),
    "an exception in the script's atexit hook": (
        "@atexit.register\ndef broken():\n    raise RuntimeError('cleanup failed')\nsys.exit(3)\n",
        "", 3),
    "sys.exit in the script's atexit hook": (
        "@atexit.register\ndef again():\n    sys.exit(5)\nsys.exit(3)\n", "", 3),
    "sys.exit in the script's atexit hook, normal end": (
        "@atexit.register\ndef again():\n    sys.exit(5)\n", "", 0),
    "caught usage error, then an exception": (
        USAGE + "try:\n    p.parse_args(['--lr', 'x'])\nexcept SystemExit:\n    pass\n"
        "raise ValueError('later')\n", "", 1),
    "caught usage error, then sys.exit(3)": (
        USAGE + "try:\n    p.parse_args(['--lr', 'x'])\nexcept SystemExit:\n    pass\nsys.exit(3)\n",
        "", 3),
    "os._exit(300)": ("os._exit(300)", "", 44),
    "os._exit in an atexit hook after runlog's": (
        "sys.exit(3)\n", "def late():\n    os._exit(5)\natexit.register(late)\n", 5),
    "KeyboardInterrupt": ("raise KeyboardInterrupt\n", "", -signal.SIGINT),
    "an exception while a thread still runs": (
        "def work():\n    while threading.main_thread().is_alive():\n        time.sleep(0.01)\n"
        "threading.Thread(target=work).start()\nraise ValueError('main died')\n", "", 1),
    "sys.exit in a thread after the main thread's": (
        "def work():\n    while threading.main_thread().is_alive():\n        time.sleep(0.01)\n"
        "    sys.exit(9)\n"
        "threading.Thread(target=work).start()\nsys.exit(3)\n", "", 3),
    "the end while a thread calls sys.exit later": (
        "def work():\n    while threading.main_thread().is_alive():\n        time.sleep(0.01)\n"
        "    sys.exit(9)\n"
        "threading.Thread(target=work).start()\n", "", 0),
}


def expected(returncode: int) -> tuple[str, int]:
    """(status, exit_code) a shell's status gives: a death by signal N is 128 + N."""
    if returncode < 0:
        return ("interrupted" if -returncode == signal.SIGINT else "killed"), 128 - returncode
    return {0: "finished", 130: "interrupted"}.get(returncode, "failed"), returncode


@pytest.mark.parametrize("name", list(ENDS))
def test_the_record_says_what_the_shell_sees(run_script, name):
    body, before, rc = ENDS[name]
    script = ("import atexit, os, sys, threading, time, runlog\n" + before
              + "runlog.start(git=False)\n" + body + "\n")
    proc, d, r = run_script(script, rc=None)
    assert proc.returncode == rc, proc.stderr  # what Python itself does, runlog or not
    status, code = expected(proc.returncode)
    assert (r["status"], r["exit_code"]) == (status, code), proc.stderr
    shown = status if status != "failed" or code == 1 else f"failed (exit {code})"
    report = (d / "report.md").read_text()
    assert report.startswith(f"## Run {r['id']} · {shown} · ")
    assert len(re.findall(r"^## Run ", proc.stderr, re.M)) == 1
    if name == "sys.exit(message)":
        assert (r["error"]["type"], r["error"]["message"]) == ("SystemExit", "bad config")
    if name == "sys.exit(2.5)":
        assert r["error"]["message"] == "2.5"  # what Python printed
    if name == "os._exit in an atexit hook after runlog's":  # the report printed said exit 3
        assert f"the process exits with 5 after the report; run {r['id']} is recorded failed" \
            in proc.stderr
    if status == "finished":
        assert r["error"] is None
    # a death by signal names it, as `runlog run` does for its program
    assert r.get("signal") == (signal.Signals(-rc).name if rc < 0 else None)
