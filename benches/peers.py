"""Benchmark workloads for annpage's peers, one function per (peer, workload), and the limits.

    python benches/peers.py PEER WORKLOAD FILE     # PEER: anndata | annpage_py | h5py | snapatac2
    python benches/peers.py limit LIMIT FILE       # LIMIT: read_bytes | inflate_zlib_1 | inflate_zlib_all | numpy_sums
    python benches/peers.py selections FILE        # (re)write FILE.selections.json

Every invocation prints one line `CHECKSUM SECONDS` on stdout (the protocol shared with the
`target/release/annpage-bench WORKLOAD FILE`). SECONDS is the wall time of the workload
itself, measured inside the process: opening the file through the result, after the imports.
CHECKSUM is one token, comma-separated float64 numbers, that must agree across peers (run.py
compares them with a relative tolerance of 1e-9). A limit that does not apply to a file (zlib on
an uncompressed file) prints `n/a nan`.

Workloads (all random choices are in FILE.selections.json, so every peer, in any language, uses
the very same cells and genes; see `make_selections` for how they are drawn):

  full_pass       every cell in row chunks of 10,000 rows; per gene j the float64 sum s_j and sum
                  of squares q_j. Checksum: sum_j s_j, sum_j q_j, sum_j (j mod 7 + 1) s_j.
  random_batches  200 batches of 256 distinct random cells each (unsorted, the order a shuffling
                  loader asks for), each materialised as a CSR matrix with rows in the requested
                  order. The batches are known up front (a sampler's epoch): annpage's peers
                  hand them to `batches_of`; anndata's and the others have no such call and
                  read `a[batch].X` per batch. Checksum over all batches, over every stored entry v at row position p
                  of its batch and gene j: sum v, count, sum v (p mod 7 + 1) (j mod 5 + 1).
  loader          the first 200 batches of 256 cells of a shuffled loader with annbatch's
                  sampling (random runs of 512 consecutive cells, 32 runs mixed, seed 0), as
                  CSR. annpage's own loader only (the order is its generator's); checksum as
                  random_batches.
  subset          10% of the cells (random, SORTED ascending) x 2,000 genes (random, UNSORTED: a
                  gene list in the user's order) to an in-memory CSR matrix. Checksum over
                  entries v at result row p and result column q: sum v, count,
                  sum v (p mod 7 + 1) (q mod 5 + 1).
  gene_columns    the full column (all cells) of 10 random genes (unsorted). Checksum over entries
                  v of cell i in result column q: sum v, count, sum v (i mod 7 + 1) (q + 1).
  open_meta       open the file and read obs and var completely into memory. Checksum: n_obs,
                  n_vars, number of obs+var columns, float64 sum of all numeric and boolean
                  columns, total number of characters of the obs and var names, total number of
                  distinct non-null values over the other (categorical and string) columns.
  noop            imports only (no file access): the interpreter's baseline time and memory.

Limits (the floor any reader of the file has on this machine):

  read_bytes        read the whole file twice with 16 MiB reads; time the second (warm cache).
                    Checksum: bytes read.
  inflate_zlib_1    every stored chunk of X/data and X/indices, raw bytes fetched with h5py's
                    `read_direct_chunk` beforehand (not timed), then `zlib.decompress`ed on one
                    core. Checksum: total inflated bytes (= number of chunks x chunk bytes).
  inflate_zlib_all  the same on all cores, one process per core each inflating its share.
  numpy_sums        the full pass's reduction (GeneSums, numpy) over a CSR X read into memory
                    beforehand (not timed), in the same chunks of rows: what a Python full pass
                    pays after the reads. Checksum: bytes of X/indices + X/data summed over.

CLI jobs (whole processes, as a user runs them; run.py times the process from start to exit and
then checks what it wrote):

    python benches/peers.py cli_prep FILE              # write the subset's gene list, print JSON
    python benches/peers.py cli anndata JOB FILE OUT   # the anndata peer of `annpage JOB`
    python benches/peers.py cli_check JOB OUT          # print the checksum of what JOB wrote

  stats    per cell n_genes and total_counts, per gene n_cells, mean and var (ddof=1), written
           as OUT.obs.tsv and OUT.var.tsv (the columns of `annpage stats`). Checksum: cells,
           sum n_genes, sum total_counts, sum n_cells, sum mean, sum var, sum (j mod 7 + 1) var_j.
  subset   the cells of obs column SUBSET_QUERY_COLUMN equal to SUBSET_QUERY_VALUE (1/12 of the
           cells in the generated files) x the 2,000 genes of the `subset` workload, by name in
           their unsorted order, written as the gzip .h5ad OUT.
  convert  FILE read whole and written as the gzip .h5ad OUT.
  The checksum of a written .h5ad: its shape, whether X/data is gzip-compressed (1 or 0), and
  over the stored entries v of X at row p and column q: sum v, count, sum v (p mod 7 + 1)
  (q mod 5 + 1).

Selections and checksums are in `shared.py`, the limits in `limits.py`, the CLI jobs in
`cli_jobs.py`. The inflate limits are split into `raw_chunks` (what to inflate), `inflate_zlib` (one chunk) and
`inflate_parallel` (the pool), so a different inflater (libdeflate in annpage's Rust tool) is a
drop-in for `inflate_zlib`.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

import cli_jobs
import limits
from shared import (
    EntrySums,
    GeneSums,
    H5PY_CACHE_MB,
    anndata_open,
    is_zarr,
    load_selections,
    meta_checksum,
    w_mod,
    w_plus1,
    write_selections,
)


# --------------------------------------------------------------------------------------------
# Peer: anndata in backed mode, used the way its users would.




def anndata_full_pass(path, sel):
    a = anndata_open(path)
    acc = GeneSums(a.n_vars)
    for chunk, _, _ in a.chunked_X(sel["row_chunk"]):
        acc.add(chunk.indices, chunk.data)
    return acc.checksum()


def anndata_random_batches(path, sel):
    a = anndata_open(path)
    acc = EntrySums()
    for b in sel["batches"]:
        x = a[b].X  # scipy CSR, rows in the order of b
        acc.add_csr(x, w_mod(7), w_mod(5))
    return acc.checksum()


def anndata_subset(path, sel):
    a = anndata_open(path)
    # a[obs][:, var] (a view of a view) is refused in backed mode, so one combined index.
    sub = a[sel["subset_cells"], sel["subset_genes"]].to_memory()
    acc = EntrySums()
    acc.add_csr(sub.X, w_mod(7), w_mod(5))
    return acc.checksum()


def anndata_gene_columns(path, sel):
    a = anndata_open(path)
    x = a[:, sel["columns"]].X
    acc = EntrySums()
    acc.add_csr(x, w_mod(7), w_plus1)
    return acc.checksum()


def _pandas_meta(obs, var):
    import pandas as pd

    cols = []
    for df in (obs, var):
        for c in df.columns:
            s = df[c]
            if not isinstance(s.dtype, pd.CategoricalDtype) and s.dtype.kind in "biuf":
                cols.append(("num", s.to_numpy()))
            else:
                cols.append(("cat", s.nunique()))
    return cols, [obs.index.to_numpy(), var.index.to_numpy()]


def anndata_open_meta(path, sel):
    a = anndata_open(path)
    obs, var = a.obs, a.var  # backed mode reads both into pandas at open
    cols, names = _pandas_meta(obs, var)
    return meta_checksum(a.n_obs, a.n_vars, cols, names)


# --------------------------------------------------------------------------------------------
# Peer: annpage's Python package (annpage.read_h5ad(path, backed="r")), used as anndata is.


def annpage_py_open(path):
    import annpage

    cache_mb = int(os.environ.get("ANNPAGE_CACHE_MB", "1024"))
    read = annpage.read_zarr if is_zarr(path) else annpage.read_h5ad
    return read(path, backed="r", cache_mb=cache_mb)


def annpage_py_full_pass(path, sel):
    a = annpage_py_open(path)
    acc = GeneSums(a.n_vars)
    for chunk, _, _ in a.chunked_X(sel["row_chunk"]):
        acc.add(chunk.indices, chunk.data)
    return acc.checksum()


def annpage_py_random_batches(path, sel):
    a = annpage_py_open(path)
    acc = EntrySums()
    # The batches handed over as an epoch's order; each x is a[b].X (scipy CSR, rows in b's order).
    for x, _rows in a.batches_of([np.asarray(b) for b in sel["batches"]]):
        acc.add_csr(x, w_mod(7), w_mod(5))
    return acc.checksum()


def annpage_py_loader(path, sel):
    """The first 200 batches of annpage's shuffled loader (annbatch's sampling, seed 0)."""
    a = annpage_py_open(path)
    acc = EntrySums()
    for i, (x, _rows) in enumerate(a.batches(256, chunk_size=512, preload_nchunks=32, seed=0)):
        if i == 200:
            break
        acc.add_csr(x, w_mod(7), w_mod(5))
    return acc.checksum()


def annpage_py_subset(path, sel):
    a = annpage_py_open(path)
    sub = a[sel["subset_cells"], sel["subset_genes"]].to_memory()
    acc = EntrySums()
    acc.add_csr(sub.X, w_mod(7), w_mod(5))
    return acc.checksum()


def annpage_py_gene_columns(path, sel):
    a = annpage_py_open(path)
    x = a.X[:, np.asarray(sel["columns"])]
    acc = EntrySums()
    acc.add_csr(sp_csr(x), w_mod(7), w_plus1)
    return acc.checksum()


def sp_csr(x):
    import scipy.sparse as sp

    return x.tocsr() if sp.issparse(x) else sp.csr_matrix(x)


def annpage_py_open_meta(path, sel):
    a = annpage_py_open(path)
    obs, var = a.obs, a.var
    cols, names = _pandas_meta(obs, var)
    return meta_checksum(a.n_obs, a.n_vars, cols, names)


# --------------------------------------------------------------------------------------------
# Peer: a careful hand-written h5py + numpy reader.


class H5Csr:
    """X of an .h5ad (csr_matrix) read with h5py: indptr once, then contiguous ranges."""

    MAX_SPAN = 1 << 22  # entries per read (16 MiB per array)

    def __init__(self, path):
        import h5py

        # A larger chunk cache than the 1 MiB default, so a chunk shared by two reads is
        # inflated once.
        self.f = h5py.File(path, "r", rdcc_nbytes=H5PY_CACHE_MB * 2**20, rdcc_nslots=100_003)
        x = self.f["X"]
        enc = x.attrs.get("encoding-type")
        if enc != "csr_matrix":
            raise NotImplementedError(f"X is {enc!r}, this reader handles csr_matrix")
        self.n_obs, self.n_vars = (int(v) for v in x.attrs["shape"])
        self.indptr = x["indptr"][...].astype(np.int64)
        self.data = x["data"]
        self.indices = x["indices"]
        chunks = self.data.chunks
        # Merge two ranges when the gap between them is at most one HDF5 chunk: reading the gap
        # costs at most one extra chunk, a separate read costs h5py's per-call overhead.
        self.gap = chunks[0] if chunks else 1 << 16

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        # Plain slicing: for small reads h5py's read_direct costs ~6x more per call here.
        return self.data[start:stop], self.indices[start:stop]

    def spans(self, rows_sorted: np.ndarray):
        """Group sorted rows into (rows, start, stop) spans of X's entry ranges."""
        starts = self.indptr[rows_sorted]
        stops = self.indptr[rows_sorted + 1]
        if rows_sorted.size == 0:
            return
        begin = 0
        for k in range(1, rows_sorted.size + 1):
            if (
                k == rows_sorted.size
                or starts[k] - stops[k - 1] > self.gap
                or stops[k] - starts[begin] > self.MAX_SPAN
            ):
                yield rows_sorted[begin:k], int(starts[begin]), int(stops[k - 1])
                begin = k

    def rows(self, rows_sorted: np.ndarray, col_map: np.ndarray | None = None):
        """CSR arrays (data, indices, indptr) of the given sorted rows; with col_map, only the
        entries whose col_map[j] >= 0, renumbered to col_map[j]."""
        datas, idxs, counts = [], [], []
        for rows, s, e in self.spans(rows_sorted):
            data, idx = self.read(s, e)
            rs = self.indptr[rows] - s
            lens = self.indptr[rows + 1] - self.indptr[rows]
            # positions of the selected rows' entries inside the span buffer
            offs = np.repeat(rs - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
            pos = offs + np.arange(lens.sum())
            d, j = data[pos], idx[pos]
            if col_map is not None:
                new = col_map[j]
                keep = new >= 0
                rowid = np.repeat(np.arange(rows.size), lens)[keep]
                d, j = d[keep], new[keep]
                lens = np.bincount(rowid, minlength=rows.size)
            datas.append(d)
            idxs.append(j)
            counts.append(lens)
        indptr = np.zeros(rows_sorted.size + 1, dtype=np.int64)
        if counts:
            np.cumsum(np.concatenate(counts), out=indptr[1:])
            return np.concatenate(datas), np.concatenate(idxs), indptr
        return np.empty(0, self.data.dtype), np.empty(0, self.indices.dtype), indptr


def h5py_full_pass(path, sel):
    r = H5Csr(path)
    acc = GeneSums(r.n_vars)
    step = sel["row_chunk"]
    n = r.MAX_SPAN
    data = np.empty(n, dtype=r.data.dtype)
    idx = np.empty(n, dtype=r.indices.dtype)
    for lo in range(0, r.n_obs, step):
        s, e = int(r.indptr[lo]), int(r.indptr[min(lo + step, r.n_obs)])
        if e - s > data.size:
            data = np.empty(e - s, dtype=r.data.dtype)
            idx = np.empty(e - s, dtype=r.indices.dtype)
        if e > s:
            r.data.read_direct(data, np.s_[s:e], np.s_[0 : e - s])
            r.indices.read_direct(idx, np.s_[s:e], np.s_[0 : e - s])
            acc.add(idx[: e - s], data[: e - s])
    return acc.checksum()


def h5py_random_batches(path, sel):
    import scipy.sparse as sp

    r = H5Csr(path)
    acc = EntrySums()
    for b in sel["batches"]:
        order = np.argsort(b, kind="stable")
        data, idx, indptr = r.rows(b[order])
        x = sp.csr_matrix((data, idx, indptr), shape=(b.size, r.n_vars))
        x = x[np.argsort(order)]  # back to the requested order
        acc.add_csr(x, w_mod(7), w_mod(5))
    return acc.checksum()


def h5py_subset(path, sel):
    import scipy.sparse as sp

    r = H5Csr(path)
    genes = sel["subset_genes"]
    col_map = np.full(r.n_vars, -1, dtype=np.int64)
    col_map[genes] = np.arange(genes.size)
    data, idx, indptr = r.rows(sel["subset_cells"], col_map)
    x = sp.csr_matrix((data, idx, indptr), shape=(sel["subset_cells"].size, genes.size))
    acc = EntrySums()
    acc.add_csr(x, w_mod(7), w_mod(5))
    return acc.checksum()


def h5py_gene_columns(path, sel):
    import scipy.sparse as sp

    r = H5Csr(path)
    genes = sel["columns"]
    col_map = np.full(r.n_vars, -1, dtype=np.int64)
    col_map[genes] = np.arange(genes.size)
    nnz = int(r.indptr[-1])
    cells, cols, vals = [], [], []
    idx = np.empty(r.MAX_SPAN, dtype=r.indices.dtype)
    data = np.empty(r.MAX_SPAN, dtype=r.data.dtype)
    for s in range(0, nnz, r.MAX_SPAN):
        e = min(s + r.MAX_SPAN, nnz)
        r.indices.read_direct(idx, np.s_[s:e], np.s_[0 : e - s])
        q = col_map[idx[: e - s]]
        hit = np.flatnonzero(q >= 0)
        if hit.size:
            r.data.read_direct(data, np.s_[s:e], np.s_[0 : e - s])
            vals.append(data[hit])
            cols.append(q[hit])
            cells.append(np.searchsorted(r.indptr, hit + s, side="right") - 1)
    rows = np.concatenate(cells) if cells else np.empty(0, np.int64)
    cols_ = np.concatenate(cols) if cols else np.empty(0, np.int64)
    vals_ = np.concatenate(vals) if vals else np.empty(0, np.float32)
    x = sp.csc_matrix((vals_, (rows, cols_)), shape=(r.n_obs, genes.size))
    acc = EntrySums()
    acc.add_csr(x.tocsr(), w_mod(7), w_plus1)
    return acc.checksum()


def _h5_read_frame(g):
    """One anndata dataframe group read fully with h5py: [(kind, values)], index as str array."""
    import h5py

    cols = []
    index = g[g.attrs["_index"]].asstr()[...]
    for name in g.attrs["column-order"]:
        el = g[name]
        enc = el.attrs.get("encoding-type", "array")
        if enc == "categorical":
            codes = el["codes"][...]
            cats = el["categories"]
            cats = cats.asstr()[...] if cats.dtype.kind in "OS" else cats[...]
            cols.append(("cat", np.unique(codes[codes >= 0]).size))
        elif isinstance(el, h5py.Dataset) and el.dtype.kind in "biuf":
            cols.append(("num", el[...]))
        elif enc in ("nullable-integer", "nullable-boolean"):
            cols.append(("num", el["values"][...]))
        elif isinstance(el, h5py.Dataset):
            cols.append(("cat", np.unique(el.asstr()[...]).size))
        else:
            raise NotImplementedError(f"column {name!r} with encoding {enc!r}")
    return cols, index


def h5py_open_meta(path, sel):
    import h5py

    with h5py.File(path, "r") as f:
        ocols, oidx = _h5_read_frame(f["obs"])
        vcols, vidx = _h5_read_frame(f["var"])
    return meta_checksum(oidx.size, vidx.size, ocols + vcols, [oidx, vidx])


# --------------------------------------------------------------------------------------------
# Peer: anndata-rs through snapatac2 (snapatac2.read(path, backed='r')); filled in below.


def snapatac2_open(path):
    import snapatac2 as snap

    return snap.read(str(path), backed="r")


def snapatac2_full_pass(path, sel):
    a = snapatac2_open(path)
    try:
        acc = GeneSums(a.n_vars)
        for chunk, _, _ in a.X.chunked(sel["row_chunk"]):
            acc.add(chunk.indices, chunk.data)
        return acc.checksum()
    finally:
        a.close()


def snapatac2_random_batches(path, sel):
    a = snapatac2_open(path)
    try:
        acc = EntrySums()
        for b in sel["batches"]:
            x = a.X[b, :]
            acc.add_csr(x, w_mod(7), w_mod(5))
        return acc.checksum()
    finally:
        a.close()


def snapatac2_subset(path, sel):
    a = snapatac2_open(path)
    try:
        sub = a.subset(sel["subset_cells"], sel["subset_genes"], inplace=False)
        acc = EntrySums()
        acc.add_csr(sub.X, w_mod(7), w_mod(5))
        return acc.checksum()
    finally:
        a.close()


def snapatac2_gene_columns(path, sel):
    a = snapatac2_open(path)
    try:
        x = a.X[:, sel["columns"]]
        acc = EntrySums()
        acc.add_csr(x, w_mod(7), w_plus1)
        return acc.checksum()
    finally:
        a.close()


def _polars_meta(obs, var):
    import polars as pl

    cols = []
    for df in (obs, var):
        for c in df.columns:
            s = df[c]
            if s.dtype.is_numeric() or s.dtype == pl.Boolean:
                cols.append(("num", s.cast(pl.Float64).to_numpy()))
            else:  # anndata-rs hands categoricals over as strings
                cols.append(("cat", s.drop_nulls().n_unique()))
    return cols


def snapatac2_open_meta(path, sel):
    a = snapatac2_open(path)
    try:
        obs, var = a.obs[:], a.var[:]
        cols = _polars_meta(obs, var)
        return meta_checksum(a.n_obs, a.n_vars, cols, [a.obs_names, a.var_names])
    finally:
        a.close()


# --------------------------------------------------------------------------------------------

PEERS = ("anndata", "annpage_py", "h5py", "snapatac2")
WORKLOADS = ("full_pass", "random_batches", "loader", "subset", "gene_columns", "open_meta", "noop")
LIMITS = ("read_bytes", "inflate_zlib_1", "inflate_zlib_all", "numpy_sums")

PEER_IMPORTS = {
    "anndata": ("anndata", "scipy.sparse", "pandas"),
    "annpage_py": ("annpage", "anndata", "scipy.sparse", "pandas"),
    "h5py": ("h5py", "scipy.sparse"),
    "snapatac2": ("snapatac2", "polars"),
}


def run(peer: str, workload: str, path: str) -> tuple[str, float]:
    import importlib

    if peer == "limit":
        if is_zarr(path):
            return "n/a", float("nan")  # limits of an .h5ad file's bytes and deflate chunks
        if workload not in LIMITS:
            raise SystemExit(f"unknown limit {workload!r}; one of {LIMITS}")
        return getattr(limits, f"limit_{workload}")(path)
    if peer not in PEERS or workload not in WORKLOADS:
        raise SystemExit(f"unknown peer/workload {peer!r}/{workload!r}; peers {PEERS}, workloads {WORKLOADS}")
    if is_zarr(path) and peer in ("h5py", "snapatac2"):
        sys.exit(64)  # readers of .h5ad files only (snapatac2's Zarr support is not measured)
    for m in PEER_IMPORTS[peer]:  # imports are not part of the measured time
        importlib.import_module(m)
    if workload == "noop":
        return "0", 0.0
    sel = load_selections(path)
    fn = globals().get(f"{peer}_{workload}")
    if fn is None:
        sys.exit(64)  # a workload this peer has no counterpart of (annpage's own loader)
    t0 = time.perf_counter()
    checksum = fn(path, sel)
    return checksum, time.perf_counter() - t0


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "selections":
        print(write_selections(argv[1]))
        return
    if len(argv) == 2 and argv[0] == "cli_prep":
        print(json.dumps(cli_jobs.cli_prep(argv[1])))
        return
    if len(argv) == 5 and argv[0] == "cli":
        cli_jobs.run_cli(*argv[1:])
        return
    if len(argv) == 3 and argv[0] == "cli_check":
        print(cli_jobs.cli_check(argv[1], argv[2]))
        return
    if len(argv) != 3:
        raise SystemExit(__doc__)
    checksum, seconds = run(*argv)
    sys.stdout.flush()
    print(f"{checksum} {seconds!r}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
