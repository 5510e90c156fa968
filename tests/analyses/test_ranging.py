"""Range assignment against brute force, numpy's searchsorted, and the real Si data."""

import numpy as np
from hypothesis import given, strategies as st

import liprobe
from liprobe.chemistry import Ion
from liprobe.rangetable import Range, RangeTable
from liprobe.ranging import assign, count_ions, count_windows

NAMED = [Ion((), None, f"I{i}") for i in range(40)]  # distinct ions, no chemistry needed


def brute_force(mass, lo, hi):
    """Label by a plain Python loop over windows (half-open [lo, hi))."""
    out = []
    for m in mass:
        lab = -1
        for k, (a, b) in enumerate(zip(lo, hi)):
            if a <= m < b:
                lab = k
                break
        out.append(lab)
    return np.array(out)


@st.composite
def tables_and_masses(draw):
    n = draw(st.integers(1, 12))
    cuts = sorted(set(draw(st.lists(st.floats(-3.0, 300.0, allow_nan=False, width=32),
                                    min_size=2 * n, max_size=2 * n))))
    if len(cuts) < 2:
        cuts = [1.0, 2.0]
    ranges = []
    i = 0
    while i + 1 < len(cuts):
        lo, hi = float(cuts[i]), float(cuts[i + 1])
        ranges.append(Range(lo, hi, NAMED[len(ranges)]))
        touching = draw(st.booleans())
        i += 1 if touching else 2   # touching windows share an edge
    table = RangeTable.from_ranges(ranges)
    edges = np.array(cuts, np.float32)
    # masses on, just below and just above every edge, plus random ones
    near = np.concatenate([edges, np.nextafter(edges, np.float32(-1)),
                           np.nextafter(edges, np.float32(1e9))])
    rand = np.array(draw(st.lists(st.floats(-5.0, 320.0, allow_nan=False, width=32),
                                  max_size=200)), np.float32)
    return table, np.concatenate([near, rand]).astype(np.float32)


@given(tables_and_masses())
def test_assignment_equals_brute_force_including_touching_windows(tm):
    table, mass = tm
    labels, counts = assign(mass, table)
    expected = brute_force(mass.astype(np.float64), table.lo, table.hi)
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(counts,
                                  np.bincount(expected[expected >= 0], minlength=len(table)))
    c2, unranged = count_windows(mass, table)
    np.testing.assert_array_equal(c2, counts)
    assert unranged == int((expected < 0).sum())


def test_touching_boundary_goes_to_the_upper_window():
    table = RangeTable.from_ranges([Range(1.0, 2.0, NAMED[0]), Range(2.0, 3.0, NAMED[1])])
    labels, _ = assign(np.array([0.5, 1.0, 2.0, 2.999, 3.0], np.float32), table)
    assert labels.tolist() == [-1, 0, 1, 1, -1]


def test_nan_and_negative_masses_are_unranged():
    table = RangeTable.from_ranges([Range(0.0, 10.0, NAMED[0])])
    labels, counts = assign(np.array([np.nan, -1.0, 0.0, 5.0]), table)
    assert labels.tolist() == [-1, -1, 0, 0] and counts.tolist() == [2]


def test_extreme_masses_and_a_window_below_zero_equal_brute_force():
    """Negative, NaN, infinite and huge masses, and masses one ulp from every edge,
    through the kernel's clamped and out-of-line paths (float32 and float64)."""
    table = RangeTable.from_ranges([Range(-2.0, 0.5, NAMED[0]), Range(0.5, 7.25, NAMED[1]),
                                    Range(100.0, 123.456, NAMED[2])])
    edges = np.array([-2.0, 0.5, 7.25, 100.0, 123.456])
    for dtype in (np.float32, np.float64):
        e = edges.astype(dtype)
        mass = np.concatenate([
            e, np.nextafter(e, dtype(-np.inf)), np.nextafter(e, dtype(np.inf)),
            np.array([np.nan, -np.inf, np.inf, -1e30, 1e30, -0.0, 0.0, -1e-30, 1e-30,
                      123.456 * 1.0001, 500.0, np.finfo(dtype).max], dtype)])
        mass = np.tile(mass, 7)[:-3]   # not a multiple of the 4-ion step
        labels, counts = assign(mass, table)
        expected = brute_force(mass.astype(np.float64), table.lo, table.hi)
        np.testing.assert_array_equal(labels, expected)
        c, unranged = count_windows(mass, table)
        np.testing.assert_array_equal(c, np.bincount(expected[expected >= 0], minlength=3))
        np.testing.assert_array_equal(counts, c)
        assert unranged == int((expected < 0).sum())


def test_large_random_column_equals_searchsorted():
    rng = np.random.default_rng(3)
    lo = np.sort(rng.uniform(0, 200, 60))
    lo = lo[np.diff(lo, append=1e9) > 0.2]
    table = RangeTable.from_ranges([Range(a, a + 0.2, Ion((), None, f"W{i}"))
                                    for i, a in enumerate(lo)])
    mass = rng.uniform(-1, 210, 1_000_003).astype(np.float32)
    labels, counts = assign(mass, table)
    e = np.empty(2 * len(lo))
    e[0::2], e[1::2] = table.lo, table.hi
    j = np.searchsorted(e, mass.astype(np.float64), side="right")
    np.testing.assert_array_equal(labels, np.where(j % 2 == 1, (j - 1) // 2, -1))


def test_si_pos_counts_equal_an_independent_numpy_count(real):
    """PROVENANCE.md: Si.RRNG on Si.pos gives these ion counts (bounds never hit)."""
    path = real / "apav_si" / "Si.pos"
    table = liprobe.read_ranges(real / "apav_si" / "Si.RRNG")
    mass = np.fromfile(path, ">f4").reshape(-1, 4)[:, 3].astype(np.float64)
    expected = {}
    for r in table:
        n = int(((mass >= r.lo) & (mass < r.hi)).sum())
        expected[r.ion.formula] = expected.get(r.ion.formula, 0) + n
    run = liprobe.read(path)
    ion_counts, unranged, total = count_ions(run.chunks("mass", 100_000), table)
    by_formula = {}
    for ion, n in zip(table.ions, ion_counts):
        by_formula[ion.formula] = by_formula.get(ion.formula, 0) + int(n)
    assert by_formula == expected
    assert by_formula == {"Si": 785_076, "Cr": 1_207, "Cu": 683, "C": 706, "O": 1_355,
                          "CrO": 1_681, "CrO2": 642, "Cr2O": 85_660}
    assert total == 945_211 and unranged == 68_201
