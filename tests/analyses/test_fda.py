"""Frequency distribution analysis against the reference's worked example and scipy
written another way."""

import json
import math

import numpy as np
import pytest
from scipy import stats

import liprobe
from liprobe.chemistry import parse_ion
from liprobe.errors import AnalysisError
from liprobe.fda import (
    frequency_distribution,
    frequency_distribution_from_blocks,
    sequential_block_counts,
    species_codes,
    voxel_block_counts,
)
from liprobe.rangetable import Range, RangeTable
from liprobe.stats import binomial_fda_chi2, permuted_histogram, pool_tail_classes

# frequency-distribution.md section 7: n = 10, 100 blocks
WORKED_HIST = [30, 30, 20, 10, 6, 4, 0, 0, 0, 0, 0]
WORKED_K = np.repeat(np.arange(11), WORKED_HIST)


def table_of(*ions):
    """One window per ion at its most abundant isotope peak, +-0.05 Da."""
    ranges = []
    for name in ions:
        ion = parse_ion(name)
        m = max(ion.peaks(), key=lambda p: p[1])[0]
        ranges.append(Range(m - 0.05, m + 0.05, ion))
    return RangeTable.from_ranges(ranges)


def peak_of(table, name):
    r = next(r for r in table.ranges if r.ion.name == name)
    return 0.5 * (r.lo + r.hi)


def independent_fda(k, n, normalization):
    """chi2, dof, p, mu from block counts: math.comb pmf, cumulative-sum pooling,
    scipy.chisquare."""
    k = np.asarray(k)
    nb = len(k)
    obs = np.array([np.count_nonzero(k == j) for j in range(n + 1)], dtype=float)
    p = k.sum() / (n * nb)
    exp = np.array([nb * math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(n + 1)])
    ok = np.flatnonzero(exp >= 5)
    a, b = ok[0], ok[-1]
    o_mid, e_mid = list(obs[a:b + 1]), list(exp[a:b + 1])
    lo_o, lo_e = obs[:a].sum(), exp[:a].sum()
    hi_o, hi_e = obs[b + 1:].sum(), exp[b + 1:].sum()
    if a > 0:
        if lo_e >= 5:
            o_mid, e_mid = [lo_o] + o_mid, [lo_e] + e_mid
        else:
            o_mid[0] += lo_o
            e_mid[0] += lo_e
    if b < n:
        if hi_e >= 5:
            o_mid, e_mid = o_mid + [hi_o], e_mid + [hi_e]
        else:
            o_mid[-1] += hi_o
            e_mid[-1] += hi_e
    res = stats.chisquare(o_mid, e_mid, ddof=1)
    big_n = {"solute": k.sum(), "blocks": nb, "ions": nb * n}[normalization]
    return (float(res.statistic), len(o_mid) - 2, float(res.pvalue),
            math.sqrt(res.statistic / (big_n + res.statistic)))


# -- the worked example -------------------------------------------------------

def test_worked_example_reproduces_reference_digits():
    fd = frequency_distribution_from_blocks(WORKED_K, 10, "A", normalization="blocks")
    assert fd.n_blocks == 100 and fd.fraction == pytest.approx(0.144)
    assert np.round(fd.expected[:9], 4).tolist() == [21.1221, 35.5325, 26.8985, 12.0666, 3.5523,
                                                     0.7171, 0.1005, 0.0097, 0.0006]
    assert fd.expected[9:].max() < 1e-4
    assert fd.classes == ((0, 0), (1, 1), (2, 2), (3, 10))
    assert round(fd.chi2, 5) == 7.12973 and fd.dof == 2
    assert round(fd.p_value, 5) == 0.02830
    assert round(fd.mu, 5) == 0.25798
    solute = frequency_distribution_from_blocks(WORKED_K, 10, "A")     # default N
    assert solute.normalization == "solute" and solute.normalization_n == 144
    assert round(solute.mu, 5) == 0.21720


def test_worked_example_other_cell_rules():
    t = binomial_fda_chi2(WORKED_HIST, 10, cells="3depict")
    assert (round(t.chi2, 5), t.dof, round(t.p_value, 5)) == (8.40260, 4, 0.07790)
    assert round(math.sqrt(t.chi2 / (144 + t.chi2)), 5) == 0.23481
    t = binomial_fda_chi2(WORKED_HIST, 10, cells="all")
    assert (round(t.chi2, 5), t.dof, round(t.p_value, 5)) == (23.54251, 9, 0.00509)
    assert round(math.sqrt(t.chi2 / (100 + t.chi2)), 5) == 0.43653


def test_pooling_leaves_every_expected_count_at_five_or_more():
    # the sketch's one-cell-at-a-time pooling would leave the 4 alone here
    assert pool_tail_classes([10, 4, 3, 3]) == ((0, 0), (1, 3))
    assert pool_tail_classes([1, 2, 8, 9, 4.9, 0.2]) == ((0, 2), (3, 3), (4, 5))
    assert pool_tail_classes([1, 1, 1]) == ((0, 2),)


# -- against an independent computation ---------------------------------------

@pytest.mark.parametrize("normalization", ["solute", "blocks", "ions"])
@pytest.mark.parametrize("n,p,segregated", [(100, 0.1, False), (50, 0.25, True), (20, 0.6, False),
                                            (100, 0.03, True)])
def test_chi2_dof_p_mu_equal_an_independent_computation(normalization, n, p, segregated):
    rng = np.random.default_rng(n)
    nb = 800
    if segregated:
        k = np.r_[rng.binomial(n, p / 2, nb // 2), rng.binomial(n, 1.5 * p, nb // 2)]
    else:
        k = rng.binomial(n, p, nb)
    fd = frequency_distribution_from_blocks(k, n, "A", normalization=normalization)
    chi2, dof, pval, mu = independent_fda(k, n, normalization)
    assert fd.chi2 == pytest.approx(chi2, rel=1e-9)
    assert fd.dof == dof
    assert fd.p_value == pytest.approx(pval, rel=1e-6, abs=1e-300)
    assert fd.mu == pytest.approx(mu, rel=1e-9)
    assert fd.observed.sum() == nb
    assert fd.observed.tolist() == np.bincount(k, minlength=n + 1).tolist()


def test_binomially_drawn_labels_give_mu_close_to_mu_shuffled():
    rng = np.random.default_rng(12345)
    labels = rng.random(200_000) < 0.1
    k = labels.reshape(-1, 100).sum(axis=1)
    for norm in ("solute", "blocks"):
        fd = frequency_distribution_from_blocks(k, 100, "A", normalization=norm)
        assert fd.mu < 0.15
        assert abs(fd.mu - fd.mu_shuffled) < 0.5 * fd.mu_shuffled
        assert fd.dispersion == pytest.approx(1.0, abs=0.1)


def test_segregated_sequence_gives_mu_near_one():
    # runs of 1000 species ions and 1000 others: every block of 100 is pure
    labels = np.tile(np.r_[np.ones(1000, bool), np.zeros(1000, bool)], 10_000)
    k = labels.reshape(-1, 100).sum(axis=1)
    by_blocks = frequency_distribution_from_blocks(k, 100, "A", normalization="blocks")
    assert by_blocks.mu > 0.999 and by_blocks.mu_shuffled < 0.2
    # chi2 of pure blocks grows as N_b**2 (pooled tails), the solute count as N_b:
    # with N = solute count, mu reaches 1 only for many blocks
    solute = frequency_distribution_from_blocks(k, 100, "A")
    assert solute.mu > 0.97 and solute.mu_shuffled < 0.01
    assert solute.dispersion > 50


def test_mu_does_not_depend_on_the_order_of_blocks():
    rng = np.random.default_rng(3)
    k = np.r_[rng.binomial(100, 0.05, 300), rng.binomial(100, 0.2, 300)]
    a = frequency_distribution_from_blocks(k, 100, "A")
    b = frequency_distribution_from_blocks(rng.permutation(k), 100, "A")
    assert (a.chi2, a.dof, a.p_value, a.mu, a.mu_shuffled) == \
        (b.chi2, b.dof, b.p_value, b.mu, b.mu_shuffled)


def test_shuffled_baseline_is_seeded():
    k = np.random.default_rng(1).binomial(100, 0.2, 400)
    assert frequency_distribution_from_blocks(k, 100, seed=7).mu_shuffled == \
        frequency_distribution_from_blocks(k, 100, seed=7).mu_shuffled


def test_permuted_histogram_has_the_distribution_of_an_explicit_permutation():
    rng = np.random.default_rng(5)
    n, nb = 10, 300
    labels = np.r_[rng.random(1500) < 0.05, rng.random(1500) < 0.35]
    obs = np.bincount(labels.reshape(nb, n).sum(axis=1), minlength=n + 1)
    kk = np.arange(n + 1)
    fast, slow = [], []
    for _ in range(1000):
        h = permuted_histogram(obs, n, rng)
        assert h.sum() == nb and (kk * h).sum() == labels.sum()
        fast.append(((kk**2 * h).sum(), h[0]))
        g = np.bincount(rng.permutation(labels).reshape(nb, n).sum(axis=1), minlength=n + 1)
        slow.append(((kk**2 * g).sum(), g[0]))
    fast, slow = np.array(fast), np.array(slow)
    for j in range(2):
        assert stats.ks_2samp(fast[:, j], slow[:, j]).pvalue > 1e-3


# -- blocks from masses ---------------------------------------------------------

TABLE = table_of("Li+", "O+", "O2+", "Ni++", "NiO+", "CrO+", "H+", "Ga+")


def synthetic_masses(n, seed=0):
    rng = np.random.default_rng(seed)
    names = ["Li+", "O+", "O2+", "Ni++", "NiO+", "CrO+", "H+", "Ga+", None]
    weights = np.array([25, 20, 15, 15, 5, 5, 5, 2, 8], float)
    pick = rng.choice(len(names), n, p=weights / weights.sum())
    peaks = np.array([peak_of(TABLE, nm) if nm else 3.3 for nm in names])
    return (peaks[pick] + rng.uniform(-0.03, 0.03, n)).astype(np.float32)


def plain_blocks(mass, table, species_of, n):
    """k per block by searchsorted, the drop rules written out by hand."""
    edges = np.empty(2 * len(table))
    edges[0::2], edges[1::2] = table.lo, table.hi
    j = np.searchsorted(edges, mass, side="right")
    win = np.where(j % 2 == 1, (j - 1) // 2, -1)
    names = np.array([r.ion.name for r in table.ranges] + ["unranged"])
    ion = names[win]                                   # -1 -> "unranged"
    keep = ~np.isin(ion, ["unranged", "H+", "Ga+", "CrO+"])
    flags = np.array([species_of(s) for s in ion[keep]])
    nb = len(flags) // n
    return flags[:nb * n].reshape(nb, n).sum(axis=1), int(keep.sum())


@pytest.mark.parametrize("chunk_ions", [7, 1000, 1 << 22])
def test_sequential_blocks_equal_plain_numpy(chunk_ions):
    mass = synthetic_masses(30_000)
    ref, kept_ref = plain_blocks(mass, TABLE, lambda s: s == "Li+", 100)
    codes = species_codes(TABLE, "Li+", exclude=["Cr"])
    k, ions, kept = sequential_block_counts(mass, TABLE, codes, 100, chunk_ions=chunk_ions)
    assert np.array_equal(k, ref) and ions == 30_000 and kept == kept_ref


def test_element_species_counts_each_ion_containing_it_once():
    mass = synthetic_masses(20_000, seed=1)
    ref, _ = plain_blocks(mass, TABLE, lambda s: s in ("Ni++", "NiO+"), 50)
    fd = frequency_distribution(mass, TABLE, "Ni", 50, exclude=["Cr"])
    assert fd.observed.tolist() == np.bincount(ref, minlength=51).tolist()
    ion_only, _ = plain_blocks(mass, TABLE, lambda s: s == "Ni++", 50)
    fd2 = frequency_distribution(mass, TABLE, "Ni++", 50, exclude=["Cr"])
    assert fd2.observed.tolist() == np.bincount(ion_only, minlength=51).tolist()


def test_run_and_array_give_the_same_result():
    mass = synthetic_masses(20_000, seed=2)
    run = liprobe.Run.from_arrays(mass=mass)
    a = frequency_distribution(run, TABLE, "O2+", 100, exclude=["Cr"])
    b = frequency_distribution(mass, TABLE, "O2+", 100, exclude=["Cr"], chunk_ions=333)
    assert a.to_dict() == b.to_dict()
    assert a.ions_selected == 20_000 and a.ions_in_blocks == 100 * a.n_blocks
    json.dumps(a.to_dict(), allow_nan=False)


# -- errors: clear messages, never NaN ------------------------------------------

def test_absent_species_is_an_analysis_error():
    mass = synthetic_masses(5_000)
    table = table_of("Li+", "O+", "Mn+")          # Mn+ ranged, but no ion there
    with pytest.raises(AnalysisError, match="Mn\\+ is absent"):
        frequency_distribution(mass, table, "Mn+", 100)


def test_species_not_ranged_is_an_analysis_error():
    with pytest.raises(AnalysisError, match="Co\\+ is not ranged"):
        frequency_distribution(synthetic_masses(1000), TABLE, "Co+", 100)
    with pytest.raises(AnalysisError, match="Co is not in any ranged ion"):
        frequency_distribution(synthetic_masses(1000), TABLE, "Co", 100)


def test_excluded_species_is_an_analysis_error():
    with pytest.raises(AnalysisError, match="dropped"):
        frequency_distribution(synthetic_masses(1000), TABLE, "CrO+", 100, exclude=["Cr"])
    with pytest.raises(AnalysisError, match="dropped"):
        frequency_distribution(synthetic_masses(1000), TABLE, "H+", 100)


def test_block_larger_than_the_ions_is_an_analysis_error():
    with pytest.raises(AnalysisError, match="larger than the ions"):
        frequency_distribution(synthetic_masses(1000), TABLE, "Li+", 5000)


def test_only_species_ions_is_an_analysis_error():
    with pytest.raises(AnalysisError, match="every ion"):
        frequency_distribution_from_blocks([10, 10, 10], 10, "A")


def test_too_few_classes_give_a_null_p_value_and_mu_with_a_reason():
    # 8 blocks: all pooled into one class of expected count >= 5, no degree of freedom
    # left; chi2 is then 0 up to rounding, and a mu of 0 (or 2e-17) would read "random"
    fd = frequency_distribution_from_blocks([1, 0, 2, 1, 0, 1, 0, 0], 10, "A")
    assert fd.p_value is None and "degrees of freedom" in fd.reasons["p_value"]
    assert fd.mu is None and fd.mu_shuffled is None and fd.mu_shuffled_interval is None
    assert "8 blocks" in fd.reasons["mu"] and "degree of freedom" in fd.reasons["mu"]
    assert fd.reasons["mu_shuffled"] == fd.reasons["mu"]
    d = fd.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["p_value"] is None and d["mu"] is None and d["mu_shuffled"] is None
    assert "mu None" in repr(fd)


def test_enough_blocks_for_one_degree_of_freedom_give_mu():
    # the smallest case with two classes of >= 5 expected blocks and a fitted fraction
    # would leave dof 0; three classes leave dof 1: mu is computed
    k = np.repeat([0, 1, 2, 3], [30, 40, 20, 10])
    fd = frequency_distribution_from_blocks(k, 10, "A")
    assert fd.dof >= 1 and fd.mu is not None and "mu" not in fd.reasons


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="normalization"):
        frequency_distribution_from_blocks(WORKED_K, 10, normalization="atoms")
    with pytest.raises(ValueError, match="not a chemical element"):
        species_codes(TABLE, "Li+", exclude=["Xx"])
    with pytest.raises(ValueError):
        frequency_distribution(synthetic_masses(100), TABLE, "Li", 100, blocks="cubes")


# -- spatial blocks ---------------------------------------------------------------

def box_run(n, species_of_xyz, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-10, 10, n), rng.uniform(-10, 10, n)
    z = -rng.uniform(0, 40, n)
    is_li = species_of_xyz(x, y, z, rng)
    table = table_of("Li+", "O+")
    mass = np.where(is_li, peak_of(table, "Li+"), peak_of(table, "O+")).astype(np.float32)
    return liprobe.Run.from_arrays(x=x, y=y, z=z, mass=mass), table


def test_voxel_blocks_hold_n_ions_and_find_a_lateral_segregation():
    run, table = box_run(60_000, lambda x, y, z, rng: rng.random(len(x)) < 0.3)
    fd = frequency_distribution(run, table, "Li+", 100, blocks="voxel")
    assert fd.blocking == "voxel"
    assert fd.voxel_nm == pytest.approx((100 / 3.75) ** (1 / 3), rel=0.05)  # 3.75 ions/nm3
    assert fd.n_blocks > 0.8 * 600 and fd.ions_in_blocks == 100 * fd.n_blocks
    assert abs(fd.mu - fd.mu_shuffled) < 0.5 * fd.mu_shuffled
    # Li only in x < 0: voxels see it, evaporation-order blocks (layers) do not
    run2, _ = box_run(60_000, lambda x, y, z, rng: (x < 0) & (rng.random(len(x)) < 0.6))
    vox = frequency_distribution(run2, table, "Li+", 100, blocks="voxel", normalization="blocks")
    seq = frequency_distribution(run2, table, "Li+", 100, normalization="blocks")
    assert vox.mu > 0.9 and vox.mu > 3 * vox.mu_shuffled
    assert abs(seq.mu - seq.mu_shuffled) < 0.5 * seq.mu_shuffled


def test_voxel_blocks_count_the_species_of_each_block():
    rng = np.random.default_rng(4)
    x, y, z = rng.uniform(0, 5, 4000), rng.uniform(0, 5, 4000), -rng.uniform(0, 20, 4000)
    spec = rng.random(4000) < 0.4
    k, side = voxel_block_counts(x, y, z, spec, 50)
    assert side > 0 and len(k) > 0.7 * 4000 / 50 and k.max() <= 50
    assert k.sum() <= spec.sum()


def test_voxel_blocks_need_positions():
    run = liprobe.Run.from_arrays(mass=synthetic_masses(1000))
    with pytest.raises(AnalysisError, match="positions"):
        frequency_distribution(run, TABLE, "Li+", 100, blocks="voxel")


# -- the figure --------------------------------------------------------------------

def test_plot_writes_png_and_svg_atomically(tmp_path):
    from liprobe.plots.fda import plot_frequency_distribution

    fd = frequency_distribution_from_blocks(WORKED_K, 10, "Li+")
    png = plot_frequency_distribution(fd, tmp_path / "f.png")
    svg = plot_frequency_distribution(fd, tmp_path / "f.svg")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in open(svg, "rb").read(400)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "f.svg"]
    with pytest.raises(ValueError, match=".png or .svg"):
        plot_frequency_distribution(fd, tmp_path / "f.pdf")
