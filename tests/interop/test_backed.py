"""Backed mode from the command line, checked against the real anndata and numpy.

- `annpage subset` with unsorted positions, names and queries gives what anndata gives for
  `adata[obs][:, var]`, read back by anndata and compared with its own `assert_equal`;
- on a file made by anndata's own `gen_adata` (data frames with categorical columns in
  `obsm`/`varm`), `annpage subset`, a backed slice's `to_memory()` and the in-memory
  `AnnData::subset` (through the `write-samples` program) give what anndata gives, unused
  categories of those data frames dropped;
- `annpage stats` matches numpy (`ddof=1` variance) to 1e-6 relative;
- on a generated file several times larger than the cache budget, `stats` and `subset` stay
  within the budget plus their output (peak RSS of the process, measured with `wait4`).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import DEFAULT_KEY_TYPES, assert_equal, gen_adata

from support import FIXTURES, ROOT, peak_rss_mb, run

SUBSET_FIXTURES = [
    "x_csr_f32",
    "x_csc_f64",
    "x_dense_f32",
    "x_dense_i64",
    "all_elements",
    "all_elements_gzip",
    "pbmc_like_csr",
    "unicode",
    "legacy/legacy_v0_7_csr",
    "legacy/legacy_v0_5_dense",
]


def _write_list(path: Path, items) -> Path:
    path.write_text("".join(f"{i}\n" for i in items))
    return path


@pytest.mark.parametrize("name", SUBSET_FIXTURES)
def test_subset_positions_match_anndata(annpage_bin: Path, tmp_path: Path, name: str) -> None:
    src = FIXTURES / f"{name}.h5ad"
    expected_full = ad.read_h5ad(src)
    n_obs, n_vars = expected_full.shape
    rng = np.random.default_rng(len(name))
    obs = rng.permutation(n_obs)[: max(1, (2 * n_obs) // 3)]
    var = rng.permutation(n_vars)[: max(1, n_vars // 2)]
    if n_obs > 2:
        obs = np.concatenate([obs, obs[:2]])  # repeats, as anndata allows
    out = tmp_path / "out.h5ad"
    res = run(
        [
            annpage_bin, "subset", src, out,
            "--obs-indices", _write_list(tmp_path / "obs.txt", obs),
            "--var-indices", _write_list(tmp_path / "var.txt", var),
            "--cache-mb", "1",
        ]
    )
    assert res.returncode == 0, res.stderr
    expected = expected_full[obs][:, var].copy()
    got = ad.read_h5ad(out)
    assert_equal(got, expected)
    assert list(got.obs_names) == list(expected_full.obs_names[obs])


def test_subset_names_and_query(annpage_bin: Path, tmp_path: Path) -> None:
    src = FIXTURES / "pbmc_like_csr.h5ad"
    full = ad.read_h5ad(src)
    cell_type = str(full.obs["cell_type"].cat.categories[1])
    genes = list(full.var_names[[7, 3, 500, 42]])
    out = tmp_path / "q.h5ad"
    res = run(
        [
            annpage_bin, "subset", src, out,
            "--obs-query", f"cell_type == '{cell_type}'",
            "--var-names", _write_list(tmp_path / "genes.txt", genes),
        ]
    )
    assert res.returncode == 0, res.stderr
    expected = full[full.obs["cell_type"] == cell_type][:, genes].copy()
    assert expected.n_obs > 0
    assert_equal(ad.read_h5ad(out), expected)


def test_subset_bad_input_is_one_clear_line(annpage_bin: Path, tmp_path: Path) -> None:
    src = FIXTURES / "x_csr_f32.h5ad"
    n_obs = ad.read_h5ad(src).n_obs
    out = tmp_path / "bad.h5ad"
    res = run([annpage_bin, "subset", src, out, "--obs-indices", _write_list(tmp_path / "o.txt", [0, n_obs + 5])])
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert str(n_obs + 5) in lines[0]
    assert not out.exists()
    res = run([annpage_bin, "subset", src, out, "--obs-names", _write_list(tmp_path / "n.txt", ["no-such-cell"])])
    assert res.returncode != 0 and "no-such-cell" in res.stderr
    assert not out.exists()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """anndata's own test object, 60 × 40: every column type in obs, var and in the data frames
    of obsm/varm, sparse and dense matrices, nested uns (awkward arrays only in uns: annpage
    cannot select rows of one)."""
    random.seed(0)
    np.random.seed(0)
    a = gen_adata(
        (60, 40), obsm_types=DEFAULT_KEY_TYPES, varm_types=DEFAULT_KEY_TYPES, random_state=np.random.default_rng(0)
    )
    out = tmp_path_factory.mktemp("generated") / "generated.h5ad"
    a.write_h5ad(out)
    return out


def _categories(df: pd.DataFrame) -> dict[str, int]:
    return {k: len(c.cat.categories) for k, c in df.items() if isinstance(c.dtype, pd.CategoricalDtype)}


def test_generated_subsets_match_anndata(annpage_bin: Path, samples_bin: Path, generated: Path, tmp_path: Path) -> None:
    full = ad.read_h5ad(generated)
    rng = np.random.default_rng(3)
    obs = rng.permutation(full.n_obs)[: full.n_obs // 3]
    var = rng.permutation(full.n_vars)[: full.n_vars // 2]
    obs_file = _write_list(tmp_path / "obs.txt", obs)
    var_file = _write_list(tmp_path / "var.txt", var)
    expected = full[obs][:, var].copy()
    # The case at stake: the subset's data frames use fewer categories than the file's.
    for attr in ("obsm", "varm"):
        before, after = _categories(getattr(full, attr)["df"]), _categories(getattr(expected, attr)["df"])
        assert before.keys() == after.keys() and len(before) >= 2
        assert all(after[k] < before[k] for k in before), (attr, before, after)

    out = tmp_path / "cli.h5ad"
    res = run([annpage_bin, "subset", generated, out, "--obs-indices", obs_file, "--var-indices", var_file])
    assert res.returncode == 0, res.stderr
    res = run([samples_bin, "subset", generated, obs_file, var_file, tmp_path])
    assert res.returncode == 0, res.stderr
    for path in (out, tmp_path / "to_memory.h5ad", tmp_path / "in_memory.h5ad"):
        got = ad.read_h5ad(path)
        assert_equal(got, expected)
        assert _categories(got.obsm["df"]) == _categories(expected.obsm["df"]), path.name
        assert _categories(got.varm["df"]) == _categories(expected.varm["df"]), path.name


def test_a_layer_of_strings_opens_and_is_written_as_anndata_writes_it(annpage_bin: Path, tmp_path: Path) -> None:
    """anndata writes an object layer (and obsm entry) of strings as a string array; it must
    open, subset and convert like any other element."""
    a = ad.AnnData(np.arange(12, dtype=np.float32).reshape(4, 3))
    a.layers["words"] = np.array([[f"w{i}{j}" for j in range(3)] for i in range(4)], dtype=object)
    a.obsm["tags"] = np.array([["x", "y"]] * 4, dtype=object)
    src = tmp_path / "words.h5ad"
    a.write_h5ad(src)
    obs_file = _write_list(tmp_path / "obs.txt", [3, 1])
    for out in (tmp_path / "sub.h5ad", tmp_path / "sub.zarr"):
        res = run([annpage_bin, "subset", src, out, "--obs-indices", obs_file])
        assert res.returncode == 0, res.stderr
        got = ad.read_zarr(out) if out.suffix == ".zarr" else ad.read_h5ad(out)
        assert_equal(got, a[[3, 1]].copy())
    out = tmp_path / "plain.h5ad"
    res = run([annpage_bin, "convert", src, out])
    assert res.returncode == 0, res.stderr
    assert_equal(ad.read_h5ad(out), a)


def _dense_f64(x) -> np.ndarray:
    return x.toarray().astype(np.float64) if sp.issparse(x) else np.asarray(x, dtype=np.float64)


@pytest.mark.parametrize("threads", [[], ["--threads", "1"]], ids=["all-cores", "one-thread"])
@pytest.mark.parametrize("name", ["pbmc_like_csr", "x_csc_f64", "x_dense_f32", "x_dense_u8", "x_nan_inf"])
def test_stats_match_numpy(annpage_bin: Path, tmp_path: Path, name: str, threads: list[str]) -> None:
    src = FIXTURES / f"{name}.h5ad"
    a = ad.read_h5ad(src)
    x = _dense_f64(a.X)
    prefix = tmp_path / name
    res = run([annpage_bin, "stats", src, "--chunk-rows", "7", "--cache-mb", "1", "--out-prefix", prefix, *threads])
    assert res.returncode == 0, res.stderr
    obs = pd.read_csv(f"{prefix}.obs.tsv", sep="\t", keep_default_na=False, dtype={"obs_name": str})
    var = pd.read_csv(f"{prefix}.var.tsv", sep="\t", keep_default_na=False, dtype={"var_name": str})
    assert list(obs["obs_name"]) == list(a.obs_names)
    assert list(var["var_name"]) == list(a.var_names)
    np.testing.assert_array_equal(obs["n_genes"].to_numpy(), (x != 0).sum(axis=1))
    np.testing.assert_allclose(obs["total_counts"].astype(float), x.sum(axis=1), rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(var["n_cells"].to_numpy(), (x != 0).sum(axis=0))
    np.testing.assert_allclose(var["mean"].astype(float), x.mean(axis=0), rtol=1e-6, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(var["var"].astype(float), x.var(axis=0, ddof=1), rtol=1e-6, atol=1e-12, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# Peak memory on a file several times larger than the budget.

BUDGET_MB = 16


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("big") / "big.h5ad"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_big_h5ad.py"), str(out), "--cells", "50000", "--genes", "5000", "--nnz", "300"],
        check=True,
    )
    return out


ZARR_COPIES = {
    "v3-sharded-zstd": ["--zarr-format", "3", "--compression", "zstd"],
    "v2-gzip": ["--zarr-format", "2", "--compression", "gzip"],
}


@pytest.mark.parametrize("store", ["h5ad", *ZARR_COPIES])
def test_peak_memory_stays_within_budget(annpage_bin: Path, big_file: Path, tmp_path: Path, store: str) -> None:
    """`stats` and `subset` of a file several times the budget, and of its Zarr copies (v3 in
    anndata 0.13's shards of zstd chunks, read without zarrs; v2 gzip chunks, through zarrs)."""
    size_mb = big_file.stat().st_size / 2**20
    with h5py.File(big_file, "r") as f:
        x_mb = sum(f["X"][k].size * f["X"][k].dtype.itemsize for k in ("data", "indices")) / 2**20
    assert x_mb >= 4 * BUDGET_MB, f"X is only {x_mb:.0f} MiB: not several times the budget"
    n_obs, n_vars = 50_000, 5_000
    # What the caller asked for: the per-cell and per-gene results with their names, and one
    # chunk of 2,000 rows in memory (~300 values a row; 12 bytes a value as read, 8 more as f64).
    names_mb = (n_obs * 48 + n_vars * 48) / 2**20
    chunk_mb = 2000 * 300 * 20 / 2**20
    slack_mb = 16  # allocator and libhdf5's own per-dataset chunk caches
    src = big_file
    if store in ZARR_COPIES:
        src = tmp_path / "big.zarr"
        res = run([annpage_bin, "convert", big_file, src, *ZARR_COPIES[store]])
        assert res.returncode == 0, res.stderr
        # Zarr's names are decoded by zarrs into strings of its own first, then into annpage's.
        names_mb *= 2
        # The Zarr readers' fixed buffers outside the cache, whatever the store's size: each
        # array's pool of spare chunk mappings (`ChunkPool::MAX_BYTES`, 4 MiB; X's data and
        # indices) and each decoding thread's kept scratch for frames and partial chunks
        # (`KEPT_SCRATCH_BYTES`, 4 MiB; one thread per core and the caller).
        slack_mb += 2 * 4 + 4 * ((os.cpu_count() or 1) + 1)
    # The process's fixed cost (binary, libhdf5, names): `info` reads metadata only.
    base, res = peak_rss_mb([annpage_bin, "info", src])
    assert res.returncode == 0, res.stderr

    peak, res = peak_rss_mb(
        [annpage_bin, "stats", src, "--cache-mb", BUDGET_MB, "--chunk-rows", 2000, "--out-prefix", tmp_path / "big"]
    )
    assert res.returncode == 0, res.stderr
    output_mb = (n_obs * 16 + n_vars * 32) / 2**20 + names_mb
    assert peak - base <= BUDGET_MB + output_mb + chunk_mb + slack_mb, (
        f"stats peaked at {peak:.0f} MiB ({base:.0f} MiB at rest) on a file of {size_mb:.0f} MiB "
        f"with a {BUDGET_MB} MiB budget"
    )
    assert (tmp_path / "big.var.tsv").read_text().count("\n") == n_vars + 1

    obs = np.random.default_rng(1).permutation(n_obs)[:3000]
    out = tmp_path / "sub.h5ad"
    peak, res = peak_rss_mb(
        [annpage_bin, "subset", src, out, "--obs-indices", _write_list(tmp_path / "o.txt", obs), "--cache-mb", BUDGET_MB]
    )
    assert res.returncode == 0, res.stderr
    # Output: the selected rows of X (~3000 * 300 values * 8 bytes) plus obs and obsm rows.
    out_mb = out.stat().st_size / 2**20
    assert peak - base <= BUDGET_MB + out_mb + names_mb + chunk_mb + slack_mb, (
        f"subset peaked at {peak:.0f} MiB ({base:.0f} MiB at rest), output {out_mb:.0f} MiB, budget {BUDGET_MB} MiB"
    )
    got = ad.read_h5ad(out)
    assert got.n_obs == 3000 and list(got.obs_names[:3]) == [f"cell_{i}" for i in obs[:3]]
    expected = ad.read_h5ad(big_file, backed="r")[obs].to_memory()
    assert (got.X != expected.X).nnz == 0


@pytest.mark.parametrize("out_name", ["o.h5ad", "o.zarr"])
def test_a_large_obsm_is_streamed_not_read_whole(annpage_bin: Path, tmp_path: Path, out_name: str) -> None:
    """An obsm array eight times the budget (50,000 x 640 float32) goes through the same
    chunked reads and writes as X."""
    n, k = 50_000, 640
    rng = np.random.default_rng(3)
    src = tmp_path / "wide_obsm.h5ad"
    big = rng.random((n, k), dtype=np.float32)
    ad.AnnData(
        sp.random(n, 20, density=0.05, format="csr", dtype=np.float32, random_state=3),
        obsm={"X_wide": big, "df": pd.DataFrame({"a": np.arange(n)}, index=[str(i) for i in range(n)])},
    ).write_h5ad(src)
    assert big.nbytes / 2**20 >= 7 * BUDGET_MB
    base, res = peak_rss_mb([annpage_bin, "info", src])
    assert res.returncode == 0, res.stderr
    out = tmp_path / out_name
    peak, res = peak_rss_mb([annpage_bin, "convert", src, out, "--cache-mb", BUDGET_MB])
    assert res.returncode == 0, res.stderr
    names_mb = n * 48 / 2**20 * 3  # names of obs and of the obsm frame, as strings and written
    slack_mb = 40  # allocator, libhdf5's chunk caches, Zarr's shard buffers
    assert peak - base <= BUDGET_MB + names_mb + slack_mb, (
        f"convert peaked at {peak:.0f} MiB ({base:.0f} MiB at rest); obsm is {big.nbytes / 2**20:.0f} MiB"
    )
    got = ad.read_zarr(out) if out_name.endswith(".zarr") else ad.read_h5ad(out)
    assert_equal(got, ad.read_h5ad(src))


def test_convert_to_gzip_streams_on_threads(annpage_bin: Path, big_file: Path, tmp_path: Path) -> None:
    """`annpage convert --compression gzip` on several threads: stock anndata reads the output
    equal to the input, h5py sees deflate at the level asked on every array, and the process
    stays within the budget plus what is held whole (obs, var and obsm's X_pca)."""
    base, res = peak_rss_mb([annpage_bin, "info", big_file])
    assert res.returncode == 0, res.stderr
    out = tmp_path / "big-gzip.h5ad"
    peak, res = peak_rss_mb(
        [annpage_bin, "convert", big_file, out, "--compression", "gzip", "--gzip-level", 5, "--threads", 3, "--cache-mb", BUDGET_MB]
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == "", res.stderr
    n_obs, n_vars = 50_000, 5_000
    with h5py.File(big_file, "r") as f:
        x_mb = sum(f["X"][k].size * f["X"][k].dtype.itemsize for k in ("data", "indices")) / 2**20
        whole_mb = f["obsm/X_pca"].size * f["obsm/X_pca"].dtype.itemsize / 2**20
    assert x_mb >= 4 * BUDGET_MB, f"X is only {x_mb:.0f} MiB: not several times the budget"
    names_mb = (n_obs * 48 + n_vars * 48) / 2**20
    frames_mb = (n_obs * 16 + n_vars * 16) / 2**20  # obs/var columns other than names
    slack_mb = 24  # allocator, libhdf5's chunk caches, compressed chunks in flight
    assert peak - base <= BUDGET_MB + whole_mb + names_mb + frames_mb + slack_mb, (
        f"convert peaked at {peak:.0f} MiB ({base:.0f} MiB at rest) for X of {x_mb:.0f} MiB, "
        f"budget {BUDGET_MB} MiB"
    )
    with h5py.File(out, "r") as f:
        wrong = []

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset) and obj.shape and (obj.compression, obj.compression_opts) != ("gzip", 5):
                wrong.append(f"/{name}: {obj.compression} {obj.compression_opts}")

        f.visititems(visit)
        assert not wrong, wrong
    assert_equal(ad.read_h5ad(big_file), ad.read_h5ad(out))
