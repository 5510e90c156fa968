"""Shared test set-up: the real data folder and the hypothesis profiles."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=60)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LIPROBE_SHARED", REPO.parent / "shared"))
REAL = SHARED / "data" / "real"


@pytest.fixture(scope="session")
def real():
    """Path of ../shared/data/real (skips nothing: the data must be there)."""
    assert REAL.is_dir(), f"real test data not found at {REAL}"
    return REAL
