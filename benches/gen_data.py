"""Generate the benchmark .h5ad files into target/bench-data/ (git-ignored).

    python benches/gen_data.py                 # the small set (default)
    python benches/gen_data.py --size large    # the large set (minutes, ~6 GB of RAM at peak)
    python benches/gen_data.py --size small --verify
    python benches/gen_data.py --size large --zarr   # also large-v3.zarr (anndata's Zarr v3)

Sets (cells x genes, target non-zeros per cell):

    small  20,000 x  5,000, ~1,000 nnz/cell   ->  small-none.h5ad, small-gzip.h5ad
    large 300,000 x 20,000, ~1,000 nnz/cell   ->  large-none.h5ad, large-gzip.h5ad

Each set is written twice by the real anndata, `write_h5ad(compression=None)` and
`write_h5ad(compression='gzip')`, so the files are exactly what anndata writes. With `--zarr`,
`SIZE-v3.zarr` too: the uncompressed file read by anndata and written with `write_zarr` as Zarr
v3 with anndata's automatic shards (its default codecs: zstd inner chunks), the store of issue
12's benchmarks. Files and stores that already exist are skipped.

Data come from scripts/make_big_h5ad.py's generator (`make`), called once per piece of
PIECE_CELLS cells with the seed `[seed, piece]`; the pieces' CSR arrays are concatenated into one
CSR matrix, and obs / obsm are concatenated (var comes from the first piece). This keeps the
generator's temporaries (int64 keys, rows, columns for every draw, several times the size of the
final matrix) bounded by one piece, so memory at peak is about twice the final X (data + indices,
while concatenating) plus one piece: ~5-6 GB for the large set instead of well over 16 GB for one
`make()` call. The whole matrix is then written with one `write_h5ad`, so dataset chunking and
filters are h5py's/anndata's own choices for the full size.

`make()`'s `nnz` is a number of draws per cell; duplicate (cell, gene) draws collapse, so the draw
count is solved here so that the *expected distinct* non-zeros per cell equal the target.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_big_h5ad  # noqa: E402  (the project's generator, scripts/make_big_h5ad.py)

import anndata as ad  # noqa: E402

DATA_DIR = ROOT / "target" / "bench-data"
PIECE_CELLS = 10_000
SEED = 0

SETS = {
    "small": dict(cells=20_000, genes=5_000, nnz=1_000),
    "large": dict(cells=300_000, genes=20_000, nnz=1_000),
}
COMPRESSIONS = ("none", "gzip")


def path_for(size: str, compression: str, data_dir: Path = DATA_DIR) -> Path:
    return data_dir / f"{size}-{compression}.h5ad"


def draws_for_distinct(genes: int, target: int) -> int:
    """Draws per cell whose expected number of distinct genes is `target` under make()'s weights."""
    w = 1.0 / (np.arange(genes) + 10.0)
    w /= w.sum()
    if target >= genes:
        raise ValueError("target non-zeros per cell must be below the gene count")
    lo, hi = target, target
    while (1.0 - np.exp(-hi * w)).sum() < target:
        hi *= 2
    while lo < hi:  # smallest n with expected distinct >= target
        mid = (lo + hi) // 2
        if (1.0 - np.exp(-mid * w)).sum() < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


def make_pieces(cells: int, genes: int, nnz: int, seed: int = SEED, piece_cells: int = PIECE_CELLS) -> ad.AnnData:
    """make_big_h5ad.make() piece by piece, stitched into one in-memory AnnData."""
    draws = draws_for_distinct(genes, nnz)
    datas, indices, counts, obs, pcas = [], [], [], [], []
    var = None
    for i, start in enumerate(range(0, cells, piece_cells)):
        n = min(piece_cells, cells - start)
        a = make_big_h5ad.make(n, genes, draws, [seed, i])  # default_rng accepts a seed sequence
        x = a.X
        datas.append(x.data)
        indices.append(x.indices)
        counts.append(np.diff(x.indptr).astype(np.int64))
        o = a.obs
        o.index = [f"cell_{j}" for j in range(start, start + n)]
        obs.append(o)
        pcas.append(a.obsm["X_pca"])
        if var is None:
            var = a.var
        del a, x
    total = sum(d.size for d in datas)
    data = np.concatenate(datas)
    del datas
    idx = np.concatenate(indices)
    del indices
    indptr = np.zeros(cells + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=indptr[1:])
    assert indptr[-1] == total
    if total < 2**31:  # as make() does
        indptr = indptr.astype(np.int32)
    x = sp.csr_matrix((data, idx, indptr), shape=(cells, genes))
    obs_df = pd.concat(obs)
    for col in obs_df.columns:  # pieces may see different category sets; rebuild like make() does
        if isinstance(obs[0][col].dtype, pd.CategoricalDtype):
            obs_df[col] = pd.Categorical(obs_df[col].astype(str))
    out = ad.AnnData(X=x, obs=obs_df, var=var)
    out.obsm["X_pca"] = np.concatenate(pcas)
    return out


def describe(path: Path) -> dict:
    """HDF5 layout of a file: every object's kind, dtype, filters, chunking and attribute names."""
    import h5py

    out = {}

    def visit(name, obj):
        entry = {"attrs": sorted(obj.attrs.keys())}
        for k in ("encoding-type", "encoding-version"):
            if k in obj.attrs:
                entry[k] = str(obj.attrs[k])
        if isinstance(obj, h5py.Dataset):
            entry.update(
                dtype=str(obj.dtype),
                ndim=obj.ndim,
                compression=obj.compression,
                compression_opts=obj.compression_opts,
                shuffle=obj.shuffle,
                chunked=obj.chunks is not None,
                maxshape_unlimited=tuple(m is None for m in (obj.maxshape or ())),
            )
        out[name] = entry

    with h5py.File(path, "r") as f:
        f.visititems(visit)
        out["/"] = {"attrs": sorted(f.attrs.keys()), "encoding-type": str(f.attrs.get("encoding-type"))}
    return out


def verify(path: Path, reference: Path | None, expect: dict) -> None:
    """Open with anndata backed='r', check the shape, and compare the layout with a reference file."""
    a = ad.read_h5ad(path, backed="r")
    try:
        assert a.shape == (expect["cells"], expect["genes"]), a.shape
        assert type(a.X).__name__ in ("CSRDataset", "_CSRDataset"), type(a.X)
        nnz = a.X.group["indptr"][-1]
        print(f"  verify {path.name}: backed open ok, shape {a.shape}, nnz {nnz:,} ({nnz / a.shape[0]:.0f}/cell)")
    finally:
        a.file.close()
    if reference is not None and reference != path:
        mine, ref = describe(path), describe(reference)
        if mine != ref:
            diff = {k: (mine.get(k), ref.get(k)) for k in set(mine) | set(ref) if mine.get(k) != ref.get(k)}
            raise SystemExit(f"layout of {path} differs from {reference}: {diff}")
        print(f"  verify {path.name}: HDF5 layout matches {reference.name}")


def generate(size: str, data_dir: Path, do_verify: bool) -> list[Path]:
    spec = SETS[size]
    paths = {c: path_for(size, c, data_dir) for c in COMPRESSIONS}
    todo = [c for c, p in paths.items() if not p.exists()]
    if todo:
        data_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        a = make_pieces(**spec)
        print(f"{size}: generated {a.shape} nnz {a.X.nnz:,} in {time.perf_counter() - t0:.1f}s", flush=True)
        for c in todo:
            t0 = time.perf_counter()
            tmp = paths[c].with_suffix(".h5ad.part")
            a.write_h5ad(tmp, compression=None if c == "none" else c)
            tmp.rename(paths[c])
            size_mb = paths[c].stat().st_size / 2**20
            print(f"{size}: wrote {paths[c]} ({size_mb:,.0f} MiB) in {time.perf_counter() - t0:.1f}s", flush=True)
        del a
    else:
        print(f"{size}: all files exist, skipping generation")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{size}: peak RSS of this process so far {peak:.2f} GiB")
    if do_verify:
        for c, p in paths.items():
            ref = path_for("small", c, data_dir)
            verify(p, ref if ref.exists() else None, spec)
    return list(paths.values())


def write_zarr_store(size: str, data_dir: Path) -> Path:
    """`SIZE-v3.zarr`: the uncompressed file as anndata writes it to Zarr v3, sharded."""
    import anndata as ad

    out = data_dir / f"{size}-v3.zarr"
    if out.exists():
        print(f"{size}: {out.name} exists, skipping")
        return out
    t0 = time.perf_counter()
    a = ad.read_h5ad(path_for(size, "none", data_dir))
    tmp = out.with_suffix(".zarr.part")
    with ad.settings.override(zarr_write_format=3, auto_shard_zarr_v3=True):
        a.write_zarr(tmp)
    tmp.rename(out)
    print(f"{size}: wrote {out} in {time.perf_counter() - t0:.1f}s", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=[*SETS, "all"], default="small")
    p.add_argument("--out-dir", type=Path, default=DATA_DIR)
    p.add_argument("--verify", action="store_true", help="open each file backed and compare its layout with the small set's")
    p.add_argument("--zarr", action="store_true", help="also write SIZE-v3.zarr (anndata's Zarr v3, sharded)")
    args = p.parse_args()
    sizes = list(SETS) if args.size == "all" else [args.size]
    for s in sizes:
        generate(s, args.out_dir, args.verify)
        if args.zarr:
            write_zarr_store(s, args.out_dir)


if __name__ == "__main__":
    main()
