"""Turns the plain values handed over by the native module into anndata's own objects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def _opaque(filename, path):
    """Reads an element annpage keeps verbatim (awkward arrays, rec-arrays) with anndata."""
    import h5py
    from anndata.io import read_elem

    with h5py.File(filename, "r") as f:
        return read_elem(f[path])


def _strings(a):
    """An object array of str as pandas holds it (pandas' default string storage)."""
    return a


def _index(values, name):
    if values.dtype == object:
        idx = pd.Index(values, dtype=object, name=name)
    else:
        idx = pd.Index(values, name=name)
    return idx


def _nullable(kind, values, mask):
    if kind == "integer":
        return pd.arrays.IntegerArray(values, mask)
    if kind == "boolean":
        return pd.arrays.BooleanArray(values, mask)
    values = values.copy()
    values[mask] = pd.NA
    return pd.array(values, dtype="string")


def value(v, filename, path):
    """One element: numpy arrays pass through, dicts recurse, tagged tuples are built."""
    if isinstance(v, dict):
        return {k: value(x, filename, f"{path}/{k}") for k, x in v.items()}
    if not isinstance(v, tuple):
        return v
    tag = v[0]
    if tag == "sparse":
        _, fmt, shape, indptr, indices, data = v
        cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
        return cls((data, indices, indptr), shape=shape)
    if tag == "dataframe":
        _, index, index_name, columns = v
        df = pd.DataFrame(
            {name: value(col, filename, f"{path}/{name}") for name, col in columns},
            index=_index(index, index_name),
        )
        if not columns:
            # As anndata reads a frame without columns: an empty object column index.
            df = pd.DataFrame(index=_index(index, index_name), columns=pd.Index([], dtype=object))
        return df
    if tag == "categorical":
        _, codes, categories, ordered = v
        return pd.Categorical.from_codes(codes, categories=pd.Index(categories), ordered=ordered)
    if tag == "nullable":
        _, kind, values, mask = v
        return _nullable(kind, values, mask)
    if tag == "scalar":
        a = v[1]
        return str(a[()]) if a.dtype == object else a[()]
    if tag == "opaque":
        return _opaque(filename, path)
    raise ValueError(f"unknown element kind {tag!r}")


def anndata(elems, filename):
    """An in-memory `anndata.AnnData` from the native module's dict of elements."""
    import anndata as ad

    def conv(key):
        return value(elems[key], filename, key)

    raw = elems["raw"]
    adata = ad.AnnData(
        X=conv("X") if elems["X"] is not None else None,
        obs=conv("obs"),
        var=conv("var"),
        obsm=conv("obsm"),
        varm=conv("varm"),
        obsp=conv("obsp"),
        varp=conv("varp"),
        layers=conv("layers"),
        uns=conv("uns"),
    )
    if raw is not None:
        adata.raw = ad.AnnData(
            X=value(raw["X"], filename, "raw/X"),
            obs=adata.obs[[]],
            var=value(raw["var"], filename, "raw/var"),
            varm=value(raw["varm"], filename, "raw/varm"),
        )
    return adata
