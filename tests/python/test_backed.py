"""annpage.read_h5ad(path, backed="r"): lazy selections equal anndata's on the same files."""

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal

import annpage

from conftest import FIXTURES, ROOT

CURRENT = [p for p in FIXTURES if p.parent.name == "fixtures"]
PBMC = ROOT / "fixtures" / "pbmc_like_csr.h5ad"


def _anndata(path, backed=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path, backed=backed)


def _same(got, want):
    if sp.issparse(want):
        assert sp.issparse(got) and got.format == want.format, (type(got), type(want))
        got, want = got.toarray(), want.toarray()
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_names_are_anndatas_without_reading_the_frames(path):
    want = _anndata(path)
    with annpage.read_h5ad(path, backed="r") as b:
        pd.testing.assert_index_equal(b.obs_names, want.obs_names)
        pd.testing.assert_index_equal(b.var_names, want.var_names)
        assert b._obs is None and b._var is None  # neither frame read for its index
        view = b[2:5]
        pd.testing.assert_index_equal(view.obs_names, want.obs_names[2:5])


@pytest.mark.parametrize("path", CURRENT, ids=lambda p: p.name)
def test_whole_file_to_memory_equals_anndata(path):
    with annpage.read_h5ad(path, backed="r") as b:
        assert b.isbacked and not b.is_view
        want = _anndata(path)
        assert b.shape == want.shape
        assert list(b.obs_names) == list(want.obs_names)
        assert list(b.var_names) == list(want.var_names)
        pd.testing.assert_frame_equal(b.obs, want.obs)
        assert_equal(b.to_memory(), want)
        # The keys anndata's object lists, from metadata.
        assert (b.obs_keys(), b.var_keys()) == (want.obs_keys(), want.var_keys())
        assert sorted(b.obsm_keys()) == sorted(want.obsm_keys())
        assert sorted(b.uns_keys()) == sorted(want.uns_keys())


def _keys(n_obs, n_vars, obs_names, rng):
    obs = [
        slice(None, None, 2),
        slice(-5, None),
        slice(None, None, -3),
        rng.permutation(n_obs)[: max(1, n_obs // 3)],
        np.array([0, 0, n_obs - 1, -1]),
        rng.random(n_obs) < 0.4,
        list(obs_names[[1, 0, 3]]),
        pd.Index(obs_names[2:6]),
        3,
    ]
    var = [None, slice(1, None), rng.permutation(n_vars)[: max(1, n_vars // 2)], rng.random(n_vars) < 0.5]
    return obs, var


@pytest.mark.parametrize("path", [PBMC, ROOT / "fixtures" / "all_elements.h5ad", ROOT / "fixtures" / "x_csc_f64.h5ad",
                                  ROOT / "fixtures" / "x_dense_f32.h5ad"], ids=lambda p: p.name)
def test_selections_equal_anndata(path):
    rng = np.random.default_rng(7)
    want_all = _anndata(path)
    b = annpage.read_h5ad(path, backed="r", cache_mb=4)
    obs_keys, var_keys = _keys(*want_all.shape, want_all.obs_names, rng)
    for o in obs_keys:
        for v in var_keys:
            key = o if v is None else (o, v)
            view = b[key]
            want = want_all[key].copy()
            assert view.shape == want.shape, key
            assert_equal(view.to_memory(), want)
            _same(view.X[:, :], want.X)


def test_views_of_views_compose():
    want_all = _anndata(PBMC)
    b = annpage.read_h5ad(PBMC, backed="r")
    mask = b.obs["cell_type"] == b.obs["cell_type"].iloc[0]
    v = b[mask][::2, 3:][[1, 0, 2]]
    want = want_all[mask.to_numpy()][::2, 3:][[1, 0, 2]].copy()
    assert v.is_view
    assert_equal(v.to_memory(), want)


def test_x_reads_rows_and_columns_as_stored():
    want = _anndata(PBMC, backed="r")
    b = annpage.read_h5ad(PBMC, backed="r")
    assert b.X.shape == want.X.shape and b.X.dtype == want.X.dtype
    rows = np.array([5, 1, 7])
    _same(b.X[rows], _anndata(PBMC).X[rows])
    _same(b.X[2:9, [0, 4]], _anndata(PBMC).X[2:9][:, [0, 4]])


@pytest.mark.parametrize("path", [PBMC, ROOT / "fixtures" / "x_dense_i32.h5ad"], ids=lambda p: p.name)
def test_int_keys_shape_results_as_anndata_does(path):
    """An int drops its axis from a dense result (numpy's rule, anndata's backed X follows it);
    two ints give one value, for sparse X too."""
    want = _anndata(path, backed="r").X
    got = annpage.read_h5ad(path, backed="r").X
    for key in (3, -1, (slice(None), 1), (slice(2, 6), np.int64(0)), (np.int32(4), [0, 2])):
        w, g = want[key], got[key]
        assert type(g) is type(w) and g.shape == w.shape, key
        _same(g, w)
    assert got[2, 1] == want[2, 1] and np.ndim(got[2, 1]) == 0


@pytest.mark.parametrize("path", [PBMC, ROOT / "fixtures" / "x_csc_f64.h5ad", ROOT / "fixtures" / "x_dense_i32.h5ad"],
                         ids=lambda p: p.name)
def test_chunked_x_yields_what_anndata_yields(path):
    want = list(_anndata(path, backed="r").chunked_X(7))
    got = list(annpage.read_h5ad(path, backed="r").chunked_X(7))
    assert [(s, e) for _, s, e in got] == [(s, e) for _, s, e in want]
    for (g, _, _), (w, _, _) in zip(got, want):
        _same(g, w)


def test_chunk_x_samples_rows_like_anndata():
    b, a = annpage.read_h5ad(PBMC, backed="r"), _anndata(PBMC, backed="r")
    np.random.seed(3)
    want = a.chunk_X(20)
    np.random.seed(3)
    got = b.chunk_X(20)
    np.testing.assert_array_equal(got, want)
    rows = np.array([4, 4, 1, 9])
    np.testing.assert_array_equal(b.chunk_X(rows), a.chunk_X(rows))


@pytest.mark.parametrize("path", [PBMC, ROOT / "fixtures" / "x_csc_f64.h5ad", ROOT / "fixtures" / "x_dense_i32.h5ad"],
                         ids=lambda p: p.name)
def test_batches_take_every_row_once_with_anndatas_values(path):
    a = ad.read_h5ad(path)
    b = annpage.read_h5ad(path, backed="r")
    view, want = b[5:], a[5:]
    seen = []
    for x, rows in view.batches(16, chunk_size=8, preload_nchunks=3, seed=2):
        assert rows.dtype == np.int64 and x.shape[0] == rows.size <= 16
        _same(x, want.X[rows])
        # a batch mixes the runs of one group of 3 runs of 8 rows (two across a boundary)
        assert np.unique(rows // 8).size <= 6
        seen.append(rows)
    seen = np.concatenate(seen)
    np.testing.assert_array_equal(np.sort(seen), np.arange(want.n_obs))
    assert not np.array_equal(seen, np.arange(want.n_obs))
    again = np.concatenate([r for _, r in view.batches(16, chunk_size=8, preload_nchunks=3, seed=2)])
    np.testing.assert_array_equal(again, seen)
    in_order = [r for _, r in view.batches(10, shuffle=False, drop_last=True)]
    assert len(in_order) == want.n_obs // 10
    np.testing.assert_array_equal(np.concatenate(in_order), np.arange(len(in_order) * 10))
    assert len(view.batches(16, chunk_size=8)) == -(-want.n_obs // 16)
    assert len(view.batches(16, drop_last=True)) == want.n_obs // 16
    # A numpy Generator gives another order each call, reproducible from its seed.
    g = np.random.default_rng(0)
    first, second = ([r for _, r in view.batches(16, seed=g)] for _ in range(2))
    assert not all(np.array_equal(a, c) for a, c in zip(first, second))
    again = [r for _, r in view.batches(16, seed=np.random.default_rng(0))]
    assert all(np.array_equal(a, c) for a, c in zip(first, again))
    for bad in (dict(batch_size=0), dict(chunk_size=-1), dict(preload_nchunks=1.5), dict(seed=-1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            b.batches(**bad)


def test_given_batches_equal_anndatas_rows_on_a_compressed_copy(tmp_path):
    a = ad.read_h5ad(PBMC)
    gz = tmp_path / "gz.h5ad"
    a.write_h5ad(gz, compression="gzip")
    b = annpage.read_h5ad(gz, backed="r", cache_mb=1)
    view, want = b[5:], a[5:]
    rng = np.random.default_rng(4)
    n = want.n_obs
    mask = np.zeros(n, dtype=bool)
    mask[::7] = True
    order = [rng.integers(0, n, 40) for _ in range(30)] + [[-1, 0], mask, want.obs_names[[3, 2]], slice(4, 9)]
    batches = view.batches_of(order)
    assert len(batches) == len(order)
    for (x, rows), key in zip(batches, order):
        w = want[key]
        np.testing.assert_array_equal(want.obs_names[rows], w.obs_names)
        _same(x, w.X)
    for x, rows in b.batches_of([[1, 2]], layer=None):
        _same(x, a.X[rows])
    with pytest.raises(IndexError):
        view.batches_of([[0], [n]])
    with pytest.raises(KeyError):
        b.batches_of([[0]], layer="nope")


def test_batches_of_a_layer():
    path = ROOT / "fixtures" / "all_elements.h5ad"
    a, b = ad.read_h5ad(path), annpage.read_h5ad(path, backed="r")
    n = 0
    for x, rows in b.batches(7, layer="counts", chunk_size=3, preload_nchunks=2, seed=1):
        _same(x, a.layers["counts"][rows])
        n += rows.size
    assert n == a.n_obs
    with pytest.raises(KeyError):
        b.batches(4, layer="nope")


def test_lazy_mappings_and_uns():
    path = ROOT / "fixtures" / "all_elements.h5ad"
    b, want = annpage.read_h5ad(path, backed="r"), _anndata(path)
    assert list(b.obsm) == list(want.obsm) and list(b.layers) == list(want.layers)
    for k in want.obsm:
        got = b.obsm[k]
        if isinstance(want.obsm[k], pd.DataFrame):
            pd.testing.assert_frame_equal(got, want.obsm[k])
        else:
            _same(got, want.obsm[k])
    for k in want.layers:
        _same(b.layers[k], want.layers[k])
    assert_equal(b.uns, want.uns)
    with pytest.raises(KeyError):
        b.layers["nope"]


def test_write_h5ad_streams_the_selection(tmp_path):
    b = annpage.read_h5ad(PBMC, backed="r", cache_mb=2)
    out = tmp_path / "sub.h5ad"
    b[::3, :10].write_h5ad(out, compression="gzip")
    assert_equal(_anndata(out), _anndata(PBMC)[::3, :10].copy())


def test_bad_keys_and_closed_handles_fail_as_python_users_expect():
    b = annpage.read_h5ad(PBMC, backed="r")
    n = b.n_obs
    with pytest.raises(IndexError):
        b[n]
    with pytest.raises(IndexError):
        b[np.ones(n + 1, dtype=bool)]
    with pytest.raises(IndexError):  # would wrap to -1 as int64
        b[np.array([2**64 - 1], dtype=np.uint64)]
    with pytest.raises(KeyError):
        b[["no such cell"]]
    with pytest.raises(ValueError):
        annpage.read_h5ad(PBMC, backed="w")
    with pytest.raises(ValueError, match="cache_mb must be between 0 and"):
        annpage.read_h5ad(PBMC, backed="r", cache_mb=-1)
    with pytest.raises(annpage.AnnpageError):
        annpage.read_h5ad(ROOT / "README.md", backed="r")
    b.close()
    # As anndata's closed backed object: its shape (and len, bool) still answer, reads fail.
    assert b.shape == (n, b.n_vars) and len(b) == n and bool(b)
    with pytest.raises(ValueError, match="closed"):
        b.X
    with pytest.raises(ValueError, match="closed"):
        b.obs
    assert "closed" in repr(b)


_PASS = """
import resource, sys
import annpage
read = annpage.read_zarr if sys.argv[1].endswith(".zarr") else annpage.read_h5ad
b = read(sys.argv[1], backed="r", cache_mb=16)
total = 0.0
if sys.argv[2] == "pass":
    for m, start, end in b.chunked_X(2000):
        total += float(m.sum())
print(total)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


@pytest.mark.parametrize("store", ["h5ad", "zarr"])
def test_a_pass_over_a_file_larger_than_the_budget_stays_within_it(tmp_path, store):
    """`chunked_X` over a file, or its Zarr copy (v3, sharded zstd), several times the budget."""
    import os
    import subprocess
    import sys

    path = tmp_path / "big.h5ad"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_big_h5ad.py"), str(path), "--cells", "40000", "--genes", "4000",
         "--nnz", "300"],
        check=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import h5py

        with h5py.File(path, "r") as f:
            x_mb = sum(f["X"][k].size * f["X"][k].dtype.itemsize for k in ("data", "indices")) / 2**20
    assert x_mb >= 4 * 16, x_mb
    # The Zarr readers' fixed buffers outside the cache: two arrays' pools of spare chunk
    # mappings (4 MiB each) and each decoding thread's kept scratch (4 MiB).
    fixed_mb = 0
    if store == "zarr":
        h5ad, path = path, tmp_path / "big.zarr"
        with annpage.read_h5ad(h5ad, backed="r", cache_mb=16) as b:
            b.write_zarr(path, compression="zstd")
        fixed_mb = 2 * 4 + 4 * ((os.cpu_count() or 1) + 1)

    def run(mode):
        out = subprocess.run([sys.executable, "-c", _PASS, str(path), mode], capture_output=True, text=True, check=True)
        total, peak = out.stdout.split()
        return float(total), float(peak)

    _, base = run("open")
    total, peak = run("pass")
    want = float(_anndata(h5ad if store == "zarr" else path).X.sum(dtype=np.float64))
    assert total == pytest.approx(want, rel=1e-6)
    # A chunk of 2,000 rows (~300 values each) as read and as scipy holds it, and the budget.
    chunk_mb = 2000 * 300 * 16 / 2**20
    assert peak - base <= 16 + 2 * chunk_mb + 16 + fixed_mb, (
        f"peak {peak:.0f} MiB, {base:.0f} MiB after opening, X {x_mb:.0f} MiB"
    )


def _owner(a):
    """The object that owns an array's memory (the end of its chain of bases)."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


@pytest.mark.parametrize("kind", ["csr", "dense"])
def test_chunks_lent_to_python_are_never_overwritten_while_held(tmp_path, kind):
    """A pass larger than the cache reads each chunk into the buffers of a chunk Python has
    dropped: chunks still held, or written to before being dropped, must not show through."""
    import subprocess
    import sys

    path = tmp_path / "lent.h5ad"
    if kind == "csr":
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_big_h5ad.py"), str(path), "--cells", "20000", "--genes",
             "3000", "--nnz", "150"],
            check=True,
        )
    else:
        x = np.random.default_rng(5).random((20000, 256), dtype=np.float32)
        ad.AnnData(X=x).write_h5ad(path)
    want = _anndata(path).X
    # Chunks of 2,000 rows (over 1 MB): each read whole, as a pass larger than the cache does;
    # through one file and through a collection of the file twice.
    _check_lent(annpage.read_h5ad(path, backed="r", cache_mb=1).chunked_X(2000), want, kind)
    both = sp.vstack([want, want]).tocsr() if kind == "csr" else np.vstack([want, want])
    _check_lent(annpage.read_collection([path, path], cache_mb=1).chunked_X(2000), both, kind)


def _check_lent(chunks, want, kind):
    held, lent, dropped, reused = [], 0, set(), 0
    for i, (m, start, end) in enumerate(chunks):
        _same(m, want[start:end])
        parts = [m.data, m.indices] if kind == "csr" else [m]
        assert all(p.flags.writeable for p in parts)
        lent += type(_owner(parts[0])).__name__ == "Lent" and all(_owner(p) is _owner(parts[0]) for p in parts)
        at = parts[0].__array_interface__["data"][0]
        reused += at in dropped
        if i % 3 == 0:
            held.append((m, start, end))
        else:
            # Scribbled on, then dropped: its buffers are read into again.
            for p in parts:
                p[...] = 0
            dropped.add(at)
    n = want.shape[0] // 2000
    assert lent == n, "every chunk of this pass is lent from the scan's buffers"
    assert reused >= n // 3, f"{reused} of {n} chunks read into the buffers of one dropped before"
    for m, start, end in held:
        _same(m, want[start:end])


def test_to_dask_runs_on_worker_processes():
    import dask
    from distributed import Client, LocalCluster

    want = _anndata(PBMC)
    b = annpage.read_h5ad(PBMC, backed="r", cache_mb=8)
    mask = (b.obs["cell_type"] != b.obs["cell_type"].iloc[0]).to_numpy()
    view = b[mask, 2:]
    x = view.to_dask(chunk_rows=7)
    assert x.shape == view.shape and x.dtype == view.X.dtype
    dense = want[mask, 2:].X.toarray().astype(np.float64)

    def moments(block):
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        block = block.astype(np.float64)
        return np.stack([block.sum(axis=0), (block**2).sum(axis=0)])[None]

    parts = x.map_blocks(moments, chunks=((1,) * x.numblocks[0], (2,), (x.shape[1],)), new_axis=2, dtype=np.float64,
                         meta=np.empty((0, 0, 0)))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster):
        sums = parts.sum(axis=0).compute()
    n = dense.shape[0]
    mean = sums[0] / n
    var = (sums[1] - n * mean**2) / (n - 1)
    np.testing.assert_allclose(mean, dense.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(var, dense.var(axis=0, ddof=1), rtol=1e-8, atol=1e-12)
    # The graph pickles: every task reads through its own handle.
    import pickle

    pickle.loads(pickle.dumps(x.__dask_graph__()))
    blocks = dask.compute(*x.to_delayed().ravel(), scheduler="sync")
    got = sp.vstack(blocks).toarray()
    np.testing.assert_array_equal(got, want[mask, 2:].X.toarray())


@pytest.mark.parametrize("join", ["inner", "outer"])
def test_concat_on_disk_equals_anndata_concat(tmp_path, join):
    files = [ROOT / "fixtures" / n for n in ("pbmc_like_csr.h5ad", "x_csr_f32.h5ad", "all_elements.h5ad")]
    out = tmp_path / "all.h5ad"
    annpage.concat_on_disk({"a": files[0], "b": files[1], "c": files[2]}, out, join=join, label="batch",
                           index_unique="-", merge="same", cache_mb=1)
    want = ad.concat({k: _anndata(p) for k, p in zip("abc", files)}, join=join, label="batch", index_unique="-",
                     merge="same")
    # Both as anndata reads them back (its writer turns repeated strings into categoricals).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want.write_h5ad(tmp_path / "want.h5ad")
    assert_equal(_anndata(out), _anndata(tmp_path / "want.h5ad"))
    with pytest.raises(ValueError):
        annpage.concat_on_disk(files, out, axis=2)


_SUBSET = """
import resource, sys
import numpy as np
import annpage
b = annpage.read_h5ad(sys.argv[1], backed="r", cache_mb=16)
if sys.argv[2] == "subset":
    rows = np.random.default_rng(0).permutation(b.n_obs)[:4000]
    sub = b[rows, ::2].to_memory()
    print(sub.X.nnz)
else:
    print(0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def test_to_memory_of_a_subset_stays_within_budget_and_result(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "big.h5ad"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_big_h5ad.py"), str(path), "--cells", "40000", "--genes", "4000",
         "--nnz", "300"],
        check=True,
    )

    def run(mode):
        out = subprocess.run([sys.executable, "-c", _SUBSET, str(path), mode], capture_output=True, text=True, check=True)
        nnz, peak = out.stdout.split()
        return int(nnz), float(peak)

    _, base = run("open")
    nnz, peak = run("subset")
    assert nnz > 0
    # The result: its X (12 bytes a value as Rust reads it, and again as scipy holds it) and
    # its obs/obsm rows; the bound is budget + result + 100 MB.
    result_mb = nnz * 24 / 2**20 + 4000 * (50 * 4 + 200) / 2**20
    assert peak - base <= 16 + result_mb + 100, f"peak {peak:.0f} MiB, {base:.0f} MiB after opening, result {result_mb:.0f} MiB"


@pytest.mark.parametrize("path", CURRENT, ids=lambda p: p.name)
def test_transposed_writes_are_anndatas_T_written(path, tmp_path):
    """b.T.write_h5ad / write_zarr (sparse matrices streamed as the other format) give the
    file anndata writes for a.T; a transposed view too."""
    a = _anndata(path)
    with annpage.read_h5ad(path, backed="r") as b:
        if any(not isinstance(v, (np.ndarray, pd.DataFrame)) and not sp.issparse(v) for v in a.obsm.values()):
            return  # awkward obsm: anndata cannot transpose-subset it in memory either
        b.T.write_h5ad(tmp_path / "t.h5ad", compression="gzip")
        b.T.write_zarr(tmp_path / "t.zarr")
        rows = slice(None, None, 2)
        b[rows].T.write_h5ad(tmp_path / "v.h5ad")
    def written(adata, name):
        # Compared as anndata writes it: repeating strings become categoricals there too.
        with warnings.catch_warnings(), ad.settings.override(allow_write_nullable_strings=True):
            warnings.simplefilter("ignore")
            adata.write_h5ad(tmp_path / name)
        return _anndata(tmp_path / name)

    want = written(a.T, "want.h5ad")
    for got in (_anndata(tmp_path / "t.h5ad"), ad.read_zarr(tmp_path / "t.zarr")):
        assert_equal(got, want)
        if sp.issparse(want.X):
            assert got.X.format == want.X.format
    assert_equal(_anndata(tmp_path / "v.h5ad"), written(a[rows].copy().T, "view.h5ad"))


@pytest.mark.parametrize("path", CURRENT, ids=lambda p: p.name)
def test_transposed_view_equals_anndatas_T(path):
    a = _anndata(path)
    with annpage.read_h5ad(path, backed="r") as b:
        t = b.T
        assert t.shape == a.T.shape and t.T is b
        assert list(t.obs_names) == list(a.var_names) and list(t.var_names) == list(a.obs_names)
        if a.n_obs == 0 or a.n_vars == 0:
            return
        rows, cols = slice(None, None, -2), [0, a.n_obs - 1, 0]
        if any(not isinstance(v, (np.ndarray, pd.DataFrame)) and not sp.issparse(v) for v in a.obsm.values()):
            return  # awkward obsm: anndata cannot transpose-subset it in memory either
        want = a.T[rows, cols].copy()
        got = t[rows, cols]
        assert_equal(got.to_memory(), want)
        if a.X is not None:
            _same(got.X[:, :], want.X)
            _same(t.X[[1, 0], 1:], a.T.X[[1, 0], 1:])
            parts = [m for m, _, _ in t.chunked_X(3)]
            whole = sp.vstack(parts) if sp.issparse(parts[0]) else np.vstack(parts)
            _same(whole.tocsr() if sp.issparse(whole) else whole, a.T.X.tocsr() if sp.issparse(a.T.X) else a.T.X)


def test_more_key_forms_select_what_anndata_selects(tmp_path):
    """Name slices (both ends included), Ellipsis, (n, 1) masks, whole-number floats, and a
    duplicated name (every row of it; a list of names among duplicated ones is refused), as
    anndata's indexing takes them."""
    whole = _anndata(PBMC)
    names = list(whole.obs_names)
    mask = (np.arange(whole.n_obs) % 3 == 0)[:, None]
    keys = [
        slice(names[2], names[9]),
        slice(names[9], names[2], -2),
        (Ellipsis, [0, 3]),
        mask,
    ]
    b = annpage.read_h5ad(PBMC, backed="r")
    for key in keys:
        assert_equal(b[key].to_memory(), whole[key].copy())
    # Whole numbers as floats, as anndata's backed mode takes them.
    assert_equal(b[np.array([4.0, 1.0])].to_memory(), whole[[4, 1]].copy())
    dup = ad.AnnData(np.arange(6, dtype=np.float32).reshape(3, 2), obs=pd.DataFrame(index=["x", "y", "x"]))
    dup.write_h5ad(tmp_path / "dup.h5ad")
    with annpage.read_h5ad(tmp_path / "dup.h5ad", backed="r") as d:
        assert_equal(d["x"].to_memory(), dup["x"].copy())
        for names in (["y"], pd.Index(["x"]), np.array(["y"])):
            with pytest.raises(pd.errors.InvalidIndexError):
                dup[names]
            with pytest.raises(pd.errors.InvalidIndexError):
                d[names]
    with annpage.read_h5ad(PBMC, backed="r") as d:
        with pytest.raises(KeyError, match="^\"'nope' is not"):
            d[["nope"]]
    with pytest.raises(IndexError):
        b[np.array([1.5])]


def test_raw_is_anndatas_raw():
    path = ROOT / "fixtures" / "all_elements.h5ad"
    want = _anndata(path)
    with annpage.read_h5ad(path, backed="r") as b:
        raw = b.raw
        assert raw.shape == want.raw.shape and raw.n_vars == want.raw.n_vars
        assert_equal(raw.var, want.raw.var)
        assert list(raw.var_names) == list(want.raw.var_names)
        _same(raw.X[:, :], want.raw.X)
        _same(raw.X[[3, 1], [0, 5]], want.raw.X[[3, 1]][:, [0, 5]])
        # A view keeps its cells and every raw variable, as anndata's.
        view = b[[5, 2, 9], :3]
        _same(view.raw.X[:, :], want[[5, 2, 9], :3].raw.X)
        assert list(view.raw.obs_names) == list(want.obs_names[[5, 2, 9]])
        assert_equal(raw.to_adata(), want.raw.to_adata())
    assert annpage.read_h5ad(PBMC, backed="r").raw is None


@pytest.mark.parametrize("store", ["h5ad", "zarr"])
def test_written_string_columns_are_categoricals_as_anndata_writes_them(tmp_path, store):
    """anndata's writers turn string columns that repeat a value into categoricals in obs,
    var and raw.var; a file that stores them as strings is written as anndata writes it."""
    a = ad.AnnData(sp.random(30, 8, density=0.3, format="csr", dtype=np.float32, random_state=0))
    a.obs["s"] = np.array(["x", "y", "x"] * 10, dtype=object)
    a.var["g"] = np.array(["p", "q"] * 4, dtype=object)
    raw = a.copy()
    raw.var["r"] = np.array(["u10", "u2"] * 4, dtype=object)
    a.raw = raw
    path = tmp_path / "in.h5ad"
    a.write_h5ad(path, convert_strings_to_categoricals=False)
    rows = [3, 1, 4, 1, 5]
    with annpage.read_h5ad(path, backed="r") as b:
        for sel, name in [(slice(None), "whole"), (rows, "view")]:
            out = tmp_path / f"{name}.{store}"
            getattr(b[sel], f"write_{store}")(out)
            want = _anndata(path)[sel]
            theirs = tmp_path / f"theirs-{name}.{store}"
            getattr(want, f"write_{store}")(theirs)
            read = ad.read_h5ad if store == "h5ad" else ad.read_zarr
            got, expected = read(out), read(theirs)
            assert_equal(got, expected)
            assert isinstance(got.raw.var["r"].dtype, pd.CategoricalDtype), name
            assert list(got.raw.var["r"].cat.categories) == ["u2", "u10"]


def test_a_selection_writes_strings_as_anndata_writes_the_view(tmp_path):
    """anndata decides whether a string column becomes categorical on the rows it writes: a
    value repeated in the file but not among the selected cells stays a string."""
    a = ad.AnnData(np.zeros((4, 2), np.float32),
                   obs=pd.DataFrame({"s": ["p", "q", "r", "r"]}, index=list("abcd")),
                   var=pd.DataFrame({"g": ["u", "u"]}, index=["x", "y"]))
    path = tmp_path / "in.h5ad"
    a.write_h5ad(path, convert_strings_to_categoricals=False)
    for rows, cols in [([0, 1, 2], slice(None)), ([2, 3], [1]), (slice(None), [0])]:
        with annpage.read_h5ad(path, backed="r") as b:
            b[rows, cols].write_h5ad(tmp_path / "ours.h5ad")
        _anndata(path)[rows, cols].write_h5ad(tmp_path / "theirs.h5ad")
        got, want = ad.read_h5ad(tmp_path / "ours.h5ad"), ad.read_h5ad(tmp_path / "theirs.h5ad")
        assert_equal(got, want)
        assert str(got.obs["s"].dtype) == str(want.obs["s"].dtype), rows


def test_raw_is_indexed_as_anndatas_raw():
    """``raw[obs, var]`` selects raw's genes (by position, mask or raw's own names) and the
    handle's cells, as anndata's ``Raw.__getitem__``; raws of raws compose."""
    path = ROOT / "fixtures" / "all_elements.h5ad"
    want = _anndata(path)
    genes = list(want.raw.var_names[[7, 2, 7]])
    cells = want.obs_names[[4, 0]]
    with annpage.read_h5ad(path, backed="r") as b:
        last = want.raw.n_vars - 1
        for key, exp in (
            ((slice(None), genes), want.raw[:, genes]),
            ((slice(None), genes[0]), want.raw[:, genes[0]]),
            ((slice(2, 7), np.arange(want.raw.n_vars) % 3 == 0), want.raw[2:7, np.arange(want.raw.n_vars) % 3 == 0]),
            # anndata 0.12's Raw fails on names with a slice (scipy's pairwise indexing) and
            # takes -1 as an empty slice (-1:0): the expectations are built in two steps.
            ((cells, slice(1, 9, 3)), want.raw[cells][:, slice(1, 9, 3)]),
            ((slice(None), -1), want.raw[:, [last]]),
        ):
            got = b.raw[key]
            assert got.shape == exp.shape, key
            _same(got.X[:, :], exp.X)
            assert_equal(got.var, exp.var)
            assert list(got.obs_names) == list(exp.obs_names)
            for k in exp.varm:
                np.testing.assert_array_equal(np.asarray(got.varm[k]), np.asarray(exp.varm[k]))
        inner = b.raw[[1, 2, 3], 2:10][1:, ::2]
        _same(inner.X[:, :], want.raw[[1, 2, 3], 2:10][1:, ::2].X)
        assert_equal(inner.to_adata(), want.raw[[1, 2, 3], 2:10][1:, ::2].to_adata())
        g, c = want.raw.var_names[5], want.obs_names[3]
        np.testing.assert_array_equal(b.raw.obs_vector(g), want.raw.obs_vector(g))
        np.testing.assert_array_equal(b.raw.var_vector(c), want.raw.var_vector(c))
        with pytest.raises(KeyError, match="nope"):
            b.raw[:, "nope"]
        with pytest.raises(IndexError):
            b.raw[:, want.raw.n_vars]


def test_raw_x_takes_the_keys_x_takes():
    path = ROOT / "fixtures" / "all_elements.h5ad"
    want = _anndata(path).raw.X.toarray()
    with annpage.read_h5ad(path, backed="r") as b:
        x = b.raw.X
        for key in (3, (3, 5), (slice(None), 5), ([3, 1], [0, 5]), (slice(2, 8, 2), slice(None, None, -3))):
            got = x[key]
            got = got.toarray() if sp.issparse(got) else np.asarray(got)
            np.testing.assert_array_equal(np.squeeze(got), np.squeeze(want[key if not isinstance(key, tuple) or not all(isinstance(k, list) for k in key) else np.ix_(*key)]))


def test_bad_arguments_are_the_errors_users_expect(tmp_path):
    with annpage.read_h5ad(PBMC, backed="r") as b:
        for bad in (0, -1, 1.5, True):
            with pytest.raises(ValueError, match="chunk_rows"):
                b.to_dask(bad)
        with pytest.raises(IndexError):
            b[10**30]
        assert b[-(10**30) : 10**30].shape == b.shape
        assert b[:: -(10**30)].shape == (1, b.n_vars)
    empty = ad.AnnData(obs=pd.DataFrame(index=["a", "b"]), var=pd.DataFrame(index=["g"]))
    empty.write_h5ad(tmp_path / "nox.h5ad")
    with annpage.read_h5ad(tmp_path / "nox.h5ad", backed="r") as b:
        for call in (lambda: next(b.chunked_X(1)), lambda: b.batches(1), lambda: b.chunk_X(1)):
            with pytest.raises(ValueError, match="has no X"):
                call()


def _same_vector(got, want):
    if isinstance(want, pd.api.extensions.ExtensionArray):
        pd.testing.assert_extension_array_equal(got, want)
    else:
        # anndata's views give ArrayView (an ndarray); the dtype must match.
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype, (type(got), got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("path", CURRENT, ids=lambda p: p.name)
def test_to_df_and_vectors_equal_anndatas(path):
    """to_df, obs_vector and var_vector (X and each layer), len and the key lists, on the
    handle, a view and the transpose, against anndata's in-memory object."""
    want = _anndata(path)
    b = annpage.read_h5ad(path, backed="r")
    assert len(b) == len(want) and b.varm_keys() == list(want.varm.keys())
    rng = np.random.default_rng(3)
    rows = np.sort(rng.choice(want.n_obs, size=min(5, want.n_obs), replace=False))
    for got, exp in [(b, want), (b[rows], want[rows]), (b.T, want.T)]:
        for layer in [None, *exp.layers.keys()]:
            if layer is None and exp.X is None:
                with pytest.raises(ValueError):
                    got.to_df()
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pd.testing.assert_frame_equal(got.to_df(layer), exp.to_df(layer))
            for k in list(exp.var_names[:2]) + list(exp.obs.columns[:2]):
                if (k in exp.var_names) + (k in exp.obs.columns) == 1 and exp.var_names.is_unique:
                    _same_vector(got.obs_vector(k, layer=layer), exp.obs_vector(k, layer=layer))
            for k in list(exp.obs_names[:2]) + list(exp.var.columns[:2]):
                if (k in exp.obs_names) + (k in exp.var.columns) == 1 and exp.obs_names.is_unique:
                    _same_vector(got.var_vector(k, layer=layer), exp.var_vector(k, layer=layer))
    with pytest.raises(KeyError, match="Could not find key"):
        b.obs_vector("no such gene or column")


def test_elements_read_by_anndata_fail_as_format_errors_naming_them(tmp_path):
    """annpage hands awkward arrays to anndata's reader: a crafted form (nested past Python's
    recursion limit) fails as one FormatError naming the file and element."""
    import shutil

    import h5py

    path = tmp_path / "awk.h5ad"
    shutil.copy(ROOT / "fixtures" / "x_csr_f32.h5ad", path)
    with h5py.File(path, "r+") as f:
        g = f["uns"].create_group("awk")
        g.attrs["encoding-type"] = "awkward-array"
        g.attrs["encoding-version"] = "0.1.0"
        g.attrs["form"] = "[" * 100_000 + "]" * 100_000
        g.attrs["length"] = 0
    with pytest.raises(annpage.FormatError, match=r"awk\.h5ad: /uns/awk: RecursionError"):
        annpage.read_h5ad(path)
    # An encoding anndata has no reader for either (its IORegistryError): the same.
    with h5py.File(path, "r+") as f:
        del f["uns/awk"]
        f["uns"].create_group("odd").attrs["encoding-type"] = "frobnicate"
        f["uns/odd"].attrs["encoding-version"] = "0.1.0"
    with pytest.raises(annpage.FormatError, match=r"awk\.h5ad: /uns/odd: IORegistryError"):
        annpage.read_h5ad(path)


def test_copy_writes_and_opens_as_anndatas_backed_copy(tmp_path):
    rows = [7, 2, 2, 40]
    with annpage.read_h5ad(PBMC, backed="r") as b:
        with pytest.raises(ValueError, match="pass a filename"):
            b[rows].copy()
        assert b[rows].isview and not b.isview
        copied = b[rows, 3:9].copy(tmp_path / "ours.h5ad")
    theirs = _anndata(PBMC, backed="r")[rows, 3:9].copy(tmp_path / "theirs.h5ad")
    with copied:
        assert copied.isbacked and copied.filename == tmp_path / "ours.h5ad"
        assert_equal(copied.to_memory(), theirs.to_memory())
    theirs.file.close()


def test_a_one_element_tuple_selects_cells():
    want = _anndata(PBMC)
    with annpage.read_h5ad(PBMC, backed="r") as b:
        assert_equal(b[([3, 1],)].to_memory(), want[([3, 1],)].copy())
