"""Mutants of Zarr stores for the CLI fuzz (`mutate.py` judges the runs; this makes the inputs).

Sources are small fixtures written as Zarr by anndata (v2; v3, plain and with its automatic
shards) and by annpage (v3 sharded, zstd; v2, gzip), once per process into a cache directory. A mutant
is one source copied and changed by one kind of mutation: a value anywhere in a metadata JSON
replaced (huge shapes and chunk shapes, negative or odd numbers, other types, codecs and data
types that do not exist) or its key deleted, a metadata file made invalid JSON, bytes of a
chunk or shard flipped, a chunk or shard truncated, a file or directory deleted, a shard's
index (its last bytes) overwritten with huge offsets and lengths.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

from support import FIXTURES

SOURCES = ["all_elements", "x_csr_f32", "x_csc_f64", "x_dense_f32", "empty_obs", "nullable_strings", "awkward"]
# How each source store is written: by anndata (zarr format) or annpage (convert's arguments).
WRITERS = {
    "anndata-v2": ("anndata", 2),
    "anndata-v3": ("anndata", 3),
    # anndata's automatic shards: the layout annpage reads itself, without zarrs.
    "anndata-v3-sharded": ("anndata", 3, True),
    "annpage-v3-sharded": ("annpage", ["--zarr-format", "3", "--compression", "zstd", "--chunk-rows", "3",
                                       "--shard-rows", "6"]),
    "annpage-v2-gzip": ("annpage", ["--zarr-format", "2", "--compression", "gzip", "--chunk-rows", "4"]),
}
KINDS = ("json_value", "json_delete", "json_garbage", "flip_bytes", "truncate", "delete_path", "shard_index")
METADATA = {".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"}


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def source(cache: Path, name: str, writer: str, annpage: Path) -> Path:
    """The store of fixture `name` written by `writer` (see WRITERS), made once into `cache`."""
    dst = cache / f"{name}.{writer}.zarr"
    if dst.exists():
        return dst
    tmp = cache / f"{name}.{writer}.tmp.zarr"
    shutil.rmtree(tmp, ignore_errors=True)
    who, how, *sharded = WRITERS[writer]
    h5ad = FIXTURES / f"{name}.h5ad"
    if who == "anndata":
        import warnings

        import anndata as ad

        a = ad.read_h5ad(h5ad)
        with warnings.catch_warnings(), ad.settings.override(
            zarr_write_format=how, allow_write_nullable_strings=True, auto_shard_zarr_v3=bool(sharded)
        ):
            warnings.simplefilter("ignore")
            a.write_zarr(tmp)
    else:
        subprocess.run([str(annpage), "convert", str(h5ad), str(tmp), *how], check=True, capture_output=True)
    tmp.rename(dst)
    return dst


def _odd(rng: random.Random, old: object) -> object:
    """A replacement for a JSON value: huge, negative or fractional numbers, other types, names
    of codecs and data types that exist elsewhere or nowhere."""
    choice = rng.randrange(8)
    if choice == 0:
        return rng.choice([2**31, 2**40, 2**62, 2**64 + 1, -1, 0, 1, 3, 0.5, 1e308])
    if choice == 1:
        return [rng.choice([0, 1, 2**40, -3, 2**62]) for _ in range(rng.randrange(0, 4))]
    if choice == 2:
        return rng.choice(["<f8", "|b1", "<U4", "|O", "string", "uint8", "float16", "complex64", "r16", "nope", ""])
    if choice == 3:
        return rng.choice(["zstd", "gzip", "blosc", "sharding_indexed", "bytes", "crc32c", "vlen-utf8", "transpose"])
    if choice == 4:
        return rng.choice([None, True, {}, [], "", {"name": "nope"}, {"id": "zlib", "level": 99}])
    if choice == 5:
        return rng.choice(["csr_matrix", "csc_matrix", "array", "dataframe", "categorical", "string-array",
                           "nullable-integer", "dict", "anndata", "0.1.0", "0.2.0", "9.9.9"])
    if isinstance(old, int) and not isinstance(old, bool):
        return old + rng.choice([-1, 1, 7, -7, 2**33])
    if isinstance(old, list) and old:
        new = list(old)
        new[rng.randrange(len(new))] = _odd(rng, None)
        return new
    return "\udcff" if rng.random() < 0.1 else "x"


def _paths(doc: object, at: tuple = ()) -> list[tuple]:
    """Every path to a value in a JSON document (keys and list positions)."""
    out = [at] if at else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, at + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, at + (i,))
    return out


def _set(doc: object, path: tuple, value: object, delete: bool) -> None:
    for k in path[:-1]:
        doc = doc[k]  # type: ignore[index]
    if delete:
        del doc[path[-1]]  # type: ignore[index]
    else:
        doc[path[-1]] = value  # type: ignore[index]


def _edit_json(rng: random.Random, dst: Path, kind: str) -> str:
    metas = [p for p in _files(dst) if p.name in METADATA]
    if not metas:
        return "no metadata to edit"
    meta = rng.choice(metas)
    rel = meta.relative_to(dst)
    if kind == "json_garbage":
        text = meta.read_text()
        cut = rng.randrange(len(text) + 1)
        meta.write_text(text[:cut] + rng.choice(["", "}", "{{", "\x00", "[1e999999]", '{"a": 1'])[: 8])
        return f"{rel}: made invalid after {cut} characters"
    doc = json.loads(meta.read_text())
    done = []
    # Edits favour the keys that size things: shapes, chunk shapes and index lengths.
    for _ in range(rng.choice([1, 1, 2, 3])):
        paths = _paths(doc)
        if not paths:
            break
        sizing = [p for p in paths if any(str(k) in ("shape", "chunks", "chunk_shape", "h5sparse_shape") for k in p)]
        path = rng.choice(sizing if sizing and rng.random() < 0.4 else paths)
        if kind == "json_delete":
            _set(doc, path, None, delete=True)
            done.append(f"deleted {list(path)}")
        else:
            value = _odd(rng, _get(doc, path))
            _set(doc, path, value, delete=False)
            done.append(f"set {list(path)} to {value!r}")
    text = json.dumps(doc, ensure_ascii=False) if rng.random() < 0.9 else json.dumps(doc)
    meta.write_bytes(text.encode("utf-8", "surrogateescape"))
    return f"{rel}: " + "; ".join(done)


def _get(doc: object, path: tuple) -> object:
    for k in path:
        doc = doc[k]  # type: ignore[index]
    return doc


def _chunks(dst: Path) -> list[Path]:
    return [p for p in _files(dst) if p.name not in METADATA]


def apply(src: Path, dst: Path, kind: str, rng: random.Random) -> str:
    """Copies `src` to `dst` and applies one mutation of `kind`; returns what was done."""
    shutil.copytree(src, dst)
    chunks = _chunks(dst)
    if kind.startswith("json_"):
        return _edit_json(rng, dst, kind)
    if kind == "delete_path":
        paths = sorted(p for p in dst.rglob("*"))
        victim = rng.choice(paths)
        if victim.is_dir():
            shutil.rmtree(victim)
        else:
            victim.unlink()
        return f"deleted {victim.relative_to(dst)}"
    if not chunks:
        return f"{kind}: no chunks"
    chunk = rng.choice(chunks)
    rel = chunk.relative_to(dst)
    data = bytearray(chunk.read_bytes())
    if kind == "flip_bytes" and data:
        at = sorted(rng.randrange(len(data)) for _ in range(rng.randrange(1, 8)))
        for i in at:
            data[i] ^= 1 << rng.randrange(8)
        chunk.write_bytes(bytes(data))
        return f"{rel}: flipped bytes at {at}"
    if kind == "truncate":
        keep = rng.randrange(len(data) + 1)
        chunk.write_bytes(bytes(data[:keep]))
        return f"{rel}: truncated to {keep} of {len(data)} bytes"
    if kind == "shard_index" and len(data) >= 16:
        # A shard's index is its last 16 bytes per inner chunk (offset, length; a crc32c
        # after them when the index is checksummed): overwrite one pair near the end.
        end = len(data) - rng.choice([0, 4])
        at = max(0, end - 16 * rng.randrange(1, 4))
        value = rng.choice([2**63 - 1, 2**40, len(data), len(data) + 1, 0, 2**64 - 1])
        data[at : at + 8] = value.to_bytes(8, "little")
        data[at + 8 : at + 16] = rng.choice([2**40, 2**62, 1, 0, 2**64 - 1]).to_bytes(8, "little")
        chunk.write_bytes(bytes(data[: len(data)]))
        return f"{rel}: index entry at byte {at} set to offset {value}"
    return f"{kind}: nothing to change in {rel}"


def mutant(seed: int, dst: Path, cache: Path, annpage: Path) -> str:
    """Writes the Zarr mutant of `seed` to `dst` (a directory); returns what was done."""
    rng = random.Random(seed)
    name = rng.choice(SOURCES)
    writer = rng.choice(sorted(WRITERS))
    src = source(cache, name, writer, annpage)
    kind = rng.choice(KINDS)
    return f"{name} ({writer}): " + apply(src, dst, kind, rng)
