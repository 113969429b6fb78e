"""`annpage subset --obs-query` against pandas' `DataFrame.query` on random frames and queries.

A seeded generator writes a few obs frames with every kind of column annpage reads (floats with
NaN, ints, nullable Int64 and boolean with NA, bools, strings, nullable strings with NA,
categoricals with unused categories and missing values, an ordered categorical, a column name
with a space) and builds random queries from the grammar (comparisons, chains, `in`/`not in`,
`and`/`or`/`not`/`&`/`|`/`~`, parentheses, backquoted names, `index`). For each query the CLI's
selected cells must be exactly those of `df.query(q)` on the frame anndata reads; where pandas
raises, annpage must fail too. annpage deliberately refuses one thing pandas accepts: `==`/`!=`
against a value that is not a category of a categorical column (pandas silently selects no row
or every row); those queries must fail with that error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

from support import run

N_FILES = 4
QUERIES_PER_FILE = 150
N_ROWS = 40
WORDS = ["a", "b", "c", "m", "z", "B cell", "T cell", ""]
CATS = ["B", "NK", "T", "mono", "unused"]
LEVELS = ["low", "mid", "high"]


def _frame(rng: np.random.Generator) -> pd.DataFrame:
    n = N_ROWS
    f = rng.integers(-3, 4, n).astype(float) / 2
    f[rng.random(n) < 0.2] = np.nan
    ni = pd.array(rng.integers(0, 5, n), dtype="Int64")
    ni[rng.random(n) < 0.2] = pd.NA
    nb = pd.array(rng.random(n) < 0.5, dtype="boolean")
    nb[rng.random(n) < 0.2] = pd.NA
    ns = pd.array(rng.choice(WORDS[:5], n), dtype="string")
    ns[rng.random(n) < 0.2] = pd.NA
    codes = rng.integers(-1, 4, n)  # "unused" is never used; -1 is missing
    c = pd.Categorical.from_codes(codes, categories=CATS)
    oc = pd.Categorical.from_codes(rng.integers(-1, 3, n), categories=LEVELS, ordered=True)
    return pd.DataFrame(
        {
            "f": f,
            "i": rng.integers(-5, 6, n),
            "ni": ni,
            "b": rng.random(n) < 0.5,
            "nb": nb,
            "s": rng.choice(WORDS[:5], n).astype(object),
            "ns": ns,
            "c": c,
            "oc": oc,
            "with space": rng.integers(0, 3, n).astype(float),
        },
        index=[f"c{k}" for k in range(n)],
    )


@dataclass
class Atom:
    text: str
    ours_refuse: bool = False  # annpage errors where pandas quietly selects


def _num(rng: np.random.Generator) -> str:
    return str(rng.choice(["-1", "0", "1", "1.5", "2", "3", "-0.5", "4"]))


def _quote(s: str, rng: np.random.Generator) -> str:
    return f'"{s}"' if rng.random() < 0.5 else f"'{s}'"


def _atom(rng: np.random.Generator) -> Atom:
    ops = ["==", "!=", "<", "<=", ">", ">="]
    kind = rng.integers(0, 11)
    op = str(rng.choice(ops))
    if kind == 0:
        col = str(rng.choice(["f", "i", "ni", "`with space`"]))
        if rng.random() < 0.5:
            return Atom(f"{col} {op} {_num(rng)}")
        return Atom(f"{_num(rng)} {op} {col}")
    if kind == 1:
        col = str(rng.choice(["f", "i", "ni"]))
        lo, hi = sorted([float(_num(rng)), float(_num(rng))])
        return Atom(f"{lo} {rng.choice(['<', '<='])} {col} {rng.choice(['<', '<='])} {hi}")
    if kind == 2:
        col = str(rng.choice(["b", "nb"]))
        return Atom(str(rng.choice([col, f"{col} == True", f"{col} != False", f"{col} == 1"])))
    if kind == 3:
        col = str(rng.choice(["s", "ns"]))
        return Atom(f"{col} {op} {_quote(str(rng.choice(WORDS)), rng)}")
    if kind == 4:
        value = str(rng.choice(CATS + ["X"]))
        op = str(rng.choice(["==", "!="]))
        return Atom(f"c {op} {_quote(value, rng)}", ours_refuse=value not in CATS)
    if kind == 5:
        # Ordering an unordered categorical: pandas raises, so must annpage.
        return Atom(f"c {rng.choice(['<', '>='])} {_quote(str(rng.choice(CATS)), rng)}")
    if kind == 6:
        value = str(rng.choice(LEVELS + (["top"] if rng.random() < 0.2 else [])))
        return Atom(f"oc {op} {_quote(value, rng)}", ours_refuse=value not in LEVELS and op in ("==", "!="))
    if kind == 7:
        col, pool = [("i", None), ("ni", None), ("f", None), ("s", WORDS), ("ns", WORDS), ("c", CATS + ["X"])][
            rng.integers(0, 6)
        ]
        k = int(rng.integers(0, 4))
        values = [_num(rng) for _ in range(k)] if pool is None else [_quote(str(rng.choice(pool)), rng) for _ in range(k)]
        neg = "not in" if rng.random() < 0.4 else "in"
        return Atom(f"{col} {neg} [{', '.join(values)}]")
    if kind == 8:
        names = [f"'c{k}'" for k in rng.integers(0, N_ROWS + 3, 3)]
        return Atom(str(rng.choice([f"index == {names[0]}", f"index in [{', '.join(names)}]", f"index > {names[1]}"])))
    if kind == 9:
        return Atom(f"i {op} `with space`")
    return Atom(f"f {op} i")


def _query(rng: np.random.Generator, depth: int = 0) -> tuple[str, bool]:
    """A random query and whether annpage must refuse it."""
    r = rng.random()
    if depth >= 3 or r < 0.35:
        a = _atom(rng)
        return a.text, a.ours_refuse
    if r < 0.5:
        q, refuse = _query(rng, depth + 1)
        return f"{rng.choice(['not ', '~'])}({q})", refuse
    (a, ra), (b, rb) = _query(rng, depth + 1), _query(rng, depth + 1)
    op = str(rng.choice(["and", "or", "&", "|"]))
    text = f"({a}) {op} ({b})" if rng.random() < 0.6 else f"{a} {op} {b}"
    return text, ra or rb


def _names(path: Path) -> list[str]:
    with h5py.File(path, "r") as f:
        key = f["obs"].attrs["_index"]
        return [v.decode() if isinstance(v, bytes) else str(v) for v in f["obs"][key][()]]


def _cases() -> list[tuple[int, int]]:
    return [(file, k) for file in range(N_FILES) for k in range(QUERIES_PER_FILE)]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, pd.DataFrame]]:
    out = []
    root = tmp_path_factory.mktemp("query")
    for seed in range(N_FILES):
        rng = np.random.default_rng(1000 + seed)
        obs = _frame(rng)
        a = ad.AnnData(X=np.zeros((N_ROWS, 2), dtype=np.float32), obs=obs)
        path = root / f"q{seed}.h5ad"
        with warnings.catch_warnings(), ad.settings.override(allow_write_nullable_strings=True):
            warnings.simplefilter("ignore")
            a.write_h5ad(path, convert_strings_to_categoricals=False)
        out.append((path, ad.read_h5ad(path).obs))
    return out


@pytest.mark.parametrize(("file", "k"), _cases())
def test_query_selects_what_pandas_selects(
    annpage_bin: Path, tmp_path: Path, files: list[tuple[Path, pd.DataFrame]], file: int, k: int
) -> None:
    path, obs = files[file]
    query, refuse = _query(np.random.default_rng(file * 10_000 + k))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want: list[str] | None = list(obs.query(query).index)
    except Exception:  # noqa: BLE001 - any pandas failure means annpage must fail too
        want = None
    out = tmp_path / "out.h5ad"
    res = run([annpage_bin, "subset", path, out, "--obs-query", query])
    if refuse:
        # The refused comparison, or another part pandas refuses too, stops annpage.
        assert res.returncode != 0, (query, _names(out))
        assert "is not a category" in res.stderr or want is None, (query, res.stderr)
        return
    if want is None:
        assert res.returncode != 0, f"pandas refuses {query!r}, annpage selected {_names(out)}"
        assert res.stderr.count("\n") == 1 and "query" in res.stderr, res.stderr
        return
    assert res.returncode == 0, (query, res.stderr)
    assert _names(out) == want, query


def test_var_query_selects_genes(annpage_bin: Path, tmp_path: Path) -> None:
    var = pd.DataFrame({"n_cells": [0, 5, 3, 9], "kind": ["a", "b", "a", "c"]}, index=["g0", "g1", "g2", "g3"])
    src, out = tmp_path / "in.h5ad", tmp_path / "out.h5ad"
    ad.AnnData(X=np.ones((2, 4), dtype=np.float32), var=var).write_h5ad(src)
    res = run([annpage_bin, "subset", src, out, "--var-query", "n_cells >= 3 and kind != 'c'"])
    assert res.returncode == 0, res.stderr
    got = ad.read_h5ad(out)
    assert list(got.var_names) == list(var.query("n_cells >= 3 and kind != 'c'").index) == ["g1", "g2"]
    assert got.shape == (2, 2)
