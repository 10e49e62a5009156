"""The facts' pure parts: nvidia-smi output, CUDA_VISIBLE_DEVICES, the scheduler's variables,
data fingerprints, the installed set, and what "Since" says of them."""

from __future__ import annotations

import os
import time

from runlog.facts import data, env, gpu, machine, scheduler, text

# as printed by `nvidia-smi --query-gpu=index,name,memory.total,driver_version,uuid
# --format=csv,noheader,nounits` on a 4-GPU A100 node (driver 535)
SMI_INFO = """\
0, NVIDIA A100-SXM4-80GB, 81920, 535.129.03, GPU-5a0d5e2c-8f7d-1c3e-9b4a-2f6e7d8c9a01
1, NVIDIA A100-SXM4-80GB, 81920, 535.129.03, GPU-7b1e6f3d-9a8e-2d4f-ac5b-3a7f8e9dab12
2, NVIDIA A100-SXM4-80GB, 81920, 535.129.03, GPU-8c2f7a4e-ab9f-3e5a-bd6c-4b8a9fabec23
3, NVIDIA A100-SXM4-80GB, 81920, 535.129.03, GPU-9d3a8b5f-bcaa-4f6b-ce7d-5c9babcdfd34
"""
# `--query-gpu=index,memory.used,utilization.gpu`, one GPU without utilisation support
SMI_USAGE = """\
0, 31245, 87
1, 4, 0
2, 40101, 93
3, 7, [N/A]
"""
# a laptop GPU: a name with spaces, memory not reported
SMI_LAPTOP = ("0, NVIDIA GeForce RTX 3050 Ti Laptop GPU, [N/A], 550.54.14, "
              "GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\n")


def test_nvidia_smi_info_is_parsed():
    gpus = gpu.parse_info(SMI_INFO)
    assert [g["index"] for g in gpus] == [0, 1, 2, 3]
    assert gpus[1] == {"index": 1, "name": "NVIDIA A100-SXM4-80GB", "memory_bytes": 81920 * 1024 * 1024,
                       "driver": "535.129.03", "uuid": "GPU-7b1e6f3d-9a8e-2d4f-ac5b-3a7f8e9dab12"}
    (laptop,) = gpu.parse_info(SMI_LAPTOP)
    assert laptop["name"] == "NVIDIA GeForce RTX 3050 Ti Laptop GPU" and laptop["memory_bytes"] is None
    assert gpu.parse_info("") == [] and gpu.parse_info("No devices were found\n") == []


def test_nvidia_smi_usage_is_parsed():
    got = gpu.parse_usage(SMI_USAGE)
    assert got[0] == (31245 * 1024 * 1024, 87)
    assert got[3] == (7 * 1024 * 1024, None)


def test_cuda_visible_devices_picks_the_runs_gpus():
    gpus = gpu.parse_info(SMI_INFO)
    idx = [g["index"] for g in gpu.visible(gpus, "2,0")]
    assert idx == [2, 0]  # CUDA's order: the process's cuda:0 is GPU 2
    assert gpu.visible(gpus, None) == gpus
    assert gpu.visible(gpus, "") == []
    assert gpu.visible(gpus, "-1") == []
    assert [g["index"] for g in gpu.visible(gpus, "1,7,2")] == [1]  # stops at the first unknown
    assert [g["index"] for g in gpu.visible(gpus, "GPU-8c2f7a4e,GPU-5a0d")] == [2, 0]  # uuid prefixes
    assert gpu.visible(gpus, "MIG-GPU-5a0d5e2c/1/0") == []


def test_sampler_keeps_the_peak_and_the_mean():
    usage = gpu.parse_usage(SMI_USAGE)
    samples = [{0: usage[0], 2: usage[2]}, {0: (1000, 50), 2: (2000, 51)}]
    s = gpu.Sampler([0, 2], every=3600, sample=lambda idx: samples.pop(0) if samples else {})
    s.take()  # a second sample, besides the thread's first
    got = s.stop()
    assert got["gpu_peak_memory_bytes"] == 40101 * 1024 * 1024
    assert got["gpu_util_mean"] == round((90 + 50) / 2, 1)


def test_a_sampler_that_may_start_no_thread_still_samples_at_the_finish(monkeypatch):
    # Python 3.12 refuses new threads once the interpreter is shutting down: a script that
    # ended before the facts thread made the sampler. The machine facts are kept all the same
    # (test_facts_runs.py::test_nvidia_smi_is_asked_only_where_it_is runs into it on 3.12)
    import threading

    def refuse(self):
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    s = gpu.Sampler([0], every=3600, sample=lambda idx: {0: (1000, 50)})
    assert s.utils == []
    s.take()  # what Facts.finish does for a run shorter than one sample
    assert s.stop() == {"gpu_peak_memory_bytes": 1000, "gpu_util_mean": 50}


def test_no_nvidia_smi_on_path_means_no_gpu(tmp_path):
    if os.path.exists("/dev/nvidiactl"):
        return  # a machine with a driver: the other branch is the one to check
    assert gpu.which("nvidia-smi", str(tmp_path)) is None
    old = os.environ["PATH"]
    os.environ["PATH"] = str(tmp_path)
    try:
        assert not gpu.present() and gpu.query() == []
    finally:
        os.environ["PATH"] = old


def test_scheduler_from_slurm_variables():
    environ = {"SLURM_JOB_ID": "4242", "SLURM_ARRAY_JOB_ID": "4240", "SLURM_ARRAY_TASK_ID": "2",
               "SLURM_RESTART_COUNT": "1", "SLURM_JOB_NODELIST": "gpu[01-02]",
               "SLURM_JOB_PARTITION": "a100", "SLURMD_NODENAME": "gpu01"}
    assert scheduler.current(environ) == {
        "kind": "slurm", "job_id": "4242", "array_job_id": "4240", "array_task_id": 2,
        "restart_count": 1, "nodelist": "gpu[01-02]", "partition": "a100", "node": "gpu01"}
    assert scheduler.current({}) is None
    assert scheduler.current({"PBS_JOBID": "17.server"})["kind"] == "pbs"
    assert scheduler.current({"LSB_JOBID": "99"})["job_id"] == "99"
    assert scheduler.container({"APPTAINER_CONTAINER": "/x.sif"}, exists=lambda p: False) == "apptainer"
    assert scheduler.container({}, exists=lambda p: p == "/.dockerenv") == "docker"
    assert scheduler.container({}, exists=lambda p: False) is None


def test_data_fingerprints(tmp_path):
    small = tmp_path / "train.csv"
    small.write_text("a,b\n1,2\n")
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.write(b"\0" * (3 * data.MIB))
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"x")
    args = {"data": "train.csv", "big": "big.bin", "images": "images", "lr": 0.1, "model": "mlp",
            "logs": "logs", "url": "https://example.com/x"}
    (tmp_path / "logs").mkdir()
    got = data.fingerprints(args, str(tmp_path), skip=(str(tmp_path / "logs"),))
    assert set(got) == {"data", "big", "images"}  # existing paths only; never the log directory
    assert got["data"]["kind"] == "file" and got["data"]["size"] == 8
    assert got["data"]["fingerprint"].startswith("b2:")
    assert got["big"]["fingerprint"].startswith("b2q:")  # size, mtime, first and last MiB
    assert got["images"]["kind"] == "dir" and got["images"]["entries"] == 1
    again = data.fingerprints(args, str(tmp_path))
    assert again["data"]["fingerprint"] == got["data"]["fingerprint"]
    small.write_text("a,b\n1,3\n")  # same size
    (folder / "b.png").write_bytes(b"y")
    changed = data.fingerprints(args, str(tmp_path))
    assert changed["data"]["fingerprint"] != got["data"]["fingerprint"]
    assert changed["images"]["fingerprint"] != got["images"]["fingerprint"]
    # out of time: the path is recorded, its fingerprint skipped
    late = data.fingerprints(args, str(tmp_path), budget_s=-1)
    assert late["data"]["skipped"] == "time" and late["data"]["fingerprint"] is None
    # a file the run wrote is an output
    out = data.fingerprints({"out": "train.csv"}, str(tmp_path), started=time.time() - 60)
    assert out["out"]["written"] is True


def test_installed_set_from_dist_info_names(tmp_path):
    site = tmp_path / "lib" / "site-packages"
    for name in ("PyYAML-6.0.1.dist-info", "tiny_pkg-1.0.dist-info", "old-0.3-py3.11.egg-info",
                 "yaml", "README.txt"):
        (site / name).mkdir(parents=True)
    dirs = env.site_dirs([str(tmp_path), str(site), ""])
    assert dirs == [str(site)]  # the current folder and source folders are never listed
    got = env.installed(dirs)
    assert got == {"pyyaml": ("PyYAML", "6.0.1"), "tiny-pkg": ("tiny_pkg", "1.0"), "old": ("old", "0.3")}
    lines = env.listing(got)
    assert lines == ["old==0.3", "pyyaml==6.0.1", "tiny-pkg==1.0"]
    assert len(env.installed_hash(lines)) == 12
    assert env.list_changes(lines, ["old==0.3", "pyyaml==6.0.2"]) == ["pyyaml", "tiny-pkg"]
    # which modules each installs: top_level.txt, else the RECORD's first parts
    (site / "PyYAML-6.0.1.dist-info" / "top_level.txt").write_text("_yaml\nyaml\n")
    (site / "tiny_pkg-1.0.dist-info" / "RECORD").write_text(
        "tiny/__init__.py,sha256=x,10\ntiny_c.cpython-311-x86_64-linux-gnu.so,,\n"
        "tiny_pkg-1.0.dist-info/RECORD,,\n../../bin/tiny,,\n__pycache__/x.pyc,,\n")
    assert env.top_levels(dirs) == {"_yaml": ["pyyaml"], "yaml": ["pyyaml"], "tiny": ["tiny-pkg"],
                                    "tiny_c": ["tiny-pkg"]}


def test_machine_reads_proc():
    m = machine.gather()
    assert m["cpus"] >= 1 and m["host"] == os.uname().nodename
    if os.path.exists("/proc/meminfo"):
        assert m["memory_bytes"] > 100 * 1024 * 1024


def _rec(rid, pkgs, fp, rss, host="a", hash_="aaaaaaaaaaaa", python="3.11.7"):
    return {"id": rid, "env": {"python": python, "packages": pkgs, "installed_hash": hash_,
                               "frameworks": {"torch": {"version": pkgs.get("torch"), "cuda": "12.1"}}},
            "machine": {"host": host, "gpus": []},
            "data": {"data": {"path": "data/train.csv", "fingerprint": fp}},
            "resources": {"peak_rss_bytes": rss}}


def test_since_names_what_changed():
    gb = 1024 ** 3
    a = _rec("A", {"torch": "2.3.0", "numpy": "1.26.4"}, "b2:1", int(3.1 * gb))
    b = _rec("B", {"torch": "2.4.1", "numpy": "1.26.4"}, "b2:2", int(4.4 * gb), host="b",
             hash_="bbbbbbbbbbbb")
    assert text.since_parts(a, b) == ["torch 2.3.0 → 2.4.1", "host a → b", "data train.csv changed",
                                      "peak RSS 3.1 → 4.4 GB"]
    assert text.since_parts(a, a) == []
    # another installed set, no imported package changed
    c = _rec("C", {"torch": "2.3.0", "numpy": "1.26.4"}, "b2:1", int(3.1 * gb), hash_="cccccccccccc")
    assert text.since_parts(a, c) == ["environment changed"]
    c["env"]["installed_diff"] = {"previous": "A", "count": 3, "changed": ["x", "y", "z"]}
    assert text.since_parts(a, c) == ["environment changed (3 packages)"]
    d = _rec("D", {"torch": "2.3.0", "numpy": "1.26.4"}, "b2:1", int(3.1 * gb), python="3.12.1")
    assert text.since_parts(a, d) == ["Python 3.11.7 → 3.12.1"]


def test_machine_and_resources_lines():
    r = {"host": "h", "machine": {"host": "gpu01", "cpus": 16, "gpus": gpu.parse_info(SMI_INFO)[:2]},
         "env": {"python": "3.11.7", "frameworks": {"torch": {"version": "2.4.1", "cuda": "12.1"}}},
         "resources": {"peak_rss_bytes": 3 * 1024 ** 3, "cpu_s": 42.0,
                       "gpu_peak_memory_bytes": 31 * 1024 ** 3, "gpu_util_mean": 87.0}}
    assert text.machine_line(r) == ("gpu01, 16 CPUs, 2× NVIDIA A100-SXM4-80GB, Python 3.11.7, "
                                    "torch 2.4.1 (CUDA 12.1)")
    assert text.resources_line(r) == "peak RSS 3.0 GB, CPU 42.0 s, GPU peak 31.0 GB (87 % busy)"
    # under Slurm the job to look up in sacct sits beside the host
    r["scheduler"] = {"kind": "slurm", "job_id": "1150", "array_job_id": "1147", "array_task_id": 3,
                      "restart_count": 0}
    assert text.machine_line(r).startswith("gpu01 (Slurm job 1147_3), 16 CPUs")
    r["scheduler"] = {"kind": "slurm", "job_id": "88", "array_job_id": None, "array_task_id": None,
                      "restart_count": 2}
    assert text.machine_line(r).startswith("gpu01 (Slurm job 88), 16 CPUs")


def _age(path, seconds=60):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_the_installed_set_is_kept_while_no_site_folder_changes(tmp_path):
    site = tmp_path / "lib" / "site-packages"
    (site / "numpy-1.26.4.dist-info").mkdir(parents=True)
    root = tmp_path / "logs"
    dirs = [str(site)]
    # a folder changed just now may change again within its mtime's tick: not kept yet
    assert env.installed_cached(str(root), dirs) == {"numpy": ("numpy", "1.26.4")}
    assert not (root / ".runlog-envs").exists()
    _age(site)
    assert env.Installed(str(root), dirs).versions == {"numpy": "1.26.4"}
    (kept,) = (root / ".runlog-envs").glob("sites-*.json")
    assert env.installed_cached(str(root), dirs) == {"numpy": ("numpy", "1.26.4")}
    # an upgrade renames the .dist-info: the folder changed, it is listed again
    (site / "numpy-1.26.4.dist-info").rename(site / "numpy-2.0.0.dist-info")
    (site / "torch-2.4.1.dist-info").mkdir()
    inst = env.Installed(str(root), dirs)
    assert inst.versions == {"numpy": "2.0.0", "torch": "2.4.1"}
    assert inst.lines == ["numpy==2.0.0", "torch==2.4.1"]
    # a removal too, and a broken cache file is only a miss
    (site / "torch-2.4.1.dist-info").rmdir()
    _age(site)
    kept.write_text('{"stamp": 3')
    assert env.Installed(str(root), dirs).versions == {"numpy": "2.0.0"}
    assert env.Installed(str(root), dirs).versions == {"numpy": "2.0.0"}


def test_a_version_read_from_inside_a_folder_is_never_kept(tmp_path):
    site = tmp_path / "site-packages"
    egg = site / "legacy.egg-info"
    egg.mkdir(parents=True)
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: legacy\nVersion: 0.9\n")
    _age(site)
    root = tmp_path / "logs"
    assert env.installed_cached(str(root), [str(site)]) == {"legacy": ("legacy", "0.9")}
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: legacy\nVersion: 1.0\n")
    assert env.installed_cached(str(root), [str(site)]) == {"legacy": ("legacy", "1.0")}
    assert not list(root.glob(".runlog-envs/sites-*"))
