"""annpage.write_loom and annpage.write_csvs (and the backed handle's) against anndata's own
writers on the same object: loom files read back equal, CSV files equal byte for byte."""

import warnings

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
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
        view = b[rows, a.var_names[::2]]
        view.write_loom(tmp_path / "ours.loom")
        view.write_csvs(tmp_path / "ours", skip_data=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want.write_loom(tmp_path / "theirs.loom")
    want.write_csvs(tmp_path / "theirs", skip_data=False)
    _same_loom(tmp_path / "ours.loom", tmp_path / "theirs.loom")
    _same_csvs(tmp_path / "ours", tmp_path / "theirs")


def test_bad_arguments_raise_before_anything_is_written(tmp_path):
    a = ad.AnnData(np.ones((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="sep"):
        annpage.write_csvs(a, tmp_path / "t", sep="::")
    assert not (tmp_path / "t").exists()
    # loom needs an X, as loompy does: one error naming the file, nothing left behind.
    with pytest.raises(annpage.AnnpageError, match="x.loom"):
        annpage.write_loom(ad.AnnData(obs=pd.DataFrame(index=["a", "b"])), tmp_path / "x.loom")
    assert list(tmp_path.iterdir()) == []
