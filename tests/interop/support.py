"""Plain helpers of the interop tests: paths, the fixture list, running commands."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"


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
