"""`liprobe report` on a study folder that was tampered with: one line, never a traceback
(issue 27)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from liprobe.cli import cli
from liprobe.study.cache import MEMO_NAME


def _report(d, manifest: bool = False):
    """``liprobe report`` of the copy ``d``; with ``manifest``, its runs (and the truth
    beside each) are the copy's own, not those its cache records name (the base's)."""
    extra = ["--manifest", str(d / "study.toml")] if manifest else []
    return CliRunner().invoke(cli, ["report", str(d / "out"), "-q", "--json", *extra])


def _warnings(res):
    return [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]


def _ok(res):
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_summary_json_a_list_is_one_warning(tiny):
    (tiny / "out" / "summary.json").write_text("[]")
    res = _report(tiny)
    _ok(res)
    (w,) = _warnings(res)
    assert "summary.json: ignored (not a JSON object but list)" in w
    assert (tiny / "out" / "report.html").exists()


@pytest.mark.parametrize("text", ["[]", '"x"', "RESULT5", "{", "EDITED"])
def test_a_malformed_cache_record_is_skipped_with_one_warning(tiny, text):
    (rec,) = [p for p in (tiny / "out" / "cache").glob("*.json") if p.name != MEMO_NAME]
    if text == "RESULT5":
        text = json.dumps({"key": rec.stem, "result": 5})
    elif text == "EDITED":
        d = json.loads(rec.read_text())
        d["result"]["values"]["ions"] += 1
        text = json.dumps(d)
    rec.write_text(text)
    res = _report(tiny)
    _ok(res)
    (w,) = _warnings(res)                  # once, though the records are read twice
    assert str(rec) in w and w.endswith("; skipped")


@pytest.mark.parametrize("where", ["multihit", "reconstruction", "field", "inputs", "list",
                                   "atoms"])
def test_a_truth_file_with_a_string_for_a_number_is_no_traceback(tiny, where):
    p = tiny / "cr-5.truth.json"
    t = json.loads(p.read_text())
    if where == "multihit":
        t["inputs"]["multihit"]["detection_rate"] = "fast"
    elif where == "reconstruction":
        t["reconstruction_parameters"]["k_factor"] = "three"
    elif where == "field":
        t["segments"][0]["field"]["oxide_mean_v_nm"] = "high"
        t["segments"][0]["laser_pj"] = "five"
    elif where == "inputs":
        t["inputs"] = "none"
    elif where == "atoms":              # the recovery table's true ratios of the run
        comp = t["composition"].get("analysed_volume") or t["composition"]["evaporated"]
        for c in comp["by_phase"].values():
            c["atoms"]["Ni"] = "many"
    else:
        t = [t]
    p.write_text(json.dumps(t))
    res = _report(tiny, manifest=True)
    _ok(res)
    assert (tiny / "out" / "report.html").exists()
    html = (tiny / "out" / "report.html").read_text()
    # the page's text, without its scripts (plotly.js holds the word "fast")
    text = re.sub(r"<script\b[^>]*>.*?</script>", " ", html, flags=re.S)
    if where == "multihit":        # the reporting table: no detection rate, not a crash
        assert "fast" not in text and "reporting" in text
    if where == "atoms":                # no true value from a damaged truth
        import pandas as pd

        rec = pd.read_csv(tiny / "out" / "recovery.csv")
        assert len(rec) == 1 and pd.isna(rec["true_Ni/(Ni+Co+Mn)"].iloc[0])
        assert rec["measured_Ni/(Ni+Co+Mn)"].notna().all()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("which", ["summary", "record", "truth"])
def test_a_fifo_where_a_json_file_belongs_is_no_hang(tiny, which):
    """A FIFO as summary.json, as a cache record or as the truth beside the data: the
    report goes on (with one warning for the summary and the record), it never blocks."""
    import os

    if which == "summary":
        p = tiny / "out" / "summary.json"
    elif which == "record":
        (p,) = [q for q in (tiny / "out" / "cache").glob("*.json") if q.name != MEMO_NAME]
    else:
        p = tiny / "cr-5.truth.json"
    p.unlink()
    os.mkfifo(p)
    res = _report(tiny)
    _ok(res)
    if which != "truth":
        (w,) = _warnings(res)
        assert str(p) in w and "not a regular file" in w


def test_each_flag_is_one_short_sentence_from_its_strongest_test():
    from liprobe.report.flagtext import flag_sentences

    row = {"flags": "delithiated;early_fracture", "fda_dispersion_Li+": 9.0,
           "Li/(Li+Ni+Co+Mn)": 0.30,
           "flag_delithiated_fda_dispersion_Li+_reference": 1.5,
           "flag_delithiated_fda_dispersion_Li+_score": 70.0,
           "flag_delithiated_fda_dispersion_Li+_threshold": 5.0,
           "flag_delithiated_Li/(Li+Ni+Co+Mn)_reference": 0.5,
           "flag_delithiated_Li/(Li+Ni+Co+Mn)_score": -20.0,
           "flag_delithiated_Li/(Li+Ni+Co+Mn)_threshold": 5.0,
           "flag_delithiated_detector_heterogeneity_score": 1.0,
           "flag_delithiated_detector_heterogeneity_threshold": 5.0,
           "flag_reasons": "delithiated: a long sentence; another | early_fracture: the run "
                           "ends abruptly: a burst; and more."}
    got = flag_sentences(row)
    assert got == ["delithiated: fda_dispersion_Li+ 9 against the reference runs' 1.5, z 70 "
                   "past 5 (and 1 more test).",
                   "early_fracture: the run ends abruptly: a burst."]
    # a departure from a nominal ratio reads as such; a flag without numbers keeps its reason
    row = {"flags": "off_stoichiometric;other_phase", "Li/(Li+Mn)": 0.383,
           "flag_off_stoichiometric_Li/(Li+Mn)_nominal_reference": 1 / 3,
           "flag_off_stoichiometric_Li/(Li+Mn)_nominal_score": 0.05,
           "flag_off_stoichiometric_Li/(Li+Mn)_nominal_threshold": 0.03,
           "flag_reasons": "off_stoichiometric: x | other_phase: fits LiMn2O4."}
    assert flag_sentences(row) == [
        "off_stoichiometric: Li/(Li+Mn) 0.383 against its nominal 0.333, departs by 0.05 past "
        "0.03.", "other_phase: fits LiMn2O4."]


@pytest.mark.parametrize("bad", ["0.1", "many", float("nan"), [1]])
def test_a_segments_fraction_that_is_not_a_number_gives_no_true_ratio(tiny, bad):
    """A laser segment's row takes its true ratios from the segment's atomic fractions:
    text (or NaN, or a list) where a number belongs gives no true value, not a TypeError
    (issue 27) nor a ratio computed from the rest."""
    from liprobe.report.scorecard import _truth_ratio

    t = json.loads((tiny / "cr-5.truth.json").read_text())
    seg = t["segments"][0]
    good = _truth_ratio(t, "Ni/(Ni+Co+Mn)", seg)
    assert good is not None and 0.7 < good < 0.9          # NMC811: Ni/(Ni+Co+Mn) = 0.8
    for key in ("analysed_volume_atomic_fractions", "evaporated_atomic_fractions"):
        if seg.get(key):
            seg[key]["Ni"] = bad
    assert _truth_ratio(t, "Ni/(Ni+Co+Mn)", seg) is None


def test_a_study_not_of_the_papers_kind_keeps_its_recovery_table(tiny, tmp_path):
    """claims=False (a study that is not the paper's kind): no scorecard.json (an earlier
    one is removed), but the simulated run's truth-against-measured table is written."""
    import pandas as pd

    from liprobe.report.scorecard import write_scorecard
    from liprobe.report.sources import RunFiles
    from liprobe.study import load_manifest

    table = pd.read_parquet(tiny / "out" / "runs.parquet")
    runs = RunFiles.from_manifest(load_manifest(str(tiny / "study.toml")))
    (tmp_path / "scorecard.json").write_text("[]")            # an earlier report's
    claims, rec, paths = write_scorecard(tmp_path, table, runs=runs, claims=False,
                                         range_bias=False)
    assert claims == [] and paths["scorecard"] is None
    assert not (tmp_path / "scorecard.json").exists()
    written = pd.read_csv(paths["recovery"])
    truth = json.loads((tiny / "cr-5.truth.json").read_text())
    assert written["truth"].iloc[0].endswith("cr-5.truth.json")
    assert 0.7 < written["true_Ni/(Ni+Co+Mn)"].iloc[0] < 0.9     # NMC811: 0.8
    assert written["li_budget_total"].iloc[0] == truth["li_budget"]["total"]
