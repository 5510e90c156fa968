"""Li transport, fracture and laser schedules: the model, the truth, and what analyses see."""

import math

import numpy as np
import pytest

from liprobe.composition import composition
from liprobe.fda import frequency_distribution
from liprobe.history import run_history
from liprobe.ranging import count_windows
from liprobe.simulate import (
    DEFAULT_LITHIUM,
    LithiumModel,
    SimulationConfig,
    li_transport_at,
    prepare,
    simulate,
    simulate_to_files,
)
from liprobe.simulate.engine import FRACTURE_BURST, fracture_burst_ions
from liprobe.simulate.evaporation import DEFAULT_EVAPORATION, operating_point
from liprobe.simulate.lithium import BUDGET_PARTS
from liprobe.spatial.roi import select

from .conftest import Written
from .test_run import files_of

K_B = 1.380649e-23 / 1.602176634e-19      # eV/K, from the SI constants (not the module's)


def transport(pj, coated, model=DEFAULT_LITHIUM):
    op = operating_point(DEFAULT_EVAPORATION, pj, coated=coated)
    kw = dict(coated=coated, laser_pj=pj, temperature_k=op.peak_temperature_k,
              field_v_nm=op.oxide_field_v_nm, cooling_time_ns=op.cooling_time_ns,
              base_temperature_k=60.0, attempt_frequency_hz=1e13, evaporation_time_ns=1.0,
              events_per_pulse=0.007, volume_per_event_nm3=0.0095, cap_radius_nm=29.5)
    return li_transport_at(model, **kw), kw


def li_ratio(run, table, roi="cylinder:25", segment=None):
    """Li/(Li+Ni+Co+Mn) measured blind: the ions ranged by the run's range file."""
    sel, _ = select(run, roi, None if segment is None else slice(*segment), table)
    r = composition(sel["mass"], table, exclude=("Cr",), ratios=("Li/(Li+Ni+Co+Mn)",))
    return r.ratios["Li/(Li+Ni+Co+Mn)"].value


# -- the model -----------------------------------------------------------------------------

@pytest.mark.parametrize("pj, coated", [(5, False), (20, False), (5, True), (50, True)])
def test_li_transport_follows_its_formulas(pj, coated):
    t, kw = transport(pj, coated)
    m = DEFAULT_LITHIUM
    temp = kw["temperature_k"]
    # recomputed step by step in SI units
    d_si = m.li_diffusivity_300k_nm2_s * 1e-18 * math.exp(
        -m.li_activation_ev / K_B * (1 / temp - 1 / 300))                    # m^2/s
    e_in = kw["field_v_nm"] * 1e9 / m.oxide_permittivity * (m.coating_screening if coated
                                                            else 1.0)       # V/m
    v_drift = d_si * e_in / (K_B * temp)                                    # m/s
    front = (m.pulse_rate_hz * 0.007 * 0.0095e-27) / (math.pi * (29.5e-9) ** 2)
    pe = v_drift * m.pulse_rate_hz * kw["cooling_time_ns"] * 1e-9 / front
    assert t.peclet == pytest.approx(pe, rel=1e-4)
    assert t.drift == pytest.approx(1 - math.exp(-pe), rel=1e-6)
    q = m.li_barrier_ev * (1 - kw["field_v_nm"] / m.li_zero_barrier_field_v_nm)
    p_dc = 1 - math.exp(-1e13 / m.pulse_rate_hz * math.exp(-q / (K_B * 60.0)))
    p_p = 1 - math.exp(-1e13 * 1e-9 * math.exp(-q / (K_B * temp)))
    assert t.dc_loss == pytest.approx(p_dc / (p_dc + (1 - p_dc) * p_p), rel=1e-3, abs=1e-9)
    if coated:
        assert t.flank_supply == 0 and t.flank_depth_nm == 0
    else:
        delta = min(math.sqrt(d_si * m.pulse_rate_hz * kw["cooling_time_ns"] * 1e-9
                              * m.migration_length_nm * 1e-9 / front) * 1e9, 29.5)
        assert t.flank_depth_nm == pytest.approx(delta, rel=1e-4)
        assert t.flank_supply == pytest.approx(2 * delta / 29.5, rel=1e-4)


def test_what_the_constants_give_across_laser_energies():
    un = {pj: transport(pj, False)[0] for pj in (5, 10, 15, 20)}
    co = {pj: transport(pj, True)[0] for pj in (5, 20, 50)}
    # uncoated: every site's Li reaches the surface; the loss between pulses is a 5 pJ
    # effect (the highest field); the flanks' supply grows with temperature
    assert all(t.drift > 0.99 for t in un.values())
    assert un[5].dc_loss > 0.5 and un[10].dc_loss < 1e-3
    assert un[5].flank_supply < 0.3 < 1.5 < un[20].flank_supply
    assert np.all(np.diff([un[p].flank_supply for p in (5, 10, 15, 20)]) > 0)
    # coated: the screened field leaves most Li in place at 5 pJ (3 % lost between
    # pulses), and no flank supply
    assert co[5].drift < 0.06 and co[5].drift * co[5].dc_loss < 0.04
    assert all(t.flank_supply == 0 for t in co.values())


def test_constants_are_declared_and_checked():
    from liprobe.simulate import lithium_parameter_table

    rows = lithium_parameter_table()
    assert {r["status"] for r in rows} <= {"sourced", "assumed", "fitted"}
    assert all(r["unit"] and r["source"] for r in rows)
    fitted = {r["name"] for r in rows if r["status"] == "fitted"}
    assert fitted == {"li_diffusivity_300k_nm2_s", "li_zero_barrier_field_v_nm",
                      "coating_screening"}
    with pytest.raises(ValueError, match="island_atoms"):
        LithiumModel(island_atoms=0.5)
    with pytest.raises(ValueError, match="coating_screening"):
        LithiumModel(coating_screening=2.0)
    with pytest.raises(ValueError, match="oxide_permittivity"):
        LithiumModel(oxide_permittivity=float("nan"))


# -- the budget and what the analyses see -------------------------------------------------

@pytest.fixture(scope="module")
def li_runs():
    """NMC811, 200,000 ions each: uncoated at 5 and 20 pJ, coated at 5 and 50 pJ, and
    coated and uncoated with Li left in place (no fracture)."""
    cfgs = {("none", 5): {}, ("none", 20): {}, ("Cr", 5): {}, ("Cr", 50): {},
            ("none", "off"): {"mobility": None}, ("Cr", "off"): {"mobility": None}}
    out = {}
    for (coat, pj), kw in cfgs.items():
        out[(coat, pj)] = simulate(SimulationConfig(
            "NMC811", coating=coat, ions=200_000, seed=31, fracture=None,
            laser_pj=5 if pj == "off" else pj, **kw))
    return out


def test_the_li_budget_closes_and_its_parts_are_what_the_files_hold(li_runs):
    for key, r in li_runs.items():
        b = r.truth["li_budget"]
        if key[1] == "off":
            assert b is None and r.truth["li_transport"] is None
            continue
        assert b["closes"] and sum(b[k] for k in BUDGET_PARTS) == b["total"]
        assert b["total"] == b["from_sites"] + b["from_flanks"]
        # the Li ions in the file: the detected pulsed Li, plus the background Li that hit
        li = r.species.index("Li+")
        n_li = int(np.count_nonzero(r.species_index == li))
        assert b["detected"] <= n_li <= b["detected"] + b["background"]
        # pulsed Li lost to the efficiency: 1 - eta of the pulsed Li (binomial)
        eta = r.truth["instrument"]["efficiency"]
        pulsed = b["detected"] + b["lost_to_efficiency"] + b["outside_field_of_view"]
        assert b["lost_to_efficiency"] == pytest.approx((1 - eta) * pulsed,
                                                        abs=5 * math.sqrt(pulsed))
    # the analysed volume (the sites) holds the bulk's Li; what left holds the flanks' too
    t20 = li_runs[("none", 20)].truth
    comp = t20["composition"]

    def li_ratio_of(frac):
        return frac["Li"] / sum(frac[e] for e in ("Li", "Ni", "Co", "Mn"))
    assert li_ratio_of(comp["analysed_volume"]["overall"]["atomic_fractions"]) == \
        pytest.approx(0.5, abs=0.005)
    assert li_ratio_of(comp["evaporated"]["overall"]["atomic_fractions"]) > 0.6
    seg = t20["segments"][0]
    assert li_ratio_of(seg["analysed_volume_atomic_fractions"]) == pytest.approx(0.5, abs=0.005)
    un5, un20 = li_runs[("none", 5)].truth["li_budget"], li_runs[("none", 20)].truth[
        "li_budget"]
    assert un5["background"] > 0.4 * un5["total"] and un20["background"] == 0
    assert un20["from_flanks"] > un20["from_sites"] and li_runs[("Cr", 5)].truth[
        "li_budget"]["from_flanks"] == 0


@pytest.mark.parametrize("seed, carried, left", [(3, 8, 0), (1, 0, 17)])
def test_the_budget_closes_across_a_segment_boundary_and_at_a_stop_within_an_island(
        seed, carried, left):
    # 20 then 30 pJ: seed 3 ends its first section within an island (8 atoms carried into
    # the second), seed 1 ends the run within one (17 atoms remaining on the surface)
    r = simulate(SimulationConfig("NMC811", coating="none", ions=20_000, seed=seed,
                                  fracture=None, schedule=((0, 20), (10_000, 30))))
    t = r.truth
    first, second = (s["li_budget"] for s in t["segments"])
    assert first["closes"] and second["closes"] and t["li_budget"]["closes"]
    assert second["carried_in"] == first["remaining"] == carried
    assert second["remaining"] == t["li_budget"]["remaining"] == left
    for k in ("detected", "lost_to_efficiency", "background", "outside_field_of_view",
              "from_sites"):
        assert first[k] + second[k] == t["li_budget"][k], k
    assert first["from_flanks"] + second["from_flanks"] == t["li_budget"]["from_flanks"]


def test_li_islands_take_no_volume_and_depths_stay_calibrated(li_runs):
    # an uncoated 20 pJ run: most Li ions are islands from the flanks; the .epos depths (the
    # efficiency calibrated on the sites' volume) still follow the true ones
    r = li_runs[("none", 20)]
    core = np.hypot(r.true_x, r.true_y) < 8
    i = np.flatnonzero(core)
    true = np.polyfit(i, r.true_z[core].astype(float), 1)[0]
    rec = np.polyfit(i, r.run["z"][core].astype(float), 1)[0]
    assert rec / true == pytest.approx(1.0, abs=0.04)
    assert r.truth["li_budget"]["from_flanks"] > r.truth["li_budget"]["from_sites"]


def test_uncoated_li_follows_the_laser_energy_and_coated_li_stays_at_the_bulk(li_runs):
    got = {k: li_ratio(r.run, r.ranges) for k, r in li_runs.items()}
    bulk = got[("Cr", "off")]
    assert got[("none", "off")] == pytest.approx(bulk, abs=0.01)
    assert got[("none", 5)] < 0.35 < 0.6 < got[("none", 20)]
    assert got[("Cr", 5)] == pytest.approx(bulk, abs=0.02)
    assert got[("Cr", 50)] == pytest.approx(bulk, abs=0.015)


def test_uncoated_li_strings_together_and_coated_li_is_random(li_runs):
    mus = {}
    for k, r in li_runs.items():
        sel, _ = select(r.run, "cylinder:25", None, r.ranges)
        fd = frequency_distribution(sel, r.ranges, "Li+", 100, exclude=("Cr",), shuffles=5)
        mus[k] = (fd.mu, fd.mu_shuffled, np.asarray(fd.observed))
    for k in (("Cr", 5), ("Cr", 50), ("none", "off")):
        assert mus[k][0] < 2 * mus[k][1] + 0.02, (k, mus[k])
    assert mus[("none", 20)][0] > 5 * mus[("none", 20)][1]
    assert mus[("none", 20)][0] > mus[("none", 5)][0] > mus[("Cr", 5)][0]
    # unimodal (Figure 4b/c): one maximum of the kernel-smoothed histogram above a tenth of
    # its height
    for k in (("none", 20), ("Cr", 5)):
        h = mus[k][2].astype(float)
        x = np.arange(len(h))
        sm = np.array([np.sum(h * np.exp(-0.5 * ((x - i) / 3.0) ** 2)) for i in x])
        peaks = [i for i in range(1, len(sm) - 1)
                 if sm[i] > sm[i - 1] and sm[i] >= sm[i + 1] and sm[i] > 0.1 * sm.max()]
        assert len(peaks) == 1, (k, peaks)


def test_coated_li_has_no_periodicity():
    r = simulate(SimulationConfig("NMC811", coating="Cr", ions=400_000, seed=32,
                                  fracture=None, laser_pj=40))
    sel, _ = select(r.run, "cylinder:25", None, r.ranges)
    mass = sel["mass"]
    li = (mass > 6.5) & (mass < 7.3)
    framework = (li | ((mass > 15.5) & (mass < 16.5)) | ((mass > 31.5) & (mass < 32.5))
                 | ((mass > 57.5) & (mass < 62.5)))
    seq = li[framework].astype(float)
    assert len(seq) > 50_000
    s = seq - seq.mean()
    f = np.fft.rfft(s, 2 * len(s))
    acf = np.fft.irfft(f * np.conj(f))[:10_001] / np.dot(s, s)
    assert np.max(np.abs(acf[50:10_001])) < 0.03


def test_the_li_map_has_a_rim_that_grows_with_laser_energy(li_runs):
    from .test_series import _rim_over_core as rim_over_core

    # (a coated run's rim is its Cr shell: the uncoated run with Li left in place instead)
    ratio = {k: rim_over_core(li_runs[k]) for k in (("none", 5), ("none", 20),
                                                    ("none", "off"))}
    assert ratio[("none", "off")] == pytest.approx(1.0, abs=0.04)
    assert ratio[("none", 20)] > ratio[("none", 5)] + 0.04 and ratio[("none", 20)] > 1.1


# -- fracture -------------------------------------------------------------------------------

def test_fracture_settings_fixed_none_or_the_model():
    # was: uncoated runs fracture in FRACTURE_RANGE, coated ones never. FRACTURE_RANGE and
    # the "coated never fracture" rule are gone (issue 19): "auto" is the fracture model,
    # whose statistics are tested in test_fracture.py; a fraction stays a fixed point.
    assert SimulationConfig("NMC811", ions=10_000, fracture=0.7).fracture_fraction() == 0.7
    assert SimulationConfig("NMC811", ions=10_000, fracture=None).fracture_fraction() is None
    cfg = SimulationConfig("NMC811", ions=200_000, seed=3)
    assert cfg.fracture_fraction() is None                   # the model draws it: prepare()
    assert prepare(cfg).fracture_fraction == prepare(cfg).fracture_fraction < 1
    for bad in (0.0, 1.5, "sometimes", True):
        with pytest.raises(ValueError, match="fracture"):
            SimulationConfig("NMC811", fracture=bad)


def test_a_fractured_run_stops_early_ends_in_a_burst_and_history_sees_it():
    cfg = SimulationConfig("NMC811", ions=200_000, seed=3)      # the model fractures it
    r = simulate(cfg)
    f = r.truth["fracture"]
    n = int(round(prepare(cfg).fracture_fraction * 200_000))
    assert f["fractured"] and f["ion_index"] == n == r.run.n_ions == r.truth["ions_detected"]
    assert f["final_burst_ions"] == fracture_burst_ions(n) == max(1000, n // 100)
    mult = r.run["multiplicity"]
    assert mult.sum() == n
    tail = slice(n - f["final_burst_ions"], n)
    assert np.mean(mult[tail] != 1) > 0.7
    assert FRACTURE_BURST["multihit"].detection_rate > 0.5
    h = run_history(r.run)
    assert h.abrupt_end is True
    # a coated run that the model does not fracture (coated ones rarely do, test_fracture.py):
    # its truth records the model's stresses and no fracture (was: None, coated runs never
    # fractured)
    complete = simulate(SimulationConfig("NMC811", coating="Cr", ions=200_000, seed=4))
    assert not complete.truth["fracture"]["fractured"] and complete.run.n_ions == 200_000
    assert run_history(complete.run).abrupt_end is False
    assert simulate(cfg.replace(coating="Cr", fracture=0.5)).run.n_ions == 100_000


# -- laser schedules ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scheduled(tmp_path_factory):
    """Uncoated NMC811 with a 5/10/15/20 pJ schedule, fracturing in the last section."""
    cfg = SimulationConfig("NMC811", ions=240_000, seed=21, fracture=0.95,
                           schedule=((0, 5), (60_000, 10), (120_000, 15), (180_000, 20)))
    return Written(tmp_path_factory.mktemp("scheduled"), cfg)


def test_a_laser_schedule_shows_as_voltage_jumps_at_the_right_ion_indices(scheduled):
    starts = [60_000, 120_000, 180_000]
    h = run_history(scheduled.run)
    got = [j.ion_index for j in h.jumps]
    assert len(got) == 3, got
    for g, s in zip(got, starts):
        assert abs(g - s) <= 600, (got, starts)
    assert all(j.voltage_after_V < j.voltage_before_V for j in h.jumps)
    v = scheduled.run["v_dc"].astype(np.float64)
    segs = scheduled.truth["segments"]
    for k, s in enumerate(starts, start=1):
        # the voltage steps by the ratio of the segments' fields (V = k F R, R continuous)
        step = segs[k]["field_V_per_nm"] / segs[k - 1]["field_V_per_nm"]
        assert step < 0.985
        assert v[s] / v[s - 1] == pytest.approx(step, abs=0.004)
    assert [s["laser_pj"] for s in segs] == [5, 10, 15, 20]
    assert [s["start_ion"] for s in segs] == [0] + starts
    assert segs[-1]["stop_ion"] == scheduled.run.n_ions == 228_000


def test_each_section_has_its_own_conditions(scheduled):
    segs = scheduled.truth["segments"]
    # the model's O2+/O+ at each section's mean field rises with the laser energy; the
    # detected one too, within its noise
    model = [s["conditions"][0]["o2_to_o_ratio"] for s in segs]
    r = [s["ratios"]["O2+/O+ (detected)"] for s in segs]
    assert np.all(np.diff(model) > 0) and np.all(np.diff(r) > -0.3) and r[-1] > r[0] + 0.6
    # Li measured blind per section: few at 5 pJ, more at each step (flank supply)
    li = [li_ratio(scheduled.run, scheduled.ranges, roi=None,
                   segment=(s["start_ion"], s["stop_ion"])) for s in segs]
    assert np.all(np.diff(li) > 0) and li[0] < 0.35 and li[-1] > 0.6, li
    tau = [s["peak"]["tail_tau_ns"] for s in segs]
    assert np.all(np.diff(tau) > 0)
    d = scheduled.truth["li_transport"]
    assert [s["laser_pj"] for s in d["by_segment"]] == [5, 10, 15, 20]
    assert scheduled.truth["li_budget"]["closes"]


def test_bookkeeping_holds_for_a_delithiated_scheduled_run(scheduled):
    w = scheduled
    counts, unranged = count_windows(w.run["mass"], w.ranges)
    for c, tw in zip(counts, w.truth["windows"]):
        assert c == tw["total"]
    assert unranged == w.truth["unranged"]["total"]
    pulls = [(tw["total"] - tw["expected_total"]) / math.sqrt(tw["expected_total"] + 1)
             for tw in w.truth["windows"]]
    assert max(abs(p) for p in pulls) < 5
    sp = w.truth["species"]
    assert sum(v["detected"] for v in sp.values()) == w.run.n_ions
    for v in sp.values():
        assert v["emitted"] >= v["detected"] + v["not_detected_efficiency"]


def test_the_reconstruction_takes_each_sections_radius_from_its_own_field():
    from liprobe.spatial.reconstruct import ReconstructionParameters, reconstruct_run

    # coated (Li left nearly in place): depth increments of each section against the truth's
    r = simulate(SimulationConfig("NMC811", coating="Cr", ions=300_000, seed=8,
                                  schedule=((0, 5), (150_000, 20))))
    tz = r.true_z.astype(np.float64)
    axis = np.hypot(r.true_x, r.true_y) < 8

    def deepening(z, a, b):
        first, last = slice(a, a + 20_000), slice(b - 20_000, b)
        return np.median(z[last][axis[last]]) - np.median(z[first][axis[first]])

    def ratios(z):
        return [deepening(z, a, b) / deepening(tz, a, b) for a, b in ((0, 150_000),
                                                                      (150_000, 300_000))]

    per_section = ratios(r.run["z"].astype(np.float64))
    assert per_section[1] == pytest.approx(per_section[0], abs=0.05)
    one, _ = reconstruct_run(r.run, ReconstructionParameters(
        **r.truth["reconstruction_parameters"]), r.ranges)
    one_field = ratios(one["z"].astype(np.float64))
    assert one_field[0] == pytest.approx(per_section[0], abs=0.01)
    f = r.truth["segments"][1]["field_V_per_nm"] / r.truth["segments"][0]["field_V_per_nm"]
    assert one_field[1] / one_field[0] == pytest.approx(1 / f ** 2, rel=0.08)   # R^2 too small
    assert any("schedule" in n for n in r.truth["notes"])


@pytest.mark.parametrize("schedule, what", [
    (((5, 5), (100, 10)), "start at ion 0"),
    (((0, 5), (100, 10), (50, 15)), "increase"),
    (((0, 5), (10**6, 10)), "beyond"),
    (((0, -5),), "positive"),
    (((0.5, 5),), "whole number"),
    ((5,), "start_ion, laser_pj"),
])
def test_a_bad_schedule_is_refused(schedule, what):
    with pytest.raises(ValueError, match=what):
        SimulationConfig("NMC811", ions=100_000, schedule=schedule)


def test_same_seed_same_bytes_with_mobility_schedule_and_fracture(tmp_path):
    cfg = SimulationConfig("NMC811", ions=40_000, seed=5, schedule=((0, 5), (20_000, 15)))
    for name, kw in (("a", {}), ("b", {}), ("c", {"memory_limit_ions": 0})):
        (tmp_path / name).mkdir()
        simulate_to_files(cfg, tmp_path / name / "run.epos", **kw)
    a, b, c = (files_of(tmp_path / n) for n in "abc")
    assert a == b == c
    (tmp_path / "d").mkdir()
    simulate_to_files(cfg.replace(seed=6), tmp_path / "d" / "run.epos")
    assert files_of(tmp_path / "d")["run.epos"] != a["run.epos"]
