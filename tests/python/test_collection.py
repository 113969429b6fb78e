"""`annpage.read_collection`: several files as one lazy AnnData, judged by `anndata.concat` of
the files read whole, then indexed."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal

import annpage
from conftest import ROOT

SRC = ROOT / "fixtures" / "pbmc_like_csr.h5ad"


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Three files of uneven size and overlapping, shuffled gene sets; a layer in two; index
    names."""
    tmp = tmp_path_factory.mktemp("parts")
    src = ad.read_h5ad(SRC)
    del src.raw
    cuts = [(slice(0, 700), slice(100, None)), (slice(700, 750), slice(899, None, -1)),
            (slice(750, None), np.arange(1000)[np.arange(1000) % 3 != 0])]
    paths, adatas = [], []
    for i, (cells, genes) in enumerate(cuts):
        a = src[cells, genes].copy()
        if i != 1:
            a.layers["counts"] = a.X.copy()
        # The cells' index names agree (kept by concat), the genes' do not (dropped).
        a.obs.index.name = "cell"
        a.var.index.name = "symbol" if i == 1 else "gene"
        p = tmp / f"part{i}.h5ad"
        a.write_h5ad(p)
        paths.append(p)
        adatas.append(ad.read_h5ad(p))
    return paths, adatas


OPTIONS = dict(join="outer", label="batch", keys=["p", "q", "r"], index_unique="-")


def expected(adatas, obs=slice(None), var=slice(None), **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.concat(adatas, **options)[obs, var].copy()


def test_collection_reads_like_concat_then_index(parts):
    paths, adatas = parts
    c = annpage.read_collection(paths, **OPTIONS, cache_mb=8)
    whole = expected(adatas, **OPTIONS)
    assert isinstance(c, annpage.BackedCollection)
    assert c.shape == whole.shape and c.filenames == [str(p) for p in paths]
    assert list(c.var_names) == list(whole.var_names)
    # The index names from metadata, before any annotation is read.
    assert (c.obs_names.name, c.var_names.name) == (whole.obs_names.name, whole.var_names.name)
    assert (whole.obs_names.name, whole.var_names.name) == ("cell", None)
    assert list(c.layers) == ["counts"]
    rng = np.random.default_rng(0)
    shuffled = rng.choice(whole.n_obs, 300, replace=False)
    for obs, var in [(slice(650, 800), [5, 1, 3]), (shuffled, np.arange(whole.n_vars)[::-7]),
                     (whole.obs["batch"] == "q", whole.var_names[:40])]:
        view = c[obs, var]
        exp = expected(adatas, obs, var, **OPTIONS)
        assert_equal(view.to_memory(), exp)
        x = view.X[:, :]
        assert sp.issparse(x) and (x != exp.X).nnz == 0
        blocks = [m for m, _, _ in view.chunked_X(64)]
        assert (sp.vstack(blocks) != exp.X).nnz == 0
        # Views of views compose.
        inner = view[10:20, 1:]
        assert_equal(inner.to_memory(), exp[10:20, 1:].copy())


def test_collection_batches_equal_anndata_concat_rows(parts):
    paths, adatas = parts
    c = annpage.read_collection(paths, **OPTIONS, cache_mb=8)
    whole = expected(adatas, **OPTIONS)
    view, want = c[100:], whole[100:]
    for layer in (None, "counts"):
        seen = []
        for x, rows in view.batches(128, chunk_size=32, preload_nchunks=6, seed=1, layer=layer):
            w = want.X[rows] if layer is None else want.layers[layer][rows]
            assert sp.issparse(x) and x.shape == w.shape and (x != w).nnz == 0
            seen.append(rows)
        np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(want.n_obs))


def test_collection_given_batches_equal_anndata_concat_rows(parts):
    paths, adatas = parts
    c = annpage.read_collection(paths, **OPTIONS, cache_mb=8)
    view, want = c[100:], expected(adatas, **OPTIONS)[100:]
    order = [np.random.default_rng(i).integers(0, want.n_obs, 50) for i in range(12)]
    for layer in (None, "counts"):
        for (x, rows), key in zip(view.batches_of(order, layer=layer), order):
            w = want.X[key] if layer is None else want.layers[layer][key]
            np.testing.assert_array_equal(rows, key)
            assert sp.issparse(x) and x.shape == w.shape and (x != w).nnz == 0


def test_collection_writes_and_opens_dicts(parts, tmp_path):
    paths, adatas = parts
    c = annpage.read_collection(dict(zip(["p", "q", "r"], paths)), join="outer", label="batch")
    out = tmp_path / "sub.h5ad"
    c[::3].write_h5ad(out, compression="gzip")
    exp = expected(adatas, slice(None, None, 3), join="outer", label="batch", keys=["p", "q", "r"])
    assert_equal(ad.read_h5ad(out), exp)
    dask_x = c.to_dask(chunk_rows=500).compute()
    assert (sp.csr_matrix(dask_x) != expected(adatas, join="outer").X).nnz == 0


def test_collection_writes_loom_and_csvs_as_anndata_writes_the_concatenation(parts, tmp_path):
    paths, adatas = parts
    c = annpage.read_collection(paths, **OPTIONS)
    sel = np.arange(0, c.n_obs, 7)
    c[sel].write_loom(tmp_path / "ours.loom")
    c[sel].write_csvs(tmp_path / "ours", skip_data=False)
    exp = expected(adatas, sel, **OPTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp.write_loom(tmp_path / "theirs.loom")
        got, want = ad.read_loom(tmp_path / "ours.loom"), ad.read_loom(tmp_path / "theirs.loom")
    assert_equal(got, want)
    exp.write_csvs(tmp_path / "theirs", skip_data=False)
    for name in ["obs.csv", "var.csv", "X.csv"]:
        assert (tmp_path / "ours" / name).read_bytes() == (tmp_path / "theirs" / name).read_bytes(), name


def test_collection_refusals(parts, tmp_path):
    paths, _ = parts
    with pytest.raises(OSError, match="missing.h5ad"):
        annpage.read_collection([paths[0], tmp_path / "missing.h5ad"])
    c = annpage.read_collection(paths)
    with pytest.raises(KeyError):
        c.layers["nope"]
    with pytest.raises(IndexError):
        c[c.n_obs + 5]


def test_keys_that_are_not_strings_stay_as_given(tmp_path):
    files = []
    for i, names in enumerate((["a", "b"], ["c"])):
        a = ad.AnnData(np.ones((len(names), 2), np.float32), obs=pd.DataFrame(index=names))
        files.append(tmp_path / f"{i}.h5ad")
        a.write_h5ad(files[-1])
    want = ad.concat([ad.read_h5ad(f) for f in files], label="batch", keys=[1, 2])
    c = annpage.read_collection(files, label="batch", keys=[1, 2])
    assert_equal(c.to_memory(), want)
    assert list(c.obs["batch"].cat.categories) == [1, 2]
    assert (c[c.obs["batch"] == 2].obs_names == ["c"]).all()


def test_the_whole_collection_keeps_unused_categories_as_concat_does(tmp_path):
    files = []
    for i in range(2):
        a = ad.AnnData(sp.csr_matrix(np.ones((3, 2), dtype=np.float32)))
        a.obs_names = [f"c{i}_{j}" for j in range(3)]
        a.obs["cat"] = pd.Categorical(["a", "b", "a"], categories=["a", "b", f"unused{i}"])
        files.append(tmp_path / f"{i}.h5ad")
        a.write_h5ad(files[-1])
    want = ad.concat([ad.read_h5ad(f) for f in files])
    c = annpage.read_collection(files)
    assert list(c.obs["cat"].cat.categories) == list(want.obs["cat"].cat.categories)
    assert_equal(c.to_memory(), want)
    c.write_h5ad(tmp_path / "whole.h5ad")
    assert_equal(ad.read_h5ad(tmp_path / "whole.h5ad"), want)
    # A view prunes them, as anndata's view copied does.
    assert_equal(c[[0, 4]].to_memory(), want[[0, 4]].copy())


def test_string_columns_keep_the_dtypes_anndata_concat_gives(tmp_path):
    files = []
    for i, genes in enumerate([["g0", "g1"], ["g1", "g2"]]):
        a = ad.AnnData(sp.csr_matrix(np.ones((2, 2), dtype=np.float32)))
        a.obs_names = [f"c{i}{j}" for j in range(2)]
        a.var_names = genes
        a.var["gid"] = [f"ID_{g}" for g in genes]
        if i == 0:
            a.obs["s"] = ["u", "v"]  # unique: stays strings in the file
        files.append(tmp_path / f"{i}.h5ad")
        a.write_h5ad(files[-1])
    want = ad.concat([ad.read_h5ad(f) for f in files], join="outer", merge="first")
    c = annpage.read_collection(files, join="outer", merge="first")
    assert c.obs["s"].dtype == want.obs["s"].dtype == object  # not the written categorical
    assert c.var["gid"].dtype == want.var["gid"].dtype
    assert_equal(c.to_memory(), want)
    assert_equal(c[[0, 2]].to_memory(), want[[0, 2]].copy())


def test_a_collection_refuses_as_dense_clearly(tmp_path):
    """A collection streams its files' matrices as stored; ``as_dense`` is refused by name."""
    with annpage.read_collection([SRC, SRC], index_unique="-") as c:
        with pytest.raises(NotImplementedError, match="as_dense"):
            c.write_h5ad(tmp_path / "dense.h5ad", as_dense="X")
