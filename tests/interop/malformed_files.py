"""Makes small crafted .h5ad files that claim huge sizes or loop back on themselves.

Each file is small (a few KB; the nested one some 330 KB): a valid AnnData written by anndata, then one element replaced through
h5py. Chunked datasets are created with a huge shape and no chunk ever written (legal HDF5: they
read as the fill value), so the file claims far more data than it holds.

Run as a script to write every case into a directory: `python malformed_files.py OUT_DIR`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp


def _base(path: Path, n_obs: int = 6, n_vars: int = 4, dense: bool = False) -> None:
    """A small valid AnnData: CSR (or dense) X, one obs column, one obsm array and a uns dict."""
    rng = np.random.default_rng(0)
    x = rng.poisson(0.7, size=(n_obs, n_vars)).astype(np.float32)
    adata = ad.AnnData(
        X=x if dense else sp.csr_matrix(x),
        obs=pd.DataFrame({"n": np.arange(n_obs)}, index=[f"c{i}" for i in range(n_obs)]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(n_vars)]),
    )
    adata.obsm["X_pca"] = rng.normal(size=(n_obs, 2))
    adata.uns["pca"] = {"variance": np.array([2.0, 1.0])}
    adata.write_h5ad(path)


def _array_attrs(obj: h5py.HLObject) -> None:
    obj.attrs["encoding-type"] = "array"
    obj.attrs["encoding-version"] = "0.2.0"


def _dict_attrs(obj: h5py.HLObject) -> None:
    obj.attrs["encoding-type"] = "dict"
    obj.attrs["encoding-version"] = "0.1.0"


def _unwritten(group: h5py.Group, name: str, shape: tuple[int, ...], dtype: str, chunks: tuple[int, ...]):
    """A chunked dataset of `shape` whose chunks are never written (unlimited axes as maxshape)."""
    return group.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks, maxshape=(None,) * len(shape))


def huge_indptr(path: Path) -> None:
    """A CSR X whose `indptr` claims 2^40+1 entries (and shape 2^40 rows)."""
    _base(path)
    with h5py.File(path, "r+") as f:
        del f["X/indptr"]
        _unwritten(f["X"], "indptr", (2**40 + 1,), "i8", (1024,))
        f["X"].attrs["shape"] = np.array([2**40, 4], dtype="i8")


def huge_dense_x(path: Path) -> None:
    """A dense X of 2^31 x 2^20 float32."""
    _base(path)
    with h5py.File(path, "r+") as f:
        del f["X"]
        _array_attrs(_unwritten(f, "X", (2**31, 2**20), "f4", (256, 256)))


def huge_uns_array(path: Path) -> None:
    """An `uns` array of 2^34 doubles."""
    _base(path)
    with h5py.File(path, "r+") as f:
        _array_attrs(_unwritten(f["uns"], "big", (2**34,), "f8", (4096,)))


def huge_obsm(path: Path) -> None:
    """An `obsm` array of 2000 x 2^30 doubles, in a file with 2000 cells."""
    _base(path, n_obs=2000)
    with h5py.File(path, "r+") as f:
        _array_attrs(_unwritten(f["obsm"], "big", (2000, 2**30), "f8", (100, 4096)))


def wrapping_count(path: Path) -> None:
    """A dense X of (2^32+2) x 2^32 in 1 x 1 chunks: the element count wraps a 64-bit integer."""
    _base(path)
    with h5py.File(path, "r+") as f:
        del f["X"]
        _array_attrs(_unwritten(f, "X", (2**32 + 2, 2**32), "f4", (1, 1)))


def deep_uns(path: Path, depth: int = 1000) -> None:
    """`uns` holding 1,000 nested dicts (5,000 overflowed the stack; any depth past annpage's
    limit of 64 shows the bound, and each level costs the file some 330 bytes)."""
    _base(path)
    # The latest format keeps each new group's header small.
    with h5py.File(path, "r+", libver="latest") as f:
        g = f["uns"]
        for _ in range(depth):
            g = g.create_group("d")
            _dict_attrs(g)


def cycle_to_parent(path: Path) -> None:
    """A hard link from `uns/pca/loop` back to `uns/pca`."""
    _base(path)
    with h5py.File(path, "r+") as f:
        f["uns/pca/loop"] = f["uns/pca"]


def cycle_to_root(path: Path) -> None:
    """A hard link from `uns/root` to the root group."""
    _base(path)
    with h5py.File(path, "r+") as f:
        f["uns/root"] = f["/"]


def linked_dataset(path: Path) -> None:
    """An `uns` array of 10^6 zeros (8 MB, a few KB gzipped) hard-linked under 400 names."""
    _base(path)
    with h5py.File(path, "r+") as f:
        d = f.create_dataset("uns/a0", data=np.zeros(1_000_000), chunks=(100_000,), compression="gzip")
        _array_attrs(d)
        for i in range(1, 400):
            f[f"uns/a{i}"] = d


CASES: dict[str, Callable[[Path], None]] = {
    "huge_indptr": huge_indptr,
    "huge_dense_x": huge_dense_x,
    "huge_uns_array": huge_uns_array,
    "huge_obsm": huge_obsm,
    "wrapping_count": wrapping_count,
    "deep_uns": deep_uns,
    "cycle_to_parent": cycle_to_parent,
    "cycle_to_root": cycle_to_root,
    "linked_dataset": linked_dataset,
}


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in CASES.items():
        path = out / f"{name}.h5ad"
        make(path)
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
