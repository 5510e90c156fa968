"""The study's Li-fraction map and Li-sequence columns on a run planted here with known truth.

The run is not simulated: hits uniform on a 40 mm detector disc, Li+ drawn
with a probability that depends on the hit's position (a core split in two
halves, an enriched rim) times a modulation along the evaporation sequence of
period 500 ions, so that every column has a value known in advance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import liprobe
from liprobe import Range, RangeTable, Run, parse_ion
from liprobe.study import analyse_run, parse_manifest, registry_signature
from liprobe.study.analysis import LI_ACF, LI_MAP, LI_MAP_COLUMNS

N = 200_000
R = 40.0
PERIOD = 500
MASSES = {"Li+": 7.016, "O+": 15.995, "Ni++": 28.968, "Mn+": 54.938}

HEAD = """\
[study]
name = "planted"
roi = "none"
fda = { species = ["Li+"], block = 100, shuffles = 5 }
detector = { species = "Li+" }
"""


def p_base(x, y):
    """Li probability by position: core halves 0.15 / 0.05, rim (r > 0.7 R) 0.2."""
    r = np.hypot(x, y)
    return np.where(r > 0.7 * R, 0.2, np.where(r > 0.65 * R, 0.15,
                                               np.where(x > 0, 0.15, 0.05)))


def planted_run(seed=0):
    rng = np.random.default_rng(seed)
    r = R * np.sqrt(rng.random(N))
    t = 2 * np.pi * rng.random(N)
    det_x, det_y = r * np.cos(t), r * np.sin(t)
    mod = 1 + 0.8 * np.cos(2 * np.pi * np.arange(N) / PERIOD)
    p = p_base(det_x, det_y)
    is_li = rng.random(N) < p * mod
    other = rng.choice(["O+", "Ni++", "Mn+"], N, p=[0.6, 0.3, 0.1])
    mass = np.where(is_li, MASSES["Li+"], np.array([MASSES[k] for k in other]))
    mass = mass + rng.normal(0, 0.01, N)
    f32 = np.float32
    z = -np.linspace(0, 80, N)
    run = Run.from_arrays(
        x=(det_x / 2).astype(f32), y=(det_y / 2).astype(f32), z=z.astype(f32),
        mass=mass.astype(f32), tof=(400 * np.sqrt(mass / 30)).astype(f32),
        v_dc=np.linspace(3000, 6000, N).astype(f32), v_pulse=np.zeros(N, f32),
        det_x=det_x.astype(f32), det_y=det_y.astype(f32),
        pulse_delta=np.ones(N, np.int32), multiplicity=np.ones(N, np.int32))
    return run, p


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    d = tmp_path_factory.mktemp("planted")
    run, p = planted_run()
    liprobe.write(d / "planted.epos", run)
    liprobe.write(d / "planted.pos", run)
    table = RangeTable.from_ranges([Range(m - 0.1, m + 0.1, parse_ion(k))
                                    for k, m in MASSES.items()])
    liprobe.write_ranges(d / "planted.rrng", table)
    return d, p


def analyse(d, data):
    text = HEAD + f'\n[[runs]]\ndata = "{data}"\nranges = "planted.rrng"\ncoating = "none"\n'
    m = parse_manifest(text, str(d / "study.toml"))
    res = analyse_run(m.runs[0], m.params)
    assert res["status"] == "ok", res["error"]
    return res["values"], res["reasons"]


def test_the_li_map_columns_give_the_planted_truth(planted):
    d, _p = planted
    v, why = analyse(d, "planted.epos")
    # over the detector group's core disc (0.4 R): halves at 0.1 +- 0.05
    truth = 0.05**2 / (0.1 * 0.9)
    assert v["li_map_heterogeneity"] == pytest.approx(truth, abs=4 * v["li_map_heterogeneity_err"])
    assert v["li_map_heterogeneity"] > 5 * v["li_map_heterogeneity_err"]
    # rim (r > 0.8 R) at 0.2 over core (r <= 0.5 R) at 0.1
    assert v["li_rim_core_ratio"] == pytest.approx(2.0, abs=4 * v["li_rim_core_ratio_err"])
    assert 0.01 < v["li_rim_core_ratio_err"] < 0.1
    assert not any(c in why for c in LI_MAP_COLUMNS)


def test_the_li_acf_columns_find_the_planted_period(planted):
    d, p = planted
    v, why = analyse(d, "planted.epos")
    # every ion is ranged and kept; cov at a multiple of P/2 is +-0.32 E[p]^2
    m = p.mean()
    truth = 0.32 * m * m / (m * (1 - m))
    half = PERIOD // 2
    off = v["li_acf_lag"] % half
    assert min(off, half - off) <= 5
    assert LI_ACF["lag_min"] <= v["li_acf_lag"] <= LI_ACF["lag_max"]
    sd = 1 / math.sqrt(N - LI_ACF["lag_max"])
    assert v["li_acf_max"] == pytest.approx(truth, abs=6 * sd)
    assert "li_acf_max" not in why


def test_the_columns_equal_the_functions_on_the_same_ions(planted):
    from liprobe.fda import sequence_periodicity, species_sequence
    from liprobe.spatial.detector import _subsample_index, detector_map, fraction_heterogeneity

    d, _p = planted
    v, _ = analyse(d, "planted.epos")
    run = liprobe.read(d / "planted.epos")
    table = liprobe.read_ranges(d / "planted.rrng")
    m = detector_map(run, table, species="Li+", core_fraction=0.4)
    idx = _subsample_index(run.n_ions, 100_000, 0)
    h = fraction_heterogeneity(run["det_x"][idx], run["det_y"][idx],
                               np.abs(run["mass"][idx] - MASSES["Li+"]) < 0.1,
                               core_fraction=0.4, center_mm=m.center_mm,
                               detector_radius_mm=m.detector_radius_mm, **LI_MAP)
    assert v["li_map_heterogeneity"] == pytest.approx(h.heterogeneity, rel=1e-9)
    assert v["li_map_heterogeneity_err"] == pytest.approx(h.heterogeneity_err, rel=1e-9)
    assert v["li_rim_core_ratio"] == pytest.approx(h.rim_core_ratio, rel=1e-9)
    s = sequence_periodicity(species_sequence(run, table, "Li"), **LI_ACF)
    assert v["li_acf_max"] == s.max_abs_acf and v["li_acf_lag"] == s.lag_at_max


def test_a_pos_file_has_no_li_map_but_has_the_sequence(planted):
    d, _p = planted
    v, why = analyse(d, "planted.pos")
    assert not any(c in v for c in LI_MAP_COLUMNS) and "det_x" in why["detector"]
    assert v["li_acf_max"] is not None and v["li_acf_lag"] is not None


def test_a_short_sequence_leaves_the_acf_empty_with_a_reason(study_dir):
    # the shared synthetic study's ROI holds fewer than 2 x 10,000 ions
    from .conftest import STUDY_HEAD

    text = STUDY_HEAD + '\n[[runs]]\ndata = "runs/cr-5.epos"\nranges = "runs/cr-5.rrng"\n' \
        'coating = "Cr"\n'
    m = parse_manifest(text, str(study_dir / "study.toml"))
    res = analyse_run(m.runs[0], m.params)
    v, why = res["values"], res["reasons"]
    assert v["li_acf_max"] is None and "too few" in why["li_acf_max"]
    assert v["li_map_heterogeneity"] is not None and v["li_rim_core_ratio"] is not None


def test_the_changed_groups_have_new_versions():
    sig = registry_signature()
    assert sig["detector"] == "2" and sig["fda"] == "3"
