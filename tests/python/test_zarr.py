"""annpage.read_zarr (and, once written, write_zarr) against anndata's Zarr stores."""

import warnings

import anndata as ad
import numpy as np
import pytest
from anndata.tests.helpers import assert_equal

import annpage

from conftest import ROOT

FIXTURE = ROOT / "fixtures" / "all_elements.h5ad"


def _anndata(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


@pytest.fixture(params=[2, 3], ids=["v2", "v3"])
def store(request, tmp_path):
    adata = _anndata(FIXTURE)
    path = tmp_path / "in.zarr"
    with warnings.catch_warnings(), ad.settings.override(zarr_write_format=request.param):
        warnings.simplefilter("ignore")
        adata.write_zarr(path, convert_strings_to_categoricals=False)
    return path


def test_read_zarr_equals_anndata(store):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ad.read_zarr(store)
    got = annpage.read_zarr(store)
    assert isinstance(got, ad.AnnData)
    assert_equal(got, expected)


def test_backed_zarr_reads_slices_like_memory(store):
    expected = _anndata(FIXTURE)
    with annpage.read_zarr(store, backed="r", cache_mb=4) as b:
        assert b.shape == expected.shape
        view = b[[5, 0, 3, 7], ::2]
        got = view.to_memory()
    # anndata cannot take rows and a column slice in one step of this object: in two.
    assert_equal(got, expected[[5, 0, 3, 7]].copy()[:, ::2].copy())
    np.testing.assert_array_equal(got.obs_names, expected.obs_names[[5, 0, 3, 7]])


def test_read_zarr_refuses_a_file(tmp_path):
    with pytest.raises(ValueError, match="not a Zarr store"):
        annpage.read_zarr(FIXTURE)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
def test_write_zarr_reads_back_in_anndata(zarr_format, compression, tmp_path):
    expected = _anndata(FIXTURE)
    path = tmp_path / "out.zarr"
    annpage.write_zarr(expected, path, zarr_format=zarr_format, compression=compression, chunk_rows=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ad.read_zarr(path)
    assert_equal(got, expected)


def test_backed_write_zarr_streams_a_view(tmp_path):
    expected = _anndata(FIXTURE)[::3].copy()[:, [0, 5, 2]].copy()
    path = tmp_path / "view.zarr"
    with annpage.read_h5ad(FIXTURE, backed="r") as b:
        b[::3, [0, 5, 2]].write_zarr(path, zarr_format=3, shard_rows=8, chunk_rows=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ad.read_zarr(path)
    assert_equal(got, expected)


def test_write_zarr_refuses_lzf(tmp_path):
    with pytest.raises(ValueError, match="compression"):
        annpage.write_zarr(_anndata(FIXTURE), tmp_path / "x.zarr", compression="lzf")
