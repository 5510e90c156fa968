"""Shared test set-up: the real data folder and the hypothesis profiles."""

import os
import shutil
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


# -- a tiny study, tampered with by the reliability tests (issue 27) ------------------

TINY_MANIFEST = """
[study]
name = "tiny"
roi = "cylinder:25"
exclude = ["Cr"]
ratios = ["Ni/(Ni+Co+Mn)"]

[[runs]]
name = "cr-5"
data = "cr-5.epos"
ranges = "cr-5.rrng"
material = "NMC811"
coating = "Cr"
laser_pj = 5
"""


def tiny_study(folder) -> None:
    """A simulated run (20,000 ions, with its truth), its manifest, and its study in
    ``folder/out`` (analysed in this process): what the cache and report reliability
    tests tamper with, each on its own copy (the ``tiny`` fixture)."""
    from liprobe.simulate import SimulationConfig, simulate, write_simulation

    os.makedirs(folder, exist_ok=True)
    sim = simulate(SimulationConfig("NMC811", coating="Cr", ions=20_000, seed=1))
    write_simulation(sim, os.path.join(folder, "cr-5.epos"))
    with open(os.path.join(folder, "study.toml"), "w") as f:
        f.write(TINY_MANIFEST)
    from liprobe.study import run_study

    res = run_study(os.path.join(folder, "study.toml"), os.path.join(folder, "out"), workers=0)
    assert res.computed == ["cr-5"] and not res.failed


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    tiny_study(d)
    return d


@pytest.fixture
def tiny(tiny_base, tmp_path):
    d = tmp_path / "tiny"
    shutil.copytree(tiny_base, d)
    return d
