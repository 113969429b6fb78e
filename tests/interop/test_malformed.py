"""Small crafted files that claim huge sizes, loop back on themselves or never end.

Every CLI verb runs on each file made by `malformed_files.py` and must end cleanly: exit status
1 with exactly one line on stderr, `annpage: error: FILE: ELEMENT: ...`, no signal, within 20 s
and under 1 GB of peak RSS (the kernel's own count, from `wait4`; the address space is also
capped at 4 GB so a runaway allocation fails rather than swapping). A FIFO given as input is
refused without blocking.

A verb that never reads the bad element may succeed instead (exit 0, nothing on stderr but its
own report): `info` reads metadata only, so it describes a huge claimed shape without reading
it, and `stats` reads only X, obs and var. anndata, which reads everything, fails on all of them.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import malformed_files

TIME_LIMIT_S = 20
RSS_LIMIT_BYTES = 1 << 30
ADDRESS_SPACE_BYTES = 4 << 30
VERBS = ["info", "convert", "subset", "stats"]

# For each file: the element the error must name, and the verbs allowed to succeed because they
# never read that element.
EXPECTED: dict[str, tuple[str, set[str]]] = {
    "huge_indptr": ("/X/indptr", {"info"}),
    "huge_dense_x": ("/X", {"info"}),
    "huge_uns_array": ("/uns/big", {"info", "stats"}),
    "huge_obsm": ("/obsm/big", {"info", "stats"}),
    "wrapping_count": ("/X", {"info"}),
    "deep_uns": ("/uns/d/d/d", {"stats"}),
    # `info` shows a link where a walk would go round (see test_info_shows_links).
    "cycle_to_parent": ("/uns/pca/loop", {"stats", "info"}),
    "cycle_to_root": ("/uns/root", {"stats", "info"}),
    "linked_dataset": ("/uns/a1", {"stats", "info"}),
}


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))


def _run_bounded(cmd: list[str]) -> tuple[int, str, float, int]:
    """Runs `cmd`, killed after the time limit: (exit code, or minus the signal; stderr;
    seconds; peak RSS in bytes, from `wait4` on this very child)."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=_limit_address_space)
        timer = threading.Timer(TIME_LIMIT_S, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        elapsed = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if elapsed >= TIME_LIMIT_S:
        pytest.fail(f"{' '.join(cmd)} still ran after {TIME_LIMIT_S} s (killed)")
    return proc.returncode, stderr, elapsed, usage.ru_maxrss * 1024


def _command(annpage_bin: Path, verb: str, src: Path, out: Path) -> list[str]:
    return {
        "info": [str(annpage_bin), "info", str(src)],
        "convert": [str(annpage_bin), "convert", str(src), str(out / "c.h5ad")],
        "subset": [str(annpage_bin), "subset", str(src), str(out / "s.h5ad")],
        "stats": [str(annpage_bin), "stats", str(src), "--out-prefix", str(out / "stats")],
    }[verb]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("malformed")
    for name, make in malformed_files.CASES.items():
        make(out / f"{name}.h5ad")
    return out


def test_crafted_files_are_small(crafted: Path) -> None:
    for name in malformed_files.CASES:
        size = (crafted / f"{name}.h5ad").stat().st_size
        assert size < 512 * 1024, f"{name}: {size} bytes"


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_verb_ends_cleanly(annpage_bin: Path, crafted: Path, tmp_path: Path, name: str, verb: str) -> None:
    src = crafted / f"{name}.h5ad"
    element, may_succeed = EXPECTED[name]
    status, stderr, elapsed, peak = _run_bounded(_command(annpage_bin, verb, src, tmp_path))
    assert status >= 0, f"{verb} {name}: killed by signal {signal.Signals(-status).name}\n{stderr}"
    assert elapsed < TIME_LIMIT_S
    assert peak < RSS_LIMIT_BYTES, f"{verb} {name}: peak RSS {peak} bytes"
    if status == 0 and verb in may_succeed:
        assert "error" not in stderr, stderr
        return
    assert status == 1, f"{verb} {name}: exit {status}\n{stderr}"
    lines = stderr.splitlines()
    assert len(lines) == 1, f"{verb} {name}: stderr is not one line:\n{stderr}"
    assert lines[0].startswith(f"annpage: error: {src}: {element}"), lines[0]


@pytest.mark.parametrize("verb", VERBS)
def test_a_fifo_is_refused_without_blocking(annpage_bin: Path, tmp_path: Path, verb: str) -> None:
    fifo = tmp_path / "pipe.h5ad"
    os.mkfifo(fifo)
    status, stderr, _, _ = _run_bounded(_command(annpage_bin, verb, fifo, tmp_path))
    assert status == 1, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"annpage: error: {fifo}: "), lines[0]
    assert "not a regular file" in lines[0]


@pytest.mark.parametrize(("name", "link"), [("cycle_to_parent", "loop  *link to /uns/pca"), ("cycle_to_root", "root  *link to /$")])
def test_info_shows_links(annpage_bin: Path, crafted: Path, name: str, link: str) -> None:
    """`info` describes a group once and shows it as a link where it is reached again (a cycle
    or a group linked from two places, which anndata reads), instead of refusing the file."""
    import re

    res = subprocess.run([str(annpage_bin), "info", str(crafted / f"{name}.h5ad")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert any(re.search(link, line) for line in res.stdout.splitlines()), res.stdout
