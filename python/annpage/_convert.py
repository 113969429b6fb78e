"""Turns the plain values handed over by the native module into anndata's own objects."""

from __future__ import annotations

import operator
import os

import numpy as np
import pandas as pd
import scipy.sparse as sp


def sparse_class(fmt: str, arrays: bool):
    """scipy's class of a `fmt` ("csr"/"csc") matrix: the sparse array or the sparse matrix."""
    if arrays:
        return sp.csr_array if fmt == "csr" else sp.csc_array
    return sp.csr_matrix if fmt == "csr" else sp.csc_matrix


def _sparse_arrays() -> bool:
    """Whether anndata reads sparse elements as scipy's sparse arrays (its setting
    ``use_sparse_array_on_read``), as annpage's readers then do."""
    import anndata

    return bool(getattr(anndata.settings, "use_sparse_array_on_read", False))


def split_key(key):
    """``adata[key]``'s key as ``(obs, var)``: a pair as given, a 1-tuple or anything else
    selects obs."""
    if isinstance(key, tuple):
        if len(key) == 1:
            return key[0], None
        if len(key) != 2:
            raise IndexError(f"expected (obs, var), got {len(key)} keys")
        return key
    return key, None


def _check_sep(sep) -> None:
    """``write_csvs``' ``sep``: one character, else a ``ValueError`` before anything is written."""
    if not isinstance(sep, str) or len(sep) != 1:
        raise ValueError(f"sep must be one character, not {sep!r}")


def _gzip_level(compression, opts):
    """``compression_opts`` as h5py takes it for gzip: a level from 0 to 9 (an integral number),
    checked here so that a bad one is a ``ValueError``; ``None`` stays ``None``."""
    if opts is None:
        return None
    if compression != "gzip":
        raise ValueError("compression_opts is gzip's level: it needs compression='gzip'")
    try:
        level = operator.index(opts)
    except TypeError:
        if not (isinstance(opts, (float, np.floating)) and float(opts).is_integer()):
            raise ValueError(f"gzip's compression_opts is a level from 0 to 9, not {opts!r}") from None
        level = int(opts)
    if not 0 <= level <= 9:
        raise ValueError(f"gzip's compression_opts is a level from 0 to 9, not {opts!r}")
    return level


def _is_zarr(filename) -> bool:
    """Whether `filename` names a Zarr store (a directory or a zip file), not an .h5ad file."""
    name = str(filename)
    return os.path.isdir(name) or name.endswith(".zip")


def _zarr_reads_string_dtype() -> bool:
    """Whether anndata's Zarr reads give text as numpy's `StringDType` (zarr 3), which a pandas
    3 frame holds as objects, where text from an .h5ad file becomes pandas' `str`."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return _STR_INDEX and int(version("zarr").split(".")[0]) >= 3
    except (PackageNotFoundError, ValueError):
        return False


def _opaque(filename, path):
    """Reads an element annpage keeps verbatim (awkward arrays, rec-arrays) with anndata, from
    an .h5ad file or a Zarr store (a directory or a zip file); what fails there (a crafted
    awkward form can make it recurse or claim any size, an unknown encoding has no reader) is a
    FormatError naming the element."""
    try:
        return _read_opaque(filename, path)
    except Exception as e:  # noqa: BLE001 - anndata's own errors (IORegistryError) included
        from ._annpage import FormatError

        raise FormatError(f"{filename}: /{path}: {type(e).__name__}: {e}") from e


def _read_opaque(filename, path):
    from anndata.io import read_elem

    name = str(filename)
    if _is_zarr(name):
        import zarr

        store = zarr.storage.ZipStore(name, mode="r") if name.endswith(".zip") else name
        return read_elem(zarr.open_group(store, mode="r")[path])
    import h5py

    with h5py.File(name, "r") as f:
        return read_elem(f[path])


def _strings(a):
    """An object array of str as pandas holds it (pandas' default string storage)."""
    return a


#: Whether pandas makes text its `str` dtype (pandas 3, or 2.x's `future.infer_string`), as
#: anndata's indexes then are; else an index of text holds Python objects.
_STR_INDEX = int(pd.__version__.split(".")[0]) >= 3 or bool(pd.get_option("future.infer_string"))


def _anndata_reads_na_value() -> bool:
    """Whether the installed anndata reads a nullable string array's ``na-value`` (0.13 and
    later: ``"NaN"`` gives pandas' `str`); older ones read every one as pandas' `string`."""
    from importlib.metadata import version

    major, minor = (int(p) for p in version("anndata").split(".")[:2])
    return (major, minor) >= (0, 13)


_NA_VALUE = _anndata_reads_na_value()
_ZARR_TEXT_OBJECTS = _zarr_reads_string_dtype()


def _index(values, name, na=None):
    """An index as anndata reads it: a nullable string one (`na`: "string" or "str", as
    anndata 0.13 writes pandas' string indexes) with the dtype of the same nullable column; text
    as pandas infers it (`str` under pandas 3, except for an empty index, which stays object)."""
    if na is not None:
        return pd.Index(_string_array(na, values), name=name)
    if values.dtype == object:
        text = _STR_INDEX and len(values) > 0
        return pd.Index(values, dtype="str" if text else object, name=name)
    return pd.Index(values, name=name)


def _string_array(kind, values):
    """Strings (missing entries already set) as the installed anndata reads a nullable string
    array of `kind`."""
    if kind == "str" and _NA_VALUE:
        # pandas' `str` dtype (missing values are NaN): anndata 0.13's na-value "NaN".
        return pd.array(values, dtype=pd.StringDtype(na_value=np.nan))
    return pd.array(values, dtype="string")


def _nullable(kind, values, mask):
    if kind == "integer":
        return pd.arrays.IntegerArray(values, mask)
    if kind == "boolean":
        return pd.arrays.BooleanArray(values, mask)
    values = values.copy()
    values[mask] = np.nan if kind == "str" and _NA_VALUE else pd.NA
    return _string_array(kind, values)


def value(v, filename, path):
    """One element: numpy arrays pass through, dicts recurse, tagged tuples are built."""
    if isinstance(v, dict):
        return {k: value(x, filename, f"{path}/{k}") for k, x in v.items()}
    if not isinstance(v, tuple):
        return v
    tag = v[0]
    if tag == "sparse":
        _, fmt, shape, indptr, indices, data = v
        return sparse_class(fmt, _sparse_arrays())((data, indices, indptr), shape=shape)
    if tag == "dataframe":
        _, index, index_name, columns, index_na = v
        df = pd.DataFrame(
            {name: value(col, filename, f"{path}/{name}") for name, col in columns},
            index=_index(index, index_name, index_na),
        )
        if _ZARR_TEXT_OBJECTS and filename is not None and _is_zarr(filename):
            text = [n for n, c in columns if isinstance(c, np.ndarray) and c.dtype == object]
            if text:
                # As anndata 0.13 reads a Zarr store's plain text columns (see above).
                df = df.astype(dict.fromkeys(text, object))
        if not columns and path in ("obs", "var", "raw/var"):
            # As anndata reads obs and var without columns: an empty object column index (other
            # frames keep pandas' empty RangeIndex, as anndata's reader leaves them).
            df = pd.DataFrame(index=df.index, columns=pd.Index([], dtype=object))
        return df
    if tag == "categorical":
        _, codes, categories, ordered = v
        # Text categories are pandas' `str` under pandas 3, also when none is left (a view that
        # selects no cell keeps the dtype of the categories it pruned, as anndata's).
        text = _STR_INDEX and categories.dtype == object and len(categories) == 0
        index = pd.Index(categories, dtype="str") if text else pd.Index(categories)
        return pd.Categorical.from_codes(codes, categories=index, ordered=ordered)
    if tag == "nullable":
        _, kind, values, mask = v
        return _nullable(kind, values, mask)
    if tag == "scalar":
        # As anndata's reader: a Python str, int, float or bool (`.item()`).
        a = v[1]
        return str(a[()]) if a.dtype == object else a[()].item()
    if tag == "null":
        return None
    if tag == "opaque":
        return _opaque(filename, path)
    raise ValueError(f"unknown element kind {tag!r}")


def anndata(elems, filename):
    """An in-memory `anndata.AnnData` from the native module's dict of elements."""
    import anndata as ad

    def conv(key):
        return value(elems[key], filename, key)

    raw = elems["raw"]
    adata = ad.AnnData(
        X=conv("X") if elems["X"] is not None else None,
        obs=conv("obs"),
        var=conv("var"),
        obsm=conv("obsm"),
        varm=conv("varm"),
        obsp=conv("obsp"),
        varp=conv("varp"),
        layers=conv("layers"),
        uns=conv("uns"),
    )
    if raw is not None:
        adata.raw = ad.AnnData(
            X=value(raw["X"], filename, "raw/X"),
            obs=adata.obs[[]],
            var=value(raw["var"], filename, "raw/var"),
            varm=value(raw["varm"], filename, "raw/varm"),
        )
    return adata


# ------------------------------------------------------------------ anndata objects → plain values


def _flat_strings(a):
    a = np.asarray(a)
    values = a.ravel().tolist()
    if not all(isinstance(v, str) for v in values):
        kinds = sorted({type(v).__name__ for v in values})
        raise TypeError(f"an array mixing {', '.join(kinds)} cannot be stored (only str, numbers or bools)")
    return ("strings", list(a.shape), values)


def _flat_array(a):
    a = np.asarray(a)
    if a.dtype.kind == "T":
        # numpy 2's StringDType (what anndata reads string arrays of Zarr stores as).
        a = a.astype(object)
    if a.dtype.kind in "OUS":
        return _flat_strings(a.astype(str) if a.dtype.kind in "US" else a)
    if a.dtype.kind not in "biuf" or a.dtype.itemsize > 8:
        raise TypeError(f"annpage cannot store numpy arrays of dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))


def _flat_column(s):
    """A pandas Series or array as a frame column."""
    dtype = getattr(s, "dtype", None)
    if isinstance(dtype, pd.CategoricalDtype):
        cat = s.array if isinstance(s, pd.Series) else s
        return ("categorical", np.asarray(cat.codes), _flat_array(cat.categories.to_numpy()), bool(cat.ordered))
    if isinstance(dtype, (pd.Int8Dtype, pd.Int16Dtype, pd.Int32Dtype, pd.Int64Dtype,
                          pd.UInt8Dtype, pd.UInt16Dtype, pd.UInt32Dtype, pd.UInt64Dtype)):
        arr = pd.array(s)
        return ("nullable", "integer", _flat_array(arr._data), np.asarray(arr._mask, dtype=bool))
    if isinstance(dtype, pd.BooleanDtype):
        arr = pd.array(s)
        return ("nullable", "boolean", _flat_array(arr._data), np.asarray(arr._mask, dtype=bool))
    if isinstance(dtype, pd.StringDtype):
        mask = np.asarray(pd.isna(s), dtype=bool)
        values = np.asarray(s, dtype=object).copy()
        values[mask] = ""
        return ("nullable", _string_kind(dtype), _flat_strings(values), mask)
    return _flat_array(np.asarray(s))


def _flat_frame(df):
    index = df.index.to_numpy()
    # Numbers stay numbers (frames in uns may have them); anything else is text.
    index = _flat_array(index) if index.dtype.kind in "biuf" else _flat_strings(index.astype(str) if index.dtype.kind != "O" else index)
    names = [str(name) for name in df.columns]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise TypeError(
            f"columns named {twice[0]!r} more than once (as text: annpage stores names as "
            "strings, as anndata does, which refuses names that are not strings)"
        )
    columns = []
    for name in df.columns:
        try:
            columns.append((str(name), _flat_column(df[name])))
        except TypeError as e:
            raise TypeError(f"column {name!r}: {e}") from None
    na = _string_kind(df.index.dtype) if isinstance(df.index.dtype, pd.StringDtype) else None
    return ("dataframe", index, df.index.name, columns, na)


def _string_kind(dtype):
    """The kind of a pandas string dtype: `string` (missing is pd.NA) or `str` (NaN)."""
    return "string" if getattr(dtype, "na_value", pd.NA) is pd.NA else "str"


def _flat_sparse(m):
    fmt = m.format
    if fmt not in ("csr", "csc"):
        m, fmt = m.tocsr(), "csr"
    return ("sparse", fmt, tuple(int(n) for n in m.shape), m.indptr, m.indices, _flat_array(m.data))


def flatten(v):
    """One element of an anndata object as the native module's plain values."""
    if v is None:
        return ("null",)
    if sp.issparse(v):
        return _flat_sparse(v)
    if isinstance(v, pd.DataFrame):
        return _flat_frame(v)
    if isinstance(v, (pd.Categorical, pd.Series)) or isinstance(getattr(v, "dtype", None), pd.api.extensions.ExtensionDtype):
        return _flat_column(v)
    if isinstance(v, dict) or (hasattr(v, "keys") and hasattr(v, "items")):
        return {str(k): flatten(x) for k, x in v.items()}
    if isinstance(v, (str, bytes)):
        return ("scalar", _flat_strings(np.asarray(v if isinstance(v, str) else v.decode(), dtype=object)))
    if isinstance(v, (bool, int, float, np.generic)) or (isinstance(v, np.ndarray) and v.ndim == 0):
        # A 0-d array is a scalar, as anndata writes it.
        return ("scalar", _flat_array(np.asarray(v)))
    if isinstance(v, (list, tuple, np.ndarray)):
        return _flat_array(np.asarray(v))
    raise TypeError(f"annpage cannot store a {type(v).__name__}")


def _uns(uns, records):
    if records is None:
        return dict(uns)
    from . import _records

    kept, found = _records.split(dict(uns))
    records.extend(found)
    return kept


def strings_to_categoricals(df, inplace=False, missing_only=False):
    """`df` with each string column that repeats a value made a categorical, as anndata's
    ``AnnData.strings_to_categoricals`` makes them before it writes (missing values stay
    missing, categories in natural order); a shallow copy unless ``inplace``. With
    ``missing_only``, only the columns with missing values (which annpage holds as
    categoricals)."""
    from natsort import natsorted
    from pandas.api.types import infer_dtype

    out = df
    for key in df.columns:
        column = df[key]
        if isinstance(column, pd.DataFrame) or infer_dtype(column) != "string":
            continue
        if missing_only and not column.isna().any():
            continue
        c = pd.Categorical(column)
        if len(c.categories) >= len(c):
            continue
        ordered = natsorted(c.categories)
        if not np.array_equal(c.categories, ordered):
            c = c.reorder_categories(ordered)
        if out is df and not inplace:
            out = df.copy(deep=False)
        out[key] = c
    return out


def label_as_given(frame, label, keys):
    """`frame`'s ``label`` column with the keys as its categories as given (numbers stay
    numbers, as anndata's): annpage's concatenation holds their text. Categories a view
    dropped stay dropped."""
    if label is None or keys is None or label not in frame or all(isinstance(k, str) for k in keys):
        return frame
    as_given = {str(k): k for k in keys}
    frame[label] = frame[label].cat.rename_categories(lambda c: as_given.get(c, c))
    return frame


def missing_strings_as_nullable(df):
    """`df` with its object columns of strings and missing values as pandas strings (a shallow
    copy where there are any): what annpage concatenates them as, since anndata.concat keeps
    them (a write, instead, makes them categoricals first or refuses them, as anndata's)."""
    from pandas.api.types import infer_dtype

    out = df
    for key in df.columns:
        column = df[key]
        if isinstance(column, pd.DataFrame) or column.dtype != object or not column.isna().any():
            continue
        if infer_dtype(column) != "string":
            continue
        if out is df:
            out = df.copy(deep=False)
        out[key] = column.astype("string")
    return out


def elements(adata, convert_strings=False, records=None, frames=None):
    """An `anndata.AnnData` as the native module's dict of elements (``convert_strings``: with
    `strings_to_categoricals` applied to obs, var and raw.var, as anndata writes them). Given a
    list as ``records``, the record arrays of ``uns`` are left out and appended to it as
    ``(path, value)`` pairs (see `_records`). ``frames``: obs and var to take instead of the
    object's."""
    if getattr(adata, "isbacked", False):
        adata = adata.to_memory()

    def frame(df):
        return _flat_frame(strings_to_categoricals(df) if convert_strings else df)

    raw = None
    if adata.raw is not None:
        raw = {
            "X": flatten(adata.raw.X),
            "var": frame(adata.raw.var),
            "varm": {k: flatten(v) for k, v in adata.raw.varm.items()},
        }
    return {
        "X": None if adata.X is None else flatten(adata.X),
        "obs": frame(adata.obs if frames is None else frames[0]),
        "var": frame(adata.var if frames is None else frames[1]),
        "obsm": {k: flatten(v) for k, v in adata.obsm.items()},
        "varm": {k: flatten(v) for k, v in adata.varm.items()},
        "obsp": {k: flatten(v) for k, v in adata.obsp.items()},
        "varp": {k: flatten(v) for k, v in adata.varp.items()},
        # anndata 0.13 lists X among the layers, under the key None.
        "layers": {k: flatten(v) for k, v in adata.layers.items() if k is not None},
        "uns": flatten(_uns(adata.uns, records)),
        "raw": raw,
    }


def as_dense(as_dense, has_raw: bool) -> set:
    """anndata's ``as_dense`` checked as anndata checks it: ``X`` and ``raw/X`` (or
    ``raw.X``) only, ``raw/X`` only when there is a raw (``has_raw``)."""
    names = [] if as_dense is None else [as_dense] if isinstance(as_dense, str) else list(as_dense)
    names = ["raw/X" if n == "raw.X" else n for n in names]
    if any(n not in {"X", "raw/X"} for n in names):
        raise NotImplementedError("Currently, only `X` and `raw/X` are supported values in `as_dense`")
    if "raw/X" in names and not has_raw:
        raise ValueError("Cannot specify writing `raw/X` to dense if it doesn’t exist.")
    return set(names)
