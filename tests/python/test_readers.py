"""annpage.read_mtx, read_10x_mtx, read_10x_h5 and read_csv return what anndata's and scanpy's
readers return on the same files (the files are made by the interop tests' generators)."""

import sys
import warnings

import anndata as ad
import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal

import annpage

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "interop"))
from format_files import gzip_file, tenx_dir, write_10x_group  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import scanpy as sc


def _same(got, want):
    assert_equal(got, want)
    assert list(got.obs_names) == list(want.obs_names)
    assert list(got.var_names) == list(want.var_names)
    assert list(got.var.columns) == list(want.var.columns)
    assert type(got.X) is type(want.X)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_read_mtx(tmp_path, dtype):
    m = sp.random(30, 20, density=0.2, format="coo", random_state=3)
    m.data = np.round(m.data * 100)
    path = tmp_path / "m.mtx"
    scipy.io.mmwrite(path, m, field="integer")
    path = gzip_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same(annpage.read_mtx(path, dtype=dtype), ad.read_mtx(path, dtype=dtype))


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize(
    "kwargs", [{}, {"var_names": "gene_ids"}, {"make_unique": False}, {"gex_only": False}], ids=str
)
def test_read_10x_mtx(tmp_path, legacy, kwargs):
    d = tenx_dir(tmp_path, legacy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same(annpage.read_10x_mtx(d, **kwargs), sc.read_10x_mtx(d, **kwargs))


@pytest.mark.parametrize("kwargs", [{}, {"gex_only": False}, {"genome": "GRCh38"}], ids=str)
def test_read_10x_h5(tmp_path, kwargs):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        write_10x_group(f.create_group("matrix"), np.random.default_rng(4), True, 20, 13)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same(annpage.read_10x_h5(path, **kwargs), sc.read_10x_h5(path, **kwargs))
    with pytest.raises(annpage.AnnpageError, match="no genome 'hg19'"):
        annpage.read_10x_h5(path, genome="hg19")


@pytest.mark.parametrize("delimiter", [",", "\t", None])
def test_read_csv(tmp_path, delimiter):
    sep = delimiter or "  "
    path = tmp_path / "t.txt"
    path.write_text(f"x{sep}g1{sep}g2\nc1{sep}1{sep}0.5\nc2{sep}3{sep}1e-7\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ad.read_csv(path, delimiter=delimiter) if delimiter else ad.read_text(path)
    _same(annpage.read_csv(path, delimiter=delimiter), want)


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n2 2 1\n1 9 1\n")
    with pytest.raises(annpage.AnnpageError, match=r"bad\.mtx.*line 3.*column 9"):
        annpage.read_mtx(path)


def test_a_missing_10x_directory_or_file_is_not_found(tmp_path):
    # scanpy raises FileNotFoundError for both.
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        annpage.read_10x_mtx(tmp_path / "no_such_dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no matrix\.mtx"):
        annpage.read_10x_mtx(tmp_path / "empty")


@pytest.mark.parametrize("sparse", [True, False])
def test_read_loom(tmp_path, sparse):
    import loompy

    rng = np.random.default_rng(6)
    main = rng.poisson(1.0, (12, 7)).astype(np.float32)
    path = tmp_path / "v.loom"
    loompy.create(
        str(path),
        {"": main, "spliced": main + 1},
        row_attrs={"Gene": np.array([f"g{i}" for i in range(12)])},
        col_attrs={"CellID": np.array([f"c{i}" for i in range(7)]), "umap": rng.random((7, 2))},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same(annpage.read_loom(path, sparse=sparse), ad.read_loom(path, sparse=sparse))
        _same(annpage.read_loom(path, X_name=""), ad.read_loom(path, X_name=""))


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_real_matrix_market_values_read_as_integers_as_anndata_truncates_them(tmp_path, dtype):
    path = tmp_path / "r.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n3 2 4\n1 2 5.7\n2 1 -2.5\n3 2 0.4\n1 2 1.6\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ad.io.read_mtx(path, dtype=dtype)
    got = annpage.read_mtx(path, dtype=dtype)
    assert got.X.dtype == expected.X.dtype
    np.testing.assert_array_equal(got.X.toarray(), expected.X.toarray())
