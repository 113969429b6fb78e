"""annpage.write_h5ad and annpage.concat on anndata objects in memory: the file annpage
writes reads back equal to the one anndata writes, and concat equals anndata.concat on the
random cases of the CLI's differential tests."""

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

from conftest import FIXTURES, ROOT

sys.path.insert(0, str(ROOT / "tests" / "interop"))
from concat_cases import anndata_concat, make_case  # noqa: E402


def _read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


def _unstorable(v):
    """Whether `v` holds what annpage cannot build from Python objects: awkward arrays and
    structured (record) arrays, which annpage keeps verbatim only when it reads them."""
    if isinstance(v, dict) or (hasattr(v, "items") and not isinstance(v, pd.DataFrame)):
        return any(_unstorable(x) for x in v.values())
    if type(v).__module__.startswith("awkward"):
        return True
    return isinstance(v, np.ndarray) and v.dtype.names is not None


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_write_h5ad_reads_back_as_anndatas_file(tmp_path, path):
    a = _read(path)
    try:
        annpage.write_h5ad(a, tmp_path / "ours.h5ad", compression="gzip")
    except TypeError as e:
        assert "cannot store" in str(e)
        assert any(_unstorable(dict(getattr(a, slot))) for slot in ("uns", "obsm", "varm", "layers")), e
        return
    with warnings.catch_warnings(), ad.settings.override(allow_write_nullable_strings=True):
        warnings.simplefilter("ignore")
        _read(path).write_h5ad(tmp_path / "theirs.h5ad")
    got, want = _read(tmp_path / "ours.h5ad"), _read(tmp_path / "theirs.h5ad")
    assert_equal(got, want)
    assert dict(got.obs.dtypes) == dict(want.obs.dtypes) and dict(got.var.dtypes) == dict(want.var.dtypes)


def test_write_h5ad_keeps_strings_when_asked(tmp_path):
    a = ad.AnnData(X=np.ones((3, 1), dtype=np.float32), obs=pd.DataFrame({"b": ["x", "y", "x"]}, index=list("abc")))
    annpage.write_h5ad(a, tmp_path / "str.h5ad", convert_strings_to_categoricals=False)
    assert _read(tmp_path / "str.h5ad").obs["b"].dtype == object
    assert a.obs["b"].dtype == object  # the caller's object is left alone
    annpage.write_h5ad(a, tmp_path / "cat.h5ad")
    assert isinstance(_read(tmp_path / "cat.h5ad").obs["b"].dtype, pd.CategoricalDtype)
    a.uns["none"] = None
    a.uns["nested"] = {"k": [1, 2], "s": "text", "f": 1.5}
    annpage.write_h5ad(a, tmp_path / "uns.h5ad")
    back = _read(tmp_path / "uns.h5ad").uns
    assert back["none"] is None and back["nested"]["s"] == "text" and list(back["nested"]["k"]) == [1, 2]


@pytest.mark.parametrize("writer", ["write_h5ad", "write_zarr"])
def test_writing_changes_the_callers_strings_as_anndatas_writer(tmp_path, writer):
    """anndata's writers make the written object's repeating string columns categoricals (obs,
    var, raw.var) before writing; annpage's do the same to the object it is given."""

    def make():
        a = ad.AnnData(
            X=np.ones((4, 2), dtype=np.float32),
            obs=pd.DataFrame({"b": ["x", "y", "x", "z"], "u": list("abcd")}, index=list("abcd")),
            var=pd.DataFrame({"g": ["p", "p"]}, index=["g0", "g1"]),
        )
        a.raw = a.copy()
        a.raw.var["r"] = ["q", "q"]
        return a

    ours, theirs = make(), make()
    getattr(annpage, writer)(ours, tmp_path / "ours")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(theirs, writer)(tmp_path / "theirs")
    assert isinstance(theirs.obs["b"].dtype, pd.CategoricalDtype)  # what anndata does
    assert_equal(ours, theirs)
    for got, want in ((ours.obs, theirs.obs), (ours.var, theirs.var), (ours.raw.var, theirs.raw.var)):
        assert dict(got.dtypes) == dict(want.dtypes)


@pytest.mark.parametrize("as_dense", ["X", ["X", "raw/X"], ("raw.X",)])
def test_as_dense_writes_sparse_matrices_dense_as_anndata(tmp_path, as_dense):
    a = _read(ROOT / "fixtures" / "all_elements.h5ad")
    annpage.write_h5ad(a, tmp_path / "ours.h5ad", as_dense=as_dense)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _read(ROOT / "fixtures" / "all_elements.h5ad").write_h5ad(tmp_path / "theirs.h5ad", as_dense=as_dense)
    with h5py.File(tmp_path / "ours.h5ad") as f, h5py.File(tmp_path / "theirs.h5ad") as g:
        for name in ("X", "raw/X"):
            assert isinstance(f[name], h5py.Dataset) == isinstance(g[name], h5py.Dataset), name
    assert_equal(_read(tmp_path / "ours.h5ad"), _read(tmp_path / "theirs.h5ad"))
    with pytest.raises(NotImplementedError, match="as_dense"):
        annpage.write_h5ad(a, tmp_path / "bad.h5ad", as_dense="layers/counts")
    with pytest.raises(ValueError, match="raw/X"):
        annpage.write_h5ad(ad.AnnData(np.ones((1, 1))), tmp_path / "bad.h5ad", as_dense="raw/X")
    assert not (tmp_path / "bad.h5ad").exists()


@pytest.mark.parametrize("seed", range(200))
def test_concat_equals_anndata(tmp_path, seed):
    """annpage.concat gives what anndata.concat gives, string columns held as the inputs held
    them; what anndata cannot write is refused; and written, the two results are the same file."""
    case = make_case(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            want = anndata_concat(case.adatas, **case.kwargs)
        except Exception:  # anndata refuses this case: annpage must refuse it too
            with pytest.raises(Exception):
                annpage.concat(case.adatas, **case.kwargs)
            return
        try:
            got = annpage.concat(case.adatas, **case.kwargs)
        except annpage.UnsupportedError:
            with pytest.raises(Exception):
                want.write_h5ad(tmp_path / "unwritable.h5ad")
            return
        assert list(got.obs_names) == list(want.obs_names) and list(got.var_names) == list(want.var_names)
        assert list(got.obs.columns) == list(want.obs.columns)
        assert_equal(got, want)
        with ad.settings.override(allow_write_nullable_strings=True):
            want.write_h5ad(tmp_path / "want.h5ad")
            got.write_h5ad(tmp_path / "got.h5ad")
    assert_equal(_read(tmp_path / "got.h5ad"), _read(tmp_path / "want.h5ad"))


def test_concat_of_a_dict_takes_its_keys():
    a = ad.AnnData(X=sp.csr_matrix(np.eye(2, dtype=np.float32)), obs=pd.DataFrame(index=["c0", "c1"]))
    b = ad.AnnData(X=sp.csr_matrix(np.ones((1, 2), dtype=np.float32)), obs=pd.DataFrame(index=["c0"]))
    got = annpage.concat({"x": a, "y": b}, label="batch", index_unique="-")
    want = ad.concat({"x": a, "y": b}, label="batch", index_unique="-")
    assert_equal(got, want)
    assert list(got.obs_names) == ["c0-x", "c1-x", "c0-y"]
    # As anndata: keys come from the dict, or from `keys`, not both.
    with pytest.raises(TypeError, match="keys"):
        annpage.concat({"x": a, "y": b}, keys=["p", "q"])


@pytest.mark.parametrize("merge", ["first", "unique", "only", "same"])
def test_merged_columns_keep_the_dtype_of_the_input_they_come_from(merge):
    """The merged axis's columns are one input's: a categorical first input's column stays
    categorical beside a later input holding strings (it became objects, unified as the
    concatenated axis's columns are)."""

    def make(name, values):
        var = pd.DataFrame({"o": values, "same": pd.Categorical(["u", "v"])}, index=["g1", "g2"])
        return ad.AnnData(np.ones((1, 2), np.float32), obs=pd.DataFrame(index=[name]), var=var)

    adatas = [make("c1", pd.Categorical(["a", "b"])), make("c2", ["x", "y"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ad.concat(adatas, merge=merge)
    got = annpage.concat(adatas, merge=merge)
    assert_equal(got, want)
    assert {c: str(t) for c, t in got.var.dtypes.items()} == {c: str(t) for c, t in want.var.dtypes.items()}


def test_string_columns_with_missing_values_are_written_as_anndata_writes_them(tmp_path):
    """Object columns of strings and NaN (common after merging metadata): anndata's writer makes
    those that repeat a value categoricals with missing codes; annpage's writes the same."""
    obs = pd.DataFrame(
        {"donor": ["d10", np.nan, "d10", "d9"], "unique": ["a", "b", "c", np.nan]},
        index=list("abcd"),
    )
    a = ad.AnnData(np.zeros((4, 2), np.float32), obs=obs)
    a.copy().write_h5ad(tmp_path / "ref.h5ad")
    annpage.write_h5ad(a, tmp_path / "ours.h5ad")
    annpage.write_zarr(a, tmp_path / "ours.zarr")
    want = _read(tmp_path / "ref.h5ad")
    assert list(want.obs["donor"].cat.categories) == ["d9", "d10"]  # natural order
    assert_equal(_read(tmp_path / "ours.h5ad").obs, want.obs, exact=True)
    assert_equal(ad.read_zarr(tmp_path / "ours.zarr").obs, want.obs, exact=True)


def test_unstorable_columns_are_named(tmp_path):
    a = ad.AnnData(np.zeros((2, 1), np.float32), obs=pd.DataFrame({"mixed": [1, "x"]}, index=["a", "b"]))
    with pytest.raises(TypeError, match="column 'mixed'"):
        annpage.write_h5ad(a, tmp_path / "x.h5ad", convert_strings_to_categoricals=False)


def _ranked():
    """An object with what scanpy's rank_genes_groups leaves in uns: record arrays (one field
    per group) beside plain values, in a nested dict."""
    rng = np.random.default_rng(0)
    a = ad.AnnData(rng.random((6, 4), dtype=np.float32), obs=pd.DataFrame(index=[f"c{i}" for i in range(6)]))
    names = np.rec.fromarrays([np.array(["g1", "g0"], dtype=object), np.array(["g3", "g2"], dtype=object)], names="A,B")
    scores = np.rec.fromarrays([np.array([2.5, 1.0], dtype=np.float32), np.array([0.5, -1.0], dtype=np.float32)], names="A,B")
    a.uns["rank_genes_groups"] = {"params": {"method": "wilcoxon", "groupby": "leiden"}, "names": names, "scores": scores}
    a.uns["note"] = "kept"
    return a


@pytest.mark.parametrize("fmt", ["h5ad", "zarr2", "zarr3"])
def test_record_arrays_in_uns_are_written_as_anndata_writes_them(tmp_path, fmt):
    a = _ranked()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "h5ad":
            annpage.write_h5ad(a, tmp_path / "ours.h5ad")
            got = _read(tmp_path / "ours.h5ad")
        else:
            version = int(fmt[-1])
            annpage.write_zarr(a, tmp_path / "ours.zarr", zarr_format=version)
            with ad.settings.override(zarr_write_format=version):
                a.write_zarr(tmp_path / "theirs.zarr")
            got = ad.read_zarr(tmp_path / "ours.zarr")
            assert_equal(got, ad.read_zarr(tmp_path / "theirs.zarr"))
    assert_equal(got, a)
    assert got.uns["rank_genes_groups"]["names"].dtype.names == ("A", "B")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ours")) == [f"ours.{fmt[:4]}"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_concat_of_objects_with_record_arrays_in_uns():
    """anndata's default uns_merge=None drops uns, record arrays and all: so does annpage's; a
    merge of them is refused naming the element."""
    a, b = _ranked(), _ranked()
    b.obs_names = [f"d{i}" for i in range(b.n_obs)]
    assert_equal(annpage.concat([a, b]), ad.concat([a, b]))
    with pytest.raises(TypeError, match="uns/rank_genes_groups/names is a record array"):
        annpage.concat([a, b], uns_merge="same")


def test_concat_keys_that_are_not_strings_stay_as_given():
    a = ad.AnnData(np.ones((2, 2), np.float32), obs=pd.DataFrame(index=["a", "b"]))
    b = ad.AnnData(np.ones((1, 2), np.float32), obs=pd.DataFrame(index=["c"]))
    for keys in ([1, 2], [2.5, "x"]):
        got = annpage.concat([a, b], label="batch", keys=keys, index_unique="-")
        want = ad.concat([a, b], label="batch", keys=keys, index_unique="-")
        assert_equal(got, want)
        assert list(got.obs["batch"].cat.categories) == keys


def test_zero_dimensional_arrays_and_colliding_column_names(tmp_path):
    a = ad.AnnData(np.zeros((2, 1), np.float32), obs=pd.DataFrame(index=["a", "b"]))
    a.uns["z"] = np.array(3)
    annpage.write_h5ad(a, tmp_path / "z.h5ad")
    a.write_h5ad(tmp_path / "ref.h5ad")
    assert_equal(_read(tmp_path / "z.h5ad").uns, _read(tmp_path / "ref.h5ad").uns)
    a.obs[0] = [1, 2]
    a.obs["0"] = ["x", "y"]
    with pytest.raises(TypeError, match="columns named '0' more than once"):
        annpage.write_h5ad(a, tmp_path / "c.h5ad")
    assert not (tmp_path / "c.h5ad").exists()


def test_string_dtype_arrays_and_zarr_outputs_of_concat_on_disk(tmp_path):
    """numpy 2's StringDType (anndata reads a Zarr store's string arrays so) is written as
    strings; concat_on_disk writes a Zarr store for a .zarr output, as the CLI and anndata."""
    a = ad.AnnData(np.ones((2, 2), np.float32), obs=pd.DataFrame(index=["a", "b"]))
    a.uns["colors"] = np.array(["#ff0000", "#00ff00"], dtype=np.dtypes.StringDType())
    annpage.write_h5ad(a, tmp_path / "s.h5ad")
    assert list(_read(tmp_path / "s.h5ad").uns["colors"]) == ["#ff0000", "#00ff00"]
    b = a.copy()
    b.obs_names = ["c", "d"]
    a.write_h5ad(tmp_path / "a.h5ad")
    b.write_h5ad(tmp_path / "b.h5ad")
    annpage.concat_on_disk([tmp_path / "a.h5ad", tmp_path / "b.h5ad"], tmp_path / "ab.zarr")
    assert (tmp_path / "ab.zarr").is_dir()
    assert_equal(ad.read_zarr(tmp_path / "ab.zarr"), ad.concat([_read(tmp_path / "a.h5ad"), _read(tmp_path / "b.h5ad")]))


@pytest.mark.parametrize("out", ["ab.h5ad", "ab.zarr"])
def test_concat_on_disk_keys_that_are_numbers_stay_numbers(tmp_path, out):
    a = ad.AnnData(np.ones((2, 2), np.float32), obs=pd.DataFrame(index=["a", "b"]))
    b = ad.AnnData(np.ones((1, 2), np.float32), obs=pd.DataFrame(index=["c"]))
    a.write_h5ad(tmp_path / "a.h5ad")
    b.write_h5ad(tmp_path / "b.h5ad")
    annpage.concat_on_disk([tmp_path / "a.h5ad", tmp_path / "b.h5ad"], tmp_path / out, label="batch", keys=[1, 2])
    got = _read(tmp_path / out) if out.endswith(".h5ad") else ad.read_zarr(tmp_path / out)
    assert_equal(got, ad.concat([a, b], label="batch", keys=[1, 2]))
    assert list(got.obs["batch"].cat.categories) == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.h5ad", "b.h5ad", out])


def test_concat_of_string_columns_with_missing_values_keeps_objects():
    """Object columns of strings and NaN (common after merging metadata): anndata.concat keeps
    them as objects; so does annpage's (they are concatenated as pandas strings)."""
    a = ad.AnnData(np.zeros((4, 2), np.float32), obs=pd.DataFrame({"donor": ["d1", np.nan, "d1", "d2"]}, index=list("abcd")))
    b = ad.AnnData(np.zeros((2, 2), np.float32), obs=pd.DataFrame({"donor": ["d3", None]}, index=list("ef")))
    for kwargs in ({}, {"join": "outer", "label": "batch"}):
        got, want = annpage.concat([a, b], **kwargs), ad.concat([a, b], **kwargs)
        assert got.obs["donor"].dtype == object
        assert_equal(got, want)
    assert a.obs["donor"].dtype == object  # the caller's objects are left alone


def test_unencodable_text_is_a_value_error_naming_the_element(tmp_path):
    """A lone surrogate cannot be stored as UTF-8: a ValueError (UnicodeEncodeError's base)
    naming the element, with the encoder's error as its cause."""
    a = ad.AnnData(np.ones((2, 1), dtype=np.float32), obs=pd.DataFrame(index=["\ud800", "y"]))
    with pytest.raises(ValueError, match="obs.*surrogates not allowed") as caught:
        annpage.write_h5ad(a, tmp_path / "out.h5ad")
    assert isinstance(caught.value.__cause__, UnicodeEncodeError)
    assert not (tmp_path / "out.h5ad").exists()


def test_sparse_arrays_stay_arrays_as_anndata_keeps_them(tmp_path):
    """scipy's sparse arrays (csr_array) given to concat come back as arrays, as anndata's
    concat gives them; with anndata's use_sparse_array_on_read, reads give arrays too."""
    parts = [ad.AnnData(sp.csr_array(np.eye(3, dtype=np.float32)), layers={"c": sp.csc_array(np.eye(3))}),
             ad.AnnData(sp.csr_array(np.ones((2, 3), dtype=np.float32)), layers={"c": sp.csc_array(np.ones((2, 3)))})]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ad.concat(parts, index_unique="-")
        got = annpage.concat(parts, index_unique="-")
        assert_equal(got, want)
        assert type(got.X) is type(want.X) and type(got.layers["c"]) is type(want.layers["c"])
        path = tmp_path / "a.h5ad"
        want.write_h5ad(path)
        with ad.settings.override(use_sparse_array_on_read=True):
            expected = ad.read_h5ad(path)
            for read in (annpage.read_h5ad(path), annpage.read_h5ad(path, backed="r").to_memory()):
                assert type(read.X) is type(expected.X) is sp.csr_array
                assert type(read.layers["c"]) is type(expected.layers["c"])


def test_dicts_nested_deeper_than_annpage_reads_are_not_written(tmp_path):
    """annpage reads uns dicts 64 groups deep at most (a bound on its readers' stack): what it
    writes, it reads back; one level more is refused before anything is written."""

    def nested(depth):
        d = {"v": np.arange(3)}
        for _ in range(depth):
            d = {"d": d}
        a = ad.AnnData(np.ones((2, 2), np.float32))
        a.uns["deep"] = d
        return a

    annpage.write_h5ad(nested(62), tmp_path / "ok.h5ad")
    assert_equal(annpage.read_h5ad(tmp_path / "ok.h5ad"), ad.read_h5ad(tmp_path / "ok.h5ad"))
    with pytest.raises(annpage.AnnpageError, match="nested more than 64 levels deep"):
        annpage.write_h5ad(nested(63), tmp_path / "deep.h5ad")
    assert not (tmp_path / "deep.h5ad").exists()


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "float32", "float16", "bool"])
@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("fill", [0, 7, -1, 0.0, 7.5, False, np.bool_(True)])
def test_fill_value_gives_anndatas_dtypes(tmp_path, dtype, kind, fill):
    """An integer fill keeps integer matrices integers, a float one makes them floats, a bool
    one keeps boolean matrices boolean (numpy's promotion with the fill's dtype, anndata 0.13's rule for dense and sparse arrays; applied
    to an older anndata's result by `anndata_concat`): in memory and on disk."""
    if kind == "csr" and dtype == "float16":
        pytest.skip("scipy.sparse has no float16")
    make = (lambda a: a) if kind == "dense" else sp.csr_matrix

    def obj(n, names, genes):
        return ad.AnnData(
            make(np.arange(1, n * 2 + 1).reshape(n, 2).astype(dtype)),
            obs=pd.DataFrame(index=names),
            var=pd.DataFrame(index=genes),
        )

    parts = [obj(2, ["a", "b"], ["g0", "g1"]), obj(1, ["c"], ["g1", "g2"])]
    expected = anndata_concat(parts, join="outer", fill_value=fill)
    got = annpage.concat(parts, join="outer", fill_value=fill)
    assert got.X.dtype == expected.X.dtype
    assert_equal(got, expected)
    files = []
    for i, p in enumerate(parts):
        files.append(tmp_path / f"{i}.h5ad")
        p.write_h5ad(files[-1])
    annpage.concat_on_disk(files, tmp_path / "out.h5ad", join="outer", fill_value=fill)
    assert_equal(ad.read_h5ad(tmp_path / "out.h5ad"), expected)


@pytest.mark.parametrize("uns_merge", ["same", "unique", "first", "only"])
def test_uns_keeps_the_inputs_objects(uns_merge):
    """anndata's merge keeps the inputs' own values: numpy scalars stay numpy scalars, lists
    stay lists, nested dicts keep theirs."""
    def obj(extra):
        a = ad.AnnData(np.ones((2, 2), np.float32))
        a.uns = {"n": np.int64(3), "f": np.float32(1.5), "b": np.bool_(True), "l": [1, 2], "d": {"x": np.int8(1)}, **extra}
        return a

    parts = [obj({"only0": np.uint16(9)}), obj({"only1": [3]})]
    want = ad.concat(parts, uns_merge=uns_merge).uns
    got = annpage.concat(parts, uns_merge=uns_merge).uns

    def kinds(u):
        return {k: kinds(v) if isinstance(v, dict) else type(v) for k, v in u.items()}

    assert kinds(got) == kinds(want)
    assert_equal(dict(got), dict(want))


def test_compression_opts_is_gzips_level_as_anndatas(tmp_path):
    import h5py

    a = ad.AnnData(
        sp.random(200, 50, density=0.2, format="csr", dtype=np.float32, random_state=0),
        obs=pd.DataFrame({"x": np.arange(200.0)}, index=[f"c{i}" for i in range(200)]),
    )
    for level in (1, 9):
        path = tmp_path / f"l{level}.h5ad"
        annpage.write_h5ad(a, path, compression="gzip", compression_opts=level)
        with h5py.File(path) as f:
            assert f["X/data"].compression_opts == level
            assert f["obs/x"].compression_opts == level
        assert_equal(ad.read_h5ad(path), a)
    with annpage.read_h5ad(tmp_path / "l1.h5ad", backed="r") as b:
        b[:50].write_h5ad(tmp_path / "v.h5ad", compression="gzip", compression_opts=7)
    with h5py.File(tmp_path / "v.h5ad") as f:
        assert f["X/indices"].compression_opts == 7
    for bad in [dict(compression="gzip", compression_opts=10), dict(compression="lzf", compression_opts=4), dict(compression_opts=4)]:
        with pytest.raises(ValueError, match="compression_opts"):
            annpage.write_h5ad(a, tmp_path / "bad.h5ad", **bad)


def test_sparse_uns_values_keep_their_class():
    def obj():
        a = ad.AnnData(np.ones((2, 2), np.float32))
        a.uns = {"s": sp.csr_array(np.eye(2))}
        return a

    got = annpage.concat([obj(), obj()], uns_merge="first").uns["s"]
    assert type(got) is sp.csr_array


def test_compression_opts_as_h5py_takes_it(tmp_path):
    a = ad.AnnData(np.ones((4, 2), np.float32))
    annpage.write_h5ad(a, tmp_path / "f.h5ad", compression="gzip", compression_opts=9.0)
    for bad in (-1, 300, 2.5, "4"):
        with pytest.raises(ValueError, match="compression_opts"):
            annpage.write_h5ad(a, tmp_path / "b.h5ad", compression="gzip", compression_opts=bad)


def test_a_backed_selection_written_with_as_dense_is_anndatas(tmp_path):
    path = ROOT / "fixtures" / "all_elements.h5ad"
    want = _read(path)[3:9].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want.write_h5ad(tmp_path / "theirs.h5ad", as_dense=["X", "raw/X"])
    with annpage.read_h5ad(path, backed="r") as b:
        b[3:9].write_h5ad(tmp_path / "ours.h5ad", as_dense=["X", "raw/X"])
    with h5py.File(tmp_path / "ours.h5ad") as f:
        assert isinstance(f["X"], h5py.Dataset) and isinstance(f["raw/X"], h5py.Dataset)
    assert_equal(_read(tmp_path / "ours.h5ad"), _read(tmp_path / "theirs.h5ad"))


def test_a_transposed_selection_written_with_as_dense_is_anndatas(tmp_path):
    """Streamed: the transpose's rows (the file's columns of X) are read in pieces and written
    dense; raw is not kept by a transpose, so ``raw/X`` is refused as anndata refuses it."""
    path = ROOT / "fixtures" / "all_elements.h5ad"
    want = _read(path)[2:11, 1:].copy().T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want.write_h5ad(tmp_path / "theirs.h5ad", as_dense="X")
    with annpage.read_h5ad(path, backed="r") as b:
        b[2:11, 1:].T.write_h5ad(tmp_path / "ours.h5ad", as_dense="X")
        with pytest.raises(ValueError, match="raw/X"):
            b.T.write_h5ad(tmp_path / "bad.h5ad", as_dense="raw/X")
    with h5py.File(tmp_path / "ours.h5ad") as f:
        assert isinstance(f["X"], h5py.Dataset)
    assert_equal(_read(tmp_path / "ours.h5ad"), _read(tmp_path / "theirs.h5ad"))
