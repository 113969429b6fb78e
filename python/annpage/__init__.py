"""annpage from Python: read `.h5ad` files with annpage's out-of-core engine.

``annpage.read_h5ad(path)`` returns an in-memory :class:`anndata.AnnData` equal to what
``anndata.read_h5ad(path)`` returns; ``annpage.read_h5ad(path, backed="r")`` a lazy
:class:`BackedAnnData` that selects, iterates and streams within a byte budget. Errors are
:class:`AnnpageError` subclasses.
"""

from __future__ import annotations

import os

from . import _convert
from ._backed import BackedAnnData, BackedMatrix
from ._annpage import (
    Backed as _Backed,
    AnnpageError,
    FormatError,
    SelectionError,
    ShapeError,
    UnsupportedError,
    read_elements as _read_elements,
)

__all__ = [
    "AnnpageError",
    "BackedAnnData",
    "BackedMatrix",
    "FormatError",
    "SelectionError",
    "ShapeError",
    "UnsupportedError",
    "read_h5ad",
]


def read_h5ad(path, backed=None, cache_mb=1024, threads=None):
    """Reads an `.h5ad` file with annpage.

    ``backed=None``: the whole file as an in-memory :class:`anndata.AnnData`, equal to
    ``anndata.read_h5ad(path)``. ``backed="r"``: a lazy :class:`BackedAnnData` reading through
    a cache of ``cache_mb`` MiB on ``threads`` reader threads (default one per core).
    """
    path = os.fspath(path)
    if backed is None:
        return _convert.anndata(_read_elements(path), path)
    if backed == "r":
        return BackedAnnData(_Backed.open(path, int(cache_mb) << 20, threads), path, int(cache_mb))
    if backed in ("r+", True):
        raise NotImplementedError("backed='r+' is not available from Python yet: use backed='r'")
    raise ValueError(f"backed must be None or 'r', not {backed!r}")
