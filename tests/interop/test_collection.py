"""Several files as one collection (`annpage subset IN... OUT`, `annpage stats IN...`), judged by
`anndata.concat` of the same files, then subset.

Differential tests on the random sets of `concat_cases.make_case` (concatenated along obs): each
set is written with anndata; `annpage subset` reads the files as one collection (with the
case's `join`, `merge`, `label`, `keys`, `index_unique`, `fill_value`, `pairwise`) and writes a
random selection of cells and genes — sorted (read file by file), shuffled across files
(gathered), or everything — and the output must equal `anndata.concat(...)[cells, genes]`
(`assert_equal`, names, column order, kinds and dtypes), `raw` left out as anndata's
`AnnCollection` leaves it. Where anndata's concat fails, annpage must fail with one line and no
output.

`ANNPAGE_COLLECTION_CASES=N` runs N random cases instead of the default 150.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from concat_cases import anndata_concat, make_case
from support import FIXTURES, run
from test_concat import compare, read, write

N_CASES = int(os.environ.get("ANNPAGE_COLLECTION_CASES", "150"))


def collection_args(kwargs: dict) -> list[str]:
    """The concatenation options of `annpage subset`/`stats` for `kwargs` (along obs). `--join`
    is always given: one input with no option is read as the file itself, not as a
    concatenation of one."""
    args = ["--join", kwargs.get("join", "inner")]
    for name in ("merge", "uns_merge"):
        if kwargs.get(name) is not None:
            args += [f"--{name.replace('_', '-')}", kwargs[name]]
    if kwargs.get("label") is not None:
        args += ["--label", kwargs["label"]]
    if kwargs.get("keys") is not None:
        args += ["--keys", ",".join(kwargs["keys"])]
    if kwargs.get("index_unique") is not None:
        args += [f"--index-unique={kwargs['index_unique']}"]
    if kwargs.get("fill_value") is not None:
        args += [f"--fill-value={kwargs['fill_value']!r}"]
    if kwargs.get("pairwise"):
        args.append("--pairwise")
    return args


def selection(rng: np.random.Generator, n: int) -> np.ndarray | None:
    """Random positions of an axis of `n`: sorted, shuffled, or `None` (all)."""
    style = rng.choice(["all", "sorted", "shuffled"])
    if style == "all" or n == 0:
        return None
    k = int(rng.integers(0, n + 1))
    picked = rng.choice(n, size=k, replace=False)
    return np.sort(picked) if style == "sorted" else picked


@pytest.mark.parametrize("seed", range(N_CASES))
def test_random_collection(seed: int, annpage_bin: Path, tmp_path: Path) -> None:
    case = make_case(seed)
    kwargs = {**case.kwargs, "axis": "obs"}
    paths = []
    for i, a in enumerate(case.adatas):
        p = tmp_path / f"in{i}.h5ad"
        write(a, p)
        paths.append(p)
    inputs = [read(p) for p in paths]
    rng = np.random.default_rng(10_000 + seed)
    out = tmp_path / "out.h5ad"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            whole = anndata_concat(inputs, **kwargs)
        # annpage's concatenation is what anndata writes: one anndata cannot write is refused
        # when the collection opens, even if the selection alone could be written (a known
        # difference).
        write(whole.copy(), tmp_path / "whole.h5ad")  # writing converts strings in place
    except Exception:  # noqa: BLE001 - any failure of anndata's must be annpage's too
        proc = run([annpage_bin, "subset", *paths, out, *collection_args(kwargs)])
        assert proc.returncode != 0, "anndata's concat fails, annpage's collection did not"
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not out.exists()
        return
    cells, genes = selection(rng, whole.n_obs), selection(rng, whole.n_vars)
    args = [annpage_bin, "subset", *paths, out, *collection_args(kwargs)]
    for flag, picked in (("--obs-indices", cells), ("--var-indices", genes)):
        if picked is not None:
            listed = tmp_path / f"{flag[2:]}.txt"
            listed.write_text("".join(f"{i}\n" for i in picked))
            args += [flag, listed]
    proc = run(args)
    # Nothing selected: the whole concatenation, unused categories kept as anndata.concat
    # keeps them (a view, even of everything, prunes them as anndata's view copied does).
    if cells is None and genes is None:
        expected = whole.copy()
    else:
        expected = whole[
            slice(None) if cells is None else cells, slice(None) if genes is None else genes
        ].copy()
    expected.raw = None
    exp_path = tmp_path / "expected.h5ad"
    try:
        write(expected, exp_path)
    except Exception:  # noqa: BLE001 - what anndata cannot write, annpage refuses
        assert proc.returncode != 0
        return
    assert proc.returncode == 0, proc.stderr
    compare(read(out), read(exp_path))


def _assert_stats_of_whole_equal(annpage_bin: Path, tmp_path: Path) -> None:
    """`annpage stats` of `tmp_path/whole.h5ad` gives the TSVs `coll.*.tsv` (names in order,
    values to 1e-12)."""
    ref = run([annpage_bin, "stats", tmp_path / "whole.h5ad", "--out-prefix", tmp_path / "whole"])
    assert ref.returncode == 0, ref.stderr
    for part in ("obs", "var"):
        g = pd.read_csv(tmp_path / f"coll.{part}.tsv", sep="\t", index_col=0)
        e = pd.read_csv(tmp_path / f"whole.{part}.tsv", sep="\t", index_col=0)
        assert list(g.index) == list(e.index)
        pd.testing.assert_frame_equal(g, e, rtol=1e-12)


@pytest.mark.parametrize("join,dense", [("outer", False), ("inner", False), ("outer", True)])
def test_stats_of_a_collection_equal_the_concatenated_file(
    annpage_bin: Path, tmp_path: Path, join: str, dense: bool
) -> None:
    """`annpage stats A B` gives the statistics of the concatenation (written by anndata), gene
    sets differing: a sparse outer join fills zeros (each file is then reduced in its own
    genes), an inner join drops genes, a dense outer join fills NaN."""
    src = read(FIXTURES / "pbmc_like_csr.h5ad")
    a = src[:700, 100:].copy()
    b = src[700:1500, :900][:, ::-1].copy()
    if dense:
        a.X, b.X = a.X.toarray(), b.X.toarray()
    paths = [tmp_path / "a.h5ad", tmp_path / "b.h5ad"]
    write(a, paths[0])
    write(b, paths[1])
    whole = ad.concat([a, b], join=join, label="batch", index_unique="-")
    write(whole, tmp_path / "whole.h5ad")
    got = run([annpage_bin, "stats", *paths, "--join", join, "--label", "batch",
               "--index-unique=-", "--out-prefix", tmp_path / "coll", "--chunk-rows", "300"])
    assert got.returncode == 0, got.stderr
    _assert_stats_of_whole_equal(annpage_bin, tmp_path)
    # Several inputs need an output prefix.
    bad = run([annpage_bin, "stats", *paths])
    assert bad.returncode != 0 and "--out-prefix" in bad.stderr


def test_stats_of_files_of_one_chunk_and_of_none_equal_the_concatenated_file(
    annpage_bin: Path, tmp_path: Path
) -> None:
    """Each file's scan starts while the one before is reduced: files of exactly one chunk,
    and a file without cells between them, give the concatenation's statistics."""
    src = read(FIXTURES / "pbmc_like_csr.h5ad")
    parts = [src[:500].copy(), src[500:500].copy(), src[500:1000].copy(), src[1000:].copy()]
    paths = [tmp_path / f"p{i}.h5ad" for i in range(len(parts))]
    for part, path in zip(parts, paths):
        write(part, path)
    write(ad.concat(parts, label="batch"), tmp_path / "whole.h5ad")
    got = run([annpage_bin, "stats", *paths, "--label", "batch", "--out-prefix", tmp_path / "coll",
               "--chunk-rows", "500"])
    assert got.returncode == 0, got.stderr
    _assert_stats_of_whole_equal(annpage_bin, tmp_path)


def test_collection_subset_by_query_across_files(annpage_bin: Path, tmp_path: Path) -> None:
    """An obs query runs on the concatenated obs (the label column included)."""
    src = read(FIXTURES / "pbmc_like_csr.h5ad")
    parts = [src[:900].copy(), src[900:].copy()]
    paths = []
    for i, p in enumerate(parts):
        paths.append(tmp_path / f"p{i}.h5ad")
        write(p, paths[-1])
    out = tmp_path / "q.h5ad"
    proc = run([annpage_bin, "subset", *paths, out, "--label", "part", "--keys", "x,y",
                "--obs-query", "part == 'y' and n_genes > 40"])
    assert proc.returncode == 0, proc.stderr
    whole = ad.concat(parts, label="part", keys=["x", "y"])
    expected = whole[(whole.obs["part"] == "y") & (whole.obs["n_genes"] > 40)].copy()
    compare(read(out), expected)


def test_a_column_anndata_cannot_write_is_named(annpage_bin: Path, tmp_path: Path) -> None:
    """Cells of B only, with A's text column: all missing, which anndata's writer refuses (no
    strings to make categories of); annpage refuses too, naming the column."""
    a = ad.AnnData(np.ones((2, 2), np.float32), obs=pd.DataFrame({"only_a": ["x", "y"]}, index=["a0", "a1"]))
    b = ad.AnnData(np.ones((2, 2), np.float32), obs=pd.DataFrame(index=["b0", "b1"]))
    paths = [tmp_path / "a.h5ad", tmp_path / "b.h5ad"]
    for adata, path in zip((a, b), paths):
        adata.write_h5ad(path)
    out = tmp_path / "out.h5ad"
    res = run([annpage_bin, "subset", *paths, out, "--join", "outer", "--label", "batch",
               "--obs-query", 'batch == "1"'])
    assert res.returncode == 1 and "column 'only_a'" in res.stderr, res.stderr
    assert not out.exists()
    with pytest.raises(Exception):  # noqa: B017, PT011 - anndata's writer refuses it too
        ad.concat([a, b], join="outer", label="batch")[2:].copy().write_h5ad(tmp_path / "theirs.h5ad")
