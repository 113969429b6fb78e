"""Plain helpers of the interop tests: paths, the fixture list, running commands."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"

# The one debug build the test command makes of the binaries and examples (`./dev test` runs it
# too): the workspace's feature set, which the test build shares. `-p CRATE` would resolve the
# dependencies' features anew and build a second copy of them (half a gigabyte each).
CARGO_BUILD = ["cargo", "build", "-q", "--workspace", "--bins", "--examples"]


def cargo_build() -> subprocess.CompletedProcess[str]:
    """Runs `CARGO_BUILD` (a no-op when everything is up to date), output captured."""
    env = dict(os.environ)
    # hdf5-metno's bundled HDF5 needs a newer CMake than Debian's; the venv has one.
    venv_cmake = ROOT / ".venv" / "bin" / "cmake"
    if "CMAKE" not in env and venv_cmake.exists():
        env["CMAKE"] = str(venv_cmake)
    return subprocess.run(CARGO_BUILD, cwd=ROOT, env=env, capture_output=True, text=True)


def fixture_files() -> list[Path]:
    """Every fixture: the current-format ones, then the legacy ones, each sorted."""
    return sorted(FIXTURES.glob("*.h5ad")) + sorted((FIXTURES / "legacy").glob("*.h5ad"))


def fixture_id(path: Path) -> str:
    """A short test id for a fixture (`legacy/` prefix for legacy files)."""
    return path.relative_to(FIXTURES).as_posix().removesuffix(".h5ad")


def is_legacy(path: Path) -> bool:
    """Whether the fixture was written by an old anndata (`fixtures/legacy/`)."""
    return path.parent.name == "legacy"


def run(cmd: list[str | Path], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs a command, capturing its output as text."""
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)


# Runs argv[2:] and writes its peak RSS (KiB) to the file argv[1].
_MEASURE = """
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_mb(cmd: list) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Runs `cmd` and returns its peak resident set size in MiB, with the completed process.

    Measured from a fresh, small interpreter: on Linux a child's peak RSS starts from its
    parent's at the fork (and is kept through exec), so measured from the test process, which
    may hold whole AnnData objects, it would show the test's size instead of the command's.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
        res = subprocess.run(
            [sys.executable, "-c", _MEASURE, out.name, *[str(c) for c in cmd]], capture_output=True, text=True
        )
        text = Path(out.name).read_text().strip()
    return (int(text) / 1024.0 if text else float("nan")), res
