"""The CLI jobs of `benches/peers.py`: the anndata peers of `annpage stats|subset|convert`,
run as whole processes by run.py, and the checks of what each wrote (see the docstring of
peers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared import EntrySums, ROW_CHUNK, anndata_open, fmt, is_zarr, load_selections, w_mod


# --------------------------------------------------------------------------------------------
# CLI jobs: the anndata peers of `annpage stats|subset|convert`, and the checks of their outputs.

CLI_JOBS = ("stats", "subset", "convert")
SUBSET_QUERY_COLUMN, SUBSET_QUERY_VALUE = "cell_type", "type_0"


def cli_genes_path(path: str | Path) -> Path:
    return Path(str(path) + ".cli-genes.txt")


def cli_prep(path: str | Path) -> dict:
    """The inputs of the CLI jobs: the subset's genes by name, one a line (written next to FILE)."""
    import h5py

    sel = load_selections(path)
    if is_zarr(path):
        import anndata as ad
        import zarr

        names = ad.io.read_elem(zarr.open_group(str(path), mode="r")["var"]).index.to_numpy()
    else:
        with h5py.File(path, "r") as f:
            var = f["var"]
            names = var[var.attrs["_index"]].asstr()[:]
    out = cli_genes_path(path)
    out.write_text("".join(f"{names[j]}\n" for j in sel["subset_genes"]))
    return {"genes": str(out), "query": f"{SUBSET_QUERY_COLUMN} == '{SUBSET_QUERY_VALUE}'"}


def anndata_cli_stats(path, out):
    import anndata as ad
    import pandas as pd

    a = anndata_open(path)
    n_obs, n_vars = a.shape
    n_genes = np.zeros(n_obs, dtype=np.int64)
    total = np.zeros(n_obs)
    s, q, n_cells = np.zeros(n_vars), np.zeros(n_vars), np.zeros(n_vars, dtype=np.int64)
    for chunk, start, end in a.chunked_X(ROW_CHUNK):
        chunk.eliminate_zeros()
        n_genes[start:end] = np.diff(chunk.indptr)
        total[start:end] = np.asarray(chunk.sum(axis=1, dtype=np.float64)).ravel()
        data = chunk.data.astype(np.float64)
        s += np.bincount(chunk.indices, weights=data, minlength=n_vars)
        q += np.bincount(chunk.indices, weights=data * data, minlength=n_vars)
        n_cells += np.bincount(chunk.indices, minlength=n_vars)
    mean = s / n_obs
    var = (q - s * mean) / (n_obs - 1)
    obs = pd.DataFrame({"n_genes": n_genes, "total_counts": total}, index=a.obs_names)
    obs.to_csv(f"{out}.obs.tsv", sep="\t", index_label="obs_name")
    genes = pd.DataFrame({"n_cells": n_cells, "mean": mean, "var": var}, index=a.var_names)
    genes.to_csv(f"{out}.var.tsv", sep="\t", index_label="var_name")


def anndata_cli_subset(path, out):
    import anndata as ad

    a = anndata_open(path)
    genes = cli_genes_path(path).read_text().split()
    mask = (a.obs[SUBSET_QUERY_COLUMN] == SUBSET_QUERY_VALUE).to_numpy()
    a[mask, genes].to_memory().write_h5ad(out, compression="gzip")


def anndata_cli_convert(path, out):
    import anndata as ad

    (ad.read_zarr(path) if is_zarr(path) else ad.read_h5ad(path)).write_h5ad(out, compression="gzip")


def cli_check(job: str, out: str) -> str:
    if job == "stats":
        import pandas as pd

        obs = pd.read_csv(f"{out}.obs.tsv", sep="\t", index_col=0)
        var = pd.read_csv(f"{out}.var.tsv", sep="\t", index_col=0)
        w = np.arange(len(var)) % 7 + 1
        v = var["var"].to_numpy(dtype=np.float64)
        return fmt(
            len(obs),
            obs["n_genes"].sum(),
            obs["total_counts"].sum(),
            var["n_cells"].sum(),
            var["mean"].sum(),
            v.sum(),
            (w * v).sum(),
        )
    import h5py

    acc = EntrySums()
    with h5py.File(out, "r") as f:
        x = f["X"]
        if not isinstance(x, h5py.Group) or x.attrs.get("encoding-type") != "csr_matrix":
            raise SystemExit(f"{out}: X is not a CSR matrix")
        shape = [int(v) for v in x.attrs["shape"]]
        gzip = 1 if x["data"].compression == "gzip" else 0
        indptr = x["indptr"][:]
        col_w = w_mod(5)
        for start in range(0, shape[0], ROW_CHUNK):
            end = min(shape[0], start + ROW_CHUNK)
            lo, hi = int(indptr[start]), int(indptr[end])
            part = indptr[start : end + 1] - lo
            data = x["data"][lo:hi].astype(np.float64)
            cols = x["indices"][lo:hi]
            rows = np.repeat(np.arange(start, end), np.diff(part))
            acc.s += data.sum()
            acc.n += data.size
            acc.w += (data * w_mod(7)(rows) * col_w(cols)).sum()
    return fmt(shape[0], shape[1], gzip, acc.s, acc.n, acc.w)


def run_cli(peer: str, job: str, path: str, out: str) -> None:
    if peer != "anndata" or job not in CLI_JOBS:
        raise SystemExit(f"unknown CLI peer/job {peer!r}/{job!r}; peer anndata, jobs {CLI_JOBS}")
    globals()[f"anndata_cli_{job}"](path, out)
