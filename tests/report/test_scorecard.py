"""The scorecard of the paper's nine claims and the recovery table (liprobe.report.scorecard).

The rules are checked on synthetic study tables whose values are chosen by hand, so
that each claim's status is known before the function runs; the recovery table on
hand-made truth dicts; the files on a tiny simulated study (tests/conftest.py) and on
the report's shared small demo.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from liprobe.report.scorecard import (
    HOWS,
    LI_BUDGET_PARTS,
    STATUSES,
    claim_how,
    constant_metadata,
    li_budget_closes,
    names_observable,
    recovery_table,
    scorecard,
    write_scorecard,
)

#: A simulator's metadata for the synthetic tests: which constants are fitted to what.
METADATA = {
    "evaporation:heating_k_per_pj": {"status": "fitted", "source": "so that O2+/O+ is 2.61"},
    "evaporation:breakup_field_v_nm": {"status": "assumed", "source": "O2+/O+ break-up"},
    "evaporation:desorption_log_prefactor": {"status": "assumed", "source": "O2 desorption"},
    "evaporation:cooling_time_ns": {"status": "fitted",
                                    "source": "fitted to the long tails of uncoated NMC811"},
    "evaporation:direct_log_prefactor": {"status": "sourced", "source": "a handbook"},
    "lithium:li_diffusivity_300k_nm2_s": {
        "status": "fitted", "source": "fitted so that Li/(Li+Ni+Co+Mn) is below 0.35 at 5 "
                                      "pJ in uncoated NMC811"},
    "lithium:coating_screening": {"status": "assumed", "source": "no measured value"},
}


def _wiggle(i, size):
    """A deterministic scatter: +size, -size, +size/2, -size/2, ..."""
    return size * (1 if i % 2 == 0 else -1) / (1 + (i // 2) % 2)


def _study() -> pd.DataFrame:
    """A study table on which every claim is reproduced (the paper's values, and
    LiMn2O4 at Li/(Li+Mn) = 0.40)."""
    rows = []
    i = 0
    for pj in (5, 10, 15, 20):
        for k in range(2):
            i += 1
            rows.append({"run": f"u-{pj}-{k}", "material": "NMC811", "coating": "none",
                         "laser_pj": float(pj), "flags": "delithiated",
                         "li_map_heterogeneity": 0.01 * pj + _wiggle(i, 0.001),
                         "li_map_heterogeneity_err": 0.002,
                         "fda_mu_Li+": 0.9 + _wiggle(i, 0.02), "fda_mu_shuffled_Li+": 0.05
                         + _wiggle(i, 0.005),
                         "O2+/O+": 2.6 + 0.05 * (pj - 5) + _wiggle(i, 0.02), "O2+/O+_err": 0.05,
                         "Li/(Li+Ni+Co+Mn)": 0.3 + 0.02 * pj, "Ni/(Ni+Co+Mn)": 0.8,
                         "O/(Li+O+Ni+Co+Mn)": 0.45,
                         "tail_ns_O+": 6.0 + _wiggle(i, 0.2), "mrp_fw10_O+": 300 + _wiggle(i, 5),
                         "peaks_present": "Li+;O+;Ni++;Co+;Mn+"})
    for pj in (5, 10, 15, 20, 30, 40, 50):
        for k in range(2):
            i += 1
            r = 2.6 + 0.05 * (pj - 5) + _wiggle(i, 0.02)
            rows.append({"run": f"c-{pj}-{k}", "material": "NMC811", "coating": "Cr",
                         "laser_pj": float(pj), "flags": "",
                         "fda_mu_Li+": 0.5 + _wiggle(i, 0.02), "fda_mu_shuffled_Li+": 0.05
                         + _wiggle(i, 0.005),
                         "O2+/O+": r, "O2+/O+_err": 0.05,
                         "Li/(Li+Ni+Co+Mn)": 0.5 + _wiggle(i, 0.005),
                         "Li/(Li+Ni+Co+Mn)_err": 0.005,
                         "Ni/(Ni+Co+Mn)": 0.78 + _wiggle(i, 0.003),
                         "O/(Li+O+Ni+Co+Mn)": (0.5 if r < 4 else 0.45) + _wiggle(i, 0.003),
                         "tail_ns_O+": 1.2 + _wiggle(i, 0.05), "mrp_fw10_O+": 500 + _wiggle(i, 5),
                         "peaks_present": "Li+;O+;Ni++;Co+;Mn+;Cr+"})
    for pj in (10, 12, 15, 20):
        rows.append({"run": f"mn-{pj}", "material": "NMC811", "coating": "Cr",
                     "laser_pj": float(pj), "flags": "off_stoichiometric;other_phase",
                     "best_phase": "LiMn2O4", "Mn++/Mn+": 1.0 + 0.1 * pj, "Mn++/Mn+_err": 0.05,
                     "peaks_present": "H+;Li+;O+;Mn++;O2+;Mn+;MnO+"})
    for j, pj in enumerate((1, 5, 10, 20)):
        rows.append({"run": f"lmo-{pj}", "material": "LiMn2O4", "coating": "Cr",
                     "laser_pj": float(pj), "flags": "",
                     "Li/(Li+Mn)": 0.40 + _wiggle(j, 0.004), "Mn/(Li+Mn)": 0.60 - _wiggle(j, 0.004),
                     "Li/(Li+Mn)_err": 0.004, "Mn/(Li+Mn)_err": 0.004})
    t = pd.DataFrame(rows)
    t.insert(1, "segment", pd.array([pd.NA] * len(t), dtype="Int64"))
    t["status"] = "ok"
    return t


def _by_claim(results) -> dict:
    return {r.claim: r for r in results}


def test_every_claim_is_reproduced_on_a_table_built_to_the_papers_values():
    res = scorecard(_study(), metadata=METADATA)
    assert [r.claim for r in res] == list(range(1, 10))
    assert {r.claim: r.status for r in res} == dict.fromkeys(range(1, 10), "reproduced")
    c = _by_claim(res)
    assert c[2].measured["uncoated"] == pytest.approx(0.9, abs=0.02)
    assert c[2].measured["coated"] == pytest.approx(0.5, abs=0.02)
    assert c[3].measured["coated_high_laser"] > 4
    assert c[4].measured["Li/(Li+Ni+Co+Mn)"] == pytest.approx(0.5, abs=0.005)
    assert c[8].measured["rows without Ni or Co peaks"] == 4
    assert c[9].measured["Li/(Li+Mn)"] == pytest.approx(0.40, abs=0.005)
    for r in res:
        assert r.status in STATUSES and r.how in HOWS and r.explanation


def test_how_comes_from_the_declared_constants_not_from_the_data():
    c = _by_claim(scorecard(_study(), metadata=METADATA))
    assert c[3].how == "fitted"          # heating_k_per_pj: fitted, source names O2+/O+
    assert c[7].how == "fitted"          # cooling_time_ns: fitted to the tails
    assert c[6].how == "emergent"        # desorption: assumed here
    assert c[8].how == "emergent"        # direct_*: sourced here
    assert c[1].how == "emergent"        # the Li constant's source names no detector map
    assert c[4].how == "emergent"        # fitted to the *uncoated* Li ratio, not the coated
    assert c[5].how == "emergent"        # no constant declared
    assert ("evaporation:heating_k_per_pj", "fitted") in c[3].constants
    # the same table with claim 4's observable named in a fitted constant: fitted
    md = dict(METADATA, **{"lithium:coating_screening": {
        "status": "fitted", "source": "fitted so that coated Li/(Li+Ni+Co+Mn) stays 0.5"}})
    assert _by_claim(scorecard(_study(), metadata=md))[4].how == "fitted"


def test_claim_how_reads_the_installed_simulators_metadata():
    md = constant_metadata()
    assert md["evaporation:heating_k_per_pj"]["status"] == "fitted"
    assert any(k.startswith("lithium:") for k in md)
    how, constants, _ = claim_how(3, md)
    assert how == "fitted" and constants
    assert claim_how(5, md)[0] == "emergent"


def test_names_observable_reads_clause_by_clause():
    src = "fitted so that Li/(Li+Ni+Co+Mn) is below 0.35 at 5 pJ in uncoated NMC811"
    assert not names_observable(src, 4)
    assert names_observable("Foo. Coated: Li/(Li+Ni+Co+Mn) kept at 0.5", 4)
    assert names_observable("so that O2+/O+ goes from ~2.6 at 5 pJ", 3)
    assert not names_observable("so that O2+/O+ goes from ~2.6 at 5 pJ", 6)


@pytest.mark.parametrize("drop,claim,status", [
    (["li_map_heterogeneity", "li_map_heterogeneity_err"], 1, "not"),
    (["fda_mu_Li+"], 2, "not"),
    (["O2+/O+"], 3, "not"),
    (["Li/(Li+Ni+Co+Mn)"], 4, "not"),
    (["Ni/(Ni+Co+Mn)"], 5, "not"),
    (["O/(Li+O+Ni+Co+Mn)"], 6, "not"),
    (["tail_ns_O+"], 7, "not"),             # named as tail_ns_<ion>
    (["Li/(Li+Mn)"], 9, "not"),
    (["peaks_present"], 8, "partly"),
])
def test_a_missing_column_gives_its_claim_not_and_says_which(drop, claim, status):
    res = _by_claim(scorecard(_study().drop(columns=drop), metadata=METADATA))
    r = res[claim]
    assert r.status == status
    assert "column missing" in r.explanation
    assert drop[0] in r.explanation or drop[0].replace("O+", "<ion>") in r.explanation
    if status == "not":
        assert r.how == "not_reproduced"


def test_the_li_map_claim_without_its_column_is_not_column_missing():
    r = scorecard(_study().drop(columns=["li_map_heterogeneity"]), metadata=METADATA)[0]
    assert (r.claim, r.status, r.how) == (1, "not", "not_reproduced")
    assert r.explanation.startswith("column missing")


def test_the_li_map_claim_reads_the_rim_over_the_core_and_takes_the_best_measure():
    t = _study()
    unc = t["coating"] == "none"
    pj = t.loc[unc, "laser_pj"].to_numpy(float)
    # a rim that grows with laser energy; the core disc's heterogeneity flat
    t.loc[unc, "li_rim_core_ratio"] = 1.0 + 0.01 * pj
    t.loc[unc, "li_rim_core_ratio_err"] = 0.005
    t.loc[unc, "li_map_heterogeneity"] = 0.003
    r = scorecard(t, metadata=METADATA)[0]
    assert r.status == "reproduced", r.explanation
    assert r.measured["li_rim_core_ratio spearman_rho"] == pytest.approx(1.0)
    assert "li_map_heterogeneity" in r.explanation
    # a falling rim and a flat core: not
    t.loc[unc, "li_rim_core_ratio"] = 2.0 - 0.01 * pj
    assert scorecard(t, metadata=METADATA)[0].status == "not"


def test_a_table_of_nothing_but_nan_never_raises():
    t = _study()
    for c in t.columns:
        if c not in ("run", "segment", "material", "coating", "status", "flags", "laser_pj"):
            t[c] = np.nan
    res = scorecard(t, metadata=METADATA)
    assert len(res) == 9
    assert {r.status for r in res if r.claim != 8} == {"not"}
    # an empty table, and one without the study's columns
    assert {r.status for r in scorecard(t.iloc[:0], metadata=METADATA)} == {"not"}
    assert {r.status for r in scorecard(pd.DataFrame({"x": [1.0]}), metadata=METADATA)} \
        == {"not"}


def test_claim_2_is_partly_when_uncoated_is_only_a_little_above_coated():
    t = _study()
    t.loc[t["coating"] == "none", "fda_mu_Li+"] = 0.52 + np.array(
        [_wiggle(i, 0.02) for i in range(8)])
    r = _by_claim(scorecard(t, metadata=METADATA))[2]
    assert r.status == "partly" and "3 combined errors" in r.explanation


def test_claim_2_is_partly_when_uncoated_mu_is_at_its_shuffled_baseline():
    t = _study()
    t.loc[t["coating"] == "none", "fda_mu_shuffled_Li+"] = 0.9
    assert _by_claim(scorecard(t, metadata=METADATA))[2].status == "partly"


def test_claim_3_is_partly_when_the_high_laser_ratio_stays_below_4():
    t = _study()
    coated = t["coating"] == "Cr"
    t.loc[coated & (t["laser_pj"] >= 40), "O2+/O+"] = 3.5
    r = _by_claim(scorecard(t, metadata=METADATA))[3]
    assert r.status == "partly" and "above 4" in r.explanation


def test_claim_4_is_partly_when_the_li_ratio_drifts_with_the_field():
    t = _study()
    coated = (t["coating"] == "Cr") & (t["material"] == "NMC811") & (t["flags"] == "")
    t.loc[coated, "Li/(Li+Ni+Co+Mn)"] = 0.47 + 0.04 * (t.loc[coated, "O2+/O+"] - 2.6)
    r = _by_claim(scorecard(t, metadata=METADATA))[4]
    assert r.status == "partly"
    assert r.measured["change_over_field_range"] > 0.05


def test_claim_5_at_the_nominal_ratio_is_partly():
    t = _study()
    t.loc[t["coating"] == "Cr", "Ni/(Ni+Co+Mn)"] = 0.805
    assert _by_claim(scorecard(t, metadata=METADATA))[5].status == "partly"
    t.loc[t["coating"] == "Cr", "Ni/(Ni+Co+Mn)"] = 0.9
    assert _by_claim(scorecard(t, metadata=METADATA))[5].status == "not"


def test_claim_6_uses_only_the_rows_below_o2_o_4():
    t = _study()
    high = t["O2+/O+"] >= 4
    t.loc[high, "O/(Li+O+Ni+Co+Mn)"] = 0.3         # far off where the paper says nothing
    assert _by_claim(scorecard(t, metadata=METADATA))[6].status == "reproduced"
    t.loc[~high & (t["coating"] == "Cr"), "O/(Li+O+Ni+Co+Mn)"] = 0.4
    assert _by_claim(scorecard(t, metadata=METADATA))[6].status == "not"


def test_claim_7_is_partly_when_only_the_tails_are_shorter():
    t = _study()
    t.loc[t["coating"] == "Cr", "mrp_fw10_O+"] = 300 + np.array(
        [_wiggle(i, 5) for i in range(int((t["coating"] == "Cr").sum()))])
    r = _by_claim(scorecard(t, metadata=METADATA))[7]
    assert r.status == "partly" and "not 3 errors higher" in r.explanation


def test_claim_8_needs_the_other_phase_rows_and_a_rising_mn_ratio():
    t = _study()
    t.loc[t["run"].str.startswith("mn-"), "Mn++/Mn+"] = [3.0, 2.5, 2.0, 1.5]
    assert _by_claim(scorecard(t, metadata=METADATA))[8].status == "partly"
    t = _study()
    t.loc[t["run"] == "mn-10", "peaks_present"] = "Li+;O+;Mn+;NiO+"
    assert _by_claim(scorecard(t, metadata=METADATA))[8].status == "partly"
    t = _study()
    t["flags"] = t["flags"].str.replace("other_phase", "")
    r = _by_claim(scorecard(t, metadata=METADATA))[8]
    assert (r.status, r.how) == ("not", "not_reproduced")


def test_claim_9_is_not_when_limn2o4_is_stoichiometric():
    t = _study()
    lmo = t["material"] == "LiMn2O4"
    t.loc[lmo, "Li/(Li+Mn)"] = 1 / 3 + np.array([_wiggle(i, 0.004) for i in range(4)])
    assert _by_claim(scorecard(t, metadata=METADATA))[9].status == "not"


def test_claim_9_off_stoichiometry_set_by_the_input_is_fitted_not_emergent():
    t = _study()
    truths = {f"lmo-{pj}": _truth(li_mn=(0.4, 0.6)) for pj in (1, 5, 10, 20)}
    r = _by_claim(scorecard(t, truths, metadata=METADATA))[9]
    assert (r.status, r.how) == ("reproduced", "fitted")
    truths = {f"lmo-{pj}": _truth(li_mn=(1.0, 2.0)) for pj in (1, 5, 10, 20)}
    r = _by_claim(scorecard(t, truths, metadata=METADATA))[9]
    assert (r.status, r.how) == ("reproduced", "emergent")


# -- the recovery table -------------------------------------------------------------------

def _truth(li_mn=None, budget=None, segments=1, coating=True) -> dict:
    """A truth dict as run.truth.json holds it: an NMC811 phase (Li 500, Ni 400, Co 50,
    Mn 50, O 900 atoms evaporated) and a CrO shell (Cr 300, O 300), or LiMn2O4."""
    if li_mn is not None:
        oxide = {"Li": li_mn[0] * 1000, "Mn": li_mn[1] * 1000, "O": 4000}
    else:
        oxide = {"Li": 500, "Ni": 400, "Co": 50, "Mn": 50, "O": 900}
    by_phase = {"oxide": {"atoms": oxide}}
    phases = [{"name": "oxide", "kind": "material"}]
    if coating:
        by_phase["Cr coating"] = {"atoms": {"Cr": 300, "O": 300}}
        phases.append({"name": "Cr coating", "kind": "coating"})
    segs = []
    for k in range(segments):
        total = sum(oxide.values()) + (600 if coating else 0)
        frac = {el: n / total for el, n in oxide.items()}
        if coating:
            frac["Cr"] = 300 / total
            frac["O"] = (oxide["O"] + 300) / total
        segs.append({"index": k, "laser_pj": 5.0 * (k + 1), "start_ion": 100 * k,
                     "stop_ion": 100 * (k + 1), "evaporated_atomic_fractions": frac,
                     "ratios": {"O2+/O+ (detected)": 2.5 + k},
                     "operating": {"oxide_field_v_nm": 26.0 - k, "coating_field_v_nm": 21.0 - k},
                     **({"li_budget": budget} if budget is not None and segments > 1 else {})})
    t = {"composition": {"evaporated": {"by_phase": by_phase}}, "phases": phases,
         "segments": segs, "ratios": {"O2+/O+ (detected)": 2.5},
         "coating": {"element": "Cr", "thickness_nm": 5.0, "lateral_thickness_nm": 5.1}
         if coating else None}
    if budget is not None:
        t["li_budget"] = budget
    return t


BUDGET = {"total": 1000, "detected": 520, "lost_to_efficiency": 380, "background": 0,
          "outside_field_of_view": 60, "remaining": 40}


def test_li_budget_closes_when_its_five_parts_sum_to_the_total():
    assert li_budget_closes(BUDGET) is True
    assert li_budget_closes(dict(BUDGET, remaining=41)) is False
    assert li_budget_closes({k: v for k, v in BUDGET.items() if k != "background"}) is None
    assert li_budget_closes(None) is None


def test_the_recovery_table_puts_the_truth_beside_the_measured_values():
    table = pd.DataFrame({
        "run": ["a", "b", "m", "m"], "segment": pd.array([pd.NA, pd.NA, 0, 1], dtype="Int64"),
        "material": "NMC811", "coating": ["Cr", "none", "Cr", "Cr"],
        "laser_pj": [5.0, 5.0, 5.0, 10.0], "status": "ok",
        "Li/(Li+Ni+Co+Mn)": [0.49, 0.3, 0.5, 0.5], "Li/(Li+Ni+Co+Mn)_err": 0.01,
        "O/(Li+O+Ni+Co+Mn)": [0.46, 0.4, 0.47, 0.47], "O2+/O+": [2.6, 2.7, 2.6, 3.4],
        "coating_thickness_nm": [10.5, np.nan, 10.0, 10.0],
        "kingham_field_cr_v_nm": [21.2, np.nan, 21.1, 20.1]})
    truths = {"a": _truth(budget=BUDGET), "b": _truth(coating=False),
              "m[0]": _truth(segments=2, budget=BUDGET), "m[1]": _truth(segments=2)}
    rec = recovery_table(None, table, truths=truths, range_bias=False)
    assert list(rec["row"]) == ["a", "b", "m[0]", "m[1]"]
    a = rec.iloc[0]
    # the coating's Cr and O are not the oxide's: 500 / (500 + 400 + 50 + 50), 900 / 1900
    assert a["true_Li/(Li+Ni+Co+Mn)"] == pytest.approx(0.5)
    assert a["true_Ni/(Ni+Co+Mn)"] == pytest.approx(0.8)
    assert a["true_O/(Li+O+Ni+Co+Mn)"] == pytest.approx(900 / 1900)
    assert a["measured_Li/(Li+Ni+Co+Mn)"] == 0.49 and a["measured_Li/(Li+Ni+Co+Mn)_err"] == 0.01
    assert a["true_O2+/O+"] == 2.5 and a["measured_O2+/O+"] == 2.6
    assert a["true_oxide_field_v_nm"] == 26.0 and math.isnan(a["measured_oxide_field_v_nm"])
    assert a["true_coating_field_v_nm"] == 21.0 and a["measured_coating_field_v_nm"] == 21.2
    assert a["true_coating_thickness_nm"] == 5.0 and a["measured_coating_thickness_nm"] == 10.5
    assert math.isnan(a["range_bias_Li/(Li+Ni+Co+Mn)"])
    for k, v in BUDGET.items():
        assert rec.loc[0, f"li_budget_{k}"] == v
    assert bool(rec.loc[0, "li_budget_closes"]) is True
    # no budget in the truth (an older series): empty cells, not an error
    assert rec.loc[1, "li_budget_total"] is pd.NA and rec.loc[1, "li_budget_closes"] is pd.NA
    assert rec.loc[1, "true_coating_thickness_nm"] == 0.0
    # segments: each its own truth segment (the coating's share taken out of its fractions)
    seg = rec.iloc[3]
    assert seg["true_O2+/O+"] == 3.5 and seg["true_oxide_field_v_nm"] == 25.0
    assert seg["true_O/(Li+O+Ni+Co+Mn)"] == pytest.approx(900 / 1900)
    assert rec.loc[2, "li_budget_total"] == 1000 and rec.loc[3, "li_budget_total"] is pd.NA
    assert {f"li_budget_{p}" for p in LI_BUDGET_PARTS} <= set(rec.columns)


def test_a_row_without_truth_has_empty_true_cells():
    table = pd.DataFrame({"run": ["x"], "status": ["ok"], "material": ["NMC811"],
                          "coating": ["Cr"], "laser_pj": [5.0], "Li/(Li+Ni+Co+Mn)": [0.5]})
    rec = recovery_table(None, table, truths={}, range_bias=False)
    assert len(rec) == 1 and math.isnan(rec.loc[0, "true_Li/(Li+Ni+Co+Mn)"])
    assert rec.loc[0, "measured_Li/(Li+Ni+Co+Mn)"] == 0.5


# -- files ---------------------------------------------------------------------------------

def test_write_scorecard_writes_both_files_atomically(tmp_path, monkeypatch):
    import liprobe.io._files as files

    written = []
    real = files.atomic_write_text

    def spy(path, text):
        written.append(os.path.basename(path))
        real(path, text)

    monkeypatch.setattr(files, "atomic_write_text", spy)
    claims, rec, paths = write_scorecard(tmp_path, _study(), range_bias=False)
    assert sorted(written) == ["recovery.csv", "scorecard.json"]
    assert sorted(os.listdir(tmp_path)) == ["recovery.csv", "scorecard.json"]   # no temp left
    with open(paths["scorecard"]) as f:
        data = json.load(f)
    assert [d["claim"] for d in data] == list(range(1, 10))
    for d in data:
        assert {"claim", "paper_value", "measured", "error", "status", "how",
                "explanation"} <= set(d)
    back = pd.read_csv(paths["recovery"])
    assert len(back) == len(_study()) and "li_budget_closes" in back


def test_the_tiny_study_gets_a_scorecard_and_a_recovery_row(tiny):
    from liprobe.report import build_report

    r = build_report(tiny / "out", manifest=tiny / "study.toml")
    assert len(r.scorecard) == 9
    with open(r.tables["scorecard"]) as f:
        assert len(json.load(f)) == 9
    rec = pd.read_csv(r.tables["recovery"])
    assert list(rec["row"]) == ["cr-5"]
    assert abs(rec.loc[0, "true_Ni/(Ni+Co+Mn)"] - rec.loc[0, "measured_Ni/(Ni+Co+Mn)"]) < 0.05
    assert rec.loc[0, "true_coating_thickness_nm"] > 0
    html = open(r.html, encoding="utf-8").read()
    body = html[html.index("<body>"):]
    assert body.index('id="scorecard"') < body.index("<nav>") < body.index('id="glance"')
    assert "This is a recovery test" in html


def test_the_demo_writes_the_scorecard_and_the_recovery_table(demo):
    with open(demo.out / "scorecard.json") as f:
        claims = json.load(f)
    assert [c["claim"] for c in claims] == list(range(1, 10))
    assert all(c["status"] in STATUSES and c["how"] in HOWS for c in claims)
    rec = pd.read_csv(demo.out / "recovery.csv")
    assert len(rec) == len(demo.table)
    assert rec["true_Li/(Li+Ni+Co+Mn)"].notna().all()
    coated = rec["coating"] == "Cr"
    assert (rec.loc[coated, "true_coating_thickness_nm"] > 0).all()
    assert rec["range_bias_Li/(Li+Ni+Co+Mn)"].notna().any()
    budget = rec["li_budget_total"].notna()
    if budget.any():            # a series written by a simulator that keeps the Li budget
        assert rec.loc[budget, "li_budget_closes"].astype(bool).all()
    assert demo.summary["scorecard"] and len(demo.summary["scorecard"]) == 9
