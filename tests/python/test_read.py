"""annpage.read_h5ad returns what anndata.read_h5ad returns, and fails as Python users expect."""

import subprocess
import sys
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


def _anndata(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


def _peak_rss(script, path, timeout=300):
    """Runs ``script`` on ``path`` in a fresh interpreter and returns its output and peak RSS
    in MiB (as text, one line each). Measured by a small launcher: a child's peak RSS starts
    from its parent's at the fork, and this test's process holds anndata."""
    launcher = (
        "import os, subprocess, sys\n"
        "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)\n"
        "out = p.stdout.read()\n"
        "_, status, usage = os.wait4(p.pid, 0)\n"
        "print(out.strip())\n"
        "print(usage.ru_maxrss / 1024)\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", launcher, sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_read_equals_anndata(fixture_path):
    expected = _anndata(fixture_path)
    got = annpage.read_h5ad(fixture_path)
    assert isinstance(got, ad.AnnData)
    assert_equal(got, expected)
    assert got.obs_names.tolist() == expected.obs_names.tolist()
    assert list(got.layers.keys()) == list(expected.layers.keys())


def test_sparse_x_keeps_format_and_dtype():
    csr = annpage.read_h5ad(ROOT / "fixtures" / "x_csr_f32.h5ad").X
    csc = annpage.read_h5ad(ROOT / "fixtures" / "x_csc_f64.h5ad").X
    assert isinstance(csr, sp.csr_matrix) and csr.dtype == np.float32
    assert isinstance(csc, sp.csc_matrix) and csc.dtype == np.float64


def test_categoricals_and_nullables_keep_their_pandas_dtypes():
    path = ROOT / "fixtures" / "all_elements.h5ad"
    got, expected = annpage.read_h5ad(path).obs, _anndata(path).obs
    assert got.dtypes.astype(str).tolist() == expected.dtypes.astype(str).tolist()


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5ad"):
        annpage.read_h5ad(tmp_path / "nope.h5ad")


def test_not_hdf5_is_an_annpage_error(tmp_path):
    bad = tmp_path / "bad.h5ad"
    bad.write_bytes(b"this is not an HDF5 file" * 10)
    with pytest.raises(annpage.AnnpageError, match="bad.h5ad"):
        annpage.read_h5ad(bad)


def test_error_classes_form_a_hierarchy():
    for cls in (annpage.FormatError, annpage.ShapeError, annpage.SelectionError,
                annpage.UnsupportedError):
        assert issubclass(cls, annpage.AnnpageError)
    assert issubclass(annpage.AnnpageError, Exception)
    # A bad argument and a value of the wrong shape are what anndata raises for them too.
    for cls in (annpage.SelectionError, annpage.ShapeError):
        assert issubclass(cls, ValueError) and cls.__module__ == "annpage"
    # Every one pickles (an error raised in a worker process reaches its parent).
    import pickle

    for cls in (annpage.AnnpageError, annpage.FormatError, annpage.UnsupportedError,
                annpage.SelectionError, annpage.ShapeError):
        assert cls.__module__ == "annpage"
        again = pickle.loads(pickle.dumps(cls("f.h5ad: /X: bad")))
        assert type(again) is cls and str(again) == "f.h5ad: /X: bad"


def test_a_layer_of_strings_reads_in_memory_and_backed(tmp_path):
    a = ad.AnnData(np.ones((3, 2), dtype=np.float32))
    a.layers["words"] = np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object)
    path = tmp_path / "words.h5ad"
    a.write_h5ad(path)
    assert_equal(annpage.read_h5ad(path), a)
    with annpage.read_h5ad(path, backed="r") as b:
        assert_equal(b[[2, 0]].to_memory(), a[[2, 0]].copy())
    # The same strings marked as a plain `array` (as other writers leave them): read alike.
    with h5py.File(path, "r+") as f:
        f["layers/words"].attrs["encoding-type"] = "array"
    memory = annpage.read_h5ad(path)
    assert memory.layers["words"].tolist() == a.layers["words"].tolist()
    with annpage.read_h5ad(path, backed="r") as b:
        assert b[[2, 0]].to_memory().layers["words"].tolist() == [["e", "f"], ["a", "b"]]


def test_a_global_heap_that_traps_libhdf5_is_a_format_error():
    """A file the fuzz found (tests/interop/known): libhdf5 2.2 loops forever reading one of its
    string attributes, h5py's `attrs` too. annpage checks the attribute's references first;
    run in a subprocess so that a regression fails here instead of hanging the suite."""
    path = ROOT / "tests" / "interop" / "known" / "libhdf5_heap_loop.h5ad"
    script = (
        "import sys, annpage\n"
        "try:\n"
        "    annpage.read_h5ad(sys.argv[1])\n"
        "except annpage.FormatError as e:\n"
        "    print(e)\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert str(path) in run.stdout and "free space of 0 bytes" in run.stdout, run.stdout


def test_a_chunk_inflating_past_its_size_is_a_format_error_in_bounded_memory(tmp_path):
    """An obsm chunk of 80 KB stored as a 1 MB zlib stream of 1 GiB of zeros. libhdf5's own
    deflate filter inflated all of it before finding the chunk the wrong size (a 1 MB file
    took over 1 GiB); annpage's stops at the chunk's room. Run in a subprocess to measure its
    peak RSS."""
    import zlib

    path = tmp_path / "bomb.h5ad"
    ad.AnnData(X=np.zeros((100, 10), dtype=np.float32), obsm={"e": np.zeros((100, 100))}).write_h5ad(path)
    with h5py.File(path, "r+") as f:
        attrs = dict(f["obsm/e"].attrs)
        del f["obsm/e"]
        d = f.create_dataset("obsm/e", shape=(100, 100), dtype="f8", chunks=(100, 100), compression="gzip")
        d.attrs.update(attrs)
        z = zlib.compressobj(9)
        block = bytes(1 << 24)
        d.id.write_direct_chunk((0, 0), b"".join(z.compress(block) for _ in range(64)) + z.flush())
    assert path.stat().st_size < 2 << 20
    script = (
        "import sys, annpage\n"
        "try:\n"
        "    annpage.read_h5ad(sys.argv[1])\n"
        "except annpage.FormatError as e:\n"
        "    print(e)\n"
    )
    message, peak_mb = _peak_rss(script, path, timeout=120)
    assert message.startswith(f"{path}: /obsm/e: ") and "decoding past the chunk's size" in message, message
    assert float(peak_mb) < 500, f"peak RSS {peak_mb} MB"


def test_uns_scalars_are_python_values_as_anndata_reads_them(tmp_path):
    """anndata's reader hands uns scalars over as Python str/int/float/bool (`.item()`), so that
    e.g. `json.dumps(adata.uns[...])` works; annpage's readers do the same."""
    import json

    path = ROOT / "fixtures" / "all_elements.h5ad"
    want = ad.read_h5ad(path).uns
    store = tmp_path / "data.zarr"
    ad.read_h5ad(path).write_zarr(store)
    for got in (
        annpage.read_h5ad(path).uns,
        annpage.read_h5ad(path, backed="r").uns,
        annpage.read_zarr(store).uns,
    ):
        for key in ("bool_scalar", "float32_scalar", "int_scalar", "uint_scalar", "string_scalar"):
            assert type(got[key]) is type(want[key]), key
            assert got[key] == want[key], key
        json.dumps(got["neighbors"])


def test_frames_without_columns_read_as_anndata_reads_them(tmp_path):
    """obs/var without columns get an empty object column index, frames in obsm and uns pandas'
    empty RangeIndex: what anndata's reader gives (`assert_equal(exact=True)` tells them apart)."""
    import pandas as pd

    a = ad.AnnData(np.zeros((3, 2), np.float32), obs=pd.DataFrame(index=list("abc")))
    a.obsm["empty"] = pd.DataFrame(index=a.obs_names)
    a.uns["empty"] = pd.DataFrame(index=["x", "y"])
    path = tmp_path / "empty.h5ad"
    a.write_h5ad(path)
    want = ad.read_h5ad(path)
    assert_equal(annpage.read_h5ad(path), want, exact=True)
    with annpage.read_h5ad(path, backed="r") as b:
        assert_equal(b.to_memory(), want, exact=True)
        assert b.obs.columns.equals(want.obs.columns) and b.obs.columns.dtype == object


def test_a_column_annpage_cannot_hold_is_unsupported_not_malformed(tmp_path):
    import pandas as pd

    a = ad.AnnData(np.zeros((2, 1), np.float32), obs=pd.DataFrame({"c": [1 + 2j, 3j]}, index=["a", "b"]))
    a.write_h5ad(tmp_path / "c.h5ad")
    with pytest.raises(annpage.UnsupportedError, match="/obs/c"):
        annpage.read_h5ad(tmp_path / "c.h5ad")


def test_argument_errors_are_value_errors_too():
    """SelectionError (a bad argument) is an AnnpageError and a ValueError, what Python code
    catches for a bad argument."""
    assert issubclass(annpage.SelectionError, annpage.AnnpageError)
    assert issubclass(annpage.SelectionError, ValueError)
    a = ad.AnnData(np.ones((1, 1), np.float32))
    with pytest.raises(ValueError, match="1 keys for 2 objects") as caught:
        annpage.concat([a, a], keys=["x"])
    assert isinstance(caught.value, annpage.SelectionError)


def test_na_value_is_read_as_the_installed_anndata_reads_it(tmp_path):
    """anndata 0.13 marks pandas 3's `str` columns with na-value "NaN"; the installed anndata
    decides what that reads as (0.12: pandas' `string`), and annpage reads what it reads."""
    import h5py

    path = tmp_path / "na.h5ad"
    with ad.settings.override(allow_write_nullable_strings=True):
        ad.AnnData(np.ones((3, 1), dtype=np.float32),
                   obs=pd.DataFrame({"s": pd.array(["x", None, "z"], dtype="string")}, index=list("abc"))
                   ).write_h5ad(path, convert_strings_to_categoricals=False)
    with h5py.File(path, "r+") as f:
        f["obs/s"].attrs["na-value"] = "NaN"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ad.read_h5ad(path)
    got = annpage.read_h5ad(path)
    assert got.obs["s"].dtype == expected.obs["s"].dtype
    assert_equal(got, expected)


@pytest.mark.parametrize("fmt", [sp.csr_matrix, sp.csc_matrix], ids=["csr", "csc"])
@pytest.mark.parametrize("as_sparse", ["X", ["X", "raw/X"], ("raw.X",)])
def test_as_sparse_reads_dense_matrices_as_anndata(tmp_path, fmt, as_sparse):
    """Dense X and raw.X read as CSR or CSC, as anndata's ``read_h5ad(as_sparse=...)``;
    chunks smaller than the matrix (a 1 MiB budget: 64 KiB pieces) stack to the same."""
    rng = np.random.default_rng(7)
    dense = rng.random((3000, 40)) * (rng.random((3000, 40)) < 0.2)
    a = ad.AnnData(X=dense.astype(np.float32), obs=pd.DataFrame(index=[f"c{i}" for i in range(3000)]))
    a.raw = ad.AnnData(X=(dense * 2).astype(np.int64), obs=a.obs, var=pd.DataFrame(index=[f"r{i}" for i in range(40)]))
    path = tmp_path / "dense.h5ad"
    a.write_h5ad(path)
    want = ad.read_h5ad(path, as_sparse=as_sparse, as_sparse_fmt=fmt)
    got = annpage.read_h5ad(path, cache_mb=1, as_sparse=as_sparse, as_sparse_fmt=fmt)
    assert type(got.X) is type(want.X) and type(got.raw.X) is type(want.raw.X)
    assert got.X.dtype == want.X.dtype and got.raw.X.dtype == want.raw.X.dtype
    assert_equal(got, want)


def test_as_sparse_is_checked_as_anndata_checks_it():
    path = ROOT / "fixtures" / "x_dense_f32.h5ad"
    with pytest.raises(NotImplementedError, match="only `X` and `raw/X`"):
        annpage.read_h5ad(path, as_sparse=["layers/counts"])
    with pytest.raises(NotImplementedError, match="CSR or CSC"):
        annpage.read_h5ad(path, as_sparse="X", as_sparse_fmt=sp.coo_matrix)
    # Empty axes and a file without raw: nothing to make sparse there.
    got = annpage.read_h5ad(path, as_sparse="X")
    assert isinstance(got.X, sp.csr_matrix)
    assert_equal(got, ad.read_h5ad(path, as_sparse="X"))


def test_as_sparse_never_holds_the_dense_matrix(tmp_path):
    """A dense X of 400 MB with a tenth non-zero, read as CSR through a 16 MiB budget, peaks
    near the sparse result (about 60 MB) plus a chunk, not the dense matrix."""
    path = tmp_path / "big_dense.h5ad"
    obs = pd.DataFrame(index=[f"c{i}" for i in range(50000)])
    ad.AnnData(obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(2000)])).write_h5ad(path)
    with h5py.File(path, "r+") as f:
        x = f.create_dataset("X", shape=(50000, 2000), dtype="f4", chunks=(1000, 2000))
        x.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
        rng = np.random.default_rng(1)
        for start in range(0, 50000, 1000):
            block = rng.random((1000, 2000), dtype=np.float32)
            block[block > 0.1] = 0
            x[start : start + 1000] = block
    script = (
        "import sys, annpage\n"
        "a = annpage.read_h5ad(sys.argv[1], cache_mb=16, as_sparse='X')\n"
        "print(a.X.nnz)\n"
    )

    def peak(file):
        nnz, peak_mb = _peak_rss(script, file)
        return int(nnz), float(peak_mb)

    _, base = peak(ROOT / "fixtures" / "x_dense_f32.h5ad")
    nnz, big = peak(path)
    assert 9_000_000 < nnz < 11_000_000
    # 10 M values: 38 MiB of data, 38 MiB of indices (the parts' data and the stacked data
    # are both held while stacking: ~120 MiB measured); the dense X alone is 381 MiB.
    assert big - base < 381 / 2, f"peak RSS {big:.0f} MiB, {base:.0f} MiB reading a small file"


def test_as_sparse_refuses_float16_as_anndata_does(tmp_path):
    """scipy.sparse has no float16: anndata fails reading such an X as sparse; so does annpage,
    by name, instead of handing over a matrix scipy cannot use."""
    path = tmp_path / "f16.h5ad"
    ad.AnnData(X=np.eye(4, dtype=np.float16)).write_h5ad(path)
    with pytest.raises(annpage.AnnpageError, match="float16"):
        annpage.read_h5ad(path, as_sparse="X")
    assert annpage.read_h5ad(path).X.dtype == np.float16
