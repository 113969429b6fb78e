"""`annpage transform` against anndata: names made unique, strings to categoricals, dense/sparse
storage and transpose give what anndata gives on the same object.

Each case writes an object with anndata (strings left as strings), runs the CLI on it, does the
same edit in anndata and compares the two files read back with `assert_equal`.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal, gen_adata

from support import fixture_files, fixture_id, is_legacy, run


def _edge_object(seed: int) -> ad.AnnData:
    """Duplicated names, repeated and unique strings (natural-sort categories, accented ones), a nullable
    string column with missing values, CSR X, CSC and dense layers, obsm/varm/obsp/varp, raw."""
    rng = np.random.default_rng(seed)
    n_obs, n_vars = 9, 5
    obs_names = ["c", "c", "c-1", "d", "c", "e", "d", "f", "g"]
    var_names = ["g1", "g2", "g1", "g10", "g1"]
    x = sp.random(n_obs, n_vars, density=0.4, format="csr", random_state=seed, dtype=np.float32)
    obs = pd.DataFrame(
        {
            "batch": [f"b{k}" for k in rng.choice([1, 2, 10, 20, 3], n_obs)],
            "unique": [f"u{k}" for k in range(n_obs)],
            "n": rng.integers(0, 100, n_obs),
            "maybe": pd.array(["x", None, "y", "x", None, "y", "x", "x", "z"], dtype="string"),
            # natsort compares in NFD: "Müller" before "Mz" (code points would put it last).
            "region": [["Mz", "Müller", "Mu", "Émile", "E2"][k] for k in rng.integers(0, 5, n_obs)],
        },
        index=obs_names,
    )
    obs.index.name = "cell"
    var = pd.DataFrame({"kind": ["a", "b", "a", "a10", "a2"], "score": rng.random(n_vars)}, index=var_names)
    a = ad.AnnData(X=x, obs=obs, var=var)
    a.layers["csc"] = sp.csc_matrix(x.toarray() * 2)
    a.layers["dense"] = rng.integers(0, 5, (n_obs, n_vars)).astype(np.int32)
    a.obsm["X_pca"] = rng.random((n_obs, 3))
    a.varm["loadings"] = rng.random((n_vars, 2))
    a.obsp["distances"] = sp.random(n_obs, n_obs, density=0.3, format="csr", random_state=seed)
    a.varp["corr"] = rng.random((n_vars, n_vars))
    a.uns["note"] = "kept"
    a.raw = a.copy()
    return a


def _inputs() -> list[tuple[str, ad.AnnData]]:
    out = [(f"edge{seed}", _edge_object(seed)) for seed in range(3)]
    # anndata's own generator: every element kind it writes (categoricals in obsm frames, awkward-free).
    gen = gen_adata((12, 8), obsm_types=(np.ndarray, pd.DataFrame), varm_types=(np.ndarray, pd.DataFrame))
    out.append(("gen_adata", gen))
    return out


def _write(a: ad.AnnData, path: Path) -> None:
    with ad.settings.override(allow_write_nullable_strings=True):
        a.write_h5ad(path, convert_strings_to_categoricals=False)


def _edit(a: ad.AnnData, edit: str) -> ad.AnnData:
    if "+" in edit:
        for one in edit.split("+"):
            a = _edit(a, one)
        return a
    if edit == "obs-unique":
        a.obs_names_make_unique()
    elif edit == "var-unique-join":
        a.var_names_make_unique(join="_")
    elif edit == "strings":
        # What anndata's write_h5ad converts: obs and var, then raw.var.
        a.strings_to_categoricals()
        if a.raw is not None:
            a.strings_to_categoricals(a.raw.var)
    elif edit == "dense":
        a.X = a.X.toarray() if sp.issparse(a.X) else a.X
        for k in list(a.layers):
            v = a.layers[k]
            a.layers[k] = v.toarray() if sp.issparse(v) else v
    elif edit in ("csr", "csc"):
        conv = sp.csr_matrix if edit == "csr" else sp.csc_matrix
        a.X = conv(a.X)
        for k in list(a.layers):
            a.layers[k] = conv(a.layers[k])
    elif edit == "transpose":
        a = a.T
    else:
        raise AssertionError(edit)
    return a


ARGS = {
    "obs-unique": ["--obs-names-make-unique"],
    "var-unique-join": ["--var-names-make-unique", "_"],
    "strings": ["--strings-to-categoricals"],
    "dense": ["--matrix-format", "dense"],
    "csr": ["--matrix-format", "csr"],
    "csc": ["--matrix-format", "csc"],
    "transpose": ["--transpose"],
    # The storage is changed before the transpose, as the README orders the edits.
    "csr+transpose": ["--matrix-format", "csr", "--transpose"],
    "dense+transpose": ["--matrix-format", "dense", "--transpose"],
}


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("edit", list(ARGS))
@pytest.mark.parametrize("name,adata", _inputs(), ids=[n for n, _ in _inputs()])
def test_transform_equals_anndata(annpage_bin: Path, tmp_path: Path, edit: str, name: str, adata: ad.AnnData) -> None:
    src, ours, theirs = tmp_path / "in.h5ad", tmp_path / "ours.h5ad", tmp_path / "theirs.h5ad"
    _write(adata, src)
    res = run([annpage_bin, "transform", src, ours, *ARGS[edit]])
    assert res.returncode == 0, res.stderr
    expected = _edit(ad.read_h5ad(src), edit)
    _write(expected, theirs)
    got, want = ad.read_h5ad(ours), ad.read_h5ad(theirs)
    assert_equal(got, want)
    assert list(got.obs_names) == list(want.obs_names)
    assert list(got.var_names) == list(want.var_names)
    assert got.obs.index.name == want.obs.index.name
    if edit == "strings":
        for frame in ("obs", "var"):
            for col in getattr(want, frame).columns:
                g, w = getattr(got, frame)[col], getattr(want, frame)[col]
                assert str(g.dtype) == str(w.dtype), (frame, col)
                if isinstance(w.dtype, pd.CategoricalDtype):
                    assert list(g.cat.categories) == list(w.cat.categories), (frame, col)


@pytest.mark.parametrize("path", [p for p in fixture_files() if not is_legacy(p)], ids=fixture_id)
def test_transpose_of_every_fixture(annpage_bin: Path, tmp_path: Path, path: Path) -> None:
    ours = tmp_path / "t.h5ad"
    res = run([annpage_bin, "transform", path, ours, "--transpose"])
    source = ad.read_h5ad(path)
    if source.is_view or res.returncode != 0:
        pytest.fail(f"annpage transform failed on {path.name}: {res.stderr}")
    assert_equal(ad.read_h5ad(ours), source.T)


def test_duplicated_names_cannot_collide(annpage_bin: Path, tmp_path: Path) -> None:
    # "a-1" exists already: the second "a" becomes "a-2", as anndata numbers it.
    a = ad.AnnData(X=np.zeros((4, 1), dtype=np.float32), obs=pd.DataFrame(index=["a", "a", "a-1", "a"]))
    src, out = tmp_path / "in.h5ad", tmp_path / "out.h5ad"
    _write(a, src)
    assert run([annpage_bin, "transform", src, out, "--obs-names-make-unique"]).returncode == 0
    assert list(ad.read_h5ad(out).obs_names) == ["a", "a-2", "a-1", "a-3"]


@pytest.mark.parametrize("transpose", [False, True], ids=["", "transpose"])
def test_edits_of_the_annotations_stream_the_matrices(annpage_bin: Path, tmp_path: Path, transpose: bool) -> None:
    """Names made unique and strings made categoricals change obs and var only: the matrices
    are copied through the cache, so a file whose X is several times the budget is edited in
    about the memory of its annotations. Transposed too: a CSR matrix's pieces of rows are
    its transpose's CSC pieces of columns."""
    import subprocess
    import sys

    from support import ROOT, peak_rss_mb

    src = tmp_path / "big.h5ad"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_big_h5ad.py"), str(src), "--cells", "40000",
         "--genes", "2000", "--nnz", "1000", "--seed", "4"],
        check=True,
    )
    import h5py

    with h5py.File(src) as f:
        x_mb = sum(f["X"][k].size * f["X"][k].dtype.itemsize for k in ("data", "indices")) / 2**20
    base, res = peak_rss_mb([annpage_bin, "info", src])
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out.h5ad"
    args = ["--obs-names-make-unique", "--strings-to-categoricals", "--cache-mb", "16"]
    args += ["--transpose"] if transpose else []
    peak, res = peak_rss_mb([annpage_bin, "transform", src, out, *args])
    assert res.returncode == 0, res.stderr
    assert x_mb >= 8 * 16 and peak - base < x_mb / 3, f"{peak:.0f} MiB for {x_mb:.0f} MiB of X ({base:.0f} at rest)"
    want = ad.read_h5ad(src)
    want.obs_names_make_unique()
    want.strings_to_categoricals()
    got = ad.read_h5ad(out)
    if transpose:
        assert got.X.format == "csc"
        want = want.T
    assert_equal(got, want)


@pytest.mark.parametrize("fmt,transpose", [("csc", False), ("dense", False), ("csc", True), ("dense", True)])
def test_a_change_of_storage_streams(annpage_bin: Path, tmp_path: Path, fmt: str, transpose: bool) -> None:
    """X and the layers stored as another kind are read and written in pieces within the
    budget (before: the input was read whole): CSC from CSR reads pieces of columns, each a
    pass over the row blocks; dense transposed reads pieces of the input's columns."""
    import subprocess
    import sys

    import h5py

    from support import ROOT, peak_rss_mb

    src = tmp_path / "big.h5ad"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_big_h5ad.py"), str(src), "--cells", "20000",
         "--genes", "1500", "--nnz", "400", "--seed", "5"],
        check=True,
    )
    with h5py.File(src) as f:
        x_mb = sum(f["X"][k].size * f["X"][k].dtype.itemsize for k in ("data", "indices")) / 2**20
        dense_mb = np.prod(f["X"].attrs["shape"]) * f["X/data"].dtype.itemsize / 2**20
    budget = 8
    # A copy streams X within the budget; a change of storage may hold a few pieces more (a
    # quarter of the budget each), never the matrix: reading it whole and converting it
    # takes twice X (or X and its dense form) over the copy.
    copy, res = peak_rss_mb([annpage_bin, "transform", src, tmp_path / "copy.h5ad", "--cache-mb", budget])
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out.h5ad"
    args = ["--matrix-format", fmt, "--cache-mb", budget] + (["--transpose"] if transpose else [])
    peak, res = peak_rss_mb([annpage_bin, "transform", src, out, *args])
    assert res.returncode == 0, res.stderr
    held = x_mb + (dense_mb if fmt == "dense" else x_mb)
    assert x_mb >= 4 * budget and held > 8 * budget
    assert peak - copy < 3 * budget, f"{peak:.0f} MiB for {x_mb:.0f} MiB of X (a copy: {copy:.0f} MiB)"
    want = _edit(ad.read_h5ad(src), fmt + ("+transpose" if transpose else ""))
    got = ad.read_h5ad(out)
    assert type(got.X) is type(want.X)
    assert_equal(got, want)


def _skewed(path: Path, cells: int, genes: int, heavy: int, seed: int) -> float:
    """A CSR file whose first `heavy` genes are stored in every cell and hold half its values
    (real data is skewed so: its most expressed genes hold much of X), the rest random. Returns
    the MiB of X's data and indices."""
    rng = np.random.default_rng(seed)
    dense = sp.csr_matrix(rng.random((cells, heavy), dtype=np.float32) + 1)
    light = sp.random(cells, genes - heavy, density=heavy / (genes - heavy), format="csr",
                      dtype=np.float32, random_state=seed)
    x = sp.hstack([dense, light], format="csr")
    ad.AnnData(X=x, obs=pd.DataFrame(index=[f"c{i}" for i in range(cells)]),
               var=pd.DataFrame(index=[f"g{i}" for i in range(genes)])).write_h5ad(path)
    return x.nnz * 8 / 2**20


def test_pieces_follow_the_skew_of_the_matrix(annpage_bin: Path, tmp_path: Path) -> None:
    """Pieces of columns are cut from each column's stored values, not the average column: the
    first genes of this file hold half of X, and a piece sized from the average would take
    them all at once (five times the budget, twice over while converted)."""
    from support import peak_rss_mb

    src = tmp_path / "skewed.h5ad"
    x_mb = _skewed(src, 50000, 2000, 50, 3)
    budget = 8
    copy, res = peak_rss_mb([annpage_bin, "transform", src, tmp_path / "copy.h5ad", "--cache-mb", budget])
    assert res.returncode == 0, res.stderr
    out = tmp_path / "csc.h5ad"
    peak, res = peak_rss_mb([annpage_bin, "transform", src, out, "--matrix-format", "csc", "--cache-mb", budget])
    assert res.returncode == 0, res.stderr
    assert x_mb > 4 * budget
    assert peak - copy < 3 * budget, f"{peak:.0f} MiB for {x_mb:.0f} MiB of X (a copy: {copy:.0f} MiB)"
    got, want = ad.read_h5ad(out), ad.read_h5ad(src)
    assert got.X.format == "csc"
    assert_equal(got, _edit(want, "csc"))
