"""Selections and checksums shared by every peer of `benches/peers.py` (and its limits and CLI
jobs): what each workload reads, and how its result is summed so that peers can be compared."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

ROW_CHUNK = 10_000
N_BATCHES = 200
BATCH_SIZE = 256
SUBSET_CELL_FRACTION = 0.10
SUBSET_GENES = 2_000
N_COLUMN_GENES = 10
READ_BUF = 16 * 2**20
# h5py peer: HDF5 chunk cache per open dataset (the HDF5 default is 1 MiB, h5py's 8 MiB).
H5PY_CACHE_MB = int(os.environ.get("BENCH_H5PY_CACHE_MB", "64"))


# --------------------------------------------------------------------------------------------
# Selections: drawn once per file from its shape, stored next to it, read by every peer.


def selections_path(path: str | Path) -> Path:
    return Path(str(path) + ".selections.json")


def is_zarr(path: str | Path) -> bool:
    """A Zarr store (a directory, or a .zarr.zip archive) rather than an .h5ad file."""
    return Path(path).is_dir() or str(path).endswith((".zarr", ".zarr.zip"))


def file_shape(path: str | Path) -> tuple[int, int]:
    if is_zarr(path):
        import zarr

        shape = zarr.open_group(str(path), mode="r")["X"].attrs["shape"]
        return int(shape[0]), int(shape[1])
    import h5py

    with h5py.File(path, "r") as f:
        shape = f["X"].attrs["shape"]
        return int(shape[0]), int(shape[1])


def make_selections(n_obs: int, n_vars: int) -> dict:
    """Deterministic for a given shape: numpy's PCG64 with fixed seeds."""
    rng = np.random.default_rng(1)
    batches = [rng.choice(n_obs, BATCH_SIZE, replace=False).tolist() for _ in range(N_BATCHES)]
    rng = np.random.default_rng(2)
    cells = np.sort(rng.choice(n_obs, int(round(n_obs * SUBSET_CELL_FRACTION)), replace=False))
    genes = rng.choice(n_vars, min(SUBSET_GENES, n_vars), replace=False)
    rng = np.random.default_rng(3)
    columns = rng.choice(n_vars, min(N_COLUMN_GENES, n_vars), replace=False)
    return {
        "n_obs": n_obs,
        "n_vars": n_vars,
        "row_chunk": ROW_CHUNK,
        "batches": batches,
        "subset_cells": cells.tolist(),
        "subset_genes": genes.tolist(),
        "columns": columns.tolist(),
    }


def write_selections(path: str | Path) -> Path:
    out = selections_path(path)
    sel = make_selections(*file_shape(path))
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(sel))
    tmp.rename(out)
    return out


def load_selections(path: str | Path) -> dict:
    p = selections_path(path)
    if not p.exists():
        write_selections(path)
    sel = json.loads(p.read_text())
    sel["batches"] = [np.asarray(b, dtype=np.int64) for b in sel["batches"]]
    for k in ("subset_cells", "subset_genes", "columns"):
        sel[k] = np.asarray(sel[k], dtype=np.int64)
    return sel


# --------------------------------------------------------------------------------------------
# Checksums, shared by every peer (float64 throughout; all data in the bench files are integers,
# so these sums are exact and agree to the last bit unless a peer reads something else).


def fmt(*values) -> str:
    return ",".join(repr(float(v)) for v in values)


class GeneSums:
    """Per-gene sum and sum of squares. The stored entries are summed by scipy's compiled
    sparse product (one column of the genes' n-vector), which takes int32 indices as they are:
    about twice as fast as `np.bincount`, which first copies them into int64 and the values
    into float64 once per sum."""

    def __init__(self, n_vars: int):
        self.s = np.zeros(n_vars)
        self.q = np.zeros(n_vars)

    def add(self, indices: np.ndarray, data: np.ndarray) -> None:
        import scipy.sparse as sp

        n = self.s.size
        d = data.astype(np.float64)
        # the pointers in the indices' own dtype: scipy would copy int32 indices to int64
        ptr = np.array([0, d.size], dtype=indices.dtype if d.size < 2**31 else np.int64)
        one = np.ones(1)
        self.s += sp.csc_matrix((d, indices, ptr), shape=(n, 1)) @ one
        self.q += sp.csc_matrix((d * d, indices, ptr), shape=(n, 1)) @ one

    def checksum(self) -> str:
        j = np.arange(self.s.size)
        return fmt(self.s.sum(), self.q.sum(), ((j % 7 + 1) * self.s).sum())


class EntrySums:
    """sum v, count, sum v * row_weight(row) * col_weight(col) over the stored entries.

    The weighted sum is `row_weights @ (x @ col_weights)`, scipy's compiled sparse product:
    one pass over the entries, so the harness's own arithmetic stays a small part of a
    workload's time (the Rust harness's is a few milliseconds)."""

    def __init__(self):
        self.s = self.n = self.w = 0.0

    def add_csr(self, x, row_weight, col_weight) -> None:
        x = x.tocsr() if not hasattr(x, "indptr") or x.format != "csr" else x
        n_rows, n_cols = x.shape
        rows = row_weight(np.arange(n_rows)).astype(np.float64)
        cols = col_weight(np.arange(n_cols)).astype(np.float64)
        self.s += x.data.sum(dtype=np.float64)
        self.n += x.data.size
        self.w += float(rows @ (x @ cols))

    def checksum(self) -> str:
        return fmt(self.s, self.n, self.w)


def w_mod(k):
    return lambda a: a % k + 1


def w_plus1(a):
    return a + 1


def meta_checksum(n_obs: int, n_vars: int, columns: list, names: list) -> str:
    """columns: (kind, value): 'num' with the numeric/bool values, or 'cat' with the number of
    distinct non-null values of a categorical or string column; names: obs and var names."""
    num = 0.0
    distinct = 0
    for kind, values in columns:
        if kind == "num":
            num += float(np.asarray(values, dtype=np.float64).sum())
        elif kind == "cat":
            distinct += int(values)
    chars = sum(int(sum(len(s) for s in arr)) for arr in names)
    return fmt(n_obs, n_vars, len(columns), num, chars, distinct)

def anndata_open(path):
    """Backed mode for .h5ad; anndata has none for Zarr, whose only reader loads the store."""
    import anndata as ad

    if is_zarr(path):
        return ad.read_zarr(path)
    return ad.read_h5ad(path, backed="r")
