"""float16 values, judged by the real anndata.

anndata writes numpy's half floats as they are (`<f2` in HDF5 and Zarr). Every CLI verb that
writes must keep them half floats: a converted, subset or concatenated file compares equal,
dtypes included, with what anndata makes of the same input. X is dense (scipy's sparse
matrices have no float16); obs, obsm, layers and uns hold half floats too.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from anndata.tests.helpers import assert_equal
from support import run


def half_floats() -> ad.AnnData:
    rng = np.random.default_rng(16)
    values = rng.random((30, 6)).astype(np.float16)
    values[0, 0] = np.nan
    values[1, 1] = np.inf
    values[2, 2] = np.float16(6e-08)  # subnormal
    return ad.AnnData(
        X=values,
        obs=pd.DataFrame({"h": rng.random(30).astype(np.float16)}, index=[f"c{i}" for i in range(30)]),
        var=pd.DataFrame(index=[f"g{i}" for i in range(6)]),
        obsm={"e": rng.random((30, 2)).astype(np.float16)},
        layers={"l": (values * 2).astype(np.float16)},
        uns={"s": np.float16(0.1), "a": np.arange(4, dtype=np.float16)},
    )


def read(path: Path) -> ad.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_zarr(path) if path.suffix == ".zarr" else ad.read_h5ad(path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("f16")
    adata = half_floats()
    paths = {"h5ad": out / "in.h5ad", "gzip": out / "gz.h5ad", "zarr": out / "in.zarr"}
    adata.write_h5ad(paths["h5ad"])
    adata.write_h5ad(paths["gzip"], compression="gzip")
    adata.write_zarr(paths["zarr"])
    return paths


@pytest.mark.parametrize("src", ["h5ad", "gzip", "zarr"])
@pytest.mark.parametrize("dst", ["out.h5ad", "out.zarr"])
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_convert_keeps_half_floats(annpage_bin: Path, inputs, tmp_path: Path, src: str, dst: str, compression: str):
    out = tmp_path / dst
    res = run([annpage_bin, "convert", inputs[src], out, "--compression", compression])
    assert res.returncode == 0, res.stderr
    got = read(out)
    assert got.X.dtype == np.float16 and got.obsm["e"].dtype == np.float16
    assert_equal(got, half_floats())


def test_subset_keeps_half_floats(annpage_bin: Path, inputs, tmp_path: Path):
    out = tmp_path / "s.h5ad"
    res = run([annpage_bin, "subset", inputs["gzip"], out, "--obs-query", "h > 0.5", "--compression", "gzip"])
    assert res.returncode == 0, res.stderr
    adata = half_floats()
    assert_equal(read(out), adata[adata.obs["h"] > 0.5].copy())


@pytest.mark.parametrize("join", ["inner", "outer"])
def test_concat_keeps_half_floats(annpage_bin: Path, inputs, tmp_path: Path, join: str):
    adata = half_floats()
    fewer = tmp_path / "fewer.h5ad"
    adata[:10, :4].copy().write_h5ad(fewer)
    out = tmp_path / "c.h5ad"
    res = run([annpage_bin, "concat", inputs["h5ad"], fewer, "-o", out, "--join", join, "--label", "b", "--index-unique", "-"])
    assert res.returncode == 0, res.stderr
    expected = ad.concat([adata, adata[:10, :4].copy()], join=join, label="b", index_unique="-")
    assert expected.X.dtype == np.float16
    assert_equal(read(out), expected)


def test_csvs_write_half_floats_as_pandas(annpage_bin: Path, inputs, tmp_path: Path):
    """Half floats in numpy's own precision (`0.1`, `1e+03`), NaN as an empty field."""
    adata = half_floats()
    adata.obs["big"] = np.array([1000.0, 2048.0, np.nan] * 10, dtype=np.float16)
    src = tmp_path / "big.h5ad"
    adata.write_h5ad(src)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    res = run([annpage_bin, "convert", src, ours, "--to", "csvs", "--with-x"])
    assert res.returncode == 0, res.stderr
    adata.write_csvs(theirs, skip_data=False)
    written = sorted(str(p.relative_to(theirs)) for p in theirs.rglob("*.csv"))
    assert {"obs.csv", "X.csv", "obsm.csv", "uns/a.csv"} <= set(written), written
    for name in written:
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name
