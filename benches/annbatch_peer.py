"""annbatch's loader on its own store: rows/s of shuffled batches (issue 12's random-batch peer).

    target/bench-venv312/bin/python benches/annbatch_peer.py STORE.zarr [N_BATCHES]
    target/bench-venv312/bin/python benches/annbatch_peer.py write IN.h5ad STORE.zarr
    .venv/bin/python benches/annbatch_peer.py annpage STORE.zarr [N_BATCHES]

annbatch (Python >= 3.12, so its own venv: `python3.12 -m venv target/bench-venv312 &&
target/bench-venv312/bin/pip install annbatch`) writes stores with `annbatch.write_sharded`
and reads them with `annbatch.Loader`, which fetches `chunk_size` contiguous cells at a time,
`preload_nchunks` chunks at once, shuffles them in memory and yields batches: its batches are
random mixes of contiguous runs, not independent random cells (annpage's workload (b) draws
each cell at random). Defaults of annbatch 0.3 (chunk_size 512, preload_nchunks 32) with
batch_size 256 as in workload (b). Prints `ROWS SECONDS` for the first N_BATCHES (default 200)
batches, the store's opening included. `write` makes the store with `annbatch.write_sharded`'s
defaults (64-cell inner chunks, blosc lz4, 1 GB shards) from an .h5ad file read whole.
"""

import sys
import time

import numpy as np


def main(store: str, n_batches: int) -> None:
    import anndata as ad
    import zarr
    from annbatch import Loader

    t0 = time.perf_counter()
    g = zarr.open_group(store, mode="r")
    x = ad.io.sparse_dataset(g["X"])
    loader = Loader(batch_size=256, shuffle=True, preload_to_gpu=False, rng=np.random.default_rng(0))
    loader.add_dataset(x)
    rows = 0
    for i, batch in enumerate(loader):
        x_b = batch["X"] if isinstance(batch, dict) else batch
        rows += x_b.shape[0]
        if i + 1 == n_batches:
            break
    print(f"{rows} {time.perf_counter() - t0!r}")


def annpage_main(store: str, n_batches: int) -> None:
    """The same job through annpage's Python package (in .venv): its shuffled batches with
    annbatch's sampling, rows counted, the store's opening included."""
    import annpage

    t0 = time.perf_counter()
    b = annpage.read_zarr(store, backed="r")
    rows = 0
    for i, (x, _obs) in enumerate(b.batches(256, chunk_size=512, preload_nchunks=32, seed=0)):
        rows += x.shape[0]
        if i + 1 == n_batches:
            break
    print(f"{rows} {time.perf_counter() - t0!r}")


def write(src: str, store: str) -> None:
    import anndata as ad
    import zarr
    from annbatch import write_sharded

    t0 = time.perf_counter()
    write_sharded(zarr.open_group(store, mode="w", zarr_format=3), ad.read_h5ad(src))
    print(f"wrote {store} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "annpage":
        annpage_main(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 200)
    else:
        main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200)
