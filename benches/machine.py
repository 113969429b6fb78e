"""The machine and the software a benchmark ran on, for the reports of `benches/run.py` and
the other benchmark scripts: CPU, cores, memory, disk, virtualisation, load, stolen time, and
the versions of each program measured."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "target" / "bench-data"


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def stolen_seconds() -> float | None:
    """CPU time the hypervisor gave other guests while this one wanted it (all cores), from
    /proc/stat's `steal` column; None where there is none."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def machine() -> list[tuple[str, str]]:
    cpu = "?"
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "?":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                fl = line.split(":", 1)[1].split()
                flags = " ".join(f for f in ("avx2", "avx512f", "bmi2", "sha_ni") if f in fl)
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    disk = "?"
    try:
        st = os.stat(DATA_DIR if DATA_DIR.exists() else ROOT)
        dev = None
        for line in Path("/proc/mounts").read_text().splitlines():
            src, mnt, fstype = line.split()[:3]
            if src.startswith("/dev/") and os.path.exists(mnt) and os.stat(mnt).st_dev == st.st_dev:
                dev = (src, mnt, fstype)
        if dev:
            src, mnt, fstype = dev
            base = Path(src).name
            rot = Path(f"/sys/block/{base}/queue/rotational")
            rot_s = f", rotational={rot.read_text().strip()}" if rot.exists() else ""
            total, _, free = shutil.disk_usage(mnt)
            disk = f"{src} ({fstype} on {mnt}, {total / 2**30:.0f} GiB, {free / 2**30:.0f} GiB free{rot_s})"
    except OSError:
        pass
    virt = sh(["systemd-detect-virt"]) or ("VM (virtio disk)" if disk.startswith("/dev/vd") else "")
    return [
        ("CPU", f"{cpu} ({flags})" if flags else cpu),
        ("cores", str(os.cpu_count())),
        ("RAM", mem),
        ("disk (bench data)", disk),
        ("virtualisation (systemd-detect-virt)", virt or "none detected"),
        ("OS", f"{platform.system()} {platform.release()}, {_os_name()}"),
        ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
    ]


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "?"


VERSIONS = r"""
import importlib, json, sys, platform
out = {"python": platform.python_version()}
for m in sys.argv[1:]:
    try:
        mod = importlib.import_module(m)
        out[m] = getattr(mod, "__version__", "?")
        if m == "h5py":
            out["HDF5 (h5py)"] = mod.version.hdf5_version
    except Exception as e:
        out[m] = f"not importable ({type(e).__name__})"
print(json.dumps(out))
"""


def versions(runners, modules: dict[str, list[str]]) -> list[tuple[str, str]]:
    """One row per distinct program of `runners` (each with `.program` and `.available()`): a
    Python's versions of `modules[program]`, or a binary's `--version`."""
    rows = []
    seen = set()
    for r in runners:
        if r.program in seen or not r.available():
            continue
        seen.add(r.program)
        mods = modules.get(r.program)
        if mods is None:
            rows.append((Path(r.program).name, sh([r.program, "--version"]) or "present"))
            continue
        got = sh([r.program, "-c", VERSIONS, *mods])
        try:
            info = json.loads(got)
        except ValueError:
            info = {"error": got[:100]}
        rows.append((os.path.relpath(r.program, ROOT), ", ".join(f"{k} {v}" for k, v in info.items())))
    return rows
