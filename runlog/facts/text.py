"""The facts as text: the report's Machine and Resources lines, its "Since" parts, and the
sections of ``runlog show`` and ``runlog diff``. Pure functions of records."""

from __future__ import annotations

import os

RSS_CHANGE = 0.2  # a peak RSS / GPU memory change worth naming in "Since" (20 %)
RSS_FLOOR = 50 * 1024 * 1024  # … when either side is at least this big


def fmt_bytes(n) -> str:
    if not isinstance(n, (int, float)):
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _d(r: dict, key: str) -> dict:
    v = r.get(key)
    return v if isinstance(v, dict) else {}


def gpu_text(gpus) -> str | None:
    if not isinstance(gpus, list) or not gpus:
        return None
    names = [str(g.get("name") or "GPU") for g in gpus if isinstance(g, dict)]
    if not names:
        return None
    if len(set(names)) == 1:
        return f"{len(names)}× {names[0]}" if len(names) > 1 else names[0]
    return ", ".join(names)


def machine_line(r: dict) -> str | None:
    """``host, 8 CPUs, 2× NVIDIA A100, Python 3.11.7, torch 2.4.1 (CUDA 12.1)``."""
    m, e = _d(r, "machine"), _d(r, "env")
    if not m and not e:
        return None
    parts = [str(m.get("host") or r.get("host") or "?") + _job_text(_d(r, "scheduler"))]
    if m.get("cpus"):
        parts.append(f"{m['cpus']} CPUs")
    g = gpu_text(m.get("gpus"))
    if g:
        parts.append(g)
    if e.get("python"):
        parts.append(f"Python {e['python']}")
    for name, info in _d(e, "frameworks").items():
        if isinstance(info, dict) and info.get("version"):
            cuda = f" (CUDA {info['cuda']})" if info.get("cuda") else ""
            parts.append(f"{name} {info['version']}{cuda}")
    return ", ".join(parts)


def _job_text(s: dict) -> str:
    """`` (Slurm job 1147_5)``: what to look up in ``sacct``, beside the host (a restart is
    the report's Segments line)."""
    if s.get("kind") != "slurm" or not s.get("job_id"):
        return ""
    job = str(s["job_id"])
    if s.get("array_job_id") not in (None, "") and s.get("array_task_id") not in (None, ""):
        job = f"{s['array_job_id']}_{s['array_task_id']}"
    return f" (Slurm job {job})"


def resources_line(r: dict) -> str | None:
    """``peak RSS 3.1 GB, CPU 42 s, GPU peak 31.0 GB (87 % busy)``."""
    res = _d(r, "resources")
    parts = []
    if res.get("peak_rss_bytes"):
        parts.append(f"peak RSS {fmt_bytes(res['peak_rss_bytes'])}")
    if isinstance(res.get("cpu_s"), (int, float)):
        parts.append(f"CPU {res['cpu_s']:.1f} s")
    if res.get("gpu_peak_memory_bytes"):
        busy = f" ({res['gpu_util_mean']:.0f} % busy)" if isinstance(res.get("gpu_util_mean"),
                                                                       (int, float)) else ""
        parts.append(f"GPU peak {fmt_bytes(res['gpu_peak_memory_bytes'])}{busy}")
    return ", ".join(parts) or None


def _size_change(label: str, a, b) -> str | None:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not a or not b:
        return None
    if max(a, b) < RSS_FLOOR or abs(b - a) / min(a, b) < RSS_CHANGE:
        return None
    unit = fmt_bytes(max(a, b)).split()[1]
    scale = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}[unit]
    return f"{label} {a / scale:.1f} → {b / scale:.1f} {unit}"


def package_changes(prev: dict, cur: dict) -> list[str]:
    pa, pb = _d(_d(prev, "env"), "packages"), _d(_d(cur, "env"), "packages")
    la = {k.lower().replace("_", "-"): (k, v) for k, v in pa.items()}
    out = []
    for k, v in pb.items():
        old = la.get(k.lower().replace("_", "-"))
        if old and old[1] != v:
            out.append(f"{k} {old[1]} → {v}")
    return out


def data_changes(prev: dict, cur: dict) -> list[str]:
    da, db = _d(prev, "data"), _d(cur, "data")
    out = []
    for name, b in db.items():
        a = da.get(name)
        if not isinstance(a, dict) or not isinstance(b, dict):
            continue
        if a.get("written") or b.get("written") or a.get("skipped") or b.get("skipped"):
            continue
        if a.get("fingerprint") and b.get("fingerprint") and a["fingerprint"] != b["fingerprint"]:
            if a.get("path") == b.get("path"):
                out.append(f"data {os.path.basename(str(b['path']).rstrip('/')) or b['path']} changed")
    return out


def since_parts(prev: dict, cur: dict) -> list[str]:
    """What of the environment, machine, data and resources changed since ``prev``."""
    ea, eb = _d(prev, "env"), _d(cur, "env")
    parts = package_changes(prev, cur)
    fa, fb = _d(ea, "frameworks"), _d(eb, "frameworks")
    names = {p.split()[0].lower() for p in parts}
    for name, info in fb.items():
        old = fa.get(name)
        if not isinstance(old, dict) or not isinstance(info, dict):
            continue
        if name not in names and old.get("version") != info.get("version"):
            parts.append(f"{name} {old.get('version')} → {info.get('version')}")
        if old.get("cuda") != info.get("cuda") and old.get("cuda") and info.get("cuda"):
            parts.append(f"CUDA {old['cuda']} → {info['cuda']}")
    if ea.get("python") and eb.get("python") and ea["python"] != eb["python"]:
        parts.append(f"Python {ea['python']} → {eb['python']}")
    ha, hb = ea.get("installed_hash"), eb.get("installed_hash")
    if ha and hb and ha != hb and not parts:
        diff = _d(eb, "installed_diff")
        n = diff.get("count") if diff.get("previous") == prev.get("id") else None
        parts.append(f"environment changed ({n} package{'s' if n != 1 else ''})"
                     if isinstance(n, int) else "environment changed")
    ma, mb = _d(prev, "machine"), _d(cur, "machine")
    host_a, host_b = ma.get("host") or prev.get("host"), mb.get("host") or cur.get("host")
    if host_a and host_b and host_a != host_b:
        parts.append(f"host {host_a} → {host_b}")
    ga, gb = gpu_text(ma.get("gpus")), gpu_text(mb.get("gpus"))
    if ma and mb and ga != gb:
        parts.append(f"GPU {ga or 'none'} → {gb or 'none'}")
    parts += data_changes(prev, cur)
    ra, rb = _d(prev, "resources"), _d(cur, "resources")
    if _wrapped(prev) != _wrapped(cur):
        # one process's own memory against `runlog run`'s program: not the same measure
        ra = rb = {}
    for label, key in (("peak RSS", "peak_rss_bytes"), ("GPU peak", "gpu_peak_memory_bytes")):
        c = _size_change(label, ra.get(key), rb.get(key))
        if c:
            parts.append(c)
    return parts


def _wrapped(r: dict) -> bool:
    """Whether a run was recorded by `runlog run` (its resources: the program, a child)."""
    return str(r.get("command_line") or "").startswith("runlog run")


def show_sections(r: dict) -> list[str]:
    """``runlog show``: Environment, Machine, Scheduler, Resources, Data — all of it."""
    out = []
    e = _d(r, "env")
    if e:
        lines = [f"  python {e.get('python') or '(not a Python program)'}"
                 + (f" ({e['implementation']}, {e['executable']})" if e.get("executable") else ""),
                 f"  platform {e.get('platform') or '?'}"]
        if e.get("installed_hash"):
            lines.append(f"  installed set {e['installed_hash']}")
        for name, info in _d(e, "frameworks").items():
            if isinstance(info, dict):
                extra = ", ".join(f"{k} {v}" for k, v in info.items() if k != "version" and v)
                lines.append(f"  {name} {info.get('version')}" + (f" ({extra})" if extra else ""))
        pk = _d(e, "packages")
        if pk:
            lines.append("  packages: " + ", ".join(f"{k} {v}" for k, v in pk.items()))
        out.append("Environment:\n" + "\n".join(lines))
    m = _d(r, "machine")
    if m:
        lines = [f"  host {m.get('host')}", f"  cpu {m.get('cpu_model') or '?'} ({m.get('cpus')} CPUs)",
                 f"  memory {fmt_bytes(m.get('memory_bytes'))}"]
        for g in m.get("gpus") or []:
            if isinstance(g, dict):
                lines.append(f"  gpu {g.get('index')}: {g.get('name')}, {fmt_bytes(g.get('memory_bytes'))}, "
                             f"driver {g.get('driver')}, {g.get('uuid')}")
        if m.get("container"):
            lines.append(f"  container {m['container']}")
        out.append("Machine:\n" + "\n".join(lines))
    s = _d(r, "scheduler")
    if s:
        out.append("Scheduler:\n" + "\n".join(f"  {k} {v}" for k, v in s.items() if v is not None))
    res = resources_line(r)
    if res:
        out.append("Resources:\n  " + res)
    d = _d(r, "data")
    if d:
        lines = []
        for name, x in d.items():
            if isinstance(x, dict):
                note = " (written by the run)" if x.get("written") else ""
                note += f" (skipped: {x['skipped']})" if x.get("skipped") else ""
                lines.append(f"  {name} = {x.get('path')}: {x.get('kind')}, {fmt_bytes(x.get('size'))}, "
                             f"{x.get('fingerprint') or 'no fingerprint'}{note}")
        out.append("Data:\n" + "\n".join(lines))
    return out


def diff_rows(a: dict, b: dict) -> list[tuple[str, str, str]]:
    """``runlog diff``'s Environment section: the facts that differ, as (name, A, B)."""
    rows = []
    ea, eb = _d(a, "env"), _d(b, "env")
    pa, pb = _d(ea, "packages"), _d(eb, "packages")
    for k in sorted(set(pa) | set(pb), key=str.lower):
        if pa.get(k) != pb.get(k):
            rows.append((k, str(pa.get(k) or "—"), str(pb.get(k) or "—")))
    for key in ("python", "platform", "installed_hash"):
        if ea.get(key) != eb.get(key):
            rows.append((key, str(ea.get(key) or "—"), str(eb.get(key) or "—")))
    ma, mb = _d(a, "machine"), _d(b, "machine")
    for key, f in (("host", str), ("cpu_model", str), ("cpus", str), ("memory_bytes", fmt_bytes)):
        if ma.get(key) != mb.get(key):
            rows.append((key.replace("_bytes", ""), f(ma.get(key)) if ma.get(key) else "—",
                         f(mb.get(key)) if mb.get(key) else "—"))
    if gpu_text(ma.get("gpus")) != gpu_text(mb.get("gpus")):
        rows.append(("gpus", gpu_text(ma.get("gpus")) or "—", gpu_text(mb.get("gpus")) or "—"))
    da, db = _d(a, "data"), _d(b, "data")
    for k in list(da) + [k for k in db if k not in da]:
        x, y = _d(da, k), _d(db, k)
        if x.get("fingerprint") != y.get("fingerprint"):
            rows.append((f"data {k}", str(x.get("fingerprint") or "—"), str(y.get("fingerprint") or "—")))
    ra = resources_line({"resources": _d(a, "resources")})
    rb = resources_line({"resources": _d(b, "resources")})
    if ra != rb:
        rows.append(("resources", ra or "—", rb or "—"))
    return rows
