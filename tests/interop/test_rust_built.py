"""Files built in Rust and written by annpage, read by the real anndata and checked field by field.

`tests/bin/write_samples.rs` builds the objects; the values below are spelled out again here,
independently, so that a file that anndata reads differently from what annpage meant fails.
Each file is also compared, HDF5 object by object, with what anndata writes for the object it
read from it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from h5tree import differences, tree
from scipy import sparse
from support import run

SAMPLES = ["csr_f32", "dense_f64", "obs_columns", "unicode", "full", "empty"]


@pytest.fixture(scope="module")
def samples_dir(samples_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rust-built")
    result = run([samples_bin, out])
    assert result.returncode == 0, f"write-samples failed (exit {result.returncode}):\n{result.stderr}"
    return out


def read(samples_dir: Path, name: str) -> ad.AnnData:
    path = samples_dir / f"{name}.h5ad"
    assert path.is_file(), f"write-samples wrote no {path.name}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


def assert_index(index: pd.Index, names: list[str]) -> None:
    assert index.tolist() == names
    assert index.dtype == object


def test_csr_f32(samples_dir: Path):
    a = read(samples_dir, "csr_f32")
    assert a.shape == (3, 4)
    assert_index(a.obs_names, ["c0", "c1", "c2"])
    assert_index(a.var_names, ["g0", "g1", "g2", "g3"])
    assert isinstance(a.X, sparse.csr_matrix | sparse.csr_array)
    assert a.X.dtype == np.float32
    np.testing.assert_array_equal(
        a.X.toarray(), np.array([[1, 0, 2, 0], [0, 0, 0, 0], [0, 3.5, 0, -4]], dtype=np.float32)
    )
    np.testing.assert_array_equal(a.X.indptr, [0, 2, 2, 4])
    np.testing.assert_array_equal(a.X.indices, [0, 2, 1, 3])
    assert list(a.obs.columns) == [] and list(a.var.columns) == []
    for slot in (a.obsm, a.varm, a.obsp, a.varp, a.layers, a.uns):
        assert len(slot) == 0
    assert a.raw is None


def test_dense_f64(samples_dir: Path):
    a = read(samples_dir, "dense_f64")
    assert a.shape == (2, 3)
    assert_index(a.obs_names, ["r0", "r1"])
    assert_index(a.var_names, ["a", "b", "c"])
    assert isinstance(a.X, np.ndarray)
    assert a.X.dtype == np.float64
    assert a.X[0].tolist() == [0.5, -1.25, 1e10]
    assert math.isnan(a.X[1, 0])
    assert a.X[1, 1] == math.inf
    assert a.X[1, 2] == 0.0 and math.copysign(1.0, a.X[1, 2]) == -1.0


def test_obs_columns(samples_dir: Path):
    a = read(samples_dir, "obs_columns")
    obs = a.obs
    assert_index(a.obs_names, ["o1", "o2", "o3", "o4"])
    assert list(obs.columns) == ["int", "float", "f32", "u8", "flag", "name", "cell_type", "grade", "count", "ok"]

    assert obs["int"].dtype == np.int64
    assert obs["int"].tolist() == [1, -2, 3, 2**40]
    assert obs["float"].dtype == np.float64
    assert obs["float"].iloc[[0, 2, 3]].tolist() == [0.5, -1.5, 2.0] and math.isnan(obs["float"].iloc[1])
    assert obs["f32"].dtype == np.float32
    assert obs["f32"].tolist() == [0.25, 1.0, -8.0, 3.0]
    assert obs["u8"].dtype == np.uint8
    assert obs["u8"].tolist() == [0, 255, 7, 8]
    assert obs["flag"].dtype == bool
    assert obs["flag"].tolist() == [True, False, True, True]
    assert obs["name"].dtype == object
    assert obs["name"].tolist() == ["alpha", "beta", "gamma", "delta"]

    cell_type = obs["cell_type"]
    assert isinstance(cell_type.dtype, pd.CategoricalDtype)
    assert cell_type.cat.categories.tolist() == ["B", "T"]
    assert not cell_type.cat.ordered
    assert cell_type.cat.codes.tolist() == [0, 1, 0, -1]
    assert cell_type.isna().tolist() == [False, False, False, True]

    grade = obs["grade"]
    assert grade.cat.categories.tolist() == ["low", "mid", "high"]
    assert grade.cat.ordered
    assert grade.tolist() == ["high", "low", "mid", "high"]
    assert grade.cat.codes.tolist() == [2, 0, 1, 2]
    assert (grade > "low").tolist() == [True, False, True, True]  # only an ordered categorical compares

    count = obs["count"]
    assert count.dtype == pd.Int64Dtype()
    assert count.isna().tolist() == [False, True, False, False]
    assert count.dropna().tolist() == [5, 7, 9]

    ok = obs["ok"]
    assert ok.dtype == pd.BooleanDtype()
    assert ok.isna().tolist() == [False, False, True, False]
    assert ok[~ok.isna()].tolist() == [True, False, True]

    var = a.var
    assert_index(a.var_names, ["v1", "v2"])
    assert list(var.columns) == ["gene_ids", "numeric_cat"]
    assert var["gene_ids"].tolist() == ["ENSG1", "ENSG2"]
    assert var["numeric_cat"].cat.categories.tolist() == [10, 20]
    assert var["numeric_cat"].cat.categories.dtype == np.int64
    assert var["numeric_cat"].tolist() == [20, 10]

    assert isinstance(a.X, np.ndarray) and a.X.dtype == np.int32
    np.testing.assert_array_equal(a.X, np.arange(1, 9, dtype=np.int32).reshape(4, 2))


def test_unicode(samples_dir: Path):
    a = read(samples_dir, "unicode")
    assert_index(a.obs_names, ["ℌ𝔢𝔩𝔩𝔬", "Zürich", "日本"])
    assert_index(a.var_names, ["gène α", "β"])
    assert a.obs["Stadt (city)"].tolist() == ["Zürich", "Köln", "Genève"]
    assert sparse.issparse(a.X) and a.X.format == "csr"
    assert a.X.shape == (3, 2) and a.X.nnz == 0 and a.X.dtype == np.float32
    assert list(a.obsm.keys()) == ["X embedding ✓"]
    np.testing.assert_array_equal(a.obsm["X embedding ✓"], np.arange(1, 7, dtype=np.float32).reshape(3, 2))
    assert a.obsm["X embedding ✓"].dtype == np.float32
    assert a.uns == {"clé avec espaces": {"ℌ𝔢𝔩𝔩𝔬": "wörld ✓"}}


def test_full(samples_dir: Path):
    a = read(samples_dir, "full")
    assert a.shape == (3, 2)
    assert a.X.dtype == np.float32
    np.testing.assert_array_equal(a.X, [[1, 0], [0, 2], [3, 0]])

    assert sorted(a.obsm.keys()) == ["X_pca", "X_sparse"]
    assert a.obsm["X_pca"].dtype == np.float64
    np.testing.assert_array_equal(a.obsm["X_pca"], [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    assert sparse.issparse(a.obsm["X_sparse"]) and a.obsm["X_sparse"].format == "csr"
    np.testing.assert_array_equal(a.obsm["X_sparse"].toarray(), np.diag([1.0, 2.0, 3.0]))

    assert list(a.varm.keys()) == ["PCs"]
    assert a.varm["PCs"].dtype == np.float32
    np.testing.assert_array_equal(a.varm["PCs"], [[1.0, -1.0], [0.5, -0.5]])

    assert sorted(a.layers.keys()) == ["counts", "sparse"]
    assert a.layers["counts"].dtype == np.int32
    np.testing.assert_array_equal(a.layers["counts"], [[1, 0], [0, 2], [3, 0]])
    assert sparse.issparse(a.layers["sparse"]) and a.layers["sparse"].format == "csc"
    assert a.layers["sparse"].dtype == np.float32
    np.testing.assert_array_equal(a.layers["sparse"].toarray(), [[0, 7], [0, 0], [8, 0]])

    assert list(a.obsp.keys()) == ["connectivities"]
    conn = a.obsp["connectivities"]
    assert sparse.issparse(conn) and conn.format == "csr" and conn.dtype == np.float32
    np.testing.assert_array_equal(conn.toarray(), [[0, 0.5, 0], [0.5, 0, 0.25], [0, 0.25, 0]])
    assert list(a.varp.keys()) == ["corr"]
    np.testing.assert_array_equal(a.varp["corr"], [[1.0, -0.5], [-0.5, 1.0]])

    uns = a.uns
    assert sorted(uns.keys()) == sorted(
        ["title", "n", "pi", "flag", "nan", "colors", "matrix", "params", "cats", "table"]
    )
    assert uns["title"] == "written by annpage"
    assert uns["n"] == 42 and isinstance(uns["n"], int | np.integer)
    assert uns["pi"] == math.pi
    assert uns["flag"] is True or uns["flag"] == np.True_
    assert isinstance(uns["nan"], float | np.floating) and math.isnan(uns["nan"])
    assert uns["colors"].tolist() == ["#ff0000", "#00ff00"]
    assert uns["matrix"].dtype == np.int32
    np.testing.assert_array_equal(uns["matrix"], [[1, 2, 3], [4, 5, 6]])
    assert uns["params"]["method"] == "umap"
    assert uns["params"]["nested"]["k"] == 1.5
    cats = uns["cats"]
    assert isinstance(cats, pd.Categorical)
    assert cats.categories.tolist() == ["a", "b"] and list(cats) == ["b", "a", "b"]
    table = uns["table"]
    assert isinstance(table, pd.DataFrame)
    assert table.index.tolist() == ["x", "y"]
    assert table["value"].tolist() == [10, 20] and table["value"].dtype == np.int64

    raw = a.raw
    assert raw is not None
    assert raw.shape == (3, 4)
    assert raw.var_names.tolist() == ["g0", "g1", "g2", "g3"]
    assert raw.var["gene_ids"].tolist() == ["id0", "id1", "id2", "id3"]
    assert sparse.issparse(raw.X) and raw.X.dtype == np.float32
    np.testing.assert_array_equal(raw.X.toarray(), [[1, 0, 0, 9], [0, 2, 0, 0], [3, 0, 0, 0]])
    assert list(raw.varm.keys()) == ["loadings"]
    np.testing.assert_array_equal(raw.varm["loadings"], np.arange(1.0, 9.0).reshape(4, 2))


def test_empty(samples_dir: Path):
    a = read(samples_dir, "empty")
    assert a.shape == (0, 0)
    assert a.X is None
    assert len(a.obs.columns) == 0 and len(a.var.columns) == 0
    assert a.raw is None
    assert len(a.uns) == 0


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_tree_matches_anndata(name: str, samples_dir: Path, tmp_path: Path):
    """Every object annpage wrote carries the attributes and dtypes anndata would write."""
    src = samples_dir / f"{name}.h5ad"
    ref = tmp_path / "anndata.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read(samples_dir, name).write_h5ad(ref, convert_strings_to_categoricals=False)
    expected, actual = tree(ref), tree(src)
    # anndata reads numeric scalars as Python values and writes them back widened; the
    # scalars annpage wrote are checked against the dtype they were built with instead.
    scalar_dtypes = {"/uns/n": "<i8", "/uns/pi": "<f8", "/uns/nan": "<f8", "/uns/params/nested/k": "<f4"}
    for path, dtype in scalar_dtypes.items():
        if path in expected and path in actual:
            assert actual[path].dtype == dtype, f"{path}: dtype {actual[path].dtype}, expected {dtype}"
            expected[path] = replace(expected[path], dtype=dtype)
    problems = differences(expected, actual)
    assert not problems, f"{len(problems)} objects differ from anndata's file:\n  " + "\n  ".join(problems)
