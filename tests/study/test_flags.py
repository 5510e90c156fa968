"""Flag rules on hand-made rows, phases and peak presence on hand-made spectra."""

from __future__ import annotations

import numpy as np
import pytest

from liprobe import Range, RangeTable, parse_ion
from liprobe.study import FlagRules, flag_rows, yield_table
from liprobe.study.manifest import FdaConfig, StudyParams
from liprobe.study.phases import match_phases, parse_stoichiometry, ratio_of_formula
from liprobe.study.presence import ion_presence

MATERIALS = {"NMC811": "LiNi0.8Co0.1Mn0.1O2", "LiMn2O4": "LiMn2O4"}
PARAMS = StudyParams(ratios=("Li/(Li+Ni+Co+Mn)", "O2+/O+"), fda=FdaConfig(species=("Li+",)))
RULES = FlagRules()


def row(name, coating="Cr", het=0.01, disp=1.5, li=0.5, li_err=0.002,
        present="Li+;Ni++;Co+;Mn+", pct=None, material="NMC811", instrument="XS",
        disp_err=0.02, **kw):
    pct = pct or {"Li": 25.0, "Ni": 20.0, "Co": 2.5, "Mn": 2.5}
    r = {"run": name, "segment": None, "status": "ok", "coating": coating, "material": material,
         "instrument": instrument, "detector_heterogeneity": het,
         "detector_heterogeneity_err": 0.001, "fda_dispersion_Li+": disp,
         "fda_dispersion_Li+_err": disp_err, "fda_mu_Li+": 0.5, "Li/(Li+Ni+Co+Mn)": li,
         "Li/(Li+Ni+Co+Mn)_err": li_err, "O2+/O+": 2.6, "peaks_present": present}
    r.update({f"at_pct_{el}": v for el, v in pct.items()})
    r.update(kw)
    return r


def flags_of(rows, rules=RULES):
    return [set(filter(None, f["flags"].split(";"))) for f in flag_rows(rows, MATERIALS, PARAMS,
                                                                          rules)]


def batch():
    return [row("a", het=0.010, disp=1.50, li=0.500), row("b", het=0.012, disp=1.55, li=0.505),
            row("c", het=0.011, disp=1.45, li=0.495), row("d", het=0.009, disp=1.52, li=0.498)]


def test_delithiated_by_heterogeneity_or_dispersion_far_above_the_coated_runs():
    rows = batch() + [row("u1", coating="none", het=0.5, disp=1.5, li=0.5),
                      row("u2", coating="none", het=0.011, disp=9.0, li=0.5),
                      row("u3", coating="none", het=0.013, disp=1.56, li=0.5)]
    f = flags_of(rows)
    assert f[:4] == [set()] * 4
    assert f[4] == {"delithiated"} and f[5] == {"delithiated"}
    assert f[6] == set()             # within the band: an uncoated run is not flagged for that
    reasons = flag_rows(rows, MATERIALS, PARAMS, RULES)
    assert "detector heterogeneity 0.5 is" in reasons[4]["flag_reasons"]
    assert "median 0.0105 of 4 coated runs" in reasons[4]["flag_reasons"]
    assert "FDA dispersion of Li+ 9" in reasons[5]["flag_reasons"]
    z = reasons[5]["flag_delithiated_fda_dispersion_Li+_score"]
    assert z == pytest.approx((9.0 - 1.51) / np.hypot(0.1, 0.02), rel=0.01)
    assert reasons[5]["flag_delithiated_fda_dispersion_Li+_threshold"] == 5.0
    # the FDA mu, which grows with a run's size, is not evidence: a large coated run's mu
    # far above the batch's flags nothing
    rows[3]["fda_mu_Li+"] = 0.99
    assert flags_of(rows)[3] == set()


def test_an_uncoated_li_ratio_far_off_the_coated_runs_is_delithiated_a_coated_one_is_not():
    # Li lost between pulses (a deficit) or brought in from the flanks (an excess), neither
    # clustered nor mapped: the Li ratio against the coated runs' (floor 0.01, z 5)
    rows = batch() + [row("low", coating="none", li=0.25),
                      row("high", coating="none", li=0.70),
                      row("near", coating="none", li=0.46),
                      row("grain", coating="Cr", li=0.40)]
    f = flags_of(rows)
    reasons = flag_rows(rows, MATERIALS, PARAMS, RULES)
    assert f[4] == {"delithiated"} and f[5] == {"delithiated"}     # not off_stoichiometric
    assert "Li/(Li+Ni+Co+Mn) = 0.25 is 24.8 robust SD below the median 0.498 of 5 coated " \
        "NMC811 runs on XS" in reasons[4]["flag_reasons"]
    assert "above" in reasons[5]["flag_reasons"]
    assert f[6] == set()                             # 3.8 SD: within the threshold
    # a coated run off the batch is a composition, not field-driven migration
    assert "delithiated" not in f[7] and "off_stoichiometric" in f[7]
    # another material's runs are neither judged nor a reference
    lmo = [row(f"m{i}", material="LiMn2O4", li=1 / 3) for i in range(4)]
    assert all("delithiated" not in x for x in flags_of(batch() + lmo))


def test_an_uncoated_runs_other_li_ratios_move_with_li_and_are_not_judged_twice():
    params = StudyParams(ratios=("Li/(Li+Ni+Co+Mn)", "Mn/(Li+Mn)"), fda=FdaConfig(species=("Li+",)))
    coated = [row(c, li=0.5, **{"Mn/(Li+Mn)": 0.091}) for c in "abcd"]
    rows = coated + [row("u", coating="none", li=0.70, **{"Mn/(Li+Mn)": 0.05})]
    f = [set(filter(None, x["flags"].split(";")))
         for x in flag_rows(rows, MATERIALS, params, RULES)]
    assert f[4] == {"delithiated"}, f[4]
    # a coated run with the same Mn/(Li+Mn) is judged on it
    rows[3]["Mn/(Li+Mn)"] = 0.05
    f = [set(filter(None, x["flags"].split(";")))
         for x in flag_rows(rows, MATERIALS, params, RULES)]
    assert "off_stoichiometric" in f[3]


def test_the_dispersion_floor_and_the_runs_own_error_keep_small_differences_unflagged():
    rows = [row(n, disp=1.5) for n in "abcd"] + [row("e", disp=1.55)]
    # MAD 0: the floor 0.1 with the run's error 0.02 -> 0.5 sigma
    assert flags_of(rows)[-1] == set()
    rows[-1]["fda_dispersion_Li+"] = 2.2             # 0.7 / hypot(0.1, 0.02) = 6.9 sigma
    assert flags_of(rows)[-1] == {"delithiated"}
    reason = flag_rows(rows, MATERIALS, PARAMS, RULES)[-1]["flag_reasons"]
    assert "is 6.9 robust SD above the median 1.5" in reason
    assert "SD 0.102: the batch's 0.1 and the run's own 0.02" in reason
    # the same excess in a run too small to measure it (error 0.3): 2.2 sigma
    rows[-1]["fda_dispersion_Li+_err"] = 0.3
    assert flags_of(rows)[-1] == set()


def test_too_few_runs_to_compare_judges_nothing_batch_relative():
    rows = [row("a"), row("u", coating="none", het=5.0, disp=9.0)]
    assert flags_of(rows) == [set(), set()]


def test_off_stoichiometric_is_judged_against_comparable_runs_not_counting_error():
    rows = batch() + [row("e", li=0.52, li_err=0.001),    # 2 x floor: within the band
                      row("f", li=0.55, li_err=0.001),    # 5 x the floor 0.01
                      row("g", li=0.58, instrument="XR")]  # alone on its instrument
    f = flags_of(rows)
    assert f[4] == set()                                  # 20 counting errors away, not flagged
    assert f[5] == {"off_stoichiometric"}
    assert f[6] == {"off_stoichiometric"}                 # against NMC811's nominal 0.5
    reasons = flag_rows(rows, MATERIALS, PARAMS, RULES)
    assert ("Li/(Li+Ni+Co+Mn) = 0.58 is 0.080 above NMC811's nominal 0.5 (threshold "
            "max(0.03, 3 sigma) = 0.03)") in reasons[6]["flag_reasons"]
    assert "comparable NMC811 runs on XS" in reasons[5]["flag_reasons"]
    # ion ratios (field proxies) never make a run off-stoichiometric
    rows[0]["O2+/O+"] = 40.0
    assert flags_of(rows)[0] == set()


def test_off_stoichiometric_against_the_nominal_formula_and_the_batch():
    from dataclasses import replace

    params = StudyParams(ratios=("Li/(Li+Mn)", "Ni/(Ni+Co+Mn)", "Li/(Li+Ni+Co+Mn)",
                                 "O/(Li+O+Ni+Co+Mn)"), fda=FdaConfig(species=("Li+",)))
    # four LiMn2O4 runs all 0.05 off the nominal 1/3: the batch is no evidence against them,
    # the formula is
    lmo = [row(f"m{i}", material="LiMn2O4", present="Li+;Mn+;Mn++",
               pct={"Li": 14.0, "Ni": 0.0, "Co": 0.0, "Mn": 24.0},
               **{"Li/(Li+Mn)": 0.383 + 0.001 * i, "Li/(Li+Mn)_err": 0.002}) for i in range(4)]
    # coated NMC811 as the paper measured it: Ni 0.78, Li 0.49, O 0.45 (O lost): not flagged
    nmc = [row(f"c{i}", li=0.49, **{"Ni/(Ni+Co+Mn)": 0.78, "Ni/(Ni+Co+Mn)_err": 0.003,
                                      "O/(Li+O+Ni+Co+Mn)": 0.45}) for i in range(4)]
    rows = lmo + nmc

    def flags(rules):
        return [set(filter(None, f["flags"].split(";")))
                for f in flag_rows(rows, MATERIALS, params, rules)]
    got = flags(RULES)
    assert all("off_stoichiometric" in f for f in got[:4]), got
    assert all("off_stoichiometric" not in f for f in got[4:]), got
    first = flag_rows(rows, MATERIALS, params, RULES)[0]
    assert "Li/(Li+Mn) = 0.383 is 0.050 above LiMn2O4's nominal 0.333" in first["flag_reasons"]
    # the test's numbers, a column each: reference, score (here the departure), threshold
    key = "flag_off_stoichiometric_Li/(Li+Mn)_nominal"
    assert first[key + "_reference"] == pytest.approx(1 / 3)
    assert first[key + "_score"] == pytest.approx(0.383 - 1 / 3)
    assert first[key + "_threshold"] == pytest.approx(0.03)
    key = "flag_off_stoichiometric_Li/(Li+Mn)_batch"
    assert first[key + "_reference"] == pytest.approx(0.3845)
    assert first[key + "_score"] == pytest.approx((0.383 - 0.3845) / 0.01)
    assert first[key + "_threshold"] == 3.5
    # batch only: the LiMn2O4 runs agree with each other
    assert all("off_stoichiometric" not in f for f in flags(
        replace(RULES, off_stoichiometric_reference="batch")))
    # O judged only when asked: 0.05 below NMC811's 0.5
    with_o = flags(replace(RULES, off_stoichiometric_oxygen=True))
    assert all("off_stoichiometric" in f for f in with_o[4:])


def test_the_off_stoichiometric_settings_are_read_from_the_manifest(tmp_path):
    from liprobe.study import ManifestError, load_manifest

    base = ('[study]\nratios = ["Li/(Li+Mn)"]\n[study.flags]\n{}\n[[runs]]\nname = "a"\n'
            'data = "a.pos"\nranges = "a.rrng"\nmaterial = "LiMn2O4"\n')
    ok = tmp_path / "ok.toml"
    ok.write_text(base.format('off_stoichiometric_reference = "nominal"\n'
                              'off_stoichiometric_oxygen = true\noff_stoichiometric_min = 0.05'))
    rules = load_manifest(ok).rules
    assert (rules.off_stoichiometric_reference, rules.off_stoichiometric_oxygen,
            rules.off_stoichiometric_min) == ("nominal", True, 0.05)
    for bad, what in (('off_stoichiometric_reference = "median"', "nominal"),
                      ("off_stoichiometric_oxygen = 1", "true or false")):
        f = tmp_path / "bad.toml"
        f.write_text(base.format(bad))
        with pytest.raises(ManifestError, match=what):
            load_manifest(f)


def test_delithiated_runs_do_not_move_the_stoichiometric_band():
    rows = batch() + [row(f"u{i}", coating="none", het=0.9, li=0.30) for i in range(5)]
    f = flags_of(rows)
    assert f[:4] == [set()] * 4        # five delithiated runs would otherwise set the median
    # their Li ratio (0.30) is judged once, by delithiated against the coated runs (was: also
    # off_stoichiometric, the same deficit twice)
    assert all(x == {"delithiated"} for x in f[4:])


def test_other_phase_names_the_phase_that_fits():
    mn = row("mn", present="Li+;Mn+;Mn++", pct={"Li": 14.0, "Ni": 0.02, "Co": 0.0, "Mn": 29.0})
    out = flag_rows(batch() + [mn], MATERIALS, PARAMS, RULES)
    assert out[-1]["best_phase"] == "LiMn2O4"
    assert "other_phase" in out[-1]["flags"]
    assert "no peak of Ni, Co (expected in NMC811)" in out[-1]["flag_reasons"]
    assert all(o["best_phase"] == "NMC811" and "other_phase" not in o["flags"] for o in out[:4])


def test_a_delithiated_nmc_is_not_another_phase():
    # Li lost, ratios off, but Ni and Co are there: LiMn2O4 would lack them
    r = row("u", pct={"Li": 5.0, "Ni": 30.0, "Co": 4.0, "Mn": 4.0})
    out = flag_rows(batch() + [r], MATERIALS, PARAMS, RULES)
    assert out[-1]["best_phase"] == "NMC811" and "other_phase" not in out[-1]["flags"]


def test_a_grain_inside_a_run_is_another_phase_with_where_it_is():
    grain = {"grain_volume_nm3": 2706.1, "grain_ion_fraction": 0.0213,
             "grain_depth_min_nm": -26.0,
             "grain_depth_max_nm": -8.4, "grain_Li/(Li+Mn)": 0.33, "grain_Li/(Li+Mn)_err": 0.002,
             "grain_Ni/(Ni+Co+Mn)": 0.015, "grain_O/(Li+O+Ni+Co+Mn)": 0.57}
    rows = batch() + [row("g", **grain), row("h", grain_volume_nm3=None)]
    out = flag_rows(rows, MATERIALS, PARAMS, RULES)
    assert "other_phase" in out[4]["flags"] and "other_phase" not in out[5]["flags"]
    why = out[4]["flag_reasons"]
    assert ("a grain of another phase at z -8.4 to -26 nm, 2,706 nm^3 (2.1 % of the analysed "
            "ions), Li/(Li+Mn) 0.33, "
            "Ni/(Ni+Co+Mn) 0.015: closest to LiMn2O4's nominal ratios") in why
    assert "O/(" not in why                     # O is left out of the phase's fingerprint
    assert out[4]["best_phase"] == "NMC811"      # the run itself still fits its material


def test_early_fracture_from_the_manifest_or_the_data_and_the_yield():
    rows = batch()
    rows[0]["tag_outcome"] = "fractured"
    rows[1]["abrupt_end"] = True
    rows[1]["abrupt_end_evidence"] = "a burst"
    rows.append({"run": "x", "status": "failed", "coating": "Cr"})
    out = flag_rows(rows, MATERIALS, PARAMS, RULES)
    assert out[0]["flags"] == "early_fracture" and "tags.outcome" in out[0]["flag_reasons"]
    assert out[1]["flag_reasons"] == "early_fracture: the run ends abruptly: a burst."
    for r, o in zip(rows, out):
        r.update(o)
    assert yield_table(rows) == [{"coating": "Cr", "runs": 5, "complete": 2, "fractured": 2,
                                  "unknown": 1, "yield": 0.5}]


def test_failed_rows_are_not_judged_and_do_not_count_as_reference():
    rows = batch() + [{"run": "x", "status": "failed", "coating": "Cr"}]
    assert flags_of(rows)[-1] == set()


def test_stoichiometry_and_nominal_ratios():
    assert parse_stoichiometry("LiNi0.8Co0.1Mn0.1O2") == {"Li": 1, "Ni": 0.8, "Co": 0.1,
                                                          "Mn": 0.1, "O": 2}
    assert ratio_of_formula("Li/(Li+Ni+Co+Mn)", "LiNi0.8Co0.1Mn0.1O2") == pytest.approx(0.5)
    assert ratio_of_formula("Li/(Li+Mn)", "LiMn2O4") == pytest.approx(1 / 3)
    assert ratio_of_formula("O2+/O+", "LiMn2O4") is None
    with pytest.raises(ValueError):
        parse_stoichiometry("LiQq2")


def test_match_phases_ranks_by_missing_elements_then_distance():
    phases = {"NMC811": {"Li": 1, "Ni": 0.8, "Co": 0.1, "Mn": 0.1}, "LMO": {"Li": 1, "Mn": 2}}
    m = match_phases({"Li": 0.5, "Ni": 0.4, "Co": 0.05, "Mn": 0.05}, {"Li", "Ni", "Co", "Mn"},
                     phases)
    assert [x.phase for x in m] == ["NMC811", "LMO"] and m[0].distance == pytest.approx(0)
    assert m[1].extra == ("Ni", "Co")
    m = match_phases({"Li": 0.3, "Mn": 0.7}, {"Li", "Mn"}, phases)
    assert m[0].phase == "LMO" and m[1].missing == ("Ni", "Co")


def test_presence_finds_a_peak_on_a_flat_background_and_not_a_window_of_background():
    rng = np.random.default_rng(0)
    bg = rng.uniform(1, 100, 20_000)                  # 200 ions per Da
    peak = rng.normal(30.0, 0.02, 300)
    weak = rng.normal(50.0, 0.02, 15)                 # 15 over ~60 background: 2 sigma
    mass = np.concatenate([bg, peak, weak]).astype(np.float32)
    table = RangeTable.from_ranges([Range(29.85, 30.15, parse_ion("Si++")),
                                    Range(49.85, 50.15, parse_ion("Mn++")),
                                    Range(69.85, 70.15, parse_ion("Ga+"))])
    p = ion_presence(mass, table)
    assert p.present_ions() == ("Si++",)
    assert set(p.absent_ions()) == {"Mn++", "Ga+"}
    assert p.background[2] == pytest.approx(60, rel=0.3)
    assert ion_presence(mass, table, sigma=1).present_ions() == ("Si++", "Mn++")


def _crowded_table():
    """An ion with five windows among many ranged windows, as NiO2+ among an NMC811 range
    file's Ni, Co, Cr and Mn oxides."""
    ranges = [Range(m - 0.45, m + 0.45, parse_ion("NiO2+")) for m in (90, 92, 93, 94, 96)]
    ranges += [Range(m - 0.4, m + 0.4, parse_ion("CoO2+")) for m in (91,)]
    ranges += [Range(m - 0.4, m + 0.4, parse_ion("MnO2+")) for m in (87,)]
    ranges += [Range(m - 0.4, m + 0.4, parse_ion("CrO2+")) for m in (84, 85, 86, 88)]
    return RangeTable.from_ranges(sorted(ranges, key=lambda r: r.lo))


def test_presence_does_not_take_a_low_flat_background_for_a_peak():
    # a few ions per Da (8), the ion's windows only background: reading the lower of two
    # noisy side bands made this "present" (NiO2+ in a LiMn2O4 run); pooled agreeing bands
    # and the background's own error keep the false positives at the sigma's rate
    table = _crowded_table()
    false = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        mass = rng.uniform(80, 100, 160).astype(np.float32)
        p = ion_presence(mass, table)
        false += "NiO2+" in p.present_ions()
        b = dict(zip(p.ions, p.background))["NiO2+"]
        assert b == pytest.approx(8 * 4.5, rel=0.6)
    assert false <= 1


def test_presence_finds_a_weak_peak_on_a_strong_neighbours_tail():
    # a tail running down from a strong peak (toward higher m/n) under a weaker peak: 1,260
    # tail ions in its window; the interpolated level is ~10 % high (an exponential's mean over
    # a band lies above its value at the band's centre): 400 ions are found, ~7 sigma
    rng = np.random.default_rng(3)
    strong = 40.0 + rng.exponential(0.6, 20_000)
    flat = rng.uniform(30, 60, 600)
    weak = rng.normal(41.0, 0.02, 400)
    mass = np.concatenate([strong, flat, weak]).astype(np.float32)
    table = RangeTable.from_ranges([Range(39.9, 40.1, parse_ion("Ca+")),
                                    Range(40.9, 41.1, parse_ion("K+"))])
    assert "K+" in ion_presence(mass, table).present_ions()
    # and the tail alone is no peak: the level under the window is interpolated (in log)
    # between the bands, not the lower band's (which read the tail as 2.4 times background)
    for seed in range(5):
        rng = np.random.default_rng(10 + seed)
        no_weak = np.concatenate([40.0 + rng.exponential(0.6, 20_000),
                                  rng.uniform(30, 60, 600)]).astype(np.float32)
        p = ion_presence(no_weak, table)
        assert "K+" not in p.present_ions(), p.to_dict()["K+"]
