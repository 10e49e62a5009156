"""The facts in real runs: two venvs that differ in one package, a data file edited between
runs, memory used by a child of `runlog run`, Slurm variables, a (stand-in) nvidia-smi."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import runlog
from conftest import read_json, run_dirs

RUNLOG_SRC = str(Path(runlog.__file__).resolve().parents[1])
RUNLOG = [sys.executable, "-m", "runlog"]
MIB = 1024 * 1024

USES_TINY = """\
import argparse, runlog, tinypkg
p = argparse.ArgumentParser()
p.add_argument("--data", default="train.csv")
a = p.parse_args()
runlog.start(git=False)
print("tinypkg", tinypkg.VERSION)
"""


def _wheel(tmp: Path, name: str, version: str) -> Path:
    """A real wheel of a one-module package, written as the wheel format says (this machine
    has no `wheel` package for setuptools to build one with); pip installs it as any other."""
    import base64
    import hashlib
    import zipfile

    files = {f"{name}/__init__.py": f"VERSION = {version!r}\n",
             f"{name}-{version}.dist-info/METADATA":
                 f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{name}-{version}.dist-info/WHEEL":
                 "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
             f"{name}-{version}.dist-info/top_level.txt": f"{name}\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    out = tmp / "wheels"
    out.mkdir(exist_ok=True)
    whl = out / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return whl


def _venv(where: Path, *wheels: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(where)],
                   check=True, capture_output=True, timeout=120)
    py = where / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-index",
                    "--no-deps", *map(str, wheels)], check=True, capture_output=True, timeout=120)
    return py


def _env(**extra) -> dict:
    e = dict(os.environ, **{"PYTHONPATH": RUNLOG_SRC, **extra})
    e.pop("RUNLOG_DIR", None)
    return e


def _run(py, cwd: Path, *args, env=None):
    before = run_dirs(cwd / "logs")
    p = subprocess.run([str(py), "s.py", *args], cwd=cwd, env=env or _env(), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    (d,) = run_dirs(cwd / "logs") - before
    return p, read_json(d / "run.json")


def test_two_venvs_differing_in_one_package_and_an_edited_data_file(tmp_path):
    w10, w11 = _wheel(tmp_path, "tinypkg", "1.0"), _wheel(tmp_path, "tinypkg", "1.1")
    other = _wheel(tmp_path, "otherpkg", "2.0")
    py_a, py_b = _venv(tmp_path / "va", w10), _venv(tmp_path / "vb", w11)
    work = tmp_path / "work"
    work.mkdir()
    (work / "s.py").write_text(USES_TINY)
    (work / "train.csv").write_text("x,y\n1,2\n")

    p, a = _run(py_a, work)
    assert "tinypkg 1.0" in p.stdout
    assert a["env"]["packages"]["tinypkg"] == "1.0"
    assert a["env"]["executable"] == str(py_a)
    assert a["data"]["data"]["kind"] == "file" and a["data"]["data"]["size"] == 8

    p, b = _run(py_b, work)
    assert b["env"]["packages"]["tinypkg"] == "1.1"
    assert b["env"]["installed_hash"] != a["env"]["installed_hash"]
    (since,) = [ln for ln in p.stderr.splitlines() if ln.startswith("- Since")]
    assert since == f"- Since {a['id']}: tinypkg 1.0 → 1.1"

    # the same installed set again, the data file edited
    (work / "train.csv").write_text("x,y\n1,3\n")
    p, c = _run(py_b, work)
    (since,) = [ln for ln in p.stderr.splitlines() if ln.startswith("- Since")]
    assert since == f"- Since {b['id']}: data train.csv changed"

    # a package the script does not import is added: the environment changed, by one package
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py_b), "install", "-q", "--no-index",
                    "--no-deps", str(other)], check=True, capture_output=True, timeout=120)
    p, d = _run(py_b, work)
    (since,) = [ln for ln in p.stderr.splitlines() if ln.startswith("- Since")]
    assert since == f"- Since {c['id']}: environment changed (1 package)"
    assert d["env"]["installed_diff"]["changed"] == ["otherpkg"]
    # each installed set is listed once in the log directory, and no reader sees it as a run
    envs = work / "logs" / ".runlog-envs"
    listed = {x.read_text() for x in envs.glob("*.txt")}
    assert len(listed) == 3 and any("tinypkg==1.0\n" in t for t in listed)
    ls = subprocess.run([*RUNLOG, "--dir", str(work / "logs"), "ls", "--json"], env=_env(),
                        capture_output=True, text=True, timeout=60)
    assert ls.returncode == 0 and len(ls.stdout.splitlines()) == 4


def test_resources_and_the_machine_of_a_run(run_script):
    _, _, r = run_script("""\
        import runlog
        run = runlog.start(git=False)
        total = sum(i * i for i in range(200_000))
        """)
    res = r["resources"]
    assert res["cpu_s"] > 0 and res["peak_rss_bytes"] > 1 * MIB
    assert res["gpu_peak_memory_bytes"] is None  # no GPU here
    m = r["machine"]
    assert m["host"] == os.uname().nodename and m["cpus"] >= 1 and m["memory_bytes"] > 0
    assert r["env"]["python"] == sys.version.split()[0] and r["env"]["implementation"] == "CPython"
    assert r["scheduler"] is None


def test_a_child_of_runlog_run_that_allocates_200_mb(tmp_path):
    (tmp_path / "big.py").write_text(textwrap.dedent("""\
        import rich  # an imported distribution, recorded from the program's side
        block = b"x" * (200 * 1024 * 1024)
        print("allocated", len(block))
        """))
    p = subprocess.run([*RUNLOG, "run", "--no-git", "--", sys.executable, "big.py"], cwd=tmp_path,
                       env=_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    (d,) = run_dirs(tmp_path / "logs")
    r = read_json(d / "run.json")
    assert r["resources"]["peak_rss_bytes"] >= 200 * MIB
    assert r["resources"]["cpu_s"] > 0
    assert "peak RSS" in p.stderr and "- Machine: " in p.stderr
    # the program's own interpreter and imports, handed over at its exit
    assert r["env"]["python"] == sys.version.split()[0]
    assert "rich" in r["env"]["packages"]


def test_a_program_that_is_not_python_has_no_python_env(tmp_path):
    p = subprocess.run([*RUNLOG, "run", "--no-git", "--", "sh", "-c", "echo hello"], cwd=tmp_path,
                       env=_env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    (d,) = run_dirs(tmp_path / "logs")
    e = read_json(d / "run.json")["env"]
    assert e["python"] is None and e["packages"] == {} and e["installed_hash"] is None
    assert e["platform"].startswith(os.uname().sysname)


def test_slurm_variables_of_a_real_job_step(run_script):
    slurm = {"SLURM_JOB_ID": "81234", "SLURM_ARRAY_JOB_ID": "81230", "SLURM_ARRAY_TASK_ID": "4",
             "SLURM_RESTART_COUNT": "2", "SLURM_JOB_NODELIST": "node[07-08]",
             "SLURM_JOB_PARTITION": "gpu", "SLURMD_NODENAME": "node07"}
    _, _, r = run_script("import runlog\nrunlog.start(git=False)\n", env=slurm)
    assert r["scheduler"] == {"kind": "slurm", "job_id": "81234", "array_job_id": "81230",
                              "array_task_id": 4, "restart_count": 2, "nodelist": "node[07-08]",
                              "partition": "gpu", "node": "node07"}


FAKE_SMI = """\
#!/bin/sh
echo "$@" >> "{log}"
case "$*" in
  *memory.used*) printf '0, 1200, 40\\n1, 30000, 90\\n' ;;
  *) echo "0, NVIDIA A100-SXM4-80GB, 81920, 535.129.03, GPU-5a0d5e2c-8f7d-1c3e-9b4a-2f6e7d8c9a01"
     echo "1, NVIDIA H100 80GB HBM3, 81559, 535.129.03, GPU-7b1e6f3d-9a8e-2d4f-ac5b-3a7f8e9dab12" ;;
esac
"""


@pytest.mark.skipif(os.path.exists("/dev/nvidiactl"), reason="a real NVIDIA driver is here")
def test_nvidia_smi_is_asked_only_where_it_is(tmp_path, run_script):
    """With no nvidia-smi on PATH nothing is started and there are no GPUs; with one (a
    stand-in that prints what nvidia-smi prints), the run's GPU is recorded and sampled."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "smi-calls.txt"
    path = f"{bindir}{os.pathsep}/usr/bin{os.pathsep}/bin"
    script = "import runlog\nrunlog.start(git=False)\n"
    _, _, r = run_script(script, env={"PATH": path})
    assert r["machine"]["gpus"] == [] and not calls.exists()
    smi = bindir / "nvidia-smi"
    smi.write_text(FAKE_SMI.format(log=calls))
    smi.chmod(0o755)
    proc, _, r = run_script(script, env={"PATH": path, "CUDA_VISIBLE_DEVICES": "1"})
    (g,) = r["machine"]["gpus"]
    assert g["name"] == "NVIDIA H100 80GB HBM3" and g["index"] == 1 and g["memory_bytes"] == 81559 * MIB
    assert r["resources"]["gpu_peak_memory_bytes"] == 30000 * MIB and r["resources"]["gpu_util_mean"] == 90
    assert "NVIDIA H100 80GB HBM3" in proc.stderr  # the report's Machine line
    assert calls.read_text().count("--query-gpu") >= 2


FAKE_TORCH = """\
__version__ = "{v}"
class version:
    cuda = "{cuda}"
class backends:
    class cudnn:
        is_available = staticmethod(lambda: True)
        version = staticmethod(lambda: 8902)
"""


def test_show_diff_ls_and_journal_carry_the_facts(tmp_path):
    """A stand-in ``torch`` module (this machine has no torch) at two versions: the run
    records what an imported torch says of itself, and every reader shows it."""
    for v, cuda in (("2.3.0", "12.1"), ("2.4.1", "12.4")):
        (tmp_path / f"t{v}" / "torch").mkdir(parents=True)
        (tmp_path / f"t{v}" / "torch" / "__init__.py").write_text(FAKE_TORCH.format(v=v, cuda=cuda))
    (tmp_path / "s.py").write_text(textwrap.dedent("""\
        import argparse, runlog, torch
        p = argparse.ArgumentParser()
        p.add_argument("--data", default="train.csv")
        a = p.parse_args()
        runlog.start(git=False)
        """))
    (tmp_path / "train.csv").write_text("1\n")
    runs = []
    for v in ("2.3.0", "2.4.1"):
        p = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, capture_output=True, text=True,
                           env=_env(PYTHONPATH=f"{tmp_path / f't{v}'}{os.pathsep}{RUNLOG_SRC}"), timeout=60)
        assert p.returncode == 0, p.stderr
        runs.append(p)
        (tmp_path / "train.csv").write_text("22\n")
    (a, b) = sorted(run_dirs(tmp_path / "logs"))
    rb = read_json(b / "run.json")
    assert rb["env"]["frameworks"]["torch"] == {"version": "2.4.1", "cuda": "12.4", "cudnn": 8902}
    assert f"Python {sys.version.split()[0]}, torch 2.4.1 (CUDA 12.4)" in runs[1].stderr
    (since,) = [ln for ln in runs[1].stderr.splitlines() if ln.startswith("- Since")]
    assert since == f"- Since {a.name}: torch 2.3.0 → 2.4.1; CUDA 12.1 → 12.4; data train.csv changed"

    def cli(*args):
        p = subprocess.run([*RUNLOG, "--dir", str(tmp_path / "logs"), *args], cwd=tmp_path,
                           env=_env(), capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout

    show = cli("show", b.name)
    for part in ("Environment:", "  torch 2.4.1 (cuda 12.4, cudnn 8902)", "Machine:", "Resources:",
                 "  data = train.csv: file, 3 B, b2:"):
        assert part in show, part
    diff = cli("diff", a.name, b.name)
    env = diff[diff.index("Environment (A → B):"):]
    (row,) = [ln for ln in env.splitlines() if ln.startswith("  data data")]
    ra = read_json(a / "run.json")
    assert row.split()[2:] == [ra["data"]["data"]["fingerprint"], rb["data"]["data"]["fingerprint"]]
    ls = cli("ls").splitlines()
    assert ls[0].split()[:5] == ["id", "status", "duration", "note", "torch"]
    assert ls[1].split()[4] == "2.4.1" and ls[2].split()[4] == "2.3.0"  # after "0.03 s"
    js = [json.loads(x) for x in cli("ls", "--json").splitlines()]
    assert js[0]["frameworks"] == {"torch": "2.4.1"} and js[0]["python"] == sys.version.split()[0]
    out = tmp_path / "j.html"
    cli("journal", "-o", str(out))
    page = out.read_text()
    assert "torch 2.3.0 → 2.4.1" in page and "torch 2.4.1 (CUDA 12.4)" in page


def test_facts_of_the_wrong_shape_are_shown_without_a_traceback(tmp_path):
    """A record edited by hand or written by another tool: the facts are skipped, never fatal."""
    (tmp_path / "s.py").write_text("import runlog\nrunlog.start(git=False)\n")
    for _ in range(2):
        p = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, env=_env(), capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
    a, b = sorted(run_dirs(tmp_path / "logs"))
    for d, bad in ((a, {"env": "x", "machine": [1], "data": 5, "resources": "y", "scheduler": 3}),
                   (b, {"env": {"packages": [1], "frameworks": {"torch": 2}, "installed_diff": 7},
                        "machine": {"gpus": "none"}, "data": {"d": 1}, "resources": {"cpu_s": "?"}})):
        r = read_json(d / "run.json")
        r.update(bad)
        (d / "run.json").write_text(json.dumps(r))
    for args in (["show", b.name], ["report", b.name], ["diff", a.name, b.name], ["ls"],
                 ["journal", "-o", str(tmp_path / "j.html")]):
        p = subprocess.run([*RUNLOG, "--dir", str(tmp_path / "logs"), *args], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and "Traceback" not in p.stderr, (args, p.stderr)
