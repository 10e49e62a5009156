"""`runlog run -- COMMAND`: real programs, real signals, real run folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

RUNLOG = [sys.executable, "-m", "runlog"]


def runs(logs: Path) -> list[Path]:
    if not logs.exists():
        return []
    return sorted(p for p in logs.iterdir() if p.is_dir() and not p.name.startswith("."))


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def runlog_run(tmp_path: Path, *cmd: str, note: str | None = None, env=None, **kw):
    argv = [*RUNLOG, "run"] + (["--note", note] if note else []) + ["--", *cmd]
    e = dict(os.environ, **(env or {}))
    e.pop("RUNLOG_DIR", None)
    e.pop("RUNLOG_NOTE", None)
    return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=e, timeout=60,
                          **kw)


def write(tmp_path: Path, name: str, text: str, mode: int = 0o644) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    p.chmod(mode)
    return p


def test_shell_script_metrics_and_exit_code(tmp_path):
    write(tmp_path, "train.sh", """\
        #!/bin/sh
        for i in 1 2 3; do
          echo "epoch $i"
          echo "{\\"metric\\": \\"acc\\", \\"value\\": 0.$((i + 6)), \\"step\\": $i}"
        done
        echo '{"metric": "loss", "value": 1.5}'
        echo '{"metric": "acc", "value": "not a number"}'
        echo "bad things" >&2
        exit 3
        """, 0o755)
    p = runlog_run(tmp_path, "./train.sh", "LR=0.1", note="shell run")
    assert p.returncode == 3
    assert "epoch 2" in p.stdout  # passed through
    assert '{"metric": "acc", "value": 0.8, "step": 2}' in p.stdout
    assert "bad things" in p.stderr
    (run_dir,) = runs(tmp_path / "logs")
    r = record(run_dir)
    assert r["status"] == "failed"
    assert r["exit_code"] == 3
    assert r["note"] == "shell run"
    assert r["args"] == {"LR": 0.1} and r["args_given"] == ["LR"]
    assert r["metrics"]["acc"] == {"last": 0.9, "min": 0.7, "max": 0.9, "count": 3, "step": 3}
    assert r["metrics"]["loss"]["last"] == 1.5
    assert r["command_line"] == "runlog run -- ./train.sh LR=0.1"
    log = (run_dir / "run.log").read_text()
    assert "OUT     epoch 1" in log and "ERR     bad things" in log
    points = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [pt["value"] for pt in points if pt["name"] == "acc"] == [0.7, 0.8, 0.9]
    assert "failed (exit 3)" in p.stderr  # the report
    assert (run_dir / "report.md").read_text().startswith(f"## Run {r['id']} · failed (exit 3)")


def test_interleaved_stdout_stderr_keep_their_order(tmp_path):
    # Two pipes have no order between them: each line is written once the one before it is
    # in run.log (runlog run has read it), as a program's lines come apart in time.
    write(tmp_path, "inter.py", """\
        import os, sys, time
        log = os.path.join(os.environ["RUNLOG_RUN_DIR"], "run.log")

        def logged(line):
            while line not in open(log).read():
                time.sleep(0.005)

        for i in range(15):
            print(f"out {i}", flush=True)
            logged(f"OUT     out {i}\\n")
            print(f"err {i}", file=sys.stderr, flush=True)
            logged(f"ERR     err {i}\\n")
        """)
    p = runlog_run(tmp_path, sys.executable, "inter.py")
    assert p.returncode == 0
    (run_dir,) = runs(tmp_path / "logs")
    lines = [ln[24:].split(None, 1) for ln in (run_dir / "run.log").read_text().splitlines()]
    seen = [f"{tag} {text}" for tag, text in lines if tag in ("OUT", "ERR")]
    expected = []
    for i in range(15):
        expected += [f"OUT out {i}", f"ERR err {i}"]
    assert seen == expected
    assert p.stdout.split() == " ".join(f"out {i}" for i in range(15)).split()


def test_sigint_is_forwarded_and_recorded(tmp_path):
    write(tmp_path, "long.py", """\
        import time
        try:
            print("started", flush=True)  # inside the try: an interrupt right after it is caught
            for i in range(600):
                time.sleep(0.05)
        except KeyboardInterrupt:
            print("caught", flush=True)
            raise
        """)
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    proc = subprocess.Popen([*RUNLOG, "run", "--", sys.executable, "long.py"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert "caught" in out, err
    assert proc.returncode == -signal.SIGINT  # runlog run dies the way its program died
    (run_dir,) = runs(tmp_path / "logs")
    r = record(run_dir)
    assert r["status"] == "interrupted"
    assert r["signal"] == "SIGINT"
    assert "KeyboardInterrupt" in (run_dir / "run.log").read_text()


CHECKPOINT = """\
import signal, sys, time
def save(signum, frame):  # a checkpointing handler: a second SIGTERM mid-save would hurt
    print("saving after", signal.Signals(signum).name, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, save)
signal.signal(signal.SIGHUP, save)
print("ready", flush=True)
for _ in range(1200):
    time.sleep(0.05)
"""


def _checkpointer(tmp_path: Path):
    """runlog run of CHECKPOINT in a session of its own, once the program is ready."""
    write(tmp_path, "ck.py", CHECKPOINT)
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    proc = subprocess.Popen([*RUNLOG, "run", "--no-git", "--", sys.executable, "ck.py"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    assert proc.stdout.readline() == "ready\n"
    (run_dir,) = runs(tmp_path / "logs")
    return proc, run_dir


@pytest.mark.parametrize("how", ["the whole process group", "every process, one by one",
                                 "runlog run alone"])
def test_sigterm_reaches_the_program_exactly_once(tmp_path, how):
    # kill -TERM -- -PGID, a scheduler signalling every process of a job (Slurm, systemd),
    # or `kill PID` of the wrapper: the program's handler runs once, and run.log says why
    proc, run_dir = _checkpointer(tmp_path)
    if how == "the whole process group":
        os.killpg(proc.pid, signal.SIGTERM)
    elif how == "every process, one by one":
        pids = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
        def comm(pid):
            return Path(f"/proc/{pid}/comm").read_text().strip()

        # the group's `sleep` first, runlog run next, the program last: whatever the load,
        # runlog run looks before the program can end, and sees that the group got it
        order = sorted(pids, key=lambda p: (comm(p) != "sleep", int(p) != proc.pid))
        for pid in order:
            os.kill(int(pid), signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert out.count("saving after SIGTERM") == 1, (out, err)
    r = record(run_dir)
    assert (r["status"], r["signal"], r["exit_code"]) == ("killed", "SIGTERM", 0)
    log = (run_dir / "run.log").read_text()
    said = "forwarded to the program" if how == "runlog run alone" else "reached the program directly"
    assert said in log


def test_a_hangup_of_the_session_runlog_run_leads_reaches_the_program(tmp_path):
    # runlog run as the session leader (a tmux pane, ssh -t, setsid): the kernel tells only
    # the session leader that the terminal went away; the program must hear it too
    proc, run_dir = _checkpointer(tmp_path)
    proc.send_signal(signal.SIGHUP)  # what the kernel sends the session leader on a hangup
    out, err = proc.communicate(timeout=30)
    assert out.count("saving after SIGHUP") == 1, (out, err)
    r = record(run_dir)
    assert (r["status"], r["signal"]) == ("killed", "SIGHUP")
    assert "SIGHUP from pid" in (run_dir / "run.log").read_text()


def test_program_killed_by_signal_is_recorded_as_killed(tmp_path):
    write(tmp_path, "die.sh", "#!/bin/sh\necho going\nkill -TERM $$\nsleep 5\n", 0o755)
    p = runlog_run(tmp_path, "./die.sh")
    assert p.returncode == -signal.SIGTERM
    (run_dir,) = runs(tmp_path / "logs")
    r = record(run_dir)
    assert (r["status"], r["signal"], r["exit_code"]) == ("killed", "SIGTERM", 128 + 15)


def test_python_program_calling_start_joins_the_run(tmp_path):
    write(tmp_path, "train.py", """\
        import argparse, logging
        import runlog
        p = argparse.ArgumentParser()
        p.add_argument("--lr", type=float, default=0.1)
        p.add_argument("--epochs", type=int, default=2)
        args = p.parse_args()
        run = runlog.start()
        for e in range(args.epochs):
            logging.getLogger("train").info("epoch %d", e)
            run.metric("loss", 1.0 / (e + 1), step=e)
        print("done")
        """)
    p = runlog_run(tmp_path, sys.executable, "train.py", "--lr", "0.5", "--note", "joined")
    assert p.returncode == 0, p.stderr
    (run_dir,) = runs(tmp_path / "logs")  # exactly one run folder
    r = record(run_dir)
    assert r["status"] == "finished"
    assert r["args"] == {"lr": 0.5, "epochs": 2}
    assert r["args_given"] == ["lr"]
    assert r["note"] == "joined"
    assert r["metrics"]["loss"]["count"] == 2
    log = (run_dir / "run.log").read_text()
    assert log.count("epoch 1") == 1  # logged once, by the program, with its level
    assert "INFO    train: epoch 1" in log
    assert "OUT     done" in log
    assert p.stderr.count("## Run ") == 1  # one report, from runlog run


def test_unmodified_program_has_its_arguments_recorded(tmp_path):
    write(tmp_path, "tool.py", """\
        import argparse, multiprocessing, sys

        def work(x):
            # a worker parsing arguments of its own must not overwrite the program's
            argparse.ArgumentParser().parse_known_args(["--other"])
            return x * x

        def main():
            p = argparse.ArgumentParser()
            p.add_argument("--verbose", action="store_true")
            sub = p.add_subparsers(dest="cmd")
            t = sub.add_parser("train")
            t.add_argument("--lr", type=float, default=0.1)
            t.add_argument("--layers", type=int, default=2)
            args, rest = p.parse_known_args()
            # a library parsing later in the same process does not count either
            argparse.ArgumentParser().parse_known_args(["--x"])
            with multiprocessing.get_context("spawn").Pool(2) as pool:
                print(sum(pool.map(work, range(4))), rest)

        if __name__ == "__main__":
            main()
        """)
    p = runlog_run(tmp_path, sys.executable, "tool.py", "train", "--layers", "4", "--extra", "1")
    assert p.returncode == 0, p.stderr
    assert "14 ['--extra', '1']" in p.stdout
    (run_dir,) = runs(tmp_path / "logs")
    r = record(run_dir)
    assert r["args"] == {"verbose": False, "cmd": "train", "lr": 0.1, "layers": 4}
    assert sorted(r["args_given"]) == ["cmd", "layers"]


def test_note_among_the_programs_own_arguments(tmp_path):
    write(tmp_path, "plain.py", """\
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--n", type=int, default=1)
        print(p.parse_args().n)
        """)
    p = runlog_run(tmp_path, sys.executable, "plain.py", "--n", "3", "--note", "why not")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "3"
    (run_dir,) = runs(tmp_path / "logs")
    r = record(run_dir)
    assert r["note"] == "why not"
    assert "--note" not in r["command_line"]


def test_unknown_command_is_one_line_error(tmp_path):
    p = runlog_run(tmp_path, "no-such-program-xyz")
    assert p.returncode == 127
    assert p.stderr.strip() == "runlog: error: command not found: no-such-program-xyz"
    assert not (tmp_path / "logs").exists()


def test_nothing_to_run_is_an_error(tmp_path):
    p = subprocess.run([*RUNLOG, "run"], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 1
    assert "nothing to run" in p.stderr
    assert "Traceback" not in p.stderr


def test_progress_bar_redraws_leave_final_state(tmp_path):
    write(tmp_path, "bar.py", """\
        import sys
        for i in range(501):
            sys.stderr.write(f"\\rprogress {i}/500")
            sys.stderr.flush()
        sys.stderr.write("\\n")
        print("after")
        """)
    p = runlog_run(tmp_path, sys.executable, "bar.py")
    assert p.returncode == 0
    (run_dir,) = runs(tmp_path / "logs")
    log = (run_dir / "run.log").read_text()
    assert log.count("progress") == 1
    assert "ERR     progress 500/500" in log


@pytest.mark.skipif(not os.path.exists("/usr/bin/make") and not os.path.exists("/bin/make"),
                    reason="make is not installed")
def test_make_target_with_variables(tmp_path):
    write(tmp_path, "Makefile", "LR ?= 0.1\ntrain:\n\t@echo '{\"metric\": \"acc\", \"value\": $(LR)}'\n")
    p = runlog_run(tmp_path, "make", "train", "LR=0.3")
    assert p.returncode == 0, p.stderr
    (run_dir,) = runs(tmp_path / "logs")
    r = record(run_dir)
    assert r["args"] == {"LR": 0.3}
    assert r["metrics"]["acc"]["last"] == 0.3
    assert r["script"] == "make train"


def test_previous_run_of_same_command_is_compared(tmp_path):
    write(tmp_path, "t.sh", "#!/bin/sh\necho '{\"metric\": \"acc\", \"value\": '$1'}'\n", 0o755)
    runlog_run(tmp_path, "./t.sh", "0.5")
    time.sleep(0.01)
    p = runlog_run(tmp_path, "./t.sh", "0.7")
    first, second = runs(tmp_path / "logs")
    r = record(second)
    assert r["previous"] == first.name
    assert f"Since {first.name}:" in p.stderr and "acc 0.5 → 0.7" in p.stderr


def test_a_huge_line_without_a_newline_passes_through_and_is_kept_bounded(tmp_path):
    # 20 MB on one line in small writes: all of it reaches our stdout, run.log keeps a
    # bounded head of it with a count of the rest, and the journal a bounded tail
    write(tmp_path, "big.py", """\
        import sys
        for _ in range(200_000):
            sys.stdout.write("x" * 100)
        sys.stdout.write("\\nafter\\n")
        """)
    logs = tmp_path / "logs"
    with open(tmp_path / "out.bin", "wb") as out:
        p = subprocess.run([*RUNLOG, "--dir", str(logs), "run", "--no-git", "--", sys.executable,
                            "big.py"], cwd=tmp_path, stdout=out, stderr=subprocess.PIPE,
                           timeout=300)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "out.bin").stat().st_size == 20_000_000 + len("\nafter\n")
    (run_dir,) = runs(logs)
    log = (run_dir / "run.log").read_text()
    assert len(log) < 2_000_000  # the head of the line, not all of it
    (line,) = [ln for ln in log.splitlines() if ln.endswith("more characters not kept]")]
    assert " OUT     xxxx" in line and "after" in log
    assert record(run_dir)["status"] == "finished"
    j = subprocess.run([*RUNLOG, "--dir", str(logs), "journal", "-o", str(tmp_path / "j.html")],
                       capture_output=True, text=True, timeout=120)
    assert j.returncode == 0 and (tmp_path / "j.html").stat().st_size < 1_000_000


def test_a_killed_runlog_run_takes_its_program_with_it(tmp_path):
    # kill -9 of the wrapper: the program gets SIGTERM instead of running on, orphaned
    write(tmp_path, "loop.py", """\
        import os, time
        print(os.getpid(), flush=True)
        while True:
            time.sleep(0.05)
        """)
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    proc = subprocess.Popen([*RUNLOG, "run", "--no-git", "--", sys.executable, "loop.py"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    child = int(proc.stdout.readline())
    fd = os.pidfd_open(child)
    try:
        proc.kill()
        proc.wait()
        import select

        ready, _, _ = select.select([fd], [], [], 30)  # the program's end, as an event
        assert ready, "the program outlived its runlog run"
    finally:
        os.close(fd)
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    (run_dir,) = runs(tmp_path / "logs")
    ls = subprocess.run([*RUNLOG, "--dir", str(tmp_path / "logs"), "ls"], capture_output=True,
                        text=True, timeout=60)
    assert ls.stdout.splitlines()[1].split()[1] == "lost"
