"""A bounded mutation fuzz of `info`, `convert`, `subset` and `stats` (see `mutate.py`).

Mutants of small fixtures (byte flips, truncations, h5py edits of objects, attributes, dtypes,
shapes and values) are checked for `ANNPAGE_FUZZ_SECONDS` (default 30) seconds, at most
`ANNPAGE_FUZZ_COUNT` (default 800) of them: every verb must exit 0 or 1 with one error line,
within 20 s and 1 GB. The seeds are consecutive from `ANNPAGE_FUZZ_SEED` (default 0,
printed), so a failing seed is reproduced with `mutate.mutant(seed, path)`, and a faster
machine does not reach seeds a slower one never checked; `scripts/fuzz.py` runs the same
checks for hours. Mutants of Zarr stores (`mutate_zarr.py`: metadata JSON edits, chunk and
shard corruption, deleted files) are checked the same way for `ANNPAGE_FUZZ_ZARR_SECONDS`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from anndata.io import write_elem

import mutate
import mutate_zarr


def _fuzz(annpage_bin: Path, work: Path, seconds_var: str, default_seconds: float, **fuzz_args) -> None:
    """Checks mutants from `ANNPAGE_FUZZ_SEED` on for `seconds_var` seconds (at most
    `ANNPAGE_FUZZ_COUNT` of them); `fuzz_args` go to `mutate.fuzz` (how mutants are made)."""
    seed = int(os.environ.get("ANNPAGE_FUZZ_SEED", "0"))
    seconds = float(os.environ.get(seconds_var, default_seconds))
    limit = int(os.environ.get("ANNPAGE_FUZZ_COUNT", "800"))
    print(f"fuzz: seeds from {seed} for {seconds:.0f} s (ANNPAGE_FUZZ_SEED to change)")
    end = time.monotonic() + seconds
    count, failures = mutate.fuzz(
        annpage_bin, range(seed, seed + limit), work, keep_going=lambda: time.monotonic() < end, **fuzz_args
    )
    print(f"fuzz: {count} mutants, {len(failures)} failing")
    assert count >= min(10, limit), f"only {count} mutants in {seconds} s"
    assert not failures, "\n".join(mutate.describe_failure(s, what, bad) for s, what, bad in failures)


def test_mutants_exit_cleanly(annpage_bin: Path, tmp_path: Path) -> None:
    _fuzz(annpage_bin, tmp_path, "ANNPAGE_FUZZ_SECONDS", 30)


def test_zarr_mutants_exit_cleanly(annpage_bin: Path, tmp_path: Path) -> None:
    """The same rules on mutants of Zarr stores (`mutate_zarr.py`), for
    `ANNPAGE_FUZZ_ZARR_SECONDS` (default 20) seconds."""
    sources = tmp_path / "sources"
    sources.mkdir()
    _fuzz(
        annpage_bin,
        tmp_path,
        "ANNPAGE_FUZZ_ZARR_SECONDS",
        20,
        make=lambda s, p: mutate_zarr.mutant(s, p, sources, annpage_bin),
        suffix=".zarr",
    )


KNOWN = Path(__file__).parent / "known"


# Two files the fuzz found that trap libhdf5 2.2 itself (h5py too) when it reads an attribute's
# strings; annpage checks the references against the global heap first (see
# docs/architecture.md, Errors).


def test_a_corrupt_global_heap_does_not_hang(annpage_bin: Path, tmp_path: Path) -> None:
    """Fuzz seed 777077 (flipped bytes of x_dense_bool.h5ad), kept as a file: libhdf5 loops
    forever on its free space of 0 bytes."""
    path = str(KNOWN / "libhdf5_heap_loop.h5ad")
    info = mutate.run_verb([str(annpage_bin), "info", path], "info", timeout=10)
    assert info.returncode == 1 and info.failure() is None, info.failure()
    stats = [str(annpage_bin), "stats", path, "--out-prefix", str(tmp_path / "s")]
    out = mutate.run_verb(stats, "stats", timeout=10)
    assert out.returncode == 1 and out.failure() is None, out.failure()
    assert "attribute 'encoding-type': free space of 0 bytes" in out.stderr, out.stderr


def test_a_legacy_compound_over_a_corrupt_global_heap_does_not_hang(annpage_bin: Path, tmp_path: Path) -> None:
    """Fuzz seed 916104 (flipped bytes of legacy/legacy_v0_6_dense.h5ad), kept as a file: its
    obs is a compound dataset with string fields, whose strings lie in a collection with free
    space of 0 bytes; libhdf5 loops forever reading it."""
    path = str(KNOWN / "libhdf5_heap_loop_legacy.h5ad")
    for verb, args in (("stats", ["--out-prefix", str(tmp_path / "s")]), ("convert", [str(tmp_path / "c.h5ad")])):
        out = mutate.run_verb([str(annpage_bin), verb, path, *args], verb, timeout=10)
        assert out.returncode == 1 and out.failure() is None, out.failure()
        assert "/obs: malformed element: free space of 0 bytes" in out.stderr, out.stderr


def test_a_local_heap_whose_free_list_loops_is_refused(annpage_bin: Path, tmp_path: Path) -> None:
    """Fuzz seed 961884 (flipped bytes of legacy/legacy_v0_7_csr.h5ad), kept as a file: its root
    group's local heap has a free list that comes back on itself, which libhdf5 follows while
    allocating a node a step (8 GB, then the fuzz's kill)."""
    path = str(KNOWN / "libhdf5_local_heap_loop.h5ad")
    for verb, args in (("info", []), ("stats", ["--out-prefix", str(tmp_path / "s")])):
        out = mutate.run_verb([str(annpage_bin), verb, path, *args], verb, timeout=10)
        assert out.returncode == 1 and out.failure() is None, out.failure()
        assert "the free list of the local heap at" in out.stderr, out.stderr


def _without_free_space(data: bytearray, start: int = 0) -> None:
    """Sets the free space of every global heap collection in `data` from offset `start` on to
    0 bytes (libhdf5 2.2 loops forever on it); in a collection its objects fill, the last
    object becomes that."""
    le = lambda b: int.from_bytes(b, "little")  # noqa: E731
    at = data.find(b"GCOL", start)
    while at >= 0:
        end, pos = at + le(data[at + 8 : at + 16]), at + 16
        while le(data[pos : pos + 2]) != 0:
            nxt = pos + 16 + -(-le(data[pos + 8 : pos + 16]) // 8) * 8
            if nxt + 16 > end:
                data[pos : pos + 2] = b"\0\0"
                break
            pos = nxt
        data[pos + 8 : pos + 16] = bytes(8)
        at = data.find(b"GCOL", at + 4)


def test_attributes_in_dense_storage_over_a_corrupt_global_heap_do_not_hang(annpage_bin: Path, tmp_path: Path) -> None:
    """An AnnData written with version 2 object headers (h5py's `libver="latest"`) whose obs has
    more attributes than fit in its header: libhdf5 keeps them in a fractal heap (dense
    storage), and follows their strings into the global heap like any other's. obs is written
    again in a second session, so that its strings lie in a collection of their own, the only
    one corrupted (the root's attributes, read first, are left whole)."""
    adata = ad.AnnData(np.ones((3, 2), dtype=np.float32), obs=pd.DataFrame({"t": ["a", "b", "c"]}, index=["x", "y", "z"]))
    path = tmp_path / "dense.h5ad"
    with h5py.File(path, "w", libver="latest") as f:
        write_elem(f, "/", adata)
    whole = path.read_bytes()
    with h5py.File(path, "a", libver="latest") as f:
        # Written whole before the old obs is deleted: nothing of this session's lands in the
        # collection that held the old one's strings.
        write_elem(f, "obs_again", adata.obs)
        for i in range(10):
            f["obs_again"].attrs[f"note{i}"] = f"value {i}"
        del f["obs"]
        f.move("obs_again", "obs")
    stats = [str(annpage_bin), "stats", str(path), "--out-prefix", str(tmp_path / "s")]
    assert mutate.run_verb(stats, "stats", timeout=60).returncode == 0
    data = bytearray(path.read_bytes())
    _without_free_space(data, start=whole.rfind(b"GCOL") + 4)
    path.write_bytes(data)
    out = mutate.run_verb(stats, "stats", timeout=10)
    assert out.returncode == 1 and out.failure() is None, out.failure()
    assert "free space of 0 bytes" in out.stderr, out.stderr


def _with_many_attributes(path: Path, n: int) -> None:
    """An AnnData whose uns holds an element of an encoding annpage keeps verbatim, with `n`
    attributes besides its two encoding attributes (version 2 headers: h5py writes them fast)."""
    adata = ad.AnnData(np.ones((3, 2), dtype=np.float32))
    with h5py.File(path, "w", libver="latest") as f:
        write_elem(f, "/", adata)
        g = f["uns"].create_group("odd")
        g.attrs["encoding-type"], g.attrs["encoding-version"] = "made-up", "0.1.0"
        for i in range(n):
            g.attrs[f"a{i}"] = i


def test_an_object_with_too_many_attributes_is_refused_in_time(annpage_bin: Path, tmp_path: Path) -> None:
    """libhdf5 finds an attribute by walking its object's attribute messages: reading every one
    of 20,000 took over ten minutes. annpage reads at most 1,024 from one object, and those
    with one walk of the header for their checks."""
    few, many, out = tmp_path / "few.h5ad", tmp_path / "many.h5ad", tmp_path / "out.h5ad"
    _with_many_attributes(few, 1000)
    _with_many_attributes(many, 20_000)
    done = mutate.run_verb([str(annpage_bin), "convert", str(few), str(out)], "convert", timeout=60)
    assert done.returncode == 0, done.stderr
    with h5py.File(out, "r") as f:
        assert len(f["uns/odd"].attrs) == 1002 and f["uns/odd"].attrs["a999"] == 999
    refused = mutate.run_verb([str(annpage_bin), "convert", str(many), str(out)], "convert", timeout=10)
    assert refused.returncode == 1 and refused.failure() is None, refused.failure()
    assert f"{many}: /uns/odd: unsupported: the object has 20002 attributes" in refused.stderr, refused.stderr


def test_an_external_link_to_the_file_itself_is_refused(annpage_bin: Path, tmp_path: Path) -> None:
    """A member of uns that is an external link to the same file's uns: libhdf5 opens the file
    again at every level, each time under the same path, and reading it overflowed the stack."""
    path = tmp_path / "ext.h5ad"
    ad.AnnData(np.ones((3, 2), dtype=np.float32), uns={"d": {"x": 1}}).write_h5ad(path)
    with h5py.File(path, "a") as f:
        f["uns/ext"] = h5py.ExternalLink(str(path), "/uns")
    for verb, args in (("info", []), ("convert", [str(tmp_path / "out.h5ad")])):
        out = mutate.run_verb([str(annpage_bin), verb, str(path), *args], verb, timeout=10)
        assert out.returncode == 1 and out.failure() is None, out.failure()
        assert "/uns/ext: unsupported: 'ext' is an external link to another file" in out.stderr, out.stderr


def test_a_soft_link_through_an_external_link_is_refused(annpage_bin: Path, tmp_path: Path) -> None:
    """`uns/s` is a soft link to `/hidden/secret`, and `/hidden` an external link to another
    file's `/uns`: the member's own link is soft, and annpage read the other file's element."""
    other, path = tmp_path / "other.h5ad", tmp_path / "soft.h5ad"
    ad.AnnData(np.ones((3, 2), dtype=np.float32), uns={"secret": {"x": 42}}).write_h5ad(other)
    ad.AnnData(np.ones((3, 2), dtype=np.float32)).write_h5ad(path)
    with h5py.File(path, "a") as f:
        f["hidden"] = h5py.ExternalLink(str(other), "/uns")
        f["uns/s"] = h5py.SoftLink("/hidden/secret")
    out = mutate.run_verb([str(annpage_bin), "convert", str(path), str(tmp_path / "out.h5ad")], "convert", timeout=10)
    assert out.returncode == 1 and out.failure() is None, out.failure()
    assert "/uns/s: unsupported: 's' leads into another file" in out.stderr, out.stderr


def test_loom_and_10x_members_behind_external_links_are_refused(annpage_bin: Path, tmp_path: Path) -> None:
    """The loom and 10x readers open their members themselves, through the same checks."""
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["m"] = np.ones((2, 3), dtype=np.float32)
    loom = tmp_path / "x.loom"
    with h5py.File(loom, "w") as f:
        f.create_group("row_attrs")["Gene"] = np.array([b"g1", b"g2"])
        f.create_group("col_attrs")["CellID"] = np.array([b"c1", b"c2", b"c3"])
        f["matrix"] = h5py.ExternalLink(str(other), "/m")
    tenx = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(tenx, "w") as f:
        f["matrix"] = h5py.ExternalLink(str(other), "/")
    for src, element in ((loom, "/matrix: unsupported: 'matrix'"), (tenx, "unsupported: 'matrix'")):
        out = mutate.run_verb([str(annpage_bin), "convert", str(src), str(tmp_path / "out.h5ad")], "convert", timeout=10)
        assert out.returncode == 1 and out.failure() is None, out.failure()
        assert f"{element} is an external link to another file" in out.stderr, out.stderr


# Runs argv[1:] as a child of this small process and prints its exit status and peak RSS (KiB):
# a process forked from the test's own (hundreds of MB after the suite has run a while) starts
# its peak RSS at its parent's size, which hides whether annpage itself allocated much.
PEAK = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[1], sys.argv[1:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def test_a_string_attribute_claiming_a_gigabyte_is_not_allocated(annpage_bin: Path) -> None:
    """Fuzz seed 779045 (flipped bytes of unicode.h5ad), kept as a file: libhdf5 allocates the
    ~1 GB one reference claims before it fails; annpage refuses the reference first."""
    path = str(KNOWN / "libhdf5_vlen_claim.h5ad")
    run = subprocess.run([sys.executable, "-S", "-c", PEAK, str(annpage_bin), "info", path],
                         capture_output=True, text=True, timeout=60)
    code, peak_kib = (int(v) for v in run.stdout.split())
    assert code == 1 and len(run.stderr.splitlines()) == 1, run.stderr
    assert peak_kib < 256 * 1024, (peak_kib, run.stderr)
    # The reference itself, refused by name where a read reaches it (Python reads every element).
    script = "import sys, annpage\ntry:\n    annpage.read_h5ad(sys.argv[1])\nexcept annpage.FormatError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, timeout=120)
    assert "attribute 'encoding-version': value 0 claims 1073741829 bytes" in out.stdout, (out.stdout, out.stderr)


def test_mutants_are_reproducible(tmp_path: Path) -> None:
    for seed in (1, 7, 12345):
        a, b = tmp_path / "a.h5ad", tmp_path / "b.h5ad"
        assert mutate.mutant(seed, a) == mutate.mutant(seed, b)
        assert a.read_bytes() == b.read_bytes()


def test_the_judge_catches_what_it_should(tmp_path: Path) -> None:
    ok = mutate.Outcome("info", 1, "annpage: error: f.h5ad: /X: bad\n", 0.1, 10)
    assert ok.failure() is None
    assert mutate.Outcome("info", 0, "", 0.1, 10).failure() is None
    for bad in (
        mutate.Outcome("info", 101, "thread 'main' panicked at x\nnote: ...\n", 0.1, 10),
        mutate.Outcome("info", -6, "memory allocation of 8796093022216 bytes failed\n", 0.1, 10),
        mutate.Outcome("info", 1, "annpage: error: a\nannpage: error: b\n", 0.1, 10),
        mutate.Outcome("info", -9, "", mutate.TIMEOUT + 0.1, 10),
        mutate.Outcome("info", 0, "", 0.1, mutate.MAX_RSS_MB + 1),
    ):
        assert bad.failure() is not None, bad
    # A real run is measured: `sh -c` exiting 1 with two lines breaks the rules.
    out = mutate.run_verb(["sh", "-c", "echo one >&2; echo two >&2; exit 1"], "sh")
    assert (out.returncode, out.stderr) == (1, "one\ntwo\n") and out.max_rss_mb > 0
    assert out.failure() is not None
    out = mutate.run_verb(["sh", "-c", "kill -SEGV $$"], "sh")
    assert out.returncode == -11 and out.failure() is not None
