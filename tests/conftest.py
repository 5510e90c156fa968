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


#: Why the tests that need the real files skip without them (CI must have them: there a
#: missing folder fails).
NO_SHARED = (f"the real APT files are not at {REAL}: they come with the project's shared "
             "folder beside the repository (../shared/data/real); set LIPROBE_SHARED to "
             "that folder to run these tests")


@pytest.fixture(scope="session")
def real():
    """Path of ../shared/data/real: the tests that need it skip, saying why, when it is
    missing (they fail instead under CI, where it must be there)."""
    if not REAL.is_dir():
        if os.environ.get("CI"):
            pytest.fail(NO_SHARED)
        pytest.skip(NO_SHARED)
    return REAL
