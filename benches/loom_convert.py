"""Loom to .h5ad: `annpage convert` against anndata's `read_loom(...).write_h5ad(...)`, whole
processes (wall time and peak RSS), on a generated loom file larger than annpage's block; with
`--to-loom`, the other way: the same matrix as a CSR .h5ad written as loom, `annpage convert
--cache-mb N` against anndata's `read_h5ad(...).write_loom(...)`.

Usage (from the repository root, after `cargo build --release -p annpage-cli`):

    .venv/bin/python benches/loom_convert.py [--cells 8000] [--genes 6000] [--rounds 5]
        [--annpage target/release/annpage] [--other-annpage PATH] [--to-loom [--cache-mb 64]]

The loom file (float32, 5% non-zero, 64 × 64 gzip-1 chunks as loompy writes them) is generated
once into target/bench-data/. Each round runs every job once, in turn; medians are printed as
a markdown table with the ratios. `--other-annpage` adds a second annpage binary (an older
build) as a row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]

# Runs argv[2:] and writes its peak RSS (KiB) to the file argv[1].
MEASURE = """
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""

ANNDATA = """
import sys, warnings
warnings.simplefilter("ignore")
import anndata as ad
ad.io.read_loom(sys.argv[1]).write_h5ad(sys.argv[2])
"""

TO_LOOM = """
import sys, warnings
warnings.simplefilter("ignore")
import anndata as ad
ad.read_h5ad(sys.argv[1]).write_loom(sys.argv[2])
"""


def make_loom(path: Path, n_genes: int, n_cells: int) -> None:
    rng = np.random.default_rng(11)
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        m = f.create_dataset("matrix", (n_genes, n_cells), dtype="float32", chunks=(64, 64),
                             compression="gzip", compression_opts=1)
        step = 1000
        for start in range(0, n_cells, step):
            width = min(step, n_cells - start)
            block = sp.random(n_genes, width, density=0.05, format="csc", dtype=np.float32, random_state=rng)
            block.data = np.ceil(block.data * 10)
            m[:, start:start + width] = block.toarray()
        for g in ["row_attrs", "col_attrs", "layers", "attrs", "row_graphs", "col_graphs"]:
            f.create_group(g)
        f["col_attrs"]["CellID"] = np.array([f"c{i}".encode() for i in range(n_cells)])
        f["row_attrs"]["Gene"] = np.array([f"g{i}".encode() for i in range(n_genes)])
    tmp.rename(path)


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of `cmd` as a whole process."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", MEASURE, out.name, *cmd], capture_output=True, text=True)
        wall = time.perf_counter() - start
        if res.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {res.stderr}")
        return wall, int(Path(out.name).read_text()) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=int, default=8000)
    ap.add_argument("--genes", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--annpage", default=str(ROOT / "target" / "release" / "annpage"))
    ap.add_argument("--other-annpage")
    ap.add_argument("--to-loom", action="store_true")
    ap.add_argument("--cache-mb", type=int, default=64)
    args = ap.parse_args()
    data = ROOT / "target" / "bench-data"
    data.mkdir(parents=True, exist_ok=True)
    loom = data / f"loom-{args.genes}x{args.cells}.loom"
    if not loom.exists():
        make_loom(loom, args.genes, args.cells)
    out = data / "loom-convert-out.h5ad"
    theirs_name = "anndata read_loom + write_h5ad"
    jobs = {"annpage convert": [args.annpage, "convert", str(loom), str(out)]}
    if args.other_annpage:
        jobs["annpage convert (other build)"] = [args.other_annpage, "convert", str(loom), str(out)]
    jobs[theirs_name] = [sys.executable, "-c", ANNDATA, str(loom), str(out)]
    if args.to_loom:
        src = loom.with_suffix(".h5ad")
        if not src.exists():
            subprocess.run([args.annpage, "convert", str(loom), str(src)], check=True)
        loom, out = src, data / "loom-convert-out.loom"
        cache = ["--cache-mb", str(args.cache_mb)]
        jobs = {"annpage convert": [args.annpage, "convert", str(src), str(out), *cache]}
        if args.other_annpage:
            jobs["annpage convert (other build)"] = [args.other_annpage, "convert", str(src), str(out), *cache]
        theirs_name = "anndata read_h5ad + write_loom"
        jobs[theirs_name] = [sys.executable, "-c", TO_LOOM, str(src), str(out)]
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in jobs}
    for _ in range(args.rounds):
        for name, cmd in jobs.items():
            runs[name].append(measure(cmd))
    out.unlink(missing_ok=True)
    size = loom.stat().st_size / 2**20
    dense = args.genes * args.cells * 4 / 2**20
    budget = f", annpage's cache {args.cache_mb} MiB" if args.to_loom else ""
    print(f"`{loom.name}`: {args.genes:,} genes × {args.cells:,} cells, float32 ({dense:.0f} MiB dense), "
          f"{size:.0f} MiB on disk{budget}; {args.rounds} rounds, medians, {os.cpu_count()} cores.\n")
    print("| job | wall | peak RSS |\n| --- | --- | --- |")
    med = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v)) for k, v in runs.items()}
    for k, (w, m) in med.items():
        print(f"| {k} | {w:.2f} s | {m:.0f} MiB |")
    ours = med["annpage convert"]
    theirs = med[theirs_name]
    print(f"\nanndata ÷ annpage: wall {theirs[0] / ours[0]:.1f}×, peak RSS {theirs[1] / ours[1]:.1f}×")


if __name__ == "__main__":
    main()
