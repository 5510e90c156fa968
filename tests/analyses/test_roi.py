"""ROI specs, segments and selection."""

import numpy as np
import pytest

import liprobe
from liprobe.errors import AnalysisError
from liprobe.spatial.roi import cylinder_mask, parse_roi, parse_segment, select


def test_parse_roi_specs():
    assert parse_roi("cylinder:25").params == (25.0,)
    assert parse_roi("cylinder:25:40", center=(1, 2)).center == (1.0, 2.0)
    assert parse_roi("sphere:10@0,0,-20").params == (10.0, 0.0, 0.0, -20.0)
    assert parse_roi("box:-5:5:-5:5:-30:0").kind == "box"
    assert parse_roi("core").params == (3.0,) and parse_roi("core:5").params == (5.0,)
    for bad in ("cyl:3", "cylinder:", "cylinder:-1", "box:1:0:0:1:0:1", "sphere:3@1,2"):
        with pytest.raises(ValueError, match="ROI"):
            parse_roi(bad)


def test_parse_segment():
    assert parse_segment("0:400000") == slice(0, 400000)
    assert parse_segment("4e5:") == slice(400000, None)
    with pytest.raises(ValueError, match="segment"):
        parse_segment("10:5")


def test_cylinder_mask_against_hand_distances():
    x = np.array([0, 12.4, 12.6, 0, 8.8, 8.9], np.float32)
    y = np.array([0, 0, 0, -12.5, 8.8, 8.9], np.float32)
    assert cylinder_mask(x, y, 25.0).tolist() == [True, True, False, True, True, False]


def test_select_cylinder_and_segment_keep_order():
    rng = np.random.default_rng(0)
    n = 10_000
    run = liprobe.Run.from_arrays(x=rng.normal(5, 20, n).astype(np.float32),
                                  y=rng.normal(-3, 20, n).astype(np.float32),
                                  z=-np.arange(n, dtype=np.float32) / 100,
                                  mass=rng.uniform(1, 100, n).astype(np.float32))
    sub, info = select(run, "cylinder:25", "1000:9000")
    x, y = run["x"][1000:9000], run["y"][1000:9000]
    cx, cy = np.median(x), np.median(y)
    keep = (x - cx) ** 2 + (y - cy) ** 2 <= 12.5 ** 2
    np.testing.assert_array_equal(sub["mass"], run["mass"][1000:9000][keep])
    assert info["segment"] == [1000, 9000] and info["ions_selected"] == int(keep.sum())
    assert info["center_nm"] == [pytest.approx(cx), pytest.approx(cy)]


def test_empty_roi_and_missing_positions_are_clear_errors(real):
    run = liprobe.read(real / "apav_si" / "Si.pos")
    with pytest.raises(AnalysisError, match="contains no ions"):
        select(run, "sphere:1@500,500,500")
    with pytest.raises(AnalysisError, match="holds no ions"):
        select(run, None, slice(2_000_000, 3_000_000))
    masses_only = liprobe.Run.from_arrays(mass=np.ones(5, np.float32))
    with pytest.raises(AnalysisError, match="needs reconstructed positions"):
        select(masses_only, "cylinder:25")


@pytest.mark.parametrize("spec, params", [
    ("cylinder:25", (25.0,)),               # a bare number is the diameter
    ("cylinder:d=25", (25.0,)),
    ("cylinder:r=12.5", (25.0,)),           # APAV's RoiCylinder and AP Suite take a radius
    ("cylinder:R=12.5:40", (25.0, 40.0)),
    ("cylinder:d=25:40", (25.0, 40.0)),
    ("sphere:d=10@0,0,-20", (10.0, 0.0, 0.0, -20.0)),
    ("sphere:r=5@0,0,-20", (10.0, 0.0, 0.0, -20.0)),
])
def test_roi_by_radius_or_diameter(spec, params):
    roi = parse_roi(spec)
    assert roi.params == params
    d = roi.describe()
    assert d["diameter_nm"] == params[0]
    assert d["description"].startswith(f"{roi.kind}, diameter {params[0]:g} nm")


@pytest.mark.parametrize("bad", ["cylinder:r=0", "cylinder:x=5", "sphere:r=-1@0,0,0",
                                 "cylinder:r=", "cylinder:d=5:r=3"])
def test_bad_radius_or_diameter_specs_are_value_errors(bad):
    with pytest.raises(ValueError, match="bad ROI"):
        parse_roi(bad)
