"""Autocorrelation of a solute indicator along the evaporation sequence, on sequences
generated here with a known autocorrelation: a direct sum, a strict period, a
modulated Bernoulli sequence, i.i.d. labels and a two-state Markov chain."""

import math
import tracemalloc

import numpy as np
import pytest

from liprobe.chemistry import parse_ion
from liprobe.errors import AnalysisError
from liprobe.fda import (
    SequencePeriodicity,
    indicator_autocorrelation,
    sequence_periodicity,
    species_sequence,
)
from liprobe.rangetable import Range, RangeTable


def direct_acf(x, lags):
    """O(n k) definition: covariance over the n - l pairs over the variance (divide by n)."""
    d = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = len(d)
    c0 = d @ d / n
    return np.array([(d[:n - lag] @ d[lag:]) / (n - lag) / c0 for lag in lags])


def markov(n, stay1, stay0, rng):
    """A two-state Markov chain by alternating geometric runs: P(1 -> 1) = stay1,
    P(0 -> 0) = stay0; its autocorrelation is ``(stay1 + stay0 - 1) ** l``."""
    pi1 = (1 - stay0) / (2 - stay1 - stay0)
    out = np.empty(0, dtype=bool)
    state = rng.random() < pi1
    parts, total = [], 0
    while total < n:
        m = 20_000
        len1 = rng.geometric(1 - stay1, m)
        len0 = rng.geometric(1 - stay0, m)
        first, second = (len1, len0) if state else (len0, len1)
        lengths = np.column_stack([first, second]).ravel()
        vals = np.tile([state, not state], m)
        parts.append(np.repeat(vals, lengths))
        total += int(lengths.sum())
    out = np.concatenate(parts)[:n]
    return out, pi1


# -- the FFT against the direct sum ---------------------------------------------

@pytest.mark.parametrize("n, lags", [
    (1_000, [0, 1, 2, 17, 500, 999]),
    (300_000, [0, 1, 50, 777, 4_999, 20_000]),        # several FFT blocks
])
def test_fft_equals_the_direct_sum(n, lags):
    rng = np.random.default_rng(n)
    x = rng.random(n) < 0.07
    x[1000 % n::97] = True                              # some structure, not only noise
    got = indicator_autocorrelation(x, lags)
    assert got == pytest.approx(direct_acf(x, lags), abs=1e-10)
    assert got[0] == pytest.approx(1.0, abs=1e-12) and lags[0] == 0
    # 0/1 numbers give the same as bools, a scalar lag a 0-d array
    assert indicator_autocorrelation(x.astype(np.int8), lags) == pytest.approx(got, abs=1e-12)
    assert float(indicator_autocorrelation(x, lags[2])) == pytest.approx(got[2], abs=1e-12)


# -- a period -----------------------------------------------------------------------

def test_a_strict_period_peaks_at_the_period():
    # 25 solute ions then 225 others, again and again: period 250
    x = (np.arange(200_000) % 250) < 25
    p = sequence_periodicity(x, 50, 10_000)
    assert isinstance(p, SequencePeriodicity) and p.reason is None
    assert p.lag_at_max == 250 and p.max_abs_acf == pytest.approx(1.0, abs=1e-6)
    assert p.acf_at_max > 0
    # half a period away the ions anti-correlate: r = -1/9 (a square wave of duty 0.1)
    r = indicator_autocorrelation(x, [125, 250, 500])
    assert r == pytest.approx([-1 / 9, 1.0, 1.0], abs=2e-3)
    assert len(p.acf) == 10_000 - 50 + 1 and p.lags[0] == 50 and p.lags[-1] == 10_000


def test_a_modulated_probability_gives_its_analytic_peak():
    # p_t = 0.3 + 0.2 cos(2 pi t / P): cov at lag l = 0.02 cos(2 pi l / P), var = 0.21
    n, period = 2_000_000, 1_000
    rng = np.random.default_rng(4)
    t = np.arange(n)
    x = rng.random(n) < 0.3 + 0.2 * np.cos(2 * np.pi * t / period)
    truth = 0.02 / 0.21
    lags = np.array([250, 500, 1_000, 2_000, 3_000])
    r = indicator_autocorrelation(x, lags)
    sd = 1 / math.sqrt(n - 3_000)
    assert r == pytest.approx(truth * np.cos(2 * np.pi * lags / period), abs=5 * sd)
    p = sequence_periodicity(x, 50, 10_000)
    # |r| peaks (to noise) at every multiple of half the period: + at P, 2P, ...; - between
    half = period // 2
    off = p.lag_at_max % half
    assert min(off, half - off) <= 30
    assert np.sign(p.acf_at_max) == (1 if (p.lag_at_max + 30) % period < 60 else -1)
    assert p.max_abs_acf == pytest.approx(truth, abs=6 * sd)
    assert p.max_abs_acf > 10 * p.max_band


# -- i.i.d. labels: inside the white-noise band -------------------------------------

def test_iid_labels_stay_in_the_white_noise_band():
    n = 1_000_000
    x = np.random.default_rng(7).random(n) < 0.1
    p = sequence_periodicity(x, 50, 10_000)
    assert p.n == n and p.solute == np.count_nonzero(x) and p.fraction == pytest.approx(0.1,
                                                                                        abs=2e-3)
    assert p.band == pytest.approx(1.96 / math.sqrt(n - 10_000))
    assert p.band == pytest.approx(1.96 / math.sqrt(n), rel=0.01)
    # the spread is 1 / sqrt(n); about 5 % of the lags fall outside the pointwise band
    assert np.std(p.acf) == pytest.approx(1 / math.sqrt(n), rel=0.04)
    outside = np.mean(np.abs(p.acf) > p.band)
    assert 0.035 < outside < 0.065
    # the maximum over all 9,951 lags stays below the band of the maximum
    assert p.max_abs_acf < p.max_band
    assert 3.5 / math.sqrt(n) < p.max_band < 5.0 / math.sqrt(n)
    assert p.max_abs_acf > p.band               # the max of 9,951 lags exceeds one lag's band


# -- a clumped sequence: a Markov chain with a geometric autocorrelation -------------

def test_a_markov_chain_gives_lambda_to_the_lag():
    n = 2_000_000
    rng = np.random.default_rng(12)
    x, pi1 = markov(n, stay1=0.97, stay0=0.99, rng=rng)     # lambda 0.96: clumps of ~33
    lam = 0.97 + 0.99 - 1
    assert np.mean(x) == pytest.approx(pi1, abs=0.02)
    lags = np.array([1, 5, 20, 50, 100])
    r = indicator_autocorrelation(x, lags)
    # Bartlett: the sd of r at lag l for an AR(1)-like acf, (1 + lam^2) / (1 - lam^2) / n
    sd = math.sqrt((1 + lam**2) / (1 - lam**2) / n)
    assert r == pytest.approx(lam ** lags, abs=5 * sd)
    p = sequence_periodicity(x, 50, 10_000)
    assert p.lag_at_max == 50 and p.max_abs_acf == pytest.approx(lam ** 50, abs=5 * sd)


# -- nothing to measure ---------------------------------------------------------------

@pytest.mark.parametrize("case", ["short", "none", "all", "empty"])
def test_too_few_ions_or_no_variation_give_nan_and_a_reason(case):
    x = {"short": np.random.default_rng(0).random(19_999) < 0.2,
         "none": np.zeros(50_000, bool), "all": np.ones(50_000, bool),
         "empty": np.zeros(0, bool)}[case]
    p = sequence_periodicity(x, 50, 10_000)
    assert math.isnan(p.max_abs_acf) and p.lag_at_max is None and p.reason
    assert ("too few" in p.reason) if case in ("short", "empty") else ("solute" in p.reason)
    assert p.to_dict()["max_abs_acf"] is None and p.to_dict()["reason"] == p.reason


def test_bad_lags_raise_and_a_constant_sequence_gives_nan():
    x = np.zeros(100, bool)
    x[::3] = True
    with pytest.raises(ValueError):
        indicator_autocorrelation(x, [100])
    with pytest.raises(ValueError):
        indicator_autocorrelation(x, [-1])
    with pytest.raises(ValueError):
        sequence_periodicity(x, 0, 10)
    with pytest.raises(ValueError):
        sequence_periodicity(x, 20, 10)
    assert np.all(np.isnan(indicator_autocorrelation(np.ones(100, bool), [1, 2])))


# -- bounded: 10^7 ions ---------------------------------------------------------------

def test_ten_million_ions_take_little_memory_beside_the_input():
    n = 10_000_000
    x = np.random.default_rng(1).random(n) < 0.2        # 10 MB of bools
    tracemalloc.start()
    try:
        p = sequence_periodicity(x, 50, 10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert p.reason is None and p.max_abs_acf < p.max_band
    assert peak < 40e6                  # blocks of ~10^5: a few MB, not 8 bytes x 2 n


# -- the FDA's sequence ---------------------------------------------------------------

def test_the_sequence_is_the_fdas_kept_ions_in_order():
    table = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
                                    Range(15.9, 16.2, parse_ion("O+")),
                                    Range(22.9, 23.2, parse_ion("LiO+")),
                                    Range(0.9, 1.2, parse_ion("H+")),
                                    Range(51.8, 52.2, parse_ion("Cr+"))])
    # Li+, O+, unranged, H+, LiO+, Cr+, O+, Li+
    mass = np.array([7.0, 16.0, 40.0, 1.0, 23.0, 52.0, 16.0, 7.0])
    seq = species_sequence(mass, table, "Li", exclude=("Cr",))
    assert seq.tolist() == [True, False, True, False, True]
    assert species_sequence(mass, table, "Li+").tolist() == [True, False, False, False, False,
                                                             True]
    chunks = [mass[:3], mass[3:]]
    assert species_sequence(chunks, table, "Li", exclude=("Cr",)).tolist() == seq.tolist()
    with pytest.raises(AnalysisError):
        species_sequence(mass, table, "Mn")
