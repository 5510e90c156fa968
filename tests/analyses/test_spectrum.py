"""The mass histogram against numpy's histogram (an independent implementation)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import liprobe
from liprobe.errors import AnalysisError
from liprobe.spectrum import mass_histogram


@given(lo=st.sampled_from([0.0, 0.3, 1.7, 5.0]), width=st.sampled_from([0.01, 0.05, 0.1, 0.003]),
       seed=st.integers(0, 2**31))
def test_histogram_equals_numpy_on_the_returned_edges(lo, width, seed):
    rng = np.random.default_rng(seed)
    m = rng.uniform(-2, 60, 20_000).astype(np.float32)
    h = mass_histogram(m, width, (lo, 50.0))
    # values exactly on edges, the hardest case for rounding
    on_edges = h.edges[:: max(1, len(h.edges) // 50)].astype(np.float32)
    m2 = np.concatenate([m, on_edges, np.nextafter(on_edges, np.float32(0))])
    h2 = mass_histogram(m2, width, (lo, 50.0))
    # bins are half-open [e_k, e_k+1), the last one too (numpy closes its last bin)
    j = np.searchsorted(h2.edges, m2.astype(np.float64), side="right") - 1
    ref = np.bincount(j[(j >= 0) & (j < len(h2.counts))], minlength=len(h2.counts))
    np.testing.assert_array_equal(h2.counts, ref)
    inner = m2[m2 < h2.edges[-1]]
    np.testing.assert_array_equal(mass_histogram(inner, width, (lo, 50.0)).counts,
                                  np.histogram(inner.astype(np.float64), bins=h2.edges)[0])
    assert h.bin_width == pytest.approx(width)


def test_histogram_drops_nan_and_out_of_range():
    m = np.array([np.nan, -1.0, 0.0, 0.005, 0.015, 199.999, 200.0, 1e30, np.inf, -np.inf,
                  -1e30, -0.0], np.float32)
    for dtype in (np.float32, np.float64):
        h = mass_histogram(m.astype(dtype), 0.01, (0, 200))
        assert h.counts.sum() == 5
        assert h.counts[0] == 3 and h.counts[1] == 1 and h.counts[-1] == 1


def test_histogram_of_a_column_split_into_kernel_calls(monkeypatch):
    """Columns beyond the kernel's uint32 limit are cut into calls; the sum is unchanged."""
    import liprobe.spectrum.histogram as spectrum

    m = np.random.default_rng(5).uniform(0, 30, 100_003).astype(np.float32)
    whole = mass_histogram(m, 0.05, (0, 30)).counts
    monkeypatch.setattr(spectrum, "_MAX_CALL_IONS", 7_919)
    split = mass_histogram(m, 0.05, (0, 30)).counts
    np.testing.assert_array_equal(split, whole)
    ref, _ = np.histogram(m.astype(np.float64), bins=np.arange(601) * 0.05)
    np.testing.assert_array_equal(whole, ref)


def test_histogram_chunks_equal_whole(real):
    run = liprobe.read(real / "apav_si" / "Si.pos")
    whole = mass_histogram(run["mass"], 0.01, (0, 200))
    chunked = mass_histogram(run.chunks("mass", 100_000), 0.01, (0, 200))
    np.testing.assert_array_equal(whole.counts, chunked.counts)
    ref, _ = np.histogram(run["mass"].astype(np.float64), bins=whole.edges)
    np.testing.assert_array_equal(whole.counts, ref)


def test_bad_histogram_parameters():
    with pytest.raises(AnalysisError, match="bad histogram"):
        mass_histogram(np.ones(3), 0.0)
    with pytest.raises(AnalysisError, match="bad histogram"):
        mass_histogram(np.ones(3), 0.01, (5, 1))
