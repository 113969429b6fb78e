"""Random sets of AnnData objects and `concat` arguments, for the differential tests of
`annpage concat` against `anndata.concat` (tests/interop/test_concat.py).

`make_case(seed)` builds 1-5 small objects from a seeded generator: overlapping, shuffled gene
sets (sometimes identical, sometimes empty), sparse (CSR, CSC) and dense X of several dtypes,
layers that some objects lack, obs/var columns of every kind anndata writes (categoricals
with different and unused categories, ordered ones, nullable integers and booleans, strings
unique or repeated, numbers of several dtypes, columns some objects lack), obsm arrays of
different widths, sparse obsm and obsm data frames, obsp/varp, varm, uns dicts that conflict,
and raw; plus the arguments of one `concat` call. Per-gene values come from one table, so that
objects often agree on them and the merge strategies have something to keep.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

def anndata_concat(adatas, **kwargs) -> ad.AnnData:
    """`anndata.concat`, with anndata 0.13's rules applied where an older anndata is installed:
    the other axis's bool columns that the merge's reindexing gives missing values are pandas'
    nullable booleans (0.12 leaves object columns it cannot write), and dense arrays an outer
    join fills have numpy's promotion of their dtype and the fill's (0.12: pandas' `take`);
    annpage follows 0.13."""
    out = ad.concat(adatas, **kwargs)
    if tuple(int(p) for p in ad.__version__.split(".")[:2]) >= (0, 13):
        return out
    _dense_fills_as_013(out, adatas, kwargs)
    other = "var" if kwargs.get("axis", 0) in (0, "obs") else "obs"
    frame = getattr(out, other)
    for name in frame.columns:
        values = frame[name]
        present = values.dropna()
        if values.dtype == object and len(present) < len(values) and len(present) > 0 and all(
            isinstance(v, (bool, np.bool_)) for v in present
        ):
            frame[name] = values.astype("boolean")
    return out


def _dense_fills_as_013(out, adatas, kwargs) -> None:
    """anndata 0.13 fills a dense array with `where(missing, asarray(fill), taken)`: an input's
    piece that is filled takes numpy's promotion of its dtype and the fill's (float32 with NaN:
    float64; int32 with 7: int64), a piece lacking the element is the fill's dtype, and the
    pieces stack with numpy's `result_type`. 0.12's result (pandas' `take`) holds the same
    values: its dense arrays are cast to that dtype."""
    if kwargs.get("join", "inner") != "outer":
        return
    fill = kwargs.get("fill_value")
    fill_dtype = np.asarray(np.nan if fill is None else fill).dtype
    along_obs = kwargs.get("axis", 0) in (0, "obs")
    other = "var" if along_obs else "obs"
    union = len(getattr(out, f"{other}_names"))

    def expected(pieces_of):
        dtypes = []
        for a, m in pieces_of:
            if m is None:
                dtypes.append(fill_dtype)
            elif sparse.issparse(m) or not isinstance(m, np.ndarray):
                return None
            else:
                filled = m.shape[1 if along_obs else 0] < union if a is not None else False
                dtypes.append(np.promote_types(m.dtype, fill_dtype) if filled else m.dtype)
        return np.result_type(*dtypes) if dtypes else None

    def cast(m, dtype):
        return m if dtype is None or not isinstance(m, np.ndarray) or m.dtype == dtype else m.astype(dtype)

    if out.X is not None:
        out.X = cast(out.X, expected([(a, a.X) for a in adatas]))
    if out.raw is not None and all(a.raw is not None for a in adatas):
        # raw.X is aligned on raw's own genes along obs, on the joined cells along var.
        union_raw = len(out.raw.var_names) if along_obs else len(out.obs_names)
        dtypes = []
        for a in adatas:
            m = a.raw.X
            if sparse.issparse(m) or not isinstance(m, np.ndarray):
                dtypes = []
                break
            short = (m.shape[1] if along_obs else m.shape[0]) < union_raw
            dtypes.append(np.promote_types(m.dtype, fill_dtype) if short else m.dtype)
        if dtypes and isinstance(out.raw.X, np.ndarray) and out.raw.X.dtype != np.result_type(*dtypes):
            out.raw = ad.AnnData(out.raw.X.astype(np.result_type(*dtypes)), obs=out.obs[[]], var=out.raw.var, varm=dict(out.raw.varm))
    for key in list(out.layers.keys()):
        out.layers[key] = cast(out.layers[key], expected([(a, a.layers.get(key)) for a in adatas]))
    aligned = "obsm" if along_obs else "varm"
    for key in list(getattr(out, aligned).keys()):
        values = getattr(out, aligned)[key]
        if not isinstance(values, np.ndarray) or values.ndim != 2:
            continue
        pieces = [getattr(a, aligned).get(key) for a in adatas]
        if any(p is not None and not isinstance(p, np.ndarray) for p in pieces):
            continue
        width = values.shape[1]
        dtypes = [
            fill_dtype if p is None else (np.promote_types(p.dtype, fill_dtype) if p.shape[1] < width else p.dtype)
            for p in pieces
        ]
        getattr(out, aligned)[key] = cast(values, np.result_type(*dtypes))
    # The elements merged along the other axis (varm when concatenating cells) are reindexed to
    # the joined names with NaN: a kept value that was filled is float64 under 0.13's rule.
    alt = "varm" if along_obs else "obsm"
    for key in list(getattr(out, alt).keys()):
        value = getattr(out, alt)[key]
        source = next((getattr(a, alt)[key] for a in adatas if key in getattr(a, alt)), None)
        if not isinstance(value, np.ndarray) or not isinstance(source, np.ndarray):
            continue
        if source.shape[0] < value.shape[0]:
            getattr(out, alt)[key] = cast(value, np.promote_types(source.dtype, np.float64))


#: The gene universe: names that sort differently as text and naturally.
GENES = [f"g{i}" for i in range(10)] + ["gene10", "gene2", "MT-1", "Zfp"]
CELL_TYPES = ["B", "T", "NK", "Mono", "DC", "pDC10", "pDC2"]


@dataclass
class Case:
    """The inputs of one differential test and the arguments of `concat`."""

    seed: int
    adatas: list[ad.AnnData]
    kwargs: dict = field(default_factory=dict)

    def cli_args(self) -> list[str]:
        """The `annpage concat` options for `kwargs`."""
        args: list[str] = []
        kw = self.kwargs
        args += ["--axis", kw.get("axis", "obs"), "--join", kw.get("join", "inner")]
        for name in ("merge", "uns_merge"):
            if kw.get(name) is not None:
                args += [f"--{name.replace('_', '-')}", kw[name]]
        if kw.get("label") is not None:
            args += ["--label", kw["label"]]
        if kw.get("keys") is not None:
            args += ["--keys", ",".join(kw["keys"])]
        if kw.get("index_unique") is not None:
            args += [f"--index-unique={kw['index_unique']}"]
        if kw.get("fill_value") is not None:
            args += [f"--fill-value={kw['fill_value']!r}"]
        if kw.get("pairwise"):
            args.append("--pairwise")
        return args


def _gene_table(rng: np.random.Generator) -> pd.DataFrame:
    """Per-gene values every object draws from (so that merges find equal columns)."""
    n = len(GENES)
    return pd.DataFrame(
        {
            "symbol": [g.upper() + "_s" for g in GENES],
            "highly_variable": rng.random(n) < 0.5,
            "means": rng.random(n).astype(np.float64),
            "n_cells": rng.integers(0, 100, n),
            "kind": pd.Categorical(rng.choice(["protein", "lnc", "mt"], n)),
        },
        index=GENES,
    )


def _matrix(rng: np.random.Generator, shape: tuple[int, int], kind: str, dtype: str):
    """A random matrix of `kind` (csr, csc, dense) with about a third non-zero."""
    dense = rng.integers(1, 9, size=shape) * (rng.random(shape) < 0.35)
    dense = dense.astype(dtype)
    if kind == "dense":
        return dense
    m = sparse.csr_matrix(dense) if kind == "csr" else sparse.csc_matrix(dense)
    return m


def _categorical(rng: np.random.Generator, n: int, ordered: bool = False) -> pd.Categorical:
    k = int(rng.integers(1, len(CELL_TYPES) + 1))
    cats = list(rng.choice(CELL_TYPES, k, replace=False))
    if ordered and rng.random() < 0.6:
        cats = CELL_TYPES[:4]  # often the same ordered categories everywhere
    codes = rng.integers(-1 if rng.random() < 0.3 else 0, len(cats), n)
    # Some categories stay unused: only the first few are drawn from.
    if rng.random() < 0.5 and len(cats) > 1:
        codes = np.minimum(codes, len(cats) - 2)
    return pd.Categorical.from_codes(codes, categories=cats, ordered=ordered)


def _obs(rng: np.random.Generator, names: list[str], tag: str) -> pd.DataFrame:
    """obs with a random subset of the column kinds."""
    n = len(names)
    cols: dict[str, object] = {}
    maybe = lambda p=0.65: rng.random() < p  # noqa: E731
    if maybe():
        cols["cell_type"] = _categorical(rng, n)
    if maybe(0.3):
        cols["stage"] = _categorical(rng, n, ordered=True)
    if maybe():
        cols["n_genes"] = rng.integers(0, 500, n).astype(rng.choice(["int64", "int32"]))
    if maybe():
        score = rng.random(n).astype(rng.choice(["float32", "float64"]))
        if n and maybe(0.3):
            score[0] = np.nan
        cols["score"] = score
    if maybe(0.5):
        cols["is_good"] = rng.random(n) < 0.5
    if maybe(0.4):
        cols["n_int"] = pd.array(
            [None if rng.random() < 0.2 else int(v) for v in rng.integers(0, 9, n)], dtype="Int64"
        )
    if maybe(0.4):
        cols["n_bool"] = pd.array(
            [None if rng.random() < 0.2 else bool(v) for v in rng.random(n) < 0.5], dtype="boolean"
        )
    if maybe(0.5):
        # Unique strings stay strings; repeated ones are written as categoricals.
        cols["sample"] = [f"{tag}_{name}" for name in names] if maybe() else [tag] * n
    if maybe(0.3):
        # One name, several dtypes across objects: pandas' promotion rules decide.
        dtype = str(rng.choice(["int64", "int8", "uint16", "float32", "bool"]))
        cols["value"] = (rng.integers(0, 3, n) > 0) if dtype == "bool" else rng.integers(0, 9, n).astype(dtype)
    if maybe(0.25):
        # Numeric categories (as leiden clusters read from other tools).
        cols["cluster"] = pd.Categorical(rng.integers(0, 4, n), categories=list(range(int(rng.integers(4, 12)))))
    if maybe(0.15):
        cols["note"] = pd.array([f"{tag}{i}" for i in range(n)], dtype="string")
    frame = pd.DataFrame(cols, index=names)
    if maybe(0.3):
        frame.index.name = "cell" if maybe(0.8) else "barcode"
    return frame


def _var(rng: np.random.Generator, genes: list[str], table: pd.DataFrame) -> pd.DataFrame:
    """var with per-gene columns from `table` (sometimes redrawn, so objects disagree)."""
    cols: dict[str, object] = {}
    for col in table.columns:
        if rng.random() < 0.6:
            values = table.loc[genes, col]
            if rng.random() < 0.25:
                values = values.sample(frac=1.0, random_state=int(rng.integers(1 << 30)))
            cols[col] = values.to_numpy() if col != "kind" else pd.Categorical(values)
    frame = pd.DataFrame(cols, index=genes)
    if rng.random() < 0.2:
        frame.index.name = "gene"
    return frame


def _uns(rng: np.random.Generator) -> dict:
    uns: dict[str, object] = {}
    if rng.random() < 0.7:
        uns["method"] = str(rng.choice(["leiden", "louvain"]))
    if rng.random() < 0.7:
        uns["n_pcs"] = int(rng.choice([30, 50]))
    if rng.random() < 0.5:
        uns["colors"] = np.array(["#aa0000", "#00bb00", "#0000cc"][: int(rng.integers(1, 4))])
    if rng.random() < 0.6:
        nested: dict[str, object] = {"version": float(rng.choice([1.0, 1.5]))}
        if rng.random() < 0.5:
            nested["params"] = {"k": int(rng.choice([10, 15])), "metric": "euclidean"}
        if rng.random() < 0.5:
            nested["weights"] = np.arange(3, dtype=rng.choice(["int64", "int32"]))
        uns["neighbors"] = nested
    if rng.random() < 0.2:
        # The same key as a scalar in some objects and a dict in others.
        uns["pca"] = {"variance": np.array([0.5, 0.25])} if rng.random() < 0.5 else 3
    if rng.random() < 0.2:
        uns["flag"] = bool(rng.random() < 0.5) if rng.random() < 0.5 else int(rng.integers(0, 2))
    if rng.random() < 0.15:
        uns["table"] = pd.DataFrame({"n": np.arange(2), "s": ["a", "b"]}, index=["r0", "r1"])
    if rng.random() < 0.15:
        uns["mat"] = sparse.csr_matrix(np.eye(2, dtype=rng.choice(["float32", "float64"])))
    return uns


def _adata(rng: np.random.Generator, idx: int, genes: list[str], n_obs: int, table: pd.DataFrame, style: dict) -> ad.AnnData:
    tag = f"s{idx}"
    names = [f"c{int(v)}" for v in rng.choice(40, size=n_obs, replace=False)]
    shape = (n_obs, len(genes))
    kind = style["x_kind"] if style["x_kind"] != "mixed" else str(rng.choice(["csr", "csc", "dense"]))
    dtype = style["dtype"]
    if dtype == "mixed":
        dtype = str(rng.choice(["float32", "float64", "int32", "int64", "uint8", "int8", "bool"]))
    a = ad.AnnData(
        X=_matrix(rng, shape, kind, dtype) if style["has_x"] else None,
        obs=_obs(rng, names, tag),
        var=_var(rng, genes, table),
    )
    for layer in ("counts", "norm"):
        if rng.random() < 0.6:
            lk = str(rng.choice(["csr", "csc", "dense"]))
            a.layers[layer] = _matrix(rng, shape, lk, str(rng.choice(["float32", "float64", "int64"])))
    if rng.random() < 0.6:
        a.obsm["X_pca"] = rng.random((n_obs, int(rng.integers(2, 5)))).astype(rng.choice(["float32", "float64"]))
    if rng.random() < 0.3:
        a.obsm["X_sparse"] = _matrix(rng, (n_obs, 3), "csr", "float32")
    if rng.random() < 0.4:
        frame = {}
        if rng.random() < 0.7:
            frame["x"] = rng.random(n_obs)
        if rng.random() < 0.7:
            frame["grp"] = _categorical(rng, n_obs)
        if rng.random() < 0.5:
            frame["k"] = rng.integers(0, 5, n_obs)
        a.obsm["meta"] = pd.DataFrame(frame, index=names)
    if rng.random() < 0.5:
        pcs = np.outer(np.arange(len(GENES), dtype=np.float64), [1.0, 0.5, -1.0])
        pcs = pd.DataFrame(pcs, index=GENES).loc[genes].to_numpy()
        if rng.random() < 0.2:
            pcs = pcs + 1.0
        a.varm["PCs"] = pcs
    if rng.random() < 0.4:
        a.obsp["distances"] = _matrix(rng, (n_obs, n_obs), "csr", "float64")
    if rng.random() < 0.3:
        a.obsp["conn"] = _matrix(rng, (n_obs, n_obs), "dense", "float32")
    if rng.random() < 0.25:
        meta = table.loc[genes, ["means", "kind"]].copy()
        if rng.random() < 0.3:
            meta["means"] = meta["means"] + 1.0
        a.varm["gene_meta"] = meta
    if rng.random() < 0.4:
        full = np.arange(len(GENES) ** 2, dtype=np.float64).reshape(len(GENES), len(GENES))
        pos = [GENES.index(g) for g in genes]
        a.varp["corr"] = full[np.ix_(pos, pos)]
    a.uns.update(_uns(rng))
    if style["raw"] and not style["transpose"]:
        raw_genes = sorted(set(genes) | set(rng.choice(GENES, 3)))
        raw = ad.AnnData(
            X=_matrix(rng, (n_obs, len(raw_genes)), "csr", "float32"),
            obs=pd.DataFrame(index=names),
            var=pd.DataFrame({"raw_means": table.loc[raw_genes, "means"].to_numpy()}, index=raw_genes),
        )
        a.raw = raw
    return a


def make_case(seed: int) -> Case:
    """One random case: the objects and the arguments of `concat`."""
    rng = np.random.default_rng(seed)
    table = _gene_table(rng)
    n = int(rng.integers(1, 6))
    axis = "var" if rng.random() < 0.25 else "obs"
    style = {
        "x_kind": str(rng.choice(["csr", "csc", "dense", "mixed"])),
        "dtype": str(rng.choice(["float32", "float64", "int64", "mixed"])),
        "has_x": rng.random() < 0.95,
        "transpose": axis == "var",
        "raw": rng.random() < 0.25,
    }
    same_genes = rng.random() < 0.3
    base = list(rng.permutation(GENES)[: int(rng.integers(3, len(GENES) + 1))])
    adatas = []
    for i in range(n):
        if same_genes:
            genes = list(base)
        else:
            k = int(rng.integers(0 if rng.random() < 0.05 else 2, len(GENES) + 1))
            genes = list(rng.permutation(GENES)[:k])
        n_obs = 0 if rng.random() < 0.07 else int(rng.integers(1, 7))
        a = _adata(rng, i, genes, n_obs, table, style)
        if axis == "var":
            a = a.T.copy()
            if style["raw"]:
                # Along var, raw has the objects' observations (here genes) and its own
                # variables, which are concatenated too.
                raw_vars = [f"r{i}_{j}" for j in range(int(rng.integers(0, 4)))]
                a.raw = ad.AnnData(
                    X=_matrix(rng, (a.n_obs, len(raw_vars)), "csr", "float32"),
                    obs=pd.DataFrame(index=a.obs_names),
                    var=pd.DataFrame({"src": [f"o{i}"] * len(raw_vars)}, index=raw_vars),
                )
        adatas.append(a)
    kwargs: dict[str, object] = {"axis": axis, "join": str(rng.choice(["inner", "outer"]))}
    for name in ("merge", "uns_merge"):
        choice = rng.choice(["none", "same", "unique", "first", "only"])
        kwargs[name] = None if choice == "none" else str(choice)
    if rng.random() < 0.5:
        kwargs["label"] = str(rng.choice(["batch", "batch", "sample"]))
    if rng.random() < 0.4:
        letters = list(string.ascii_lowercase)
        kwargs["keys"] = [f"{letters[int(rng.integers(26))]}{i * 7 % 11}" for i in range(n)]
        if len(set(kwargs["keys"])) < n:
            kwargs["keys"] = [f"k{i}" for i in range(n)]
    if rng.random() < 0.4:
        kwargs["index_unique"] = str(rng.choice(["-", "_", "::"]))
    if kwargs["join"] == "outer" and rng.random() < 0.3:
        # Integers too: anndata keeps integer matrices integers for them where they fit.
        fills = [0.0, -1.0, 2.5, 0, -1, 7]
        kwargs["fill_value"] = fills[int(rng.integers(len(fills)))]
    kwargs["pairwise"] = bool(rng.random() < 0.4)
    return Case(seed=seed, adatas=adatas, kwargs=kwargs)
