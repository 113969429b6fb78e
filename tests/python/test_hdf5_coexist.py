"""annpage carries its own static HDF5; h5py brings another. Both must work in one process,
whichever is imported first: the module must not export (or take) any H5* symbol."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import annpage

from conftest import ROOT

BODY = textwrap.dedent(
    """
    import sys
    import h5py, numpy as np
    import anndata as ad
    from anndata.tests.helpers import assert_equal
    import annpage
    src, tmp = sys.argv[1], sys.argv[2]
    # h5py writes and reads a file.
    with h5py.File(tmp + "/plain.h5", "w") as f:
        f["a"] = np.arange(10)
    with h5py.File(tmp + "/plain.h5", "r") as f:
        assert f["a"][:].tolist() == list(range(10))
    # anndata (h5py) reads and writes; annpage reads both files.
    expected = ad.read_h5ad(src)
    expected.write_h5ad(tmp + "/copy.h5ad", compression="gzip")
    assert_equal(annpage.read_h5ad(src), expected)
    assert_equal(annpage.read_h5ad(tmp + "/copy.h5ad"), expected)
    assert_equal(ad.read_h5ad(tmp + "/copy.h5ad"), expected)
    print("ok")
    """
)


@pytest.mark.parametrize("first", ["annpage", "h5py"])
def test_both_hdf5_libraries_in_one_process(first, tmp_path):
    code = f"import {first}\n" + BODY
    src = str(ROOT / "fixtures" / "all_elements_gzip.h5ad")
    out = subprocess.run(
        [sys.executable, "-c", code, src, str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_no_hdf5_symbol_is_exported():
    so = Path(annpage._annpage.__file__)
    nm = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True, text=True)
    if nm.returncode != 0:
        pytest.skip("nm (binutils) is not installed: the symbol table cannot be read")
    names = [line.split()[-1] for line in nm.stdout.splitlines() if line.strip()]
    assert "PyInit__annpage" in names
    assert [n for n in names if n.startswith(("H5", "_H5"))] == []
