"""Peak memory of writes whose size comes from the annotations, not X: `annpage concat` and
`convert` as whole processes (wall time and peak RSS), on generated inputs:

- `obsm`: two 100,000-cell files with a 1,000-column float64 `obsm` (800 MB each), concatenated
  into .h5ad and into Zarr, and one converted to Zarr;
- `dense`: a dense float32 X of 60,000 × 3,000 (720 MB) converted to Zarr;
- `cells`: two modalities of the same 1,000,000 cells (20 and 10 genes, small matrices),
  concatenated along var, and along obs (2,000,000 names) into .h5ad and into Zarr.

Usage (from the repository root, after `cargo build --release -p annpage-cli`):

    .venv/bin/python benches/write_memory.py [--annpage target/release/annpage]
        [--other-annpage PATH] [--rounds 3] [--cache-mb 64]

Inputs are generated once into target/bench-data/write-memory/. Each round runs every job
once per binary, in turn; medians are printed as a markdown table. `--other-annpage` adds a
second binary (an older build) and the ratios old ÷ new.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from loom_convert import measure  # a whole process measured from a small one, not this one

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "target" / "bench-data" / "write-memory"


def make_obsm(n: int = 100_000) -> list[Path]:
    out = []
    rng = np.random.default_rng(0)
    for k in range(2):
        path = DATA / f"obsm{k}.h5ad"
        out.append(path)
        if path.exists():
            continue
        x = sp.random(n, 200, density=0.01, format="csr", dtype=np.float32, random_state=k)
        a = ad.AnnData(x, obs=pd.DataFrame(index=[f"c{k}_{i}" for i in range(n)]),
                       var=pd.DataFrame(index=[f"g{i}" for i in range(200)]))
        a.obsm["big"] = rng.standard_normal((n, 1000))
        a.write_h5ad(path)
    return out


def make_dense(n: int = 60_000, genes: int = 3_000) -> Path:
    path = DATA / "dense.h5ad"
    if not path.exists():
        rng = np.random.default_rng(2)
        ad.AnnData(rng.random((n, genes), dtype=np.float32)).write_h5ad(path)
    return path


def make_cells(n: int = 1_000_000) -> list[Path]:
    out = []
    rng = np.random.default_rng(8)
    names = [f"cell_{i:07d}" for i in range(n)]
    for key, genes in (("rna", 20), ("adt", 10)):
        path = DATA / f"{key}.h5ad"
        out.append(path)
        if path.exists():
            continue
        a = ad.AnnData(sp.random(n, genes, density=0.1, format="csr", dtype=np.float32, random_state=rng))
        a.obs_names = names
        a.var_names = [f"{key}{j}" for j in range(genes)]
        a.write_h5ad(path)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--annpage", default=str(ROOT / "target" / "release" / "annpage"))
    p.add_argument("--other-annpage", help="an older build, measured beside --annpage")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cache-mb", type=int, default=64)
    args = p.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    obsm, cells, dense = make_obsm(), make_cells(), make_dense()
    cache = ["--cache-mb", str(args.cache_mb)]
    along_obs = ["--join", "outer", "--index-unique", "-"]
    jobs = {
        "concat obsm → .h5ad": (["concat", *obsm, "-o", "{out}.h5ad", *cache]),
        "concat obsm → Zarr": (["concat", *obsm, "-o", "{out}.zarr", *cache]),
        "convert obsm → Zarr": (["convert", obsm[0], "{out}.zarr", *cache]),
        "convert dense X → Zarr": (["convert", dense, "{out}.zarr", *cache]),
        "concat 1M cells along var → .h5ad": (["concat", *cells, "-o", "{out}.h5ad", "--axis", "var", *cache]),
        "concat 1M + 1M cells along obs → .h5ad": (["concat", *cells, "-o", "{out}.h5ad", *along_obs, *cache]),
        "concat 1M + 1M cells along obs → Zarr": (["concat", *cells, "-o", "{out}.zarr", *along_obs, *cache]),
    }
    binaries = {"annpage": args.annpage}
    if args.other_annpage:
        binaries = {"older": args.other_annpage, **binaries}
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        for r in range(args.rounds):
            for name, job in jobs.items():
                for label, binary in binaries.items():
                    out = Path(tmp) / f"out{r}"
                    argv = [binary, *(str(a).format(out=out) for a in job)]
                    results.setdefault((name, label), []).append(measure(argv))
                    subprocess.run(["rm", "-rf", f"{out}.h5ad", f"{out}.zarr"], check=True)
    print(f"medians of {args.rounds}, --cache-mb {args.cache_mb}\n")
    header = " | ".join(f"{label} wall · peak" for label in binaries)
    ratio = " | older ÷ annpage (wall / peak)" if args.other_annpage else ""
    print(f"| job | {header}{ratio} |")
    print("| --- |" + " --- |" * (len(binaries) + bool(ratio)))
    for name in jobs:
        cells_ = []
        med = {}
        for label in binaries:
            runs = results[(name, label)]
            med[label] = (statistics.median(w for w, _ in runs), statistics.median(m for _, m in runs))
            cells_.append(f"{med[label][0]:.2f} s · {med[label][1]:.0f} MiB")
        if ratio:
            (ow, om), (nw, nm) = med["older"], med["annpage"]
            cells_.append(f"{ow / nw:.1f}× / {om / nm:.1f}×")
        print(f"| {name} | " + " | ".join(cells_) + " |")


if __name__ == "__main__":
    main()
