"""`annpage convert` from Matrix Market, 10x Genomics (directories and HDF5) and CSV/TSV inputs
against the Python readers of the same files.

Each case writes an input with scipy/h5py/plain text, converts it to .h5ad with the CLI, reads
it with `anndata.read_mtx`, `scanpy.read_10x_mtx`, `scanpy.read_10x_h5` or `anndata.read_csv`,
and compares the two with `assert_equal` (and the exact names).
"""

from __future__ import annotations

import gzip
import io
import resource
import shutil
import subprocess
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

from format_files import gzip_file, tenx_dir, write_10x_group
from support import FIXTURES, ROOT, peak_rss_mb, run

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import scanpy as sc


def _convert(annpage_bin: Path, src: Path, out: Path, *args: str) -> ad.AnnData:
    res = run([annpage_bin, "convert", src, out, *args])
    assert res.returncode == 0, res.stderr
    return ad.read_h5ad(out)


def _same(got: ad.AnnData, want: ad.AnnData) -> None:
    assert_equal(got, want)
    assert list(got.obs_names) == list(want.obs_names)
    assert list(got.var_names) == list(want.var_names)
    assert list(got.var.columns) == list(want.var.columns)
    assert list(got.obs.columns) == list(want.obs.columns)
    assert type(got.X) is type(want.X)


# ---------------------------------------------------------------------------- Matrix Market

HAND_WRITTEN = {
    # Unsorted, a duplicate (summed) and an explicit zero (kept), comments and a blank line.
    "unsorted": "%%MatrixMarket matrix coordinate real general\n% a comment\n3 4 5\n\n3 4 1.5\n1 2 2\n3 1 0\n3 4 0.25\n1 1 -1e-3\n",
    "pattern": "%%MatrixMarket matrix coordinate pattern general\n2 3 3\n2 3\n1 1\n2 1\n",
    "symmetric": "%%MatrixMarket matrix coordinate integer symmetric\n3 3 3\n1 1 4\n3 1 -2\n3 2 7\n",
    "skew": "%%MatrixMarket matrix coordinate real skew-symmetric\n3 3 2\n2 1 0.5\n3 2 1e10\n",
    "dense": "%%MatrixMarket matrix array real general\n2 3\n1\n0\n0.1\n2.5\n0\n-3\n",
    "dense_symmetric": "%%MatrixMarket matrix array integer symmetric\n2 2\n1\n0\n5\n",
    "empty": "%%MatrixMarket matrix coordinate real general\n4 0 0\n",
    "no_entries": "%%MatrixMarket matrix coordinate integer general\n3 5 0\n",
    "double_rounding": "%%MatrixMarket matrix coordinate real general\n1 2 2\n1 1 1.00000005960464477539062500001\n1 2 0.1\n",
}


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_hand_written_mtx_reads_like_anndata(annpage_bin: Path, tmp_path: Path, name: str) -> None:
    src = tmp_path / "m.mtx"
    src.write_text(HAND_WRITTEN[name])
    _same(_convert(annpage_bin, src, tmp_path / "out.h5ad"), ad.read_mtx(src))


@pytest.mark.parametrize("seed", range(6))
def test_generated_mtx_reads_like_anndata(annpage_bin: Path, tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(0, 40)), int(rng.integers(1, 40)))
    m = sp.random(*shape, density=rng.uniform(0, 0.5), format="coo", random_state=seed)
    field = ["real", "integer", "real", "integer", "pattern", "real"][seed]
    if field == "integer":
        m.data = rng.integers(-1000, 1000, m.nnz)
    src = tmp_path / "m.mtx"
    if seed in (0, 1, 3):
        # Row order, as mmwrite writes a CSR matrix: the conversion streams it.
        m = m.tocsr()
    if seed == 5:
        # Shuffled entries: the file order is not the row order.
        order = rng.permutation(m.nnz)
        m = sp.coo_matrix((m.data[order], (m.row[order], m.col[order])), shape=shape)
    scipy.io.mmwrite(src, m, field=field)
    if seed % 2:
        src = gzip_file(src)
    _same(_convert(annpage_bin, src, tmp_path / "out.h5ad"), ad.read_mtx(src))


def test_row_ordered_mtx_streams_in_blocks_like_anndata(annpage_bin: Path, tmp_path: Path) -> None:
    """2.5 million entries in row order, repeated coordinates in some rows: streamed in several
    blocks, each row made canonical."""
    m = sp.random(20000, 3000, density=0.04, format="csr", random_state=12, dtype=np.float64)
    coo = m.tocoo()
    # Each row's entries reversed and its first entry repeated: row order kept, rows unsorted.
    rows, cols, vals = [], [], []
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        if hi > lo:
            rows += [r] * (hi - lo + 1)
            cols += list(m.indices[lo:hi][::-1]) + [m.indices[lo]]
            vals += list(m.data[lo:hi][::-1]) + [0.5]
    src = tmp_path / "rows.mtx"
    with open(src, "w") as f:
        f.write(f"%%MatrixMarket matrix coordinate real general\n{m.shape[0]} {m.shape[1]} {len(vals)}\n")
        f.writelines(f"{r + 1} {c + 1} {float(v)!r}\n" for r, c, v in zip(rows, cols, vals))
    assert coo.nnz > 2_000_000
    _same(_convert(annpage_bin, src, tmp_path / "out.h5ad"), ad.read_mtx(src))


def test_bad_mtx_names_file_and_line(annpage_bin: Path, tmp_path: Path) -> None:
    src = tmp_path / "bad.mtx"
    src.write_text("%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n3 1 1\n")
    res = run([annpage_bin, "convert", src, tmp_path / "out.h5ad"])
    assert res.returncode != 0
    assert "bad.mtx" in res.stderr and "line 4" in res.stderr and "row 3" in res.stderr, res.stderr
    assert not (tmp_path / "out.h5ad").exists()


@pytest.mark.parametrize("size", ["1000000000 3 1", "3 1000000000 1"])
def test_an_mtx_header_declaring_far_more_rows_or_columns_than_entries_is_refused(
    annpage_bin: Path, tmp_path: Path, size: str
) -> None:
    """Each row takes offsets and each row and column a name, whatever the file holds: a
    three-line file declaring 10^9 rows took 24 GB (convert streams row-ordered files, past the
    reader's check) before the kernel killed it."""
    src = tmp_path / "huge.mtx"
    src.write_text(f"%%MatrixMarket matrix coordinate real general\n{size}\n1 1 1.0\n")
    res = run([annpage_bin, "convert", src, tmp_path / "out.h5ad"], timeout=30)
    assert res.returncode == 1, res.stderr
    assert "huge.mtx: line 2: malformed element: the header declares 1000000000" in res.stderr, res.stderr


# ---------------------------------------------------------------------------- 10x directories


CASES_10X = {
    "default": ((), {}),
    "gene_ids": (("--gene-ids",), {"var_names": "gene_ids"}),
    "duplicates": (("--keep-duplicate-names",), {"make_unique": False}),
    "all_features": (("--all-features",), {"gex_only": False}),
}


@pytest.mark.parametrize("case", sorted(CASES_10X))
@pytest.mark.parametrize("legacy", [False, True], ids=["v3", "v2"])
def test_10x_directory_reads_like_scanpy(annpage_bin: Path, tmp_path: Path, legacy: bool, case: str) -> None:
    d = tenx_dir(tmp_path, legacy)
    args, kwargs = CASES_10X[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = sc.read_10x_mtx(d, **kwargs)
    got = _convert(annpage_bin, d, tmp_path / "out.h5ad", *args)
    _same(got, want)
    assert got.var_names.is_unique == (case != "duplicates")


@pytest.mark.parametrize(
    ("features", "barcodes"),
    [
        ("\ufeffE1\tA\tGene Expression\nE2\tB\tGene Expression\n", "\ufeffAAAC-1\nAAAG-1\n"),
        ('E1\t"A"\tGene Expression\nE2\t"B,C"\tGene Expression\n', '"AAAC-1"\n"AA""G-1"\n'),
    ],
    ids=["byte-order-mark", "quoted"],
)
def test_10x_directory_text_reads_as_pandas_reads_it(annpage_bin: Path, tmp_path: Path, features: str, barcodes: str) -> None:
    import gzip

    d = tmp_path / "tenx"
    d.mkdir()
    buf = io.BytesIO()
    scipy.io.mmwrite(buf, sp.coo_matrix(np.array([[1, 0], [0, 2]])), field="integer")
    (d / "matrix.mtx.gz").write_bytes(gzip.compress(buf.getvalue()))
    (d / "features.tsv.gz").write_bytes(gzip.compress(features.encode()))
    (d / "barcodes.tsv.gz").write_bytes(gzip.compress(barcodes.encode()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = sc.read_10x_mtx(d)
    _same(_convert(annpage_bin, d, tmp_path / "out.h5ad", "--from", "10x-mtx"), want)


def test_10x_directory_of_the_wrong_length_names_the_file(annpage_bin: Path, tmp_path: Path) -> None:
    d = tenx_dir(tmp_path, legacy=True)
    (d / "barcodes.tsv").write_text("A-1\nB-1\n")
    res = run([annpage_bin, "convert", d, tmp_path / "out.h5ad"])
    assert res.returncode != 0 and "barcodes.tsv" in res.stderr and "2 barcodes" in res.stderr, res.stderr


# ---------------------------------------------------------------------------- 10x HDF5


@pytest.mark.parametrize("args", [(), ("--all-features",), ("--genome", "mm10")], ids=["default", "all", "genome"])
def test_10x_h5_v3_reads_like_scanpy(annpage_bin: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    src = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(src, "w") as f:
        write_10x_group(f.create_group("matrix"), np.random.default_rng(1), True, 15, 11)
    kwargs = {"--all-features": {"gex_only": False}, "--genome": {"genome": "mm10"}}.get(args[:1] and args[0], {})
    _same(_convert(annpage_bin, src, tmp_path / "out.h5ad", *args), sc.read_10x_h5(src, **kwargs))


def test_streamed_conversions_write_the_store_the_output_names(annpage_bin: Path, tmp_path: Path) -> None:
    # The streamed readers (row-ordered mtx, 10x h5) wrote HDF5 whatever the output's name.
    mtx = tmp_path / "rows.mtx"
    m = sp.random(50, 30, density=0.2, format="coo", random_state=3, dtype=np.float64)
    order = np.lexsort((m.col, m.row))
    with open(mtx, "w") as f:
        f.write(f"%%MatrixMarket matrix coordinate real general\n50 30 {m.nnz}\n")
        f.writelines(f"{m.row[k] + 1} {m.col[k] + 1} {float(m.data[k])!r}\n" for k in order)
    h5 = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(h5, "w") as f:
        write_10x_group(f.create_group("matrix"), np.random.default_rng(1), True, 15, 11)
    for src, want in [(mtx, ad.read_mtx(mtx)), (h5, sc.read_10x_h5(h5))]:
        for fmt in ["2", "3"]:
            out = tmp_path / f"{src.stem}-{fmt}.zarr"
            res = run([annpage_bin, "convert", src, out, "--zarr-format", fmt])
            assert res.returncode == 0, res.stderr
            assert (out / ("zarr.json" if fmt == "3" else ".zgroup")).is_file()
            _same(ad.read_zarr(out), want)


@pytest.mark.parametrize(("edit", "words"), [("negative", "/matrix/indices: malformed element: negative value -1"), ("2d", "/matrix/data: shape mismatch: a 2-d array")])
def test_a_bad_10x_h5_is_named_with_its_element(annpage_bin: Path, tmp_path: Path, edit: str, words: str) -> None:
    src = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(src, "w") as f:
        write_10x_group(f.create_group("matrix"), np.random.default_rng(1), True, 15, 11)
    with h5py.File(src, "a") as f:
        g = f["matrix"]
        name = "indices" if edit == "negative" else "data"
        v = g[name][()]
        if edit == "negative":
            v = v.astype(np.int64)
            v[0] = -1
        else:
            v = v.reshape(-1, 1)
        del g[name]
        g[name] = v
    res = run([annpage_bin, "convert", src, tmp_path / "out.h5ad"])
    assert res.returncode == 1 and f"annpage: error: {src}: {words}" in res.stderr, res.stderr
    assert not (tmp_path / "out.h5ad").exists()


def test_an_h5ad_named_h5_reads_as_anndata(annpage_bin: Path, tmp_path: Path) -> None:
    # scanpy's read() takes a .h5 as an .h5ad; a Cell Ranger .h5 has no obs/var at its root.
    src = tmp_path / "data.h5"
    shutil.copy(ROOT / "fixtures" / "all_elements.h5ad", src)
    _same(_convert(annpage_bin, src, tmp_path / "out.h5ad"), ad.read_h5ad(src))


def test_10x_h5_legacy_reads_like_scanpy(annpage_bin: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    rng = np.random.default_rng(2)
    with h5py.File(one, "w") as f:
        write_10x_group(f.create_group("hg19"), rng, False, 10, 7)
    with h5py.File(two, "w") as f:
        write_10x_group(f.create_group("hg19"), rng, False, 10, 7)
        write_10x_group(f.create_group("mm10"), rng, False, 6, 7)
    _same(_convert(annpage_bin, one, tmp_path / "one.h5ad"), sc.read_10x_h5(one))
    res = run([annpage_bin, "convert", two, tmp_path / "two.h5ad"])
    assert res.returncode != 0 and "two.h5" in res.stderr and "mm10" in res.stderr, res.stderr
    got = _convert(annpage_bin, two, tmp_path / "mm10.h5ad", "--genome", "mm10")
    _same(got, sc.read_10x_h5(two, genome="mm10"))


# ---------------------------------------------------------------------------- CSV / TSV

TABLES = {
    "corner.csv": "cell,g1,g2,g3\nc1,1,0,2.5\nc2,0,3,1e-3\nc3,7,0,0\n",
    "no_corner.csv": "g1,g2,g3\nc1,1,0,2.5\nc2,0,3,1e-3\n",
    "numbers_only.csv": "1,0,2.5\n0,3,0.001\n",
    "comment_names.csv": "# a comment\n# g1 g2\n0.5,1\n2,3\n",
    "quoted.csv": '"",\"g1\",\"g2\"\n"c1",1,2\n"c2",3,4\n',
    "numeric_header.csv": "1,2,3\n10,0.5,1,2\n11,4,5,6\n",
    "tabs.tsv": "\tA\tB\nr1\t1\t2\nr2\t3\t4\n",
    "spaces.txt": "x y\nr1  1 2\nr2 3   4\n",
    "crlf.csv": "id,a\r\nr1,1\r\n\r\nr2,2\r\n",
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_tables_read_like_anndata(annpage_bin: Path, tmp_path: Path, name: str) -> None:
    src = tmp_path / name
    src.write_bytes(TABLES[name].encode())
    delimiter = {"tsv": "\t", "txt": None}.get(name.rsplit(".", 1)[1], ",")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ad.read_csv(src, delimiter=delimiter) if delimiter is not None else ad.read_text(src)
    _same(_convert(annpage_bin, src, tmp_path / "out.h5ad"), want)


@pytest.mark.parametrize("name", ["tabs.tsv", "spaces.txt"])
def test_first_column_names_keeps_the_extensions_delimiter(annpage_bin: Path, tmp_path: Path, name: str) -> None:
    src = tmp_path / name
    src.write_bytes(TABLES[name].encode())
    delimiter = "\t" if name.endswith(".tsv") else None
    want = ad.read_text(src, delimiter=delimiter, first_column_names=True)
    _same(_convert(annpage_bin, src, tmp_path / "out.h5ad", "--first-column-names"), want)


@pytest.mark.parametrize("value", ["", "::", '"'])
def test_a_delimiter_of_no_single_character_is_refused(annpage_bin: Path, tmp_path: Path, value: str) -> None:
    src = tmp_path / "t.csv"
    src.write_text(TABLES["corner.csv"])
    res = run([annpage_bin, "convert", src, tmp_path / "o.h5ad", f"--delimiter={value}"])
    assert res.returncode == 1 and "is no delimiter: give one character" in res.stderr, res.stderr
    res = run([annpage_bin, "convert", src, tmp_path / "o", "--to", "csvs", "--delimiter", "whitespace"])
    assert res.returncode == 1 and "a written one needs one character" in res.stderr, res.stderr
    assert not (tmp_path / "o.h5ad").exists() and not (tmp_path / "o").exists()


def test_a_failed_csvs_write_leaves_nothing(annpage_bin: Path, tmp_path: Path) -> None:
    """An uns key too long for a file name fails before anything is written: no new directory,
    and in an existing one, nothing beside what it held (the files before it used to be
    renamed into place before the long name failed)."""
    a = ad.AnnData(np.ones((2, 2), dtype=np.float32))
    a.uns["k" * 300] = np.arange(3)
    src = tmp_path / "long.h5ad"
    a.write_h5ad(src)
    res = run([annpage_bin, "convert", src, tmp_path / "new", "--to", "csvs"])
    assert res.returncode == 1 and "/uns/kkk" in res.stderr and "255 bytes" in res.stderr, res.stderr
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "mine.txt").write_text("mine")
    res = run([annpage_bin, "convert", src, tmp_path / "old", "--to", "csvs"])
    assert res.returncode == 1
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["mine.txt"]


def test_gzipped_table_and_explicit_format(annpage_bin: Path, tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text(TABLES["corner.csv"])
    want = ad.read_csv(src)
    gz = gzip_file(src)
    _same(_convert(annpage_bin, gz, tmp_path / "a.h5ad"), want)
    renamed = tmp_path / "table.dat"
    shutil.copy(gz, renamed)
    _same(_convert(annpage_bin, renamed, tmp_path / "b.h5ad", "--from", "csv"), want)
    res = run([annpage_bin, "convert", renamed, tmp_path / "c.h5ad"])
    assert res.returncode != 0 and "--from" in res.stderr


def test_bzip2_and_old_mac_line_breaks_read_as_anndata_reads_them(annpage_bin: Path, tmp_path: Path) -> None:
    """anndata's read_csv opens `.bz2` files with bz2 and reads text with Python's universal
    newlines (a lone \\r ends a line, as in old Mac files)."""
    import bz2

    text = TABLES["corner.csv"]
    plain = tmp_path / "t.csv"
    plain.write_text(text)
    want = ad.read_csv(plain)
    packed = tmp_path / "t.csv.bz2"
    packed.write_bytes(bz2.compress(text.encode()))
    _same(_convert(annpage_bin, packed, tmp_path / "a.h5ad"), ad.read_csv(packed))
    _same(ad.read_csv(packed), want)
    mac = tmp_path / "mac.csv"
    mac.write_bytes(text.replace("\n", "\r").encode())
    _same(_convert(annpage_bin, mac, tmp_path / "b.h5ad"), ad.read_csv(mac))


def test_blank_lines_after_the_barcodes_are_not_barcodes(annpage_bin: Path, tmp_path: Path) -> None:
    """pandas skips blank lines: a barcodes file ending in an empty line still holds as many
    barcodes as the matrix has cells."""
    import scanpy as sc

    d = tenx_dir(tmp_path, False)
    path = d / "barcodes.tsv.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()) + b"\n\n"))
    want = sc.read_10x_mtx(d)
    _same(_convert(annpage_bin, d, tmp_path / "out.h5ad"), want)


def test_ragged_table_names_the_line(annpage_bin: Path, tmp_path: Path) -> None:
    src = tmp_path / "ragged.csv"
    src.write_text("id,a,b\nr1,1,2\nr2,3\nr3,4,5\n")
    res = run([annpage_bin, "convert", src, tmp_path / "out.h5ad"])
    assert res.returncode != 0 and "ragged.csv" in res.stderr and "line 3" in res.stderr, res.stderr


# ---------------------------------------------------------------------------- write_csvs

CURRENT_FIXTURES = sorted((ROOT / "fixtures").glob("*.h5ad"))


def _csv_files(d: Path) -> set[Path]:
    return {p.relative_to(d) for p in d.rglob("*.csv")}


@pytest.mark.parametrize("path", CURRENT_FIXTURES, ids=lambda p: p.stem)
def test_write_csvs_writes_anndatas_bytes(annpage_bin: Path, tmp_path: Path, path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    res = run([annpage_bin, "convert", path, ours, "--to", "csvs", "--with-x"])
    assert res.returncode == 0, res.stderr
    # Each file was staged beside itself and renamed: no temporary is left.
    assert not [p for p in ours.rglob(".*")], list(ours.rglob(".*"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ad.read_h5ad(path)
        try:
            a.write_csvs(theirs, skip_data=False)
        except Exception:
            # anndata's own writer fails on this object (sparse or awkward obsm): the tables it
            # would write first are compared with what pandas writes for them.
            assert (ours / "obs.csv").read_text() == a.obs.to_csv()
            assert (ours / "var.csv").read_text() == a.var.to_csv()
            if a.X is not None:
                x = a.X.toarray() if sp.issparse(a.X) else a.X
                assert (ours / "X.csv").read_text() == pd.DataFrame(x).to_csv(header=False, index=False)
            return
    # Files only anndata writes: nested uns mappings, which it writes as a Python repr.
    for extra in _csv_files(theirs) - _csv_files(ours):
        assert extra.parent.name == "uns" and isinstance(a.uns[extra.stem], dict), extra
    assert _csv_files(ours) <= _csv_files(theirs)
    for p in _csv_files(ours):
        assert (ours / p).read_bytes() == (theirs / p).read_bytes(), p


def test_write_csvs_quotes_and_formats_like_pandas(annpage_bin: Path, tmp_path: Path) -> None:
    obs = pd.DataFrame(
        {
            # A lone carriage return is not quoted: pandas' line terminator is "\n".
            "text": ['a,b', 'say "hi"', "two\nlines", "tab\there", "", "cr\r"],
            "f32": np.array([1.83203125, 1e-5, 1e6, 999999.9, np.nan, -0.0], dtype=np.float32),
            "f64": [0.1, 1e16, 1e-5, np.inf, np.nan, 123456789.0],
            "cat": pd.Categorical(["x", None, "y", "x", "y", "x"]),
            "n": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
            "b": pd.array([True, None, False, True, False, True], dtype="boolean"),
        },
        index=[f"c{i}" for i in range(6)],
    )
    obs.index.name = "cell"
    a = ad.AnnData(X=np.arange(18, dtype=np.float32).reshape(6, 3) / 7, obs=obs)
    a.obsm["X_umap"] = np.random.default_rng(0).random((6, 2)).astype(np.float32)
    a.uns["matrix"] = np.arange(6).reshape(2, 3)
    a.uns["name"] = "x,y"
    src = tmp_path / "in.h5ad"
    a.write_h5ad(src)
    for sep in [",", "\t"]:
        ours, theirs = tmp_path / f"ours{sep!r}", tmp_path / f"theirs{sep!r}"
        args = ["--delimiter", "tab"] if sep == "\t" else []
        res = run([annpage_bin, "convert", src, ours, "--to", "csvs", "--with-x", *args])
        assert res.returncode == 0, res.stderr
        ad.read_h5ad(src).write_csvs(theirs, skip_data=False, sep=sep)
        assert _csv_files(ours) == _csv_files(theirs)
        for p in _csv_files(ours):
            assert (ours / p).read_bytes() == (theirs / p).read_bytes(), (sep, p)


# ---------------------------------------------------------------------------- loom


def _loom_inputs(tmp_path: Path) -> dict[str, Path]:
    """Loom files written by loompy: with CellID/Gene, spliced/unspliced layers, a 2-d
    attribute, bools, unicode and XML-escaped strings; and one written by anndata."""
    import loompy

    rng = np.random.default_rng(5)
    n_genes, n_cells = 14, 9
    main = rng.poisson(1.0, (n_genes, n_cells)).astype(np.float32)
    out = {}
    p = tmp_path / "velocity.loom"
    loompy.create(
        str(p),
        {"": main, "spliced": main * 2, "unspliced": rng.poisson(0.5, (n_genes, n_cells)).astype(np.int32)},
        row_attrs={"Gene": np.array([f"g{i % 12}" for i in range(n_genes)]), "Accession": np.arange(n_genes)},
        col_attrs={
            "CellID": np.array([f"cell{i}" for i in range(n_cells)]),
            "Clusters": rng.integers(0, 3, n_cells),
            "umap": rng.random((n_cells, 2)),
            "flag": rng.random(n_cells) < 0.5,
            "note": np.array(["café", "a&b", "x<y", "plain", "", "ü", "1", "2", "3"], dtype=object),
        },
    )
    out["velocity"] = p
    p = tmp_path / "plain.loom"
    loompy.create(str(p), main, row_attrs={"x": np.arange(n_genes) * 0.5}, col_attrs={"y": np.arange(n_cells)})
    out["plain"] = p
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ad.read_h5ad(ROOT / "fixtures" / "pbmc_like_csr.h5ad")
        p = tmp_path / "from_anndata.loom"
        a.write_loom(p)
    out["from_anndata"] = p
    return out


@pytest.mark.parametrize("name", ["velocity", "plain", "from_anndata"])
def test_loom_reads_like_anndata(annpage_bin: Path, tmp_path: Path, name: str) -> None:
    src = _loom_inputs(tmp_path)[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ad.read_loom(src)
    got = _convert(annpage_bin, src, tmp_path / "out.h5ad")
    _same(got, want)
    assert list(got.layers) == list(want.layers) and list(got.obsm) == list(want.obsm)
    assert got.obs.index.name == want.obs.index.name


def test_loom_of_the_newer_hdf5_layout_reads_in_h5pys_order(annpage_bin: Path, tmp_path: Path) -> None:
    # Groups of libver="latest" keep links by hash: libhdf5's native order is creation order,
    # h5py's (and so anndata's) the names'.
    src = tmp_path / "latest.loom"
    with h5py.File(src, "w", libver="latest") as f:
        f["matrix"] = np.arange(12, dtype="float32").reshape(3, 4)
        for g in ["row_attrs", "col_attrs", "layers", "attrs", "row_graphs", "col_graphs"]:
            f.create_group(g)
        for k in ["zeta", "alpha", "CellID", "mid"]:
            f["col_attrs"][k] = np.array([f"{k}{i}".encode() for i in range(4)])
        f["row_attrs"]["Gene"] = np.array([b"g0", b"g1", b"g2"])
        f["layers"]["zz"] = np.ones((3, 4), dtype="float32")
        f["layers"]["aa"] = np.zeros((3, 4), dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ad.read_loom(src)
    got = _convert(annpage_bin, src, tmp_path / "out.h5ad")
    _same(got, want)
    assert list(got.layers) == list(want.layers) == ["aa", "zz"]


def test_loom_converts_one_block_of_cells_at_a_time(annpage_bin: Path, tmp_path: Path) -> None:
    # 8,000 cells × 6,000 genes of float32 (183 MiB dense, 5% non-zero): read whole, as before,
    # the conversion held the matrix twice over (as stored and as float64), over 500 MiB.
    n_genes, n_cells = 6000, 8000
    rng = np.random.default_rng(11)
    src = tmp_path / "big.loom"
    blocks = []
    with h5py.File(src, "w") as f:
        m = f.create_dataset("matrix", (n_genes, n_cells), dtype="float32", chunks=(64, 64), compression="gzip",
                             compression_opts=1)
        for start in range(0, n_cells, 1000):
            block = sp.random(n_genes, 1000, density=0.05, format="csc", dtype=np.float32, random_state=rng)
            block.data = np.ceil(block.data * 10)
            m[:, start:start + 1000] = block.toarray()
            blocks.append(block.T.tocsr())
        for g in ["row_attrs", "col_attrs", "layers", "attrs", "row_graphs", "col_graphs"]:
            f.create_group(g)
        f["col_attrs"]["CellID"] = np.array([f"c{i}".encode() for i in range(n_cells)])
        f["row_attrs"]["Gene"] = np.array([f"g{i}".encode() for i in range(n_genes)])
    base, res = peak_rss_mb([annpage_bin, "info", FIXTURES / "pbmc_like_csr.h5ad"])
    assert res.returncode == 0, res.stderr
    out = tmp_path / "big.h5ad"
    peak, res = peak_rss_mb([annpage_bin, "convert", src, out])
    assert res.returncode == 0, res.stderr
    # One block: 2^21 float64 values read, their transposed CSR, the output's chunk buffers.
    assert peak - base <= 100, f"convert peaked at {peak:.0f} MiB ({base:.0f} MiB at rest)"
    got = ad.read_h5ad(out)
    want = sp.vstack(blocks).tocsr()
    assert got.X.dtype == np.float32 and got.X.nnz == want.nnz
    assert (got.X != want).nnz == 0
    assert list(got.obs_names[:2]) == ["c0", "c1"] and got.var_names[-1] == f"g{n_genes - 1}"


def test_h5ad_to_loom_and_csvs_reads_a_block_at_a_time(annpage_bin: Path, tmp_path: Path) -> None:
    # 12,000 cells × 2,000 genes, 5% non-zero (14 MiB stored, 92 MiB dense) through a 4 MiB
    # cache. Read whole, as before, the file and its dense blocks of 4,096 cells took 98 MiB
    # more than at rest.
    n_obs, n_vars = 12_000, 2_000
    rng = np.random.default_rng(3)
    x = sp.random(n_obs, n_vars, density=0.05, format="csr", dtype=np.float32, random_state=rng)
    x.data = np.ceil(x.data * 8)
    a = ad.AnnData(x, obsm={"X_pca": rng.random((n_obs, 2)).astype(np.float32)})
    src = tmp_path / "big.h5ad"
    a.write_h5ad(src)
    base, res = peak_rss_mb([annpage_bin, "info", FIXTURES / "pbmc_like_csr.h5ad"])
    assert res.returncode == 0, res.stderr
    out = tmp_path / "big.loom"
    peak, res = peak_rss_mb([annpage_bin, "convert", src, out, "--cache-mb", "4"])
    assert res.returncode == 0, res.stderr
    assert peak - base <= 40, f"convert to loom peaked at {peak:.0f} MiB ({base:.0f} MiB at rest)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ad.read_loom(out, sparse=True)
    assert got.shape == (n_obs, n_vars) and (got.X != x).nnz == 0
    # X.csv is text (25 s for the whole file in a debug build): 2,500 cells, 5 million fields,
    # compared with anndata's. Read whole, as before, a block of a million fields took the most.
    part = a[:2_500].copy()
    part.write_h5ad(tmp_path / "part.h5ad")
    part.write_csvs(tmp_path / "theirs", skip_data=False)
    cmd = [annpage_bin, "convert", tmp_path / "part.h5ad", tmp_path / "ours", "--to", "csvs", "--with-x"]
    peak, res = peak_rss_mb([*cmd, "--cache-mb", "4"])
    assert res.returncode == 0, res.stderr
    assert peak - base <= 40, f"convert to csvs peaked at {peak:.0f} MiB ({base:.0f} MiB at rest)"
    for name in ["X.csv", "obsm.csv", "obs.csv"]:
        assert (tmp_path / "ours" / name).read_bytes() == (tmp_path / "theirs" / name).read_bytes(), name


def test_csvs_of_many_obsm_arrays_read_them_in_turn(annpage_bin: Path, tmp_path: Path) -> None:
    # 64 obsm arrays of 20,000 × 4 float64 (41 MiB) through an 8 MiB cache: read side by side,
    # each held a block of its own (all of obsm, 47 MiB above rest); read in turn, one block.
    rng = np.random.default_rng(4)
    a = ad.AnnData(sp.csr_matrix((20_000, 3), dtype=np.float32))
    for i in range(64):
        a.obsm[f"a{i:02d}"] = rng.random((20_000, 4))
    src = tmp_path / "obsm.h5ad"
    a.write_h5ad(src)
    base, res = peak_rss_mb([annpage_bin, "info", FIXTURES / "pbmc_like_csr.h5ad"])
    assert res.returncode == 0, res.stderr
    peak, res = peak_rss_mb([annpage_bin, "convert", src, tmp_path / "ours", "--to", "csvs", "--cache-mb", "8"])
    assert res.returncode == 0, res.stderr
    assert peak - base <= 25, f"convert to csvs peaked at {peak:.0f} MiB ({base:.0f} MiB at rest)"
    a.write_csvs(tmp_path / "theirs")
    assert (tmp_path / "ours" / "obsm.csv").read_bytes() == (tmp_path / "theirs" / "obsm.csv").read_bytes()


def test_text_that_inflates_past_memory_is_refused(annpage_bin: Path, tmp_path: Path) -> None:
    # 2 MB of gzip holding 10^8 short lines. A 10x directory's barcodes are read up to the
    # matrix's count; a CSV table is read whole, so it is refused once it would not fit (here
    # under a 1.2 GB address-space limit) instead of the process aborting.
    lines = tmp_path / "lines.gz"
    with gzip.open(lines, "wb", compresslevel=1) as f:
        f.write(b",a\n")
        block = b"c,0\n" * 1_000_000
        for _ in range(100):
            f.write(block)
    tenx = tmp_path / "tenx"
    tenx.mkdir()
    (tenx / "matrix.mtx").write_text("%%MatrixMarket matrix coordinate integer general\n3 2 1\n1 1 5\n")
    (tenx / "features.tsv").write_text("".join(f"G{i}\tg{i}\tGene Expression\n" for i in range(3)))
    shutil.copy(lines, tenx / "barcodes.tsv.gz")
    res = run([annpage_bin, "convert", "--from", "10x-mtx", tenx, tmp_path / "t.h5ad"])
    assert res.returncode == 1 and "barcodes.tsv.gz: malformed element: more than 2 records" in res.stderr, res.stderr

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1_200_000_000, 1_200_000_000))

    table = tmp_path / "table.csv.gz"
    lines.rename(table)
    res = subprocess.run([str(annpage_bin), "convert", str(table), str(tmp_path / "c.h5ad")], capture_output=True,
                         text=True, timeout=300, preexec_fn=limit)
    assert res.returncode == 1 and "table.csv.gz" in res.stderr and "memory" in res.stderr, res.stderr
    assert not (tmp_path / "c.h5ad").exists()


def test_streamed_matrices_that_claim_more_than_they_store_are_refused(annpage_bin: Path, tmp_path: Path) -> None:
    # Chunked datasets of 2^40 values never written: a few KB claiming terabytes. The streaming
    # conversions read such a matrix a block at a time: its claim is checked first (before,
    # the 10x reader aborted on an 8 TB allocation and the loom one would scan for ever).
    tenx, loom = tmp_path / "claims.h5", tmp_path / "claims.loom"
    with h5py.File(tenx, "w") as f:
        m = f.create_group("matrix")
        m["barcodes"] = np.array([b"c0", b"c1", b"c2"])
        m.create_dataset("data", shape=(2**40,), dtype="i4", chunks=(4096,), maxshape=(None,))
        m.create_dataset("indices", shape=(2**40,), dtype="i8", chunks=(4096,), maxshape=(None,))
        m["indptr"] = np.array([0, 0, 0, 2**40], dtype="i8")
        m["shape"] = np.array([4, 3], dtype="i4")
        fe = m.create_group("features")
        for key, value in [("id", b"i"), ("name", b"g"), ("feature_type", b"Gene Expression"), ("genome", b"G")]:
            fe[key] = np.array([value + (str(i).encode() if key in ("id", "name") else b"") for i in range(4)])
    with h5py.File(loom, "w") as f:
        f.create_dataset("matrix", shape=(3, 2**40), dtype="f4", chunks=(3, 4096), maxshape=(3, None))
        for g in ["row_attrs", "col_attrs", "layers", "attrs"]:
            f.create_group(g)
    for src, element in [(tenx, "/matrix/data"), (loom, "/matrix")]:
        res = run([annpage_bin, "convert", src, tmp_path / "out.h5ad"], timeout=60)
        assert res.returncode == 1, res.stderr
        assert f"{src.name}: {element}" in res.stderr and "claims more than it holds" in res.stderr, res.stderr


@pytest.mark.parametrize("shape", [(4, 0), (4, 1, 3)])
def test_loom_attributes_that_are_neither_columns_nor_arrays_are_refused(annpage_bin: Path, tmp_path: Path, shape: tuple[int, ...]) -> None:
    src = tmp_path / "odd.loom"
    with h5py.File(src, "w") as f:
        f["matrix"] = np.ones((3, 4), dtype="float32")
        for g in ["row_attrs", "col_attrs", "layers", "attrs", "row_graphs", "col_graphs"]:
            f.create_group(g)
        f["col_attrs"].create_dataset("odd", shape=shape, dtype="float64")
    res = run([annpage_bin, "convert", src, tmp_path / "o.h5ad"])
    assert res.returncode == 1, res.stderr
    assert f"{src}: /col_attrs/odd: shape mismatch: {list(shape)} values" in res.stderr, res.stderr


LOOM_WRITTEN = ["pbmc_like_csr", "x_dense_f32", "x_csr_i64", "obs_var_columns", "nullable_strings", "unicode", "x_dense_u8"]


@pytest.mark.parametrize("name", LOOM_WRITTEN)
@pytest.mark.parametrize("obsm", [False, True], ids=["", "obsm"])
def test_written_loom_reads_back_as_anndatas(annpage_bin: Path, tmp_path: Path, name: str, obsm: bool) -> None:
    import loompy

    src = ROOT / "fixtures" / f"{name}.h5ad"
    ours, theirs = tmp_path / "ours.loom", tmp_path / "theirs.loom"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ad.read_h5ad(src)
        if obsm and (any(not isinstance(v, np.ndarray) for v in [*a.obsm.values(), *a.varm.values()])):
            obsm = False  # loompy stores only dense arrays; anndata's writer fails on others too
        a.write_loom(theirs, write_obsm_varm=obsm)
    res = run([annpage_bin, "convert", src, ours, *(["--write-obsm-varm"] if obsm else [])])
    assert res.returncode == 0, res.stderr
    assert loompy.connect(str(ours), "r", validate=True).shape == loompy.connect(str(theirs), "r").shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, want = ad.read_loom(ours), ad.read_loom(theirs)
    _same(got, want)
    assert list(got.obsm) == list(want.obsm)
    with h5py.File(ours) as f, h5py.File(theirs) as g:
        assert f["matrix"].dtype == g["matrix"].dtype and f["matrix"].chunks == g["matrix"].chunks
        assert {k: f["row_attrs"][k].dtype for k in f["row_attrs"]} == {k: g["row_attrs"][k].dtype for k in g["row_attrs"]}
        assert {k: f["col_attrs"][k].dtype for k in f["col_attrs"]} == {k: g["col_attrs"][k].dtype for k in g["col_attrs"]}


def test_loom_names_that_collide_resolve_as_anndatas_writer_resolves_them(annpage_bin: Path, tmp_path: Path) -> None:
    # A column named as the index (what reading a loom gives back), an obsm key named as a
    # column: anndata's dict of attributes keeps the last value given for a name.
    src = tmp_path / "c.h5ad"
    obs = pd.DataFrame({"obs_names": ["x", "y", "z"], "emb": [1.0, 2.0, 3.0]}, index=["c0", "c1", "c2"])
    ad.AnnData(np.ones((3, 2), dtype="float32"), obs=obs, obsm={"emb": np.arange(6.0).reshape(3, 2)}).write_h5ad(src)
    ours, theirs = tmp_path / "ours.loom", tmp_path / "theirs.loom"
    res = run([annpage_bin, "convert", src, ours, "--write-obsm-varm"])
    assert res.returncode == 0, res.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad.read_h5ad(src).write_loom(theirs, write_obsm_varm=True)
        got, want = ad.read_loom(ours), ad.read_loom(theirs)
    _same(got, want)
    assert list(got.obsm) == list(want.obsm)


def test_a_loom_attribute_name_with_a_slash_is_refused(annpage_bin: Path, tmp_path: Path) -> None:
    src = tmp_path / "s.h5ad"
    ad.AnnData(np.ones((2, 2), dtype="float32"), obs=pd.DataFrame({"a/b": [1, 2]}, index=["c0", "c1"])).write_h5ad(src)
    res = run([annpage_bin, "convert", src, tmp_path / "s.loom"])
    assert res.returncode == 1 and "'a/b' cannot name a loom attribute" in res.stderr, res.stderr
    assert not (tmp_path / "s.loom").exists()


def test_loom_refuses_what_loompy_refuses(annpage_bin: Path, tmp_path: Path) -> None:
    res = run([annpage_bin, "convert", ROOT / "fixtures" / "no_x.h5ad", tmp_path / "o.loom"])
    assert res.returncode != 0 and "o.loom" in res.stderr and "empty matrices" in res.stderr, res.stderr
    res = run([annpage_bin, "convert", ROOT / "fixtures" / "x_nan_inf.h5ad", tmp_path / "n.loom"])
    assert res.returncode != 0 and "NaN" in res.stderr, res.stderr
    assert not (tmp_path / "o.loom").exists() and not (tmp_path / "n.loom").exists()


# ---------------------------------------------------------------------------- malformed inputs


def _mutations(seed: int, data: bytes) -> bytes:
    rng = np.random.default_rng(seed)
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        op = rng.integers(0, 4)
        i = int(rng.integers(0, max(1, len(b))))
        if op == 0 and b:
            b[i % len(b)] = int(rng.integers(0, 256))
        elif op == 1:
            b[i:i] = bytes(rng.choice(list(b" \t\n,.-e%9&#x"), int(rng.integers(1, 8))))
        elif op == 2:
            del b[i : i + int(rng.integers(1, 10))]
        else:
            b[i:i] = str(int(rng.integers(0, 2**62))).encode()
    return bytes(b)


@pytest.mark.parametrize("kind", ["mtx", "csv", "10x"])
def test_mutated_inputs_fail_cleanly(annpage_bin: Path, tmp_path: Path, kind: str) -> None:
    """Random byte edits of valid inputs: each conversion succeeds or stops with one error line
    naming the file — never a panic, a crash or a hang."""
    if kind == "mtx":
        base = HAND_WRITTEN["unsorted"].encode()
    elif kind == "csv":
        base = TABLES["corner.csv"].encode()
    else:
        base = (tenx_dir(tmp_path, legacy=True) / "matrix.mtx").read_bytes()
    for seed in range(60):
        if kind == "10x":
            d = tmp_path / "v2"
            (d / "matrix.mtx").write_bytes(_mutations(seed, base))
            src, name = d, "matrix.mtx"
        else:
            src = tmp_path / f"in.{'mtx' if kind == 'mtx' else 'csv'}"
            src.write_bytes(_mutations(seed, base))
            name = src.name
        out = tmp_path / "out.h5ad"
        res = run([annpage_bin, "convert", src, out], timeout=30)
        assert res.returncode in (0, 1), (seed, res.returncode, res.stderr)
        if res.returncode == 1:
            lines = res.stderr.strip().splitlines()
            assert len(lines) == 1 and "panicked" not in res.stderr, (seed, res.stderr)
            # The input (or, for text HDF5 cannot hold such as NUL, the output) is named.
            assert any(n in res.stderr for n in (name, "v2", "out.h5ad")), (seed, res.stderr)
        out.unlink(missing_ok=True)


def test_10x_h5_streams_in_blocks_like_scanpy(annpage_bin: Path, tmp_path: Path) -> None:
    """A matrix of 2.4 million values: the conversion writes it in several blocks."""
    src = tmp_path / "big.h5"
    with h5py.File(src, "w") as f:
        write_10x_group(f.create_group("matrix"), np.random.default_rng(9), True, 1000, 8000)
    got = _convert(annpage_bin, src, tmp_path / "out.h5ad")
    want = sc.read_10x_h5(src)
    assert want.X.nnz > 2 * (1 << 20) * 0.5
    _same(got, want)


def test_large_table_is_parsed_in_parallel_like_anndata(annpage_bin: Path, tmp_path: Path) -> None:
    """5,000 rows: the rows after the first two are parsed on every core, in order; a bad
    value far down is reported at its line."""
    rng = np.random.default_rng(11)
    x = np.round(rng.random((5000, 12)) * 100, 3)
    src = tmp_path / "big.csv"
    lines = ["cell," + ",".join(f"g{j}" for j in range(12))]
    lines += [f"c{i}," + ",".join(repr(float(v)) for v in row) for i, row in enumerate(x)]
    src.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ad.read_csv(src)
    _same(_convert(annpage_bin, src, tmp_path / "out.h5ad"), want)
    lines[4321] = lines[4321].replace(",", ",x", 1)
    src.write_text("\n".join(lines) + "\n")
    res = run([annpage_bin, "convert", src, tmp_path / "bad.h5ad"])
    assert res.returncode != 0 and "line 4322" in res.stderr and "big.csv" in res.stderr, res.stderr


def test_streamed_conversions_stay_within_a_block(annpage_bin: Path, tmp_path: Path) -> None:
    """A row-ordered .mtx and a 10x HDF5 file of 6 million values each convert at a peak far
    below what holding the matrix takes (≥ 20 bytes a value read whole: 120 MB)."""
    from support import peak_rss_mb

    rng = np.random.default_rng(13)
    n_rows, per_row, n_cols = 60_000, 100, 20_000
    cols = np.sort(rng.integers(0, n_cols, (n_rows, per_row)), axis=1) + 1
    rows = np.repeat(np.arange(1, n_rows + 1), per_row)
    src = tmp_path / "rows.mtx"
    with open(src, "w") as f:
        f.write(f"%%MatrixMarket matrix coordinate integer general\n{n_rows} {n_cols} {rows.size}\n")
        np.savetxt(f, np.column_stack([rows, cols.ravel(), rng.integers(1, 9, rows.size)]), fmt="%d")
    peak, res = peak_rss_mb([annpage_bin, "convert", src, tmp_path / "mtx.h5ad"])
    assert res.returncode == 0, res.stderr
    assert peak < 80, f"peak {peak:.0f} MiB converting {rows.size:,} values"

    h5 = tmp_path / "big.h5"
    with h5py.File(h5, "w") as f:
        g = f.create_group("matrix")
        g["data"] = rng.integers(1, 50, rows.size).astype(np.int32)
        g["indices"] = (cols.ravel() - 1).astype(np.int64)
        g["indptr"] = np.arange(0, rows.size + 1, per_row, dtype=np.int64)
        g["shape"] = np.array([n_cols, n_rows], dtype=np.int32)
        g["barcodes"] = np.array([f"C{i}".encode() for i in range(n_rows)])
        feats = g.create_group("features")
        feats["id"] = np.array([f"ENSG{i}".encode() for i in range(n_cols)])
        feats["name"] = np.array([f"G{i}".encode() for i in range(n_cols)])
        feats["feature_type"] = np.array([b"Gene Expression"] * n_cols)
        feats["genome"] = np.array([b"GRCh38"] * n_cols)
    peak, res = peak_rss_mb([annpage_bin, "convert", h5, tmp_path / "tenx.h5ad"])
    assert res.returncode == 0, res.stderr
    assert peak < 80, f"peak {peak:.0f} MiB converting {rows.size:,} values"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ad.read_h5ad(tmp_path / "tenx.h5ad", backed="r")
        assert got.shape == (n_rows, n_cols)
        got.file.close()
