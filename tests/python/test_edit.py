"""Changes through `read_h5ad(path, backed="r+")`, written back and compared with what anndata
writes after the same changes in memory."""

import shutil
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal
from conftest import ROOT

import annpage

FIXTURE = ROOT / "fixtures" / "all_elements.h5ad"


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "data.h5ad"
    shutil.copy(FIXTURE, p)
    return p


def change(a):
    """The same changes, applied to an anndata object or an annpage r+ handle."""
    n_obs, n_vars = a.n_obs, a.n_vars
    a.obs["score"] = np.arange(n_obs, dtype=np.float64)
    a.obs["label"] = ["x" if i % 3 else "y" for i in range(n_obs)]  # made categorical on write
    a.obs["batch"] = pd.array([1, None] * (n_obs // 2), dtype="Int32")
    del a.obs["n_genes"]
    a.obs_names = [f"cell-{i}" for i in range(n_obs)]  # obsm's data frame takes the names
    a.var = a.var[list(reversed(a.var.columns))]
    a.uns["note"] = "changed"
    a.uns["neighbors"]["params"]["n_neighbors"] = 7
    del a.uns["deep"]
    a.obsm["X_two"] = np.ones((n_obs, 2), dtype=np.float32)
    del a.obsm["X_sparse"]
    a.varm["PCs"] = np.zeros((n_vars, 3))
    a.layers["double"] = sp.random(n_obs, n_vars, density=0.2, format="csr", random_state=0)
    del a.layers["spliced"]
    a.obsp["knn"] = sp.identity(n_obs, format="csr", dtype=np.float32)
    del a.varp["correlation"]


def test_changes_written_back_equal_anndatas(path):
    want = ad.read_h5ad(path)
    change(want)
    want.strings_to_categoricals()

    b = annpage.read_h5ad(path, backed="r+")
    change(b)
    # A view taken now sees the changes so far.
    assert list(b[:3].obs_names) == ["cell-0", "cell-1", "cell-2"]
    b.write()
    assert_equal(ad.read_h5ad(path), want, exact=True)
    assert list(ad.read_h5ad(path).obs.columns) == list(want.obs.columns)
    # The handle reads the new file.
    assert_equal(b.to_memory(), want, exact=True)
    b.close()
    assert_equal(annpage.read_h5ad(path), want, exact=True)


def test_close_writes_what_is_left(path):
    with annpage.read_h5ad(path, backed="r+") as b:
        b.obs = b.obs.assign(extra=1.5)
        b.uns = {"only": np.arange(3)}
    back = ad.read_h5ad(path)
    assert (back.obs["extra"] == 1.5).all()
    assert list(back.uns) == ["only"]
    np.testing.assert_array_equal(back.uns["only"], np.arange(3))


def test_reading_changes_nothing(path):
    before = path.stat()
    with annpage.read_h5ad(path, backed="r+") as b:
        _ = b.obs, b.var, b.uns, b.obsm["annotations"]
    after = path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_refused_changes_name_the_reason(path):
    with annpage.read_h5ad(path, backed="r") as b:
        b.obsm["x"] = np.ones((b.n_obs, 1))  # kept in memory, as anndata's "r" mode
        with pytest.raises(ValueError, match="open read-only"):
            b.write()
    with annpage.read_h5ad(path, backed="r+") as b:
        view = b[:2]
        with pytest.raises(ValueError, match="this is a view"):
            del view.layers["counts"]
        with pytest.raises(ValueError, match="this is a view"):
            view.obs_names = ["a", "b"]
        with pytest.raises(KeyError):
            del b.obsm["no_such_key"]
        with pytest.raises(ValueError, match="rows"):
            b.obs = b.obs.iloc[:3]
        with pytest.raises(TypeError):
            b.var = "not a frame"
        with pytest.raises(annpage.ShapeError):
            b.obsp["bad"] = sp.identity(b.n_vars, format="csr")
        for what in ("obsm", "layers", "obsp"):
            # anndata raises a ValueError for a value of the wrong shape: so does annpage.
            with pytest.raises(ValueError):
                getattr(b, what)["bad"] = np.ones((1, 1))
        with pytest.raises(ValueError, match="names for"):
            b.var_names = ["one"]
    assert_equal(ad.read_h5ad(path), ad.read_h5ad(FIXTURE), exact=True)


def test_zarr_stores_cannot_be_opened_for_writing(tmp_path):
    store = tmp_path / "data.zarr"
    ad.read_h5ad(FIXTURE).write_zarr(store)
    with pytest.raises(annpage.AnnpageError, match="Zarr"):
        annpage.read_zarr(store, backed="r+")


def test_values_annpage_cannot_store_are_left_alone_unless_changed(path):
    """Record arrays in uns (scanpy's rank_genes_groups): an r+ handle that reads uns and
    changes something else writes the rest and keeps them as they are on disk."""
    a = ad.read_h5ad(path)
    a.uns["rank"] = {"names": np.rec.fromarrays([np.array(["g1", "g0"], dtype=object)], names="A")}
    a.write_h5ad(path)
    with annpage.read_h5ad(path, backed="r+") as b:
        assert b.uns["rank"]["names"].dtype.names == ("A",)
        b.uns["note"] = "hello"
        b[:2]  # a view pushes the changes so far
    back = ad.read_h5ad(path)
    assert back.uns["note"] == "hello" and back.uns["rank"]["names"]["A"].tolist() == ["g1", "g0"]


def test_a_failed_close_drops_the_changes_and_nothing_is_half_written(path):
    before = path.read_bytes()
    b = annpage.read_h5ad(path, backed="r+")
    b.obsm["new"] = np.ones((b.n_obs, 1))  # accepted, pending
    b.obs["mixed"] = [1, "x"] * (b.n_obs // 2)  # refused when written
    with pytest.raises(TypeError, match="column 'mixed'"):
        b.write()
    with pytest.raises(TypeError, match="column 'mixed'"):
        b.close()
    b.close()  # closed all the same
    with pytest.raises(ValueError, match="is closed"):
        b.X
    assert path.read_bytes() == before
    # Dropped without close(): nothing is written either.
    c = annpage.read_h5ad(path, backed="r+")
    c.obsm["new"] = np.ones((c.n_obs, 1))
    del c
    import gc

    gc.collect()
    assert path.read_bytes() == before


def test_pending_changes_are_seen_by_reads_and_views(path):
    with annpage.read_h5ad(path, backed="r+") as b:
        b.obs["donor"] = ["d1", None] * (b.n_obs // 2)  # strings with missing values
        b.uns["note"] = "pending"
        assert list(b[:3].obs["donor"].astype(object).fillna("NA")) == ["d1", "NA", "d1"]
        memory = b.to_memory()
        assert "donor" in memory.obs and memory.uns["note"] == "pending"
        b.write_h5ad(path.with_name("copy.h5ad"))
    copy = ad.read_h5ad(path.with_name("copy.h5ad"))
    assert copy.uns["note"] == "pending" and "donor" in copy.obs


def test_read_only_handles_keep_changes_in_memory(path, tmp_path):
    """As anndata's backed "r" mode: what is changed through the handle is what its views,
    to_memory() and writes hold; the file is never touched."""
    before = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ad.read_h5ad(path, backed="r")
        b = annpage.read_h5ad(path, backed="r")
        for h in (expected, b):
            h.obs["leiden"] = pd.Categorical([str(i % 3) for i in range(h.n_obs)])
            h.uns["note"] = "kept"
            h.obsm["extra"] = np.arange(h.n_obs, dtype=np.float64)[:, None]
        mask = (b.obs["leiden"] == "1").to_numpy()
        assert_equal(b[mask].to_memory(), expected[mask].to_memory())
        assert b.uns["note"] == "kept"
        out = tmp_path / "out.h5ad"
        b.write_h5ad(out)
        back = ad.read_h5ad(out)
    assert list(back.obs["leiden"]) == [str(i % 3) for i in range(back.n_obs)]
    assert back.uns["note"] == "kept" and back.obsm["extra"].shape == (back.n_obs, 1)
    b.close()
    expected.file.close()
    assert path.read_bytes() == before


def test_reordered_categories_are_written_back(path):
    with annpage.read_h5ad(path, backed="r+") as b:
        col = next(c for c in b.obs.columns if isinstance(b.obs[c].dtype, pd.CategoricalDtype))
        order = list(b.obs[col].cat.categories)[::-1]
        b.obs[col] = b.obs[col].cat.reorder_categories(order)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(ad.read_h5ad(path).obs[col].cat.categories) == order


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_record_arrays_with_nan_read_from_uns_are_not_changes(tmp_path, mode):
    """scanpy's rank_genes_groups holds NaN in its record arrays: reading uns must not count
    them as changed (annpage cannot store record arrays handed over from Python)."""
    a = ad.AnnData(np.ones((3, 2), dtype=np.float32))
    rec = np.zeros(2, dtype=[("names", "<U4"), ("logfoldchanges", "<f4")])
    rec["names"], rec["logfoldchanges"] = ["A", "B"], [np.nan, 1.0]
    a.uns["rank_genes_groups"] = {"logfoldchanges": rec}
    path = tmp_path / "rn.h5ad"
    a.write_h5ad(path)
    b = annpage.read_h5ad(path, backed=mode)
    assert np.isnan(b.uns["rank_genes_groups"]["logfoldchanges"]["logfoldchanges"][0])
    assert_equal(b.to_memory(), a)
    b.write_h5ad(tmp_path / "out.h5ad")
    b.close()


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_obsm_values_changed_in_place_are_changes(path, mode, tmp_path):
    """As anndata holds obsm in memory: a value read is the same object when read again, and
    changing it in place is a change (seen by to_memory and writes; written back by r+)."""
    b = annpage.read_h5ad(path, backed=mode)
    key = next(k for k in b.obsm if isinstance(b.obsm[k], np.ndarray))
    x = b.obsm[key]
    assert b.obsm[key] is x
    x[:, 0] = 5
    assert (b.to_memory().obsm[key][:, 0] == 5).all()
    assert (b[:3].to_memory().obsm[key][:, 0] == 5).all()
    b.write_h5ad(tmp_path / "copy.h5ad")
    assert (ad.read_h5ad(tmp_path / "copy.h5ad").obsm[key][:, 0] == 5).all()
    b.close()
    assert (ad.read_h5ad(path).obsm[key][:, 0] == 5).all() == (mode == "r+")


def test_kept_values_with_nan_are_not_changes_and_bad_changes_name_the_entry(path, tmp_path):
    b = annpage.read_h5ad(path, backed="r+")
    m = sp.csr_matrix(np.array([[np.nan, 1.0]] * b.n_obs))
    b.obsm["nan_sparse"] = m
    b.write()
    before = path.stat().st_mtime_ns
    assert b.obsm["nan_sparse"] is m  # the object assigned is the value
    b.write()  # nothing changed: nothing rewritten
    assert path.stat().st_mtime_ns == before
    frame = pd.DataFrame({"u": np.arange(b.n_obs, dtype=np.float64)}, index=b.obs_names)
    b.obsm["frame"] = frame
    frame["bad"] = [object()] * b.n_obs  # in place: something annpage cannot store
    with pytest.raises(TypeError, match=r"obsm\['frame'\], changed in place"):
        b.to_memory()
    del frame["bad"]  # undone: the handle works again
    assert b.to_memory().obsm["frame"].shape == (b.n_obs, 1)
    b.close()


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_edits_held_in_memory_reach_to_memory_as_anndatas(tmp_path, mode):
    """Columns and uns values set on a handle come back from a view's `to_memory()` as they
    were set (an object column stays objects, a numpy scalar keeps its type), as anndata's."""
    path = tmp_path / "e.h5ad"
    ad.AnnData(np.ones((4, 2), np.float32)).write_h5ad(path)
    got = {}
    for name, read in (("anndata", ad.read_h5ad), ("annpage", annpage.read_h5ad)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = read(path, backed=mode)
            x.obs["lab"] = ["a", "b", "a", "b"]
            x.obs["gap"] = ["a", None, "a", "b"]
            x.uns["n"] = np.int32(4)
            x.uns["l"] = [1, 2]
            got[name] = x[[0, 2]].to_memory()
            x.file.close() if name == "anndata" else x.close()
    ours, theirs = got["annpage"], got["anndata"]
    assert ours.obs["lab"].dtype == theirs.obs["lab"].dtype == object
    assert type(ours.uns["n"]) is type(theirs.uns["n"]) is np.int32
    assert ours.uns["l"] == theirs.uns["l"] == [1, 2]
    pd.testing.assert_series_equal(ours.obs["lab"], theirs.obs["lab"])


def test_writing_an_edited_handle_to_a_file_converts_strings_as_anndata(tmp_path):
    import h5py

    path = tmp_path / "e.h5ad"
    ad.AnnData(np.ones((3, 2), np.float32)).write_h5ad(path)
    for name, read in (("anndata", ad.read_h5ad), ("annpage", annpage.read_h5ad)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = read(path, backed="r")
            b.obs["s"] = ["p", "q", "p"]
            b.write_h5ad(tmp_path / f"{name}.h5ad")
            held = b.obs["s"].dtype
            b.file.close() if name == "anndata" else b.close()
        with h5py.File(tmp_path / f"{name}.h5ad") as f:
            assert f["obs/s"].attrs["encoding-type"] == "categorical", name
        assert isinstance(held, pd.CategoricalDtype), name  # converted in place, as anndata does


def test_a_views_uns_is_the_handles_when_the_view_was_made(tmp_path):
    for n_obs in (3, 0):
        path = tmp_path / f"u{n_obs}.h5ad"
        ad.AnnData(np.ones((n_obs, 2), np.float32), uns={"u0": 1}).write_h5ad(path)
        got = {}
        for name, read in (("anndata", ad.read_h5ad), ("annpage", annpage.read_h5ad)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                b = read(path, backed="r")
                b.uns["x"] = np.int32(3)
                v = b[:, :1]
                b.uns["y"] = np.float32(1.5)
                got[name] = v.to_memory().uns
                b.file.close() if name == "anndata" else b.close()
        assert {k: type(v) for k, v in got["annpage"].items()} == {k: type(v) for k, v in got["anndata"].items()}


def test_copy_of_a_view_of_an_rplus_handle_opens_rplus(tmp_path):
    path = tmp_path / "c.h5ad"
    ad.AnnData(np.ones((3, 2), np.float32)).write_h5ad(path)
    with annpage.read_h5ad(path, backed="r+") as b:
        c = b[:2].copy(tmp_path / "copy.h5ad")
    with c:
        c.obs["n"] = [1, 2]  # an r+ handle takes changes
        c.write()
    assert list(ad.read_h5ad(tmp_path / "copy.h5ad").obs["n"]) == [1, 2]


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_names_made_unique_and_strings_made_categoricals_as_anndata(tmp_path, mode):
    path = tmp_path / "d.h5ad"
    ad.AnnData(
        np.ones((4, 3), np.float32),
        obs=pd.DataFrame({"s": ["a", "b", "a", "a"]}, index=["c", "c", "d", "c"]),
        var=pd.DataFrame(index=["g", "h", "g"]),
    ).write_h5ad(path, convert_strings_to_categoricals=False)
    got = {}
    for name, read in (("anndata", ad.read_h5ad), ("annpage", annpage.read_h5ad)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = read(path, backed=mode)
            b.obs_names_make_unique()
            b.var_names_make_unique(join="_")
            b.strings_to_categoricals()
            got[name] = b.to_memory()
            b.file.close() if name == "anndata" else b.close()
    assert list(got["annpage"].obs_names) == ["c", "c-1", "d", "c-2"]
    assert_equal(got["annpage"], got["anndata"])
    if mode == "r+":
        assert list(ad.read_h5ad(path).var_names) == ["g", "h", "g_1"]


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_categories_renamed_as_anndata_renames_them(tmp_path, mode):
    path = tmp_path / "d.h5ad"
    a = ad.AnnData(
        np.ones((4, 2), np.float32),
        obs=pd.DataFrame({"g": pd.Categorical(["a", "b", "a", "a"])}, index=list("wxyz")),
        var=pd.DataFrame({"kind": pd.Categorical(["m", "n"])}, index=["g0", "g1"]),
    )
    a.uns["rank"] = {
        "params": {"groupby": "g"},
        "names": np.rec.fromarrays([np.array(["g0", "g1"]), np.array(["g1", "g0"])], names="a,b"),
    }
    a.write_h5ad(path)
    want = ad.read_h5ad(path)
    want.rename_categories("g", ["A", "B"])
    want.rename_categories("kind", ["M", "N"])
    with annpage.read_h5ad(path, backed=mode) as b:
        b.rename_categories("g", ["A", "B"])
        b.rename_categories("kind", ["M", "N"])
        assert list(b[:2].obs["g"]) == ["A", "B"]  # a view sees the change
        assert_equal(b.to_memory(), want)
        assert b.to_memory().uns["rank"]["names"].dtype.names == ("A", "B")
        with pytest.raises(ValueError, match="neither"):
            b.rename_categories("nope", ["x"])
        with pytest.raises(ValueError, match="list-like"):
            b.rename_categories("g", {"A": "a"})
        with pytest.raises(ValueError, match="view"):
            b[:2].rename_categories("g", ["p", "q"])
        with pytest.raises(ValueError, match="not string"):
            b.rename_categories("g", [1, 2])  # numpy's field names are strings, as anndata fails
        assert b.transpose().shape == (2, 4)
    if mode == "r+":
        assert_equal(ad.read_h5ad(path), want)
    else:
        assert list(ad.read_h5ad(path).obs["g"].cat.categories) == ["a", "b"]


def _records_object(path):
    a = ad.AnnData(np.ones((3, 2), np.float32), obs=pd.DataFrame(index=list("abc")))
    a.uns["kept"] = np.rec.fromarrays([np.array([1, 2])], names="n")
    a.write_h5ad(path)


def _rank():
    return {
        "params": {"groupby": "g"},
        "scores": np.rec.fromarrays([np.array([0.5, 1.5]), np.array([2.5, 3.5])], names="a,b"),
    }


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_record_arrays_set_in_uns_reach_every_output(tmp_path, mode):
    """Record arrays (scanpy's rank_genes_groups results), which annpage does not build, set in
    uns of a handle: its to_memory(), its views, write_h5ad/write_zarr of it and (r+) write()
    give them as anndata gives them, next to the one the file held."""
    path = tmp_path / "d.h5ad"
    _records_object(path)
    want = ad.read_h5ad(path)
    want.uns["rank"] = _rank()
    want.uns["top"] = np.rec.fromarrays([np.array(["x", "y"])], names="s")
    with annpage.read_h5ad(path, backed=mode) as b:
        b.uns["rank"] = _rank()
        b.uns["top"] = np.rec.fromarrays([np.array(["x", "y"])], names="s")
        assert_equal(b.to_memory(), want)
        assert_equal(b[:2].to_memory(), want[:2].copy())
        b.write_h5ad(tmp_path / "copy.h5ad")
        assert_equal(ad.read_h5ad(tmp_path / "copy.h5ad"), want)
        b[1:].write_zarr(tmp_path / "copy.zarr")
        assert_equal(ad.read_zarr(tmp_path / "copy.zarr"), want[1:].copy())
        if mode == "r+":
            b.write()
            assert_equal(ad.read_h5ad(path), want)
            b.write()  # nothing left to add twice
            del b.uns["top"]
            b.uns["rank"]["scores"] = b.uns["rank"]["scores"][:1]
    if mode == "r+":
        del want.uns["top"]
        want.uns["rank"]["scores"] = want.uns["rank"]["scores"][:1]
        assert_equal(ad.read_h5ad(path), want)
    else:
        assert set(ad.read_h5ad(path).uns) == {"kept"}


def test_a_failed_finishing_step_leaves_the_file_and_the_changes(tmp_path, monkeypatch):
    from annpage import _records

    path = tmp_path / "d.h5ad"
    _records_object(path)
    before = path.read_bytes()
    b = annpage.read_h5ad(path, backed="r+")
    b.uns["rank"] = _rank()

    def fail(*args, **kwargs):
        raise RuntimeError("adding failed")

    monkeypatch.setattr(_records, "add", fail)
    with pytest.raises(RuntimeError, match="adding failed"):
        b.write()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5ad"]
    monkeypatch.undo()
    b.close()
    assert_equal(ad.read_h5ad(path).uns["rank"], _rank())


def test_a_record_array_alone_set_deleted_or_beside_a_kept_uns(tmp_path):
    """The record array as the only change is written; deleting one after it was handed over
    is not an error; renaming categories keeps the uns mapping the user holds."""
    path = tmp_path / "d.h5ad"
    _records_object(path)
    rec = np.rec.fromarrays([np.array(["a"]), np.array([1.0])], names="x,y")
    with annpage.read_h5ad(path, backed="r+") as b:
        b.uns["rec"] = rec
        b.write()
    assert_equal(ad.read_h5ad(path).uns["rec"], rec)
    with annpage.read_h5ad(path, backed="r+") as b:
        b.uns["new"] = rec
        b.to_memory()  # hands the changes over
        del b.uns["new"]
        del b.uns["rec"]
        assert "new" not in b[:1].to_memory().uns
    assert set(ad.read_h5ad(path).uns) == {"kept"}
    a = ad.read_h5ad(path)
    a.obs["g"] = pd.Categorical(["a", "b", "a"])
    a.write_h5ad(path)
    with annpage.read_h5ad(path, backed="r+") as b:
        held = b.uns
        b.rename_categories("g", ["A", "B"])
        held["after"] = 1
        assert b.uns is held
    assert ad.read_h5ad(path).uns["after"] == 1


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_a_views_uns_is_the_one_anndatas_view_has(tmp_path, mode):
    """A view holds uns as it was when made (a shallow copy, colours cut to the categories it
    uses), in to_memory() and in what it writes, whatever the handle changes after."""
    path = tmp_path / "d.h5ad"
    a = ad.AnnData(np.ones((4, 2), np.float32), obs=pd.DataFrame({"c": pd.Categorical(list("xyzx"))}, index=list("abcd")))
    a.uns["c_colors"] = np.array(["#111111", "#222222", "#333333"], dtype=object)
    a.uns["keep"] = 1
    a.write_h5ad(path)
    rec = np.rec.fromarrays([np.array(["a"]), np.array([1.0])], names="x,y")
    want = ad.read_h5ad(path)
    with annpage.read_h5ad(path, backed=mode) as b:
        for obj in (want, b):
            obj.uns["rec"] = rec
            obj.uns["nested"] = {"n": 1}
        v, w = b[[1, 3]], want[[1, 3]]
        for obj in (want, b):
            obj.uns["rec"] = 5
            obj.uns["plain"] = 9
            del obj.uns["rec"]
            obj.uns["nested"]["m"] = 2  # nested values are shared, as anndata's views share them
        expected = w.copy()
        assert_equal(v.to_memory(), expected)
        v.write_h5ad(tmp_path / "v.h5ad")
        v.write_zarr(tmp_path / "v.zarr")
    assert list(expected.uns["c_colors"]) == ["#111111", "#222222"]  # x and y: z is unused
    assert sorted(expected.uns) == ["c_colors", "keep", "nested", "rec"]
    assert_equal(ad.read_h5ad(tmp_path / "v.h5ad"), expected)
    assert_equal(ad.read_zarr(tmp_path / "v.zarr"), expected)


@pytest.mark.parametrize("transposed", [False, True], ids=["", "T"])
def test_writes_make_strings_categoricals_whether_the_frames_were_read_or_not(tmp_path, transposed):
    """As anndata's writers, which run strings_to_categoricals on the object written, a
    handle's writes convert obs and var even when Python never read them."""
    path = tmp_path / "d.h5ad"
    a = ad.AnnData(
        sp.random(4, 3, density=0.5, format="csr", random_state=0),
        obs=pd.DataFrame({"s": ["x", "x", "y", "y"]}, index=list("abcd")),
        var=pd.DataFrame({"k": ["p", "p", "q"]}, index=["g0", "g1", "g2"]),
    )
    a.write_h5ad(path, convert_strings_to_categoricals=False)
    want = ad.read_h5ad(path)
    want = want.T if transposed else want
    want.write_h5ad(tmp_path / "theirs.h5ad")
    with annpage.read_h5ad(path, backed="r") as b:
        (b.T if transposed else b).write_h5ad(tmp_path / "ours.h5ad")
    got, exp = ad.read_h5ad(tmp_path / "ours.h5ad"), ad.read_h5ad(tmp_path / "theirs.h5ad")
    assert dict(got.obs.dtypes) == dict(exp.obs.dtypes) and dict(got.var.dtypes) == dict(exp.var.dtypes)
    assert_equal(got, exp)
