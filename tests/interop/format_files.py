"""Input files in the formats annpage reads besides h5ad, written as their own tools write
them (scipy's mmwrite, Cell Ranger's layouts through h5py): shared by the CLI's interop tests and
the Python package's tests."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import h5py
import numpy as np
import scipy.io
import scipy.sparse as sp


def gzip_file(path: Path) -> Path:
    """Replaces `path` by `path.gz`."""
    out = path.with_name(path.name + ".gz")
    with open(path, "rb") as f, gzip.open(out, "wb") as g:
        shutil.copyfileobj(f, g)
    path.unlink()
    return out


def tenx_dir(tmp_path: Path, legacy: bool, seed: int = 0) -> Path:
    """A Cell Ranger matrix directory: v3 (gzipped, feature types) or v2 (`genes.tsv`)."""
    rng = np.random.default_rng(seed)
    n_genes, n_cells = 12, 9
    d = tmp_path / ("v2" if legacy else "v3")
    d.mkdir()
    counts = sp.random(n_genes, n_cells, density=0.4, format="coo", random_state=seed)
    counts.data = rng.integers(1, 50, counts.nnz).astype(float)
    scipy.io.mmwrite(d / "matrix.mtx", counts, field="integer")
    # Repeated symbols (made unique) and, in v3, features that are not gene expression.
    symbols = ["CD3E", "LYZ", "CD3E", "MS4A1", "LYZ", "NKG7", "GNLY", "CD3E", "ACTB", "CD14", "FCGR3A", "PPBP"]
    kinds = ["Gene Expression"] * 9 + ["Antibody Capture", "Gene Expression", "Antibody Capture"]
    with open(d / ("genes.tsv" if legacy else "features.tsv"), "w") as f:
        for i, s in enumerate(symbols):
            f.write(f"ENSG{i:05d}\t{s}" + ("" if legacy else f"\t{kinds[i]}") + "\n")
    with open(d / "barcodes.tsv", "w") as f:
        f.writelines(f"{b}-1\n" for b in ["AAAC", "AAAG", "AACT", "ACGT", "CCCA", "GGTA", "TTAC", "TTAG", "TGCA"])
    if not legacy:
        for name in ["matrix.mtx", "features.tsv", "barcodes.tsv"]:
            gzip_file(d / name)
    return d


def write_10x_group(g: h5py.Group, rng: np.random.Generator, v3: bool, n_genes: int, n_cells: int) -> None:
    """One 10x HDF5 matrix group: v3's `matrix` (with `features/`) or a v2 genome group."""
    counts = sp.random(n_genes, n_cells, density=0.3, format="csc", random_state=rng.integers(1 << 30))
    counts.data = rng.integers(1, 100, counts.nnz).astype(np.float64)
    g["data"] = counts.data.astype(np.int32)
    g["indices"] = counts.indices.astype(np.int64)
    g["indptr"] = counts.indptr.astype(np.int64)
    g["shape"] = np.array([n_genes, n_cells], dtype=np.int32)
    g["barcodes"] = np.array([f"CELL{i:04d}-1".encode() for i in range(n_cells)])
    ids = np.array([f"ENSG{i:05d}".encode() for i in range(n_genes)])
    names = np.array([f"G{i % (n_genes - 2)}".encode() for i in range(n_genes)])  # two repeats
    if v3:
        f = g.create_group("features")
        f["id"] = ids
        f["name"] = names
        f["feature_type"] = np.array(
            [b"Gene Expression" if i % 5 else b"Antibody Capture" for i in range(n_genes)]
        )
        f["genome"] = np.array([b"GRCh38" if i % 3 else b"mm10" for i in range(n_genes)])
        f["_all_tag_keys"] = np.array([b"genome"])
    else:
        g["genes"] = ids
        g["gene_names"] = names
