"""Changes through a backed handle (kept in memory; one opened with ``backed="r+"`` writes
them back).

As in anndata's backed modes, ``obs``, ``var`` and ``uns`` are edited in memory (in place
or by assignment) and entries of ``obsm``, ``varm``, ``layers``, ``obsp`` and ``varp`` are set
and deleted like dict items; ``write()`` writes every change back to the file (rewritten beside
it and renamed over it), and so does ``close()``; a handle dropped without either writes nothing, and one whose
``close()`` fails to write is closed with its changes dropped (never half-written).
"""

from __future__ import annotations

import copy
from collections.abc import MutableMapping

import numpy as np
import pandas as pd

from . import _convert, _records


def _same_dtype(x, y) -> bool:
    """Dtype equality that also tells categories apart by their order (pandas' does not, for
    unordered ones)."""
    if isinstance(x, pd.CategoricalDtype) and isinstance(y, pd.CategoricalDtype):
        return (
            x.ordered == y.ordered
            and x.categories.dtype == y.categories.dtype
            and x.categories.equals(y.categories)
        )
    return x == y


def equal(a, b) -> bool:
    """Whether two values as the user holds them are the same (dtypes, order and missing
    values included), without converting either: values annpage cannot store compare too."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, pd.DataFrame):
        return (
            a.equals(b)
            and list(a.columns) == list(b.columns)
            and a.index.name == b.index.name
            and a.index.dtype == b.index.dtype
            and len(a.dtypes) == len(b.dtypes)
            and all(_same_dtype(x, y) for x, y in zip(a.dtypes, b.dtypes))
        )
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.names is not None:
            # Record arrays: field by field (NaN equal to NaN in float fields, as elsewhere).
            return all(equal(np.asarray(a[f]), np.asarray(b[f])) for f in a.dtype.names)
        try:
            return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        except TypeError:
            return bool(np.array_equal(a, b))
    if isinstance(a, (pd.api.extensions.ExtensionArray, pd.Series, pd.Index)):
        return _same_dtype(a.dtype, b.dtype) and pd.Series(a).equals(pd.Series(b))
    if hasattr(a, "shape") and hasattr(a, "nnz"):  # scipy sparse
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if hasattr(a, "indptr") and a.format == b.format:
            # As stored (NaN equal to NaN): a copy has its original's structure.
            return all(
                equal(np.asarray(x), np.asarray(y))
                for x, y in [(a.indptr, b.indptr), (a.indices, b.indices), (a.data, b.data)]
            )
        return (a != b).nnz == 0
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b


class Tracked:
    """One of ``obs``, ``var`` or ``uns``: ``value`` as the user sees it, ``read`` a copy of
    what the native handle holds, to tell whether (and for uns, which entries) it changed."""

    def __init__(self, value):
        self.value = value
        self.read = copy.deepcopy(value)
        # uns: the record arrays in entries changed since the file was read, as (path, value)
        # pairs by key; annpage does not build them: the writers add them with anndata's.
        self.records: dict[str, list] = {}

    def push(self, native, which: str, convert_strings: bool) -> None:
        """Hands a change over to `native` as a pending change (nothing if there is none).
        Only what changed is converted (values annpage reads but cannot store stay as they
        are on disk). ``convert_strings``: string columns become categoricals in the frame the
        user holds too, as anndata's ``write()`` makes them."""
        if convert_strings and which != "uns":
            self.value = _convert.strings_to_categoricals(self.value, inplace=True)
        if which == "uns":
            for key in self.read:
                if key not in self.value:
                    # A record array set in Python was never handed over.
                    if str(key) in native.keys("uns"):
                        native.remove_element("uns", key)
                    self.records.pop(str(key), None)
            for key, v in self.value.items():
                if key not in self.read or not equal(v, self.read[key]):
                    kept, found = _records.split({str(key): v})
                    self.records[str(key)] = found
                    if kept:
                        native.insert_element("uns", str(key), _convert.flatten(kept[str(key)]))
                    elif str(key) in native.keys("uns"):
                        native.remove_element("uns", str(key))  # now a record array itself
        elif not equal(self.value, self.read):
            # The file holds strings with missing values as categoricals, as anndata writes
            # them: so does the frame handed over (other string columns stay strings until
            # `write()` converts them, as anndata's `write()` does).
            held = _convert.strings_to_categoricals(self.value, missing_only=True)
            native.set_frame(which, _convert.flatten(held))
        self.read = copy.deepcopy(self.value)


def check_frame(df, n: int, axis: str) -> pd.DataFrame:
    """A frame assigned to ``obs``/``var``: a DataFrame of ``n`` rows, its index made strings
    as anndata makes it."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{axis} must be a pandas DataFrame, not {type(df).__name__}")
    if len(df) != n:
        raise ValueError(f"the new {axis} has {len(df)} rows, {axis} has {n}")
    if not (df.index.dtype == object and all(isinstance(v, str) for v in df.index)):
        df = df.copy(deep=False)
        df.index = df.index.astype(str)
    return df


def _trackable(value) -> bool:
    """Whether an obsm/varm value read can be kept and compared (arrays, sparse matrices and
    frames; not values annpage keeps verbatim, such as awkward arrays)."""
    return isinstance(value, (np.ndarray, pd.DataFrame)) or (hasattr(value, "shape") and hasattr(value, "nnz"))


def push_kept(native, kept: dict) -> None:
    """Hands over the obsm/varm values read and changed in place since (see `Entries`)."""
    for (which, key), tracked in kept.items():
        if not equal(tracked.value, tracked.read):
            try:
                native.insert_element(which, key, _convert.flatten(tracked.value))
            except Exception as e:
                try:
                    named = type(e)(f"{which}[{key!r}], changed in place: {e}")
                except Exception:
                    raise e from None
                raise named from e
            tracked.read = copy.deepcopy(tracked.value)


class Entries(MutableMapping):
    """``obsm``, ``varm``, ``layers``, ``obsp``, ``varp`` of a handle: keys known, values read
    when asked for; ``m[key] = value`` and ``del m[key]`` change them (an ``r+`` handle's
    ``write()`` writes them back). Given ``kept`` (a handle of a whole file), an ``obsm`` or
    ``varm`` value read is kept there: read again, it is the same object, and changes made to it
    in place are changes (as anndata holds them in memory)."""

    def __init__(self, native, which: str, filename: str, check_writable, kept: dict | None = None):
        self._native, self._which, self._filename = native, which, filename
        self._check = check_writable
        self._kept = kept if which in ("obsm", "varm") else None

    def __getitem__(self, key):
        if self._kept is not None and (self._which, key) in self._kept:
            return self._kept[(self._which, key)].value
        if key not in self._native.keys(self._which):
            raise KeyError(key)
        if self._which in ("obsm", "varm"):
            v = self._native.read_element(self._which, key)
        else:
            v = self._native.read_matrix(self._which, key)
        value = _convert.value(v, self._filename, f"{self._which}/{key}")
        if self._kept is not None and _trackable(value):
            self._kept[(self._which, key)] = Tracked(value)
        return value

    def __setitem__(self, key, value):
        self._check(f"{self._which}[{key!r}]")
        if not isinstance(key, str):
            raise TypeError(f"{self._which} keys must be str, not {type(key).__name__}")
        self._native.insert_element(self._which, key, _convert.flatten(value))
        if self._kept is not None:
            # The object given is the value now (as anndata's `obsm[k] is value`).
            if _trackable(value):
                self._kept[(self._which, key)] = Tracked(value)
            else:
                self._kept.pop((self._which, key), None)

    def __delitem__(self, key):
        self._check(f"{self._which}[{key!r}]")
        self._native.remove_element(self._which, key)
        if self._kept is not None:
            self._kept.pop((self._which, key), None)

    def __iter__(self):
        return iter(self._native.keys(self._which))

    def __len__(self) -> int:
        return len(self._native.keys(self._which))

    def __repr__(self) -> str:
        return f"{self._which}: {list(self)}"
