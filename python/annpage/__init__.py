"""annpage from Python: read `.h5ad` files with annpage's out-of-core engine.

``annpage.read_h5ad(path)`` returns an in-memory :class:`anndata.AnnData` equal to what
``anndata.read_h5ad(path)`` returns; errors are :class:`AnnpageError` subclasses.
"""

from __future__ import annotations

import os

from . import _convert
from ._annpage import (
    AnnpageError,
    FormatError,
    SelectionError,
    ShapeError,
    UnsupportedError,
    read_elements as _read_elements,
)

__all__ = [
    "AnnpageError",
    "FormatError",
    "SelectionError",
    "ShapeError",
    "UnsupportedError",
    "read_h5ad",
]


def read_h5ad(path, backed=None):
    """Reads an `.h5ad` file into an in-memory :class:`anndata.AnnData`, read by annpage.

    ``backed`` must be ``None`` (the lazy backed mode is not part of this version).
    """
    if backed is not None:
        raise NotImplementedError("backed mode is not available yet: use backed=None")
    path = os.fspath(path)
    return _convert.anndata(_read_elements(path), path)
