"""`runlog sweep --gpus`: each running trial its own CUDA_VISIBLE_DEVICES, checked from inside.

There is no GPU here: the device ids are fake, and what matters is what each
trial process saw. Every trial appends its start (with its devices) and its end
to one events file with single O_APPEND writes, so the file's order is the
order things happened; a slot is given back only after its trial's process
has exited, so a trial's end line always precedes the start of the next
trial on the same devices.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runlog.cli.sweep_gpus import from_nvidia_smi

RUNLOG = [sys.executable, "-m", "runlog"]

PROGRAM = """\
import os, sys, time
events, k = sys.argv[1], sys.argv[2]
together = int(sys.argv[3]) if len(sys.argv) > 3 else 2
devs = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")

def say(line):
    fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (line + "\\n").encode())
    os.close(fd)

say(f"start {k} {devs}")
# whichever trial starts first waits for a second one to start: two trials surely overlap
end = time.time() + 60
while open(events).read().count("start ") < together and time.time() < end:
    time.sleep(0.02)
say(f"end {k} {devs}")
"""


@pytest.fixture
def prog(tmp_path):
    (tmp_path / "g.py").write_text(textwrap.dedent(PROGRAM))
    return tmp_path


def sweep(cwd: Path, *args: str, **env_extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    env.pop("RUNLOG_DIR", None)
    if "CUDA_VISIBLE_DEVICES" not in env_extra:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    return subprocess.run([*RUNLOG, "sweep", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def records(cwd: Path) -> list[dict]:
    return [json.loads((d / "run.json").read_text()) for d in sorted((cwd / "logs").iterdir())
            if d.is_dir() and not d.name.startswith(".")]


def replay(events: Path) -> tuple[dict, int]:
    """Each trial's devices, and the most trials running at once; fails on any overlap."""
    active: dict[str, set] = {}
    seen: dict[str, str] = {}
    most = 0
    for line in events.read_text().splitlines():
        what, k, devs = line.split(" ", 2)
        if what == "start":
            mine = set(devs.split(","))
            for other, theirs in active.items():
                assert not mine & theirs, f"trial {k} got {devs} while trial {other} had {theirs}"
            active[k] = mine
            seen[k] = devs
            most = max(most, len(active))
        else:
            del active[k]
    assert not active
    return seen, most


def test_each_running_trial_has_its_own_devices(prog):
    events = prog / "events"
    p = sweep(prog, "--gpus", "0,1,2,3", "--gpus-per-trial", "2", "-p", "k=0..5", "--",
              sys.executable, "g.py", str(events), "{k}")
    assert p.returncode == 0, p.stderr
    seen, most = replay(events)
    assert sorted(seen) == [str(k) for k in range(6)]
    assert set(seen.values()) == {"0,1", "2,3"}
    assert most == 2  # -j defaulted to the two slots, and two trials did run at once
    rs = records(prog)
    assert sorted(r["sweep"]["trial"] for r in rs) == list(range(6))
    for r in rs:  # the record says what the trial saw
        k = r["sweep"]["params"]["k"]
        assert r["command"][-1] == str(k) and r["sweep"]["trial"] == k
        assert r["sweep"]["gpus"] == seen[str(k)]
    assert "started on GPU 0,1" in p.stderr


def test_auto_takes_the_visible_devices(prog):
    events = prog / "events"
    p = sweep(prog, "--gpus", "auto", "-p", "k=0..3", "--", sys.executable, "g.py",
              str(events), "{k}", CUDA_VISIBLE_DEVICES="5,7")
    assert p.returncode == 0, p.stderr
    seen, most = replay(events)
    assert set(seen.values()) == {"5", "7"} and most == 2


def test_fewer_jobs_than_slots_uses_the_first_slots(prog):
    events = prog / "events"
    p = sweep(prog, "--gpus", "0,1,2", "-j", "1", "-p", "k=1..3", "--", sys.executable,
              "g.py", str(events), "{k}", "1")
    assert p.returncode == 0, p.stderr
    seen, most = replay(events)
    assert set(seen.values()) == {"0"} and most == 1


@pytest.mark.parametrize("args,env,message", [
    (["--gpus", "0,1", "-j", "3"], {}, "-j 3 is more than the 2 GPU slot(s)"),
    (["--gpus", "0", "--gpus-per-trial", "2"], {}, "needs more than the 1 device"),
    (["--gpus", "0,0"], {}, "names a device twice"),
    (["--gpus", "auto"], {"CUDA_VISIBLE_DEVICES": ""}, "hides every GPU"),
    (["--gpus", "auto"], {"PATH": "/nonexistent"}, "found no GPU"),
])
def test_bad_gpus_is_one_line(tmp_path, args, env, message):
    p = sweep(tmp_path, *args, "-p", "a=1", "--", "echo", "{a}", **env)
    assert p.returncode == 1, p.stderr
    assert p.stderr.count("\n") == 1 and message in p.stderr, p.stderr


def test_nvidia_smi_listing():
    text = ("GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5a0c1a26-3b7c-a1e7-9cbb-1d4a1f1c3c2e)\n"
            "  MIG 1g.5gb     Device  0: (UUID: MIG-0c6b7d3c-7a61-5b1e-8a4e-2b0d0f1e8c71)\n"
            "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-8f2d6f0e-9f35-2c2f-7d0b-3c5e8a9b1d44)\n")
    assert from_nvidia_smi(text) == ["0", "1"]
    assert from_nvidia_smi("No devices were found\n") == []
