"""Simulated runs shared by the simulator's tests: written once per session, small."""

import json

import pytest

import liprobe
from liprobe.simulate import SimulationConfig, simulate, write_simulation


class Written:
    """A simulated run written to disk, with the in-memory result and the files read back."""

    def __init__(self, folder, config, name="run.epos"):
        self.config = config
        self.result = simulate(config)
        self.path = folder / name
        write_simulation(self.result, self.path)
        stem = self.path.with_suffix("")
        self.rrng = stem.with_suffix(".rrng")
        self.truth_path = stem.with_suffix(".truth.json")
        self.truth_pos = stem.with_suffix(".truth.pos")
        self.truth = json.loads(self.truth_path.read_text())
        self.run = liprobe.read(self.path)
        self.ranges = liprobe.read_ranges(self.rrng)
        self.true = liprobe.read(self.truth_pos)


@pytest.fixture(scope="session")
def coated(tmp_path_factory):
    """Cr-coated NMC811 on a LEAP 5000 XS, 300,000 detected ions."""
    cfg = SimulationConfig("NMC811", coating="Cr", ions=300_000, seed=11)
    return Written(tmp_path_factory.mktemp("coated"), cfg)


@pytest.fixture(scope="session")
def uncoated(tmp_path_factory):
    """Uncoated NMC811, 150,000 detected ions."""
    cfg = SimulationConfig("NMC811", coating="none", ions=150_000, seed=12)
    return Written(tmp_path_factory.mktemp("uncoated"), cfg)
