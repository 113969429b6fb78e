"""Type stubs of the annpage package."""

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from os import PathLike
from pathlib import Path
from typing import Any, Literal, overload

import anndata
import numpy as np
import pandas as pd

class AnnpageError(Exception):
    """Any error annpage reports; the message names the file, the element and the problem."""

class FormatError(AnnpageError):
    """A file that does not follow the AnnData on-disk format."""

class ShapeError(AnnpageError):
    """Shapes that must agree do not."""

class SelectionError(AnnpageError, ValueError):
    """A selection that cannot be used (out of range, unknown name)."""

class UnsupportedError(AnnpageError):
    """A valid construct annpage does not handle."""

class BackedMatrix:
    """A lazy matrix of a backed file: rows and columns read on demand."""

    shape: tuple[int, int]
    dtype: np.dtype
    format: Literal["csr", "csc", "dense"]
    @property
    def ndim(self) -> int: ...
    def __getitem__(self, key: Any) -> Any: ...
    def to_memory(self) -> Any: ...

class BackedRaw:
    """``raw`` of a :class:`BackedAnnData` (anndata's ``Raw``): X read on demand, var on first use."""

    @property
    def X(self) -> BackedMatrix: ...
    @property
    def var(self) -> pd.DataFrame: ...
    @property
    def varm(self) -> dict[str, Any]: ...
    @property
    def var_names(self) -> pd.Index: ...
    @property
    def obs_names(self) -> pd.Index: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    @property
    def n_obs(self) -> int: ...
    @property
    def n_vars(self) -> int: ...
    def to_adata(self) -> anndata.AnnData: ...

class Batches(Iterator[tuple[Any, np.ndarray]]):
    """Batches ``(X_batch, rows)`` of ``BackedAnnData.batches`` or ``batches_of``; ``len()`` batches."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Batches: ...
    def __next__(self) -> tuple[Any, np.ndarray]: ...

class BackedAnnData:
    """A lazy `.h5ad` file (or a selection of it) read through annpage's chunk manager; with
    ``backed="r+"`` its annotations change and ``write()`` writes them back."""

    @property
    def shape(self) -> tuple[int, int]: ...
    @property
    def n_obs(self) -> int: ...
    @property
    def n_vars(self) -> int: ...
    @property
    def obs_names(self) -> pd.Index: ...
    @obs_names.setter
    def obs_names(self, names: Iterable[Any]) -> None: ...
    @property
    def var_names(self) -> pd.Index: ...
    @var_names.setter
    def var_names(self, names: Iterable[Any]) -> None: ...
    @property
    def obs(self) -> pd.DataFrame: ...
    @obs.setter
    def obs(self, df: pd.DataFrame) -> None: ...
    @property
    def var(self) -> pd.DataFrame: ...
    @var.setter
    def var(self, df: pd.DataFrame) -> None: ...
    def obs_keys(self) -> list[str]: ...
    def var_keys(self) -> list[str]: ...
    def obsm_keys(self) -> list[str]: ...
    def uns_keys(self) -> list[str]: ...
    @property
    def filename(self) -> Path: ...
    @property
    def isbacked(self) -> bool: ...
    @property
    def is_view(self) -> bool: ...
    @property
    def X(self) -> BackedMatrix | None: ...
    @property
    def raw(self) -> BackedRaw | None: ...
    @property
    def layers(self) -> MutableMapping[str, Any]: ...
    @property
    def obsm(self) -> MutableMapping[str, Any]: ...
    @property
    def varm(self) -> MutableMapping[str, Any]: ...
    @property
    def obsp(self) -> MutableMapping[str, Any]: ...
    @property
    def varp(self) -> MutableMapping[str, Any]: ...
    @property
    def uns(self) -> dict[str, Any]: ...
    @uns.setter
    def uns(self, value: Mapping[str, Any]) -> None: ...
    def __getitem__(self, key: Any) -> BackedAnnData: ...
    def to_memory(self) -> anndata.AnnData: ...
    @property
    def T(self) -> TransposedBackedAnnData: ...
    def chunked_X(self, chunk_size: int = 1000) -> Iterator[tuple[Any, int, int]]: ...
    def batches(
        self,
        batch_size: int = 256,
        *,
        chunk_size: int = 512,
        preload_nchunks: int = 32,
        shuffle: bool = True,
        seed: int | np.random.Generator | None = None,
        drop_last: bool = False,
        layer: str | None = None,
    ) -> Batches: ...
    def batches_of(self, order: Iterable[Any], *, layer: str | None = None) -> Batches: ...
    def chunk_X(self, select: int | np.ndarray | list[int] = 1000, replace: bool = True) -> np.ndarray: ...
    def to_dask(self, chunk_rows: int = 10_000) -> Any: ...
    def write_h5ad(self, filename: str | PathLike[str] | None = None, compression: Literal["gzip", "lzf"] | None = None) -> None: ...
    def write(self, filename: str | PathLike[str] | None = None, compression: Literal["gzip", "lzf"] | None = None) -> None: ...
    def write_gene_major(self, filename: str | PathLike[str], memory_mb: int = 256) -> None: ...
    def write_zarr(
        self,
        store: str | PathLike[str],
        *,
        zarr_format: Literal[2, 3] = 3,
        chunk_rows: int | None = None,
        shard_rows: int | None = None,
        compression: Literal["gzip", "zstd"] | None = None,
    ) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> BackedAnnData: ...
    def __exit__(self, *exc: object) -> None: ...

class BackedCollection(BackedAnnData):
    """Several `.h5ad` files read as one lazy AnnData along obs (``anndata.concat`` of them)."""

    @property
    def filenames(self) -> list[str]: ...
    def __getitem__(self, key: Any) -> BackedCollection: ...

def read_collection(
    files: list[str | PathLike[str]] | dict[str, str | PathLike[str]],
    *,
    join: Literal["inner", "outer"] = "inner",
    merge: Literal["same", "unique", "first", "only"] | None = None,
    uns_merge: Literal["same", "unique", "first", "only"] | None = None,
    label: str | None = None,
    keys: list[str] | None = None,
    index_unique: str | None = None,
    fill_value: float | None = None,
    pairwise: bool = False,
    cache_mb: int = 1024,
    threads: int | None = None,
) -> BackedCollection: ...

@overload
def read_h5ad(path: str | PathLike[str], backed: None = None, cache_mb: int = 1024, threads: int | None = None) -> anndata.AnnData: ...
@overload
def read_h5ad(path: str | PathLike[str], backed: Literal["r", "r+"] | bool, cache_mb: int = 1024, threads: int | None = None) -> BackedAnnData: ...

@overload
def read_zarr(store: str | PathLike[str], backed: None = None, cache_mb: int = 1024, threads: int | None = None) -> anndata.AnnData: ...
@overload
def read_zarr(store: str | PathLike[str], backed: Literal["r"], cache_mb: int = 1024, threads: int | None = None) -> BackedAnnData: ...

def concat_on_disk(
    in_files: list[str | PathLike[str]] | dict[str, str | PathLike[str]],
    out_file: str | PathLike[str],
    *,
    axis: Literal[0, 1, "obs", "var"] = 0,
    join: Literal["inner", "outer"] = "inner",
    merge: Literal["same", "unique", "first", "only"] | None = None,
    uns_merge: Literal["same", "unique", "first", "only"] | None = None,
    label: str | None = None,
    keys: list[str] | None = None,
    index_unique: str | None = None,
    fill_value: float | None = None,
    pairwise: bool = False,
    compression: Literal["gzip", "lzf"] | None = None,
    cache_mb: int = 1024,
) -> None: ...

def read_mtx(filename: str | PathLike[str], dtype: Literal["float32", "float64", "int32", "int64"] = "float32") -> anndata.AnnData: ...
def read_10x_mtx(
    path: str | PathLike[str],
    *,
    var_names: Literal["gene_symbols", "gene_ids"] = "gene_symbols",
    make_unique: bool = True,
    gex_only: bool = True,
    prefix: str | None = None,
) -> anndata.AnnData: ...
def read_10x_h5(filename: str | PathLike[str], *, genome: str | None = None, gex_only: bool = True) -> anndata.AnnData: ...
def read_csv(
    filename: str | PathLike[str],
    delimiter: str | None = ",",
    first_column_names: bool | None = None,
    dtype: Literal["float32"] = "float32",
) -> anndata.AnnData: ...
def read_loom(
    filename: str | PathLike[str],
    *,
    sparse: bool = True,
    X_name: str = "spliced",
    obs_names: str = "CellID",
    var_names: str = "Gene",
) -> anndata.AnnData: ...
def write_h5ad(
    adata: anndata.AnnData,
    filename: str | PathLike[str],
    compression: Literal["gzip", "lzf"] | None = None,
    convert_strings_to_categoricals: bool = True,
) -> None: ...
def write_zarr(
    adata: anndata.AnnData,
    store: str | PathLike[str],
    *,
    zarr_format: Literal[2, 3] = 3,
    chunk_rows: int | None = None,
    shard_rows: int | None = None,
    compression: Literal["gzip", "zstd"] | None = None,
    convert_strings_to_categoricals: bool = True,
) -> None: ...
def concat(
    adatas: list[anndata.AnnData] | dict[str, anndata.AnnData],
    *,
    axis: Literal[0, 1, "obs", "var"] = 0,
    join: Literal["inner", "outer"] = "inner",
    merge: Literal["same", "unique", "first", "only"] | None = None,
    uns_merge: Literal["same", "unique", "first", "only"] | None = None,
    label: str | None = None,
    keys: list[str] | None = None,
    index_unique: str | None = None,
    fill_value: float | None = None,
    pairwise: bool = False,
) -> anndata.AnnData: ...

class TransposedMatrix:
    """A matrix of a transposed view: `X[rows, cols]` reads the file's `X[cols, rows]`."""

    shape: tuple[int, int]
    dtype: np.dtype
    format: Literal["csr", "csc", "dense"]
    @property
    def ndim(self) -> int: ...
    def __getitem__(self, key: Any) -> Any: ...
    def to_memory(self) -> Any: ...

class TransposedBackedAnnData:
    """`b.T`: a lazy transposed view of a BackedAnnData (anndata's `adata.T`)."""

    @property
    def T(self) -> BackedAnnData: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    @property
    def n_obs(self) -> int: ...
    @property
    def n_vars(self) -> int: ...
    @property
    def obs_names(self) -> pd.Index: ...
    @property
    def var_names(self) -> pd.Index: ...
    @property
    def obs(self) -> pd.DataFrame: ...
    @property
    def var(self) -> pd.DataFrame: ...
    @property
    def X(self) -> TransposedMatrix | None: ...
    @property
    def layers(self) -> Mapping[str, Any]: ...
    @property
    def obsm(self) -> Mapping[str, Any]: ...
    @property
    def varm(self) -> Mapping[str, Any]: ...
    @property
    def obsp(self) -> Mapping[str, Any]: ...
    @property
    def varp(self) -> Mapping[str, Any]: ...
    @property
    def uns(self) -> dict[str, Any]: ...
    def __getitem__(self, key: Any) -> TransposedBackedAnnData: ...
    def to_memory(self) -> anndata.AnnData: ...
    def chunked_X(self, chunk_size: int = 1000) -> Iterator[tuple[Any, int, int]]: ...

class Server:
    datasets: list[str]
    @property
    def address(self) -> str: ...
    @property
    def url(self) -> str: ...
    def stop(self) -> None: ...
    def __enter__(self) -> Server: ...
    def __exit__(self, *exc: object) -> None: ...

def serve(
    datasets: str
    | PathLike[str]
    | list[str | PathLike[str]]
    | dict[str, str | PathLike[str] | list[str | PathLike[str]]],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    cache_mb: int = 1024,
    response_mb: int = 128,
    threads: int | None = None,
    index: str | PathLike[str] | None = None,
    log: bool = False,
    join: Literal["inner", "outer"] = "inner",
    merge: Literal["same", "unique", "first", "only"] | None = None,
    uns_merge: Literal["same", "unique", "first", "only"] | None = None,
    label: str | None = None,
    keys: list[str] | None = None,
    index_unique: str | None = None,
    fill_value: float | None = None,
    pairwise: bool = False,
) -> Server: ...
