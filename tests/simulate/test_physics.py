"""The simulator's building blocks against hand computations and brute force."""

import math

import numpy as np
import pytest

from liprobe.simulate import (
    DEFAULT_SPECIES,
    PeakShape,
    SimulationConfig,
    SpecimenGeometry,
    resolve_material,
)
from liprobe.simulate.detection import derived_icf, pulse_structure
from liprobe.simulate.parameters import MultiHitModel
from liprobe.simulate.species import NEUTRAL_O2, Species, coating_phase, emission
from liprobe.simulate.specimen import Needle
from liprobe.simulate.spectrum import (
    TOF_CONSTANT,
    design_windows,
    flight_time_ns,
    fwhm_da,
    peak_cdf,
    peak_pdf,
    window_fractions,
)
from liprobe.spatial.reconstruct import project_angles_to_detector

# -- the needle -----------------------------------------------------------------


def test_swept_volume_equals_a_brute_force_count_of_the_needle_between_two_caps():
    needle = Needle(30.0, 10.0, 7.0, 5.0)
    z1, z2 = 9.0, 13.0                      # absolute apex depths
    formula = needle.volume_to_depth(z2) - needle.volume_to_depth(z1)
    rng = np.random.default_rng(0)
    n = 1_000_000
    r2 = float(needle.radius(z2)[()])
    x, y = rng.uniform(-r2, r2, (2, n))
    z_abs = rng.uniform(-z2 - r2, -z1, n)
    rho = np.hypot(x, y)
    s = needle.sin_a
    ca = math.cos(math.radians(10.0))
    ro = needle.original_radius_nm
    in_cone = rho <= ro * ca + (-ro * (1 - s) - z_abs) * s / ca

    def below_cap(depth):           # still in the specimen when the apex is at `depth`
        r = float(needle.radius(depth)[()])
        c = -(depth + r)
        return np.where(z_abs > c + r * s, rho ** 2 + (z_abs - c) ** 2 <= r * r, True)

    inside = in_cone & below_cap(z1) & ~below_cap(z2)
    box = (2 * r2) ** 2 * (z2 + r2 - z1)
    brute = inside.mean() * box
    assert brute == pytest.approx(formula, rel=4 / math.sqrt(inside.sum()))


def test_depth_from_volume_inverts_volume_to_depth_and_radius_grows_with_the_shank():
    needle = Needle(30.0, 10.0, 7.0)
    depth, radius = needle.depth_from_volume([0.0, 1e4, 5e5])
    assert depth[0] == pytest.approx(7.0) and radius[0] == pytest.approx(30.0)
    for d, v in zip(depth[1:], [1e4, 5e5]):
        assert needle.volume_to_depth(d) == pytest.approx(v, rel=1e-9)
    s = math.sin(math.radians(10.0))
    assert radius[2] == pytest.approx(30.0 + (depth[2] - 7.0) * s / (1 - s), rel=1e-12)
    cyl = Needle(20.0, 0.0)
    d, r = cyl.depth_from_volume([math.pi * 400 * 3.0])
    assert d[0] == pytest.approx(3.0) and r[0] == 20.0


def test_surface_distance_on_the_axis_and_at_the_shank():
    needle = Needle(30.0, 10.0, 0.0)
    # on the axis below the apex: the cap is nearest
    assert needle.surface_distance(0.0, -4.0)[0] == pytest.approx(4.0)
    # deep in the shank, a point 2 nm inside the cone along the normal
    s, c = math.sin(math.radians(10)), math.cos(math.radians(10))
    z = -100.0
    rho_cone = 30 * c + (-30 * (1 - s) - z) * s / c
    assert needle.surface_distance(rho_cone - 2.0 / c, z)[0] == pytest.approx(2.0)


def test_a_needle_that_cannot_reach_the_start_depth_is_refused():
    with pytest.raises(ValueError, match="original radius"):
        Needle(5.0, 20.0, 50.0)


def test_derived_icf_puts_the_caps_edge_at_the_set_fraction_of_the_detector():
    geo = SpecimenGeometry()
    xi = derived_icf(geo, 100.0)
    theta = math.radians(90 - geo.shank_angle_deg)
    dx, _ = project_angles_to_detector(np.array([theta]), np.array([0.0]), flight_path_mm=100.0,
                                        icf=xi)
    assert dx[0] == pytest.approx(geo.fov_fill * geo.detector_radius_mm)
    assert derived_icf(SpecimenGeometry(icf=1.65), 100.0) == 1.65


# -- atoms to ions ---------------------------------------------------------------

@pytest.mark.parametrize("material", ["NMC811", "LiMn2O4", "LiNi0.6Co0.2Mn0.2O2", "LiFePO4"])
def test_emission_carries_exactly_the_phases_atoms(material):
    phase = resolve_material(material)
    em = emission(phase, DEFAULT_SPECIES)
    atoms = {}
    for name, n in em.per_formula_unit.items():
        for el, k in Species.from_name(name).atoms:
            atoms[el] = atoms.get(el, 0.0) + n * k
    for el, amount in phase.amounts:
        assert atoms[el] == pytest.approx(amount, rel=1e-12)
    assert set(atoms) == {el for el, _ in phase.amounts}


def test_oxygen_leaves_as_o_plus_and_o2_plus_at_the_set_ratio_with_the_declared_neutral_loss():
    em = emission(resolve_material("NMC811"), DEFAULT_SPECIES)
    pf = em.per_formula_unit
    assert pf["O2+"] / pf["O+"] == pytest.approx(2.61)
    assert 2 * pf[NEUTRAL_O2] == pytest.approx(0.02 * 2.0)    # 2 % of the 2 O per formula unit
    assert "Li++" not in pf                                      # Li is never 2+


def test_a_metal_rich_formula_scales_the_oxide_ions_down_and_still_conserves_atoms():
    phase = resolve_material("NiO0.05")
    em = emission(phase, DEFAULT_SPECIES)
    o = sum(n * Species.from_name(k).count("O") for k, n in em.per_formula_unit.items())
    assert o == pytest.approx(0.05)
    assert em.notes and "scaled" in em.notes[0]


def test_the_coating_is_chromium_with_the_oxygen_its_oxide_ions_carry():
    cp = coating_phase("Cr", DEFAULT_SPECIES)
    frac = dict(cp.amounts)
    assert frac["Cr"] == 1.0 and frac["O"] == pytest.approx(0.10 + 2 * 0.05 + 3 * 0.03)
    assert cp.atomic_volume_nm3 == 0.012


def test_an_unknown_formula_is_refused_with_its_reason():
    with pytest.raises(ValueError, match="Xx"):
        resolve_material("LiXx2O4")
    with pytest.raises(ValueError):
        SimulationConfig(material="not a formula")


def test_a_new_formula_takes_the_closest_tabulated_atomic_volume_and_says_so():
    ph = resolve_material("LiNi0.6Co0.2Mn0.2O2")
    assert ph.atomic_volume_nm3 == 0.00845 and "NMC811" in ph.source


# -- peaks and windows ----------------------------------------------------------

SHAPE = PeakShape(timing_sigma_ns=0.15, tail_fraction=0.25, tail_tau_ns=2.0)


def test_peak_cdf_is_the_integral_of_peak_pdf():
    t = np.linspace(-2, 20, 44001)
    pdf = peak_pdf(t, SHAPE)
    cdf = peak_cdf(t, SHAPE)
    integral = np.concatenate(([0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(t))))
    assert np.max(np.abs(cdf - cdf[0] - integral)) < 1e-6
    assert cdf[0] < 1e-12 and cdf[-1] == pytest.approx(1.0, abs=1e-4)


def test_time_of_flight_of_59co_at_5kv_over_100mm():
    # mass-spectrum.md s1: 58.933 Da at 5000 V over 100 mm -> 781.5 ns
    assert flight_time_ns(58.933, 5000.0, 100.0) == pytest.approx(781.5, abs=0.1)
    assert TOF_CONSTANT == 1.929707e-4


def test_a_pure_gaussian_peak_has_a_fwhm_of_2_355_sigma_in_mass():
    shape = PeakShape(timing_sigma_ns=0.2, tail_fraction=0.0, tail_tau_ns=1.0)
    t0 = flight_time_ns(27.0, 4000.0, 100.0)
    fw, sig, _ = fwhm_da(27.0, [4000.0], shape, 100.0)
    assert sig == pytest.approx(2 * 27.0 * 0.2 / t0)
    assert fw == pytest.approx(2 * math.sqrt(2 * math.log(2)) * sig, rel=2e-3)


def test_windows_never_overlap_and_coincident_peaks_share_the_larger_ions_window():
    peaks = [("O2+", 31.9893, 1.0), ("Ni++", 31.9634, 0.01), ("Ni++", 28.9672, 0.7),
             ("Co++", 29.4661, 0.1)]
    wins = design_windows(peaks, SHAPE, 4000.0, 100.0)
    for a, b in zip(wins, wins[1:]):
        assert a.hi <= b.lo
    o2 = [w for w in wins if w.lo <= 31.99 < w.hi][0]
    assert o2.ion == "O2+" and o2.lo <= 31.9634
    ni = [w for w in wins if w.lo <= 28.9672 < w.hi][0]
    co = [w for w in wins if w.lo <= 29.4661 < w.hi][0]
    assert ni.ion == "Ni++" and co.ion == "Co++" and ni.hi == co.lo   # Ni's tail cut at Co


def test_window_fractions_of_a_peak_sum_to_one_over_windows_that_cover_it():
    edges = np.array([15.0, 15.99, 16.1, 30.0])
    f = window_fractions(15.9949, edges[:-1], edges[1:], [3500.0, 4000.0], SHAPE, 100.0)
    assert f.sum() == pytest.approx(1.0, abs=1e-9)
    assert f[0] < 0.5 < f[1]


# -- pulses ----------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_the_last_pulse_is_cut_at_the_last_ion(seed):
    mult, delta = pulse_structure(50, np.random.default_rng(seed),
                                  MultiHitModel(multiplicity_probabilities=(0.5, 0.3, 0.2)))
    assert mult.sum() == 50 and mult[0] >= 1 and delta[0] >= 1
    assert np.all((mult == 0) == (delta == 0))


def test_pulse_structure_follows_the_epos_convention():
    model = MultiHitModel()
    mult, delta = pulse_structure(100_000, np.random.default_rng(3), model)
    first = mult > 0
    assert mult.sum() == 100_000
    assert np.all(delta[~first] == 0) and np.all(delta[first] >= 1)
    frac_multi = np.mean(mult[first] >= 2)
    assert frac_multi == pytest.approx(0.06, abs=0.005)
    # mean pulses between events: 1 / (rate / mean multiplicity)
    assert delta[first].mean() == pytest.approx(model.mean_multiplicity / 0.005, rel=0.02)
