"""Composition profiles: a planted step, hand counts, the radial shell, errors."""

import math

import numpy as np
import pytest

from liprobe import AnalysisError, ColumnError, Range, RangeTable, Run, parse_ion
from liprobe.spatial.profile import composition_profile
from liprobe.spatial.roi import select

TABLE = RangeTable.from_ranges([
    Range(6.5, 7.5, parse_ion("Li+")), Range(15.5, 16.5, parse_ion("O+")),
    Range(28.5, 29.5, parse_ion("Ni++")), Range(73.5, 75.5, parse_ion("NiO+")),
    Range(51.5, 52.5, parse_ion("Cr+")), Range(67.5, 68.5, parse_ion("CrO+"))])
MASS = {"Li+": 7.0, "O+": 16.0, "Ni++": 29.0, "NiO+": 74.5, "Cr+": 52.0, "CrO+": 68.0}
STEP_DEPTH = 20.3


def column(n=60_000, seed=1):
    """Ions in a 10 nm wide column from z = 0 to -50 nm; Li+ is 40 % of the ions above
    depth 20.3 nm and 10 % below, the rest O+."""
    rng = np.random.default_rng(seed)
    z = -rng.uniform(0, 50, n)
    x, y = rng.uniform(-5, 5, n), rng.uniform(-5, 5, n)
    p_li = np.where(-z < STEP_DEPTH, 0.4, 0.1)
    mass = np.where(rng.random(n) < p_li, MASS["Li+"], MASS["O+"])
    z[0] = 0.0                                  # the top of the column is at z = 0
    return Run.from_arrays(x=x.astype(np.float32), y=y.astype(np.float32),
                           z=z.astype(np.float32), mass=mass.astype(np.float32))


def step_depth(p, el="Li"):
    """Depth where the composition, from the top down, first falls below half-way between
    the two plateaus (bins run along z, i.e. from the bottom up)."""
    order = np.argsort(p.depth)
    pct, depth = p.percent[el][order], p.depth[order]
    top, bottom = np.nanmean(pct[:5]), np.nanmean(pct[-5:])
    i = int(np.flatnonzero(pct < 0.5 * (top + bottom))[0])
    return 0.5 * (depth[i - 1] + depth[i])


@pytest.mark.parametrize("bin_nm", [0.5, 1.0, 2.0])
def test_fixed_width_profile_finds_the_planted_step_within_one_bin(bin_nm):
    p = composition_profile(column(), TABLE, bin_nm=bin_nm)
    assert p.mode == "fixed_width" and p.bin_nm == bin_nm and p.z_top_nm == 0.0
    assert abs(step_depth(p) - STEP_DEPTH) <= bin_nm
    # plateaus: Li is 40 % and 10 % of the atoms (Li+ and O+ carry one atom each)
    top, bottom = p.depth < 15, p.depth > 25
    assert np.nanmean(p.percent["Li"][top]) == pytest.approx(40, abs=1.5)
    assert np.nanmean(p.percent["Li"][bottom]) == pytest.approx(10, abs=1.5)


def test_fixed_count_profile_finds_the_planted_step():
    p = composition_profile(column(), TABLE, ions_per_bin=1000)
    assert p.mode == "fixed_count" and (p.ions == 1000).all()
    widths = p.hi - p.lo
    i = int(np.argmin(np.abs(p.depth - STEP_DEPTH)))
    assert abs(step_depth(p) - STEP_DEPTH) <= 1.5 * widths[i]
    # constant statistical error on each plateau
    assert p.error["Li"][-1] == pytest.approx(100 * math.sqrt(0.4 * 0.6 / 1000), rel=0.1)
    assert p.error["Li"][0] == pytest.approx(100 * math.sqrt(0.1 * 0.9 / 1000), rel=0.2)


def test_ten_ion_hand_computation():
    # z of each ion; bins of 1 nm from the lowest counted ion: [-2, -1), [-1, -0.2]
    ions = ["Li+", "NiO+", "O+", "CrO+", "Li+", "Ni++", "O+", "O+", "CrO+", "unranged"]
    z = [-2.0, -1.5, -1.2, -1.1, -0.9, -0.5, -0.4, -0.3, -0.2, 0.0]
    mass = [MASS.get(i, 3.3) for i in ions]
    run = Run.from_arrays(x=np.zeros(10, np.float32), y=np.zeros(10, np.float32),
                          z=np.array(z, np.float32), mass=np.array(mass, np.float32))
    p = composition_profile(run, TABLE, bin_nm=1.0)
    assert p.n_bins == 2 and np.allclose(p.lo, [-2, -1]) and np.allclose(p.hi, [-1, -0.2])
    # bin 0: Li+, NiO+, O+, CrO+ -> Li 1, Ni 1, O 3, Cr 1: 6 atoms
    # bin 1: Li+, Ni++, O+, O+, CrO+ -> Li 1, Ni 1, O 3, Cr 1: 6 atoms
    assert list(p.atoms) == [6, 6] and list(p.ions) == [4, 5]
    assert p.percent["O"][0] == pytest.approx(50.0)
    assert p.error["Li"][0] == pytest.approx(100 * math.sqrt(1 / 6 * 5 / 6 / 6))
    assert np.allclose(p.depth, [1.5, 0.6])     # below the top ion (unranged) at z = 0
    # excluding Cr drops CrO+ whole, its O too: bin 0 is Li 1, Ni 1, O 2
    x = composition_profile(run, TABLE, bin_nm=1.0, exclude=["Cr"], elements=["Li", "O"])
    assert list(x.atoms) == [4, 4] and x.elements == ("Li", "O")
    assert x.percent["O"][0] == pytest.approx(50.0) and "Cr" not in x.percent


def test_empty_bin_has_no_composition():
    z = np.array([-10.0, -9.9, -0.5, 0.0], np.float32)
    run = Run.from_arrays(x=np.zeros(4, np.float32), y=np.zeros(4, np.float32), z=z,
                          mass=np.full(4, MASS["Li+"], np.float32))
    p = composition_profile(run, TABLE, bin_nm=1.0)
    assert p.n_bins == 10 and p.atoms[3] == 0 and math.isnan(p.percent["Li"][3])
    d = p.to_dict()
    assert d["percent"]["Li"][3] is None and "null_reason" in d


def test_radial_profile_shows_the_shell():
    rng = np.random.default_rng(2)
    n = 40_000
    r = 20 * np.sqrt(rng.random(n))
    phi = rng.uniform(0, 2 * np.pi, n)
    mass = np.where(r > 17, MASS["Cr+"], rng.choice([MASS["Li+"], MASS["O+"]], n))
    run = Run.from_arrays(x=(r * np.cos(phi)).astype(np.float32),
                          y=(r * np.sin(phi)).astype(np.float32),
                          z=-rng.uniform(0, 10, n).astype(np.float32), mass=mass.astype(np.float32))
    p = composition_profile(run, TABLE, radial=True, bin_nm=1.0, center_nm=(0.0, 0.0))
    assert p.coordinate == "r" and p.depth is None
    cr = p.percent["Cr"]
    assert np.all(cr[p.hi <= 17] == 0) and np.all(cr[p.lo >= 17] == 100)


def test_selection_is_carried_into_the_header():
    run, info = select(column(), "cylinder:6")
    p = composition_profile(run, TABLE, bin_nm=2.0, selection=info)
    h = p.header()
    assert h["roi"] == "cylinder:6" and h["roi_diameter_nm"] == 6.0
    assert h["roi_length_nm"] is None and h["bin_nm"] == 2.0
    assert h["length_nm"] == pytest.approx(50.0, abs=0.1)


def test_no_ranged_ions_is_an_analysis_error():
    run = Run.from_arrays(x=np.zeros(5, np.float32), y=np.zeros(5, np.float32),
                          z=np.zeros(5, np.float32), mass=np.full(5, 3.3, np.float32))
    with pytest.raises(AnalysisError, match="no ranged"):
        composition_profile(run, TABLE)


def test_missing_coordinate_is_a_column_error():
    run = Run.from_arrays(mass=np.full(5, 7.0, np.float32))
    with pytest.raises(ColumnError, match="'z'"):
        composition_profile(run, TABLE)


def test_roi_errors_are_analysis_errors():
    with pytest.raises(AnalysisError, match="contains no ions"):
        select(column(1000), "sphere:2@100,100,100")
    no_xyz = Run.from_arrays(mass=np.full(5, 7.0, np.float32), det_x=np.zeros(5, np.float32),
                             det_y=np.zeros(5, np.float32))
    with pytest.raises(AnalysisError, match="reconstructed positions"):
        select(no_xyz, "cylinder:5")
