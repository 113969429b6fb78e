"""annpage.write_loom and annpage.write_csvs (and the backed handle's) against anndata's own
writers on the same object: loom files read back equal, CSV files equal byte for byte."""

import warnings

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal

import annpage

from conftest import ROOT

LOOM = ["pbmc_like_csr", "x_dense_f32", "x_csr_i64", "obs_var_columns", "unicode"]
CSVS = ["pbmc_like_csr", "x_dense_f64", "obs_var_columns", "nullable_strings", "uns_special"]


def _read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


def _same_loom(ours, theirs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, want = ad.read_loom(ours), ad.read_loom(theirs)
    assert_equal(got, want)
    assert list(got.obs.columns) == list(want.obs.columns)
    assert list(got.obsm) == list(want.obsm)
    with h5py.File(ours) as f, h5py.File(theirs) as g:
        assert f["matrix"].dtype == g["matrix"].dtype


def _same_csvs(ours, theirs):
    files = sorted(p.relative_to(theirs) for p in theirs.rglob("*.csv"))
    # anndata writes nested uns mappings as a Python repr; annpage leaves them out.
    ours_files = sorted(p.relative_to(ours) for p in ours.rglob("*.csv"))
    assert set(ours_files) <= set(files) and "obs.csv" in {p.name for p in ours_files}
    for p in ours_files:
        assert (ours / p).read_bytes() == (theirs / p).read_bytes(), p
    return ours_files


def _writes_as_anndata(ours, want, tmp_path, loom=None, csvs=None):
    """Writes `ours` (an annpage handle or view) and anndata's `want` as a loom file and CSV
    files (`loom` / `csvs`: the writers' arguments, the same for both) and compares them;
    returns the CSV files written."""
    loom, csvs = loom or {}, {"skip_data": False, **(csvs or {})}
    ours.write_loom(tmp_path / "ours.loom", **loom)
    ours.write_csvs(tmp_path / "ours", **csvs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want.write_loom(tmp_path / "theirs.loom", **loom)
    want.write_csvs(tmp_path / "theirs", **csvs)
    _same_loom(tmp_path / "ours.loom", tmp_path / "theirs.loom")
    return _same_csvs(tmp_path / "ours", tmp_path / "theirs")


@pytest.mark.parametrize("name", LOOM)
@pytest.mark.parametrize("obsm", [False, True], ids=["", "obsm"])
def test_write_loom_reads_back_as_anndatas(tmp_path, name, obsm):
    a = _read(ROOT / "fixtures" / f"{name}.h5ad")
    if obsm and any(not isinstance(v, np.ndarray) for v in [*a.obsm.values(), *a.varm.values()]):
        obsm = False  # loompy stores only dense arrays; anndata's writer fails on the others
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.write_loom(tmp_path / "theirs.loom", write_obsm_varm=obsm)
    annpage.write_loom(a, tmp_path / "ours.loom", write_obsm_varm=obsm)
    _same_loom(tmp_path / "ours.loom", tmp_path / "theirs.loom")


@pytest.mark.parametrize("name", CSVS)
@pytest.mark.parametrize("skip_data,sep", [(True, ","), (False, "\t")])
def test_write_csvs_writes_anndatas_bytes(tmp_path, name, skip_data, sep):
    a = _read(ROOT / "fixtures" / f"{name}.h5ad")
    a.write_csvs(tmp_path / "theirs", skip_data=skip_data, sep=sep)
    annpage.write_csvs(a, tmp_path / "ours", skip_data=skip_data, sep=sep)
    written = _same_csvs(tmp_path / "ours", tmp_path / "theirs")
    assert (tmp_path / "ours" / "X.csv").exists() == (not skip_data), written


def test_write_csvs_writes_uns_record_arrays_as_anndata(tmp_path):
    """scanpy's rank_genes_groups results are record arrays: annpage's package writes them as
    anndata does (pandas' frame of the records, no header)."""
    a = ad.AnnData(np.arange(6, dtype=np.float32).reshape(3, 2))
    a.uns["names"] = np.rec.fromarrays([np.array(["g1", "g0"]), np.array(["g0", "g1"])], names="a,b")
    a.uns["scores"] = np.rec.fromarrays([np.array([1.5, 0.25])], names="a")
    a.uns["n"] = 3
    a.write_csvs(tmp_path / "theirs.csv", skip_data=False)
    annpage.write_csvs(a, tmp_path / "ours.csv", skip_data=False)
    written = _same_csvs(tmp_path / "ours", tmp_path / "theirs")
    assert {p.name for p in written} >= {"names.csv", "scores.csv", "n.csv", "X.csv"}
    assert not [p for p in (tmp_path / "ours").rglob(".*")]


def test_a_backed_selection_writes_what_anndata_writes_for_it(tmp_path):
    path = ROOT / "fixtures" / "pbmc_like_csr.h5ad"
    a = _read(path)
    rows = a.obs["cell_type"] == a.obs["cell_type"].iloc[0] if "cell_type" in a.obs else slice(0, 10)
    want = a[rows, a.var_names[::2]].copy()
    with annpage.read_h5ad(path, backed="r") as b:
        _writes_as_anndata(b[rows, a.var_names[::2]], want, tmp_path)


def test_bad_arguments_raise_before_anything_is_written(tmp_path):
    a = ad.AnnData(np.ones((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="sep"):
        annpage.write_csvs(a, tmp_path / "t", sep="::")
    assert not (tmp_path / "t").exists()
    # loom needs an X, as loompy does: one error naming the file, nothing left behind.
    with pytest.raises(annpage.AnnpageError, match="x.loom"):
        annpage.write_loom(ad.AnnData(obs=pd.DataFrame(index=["a", "b"])), tmp_path / "x.loom")
    assert list(tmp_path.iterdir()) == []


def _stored_by_columns(path, n_obs=300, n_vars=700):
    """A file with a CSC X, a dense int layer, dense, 1-d, sparse and data-frame obsm values and
    a dense varm, as anndata writes it."""
    rng = np.random.default_rng(5)
    x = sp.random(n_obs, n_vars, density=0.05, format="csc", dtype=np.float32, random_state=rng)
    a = ad.AnnData(
        x,
        obs=pd.DataFrame({"group": pd.Categorical(rng.choice(["a", "b", "c"], n_obs))},
                         index=[f"c{i}" for i in range(n_obs)]),
        var=pd.DataFrame({"mean": rng.random(n_vars)}, index=[f"g{i}" for i in range(n_vars)]),
    )
    a.layers["counts"] = rng.integers(0, 5, (n_obs, n_vars)).astype(np.int32)
    a.obsm["X_pca"] = rng.random((n_obs, 3)).astype(np.float32)
    a.obsm["sparse"] = sp.random(n_obs, 4, density=0.3, format="csr", random_state=rng)
    a.obsm["frame"] = pd.DataFrame({"u": np.arange(n_obs)}, index=a.obs_names)
    a.varm["loadings"] = rng.random((n_vars, 2))
    a.write_h5ad(path)
    return a


@pytest.mark.parametrize("name", ["stored_by_columns", "pbmc_like_csr", "x_dense_f32", "unicode"])
def test_backed_writers_read_a_block_at_a_time_and_write_what_anndata_writes(tmp_path, name):
    """With a 1 MiB cache the backed writers read hundreds of small blocks (of genes, for a
    CSC matrix): a selection with repeated, unsorted cells and a cut of the genes gives the
    files anndata writes for the same selection in memory."""
    path = tmp_path / "in.h5ad"
    if name == "stored_by_columns":
        a = _stored_by_columns(path)
    else:
        path = ROOT / "fixtures" / f"{name}.h5ad"
        a = _read(path)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, a.n_obs, a.n_obs + 7)
    cols = np.sort(rng.choice(a.n_vars, max(1, a.n_vars * 2 // 3), replace=False))
    want = a[rows, cols].copy()
    dense_only = all(isinstance(v, np.ndarray) for v in [*a.obsm.values(), *a.varm.values()])
    # annpage leaves sparse and data-frame obsm values out; anndata's writers fail on the
    # first (len() of a sparse matrix) and write unreadable text for the second.
    for key in [k for k, v in want.obsm.items() if not isinstance(v, np.ndarray)]:
        del want.obsm[key]
    with annpage.read_h5ad(path, backed="r", cache_mb=1) as b:
        written = _writes_as_anndata(
            b[rows, cols], want, tmp_path, loom={"write_obsm_varm": dense_only}, csvs={"sep": "\t"}
        )
    assert {"X.csv", "obsm.csv", "varm.csv"} <= {p.name for p in written}


def test_backed_writers_write_changes_not_yet_saved(tmp_path):
    """An r+ handle's pending changes (a new obs column, a new layer) are in what it writes."""
    path = tmp_path / "in.h5ad"
    a = _stored_by_columns(path, 50, 80)
    with annpage.read_h5ad(path, backed="r+") as b:
        b.obs["score"] = np.arange(50, dtype=np.float64)
        b.layers["twice"] = a.X * 2
        a.obs["score"] = np.arange(50, dtype=np.float64)
        a.layers["twice"] = a.X * 2
        del a.obsm["sparse"], a.obsm["frame"]  # left out by annpage (see above)
        _writes_as_anndata(b, a, tmp_path, csvs={"skip_data": True})


def test_a_backed_write_that_fails_leaves_nothing_and_raises_annpages_error(tmp_path):
    """A chunk of X that does not inflate: the error is annpage's, naming the input file and
    element, and neither the CSV directory nor the loom file is left behind."""
    path = tmp_path / "corrupt.h5ad"
    a = ad.AnnData(np.random.default_rng(2).random((400, 300)).astype(np.float32))
    a.write_h5ad(path, compression="gzip")
    with h5py.File(path, "r") as f:
        info = f["X"].id.get_chunk_info(f["X"].id.get_num_chunks() - 1)
    with open(path, "r+b") as f:
        f.seek(info.byte_offset + 8)
        f.write(b"\xff" * 64)
    with annpage.read_h5ad(path, backed="r", cache_mb=1) as b:
        for write in [lambda: b.write_csvs(tmp_path / "out", skip_data=False),
                      lambda: b.write_loom(tmp_path / "out.loom")]:
            with pytest.raises(annpage.FormatError, match=r"corrupt\.h5ad: /X"):
                write()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.h5ad"]


@pytest.mark.parametrize("name", ["stored_by_columns", "pbmc_like_csr", "x_dense_f32"])
def test_a_transposed_selection_writes_what_anndata_writes_for_its_transpose(tmp_path, name):
    """b.T.write_loom / write_csvs (genes as cells), a block at a time through a 1 MiB cache,
    equal anndata's writers on adata[rows, cols].T."""
    path = tmp_path / "in.h5ad"
    if name == "stored_by_columns":
        a = _stored_by_columns(path, 120, 300)
    else:
        path = ROOT / "fixtures" / f"{name}.h5ad"
        a = _read(path)
    rows, cols = np.arange(0, a.n_obs, 2), np.arange(a.n_vars)[::-1]
    want = a[rows, cols].copy().T
    for key in [k for k, v in want.obsm.items() if not isinstance(v, np.ndarray)]:
        del want.obsm[key]  # left out by annpage (see above)
    for key in [k for k, v in want.varm.items() if not isinstance(v, np.ndarray)]:
        del want.varm[key]
    with annpage.read_h5ad(path, backed="r", cache_mb=1) as b:
        written = _writes_as_anndata(b[rows, cols].T, want, tmp_path)
    assert {"X.csv", "obs.csv", "var.csv"} <= {p.name for p in written}
