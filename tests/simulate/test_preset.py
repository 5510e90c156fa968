"""The paper preset: the study's whole series, its manifest, and `liprobe study` on it."""

import json

import pytest
from click.testing import CliRunner

from liprobe.cli import cli
from liprobe.simulate import (
    PRESETS,
    preset_runs,
    resolve_material,
    simulate,
    simulate_to_files,
    write_preset,
)
from liprobe.simulate.analyst_ranges import keep_truth_ranges, preset_ranging_bias
from liprobe.simulate.preset import GRAIN, PAPER_IONS, PAPER_WEIGHTS, PARTICLES, manifest_text
from liprobe.study import load_manifest, run_study

from .test_run import files_of

#: Detected ions of a coated run of the small preset written here (the default is 250,000).
SMALL = 2_000


def run_cli(*args):
    res = CliRunner().invoke(cli, list(map(str, args)))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def preset_series(tmp_path_factory):
    """The paper preset, small, written by the command line (two worker processes)."""
    out = tmp_path_factory.mktemp("preset") / "series"
    code, stdout, stderr = run_cli("simulate", "--preset", "paper", "-o", out, "--ions", SMALL,
                                   "--seed", 3, "--workers", 2, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["manifest"] == str(out / "study.toml") and summary["runs"] == 33
    return out


# -- what the preset holds ----------------------------------------------------------------

def test_the_preset_is_the_studys_series():
    runs = preset_runs("paper")
    by = {}
    for r in runs:
        if r.phases:
            continue
        key = (r.particle, r.coating, bool(r.schedule))
        by.setdefault(key, []).append(r.laser_pj if not r.schedule else
                                      tuple(pj for _, pj in r.schedule))
    assert by[("P1", "none", False)] == [5, 10, 15, 20]
    assert by[("P1", "none", True)] == [(5, 10, 15, 20)]
    assert by[("P1", "Cr", False)] == [5, 8, 10, 12, 15, 20, 30, 40, 50]
    assert by[("P1", "Cr", True)] == [(5, 10, 15)]
    for p in ("P2", "P3", "P4"):
        assert len(by[(p, "Cr", False)]) >= 2
    assert by[("MnRich-1", "Cr", False)] == [10, 12, 15, 20]
    assert by[("LMO-1", "Cr", False)] == [1, 5, 8, 10, 15, 20]
    assert {r.listed_material for r in runs if r.particle == "MnRich-1"} == {"NMC811"}
    assert {r.listed_material for r in runs if r.particle == "LMO-1"} == {"LiMn2O4"}
    assert len({r.name for r in runs}) == len(runs)
    with pytest.raises(ValueError, match="unknown preset"):
        preset_runs("nope")
    assert PRESETS["paper"][2] == PAPER_IONS
    # one grain-in-matrix run: coated P1 at 5 pJ with a LiMn2O4 grain, listed as NMC811
    grain = [r for r in runs if r.phases]
    assert [(r.particle, r.coating, r.laser_pj, r.listed_material) for r in grain] == [
        ("P1", "Cr", 5, "NMC811")]
    assert grain[0].phases == (GRAIN,) and GRAIN.startswith("LiMn2O4=sphere:")
    # the flagship runs are the deep ones: 12x and 14x a coated run
    deep = {r.name for r in runs if r.weight >= 10}
    assert deep == {"nmc811-cr-p1-5pj", "nmc811-cr-p1-grain-5pj", "nmc811-none-p1-5-10-15-20pj"}


def test_particles_of_the_batch_differ_slightly_and_the_mn_rich_one_is_another_phase():
    ni = {}
    for p in ("P1", "P2", "P3", "P4"):
        a = dict(resolve_material(PARTICLES[p]).amounts)
        ni[p] = a["Ni"] / (a["Ni"] + a["Co"] + a["Mn"])
        assert a["Li"] / (a["Li"] + a["Ni"] + a["Co"] + a["Mn"]) == pytest.approx(0.5, abs=0.01)
    assert len({PARTICLES[p] for p in ni}) == 4 and max(ni.values()) - min(ni.values()) < 0.03
    mn = dict(resolve_material(PARTICLES["MnRich-1"]).amounts)
    assert set(mn) == {"Li", "Mn", "O"}


def test_mn_rich_runs_show_no_ni_or_co_peaks_under_an_nmc811_range_file():
    from liprobe.study.presence import ion_presence

    mnrich = next(r for r in preset_runs("paper") if r.particle == "MnRich-1")
    nmc = next(r for r in preset_runs("paper") if r.particle == "P1" and r.coating == "Cr")
    m = simulate(mnrich.config(60_000, 1))
    table = simulate(nmc.config(60_000, 2).replace(laser_pj=mnrich.laser_pj)).ranges
    p = ion_presence(m.run, table)
    present, absent = set(p.present_ions()), set(p.absent_ions())
    assert {"Ni+", "Ni++", "NiO+", "Co+", "Co++", "CoO+"} <= absent
    assert {"Li+", "Mn+", "Mn++", "O+", "O2+"} <= present
    assert m.truth["phases"][0]["name"] == PARTICLES["MnRich-1"]


# -- what write_preset writes --------------------------------------------------------------

def test_every_run_is_written_with_its_truth_and_truth_derived_ranges(preset_series):
    runs = preset_runs("paper")
    for r in runs:
        for ext in (".epos", ".truth.rrng", ".truth.json", ".truth.pos"):
            assert (preset_series / "runs" / (r.name + ext)).is_file(), (r.name, ext)
        # the simulator's range file is kept under a name no analyst takes for theirs
        # (issue 19; was: runs/NAME.rrng, which the manifest gave the study)
        assert not (preset_series / "runs" / (r.name + ".rrng")).exists()
        truth = json.loads((preset_series / "runs" / (r.name + ".truth.json")).read_text())
        assert truth["files"]["ranges"] == r.name + ".truth.rrng"
    t = json.loads((preset_series / "runs" / "nmc811-cr-p1-10pj.truth.json").read_text())
    assert t["inputs"]["ions"] == SMALL and t["laser_pj"] == 10.0
    un = json.loads((preset_series / "runs" / "nmc811-none-p1-5pj.truth.json").read_text())
    # the fracture model decides (runs this small are shallow and rarely break; was: every
    # uncoated run fractured): the truth records its stress either way
    assert un["ions_requested"] == PAPER_WEIGHTS["uncoated"] * SMALL
    assert un["fracture"]["stress_by_segment"][0]["total_gpa"] > 2


def test_a_run_written_by_a_worker_process_is_the_one_written_here(preset_series, tmp_path):
    runs = preset_runs("paper")
    i = next(k for k, r in enumerate(runs) if r.name == "nmc811-cr-p1-5-10-15pj")
    cfg = runs[i].config(SMALL, 3 * 1000 + i)
    simulate_to_files(cfg, tmp_path / (runs[i].name + ".epos"))
    keep_truth_ranges(tmp_path / (runs[i].name + ".epos"))      # as write_preset does
    mine = files_of(tmp_path)
    theirs = {k: (preset_series / "runs" / k).read_bytes() for k in mine}
    assert mine == theirs


def test_the_manifest_ranges_every_run_with_a_pooled_autorange_and_none_with_the_truth(
        preset_series):
    import tomllib

    manifest = tomllib.loads((preset_series / "study.toml").read_text())
    pools = json.loads((preset_series / "ranges" / "pools.json").read_text())
    listed = {r.name: r for r in preset_runs("paper")}
    files = {}
    for run in manifest["runs"]:
        ranges = run["ranges"]
        # no truth-derived file: not runs/NAME.truth.rrng, not the old runs/NAME.rrng
        assert ranges.startswith("ranges/") and ".truth" not in ranges, ranges
        assert (preset_series / ranges).is_file(), ranges
        assert pools["runs"][run["name"]] == ranges
        files.setdefault(ranges, set()).add((run["material"], run["coating"]))
    # one file per listed material, or per listed material and coating state: the Mn-rich
    # particle's runs (listed NMC811) with the NMC811 runs, LiMn2O4 on its own
    for ranges, kinds in files.items():
        assert len({m for m, _ in kinds}) == 1, (ranges, kinds)
    by_run = {r["name"]: r["ranges"] for r in manifest["runs"]}
    assert by_run["mnrich-cr-mnrich1-10pj"] == by_run["nmc811-cr-p1-10pj"]
    assert by_run["limn2o4-cr-lmo1-10pj"] == "ranges/LiMn2O4.rrng"
    # the decision is recorded with what it was made from
    nmc = next(m for m in pools["materials"] if m["material"] == "NMC811")
    assert set(nmc["disagreement"]) == {"Cr", "none"}
    assert nmc["split"] == (len({by_run[n] for n in by_run if n.startswith("nmc811")}) == 2)
    # the elements an analyst gives: the listed material's, the coating's Cr, the chamber's H
    elements = {"NMC811": ["Li", "Ni", "Co", "Mn", "O", "Cr", "H"],
                "LiMn2O4": ["Li", "Mn", "O", "Cr", "H"]}
    for m in pools["materials"]:
        for p in m["pools"]:
            assert p["elements"] == elements[m["material"]], p
            assert p["sample"]["ions_sampled"] == p["sample"]["ions_total"]   # small: all
    assert set(by_run) == set(listed)


def test_the_ranging_bias_of_every_run_is_measured_against_its_truth_ranges(preset_series):
    bias = preset_ranging_bias(preset_series)
    assert list(bias) == [r.name for r in preset_runs("paper")]
    for name, b in bias.items():
        li, o = b.bias["Li/(Li+Ni+Co+Mn)"], b.bias["O/(Li+O+Ni+Co+Mn)"]
        # this preset is tiny (2,000 ions per coated run; pools of 12,000 to 90,000 ions),
        # so its autorange misses faint peaks: measured |Li| <= 0.027 and |O| <= 0.021
        # (seed 3); the figures at the demo's size are asserted in tests/report
        assert abs(li) < 0.05 and abs(o) < 0.05, (name, b.bias)
        # Li that leaves between pulses (uncoated, 5 pJ: liprobe.simulate.lithium) is a
        # background at random times of flight: the ranged share is that of the rest
        truth = json.loads((preset_series / "runs" / f"{name}.truth.json").read_text())
        bg = truth["losses"]["background_fraction_of_detected"]
        assert 0.9 * b.ranged_fraction["truth"] < b.ranged_fraction["analyst"] <= 1
        assert 0.95 * (1 - bg) < b.ranged_fraction["truth"], (name, bg)
        if name.startswith("limn2o4"):
            assert b.truth["Ni/(Ni+Co+Mn)"] == 0 and b.analyst["Ni/(Ni+Co+Mn)"] == 0


def test_the_manifest_lists_materials_segments_and_outcomes(preset_series):
    m = load_manifest(preset_series / "study.toml")
    assert all(s.problem is None for s in m.runs)
    rows = {(s.run, s.segment): s for s in m.runs}
    assert len(rows) == 38
    assert m.params.roi == "cylinder:25" and m.params.exclude == ("Cr",)
    assert "Li+" in m.params.fda.species and m.params.detector.species == "Li+"
    assert {"O2+/O+", "Mn++/Mn+"} <= set(m.params.field_proxies)
    sched = [s for s in m.runs if s.run == "nmc811-none-p1-5-10-15-20pj"]
    assert [s.meta()["laser_pj"] for s in sched] == [5, 10, 15, 20]
    truth = json.loads((preset_series / "runs" / "nmc811-none-p1-5-10-15-20pj.truth.json")
                       .read_text())
    assert [s.start for s in sched] == [seg["start_ion"] for seg in truth["segments"]]
    assert sched[-1].stop is None
    for s in m.runs:
        meta = s.meta()
        # the simulator's outcome is not in the manifest (issue 19: the study finds a
        # fracture from the history; was: tags.outcome "complete" / "fractured")
        assert "tag_outcome" not in meta
        if s.run.startswith("mnrich"):
            assert s.material == "NMC811" and meta["tag_true_phase"] == PARTICLES["MnRich-1"]


def test_liprobe_study_runs_on_the_manifest_and_flags_what_the_truth_says(preset_series):
    result = run_study(preset_series / "study.toml", preset_series.parent / "out", workers=0)
    assert not result.failed and result.exit_code == 0
    rows = result.rows
    assert len(rows) == 38
    fractured = 0
    for r in rows:
        flags = set(filter(None, (r["flags"] or "").split(";")))
        if r["run"].startswith("mnrich"):
            assert "other_phase" in flags and r["best_phase"] == "LiMn2O4", r["flag_reasons"]
        # early_fracture from the history alone (no tags.outcome): every run the truth says
        # fractured (was: every uncoated run, when every uncoated run fractured). Not the
        # converse: on runs of a few thousand ions the history's multiple-hit heuristic
        # also flags a few runs that ran to their end (liprobe.history, not the simulator)
        truth = json.loads((preset_series / "runs" / f"{r['run']}.truth.json").read_text())
        if truth["fracture"]["fractured"]:
            assert "early_fracture" in flags, r["run"]
        fractured += truth["fracture"]["fractured"]
        if r["run"].startswith("limn2o4"):
            assert r["best_phase"] == "LiMn2O4" and "other_phase" not in flags
        if r["run"] == "nmc811-cr-p1-5-10-15pj":
            assert r["laser_pj"] in (5, 10, 15)
    assert fractured >= 4             # the schedule run's 4 rows (a fixed point) at least
    assert result.table["O2+/O+"].notna().all()


# -- the command line ------------------------------------------------------------------------

@pytest.mark.parametrize("args, what", [
    (["--material", "LiMn2O4"], "--material"),
    (["--laser-pj", "10"], "--laser-pj"),
    (["--schedule", "0:5,100:10"], "--schedule"),
    (["--preset", "nope"], "nope"),
])
def test_preset_usage_errors(tmp_path, args, what):
    a = (["--preset", "paper"] if "--preset" not in args else []) + args
    code, _, stderr = run_cli("simulate", *a, "-o", tmp_path / "d", "--ions", "1000")
    assert code == 2 and what in stderr
    assert not (tmp_path / "d" / "study.toml").exists()


def test_preset_into_a_file_is_a_usage_error(tmp_path):
    f = tmp_path / "f.epos"
    f.write_text("")
    code, _, stderr = run_cli("simulate", "--preset", "paper", "-o", f)
    assert code == 2 and "folder" in stderr


def test_write_preset_refuses_bad_sizes(tmp_path):
    with pytest.raises(ValueError, match="ions"):
        write_preset("paper", tmp_path, ions=0)
    with pytest.raises(ValueError, match="seed"):
        write_preset("paper", tmp_path, ions=1000, seed=-1)
    with pytest.raises(ValueError, match="unknown preset"):
        write_preset("nope", tmp_path)


def test_the_manifest_text_of_a_fractured_schedule_drops_sections_never_reached():
    run = next(r for r in preset_runs("paper") if r.name == "nmc811-none-p1-5-10-15-20pj")
    text = manifest_text("paper", [(run, 7, 8000, 5000, True,
                                    [(0, 2000, 5.0), (2000, 4000, 10.0), (4000, 5000, 15.0),
                                     (None, None, 20.0)])])
    assert "stop = 2000, laser_pj = 5" in text and "stop = 4000" in text
    assert '{ start = 4000, laser_pj = 15, name = "15 pJ" }' in text
    # the outcome stays out of the manifest (was: tags.outcome = "fractured")
    assert "laser_pj = 20" not in text and "outcome" not in text


def test_the_manifest_text_gives_each_run_its_pooled_range_file():
    run = next(r for r in preset_runs("paper") if r.name == "mnrich-cr-mnrich1-10pj")
    entry = [(run, 7, 2000, 2000, False, [(0, 2000, 10.0)])]
    assert 'ranges = "ranges/NMC811.rrng"' in manifest_text("paper", entry)
    text = manifest_text("paper", entry, {run.name: "ranges/NMC811-Cr-coated.rrng"})
    assert 'ranges = "ranges/NMC811-Cr-coated.rrng"' in text and ".truth" not in \
        text.split("[[runs]]", 1)[1].split("tags")[0]
