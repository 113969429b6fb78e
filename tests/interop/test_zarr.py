"""Zarr, judged by the real anndata, in both directions and for both Zarr formats.

For every current fixture:

* anndata writes it as Zarr v2 and v3 (`write_zarr`); `annpage convert STORE OUT.h5ad` must
  give a file anndata reads back equal to the fixture;
* `annpage convert FIXTURE OUT.zarr --zarr-format F` must give a store `anndata.read_zarr`
  reads back equal to the fixture, with the Zarr format asked for, and converting it back to
  .h5ad must be lossless;
* `annpage info` describes anndata's stores;
* `annpage subset` and `annpage stats` on a Zarr store give what they give on the .h5ad file.

Zip stores (`.zarr.zip`) written by zarr-python read like directories.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
import zipfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import zarr
from anndata.tests.helpers import assert_equal
from support import FIXTURES, fixture_files, fixture_id, peak_rss_mb, run

CURRENT = [f for f in fixture_files() if f.parent == FIXTURES]
FORMATS = [2, 3]


def read_h5ad(path: Path) -> ad.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


def read_zarr(path: Path) -> ad.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_zarr(path)


def anndata_store(src: Path, zarr_format: int, out: Path, sharded: bool = False) -> Path:
    """`src` written by anndata as a Zarr store of `zarr_format`, keeping the object as it is
    (no strings turned into categoricals); `sharded` (v3) with anndata's automatic shards,
    the layout annpage reads without zarrs (shards of zstd inner chunks). Skips the test when
    anndata cannot write it."""
    adata = read_h5ad(src)
    with warnings.catch_warnings(), ad.settings.override(
        zarr_write_format=zarr_format, allow_write_nullable_strings=True,
        auto_shard_zarr_v3=sharded,
    ):
        warnings.simplefilter("ignore")
        try:
            adata.write_zarr(out, convert_strings_to_categoricals=False)
        except ValueError as e:
            # zarr-python has no data type for some numpy scalars (uint64 in uns).
            pytest.skip(f"anndata cannot write {src.name} as Zarr v{zarr_format}: {e}")
    return out


def assert_same(expected: ad.AnnData, actual: ad.AnnData) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.ExperimentalFeatureWarning)
        assert_equal(expected, actual)
    assert list(actual.obs.columns) == list(expected.obs.columns)
    assert list(actual.var.columns) == list(expected.var.columns)
    assert actual.X is None or actual.X.dtype == expected.X.dtype


def zarr_format_of(store: Path) -> int:
    if (store / "zarr.json").is_file():
        return json.loads((store / "zarr.json").read_text())["zarr_format"]
    return json.loads((store / ".zgroup").read_text())["zarr_format"]


params = pytest.mark.parametrize(
    ("src", "zarr_format"),
    [(f, z) for f in CURRENT for z in FORMATS],
    ids=[f"{fixture_id(f)}-v{z}" for f in CURRENT for z in FORMATS],
)


@params
def test_annpage_reads_anndata_stores(src: Path, zarr_format: int, annpage_bin: Path, tmp_path: Path):
    store = anndata_store(src, zarr_format, tmp_path / "in.zarr")
    out = tmp_path / "out.h5ad"
    result = run([annpage_bin, "convert", store, out])
    assert result.returncode == 0, result.stderr
    assert_same(read_h5ad(src), read_h5ad(out))


@params
def test_anndata_reads_annpage_stores(src: Path, zarr_format: int, annpage_bin: Path, tmp_path: Path):
    store = tmp_path / "out.zarr"
    result = run([annpage_bin, "convert", src, store, "--zarr-format", str(zarr_format)])
    assert result.returncode == 0, result.stderr
    assert zarr_format_of(store) == zarr_format
    assert_same(read_h5ad(src), read_zarr(store))
    # And back: lossless.
    back = tmp_path / "back.h5ad"
    result = run([annpage_bin, "convert", store, back])
    assert result.returncode == 0, result.stderr
    assert_same(read_h5ad(src), read_h5ad(back))


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_x_chunks_chunk_a_dense_x(zarr_format: int, annpage_bin: Path, tmp_path: Path):
    """`--x-chunks ROWS,COLS` is anndata's `write_zarr(chunks=...)`: a dense X's chunks; a
    zero is refused and nothing is written."""
    src = FIXTURES / "x_dense_f32.h5ad"
    store = tmp_path / "out.zarr"
    args = ["--zarr-format", str(zarr_format), "--x-chunks", "3,2"]
    result = run([annpage_bin, "convert", src, store, *args])
    assert result.returncode == 0, result.stderr
    assert zarr.open_group(store, mode="r")["X"].chunks == (3, 2)
    assert_same(read_h5ad(src), read_zarr(store))
    bad = tmp_path / "bad.zarr"
    result = run([annpage_bin, "convert", src, bad, "--x-chunks", "0,2"])
    assert result.returncode != 0 and "chunk" in result.stderr and not bad.exists()


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_chunks_and_shards_are_as_asked(zarr_format: int, annpage_bin: Path, tmp_path: Path):
    src = FIXTURES / "pbmc_like_csr.h5ad"
    store = tmp_path / "out.zarr"
    args = ["--zarr-format", str(zarr_format), "--chunk-rows", "7"]
    if zarr_format == 3:
        args += ["--shard-rows", "21"]
    result = run([annpage_bin, "convert", src, store, *args])
    assert result.returncode == 0, result.stderr
    group = zarr.open_group(store, mode="r")
    x = group["layers/counts"] if "layers/counts" in group else group["obsm/X_pca"]
    assert x.chunks[0] == 7
    if zarr_format == 3:
        assert x.shards is not None and x.shards[0] == 21
    assert_same(read_h5ad(src), read_zarr(store))


def zip_store(directory: Path, archive: Path, compression: int) -> None:
    """The store `directory` as the zip file `archive`, members compressed with `compression`."""
    with zipfile.ZipFile(archive, "w", compression=compression) as z:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(directory).as_posix())


@pytest.mark.parametrize(("zarr_format", "sharded"), [(2, False), (3, False), (3, True)],
                         ids=["v2", "v3", "v3-sharded"])
def test_info_subset_and_stats_read_stores(zarr_format: int, sharded: bool, annpage_bin: Path,
                                           tmp_path: Path):
    src = FIXTURES / "pbmc_like_csr.h5ad"
    store = anndata_store(src, zarr_format, tmp_path / "in.zarr", sharded)
    if sharded:
        codecs = json.loads((store / "X" / "data" / "zarr.json").read_text())["codecs"]
        assert [c["name"] for c in codecs] == ["sharding_indexed"]
    info = run([annpage_bin, "info", store, "--json"])
    assert info.returncode == 0, info.stderr
    assert "X" in info.stdout
    # subset: the same cells and genes from the store and from the file.
    positions = tmp_path / "obs.txt"
    positions.write_text("\n".join(str(i) for i in [5, 0, 3, 3, 17]))
    outs = []
    for name, inp in [("zarr", store), ("h5ad", src)]:
        out = tmp_path / f"subset_{name}.h5ad"
        result = run([annpage_bin, "subset", inp, out, "--obs-indices", positions])
        assert result.returncode == 0, result.stderr
        outs.append(read_h5ad(out))
    assert_same(outs[1], outs[0])
    expected = read_h5ad(src)[[5, 0, 3, 3, 17]]
    assert list(outs[0].obs_names) == list(expected.obs_names)
    # stats: the same tables.
    tables = []
    for name, inp in [("zarr", store), ("h5ad", src)]:
        prefix = tmp_path / f"stats_{name}"
        result = run([annpage_bin, "stats", inp, "--out-prefix", prefix])
        assert result.returncode == 0, result.stderr
        tables.append((Path(f"{prefix}.obs.tsv").read_text(), Path(f"{prefix}.var.tsv").read_text()))
    assert tables[0] == tables[1]


@pytest.mark.parametrize(("zarr_format", "sharded"), [(2, False), (3, True)],
                         ids=["v2", "v3-sharded"])
def test_zip_stores_read_like_directories(zarr_format: int, sharded: bool, annpage_bin: Path,
                                          tmp_path: Path):
    # Sharded: the shards' frames come through the zip reader, not from the shards' files.
    src = FIXTURES / "all_elements.h5ad"
    directory = anndata_store(src, zarr_format, tmp_path / "in.zarr", sharded)
    if sharded:
        codecs = json.loads((directory / "X" / "data" / "zarr.json").read_text())["codecs"]
        assert [c["name"] for c in codecs] == ["sharding_indexed"]
    archive = tmp_path / "in.zarr.zip"
    zip_store(directory, archive, zipfile.ZIP_STORED)
    out = tmp_path / "out.h5ad"
    result = run([annpage_bin, "convert", archive, out])
    assert result.returncode == 0, result.stderr
    assert_same(read_h5ad(src), read_h5ad(out))


def test_broken_stores_fail_with_one_line(annpage_bin: Path, tmp_path: Path):
    src = FIXTURES / "all_elements.h5ad"
    store = anndata_store(src, 3, tmp_path / "in.zarr")
    meta = store / "X" / "indptr" / "zarr.json"
    meta.write_text("{not json")
    out = tmp_path / "out.h5ad"
    result = run([annpage_bin, "convert", store, out])
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert str(store) in lines[0] and "/X" in lines[0], lines[0]
    assert not out.exists()


def test_a_decoder_that_panics_on_a_corrupt_chunk_gives_one_line(annpage_bin: Path, tmp_path: Path):
    """zarrs' vlen-utf8 decoder panics on an element longer than its chunk; the engine turns
    that into an error, and the CLI prints only that error (the panic's own report appears
    with RUST_BACKTRACE set, for whoever debugs)."""
    store = tmp_path / "in.zarr"
    made = run([annpage_bin, "convert", FIXTURES / "all_elements.h5ad", store, "--zarr-format", "2"])
    assert made.returncode == 0, made.stderr
    chunk = store / "var" / "_index" / "0"
    raw = bytearray(chunk.read_bytes())
    assert json.loads((chunk.parent / ".zarray").read_text())["compressor"] is None
    raw[4:8] = (0xFFFF).to_bytes(4, "little")  # the first name's length
    chunk.write_bytes(bytes(raw))
    out = tmp_path / "out.h5ad"
    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    quiet = subprocess.run([str(annpage_bin), "convert", str(store), str(out)], capture_output=True, text=True,
                           env=env, timeout=120)
    assert quiet.returncode == 1
    lines = quiet.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("annpage: error: "), quiet.stderr
    assert str(store) in lines[0] and "/var/_index" in lines[0] and "decoder failed" in lines[0], lines[0]
    assert not out.exists()
    loud = subprocess.run([str(annpage_bin), "convert", str(store), str(out)], capture_output=True, text=True,
                          env={**env, "RUST_BACKTRACE": "1"}, timeout=120)
    assert loud.returncode == 1 and "panicked at" in loud.stderr, loud.stderr
    assert loud.stderr.splitlines()[-1] == lines[0]


def test_huge_claims_are_refused(annpage_bin: Path, tmp_path: Path):
    """A store whose array claims far more than its chunks hold is refused, not allocated."""
    store = tmp_path / "claim.zarr"
    root = zarr.open_group(store, mode="w", zarr_format=3)
    root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    x = root.create_array("X", shape=(1 << 31, 1 << 20), chunks=(1024, 1024), dtype="f4")
    x.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    for name in ["obs", "var"]:
        g = root.create_group(name)
        g.attrs.update(
            {"encoding-type": "dataframe", "encoding-version": "0.2.0", "_index": "_index", "column-order": []}
        )
        idx = g.create_array("_index", shape=(0,), dtype=str)
        idx.attrs.update({"encoding-type": "string-array", "encoding-version": "0.2.0"})
    result = run([annpage_bin, "convert", store, tmp_path / "out.h5ad"])
    assert result.returncode == 1
    assert "/X" in result.stderr and "claims" in result.stderr, result.stderr


def test_values_survive_both_formats_exactly(annpage_bin: Path, tmp_path: Path):
    """Floats (NaN, inf, subnormals), every integer width, bools and unicode strings."""
    src = FIXTURES / "x_nan_inf.h5ad"
    for zarr_format in FORMATS:
        store = tmp_path / f"v{zarr_format}.zarr"
        assert run([annpage_bin, "convert", src, store, "--zarr-format", str(zarr_format)]).returncode == 0
        back = read_zarr(store)
        original = read_h5ad(src)
        np.testing.assert_array_equal(np.asarray(back.X), np.asarray(original.X))


def test_zarr_is_a_convert_format_like_the_others(annpage_bin: Path, tmp_path: Path):
    """`--to zarr` / `--from zarr` name the format when the path does not, and stores convert
    to and from the other formats."""
    import scipy.io
    import scipy.sparse as sp

    src = FIXTURES / "all_elements.h5ad"
    store = tmp_path / "store.out"
    result = run([annpage_bin, "convert", src, store, "--to", "zarr"])
    assert result.returncode == 0, result.stderr
    assert store.is_dir() and zarr_format_of(store) == 3
    assert_same(read_h5ad(src), read_zarr(store))
    back = tmp_path / "back.h5ad"
    result = run([annpage_bin, "convert", store, back, "--from", "zarr"])
    assert result.returncode == 0, result.stderr
    assert_same(read_h5ad(src), read_h5ad(back))

    # Matrix Market into a store reads as anndata.io.read_mtx reads the file.
    mtx = tmp_path / "m.mtx"
    scipy.io.mmwrite(mtx, sp.random(30, 20, density=0.2, format="csr", random_state=0))
    result = run([annpage_bin, "convert", mtx, tmp_path / "m.zarr"])
    assert result.returncode == 0, result.stderr
    assert_same(ad.io.read_mtx(mtx), read_zarr(tmp_path / "m.zarr"))

    # A store into csvs gives the files its .h5ad gives.
    for name, inp in [("from_zarr", store), ("from_h5ad", src)]:
        result = run([annpage_bin, "convert", inp, tmp_path / name, "--to", "csvs"])
        assert result.returncode == 0, result.stderr
    expected = tmp_path / "from_h5ad"
    files = sorted(p.relative_to(expected) for p in expected.rglob("*") if p.is_file())
    assert files
    for f in files:
        assert (tmp_path / "from_zarr" / f).read_bytes() == (expected / f).read_bytes(), f


def records_anndata() -> ad.AnnData:
    """An object whose uns holds what scanpy's `rank_genes_groups` writes: record arrays of
    fixed-length strings (`names`) and of floats (`scores`), one field per group."""
    rng = np.random.default_rng(5)
    names = np.rec.fromarrays([np.array(["CD3E", "MS4A1", ""]), np.array(["é", "NKG7", "LYZ"])],
                              names=["0", "1"])
    scores = np.rec.fromarrays([rng.random(3).astype(np.float32), rng.random(3)], names=["0", "1"])
    flags = np.rec.fromarrays([np.array([True, False, True]), np.arange(3, dtype=np.int16)],
                              names=["ok", "rank"])
    a = ad.AnnData(rng.random((4, 3)).astype(np.float32))
    a.uns["rank_genes_groups"] = {"names": names, "scores": scores, "flags": flags,
                                  "params": {"method": "t-test"}}
    return a


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_record_arrays_cross_both_ways(zarr_format: int, annpage_bin: Path, tmp_path: Path):
    """Record arrays (numpy structured dtypes) in anndata's Zarr stores read, and annpage's
    stores hold them as zarr-python does: anndata reads them back equal, through both formats."""
    adata = records_anndata()
    store = tmp_path / "in.zarr"
    with ad.settings.override(zarr_write_format=zarr_format):
        adata.write_zarr(store)
    out = tmp_path / "out.h5ad"
    result = run([annpage_bin, "convert", store, out])
    assert result.returncode == 0, result.stderr
    assert_same(read_zarr(store), read_h5ad(out))
    back = tmp_path / "back.zarr"
    result = run([annpage_bin, "convert", out, back, "--zarr-format", str(zarr_format),
                  "--compression", "gzip"])
    assert result.returncode == 0, result.stderr
    assert zarr_format_of(back) == zarr_format
    got = read_zarr(back)
    assert_same(read_zarr(store), got)
    assert got.uns["rank_genes_groups"]["names"].dtype.names == ("0", "1")


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_record_chunks_not_stored_read_as_the_fill_value(zarr_format: int, annpage_bin: Path, tmp_path: Path):
    """zarr-python fills a record array with ('0', 0, …) and does not store a chunk equal to it:
    such records read as that value, not as zero bytes."""
    records = np.zeros(1, dtype=[("names", "<U1"), ("scores", "<f4")])
    records["names"] = ["0"]
    store = tmp_path / "in.zarr"
    with ad.settings.override(zarr_write_format=zarr_format):
        ad.AnnData(np.zeros((2, 2), dtype=np.float32), uns={"r": records}).write_zarr(store)
    out = tmp_path / "out.h5ad"
    result = run([annpage_bin, "convert", store, out])
    assert result.returncode == 0, result.stderr
    assert_same(read_zarr(store), read_h5ad(out))
    assert read_h5ad(out).uns["r"]["names"][0] == "0"


def test_zip_stores_with_compressed_members_are_refused_naming_the_fix(annpage_bin: Path, tmp_path: Path):
    """`zip -r` deflates the members; annpage reads stored members only (zarr-python's
    ZipStore): one line saying so, and how to make one."""
    directory = anndata_store(FIXTURES / "pbmc_like_csr.h5ad", 2, tmp_path / "in.zarr")
    archive = tmp_path / "in.zarr.zip"
    zip_store(directory, archive, zipfile.ZIP_DEFLATED)
    result = run([annpage_bin, "info", archive])
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "members are compressed" in lines[0] and "zip -0 -r" in lines[0], lines


def test_zip_members_claiming_more_than_their_archive_are_refused(annpage_bin: Path, tmp_path: Path):
    """A stored member's size in the central directory is a claim: one larger than the archive
    (here 4 GiB for a chunk of a few bytes) is refused before anything is allocated for it."""
    directory = anndata_store(FIXTURES / "pbmc_like_csr.h5ad", 2, tmp_path / "in.zarr")
    archive = tmp_path / "in.zarr.zip"
    zip_store(directory, archive, zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    at, patched = 0, 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:  # central directory records
        name_len = int.from_bytes(data[at + 28:at + 30], "little")
        if data[at + 46:at + 46 + name_len] == b"X/data/0":
            data[at + 20:at + 28] = (0xFFFFFFF0).to_bytes(4, "little") * 2  # compressed, uncompressed
            patched += 1
        at += 4
    assert patched == 1
    archive.write_bytes(bytes(data))
    result = run([annpage_bin, "stats", archive, "--out-prefix", tmp_path / "s"])
    assert result.returncode == 1, result.stderr
    assert "the zip member 'X/data/0' claims 4294967280 bytes, more than its archive's" in result.stderr


@pytest.mark.parametrize("codec", ["gzip", "zlib", "blosc"])
def test_chunks_that_inflate_past_their_size_are_refused_before_they_are(annpage_bin: Path, tmp_path: Path, codec: str):
    """A 160-byte chunk whose value inflates to 320 MB (gzip, zlib: deflate declares no size)
    or declares 1.5 GB in its header (blosc) is refused before it is inflated whole."""
    import zlib as zlib_module

    from numcodecs import Blosc

    store = tmp_path / "bomb.zarr"
    with warnings.catch_warnings(), ad.settings.override(zarr_write_format=2):
        warnings.simplefilter("ignore")
        ad.AnnData(np.ones((8, 5), dtype="f4")).write_zarr(store)
    meta = json.loads((store / "X" / ".zarray").read_text())
    if codec == "blosc":
        value = Blosc(cname="lz4", clevel=5, shuffle=0).encode(bytes(1_500_000_000))
    else:
        deflate = zlib_module.compressobj(1, zlib_module.DEFLATED, 31 if codec == "gzip" else 15)
        value = b"".join(deflate.compress(bytes(1 << 24)) for _ in range(20)) + deflate.flush()
        meta["compressor"] = {"id": codec, "level": 1}
    (store / "X" / ".zarray").write_text(json.dumps(meta))
    (store / "X" / "0.0").write_bytes(value)
    peak, result = peak_rss_mb([annpage_bin, "stats", store, "--out-prefix", tmp_path / "s"])
    assert result.returncode == 1, result.stderr
    assert "X/0.0" in result.stderr and "160" in result.stderr, result.stderr
    assert peak < 150, f"{peak:.0f} MiB"


@pytest.mark.parametrize("case", ["strings-v2-zlib", "shard-gzip", "gzip-twice"])
def test_bombs_the_size_guard_cannot_see_through_are_bounded_or_refused(annpage_bin: Path, tmp_path: Path, case: str):
    """A megabyte that inflates to a gigabyte, where the guard once looked only at whole chunks
    of numbers: a chunk of strings (no fixed size: bounded per string), the gzip inner chunk of a
    shard (checked through the shard's index), a chunk compressed twice (refused: the second
    layer's size cannot be bounded). None is inflated whole."""
    import gzip
    import struct
    import zlib as zlib_module

    def deflate(wbits: int) -> bytes:
        z = zlib_module.compressobj(1, zlib_module.DEFLATED, wbits)
        return b"".join(z.compress(bytes(1 << 24)) for _ in range(64)) + z.flush()

    a = ad.AnnData(np.ones((50, 20), np.float32), obs=pd.DataFrame(index=[f"c{i}" for i in range(50)]))
    store = tmp_path / "bomb.zarr"
    with warnings.catch_warnings(), ad.settings.override(zarr_write_format=2 if case == "strings-v2-zlib" else 3):
        warnings.simplefilter("ignore")
        a.write_zarr(store, chunks=(50, 20))
    if case == "strings-v2-zlib":
        array = store / "obs" / "_index"
        meta = json.loads((array / ".zarray").read_text())
        meta.update(compressor={"id": "zlib", "level": 1}, chunks=meta["shape"])
        (array / ".zarray").write_text(json.dumps(meta))
        (array / "0").write_bytes(deflate(15))
        expected = "inflates past"
    else:
        array = store / "X"
        meta = json.loads((array / "zarr.json").read_text())
        little = {"name": "bytes", "configuration": {"endian": "little"}}
        gz = {"name": "gzip", "configuration": {"level": 1}}
        value = deflate(31)
        if case == "shard-gzip":
            meta["codecs"] = [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": [50, 20], "codecs": [little, gz], "index_codecs": [little],
                "index_location": "end"}}]
            value += struct.pack("<QQ", 0, len(value))
            expected = "inflates past"
        else:
            meta["codecs"] = [little, gz, gz]
            value = gzip.compress(value)
            expected = "compressed twice"
        (array / "zarr.json").write_text(json.dumps(meta))
        shutil.rmtree(array / "c")
        (array / "c" / "0").mkdir(parents=True)
        (array / "c" / "0" / "0").write_bytes(value)
    for meta_file in (store / ".zmetadata", store / "zarr.json"):
        if meta_file.name == ".zmetadata":
            meta_file.unlink(missing_ok=True)
        elif meta_file.exists():
            root = json.loads(meta_file.read_text())
            root.pop("consolidated_metadata", None)
            meta_file.write_text(json.dumps(root))
    peak, result = peak_rss_mb([annpage_bin, "convert", store, tmp_path / "out.h5ad"])
    assert result.returncode == 1, result.stderr
    assert expected in result.stderr and "bomb.zarr" in result.stderr, result.stderr
    assert peak < 200, f"{peak:.0f} MiB"


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_names_starting_with_two_underscores_read_and_write(annpage_bin: Path, tmp_path: Path, zarr_format: int):
    """The Zarr v3 spec reserves node names starting with `__` (zarrs refuses them); zarr-python,
    and so anndata, writes them in both formats."""
    a = ad.AnnData(np.arange(6, dtype="f4").reshape(3, 2), obs=pd.DataFrame(index=["a", "b", "c"]))
    a.obs["__x"] = pd.Categorical(["p", "q", "p"])
    a.obs["__y"] = [1.0, 2.0, 3.0]
    a.uns["__meta"] = {"__k": np.arange(3)}
    theirs = tmp_path / "theirs.zarr"
    with warnings.catch_warnings(), ad.settings.override(zarr_write_format=zarr_format):
        warnings.simplefilter("ignore")
        a.write_zarr(theirs)
        expected = ad.read_zarr(theirs)
    h5ad, ours = tmp_path / "via.h5ad", tmp_path / "ours.zarr"
    for args in ([theirs, h5ad], [h5ad, ours, "--zarr-format", str(zarr_format)]):
        result = run([annpage_bin, "convert", *args])
        assert result.returncode == 0, result.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_equal(ad.read_h5ad(h5ad), expected)
        assert_equal(ad.read_zarr(ours), expected)
    assert (ours / "obs" / "__x").is_dir()
