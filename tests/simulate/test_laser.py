"""Laser energy: the tables, and what they do to a run (field, ions, O loss, tails, H)."""

import math

import numpy as np
import pytest

from liprobe.composition import composition
from liprobe.simulate import (
    DEFAULT_LASER,
    DEFAULT_SPECIES,
    HydrogenModel,
    LaserResponse,
    SimulationConfig,
    conditions_at,
    resolve_material,
    simulate,
)
from liprobe.simulate.laser import REFERENCE_PJ, peak_at, phase_family
from liprobe.simulate.parameters import default_peak_shape
from liprobe.simulate.species import Species, emission

from .test_run import tail_decay_da

NMC = resolve_material("NMC811")
LMO = resolve_material("LiMn2O4")


def ratio(part, el):
    d = dict(part)
    return d[f"{el}++"] / d[f"{el}+"]


# -- the tables --------------------------------------------------------------------------

def test_at_5_pj_the_laser_response_returns_the_base_shares_unchanged():
    c = conditions_at(DEFAULT_SPECIES, NMC, REFERENCE_PJ)
    assert c.field_factor == 1.0 and c.family == "layered"
    for (el, part), (el0, part0) in zip(c.species.partitions, DEFAULT_SPECIES.partitions):
        assert el == el0
        for (n, f), (n0, f0) in zip(part, part0):
            assert n == n0 and f == pytest.approx(f0, rel=1e-12)
    assert c.species.o2_to_o_ratio == pytest.approx(2.61)
    assert c.species.neutral_o_fraction == pytest.approx(0.02)
    assert peak_at(default_peak_shape("LEAP 5000 XS", True), 5.0) == \
        default_peak_shape("LEAP 5000 XS", True)


@pytest.mark.parametrize("pj", [1, 5, 8, 12, 20, 33, 50, 80])
def test_shares_sum_to_one_and_atoms_are_conserved_at_every_energy(pj):
    for phase in (NMC, LMO):
        c = conditions_at(DEFAULT_SPECIES, phase, pj)
        for el, part in c.species.partitions:
            assert sum(f for _, f in part) == pytest.approx(1.0, abs=1e-12), (el, pj)
            assert all(f >= 0 for _, f in part)
        em = emission(phase, c.species)
        atoms = {}
        for name, n in em.per_formula_unit.items():
            for el, k in Species.from_name(name).atoms:
                atoms[el] = atoms.get(el, 0.0) + n * k
        for el, amount in phase.amounts:
            assert atoms[el] == pytest.approx(amount, rel=1e-12), (phase.name, el, pj)


def test_higher_laser_energy_lowers_the_field_and_shifts_the_ions():
    energies = [1, 5, 10, 15, 20, 30, 40, 50]
    cs = [conditions_at(DEFAULT_SPECIES, NMC, e) for e in energies]
    f = [c.field_factor for c in cs]
    assert np.all(np.diff(f) < 0)
    # voltage steps of a 5/10/15/20 pJ schedule are at least 3 % (history's jump threshold)
    assert all(b / a < 0.97 for a, b in zip(f[1:5], f[2:5]))
    mn = [ratio(dict(c.species.partitions)["Mn"], "Mn") for c in cs]
    ni = [ratio(dict(c.species.partitions)["Ni"], "Ni") for c in cs]
    cr = [ratio(dict(c.species.partitions)["Cr"], "Cr") for c in cs]
    assert np.all(np.diff(mn) > 0)                     # the oxide anomaly [SI24]
    assert np.all(np.diff(ni) < 0) and np.all(np.diff(cr) < 0)   # metal-like
    r = [c.species.o2_to_o_ratio for c in cs]
    assert np.all(np.diff(r) > 0) and r[1] == pytest.approx(2.61) and r[-2] > 4
    n_o = [c.species.neutral_o_fraction for c in cs]
    assert np.all(np.diff(n_o) > 0)

    def oxide(c):
        return sum(f for n, f in dict(c.species.partitions)["Ni"] if "O" in n)

    assert oxide(cs[-1]) > 1.4 * oxide(cs[1])           # more molecular ions


def test_spinel_o2_to_o_has_no_trend_and_loses_mn_as_neutral_mno():
    assert phase_family(LMO) == "spinel" and phase_family(resolve_material("Li1.1Mn1.9O4")) \
        == "spinel" and phase_family(resolve_material("Cr")) == "other"
    r = [conditions_at(DEFAULT_SPECIES, LMO, e).species.o2_to_o_ratio for e in (1, 5, 10, 20)]
    assert max(r) - min(r) < 1e-9
    c = conditions_at(DEFAULT_SPECIES, LMO, 10)
    em = emission(LMO, c.species)
    assert em.per_formula_unit["MnO (neutral)"] == pytest.approx(2 * dict(
        c.species.neutral_losses)["Mn"])


def test_no_laser_response_keeps_the_base_shares_at_any_energy():
    c = conditions_at(DEFAULT_SPECIES, NMC, 40.0, None)
    assert c.species is DEFAULT_SPECIES and c.field_factor == 1.0


def test_a_table_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="field_factor"):
        LaserResponse(field_factor=(1.0, 0.9))
    with pytest.raises(ValueError, match="increasing"):
        LaserResponse(energies_pj=(5.0, 1.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0))


# -- runs ----------------------------------------------------------------------------------

def test_the_voltage_follows_the_lower_field_at_higher_laser_energy(coated_series):
    for e in (5, 20, 50):
        t = coated_series.results[e].truth
        dp = t["depth_profile"]
        p = t["reconstruction_parameters"]
        kf = p["k_factor"] * p["evaporation_field_V_per_nm"]
        assert dp["voltage_V"][-1] == pytest.approx(kf * dp["radius_nm"][-1], rel=1e-9)
        assert p["evaporation_field_V_per_nm"] == pytest.approx(
            resolve_material("NMC811").evaporation_field_V_per_nm * DEFAULT_LASER.field(e))
    v = [coated_series.results[e].truth["depth_profile"]["voltage_V"][0] for e in (5, 20, 50)]
    assert v[0] > v[1] > v[2]


def test_the_thermal_tail_grows_with_laser_energy(coated_series):
    taus = []
    for e in (5, 50):
        r = coated_series.results[e]
        pw = r.truth["peak_widths"]["O+"]
        t = tail_decay_da(r.run["mass"], pw["mz"], pw["fwhm_da"],
                          3 * pw["tail_tau_da_at_median_voltage"])
        assert t == pytest.approx(pw["tail_tau_da_at_median_voltage"], rel=0.25)
        taus.append(t)
        assert r.truth["segments"][0]["peak"]["tail_tau_ns"] == pytest.approx(
            2.0 * DEFAULT_LASER.at(DEFAULT_LASER.tail_tau_factor, e))
    assert taus[1] > 1.6 * taus[0]


def test_limn2o4_li_and_mn_fractions_are_off_stoichiometry_and_mn_ratio_rises():
    li, mn_ratio = [], []
    for e in (1, 10, 20):
        r = simulate(SimulationConfig("LiMn2O4", coating="Cr", ions=60_000, seed=30 + e,
                                      laser_pj=e))
        comp = composition(r.run["mass"], r.ranges, exclude=("Cr",),
                           ratios=("Li/(Li+Mn)", "Mn/(Li+Mn)"))
        li.append(comp.ratios["Li/(Li+Mn)"].value)
        assert comp.ratios["Mn/(Li+Mn)"].value < 2 / 3 - 0.03
        sp = r.truth["species"]
        mn_ratio.append(sp["Mn++"]["detected"] / sp["Mn+"]["detected"])
        assert sp["MnO (neutral)"]["emitted"] > 0 and sp["MnO (neutral)"]["detected"] == 0
        assert "Ni" not in r.truth["composition"]["evaporated"]["overall"]["atoms"]
    assert min(li) > 1 / 3 + 0.03
    assert mn_ratio[0] < mn_ratio[1] < mn_ratio[2]


def test_hydrogen_and_optional_hydrides():
    r = simulate(SimulationConfig("NMC811", coating="Cr", ions=100_000, seed=4,
                                  hydrogen=HydrogenModel()))
    sp = r.truth["species"]
    n = r.truth["ions_detected"]
    assert sp["H+"]["detected"] / n == pytest.approx(0.003, rel=0.3)
    assert sp["H2+"]["detected"] > 0
    assert {"H+", "H2+"} <= {w.ion.name for w in r.ranges.ranges}
    assert "CrH+" not in sp
    hyd = SimulationConfig("NMC811", coating="Cr", ions=100_000, seed=4,
                           hydrogen=HydrogenModel(hydrides=True, hydride_fraction=0.05))
    sp = simulate(hyd).truth["species"]
    assert sp["CrH+"]["emitted"] > 0 and sp["NiOH+"]["emitted"] > 0
    assert sp["CrH+"]["emitted"] / (sp["Cr+"]["emitted"] + sp["CrH+"]["emitted"]) == \
        pytest.approx(0.05, rel=0.3)
    none = simulate(SimulationConfig("NMC811", coating="Cr", ions=20_000,
                                     seed=4)).truth["species"]
    assert "H+" not in none                                  # opt-in
    with pytest.raises(ValueError, match="h_fraction"):
        HydrogenModel(h_fraction=-0.1)
    assert math.isclose(sum(HydrogenModel().to_dict()[k] for k in ("h_fraction",
                                                                    "h2_fraction")), 0.004)
