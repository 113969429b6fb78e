"""`BackedAnnData`: a lazy, anndata-shaped handle over an `.h5ad` file read by annpage."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import _convert, _edit, _records
from ._convert import _check_sep, _gzip_level, _index, split_key
from ._matrix import BackedMatrix, BackedRaw, Batches, _as_positions, _compose, _positions
from ._vectors import Vectors


def _read_block(filename: str, cache_mb: int, sel, start: int, end: int):
    """Rows `start..end` of a selection's X, read by a fresh handle (a dask task)."""
    from . import read_h5ad

    obs, var = sel
    rows = np.arange(start, end, dtype=np.int64) if obs is None else obs[start:end]
    x = read_h5ad(filename, backed="r", cache_mb=cache_mb).X
    return x[rows] if var is None else x[rows, var]


def _view_uns(whole, held: dict, sel) -> dict:
    """A selection's uns, as anndata's views make it: a shallow copy of the whole file's
    ``held`` uns, each ``{column}_colors`` of a categorical obs or var column cut to the
    categories the selection ``sel`` (file positions of obs and var, None for all) uses (a
    scalar made 1-d, one of another length than the categories dropped)."""
    uns = dict(held)
    if not any(isinstance(k, str) and k.endswith("_colors") for k in uns):
        return uns
    for frame, positions in ((whole.obs, sel[0]), (whole.var, sel[1])):
        for column in frame.columns:
            key = f"{column}_colors"
            values = frame[column]
            if key not in uns or not isinstance(values.dtype, pd.CategoricalDtype):
                continue
            colors = uns[key]
            categories = values.cat.categories
            if np.ndim(colors) == 0:
                uns[key] = np.array(colors)[(None,)]
            elif len(colors) != len(categories):
                del uns[key]
            else:
                taken = values if positions is None else values.iloc[positions]
                used = taken.cat.remove_unused_categories().cat.categories
                uns[key] = np.array(colors)[(np.where(np.isin(categories, used))[0],)]
    return uns


def _renamed_fields(records: np.ndarray, names) -> np.ndarray:
    """A copy of ``records`` with its fields named ``names`` (anndata sets ``dtype.names`` in
    place, which would rename the copy an edit is compared with too: numpy shares the dtype)."""
    old = records.dtype.names
    out = np.empty(records.shape, dtype=[(str(n), records.dtype.fields[o][0]) for n, o in zip(names, old)])
    for n, o in zip(out.dtype.names, old):
        out[n] = records[o]
    return out.view(type(records))


class BackedAnnData(Vectors):
    """A lazy `.h5ad` file (or a selection of it) read through annpage's chunk manager.

    Made by ``annpage.read_h5ad(path, backed="r")``. ``b[obs, var]`` selects lazily (views of
    views compose); ``to_memory()`` reads the selection into an :class:`anndata.AnnData`;
    ``X`` reads rows and columns on demand; ``chunked_X``/``chunk_X`` iterate and sample rows
    as anndata's do; ``write_h5ad`` streams the selection to a new file.

    With ``backed="r+"``, ``obs``, ``var``, ``obs_names``, ``var_names`` and ``uns`` can be
    changed (in place or by assignment) and entries of ``obsm``, ``varm``, ``layers``, ``obsp``
    and ``varp`` set or deleted; ``write()`` writes the changes back to the file, as
    anndata's ``adata.write()`` does, and ``close()`` writes what is left.
    """

    def __init__(
        self,
        native,
        filename: str,
        cache_mb: int = 1024,
        sel=(None, None),
        writable=False,
        root=None,
        uns=None,
    ):
        self._native = native
        self._filename = filename
        self._cache_mb = cache_mb
        # The file positions of the selected obs and var (None: all), for to_dask's workers.
        self._sel = sel
        self._closed = False
        # Fixed for the handle's life (changes never add or drop rows): known once closed too.
        self._shape = tuple(native.shape)
        # r+: changes can be written back to the file (else kept in memory, as anndata's "r").
        self._writable = writable
        # Changes are taken by the handle of the whole file, not by its views.
        self._editable = not native.is_view
        self._obs = self._var = self._obs_names = self._var_names = None
        # obs, var and uns as read, to hand over those that changed; obsm and varm values read
        # (keyed by (which, key)), likewise.
        self._tracked: dict[str, _edit.Tracked] = {}
        self._kept: dict = {}
        # The handle of the whole file (None: this is it), and a selection's uns as the handle
        # held it when the selection was made (None: as read), as anndata's views keep it.
        self._root = root
        self._uns_given = uns

    def _h(self):
        if self._closed:
            raise ValueError(f"{self._filename} is closed")
        return self._native

    # -- shape and names -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_obs, n_vars)`` of the selection."""
        return self._shape

    @property
    def n_obs(self) -> int:
        """The number of cells (rows)."""
        return self.shape[0]

    @property
    def n_vars(self) -> int:
        """The number of genes (columns)."""
        return self.shape[1]

    @property
    def obs_names(self) -> pd.Index:
        """The cells' names (obs's index), read without obs's columns."""
        if self._obs_names is None:
            self._obs_names = self._names("obs", self._obs)
        return self._obs_names

    @property
    def var_names(self) -> pd.Index:
        """The genes' names (var's index), read without var's columns."""
        if self._var_names is None:
            self._var_names = self._names("var", self._var)
        return self._var_names

    def _names(self, axis: str, frame: pd.DataFrame | None) -> pd.Index:
        """obs's or var's index, as anndata's `obs_names`: the frame's when it is read, else
        the names alone (the frame's columns are not read for them)."""
        if frame is not None:
            return frame.index
        h = self._h()
        return _index(h.names(axis), h.index_name(axis), h.index_na(axis))

    @property
    def obs(self) -> pd.DataFrame:
        """The cells' annotations, read on first use (changes are kept, see ``write``)."""
        if self._obs is None:
            self._obs = self._track("obs", _convert.value(self._h().obs(), self._filename, "obs"))
        return self._obs

    @obs.setter
    def obs(self, df) -> None:
        self._assign("obs", _edit.check_frame(df, self.n_obs, "obs"))

    @property
    def var(self) -> pd.DataFrame:
        """The genes' annotations, read on first use (changes are kept, see ``write``)."""
        if self._var is None:
            self._var = self._track("var", _convert.value(self._h().var(), self._filename, "var"))
        return self._var

    @var.setter
    def var(self, df) -> None:
        self._assign("var", _edit.check_frame(df, self.n_vars, "var"))

    @obs_names.setter
    def obs_names(self, names) -> None:
        self._rename("obs", names)

    @var_names.setter
    def var_names(self, names) -> None:
        self._rename("var", names)

    def _track(self, which: str, value):
        """`value` (obs, var or uns as read) kept to tell later whether it changed."""
        if self._editable:
            self._tracked[which] = _edit.Tracked(value)
        return value

    def _check_editable(self, what: str) -> None:
        if not self._editable:
            raise ValueError(
                f"cannot change {what} of {self._filename}: this is a view: change the handle "
                "of the whole file"
            )

    def _assign(self, which: str, value) -> None:
        self._check_editable(which)
        getattr(self, which)  # read it first: what was read is what the change is against
        self._tracked[which].value = value
        if which in ("obs", "var"):
            setattr(self, f"_{which}", value)
            setattr(self, f"_{which}_names", None)

    def _rename(self, axis: str, names) -> None:
        self._check_editable(f"{axis}_names")
        index = pd.Index(names)
        frame = getattr(self, axis)
        if len(index) != len(frame):
            raise ValueError(f"{len(index)} names for {len(frame)} {axis}")
        frame = frame.copy(deep=False)
        frame.index = index.astype(str) if index.dtype != object else index
        frame.index.name = getattr(self, axis).index.name
        self._assign(axis, frame)

    def obs_names_make_unique(self, join: str = "-") -> None:
        """As anndata's: repeated obs names become unique (``name``, ``name-1``, …, by
        anndata's ``make_index_unique``); an ``r+`` handle writes them back with ``write()``."""
        self._make_unique("obs", join)

    def var_names_make_unique(self, join: str = "-") -> None:
        """As anndata's: repeated var names become unique (see ``obs_names_make_unique``)."""
        self._make_unique("var", join)

    def _make_unique(self, axis: str, join: str) -> None:
        names = getattr(self, f"{axis}_names")
        if names.is_unique:
            return
        from anndata.utils import make_index_unique

        self._rename(axis, make_index_unique(names, join))

    def strings_to_categoricals(self, df: pd.DataFrame | None = None) -> None:
        """As anndata's: string columns of obs and var (or of ``df``) that repeat values become
        categoricals, in place; an ``r+`` handle writes them back with ``write()``."""
        if df is not None:
            _convert.strings_to_categoricals(df, inplace=True)
            return
        self._check_editable("obs and var")
        for axis in ("obs", "var"):
            _convert.strings_to_categoricals(getattr(self, axis), inplace=True)

    def rename_categories(self, key: str, categories) -> None:
        """As anndata's: renames the categories of the categorical column ``key`` of obs (or
        else var), and the fields of scanpy's record arrays in ``uns`` grouped by it; an ``r+``
        handle writes them back with ``write()``."""
        if isinstance(categories, Mapping):
            raise ValueError("Only list-like `categories` is supported.")
        self._check_editable("obs and var")
        if key in self.obs:
            frame = self.obs
        elif key in self.var:
            frame = self.var
        else:
            raise ValueError(f"{key} is neither in `.obs` nor in `.var`.")
        old = frame[key].cat.categories.tolist()
        # scanpy's results grouped by the column: record arrays whose fields are its categories.
        records = [
            (entry, name)
            for entry in self.uns.values()
            if isinstance(entry, Mapping)
            and isinstance(entry.get("params"), Mapping)
            and entry["params"].get("groupby") == key
            for name, value in entry.items()
            if isinstance(value, np.ndarray) and value.dtype.names is not None and list(value.dtype.names) == old
        ]
        if records:
            # numpy takes strings only as field names (anndata fails there too, after
            # renaming the column: here nothing is changed).
            for i, c in enumerate(categories):
                if not isinstance(c, str):
                    raise ValueError(f"item #{i} of names is of type {type(c).__name__} and not string")
        frame[key] = frame[key].cat.rename_categories(categories)
        # Changed in place: the mapping users hold stays uns.
        for entry, name in records:
            entry[name] = _renamed_fields(entry[name], categories)

    def transpose(self):
        """The transposed handle, lazy (:attr:`T`): anndata's ``transpose()`` without the copy
        (``.to_memory()`` makes one)."""
        return self.T

    def obs_keys(self) -> list[str]:
        """The names of obs's columns, from metadata (as anndata's ``obs_keys()``)."""
        return self._h().keys("obs")

    def var_keys(self) -> list[str]:
        """The names of var's columns, from metadata."""
        return self._h().keys("var")

    def obsm_keys(self) -> list[str]:
        """The keys of obsm."""
        return self._h().keys("obsm")

    def varm_keys(self) -> list[str]:
        """The keys of varm."""
        return self._h().keys("varm")

    def uns_keys(self) -> list[str]:
        """The keys of uns."""
        return self._h().keys("uns")

    @property
    def filename(self) -> Path:
        """The file the handle reads."""
        return Path(self._filename)

    @property
    def isbacked(self) -> bool:
        """Always ``True``: the matrices stay on disk."""
        return True

    @property
    def is_view(self) -> bool:
        """Whether the handle selects part of its file (``isview`` is the same)."""
        return bool(self._h().is_view)

    isview = is_view

    # -- elements --------------------------------------------------------------------------
    @property
    def X(self) -> BackedMatrix | None:
        """X as a lazy :class:`BackedMatrix`, or ``None`` when the file has none."""
        if not self._h().has_matrix("X"):
            return None
        return BackedMatrix(self._native, "X", None, self._filename)

    @property
    def raw(self) -> BackedRaw | None:
        """The file's raw (X and var of the genes before filtering), or ``None``."""
        return BackedRaw(self) if self._h().has_matrix("raw") else None

    def _matrix(self, layer: str | None) -> BackedMatrix:
        """X, or the layer ``layer``, lazy (what ``to_df`` and the vectors read)."""
        if layer is None:
            if self.X is None:
                raise ValueError(f"{self._filename} has no X (X is None)")
            return self.X
        if layer not in self._h().keys("layers"):
            raise KeyError(f"no layer {layer!r} in {self._filename}")
        return BackedMatrix(self._h(), "layers", layer, self._filename)

    def _entries(self, which: str) -> Mapping:
        kept = self._kept if self._editable else None
        return _edit.Entries(self._h(), which, self._filename, self._check_editable, kept)

    @property
    def layers(self) -> Mapping:
        """The layers: each value read (at the selection) on access."""
        return self._entries("layers")

    @property
    def obsm(self) -> Mapping:
        """The cells' multi-dimensional annotations (embeddings): read on access."""
        return self._entries("obsm")

    @property
    def varm(self) -> Mapping:
        """The genes' multi-dimensional annotations: read on access."""
        return self._entries("varm")

    @property
    def obsp(self) -> Mapping:
        """The cell × cell matrices (neighbour graphs): read on access."""
        return self._entries("obsp")

    @property
    def varp(self) -> Mapping:
        """The gene × gene matrices: read on access."""
        return self._entries("varp")

    @property
    def uns(self) -> dict:
        """``uns`` read whole (with ``backed="r+"``, read once and kept: changes to it are
        written back by ``write()``)."""
        if "uns" in self._tracked:
            return self._tracked["uns"].value
        return self._track("uns", _convert.value(self._h().uns(), self._filename, "uns"))

    @uns.setter
    def uns(self, value) -> None:
        if not isinstance(value, Mapping):
            raise TypeError(f"uns must be a mapping, not {type(value).__name__}")
        self._assign("uns", dict(value))

    @property
    def T(self):
        """A lazy transposed view (anndata's ``adata.T``): see :class:`TransposedBackedAnnData`."""
        from ._transposed import TransposedBackedAnnData

        self._h()
        return TransposedBackedAnnData(self)

    # -- selections ------------------------------------------------------------------------
    def __getitem__(self, key) -> BackedAnnData:
        obs, var = split_key(key)
        n_obs, n_vars = self.shape
        obs = _positions(obs, n_obs, lambda: self.obs_names, "obs")
        var = _positions(var, n_vars, lambda: self.var_names, "var")
        sel = (_compose(self._sel[0], obs, n_obs), _compose(self._sel[1], var, n_vars))
        self._push()  # a view of an r+ handle sees the changes made so far
        whole = self._whole()
        held = whole._held_uns()
        return BackedAnnData(
            self._h().slice(obs, var),
            self._filename,
            self._cache_mb,
            sel,
            root=whole,
            uns=None if held is None else _view_uns(whole, held, sel),
        )

    def _whole(self) -> BackedAnnData:
        """The handle of the whole file this one selects from."""
        return self if self._root is None else self._root

    def _held_uns(self) -> dict | None:
        """uns as held in Python (the whole file's handle: as changed there; a selection: as
        the whole file's handle held it when the selection was made, a shallow copy with the
        colours of unused categories dropped, as anndata's views), or None when it is as
        read."""
        if self._root is not None:
            return self._uns_given
        held = self._tracked.get("uns")
        return None if held is None else held.value

    def _pending_records(self) -> list:
        """The whole file's handle: the record arrays in entries of uns changed in Python, as
        ``(path, value)`` pairs (annpage does not build them: the writers add them with
        anndata's writer)."""
        tracked = self._tracked.get("uns")
        return [] if tracked is None else [r for found in tracked.records.values() for r in found]

    def _write_to(self, target, write_file, zarr: bool) -> None:
        """Writes the selection to ``target`` with ``write_file(path)`` (the native writer,
        after the whole file's handle has handed over its changes, strings made categoricals
        as anndata's writers make them: see below). The whole file's handle then adds the record arrays
        changed in Python; a selection that holds its own uns (see `_held_uns`) has it written
        by anndata's writer in place of the one the native handle holds now."""
        # A file's own handle converts its strings here (pandas' and natsort's rules); a
        # selection's are converted by the native writer (`strings_to_categoricals`) on the
        # rows it writes, as anndata decides on the view it writes.
        whole_converts = self._root is None or not hasattr(self._h(), "write_as")
        self._whole()._push(convert_strings=whole_converts)
        if self._root is None or self._uns_given is None:
            _records.write_with(target, self._pending_records(), write_file, zarr)
            return
        uns = self._uns_given

        def own_uns(group):
            from anndata.io import write_elem

            if "uns" in group:
                del group["uns"]
            write_elem(group, "uns", uns)

        _records.write(target, [], write_file, zarr, edit=own_uns)

    def to_memory(self):
        """The selection as an in-memory :class:`anndata.AnnData` (what
        ``anndata.read_h5ad(path)[obs, var].copy()`` gives). ``uns`` as held in Python, copied:
        values set there keep their types."""
        self._push()
        adata = _convert.anndata(self._h().to_memory(), self._filename)
        held = self._held_uns()
        if held is not None:
            adata.uns = copy.deepcopy(held)
        return adata

    def chunked_X(self, chunk_size: int = 1000):
        """Yields ``(X[start:end], start, end)`` over the rows, as anndata's ``chunked_X``;
        read through the cache, a window ahead."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self._require("X")
        for start, end, m in self._h().chunks("X", None, int(chunk_size)):
            yield _convert.value(m, self._filename, "X"), start, end

    def _require(self, which: str) -> None:
        """Fails naming the file when it has no X (layers name themselves)."""
        if which == "X" and not self._h().has_matrix("X"):
            raise ValueError(f"{self._filename} has no X")

    def batches(
        self,
        batch_size: int = 256,
        *,
        chunk_size: int = 512,
        preload_nchunks: int = 32,
        shuffle: bool = True,
        seed=None,
        drop_last: bool = False,
        layer=None,
    ):
        """Shuffled batches of X (or ``layer``) for a training loop: an iterable of
        ``(X_batch, rows)``, ``rows`` an int64 array of the batch's positions in this selection
        (row ``i`` of ``X_batch`` is row ``rows[i]``; ``obs_names[rows]`` names them), with
        ``len()`` the number of batches.

        As annbatch's loader, rows are drawn as random runs of ``chunk_size`` consecutive rows,
        ``preload_nchunks`` runs mixed and cut into batches: each block read serves many rows.
        Every row comes once per pass. ``seed`` is an int (the same batches every time) or a
        :class:`numpy.random.Generator` (a new order each call, reproducible from the
        generator's own seed); without it numpy's global generator draws one.
        ``shuffle=False`` gives the rows in order.
        """
        for name, v in (("batch_size", batch_size), ("chunk_size", chunk_size),
                        ("preload_nchunks", preload_nchunks)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, not {v!r}")
        if seed is None:
            seed = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))
        elif isinstance(seed, np.random.Generator):
            seed = int(seed.integers(0, 2**63 - 1))
        elif not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an int in [0, 2**64) or a numpy Generator, not {seed!r}")
        which, key = ("X", None) if layer is None else ("layers", layer)
        args = dict(batch_size=int(batch_size), run_rows=int(chunk_size),
                    preload_runs=int(preload_nchunks), shuffle=bool(shuffle), seed=int(seed),
                    drop_last=bool(drop_last))
        self._require(which)
        native = self._h().batches(which, key, args)
        return Batches(native, self._filename, which if key is None else f"{which}/{key}")

    def batches_of(self, order, *, layer=None):
        """The batches ``order`` of X (or ``layer``) in the order given, for a training loop
        whose sampler draws an epoch's batches up front: an iterable of ``(X_batch, rows)``
        as :meth:`batches` gives, ``X_batch`` equal to ``X[rows]``. Each batch is a key
        ``X[...]`` takes along obs (positions, negative from the end, a boolean mask, names).

        Batches are read ahead of the loop; where X is compressed, consecutive batches are
        read together (up to half the cache), each compressed chunk decoded once for all of
        them rather than once per batch.
        """
        n = self.n_obs
        rows = [_as_positions(_positions(b, n, lambda: self.obs_names, "obs"), n) for b in order]
        which, key = ("X", None) if layer is None else ("layers", layer)
        self._require(which)
        native = self._h().batches_of(which, key, rows)
        return Batches(native, self._filename, which if key is None else f"{which}/{key}")

    def chunk_X(self, select=1000, replace: bool = True):
        """A random sample of rows of X as a dense array, as anndata's ``chunk_X``: ``select``
        rows drawn with numpy's global generator (with or without ``replace``), or the rows of
        an array of positions."""
        if isinstance(select, (int, np.integer)):
            select = min(int(select), self.n_obs)
            choice = np.random.choice(self.n_obs, select, replace)
        elif isinstance(select, (np.ndarray, list, tuple)):
            choice = np.asarray(select)
        else:
            raise ValueError("select should be int or array")
        self._require("X")
        m = self.X[choice]
        return m.toarray() if sp.issparse(m) else np.asarray(m)

    def to_dask(self, chunk_rows: int = 10_000):
        """X as a :class:`dask.array.Array` of row blocks (scipy sparse or numpy, as stored).

        Each task opens the file itself (a handle and cache of its own, ``cache_mb`` as this
        handle's) and reads its rows through annpage, so the graph pickles and runs on
        ``dask.distributed`` worker processes.
        """
        import dask
        import dask.array as da

        if not isinstance(chunk_rows, (int, np.integer)) or isinstance(chunk_rows, bool) or chunk_rows < 1:
            raise ValueError(f"chunk_rows must be a positive int, not {chunk_rows!r}")
        chunk_rows = int(chunk_rows)
        x = self.X
        if x is None:
            raise ValueError(f"{self._filename} has no X")
        n_obs, n_vars = x.shape
        if x.format == "dense":
            meta = np.empty((0, 0), dtype=x.dtype)
        else:
            meta = (sp.csr_matrix if x.format == "csr" else sp.csc_matrix)((0, 0), dtype=x.dtype)
        read = dask.delayed(_read_block, pure=True)
        blocks = [
            da.from_delayed(
                read(self._filename, self._cache_mb, self._sel, start, min(start + chunk_rows, n_obs)),
                shape=(min(start + chunk_rows, n_obs) - start, n_vars),
                dtype=x.dtype,
                meta=meta,
            )
            for start in range(0, n_obs, max(1, int(chunk_rows)))
        ]
        if not blocks:
            return da.from_array(meta.toarray() if sp.issparse(meta) else meta).reshape((0, n_vars))
        return da.concatenate(blocks, axis=0)

    def write_h5ad(
        self,
        filename=None,
        compression: str | None = None,
        compression_opts: int | None = None,
        as_dense=(),
    ) -> None:
        """Writes the selection to ``filename``, streaming the matrices (``compression``:
        ``None``, ``"gzip"`` or ``"lzf"``; ``compression_opts``: gzip's level, 4 by default;
        ``as_dense`` (``"X"``, ``"raw/X"``): those written dense, streamed too). Without
        ``filename`` (an ``r+`` handle, as anndata's ``adata.write()``): writes the changes
        back to the file, string columns that repeat values made categoricals as anndata makes
        them."""
        if filename is not None:
            level = _gzip_level(compression, compression_opts)
            dense = sorted(_convert.as_dense(as_dense, self.raw is not None))
            if dense and not hasattr(self._h(), "write_as"):
                raise NotImplementedError("as_dense is not taken by a collection's write_h5ad")
            if hasattr(self._h(), "write_as"):
                # raw.var's strings made categoricals there (obs and var are, in Python).
                write = lambda path: self._h().write_as(  # noqa: E731
                    path, compression, level, dense=dense, strings_to_categoricals=True
                )
            else:  # a collection's handle has only this writer
                write = lambda path: self._h().write_h5ad(path, compression, level)  # noqa: E731
            self._write_to(filename, write, zarr=False)
            return
        if not self._writable:
            raise ValueError(
                f"cannot write the changes back to {self._filename}: "
                + ("this is a view" if not self._editable else "the file is open read-only (read it with backed='r+')")
            )
        self._push(convert_strings=True)
        records = self._pending_records()
        if not records:
            self._h().flush()
            return
        self._h().flush(lambda path: _records.add(path, records))
        self._tracked["uns"].records.clear()  # in the file now

    write = write_h5ad

    def copy(self, filename=None) -> BackedAnnData:
        """As anndata's ``copy`` in backed mode: the selection written to ``filename`` (an
        ``.h5ad`` file, streamed) and opened backed there, in this handle's mode. Without
        ``filename`` a ``ValueError``, as anndata's (``to_memory()`` reads it into memory)."""
        if filename is None:
            raise ValueError(
                "To copy an AnnData object in backed mode, pass a filename: "
                "`.copy(filename='myfilename.h5ad')`. To load the object into memory, use "
                "`.to_memory()`."
            )
        self.write_h5ad(filename)
        from . import read_h5ad

        mode = "r+" if self._whole()._writable else "r"
        return read_h5ad(filename, backed=mode, cache_mb=self._cache_mb)

    def _push(self, convert_strings: bool = False) -> None:
        """Hands the changes made to obs, var and uns in Python over to the native handle
        (before anything reads what they change). ``convert_strings`` (before a write): string
        columns of obs and var that repeat values become categoricals, as anndata's writers
        make them, in frames read for it if they were not yet."""
        if not self._editable:
            return
        if convert_strings:
            self.obs, self.var  # noqa: B018 - read (and tracked) to be converted
        h = self._h()
        for which, tracked in self._tracked.items():
            tracked.push(h, which, convert_strings)
        _edit.push_kept(h, self._kept)

    def write_gene_major(self, filename, memory_mb: int = 256) -> None:
        """Writes ``X`` at the selection to ``filename`` as a CSC matrix (each gene's values
        stored together; the file holds X and the obs/var names), out of core: one pass counts
        each gene's values, then each pass gathers the genes whose values fit in ``memory_mb``.
        Reading a gene column from the copy reads that gene only, where a CSR ``X`` needs a pass
        over every cell (``annpage.serve(..., index=DIR)`` keeps such copies)."""
        self._h().write_gene_major(str(filename), int(memory_mb) << 20)

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
        """Writes the selection to the Zarr store ``store``, streaming the matrices (the
        arguments of :func:`annpage.write_zarr`)."""
        from . import _zarr_args

        h = self._h()
        x = self.X
        dense = x is not None and x.format == "dense"
        zarr = _zarr_args(zarr_format, chunk_rows, shard_rows, chunks, self.shape if dense else None)
        if hasattr(h, "write_as"):
            write = lambda path: h.write_as(path, compression, None, zarr, strings_to_categoricals=True)  # noqa: E731
        else:  # a collection's handle has only this writer
            write = lambda path: h.write_zarr(path, compression, *zarr)  # noqa: E731
        self._write_to(store, write, zarr=True)

    def write_loom(self, filename, *, write_obsm_varm: bool = False) -> None:
        """Writes the selection as a loom file (what :func:`annpage.write_loom` writes for
        ``to_memory()``), X and the layers read a block at a time through the cache."""
        self._push()
        self._h().write_loom(os.fspath(filename), bool(write_obsm_varm))

    def write_csvs(self, dirname, *, skip_data: bool = True, sep: str = ",") -> None:
        """Writes the selection as CSV files into ``dirname`` (what :func:`annpage.write_csvs`
        writes for ``to_memory()``), X and the dense obsm/varm arrays read a block of rows at
        a time. With uns changed in Python, read into memory first."""
        from . import write_csvs

        _check_sep(sep)
        if self._held_uns() is not None:
            write_csvs(self.to_memory(), dirname, skip_data=skip_data, sep=sep)
            return
        self._push()
        self._h().write_csvs(os.fspath(dirname), bool(skip_data), sep)

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Releases the file; the handle cannot be used afterwards. An ``r+`` handle first
        writes its changes back (see ``write``); if that fails, the file is left as it was,
        the changes are dropped, the handle is closed all the same and the error raised."""
        if self._closed:
            return
        try:
            if self._writable:
                try:
                    self.write()
                except BaseException:
                    self._native.discard()
                    raise
        finally:
            self._closed = True
            self._native = None

    def __del__(self):
        # Dropped without close(): an r+ handle writes nothing, as anndata's (its native
        # handle would write its pending changes when dropped).
        if getattr(self, "_writable", False) and not getattr(self, "_closed", True):
            try:
                self._native.discard()
            except Exception:
                pass

    def __enter__(self) -> BackedAnnData:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return f"BackedAnnData object (closed) backed at {self._filename!r}"
        n_obs, n_vars = self.shape
        kind = "View of BackedAnnData" if self.is_view else "BackedAnnData"
        lines = [f"{kind} object with n_obs × n_vars = {n_obs} × {n_vars} backed at {self._filename!r}"]
        for name in ("obs", "var"):
            cols = list(getattr(self, name).columns)
            if cols:
                lines.append(f"    {name}: " + ", ".join(repr(c) for c in cols))
        for name in ("uns", "obsm", "varm", "layers", "obsp", "varp"):
            keys = self._native.keys(name)
            if keys:
                lines.append(f"    {name}: " + ", ".join(repr(k) for k in keys))
        return "\n".join(lines)
