"""Shared set-up of the interop tests: where the annpage binaries and the fixtures are.

`ANNPAGE_BIN` names the `annpage` CLI to test (default `target/debug/annpage`, built with cargo
if missing); `ANNPAGE_SAMPLES_BIN` the `write-samples` test program (default
`target/debug/write-samples`, likewise built if missing).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import CARGO_BUILD, ROOT, cargo_build  # noqa: E402


def _binary(env_var: str, default: Path) -> Path:
    """The binary named by `env_var`, else `default`, built with cargo when it is missing."""
    configured = os.environ.get(env_var)
    path = Path(configured) if configured else default
    if not path.is_absolute():
        path = ROOT / path
    if not path.exists():
        if configured:
            pytest.fail(f"{env_var}={configured} does not exist")
        build = cargo_build()
        if build.returncode != 0 or not path.exists():
            pytest.fail(f"cannot build {path.name}: {' '.join(CARGO_BUILD)} failed:\n{build.stderr}")
    return path


@pytest.fixture(scope="session")
def annpage_bin() -> Path:
    """The `annpage` command line under test."""
    return _binary("ANNPAGE_BIN", ROOT / "target" / "debug" / "annpage")


@pytest.fixture(scope="session")
def samples_bin() -> Path:
    """The `write-samples` program of the tests crate (tests/bin/write_samples.rs)."""
    return _binary("ANNPAGE_SAMPLES_BIN", ROOT / "target" / "debug" / "write-samples")


def pytest_configure(config: pytest.Config) -> None:
    # anndata.tests.helpers, imported for assert_equal, marks some of its own helpers with it.
    config.addinivalue_line("markers", "gpu: needs a GPU (used inside anndata's test helpers)")
