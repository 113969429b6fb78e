"""Flattened views of HDF5 files, to compare what annpage writes with what anndata writes.

`tree(path)` maps every object path to a `Node`: group or dataset, its attributes (normalised
to plain Python values), and for datasets the dtype, shape and compression filter. Two files
that anndata would write identically have equal trees, apart from chunk shapes and the order
of members, which are left out on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np


def normalize_dtype(dtype: np.dtype) -> str:
    """A dtype as text, with h5py's string dtypes named by their encoding and length kind."""
    info = h5py.check_string_dtype(dtype)
    if info is not None:
        length = "vlen" if info.length is None else f"fixed{info.length}"
        return f"str[{info.encoding},{length}]"
    if dtype.names is not None:
        fields = ", ".join(f"{name}: {normalize_dtype(dtype.fields[name][0])}" for name in dtype.names)
        return f"compound{{{fields}}}"
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return f"{normalize_dtype(base)}{list(shape)}"
    return dtype.str


def normalize_value(value: Any) -> Any:
    """An attribute value as a comparable Python value (arrays become lists)."""
    if isinstance(value, h5py.Reference):
        return "<object reference>"
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [normalize_value(v) for v in value.tolist()] if value.ndim else normalize_value(value[()])
    if isinstance(value, list):
        return [normalize_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Node:
    """One HDF5 object, as far as the format is concerned."""

    kind: str
    attrs: dict[str, tuple[str, Any]] = field(default_factory=dict)
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    compression: str | None = None
    compression_opts: Any = None

    def describe(self) -> str:
        if self.kind == "group":
            return f"group attrs={self.attrs}"
        return (
            f"dataset dtype={self.dtype} shape={self.shape} compression={self.compression}"
            f"({self.compression_opts}) attrs={self.attrs}"
        )


def _attrs(obj: h5py.HLObject) -> dict[str, tuple[str, Any]]:
    out = {}
    for name in obj.attrs:
        dtype = obj.attrs.get_id(name).dtype
        out[name] = (normalize_dtype(dtype), normalize_value(obj.attrs[name]))
    return out


def tree(path: Path) -> dict[str, Node]:
    """Every object of the file under its path (`/` for the root)."""
    nodes: dict[str, Node] = {}
    with h5py.File(path, "r") as f:
        nodes["/"] = Node("group", _attrs(f))

        def visit(name: str, obj: h5py.HLObject) -> None:
            if isinstance(obj, h5py.Group):
                nodes[f"/{name}"] = Node("group", _attrs(obj))
            elif isinstance(obj, h5py.Dataset):
                nodes[f"/{name}"] = Node(
                    "dataset",
                    _attrs(obj),
                    dtype=normalize_dtype(obj.dtype),
                    shape=obj.shape,
                    compression=obj.compression,
                    compression_opts=obj.compression_opts,
                )

        f.visititems(visit)
    return nodes


def differences(expected: dict[str, Node], actual: dict[str, Node]) -> list[str]:
    """Human-readable differences between two trees (empty when they agree)."""
    out = []
    for path in sorted(expected.keys() - actual.keys()):
        out.append(f"{path}: missing ({expected[path].describe()})")
    for path in sorted(actual.keys() - expected.keys()):
        out.append(f"{path}: unexpected ({actual[path].describe()})")
    for path in sorted(expected.keys() & actual.keys()):
        e, a = expected[path], actual[path]
        if e != a:
            out.append(f"{path}:\n      anndata: {e.describe()}\n      annpage: {a.describe()}")
    return out
