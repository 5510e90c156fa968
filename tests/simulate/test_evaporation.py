"""The evaporation physics (liprobe.simulate.evaporation): temperature, field, proxies.

The unit tests check each mechanism against its formula computed here again;
the run tests measure the proxies blind (liprobe's field proxies, Kingham
fields and peak shapes on the written run and its range file) and compare
them with the truth's local fields and with the model's curves.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from liprobe.cli import cli
from liprobe.field import field_proxies
from liprobe.kingham import kingham_curves
from liprobe.simulate import DEFAULT_EVAPORATION, SimulationConfig, simulate
from liprobe.simulate.evaporation import (
    BOLTZMANN_EV_K,
    breakup_probability,
    charge_fractions,
    field_map,
    heat_flow_factor,
    log_rate_factor,
    neutral_o2_fraction,
    o2_to_o_ratio,
    operating_point,
    parameter_table,
    with_overrides,
)
from liprobe.spectrum.peaks import analyse_peaks
from liprobe.study.kingham import kingham_fields

M = DEFAULT_EVAPORATION


# ---------------------------------------------------------------------------
# mechanisms, against their formulas
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("pj", [1.0, 5.0, 20.0, 50.0])
@pytest.mark.parametrize("coated", [False, True])
def test_operating_point_solves_the_rate_condition(pj, coated):
    op = operating_point(M, pj, coated=coated)
    # the Arrhenius rate at (F, T) is the requested per-site rate
    phi = 0.005 / (0.8 * M.surface_sites)
    q = M.barrier_ev * (1 - op.oxide_field_v_nm / M.oxide_zero_barrier_field_v_nm)
    rate = M.attempt_frequency_hz * M.evaporation_time_ns * 1e-9 * math.exp(
        -q / (BOLTZMANN_EV_K * op.peak_temperature_k))
    assert rate == pytest.approx(phi, rel=1e-6)
    # and T is the heating at that field
    g = heat_flow_factor(M, coated, 30.0, 5.0)
    a_shank = M.coating_shank_absorption if coated else 1.0
    shank = 1 - M.shank_heating_share + M.shank_heating_share * a_shank / g
    a = math.exp((op.oxide_field_v_nm - M.absorption_reference_field_v_nm)
                 / M.absorption_field_scale_v_nm)
    assert op.peak_temperature_k == pytest.approx(
        M.base_temperature_k + M.heating_k_per_pj * pj * a * shank, rel=1e-9)
    assert op.coating_field_v_nm == pytest.approx(op.oxide_field_v_nm * 29 / 35)


def test_heat_flow_factor_of_the_default_shell():
    # 1 + (30 / 3) * ((35^2 - 30^2) / 30^2)
    assert heat_flow_factor(M, True, 30.0, 5.0) == pytest.approx(1 + 10 * 325 / 900)
    assert heat_flow_factor(M, False, 30.0, 5.0) == 1.0
    # the fitted shank absorption balances it: equal peak temperatures at every energy
    for pj in (5.0, 30.0):
        a = operating_point(M, pj, coated=True).peak_temperature_k
        b = operating_point(M, pj, coated=False).peak_temperature_k
        assert a == pytest.approx(b, rel=1e-3)


def test_field_falls_and_cooling_lengthens_with_laser_energy():
    ops = [operating_point(M, e, coated=True) for e in (1, 5, 10, 20, 30, 40, 50)]
    f = [o.oxide_field_v_nm for o in ops]
    t = [o.peak_temperature_k for o in ops]
    tau = [o.cooling_time_ns for o in ops]
    assert all(np.diff(f) < 0) and all(np.diff(t) > 0) and all(np.diff(tau) > 0)
    tails = [o.tail_fraction for o in ops]
    assert all(np.diff(tails) > 0)
    unc = operating_point(M, 5.0, coated=False)
    # tau = tau_0 (T / T_ref) / g, and the tail's weight w = w_0 tau / tau_0
    scale = unc.peak_temperature_k / M.cooling_reference_k
    assert unc.cooling_time_ns == pytest.approx(M.cooling_time_ns * scale)
    w = M.tail_fraction / (1 - M.tail_fraction) * scale
    assert unc.tail_fraction == pytest.approx(w / (1 + w))
    coated = ops[1]
    assert coated.cooling_time_ns == pytest.approx(
        M.cooling_time_ns * coated.peak_temperature_k / M.cooling_reference_k
        / coated.heat_flow_factor)
    assert coated.tail_fraction < unc.tail_fraction / 2


def test_log_rate_factor():
    assert log_rate_factor(M, 0.005, 0.8) == pytest.approx(
        math.log(1e13 * 1e-9 * 0.8 * 3e4 / 0.005))


def test_o2_ratio_is_a_function_of_the_field_alone_and_falls_with_it():
    fs = np.linspace(18, 32, 15)
    r = [o2_to_o_ratio(M, f) for f in fs]
    assert all(np.diff(r) < 0)
    for f in fs:
        p = -math.expm1(-math.exp((f - M.breakup_field_v_nm) / M.breakup_width_v_nm))
        assert breakup_probability(M, f) == pytest.approx(p)
        assert o2_to_o_ratio(M, f) == pytest.approx((1 - p) / (2 * p))


def test_neutral_o2_rises_with_temperature():
    x = [neutral_o2_fraction(M, t) for t in (100, 200, 300, 400)]
    assert all(np.diff(x) > 0) and x[0] < 1e-3
    t = 300.0
    e = math.exp(M.desorption_log_prefactor - M.desorption_barrier_ev / (BOLTZMANN_EV_K * t))
    assert neutral_o2_fraction(M, t) == pytest.approx(e / (1 + e))


def test_metal_charge_states_are_the_kingham_curves():
    c = kingham_curves("Cr", np.array([21.0]))
    fr = charge_fractions(M, "Cr", 21.0, 300.0, oxide=False)
    assert fr[1] / fr[0] == pytest.approx(c.fractions[2][0] / c.fractions[1][0], rel=1e-9)


def test_oxide_cations_add_a_direct_term_that_grows_with_temperature():
    f = 25.0
    lo = charge_fractions(M, "Mn", f, 250.0, oxide=True)
    hi = charge_fractions(M, "Mn", f, 450.0, oxide=True)
    assert hi[1] / hi[0] > lo[1] / lo[0]
    # at the same field, a metal's ratio does not depend on temperature
    assert charge_fractions(M, "Cr", f, 250.0, False) == charge_fractions(M, "Cr", f, 450.0,
                                                                          False)
    for fr in (lo, hi):
        assert sum(fr) == pytest.approx(1.0)


def test_field_map_bins_average_to_one_over_the_cap():
    fm = field_map(M, 0.7)
    b = fm.factors
    assert len(b) == 9 and b.min() < 1 < b.max()
    n = fm.grid.shape[0]
    g = (np.arange(n) + 0.5) / n * 2 - 1
    u, v = np.meshgrid(g, g)
    inside = u * u + v * v <= 1
    f = b[fm.grid[inside]]
    # area-weighted mean 1, relative standard deviation the declared spread (binned)
    assert f.mean() == pytest.approx(1.0, abs=1e-9)
    assert f.std() == pytest.approx(M.field_spread, rel=0.1)
    # lower field on the laser side: the side facing the laser (angle 0.7) against the other
    lx, ly = math.cos(0.7), math.sin(0.7)
    side = u * lx + v * ly
    assert f[side[inside] > 0.5].mean() < f[side[inside] < -0.5].mean()
    off = field_map(replace(M, field_spread=0.0), 0.7)
    assert np.all(off.factors == 1.0) and np.all(off.grid == 4)


def test_parameter_table_and_overrides():
    rows = parameter_table()
    assert {r["status"] for r in rows} <= {"sourced", "assumed", "fitted"}
    assert all(r["unit"] and r["source"] for r in rows)
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)) and "coating_field_ratio" in names
    m = with_overrides(M, ["field_spread=0", "barrier_ev=3"])
    assert m.field_spread == 0 and m.barrier_ev == 3
    with pytest.raises(ValueError, match="unknown parameter 'nope'"):
        with_overrides(M, {"nope": 1})
    with pytest.raises(ValueError, match="not a number"):
        with_overrides(M, {"barrier_ev": "x"})
    with pytest.raises(ValueError, match="positive"):
        with_overrides(M, {"barrier_ev": -1})


def test_cli_lists_and_sets_parameters(tmp_path):
    r = CliRunner().invoke(cli, ["simulate", "--list-parameters", "--json",
                                 "--set", "field_spread=0"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["parameters"]
    assert {"name", "unit", "value", "source", "status"} <= set(rows[0])
    assert next(x for x in rows if x["name"] == "field_spread")["value"] == 0.0
    r = CliRunner().invoke(cli, ["simulate", "--set", "nope=1", "-o",
                                 str(tmp_path / "a.epos")])
    assert r.exit_code == 2 and "unknown parameter 'nope'" in r.output


# ---------------------------------------------------------------------------
# simulated runs, measured blind
# ---------------------------------------------------------------------------

def _run(coating, pj, ions=60_000, seed=3, **kw):
    return simulate(SimulationConfig("NMC811", coating=coating, ions=ions, seed=seed,
                                     laser_pj=pj, fracture=None, mobility=None, **kw))


def _measured(sim):
    fp = field_proxies(sim.run, sim.ranges)
    r = fp.ratios["O2+/O+"]
    cr = fp.charge_state_ratios.get("Cr++/Cr+")
    return r, cr


@pytest.fixture(scope="module")
def sweep():
    out = {}
    for coating in ("none", "Cr"):
        for pj in (5.0, 20.0, 50.0):
            out[coating, pj] = _run(coating, pj)
    return out


def test_collapse_o2_and_cr_ratios_lie_on_one_curve_against_the_local_field(sweep):
    for (coating, pj), sim in sweep.items():
        r, cr = _measured(sim)
        f_ox = sim.truth["field"]["oxide_mean_v_nm"]
        expect = o2_to_o_ratio(M, f_ox)
        # counting error plus the spread of the map (2 %: r changes ~7 % per V/nm)
        assert abs(r.value - expect) < 4 * r.error + 0.05 * expect, (coating, pj)
        if coating == "Cr":
            f_cr = sim.truth["field"]["coating_mean_v_nm"]
            c = kingham_curves("Cr", np.array([f_cr]))
            k = c.fractions[2][0] / c.fractions[1][0]
            # Kingham is steep: 1 % in field is ~25 % in the ratio at these fields
            assert abs(math.log(cr.value / k)) < 0.35, (pj, cr.value, k)
    # the field falls with laser energy in both, and coated and uncoated agree at 5 pJ
    for c in ("none", "Cr"):
        f = [sweep[c, e].truth["field"]["oxide_mean_v_nm"] for e in (5.0, 20.0, 50.0)]
        assert f[0] > f[1] > f[2]
    r_unc, _ = _measured(sweep["none", 5.0])
    r_coat, _ = _measured(sweep["Cr", 5.0])
    assert 2.3 <= r_unc.value <= 2.9 and 2.3 <= r_coat.value <= 2.9
    assert _measured(sweep["Cr", 50.0])[0].value > 4
    cr = [_measured(sweep["Cr", e])[1].value for e in (5.0, 20.0, 50.0)]
    assert cr[0] > cr[1] > cr[2]


def test_fixed_field_makes_the_proxies_independent_of_laser_energy():
    a = _run("Cr", 5.0, ions=100_000, field_v_nm=24.5)
    b = _run("Cr", 20.0, ions=100_000, field_v_nm=24.5)
    assert b.truth["temperature"]["peak_k"] > a.truth["temperature"]["peak_k"] + 50
    assert b.truth["field"]["fixed"] and a.truth["field"]["oxide_mean_v_nm"] == pytest.approx(
        b.truth["field"]["oxide_mean_v_nm"], rel=2e-3)
    for x, y in zip(_measured(a), _measured(b)):
        z = (x.value - y.value) / math.hypot(x.error, y.error)
        assert abs(z) < 3.5, (x, y)


def test_coupling_one_constant_moves_every_proxy_together():
    base = _run("Cr", 10.0, ions=100_000)
    hot = _run("Cr", 10.0, ions=100_000, evaporation=replace(
        M, coating_shank_absorption=2.0 * M.coating_shank_absorption))
    tb, th = base.truth, hot.truth
    assert th["temperature"]["peak_k"] > tb["temperature"]["peak_k"]
    assert th["field"]["oxide_mean_v_nm"] < tb["field"]["oxide_mean_v_nm"]
    (rb, cb), (rh, ch) = _measured(base), _measured(hot)
    assert rh.value > rb.value + 2 * math.hypot(rh.error, rb.error)        # O2+/O+ up
    assert ch.value < cb.value - 2 * math.hypot(ch.error, cb.error)        # Cr++/Cr+ down
    mn_b = tb["segments"][0]["conditions"][0]["charge_ratios"]["Mn++/Mn+"]
    mn_h = th["segments"][0]["conditions"][0]["charge_ratios"]["Mn++/Mn+"]
    assert mn_h > mn_b                                                       # Mn++/Mn+ up
    assert th["segments"][0]["peak"]["tail_tau_ns"] > tb["segments"][0]["peak"]["tail_tau_ns"]


def test_kingham_round_trip_recovers_the_coating_field():
    off = _run("Cr", 10.0, ions=150_000, evaporation=replace(M, field_spread=0.0))
    kf = kingham_fields(off.run, off.ranges).elements["Cr"]
    truth = off.truth["field"]["coating_mean_v_nm"]
    assert kf.value_v_nm == pytest.approx(truth, rel=0.02)
    on = _run("Cr", 10.0, ions=150_000)
    kf = kingham_fields(on.run, on.ranges).elements["Cr"]
    predicted = on.truth["field"]["coating_kingham_v_nm"]
    assert abs(kf.value_v_nm - predicted) < 3 * kf.error_v_nm + 0.005 * predicted


def test_tails_and_mrp_follow_the_heat_flow():
    coated, bare = _run("Cr", 5.0, ions=150_000), _run("none", 5.0, ions=150_000)
    assert coated.truth["segments"][0]["peak"]["tail_tau_ns"] < \
        bare.truth["segments"][0]["peak"]["tail_tau_ns"] / 3
    pc = analyse_peaks(coated.run["mass"], coated.run["tof"])
    pb = analyse_peaks(bare.run["mass"], bare.run["tof"])

    def near(pa, m):
        return min(pa.peaks, key=lambda p: abs(p.mass - m))

    # Figure 4a: the coating's heat flow shortens the tails, so the peaks are narrower
    # near their base; at half maximum both are the instrument's timing
    for m in (7.0, 16.0, 58.0):
        c, b = near(pc, m), near(pb, m)
        assert c.mrp("fw1") > 1.5 * b.mrp("fw1"), m
        assert c.mrp("fw10") > 0.95 * b.mrp("fw10"), m
        assert c.mrp("fwhm") > 0.85 * b.mrp("fwhm"), m
        assert c.tail_ns < b.tail_ns, m


# ---------------------------------------------------------------------------
# review: conservation, metals, bins, fixed field, bad constants
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, kind", [("NMC811", "material"), ("LiMn2O4", "material"),
                                        ("Cr", "phase"), ("coating", "coating")])
@pytest.mark.parametrize("field_v_nm, temperature_k", [(18.0, 450.0), (26.0, 300.0),
                                                       (34.0, 120.0)])
def test_every_atom_of_the_phase_leaves_in_some_ion_or_neutral(name, kind, field_v_nm,
                                                              temperature_k):
    from liprobe.simulate import DEFAULT_SPECIES, resolve_material
    from liprobe.simulate.evaporation import species_at
    from liprobe.simulate.species import Species, coating_phase, emission

    phase = coating_phase("Cr", DEFAULT_SPECIES) if kind == "coating" else \
        resolve_material(name)
    sp = species_at(DEFAULT_SPECIES, phase, kind, field_v_nm, temperature_k, M)
    em = emission(phase, sp, free_oxygen=kind != "coating")
    carried: dict = {}
    for n, events in em.per_formula_unit.items():
        for el, k in Species.from_name(n).atoms:
            carried[el] = carried.get(el, 0.0) + events * k
    for el, amount in phase.amounts:
        assert carried.get(el, 0.0) == pytest.approx(amount, rel=1e-6), (el, carried)
    assert set(carried) == {el for el, _ in phase.amounts}


def test_a_metal_phase_has_the_kingham_charge_states_and_no_oxide_ions():
    from liprobe.simulate import DEFAULT_SPECIES, resolve_material
    from liprobe.simulate.evaporation import species_at

    for el, f in (("Cr", 21.5), ("Ni", 26.0)):
        sp = species_at(DEFAULT_SPECIES, resolve_material(el), "phase", f, 300.0, M)
        part = dict(sp.partition(el))
        assert all("O" not in n for n in part)
        c = kingham_curves(el, np.array([f]))
        assert part[f"{el}++"] / part[f"{el}+"] == pytest.approx(
            c.fractions[2][0] / c.fractions[1][0], rel=1e-6)
        assert not sp.neutral_losses and not sp.dissociated_o


def test_each_field_bin_runs_at_the_temperature_of_its_field():
    from liprobe.simulate.evaporation import bin_temperature

    op = operating_point(M, 10.0, coated=True)
    t_max = M.barrier_ev / (BOLTZMANN_EV_K * op.log_rate_factor)
    for factor in (0.95, 1.0, 1.04):
        t = bin_temperature(op, factor)
        # the rate condition F = F0 (1 - T / t_max) holds at the bin's field
        assert factor * op.oxide_field_v_nm == pytest.approx(
            M.oxide_zero_barrier_field_v_nm * (1 - t / t_max), rel=1e-9)
    assert bin_temperature(op, 0.98) > op.peak_temperature_k > bin_temperature(op, 1.02)


def test_a_fixed_field_keeps_the_lasers_temperature_and_is_bounded():
    free = operating_point(M, 5.0, coated=True)
    fixed = operating_point(M, 5.0, coated=True, fixed_field_v_nm=30.0)
    assert fixed.oxide_field_v_nm == 30.0 and fixed.field_fixed
    assert fixed.peak_temperature_k == pytest.approx(free.peak_temperature_k)
    for bad in (1.0, 200.0, float("nan")):
        with pytest.raises(ValueError, match="5-60 V/nm"):
            operating_point(M, 5.0, coated=True, fixed_field_v_nm=bad)
    with pytest.raises(ValueError, match="5-60 V/nm"):
        SimulationConfig(field_v_nm=100.0)


@pytest.mark.parametrize("setting, phrase", [
    ("base_temperature_k=2600 --set barrier_ev=20", "beyond the model"),
    ("surface_sites=1e-30", "no solution"),
    ("heating_k_per_pj=1e9", "zero field"),
])
def test_extreme_constants_give_one_line_errors(tmp_path, setting, phrase):
    args = ["simulate", "--ions", "2000", "--set"] + setting.split(" ") + [
        "-o", str(tmp_path / "a.epos")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    assert phrase in r.output and "Traceback" not in r.output


def test_the_truth_records_the_kingham_bias_of_the_field_map():
    sim = _run("Cr", 10.0, ions=40_000)
    f = sim.truth["field"]
    assert f["coating_kingham_bias_v_nm"] == pytest.approx(
        f["coating_kingham_v_nm"] - f["coating_mean_v_nm"])
    off = _run("Cr", 10.0, ions=40_000, evaporation=replace(M, field_spread=0.0))
    g = off.truth["field"]
    # map off: the shell has one field, the noise-free Kingham field is that field
    assert g["coating_kingham_v_nm"] == pytest.approx(g["coating_mean_v_nm"], rel=1e-9)
