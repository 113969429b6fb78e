"""The seed's workflows as the examples in api/examples/ run them, compared with the same steps
in anndata/scanpy on the same inputs."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal

from format_files import gzip_file
from support import ROOT, cargo_build, run

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import scanpy as sc


@pytest.fixture(scope="session")
def examples() -> Path:
    """The examples, built (cargo is a no-op when they are up to date)."""
    build = cargo_build()
    assert build.returncode == 0, build.stderr
    return ROOT / "target" / "debug" / "examples"


def _tenx(d: Path, seed: int) -> Path:
    """A v3 directory of 300 cells × 800 genes: cells of varied depth (some under 200 genes)
    and genes of varied frequency (some in fewer than 3 cells)."""
    rng = np.random.default_rng(seed)
    n_genes, n_cells = 800, 300
    p = np.where(rng.random(n_genes) < 0.1, 0.002, rng.uniform(0.05, 0.55, n_genes))
    depth = rng.uniform(0.5, 1.6, n_cells)
    hit = rng.random((n_genes, n_cells)) < np.clip(p[:, None] * depth[None, :], 0, 1)
    counts = sp.coo_matrix(np.where(hit, rng.integers(1, 30, hit.shape), 0))
    d.mkdir()
    scipy.io.mmwrite(d / "matrix.mtx", counts, field="integer")
    with open(d / "features.tsv", "w") as f:
        f.writelines(f"ENSG{i:05d}\tGENE{i % 700}\tGene Expression\n" for i in range(n_genes))
    with open(d / "barcodes.tsv", "w") as f:
        f.writelines(f"CELL{i:05d}-1\n" for i in range(n_cells))
    for name in ["matrix.mtx", "features.tsv", "barcodes.tsv"]:
        gzip_file(d / name)
    return d


def test_scrna_workflow_equals_scanpy_steps(examples: Path, tmp_path: Path) -> None:
    d = _tenx(tmp_path / "tenx", seed=0)
    out = tmp_path / "out.h5ad"
    res = run([examples / "scrna_workflow", d, out])
    assert res.returncode == 0, res.stderr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = sc.read_10x_mtx(d)
    a.obs["n_genes"] = np.asarray((a.X != 0).sum(axis=1)).ravel().astype(np.int64)
    a.obs["total_counts"] = np.asarray(a.X.sum(axis=1, dtype=np.float64)).ravel()
    a = a[a.obs["n_genes"] > 200].copy()
    a.var["n_cells"] = np.asarray((a.X != 0).sum(axis=0)).ravel().astype(np.int64)
    a = a[:, a.var["n_cells"] >= 3].copy()
    a.layers["counts"] = a.X.copy()

    got = ad.read_h5ad(out)
    assert 0 < got.n_obs < 300 and 0 < got.n_vars < 800  # both filters removed something
    assert_equal(got, a)
    assert list(got.obs_names) == list(a.obs_names) and list(got.var_names) == list(a.var_names)
    with h5py.File(out) as f:
        assert f["X/data"].compression == "gzip"


def _batch(seed: int, genes: list[str]) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    n = 40 + 10 * seed
    x = sp.random(n, len(genes), density=0.3, format="csr", random_state=seed, dtype=np.float32)
    obs = pd.DataFrame(
        {"donor": pd.Categorical(rng.choice([f"d{seed}", "shared"], n)), "n_counts": rng.integers(0, 999, n)},
        index=[f"AAC{i:04d}" for i in range(n)],  # the same barcodes in every batch
    )
    a = ad.AnnData(X=x, obs=obs, var=pd.DataFrame({"mito": [g.startswith("MT-") for g in genes]}, index=genes))
    a.layers["counts"] = x.copy()
    return a


def test_batch_workflow_equals_anndata_concat(examples: Path, tmp_path: Path) -> None:
    genes = [f"G{i}" for i in range(30)] + ["MT-1", "MT-2"]
    rng = np.random.default_rng(7)
    paths = []
    for seed, stem in enumerate(["lane1", "lane2", "lane3"]):
        subset = sorted(rng.choice(genes, 20 + 4 * seed, replace=False), key=genes.index)
        rng.shuffle(subset)
        p = tmp_path / f"{stem}.h5ad"
        _batch(seed, list(subset)).write_h5ad(p)
        paths.append(p)
    out = tmp_path / "all.h5ad"
    res = run([examples / "batch_workflow", out, *paths])
    assert res.returncode == 0, res.stderr

    want = ad.concat(
        [ad.read_h5ad(p) for p in paths],
        join="outer",
        label="batch",
        keys=[p.stem for p in paths],
        index_unique="-",
    )
    got = ad.read_h5ad(out)
    assert_equal(got, want)
    assert list(got.obs_names) == list(want.obs_names) and list(got.var_names) == list(want.var_names)
    assert list(got.obs["batch"].cat.categories) == ["lane1", "lane2", "lane3"]
