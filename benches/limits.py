"""The limits of `benches/peers.py` (`peers.py limit LIMIT FILE`): the floor any reader of the
file has on this machine (see the docstring of peers.py)."""

from __future__ import annotations

import os
import time
import zlib

import numpy as np

from shared import GeneSums, READ_BUF, fmt, load_selections


# --------------------------------------------------------------------------------------------
# Limits.


def limit_read_bytes(path, sel=None):
    buf = bytearray(READ_BUF)
    mv = memoryview(buf)
    total = 0
    t0 = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        total = 0
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(mv):
                total += n
    return fmt(total), time.perf_counter() - t0


INFLATE_DATASETS = ("X/data", "X/indices")


def chunk_list(path, names=INFLATE_DATASETS):
    """[(dataset name, chunk offset, chunk bytes)] of every stored chunk; None when a dataset is
    not deflate-only compressed (the limit does not apply)."""
    import h5py

    out = []
    with h5py.File(path, "r") as f:
        for name in names:
            ds = f[name]
            if ds.chunks is None or ds.compression != "gzip" or ds.shuffle or ds.fletcher32 or ds.scaleoffset:
                return None
            chunk_bytes = int(np.prod(ds.chunks)) * ds.dtype.itemsize
            for i in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(i)
                out.append((name, info.chunk_offset, chunk_bytes))
    return out


def raw_chunks(path, items):
    """The stored (still compressed) bytes of the given chunks, with their inflated size."""
    import h5py

    out = []
    with h5py.File(path, "r") as f:
        for name, offset, chunk_bytes in items:
            mask, raw = f[name].id.read_direct_chunk(offset)
            if mask:
                raise NotImplementedError("chunk stored with a filter skipped")
            out.append((raw, chunk_bytes))
    return out


def inflate_zlib(raw: bytes, expect: int) -> int:
    """One chunk; the drop-in point for another inflater."""
    out = zlib.decompress(raw)
    if len(out) != expect:
        raise ValueError(f"chunk inflated to {len(out)} bytes, expected {expect}")
    return len(out)


def inflate_serial(chunks, inflate=inflate_zlib) -> int:
    return sum(inflate(raw, n) for raw, n in chunks)


def _inflate_worker(path, items, barrier, results, inflate):
    chunks = raw_chunks(path, items)  # fetched before the clock starts
    barrier.wait()
    t0 = time.perf_counter()
    total = inflate_serial(chunks, inflate)
    results.put((total, time.perf_counter() - t0))


def inflate_parallel(path, items, workers: int, inflate=inflate_zlib):
    """Each of `workers` processes fetches its share of raw chunks, then all start together;
    returns (inflated bytes, wall seconds from the common start to the last finish)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(workers + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_inflate_worker, args=(path, items[w::workers], barrier, results, inflate))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    got = [results.get() for _ in procs]
    t = time.perf_counter() - t0
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"inflate worker failed with {p.exitcode}")
    return sum(g[0] for g in got), t


def limit_inflate_zlib_1(path, sel=None):
    items = chunk_list(path)
    if items is None:
        return "n/a", float("nan")
    chunks = raw_chunks(path, items)
    t0 = time.perf_counter()
    total = inflate_serial(chunks, inflate_zlib)
    return fmt(total), time.perf_counter() - t0


def limit_inflate_zlib_all(path, sel=None):
    items = chunk_list(path)
    if items is None:
        return "n/a", float("nan")
    total, t = inflate_parallel(path, items, os.cpu_count() or 1, inflate_zlib)
    return fmt(total), t


def limit_numpy_sums(path, sel=None):
    import h5py

    with h5py.File(path, "r") as f:
        x = f["X"]
        if not isinstance(x, h5py.Group) or x.attrs.get("encoding-type") != "csr_matrix":
            return "n/a", float("nan")
        indptr, indices, data = x["indptr"][:], x["indices"][:], x["data"][:]
        n_vars = int(x.attrs["shape"][1])
    step = load_selections(path)["row_chunk"]
    acc = GeneSums(n_vars)
    t0 = time.perf_counter()
    for start in range(0, indptr.size - 1, step):
        lo, hi = indptr[start], indptr[min(start + step, indptr.size - 1)]
        acc.add(indices[lo:hi], data[lo:hi])
    t = time.perf_counter() - t0
    return fmt(indices.nbytes + data.nbytes), t
