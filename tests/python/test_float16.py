"""float16 through the Python package: read (whole and backed), written, concatenated, each
equal, dtypes included, to what anndata gives."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from anndata.tests.helpers import assert_equal

import annpage


def half_floats() -> ad.AnnData:
    rng = np.random.default_rng(16)
    values = rng.random((40, 5)).astype(np.float16)
    values[0, 0] = np.nan
    values[3, 1] = np.float16(6e-08)  # subnormal
    return ad.AnnData(
        X=values,
        obs=pd.DataFrame({"h": rng.random(40).astype(np.float16)}, index=[f"c{i}" for i in range(40)]),
        var=pd.DataFrame(index=[f"g{i}" for i in range(5)]),
        obsm={"e": rng.random((40, 3)).astype(np.float16)},
        uns={"s": np.float16(0.1), "a": np.arange(3, dtype=np.float16)},
    )


@pytest.mark.parametrize("kind", ["h5ad", "gzip", "zarr"])
def test_read_whole_and_backed(tmp_path, kind):
    adata = half_floats()
    if kind == "zarr":
        path = tmp_path / "h.zarr"
        adata.write_zarr(path)
        read = annpage.read_zarr
    else:
        path = tmp_path / "h.h5ad"
        adata.write_h5ad(path, compression="gzip" if kind == "gzip" else None)
        read = annpage.read_h5ad
    whole = read(path)
    assert whole.X.dtype == np.float16
    assert_equal(whole, adata)
    b = read(path, backed="r")
    assert b.X.dtype == np.float16
    assert_equal(b[5:30:2, [4, 0]].to_memory(), adata[5:30:2, [4, 0]].copy())
    for chunk, start, end in b.chunked_X(7):
        assert chunk.dtype == np.float16
        np.testing.assert_array_equal(chunk, adata.X[start:end])


@pytest.mark.parametrize("suffix", [".h5ad", ".zarr"])
def test_write_keeps_half_floats(tmp_path, suffix):
    adata = half_floats()
    path = tmp_path / f"w{suffix}"
    if suffix == ".zarr":
        annpage.write_zarr(adata, path)
        back = ad.read_zarr(path)
    else:
        annpage.write_h5ad(adata, path, compression="gzip")
        back = ad.read_h5ad(path)
    assert back.X.dtype == np.float16 and back.uns["a"].dtype == np.float16
    assert_equal(back, adata)


@pytest.mark.parametrize("join", ["inner", "outer"])
def test_concat_promotes_as_numpy(join):
    adata = half_floats()
    wider = adata[:10, 1:].copy()
    wider.X = wider.X.astype(np.float32)
    for parts in ([adata, adata[:10, 1:].copy()], [adata, wider]):
        expected = ad.concat(parts, join=join, label="b", index_unique="-")
        assert_equal(annpage.concat(parts, join=join, label="b", index_unique="-"), expected)
