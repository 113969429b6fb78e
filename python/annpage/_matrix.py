"""The lazy matrices of a backed handle (`BackedMatrix`, raw's `BackedRaw`, `Batches`) and
the selection keys they and the handles take, as anndata takes them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import _convert
from ._convert import split_key


def _positions(key, n: int, names, axis: str):
    """One axis' key as anndata accepts it, as a `slice` or an int64 array of positions.

    Slices, ints, int arrays (negative from the end, repeats kept), boolean masks (numpy,
    lists or pandas Series), names (str, lists of str, pandas Index).
    """
    if key is None or key is Ellipsis or (isinstance(key, slice) and key == slice(None)):
        return None
    if isinstance(key, slice) and names is not None and any(isinstance(b, str) for b in (key.start, key.stop)):
        # Names as bounds, as anndata takes them: a name's position, the stop's plus one.
        def at(bound):
            return names().get_loc(bound) if isinstance(bound, str) else bound

        stop = at(key.stop)
        key = slice(at(key.start), stop + 1 if isinstance(key.stop, str) else stop, key.step)
    if isinstance(key, slice):
        for bound in (key.start, key.stop, key.step):
            if bound is not None and not isinstance(bound, (int, np.integer)):
                raise TypeError(f"{axis} slices take integer bounds, not {bound!r}")

        def bound(b):
            # Bounds past either end select as the end does (Python's rule), and fit in 64 bits.
            return None if b is None else max(-n - 1, min(n, int(b)))

        step = None if key.step is None else int(key.step)
        if step is not None and not -(2**62) < step < 2**62:
            step = (2**62 - 1) if step > 0 else -(2**62 - 1)
        return slice(bound(key.start), bound(key.stop), step)
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        if not -n <= int(key) < n:
            raise IndexError(f"{axis} position {int(key)} out of range for {n} {axis}")
        key = [int(key)]
    one_name = isinstance(key, str)
    if one_name:
        key = [key]
    if isinstance(key, pd.Series):
        key = key.to_numpy()
    arr = np.asarray(key)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]  # a column (a mask of shape (n, 1), as anndata takes it)
    if arr.ndim != 1:
        raise IndexError(f"{axis} index must be 1-d, got shape {arr.shape}")
    if arr.dtype.kind == "f" and len(arr) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)  # whole numbers as floats, as anndata takes them
    if arr.dtype == bool:
        if len(arr) != n:
            raise IndexError(f"boolean {axis} index of length {len(arr)} for {n} {axis}")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and arr.max() >= n:
            # Before the cast: values from 2**63 up would wrap to negative positions.
            raise IndexError(f"{axis} position {arr.max()} out of range for {n} {axis}")
        pos = arr.astype(np.int64)
        bad = (pos < -n) | (pos >= n)
        if bad.any():
            raise IndexError(f"{axis} position {pos[bad][0]} out of range for {n} {axis}")
        return np.where(pos < 0, pos + n, pos)
    if arr.dtype.kind in "OUS" or len(arr) == 0:
        if len(arr) == 0:
            return np.zeros(0, dtype=np.int64)
        if names is None:
            raise IndexError(f"{axis} names cannot select here")
        index = names()
        wanted = arr.astype(object)
        if not index.is_unique and not one_name:
            # As anndata (pandas' reindexing): a list of names needs unique names.
            raise pd.errors.InvalidIndexError("Reindexing only valid with uniquely valued Index objects")
        # One name: every row of it where it is duplicated, as anndata selects it.
        pos = index.get_indexer(wanted) if index.is_unique else index.get_indexer_for(wanted)
        if (pos < 0).any():
            raise KeyError(f"{str(arr[pos < 0][0])!r} is not among the {axis} names")
        return pos.astype(np.int64)
    raise IndexError(f"cannot index {axis} with {key!r}")


def _is_int(key) -> bool:
    return isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_))


def _as_positions(key, n: int):
    """`_positions`' result as an int64 array of positions among `n`."""
    if key is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(key, slice):
        return np.arange(*key.indices(n), dtype=np.int64)
    return np.ascontiguousarray(key, dtype=np.int64)


def _compose(outer, inner, n: int):
    """File positions of `inner` (a slice, positions or None over `n` items) taken within the
    file positions `outer` (None: all)."""
    if inner is None:
        return outer
    base = np.arange(n, dtype=np.int64) if outer is None else outer
    return base[inner]


class BackedMatrix:
    """A lazy matrix (`X` or a layer) of a :class:`BackedAnnData`: ``shape``, ``dtype`` and
    ``m[rows]`` / ``m[rows, cols]`` read into a scipy sparse matrix or numpy array as stored."""

    def __init__(self, native, which: str, key: str | None, filename: str):
        self._native, self._which, self._key, self._filename = native, which, key, filename
        shape, dtype, fmt = native.matrix_meta(which, key)
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.format = fmt

    @property
    def ndim(self) -> int:
        """The number of dimensions: 2."""
        return 2

    def __getitem__(self, key):
        """As numpy and anndata index: an int drops its axis from a dense result, and two
        ints give one value (a sparse result keeps its rows otherwise, as scipy's)."""
        rows, cols = split_key(key)
        row_int, col_int = _is_int(rows), _is_int(cols)
        rows = _positions(rows, self.shape[0], None, "rows")
        cols = _positions(cols, self.shape[1], None, "columns")
        native = self._native if rows is None and cols is None else self._native.slice(rows, cols)
        m = _convert.value(native.read_matrix(self._which, self._key), self._filename, self._which)
        if row_int and col_int:
            return (m.toarray() if sp.issparse(m) else m)[0, 0]
        if isinstance(m, np.ndarray) and (row_int or col_int):
            return m[0] if row_int else m[:, 0]
        return m

    def to_memory(self):
        """The whole matrix in memory."""
        return self[:, :]

    def __repr__(self) -> str:
        return f"BackedMatrix(shape={self.shape}, dtype={self.dtype}, format={self.format!r})"


class _RawMatrix(BackedMatrix):
    """raw.X: its rows are the handle's, its columns raw's own (a handle selects X's genes,
    never raw's), so rows are read through the handle and columns taken from them; ``cols``
    (positions of raw's genes, or None for all) is the selection of an indexed raw."""

    def __init__(self, native, filename: str, cols=None):
        super().__init__(native, "raw", None, filename)
        self._cols = cols
        if cols is not None:
            self.shape = (self.shape[0], len(cols))

    def __getitem__(self, key):
        rows, cols = split_key(key)
        picked = _positions(cols, self.shape[1], None, "columns")
        picked = _compose(self._cols, picked, self.shape[1])
        block = super().__getitem__((rows, slice(None)))
        if picked is None:
            return block
        if _is_int(cols):
            # One value (both ints), or one column of a dense block (its axis dropped).
            if _is_int(rows):
                return block[0, int(picked[0])] if sp.issparse(block) else block[int(picked[0])]
            if not sp.issparse(block):
                return block[:, int(picked[0])]
        if block.ndim == 1:
            return block[picked]
        return block[:, picked]


def _dense(block) -> np.ndarray:
    """A block read from a matrix as a flat numpy array."""
    return np.ravel(block.toarray() if sp.issparse(block) else np.asarray(block))


class BackedRaw:
    """``raw`` of a :class:`BackedAnnData`, as anndata's ``Raw``: ``X`` at the handle's cells
    and every raw variable (or those ``raw[obs, var]`` selects), read on demand; ``var`` read
    on first use."""

    def __init__(self, handle, cols=None):
        self._handle = handle
        self._cols = cols
        self._annotations = None

    def _read(self):
        if self._annotations is None:
            h = self._handle
            var, varm = h._h().raw_annotations()
            var = _convert.value(var, h._filename, "raw/var")
            varm = _convert.value(varm, h._filename, "raw/varm")
            if self._cols is not None:
                var = var.iloc[self._cols]
                varm = {k: v.iloc[self._cols] if hasattr(v, "iloc") else v[self._cols] for k, v in varm.items()}
            self._annotations = (var, varm)
        return self._annotations

    def __getitem__(self, key) -> BackedRaw:
        """``raw[obs, var]``: a lazy raw at the handle's cells ``obs`` selects (the handle's
        ``b[obs]``) and the raw genes ``var`` selects (positions, masks or raw's names), as
        anndata's ``Raw.__getitem__``; nothing is read."""
        obs, var = split_key(key)
        handle = self._handle if obs is None or (isinstance(obs, slice) and obs == slice(None)) else self._handle[obs]
        n_vars = self.n_vars
        picked = _positions(var, n_vars, lambda: self.var_names, "raw variables")
        cols = _compose(self._cols, picked, n_vars)
        if isinstance(cols, slice):
            cols = _as_positions(cols, n_vars)
        return BackedRaw(handle, cols)

    @property
    def X(self) -> BackedMatrix:
        """raw's X as a lazy :class:`BackedMatrix`."""
        h = self._handle
        return _RawMatrix(h._h(), h._filename, self._cols)
    @property
    def var(self) -> pd.DataFrame:
        """raw's genes' annotations, read on first use."""
        return self._read()[0]

    @property
    def varm(self) -> dict:
        """raw's genes' multi-dimensional annotations, read on first use."""
        return self._read()[1]

    @property
    def var_names(self) -> pd.Index:
        """raw's genes' names."""
        return self.var.index

    @property
    def obs_names(self) -> pd.Index:
        """The cells' names: the handle's."""
        return self._handle.obs_names

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_obs, n_vars)`` of raw at the selection."""
        return self.X.shape

    @property
    def n_obs(self) -> int:
        """The number of cells (rows)."""
        return self.shape[0]

    @property
    def n_vars(self) -> int:
        """The number of genes (columns)."""
        return self.shape[1]

    def obs_vector(self, k: str) -> np.ndarray:
        """The values of raw's gene ``k`` over the cells, as anndata's ``Raw.obs_vector``."""
        return _dense(self[:, k].X[:, :])

    def var_vector(self, k: str) -> np.ndarray:
        """The values of cell ``k`` over raw's genes, as anndata's ``Raw.var_vector``."""
        return _dense(self[k, :].X[:, :])

    def to_adata(self):
        """raw as an in-memory :class:`anndata.AnnData` (raw's X and var, the handle's obs,
        obsm, obsp and uns), as anndata's ``Raw.to_adata``."""
        import anndata as ad

        h = self._handle
        return ad.AnnData(
            X=self.X[:, :],
            obs=h.obs.copy(),
            var=self.var.copy(),
            varm=dict(self.varm),
            obsm=dict(h.obsm),
            obsp=dict(h.obsp),
            uns=h.uns,
        )

    def __repr__(self) -> str:
        return f"Raw AnnData with n_obs × n_vars = {self.n_obs} × {self.n_vars}"


class Batches:
    """What ``BackedAnnData.batches`` and ``batches_of`` return: ``(X_batch, rows)`` pairs,
    read one at a time."""

    def __init__(self, native, filename: str, element: str):
        self._native, self._filename, self._element = native, filename, element

    def __len__(self) -> int:
        return len(self._native)

    def __iter__(self):
        return self

    def __next__(self):
        rows, m = next(self._native)
        return _convert.value(m, self._filename, self._element), rows
