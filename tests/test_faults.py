"""The record survives everything: hard exits, processes, threads and environment
faults, run as real processes; assertions are on the files left behind.

The ordinary exit paths (exception, sys.exit, Ctrl-C, SIGTERM, chained handlers)
are in test_exit.py, the git states in test_git.py.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runlog.cli import main as cli

HERE = Path(__file__).resolve().parent
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}


def env(**extra) -> dict:
    e = dict(os.environ, **GIT_ENV)
    for k in ("RUNLOG_DIR", "RUNLOG_NOTE", "RANK", "LOCAL_RANK", "RUNLOG_RUN_ID", "RUNLOG_RUN_DIR"):
        e.pop(k, None)
    e.update(extra)
    return e


def script(tmp_path: Path, body: str, name: str = "s.py") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


def run(tmp_path: Path, body: str, *args: str, extra_env=None, **kw):
    script(tmp_path, body)
    return subprocess.run([sys.executable, "s.py", *args], cwd=tmp_path, capture_output=True,
                          env=env(**(extra_env or {})), timeout=120, **kw)


def runs(logs: Path) -> list[Path]:
    if not logs.is_dir():
        return []
    return sorted(d for d in logs.iterdir() if d.is_dir() and not d.name.startswith("."))


def the_run(tmp_path: Path, logs: str = "logs") -> tuple[Path, dict]:
    (d,) = runs(tmp_path / logs)
    return d, json.loads((d / "run.json").read_text())


def wait_for_line(proc, text: str) -> None:
    for line in proc.stdout:
        if text in (line.decode() if isinstance(line, bytes) else line):
            return
    raise AssertionError(f"{text!r} never printed")


LONG = """\
    import runlog, time, logging
    run = runlog.start(git=False)
    logging.info("working")
    for i in range(600):
        run.metric("i", i)
        if i == 0:
            print("ready", flush=True)
        time.sleep(0.05)
    """


# ------------------------------------------------------------------ hard exits


def test_hard_exit_shows_lost_and_report_is_rebuilt(tmp_path, capsys):
    # (os._exit is no hard exit any more: test_exit.py::test_os_exit_still_ends_the_record)
    script(tmp_path, LONG)
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=tmp_path, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wait_for_line(proc, "ready")
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    d, r = the_run(tmp_path)
    assert r["status"] == "running"  # nothing could run: the record says what was written
    logs = str(tmp_path / "logs")
    assert cli(["--dir", logs, "ls", "--status", "lost", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[0])["id"] == r["id"]
    assert cli(["--dir", logs, "report"]) == 0
    report = capsys.readouterr().out
    assert f"## Run {r['id']} · lost" in report
    assert "Metrics: i " in report  # rebuilt from metrics.jsonl
    assert "Last log lines" in report and "working" in report


def test_run_json_is_never_half_written(tmp_path):
    script(tmp_path, """\
        import os, runlog
        run = runlog.start(git=False)
        i = 0
        while not os.path.exists("stop"):  # rewritten until the test has read enough
            run.set_args({"i": i, "pad": "x" * 5000})
            i += 1
        """)
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=tmp_path, env=env())
    versions = set()
    while len(versions) <= 10:  # read while it was being rewritten, again and again
        assert proc.poll() is None, f"the writer ended (exit {proc.returncode})"
        for d in runs(tmp_path / "logs"):
            try:
                text = (d / "run.json").read_text()
            except FileNotFoundError:
                continue
            args = json.loads(text)["args"] or {}  # every read parses: old or new, never half
            if "i" in args:
                versions.add(args["i"])
    (tmp_path / "stop").touch()
    assert proc.wait(timeout=60) == 0


# ------------------------------------------------------------------ processes and threads


def test_forked_workers_never_finish_the_run(tmp_path):
    p = run(tmp_path, """\
        import logging, multiprocessing, os, runlog, sys
        runlog.start(git=False)
        def work(x):
            logging.info("worker %d", x)
            if x == 1:
                sys.exit(5)     # a worker that exits badly
            if x == 2:
                raise SystemExit(0)
            return x
        if __name__ == "__main__":
            ctx = multiprocessing.get_context("fork")
            procs = [ctx.Process(target=work, args=(i,)) for i in range(3)]
            for pr in procs: pr.start()
            for pr in procs: pr.join()
            with ctx.Pool(2) as pool:
                pool.map(work, [10, 11])
            logging.info("parent done")
        """)
    assert p.returncode == 0, p.stderr
    assert p.stderr.count(b"## Run ") == 1
    d, r = the_run(tmp_path)
    assert r["status"] == "finished" and r["exit_code"] == 0
    log = (d / "run.log").read_text()
    assert "worker 0" in log and "worker 11" in log and "parent done" in log


def test_many_threads_lose_and_interleave_no_lines(tmp_path):
    run(tmp_path, """\
        import logging, threading, runlog
        runlog.start(git=False, console=False)
        log = logging.getLogger("t")
        def work(t):
            for i in range(2000):
                log.info("thread %d line %d %s", t, i, "y" * 50)
        ts = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in ts: t.start()
        for t in ts: t.join()
        """)
    d, _ = the_run(tmp_path)
    lines = [ln for ln in (d / "run.log").read_text().splitlines() if " thread " in ln]
    assert len(lines) == 16000
    assert all(ln.endswith("y" * 50) and ln[24:].startswith("INFO    t: thread ") for ln in lines)
    per = {}
    for ln in lines:
        t, i = ln.split("thread ")[1].split(" line ")
        per.setdefault(t, []).append(int(i.split()[0]))
    assert all(v == list(range(2000)) for v in per.values())


def test_fifty_starts_in_the_same_second(tmp_path):
    script(tmp_path, "import runlog\nrunlog.start(git=False, console=False)\n")
    e = env()

    def one(_):
        return subprocess.run([sys.executable, "s.py"], cwd=tmp_path, env=e,
                              capture_output=True).returncode

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        assert list(pool.map(one, range(50))) == [0] * 50
    ds = runs(tmp_path / "logs")
    assert len(ds) == 50
    ids = {json.loads((d / "run.json").read_text())["id"] for d in ds}
    assert len(ids) == 50
    assert all(json.loads((d / "run.json").read_text())["status"] == "finished" for d in ds)


def test_nonzero_rank_makes_no_run(tmp_path):
    body = "import logging, runlog\nrun = runlog.start(git=False)\nlogging.info('hello from %s', run.id)\n"
    p = run(tmp_path, body, extra_env={"RANK": "1"})
    assert p.returncode == 0 and b"hello from None" in p.stderr
    assert runs(tmp_path / "logs") == []
    # rank 0 makes the run; rank 1, told its id, writes rank1.log into it
    p0 = run(tmp_path, body, extra_env={"RANK": "0"})
    assert p0.returncode == 0
    d, r = the_run(tmp_path)
    p1 = run(tmp_path, body, extra_env={"RANK": "1", "RUNLOG_RUN_ID": r["id"]})
    assert p1.returncode == 0
    assert f"hello from {r['id']}" in (d / "rank1.log").read_text()
    assert len(runs(tmp_path / "logs")) == 1


# ------------------------------------------------------------------ the environment fails


def _mount(path: Path, *opts: str) -> None:
    path.mkdir(exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(opts), "tmpfs", str(path)],
                       capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {p.stderr.decode().strip()}")


@pytest.fixture
def mounts():
    made = []
    yield made
    for m in made:
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


TRAIN = """\
    import logging, runlog, sys
    runlog.start(git=False)
    for i in range(3000):
        logging.info("line %d %s", i, "z" * 80)
        runlog.metric("m", i)
    print("script done")
    sys.exit(4)
    """


def test_read_only_log_dir(tmp_path, mounts):
    _mount(tmp_path / "logs", "ro", "size=1m")
    mounts.append(tmp_path / "logs")
    p = run(tmp_path, TRAIN)
    assert p.returncode == 4 and b"script done" in p.stdout
    errs = [ln for ln in p.stderr.decode().splitlines() if ln.startswith("runlog:")]
    assert len(errs) == 1 and "could not start the run" in errs[0] and "Read-only" in errs[0]
    assert b"line 2999" in p.stderr  # console logging goes on
    assert b"Traceback" not in p.stderr


def test_full_disk(tmp_path, mounts):
    _mount(tmp_path / "logs", "size=64k")
    mounts.append(tmp_path / "logs")
    p = run(tmp_path, TRAIN)
    assert p.returncode == 4 and b"script done" in p.stdout
    errs = [ln for ln in p.stderr.decode().splitlines() if ln.startswith("runlog:")
            and "run " not in ln[:12]]
    assert 1 <= len(errs) <= 4 and all("No space left" in e for e in errs)
    assert len(set(errs)) == len(errs)  # each thing it could not do is said once
    assert b"Traceback" not in p.stderr


def test_no_clipboard_no_tty_and_non_utf8_arguments(tmp_path):
    e = env()
    e.pop("DISPLAY", None)
    e.pop("WAYLAND_DISPLAY", None)
    script(tmp_path, "import runlog, sys\nrunlog.start(copy=True, git=False)\nprint(len(sys.argv))\n")
    p = subprocess.run([sys.executable, "s.py", b"--name=caf\xe9", "plain"], cwd=tmp_path, env=e,
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == b"3"
    copy_lines = [ln for ln in p.stderr.decode().splitlines() if "could not copy" in ln]
    assert len(copy_lines) == 1
    d, r = the_run(tmp_path)
    assert r["status"] == "finished"
    assert "caf" in r["command_line"]
    json.loads((d / "run.json").read_text())


# ------------------------------------------------------------------ bad input to the CLI


def test_cli_bad_input(tmp_path, capsys):
    logs = tmp_path / "logs"
    assert cli(["--dir", str(logs), "ls"]) == 1
    assert capsys.readouterr().err.strip().startswith("runlog: error: no log directory")
    run(tmp_path, "import runlog\nrunlog.start(git=False)\n")
    (good,) = runs(logs)
    (logs / "notes.txt").write_text("not a run")
    (logs / "foreign").mkdir()
    broken = logs / "20200101-000000"
    broken.mkdir()
    (broken / "run.json").write_text("{ half")
    (broken / "run.log").write_text("x\n")
    missing = logs / "20200101-000001"
    missing.mkdir()
    (missing / "run.log").write_text("y\n")
    assert cli(["--dir", str(logs), "ls"]) == 0
    out = capsys.readouterr()
    assert good.name in out.out and "foreign" not in out.out
    assert out.err.count("warning") == 2  # the broken and the incomplete run, one line each
    for spec in ("nope", "2020", "-9"):
        assert cli(["--dir", str(logs), "show", spec]) == 1
        err = capsys.readouterr().err.splitlines()
        assert err[-1].startswith("runlog: error:") and len(err) == 3  # 2 warnings, 1 error
