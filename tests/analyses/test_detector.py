"""Detector event maps and their heterogeneity, on synthetic hit maps built here."""

import numpy as np
import pytest

from liprobe import AnalysisError, ColumnError, Range, RangeTable, Run, parse_ion
from liprobe.spatial.detector import detector_map, hit_heterogeneity

TABLE = RangeTable.from_ranges([Range(6.5, 7.5, parse_ion("Li+")),
                                Range(15.5, 16.5, parse_ion("O+")),
                                Range(51.5, 52.5, parse_ion("Cr+"))])
R_DET = 40.0
PATCH = (10.0, 0.0, 8.0)   # x, y, radius in mm


def in_patch(x, y):
    return (x - PATCH[0]) ** 2 + (y - PATCH[1]) ** 2 < PATCH[2] ** 2


def hit_map(n, seed, patch=False, li=0.3, cr_ring=None):
    """``n`` hits uniform on a disc of 40 mm (Li+ / O+ masses); ``patch``: a disc of 8 mm
    at (10, 0) mm where half the hits are lost and Li+ drops to a third of its fraction;
    ``cr_ring``: every hit beyond this radius is Cr+."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    while sum(map(len, xs)) < n:
        x = rng.uniform(-R_DET, R_DET, 2 * n)
        y = rng.uniform(-R_DET, R_DET, 2 * n)
        keep = x * x + y * y <= R_DET ** 2
        if patch:
            keep &= ~(in_patch(x, y) & (rng.random(2 * n) < 0.5))
        xs.append(x[keep])
        ys.append(y[keep])
    x, y = np.concatenate(xs)[:n], np.concatenate(ys)[:n]
    p_li = np.where(patch & in_patch(x, y), li / 3, li)
    mass = np.where(rng.random(n) < p_li, 7.0, 16.0)
    if cr_ring is not None:
        mass = np.where(np.hypot(x, y) > cr_ring, 52.0, mass)
    return Run.from_arrays(det_x=x.astype(np.float32), det_y=y.astype(np.float32),
                           mass=mass.astype(np.float32))


def test_excess_variance_hand_computation():
    # equal counts: variance 0, so (0 - 10) / 10**2
    h, noise, m, v = hit_heterogeneity([10, 10, 10, 10])
    assert (h, m, v) == (pytest.approx(-0.1), 10.0, 0.0)
    # 5 and 15: sample variance 50, (50 - 10) / 100
    h, noise, m, v = hit_heterogeneity([5, 15])
    assert h == pytest.approx(0.4) and v == pytest.approx(50.0)
    assert noise == pytest.approx(np.sqrt((2 + 0.1) / 2) / 10)


def test_depleted_patch_scores_higher_than_uniform_at_equal_ion_count():
    uniform = detector_map(hit_map(100_000, 1), TABLE, species="Li+")
    patched = detector_map(hit_map(100_000, 1, patch=True), TABLE, species="Li+")
    hu, hp = uniform.heterogeneity, patched.heterogeneity
    # planted: 6.25 % of the core disc at half density -> (rms/mean)^2 ~ 0.0156
    assert hp.heterogeneity > hu.heterogeneity + 10 * hu.heterogeneity_noise
    assert hp.heterogeneity == pytest.approx(0.0156, abs=0.004)
    assert abs(hu.heterogeneity) < 4 * hu.heterogeneity_noise
    # the Li fraction: homogeneous on the uniform map, not on the patched one
    assert hu.fraction_p_value > 1e-3
    assert hp.fraction_p_value < 1e-6
    assert hp.fraction_mu > hu.fraction_mu
    assert hp.fraction_mu > hp.fraction_mu_shuffled
    assert hu.fraction_mu == pytest.approx(hu.fraction_mu_shuffled, abs=0.02)


def test_uniform_map_scores_the_same_at_1e5_and_1e6_ions():
    small = detector_map(hit_map(100_000, 2)).heterogeneity
    large = detector_map(hit_map(1_000_000, 3)).heterogeneity
    assert small.sample_size == large.sample_size == 100_000
    noise = np.hypot(small.heterogeneity_noise, large.heterogeneity_noise)
    assert abs(small.heterogeneity - large.heterogeneity) < 4 * noise
    assert abs(large.heterogeneity) < 4 * large.heterogeneity_noise


def test_map_counts_equal_numpy_histogram2d():
    run = hit_map(5000, 4)
    d = detector_map(run, TABLE, species="Li+", bins=16)
    x0, x1, y0, y1 = d.extent_mm
    half = max(np.abs(run["det_x"]).max(), np.abs(run["det_y"]).max())
    assert x1 == pytest.approx(half, rel=1e-5) and x0 == -x1 and (y0, y1) == (x0, x1)
    edges = np.linspace(x0, x1, 17)
    h, _, _ = np.histogram2d(run["det_y"], run["det_x"], bins=[edges, edges])
    assert np.array_equal(d.counts, h.astype(np.int64))
    li = (run["mass"] > 6.5) & (run["mass"] < 7.5)
    hl, _, _ = np.histogram2d(run["det_y"][li], run["det_x"][li], bins=[edges, edges])
    assert np.array_equal(d.species_counts, hl.astype(np.int64))
    assert d.ranged.sum() == 5000 and d.species_counts.sum() == li.sum()
    frac = d.fraction()
    occupied = d.ranged > 0
    assert np.allclose(frac[occupied], hl[occupied] / h[occupied])
    assert np.isnan(frac[~occupied]).all()


def test_coating_ring_on_the_detector_sets_the_core_disc():
    run = hit_map(100_000, 5, cr_ring=34.0)
    d = detector_map(run, TABLE, coating_element="Cr")
    assert d.core_method == "coating" and d.coating_element == "Cr"
    assert 28.0 < d.core_radius_mm < 34.0
    # a coating is looked for only when named: no battery assumption by default
    unasked = detector_map(run, TABLE)
    assert unasked.core_method == "fraction" and unasked.coating_element is None
    assert not any("ring" in w for w in unasked.warnings)
    plain = detector_map(hit_map(100_000, 5), TABLE, coating_element="Cr")
    assert plain.core_method == "fraction"
    assert plain.core_radius_mm == pytest.approx(0.8 * plain.detector_radius_mm)


def test_subsample_is_seeded():
    run = hit_map(200_000, 6)
    a = detector_map(run, sample_size=50_000, seed=7).heterogeneity
    b = detector_map(run, sample_size=50_000, seed=7).heterogeneity
    assert a == b


def test_missing_detector_columns_is_a_column_error():
    run = Run.from_arrays(x=np.zeros(10, np.float32), y=np.zeros(10, np.float32),
                          z=np.zeros(10, np.float32), mass=np.full(10, 7.0, np.float32))
    with pytest.raises(ColumnError, match="det_x"):
        detector_map(run)


def test_species_not_ranged_is_an_analysis_error():
    with pytest.raises(AnalysisError, match="Ni\\+ is not ranged"):
        detector_map(hit_map(1000, 8), TABLE, species="Ni+")
