"""Isotope-pattern deconvolution recovers known mixed counts (drawn from the patterns)."""

import math

import numpy as np
import pytest

from liprobe.chemistry import parse_ion
from liprobe.spectrum.deconvolve import PeakShape, deconvolve, pattern_matrix


def _draw(rng, counts, sigma_rel=4e-4, shape=None):
    out = []
    for name, n in counts.items():
        pk = parse_ion(name).peaks(1e-7)
        m = np.array([p[0] for p in pk])
        a = np.array([p[1] for p in pk])
        k = rng.choice(len(m), size=n, p=a / a.sum())
        x = m[k] + sigma_rel * m[k] * rng.standard_normal(n)
        if shape is not None:
            t = rng.random(n) < shape.weight
            x[t] += rng.exponential(1.0, int(t.sum())) * shape.tau_da(m[k][t])
        out.append(x)
    return np.concatenate(out)


def _count(x, lo, hi):
    return np.array([np.count_nonzero((x >= a) & (x < b)) for a, b in zip(lo, hi)])


def test_32_da_o2_with_64ni_recovered_within_counting_error():
    rng = np.random.default_rng(11)
    truth = {"O2+": 200_000, "Ni++": 150_000}
    x = _draw(rng, truth)
    centers = [28.967, 29.965, 30.465, 30.964, 31.963, 31.99, 33.994]
    # one window over 31.96-31.99 (64Ni++ and O2+ are 0.026 Da apart: not split by position)
    lo = np.array([28.90, 29.90, 30.40, 30.90, 31.90, 33.90])
    hi = np.array([29.05, 30.05, 30.55, 31.05, 32.10, 34.10])
    d = deconvolve(_count(x, lo, hi), lo, hi, list(truth))
    for name, n in truth.items():
        assert abs(d.count(name) - n) < 3 * d.error(name) + 1, (name, d.count(name), n)
    # 64Ni++ holds ~1 % of the 32 Da window: ranging it all as O2+ counts that much too many
    w32 = _count(x, lo[4:5], hi[4:5])[0]
    assert w32 - d.count("O2+") * 0.99515 == pytest.approx(0.009256 * truth["Ni++"], rel=0.1)
    assert len(centers) == 7


def test_16_da_o_and_o2_split_by_16o18o_in_h_free_data():
    rng = np.random.default_rng(12)
    truth = {"O+": 400_000, "O2++": 300_000, "O2+": 500_000}
    x = _draw(rng, truth)
    lo = np.array([15.9, 16.95, 17.95, 31.9, 32.9, 33.9])
    hi = np.array([16.1, 17.05, 18.05, 32.1, 33.1, 34.1])
    d = deconvolve(_count(x, lo, hi), lo, hi, list(truth))
    for name, n in truth.items():
        assert abs(d.count(name) - n) < 3 * d.error(name), (name, d.count(name), n)
    assert d.error("O2++") < 0.1 * truth["O2++"]      # the 17 Da window does split them
    # without the 17 and 18 Da windows nothing tells them apart: the convention (O+) wins
    d2 = deconvolve(_count(x, lo[[0, 3]], hi[[0, 3]]), lo[[0, 3]], hi[[0, 3]], list(truth))
    assert d2.count("O2++") == 0 and "not separable" in d2.reasons["O2++"]
    assert d2.count("O+") == pytest.approx(truth["O+"] + truth["O2++"], rel=0.01)


def test_tail_of_58ni_under_co_is_corrected_with_the_peak_shape():
    rng = np.random.default_rng(13)
    shape = PeakShape(sigma_rel=4e-4, tau_sqrt=0.4 / math.sqrt(29.0), weight=0.4)
    truth = {"Ni++": 400_000, "Co++": 50_000}
    x = _draw(rng, truth, shape=shape)
    lo = np.array([28.93, 29.43, 29.93, 30.43, 30.93, 31.93])
    hi = lo + 0.12
    c = _count(x, lo, hi)
    lines = deconvolve(c, lo, hi, list(truth))
    tails = deconvolve(c, lo, hi, list(truth), shape=shape)
    # as lines, the Ni tail in the Co window is counted as Co
    ratio_true = truth["Co++"] / truth["Ni++"]
    assert lines.count("Co++") / lines.count("Ni++") > 1.15 * ratio_true
    assert tails.count("Co++") == pytest.approx(truth["Co++"], rel=0.03)
    assert tails.count("Ni++") == pytest.approx(truth["Ni++"], rel=0.02)
    # the shape integrates to one over all masses
    a = pattern_matrix([parse_ion("Co++")], [0.0], [1000.0], shape)
    assert a[0, 0] == pytest.approx(1.0, abs=1e-6)


def test_background_is_subtracted():
    lo, hi = np.array([15.9, 31.9]), np.array([16.1, 32.1])
    d = deconvolve(np.array([1100.0, 2100.0]), lo, hi, ["O+", "O2+"],
                   background=np.array([100.0, 100.0]))
    assert d.count("O+") == pytest.approx(1000 / 0.99757, rel=1e-3)
    assert d.count("O2+") == pytest.approx(2000 / 0.99515, rel=1e-3)
