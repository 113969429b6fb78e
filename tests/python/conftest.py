"""Fixtures for the Python package's tests: the files written by the real anndata."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "fixtures").glob("*.h5ad")) + sorted(
    (ROOT / "fixtures" / "legacy").glob("*.h5ad")
)


@pytest.fixture(params=FIXTURES, ids=lambda p: p.name)
def fixture_path(request):
    """Each bundled fixture in turn."""
    return request.param
