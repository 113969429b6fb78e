"""Invalid inputs, bad queries and crash leftovers, from the command line.

- files anndata refuses (duplicate categories, an unknown, empty or too new encoding, no obs)
  are refused by `convert` (in memory) and `subset` (backed) with one line naming the file and
  the element, and files anndata reads (legacy roots without encoding, no var) still read;
- an error met reading the input while `subset` streams names the input, not the output;
- a malformed query, or a value that is not a category, is an error naming the file and /obs;
- a write killed with SIGKILL leaves its temporary file, which the next write of the same
  target removes (a running writer's temporary is left alone).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

from support import FIXTURES, run

PBMC = FIXTURES / "pbmc_like_csr.h5ad"
N_OBS = 2000


def _copy_with(tmp_path: Path, name: str, edit: Callable[[h5py.File], None], src: Path = PBMC) -> Path:
    """A copy of `src` changed by `edit` through h5py."""
    path = tmp_path / f"{name}.h5ad"
    shutil.copy(src, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _duplicate_category(f: h5py.File) -> None:
    cats = f["obs/cell_type/categories"]
    values = cats[:]
    values[1] = values[0]
    cats[...] = values


def _set_attr(path: str, key: str, value: str) -> Callable[[h5py.File], None]:
    return lambda f: f[path].attrs.__setitem__(key, value)


# name -> (edit, element named in the error, words of the error)
REFUSED = {
    "duplicate_category": (_duplicate_category, "/obs/cell_type", "appears twice"),
    "root_unknown_encoding": (_set_attr("/", "encoding-type", "foo"), "/", "'foo'"),
    "root_empty_encoding": (_set_attr("/", "encoding-type", ""), "/", "empty encoding-type"),
    "root_version_9": (_set_attr("/", "encoding-version", "9.9.9"), "/", "'9.9.9'"),
    "root_without_version": (lambda f: f.attrs.__delitem__("encoding-version"), "/", "encoding-version ''"),
    "no_obs": (lambda f: f.__delitem__("obs"), "/", "missing member 'obs'"),
    "obs_empty_encoding": (_set_attr("obs", "encoding-type", ""), "/obs", "empty encoding-type"),
    "x_empty_encoding": (_set_attr("X", "encoding-type", ""), "/X", "empty encoding-type"),
    "x_version_9": (_set_attr("X", "encoding-version", "9.9.9"), "/X", "'9.9.9'"),
    "categorical_version_9": (_set_attr("obs/cell_type", "encoding-version", "9.9.9"), "/obs/cell_type", "'9.9.9'"),
}


def _anndata_reads(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ad.read_h5ad(path)
    except Exception:  # noqa: BLE001 - any refusal counts
        return False
    return True


def _one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 1, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("annpage: error: "), res.stderr
    return lines[0]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_files_anndata_refuses_are_refused(annpage_bin: Path, tmp_path: Path, name: str) -> None:
    edit, element, words = REFUSED[name]
    bad = _copy_with(tmp_path, name, edit)
    assert not _anndata_reads(bad)
    out = tmp_path / "out.h5ad"
    for cmd in (["convert", bad, out], ["subset", bad, out]):
        line = _one_error_line(run([annpage_bin, *cmd]))
        assert line.startswith(f"annpage: error: {bad}: {element}: "), line
        assert words in line, line
        assert not out.exists()


ACCEPTED = {
    # Files without any root encoding are legacy layouts (anndata < 0.7); both attributes empty
    # is the same to anndata.
    "root_without_encoding": lambda f: (f.attrs.__delitem__("encoding-type"), f.attrs.__delitem__("encoding-version")),
    "root_empty_attributes": lambda f: (f.attrs.__setitem__("encoding-type", ""), f.attrs.__setitem__("encoding-version", "")),
    "no_var": lambda f: f.__delitem__("var"),
    "unknown_uns_entry": lambda f: f["uns"].create_dataset("thing", data=np.arange(3)).attrs.update(
        {"encoding-type": "future-thing", "encoding-version": "0.1.0"}
    ),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_files_anndata_reads_still_read(annpage_bin: Path, tmp_path: Path, name: str) -> None:
    path = _copy_with(tmp_path, name, ACCEPTED[name])
    if name != "unknown_uns_entry":  # anndata refuses unknown encodings; annpage keeps them verbatim
        assert _anndata_reads(path)
    for cmd in ("convert", "subset"):
        out = tmp_path / f"{cmd}.h5ad"
        res = run([annpage_bin, cmd, path, out])
        assert res.returncode == 0, res.stderr
        with h5py.File(out) as f:
            assert f["X"].attrs["shape"].tolist() == [N_OBS, 1000]


def test_subset_blames_the_input_for_a_bad_input(annpage_bin: Path, tmp_path: Path) -> None:
    def bad_index(f: h5py.File) -> None:
        indices = f["X/indices"]
        values = indices[:]
        values[-1] = 1_000_000
        indices[...] = values

    bad = _copy_with(tmp_path, "bad_index", bad_index, FIXTURES / "x_csr_f32.h5ad")
    out = tmp_path / "out.h5ad"
    line = _one_error_line(run([annpage_bin, "subset", bad, out]))
    assert line.startswith(f"annpage: error: {bad}: /X"), line
    assert "1000000" in line and str(out) not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad_index.h5ad"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("cell_type ==", "expected a column or a value, found the end of the query at character 13"),
        ("cell_type == 'B cell", "unterminated quote ' at character 14"),
        ("cell_type = 'B'", "'=' is not an operator (compare with '==') at character 11"),
        ("== B", "expected a column or a value, found '==' at character 1"),
        ("cell_type == 'B cell'", "'B cell' is not a category of column 'cell_type' (categories: 'CD4 T', 'CD8 T', 'B'"),
        ("cell_type != Bcell", "'Bcell' is not a category"),
        ("cell_type == 3", "holds text; it cannot be compared with the number 3 (quote it)"),
        ("no_such_column == 1", "'no_such_column' is not in the frame"),
    ],
)
def test_queries_that_cannot_match_are_errors(annpage_bin: Path, tmp_path: Path, query: str, words: str) -> None:
    out = tmp_path / "q.h5ad"
    line = _one_error_line(run([annpage_bin, "subset", PBMC, out, "--obs-query", query]))
    assert line.startswith(f"annpage: error: {PBMC}: /obs: "), line
    assert words in line, line
    assert not out.exists()


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_stale_temporaries_are_removed_by_the_next_write(annpage_bin: Path, tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f".out.h5ad.{dead}-0-17.annpage-tmp"
    live = tmp_path / f".out.h5ad.{alive}-0-17.annpage-tmp"
    other = tmp_path / f".other.h5ad.{dead}-0-17.annpage-tmp"
    stale_tsv = tmp_path / f".s.obs.tsv.{dead}-3-1.annpage-tmp"
    for p in (stale, live, other, stale_tsv):
        p.write_bytes(b"partial")
    res = run([annpage_bin, "convert", FIXTURES / "x_csr_f32.h5ad", tmp_path / "out.h5ad"])
    assert res.returncode == 0, res.stderr
    assert not stale.exists() and live.exists() and other.exists()
    res = run([annpage_bin, "stats", FIXTURES / "x_csr_f32.h5ad", "--out-prefix", tmp_path / "s"])
    assert res.returncode == 0, res.stderr
    assert not stale_tsv.exists()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([live.name, other.name, "out.h5ad", "s.obs.tsv", "s.var.tsv"])


def test_a_killed_write_leaves_a_temporary_the_next_write_removes(annpage_bin: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.h5ad"
    rng = np.random.default_rng(0)
    ad.AnnData(rng.random((3000, 2000))).write_h5ad(big)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "out.h5ad"
    proc = subprocess.Popen([str(annpage_bin), "convert", str(big), str(target), "--compression", "gzip"])
    deadline = time.monotonic() + 60
    temps: list[Path] = []
    while not temps and proc.poll() is None and time.monotonic() < deadline:
        temps = list(out_dir.glob(".out.h5ad.*.annpage-tmp"))
        time.sleep(0.005)
    assert temps, "the write ended before its temporary file was seen"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not target.exists()
    assert [p.name for p in out_dir.iterdir()] == [temps[0].name]
    res = run([annpage_bin, "convert", FIXTURES / "x_csr_f32.h5ad", target])
    assert res.returncode == 0, res.stderr
    assert [p.name for p in out_dir.iterdir()] == ["out.h5ad"]
    assert ad.read_h5ad(target).shape == (30, 20)


@pytest.mark.parametrize(("sig", "out_name"), [(signal.SIGINT, "out.h5ad"), (signal.SIGTERM, "out.zarr"), (signal.SIGHUP, "out.h5ad")])
def test_an_interrupted_write_removes_its_temporary(annpage_bin: Path, tmp_path: Path, sig: int, out_name: str) -> None:
    big = tmp_path / "big.h5ad"
    ad.AnnData(np.random.default_rng(0).random((3000, 2000))).write_h5ad(big)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen([str(annpage_bin), "convert", str(big), str(out_dir / out_name), "--compression", "gzip"])
    deadline = time.monotonic() + 60
    while not list(out_dir.glob("*.annpage-tmp")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert list(out_dir.glob("*.annpage-tmp")), "the write ended before its temporary was seen"
    proc.send_signal(sig)
    # The process dies of the signal, as without a handler, once its temporary is removed
    # (for a Zarr store, while its writer threads are still adding chunks to it).
    assert proc.wait(timeout=60) == -sig
    assert list(out_dir.iterdir()) == []


def test_interrupted_stats_leave_both_files_or_neither(annpage_bin: Path, tmp_path: Path) -> None:
    """`stats` writes two files: a signal while they are written removes their temporaries, and
    one while they are renamed waits for both (never a new obs.tsv beside an old var.tsv)."""
    from scipy import sparse

    n = 400_000
    big = tmp_path / "cells.h5ad"
    ad.AnnData(sparse.random(n, 5, density=0.5, format="csr", random_state=0, dtype=np.float32),
               obs=pd.DataFrame(index=[f"cell_{i}" for i in range(n)])).write_h5ad(big)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen([str(annpage_bin), "stats", str(big), "--out-prefix", str(out_dir / "qc")])
    deadline = time.monotonic() + 60
    while not list(out_dir.glob("*.annpage-tmp")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert list(out_dir.glob("*.annpage-tmp")), "stats ended before its temporaries were seen"
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    names = sorted(p.name for p in out_dir.iterdir())
    assert names in ([], ["qc.obs.tsv", "qc.var.tsv"]), names
    assert code == -signal.SIGTERM or names, code


def test_a_csvs_export_is_all_or_nothing(annpage_bin: Path, tmp_path: Path) -> None:
    """Each file of a `--to csvs` export is renamed into place only once all are written: a
    failure leaves the directory as it was (the `uns` folder it made removed again), a signal
    removes the temporaries inside it."""
    out = tmp_path / "out"
    (out / "X.csv").mkdir(parents=True)  # X.csv cannot be replaced: the export fails there
    (out / "notes.txt").write_text("keep")
    res = run([annpage_bin, "convert", PBMC, out, "--to", "csvs", "--with-x"])
    assert res.returncode == 1 and "X.csv" in res.stderr, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["X.csv", "notes.txt"]

    big = tmp_path / "big.h5ad"
    ad.AnnData(np.random.default_rng(0).random((3000, 2000))).write_h5ad(big)
    target = tmp_path / "big_csvs"
    proc = subprocess.Popen([str(annpage_bin), "convert", str(big), str(target), "--to", "csvs", "--with-x"])
    deadline = time.monotonic() + 60
    while not list(target.glob(".X.csv.*.annpage-tmp")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert list(target.glob(".X.csv.*.annpage-tmp")), "the export ended before X.csv's temporary was seen"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == -signal.SIGTERM
    assert sorted(p.name for p in target.iterdir()) == ["uns"]
    assert list((target / "uns").iterdir()) == []


def test_outputs_that_must_not_be_replaced_or_mean_nothing_are_refused(annpage_bin: Path, tmp_path: Path) -> None:
    """A directory that is not a Zarr store (it may hold the input) is never replaced by a store,
    nor a directory by a file; a codec the output's format does not take is an error, not an
    uncompressed output."""
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    source = folder / "in.h5ad"
    shutil.copy(PBMC, source)
    (folder / "sub" / "notes.txt").write_text("keep")
    for args, words in [
        ([source, folder, "--to", "zarr"], "not a Zarr store"),
        ([source, folder, "--to", "h5ad"], "is a directory"),
        ([source, tmp_path / "o.h5ad", "--compression", "zstd"], "zstd compresses Zarr outputs only"),
        ([source, tmp_path / "o.zarr", "--compression", "lzf"], "lzf compresses .h5ad outputs only"),
    ]:
        line = _one_error_line(run([annpage_bin, "convert", *args]))
        assert words in line, line
    assert sorted(p.name for p in folder.iterdir()) == ["in.h5ad", "sub"]
    assert (folder / "sub" / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


@pytest.mark.parametrize(
    "args",
    [["frob"], ["convert", "--threads", "0", "IN", "OUT"], ["concat", "-o", "OUT"], ["stats", "--cache-mb", "-1", "IN"]],
)
def test_bad_arguments_are_one_error_line(annpage_bin: Path, tmp_path: Path, args: list[str]) -> None:
    args = [{"IN": str(PBMC), "OUT": str(tmp_path / "o.h5ad")}.get(a, a) for a in args]
    line = _one_error_line(run([annpage_bin, *args]))
    assert line.endswith("(see annpage --help)"), line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("source", "words"), [("/dev/zero", "line 1 is longer than 65536 bytes"), ("binary", "line 2 is not UTF-8 text")])
def test_list_files_that_are_no_lists_are_refused_at_their_first_bad_line(annpage_bin: Path, tmp_path: Path, source: str, words: str) -> None:
    # /dev/zero never ends and has no line break: read whole, it would take every byte of memory.
    if source == "binary":
        source = tmp_path / "names.bin"
        source.write_bytes(b"cell_1\n\xff\xfe" + bytes(range(256)) * 100)
    line = _one_error_line(run([annpage_bin, "subset", PBMC, tmp_path / "o.h5ad", "--obs-names", source]))
    assert line.startswith(f"annpage: error: {source}: ") and words in line, line
    assert not (tmp_path / "o.h5ad").exists()


def test_control_characters_in_names_reach_the_terminal_escaped(annpage_bin: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("cell\x1b]0;title\x07\rforged\n")
    line = _one_error_line(run([annpage_bin, "subset", PBMC, tmp_path / "o.h5ad", "--obs-names", names]))
    assert "\x1b" not in line and "\r" not in line and "\x07" not in line, repr(line)
    assert "\\u{1b}" in line, line


def test_list_files_with_a_byte_order_mark_and_crlf_read_as_plain_ones(annpage_bin: Path, tmp_path: Path) -> None:
    names = list(ad.read_h5ad(PBMC).obs_names[[4, 1]])
    plain, marked = tmp_path / "plain.txt", tmp_path / "marked.txt"
    plain.write_text("\n".join(names) + "\n")
    marked.write_bytes(("\ufeff" + "\r\n".join(names) + "\r\n").encode())
    for names_file, out in [(plain, tmp_path / "a.h5ad"), (marked, tmp_path / "b.h5ad")]:
        res = run([annpage_bin, "subset", PBMC, out, "--obs-names", names_file])
        assert res.returncode == 0, res.stderr
    assert list(ad.read_h5ad(tmp_path / "b.h5ad").obs_names) == names


def test_a_file_another_process_writes_is_said_to_be_locked_not_corrupt(annpage_bin: Path, tmp_path: Path) -> None:
    path = tmp_path / "busy.h5ad"
    shutil.copy(PBMC, path)
    with h5py.File(path, "r+"):
        line = _one_error_line(run([annpage_bin, "info", path]))
    assert "locked by a process writing it" in line and "malformed" not in line, line
    assert run([annpage_bin, "info", path]).returncode == 0


def test_errors_about_several_inputs_or_an_index_name_them(annpage_bin: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text(ad.read_h5ad(PBMC).obs_names[0] + "\n")
    line = _one_error_line(run([annpage_bin, "subset", PBMC, PBMC, tmp_path / "o.h5ad", "--obs-names", names]))
    assert line.startswith(f"annpage: error: {PBMC} + {PBMC}: obs:"), line
    assert "occurs more than once" in line
    taken = tmp_path / "a_file"
    taken.write_text("x")
    line = _one_error_line(run([annpage_bin, "serve", PBMC, "--index", taken, "--port", "0"], timeout=30))
    assert line.startswith(f"annpage: error: {taken}: ") and "--index directory" in line, line
