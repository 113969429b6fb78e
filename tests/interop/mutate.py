"""Mutation fuzzing of the `annpage` CLI: mutants of small fixtures, and runs judged by the rules.

Shared by `tests/interop/test_fuzz.py` (a bounded run in the test command) and
`scripts/fuzz.py` (hours by hand). Every mutant comes from one integer seed, so a failure is
reproduced by `mutant(seed, path)` alone.

A run of a verb passes when the process exits 0, or exits 1 with exactly one line
`annpage: error: ...` on stderr; it fails on a signal (abort, stack overflow), a panic (101),
a run over `TIMEOUT` seconds or a peak RSS over `MAX_RSS_MB`.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from support import FIXTURES

# Small fixtures covering every element kind and the legacy layouts.
SOURCES = [
    "all_elements",
    "all_elements_gzip",
    "x_csr_f32",
    "x_csc_f64",
    "x_dense_f32",
    "x_dense_bool",
    "empty_obs",
    "no_x",
    "nullable_strings",
    "uns_special",
    "awkward",
    "unicode",
    "legacy/legacy_v0_7_csr",
    "legacy/legacy_v0_6_dense",
    "hdf5_latest",
]

TIMEOUT = 20.0
MAX_RSS_MB = 1024
# Address-space cap of each run: a runaway allocation fails (and is reported) before it can
# take the machine's memory; far above what any run here needs.
ADDRESS_SPACE = 8 << 30

# Mutation kinds. The ones that claim huge sizes are in HUGE_KINDS (see test_fuzz.py).
HUGE_KINDS = ("huge_shape_attr",)
KINDS = (
    "flip_bytes",
    "truncate",
    "delete_object",
    "rename_object",
    "delete_attr",
    "change_attr",
    "retype_dataset",
    "reshape_dataset",
    "scramble_values",
    *HUGE_KINDS,
)

ENCODINGS = [
    "anndata", "raw", "array", "string-array", "csr_matrix", "csc_matrix", "dataframe", "categorical",
    "nullable-integer", "nullable-boolean", "nullable-string-array", "string", "numeric-scalar", "dict",
    "rec-array", "awkward-array", "", "foo",
]


def _objects(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visit(names.append)
    return sorted(names)


def _attr_owners(f: h5py.File) -> list[str]:
    return ["/"] + [n for n in _objects(f) if len(f[n].attrs) > 0]


def _odd_value(rng: random.Random, old) -> object:
    """A replacement for an attribute value: another string, number, array or type."""
    choice = rng.randrange(7)
    if choice == 0:
        return rng.choice(ENCODINGS)
    if choice == 1:
        return rng.choice(["0.1.0", "0.2.0", "9.9.9", "", "x"])
    if choice == 2:
        return rng.choice([0, -1, 1, 2, 3, 7, 255, 2**31 - 1])
    if choice == 3:
        return np.array([rng.randrange(-2, 50) for _ in range(rng.randrange(0, 4))], dtype=np.int64)
    if choice == 4:
        return np.array(["obs", "_index", "nope", ""][: rng.randrange(1, 5)], dtype=h5py.string_dtype())
    if choice == 5:
        return rng.random()
    if isinstance(old, np.ndarray) and old.size > 0 and old.dtype.kind in "iu":
        new = old.copy()
        new.flat[rng.randrange(new.size)] += rng.choice([-1, 1, 5, -5])
        return new
    return b"\xff\xfe"


def _structural(f: h5py.File, kind: str, rng: random.Random) -> str:
    objects = _objects(f)
    datasets = [n for n in objects if isinstance(f[n], h5py.Dataset)]
    if kind == "delete_object" and objects:
        name = rng.choice(objects)
        del f[name]
        return f"deleted {name}"
    if kind == "rename_object" and objects:
        name = rng.choice(objects)
        parent = name.rsplit("/", 1)[0] if "/" in name else ""
        new = f"{parent}/{rng.choice(['X', 'obs', 'var', 'indptr', 'data', 'codes', '_index', 'zz'])}"
        if new.lstrip("/") in objects or new.lstrip("/").startswith(name + "/"):
            new = f"{parent}/renamed_{rng.randrange(100)}"
        f.move(name, new)
        return f"renamed {name} to {new}"
    if kind == "delete_attr":
        owner = rng.choice(_attr_owners(f))
        keys = list(f[owner].attrs)
        if keys:
            key = rng.choice(keys)
            del f[owner].attrs[key]
            return f"deleted attribute {key} of {owner}"
    if kind in ("change_attr", "huge_shape_attr"):
        owners = _attr_owners(f)
        owner = rng.choice(owners)
        attrs = f[owner].attrs
        keys = list(attrs)
        if kind == "huge_shape_attr":
            with_shape = [o for o in owners if "shape" in f[o].attrs or "h5sparse_shape" in f[o].attrs]
            if with_shape:
                owner = rng.choice(with_shape)
                key = "shape" if "shape" in f[owner].attrs else "h5sparse_shape"
                value = np.array([rng.choice([2**31, 2**40, 2**62, 1]) for _ in range(2)], dtype=np.int64)
                f[owner].attrs[key] = value
                return f"set {key} of {owner} to {value.tolist()}"
        key = rng.choice(keys) if keys and rng.random() < 0.8 else rng.choice(["encoding-type", "encoding-version"])
        value = _odd_value(rng, attrs.get(key))
        attrs[key] = value
        return f"set attribute {key} of {owner} to {value!r}"
    if kind in ("retype_dataset", "reshape_dataset", "scramble_values") and datasets:
        name = rng.choice(datasets)
        ds = f[name]
        data = ds[()]
        attrs = dict(ds.attrs)
        if kind == "retype_dataset":
            dtype = rng.choice(["i1", "u4", "i8", "f4", "f8", "?", "S3", "str"])
            try:
                new = np.asarray(data).astype(h5py.string_dtype() if dtype == "str" else dtype)
            except (ValueError, TypeError):
                new = np.zeros(np.shape(data), dtype="i8")
        elif kind == "reshape_dataset":
            flat = np.asarray(data).reshape(-1)
            shape = rng.choice(["shorter", "longer", "scalar", "2d", "empty"])
            if shape == "shorter":
                new = flat[: max(0, flat.size - rng.randrange(1, 4))]
            elif shape == "longer":
                new = np.concatenate([flat, flat[:3]]) if flat.size else np.zeros(3)
            elif shape == "scalar":
                new = flat[0] if flat.size else np.float64(1.0)
            elif shape == "2d":
                new = flat.reshape(1, -1)
            else:
                new = flat[:0]
        else:
            new = np.array(data, copy=True)
            if new.size and new.dtype.kind in "iuf":
                for _ in range(rng.randrange(1, 4)):
                    new.flat[rng.randrange(new.size)] = rng.choice([-1, 0, 1, 2**30, 127, -(2**31)])
            elif new.size and new.dtype.kind == "b":
                new.flat[rng.randrange(new.size)] ^= True
        del f[name]
        out = f.create_dataset(name, data=new)
        for k, v in attrs.items():
            out.attrs[k] = v
        return f"{kind} {name} to {np.shape(new)} {np.asarray(new).dtype}"
    return f"{kind}: nothing to change"


def mutant(seed: int, dst: Path, kinds: tuple[str, ...] = KINDS) -> str:
    """Writes the mutant of `seed` (one of `kinds` of mutation) to `dst`; returns what was done."""
    rng = random.Random(seed)
    src = FIXTURES / f"{rng.choice(SOURCES)}.h5ad"
    return _apply(src, dst, rng.choice(kinds), rng)


def _apply(src: Path, dst: Path, kind: str, rng: random.Random) -> str:
    shutil.copy(src, dst)
    what = f"{src.relative_to(FIXTURES)}: "
    if kind == "flip_bytes":
        data = bytearray(dst.read_bytes())
        flips = []
        for _ in range(rng.randrange(1, 24)):
            at = rng.randrange(len(data))
            data[at] ^= 1 << rng.randrange(8)
            flips.append(at)
        dst.write_bytes(bytes(data))
        return what + f"flipped bytes at {sorted(flips)}"
    if kind == "truncate":
        size = dst.stat().st_size
        keep = rng.randrange(size)
        with dst.open("r+b") as f:
            f.truncate(keep)
        return what + f"truncated to {keep} of {size} bytes"
    done = []
    with h5py.File(dst, "r+") as f:
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            try:
                done.append(_structural(f, kind, rng))
            except Exception as e:  # noqa: BLE001 - h5py refused this change: keep the others
                done.append(f"{kind} failed in h5py ({type(e).__name__})")
    return what + "; ".join(done)


@dataclass
class Outcome:
    """One run of a verb on a mutant."""

    verb: str
    returncode: int
    stderr: str
    seconds: float
    max_rss_mb: float

    def failure(self) -> str | None:
        """Why the run breaks the rules, or None."""
        if self.returncode == -9 and self.seconds >= TIMEOUT:
            return f"hung: killed after {self.seconds:.1f} s"
        if self.seconds >= TIMEOUT:
            return f"took {self.seconds:.1f} s"
        if self.returncode < 0:
            return f"killed by signal {-self.returncode}: {self.stderr[-300:]!r}"
        if self.max_rss_mb > MAX_RSS_MB:
            return f"peak RSS {self.max_rss_mb:.0f} MB"
        if self.returncode == 0:
            return None
        lines = self.stderr.strip().splitlines()
        if self.returncode == 1 and len(lines) == 1 and lines[0].startswith("annpage: error: "):
            return None
        return f"exit {self.returncode} with stderr {self.stderr[-500:]!r}"


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def verb_commands(annpage: Path, path: Path, work: Path) -> dict[str, list[str]]:
    """The verbs run on each mutant."""
    return {
        "info": [str(annpage), "info", str(path)],
        "convert": [str(annpage), "convert", str(path), str(work / "convert.h5ad"), "--compression", "gzip"],
        "subset": [str(annpage), "subset", str(path), str(work / "subset.h5ad"), "--cache-mb", "1",
                   "--obs-indices", str(work / "obs.txt")],
        "stats": [str(annpage), "stats", str(path), "--out-prefix", str(work / "stats"), "--chunk-rows", "7"],
    }


def run_verb(cmd: list[str], verb: str, timeout: float = TIMEOUT) -> Outcome:
    """Runs `cmd` (time and address-space limits: killed after `timeout` seconds) and reads its
    peak RSS with `os.wait4`. That peak starts at this process's RSS when it forks (Linux counts
    the pages the child shares until it execs): a bound well above the test process's size
    (MAX_RSS_MB) is judged fairly, a tight one needs a small parent (test_fuzz.py's PEAK)."""
    start = time.monotonic()
    # Judged as a user runs it: RUST_BACKTRACE (set by whoever debugs) adds panic reports.
    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_limit, env=env)
    assert proc.stderr is not None
    err = b""
    deadline = start + timeout
    os.set_blocking(proc.stderr.fileno(), False)
    while True:
        chunk = proc.stderr.read()
        if chunk:
            err += chunk
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status, usage = st, ru
            break
        if time.monotonic() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.002)
    rest = proc.stderr.read()
    if rest:
        err += rest
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - start
    return Outcome(verb, proc.returncode, err.decode(errors="replace"), seconds, usage.ru_maxrss / 1024.0)


def check_mutant(annpage: Path, path: Path, work: Path) -> list[Outcome]:
    """Runs every verb on the mutant at `path`; returns the runs that break the rules."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "obs.txt").write_text("2\n0\n1\n0\n")
    bad = []
    for verb, cmd in verb_commands(annpage, path, work).items():
        outcome = run_verb(cmd, verb)
        if outcome.failure() is not None:
            bad.append(outcome)
    return bad


def fuzz(
    annpage: Path,
    seeds: Iterator[int],
    work: Path,
    keep_going: Callable[[], bool],
    make: Callable[[int, Path], str] = mutant,
    on_failure: Callable[[int, str, Path, list[Outcome]], None] | None = None,
    suffix: str = ".h5ad",
) -> tuple[int, list[tuple[int, str, list[Outcome]]]]:
    """Checks mutants of `seeds` (files, or directories for a `.zarr` suffix) while
    `keep_going()`; returns the count and the failures."""
    failures = []
    count = 0
    for seed in seeds:
        if not keep_going():
            break
        path = work / f"mutant-{seed}{suffix}"
        what = make(seed, path)
        bad = check_mutant(annpage, path, work / f"run-{seed}")
        count += 1
        if bad:
            failures.append((seed, what, bad))
            if on_failure is not None:
                on_failure(seed, what, path, bad)
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        shutil.rmtree(work / f"run-{seed}", ignore_errors=True)
    return count, failures


def describe_failure(seed: int, what: str, bad: list[Outcome]) -> str:
    """One paragraph about a failing mutant."""
    runs = "; ".join(f"{o.verb}: {o.failure()}" for o in bad)
    return f"seed {seed} ({what}): {runs}"
