"""What recording the environment, machine, resources and data costs (issue 15).

Every figure is measured in this run, against a baseline measured alongside it:
the same script with the facts turned off (their two hooks replaced by no-ops
before ``start()``), alternating, after one discarded warm-up round. Goals are
printed, not enforced.

    python benchmarks/bench_facts.py            # ~1 minute
    python benchmarks/bench_facts.py --quick    # a smoke run

Measures:
  1. the finish's share (imported packages, frameworks, resources, data
     fingerprints of a small file argument): timed inside the process, in a log
     directory whose installed-set cache exists. Goal < 10 ms without a GPU.
  2. the code-state thread's share (installed set, module map, machine):
     with the cache (every run after the first in an environment) and without.
  3. the ``start()`` call, facts on / off. Goal: unchanged.
  4. the whole process (start, 100 log records, exit), facts on / off, in a git
     repository. Goal: ratio ≤ 1.05.
  5. 1 and 2 again with 500 more distributions installed (a site-packages
     folder of 500 tiny packages on PYTHONPATH), 50 of them imported.
  6. with ``--against DIR`` (another runlog checkout, e.g. one from before the
     facts): the whole process's wall and CPU time (user + system, from
     getrusage) with this runlog and with that one, alternating.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

SCRIPT = """\
import argparse, logging, os, sys, time
T0 = time.perf_counter()
OUT = os.environ["BENCH_OUT"]
{imports}
import runlog
from runlog import lifecycle
from runlog.facts import collect
if os.environ.get("BENCH_OFF"):
    lifecycle.Lifecycle._gather_facts = lambda self: self.facts_done.set()
    collect.gather_at_end = lambda life, wait_s: None
else:
    def timed(name, f):
        def inner(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                with open(OUT, "a") as out:
                    out.write(f"{{name}} {{time.perf_counter() - t}}\\n")
        return inner
    collect.gather_at_end = timed("finish", collect.gather_at_end)
    collect.Facts.background = timed("background", collect.Facts.background)
    collect.Facts.finish = timed("work", collect.Facts.finish)
p = argparse.ArgumentParser()
p.add_argument("--data", default="train.csv")
p.add_argument("--lr", type=float, default=0.1)
a = p.parse_args()
t = time.perf_counter()
run = runlog.start(git={git})
t = time.perf_counter() - t
with open(OUT, "a") as out:
    out.write(f"start {{t}}\\n")
log = logging.getLogger(__name__)
for i in range(100):
    log.info("step %d loss %.4f", i, 1.0 / (i + 1))
"""


def env(extra: dict | None = None) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("RUNLOG_", "SLURM_"))}
    e.update({"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
              "GIT_COMMITTER_EMAIL": "b@b"})
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    e.update(extra or {})
    return e


def run(cwd: str, script: str, out: str, off: bool, extra: dict | None = None) -> float:
    e = env({"BENCH_OUT": out, **(extra or {})})
    if off:
        e["BENCH_OFF"] = "1"
    t = time.perf_counter()
    subprocess.run([sys.executable, script], cwd=cwd, env=e, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def read(out: str) -> dict[str, list[float]]:
    got: dict[str, list[float]] = {}
    with open(out) as f:
        for line in f:
            k, v = line.split()
            got.setdefault(k, []).append(float(v))
    os.unlink(out)
    return got


def many_packages(where: str, n: int = 500) -> str:
    """A site-packages folder of ``n`` tiny installed distributions (dist-info + module)."""
    site = os.path.join(where, "extra", "site-packages")
    for i in range(n):
        name = f"benchpkg{i:03d}"
        os.makedirs(os.path.join(site, name))
        with open(os.path.join(site, name, "__init__.py"), "w") as f:
            f.write("X = 1\n")
        info = os.path.join(site, f"{name}-1.{i}.dist-info")
        os.makedirs(info)
        with open(os.path.join(info, "METADATA"), "w") as f:
            f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.{i}\n")
        with open(os.path.join(info, "RECORD"), "w") as f:
            f.write(f"{name}/__init__.py,,\n{name}-1.{i}.dist-info/RECORD,,\n")
    return site


def against(repo: str, other: str, rounds: int) -> None:
    import resource

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    srcs = {"this": here, "other": os.path.abspath(other)}
    wall: dict[str, list[float]] = {k: [] for k in srcs}
    cpu: dict[str, list[float]] = {k: [] for k in srcs}
    for i in range(rounds + 1):
        for k in (list(srcs) if i % 2 else list(srcs)[::-1]):
            e = env({"PYTHONPATH": srcs[k], "BENCH_OUT": os.devnull, "BENCH_OFF": ""})
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run([sys.executable, "w.py"], cwd=repo, env=e, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            t = time.perf_counter() - t
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            if i:  # the first round warms up
                wall[k].append(t)
                cpu[k].append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
    print(f"6. whole process, this runlog against {srcs['other']}:")
    for k in srcs:
        print(f"   {k:5s} wall {ms(wall[k])}; CPU {ms(cpu[k])}")
    rw = statistics.median(wall["this"]) / statistics.median(wall["other"])
    rc = statistics.median(cpu["this"]) / statistics.median(cpu["other"])
    print(f"   ratio of medians: wall {rw:.3f}, CPU {rc:.3f}")


def ms(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1000:6.2f} ms, best {min(xs) * 1000:6.2f} ms"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--against", help="another runlog source folder to compare the whole process with")
    o = ap.parse_args()
    rounds = o.rounds or (5 if o.quick else 21)
    import compileall

    import runlog

    compileall.compile_dir(os.path.dirname(runlog.__file__), quiet=1)
    with tempfile.TemporaryDirectory(prefix="bench-facts-") as tmp:
        repo = os.path.join(tmp, "repo")
        os.mkdir(repo)
        for args in (["init", "-q"],):
            subprocess.run(["git", *args], cwd=repo, check=True, env=env())
        with open(os.path.join(repo, "a.py"), "w") as f:
            f.write(SCRIPT.format(imports="", git=True))
        with open(os.path.join(repo, "m.py"), "w") as f:
            imports = "\n".join(f"import benchpkg{i:03d}" for i in range(0, 500, 10))
            f.write(SCRIPT.format(imports=imports, git=False))
        with open(os.path.join(repo, "w.py"), "w") as f:  # 6: what any runlog can run
            f.write("import logging, runlog\nrunlog.start()\nlog = logging.getLogger(__name__)\n"
                    "for i in range(100):\n    log.info('step %d', i)\n")
        with open(os.path.join(repo, "train.csv"), "w") as f:
            f.write("x,y\n" + "1,2\n" * 10000)
        with open(os.path.join(repo, ".gitignore"), "w") as f:
            f.write("logs/\n")
        subprocess.run(["git", "add", "."], cwd=repo, check=True, env=env())
        subprocess.run(["git", "commit", "-qm", "b"], cwd=repo, check=True, env=env())
        out = os.path.join(tmp, "out.txt")

        # 2 without the cache: a fresh log directory each time
        miss = []
        for i in range(max(3, rounds // 4)):
            run(repo, "a.py", out, False, {"RUNLOG_DIR": os.path.join(tmp, f"fresh{i}")})
            miss += read(out)["background"]
        # 1, 3, 4: alternating, the cache warm
        run(repo, "a.py", out, False)
        read(out)
        on, off, start_on, start_off, finish, work, bg = [], [], [], [], [], [], []
        for i in range(rounds):
            for is_off in ((False, True) if i % 2 else (True, False)):
                t = run(repo, "a.py", out, is_off)
                got = read(out)
                (off if is_off else on).append(t)
                (start_off if is_off else start_on).extend(got["start"])
                if not is_off:
                    finish += got["finish"]
                    work += got["work"]
                    bg += got["background"]
        from runlog.facts import gpu

        print(f"python {sys.version.split()[0]}, {rounds} rounds, in a git repository, "
              f"{'an NVIDIA driver is here' if gpu.present() else 'no GPU'}")
        print(f"1. finish's own work       {ms(work)}   goal < 10 ms: "
              f"{'PASS' if statistics.median(work) < 0.010 else 'MISS'}")
        print(f"   … with the wait for the code-state thread  {ms(finish)}")
        print(f"2. code-state thread, cached   {ms(bg)}")
        print(f"   code-state thread, uncached {ms(miss)}")
        print(f"3. start() facts on        {ms(start_on)}")
        print(f"   start() facts off       {ms(start_off)}   ratio of medians "
              f"{statistics.median(start_on) / statistics.median(start_off):.2f}")
        r = statistics.median(on) / statistics.median(off)
        print(f"4. whole process on / off  {statistics.median(on) * 1000:.1f} / "
              f"{statistics.median(off) * 1000:.1f} ms   ratio {r:.3f} (best {min(on) / min(off):.3f})"
              f"   goal ≤ 1.05: {'PASS' if r <= 1.05 else 'MISS'}")

        # 5: 500 more distributions, 50 of them imported
        site = many_packages(tmp)
        extra = {"PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), site) if p)}
        miss5 = []
        for i in range(max(3, rounds // 4)):
            run(repo, "m.py", out, False, {**extra, "RUNLOG_DIR": os.path.join(tmp, f"fresh5-{i}")})
            miss5 += read(out)["background"]
        fin5, work5, bg5, on5, off5 = [], [], [], [], []
        for i in range(rounds):
            for is_off in ((False, True) if i % 2 else (True, False)):
                t = run(repo, "m.py", out, is_off, extra)
                got = read(out)
                (off5 if is_off else on5).append(t)
                if not is_off:
                    fin5 += got["finish"]
                    work5 += got["work"]
                    bg5 += got["background"]
        print("5. with 500 more distributions installed, 50 of them imported:")
        print(f"   finish's own work       {ms(work5)}   goal < 10 ms: "
              f"{'PASS' if statistics.median(work5) < 0.010 else 'MISS'}")
        print(f"   … with the wait for the code-state thread  {ms(fin5)}")
        print(f"   code-state thread, cached   {ms(bg5)}")
        print(f"   code-state thread, uncached {ms(miss5)}")
        r5 = statistics.median(on5) / statistics.median(off5)
        print(f"   whole process on / off  {statistics.median(on5) * 1000:.1f} / "
              f"{statistics.median(off5) * 1000:.1f} ms   ratio {r5:.3f}")
        if o.against:
            against(repo, o.against, rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
