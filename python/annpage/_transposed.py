"""`BackedAnnData.T`: a lazy transposed view, as anndata's `adata.T`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from ._convert import _check_sep, _gzip_level, split_key
from ._convert import as_dense as as_dense_names
from ._vectors import Vectors


class TransposedMatrix:
    """A matrix of a :class:`TransposedBackedAnnData`: ``X[rows, cols]`` reads the file's
    ``X[cols, rows]`` and transposes it (a CSR block comes back CSC, as scipy's ``.T``)."""

    def __init__(self, inner):
        self._inner = inner
        self.shape = tuple(inner.shape[::-1])
        self.dtype = inner.dtype
        self.format = {"csr": "csc", "csc": "csr"}.get(inner.format, inner.format)

    @property
    def ndim(self) -> int:
        """The number of dimensions: 2."""
        return 2

    def __getitem__(self, key):
        rows, cols = split_key(key)
        return self._inner[cols, rows].T

    def to_memory(self):
        """The whole matrix in memory."""
        return self[:, :]

    def __repr__(self) -> str:
        return f"TransposedMatrix(shape={self.shape}, dtype={self.dtype}, format={self.format!r})"


class _TransposedLayers(Mapping):
    def __init__(self, inner: Mapping):
        self._inner = inner

    def __getitem__(self, key):
        return self._inner[key].T

    def __iter__(self) -> Iterator[str]:
        return iter(self._inner)

    def __len__(self) -> int:
        return len(self._inner)


class TransposedBackedAnnData(Vectors):
    """``b.T`` of a :class:`BackedAnnData`: observations are the file's variables. Selections
    compose with the file's plan; nothing is read until asked for; ``to_memory()`` equals
    ``anndata.read_h5ad(path)[...].T``."""

    def __init__(self, inner):
        self._inner = inner

    @property
    def T(self):
        """The untransposed view."""
        return self._inner

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_obs, n_vars)`` of the transposed view: the handle's, swapped."""
        n_obs, n_vars = self._inner.shape
        return (n_vars, n_obs)

    @property
    def n_obs(self) -> int:
        """The number of rows: the handle's genes."""
        return self.shape[0]

    @property
    def n_vars(self) -> int:
        """The number of columns: the handle's cells."""
        return self.shape[1]

    @property
    def obs_names(self):
        """The handle's genes' names."""
        return self._inner.var_names

    @property
    def var_names(self):
        """The handle's cells' names."""
        return self._inner.obs_names

    @property
    def obs(self):
        """The handle's var."""
        return self._inner.var

    @property
    def var(self):
        """The handle's obs."""
        return self._inner.obs

    @property
    def X(self) -> TransposedMatrix | None:
        """The handle's X transposed, lazy; ``None`` when it has none."""
        x = self._inner.X
        return None if x is None else TransposedMatrix(x)

    @property
    def layers(self) -> Mapping:
        """The handle's layers, each transposed on read."""
        return _TransposedLayers(self._inner.layers)

    @property
    def obsm(self) -> Mapping:
        """The handle's varm."""
        return self._inner.varm

    @property
    def varm(self) -> Mapping:
        """The handle's obsm."""
        return self._inner.obsm

    @property
    def obsp(self) -> Mapping:
        """The handle's varp."""
        return self._inner.varp

    @property
    def varp(self) -> Mapping:
        """The handle's obsp."""
        return self._inner.obsp

    @property
    def uns(self) -> dict:
        """The handle's uns."""
        return self._inner.uns

    @property
    def filename(self):
        """The file the handle reads."""
        return self._inner.filename

    @property
    def isbacked(self) -> bool:
        """Always ``True``: the matrices stay on disk."""
        return True

    def _matrix(self, layer: str | None) -> TransposedMatrix:
        return TransposedMatrix(self._inner._matrix(layer))

    def __getitem__(self, key) -> TransposedBackedAnnData:
        obs, var = split_key(key)
        return TransposedBackedAnnData(self._inner[var, obs])

    def to_memory(self):
        """The selection in memory, transposed (anndata's ``.T``: raw is not kept)."""
        return self._inner.to_memory().T

    def write_h5ad(
        self, filename, compression: str | None = None, compression_opts: int | None = None, as_dense=()
    ) -> None:
        """Writes the transposed selection to ``filename``, the file ``to_memory()`` would
        give, X and layers streamed (a CSR matrix's rows are its transpose's CSC columns; a
        dense one is read in pieces of its columns, the transpose's rows); ``as_dense="X"``
        writes X dense (raw is not kept, as by anndata's ``.T``)."""
        inner = self._inner
        level = _gzip_level(compression, compression_opts)
        dense = as_dense_names(as_dense, False)
        inner._write_to(
            filename,
            lambda path: inner._h().write_as(
                path, compression, level, transposed=True, dense=sorted(dense), strings_to_categoricals=True
            ),
            zarr=False,
        )

    def write_zarr(
        self,
        store,
        *,
        chunks=None,
        zarr_format: int = 3,
        chunk_rows: int | None = None,
        shard_rows: int | None = None,
        compression: str | None = None,
    ) -> None:
        """Writes the transposed selection to the Zarr store ``store`` (the arguments of
        :func:`annpage.write_zarr`), as :meth:`write_h5ad` writes a file."""
        from . import _zarr_args

        inner = self._inner
        x = inner.X
        dense = x is not None and x.format == "dense"
        zarr = _zarr_args(zarr_format, chunk_rows, shard_rows, chunks, self.shape if dense else None)
        inner._write_to(
            store,
            lambda path: inner._h().write_as(path, compression, None, zarr, transposed=True, strings_to_categoricals=True),
            zarr=True,
        )

    def write_loom(self, filename, *, write_obsm_varm: bool = False) -> None:
        """Writes the transposed selection as a loom file (what :func:`annpage.write_loom`
        writes for ``to_memory()``), the matrices read a block at a time."""
        inner = self._inner
        if not hasattr(inner._h(), "write_loom_transposed"):  # a collection's
            from . import write_loom

            write_loom(self.to_memory(), filename, write_obsm_varm=write_obsm_varm)
            return
        inner._push()
        inner._h().write_loom_transposed(os.fspath(filename), bool(write_obsm_varm))

    def write_csvs(self, dirname, *, skip_data: bool = True, sep: str = ",") -> None:
        """Writes the transposed selection as CSV files into ``dirname`` (what
        :func:`annpage.write_csvs` writes for ``to_memory()``), X a block of rows at a time;
        with uns changed in Python, read into memory first."""
        from . import write_csvs

        _check_sep(sep)
        inner = self._inner
        if inner._held_uns() is not None or not hasattr(inner._h(), "write_csvs_transposed"):
            write_csvs(self.to_memory(), dirname, skip_data=skip_data, sep=sep)
            return
        inner._push()
        inner._h().write_csvs_transposed(os.fspath(dirname), bool(skip_data), sep)

    def chunked_X(self, chunk_size: int = 1000):
        """Yields ``(X[start:end], start, end)`` over the rows (the file's columns)."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        x = self.X
        for start in range(0, self.n_obs, chunk_size):
            end = min(start + chunk_size, self.n_obs)
            yield x[start:end], start, end

    def __repr__(self) -> str:
        n_obs, n_vars = self.shape
        return f"TransposedBackedAnnData object with n_obs × n_vars = {n_obs} × {n_vars} backed at {str(self.filename)!r}"
