"""Fracture from the Maxwell stress against drawn surface flaws (liprobe.simulate.fracture).

Statistics come from the model's functions over many seeds (no full simulation);
the few simulated runs check what a fracture and a crack event leave in the data.
"""

import math

import numpy as np
import pytest

from liprobe.history import run_history
from liprobe.simulate import SimulationConfig, prepare, simulate
from liprobe.simulate.engine import fracture_burst_ions
from liprobe.simulate.evaporation import (
    DEFAULT_EVAPORATION,
    operating_point,
    parameter_table,
    with_overrides,
)
from liprobe.simulate.fracture import (
    FracturePlan,
    draw_fracture,
    flaw_depth_nm,
    flaw_failure_probability,
    maxwell_stress_gpa,
    oxide_stress,
)

M = DEFAULT_EVAPORATION
#: Evaporated volume per detected ion of NMC811 at 5 pJ (nm^3; what prepare() finds).
NM3_PER_ION = 0.0146
#: The paper preset's sizes: uncoated single-energy and coated single-energy runs.
UNCOATED_IONS, COATED_IONS = 1_750_000, 250_000
SEEDS = range(1000)


def _stress(coated: bool, pj: float, model=M, radius: float = 30.0):
    op = operating_point(model, pj, coated=coated)
    return oxide_stress(model, op, coated=coated, radius_nm=radius,
                        thickness_nm=5.0 if coated else 0.0)


def _plan(coated: bool, ions: int, pj: float = 5.0, model=M, radius: float = 30.0
          ) -> FracturePlan:
    return FracturePlan(ions, coated, radius, 10.0, (0,), (_stress(coated, pj, model, radius),),
                        (NM3_PER_ION,))


def _to_depth(coated: bool, depth_nm: float, pj: float = 5.0, model=M) -> FracturePlan:
    """A plan whose last ion is ``depth_nm`` below the start (30 nm apex, 10 deg shank):
    1000 ions per nm^3."""
    a = math.sin(math.radians(10.0))
    c, k = a / (1 - a), math.pi * (1 - a)
    vol = ((30.0 + c * depth_nm) ** 3 - 30.0 ** 3) * k / (3 * c)
    return FracturePlan(int(round(vol * 1000)), coated, 30.0, 10.0, (0,),
                        (_stress(coated, pj, model),), (0.001,))


def _p_fracture(coated: bool, depth_nm: float, pj: float = 5.0, model=M) -> float:
    return draw_fracture(model, _to_depth(coated, depth_nm, pj, model), 0).fracture_probability


def _stats(plan, model=M):
    out = [draw_fracture(model, plan, s) for s in SEEDS]
    fractured = np.array([o.fracture is not None for o in out])
    reached = np.array([o.fracture.ion_index / plan.ions if o.fracture else 1.0 for o in out])
    return fractured, reached, out


# -- the stress ------------------------------------------------------------------------------

def test_the_maxwell_stress_is_eps0_f2_over_2():
    # by hand: 0.5 * 8.8541878128e-12 F/m * (30e9 V/m)^2 = 3.9844 GPa; 26 V/nm: 2.9927 GPa
    assert maxwell_stress_gpa(30.0) == pytest.approx(3.98438, rel=1e-5)
    assert maxwell_stress_gpa(26.0) == pytest.approx(2.99272, rel=1e-5)
    assert maxwell_stress_gpa(0.0) == 0.0


def test_the_oxide_stress_shares_the_pull_with_the_shell_and_adds_the_laser_heat():
    bare = operating_point(M, 5.0, coated=False)
    coat = operating_point(M, 5.0, coated=True)
    # the oxide's field at 5 pJ is about equal with and without the shell ...
    assert coat.oxide_field_v_nm == pytest.approx(bare.oxide_field_v_nm, rel=0.01)
    sb = oxide_stress(M, bare, coated=False, radius_nm=30.0, thickness_nm=0.0)
    sc = oxide_stress(M, coat, coated=True, radius_nm=30.0, thickness_nm=5.0)
    # ... so the Maxwell stress is too; the difference is the declared load share and heat
    assert sc.maxwell_gpa == pytest.approx(sb.maxwell_gpa, rel=0.02)
    assert sb.load_share == 1.0
    # the shell's rim is pulled too (r_c^2 sigma_M, r_c = 29/35); at equal strain, by hand:
    # A = (35^2 - 30^2) / 30^2 = 0.36111; (1 + 0.68653 * A) / (1 + 1.55 * A) = 0.80009
    assert sc.load_share == pytest.approx(0.80009, rel=1e-4)
    # with no pull on the rim it would be 1 / (1 + 1.55 A) = 0.64113
    no_pull = with_overrides(M, {"coating_field_ratio": 1e-9})
    assert oxide_stress(no_pull, coat, coated=True, radius_nm=30.0,
                        thickness_nm=5.0).load_share == pytest.approx(0.64113, rel=1e-4)
    # 0.5 * 180 GPa * 1e-5 /K * (T - 60 K) / g
    assert sb.thermal_gpa == pytest.approx(0.5 * 180 * 1e-5 * (bare.peak_temperature_k - 60))
    assert sc.thermal_gpa == pytest.approx(0.5 * 180 * 1e-5 * (coat.peak_temperature_k - 60)
                                           / coat.heat_flow_factor)
    assert sc.total_gpa == pytest.approx(sc.load_share * sc.maxwell_gpa + sc.thermal_gpa)
    assert sc.total_gpa < 0.8 * sb.total_gpa


def test_flaw_strengths_follow_the_edge_crack_formula():
    # sigma_f = K_IC / (Y sqrt(pi a)): 0.5 MPa m^0.5 / (1.12 sqrt(pi 1e-9 m)) = 7.9648 GPa
    cap = 0.5e6 / (1.12 * math.sqrt(math.pi * 1e-9)) / 1e9
    assert flaw_failure_probability(M, cap) == pytest.approx(1.0)
    assert flaw_failure_probability(M, cap / 2) == pytest.approx(0.5 ** 4)   # modulus 2k = 4
    assert flaw_depth_nm(M, cap) == pytest.approx(1.0)
    assert flaw_depth_nm(M, cap / 2) == pytest.approx(4.0)


def test_every_fracture_constant_is_in_the_parameter_table_with_its_source():
    rows = {r["name"]: r for r in parameter_table() if r["name"].startswith("fracture_")}
    assert len(rows) == 12
    for r in rows.values():
        assert r["status"] in ("sourced", "assumed", "fitted") and r["source"] and r["unit"]
    assert rows["fracture_coating_modulus_gpa"]["status"] == "sourced"
    assert rows["fracture_flaw_density_per_nm2"]["status"] == "fitted"
    assert rows["fracture_coating_flaw_closure"]["status"] == "fitted"
    assert rows["fracture_flaw_shape_factor"]["status"] == "assumed"
    m = with_overrides(M, ["fracture_coating_flaw_closure=0"])
    assert m.fracture_coating_flaw_closure == 0.0
    with pytest.raises(ValueError, match="fracture_crack_arrest_share"):
        with_overrides(M, {"fracture_crack_arrest_share": 1.5})


# -- statistics over seeds -------------------------------------------------------------------

def test_the_fitted_depths_uncoated_break_within_10_nm_coated_reach_30_nm():
    # the fit (fracture_flaw_density_per_nm2, then fracture_coating_flaw_closure): at 5 pJ an
    # uncoated specimen fractures within its first 10 nm with probability 0.75, a coated one
    # reaches 30 nm (the flagship depth) with probability 0.90
    assert _p_fracture(False, 10.0) == pytest.approx(0.75, abs=0.01)
    assert 1 - _p_fracture(True, 30.0) == pytest.approx(0.90, abs=0.01)
    # the thresholds of the targets: most uncoated specimens break by 10 nm, at every
    # energy of the paper's uncoated runs but 20 pJ (0.50); coated ones almost never do
    for pj in (5.0, 10.0):
        assert _p_fracture(False, 10.0, pj) >= 0.6
    for pj in (5.0, 10.0, 20.0, 50.0):
        assert 1 - _p_fracture(True, 30.0, pj) >= 0.85
    # neither never nor always, and deeper is riskier
    for coated in (False, True):
        p = [_p_fracture(coated, d) for d in (1.5, 10.0, 30.0)]
        assert 0 < p[0] < p[1] < p[2] < 1


def test_uncoated_specimens_fail_far_more_often_and_earlier_than_coated_ones():
    fu, ru, outs_u = _stats(_plan(False, UNCOATED_IONS))
    fc, rc, outs_c = _stats(_plan(True, COATED_IONS))
    # most uncoated runs of the preset's size (~10 nm) fracture, coated ones rarely
    assert 0.6 < fu.mean() < 0.95, fu.mean()
    assert 0.0 < fc.mean() < 0.03, fc.mean()
    # early: the median uncoated run ends before 60 % of its ions, the median coated one runs
    # out
    assert np.median(ru) < 0.6 and np.median(rc) == 1.0
    # the draws follow the hazard: the observed share within 4 binomial SD of 1 - exp(-H')
    for f, outs in ((fu, outs_u), (fc, outs_c)):
        p = outs[0].fracture_probability
        assert abs(f.mean() - p) < 4 * math.sqrt(p * (1 - p) / len(f)) + 1e-3, (f.mean(), p)
    # at the same size too, the uncoated specimen is the weaker by far
    fu_same, _, _ = _stats(_plan(False, COATED_IONS))
    assert fu_same.mean() > 5 * fc.mean()


def test_the_runs_are_conditioned_on_surviving_the_voltage_ramp():
    # the starting cap's flaws are screened by the ramp to the first segment's stress:
    # P(survive) = exp(-(1 - c) n 2 pi R0^2 (1 - sin a) P(sigma_f < sigma_1))
    for coated in (False, True):
        plan = _plan(coated, COATED_IONS)
        out = draw_fracture(M, plan, 0)
        n = M.fracture_flaw_density_per_nm2 * (
            1 - M.fracture_coating_flaw_closure if coated else 1)
        cap = 2 * math.pi * 30.0 ** 2 * (1 - math.sin(math.radians(10.0)))
        hz = n * cap * flaw_failure_probability(M, plan.stress[0].total_gpa)
        assert out.ramp_survival_probability == pytest.approx(math.exp(-0.7 * hz))
        assert out.ramp_no_crack_probability == pytest.approx(math.exp(-hz))
    # the cap is as much surface as ~25 nm of shank: few uncoated specimens survive the ramp
    assert draw_fracture(M, _plan(False, 1000), 0).ramp_survival_probability < 0.1
    assert draw_fracture(M, _plan(True, 1000), 0).ramp_survival_probability > 0.9


def test_a_stress_rise_screens_the_cap_at_the_previous_segment_level():
    # 5 -> 20 -> 5 pJ on a straight needle (no shank angle: R constant, depth linear in
    # ions): the last segment raises the stress over the 20 pJ segment's, whose level alone
    # screened the cap's flaws, so the cap gets the rise at once
    s5, s20 = _stress(False, 5.0), _stress(False, 20.0)
    p5, p20 = (flaw_failure_probability(M, s.total_gpa) for s in (s5, s20))
    assert p5 > p20
    ions, per_ion, r = 300_000, 0.01, 30.0
    plan = FracturePlan(ions, False, r, 0.0, (0, 100_000, 200_000), (s5, s20, s5),
                        (per_ion,) * 3)
    n = M.fracture_flaw_density_per_nm2
    dz = 100_000 * per_ion / (math.pi * r * r)          # depth per segment
    swept = n * 2 * math.pi * r * dz
    jump = n * 2 * math.pi * r * r * (p5 - p20)
    expected = swept * (p5 + p20 + p5) + jump
    out = draw_fracture(M, plan, 0)
    assert out.hazard_end == pytest.approx(expected, rel=1e-9)
    # a falling stress adds no jump
    falling = FracturePlan(ions, False, r, 0.0, (0, 100_000, 200_000), (s5, s20, s20),
                           (per_ion,) * 3)
    assert draw_fracture(M, falling, 0).hazard_end == pytest.approx(
        swept * (p5 + 2 * p20), rel=1e-9)
    # the cracks drawn at the rise are flaws of strength between the two levels
    many = [draw_fracture(with_overrides(M, {"fracture_crack_arrest_share": 1.0}), plan, s)
            for s in range(300)]
    at_rise = [c for o in many for c in o.cracks if c.ion_index == 200_000]
    assert at_rise
    lo, hi = s20.total_gpa, s5.total_gpa
    assert all(lo - 1e-9 <= c.strength_gpa <= hi + 1e-9 for c in at_rise)


def test_the_difference_comes_from_the_declared_coating_parameters():
    # with the shell carrying just its own pull (E_Cr / E_ox = r_c^2: load share 1), filling
    # no flaw and evening out no heat, coated and uncoated specimens of one size break alike
    # (their fields at 5 pJ are equal)
    own = M.coating_field_ratio ** 2 * M.fracture_oxide_modulus_gpa
    plain = with_overrides(M, {"fracture_coating_modulus_gpa": own,
                               "fracture_coating_flaw_closure": 0.0,
                               "fracture_thermal_gradient_share": 0.0})
    pu = draw_fracture(plain, _plan(False, UNCOATED_IONS, model=plain), 0).fracture_probability
    pc = draw_fracture(plain, _plan(True, UNCOATED_IONS, model=plain), 0).fracture_probability
    assert pc == pytest.approx(pu, rel=0.05)


def test_a_wider_apex_and_a_deeper_run_meet_more_flaws():
    p = [draw_fracture(M, _plan(False, n), 0).fracture_probability
         for n in (100_000, 500_000, 2_000_000)]
    assert p[0] < p[1] < p[2]
    # to the same depth, a wider apex stresses more surface (2 pi R dz): the hazard grows
    # with R (the coated stress share changes with R too, so uncoated: stress fixed)
    h = []
    for r in (20.0, 30.0, 45.0):
        k = math.pi * (1 - math.sin(math.radians(10.0)))
        ions = int(round(k * r * r * 5.0 / NM3_PER_ION))          # ~5 nm deep
        plan = FracturePlan(ions, False, r, 10.0, (0,), (_stress(False, 5.0, radius=r),),
                            (NM3_PER_ION,))
        h.append(draw_fracture(M, plan, 0).hazard_end)
    assert h[0] < h[1] < h[2]
    assert h[2] / h[0] > 45.0 / 20.0 * 0.9
    # the stress depends on the field, not the voltage: more heat (lower field), fewer breaks
    assert draw_fracture(M, _plan(False, UNCOATED_IONS, 20.0), 0).fracture_probability < p[2]


def test_the_draw_is_deterministic_per_seed():
    plan = _plan(False, UNCOATED_IONS)
    assert draw_fracture(M, plan, 7) == draw_fracture(M, plan, 7)
    outs = {draw_fracture(M, plan, s).cracks for s in range(20)}
    assert len(outs) > 10


# -- what a fracture and a crack leave in the data ------------------------------------------

def test_a_fracture_ends_the_run_with_a_burst_that_the_history_reads_as_an_abrupt_end():
    cfg = _first_fractured(SimulationConfig("NMC811", ions=200_000))
    setup = prepare(cfg)
    r = simulate(cfg)
    f = r.truth["fracture"]
    n = r.run.n_ions
    assert f["fractured"] and f["ion_index"] == n == setup.target_ions < cfg.ions
    assert f["stress_at_failure_gpa"] >= f["strength_gpa"] > 0
    # the flaw's depth by hand: (K_IC / (Y sigma))^2 / pi, at least a_min (1 nm)
    by_hand = (0.5e6 / (1.12 * f["strength_gpa"] * 1e9)) ** 2 / math.pi * 1e9
    assert f["flaw_depth_nm"] == pytest.approx(by_hand, rel=1e-9) and by_hand >= 1.0 - 1e-9
    assert f["depth_nm"] > 0 and f["depth_nm"] == pytest.approx(f["model_depth_nm"], rel=0.05)
    assert 0 < f["ramp_survival_probability"] < 1
    assert f["final_burst_ions"] == fracture_burst_ions(n)
    assert run_history(r.run).abrupt_end is True


def test_the_model_depth_of_a_coated_fracture_follows_the_needle():
    # the shell's ions: a coated run starts 2 nm past the shell on the apex, where much of
    # the cap is Cr; the plan's volume per detected ion follows the needle's geometry
    weak = with_overrides(M, {"fracture_coating_flaw_closure": 0.0,
                              "fracture_flaw_density_per_nm2": 0.5})
    cfg = _first_fractured(SimulationConfig("NMC811", coating="Cr", ions=200_000,
                                            evaporation=weak))
    r = simulate(cfg)
    f = r.truth["fracture"]
    assert f["fractured"] and f["ion_index"] > 20_000
    assert f["depth_nm"] == pytest.approx(f["model_depth_nm"], rel=0.05)


def _first_fractured(cfg: SimulationConfig) -> SimulationConfig:
    """The first seed for which the model breaks the run after 20,000 ions."""
    for seed in range(200):
        c = cfg.replace(seed=seed)
        s = prepare(c)
        if s.fractured and s.target_ions > 20_000:
            return c
    raise AssertionError("no seed fractures")


@pytest.mark.parametrize("coating", ["none", "Cr"])
def test_short_complete_runs_are_not_read_as_fractured(coating):
    # 2,000 ions: 5 per history bin, whose median share of multiple hits is 0; the typical
    # share is pooled over the run before the end window, so complete runs are not flagged
    # and fractured ones (their burst) still are
    for seed in range(8):
        cfg = SimulationConfig("NMC811", coating=coating, ions=2000, seed=seed, fracture=None)
        assert run_history(simulate(cfg).run).abrupt_end is False, seed
        broken = simulate(cfg.replace(fracture=0.8))
        assert run_history(broken.run).abrupt_end is True, seed


def test_a_crack_event_steps_the_voltage_and_the_run_goes_on():
    model = with_overrides(M, {"fracture_flaw_density_per_nm2": 3.0,
                               "fracture_crack_arrest_share": 0.999})
    cfg = SimulationConfig("NMC811", ions=200_000, seed=1, evaporation=model, mobility=None)
    r = simulate(cfg)
    f = r.truth["fracture"]
    events = [c for c in f["crack_events"] if 20_000 < c["ion_index"] < 180_000]
    assert events and not f["fractured"] and r.run.n_ions == cfg.ions
    c = events[0]
    v = r.run["v_dc"]
    i = c["ion_index"]
    before, after = np.median(v[i - 2000:i]), np.median(v[i:i + 2000])
    steps = [e for e in f["crack_events"] if i - 2000 <= e["ion_index"] < i + 2000]
    assert after / before == pytest.approx(1.04 ** len(steps), rel=0.01)
    assert any(abs(j.ion_index - i) < 3000 for j in run_history(r.run).jumps)
    # the simulated needle keeps its shape: the reconstruction divides the steps out
    ref = simulate(cfg.replace(fracture=None))
    assert np.allclose(r.run["z"], ref.run["z"], atol=1e-3)


def test_a_run_the_model_leaves_whole_keeps_the_run_stream():
    cfg = SimulationConfig("NMC811", coating="Cr", ions=30_000, seed=4)
    assert prepare(cfg).fracture_outcome.cracks == ()
    a, b = simulate(cfg), simulate(cfg.replace(fracture=None))
    for col in ("mass", "tof", "v_dc", "det_x", "x", "z", "multiplicity"):
        assert np.array_equal(a.run[col], b.run[col]), col
