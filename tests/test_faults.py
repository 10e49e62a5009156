"""The record survives everything: each exit path, process and environment fault,
run as a real process with real signals; assertions are on the files left behind.
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
    return sorted(d for d in logs.iterdir() if d.is_dir()) if logs.is_dir() else []


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


# ------------------------------------------------------------------ exit paths


def test_normal_end(tmp_path):
    p = run(tmp_path, "import runlog\nrunlog.start(git=False)\nprint('hi')\n")
    assert p.returncode == 0
    d, r = the_run(tmp_path)
    assert (r["status"], r["exit_code"], r["error"]) == ("finished", 0, None)
    assert (d / "report.md").exists() and r["ended_at"] and r["duration_s"] >= 0


def test_uncaught_exception(tmp_path):
    p = run(tmp_path, """\
        import runlog
        runlog.start(git=False)
        def train():
            raise ValueError("shapes do not match")
        train()
        """)
    assert p.returncode == 1
    assert b"ValueError: shapes do not match" in p.stderr  # the usual traceback still prints
    d, r = the_run(tmp_path)
    assert r["status"] == "failed" and r["exit_code"] == 1
    assert r["error"]["type"] == "ValueError" and r["error"]["message"] == "shapes do not match"
    assert r["error"]["where"] == "s.py:4 in train"
    assert r["error"]["traceback"][-1] == "ValueError: shapes do not match"
    assert "Error: ValueError: shapes do not match (s.py:4 in train)" in (d / "report.md").read_text()
    assert "ERR     ValueError: shapes do not match" in (d / "run.log").read_text()


@pytest.mark.parametrize("code,status", [(0, "finished"), (3, "failed"), ("bad config", "failed")])
def test_sys_exit(tmp_path, code, status):
    p = run(tmp_path, f"import runlog, sys\nrunlog.start(git=False)\nsys.exit({code!r})\n")
    _, r = the_run(tmp_path)
    assert r["status"] == status
    assert r["exit_code"] == (code if isinstance(code, int) else 1) == p.returncode
    if isinstance(code, str):
        assert r["error"]["message"] == "bad config"


def test_ctrl_c(tmp_path):
    script(tmp_path, LONG)
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=tmp_path, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_line(proc, "ready")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode in (-signal.SIGINT, 1, 130)
    d, r = the_run(tmp_path)
    assert r["status"] == "interrupted" and r["exit_code"] == 130
    assert b"## Run " in err and r["metrics"]["i"]["count"] >= 1


@pytest.mark.parametrize("sig,name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP")])
def test_scheduler_signals(tmp_path, sig, name):
    script(tmp_path, LONG)
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=tmp_path, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_line(proc, "ready")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -sig  # exits as the signal would have made it
    d, r = the_run(tmp_path)
    assert (r["status"], r["signal"], r["exit_code"]) == ("killed", name, 128 + sig)
    assert f"killed by {name}".encode() in err
    assert (d / "report.md").read_text().startswith(f"## Run {r['id']} · killed by {name}")


def test_users_own_sigterm_handler_and_excepthook_still_run(tmp_path):
    script(tmp_path, """\
        import runlog, signal, sys, time
        def on_term(signum, frame):
            print("checkpoint saved", flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        sys.excepthook = lambda *a: print("my hook", flush=True)
        runlog.start(git=False)
        print("ready", flush=True)
        time.sleep(30)
        """)
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=tmp_path, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_line(proc, "ready")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert "checkpoint saved" in out and proc.returncode == 0
    _, r = the_run(tmp_path)
    assert r["status"] == "killed" and r["signal"] == "SIGTERM"
    sub = tmp_path / "hook"
    sub.mkdir()
    p = run(sub, "import runlog, sys\nsys.excepthook = lambda *a: print('my hook')\n"
                 "runlog.start(git=False)\nraise KeyError('k')\n")
    assert b"my hook" in p.stdout
    _, r = the_run(sub)
    assert r["status"] == "failed" and r["error"]["type"] == "KeyError"


def test_exception_in_users_atexit_hook(tmp_path):
    p = run(tmp_path, """\
        import atexit, runlog
        runlog.start(git=False)
        @atexit.register
        def broken():
            raise RuntimeError("cleanup failed")
        print("work done")
        """)
    assert b"cleanup failed" in p.stderr
    d, r = the_run(tmp_path)
    assert r["status"] == "finished" and (d / "report.md").exists()


@pytest.mark.parametrize("how", ["os._exit", "SIGKILL"])
def test_hard_exit_shows_lost_and_report_is_rebuilt(tmp_path, capsys, how):
    body = LONG if how == "SIGKILL" else LONG.replace("time.sleep(0.05)", "os._exit(7)").replace(
        "import runlog,", "import os, runlog,")
    script(tmp_path, body)
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=tmp_path, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if how == "SIGKILL":
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
        import runlog
        run = runlog.start(git=False)
        for i in range(400):
            run.set_args({"i": i, "pad": "x" * 5000})
        """)
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=tmp_path, env=env())
    reads = 0
    while proc.poll() is None:
        for d in runs(tmp_path / "logs"):
            try:
                text = (d / "run.json").read_text()
            except FileNotFoundError:
                continue
            json.loads(text)  # every read parses: old or new, never half
            reads += 1
    assert proc.returncode == 0 and reads > 10


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


@pytest.mark.parametrize("case", ["no-git", "not-a-repo", "no-commits", "detached", "huge-untracked"])
def test_git_states(tmp_path, case):
    e = env()
    if case != "not-a-repo" and case != "no-git":
        subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=e)
        (tmp_path / "a.py").write_text("x = 1\n")
        if case != "no-commits":
            subprocess.run(["git", "add", "."], cwd=tmp_path, check=True, env=e)
            subprocess.run(["git", "commit", "-qm", "one"], cwd=tmp_path, check=True, env=e)
    if case == "detached":
        subprocess.run(["git", "checkout", "-q", "--detach"], cwd=tmp_path, check=True, env=e)
    if case == "huge-untracked":
        (tmp_path / "data.bin").write_bytes(os.urandom(3_000_000))
        (tmp_path / "big.txt").write_text("line\n" * 400_000)
    if case == "no-git":
        subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=e)
        bindir = tmp_path / "bin"
        bindir.mkdir()
        (bindir / "python").symlink_to(sys.executable)
        e["PATH"] = str(bindir)
    script(tmp_path, "import runlog\nrunlog.start()\nprint('ok')\n")
    p = subprocess.run([str(tmp_path / "bin" / "python") if case == "no-git" else sys.executable,
                        "s.py"], cwd=tmp_path, env=e, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
    d, r = the_run(tmp_path)
    assert r["status"] == "finished"
    if case == "no-git":
        assert r["git"] is None
        assert [ln for ln in p.stderr.splitlines() if "git" in ln and ln.startswith("runlog:")] == [
            "runlog: could not record the code state (git is not installed); the script goes on"]
    elif case == "not-a-repo":
        assert r["git"] is None and "runlog: could" not in p.stderr
    elif case == "no-commits":
        assert r["git"]["commit"] is None and r["git"]["dirty"]
        assert "+x = 1" in (d / "code.patch").read_text()
    elif case == "detached":
        assert r["git"]["branch"] is None and len(r["git"]["commit"]) == 40
        assert "(detached HEAD)" in (d / "report.md").read_text()
    elif case == "huge-untracked":
        patch = (d / "code.patch").read_text()
        assert "untracked, not saved (large or binary): data.bin" in patch
        assert "untracked, not saved (large or binary): big.txt" in patch
        assert len(patch) < 10_000 and not r["git"]["patch_truncated"]


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
