"""Nearest-neighbour distances and neighbourhood compositions against brute force.

The oracles: every pairwise distance computed with numpy (``brute_knn``), the
per-slab label counts, and planted structures drawn here (Cr segregated to one
half of a box; a Li depth gradient with Li placed at random within each slab).
"""

import tracemalloc

import numpy as np
import pytest

from liprobe import AnalysisError, Range, RangeTable, Run, parse_ion
from liprobe.spatial.neighbours import (
    counted_positions,
    kd_tree,
    knn_distances,
    nearest_neighbours,
    neighbour_composition,
    shuffle_labels,
)

TABLE = RangeTable.from_ranges([
    Range(6.5, 7.5, parse_ion("Li+")), Range(15.5, 16.5, parse_ion("O+")),
    Range(51.5, 52.5, parse_ion("Cr+")), Range(57.5, 58.5, parse_ion("Ni+")),
    Range(67.5, 68.5, parse_ion("CrO+"))])
MASS = {"Li+": 7.0, "O+": 16.0, "Cr+": 52.0, "Ni+": 58.0, "CrO+": 68.0, "none": 3.3}


def make_run(p, ions):
    mass = np.array([MASS[i] for i in ions], np.float32)
    return Run.from_arrays(x=p[:, 0].astype(np.float32), y=p[:, 1].astype(np.float32),
                           z=p[:, 2].astype(np.float32), mass=mass)


def brute_knn(src, dst, k, same):
    """k smallest distances from each src point to the dst points (numpy, every pair);
    ``same``: src[i] is dst[i] and is skipped."""
    d = np.sqrt(((src[:, None, :] - dst[None, :, :]) ** 2).sum(axis=2))
    if same:
        np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, :k]


def test_knn_distances_equal_brute_force_with_and_without_self():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 5, (400, 3))
    tree = kd_tree(p)
    d, i = knn_distances(tree, p, 6, np.arange(len(p)))
    np.testing.assert_allclose(d, brute_knn(p, p, 6, True), rtol=0, atol=1e-12)
    assert not (i == np.arange(len(p))[:, None]).any()
    q = rng.uniform(0, 5, (50, 3))
    d, _i = knn_distances(tree, q, 4)
    np.testing.assert_allclose(d, brute_knn(q, p, 4, False), rtol=0, atol=1e-12)


def test_a_duplicated_position_is_a_neighbour_at_zero_but_not_the_ion_itself():
    p = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0], [3, 0, 0]], float)
    d, i = knn_distances(kd_tree(p), p, 2, np.arange(4))
    assert d[0].tolist() == [0.0, 1.0] and i[0].tolist() == [1, 2]
    assert d[1].tolist() == [0.0, 1.0] and i[1].tolist() == [0, 2]
    assert d[3].tolist() == [2.0, 3.0]


def test_nearest_neighbours_of_species_equal_brute_force_histograms():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 6, (1500, 3))
    ions = rng.choice(["Cr+", "CrO+", "Ni+", "O+", "none"], size=len(p),
                      p=[0.15, 0.05, 0.4, 0.3, 0.1])
    run = make_run(p, ions)
    p32 = p.astype(np.float32).astype(np.float64)
    counted = ions != "none"
    is_cr = np.isin(ions, ["Cr+", "CrO+"])           # the element: every ion carrying Cr
    nd = nearest_neighbours(run, TABLE, "Cr", "Cr", k=3, bin_nm=0.05, max_distance_nm=3.0)
    ref = brute_knn(p32[is_cr], p32[is_cr], 3, True)
    assert nd.centres == nd.ions_from == nd.ions_to == is_cr.sum()
    for j in range(3):
        h = np.histogram(ref[:, j], bins=nd.edges_nm)[0]
        assert nd.counts[j].tolist() == h.tolist()
        assert nd.mean_nm[j] == pytest.approx(ref[:, j].mean(), rel=1e-12)
        # the median from the histogram: within its bin of the exact one, and the
        # grouped-data median (linear within the bin) of the brute-force histogram
        assert abs(nd.median_nm[j] - np.median(ref[:, j])) < 0.05
        cum = np.cumsum(h)
        b = int(np.searchsorted(cum, len(ref) / 2))
        grouped = 0.05 * (b + (len(ref) / 2 - (cum[b - 1] if b else 0)) / h[b])
        assert nd.median_nm[j] == pytest.approx(grouped, rel=1e-12)
    # to every counted ion (unranged ions are not neighbours), the ion itself skipped
    nd = nearest_neighbours(run, TABLE, "Cr+", k=2, bin_nm=0.05, max_distance_nm=3.0)
    is_crp = ions == "Cr+"
    d = np.sqrt(((p32[is_crp][:, None] - p32[counted][None]) ** 2).sum(axis=2))
    d[d == 0] = np.inf                                # the centre itself
    ref = np.sort(d, axis=1)[:, :2]
    assert nd.ions_to == counted.sum()
    np.testing.assert_allclose(nd.mean_nm, ref.mean(axis=0), rtol=1e-12)
    # to another species: no self to skip
    nd = nearest_neighbours(run, TABLE, "O+", "Ni+", k=1, bin_nm=0.05, max_distance_nm=3.0)
    ref = brute_knn(p32[ions == "O+"], p32[ions == "Ni+"], 1, False)
    assert nd.counts[0].tolist() == np.histogram(ref[:, 0], bins=nd.edges_nm)[0].tolist()


def test_random_comparator_is_relabelled_ions_and_matches_the_data_when_random():
    """On randomly placed Cr the measured and random distributions agree; the random one
    is not a formula: it keeps the box's edges (mean 1st-neighbour distance above the
    infinite-medium Poisson value)."""
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 12, (20000, 3))
    ions = np.where(rng.random(len(p)) < 0.1, "Cr+", "Ni+")
    nd = nearest_neighbours(make_run(p, ions), TABLE, "Cr", "Cr", k=3, shuffles=3)
    for j in range(3):
        diff = nd.mean_nm[j] - nd.random_mean_nm[j]
        assert abs(diff) < 4 * np.hypot(nd.mean_err_nm[j], nd.random_mean_err_nm[j])
    # Poisson, infinite medium: <r1> = Gamma(4/3) (4 pi n / 3)^(-1/3)
    from math import gamma, pi

    n = 0.1 * 20000 / 12 ** 3
    poisson = gamma(4 / 3) * (4 * pi * n / 3) ** (-1 / 3)
    assert nd.random_mean_nm[0] > poisson
    assert nd.random_mean_nm[0] == pytest.approx(poisson, rel=0.05)
    assert nd.random_counts.sum(axis=1) + nd.random_beyond == pytest.approx(nd.centres)
    # fewer centres per relabelling: the histograms are scaled to the measured centres
    few = nearest_neighbours(make_run(p, ions), TABLE, "Cr", "Cr", k=1, shuffles=2,
                             random_centres=500)
    assert few.random_centres == 500 < few.centres
    assert few.random_counts.sum() + few.random_beyond[0] == pytest.approx(few.centres)
    assert few.random_mean_nm[0] == pytest.approx(nd.random_mean_nm[0], rel=0.05)


def test_shuffle_within_slabs_keeps_each_slab_composition():
    rng = np.random.default_rng(3)
    z = rng.uniform(-20, 0, 5000)
    kind = (rng.random(5000) < (0.1 + 0.02 * -z)).astype(np.int64)
    out = shuffle_labels(kind, z, np.random.default_rng(4), slab_nm=2.0)
    slab = np.floor(z / 2.0)
    for s in np.unique(slab):
        assert out[slab == s].sum() == kind[slab == s].sum()
    assert (out != kind).any()
    # every order of a slab's labels is equally likely (a fair Fisher-Yates)
    rng = np.random.default_rng(8)
    seen = {}
    for _ in range(6000):
        o = tuple(shuffle_labels(np.array([0, 1, 2, 3]), np.array([0.5, 0.5, 0.5, 1.5]), rng,
                                 slab_nm=1.0).tolist())
        seen[o] = seen.get(o, 0) + 1
    assert len(seen) == 6 and all(o[3] == 3 for o in seen)
    assert max(seen.values()) < 1000 + 4 * np.sqrt(1000 * 5 / 6)
    assert min(seen.values()) > 1000 - 4 * np.sqrt(1000 * 5 / 6)
    whole = shuffle_labels(kind, z, np.random.default_rng(4))
    assert whole.sum() == kind.sum()
    deep = z < -15
    assert whole[deep].mean() < kind[deep].mean() - 0.1          # the gradient is gone


def test_neighbour_composition_equals_brute_force_and_sees_segregation():
    rng = np.random.default_rng(5)
    p = rng.uniform(0, 8, (3000, 3))
    ions = np.where(p[:, 0] < 4, np.where(rng.random(len(p)) < 0.8, "Cr+", "Ni+"),
                    np.where(rng.random(len(p)) < 0.2, "Cr+", "Ni+"))
    run = make_run(p, ions)
    nc = neighbour_composition(run, TABLE, "Cr", k=6, max_centres=None, shuffles=4)
    p32 = p.astype(np.float32).astype(np.float64)
    cr = ions == "Cr+"
    d = np.sqrt(((p32[cr][:, None] - p32[None]) ** 2).sum(axis=2))
    d[d == 0] = np.inf
    nearest = np.argsort(d, axis=1)[:, :6]
    assert nc.fraction_pct == pytest.approx(100 * cr[nearest].mean(), rel=1e-12)
    assert nc.centres == nc.ions_species == cr.sum()
    assert nc.bulk_pct == pytest.approx(100 * cr.mean())
    assert nc.excess_pct > 10 * nc.excess_err_pct > 0


def test_slab_shuffles_remove_a_depth_gradient_that_whole_shuffles_read_as_clustering():
    """Li falls from 40 % to 10 % of the ions with depth, at random within each depth:
    against slab-shuffled labels there is no excess; against labels shuffled over the
    whole volume the gradient reads as clustering."""
    rng = np.random.default_rng(6)
    p = rng.uniform((0, 0, -40), (25, 25, 0), (120_000, 3))
    li = rng.random(len(p)) < 0.4 + 0.3 * p[:, 2] / 40
    run = make_run(p, np.where(li, "Li+", "O+"))
    slab = neighbour_composition(run, TABLE, "Li", k=10, slab_nm=1.0, shuffles=8, seed=1)
    assert abs(slab.excess_pct) < 3 * slab.excess_err_pct
    whole = neighbour_composition(run, TABLE, "Li", k=10, slab_nm=None, shuffles=8, seed=1)
    assert whole.excess_pct > 5 * whole.excess_err_pct
    assert slab.centres == 20_000 and slab.ions_species == li.sum()


def test_bad_species_and_parameters_are_clear_errors():
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 3, (200, 3))
    run = make_run(p, np.where(rng.random(200) < 0.5, "Cr+", "Ni+"))
    with pytest.raises(AnalysisError, match="no ranged ion carries Co"):
        nearest_neighbours(run, TABLE, "Co")
    with pytest.raises(AnalysisError, match="excluded"):
        nearest_neighbours(run, TABLE, "Cr", exclude=["Cr"])
    with pytest.raises(AnalysisError, match="no counted ion of Li"):
        nearest_neighbours(run, TABLE, "Li")
    with pytest.raises(AnalysisError, match="order k must be 1 to 100"):
        nearest_neighbours(run, TABLE, "Cr", k=0)
    few = make_run(p[:30], ["Cr+"] * 20 + ["Ni+"] * 10)
    with pytest.raises(AnalysisError, match="Cr has 20 counted ion.*too few for 20 neighbours"):
        nearest_neighbours(few, TABLE, "Cr", "Cr", k=20)
    assert nearest_neighbours(few, TABLE, "Cr", "Cr", k=19).counts.shape[0] == 19
    with pytest.raises(AnalysisError, match="slab thickness"):
        neighbour_composition(run, TABLE, "Cr", slab_nm=-1)
    unranged = make_run(p, ["none"] * 200)
    with pytest.raises(AnalysisError, match="no ranged"):
        counted_positions(unranged, TABLE)
    one = neighbour_composition(run, TABLE, "Cr", k=3, shuffles=1)
    assert one.excess_err_pct is None and "two or more" in one.reasons["excess_err_pct"]


def test_distances_are_histogrammed_chunk_by_chunk_in_bounded_memory():
    """20,000 centres to their 100 nearest ions: a query of them all holds 32 MB of
    distances and indices (more with copies); chunk by chunk the peak stays a fraction of
    it, and the histograms, means and medians equal a query of them all at once."""
    rng = np.random.default_rng(9)
    p = rng.uniform(0, 20, (40_000, 3))
    run = make_run(p, np.where(rng.random(len(p)) < 0.5, "Cr+", "Ni+"))
    ions = counted_positions(run, TABLE)
    tracemalloc.start()
    try:
        nd = nearest_neighbours(ions, TABLE, "Cr", k=100, bin_nm=0.02, shuffles=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30e6
    cr = np.flatnonzero(ions.kind == TABLE.ions.index(parse_ion("Cr+")))
    d, _i = knn_distances(kd_tree(ions.xyz_nm), ions.xyz_nm[cr], 100, cr)
    assert nd.centres == len(cr)
    for j in (0, 49, 99):
        h = np.histogram(d[:, j], bins=nd.edges_nm)[0]
        assert nd.counts[j].tolist() == h.tolist()
        assert nd.beyond[j] == len(cr) - h.sum()
        assert nd.mean_nm[j] == pytest.approx(d[:, j].mean(), rel=1e-12)
        assert nd.mean_err_nm[j] == pytest.approx(d[:, j].std(ddof=1) / np.sqrt(len(cr)),
                                                  rel=1e-9)
        assert abs(nd.median_nm[j] - np.median(d[:, j])) < 0.02
    # the default last edge: past the 99.9th percentile of the measured k-th distances too
    assert nd.beyond[-1] <= 0.01 * len(cr)


def test_a_single_centre_gives_no_error_with_a_reason_not_zero():
    rng = np.random.default_rng(10)
    p = rng.uniform(0, 5, (400, 3))
    run = make_run(p, ["Cr+"] + ["Ni+"] * 399)
    nd = nearest_neighbours(run, TABLE, "Cr", k=2, shuffles=2)
    assert nd.centres == 1
    d = nd.to_dict()
    assert d["orders"][0]["mean_err_nm"] is None and d["orders"][1]["mean_err_nm"] is None
    assert "1 centre" in d["reasons"]["mean_err_nm"]
    nc = neighbour_composition(run, TABLE, "Ni", to="Cr", k=5, shuffles=3, max_centres=1)
    assert nc.centres == 1
    assert nc.excess_err_pct is None and nc.random_sd_pct is None
    assert "1 centre" in nc.reasons["excess_err_pct"]
