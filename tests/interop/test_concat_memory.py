"""`annpage concat` streams: on inputs whose matrices together are many times the cache budget,
its peak memory stays within the budget plus the small elements, and the result still equals
`anndata.concat` of the same files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal

from support import ROOT, peak_rss_mb

BUDGET_MB = 16


def _make(root: Path, name: str, cells: int, nnz: int) -> list[Path]:
    out = []
    for seed, genes in ((1, 3000), (2, 2500), (3, 3000)):
        path = root / f"{name}{seed}.h5ad"
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_big_h5ad.py"), str(path), "--cells", str(cells),
             "--genes", str(genes), "--nnz", str(nnz), "--seed", str(seed)],
            check=True,
        )
        out.append(path)
    return out


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """The same cells and genes with about 100 and 1,000 values a cell."""
    root = tmp_path_factory.mktemp("concat_big")
    return {"sparse": _make(root, "s", 20000, 100), "dense": _make(root, "d", 20000, 1000)}


def _x_mb(path: Path) -> float:
    with h5py.File(path, "r") as f:
        return sum(f["X"][k].size * f["X"][k].dtype.itemsize for k in ("data", "indices")) / 2**20


def _concat(annpage_bin: Path, inputs: list[Path], out: Path, join: str, axis: str = "obs") -> float:
    peak, res = peak_rss_mb(
        [annpage_bin, "concat", *inputs, "-o", out, "--join", join, "--label", "batch", "--index-unique", "-",
         "--cache-mb", BUDGET_MB, "--axis", axis]
    )
    assert res.returncode == 0, res.stderr
    return peak


@pytest.mark.parametrize("axis", ["obs", "var"])
@pytest.mark.parametrize("join", ["inner", "outer"])
def test_concat_memory_does_not_grow_with_the_matrices(
    annpage_bin: Path, sets: dict[str, list[Path]], tmp_path: Path, join: str, axis: str
) -> None:
    """Along obs the inputs' rows follow each other; along var (the same cells in every
    file) each block of cells is gathered from every input."""
    small_x, big_x = (sum(_x_mb(p) for p in sets[k]) for k in ("sparse", "dense"))
    assert big_x >= 6 * small_x and big_x >= 8 * BUDGET_MB, (small_x, big_x)
    base, res = peak_rss_mb([annpage_bin, "info", sets["dense"][0]])
    assert res.returncode == 0, res.stderr
    small = _concat(annpage_bin, sets["sparse"], tmp_path / "small.h5ad", join, axis)
    big = _concat(annpage_bin, sets["dense"], tmp_path / "big.h5ad", join, axis)
    # The annotations (the same in both sets) are held whole; the matrices (and the dense
    # obsm) go through the budget in chunks: ten times the values cost at most a few chunks
    # more (two budgets: a chunk read while one is written).
    assert big - small <= 2 * BUDGET_MB, (
        f"{big_x:.0f} MiB of X peaked at {big:.0f} MiB, {small_x:.0f} MiB at {small:.0f} MiB "
        f"({base:.0f} MiB at rest, budget {BUDGET_MB} MiB)"
    )
    assert big - base < big_x / 2, f"{big - base:.0f} MiB over {big_x:.0f} MiB of X: held whole"


@pytest.mark.parametrize("axis", ["obs", "var"])
def test_a_csc_input_streams(annpage_bin: Path, sets: dict[str, list[Path]], tmp_path: Path, axis: str) -> None:
    """A CSC input's rows are spread over all its columns: they are read through the cache a
    chunk at a time (each chunk reads the column blocks holding them), along var as along obs
    (where it was read whole before), and the result is the one of the same values as CSR."""
    csc = tmp_path / "csc.h5ad"
    first = ad.read_h5ad(sets["dense"][0])
    first.X = first.X.tocsc()
    first.write_h5ad(csc)
    del first
    inputs = [csc, *sets["dense"][1:]]
    x_mb = sum(_x_mb(p) for p in inputs)
    base, res = peak_rss_mb([annpage_bin, "info", csc])
    assert res.returncode == 0, res.stderr
    peak = _concat(annpage_bin, inputs, tmp_path / "csc_out.h5ad", "inner", axis)
    assert peak - base < x_mb / 4, f"{peak - base:.0f} MiB over {x_mb:.0f} MiB of X: held whole"
    _concat(annpage_bin, sets["dense"], tmp_path / "csr_out.h5ad", "inner", axis)
    with h5py.File(tmp_path / "csc_out.h5ad", "r") as got, h5py.File(tmp_path / "csr_out.h5ad", "r") as want:
        assert got["X"].attrs["encoding-type"] == want["X"].attrs["encoding-type"] == "csr_matrix"
        for k in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(got["X"][k][...], want["X"][k][...], err_msg=k)


def test_concat_does_not_fill_the_cache(annpage_bin: Path, sets: dict[str, list[Path]], tmp_path: Path) -> None:
    """Each block is read once, so blocks are not kept: with a budget larger than every input
    (smaller than all of them), memory grows only with the buffers that scale with the budget —
    the read-ahead (a quarter), the chunks (an eighth, at most 8 MiB, held a few times over
    while aligned and written, one more on the reader thread): 100–120 MiB measured from 16 to
    128 MiB. A cache that kept the blocks would add the budget's 112 MiB on top of that."""
    x = sum(_x_mb(p) for p in sets["dense"])
    assert max(_x_mb(p) for p in sets["dense"]) < 128 < x, x
    peaks = {}
    for budget in (BUDGET_MB, 128):
        peaks[budget], res = peak_rss_mb(
            [annpage_bin, "concat", *sets["dense"], "-o", tmp_path / f"{budget}.h5ad", "--cache-mb", budget]
        )
        assert res.returncode == 0, res.stderr
    assert peaks[128] - peaks[BUDGET_MB] < 1.5 * (128 - BUDGET_MB), peaks


@pytest.mark.parametrize("compression,axis", [("none", "obs"), ("gzip", "obs"), ("gzip", "var")])
def test_streamed_concat_equals_anndata(
    annpage_bin: Path, sets: dict[str, list[Path]], tmp_path: Path, compression: str, axis: str
) -> None:
    """Equal to anndata's; gzip chunks (compressed on several threads, written directly) are
    read back by h5py as HDF5's own."""
    out = tmp_path / "all.h5ad"
    res = subprocess.run(
        [annpage_bin, "concat", *sets["sparse"], "-o", out, "--join", "outer", "--label", "batch",
         "--index-unique", "-", "--cache-mb", str(BUDGET_MB), "--compression", compression, "--axis", axis],
        capture_output=True, text=True,
    )
    assert res.returncode == 0, res.stderr
    with h5py.File(out, "r") as f:
        assert f["X/data"].compression == (None if compression == "none" else "gzip")
    adatas = [ad.read_h5ad(p) for p in sets["sparse"]]
    # Written and read back, as annpage's is: string columns that repeat become categoricals.
    ad.concat(adatas, join="outer", label="batch", index_unique="-", axis=axis).write_h5ad(tmp_path / "want.h5ad")
    assert_equal(ad.read_h5ad(out), ad.read_h5ad(tmp_path / "want.h5ad"))


@pytest.mark.parametrize("verb", ["stats", "subset"])
def test_collection_memory_does_not_grow_with_the_matrices(
    annpage_bin: Path, sets: dict[str, list[Path]], tmp_path: Path, verb: str
) -> None:
    """Several files read as one collection (`annpage stats IN...`, `annpage subset IN... OUT`
    of every third cell, a selection that goes back and forth between files) stay within the
    budget as the matrices grow tenfold."""
    peaks = {}
    for kind in ("sparse", "dense"):
        inputs = sets[kind]
        with h5py.File(inputs[0], "r") as f:
            n = f["obs"][f["obs"].attrs["_index"]].shape[0]
        cells = tmp_path / "cells.txt"
        order = np.random.default_rng(0).permutation(3 * n)[::3]
        cells.write_text("".join(f"{i}\n" for i in order))
        common = ["--join", "outer", "--label", "batch", "--index-unique", "-", "--cache-mb", BUDGET_MB]
        if verb == "stats":
            cmd = [annpage_bin, "stats", *inputs, "--out-prefix", tmp_path / kind, "--chunk-rows", 500, *common]
        else:
            cmd = [annpage_bin, "subset", *inputs, tmp_path / f"{kind}.h5ad", "--obs-indices", cells, *common]
        peaks[kind], res = peak_rss_mb(cmd)
        assert res.returncode == 0, res.stderr
    assert peaks["dense"] - peaks["sparse"] <= BUDGET_MB, peaks


def test_a_collection_reads_only_the_selected_rows_of_a_large_obsm(annpage_bin: Path, tmp_path: Path) -> None:
    """An obsm array several times the budget in each file: a subset of the collection reads
    the selected cells' rows of it, not the concatenation of the whole arrays."""
    n, k = 40_000, 640
    rng = np.random.default_rng(5)
    inputs = []
    for i in range(2):
        p = tmp_path / f"wide{i}.h5ad"
        ad.AnnData(
            sp.random(n, 20, density=0.05, format="csr", dtype=np.float32, random_state=i),
            obsm={"X_wide": rng.random((n, k), dtype=np.float32), "X_pca": rng.random((n, 3))},
        ).write_h5ad(p)
        inputs.append(p)
    cells = np.random.default_rng(0).permutation(2 * n)[:500]
    (tmp_path / "cells.txt").write_text("".join(f"{i}\n" for i in cells))
    base, res = peak_rss_mb([annpage_bin, "info", inputs[0]])
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out.h5ad"
    common = ["--join", "outer", "--index-unique", "-", "--cache-mb", BUDGET_MB]
    peak, res = peak_rss_mb([annpage_bin, "subset", *inputs, out, "--obs-indices", tmp_path / "cells.txt", *common])
    assert res.returncode == 0, res.stderr
    names_mb = 2 * n * 48 * 2 / 2**20
    assert peak - base <= BUDGET_MB + names_mb + 40, f"peaked at {peak:.0f} MiB ({base:.0f} at rest)"
    whole = ad.concat([ad.read_h5ad(p) for p in inputs], join="outer", index_unique="-")
    assert_equal(ad.read_h5ad(out), whole[cells].copy())
    # concat streams the dense obsm entries as it streams X.
    out = tmp_path / "all.h5ad"
    peak, res = peak_rss_mb([annpage_bin, "concat", *inputs, "-o", out, *common])
    assert res.returncode == 0, res.stderr
    assert peak - base <= BUDGET_MB + names_mb + 60, f"concat peaked at {peak:.0f} MiB ({base:.0f} at rest)"
    assert_equal(ad.read_h5ad(out), whole)


@pytest.mark.parametrize("axis", ["obs", "var"])
def test_chunks_follow_the_skew_of_the_rows(annpage_bin: Path, tmp_path: Path, axis: str) -> None:
    """Chunks and blocks of rows are cut from each row's stored values, not the average row:
    the first 50 of these 2,000 rows (a genes × cells matrix: the most expressed genes) hold
    half the values, and chunks sized from the average would take them all at once."""
    rng = np.random.default_rng(5)
    rows, cols, heavy = 2000, 50000, 50
    dense = sp.csr_matrix(rng.random((heavy, cols), dtype=np.float32) + 1)
    light = sp.random(rows - heavy, cols, density=heavy / (rows - heavy), format="csr", dtype=np.float32,
                      random_state=5)
    x = sp.vstack([dense, light], format="csr")
    inputs = []
    for k in range(2):
        path = tmp_path / f"skewed{k}.h5ad"
        ad.AnnData(X=x, obs=pd.DataFrame(index=[f"r{i}" for i in range(rows)]),
                   var=pd.DataFrame(index=[f"c{i}" for i in range(cols)])).write_h5ad(path)
        inputs.append(path)
    x_mb = 2 * x.nnz * 8 / 2**20
    base, res = peak_rss_mb([annpage_bin, "info", inputs[0]])
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out.h5ad"
    peak = _concat(annpage_bin, inputs, out, "inner", axis)
    assert x_mb > 4 * BUDGET_MB
    # The annotations here are small: a budget of chunks and blocks, and a few of them held
    # while aligned and written (chunks from the average held the first 50 rows at once).
    assert peak - base < 4 * BUDGET_MB, f"{peak - base:.0f} MiB over {x_mb:.0f} MiB of X"
    got = ad.read_h5ad(out)
    want = ad.concat([ad.read_h5ad(p) for p in inputs], axis=axis, label="batch", index_unique="-")
    assert list(got.obs_names) == list(want.obs_names) and list(got.var_names) == list(want.var_names)
    assert got.X.format == want.X.format and (got.X != want.X).nnz == 0


def test_the_same_cells_along_var_cost_no_table_of_names(annpage_bin: Path, tmp_path: Path) -> None:
    """Two modalities of 1,000,000 cells (the same names, small matrices) concatenated along
    var within the promise, the budget plus 100 MiB: aligning identical lists of cells builds
    no table of every name (nor of their hashes), the inputs share one identity map that no
    table backs, the cells are aligned once (by the annotations' concatenation), and the
    names are read for the annotations alone, not cached by the handles and copied (455 MiB
    at a 64 MiB budget at first, 222 MiB after the first steps, 105 MiB at 16 MiB now)."""
    n = 1_000_000
    rng = np.random.default_rng(8)
    names = [f"cell_{i:07d}" for i in range(n)]
    inputs = []
    for key, genes in [("rna", 20), ("adt", 10)]:
        a = ad.AnnData(sp.random(n, genes, density=0.1, format="csr", dtype=np.float32, random_state=rng))
        a.obs_names = names
        a.var_names = [f"{key}{j}" for j in range(genes)]
        inputs.append(tmp_path / f"{key}.h5ad")
        a.write_h5ad(inputs[-1])
    out = tmp_path / "both.h5ad"
    peak, res = peak_rss_mb([annpage_bin, "concat", *inputs, "-o", out, "--axis", "var", "--cache-mb", BUDGET_MB])
    assert res.returncode == 0, res.stderr
    assert peak <= int(BUDGET_MB) + 100, f"peaked at {peak:.0f} MiB"
    got = ad.read_h5ad(out)
    assert got.shape == (n, 30) and list(got.obs_names[:2]) == names[:2]
