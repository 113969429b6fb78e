"""annpage against the newest anndata from PyPI (0.13 with pandas 3; `./dev test` runs this
file in `.venv-latest`, scripts/requirements-latest.txt).

anndata 0.13 writes Zarr v3 by default and, under pandas 3, every text column and index as a
`nullable-string-array` with `na-value: "NaN"` (pandas' `str` dtype); it lists X among
`adata.layers` under the key None. Each case is written by anndata in each format, then:

* annpage's package reads it (in memory, and backed then `to_memory()`) equal to anndata's read;
* annpage's package writes the object, and anndata reads it back equal to what it reads of its
  own write;
* `annpage convert` between the formats keeps it equal;
* `annpage.concat` equals `anndata.concat`.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal

import annpage

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("ANNPAGE_BIN", ROOT / "target" / "debug" / "annpage"))
FORMATS = ["h5ad", "zarr2", "zarr3"]


def test_the_stack_is_the_newest():
    assert int(pd.__version__.split(".")[0]) >= 3, pd.__version__
    assert tuple(int(p) for p in ad.__version__.split(".")[:2]) >= (0, 13), ad.__version__


def make(case: str) -> ad.AnnData:
    rng = np.random.default_rng(len(case))
    n, m = {"empty_obs": (0, 5), "empty_vars": (6, 0)}.get(case, (9, 5))
    obs = pd.DataFrame(
        {
            "text": pd.array([f"t{i % 3}" for i in range(n)], dtype="str"),
            "text_missing": pd.array([None if i % 4 == 0 else f"u{i}" for i in range(n)], dtype="str"),
            "pd_string": pd.array([None if i % 3 == 1 else f"s{i}" for i in range(n)], dtype="string"),
            "cat": pd.Categorical([["b", "a"][i % 2] for i in range(n)], categories=["a", "b", "unused"]),
            "ordered": pd.Categorical([["lo", "hi"][i % 2] for i in range(n)], categories=["lo", "hi"], ordered=True),
            "int": pd.array([None if i == 2 else i for i in range(n)], dtype="Int32"),
            "flag": pd.array([None if i == 1 else i % 2 == 0 for i in range(n)], dtype="boolean"),
            "value": rng.random(n),
        },
        index=pd.Index([f"c{i % 4 if case == 'duplicated' else i}" for i in range(n)], dtype="str"),
    )
    var = pd.DataFrame({"gene": pd.array([f"g{j}" for j in range(m)], dtype="str")},
                       index=pd.Index([f"G{j}" for j in range(m)], dtype="str"))
    dense = rng.poisson(0.7, (n, m)).astype(np.float32)
    x = {"csc": sp.csc_matrix(dense), "dense": dense}.get(case, sp.csr_matrix(dense))
    a = ad.AnnData(x, obs=obs, var=var)
    a.layers["counts"] = sp.csr_matrix(dense.astype(np.int32))
    a.obsm["X_pca"] = rng.random((n, 2))
    a.obsm["frame"] = pd.DataFrame({"u": rng.random(n)}, index=obs.index)
    a.varm["loadings"] = rng.random((m, 2))
    a.obsp["distances"] = sp.csr_matrix(np.eye(n, dtype=np.float64))
    a.uns = {"method": "test", "none": None, "numbers": np.arange(3), "nested": {"k": "v", "x": 1.5},
             "labels": np.array(["p", "q"], dtype=object)}
    # anndata's read_zarr drops the raw of an object without observations (its h5ad reader and
    # annpage keep it): no raw there.
    if case not in ("empty_obs", "empty_vars"):
        a.raw = a
    return a


CASES = ["csr", "csc", "dense", "duplicated", "empty_obs", "empty_vars"]


def write_anndata(a: ad.AnnData, fmt: str, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "h5ad":
            a.write_h5ad(path, convert_strings_to_categoricals=False)
        else:
            with ad.settings.override(zarr_write_format=int(fmt[-1])):
                a.write_zarr(path, convert_strings_to_categoricals=False)
    return path


def read_anndata(path: Path) -> ad.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path) if path.suffix == ".h5ad" else ad.read_zarr(path)


def name(fmt: str) -> str:
    return "a.h5ad" if fmt == "h5ad" else f"a_{fmt}.zarr"


def same(expected: ad.AnnData, got: ad.AnnData) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_equal(got, expected)
    for e, g in [(expected.obs, got.obs), (expected.var, got.var)]:
        assert list(g.columns) == list(e.columns)
        assert g.index.dtype == e.index.dtype, (g.index.dtype, e.index.dtype)
        assert list(g.dtypes) == list(e.dtypes)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES)
def test_annpage_reads_what_anndata_writes(case: str, fmt: str, tmp_path: Path):
    path = write_anndata(make(case), fmt, tmp_path / name(fmt))
    expected = read_anndata(path)
    read = annpage.read_h5ad if fmt == "h5ad" else annpage.read_zarr
    same(expected, read(path))
    backed = read(path, backed="r")
    same(expected, backed.to_memory())
    assert backed.obs_names.dtype == expected.obs_names.dtype
    mask = (backed.obs["text"] == "t1").to_numpy()
    assert backed[mask].n_obs == int(mask.sum())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES)
def test_anndata_reads_what_annpage_writes(case: str, fmt: str, tmp_path: Path):
    a = make(case)
    expected = read_anndata(write_anndata(a, fmt, tmp_path / f"ref_{name(fmt)}"))
    out = tmp_path / name(fmt)
    if fmt == "h5ad":
        annpage.write_h5ad(a, out, convert_strings_to_categoricals=False)
    else:
        annpage.write_zarr(a, out, zarr_format=int(fmt[-1]), convert_strings_to_categoricals=False)
    same(expected, read_anndata(out))


@pytest.mark.parametrize(("src", "dst"), [("h5ad", "zarr3"), ("zarr3", "h5ad"), ("zarr2", "zarr3"), ("h5ad", "zarr2")])
@pytest.mark.parametrize("case", ["csr", "dense", "duplicated", "empty_obs"])
def test_convert_keeps_what_anndata_wrote(case: str, src: str, dst: str, tmp_path: Path):
    path = write_anndata(make(case), src, tmp_path / f"in_{name(src)}")
    out = tmp_path / f"out_{name(dst)}"
    args = [] if dst == "h5ad" else ["--zarr-format", dst[-1]]
    result = subprocess.run([str(BIN), "convert", str(path), str(out), *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    same(read_anndata(path), read_anndata(out))


@pytest.mark.parametrize("options", [
    {"join": "inner"},
    {"join": "outer", "label": "batch", "keys": ["x", "y", "z"], "index_unique": "-"},
    {"join": "outer", "merge": "same", "uns_merge": "unique"},
])
def test_concat_equals_anndata(options: dict, tmp_path: Path):
    parts = [make("csr"), make("dense")[2:7], make("duplicated")[:, 1:]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ad.concat(parts, **options)
        got = annpage.concat(parts, **options)
    same(expected, got)


def test_concat_of_string_and_str_columns_is_anndatas_in_either_order():
    def part(values, dtype, prefix):
        a = ad.AnnData(np.ones((2, 1), dtype=np.float32))
        a.obs_names = [f"{prefix}{i}" for i in range(2)]
        a.obs["c"] = pd.array(values, dtype=dtype)
        return a

    na = lambda: part(["x", None], "string", "a")  # noqa: E731
    nan = lambda: part(["y", None], pd.StringDtype(na_value=np.nan), "b")  # noqa: E731
    for parts in ([na, nan], [nan, na]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = ad.concat([p() for p in parts])
            got = annpage.concat([p() for p in parts])
        same(expected, got)


@pytest.mark.parametrize("join", ["inner", "outer"])
@pytest.mark.parametrize("kind", ["csr", "dense"])
def test_concat_of_objects_some_without_x_is_anndatas(join: str, kind: str, tmp_path: Path):
    # anndata 0.13 treats X as a layer: an inner join drops it, an outer one fills it.
    with_x = make(kind)[:4].copy()
    without = make("csr")[4:].copy()
    without.X = None
    parts = [with_x, without]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ad.concat(parts, join=join)
        same(expected, annpage.concat(parts, join=join))
        paths = [tmp_path / "a.h5ad", tmp_path / "b.h5ad"]
        for p, a in zip(paths, parts):
            a.write_h5ad(p)
        annpage.concat_on_disk(paths, tmp_path / "out.h5ad", join=join)
        expected.write_h5ad(tmp_path / "ref.h5ad")  # text columns become categoricals, as ours
        same(ad.read_h5ad(tmp_path / "ref.h5ad"), ad.read_h5ad(tmp_path / "out.h5ad"))
    assert (expected.X is None) == (join == "inner")


def test_an_index_named_like_the_column_holding_it_is_written_as_anndata_writes_it(tmp_path: Path):
    a = make("csr")
    a.obs["cell"] = a.obs_names.copy()
    a.obs.index.name = "cell"
    expected = read_anndata(write_anndata(a, "h5ad", tmp_path / "ref.h5ad"))
    annpage.write_h5ad(a, tmp_path / "ours.h5ad", convert_strings_to_categoricals=False)
    same(expected, read_anndata(tmp_path / "ours.h5ad"))
    result = subprocess.run([str(BIN), "convert", str(tmp_path / "ref.h5ad"), str(tmp_path / "c.zarr")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    same(expected, read_anndata(tmp_path / "c.zarr"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_text_columns_read_with_anndatas_dtype(fmt: str, tmp_path: Path):
    # A column of objects is stored as a plain string array; anndata 0.13 reads it from an
    # .h5ad file as `str` and from a Zarr store (zarr 3: numpy's StringDType) as objects.
    a = make("csr")
    a.obs["plain"] = pd.Series([f"p{i}" for i in range(a.n_obs)], index=a.obs_names, dtype=object)
    path = write_anndata(a, fmt, tmp_path / name(fmt))
    expected = read_anndata(path)
    read = annpage.read_h5ad if fmt == "h5ad" else annpage.read_zarr
    same(expected, read(path))
    same(expected, read(path, backed="r").to_memory())
    assert expected.obs["plain"].dtype == (object if fmt != "h5ad" else "str")


@pytest.mark.parametrize("merge", ["first", "unique", "only"])
def test_merged_bools_some_inputs_lack_become_nullable_booleans(merge: str, tmp_path: Path):
    parts = [make("csr"), make("dense")[:, 1:].copy()]
    # Only the part without the first gene has the column: reindexed, that gene is missing.
    parts[1].var["highly_variable"] = np.arange(parts[1].n_vars) % 2 == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ad.concat(parts, join="outer", merge=merge)
        assert expected.var["highly_variable"].dtype == "boolean"
        same(expected, annpage.concat(parts, join="outer", merge=merge))
        paths = [tmp_path / "a.h5ad", tmp_path / "b.h5ad"]
        for p, a in zip(paths, parts):
            a.write_h5ad(p)
        annpage.concat_on_disk(paths, tmp_path / "out.h5ad", join="outer", merge=merge)
        expected.write_h5ad(tmp_path / "ref.h5ad")
        same(ad.read_h5ad(tmp_path / "ref.h5ad"), ad.read_h5ad(tmp_path / "out.h5ad"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_record_arrays_in_uns_read_and_write_as_anndatas(fmt: str, tmp_path: Path):
    # scanpy's rank_genes_groups results; zarr 3.4 stores them as the `struct` data type with
    # an object for the fill value (3.1 wrote `structured` and base64).
    a = make("csr")
    a.uns["ranks"] = np.array([(1, 2.5, True), (3, -1.0, False)], dtype=[("a", "i4"), ("b", "f8"), ("c", "?")])
    path = write_anndata(a, fmt, tmp_path / name(fmt))
    expected = read_anndata(path)
    read = annpage.read_h5ad if fmt == "h5ad" else annpage.read_zarr
    same(expected, read(path))
    out = tmp_path / f"ours_{name(fmt)}"
    if fmt == "h5ad":
        annpage.write_h5ad(a, out, convert_strings_to_categoricals=False)
    else:
        annpage.write_zarr(a, out, zarr_format=int(fmt[-1]), convert_strings_to_categoricals=False)
    same(expected, read_anndata(out))


def test_a_view_of_no_cells_keeps_the_dtype_of_its_categories(tmp_path: Path):
    a = make("csr")
    path = write_anndata(a, "h5ad", tmp_path / "a.h5ad")
    none = np.zeros(a.n_obs, dtype=bool)
    expected = read_anndata(path)[none].copy()
    got = annpage.read_h5ad(path, backed="r")[none].to_memory()
    same(expected, got)
    assert got.obs["cat"].cat.categories.dtype == expected.obs["cat"].cat.categories.dtype


@pytest.mark.parametrize("dtype", ["int32", "uint8", "float32", "float16", "bool"])
@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("fill", [None, 0, 7, -1, 0.0, 7.5])
def test_outer_fills_give_anndatas_dtypes(dtype: str, kind: str, fill, tmp_path: Path):
    # anndata 0.13 fills dense arrays as sparse ones: numpy's promotion of the array's dtype
    # and the fill's (`where(missing, asarray(fill), taken)`).
    if kind == "csr" and dtype == "float16":
        pytest.skip("scipy.sparse has no float16")
    make_x = (lambda a: a) if kind == "dense" else sp.csr_matrix

    def obj(n: int, names: list[str], genes: list[str]) -> ad.AnnData:
        x = make_x(np.arange(1, n * 2 + 1).reshape(n, 2).astype(dtype))
        return ad.AnnData(x, obs=pd.DataFrame(index=names), var=pd.DataFrame(index=genes))

    parts = [obj(2, ["a", "b"], ["g0", "g1"]), obj(1, ["c"], ["g1", "g2"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ad.concat(parts, join="outer", fill_value=fill)
        got = annpage.concat(parts, join="outer", fill_value=fill)
    assert got.X.dtype == expected.X.dtype
    same(expected, got)
