"""anndata's ``to_df``, ``obs_vector`` and ``var_vector`` (and ``len``) on lazy handles: only
what they return is read (one variable's column of X through the gene-column path)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


class Vectors:
    """Methods of a lazy AnnData (a :class:`BackedAnnData` or its transpose) built on its
    ``obs``, ``var``, names and ``_matrix(layer)`` (X or a layer, lazy)."""

    def __len__(self) -> int:
        return self.n_obs

    def to_df(self, layer: str | None = None) -> pd.DataFrame:
        """X (or ``layers[layer]``) as a dense frame indexed by ``obs_names`` with
        ``var_names`` as columns (anndata's ``to_df``): the whole matrix is read."""
        x = self._matrix(layer)[:, :]
        if sp.issparse(x):
            x = x.toarray()
        return pd.DataFrame(x, index=self.obs_names, columns=self.var_names)

    def obs_vector(self, k: str, *, layer: str | None = None) -> np.ndarray:
        """The values of ``k`` for every observation (anndata's ``obs_vector``): an ``obs``
        column, or the variable ``k``'s column of X (or ``layer``)."""
        return self._vector(k, "obs", "var", layer)

    def var_vector(self, k: str, *, layer: str | None = None) -> np.ndarray:
        """The values of ``k`` for every variable: a ``var`` column, or the observation
        ``k``'s row of X (or ``layer``)."""
        return self._vector(k, "var", "obs", layer)

    def _vector(self, k: str, coldim: str, idxdim: str, layer: str | None):
        frame = getattr(self, coldim)
        names = getattr(self, f"{idxdim}_names")
        in_col, in_idx = k in frame.columns, k in names
        if in_col and in_idx:
            raise ValueError(f"Key {k} could be found in both .{idxdim}_names and .{coldim}.columns")
        if not (in_col or in_idx):
            raise KeyError(f"Could not find key {k} in .{idxdim}_names or .{coldim}.columns.")
        if in_col:
            return frame[k].values
        at = names.get_loc(k)
        if not isinstance(at, (int, np.integer)):
            raise KeyError(f"{k} names more than one of .{idxdim}_names")
        m = self._matrix(layer)
        a = m[:, [int(at)]] if idxdim == "var" else m[[int(at)], :]
        if sp.issparse(a):
            a = a.toarray()
        return np.ravel(a)
