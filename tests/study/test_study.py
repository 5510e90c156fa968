"""`liprobe study` on a small synthetic study: values, flags, Dask, cache, failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from liprobe.cli import cli
from liprobe.study import load_manifest, run_study

from .conftest import RUNS, TRUTH, manifest_text, run_entry
from .synth import write_run


def run_cli(*args):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def strict_json(text):
    def no_constants(c):
        raise AssertionError(f"non-strict JSON constant {c}")
    return json.loads(text, parse_constant=no_constants)


def cli_json(*args):
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    return strict_json(out)


def row_of(result, run, segment=None):
    return next(r for r in result.rows if r["run"] == run and r["segment"] == segment)


# --------------------------------------------------------------------------
# values: the table says what the single-run commands say
# --------------------------------------------------------------------------

@pytest.mark.parametrize("run,segment", [("cr-10", 1), ("none-10", None), ("mn-20", None)])
def test_table_values_equal_the_single_run_commands(study_dir, inprocess_result, run, segment):
    row = row_of(inprocess_result, run, segment)
    assert row["status"] == "ok", row["error"]
    f, r = study_dir / "runs" / f"{run}.epos", study_dir / "runs" / f"{run}.rrng"
    seg = [] if segment is None else ["--segment", "30000:"]
    sel = ["--roi", "cylinder:25", *seg]
    m = load_manifest(study_dir / "study.toml")
    ratios = [a for t in m.params.ratios for a in ("--ratio", t)]

    comp = cli_json("composition", f, "-r", r, *sel, "--exclude", "Cr", *ratios)
    assert row["ions_roi"] == comp["ions_total"]
    assert row["ions_ranged_roi"] == comp["ions_ranged"]
    for el, v in comp["atomic_percent"].items():
        assert row[f"at_pct_{el}"] == v
        assert row[f"at_pct_{el}_err"] == comp["atomic_percent_error"][el]
    for text, v in comp["ratios"].items():
        assert row[text] == v["value"] and row[f"{text}_err"] == v["error"]

    field = cli_json("field", f, "-r", r, *sel, "--ratio", "Mn++/Mn+")
    for text in ("O2+/O+", "Mn++/Mn+"):
        assert row[text] == field["ratios"][text]["value"]
        assert row[f"{text}_err"] == field["ratios"][text]["error"]

    fda = cli_json("fda", f, "-r", r, "--species", "Li+", "--block", "100", *sel,
                   "--exclude", "Cr", "--shuffles", "10")
    assert row["fda_mu_Li+"] == fda["mu"]
    assert row["fda_mu_shuffled_Li+"] == fda["mu_shuffled"]
    assert row["fda_p_value_Li+"] == fda["p_value"]

    # the study takes every run's heterogeneity over 0.4 of its detector radius
    radius = cli_json("detector-map", f, "-r", r, "--species", "Li+", *seg)["detector_radius_mm"]
    det = cli_json("detector-map", f, "-r", r, "--species", "Li+", *seg,
                   "--core-radius", repr(0.4 * radius))
    h = det["heterogeneity"]
    assert row["detector_heterogeneity"] == h["heterogeneity"]
    assert row["detector_heterogeneity_err"] == h["heterogeneity_noise"]
    assert row["detector_mu_Li+"] == h["species_fraction"]["mu"]

    if row["coating"] != "none":
        coat = cli_json("coating", f, "-r", r, *seg)
        assert row["coating_geometry"] == coat["geometry"]
        assert row["coating_thickness_nm"] == coat["thickness_nm"]
        assert row["coating_thickness_nm_err"] == coat["thickness_nm_err"]
        assert row["coating_slabs_found"] == coat["slabs_found"]
    else:
        assert row["coating_thickness_nm"] is None
        assert "coating_thickness_nm: the run is not coated" in row["reasons"]

    hist = cli_json("history", f)          # the whole run: how it ended
    assert row["abrupt_end"] == hist["abrupt_end"]
    assert row["ions"] == (hist["ions"] if segment is None else hist["ions"] - 30000)


def test_csv_and_parquet_hold_the_same_table(inprocess_result):
    csv = pd.read_csv(inprocess_result.paths["runs_csv"])
    pq = pd.read_parquet(inprocess_result.paths["runs_parquet"])
    assert list(csv.columns) == list(pq.columns) == inprocess_result.columns
    for c in ("at_pct_Li", "Li/(Li+Ni+Co+Mn)", "fda_mu_Li+", "detector_heterogeneity"):
        assert csv[c].tolist() == pq[c].tolist() == [r[c] for r in inprocess_result.rows]
    assert pq["laser_pj"].tolist() == [5.0, 10.0, 12.0, 15.0, 20.0, 5.0, 10.0, 20.0]
    assert pq["segment"].tolist()[1:3] == [0, 1]
    assert pq["segment_name"].tolist()[2] == "late"


def test_columns_name_every_value_and_its_error(inprocess_result):
    cols = inprocess_result.columns
    assert cols[:10] == ["run", "segment", "segment_name", "segment_start", "segment_stop",
                         "material", "coating", "laser_pj", "particle", "instrument"]
    assert cols[-4:] == ["best_phase", "flags", "flag_reasons", "reasons"]
    for c in ("ions", "ions_roi", "at_pct_Ni", "at_pct_Ni_err", "Ni/(Ni+Co+Mn)_err",
              "O2+/O+_err", "fda_mu_Li+", "fda_mu_shuffled_Li+", "peaks_present",
              "detector_heterogeneity", "coating_thickness_nm", "abrupt_end",
              "mrp_fwhm_O2+", "mrp_fw10_O2+", "tail_ns_O2+", "background_ppm_ns", "status"):
        assert c in cols, c


# --------------------------------------------------------------------------
# flags
# --------------------------------------------------------------------------

def test_flags_match_the_planted_truth(inprocess_result):
    for row in inprocess_result.rows:
        flags = set(filter(None, row["flags"].split(";")))
        assert flags == TRUTH[row["run"]], (row["run"], row["flag_reasons"])
        for f in flags:      # one sentence per flag
            assert f"{f}: " in row["flag_reasons"]


def test_the_mn_rich_particle_is_named_and_explained(inprocess_result):
    row = row_of(inprocess_result, "mn-20")
    assert row["best_phase"] == "LiMn2O4"
    assert "no peak of Ni, Co" in row["flag_reasons"]
    assert "fit LiMn2O4" in row["flag_reasons"]
    assert "Ni++" in row["peaks_absent"] and "Mn+" in row["peaks_present"]
    assert "Ni/(Ni+Co+Mn)" in row["flag_reasons"]


def test_yield_counts_runs_not_segments(inprocess_result):
    y = {t["coating"]: t for t in inprocess_result.yields}
    assert y["Cr"]["runs"] == 5 and y["Cr"]["complete"] == 5 and y["Cr"]["fractured"] == 0
    assert y["none"] == {"coating": "none", "runs": 2, "complete": 1, "fractured": 1,
                         "unknown": 0, "yield": 0.5}
    ycsv = pd.read_csv(inprocess_result.paths["yield_csv"])
    assert ycsv["fractured"].tolist() == [0, 1]


# --------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------

def test_default_local_cluster_and_in_process_give_the_same_table(default_result,
                                                                   inprocess_result):
    assert default_result.exit_code == 0
    assert sorted(default_result.computed) == sorted(inprocess_result.computed)
    a = open(default_result.paths["runs_csv"]).read()
    b = open(inprocess_result.paths["runs_csv"]).read()
    assert a == b


def test_existing_cluster_with_two_workers_gives_the_default_table(study_dir, tmp_path,
                                                                    default_result):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        code, out, err = run_cli("study", study_dir / "study.toml", "-o", tmp_path,
                                 "--scheduler", cluster.scheduler_address, "--json")
    assert code == 0, err
    summary = strict_json(out)
    assert summary["computed"] == len(default_result.rows) and summary["failed"] == 0
    assert (tmp_path / "runs.csv").read_text() == \
        open(default_result.paths["runs_csv"]).read()
    assert "study: [8/8]" in err


def test_unreachable_scheduler_is_one_line_and_exit_1(study_dir, tmp_path):
    code, out, err = run_cli("study", study_dir / "study.toml", "-o", tmp_path,
                             "--scheduler", "tcp://127.0.0.1:9")
    assert code == 1
    assert "cannot connect to the Dask scheduler at tcp://127.0.0.1:9" in err
    assert not (tmp_path / "runs.csv").exists()


# --------------------------------------------------------------------------
# cache: kill and resume, parameter changes
# --------------------------------------------------------------------------

def _records(out):
    d = out / "cache"
    return {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in d.glob("*.json")
            if p.name != "files.json"}


#: A study that kills its own process (SIGKILL, no clean-up) once 3 runs are recorded.
_KILLED_STUDY = """
import os, signal, sys
from liprobe.study import run_study
recorded = []
def kill_after_three(event):
    if event["state"] == "ok":
        recorded.append(event["label"])
        if len(recorded) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
run_study(sys.argv[1], sys.argv[2], workers=0, progress=kill_after_three)
"""


@pytest.mark.slow
def test_killed_study_resumes_without_recomputing(study_dir, tmp_path, inprocess_result):
    p = subprocess.run([sys.executable, "-c", _KILLED_STUDY, str(study_dir / "study.toml"),
                        str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert p.returncode == -9                      # killed
    before = _records(tmp_path)
    assert len(before) == 3
    assert not (tmp_path / "runs.csv").exists()
    assert not list((tmp_path / "cache").glob("*.tmp"))
    for _name, (_, text) in before.items():         # complete JSON, nothing half-written
        assert json.loads(text)["result"]["status"] == "ok"

    res = run_study(study_dir / "study.toml", tmp_path)          # default: local cluster
    assert len(res.cached) == 3 and len(res.computed) == len(res.rows) - 3
    after = _records(tmp_path)
    for name, v in before.items():                 # the finished runs were not recomputed
        assert after[name] == v
    assert len(after) == len(res.rows)
    assert (tmp_path / "runs.csv").read_text() == \
        open(inprocess_result.paths["runs_csv"]).read()
    rec = json.loads(next(iter(after.values()))[1])
    assert {"key", "inputs", "params", "timings_s", "finished", "result"} <= set(rec)
    assert len(rec["inputs"]["data"]["blake2b"]) == 64


@pytest.mark.slow
def test_a_parameter_change_redoes_only_the_runs_it_affects(study_dir, tmp_path):
    d = tmp_path / "s"
    shutil.copytree(study_dir, d)
    out = tmp_path / "out"
    first = run_study(d / "study.toml", out, workers=0)
    assert len(first.computed) == 8
    # metadata only: nothing recomputed, the table follows the manifest
    text = (d / "study.toml").read_text()
    (d / "study.toml").write_text(text.replace("laser_pj = 15", "laser_pj = 16"))
    res = run_study(d / "study.toml", out, workers=0)
    assert res.computed == [] and row_of(res, "cr-15")["laser_pj"] == 16.0
    # one run's ROI: that run only
    text = (d / "study.toml").read_text()
    (d / "study.toml").write_text(text.replace("laser_pj = 16",
                                               'laser_pj = 16\nroi = "cylinder:20"'))
    res = run_study(d / "study.toml", out, workers=0)
    assert res.computed == ["cr-15"]
    assert row_of(res, "cr-15")["ions_roi"] < row_of(first, "cr-15")["ions_roi"]
    # a run's data file changes: that run only
    write_run(d / "runs", "cr-20", coated=True, o2_ratio=3.5, seed=40)
    res = run_study(d / "study.toml", out, workers=0)
    assert res.computed == ["cr-20"]
    # content-addressed: a run whose files equal another's reuses its record
    shutil.copy(d / "runs" / "cr-5.epos", d / "runs" / "cr-20.epos")
    res = run_study(d / "study.toml", out, workers=0)
    assert res.computed == [] and row_of(res, "cr-20")["at_pct_Li"] == \
        row_of(res, "cr-5")["at_pct_Li"]
    # a study-wide parameter: every run
    text = (d / "study.toml").read_text()
    (d / "study.toml").write_text(text.replace('block = 100', 'block = 50'))
    res = run_study(d / "study.toml", out, workers=0)
    assert len(res.computed) == 8


# --------------------------------------------------------------------------
# failures
# --------------------------------------------------------------------------

def test_failing_runs_leave_the_rest_complete_and_exit_3(study_dir, tmp_path):
    d = tmp_path / "s"
    (d / "runs").mkdir(parents=True)
    for n in ("cr-5", "cr-15", "cr-20", "mn-20"):
        for ext in ("epos", "rrng"):
            shutil.copy(study_dir / "runs" / f"{n}.{ext}", d / "runs")
    # a truncated file: the analysis fails
    raw = (study_dir / "runs" / "cr-10.epos").read_bytes()
    (d / "runs" / "broken.epos").write_bytes(raw[:-7])
    shutil.copy(study_dir / "runs" / "cr-10.rrng", d / "runs" / "broken.rrng")
    runs = {n: RUNS[n] for n in ("cr-5", "cr-15", "cr-20", "mn-20")}
    text = manifest_text(runs) + run_entry("missing", 'coating = "Cr"') + \
        run_entry("typo", 'coating = "Cr"\nlazer_pj = 10', data="runs/cr-5.epos",
                  ranges="runs/cr-5.rrng") + \
        run_entry("broken", 'coating = "Cr"') + \
        run_entry("empty-roi", 'coating = "Cr"\nroi = "sphere:2@500,500,500"',
                  data="runs/cr-5.epos", ranges="runs/cr-5.rrng")
    (d / "study.toml").write_text(text)
    lines = text.splitlines()
    code, out, err = run_cli("study", d / "study.toml", "-o", d / "out", "--workers", "0",
                             "--json")
    assert code == 3
    assert "study partial: 4 of 8 rows failed (exit code 3)" in err
    summary = strict_json(out)
    assert summary["partial"] and summary["failed"] == 4 and summary["ok"] == 4
    table = pd.read_csv(d / "out" / "runs.csv").set_index("run")
    assert (table.loc[["cr-5", "cr-15", "cr-20", "mn-20"], "status"] == "ok").all()
    assert table.loc["mn-20", "flags"] == "off_stoichiometric;other_phase"
    err_of = table["error"].to_dict()
    line = lines.index('data = "runs/missing.epos"') + 1
    assert f"line {line}: key runs[4].data:" in err_of["missing"] and "no such file" in err_of[
        "missing"]
    line = lines.index("lazer_pj = 10") + 1
    assert f"line {line}: key runs[5].lazer_pj: unknown key" in err_of["typo"]
    assert "broken.epos" in err_of["broken"] and "truncated" in err_of["broken"]
    assert "contains no ions" in err_of["empty-roi"]
    assert (table.loc[["missing", "typo", "broken", "empty-roi"], "status"] == "failed").all()
    # failures are not cached: they are retried on the next start
    assert len(_records(d / "out")) == 4


def test_a_bad_study_key_stops_with_line_and_key(study_dir, tmp_path):
    text = manifest_text().replace('roi = "cylinder:25"', 'roi = "cylinder:25"\nbloc = 100')
    (tmp_path / "study.toml").write_text(text)
    code, out, err = run_cli("study", tmp_path / "study.toml", "-o", tmp_path / "out")
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert "study.toml: line 4: key study.bloc: unknown key" in err
    assert not (tmp_path / "out" / "runs.csv").exists()


@pytest.mark.parametrize("text,where,what", [
    ("[study]\nroi = cylinder:25\n", "line 2", "not valid TOML"),
    ("[study]\nratios = [\"Li/(Li+Ni\"]\n[[runs]]\ndata='a.pos'\nranges='a.rrng'\n", "line 2",
     "key study.ratios[0]"),
    ("[study]\nfda = { species = [\"Li+\"], block = 0 }\n[[runs]]\ndata='a.pos'\nranges='b'\n",
     "line 2", "key study.fda.block: must be at least 1"),
    ("[study]\n[materials.X]\nformula = \"LiXy2\"\n[[runs]]\ndata='a'\nranges='b'\n", "line 3",
     "key materials.X.formula"),
    ("[study]\nname = \"x\"\n", "line", "the manifest has no [[runs]]"),
    ("[study]\ndetector = { core = 2 }\n[[runs]]\ndata='a'\nranges='b'\n", "line 2",
     "key study.detector.core: must be a fraction"),
    ("[[runs]]\nname = \"a\"\ndata = \"a.pos\"\nranges = \"a.rrng\"\n[[runs]]\nname = \"a\"\n"
     "data = \"b.pos\"\nranges = \"b.rrng\"\n", "line 6", "run name 'a' is used twice"),
])
def test_manifest_errors_name_line_and_key(tmp_path, text, where, what):
    (tmp_path / "s.toml").write_text(text)
    code, out, err = run_cli("study", tmp_path / "s.toml", "-o", tmp_path / "out")
    assert code == 1, err
    assert what in err and (where in err), err
    assert err.startswith("liprobe: error: ") and err.count("\n") == 1


def test_usage_errors_exit_2(study_dir, tmp_path):
    code, _, err = run_cli("study", study_dir / "study.toml", "-o", tmp_path, "--workers", "-1")
    assert code == 2
    code, _, err = run_cli("study", study_dir / "study.toml", "-o", tmp_path, "--workers", "2",
                           "--scheduler", "tcp://x:1")
    assert code == 2
    code, _, err = run_cli("study", study_dir / "study.toml")
    assert code == 2 and "-o" in err


@pytest.mark.slow
def test_the_notebook_style_example_runs(study_dir, tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "notebook_style.py")
    p = subprocess.run([sys.executable, script, str(study_dir / "study.toml"), str(tmp_path), "0"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "8 analysed, 0 from the cache, 0 failed" in p.stdout
    assert "mn-20" in p.stdout and "off_stoichiometric;other_phase" in p.stdout
    assert (tmp_path / "ratio_vs_field.png").stat().st_size > 0
