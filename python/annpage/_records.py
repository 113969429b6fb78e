"""What anndata's own writer adds to a file annpage wrote, before it replaces its target:
elements of ``uns`` annpage does not build itself (numpy record arrays, such as scanpy's
``rank_genes_groups`` results, and awkward arrays), and edits (a label's categories that are
numbers)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def is_record(v) -> bool:
    """Whether annpage leaves `v` to anndata's writer: a structured numpy array or an awkward
    array."""
    if isinstance(v, np.ndarray) and v.dtype.names is not None:
        return True
    return type(v).__module__.split(".")[0] == "awkward"


def split(uns: dict, path: str = "uns"):
    """``uns`` without its record arrays (nested dicts copied where they held one), and the
    record arrays as ``(path, value)`` pairs."""
    kept, records = {}, []
    for key, value in uns.items():
        where = f"{path}/{key}"
        if is_record(value):
            records.append((where, value))
        elif isinstance(value, dict) or (hasattr(value, "items") and hasattr(value, "keys") and not hasattr(value, "columns")):
            inner, found = split(dict(value), where)
            kept[key] = inner
            records.extend(found)
        else:
            kept[key] = value
    return kept, records


def write_with(target, records, write_file, zarr: bool) -> None:
    """``write_file(target)``; where there are record arrays to add, through `write`, which
    adds them with anndata's writer before the file replaces its target."""
    if not records:
        write_file(os.fspath(target))
        return
    write(target, records, write_file, zarr)


def write(target, records, write_rest, zarr: bool, edit=None) -> None:
    """Has ``write_rest(path)`` write the file annpage builds to a temporary beside
    ``target``, adds ``records`` with anndata's ``write_elem`` (and runs ``edit(root group)``),
    syncs it and renames it over ``target``: the target appears only complete, as annpage's
    own writes."""
    import shutil

    target = Path(target)
    # What annpage's own writes refuse to replace (they check their target, here the temporary).
    markers = ("zarr.json", ".zgroup", ".zarray", ".zattrs")
    if target.is_dir() and not zarr:
        raise IsADirectoryError(f"'{target}' is a directory: refusing to replace it")
    if zarr and target.is_dir() and any(target.iterdir()) and not any((target / m).is_file() for m in markers):
        raise FileExistsError(f"'{target}' is a directory that is not a Zarr store: refusing to replace it")
    # A store's temporary ends in .zarr too (writers that choose the format by the name).
    temp = target.with_name(f".{target.name}.{os.getpid()}.annpage-records" + (".zarr" if zarr else ""))
    try:
        write_rest(os.fspath(temp))
        add(temp, records, zarr, edit)
        if zarr:
            _sync_tree(temp)
            _replace_store(temp, target)
        else:
            with open(temp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(temp, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        elif temp.exists():
            temp.unlink()


def add(path, records, zarr: bool = False, edit=None) -> None:
    """Adds ``records`` (``(path, value)`` pairs) to the file or store at ``path`` with
    anndata's ``write_elem`` (and runs ``edit(root group)``); nothing is synced."""
    from anndata.io import write_elem

    if zarr:
        import zarr as zarr_module

        root = zarr_module.open_group(path, mode="r+")
        _add_to(root, records, write_elem, edit)
    else:
        import h5py

        with h5py.File(path, "r+") as f:
            _add_to(f, records, write_elem, edit)


def _add_to(root, records, write_elem, edit) -> None:
    for where, value in records:
        parent, name = where.rsplit("/", 1)
        write_elem(root.require_group(parent), name, value)
    if edit is not None:
        edit(root)


def _sync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                os.fsync(f.fileno())


def _replace_store(temp: Path, target: Path) -> None:
    """Renames the store ``temp`` onto ``target``: an existing store is moved aside first and
    removed once the new one is in place (annpage refused any other directory already)."""
    import shutil

    aside = temp.with_name(temp.name + ".old")
    replaced = target.is_dir()
    if replaced:
        os.replace(target, aside)
    os.replace(temp, target)
    if replaced:
        shutil.rmtree(aside, ignore_errors=True)
