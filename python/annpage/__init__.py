"""annpage from Python: read `.h5ad` files with annpage's out-of-core engine.

``annpage.read_h5ad(path)`` returns an in-memory :class:`anndata.AnnData` equal to what
``anndata.read_h5ad(path)`` returns; ``annpage.read_h5ad(path, backed="r")`` a lazy
:class:`BackedAnnData` that selects, iterates and streams within a byte budget. Errors are
:class:`AnnpageError` subclasses.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import _convert, _records
from ._backed import BackedAnnData
from ._matrix import BackedMatrix, BackedRaw, Batches
from ._collection import BackedCollection
from ._transposed import TransposedBackedAnnData, TransposedMatrix
from ._annpage import (
    Backed as _Backed,
    Collection as _Collection,
    Server as _Server,
    AnnpageError,
    FormatError,
    SelectionError,
    ShapeError,
    UnsupportedError,
    read_elements as _read_elements,
    read_mtx_elements as _read_mtx_elements,
    read_10x_mtx_elements as _read_10x_mtx_elements,
    read_10x_h5_elements as _read_10x_h5_elements,
    read_csv_elements as _read_csv_elements,
    read_loom_elements as _read_loom_elements,
    concat_on_disk as _concat_on_disk,
    concat_elements as _concat_elements,
    write_elements as _write_elements,
    write_loom_elements as _write_loom_elements,
    write_csvs_elements as _write_csvs_elements,
)

__all__ = [
    "AnnpageError",
    "BackedAnnData",
    "BackedCollection",
    "BackedMatrix",
    "BackedRaw",
    "Batches",
    "FormatError",
    "SelectionError",
    "Server",
    "TransposedBackedAnnData",
    "TransposedMatrix",
    "ShapeError",
    "UnsupportedError",
    "concat",
    "concat_on_disk",
    "read_10x_h5",
    "read_10x_mtx",
    "read_collection",
    "read_csv",
    "read_h5ad",
    "read_loom",
    "read_mtx",
    "read_zarr",
    "serve",
    "write_csvs",
    "write_h5ad",
    "write_loom",
    "write_zarr",
]


def _budget_bytes(mb, name="cache_mb") -> int:
    """A budget in MiB as bytes: a ValueError for one that is not a non-negative integer."""
    value = int(mb)
    if value < 0 or value > (1 << 43):
        raise ValueError(f"{name} must be between 0 and 2**43 MiB, got {mb!r}")
    return value << 20


def read_h5ad(
    path,
    backed=None,
    cache_mb=1024,
    threads=None,
    *,
    as_sparse=(),
    as_sparse_fmt=sp.csr_matrix,
    chunk_size=6000,
):
    """Reads an `.h5ad` file with annpage.

    ``backed=None``: the whole file as an in-memory :class:`anndata.AnnData`, equal to
    ``anndata.read_h5ad(path)``. ``backed="r"``: a lazy :class:`BackedAnnData` reading through
    a cache of ``cache_mb`` MiB on ``threads`` reader threads (default one per core).
    ``backed="r+"`` (or ``True``, as anndata takes it): the same, and its annotations can be
    changed and written back with ``write()`` (see :class:`BackedAnnData`).

    ``as_sparse`` (``"X"``, ``"raw/X"``) reads those dense matrices as ``as_sparse_fmt``
    (``scipy.sparse.csr_matrix`` or ``csc_matrix``), as anndata does: in chunks of rows, each
    made sparse before the next is read (chunks of ``cache_mb / 16``, at most 64 MiB, rather
    than ``chunk_size`` rows, which is accepted for anndata's signature). A matrix already
    sparse is given in that format too (anndata fails on it). Ignored when ``backed``.
    """
    path = os.fspath(path)
    if backed is None:
        fmt = _sparse_format(as_sparse_fmt)
        names = _as_sparse(as_sparse)
        if not names:
            return _convert.anndata(_read_elements(path), path)
        native = _Backed.open(path, _budget_bytes(cache_mb), threads, False)
        kinds = {"x" if n == "X" else "raw_x": fmt for n in names}
        return _convert.anndata(native.to_memory_as(**kinds), path)
    if backed in ("r", "r+", True):
        writable = backed != "r"
        native = _Backed.open(path, _budget_bytes(cache_mb), threads, writable)
        return BackedAnnData(native, path, int(cache_mb), writable=writable)
    raise ValueError(f"backed must be None, 'r' or 'r+', not {backed!r}")


def _sparse_format(fmt) -> str:
    """anndata's ``as_sparse_fmt`` as a storage name."""
    if fmt is sp.csr_matrix:
        return "csr"
    if fmt is sp.csc_matrix:
        return "csc"
    raise NotImplementedError("Dense formats can only be read to CSR or CSC matrices at this time.")


def _as_sparse(as_sparse) -> set:
    """anndata's ``as_sparse`` checked as anndata checks it: ``X`` and ``raw/X`` (or
    ``raw.X``, ``("raw", "X")``)."""
    names = [as_sparse] if isinstance(as_sparse, str) else list(as_sparse or ())
    names = ["raw/X" if n in {("raw", "X"), "raw.X"} else n for n in names]
    if any(n not in {"X", "raw/X"} for n in names):
        raise NotImplementedError("Currently only `X` and `raw/X` can be read as sparse.")
    return set(names)


def read_zarr(store, backed=None, cache_mb=1024, threads=None):
    """Reads a Zarr store (a ``.zarr`` directory, Zarr v2 or v3, or a ``.zarr.zip`` archive)
    with annpage.

    ``backed=None``: the whole store as an in-memory :class:`anndata.AnnData`, equal to
    ``anndata.read_zarr(store)``. ``backed="r"``: a lazy :class:`BackedAnnData`, as
    :func:`read_h5ad` gives for a file (anndata has no backed mode for Zarr).
    """
    path = os.fspath(store)
    if not (os.path.isdir(path) or path.lower().endswith((".zarr", ".zip"))):
        raise ValueError(f"{path!r} is not a Zarr store (a directory, or a .zarr / .zip name)")
    return read_h5ad(path, backed=backed, cache_mb=cache_mb, threads=threads)


def read_mtx(filename, dtype="float32"):
    """Reads a Matrix Market file (``.mtx``, ``.mtx.gz``) as ``anndata.io.read_mtx`` does: a CSR
    ``X`` of ``dtype`` (float32, float64, int32 or int64), default names."""
    path = os.fspath(filename)
    return _convert.anndata(_read_mtx_elements(path, str(dtype)), path)


def read_10x_mtx(path, *, var_names="gene_symbols", make_unique=True, gex_only=True, prefix=None):
    """Reads a 10x Genomics matrix directory as ``scanpy.read_10x_mtx`` does (same arguments;
    ``matrix.mtx``, ``features.tsv``/``genes.tsv`` and ``barcodes.tsv``, gzipped or not)."""
    if var_names not in ("gene_symbols", "gene_ids"):
        raise ValueError("`var_names` needs to be 'gene_symbols' or 'gene_ids'")
    path = os.fspath(path)
    elements = _read_10x_mtx_elements(path, var_names == "gene_ids", bool(make_unique), bool(gex_only), prefix or "")
    return _convert.anndata(elements, path)


def read_10x_h5(filename, *, genome=None, gex_only=True):
    """Reads a 10x Genomics HDF5 matrix (Cell Ranger v2 or v3+) as ``scanpy.read_10x_h5``
    does (same arguments)."""
    path = os.fspath(filename)
    return _convert.anndata(_read_10x_h5_elements(path, genome, bool(gex_only)), path)


def read_csv(filename, delimiter=",", first_column_names=None, dtype="float32"):
    """Reads a delimited table as ``anndata.io.read_csv`` does (``delimiter=None`` splits at
    whitespace, as ``read_text``); ``dtype`` must be float32."""
    if str(dtype) != "float32":
        raise NotImplementedError("annpage reads tables as float32")
    if delimiter is not None and len(delimiter) != 1:
        raise ValueError("delimiter must be one character or None")
    path = os.fspath(filename)
    return _convert.anndata(_read_csv_elements(path, delimiter, first_column_names), path)


def read_loom(filename, *, sparse=True, X_name="spliced", obs_names="CellID", var_names="Gene"):
    """Reads a loom file as ``anndata.io.read_loom`` does (same arguments; ``cleanup``,
    ``obsm_mapping`` and ``varm_mapping`` are not supported)."""
    path = os.fspath(filename)
    return _convert.anndata(_read_loom_elements(path, bool(sparse), X_name, obs_names, var_names), path)


def write_h5ad(
    adata,
    filename,
    compression=None,
    compression_opts=None,
    convert_strings_to_categoricals=True,
    as_dense=(),
):
    """Writes an :class:`anndata.AnnData` to ``filename`` with annpage, as
    ``adata.write_h5ad(filename, compression=..., compression_opts=..., as_dense=...)`` would:
    string columns that repeat values become categoricals (in ``adata`` too, as anndata's
    writer changes it); ``compression_opts`` is gzip's level, 4 by default as h5py's;
    ``as_dense`` (``"X"``, ``"raw/X"``) writes those sparse matrices dense. The file is
    written beside ``filename`` and renamed into place."""
    if compression not in (None, "gzip", "lzf"):
        raise ValueError(f"compression must be None, 'gzip' or 'lzf', not {compression!r}")
    level = _convert._gzip_level(compression, compression_opts)
    dense = _convert.as_dense(as_dense, adata.raw is not None)
    _strings_to_categoricals(adata, convert_strings_to_categoricals)
    records = []
    elements = _convert.elements(adata, bool(convert_strings_to_categoricals), records)
    if "X" in dense and sp.issparse(adata.X):
        elements["X"] = _convert.flatten(adata.X.toarray())
    if "raw/X" in dense and sp.issparse(adata.raw.X):
        elements["raw"]["X"] = _convert.flatten(adata.raw.X.toarray())

    def write(path):
        _write_elements(
            elements,
            path,
            compression,
            bool(convert_strings_to_categoricals),
            compression_opts=level,
        )

    _records.write_with(filename, records, write, zarr=False)


def _strings_to_categoricals(adata, convert: bool) -> None:
    """As anndata's writers: string columns that repeat values become categoricals in the
    object written (obs, var and raw.var); a backed object is left as it is."""
    if convert and not getattr(adata, "isbacked", False):
        adata.strings_to_categoricals()
        if adata.raw is not None:
            adata.strings_to_categoricals(adata.raw.var)


def _zarr_args(zarr_format, chunk_rows, shard_rows, chunks, x_shape):
    """The Zarr options the native writers take. ``chunks`` is anndata's: the chunk shape of a
    dense X of shape ``x_shape`` (``None`` for a sparse or no X: ignored, as anndata ignores
    it), an int for both axes or a pair whose ``None`` or ``-1`` takes the whole axis."""
    x_chunks = None
    if chunks is not None and chunks is not True and x_shape is not None:
        pair = (chunks, chunks) if isinstance(chunks, (int, np.integer)) else tuple(chunks)
        if len(pair) != 2:
            raise ValueError(f"chunks must give two lengths for X, not {chunks!r}")
        x_chunks = tuple(
            max(int(n), 1) if c is None or c == -1 else int(c) for c, n in zip(pair, x_shape)
        )
        if any(c < 1 for c in x_chunks):
            raise ValueError(f"chunks must be positive, not {chunks!r}")
    return (int(zarr_format), chunk_rows, shard_rows, x_chunks)


def write_zarr(
    adata,
    store,
    *,
    chunks=None,
    zarr_format=3,
    chunk_rows=None,
    shard_rows=None,
    compression=None,
    convert_strings_to_categoricals=True,
):
    """Writes an :class:`anndata.AnnData` to the Zarr store ``store`` (a directory) with
    annpage, as ``adata.write_zarr(store, chunks=...)`` would: ``chunks`` the chunk shape of a
    dense X (an int or a pair; ignored for a sparse X, as anndata ignores it), ``zarr_format``
    2 or 3 (default 3, sharded as anndata 0.13 shards unless ``shard_rows`` is given),
    ``chunk_rows`` rows a chunk of the other arrays (default zarr-python's guess),
    ``compression`` ``None``, ``"gzip"`` or ``"zstd"``. String
    columns that repeat values become categoricals, as anndata's default does (in ``adata``
    too, as anndata's writer changes it). The store is written beside ``store`` and renamed
    into place."""
    if compression not in (None, "gzip", "zstd"):
        raise ValueError(f"compression must be None, 'gzip' or 'zstd', not {compression!r}")
    _strings_to_categoricals(adata, convert_strings_to_categoricals)
    records = []
    elements = _convert.elements(adata, bool(convert_strings_to_categoricals), records)
    dense = adata.X is not None and not sp.issparse(adata.X)
    zarr = _zarr_args(zarr_format, chunk_rows, shard_rows, chunks, adata.shape if dense else None)

    def write(path):
        _write_elements(
            elements,
            path,
            compression,
            bool(convert_strings_to_categoricals),
            zarr,
        )

    _records.write_with(store, records, write, zarr=True)


def write_loom(adata, filename, *, write_obsm_varm=False):
    """Writes an :class:`anndata.AnnData` as a loom file, as ``adata.write_loom(filename,
    write_obsm_varm=...)`` does through loompy (X and layers genes × cells, obs/var columns as
    attributes). The file is written beside ``filename`` and renamed into place."""
    elements = _convert.elements(adata, False, [])
    _write_loom_elements(elements, os.fspath(filename), bool(write_obsm_varm))


def write_csvs(adata, dirname, *, skip_data=True, sep=","):
    """Writes an :class:`anndata.AnnData` as CSV files into the directory ``dirname``, as
    ``adata.write_csvs(dirname, skip_data=..., sep=...)`` does (``obs.csv``, ``var.csv``,
    ``obsm.csv``, ``varm.csv``, ``X.csv`` unless ``skip_data``, ``uns/KEY.csv``), byte for
    byte; each file is written beside itself and renamed into place."""
    _convert._check_sep(sep)
    records = []
    elements = _convert.elements(adata, False, records)
    path = os.fspath(dirname)
    _write_csvs_elements(elements, path, bool(skip_data), sep)
    # uns record arrays (annpage does not build them): written by pandas as anndata writes
    # them; nested ones are left out, as annpage leaves out every nested mapping.
    top = [(where[len("uns/"):], v) for where, v in records if where.count("/") == 1]
    if top:
        import pandas as pd

        d = Path(path)
        uns = (d.with_suffix("") if d.suffix == ".csv" else d) / "uns"
        for key, value in top:
            tmp = uns / f".{key}.csv.tmp"
            pd.DataFrame(value).to_csv(tmp, sep=sep, header=False, index=False)
            os.replace(tmp, uns / f"{key}.csv")


def _axis_name(axis):
    name = {0: "obs", 1: "var", "obs": "obs", "var": "var"}.get(axis)
    if name is None:
        raise ValueError("axis must be 0, 1, 'obs' or 'var'")
    return name


def _fill(value):
    """A fill value as the native side takes it: a ``bool`` for Python and numpy bools
    (anndata keeps boolean matrices boolean for them), an ``int`` for integers (integer
    matrices stay integers), else a ``float``."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    return float(value)


def _concat_args(axis, join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise):
    """``anndata.concat``'s arguments as the dict the native functions take."""
    return dict(
        axis=_axis_name(axis),
        join=join,
        merge=merge,
        uns_merge=uns_merge,
        label=label,
        keys=None if keys is None else [str(k) for k in keys],
        index_unique=index_unique,
        fill_value=_fill(fill_value),
        pairwise=bool(pairwise),
    )


def _keyed(items, keys, what):
    """``(items, keys)`` as a list and its keys: a dict's keys are the keys (as anndata takes a
    dict of objects), which then cannot also be given."""
    if not isinstance(items, dict):
        return list(items), keys
    if keys is not None:
        raise TypeError(f"keys cannot be given with a dict of {what}")
    return list(items.values()), list(items.keys())


def concat(
    adatas,
    *,
    axis=0,
    join="inner",
    merge=None,
    uns_merge=None,
    label=None,
    keys=None,
    index_unique=None,
    fill_value=None,
    pairwise=False,
):
    """Concatenates :class:`anndata.AnnData` objects as ``anndata.concat`` does (same
    arguments and result), with annpage's implementation."""
    adatas, keys = _keyed(adatas, keys, "objects")
    flat, records = [], []
    for a in adatas:
        frames = tuple(_convert.missing_strings_as_nullable(f) for f in (a.obs, a.var))
        flat.append(_convert.elements(a, records=records, frames=frames))
    if records and uns_merge is not None:
        raise TypeError(
            f"{records[0][0]} is a record array: annpage.concat merges uns without them "
            "(uns_merge=None, as anndata's default, drops uns)"
        )
    elements = _concat_elements(
        flat,
        _concat_args(axis, join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise),
    )
    joined = _convert.anndata(elements, None)
    along = _axis_name(axis)
    for which in ("obs", "var"):
        frames = [getattr(a, which) for a in adatas]
        _as_anndata_concats(getattr(joined, which), frames, label if which == along else None, which != along)
    if joined.raw is not None:
        frames = [a.raw.var for a in adatas if a.raw is not None]
        _as_anndata_concats(joined.raw.var, frames, label if along == "var" else None)
    _convert.label_as_given(getattr(joined, along), label, keys)
    _sparse_as_given(joined, adatas)
    _uns_as_given(joined, adatas)
    return joined


def _uns_as_given(joined, adatas) -> None:
    """uns of `joined` holding the inputs' own objects, as anndata's merge keeps them (an
    ``np.int64`` stays one, a list a list): annpage's merge chose each value, and the first
    input holding an equal value at the same path gives it (copied)."""
    import copy
    from collections.abc import Mapping

    missing = object()

    def lookup(mapping, path):
        for key in path:
            if not isinstance(mapping, Mapping) or key not in mapping:
                return missing
            mapping = mapping[key]
        return mapping

    def same(a, b) -> bool:
        if isinstance(a, Mapping) or isinstance(b, Mapping):
            return False
        if sp.issparse(a) or sp.issparse(b):
            return sp.issparse(a) and sp.issparse(b) and a.shape == b.shape and (a != b).nnz == 0
        if hasattr(a, "equals") and type(a) is type(b):
            return bool(a.equals(b))
        try:
            x, y = np.asarray(a), np.asarray(b)
            if x.shape != y.shape:
                return False
            if x.dtype.kind in "fc" and y.dtype.kind in "fc":
                return bool(np.array_equal(x, y, equal_nan=True))
            return bool(np.array_equal(x, y))
        except Exception:
            return False

    def given(value, path):
        if isinstance(value, Mapping):
            return {k: given(v, (*path, k)) for k, v in value.items()}
        for a in adatas:
            found = lookup(a.uns, path)
            if found is not missing and same(found, value):
                return copy.deepcopy(found)
        return value

    joined.uns = given(joined.uns, ())


def _sparse_as_given(joined, adatas) -> None:
    """X and the layers of `joined` as scipy sparse arrays where every input's were arrays (as
    anndata.concat keeps them), not sparse matrices."""
    def given(get):
        parts = [get(a) for a in adatas]
        return bool(parts) and all(isinstance(p, sp.sparray) for p in parts)

    if sp.issparse(joined.X) and given(lambda a: a.X):
        joined.X = _convert.sparse_class(joined.X.format, True)(joined.X)
    for key in list(joined.layers.keys()):
        m = joined.layers[key]
        if sp.issparse(m) and given(lambda a: a.layers.get(key)):
            joined.layers[key] = _convert.sparse_class(m.format, True)(m)


def _as_anndata_concats(frame, inputs, label, merged=False):
    """annpage's concatenation holds the columns of obs and var as anndata writes them:
    strings that repeat a value as categoricals, pandas strings as objects.
    anndata.concat keeps the dtypes its inputs held (its `unify_dtypes`): categoricals stay
    categoricals only if every input holding the column held one, unordered or all with the
    same ordered categories; other strings are objects, or pandas strings if every input
    holding the column held pandas strings. The ``label`` column stays categorical. A
    ``merged`` frame's columns (the other axis) are one input's, the first holding each: its
    dtype is kept."""
    import pandas as pd

    def categorical(d):
        return isinstance(d, pd.CategoricalDtype)

    for name in frame.columns:
        column = frame[name]
        text = column.dtype == object or isinstance(column.dtype, pd.StringDtype)
        if name == label or not (categorical(column.dtype) or text):
            continue
        held = [f[name].dtype for f in inputs if name in f.columns]
        if not held:
            continue
        if merged:
            held = held[:1]
        if all(isinstance(d, pd.StringDtype) for d in held):
            # pandas' `string` (missing values NA) wins over its `str` (NaN), in any order.
            na = [d for d in held if d.na_value is pd.NA]
            frame[name] = column.astype(na[0] if na else held[0])
        elif categorical(column.dtype) and not all(categorical(d) for d in held):
            frame[name] = column.astype(object)
        elif isinstance(column.dtype, pd.StringDtype):
            # Objects with missing values, concatenated as pandas strings: objects again.
            frame[name] = column.astype(object).where(column.notna(), np.nan)
        elif categorical(column.dtype) and any(d.ordered for d in held):
            filled = [d for d in held if len(d.categories)]
            if not all(d.ordered and d.categories.equals(filled[0].categories) for d in filled):
                frame[name] = column.astype(object)


def concat_on_disk(
    in_files,
    out_file,
    *,
    axis=0,
    join="inner",
    merge=None,
    uns_merge=None,
    label=None,
    keys=None,
    index_unique=None,
    fill_value=None,
    pairwise=False,
    compression=None,
    cache_mb=1024,
):
    """Concatenates `.h5ad` files into ``out_file`` as ``anndata.concat`` of the files read
    whole would, streaming X, layers and raw.X through a cache of ``cache_mb`` MiB (argument
    names as ``anndata.experimental.concat_on_disk``; ``axis`` is 0/"obs" or 1/"var")."""
    axis = _axis_name(axis)
    in_files, keys = _keyed(in_files, keys, "files")

    def write(path):
        _concat_on_disk(
            [os.fspath(p) for p in in_files],
            path,
            _concat_args(axis, join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise),
            compression,
            _budget_bytes(cache_mb),
        )

    numbers = keys is not None and label is not None and not any(isinstance(k, str) for k in keys)
    if not numbers:
        write(os.fspath(out_file))
        return
    # Keys that are numbers (or bools): the label's categories are those, as anndata writes
    # them; annpage's writer stores their text, so the categories are replaced before the
    # output replaces its target.
    zarr = os.path.isdir(out_file) or os.fspath(out_file).lower().endswith(".zarr")

    def categories_as_given(group):
        from anndata.io import write_elem

        column = group[f"{axis}/{label}"]
        del column["categories"]
        write_elem(column, "categories", np.asarray(list(keys)))

    _records.write(out_file, [], write, zarr, edit=categories_as_given)


def read_collection(
    files,
    *,
    join="inner",
    merge=None,
    uns_merge=None,
    label=None,
    keys=None,
    index_unique=None,
    fill_value=None,
    pairwise=False,
    cache_mb=1024,
    threads=None,
):
    """Opens `.h5ad` files as one lazy :class:`BackedCollection`: ``anndata.concat`` of the
    files read whole (along obs, same arguments; a dict of files gives the keys), with X and
    the layers read on demand through one cache of ``cache_mb`` MiB."""
    files, keys = _keyed(files, keys, "files")
    paths = [os.fspath(p) for p in files]
    options = _concat_args(0, join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise)
    del options["axis"]  # read_collection(**options) reopens it (along obs only)
    native = _Collection.open(
        paths, options, _budget_bytes(cache_mb), None if threads is None else int(threads)
    )
    given = None if keys is None else list(keys)
    return BackedCollection(native, paths, options, int(cache_mb), keys=given)


class Server:
    """``annpage serve`` in this process: the HTTP API and viewer over backed files, answering
    on threads of its own (the GIL is not held) until :meth:`stop` or the end of a ``with``
    block. Made by :func:`serve`."""

    def __init__(self, native, datasets):
        self._native = native
        self.datasets = datasets

    @property
    def address(self) -> str:
        """``host:port`` the server answers on."""
        return self._native.address

    @property
    def url(self) -> str:
        """``http://host:port`` (the viewer is at ``url + "/"``)."""
        return f"http://{self._native.address}"

    def stop(self) -> None:
        """Stops answering after the requests in flight (a second call does nothing)."""
        self._native.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return f"<annpage.Server {self.url} serving {', '.join(self.datasets)}>"


def serve(
    datasets,
    *,
    host="127.0.0.1",
    port=8080,
    cache_mb=1024,
    response_mb=128,
    threads=None,
    index=None,
    log=False,
    join="inner",
    merge=None,
    uns_merge=None,
    label=None,
    keys=None,
    index_unique=None,
    fill_value=None,
    pairwise=False,
):
    """Serves ``datasets`` over HTTP from this process, as ``annpage serve`` does (the endpoints
    are in the README) and returns the running :class:`Server`.

    ``datasets``: a path, a list of paths (each named by its stem), or a dict ``{name: path}``
    where a list of paths is one collection: the files' ``anndata.concat`` along obs (with
    ``join`` … ``pairwise``, anndata's arguments), read lazily as one dataset.
    ``port=0`` picks a free port (see ``Server.url``). Files are opened read-only within one
    cache of ``cache_mb``; the answers in flight hold at most ``response_mb``. ``index``: a
    directory for local copies that make reads fast (an uncompressed copy of a compressed file,
    X with each gene's values together), written when missing and reused. ``log``: one line per
    request on stderr.

    >>> with annpage.serve("pbmc.h5ad", port=0) as server:  # doctest: +SKIP
    ...     urllib.request.urlopen(server.url + "/datasets").read()
    """
    if isinstance(datasets, (str, os.PathLike)):
        datasets = [datasets]
    # Each dataset's spec, and whether it is a collection (a list of paths, even of one).
    if isinstance(datasets, dict):
        specs = []
        for name, paths in datasets.items():
            single = isinstance(paths, (str, os.PathLike))
            paths = [paths] if single else list(paths)
            specs.append((str(name), [os.fspath(p) for p in paths], not single))
    else:
        specs = [(None, [os.fspath(path)], False) for path in datasets]
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be from 0 to 65535, not {port!r}")
    native = _Server(
        specs,
        str(host),
        int(port),
        _budget_bytes(cache_mb),
        _budget_bytes(response_mb, "response_mb"),
        threads,
        None if index is None else os.fspath(index),
        bool(log),
        _concat_args(0, join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise),
    )
    return Server(native, native.datasets)
