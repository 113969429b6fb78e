"""`BackedCollection`: several `.h5ad` files as one lazy AnnData along obs."""

from __future__ import annotations

import numpy as np

from . import _convert
from ._backed import BackedAnnData
from ._matrix import _compose, _positions
from ._convert import split_key


def _read_block(paths, options: dict, cache_mb: int, sel, start: int, end: int):
    """Rows `start..end` of a collection selection's X, read by a fresh collection (a dask
    task)."""
    from . import read_collection

    obs, var = sel
    rows = np.arange(start, end, dtype=np.int64) if obs is None else obs[start:end]
    x = read_collection(paths, cache_mb=cache_mb, **options).X
    return x[rows] if var is None else x[rows, var]


class BackedCollection(BackedAnnData):
    """Several `.h5ad` files read as one lazy AnnData: what ``anndata.concat`` of the files
    read whole gives (along obs, with its ``join``, ``merge``, ``label``, ``keys`` and
    ``index_unique``), with X and the layers left on disk.

    Made by :func:`annpage.read_collection`. Everything a :class:`BackedAnnData` does:
    ``c[obs, var]`` selects lazily across file boundaries, ``to_memory()``, ``X[rows]``,
    ``chunked_X``, ``chunk_X``, ``to_dask`` and a streaming ``write_h5ad``; one cache of
    ``cache_mb`` for all files. ``raw`` is left out, as anndata's ``AnnCollection`` leaves it.
    """

    def __init__(
        self, native, paths, options: dict, cache_mb: int = 1024, sel=(None, None), keys=None, inputs=None
    ):
        shown = f"{paths[0]}" if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} files)"
        super().__init__(native, shown, cache_mb, sel)
        self._editable = False
        self._paths = list(paths)
        self._options = dict(options)
        # The keys as given (the label's categories, as anndata's; the native collection
        # holds their text: see `_convert.label_as_given`).
        self._keys = keys
        # Each file's (obs, var) once read, shared with the views: the dtypes anndata.concat
        # keeps (see `_as_given`).
        self._inputs = inputs if inputs is not None else {}

    def _check_editable(self, what: str) -> None:
        raise ValueError(
            f"cannot change {what} of {self._filename}: a collection of files takes no changes "
            "(change what to_memory() gives)"
        )

    def _as_given(self, frame, which: str):
        """`frame` (obs or var) with the dtypes anndata.concat gives it: the native collection
        holds its columns as anndata writes them (strings that repeat as categoricals)."""
        from . import _as_anndata_concats, read_h5ad, read_zarr

        if "frames" not in self._inputs:
            frames = []
            for path in self._paths:
                read = read_zarr if str(path).lower().endswith((".zarr", ".zip")) else read_h5ad
                with read(path, backed="r", cache_mb=16) as f:
                    frames.append((f.obs, f.var))
            self._inputs["frames"] = frames
        inputs = [f[0] if which == "obs" else f[1] for f in self._inputs["frames"]]
        label = self._options.get("label") if which == "obs" else None
        _as_anndata_concats(frame, inputs, label)
        return _convert.label_as_given(frame, label, self._keys)

    @property
    def obs(self):
        """The cells' annotations of every file, joined as anndata's ``concat`` joins them
        (the ``label`` column included), read on first use."""
        if self._obs is None:
            self._obs = self._as_given(_convert.value(self._h().obs(), self._filename, "obs"), "obs")
        return self._obs

    @property
    def var(self):
        """The genes' annotations after the join (merged as ``merge`` says), read on first
        use."""
        if self._var is None:
            self._var = self._as_given(_convert.value(self._h().var(), self._filename, "var"), "var")
        return self._var

    def to_memory(self):
        adata = super().to_memory()
        self._as_given(adata.obs, "obs")
        self._as_given(adata.var, "var")
        return adata

    @property
    def filenames(self) -> list[str]:
        """The files, in order."""
        return list(self._paths)

    def __getitem__(self, key) -> BackedCollection:
        obs, var = split_key(key)
        n_obs, n_vars = self.shape
        obs = _positions(obs, n_obs, lambda: self.obs_names, "obs")
        var = _positions(var, n_vars, lambda: self.var_names, "var")
        sel = (_compose(self._sel[0], obs, n_obs), _compose(self._sel[1], var, n_vars))
        native = self._h().slice(obs, var)
        return BackedCollection(
            native, self._paths, self._options, self._cache_mb, sel, self._keys, self._inputs
        )

    def to_dask(self, chunk_rows: int = 10_000):
        """X as a :class:`dask.array.Array` of row blocks; each task opens the collection
        itself (see :meth:`BackedAnnData.to_dask`)."""
        import dask
        import dask.array as da
        import scipy.sparse as sp

        x = self.X
        if x is None:
            raise ValueError("the collection's files have no X")
        n_obs, n_vars = x.shape
        meta = np.empty((0, 0), dtype=x.dtype) if x.format == "dense" else sp.csr_matrix((0, 0), dtype=x.dtype)
        read = dask.delayed(_read_block, pure=True)
        step = max(1, int(chunk_rows))
        blocks = [
            da.from_delayed(
                read(self._paths, self._options, self._cache_mb, self._sel, s, min(s + step, n_obs)),
                shape=(min(s + step, n_obs) - s, n_vars),
                dtype=x.dtype,
                meta=meta,
            )
            for s in range(0, n_obs, step)
        ]
        if not blocks:
            return da.from_array(meta.toarray() if sp.issparse(meta) else meta).reshape((0, n_vars))
        return da.concatenate(blocks, axis=0)

    def __repr__(self) -> str:
        return super().__repr__().replace("BackedAnnData", "BackedCollection", 1)
