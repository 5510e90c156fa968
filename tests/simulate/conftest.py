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
    """Uncoated NMC811, 150,000 detected ions, Li left in place and no fracture: the
    peak shape, the bookkeeping and the reconstruction of an uncoated specimen
    (delithiated and fractured runs: ``test_mobility.py``)."""
    cfg = SimulationConfig("NMC811", coating="none", ions=150_000, seed=12, mobility=None,
                           fracture=None)
    return Written(tmp_path_factory.mktemp("uncoated"), cfg)


# -- the study's measurements of simulated runs (as `liprobe study` takes them) ----------

STUDY_RATIOS = ("Li/(Li+Ni+Co+Mn)", "Ni/(Ni+Co+Mn)", "O/(Li+O+Ni+Co+Mn)", "Li/(Li+Mn)")
STUDY_PROXIES = ("O2+/O+", "Mn++/Mn+", "Ni++/Ni+")


def measure(result, roi="cylinder:25", segment=None):
    """What the study's table holds for a run (or a segment of it): ratios, field proxies
    and FDA mu of Li+ in a 25 nm cylinder with Cr excluded; detector heterogeneity and the
    Li+ fraction's mu over 0.4 of the detector radius; the ratios over the whole run too.

    ``result``: a SimulatedRun (in memory, no files)."""
    from liprobe.composition import composition
    from liprobe.fda import frequency_distribution
    from liprobe.field import field_proxies
    from liprobe.spatial.detector import detector_map
    from liprobe.spatial.roi import select

    run, table = result.run, result.ranges
    if segment is not None:
        run, _ = select(run, None, slice(*segment), table)
    sel, _ = select(run, roi, None, table)
    comp = composition(sel["mass"], table, exclude=("Cr",), ratios=STUDY_RATIOS)
    whole = composition(run["mass"], table, exclude=("Cr",), ratios=STUDY_RATIOS)
    field = field_proxies(sel["mass"], table, STUDY_PROXIES)
    fda = frequency_distribution(sel, table, "Li+", 100, exclude=("Cr",), shuffles=0) \
        if "Li+" in {r.ion.name for r in table.ranges} else None
    dm = detector_map(run, table, species="Li+" if fda is not None else None,
                      coating_element=None, core_fraction=0.4)
    out = {k: v.value for k, v in comp.ratios.items()}
    out.update({f"whole {k}": v.value for k, v in whole.ratios.items()})
    out.update({k: v.value for k, v in field.ratios.items()})
    out["mu"] = None if fda is None else fda.mu
    out["heterogeneity"] = dm.heterogeneity.heterogeneity
    out["detector_mu"] = dm.heterogeneity.fraction_mu
    out["ions"] = run.n_ions
    return out


class Series:
    """Simulated runs in memory and their measurements, by key."""

    def __init__(self, configs: dict):
        self.results = {k: simulate(c) for k, c in configs.items()}
        self.values = {k: measure(r) for k, r in self.results.items()}

    def __getitem__(self, key):
        return self.values[key]


#: Coated NMC811 (particle P1) energies of Supplementary Table 1, at the paper preset's size.
COATED_PJ = (5, 8, 10, 12, 15, 20, 30, 40, 50)
#: Uncoated energies (Figure 1): sizes after fracture ~0.6 and ~1.1 million ions, what a Li
#: FDA mu above 0.8 needs at 5-10 and 15-20 pJ (liprobe.simulate.mobility).
UNCOATED_PJ = {5: 700_000, 10: 700_000, 15: 1_250_000, 20: 1_250_000}


@pytest.fixture(scope="session")
def coated_series():
    """Cr-coated NMC811 at every energy of the study, 250,000 ions each."""
    return Series({e: SimulationConfig("NMC811", coating="Cr", ions=250_000, seed=100 + e,
                                       laser_pj=e) for e in COATED_PJ})


@pytest.fixture(scope="session")
def uncoated_series():
    """Uncoated NMC811 at 5, 10, 15 and 20 pJ, fracturing at 90 % of the requested ions."""
    return Series({e: SimulationConfig("NMC811", coating="none", ions=n, seed=200 + e,
                                       laser_pj=e, fracture=0.9)
                   for e, n in UNCOATED_PJ.items()})
