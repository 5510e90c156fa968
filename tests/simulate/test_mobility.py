"""Li mobility, fracture and laser schedules: the model, the truth, and what analyses see."""

import math

import numpy as np
import pytest

from liprobe.history import run_history
from liprobe.ranging import count_windows
from liprobe.simulate import (
    DEFAULT_MOBILITY,
    MobilityRegime,
    MobilityTable,
    SimulationConfig,
    mobility_at,
    prepare,
    simulate,
    simulate_to_files,
)
from liprobe.simulate.engine import FRACTURE_BURST, fracture_burst_ions
from liprobe.simulate.mobility import burst_shares

from .conftest import Written
from .test_run import files_of


def q(p, lam):
    return p * lam / (p * lam + 1 - p)


# -- the model -----------------------------------------------------------------------------

@pytest.mark.parametrize("p, pj, coated", [(0.38, 5, False), (0.38, 20, False),
                                           (0.25, 10, True), (0.38, 50, True)])
def test_burst_shares_average_to_the_yield_with_the_set_contrast(p, pj, coated):
    m = mobility_at(DEFAULT_MOBILITY, coated, pj)
    qq, qb = burst_shares(p, m)
    f = m.burst_fraction
    assert f * qb + (1 - f) * qq == pytest.approx(q(p, m.li_yield), rel=1e-9)
    lam_q = qq * (1 - p) / (p * (1 - qq))
    lam_b = qb * (1 - p) / (p * (1 - qb))
    assert lam_b / lam_q == pytest.approx(m.burst_contrast, rel=1e-6)


def test_the_regime_follows_the_coating_and_none_switches_mobility_off():
    assert mobility_at(DEFAULT_MOBILITY, True, 10).regime == "residual"
    un = mobility_at(DEFAULT_MOBILITY, False, 10)
    assert un.regime == "delithiation" and un.spatial
    assert mobility_at(None, False, 10) is None
    assert mobility_at(DEFAULT_MOBILITY, False, 5).li_yield < 1 < \
        mobility_at(DEFAULT_MOBILITY, False, 20).li_yield
    with pytest.raises(ValueError, match="burst_fraction"):
        MobilityTable(residual=MobilityRegime((1.0,) * 10, (1.5,) * 10, (2.0,) * 10,
                                              (100.0,) * 10, (0.0,) * 10, (0.0,) * 10))


def test_without_mobility_li_is_random_and_with_it_li_comes_in_bursts():
    from liprobe.fda import frequency_distribution

    mus = {}
    for key, mob in (("off", None), ("on", DEFAULT_MOBILITY)):
        r = simulate(SimulationConfig("NMC811", coating="Cr", ions=150_000, seed=9,
                                      mobility=mob))
        fd = frequency_distribution(r.run, r.ranges, "Li+", 100, exclude=("Cr",), shuffles=3)
        mus[key] = (fd.mu, fd.mu_shuffled)
    assert mus["off"][0] < 2 * mus["off"][1] + 0.02           # as random as shuffled labels
    assert mus["on"][0] > 5 * mus["on"][1]


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
    # detected one too, within its noise (Li bursts of 12,000 events make a 48,000-ion
    # section's ratio scatter by ~0.2 from seed to seed)
    model = [s["conditions"][0]["o2_to_o_ratio"] for s in segs]
    r = [s["ratios"]["O2+/O+ (detected)"] for s in segs]
    li = [s["evaporated_li_ratio"] for s in segs]
    assert np.all(np.diff(model) > 0) and np.all(np.diff(r) > -0.3) and r[-1] > r[0] + 0.6
    assert np.all(np.diff(li) > 0)
    assert li[0] < 0.35 and li[-1] > 0.65
    tau = [s["peak"]["tail_tau_ns"] for s in segs]
    assert np.all(np.diff(tau) > 0)
    d = scheduled.truth["delithiation"]
    assert [s["laser_pj"] for s in d["by_segment"]] == [5, 10, 15, 20]


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

    # coated (no spatial mobility): depth increments of each section against the truth's
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
