"""Pair correlation against brute-force shell counts, random data and planted clusters."""

import tracemalloc

import numpy as np
import pytest

from liprobe import AnalysisError, Range, RangeTable, Run, parse_ion
from liprobe.spatial.rdf import pair_correlation, shell_counts

TABLE = RangeTable.from_ranges([
    Range(15.5, 16.5, parse_ion("O+")), Range(51.5, 52.5, parse_ion("Cr+")),
    Range(57.5, 58.5, parse_ion("Ni+"))])


def make_run(p, mass):
    return Run.from_arrays(x=p[:, 0].astype(np.float32), y=p[:, 1].astype(np.float32),
                           z=p[:, 2].astype(np.float32), mass=np.asarray(mass, np.float32))


def test_shell_counts_equal_a_brute_force_histogram():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 7, (3000, 3))
    is_b = rng.random(len(p)) < 0.3
    centres = np.array([0, 5, 17, 2999, 1200])
    out = shell_counts(p, centres, is_b, 2.5, 0.25)
    for row, c in zip(out, centres):
        d = np.linalg.norm(p - p[c], axis=1)
        d[c] = np.inf
        for lab in (0, 1):
            sel = is_b == bool(lab)
            h = np.histogram(d[sel], bins=np.arange(0, 2.51, 0.25))[0]
            assert row[lab].tolist() == h.tolist()


def test_pair_correlation_equals_the_ratio_of_brute_force_shell_shares():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 8, (4000, 3))
    mass = rng.choice([16.0, 52.0, 58.0, 3.3], size=len(p), p=[0.3, 0.2, 0.4, 0.1])
    pc = pair_correlation(make_run(p, mass), TABLE, "Cr", "O", max_distance_nm=2.0,
                          bin_nm=0.5, max_centres=None, shuffles=3)
    q = p.astype(np.float32).astype(np.float64)
    counted = mass != 3.3
    q, m = q[counted], mass[counted]
    d = np.sqrt(((q[m == 52.0][:, None] - q[None]) ** 2).sum(axis=2))
    d[d == 0] = np.inf
    edges = np.arange(0, 2.01, 0.5)
    n_all = np.histogram(d.ravel(), bins=edges)[0]
    n_o = np.histogram(d[:, m == 16.0].ravel(), bins=edges)[0]
    assert pc.ions.tolist() == n_all.tolist() and pc.to_ions.tolist() == n_o.tolist()
    np.testing.assert_allclose(pc.g, (n_o / n_all) / np.mean(m == 16.0), rtol=1e-12)
    assert pc.centres == pc.ions_from == (m == 52.0).sum()


def test_rdf_of_random_data_is_one_within_its_error():
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 30, (300_000, 3))
    mass = np.where(rng.random(len(p)) < 0.2, 52.0, 58.0)
    pc = pair_correlation(make_run(p, mass), TABLE, "Cr", "Cr", shuffles=12, seed=3)
    assert len(pc.g) == 50 and pc.edges_nm[-1] == pytest.approx(5.0)
    z = (pc.g - 1) / pc.g_error
    assert np.isfinite(z).all()
    assert np.abs(z).max() < 4.0
    assert 0.4 < np.mean(z ** 2) < 2.0            # the error is the scatter, not a bound
    assert np.abs(pc.g_random - 1).max() < 3 * pc.g_error.max()


def test_rdf_rises_above_one_around_planted_clusters_and_falls_to_one():
    rng = np.random.default_rng(4)
    p = rng.uniform(0, 30, (300_000, 3))
    centres = rng.uniform(5, 25, (8, 3))
    inside = (np.linalg.norm(p[:, None] - centres[None], axis=2) < 1.5).any(axis=1)
    mass = np.where(rng.random(len(p)) < np.where(inside, 0.6, 0.05), 52.0, 58.0)
    pc = pair_correlation(make_run(p, mass), TABLE, "Cr", "Cr", shuffles=5)
    assert pc.g[5] > 1 + 10 * pc.g_error[5]               # r = 0.55 nm, inside a cluster
    assert pc.g[5] > pc.g[30] and abs(pc.g[-1] - 1) < 0.15


def test_bad_parameters_are_clear_errors():
    p = np.random.default_rng(5).uniform(0, 3, (100, 3))
    run = make_run(p, np.full(100, 52.0))
    with pytest.raises(AnalysisError, match="shell width"):
        pair_correlation(run, TABLE, "Cr", bin_nm=0)
    with pytest.raises(AnalysisError, match="shells"):
        pair_correlation(run, TABLE, "Cr", max_distance_nm=1000, bin_nm=0.001)
    with pytest.raises(AnalysisError, match="no counted ion of Ni"):
        pair_correlation(run, TABLE, "Cr", "Ni")
    one = pair_correlation(run, TABLE, "Cr", shuffles=1, max_distance_nm=1.0)
    assert np.isnan(one.g_error).all() and "g_err is null" in one.to_dict()["null_reason"]


def test_summed_shells_equal_the_per_centre_counts_in_memory_of_the_shells_alone():
    """Shell counts summed over 4,000 centres (1,000 shells) equal the sum of the
    per-centre counts, without holding centres x 2 x shells integers (64 MB)."""
    rng = np.random.default_rng(6)
    p = rng.uniform(0, 12, (20_000, 3))
    mass = np.where(rng.random(len(p)) < 0.2, 52.0, 58.0)
    run = make_run(p, mass)
    tracemalloc.start()
    try:
        pc = pair_correlation(run, TABLE, "Ni", "Cr", max_distance_nm=2.0, bin_nm=0.002,
                              max_centres=4000, shuffles=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pc.centres == 4000
    assert peak < 16e6
    q = p.astype(np.float32).astype(np.float64)
    rng = np.random.default_rng(0)                   # the seeded choice of the centres
    centres = np.sort(rng.choice(np.flatnonzero(mass == 58.0), 4000, replace=False))
    ref = shell_counts(q, centres, mass == 52.0, 2.0, 0.002).sum(axis=0)
    assert pc.to_ions.tolist() == ref[1].tolist()
    assert pc.ions.tolist() == (ref[0] + ref[1]).tolist()


def test_random_labels_of_a_species_around_itself_give_g_random_below_one():
    """A = B in a small selection: a centre is not its own neighbour, so random labels give
    (n_B - 1) / (n - 1) over n_B / n; g_random measures it, and the figure's band is drawn
    around it, not around 1."""
    rng = np.random.default_rng(7)
    n, n_b = 600, 60
    p = rng.uniform(0, 4, (n, 3))
    mass = np.where(np.arange(n) < n_b, 52.0, 58.0)
    pc = pair_correlation(make_run(p, mass), TABLE, "Cr", max_distance_nm=4.0, bin_nm=4.0,
                          max_centres=None, shuffles=200, seed=1)
    expected = ((n_b - 1) / (n - 1)) / (n_b / n)     # 0.985: every ion is in the one shell
    assert pc.g_random[0] == pytest.approx(expected, abs=0.002)
    import matplotlib.axes

    seen = {}
    real = matplotlib.axes.Axes.fill_between

    def spy(self, x, y1, y2=0, **kw):
        seen["mid"] = 0.5 * (np.asarray(y1) + np.asarray(y2))
        return real(self, x, y1, y2, **kw)

    from liprobe.plots.clusters import plot_pair_correlation

    matplotlib.axes.Axes.fill_between = spy
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            plot_pair_correlation(pc, f"{d}/g.png")
    finally:
        matplotlib.axes.Axes.fill_between = real
    np.testing.assert_allclose(seen["mid"], pc.g_random, rtol=1e-12)
