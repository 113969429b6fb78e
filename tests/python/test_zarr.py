"""annpage.read_zarr (and, once written, write_zarr) against anndata's Zarr stores."""

import os
import subprocess
import sys
import warnings

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal

import annpage

from conftest import ROOT

FIXTURE = ROOT / "fixtures" / "all_elements.h5ad"


def _anndata(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


@pytest.fixture(params=[(2, False), (3, False), (3, True)], ids=["v2", "v3", "v3-sharded"])
def store(request, tmp_path):
    """The fixture written by anndata; "v3-sharded" with anndata's automatic shards (zstd inner
    chunks: the layout annpage's range reads decode without zarrs)."""
    adata = _anndata(FIXTURE)
    path = tmp_path / "in.zarr"
    zarr_format, sharded = request.param
    with warnings.catch_warnings(), ad.settings.override(
        zarr_write_format=zarr_format, auto_shard_zarr_v3=sharded
    ):
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


def _dense(m):
    return m.toarray() if sp.issparse(m) else np.asarray(m)


def test_backed_zarr_batches_and_chunks_equal_anndata(store):
    expected = _anndata(FIXTURE)
    n = expected.n_obs
    with annpage.read_zarr(store, backed="r", cache_mb=1) as b:
        order = [np.array([5, 0, 3]), np.arange(n)[::-1], np.array([n - 1]), np.arange(0, n, 3)]
        got = list(b.batches_of(order))
        assert len(got) == len(order)
        for (x, rows), key in zip(got, order):
            np.testing.assert_array_equal(rows, key)
            np.testing.assert_array_equal(_dense(x), _dense(expected.X[key]))
        blocks = [_dense(m) for m, _, _ in b.chunked_X(7)]
    np.testing.assert_array_equal(np.vstack(blocks), _dense(expected.X))


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


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_write_zarr_chunks_a_dense_x_as_anndata(zarr_format, tmp_path):
    """``chunks`` (anndata's ``write_zarr(chunks=...)``) is the chunk shape of a dense X, in
    memory, backed, a view and transposed; an int is both axes, ``None`` a whole axis; a
    sparse X ignores it, as anndata does."""
    import zarr

    rng = np.random.default_rng(3)
    dense = ad.AnnData(rng.random((50, 12), dtype=np.float32))
    theirs = tmp_path / "theirs.zarr"
    with ad.settings.override(zarr_write_format=zarr_format):
        dense.write_zarr(theirs, chunks=(7, 5))

    def x_chunks(path):
        x = zarr.open(path, mode="r")["X"]
        return tuple(x.chunks)

    cases = [((7, 5), (7, 5)), (4, (4, 4)), ((None, 5), (50, 5)), ((9, -1), (9, 12))]
    for chunks, want in cases:
        path = tmp_path / f"ours{chunks}.zarr".replace(" ", "")
        annpage.write_zarr(dense, path, chunks=chunks, zarr_format=zarr_format)
        assert x_chunks(path) == want, chunks
        assert_equal(ad.read_zarr(path), dense)
    assert x_chunks(tmp_path / "ours(7,5).zarr") == x_chunks(theirs)
    h5 = tmp_path / "dense.h5ad"
    dense.write_h5ad(h5)
    with annpage.read_h5ad(h5, backed="r") as b:
        b[10:40, 2:9].write_zarr(tmp_path / "view.zarr", chunks=(6, 4), zarr_format=zarr_format)
        b.T.write_zarr(tmp_path / "t.zarr", chunks=(3, 8), zarr_format=zarr_format)
    assert x_chunks(tmp_path / "view.zarr") == (6, 4)
    assert_equal(ad.read_zarr(tmp_path / "view.zarr"), dense[10:40, 2:9].copy())
    assert x_chunks(tmp_path / "t.zarr") == (3, 8)
    assert_equal(ad.read_zarr(tmp_path / "t.zarr"), dense.T.copy())
    sparse = ad.AnnData(sp.random(20, 6, density=0.3, format="csr", dtype=np.float32, random_state=0))
    annpage.write_zarr(sparse, tmp_path / "sparse.zarr", chunks=(3, 3), zarr_format=zarr_format)
    assert_equal(ad.read_zarr(tmp_path / "sparse.zarr"), sparse)
    with pytest.raises(ValueError, match="chunks"):
        annpage.write_zarr(dense, tmp_path / "bad.zarr", chunks=(0, 3))


def test_write_zarr_refuses_lzf(tmp_path):
    with pytest.raises(ValueError, match="compression"):
        annpage.write_zarr(_anndata(FIXTURE), tmp_path / "x.zarr", compression="lzf")


def test_a_decoder_panic_on_a_corrupt_chunk_is_an_exception_alone(tmp_path):
    """zarrs' vlen-utf8 decoder panics on a name longer than its chunk: Python gets a
    FormatError naming the file and element, and nothing is printed on stderr (run without
    RUST_BACKTRACE, as a user does: with it, Rust's report is printed too)."""
    path = tmp_path / "in.zarr"
    annpage.write_zarr(_anndata(FIXTURE), path, zarr_format=2)
    chunk = path / "var" / "_index" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[4:8] = (0xFFFF).to_bytes(4, "little")  # the first name's length (no compressor)
    chunk.write_bytes(bytes(raw))
    script = (
        "import sys, annpage\n"
        "try:\n"
        "    annpage.read_zarr(sys.argv[1])\n"
        "except annpage.FormatError as e:\n"
        "    print(e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert str(path) in run.stdout and "/var/_index" in run.stdout and "decoder failed" in run.stdout, run.stdout
    assert "panicked" not in run.stderr, run.stderr


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_elements_anndata_reads_itself_read_from_zarr(zarr_format, tmp_path):
    """What annpage hands to anndata's own reader (awkward arrays) and what it decodes itself
    (record arrays, None) read from Zarr stores, in memory and backed."""
    ak = pytest.importorskip("awkward", reason="awkward arrays need the awkward package")
    a = ad.AnnData(np.ones((3, 2), dtype=np.float32))
    a.obsm["awk"] = ak.Array([[1, 2], [], [3]])
    a.uns["param"] = None
    a.uns["rank"] = {"names": np.rec.fromarrays([np.array(["a", "bb"]), np.array(["c", "d"])], names=["g0", "g1"])}
    path = tmp_path / "in.zarr"
    with warnings.catch_warnings(), ad.settings.override(zarr_write_format=zarr_format):
        warnings.simplefilter("ignore")
        a.write_zarr(path)
        expected = ad.read_zarr(path)
    assert_equal(annpage.read_zarr(path), expected)
    b = annpage.read_zarr(path, backed="r")
    assert_equal(b.to_memory(), expected)
    assert b.uns["param"] is None
    assert list(b.uns["rank"]["names"]["g1"]) == ["c", "d"]
