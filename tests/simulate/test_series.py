"""The study's contrasts, measured by liprobe's own analyses on simulated series.

Every number comes from the analyses `liprobe study` runs (composition and
field proxies in a 25 nm cylinder with Cr excluded, Li+ FDA in blocks of 100,
detector heterogeneity over 0.4 of the detector radius), on coated NMC811 at
every energy of Supplementary Table 1 and uncoated NMC811 at 5-20 pJ
(``conftest.Series``). The targets are the paper's (``paper-numbers.md``):
trends and contrasts, with the few absolute values it gives.
"""

import numpy as np
import pytest

from .conftest import COATED_PJ, UNCOATED_PJ

LI = "Li/(Li+Ni+Co+Mn)"
O = "O/(Li+O+Ni+Co+Mn)"  # noqa: E741  the oxygen ratio, named like LI


def increasing(values, strictly=True):
    d = np.diff(values)
    return bool(np.all(d > 0)) if strictly else bool(np.all(d >= 0))


# -- field proxies -------------------------------------------------------------------

def test_mn_charge_ratio_rises_with_laser_energy(coated_series, uncoated_series):
    # the paper's oxide anomaly, from the fitted direct 2+ emission; Ni++/Ni+ and
    # Co++/Co+ are whatever the model gives (they rise too here: reported, not forced)
    for series, energies in ((coated_series, (5, 10, 20, 30, 50)),
                             (uncoated_series, tuple(UNCOATED_PJ))):
        mn = [series[e]["Mn++/Mn+"] for e in energies]
        assert increasing(mn), mn
    assert coated_series[50]["Mn++/Mn+"] > 1.8 * coated_series[5]["Mn++/Mn+"]


def test_o2_to_o_is_2_6_at_5_pj_coated_and_uncoated_and_above_4_at_40_50_pj(coated_series,
                                                                           uncoated_series):
    assert coated_series[5]["O2+/O+"] == pytest.approx(2.6, abs=0.3)
    assert uncoated_series[5]["O2+/O+"] == pytest.approx(2.6, abs=0.3)
    assert coated_series[40]["O2+/O+"] > 4 and coated_series[50]["O2+/O+"] > 4
    r = [coated_series[e]["O2+/O+"] for e in (5, 10, 15, 20, 30, 40, 50)]
    assert increasing(r), r                        # lower field at higher laser energy


# -- coated NMC811 --------------------------------------------------------------------

def test_coated_li_ratio_is_within_0_03_of_0_5_at_every_energy(coated_series):
    for e in COATED_PJ:
        assert coated_series[e][LI] == pytest.approx(0.5, abs=0.03), e
        assert coated_series[e]["Ni/(Ni+Co+Mn)"] == pytest.approx(0.79, abs=0.02), e


def test_coated_oxygen_fraction_is_near_0_5_wherever_o2_to_o_is_below_4(coated_series):
    below = [e for e in COATED_PJ if coated_series[e]["O2+/O+"] < 4]
    assert len(below) >= 6                 # 5-20 pJ: the model's r passes 4 by 30 pJ
    for e in below:
        assert coated_series[e][O] == pytest.approx(0.5, abs=0.03), e
    # and O is lost at the highest energies (neutral O2 [D13, KA15])
    assert coated_series[50][O] < coated_series[5][O] - 0.015


def test_uncoated_li_mu_is_far_above_coated_and_coated_li_is_random(coated_series,
                                                                  uncoated_series):
    coated = [coated_series[e]["mu"] for e in COATED_PJ]
    unc = [uncoated_series[e]["mu"] for e in UNCOATED_PJ]
    # coated: Li stays nearly in place under the shell, so its labels are random (mu of
    # random labels at 250,000 ions: ~0.02-0.04) at every energy: the paper's 0.5, and
    # its rise at 40-50 pJ, are not reproduced (no mechanism gives them)
    assert max(coated) < 0.06
    # uncoated: the flanks' Li islands string Li together, more so the hotter
    assert np.median(unc) > 4 * np.median(coated)
    assert unc[0] < unc[-1] and min(unc[1:]) > 0.15


def test_coated_hit_maps_vary_only_by_their_poles_and_zone_lines(coated_series):
    for e in COATED_PJ:
        assert abs(coated_series[e]["heterogeneity"]) < 0.01, e


# -- uncoated NMC811: delithiation ---------------------------------------------------------

def test_uncoated_li_ratio_is_below_0_35_at_5_pj_and_above_0_65_at_20_pj(uncoated_series):
    # over the whole run, as the paper's spectra show it; in the core ROI the flanks' Li,
    # which lands nearer the rim, gives less at 20 pJ (0.64 here)
    for key, top in ((LI, 0.6), ("whole " + LI, 0.65)):
        li = [uncoated_series[e][key] for e in UNCOATED_PJ]
        assert li[0] < 0.35 and li[-1] > top, li
        assert increasing(li), li


def _rim_over_core(result):
    """The Li+ share of Li+ and the metal ions in the detector's outer quarter over that in its
    inner half (windows of the simulated masses)."""
    m = result.run["mass"]
    li = (m > 6.5) & (m < 7.3)
    metal = ((m > 28.5) & (m < 30.5)) | ((m > 57.5) & (m < 62)) | ((m > 54.5) & (m < 55.5))
    x, y = result.run["det_x"], result.run["det_y"]
    rad = np.hypot(x - np.median(x), y - np.median(y))
    big = np.percentile(rad, 99)
    core, rim = rad < 0.5 * big, (rad > 0.75 * big) & (rad < big)
    return (li[rim].sum() / (li | metal)[rim].sum()) / (li[core].sum() / (li | metal)[core].sum())


def test_uncoated_li_maps_get_a_richer_rim_with_laser_energy(uncoated_series):
    # the Li-fraction map, not the hit density: the flanks' islands land nearer the rim
    r = [_rim_over_core(uncoated_series.results[e]) for e in UNCOATED_PJ]
    assert min(r) > 1.02 and r[-1] > r[0] + 0.04, r


def test_the_truth_records_the_li_moved_and_the_fracture(uncoated_series, coated_series):
    for e, n in UNCOATED_PJ.items():
        t = uncoated_series.results[e].truth
        d = t["li_transport"]
        assert d["li_ratio_nominal"] == 0.5 and t["li_budget"]["closes"]
        # what the ranged ions show is what the truth expects them to show (the Li that left
        # between pulses is background, not ranged)
        exp = t["composition"]["expected_ranged"]["atomic_fractions"]
        want = exp["Li"] / sum(exp.get(el, 0) for el in ("Li", "Ni", "Co", "Mn"))
        assert uncoated_series[e]["whole " + LI] == pytest.approx(want, abs=0.01)
        assert t["fracture"]["fractured"] and t["fracture"]["ion_index"] == int(0.9 * n)
        assert t["ions_detected"] == int(0.9 * n) < t["ions_requested"] == n
    t = coated_series.results[5].truth
    # the fracture model runs for coated specimens too (they are no longer unbreakable):
    # this one did not fracture (was: "fracture" None)
    assert t["li_budget"]["from_flanks"] == 0 and not t["fracture"]["fractured"]
    assert t["fracture"]["stress_by_segment"][0]["oxide_load_share"] < 1
    assert t["segments"][0]["li_transport"]["coated"] is True
