"""`annpage convert`, judged by the real anndata.

For every fixture (current and legacy) and every compression, `annpage convert IN OUT
--compression C` must produce a file that

* anndata reads back equal to IN (`anndata.tests.helpers.assert_equal`);
* has, object for object, the same HDF5 tree as the file anndata itself writes for the object
  read from IN with the same compression: encoding attributes, every other attribute, dataset
  dtypes and shapes, and compression filters (chunk shapes may differ);
* is compressed as asked on every non-scalar dataset.

Malformed inputs must make `annpage convert` fail with exactly one line on stderr naming the
file (and the element, where there is one), leaving no output behind.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import anndata as ad
import h5py
import pytest
from anndata.tests.helpers import assert_equal
from h5tree import Node, differences, tree
from support import FIXTURES, fixture_files, fixture_id, run

COMPRESSIONS = ["none", "gzip", "lzf"]
FILES = fixture_files()

#: h5py's default deflate level, which anndata uses and `annpage convert` defaults to.
GZIP_LEVEL = 4


def read(path: Path) -> ad.AnnData:
    """Reads a file with anndata, quietly (awkward arrays warn that they are experimental)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


def write_with_anndata(adata: ad.AnnData, path: Path, compression: str) -> None:
    """Writes like anndata does, keeping the object as it is.

    String columns are not turned into categoricals (the fixtures' string columns already went
    through that when they were written) and pandas string arrays may be written, so that
    `nullable-string-array` columns stay what they are.
    """
    with warnings.catch_warnings(), ad.settings.override(allow_write_nullable_strings=True):
        warnings.simplefilter("ignore")
        adata.write_h5ad(
            path,
            compression=None if compression == "none" else compression,
            convert_strings_to_categoricals=False,
        )


@pytest.fixture(scope="module")
def converted(annpage_bin: Path, tmp_path_factory: pytest.TempPathFactory):
    """`converted(IN, C)`: the path of IN converted by annpage with compression C (cached)."""
    cache: dict[tuple[Path, str], Path] = {}
    out_dir = tmp_path_factory.mktemp("converted")

    def convert(src: Path, compression: str) -> Path:
        key = (src, compression)
        if key not in cache:
            out = out_dir / f"{fixture_id(src).replace('/', '__')}.{compression}.h5ad"
            result = run([annpage_bin, "convert", src, out, "--compression", compression])
            assert result.returncode == 0, (
                f"annpage convert {src.name} --compression {compression} failed "
                f"(exit {result.returncode}):\n{result.stderr}"
            )
            assert out.is_file(), f"annpage convert exited 0 but wrote no {out}"
            cache[key] = out
        return cache[key]

    return convert


params = pytest.mark.parametrize(
    ("src", "compression"),
    [(f, c) for f in FILES for c in COMPRESSIONS],
    ids=[f"{fixture_id(f)}-{c}" for f in FILES for c in COMPRESSIONS],
)


def test_fixture_set_is_complete():
    current = [f for f in FILES if f.parent == FIXTURES]
    legacy = [f for f in FILES if f.parent != FIXTURES]
    assert len(current) >= 20, f"only {len(current)} current fixtures in {FIXTURES}"
    assert len(legacy) >= 3, f"only {len(legacy)} legacy fixtures in {FIXTURES / 'legacy'}"


@params
def test_anndata_reads_converted_file_equal(src: Path, compression: str, converted):
    original = read(src)
    result = read(converted(src, compression))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.ExperimentalFeatureWarning)
        assert_equal(original, result)
    # assert_equal does not look at these.
    assert list(result.obs.columns) == list(original.obs.columns)
    assert list(result.var.columns) == list(original.var.columns)
    assert result.X is None or result.X.dtype == original.X.dtype


def _reference_tree(src: Path, compression: str, tmp_path: Path) -> dict[str, Node]:
    """The tree of the file anndata writes for the object read from `src`.

    One correction: anndata hands numeric scalars back as Python ints and floats, so its own
    rewrite widens every `numeric-scalar` to int64/float64. A converter should keep the dtype
    that is on disk, so for current-format inputs those datasets are expected with the
    input's dtype.
    """
    ref = tmp_path / "anndata.h5ad"
    write_with_anndata(read(src), ref, compression)
    expected = tree(ref)
    if src.parent == FIXTURES:
        source = tree(src)
        for path, node in expected.items():
            if node.attrs.get("encoding-type", (None, None))[1] == "numeric-scalar" and path in source:
                expected[path] = Node(
                    node.kind,
                    node.attrs,
                    dtype=source[path].dtype,
                    shape=node.shape,
                    compression=node.compression,
                    compression_opts=node.compression_opts,
                )
    return expected


@params
def test_converted_tree_matches_anndata(src: Path, compression: str, converted, tmp_path: Path):
    expected = _reference_tree(src, compression, tmp_path)
    problems = differences(expected, tree(converted(src, compression)))
    assert not problems, f"{len(problems)} objects differ from anndata's file:\n  " + "\n  ".join(problems)


@params
def test_converted_datasets_are_compressed_as_asked(src: Path, compression: str, converted):
    want = None if compression == "none" else compression
    wrong = []
    with h5py.File(converted(src, compression), "r") as f:

        def visit(name: str, obj: h5py.HLObject) -> None:
            if not isinstance(obj, h5py.Dataset) or obj.shape is None:
                return
            if obj.shape == ():
                if obj.compression is not None:
                    wrong.append(f"/{name}: scalar compressed with {obj.compression}")
                return
            if obj.compression != want:
                wrong.append(f"/{name}: compression {obj.compression}, expected {want}")
            elif want == "gzip" and obj.compression_opts != GZIP_LEVEL:
                wrong.append(f"/{name}: gzip level {obj.compression_opts}, expected {GZIP_LEVEL}")

        f.visititems(visit)
    assert not wrong, "\n".join(wrong)


def test_reference_writer_reproduces_current_fixtures(tmp_path: Path):
    """Self-check of the harness: anndata's rewrite of a current fixture (with the corrections of
    `_reference_tree`) is the fixture itself, so a difference found above is annpage's.
    hdf5_latest.h5ad is left out: anndata's `write_h5ad` did not write it (HDF5's newest
    format, with attributes anndata drops)."""
    for src in [f for f in FILES if f.parent == FIXTURES and f.name != "hdf5_latest.h5ad"]:
        compression = next((c for c in ("gzip", "lzf") if c in src.stem), "none")
        problems = differences(tree(src), _reference_tree(src, compression, tmp_path))
        assert not problems, f"{src.name}:\n  " + "\n  ".join(problems)


# --- malformed input -----------------------------------------------------------------------


def _copy_fixture(tmp: Path, name: str) -> Path:
    dst = tmp / "input" / name
    dst.parent.mkdir()
    shutil.copyfile(FIXTURES / name, dst)
    return dst


def _sparse_without_indptr(tmp: Path) -> Path:
    path = _copy_fixture(tmp, "x_csr_f32.h5ad")
    with h5py.File(path, "r+") as f:
        del f["X/indptr"]
    return path


def _unknown_encoding(tmp: Path) -> Path:
    path = _copy_fixture(tmp, "x_csr_f32.h5ad")
    with h5py.File(path, "r+") as f:
        f["X"].attrs["encoding-type"] = "mystery_matrix"
    return path


def _truncated(tmp: Path) -> Path:
    path = _copy_fixture(tmp, "pbmc_like_csr.h5ad")
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(size // 2)
    return path


def _not_hdf5(tmp: Path) -> Path:
    path = tmp / "input" / "notes.h5ad"
    path.parent.mkdir()
    path.write_text("cell,gene,count\nc1,g1,3\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("make", "element"),
    [
        (_sparse_without_indptr, "/X"),
        (_unknown_encoding, "/X"),
        (_truncated, None),
        (_not_hdf5, None),
    ],
    ids=["sparse-without-indptr", "unknown-encoding", "truncated", "not-hdf5"],
)
def test_malformed_input_fails_with_one_line(make, element: str | None, annpage_bin: Path, tmp_path: Path):
    src = make(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "out.h5ad"
    result = run([annpage_bin, "convert", src, out])
    assert result.returncode != 0, f"annpage convert accepted {src.name}; stdout: {result.stdout!r}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert src.name in lines[0], f"the error does not name the file {src.name}: {lines[0]!r}"
    if element is not None:
        assert element in lines[0], f"the error does not name the element {element}: {lines[0]!r}"
    assert not out.exists(), "a failed conversion left its output behind"
    assert list(out_dir.iterdir()) == [], f"a failed conversion left files: {list(out_dir.iterdir())}"
