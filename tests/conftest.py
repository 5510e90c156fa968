"""Shared test set-up: the real data folder and the hypothesis profiles."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=60)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

#: Fixtures that make every test using them slow (directly or through another fixture):
#: the small ``liprobe demo`` (simulation, study and report, ~15 s), a study on a local
#: Dask cluster, the paper preset written by worker processes.
SLOW_FIXTURES = frozenset({"demo", "default_result", "preset_series"})


def pytest_collection_modifyitems(config, items):
    """Mark the tests that need a slow fixture as ``slow`` (``make test-fast`` skips them)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LIPROBE_SHARED", REPO.parent / "shared"))
REAL = SHARED / "data" / "real"


@pytest.fixture(scope="session")
def real():
    """Path of ../shared/data/real (skips nothing: the data must be there)."""
    assert REAL.is_dir(), f"real test data not found at {REAL}"
    return REAL
