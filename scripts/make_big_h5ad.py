"""Write a realistic single-cell .h5ad with the real anndata, for memory tests and benchmarks.

Counts are CSR float32 with a skewed per-gene popularity (a few genes in most cells, most genes
rare) and about NNZ non-zeros per cell; obs/var carry categorical and numeric columns and
obsm holds an X_pca. Deterministic for a given seed.

    python scripts/make_big_h5ad.py OUT --cells 100000 --genes 5000 --nnz 300 [--compression gzip]
"""

from __future__ import annotations

import argparse

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp


def make(cells: int, genes: int, nnz: int, seed: int) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    # Zipf-like gene popularity: column j drawn with probability ~ 1 / (j + 10).
    weights = 1.0 / (np.arange(genes) + 10.0)
    weights /= weights.sum()
    per_cell = np.clip(rng.poisson(nnz, size=cells), 1, genes)
    rows = np.repeat(np.arange(cells, dtype=np.int64), per_cell)
    cols = rng.choice(genes, size=rows.size, p=weights)
    # Duplicate (cell, gene) draws collapse into one entry; keys sort by row, then column.
    keys = rows * genes + cols
    keys.sort()
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    rows, indices = np.divmod(keys, genes)
    indices = indices.astype(np.int32)
    indptr = np.zeros(cells + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=cells), out=indptr[1:])
    data = rng.negative_binomial(2, 0.4, size=indptr[-1]).astype(np.float32) + 1.0
    if indptr[-1] < 2**31:
        indptr = indptr.astype(np.int32)
    x = sp.csr_matrix((data, indices, indptr), shape=(cells, genes))
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice([f"type_{i}" for i in range(12)], size=cells)),
            "sample": pd.Categorical(rng.choice(["s1", "s2", "s3", "s4"], size=cells)),
            "n_counts": np.asarray(x.sum(axis=1)).ravel(),
            "percent_mito": rng.random(cells).astype(np.float32),
        },
        index=[f"cell_{i}" for i in range(cells)],
    )
    var = pd.DataFrame(
        {
            "gene_ids": [f"ENSG{i:011d}" for i in range(genes)],
            "feature_types": pd.Categorical(["Gene Expression"] * genes),
            "highly_variable": rng.random(genes) < 0.1,
        },
        index=[f"gene_{i}" for i in range(genes)],
    )
    a = ad.AnnData(X=x, obs=obs, var=var)
    a.obsm["X_pca"] = rng.standard_normal((cells, 50)).astype(np.float32)
    return a


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--cells", type=int, default=100_000)
    p.add_argument("--genes", type=int, default=5_000)
    p.add_argument("--nnz", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compression", choices=["none", "gzip", "lzf"], default="none")
    args = p.parse_args()
    a = make(args.cells, args.genes, args.nnz, args.seed)
    a.write_h5ad(args.out, compression=None if args.compression == "none" else args.compression)


if __name__ == "__main__":
    main()
