"""The coating shell and the core ROI, on a synthetic Cr-shelled cone built here."""

import numpy as np
import pytest

from liprobe import AnalysisError, ColumnError, Range, RangeTable, Run, parse_ion
from liprobe.spatial.coating import coating_profile, core_mask
from liprobe.spatial.roi import select

TABLE = RangeTable.from_ranges([
    Range(6.5, 7.5, parse_ion("Li+")), Range(15.5, 16.5, parse_ion("O+")),
    Range(28.5, 29.5, parse_ion("Ni++")), Range(51.5, 52.5, parse_ion("Cr+")),
    Range(67.5, 68.5, parse_ion("CrO+"))])
CR_WIDTH_DA = 2.0              # the two Cr windows
BG_FRACTION, BG_RANGE_DA = 0.03, 100.0
THICKNESS = 3.0


def inner_radius(z):
    """The planted oxide radius: a cone widening with depth."""
    return 15.0 + 0.1 * (-z)


def axis(z):
    """The planted axis: tilted along x."""
    return 0.05 * (-z), 0.0 * z


def shelled_cone(n=150_000, seed=3, shell=True):
    """Ions uniform in a cone of oxide (Li+, O+, Ni++) inside a 3 nm Cr+/CrO+ shell, 60 nm deep,
    with 3 % of all ions on a flat mass background over 0-100 Da. Returns the run and
    the ions' true distance from the axis."""
    rng = np.random.default_rng(seed)
    z = -rng.uniform(0, 60, n)
    r_out = inner_radius(z) + THICKNESS
    r = r_out * np.sqrt(rng.random(n))
    phi = rng.uniform(0, 2 * np.pi, n)
    ax, ay = axis(z)
    x, y = ax + r * np.cos(phi), ay + r * np.sin(phi)
    oxide = rng.choice([7.0, 16.0, 29.0], n, p=[0.3, 0.5, 0.2])
    coat = rng.choice([52.0, 68.0], n, p=[0.6, 0.4])
    mass = np.where((r > inner_radius(z)) & shell, coat, oxide)
    mass = np.where(rng.random(n) < BG_FRACTION, rng.uniform(0, BG_RANGE_DA, n), mass)
    run = Run.from_arrays(x=x.astype(np.float32), y=y.astype(np.float32),
                          z=z.astype(np.float32), mass=mass.astype(np.float32))
    return run, r


@pytest.fixture(scope="module")
def cone():
    return shelled_cone()


@pytest.fixture(scope="module")
def profile(cone):
    run, _ = cone
    return coating_profile(run, TABLE, ions_per_slab=30_000)


def is_cr(mass):
    return ((mass >= 51.5) & (mass < 52.5)) | ((mass >= 67.5) & (mass < 68.5))


def test_shell_radius_axis_and_thickness_per_slab(profile):
    # uniform random z: no evaporation order, so slabs along z (150,000 ions of 30,000 per
    # slab, at least six slabs) and no normal thickness, with the reason
    assert profile.order == "z" and profile.geometry == "shell"
    assert len(profile.slabs) == 6 and all(s.found for s in profile.slabs)
    assert profile.thickness_nm is None and "evaporation order" in profile.thickness_reason
    for s in profile.slabs:
        assert s.inner_radius_nm == pytest.approx(inner_radius(s.z_center), abs=0.5)
        assert s.axis_nm[0] == pytest.approx(axis(s.z_center)[0], abs=0.3)
        assert s.axis_nm[1] == pytest.approx(0.0, abs=0.3)
        # the shell reaches the data's edge: outer radius at half the shell's ion density
        assert s.outer_is_data_edge
        assert s.apparent_thickness_nm == pytest.approx(THICKNESS, abs=0.5)
        assert s.interior < 0.005 and s.plateau > 0.6
        # the foot (5 % of the step) lies inside the iso-level by at most the smoothing's reach
        assert s.inner_radius_nm - 1.5 <= s.foot_radius_nm <= s.inner_radius_nm
    assert [s.z_center for s in profile.slabs] == sorted((s.z_center for s in profile.slabs),
                                                          reverse=True)


@pytest.mark.parametrize("margin", [0.0, 3.0])
def test_core_keeps_90_percent_of_the_uncoated_volume(cone, profile, margin):
    # the true uncoated volume at least `margin` inside the shell's foot, which lies at most
    # 1 nm inside the planted interface (the 3-ring smoothing of 0.5 nm rings)
    run, r = cone
    mask, info = core_mask(run, TABLE, margin_nm=margin, profile=profile)
    true_core = r <= inner_radius(run["z"]) - margin - 1.0
    assert (mask & true_core).sum() >= 0.9 * true_core.sum()
    assert info["ions_in_core"] == mask.sum() and info["margin_nm"] == margin
    for s in info["slabs"]:
        assert s["core_area_nm2"] == pytest.approx(np.pi * s["core_radius_nm"] ** 2)
        assert s["core_radius_nm"] == pytest.approx(s["foot_radius_nm"] - margin)


@pytest.mark.parametrize("margin", [1.0, 3.0])
def test_core_holds_only_the_background_cr(cone, profile, margin):
    run, r = cone
    mask, _ = core_mask(run, TABLE, margin_nm=margin, profile=profile)
    assert (mask & (r > inner_radius(run["z"]))).sum() == 0     # nothing of the shell
    # Cr in the core: the flat mass background falling in the Cr windows, no more
    expected = mask.sum() * BG_FRACTION * CR_WIDTH_DA / BG_RANGE_DA
    assert abs(is_cr(run["mass"][mask]).sum() - expected) < 4 * np.sqrt(expected)


def test_roi_core_selects_through_roi_select(cone):
    run, r = cone
    sub, info = select(run, "core:2", ranges=TABLE)
    assert info["kind"] == "core" and info["margin_nm"] == 2.0
    assert sub.n_ions == info["ions_in_core"] == info["ions_selected"]
    areas = [s["core_area_nm2"] for s in info["slabs"]]
    assert areas == sorted(areas)   # the cone widens with depth, slabs run top down


def test_segment_then_core(cone):
    run, _ = cone
    sub, info = select(run, "core", segment="0:60000", ranges=TABLE)
    assert info["segment"] == [0, 60000] and 0 < sub.n_ions < 60000


def test_no_shell_is_an_analysis_error():
    run, _ = shelled_cone(n=40_000, shell=False)
    prof = coating_profile(run, TABLE)
    assert not prof.found and all(s.reason for s in prof.slabs)
    assert prof.geometry == "none" and prof.thickness_nm is None
    with pytest.raises(AnalysisError, match="no Cr shell or cap found"):
        core_mask(run, TABLE, profile=prof)


def test_missing_positions_is_a_column_error():
    run = Run.from_arrays(mass=np.full(10, 52.0, np.float32), det_x=np.zeros(10, np.float32),
                          det_y=np.zeros(10, np.float32))
    with pytest.raises(ColumnError, match="'x'"):
        core_mask(run, TABLE)


def test_coating_element_not_ranged_is_an_analysis_error(cone):
    run, _ = cone
    with pytest.raises(AnalysisError, match="no ranged ion carries Al"):
        coating_profile(run, TABLE, element="Al")
