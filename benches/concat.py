"""Concatenation and collection benchmarks: `annpage concat` and the collection against anndata.

    python benches/concat.py target/bench-data/large-none.h5ad --label concat-large

Cuts `--inputs` files (default 8) of uneven sizes from the first `--cells` cells of SRC into
`target/bench-data/concat/` (once; gene sets shuffled, each a random 90% of the genes, so that
the outer join matters), then measures, as whole processes on the same files in one run (wall
time and peak RSS, median of `--repeats`; ratios are the medians of each repeat's own). Each
repeat runs the jobs in its own shuffled order, so that no job always follows the same one
(after anndata's in-memory jobs the next process starts on memory the host took back), and
each job after a `sync`, so that none waits for the write-back of an earlier one's output,
and with the inputs (and the one file) read back into the page cache, so that every job
reads them warm:

- `annpage concat IN... -o OUT --join outer --label batch` (plain and gzip output) against
  `anndata.experimental.concat_on_disk` (plain; it has no compression argument), the same
  followed by an `fsync` of its output (annpage syncs its output before renaming it into
  place, so only then do both leave a file that is on disk), and `anndata.concat` of the
  files read whole, then `write_h5ad` (plain and gzip);
- the collection against one file holding the same cells (the plain output above):
  `annpage stats IN... --join outer --label batch` vs `annpage stats OUT`, and 200 batches of
  256 random cells read from Python, `annpage.read_collection(IN...)` vs
  `annpage.read_h5ad(OUT, backed="r")`.

Outputs are checked: the files written by annpage and anndata have the same names, shape and X
checksum; the two stats runs write the same TSVs (to 1e-9); the batch checksums agree. The report goes
into docs/benchmarks.md as the generated section `--label`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches"))
from run import write_section  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
ANNPAGE = str(ROOT / "target" / "release" / "annpage")

# Runs argv[2:], then writes "wall_seconds peak_rss_kib" to the file argv[1].
MEASURE = """
import os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(p.pid, 0)
open(sys.argv[1], "w").write(f"{time.perf_counter() - t} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""

ON_DISK = """
import sys, warnings; warnings.simplefilter("ignore")
from anndata.experimental import concat_on_disk
concat_on_disk(sys.argv[2:], sys.argv[1], join="outer", label="batch")
"""

# concat_on_disk, then the output synced to disk as annpage's writer does before its rename
# (the same durability: the file is on disk when the process ends).
ON_DISK_SYNCED = ON_DISK + """
import os
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.close(fd)
"""

IN_MEMORY = """
import sys, warnings; warnings.simplefilter("ignore")
import anndata as ad
out, compression, files = sys.argv[1], sys.argv[2], sys.argv[3:]
joined = ad.concat([ad.read_h5ad(f) for f in files], join="outer", label="batch")
joined.write_h5ad(out, compression=None if compression == "none" else compression)
"""

BATCHES = """
import sys, numpy as np, annpage
kind, cache_mb, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
if kind == "collection":
    b = annpage.read_collection(files, join="outer", label="batch", cache_mb=cache_mb)
else:
    b = annpage.read_h5ad(files[0], backed="r", cache_mb=cache_mb)
rng = np.random.default_rng(7)
x, total, count = b.X, 0.0, 0
for _ in range(200):
    m = x[rng.choice(b.n_obs, 256, replace=False)]
    total += float(m.sum()); count += m.nnz
print(f"{total:.6g} {count}")
"""

CHECK = """
import hashlib, sys, numpy as np, annpage
b = annpage.read_h5ad(sys.argv[1], backed="r", cache_mb=256)
total, count = 0.0, 0
for m, _, _ in b.chunked_X(20_000):
    total += float(m.sum()); count += m.nnz
names = hashlib.sha256("\\n".join([*b.obs_names, "|", *b.var_names]).encode()).hexdigest()
print(b.shape, total, count, names)
"""


def prepare(src: Path, out: Path, n_inputs: int, cells: int, seed: int = 0) -> list[Path]:
    """The inputs, cut from `src` (written once)."""
    import annpage

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"part{i}.h5ad" for i in range(n_inputs)]
    if all(p.exists() for p in paths):
        return paths
    b = annpage.read_h5ad(src, backed="r", cache_mb=1024)
    cells = min(cells, b.n_obs)
    rng = np.random.default_rng(seed)
    sizes = rng.dirichlet(np.full(n_inputs, 1.5)) * (cells - 1000 * n_inputs)
    sizes = (sizes.astype(int) + 1000).tolist()
    sizes[-1] += cells - sum(sizes)
    start = 0
    for i, (p, n) in enumerate(zip(paths, sizes)):
        genes = rng.permutation(b.n_vars)[: int(0.9 * b.n_vars)]
        part = b[start : start + n, genes].to_memory()
        part.obs_names = [f"{name}-p{i}" for name in part.obs_names]
        part.write_h5ad(p)
        print(f"  {p.name}: {n:,} cells × {len(genes):,} genes", file=sys.stderr)
        start += n
    return paths


def measure(cmd: list[str], timeout: float) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of a whole process."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"concat-bench-{os.getpid()}.m"
    res = subprocess.run([sys.executable, "-c", MEASURE, str(out), *cmd], capture_output=True,
                         text=True, timeout=timeout)
    if res.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(cmd)}\n{res.stderr}")
    wall, rss = out.read_text().split()
    out.unlink()
    return float(wall), int(rss) / 1024, res.stdout


def warm(paths: list[str]) -> None:
    """Reads the files once, so that they are in the page cache."""
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(WARM_BUFFER):
                pass


WARM_BUFFER = bytearray(1 << 24)


def checked(cmd: list[str]) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return res.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "bench-data" / "concat")
    ap.add_argument("--inputs", type=int, default=8)
    ap.add_argument("--cells", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache-mb", type=int, default=512)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--label", default="concat")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()

    files = [str(p) for p in prepare(args.src, args.out, args.inputs, args.cells)]
    res = args.out / "results"
    res.mkdir(exist_ok=True)
    cache = ["--cache-mb", str(args.cache_mb)]
    one = str(res / "annpage-plain.h5ad")
    jobs: dict[str, list[str]] = {
        "annpage concat → plain": [ANNPAGE, "concat", *files, "-o", one, "--join", "outer", "--label", "batch", *cache],
        "annpage concat → gzip": [ANNPAGE, "concat", *files, "-o", str(res / "annpage-gzip.h5ad"), "--join",
                                  "outer", "--label", "batch", "--compression", "gzip", *cache],
        "anndata concat_on_disk → plain": [PY, "-c", ON_DISK, str(res / "ondisk.h5ad"), *files],
        "anndata concat_on_disk → plain, fsync": [PY, "-c", ON_DISK_SYNCED, str(res / "ondisk-synced.h5ad"), *files],
        "anndata.concat in memory → plain": [PY, "-c", IN_MEMORY, str(res / "memory-plain.h5ad"), "none", *files],
        "anndata.concat in memory → gzip": [PY, "-c", IN_MEMORY, str(res / "memory-gzip.h5ad"), "gzip", *files],
        "annpage stats, collection of the inputs": [ANNPAGE, "stats", *files, "--join", "outer", "--label", "batch",
                                                    "--out-prefix", str(res / "stats-coll"), *cache],
        "annpage stats, one file of the same cells": [ANNPAGE, "stats", one, "--out-prefix", str(res / "stats-one"),
                                                      *cache],
        "Python: 200 × 256 random cells, collection": [PY, "-c", BATCHES, "collection", str(args.cache_mb), *files],
        "Python: 200 × 256 random cells, one file": [PY, "-c", BATCHES, "file", str(args.cache_mb), one],
    }
    started = dt.datetime.now(dt.timezone.utc)
    # Writes the file the one-file jobs read, whatever the order.
    checked(jobs["annpage concat → plain"])
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in jobs}
    outputs: dict[str, str] = {}
    for r in range(args.repeats):
        order = list(jobs)
        random.Random(r).shuffle(order)
        for name in order:
            cmd = jobs[name]
            # The jobs before have written gigabytes: with ext4's ordered journal, an fsync (annpage's
            # before its rename) would wait for their write-back too. The in-memory jobs and the
            # outputs may have pushed the inputs out of the page cache: every job reads them warm.
            os.sync()
            warm([*files, one])
            wall, rss, out = measure(cmd, args.timeout)
            samples[name].append((wall, rss))
            outputs[name] = out.strip()
            print(f"[{r + 1}/{args.repeats}] {name}: {wall:.2f} s, {rss:.0f} MiB", file=sys.stderr)
    finished = dt.datetime.now(dt.timezone.utc)

    # The outputs agree.
    sums = {n: checked([PY, "-c", CHECK, str(res / n)]) for n in
            ("annpage-plain.h5ad", "annpage-gzip.h5ad", "ondisk.h5ad", "ondisk-synced.h5ad", "memory-plain.h5ad",
             "memory-gzip.h5ad")}
    if len(set(sums.values())) != 1:
        raise SystemExit(f"the concatenated files differ: {sums}")
    import pandas as pd

    for part in ("obs", "var"):
        # The sums are taken in other chunks (a chunk stops at a file's end): equal to rounding.
        a, b = (pd.read_csv(res / f"stats-{k}.{part}.tsv", sep="\t", index_col=0) for k in ("coll", "one"))
        pd.testing.assert_frame_equal(a, b, rtol=1e-9)
    batch = [outputs[k] for k in jobs if k.startswith("Python")]
    if batch[0] != batch[1]:
        raise SystemExit(f"random batches differ: {batch}")

    med = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v)) for k, v in samples.items()}
    size = sum(os.path.getsize(f) for f in files)
    cmd = ".venv/bin/python " + shlex.join(["benches/concat.py", *sys.argv[1:]])
    lines = [
        f"### Set `{args.label}`",
        "",
        f"Command (from the repository root): `{cmd}`  ",
        f"Run {started:%Y-%m-%d %H:%M} – {finished:%H:%M} UTC; {args.repeats} run(s) per measurement, median shown "
        "(each repeat in a shuffled order; a ratio is the median of the repeats' ratios); "
        f"every process whole (wall time from start to exit, peak RSS); cache budget {args.cache_mb} MiB.",
        "",
        f"Inputs: {len(files)} files cut from the first {args.cells:,} cells of `{args.src.name}` "
        f"(uneven sizes; each a random 90% of the genes, shuffled; {size / 2**20:,.0f} MiB in all, uncompressed). "
        "Outputs checked equal (names, shape, X checksum; the two stats runs' TSVs to 1e-9; the batches' checksums).",
        "",
        "| job | wall | peak RSS |",
        "| --- | --- | --- |",
        *[f"| {k} | {w:.2f} s | {m:,.0f} MiB |" for k, (w, m) in med.items()],
        "",
        "| ratio | value |",
        "| --- | --- |",
    ]
    def ratio(a: str, b: str) -> float:
        """The median over the repeats of a's time ÷ b's in the same repeat."""
        return statistics.median(x / y for (x, _), (y, _) in zip(samples[a], samples[b]))

    lines += [
        f"| `concat_on_disk` ÷ `annpage concat` (plain) | {ratio('anndata concat_on_disk → plain', 'annpage concat → plain'):.1f}× |",
        f"| `concat_on_disk` + fsync ÷ `annpage concat` (plain; both durable when they exit) | {ratio('anndata concat_on_disk → plain, fsync', 'annpage concat → plain'):.1f}× |",
        f"| `anndata.concat` in memory ÷ `annpage concat` (plain) | {ratio('anndata.concat in memory → plain', 'annpage concat → plain'):.1f}× |",
        f"| `anndata.concat` in memory ÷ `annpage concat` (gzip) | {ratio('anndata.concat in memory → gzip', 'annpage concat → gzip'):.1f}× |",
        f"| `annpage concat` peak RSS − budget (plain / gzip) | {med['annpage concat → plain'][1] - args.cache_mb:,.0f} / {med['annpage concat → gzip'][1] - args.cache_mb:,.0f} MiB |",
        f"| collection ÷ one file, `annpage stats` | {ratio('annpage stats, collection of the inputs', 'annpage stats, one file of the same cells'):.2f} |",
        f"| collection ÷ one file, random batches (Python) | {ratio('Python: 200 × 256 random cells, collection', 'Python: 200 × 256 random cells, one file'):.2f} |",
        "",
    ]
    write_section(args.doc, args.label, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
