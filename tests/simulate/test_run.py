"""A simulated run, read back with liprobe, against the simulator's truth.

The truth (``run.truth.json``, ``run.truth.pos``) is the oracle: the counts it
keeps come from the simulator's own bookkeeping (a binary search on the
designed windows), the positions from the specimen model, and the expected
window counts from the analytic peak shapes.
"""

import math

import numpy as np
import pytest

import liprobe
from liprobe.composition import composition
from liprobe.ranging import count_windows
from liprobe.simulate import DEFAULT_EVAPORATION, SimulationConfig, simulate
from liprobe.simulate.evaporation import field_map, neutral_o2_fraction
from liprobe.simulate.specimen import Needle
from liprobe.simulate.spectrum import TOF_CONSTANT
from liprobe.spatial.reconstruct import ReconstructionParameters, reconstruct_run
from liprobe.spatial.roi import select

from .conftest import Written

RATIOS = ("Li/(Li+Ni+Co+Mn)", "Ni/(Ni+Co+Mn)")


def fractions(atoms):
    total = sum(atoms.values())
    return {el: n / total for el, n in atoms.items()}


def ratio(fr, num, den):
    return sum(fr.get(e, 0.0) for e in num) / sum(fr.get(e, 0.0) for e in den)


# -- ranging and composition -----------------------------------------------------

@pytest.mark.parametrize("which", ["coated", "uncoated"])
def test_ranging_the_written_file_with_the_written_ranges_gives_the_truths_counts(which,
                                                                                 request):
    w = request.getfixturevalue(which)
    counts, unranged = count_windows(w.run["mass"], w.ranges)
    assert len(w.ranges) == len(w.truth["windows"])
    for c, r, tw in zip(counts, w.ranges.ranges, w.truth["windows"]):
        assert (r.lo, r.hi, r.ion.name) == (tw["lo"], tw["hi"], tw["ion"])
        assert c == tw["total"] == sum(tw["counts"].values()) + tw["background"]
    assert unranged == w.truth["unranged"]["total"]


@pytest.mark.parametrize("which", ["coated", "uncoated"])
def test_window_counts_agree_with_the_analytic_peak_shapes(which, request):
    w = request.getfixturevalue(which)
    pulls = [(tw["total"] - tw["expected_total"]) / math.sqrt(tw["expected_total"] + 1)
             for tw in w.truth["windows"]]
    assert max(abs(p) for p in pulls) < 5
    assert np.sqrt(np.mean(np.square(pulls))) < 1.6


@pytest.mark.parametrize("which", ["coated", "uncoated"])
def test_ranged_composition_matches_the_truth_within_counting_error_and_declared_losses(
        which, request):
    w = request.getfixturevalue(which)
    comp = composition(w.run["mass"], w.ranges)
    n = sum(comp.atom_counts.values())
    truth = w.truth["composition"]["evaporated"]["overall"]["atomic_fractions"]
    declared = w.truth["composition"]["expected_ranged"]["atomic_fractions"]
    for el, t in truth.items():
        c = comp.atomic_percent[el] / 100
        sigma = math.sqrt(c * (1 - c) / n)
        # the declared expectation (neutral O, tails, background, coincidences) ...
        assert abs(c - declared[el]) <= 4 * sigma + 1e-9, el
        # ... is what separates the ranged composition from the evaporated one
        assert abs(c - t) <= 4 * sigma + abs(declared[el] - t), el
    # the thermal O2 desorption (evaporation model), counted: a mean over the field bins,
    # so between its values at the coolest and the hottest bin's temperature
    seg = w.truth["segments"][0]["operating"]
    t, dt = seg["peak_temperature_k"], seg["temperature_per_field_k"] * seg["oxide_field_v_nm"]
    share = w.truth["losses"]["neutral_o_fraction_of_o"]
    factors = field_map(DEFAULT_EVAPORATION, 0.0).factors      # their range, whatever the side
    assert neutral_o2_fraction(DEFAULT_EVAPORATION, t - (factors.max() - 1) * dt) < share < \
        neutral_o2_fraction(DEFAULT_EVAPORATION, t + (1 - factors.min()) * dt)


def test_coated_oxide_ratios_and_oxygen_fraction_are_near_the_papers_values(coated):
    comp = composition(coated.run["mass"], coated.ranges, exclude=("Cr",),
                       ratios=RATIOS + ("O/(Li+O+Ni+Co+Mn)", "O2+/O+"))
    r = {k: v.value for k, v in comp.ratios.items()}
    assert r["Li/(Li+Ni+Co+Mn)"] == pytest.approx(0.5, abs=0.01)
    assert r["Ni/(Ni+Co+Mn)"] == pytest.approx(0.8, abs=0.015)
    assert r["O/(Li+O+Ni+Co+Mn)"] == pytest.approx(0.5, abs=0.01)
    assert r["O2+/O+"] == pytest.approx(2.61, abs=0.15)


def test_designed_peaks_carry_their_own_counts_apart_from_tails_of_other_isotopes(uncoated):
    o2 = next(tw for tw in uncoated.truth["windows"] if tw["lo"] <= 31.99 < tw["hi"])
    assert o2["ion"] == "O2+"
    ni64 = next(d for d in o2["designed_for"] if d["species"] == "Ni++")
    assert ni64["mz"] == pytest.approx(31.9634, abs=1e-3)
    # the window also holds the long uncoated tails of 61Ni++ and 62Ni++
    assert 0 < ni64["count"] < o2["counts"]["Ni++"]
    ni = uncoated.truth["species"]["Ni++"]
    share = ni64["count"] / (ni["detected"] - ni["detected_as_background"])
    assert share == pytest.approx(0.0093, abs=4 * math.sqrt(0.0093 / ni["detected"]))


def test_the_range_file_covers_every_species_emitted(coated):
    ranged = {r.ion.name for r in coated.ranges.ranges}
    designed = {p["species"] for tw in coated.truth["windows"] for p in tw["designed_for"]}
    for name, sp in coated.truth["species"].items():
        if sp["charge"] == 0 or sp["emitted"] == 0:
            continue
        assert name in designed, name
        # a species without a window of its own shares one with a coincident ion
        if name not in ranged:
            assert sp["in_other_windows"] > 0.9 * (sp["detected"] - sp["detected_as_background"])
    for r in coated.ranges.ranges:
        assert r.volume > 0 and r.color.startswith("#")


# -- reconstruction ----------------------------------------------------------------

def away_from_interface(w, margin_nm=3.0):
    spec = w.truth["specimen"]
    if spec["coating_thickness_nm"] == 0:
        return np.ones(len(w.true), bool)
    needle = Needle(spec["apex_radius_nm"], spec["shank_angle_deg"], spec["start_depth_nm"],
                    spec["coating_thickness_nm"])
    rho = np.hypot(w.true["x"], w.true["y"])
    d = needle.surface_distance(rho, w.true["z"]) - needle.coating_thickness_nm
    return np.abs(d) > margin_nm


@pytest.mark.parametrize("which", ["coated", "uncoated"])
def test_reconstructing_with_the_truths_parameters_lands_within_half_a_nm_of_the_truth(which,
                                                                                       request):
    w = request.getfixturevalue(which)
    params = ReconstructionParameters(**w.truth["reconstruction_parameters"])
    rec, _ = reconstruct_run(w.run, params, w.ranges)
    d = np.sqrt((rec["x"] - w.true["x"]) ** 2 + (rec["y"] - w.true["y"]) ** 2
                + (rec["z"] - w.true["z"]) ** 2)
    keep = away_from_interface(w)
    assert keep.mean() > 0.15
    assert np.median(d[keep]) < 0.5
    # and the .epos holds exactly this reconstruction of its own detector data
    assert np.array_equal(rec["x"], w.run["x"]) and np.array_equal(rec["z"], w.run["z"])


def test_trajectory_blur_is_larger_at_the_coating_interface(coated):
    spec = coated.truth["specimen"]
    needle = Needle(spec["apex_radius_nm"], spec["shank_angle_deg"], spec["start_depth_nm"],
                    spec["coating_thickness_nm"])
    x, y = coated.true["x"], coated.true["y"]
    d = np.abs(needle.surface_distance(np.hypot(x, y), coated.true["z"]) -
               needle.coating_thickness_nm)
    lateral = np.hypot(coated.run["x"] - x, coated.run["y"] - y)
    near, far = lateral[d < 0.5], lateral[d > 4]
    # Rayleigh medians: 1.177 sigma, sigma = 0.2 nm far, ~0.2 + 1.5 nm at the interface
    assert np.median(far) == pytest.approx(1.177 * 0.2, rel=0.1)
    assert np.median(near) > 5 * np.median(far)


def test_the_declared_depth_ratio_is_what_reconstruction_gives_and_calibration_removes_it(
        coated):
    # depth increments between the first and the last 30,000 ions near the axis (absolute
    # depths of a 2 nm run carry the cap's offset at the start)
    rd = coated.truth["reconstruction_depth"]
    x, y, z = coated.true["x"], coated.true["y"], coated.true["z"]
    axis = np.hypot(x, y) < 8
    first, last = slice(0, 30_000), slice(len(z) - 30_000, None)

    def deepening(zz):
        return np.median(zz[last][axis[last]]) - np.median(zz[first][axis[first]])

    true_dz = deepening(z)
    # with the instrument's efficiency the depths come out short by the declared ratio
    rec, _ = reconstruct_run(coated.run,
                             ReconstructionParameters(**rd["parameters_uncalibrated"]),
                             coated.ranges)
    got = deepening(rec["z"]) / true_dz
    assert rd["expected_ratio_reconstructed_to_true"] < 0.9
    assert got == pytest.approx(rd["expected_ratio_reconstructed_to_true"], abs=0.03)
    # the .epos is the calibrated reconstruction: true depths
    assert rd["parameters_depth_calibrated"] == coated.truth["reconstruction_parameters"]
    assert deepening(coated.run["z"]) / true_dz == pytest.approx(1.0, abs=0.03)


def test_true_positions_lie_in_the_needle_and_deepen_through_the_run(coated):
    spec = coated.truth["specimen"]
    needle = Needle(spec["apex_radius_nm"], spec["shank_angle_deg"], spec["start_depth_nm"],
                    spec["coating_thickness_nm"])
    x, y, z = coated.true["x"], coated.true["y"], coated.true["z"]
    assert np.all(needle.surface_distance(np.hypot(x, y), z) > -1e-3)
    assert np.all(z <= 1e-4)
    tenth = len(z) // 10
    axis = np.hypot(x, y) < 5
    first, last = z[:tenth][axis[:tenth]], z[-tenth:][axis[-tenth:]]
    assert np.median(last) < np.median(first) - 0.5 * coated.truth["depth_profile"]["depth_nm"][-1]


def test_voltage_follows_k_f_r_and_the_radius_grows_as_the_shank_angle_dictates(coated):
    dp = coated.truth["depth_profile"]
    p = coated.truth["reconstruction_parameters"]
    spec = coated.truth["specimen"]
    kf = p["k_factor"] * p["evaporation_field_V_per_nm"]
    s = math.sin(math.radians(spec["shank_angle_deg"]))
    for d, r, v in zip(dp["depth_nm"], dp["radius_nm"], dp["voltage_V"]):
        assert v == pytest.approx(kf * r, rel=1e-12)
        assert r == pytest.approx(spec["apex_radius_nm"] + d * s / (1 - s), rel=1e-9)
    v_file = coated.run["v_dc"]
    assert np.all(np.diff(v_file.astype(np.float64)) >= 0)        # evaporation order


# -- the coated specimen: ROI and shell ------------------------------------------------

def test_coated_roi_ratios_equal_the_truths_within_counting_error(coated):
    roi, _ = select(coated.run, "cylinder:25")
    comp = composition(roi["mass"], coated.ranges, ratios=RATIOS)
    truth = coated.truth["composition"]["evaporated"]["by_phase"]["NMC811"]["atomic_fractions"]
    declared = coated.truth["composition"]["expected_ranged"]["atomic_fractions"]
    for expr, num, den in (("Li/(Li+Ni+Co+Mn)", ["Li"], ["Li", "Ni", "Co", "Mn"]),
                           ("Ni/(Ni+Co+Mn)", ["Ni"], ["Ni", "Co", "Mn"])):
        r = comp.ratios[expr]
        t = ratio(truth, num, den)
        # declared: the tails of 58Ni under Co, and the Li that left between pulses at 5 pJ
        # (a background, liprobe.simulate.lithium: 3 % of the Li of a coated run)
        systematic = abs(ratio(declared, num, den) - t)
        assert abs(r.value - t) <= 3 * r.error + systematic, (expr, r.value, t)
        assert systematic < 0.02
    assert comp.atomic_percent.get("Cr", 0.0) < 0.5            # background only


def test_the_cr_shell_shows_at_the_periphery_of_the_xy_view_and_not_in_the_roi(coated):
    run = coated.run
    labels_cr = np.array([r.ion.count("Cr") > 0 for r in coated.ranges.ranges])
    lo, hi = coated.ranges.lo, coated.ranges.hi
    k = np.searchsorted(np.ravel(np.column_stack([lo, hi])), run["mass"].astype(np.float64),
                        side="right")
    ranged = k % 2 == 1
    is_cr = np.zeros(len(k), bool)
    is_cr[ranged] = labels_cr[(k[ranged] - 1) // 2]
    cx, cy = np.median(run["x"]), np.median(run["y"])
    r = np.hypot(run["x"] - cx, run["y"] - cy)
    r_max = np.percentile(r, 99.5)
    inner = ranged & (r <= 12.5)
    outer = ranged & (r > 0.85 * r_max)
    assert is_cr[inner].mean() < 0.005
    assert is_cr[outer].mean() > 0.5
    # the shell's fraction rises monotonically towards the edge over the outer rings
    edges = np.linspace(0.5 * r_max, r_max, 6)
    f = [is_cr[ranged & (r >= a) & (r < b)].mean() for a, b in zip(edges, edges[1:])]
    assert all(b >= a - 0.02 for a, b in zip(f, f[1:]))


# -- spectrum ------------------------------------------------------------------------

def measured_fwhm(mass, center, width_da, bin_da):
    edges = np.arange(center - 6 * width_da, center + 6 * width_da, bin_da)
    h, e = np.histogram(mass, edges)
    c = 0.5 * (e[1:] + e[:-1])
    k = int(np.argmax(h))
    half = h[k] / 2
    i = k
    while h[i] > half:
        i -= 1
    j = k
    while h[j] > half:
        j += 1
    left = np.interp(half, [h[i], h[i + 1]], [c[i], c[i + 1]])
    right = np.interp(half, [h[j], h[j - 1]], [c[j], c[j - 1]])
    return right - left


@pytest.mark.parametrize("species", ["O+", "Cr+"])
def test_measured_fwhm_of_an_isolated_peak_matches_the_width_the_simulator_set(coated, species):
    pw = coated.truth["peak_widths"][species]
    fw, mz = pw["fwhm_da"], pw["mz"]
    bin_da = fw / 6                                    # at most a fifth of the width
    got = measured_fwhm(coated.run["mass"], mz, fw, bin_da)
    assert got == pytest.approx(fw, rel=0.08)
    # MRP varies with mass as in an instrument: sqrt(m) at fixed timing resolution
    o, cr = coated.truth["peak_widths"]["O+"], coated.truth["peak_widths"]["Cr+"]
    assert cr["mrp_fwhm"] / o["mrp_fwhm"] == pytest.approx(math.sqrt(cr["mz"] / o["mz"]), rel=0.02)


def tail_decay_da(mass, mz, fwhm, span_da=None):
    """1/e length of the counts above a peak, fitted on log counts from 4 FWHM above it
    over ``span_da`` (default 11 FWHM; give about three decay lengths, else a long tail is
    fitted over a fraction of one and the slope scatters by tens of percent)."""
    span = 11 * fwhm if span_da is None else span_da
    edges = np.arange(mz + 4 * fwhm, mz + 4 * fwhm + span, fwhm / 2)
    h, e = np.histogram(mass, edges)
    c = 0.5 * (e[1:] + e[:-1])
    ok = h > 5
    slope = np.polyfit(c[ok] - mz, np.log(h[ok]), 1, w=np.sqrt(h[ok]))[0]
    return -1 / slope


def test_the_thermal_tail_is_longer_uncoated_than_coated(coated, uncoated):
    o_c = coated.truth["peak_widths"]["O+"]
    o_u = uncoated.truth["peak_widths"]["O+"]
    # fitted over three decay lengths of each (the truth's, as an analyst would widen it)
    t_c = tail_decay_da(coated.run["mass"], o_c["mz"], o_c["fwhm_da"],
                        3 * o_c["tail_tau_da_at_median_voltage"])
    t_u = tail_decay_da(uncoated.run["mass"], o_u["mz"], o_u["fwhm_da"],
                        3 * o_u["tail_tau_da_at_median_voltage"])
    assert t_u > 2 * t_c
    assert t_c == pytest.approx(o_c["tail_tau_da_at_median_voltage"], rel=0.25)
    assert t_u == pytest.approx(o_u["tail_tau_da_at_median_voltage"], rel=0.25)


def test_time_of_flight_is_consistent_with_mass_voltage_and_flight_path(coated):
    L = coated.truth["reconstruction_parameters"]["flight_path_mm"]
    t = coated.run["tof"].astype(np.float64)
    v = coated.run["v_dc"].astype(np.float64)
    m = TOF_CONSTANT * v * t * t / L ** 2
    assert np.allclose(m, coated.run["mass"], rtol=2e-6, atol=1e-6)
    assert not np.any(coated.run["v_pulse"])                       # laser pulsing


def test_background_is_flat_in_time_of_flight_at_the_set_level(coated):
    bg = coated.result.background
    t = coated.run["tof"][bg]
    # uniform over the acquisition window: equal counts in the halves of [t_lo, t_hi]
    v = coated.run["v_dc"][bg].astype(np.float64)
    L = 100.0
    t_lo = L * np.sqrt(0.5 / (TOF_CONSTANT * v))
    t_hi = L * np.sqrt(250.0 / (TOF_CONSTANT * v))
    u = (t - t_lo) / (t_hi - t_lo)
    assert np.all((u >= -1e-4) & (u <= 1 + 1e-4))
    h, _ = np.histogram(u, np.linspace(0, 1, 5))
    assert np.all(np.abs(h - h.mean()) < 4 * np.sqrt(h.mean()))
    expected = 10e-6 * np.mean(t_hi - t_lo)
    # the set level, on every species but Li: Li that left between pulses
    # (liprobe.simulate.lithium) adds Li to the background
    not_li = coated.result.species_index != coated.result.species.index("Li+")
    assert bg[not_li].mean() == pytest.approx(expected, rel=0.1)


# -- detection -------------------------------------------------------------------------

def test_detection_efficiency_and_multiple_hits(coated):
    sp = coated.truth["species"]
    ions = sum(v["emitted"] for v in sp.values() if v["charge"] > 0)
    passed = sum(v["emitted"] - v["not_detected_efficiency"] for v in sp.values()
                 if v["charge"] > 0)
    assert passed / ions == pytest.approx(0.80, abs=4 * math.sqrt(0.16 / ions))
    assert sum(v["detected"] for v in sp.values()) == coated.config.ions
    assert sp["O2 (neutral)"]["detected"] == 0
    mult = coated.run["multiplicity"]
    assert mult.sum() == coated.config.ions
    assert np.mean(mult[mult > 0] >= 2) == pytest.approx(0.06, abs=0.006)
    assert np.all(coated.run["pulse_delta"][mult == 0] == 0)
    r = np.hypot(coated.run["det_x"], coated.run["det_y"])
    assert r.max() <= 40.0


def test_the_xr_detects_52_percent(tmp_path):
    res = simulate(SimulationConfig("LiMn2O4", instrument="LEAP 5000 XR", ions=30_000, seed=2))
    sp = res.truth["species"]
    ions = sum(v["emitted"] for v in sp.values() if v["charge"] > 0)
    passed = sum(v["emitted"] - v["not_detected_efficiency"] for v in sp.values()
                 if v["charge"] > 0)
    assert passed / ions == pytest.approx(0.52, abs=4 * math.sqrt(0.25 / ions))
    assert res.reconstruction_parameters.flight_path_mm == 382.0
    assert res.truth["peak_widths"]["O+"]["mrp_fwhm"] > 1500      # reflectron


# -- phases and materials -------------------------------------------------------------

def test_a_limn2o4_grain_inside_nmc811_has_its_own_composition(tmp_path):
    cfg = SimulationConfig("NMC811", ions=120_000, seed=5, mobility=None, fracture=None,
                           phases=("LiMn2O4=sphere:14@0,0,-2",))
    w = Written(tmp_path, cfg)
    by_phase = w.truth["composition"]["evaporated"]["by_phase"]
    lmo = by_phase["LiMn2O4"]["atomic_fractions"]
    assert lmo.get("Ni", 0) == 0 and lmo["Li"] / (lmo["Li"] + lmo["Mn"]) == pytest.approx(
        1 / 3, abs=0.01)
    x, y, z = w.true["x"], w.true["y"], w.true["z"]
    inside = x ** 2 + y ** 2 + (z + 2) ** 2 <= 7 ** 2
    assert inside.sum() > 2000
    names = np.array(w.result.species)[w.result.species_index]
    assert not any("Ni" in n or "Co" in n for n in names[inside])
    assert any("Ni" in n for n in names[~inside])


@pytest.mark.parametrize("material, li_ratio", [("LiMn2O4", 1 / 3),
                                                ("LiNi0.6Co0.2Mn0.2O2", 0.5)])
def test_other_materials_evaporate_their_own_composition(material, li_ratio):
    # Li left in place (no mobility): the evaporated atoms are the phase's (neutrals included)
    res = simulate(SimulationConfig(material, ions=40_000, seed=3, mobility=None))
    fr = res.truth["composition"]["evaporated"]["overall"]["atomic_fractions"]
    metals = [e for e in fr if e not in ("Li", "O", "H")]
    assert ratio(fr, ["Li"], ["Li"] + metals) == pytest.approx(li_ratio, abs=0.01)


# -- determinism and files ------------------------------------------------------------

def files_of(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_different_seed_different_data(tmp_path):
    from liprobe.simulate import simulate_to_files

    cfg = SimulationConfig("NMC811", coating="Cr", ions=40_000, seed=7)
    for name, c, limit in (("a", cfg, None), ("b", cfg, None), ("c", cfg, 0),
                           ("d", cfg.replace(seed=8), None)):
        (tmp_path / name).mkdir()
        kw = {} if limit is None else {"memory_limit_ions": limit}   # c: the streaming path
        simulate_to_files(c, tmp_path / name / "run.epos", **kw)
    a, b, c, d = (files_of(tmp_path / n) for n in "abcd")
    assert list(a) == ["run.epos", "run.rrng", "run.truth.json", "run.truth.pos"]
    assert a == b == c
    assert a["run.epos"] != d["run.epos"] and a["run.truth.pos"] != d["run.truth.pos"]
    assert not any(p.name.startswith(".") for p in (tmp_path / "c").iterdir())


def test_a_pos_output_holds_the_same_positions_and_masses(tmp_path, coated):
    from liprobe.simulate import write_simulation

    write_simulation(coated.result, tmp_path / "run.pos")
    pos = liprobe.read(tmp_path / "run.pos")
    assert pos.format == "pos"
    for c in ("x", "y", "z", "mass"):
        assert np.array_equal(pos[c], coated.run[c])


def test_the_truth_records_inputs_seed_instrument_and_geometry(coated):
    t = coated.truth
    assert t["seed"] == 11 and t["inputs"]["ions"] == 300_000
    assert t["inputs"]["coating"] == "Cr" and t["inputs"]["material"] == "NMC811"
    assert t["instrument"]["efficiency"] == 0.8 and t["instrument"]["name"] == "LEAP 5000 XS"
    assert t["files"]["data"] == "run.epos" and t["files"]["truth_positions"] == "run.truth.pos"
    assert len(t["depth_profile"]["depth_nm"]) == 101
    assert {p["kind"] for p in t["phases"]} == {"material", "coating"}
    for sp in t["species"].values():
        assert sp["emitted"] == sum(sp["emitted_by_phase"].values())
        assert sp["emitted"] >= sp["detected"] + sp["not_detected_efficiency"]
