"""Heterogeneity of a solute fraction over the detector, on hit maps generated here.

The generators below draw hits uniformly on a disc and label them solute with
a known probability per position, so every expected value is known exactly:
0 for a random labelling, ``d^2 / (p (1 - p))`` for half the detector at
``p + d`` and half at ``p - d``, the planted ratio of rim over core.
"""

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from liprobe.spatial import FractionHeterogeneity, fraction_heterogeneity

R = 40.0   # mm


def disc(n, rng, radius=R):
    """``n`` hits uniform on a disc centred on 0."""
    r = radius * np.sqrt(rng.random(n))
    t = 2 * np.pi * rng.random(n)
    return r * np.cos(t), r * np.sin(t)


def label(p, rng):
    return rng.random(len(p)) < p


# -- the estimator against a hand count -----------------------------------------

def test_a_hand_built_grid_gives_pearsons_chi2_and_the_formula():
    # bins = 4 across a core disc of 10 mm: only the 4 central 5 mm bins lie wholly inside;
    # hits at their centres, n and k chosen by hand
    n_i = np.array([100, 200, 100, 200])
    k_i = np.array([10, 60, 30, 40])
    centres = [(-2.5, -2.5), (2.5, -2.5), (-2.5, 2.5), (2.5, 2.5)]
    xs, ys, sol = [], [], []
    for (cx, cy), n, k in zip(centres, n_i, k_i):
        xs += [cx] * n
        ys += [cy] * n
        sol += [True] * k + [False] * (n - k)
    h = fraction_heterogeneity(np.array(xs), np.array(ys), np.array(sol), bins=4,
                               core_fraction=1.0, min_per_bin=1, center_mm=(0, 0),
                               detector_radius_mm=10.0)
    assert isinstance(h, FractionHeterogeneity)
    N, K = n_i.sum(), 4
    chi2 = chi2_contingency(np.stack([k_i, n_i - k_i]), correction=False)[0]
    f = k_i.sum() / N
    assert h.bins_used == K and h.ions_used == N and h.fraction == pytest.approx(f)
    assert h.chi2 == pytest.approx(chi2, rel=1e-12)
    assert h.heterogeneity == pytest.approx((chi2 - (K - 1) * N / (N - 1)) / N, rel=1e-12)
    pq = f * (1 - f)
    v = 2 * (K - 1) + (1 - 6 * pq) / pq * ((1 / n_i).sum() - K * K / N)
    assert h.heterogeneity_noise == pytest.approx(np.sqrt(v) / N, rel=1e-12)
    assert h.heterogeneity_err == pytest.approx(np.sqrt(v + 4 * N * h.heterogeneity) / N)
    assert h.noise_method == "analytic" and h.reason is None
    # all hits sit within 0.5 of the radius: no rim ion, so no ratio, and a reason
    assert np.isnan(h.rim_core_ratio) and "rim" in h.rim_core_reason


# -- random labelling: zero, with the stated noise --------------------------------

def test_random_labels_give_zero_and_the_noise_matches_permutations():
    rng = np.random.default_rng(11)
    x, y = disc(60_000, rng)
    base = label(np.full(len(x), 0.15), rng)
    hs = [fraction_heterogeneity(x, y, rng.permutation(base), center_mm=(0, 0))
          for _ in range(400)]
    het = np.array([h.heterogeneity for h in hs])
    noise = hs[0].heterogeneity_noise
    # the same bins: the noise changes only with the fraction in the core disc
    assert all(h.heterogeneity_noise == pytest.approx(noise, rel=0.02) for h in hs)
    assert hs[0].bins_used > 100 and hs[0].ions_used > 30_000
    # mean 0 to 4 standard errors of the mean, spread equal to the analytic noise to 10 %
    assert abs(het.mean()) < 4 * noise / np.sqrt(len(het))
    assert het.std(ddof=1) == pytest.approx(noise, rel=0.10)
    # for H <= 0 the error is the noise
    assert all(h.heterogeneity_err == pytest.approx(h.heterogeneity_noise) for h in hs
               if h.heterogeneity <= 0)


@pytest.mark.parametrize("p", [0.03, 0.3, 0.5])
def test_the_noise_holds_across_fractions(p):
    rng = np.random.default_rng(int(p * 100))
    x, y = disc(40_000, rng)
    het = np.array([fraction_heterogeneity(x, y, label(np.full(len(x), p), rng),
                                           center_mm=(0, 0), bins=12).heterogeneity
                    for _ in range(300)])
    noise = fraction_heterogeneity(x, y, label(np.full(len(x), p), rng), center_mm=(0, 0),
                                   bins=12).heterogeneity_noise
    assert abs(het.mean()) < 4 * noise / np.sqrt(len(het))
    assert het.std(ddof=1) == pytest.approx(noise, rel=0.12)


# -- planted heterogeneity: the known excess variance -----------------------------

@pytest.mark.parametrize("p, d", [(0.3, 0.1), (0.3, 0.03), (0.1, 0.05)])
def test_two_halves_give_d_squared_over_pq(p, d):
    rng = np.random.default_rng(int(1000 * d))
    x, y = disc(100_000, rng)
    truth = d * d / (p * (1 - p))
    hs = [fraction_heterogeneity(x, y, label(np.where(x > 0, p + d, p - d), rng),
                                 center_mm=(0, 0)) for _ in range(150)]
    het = np.array([h.heterogeneity for h in hs])
    err = np.array([h.heterogeneity_err for h in hs])
    # each estimate within 4.5 of its errors; the mean of 150 within 4 standard errors
    assert np.all(np.abs(het - truth) < 4.5 * err)
    assert abs(het.mean() - truth) < 4 * het.std(ddof=1) / np.sqrt(len(het))
    # the stated error covers the scatter: about 10 % above it (std known to ~6 % here)
    assert 0.9 < err.mean() / het.std(ddof=1) < 1.3
    # the null noise alone would not
    assert np.mean([h.heterogeneity_noise for h in hs]) < 0.6 * het.std(ddof=1)


def test_a_smooth_gradient_gives_its_bin_weighted_variance():
    # p = 0.2 + 0.1 x / R over the core disc of 0.8 R: the true ion-weighted variance of p
    # over the bins, computed here from the bins' own ions (the grid's discretisation included)
    rng = np.random.default_rng(5)
    x, y = disc(400_000, rng)
    p = 0.2 + 0.1 * x / R
    h = fraction_heterogeneity(x, y, label(p, rng), center_mm=(0, 0), detector_radius_mm=R)
    w = 2 * 0.8 * R / 16
    ix = np.floor((x + 0.8 * R) / w).astype(int)
    iy = np.floor((y + 0.8 * R) / w).astype(int)
    e = np.arange(17) * w - 0.8 * R
    far = np.maximum(np.abs(e[:-1]), np.abs(e[1:]))
    full = far[:, None] ** 2 + far[None, :] ** 2 <= (0.8 * R) ** 2
    inside = (ix >= 0) & (ix < 16) & (iy >= 0) & (iy < 16)
    ok = inside.copy()
    ok[inside] = full[iy[inside], ix[inside]]
    b = iy[ok] * 16 + ix[ok]
    n_b = np.bincount(b, minlength=256)
    p_b = np.bincount(b, weights=p[ok], minlength=256)[n_b > 0] / n_b[n_b > 0]
    nb = n_b[n_b > 0]
    pbar = (nb * p_b).sum() / nb.sum()
    truth = (nb * (p_b - pbar) ** 2).sum() / nb.sum() / (pbar * (1 - pbar))
    assert h.bins_used == len(nb)
    assert h.heterogeneity == pytest.approx(truth, abs=4 * h.heterogeneity_err)
    assert truth > 10 * h.heterogeneity_err        # a real signal, not noise


# -- rim over core ---------------------------------------------------------------

def test_an_enriched_rim_gives_the_planted_ratio_and_its_error():
    rng = np.random.default_rng(8)
    x, y = disc(150_000, rng)
    r = np.hypot(x, y)
    p = np.where(r <= 0.5 * R, 0.10, np.where(r > 0.8 * R, 0.25, 0.15))
    hs = [fraction_heterogeneity(x, y, label(p, rng), center_mm=(0, 0), detector_radius_mm=R)
          for _ in range(60)]
    ratio = np.array([h.rim_core_ratio for h in hs])
    err = np.array([h.rim_core_ratio_err for h in hs])
    assert np.all(np.abs(ratio - 2.5) < 4 * err)
    assert ratio.mean() == pytest.approx(2.5, abs=4 * ratio.std(ddof=1) / np.sqrt(len(ratio)))
    assert err.mean() == pytest.approx(ratio.std(ddof=1), rel=0.25)
    h = hs[0]
    assert h.core_solute_fraction == pytest.approx(0.10, abs=0.01)
    assert h.rim_solute_fraction == pytest.approx(0.25, abs=0.01)
    # the areas: 0.25 and 0.36 of the disc
    assert h.core_ions == pytest.approx(0.25 * len(x), rel=0.03)
    assert h.rim_ions == pytest.approx(0.36 * len(x), rel=0.03)
    assert h.rim_core_reason is None


def test_a_uniform_fraction_gives_a_ratio_of_one():
    rng = np.random.default_rng(9)
    x, y = disc(150_000, rng)
    h = fraction_heterogeneity(x + 3.0, y - 2.0, label(np.full(len(x), 0.2), rng))
    assert h.rim_core_ratio == pytest.approx(1.0, abs=4 * h.rim_core_ratio_err)
    assert h.center_mm == pytest.approx((3.0, -2.0), abs=0.3)   # the median hit
    assert h.detector_radius_mm == pytest.approx(R * np.sqrt(0.999), rel=0.01)


# -- bins with too few ions are left out -----------------------------------------

def test_sparse_bins_are_left_out_without_bias():
    rng = np.random.default_rng(3)
    x, y = disc(100_000, rng)
    sparse = (x < 0) & (rng.random(len(x)) < 0.97)       # the left half keeps 3 % of its hits
    x, y = x[~sparse], y[~sparse]
    sol = label(np.full(len(x), 0.2), rng)
    h = fraction_heterogeneity(x, y, sol, center_mm=(0, 0), detector_radius_mm=R,
                               min_per_bin=40)
    h_all = fraction_heterogeneity(x, y, sol, center_mm=(0, 0), detector_radius_mm=R,
                                   min_per_bin=1)
    assert h.bins_used < 0.6 * h_all.bins_used
    assert h.ions_used > 0.9 * np.count_nonzero(x[np.hypot(x, y) < 0.7 * R] > 0)
    assert abs(h.heterogeneity) < 4 * h.heterogeneity_noise


# -- nothing to measure: NaN with a reason, never an exception ---------------------

@pytest.mark.parametrize("case", ["empty", "all", "none", "few_bins", "nan_positions"])
def test_degenerate_inputs_give_nan_and_a_reason(case):
    rng = np.random.default_rng(1)
    x, y = disc(20_000, rng)
    sol = label(np.full(len(x), 0.2), rng)
    kw = {}
    if case == "empty":
        x, y, sol = x[:0], y[:0], sol[:0]
    elif case == "all":
        sol = np.ones(len(x), bool)
    elif case == "none":
        sol = np.zeros(len(x), bool)
    elif case == "few_bins":
        kw = {"min_per_bin": 10**6}
    else:
        x = np.full(len(x), np.nan)
    h = fraction_heterogeneity(x, y, sol, **kw)
    assert np.isnan(h.heterogeneity) and np.isnan(h.heterogeneity_noise)
    assert isinstance(h.reason, str) and h.reason
    if case in ("empty", "nan_positions", "none"):
        assert np.isnan(h.rim_core_ratio) and h.rim_core_reason
    if case == "all":       # every ion solute: the ratio is 1 and exact, the map has no variance
        assert h.rim_core_ratio == 1.0 and h.rim_core_ratio_err == 0.0
    d = h.to_dict()
    assert d["heterogeneity"] is None and d["reason"] == h.reason


def test_bad_arguments_raise():
    x = np.zeros(3)
    with pytest.raises(ValueError, match="length"):
        fraction_heterogeneity(x, x, np.zeros(2, bool))
    with pytest.raises(ValueError):
        fraction_heterogeneity(x, x, np.zeros(3, bool), bins=1)
    with pytest.raises(ValueError):
        fraction_heterogeneity(x, x, np.zeros(3, bool), inner_fraction=0.9, rim_fraction=0.8)
