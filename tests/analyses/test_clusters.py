"""Cluster search against planted clusters, random data and brute-force linkage.

The oracles: the planted spheres (their ions and solute counted here with
numpy), a union-find over every pair within d_max (distance <= d_max, the
module's one convention) and a DBSCAN written here on the full distance
matrix, and a hand-placed envelope and erosion.
"""

import tracemalloc

import numpy as np
import pytest

from liprobe import AnalysisError, Range, RangeTable, Run, parse_ion
from liprobe.spatial import clusters as clusters_module
from liprobe.spatial.clusters import cluster_labels, find_clusters, link_solute

TABLE = RangeTable.from_ranges([
    Range(15.5, 16.5, parse_ion("O+")), Range(51.5, 52.5, parse_ion("Cr+")),
    Range(57.5, 58.5, parse_ion("Ni+")), Range(67.5, 68.5, parse_ion("CrO+"))])
DENSITY = 12.0          # ions per nm^3
R = 2.5                 # planted cluster radius, nm


def make_run(p, mass):
    return Run.from_arrays(x=p[:, 0].astype(np.float32), y=p[:, 1].astype(np.float32),
                           z=p[:, 2].astype(np.float32), mass=np.asarray(mass, np.float32))


def same_partition(a, b):
    """Two labellings group the same points (noise -1 in the same places)."""
    if not np.array_equal(a < 0, b < 0):
        return False
    ok = a >= 0
    pairs = set(zip(a[ok].tolist(), b[ok].tolist()))
    return len(pairs) == len(set(a[ok].tolist())) == len(set(b[ok].tolist()))


def brute_components(p, dmax):
    d = np.sqrt(((p[:, None] - p[None]) ** 2).sum(axis=2))
    parent = list(range(len(p)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(d <= dmax, 1))):
        parent[find(i)] = find(j)
    return np.array([find(i) for i in range(len(p))])


def brute_dbscan(p, eps, min_pts):
    d = np.sqrt(((p[:, None] - p[None]) ** 2).sum(axis=2))
    core = (d <= eps).sum(axis=1) >= min_pts
    labels = np.full(len(p), -1)
    cur = 0
    for i in np.flatnonzero(core):
        if labels[i] >= 0:
            continue
        stack = [i]
        labels[i] = cur
        while stack:
            j = stack.pop()
            for m in np.flatnonzero((d[j] <= eps) & core & (labels < 0)):
                labels[m] = cur
                stack.append(m)
        cur += 1
    for i in np.flatnonzero(~core):
        near = np.flatnonzero(core & (d[i] <= eps))
        if len(near):
            labels[i] = labels[near[np.argmin(d[i, near])]]
    return labels


def test_maxsep_and_dbscan_linkage_equal_brute_force():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 6, (700, 3))
    assert same_partition(link_solute(p, 0.6), brute_components(p, 0.6))
    for min_pts in (2, 4, 6):
        assert same_partition(link_solute(p, 0.7, "dbscan", min_pts),
                              brute_dbscan(p, 0.7, min_pts))


def test_envelope_and_erosion_as_placed_by_hand():
    sol = [[0, 0, 0], [0.3, 0, 0], [0.6, 0, 0]]
    other = [[0.9, 0, 0], [1.3, 0, 0], [0.3, 0.45, 0], [5, 5, 5]]
    p = np.array(sol + other, float)
    is_sol = np.array([True] * 3 + [False] * 4)
    lab, sizes = cluster_labels(p, is_sol, 0.4, 3, envelope_nm=0.5, erosion_nm=0)
    assert lab.tolist() == [0, 0, 0, 0, -1, 0, -1] and sizes.tolist() == [3]
    # (0.9, 0, 0) is 0.4 nm from the unclustered (1.3, 0, 0): eroded; (0.3, 0.45) is not
    lab, _ = cluster_labels(p, is_sol, 0.4, 3, envelope_nm=0.5, erosion_nm=0.45)
    assert lab.tolist() == [0, 0, 0, -1, -1, 0, -1]
    lab, _ = cluster_labels(p, is_sol, 0.4, 4)
    assert (lab == -1).all()


@pytest.fixture(scope="module")
def planted():
    """A 40 nm cube at 12 ions/nm^3, 1 at.% Cr, with 10 spheres of radius 2.5 nm at 50 at.%
    Cr (a fifth of it as CrO+)."""
    rng = np.random.default_rng(3)
    n = int(DENSITY * 40 ** 3)
    p = rng.uniform(0, 40, (n, 3))
    centres = []
    while len(centres) < 10:
        c = rng.uniform(R + 1, 40 - R - 1, 3)
        if all(np.linalg.norm(c - d) > 2 * R + 3 for d in centres):
            centres.append(c)
    centres = np.array(centres)
    inside = np.full(n, -1)
    for i, c in enumerate(centres):
        inside[np.linalg.norm(p - c, axis=1) < R] = i
    u = rng.random(n)
    cr = u < np.where(inside >= 0, 0.5, 0.01)
    cro = cr & (rng.random(n) < 0.2)
    mass = np.where(cro, 68.0, np.where(cr, 52.0, np.where(rng.random(n) < 0.3, 16.0, 58.0)))
    return make_run(p, mass), p.astype(np.float32).astype(np.float64), centres, inside, cr, \
        cro, mass


def truth_of(planted, centre_nm):
    _run, p, centres, inside, cr, cro, mass = planted
    j = int(np.argmin(np.linalg.norm(centres - np.asarray(centre_nm), axis=1)))
    m = inside == j
    atoms = m.sum() + cro[m].sum()                       # CrO+ is two atoms
    cr_atoms = cr[m].sum()
    o_atoms = (mass[m] == 16.0).sum() + cro[m].sum()
    return j, int(m.sum()), int(cr[m].sum()), 100 * cr_atoms / atoms, 100 * o_atoms / atoms


def test_planted_clusters_are_found_whole_with_their_composition(planted):
    run = planted[0]
    cs = find_clusters(run, TABLE, "Cr", dmax_nm=0.7, nmin=10, envelope_nm=0.7, erosion_nm=0.6)
    assert cs.n_clusters == 10 and cs.random_baseline.clusters < 1
    found = set()
    for c in cs.clusters:
        j, ions, solute, cr_pct, o_pct = truth_of(planted, c.centre_nm)
        found.add(j)
        assert abs(c.solute_ions / solute - 1) < 0.1
        assert abs(c.ions / ions - 1) < 0.1
        assert abs(c.composition["Cr"] - cr_pct) < 3 * c.composition_error["Cr"]
        assert abs(c.composition["O"] - o_pct) < 3 * c.composition_error["O"]
        assert c.radius_gyration_nm == pytest.approx(np.sqrt(3 / 5) * R, rel=0.1)
        assert sum(c.composition.values()) == pytest.approx(100.0)
    assert found == set(range(10))
    # 1 % of the matrix ions hold Cr, a fifth of them as CrO+ (two atoms)
    assert cs.matrix_composition["Cr"] == pytest.approx(100 * 0.01 / 1.002, abs=0.15)


def test_parameters_chosen_from_the_data_find_the_planted_clusters(planted):
    run = planted[0]
    for method in ("maxsep", "dbscan"):
        cs = find_clusters(run, TABLE, "Cr", method=method, seed=1)
        assert cs.choice["dmax"] == "chosen" and cs.choice["nmin"] == "chosen"
        assert "Stephenson" in cs.choice["dmax_how"] and "Stephenson" in cs.choice["nmin_how"]
        # N_min from its own relabellings; the baseline, counted on others, is a measurement
        # that chance gives few clusters of N_min (not 0 by construction)
        assert f"largest group ({cs.nmin - 1} solute ions)" in cs.choice["nmin_how"]
        assert cs.random_baseline.clusters < 2 < cs.n_clusters
        assert cs.n_clusters == 10
        for c in cs.clusters:
            _j, _ions, solute, _cr, _o = truth_of(planted, c.centre_nm)
            assert abs(c.solute_ions / solute - 1) < 0.1


def test_uniform_random_data_give_no_more_clusters_than_the_random_baseline():
    rng = np.random.default_rng(4)
    p = rng.uniform(0, 30, (int(DENSITY * 30 ** 3), 3))
    mass = np.where(rng.random(len(p)) < 0.1, 52.0, 58.0)
    run = make_run(p, mass)
    for method in ("maxsep", "dbscan"):
        cs = find_clusters(run, TABLE, "Cr", dmax_nm=0.6, nmin=5, method=method,
                           core_points=3, shuffles=10)
        base = cs.random_baseline.clusters
        assert base > 3                   # chance does make groups this size here
        assert cs.n_clusters <= base + 3 * np.sqrt(base) + 1
    with pytest.raises(AnalysisError, match="cannot choose d_max.*look random.*--dmax"):
        find_clusters(run, TABLE, "Cr")


def test_bad_parameters_are_clear_errors(planted):
    run = planted[0]
    with pytest.raises(AnalysisError, match="d_max must be a positive"):
        find_clusters(run, TABLE, "Cr", dmax_nm=0, nmin=3)
    with pytest.raises(AnalysisError, match="unknown cluster method"):
        find_clusters(run, TABLE, "Cr", dmax_nm=0.5, nmin=3, method="kmeans")
    with pytest.raises(AnalysisError, match="N_min must be 1 or more"):
        find_clusters(run, TABLE, "Cr", dmax_nm=0.5, nmin=0)
    with pytest.raises(AnalysisError, match="no ranged ion carries Li"):
        find_clusters(run, TABLE, "Li", dmax_nm=0.5, nmin=3)


def test_within_dmax_is_at_most_dmax_everywhere():
    """Ties at exactly d_max (0.5 nm, exact in binary): linked, in the envelope, eroded,
    and a DBSCAN neighbour, as the brute-force oracles (distance <= d) say."""
    sol = np.array([[0, 0, 0], [0.5, 0, 0], [1.0, 0, 0]], float)
    assert link_solute(sol, 0.5).tolist() == [0, 0, 0]
    assert same_partition(link_solute(sol, 0.5), brute_components(sol, 0.5))
    assert link_solute(sol, np.nextafter(0.5, 0)).tolist() == [0, 1, 2]
    # a core point has both others within 0.5 nm (itself included: 3); the ends do not
    border = link_solute(sol, 0.5, "dbscan", core_points=3)
    assert border.tolist() == [0, 0, 0] == brute_dbscan(sol, 0.5, 3).tolist()
    # Ni exactly L from the last solute ion joins; a free ion exactly d_erosion from it
    # erodes it again
    p = np.vstack([sol, [[1.5, 0, 0], [2.5, 0, 0]]])
    is_sol = np.array([True] * 3 + [False] * 2)
    lab, _ = cluster_labels(p, is_sol, 0.5, 3, envelope_nm=0.5, erosion_nm=0)
    assert lab.tolist() == [0, 0, 0, 0, -1]
    lab, _ = cluster_labels(p, is_sol, 0.5, 3, envelope_nm=0.5, erosion_nm=1.0)
    assert lab.tolist() == [0, 0, 0, -1, -1]
    lab, _ = cluster_labels(p, is_sol, 0.5, 3, envelope_nm=0.5, erosion_nm=np.nextafter(1.0, 0))
    assert lab.tolist() == [0, 0, 0, 0, -1]


def test_linkage_memory_does_not_grow_with_the_pairs_and_too_many_are_refused(monkeypatch):
    """20,000 points with about 500 neighbours each (5 M pairs, 80 MB as an array of
    pairs): the linkage holds memory proportional to the points; above the limit of
    distances to compute it stops at once with a one-line AnalysisError."""
    rng = np.random.default_rng(11)
    p = rng.uniform(0, 10, (20_000, 3))
    tracemalloc.start()
    try:
        lab = link_solute(p, 1.8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (lab == 0).all()                          # one group: everything is linked
    assert peak < 10e6                               # a few arrays of n, not 5 M pairs
    monkeypatch.setattr(clusters_module, "MAX_PAIR_CHECKS", 1e6)
    with pytest.raises(AnalysisError, match=r"pairs .* within 1.8 nm.*smaller d_max") as e:
        link_solute(p, 1.8)
    assert "\n" not in str(e.value)
    run = make_run(p, np.where(rng.random(len(p)) < 0.5, 52.0, 58.0))
    with pytest.raises(AnalysisError, match="smaller d_max"):
        find_clusters(run, TABLE, "Cr", dmax_nm=1.8, nmin=5)


def test_automatic_nmin_on_random_data_gives_a_measured_baseline():
    """Uniformly random data, N_min chosen from relabellings: over many data sets the
    clusters found and the random baseline estimate the same number (the data and the
    baseline's relabellings are alike once N_min is fixed), and the baseline is not 0 by
    construction."""
    found, base = [], []
    for s in range(40):
        rng = np.random.default_rng(700 + s)
        p = rng.uniform(0, 12, (int(DENSITY * 12 ** 3), 3))
        mass = np.where(rng.random(len(p)) < 0.1, 52.0, 58.0)
        cs = find_clusters(make_run(p, mass), TABLE, "Cr", dmax_nm=0.6, shuffles=5, seed=s,
                           envelope_nm=0)
        assert cs.choice["nmin"] == "chosen"
        found.append(cs.n_clusters)
        base.append(cs.random_baseline.clusters)
    f, b = sum(found), sum(base)
    assert b > 0
    # both Poisson-like counts of rare groups: the data's over 40 sets, the baseline's over
    # 5 x 40 relabellings
    assert abs(f - b) < 3 * np.sqrt(b + b / 5) + 1


def test_dmax_is_rarely_chosen_on_random_data():
    """The significance of the d_max choice is calibrated on the relabellings: on random
    data it accepts at most 1 of 40 seeds (3 x chance's root mean square)."""
    accepted = 0
    for s in range(40):
        rng = np.random.default_rng(5000 + s)
        p = rng.uniform(0, 15, (int(DENSITY * 15 ** 3), 3))
        mass = np.where(rng.random(len(p)) < 0.05, 52.0, 58.0)
        try:
            find_clusters(make_run(p, mass), TABLE, "Cr", shuffles=5, seed=s, envelope_nm=0)
            accepted += 1
        except AnalysisError as e:
            assert "look random" in str(e)
    assert accepted <= 1


def test_too_few_solute_ions_for_the_knn_order_suggest_dmax_or_a_lower_order():
    rng = np.random.default_rng(12)
    p = rng.uniform(0, 5, (300, 3))
    mass = np.where(np.arange(300) < 3, 52.0, 58.0)
    with pytest.raises(AnalysisError, match="3 counted ion.*too few.*--dmax.*--knn-order"):
        find_clusters(make_run(p, mass), TABLE, "Cr", knn_order=3)


def test_a_long_envelope_draws_a_warning():
    rng = np.random.default_rng(13)
    p = rng.uniform(0, 10, (12_000, 3))            # 12 ions/nm^3: spacing about 0.44 nm
    mass = np.where(rng.random(len(p)) < 0.1, 52.0, 58.0)
    run = make_run(p, mass)
    quiet = find_clusters(run, TABLE, "Cr", dmax_nm=0.5, nmin=5, envelope_nm=0.5)
    assert not any("envelope" in w for w in quiet.warnings)
    cs = find_clusters(run, TABLE, "Cr", dmax_nm=0.5, nmin=5, envelope_nm=3.0)
    assert any("ion spacings" in w and "erosion removes only" in w for w in cs.warnings)
