"""A grain of another phase inside a run: found, measured, reported (``grain`` group).

The runs are drawn here with numpy (not with the simulator): ions at random in
a cylinder, each ion's species drawn from the ions per formula unit of the
phase at its position, masses at the ions' m/n, written with the io writers
with a matching range file. The expected values are the geometry's.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from click.testing import CliRunner

import liprobe
from liprobe import Range, RangeTable, parse_ion
from liprobe.study import analyse_run, parse_manifest, run_study
from liprobe.study.columns import column_info
from liprobe.study.grain import find_grain, proxigram_from_artefact

#: m/n (Da) of each ion's main isotope.
MASSES = {"Li+": 7.016, "O+": 15.995, "O2+": 31.990, "Ni+": 57.935, "Ni++": 28.968,
          "Co+": 58.933, "Co++": 29.466, "Mn+": 54.938, "Mn++": 27.469, "Cr+": 51.941,
          "Cr++": 25.970, "CrO+": 67.936}
#: Ions per formula unit: the cations split between 1+ and 2+, O between O+ and O2+.
PHASES = {
    "NMC811": {"Li+": 1.0, "Ni+": 0.5, "Ni++": 0.3, "Co+": 0.07, "Co++": 0.03, "Mn+": 0.06,
               "Mn++": 0.04, "O+": 0.5, "O2+": 0.75},
    "LiMn2O4": {"Li+": 1.0, "Mn+": 1.2, "Mn++": 0.8, "O+": 1.0, "O2+": 1.5},
    "Li1.1Mn1.9O4": {"Li+": 1.1, "Mn+": 1.14, "Mn++": 0.76, "O+": 1.0, "O2+": 1.5},
    "Cr": {"Cr+": 0.6, "Cr++": 0.25, "CrO+": 0.15},
}
RATIOS = ("Li/(Li+Ni+Co+Mn)", "Ni/(Ni+Co+Mn)", "Li/(Li+Mn)")
HALF = 0.2       # Da, half-width of each window
RADIUS, LENGTH, DENSITY = 12.0, 40.0, 20.0        # nm, nm, ions/nm^3


def _tm_per_ion(phase) -> float:
    """Ni+Co+Mn atoms per ion of a phase."""
    w = PHASES[phase]
    return sum(v for k, v in w.items() if k[:2] in ("Ni", "Co", "Mn")) / sum(w.values())


def range_table() -> RangeTable:
    return RangeTable.from_ranges([Range(m - HALF, m + HALF, parse_ion(n))
                                   for n, m in MASSES.items()])


def make_run(seed=0, matrix="NMC811", sphere=None, shell_nm=0.0, background=0.01):
    """Ions at random in a cylinder (radius RADIUS + shell_nm, z from -LENGTH to 0);
    ``sphere = (radius, (x, y, z), phase)``; a Cr shell outside RADIUS."""
    rng = np.random.default_rng(seed)
    r_out = RADIUS + shell_nm
    n = int(DENSITY * math.pi * r_out ** 2 * LENGTH)
    r = r_out * np.sqrt(rng.random(n))
    phi = rng.uniform(0, 2 * math.pi, n)
    x, y, z = r * np.cos(phi), r * np.sin(phi), rng.uniform(-LENGTH, 0, n)
    phase = np.full(n, matrix, dtype=object)
    if sphere is not None:
        rad, (cx, cy, cz), name = sphere
        phase[(x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < rad ** 2] = name
    phase[r > RADIUS] = "Cr"
    mass = np.zeros(n)
    for name, weights in PHASES.items():
        sel = phase == name
        ions = list(weights)
        p = np.array([weights[i] for i in ions])
        mass[sel] = np.array([MASSES[i] for i in ions])[rng.choice(len(ions), int(sel.sum()),
                                                                   p=p / p.sum())]
    mass += rng.normal(0, 0.03, n)
    noise = rng.random(n) < background
    mass[noise] = rng.uniform(1, 100, int(noise.sum()))
    f32 = np.float32
    return liprobe.Run.from_arrays(x=x.astype(f32), y=y.astype(f32), z=z.astype(f32),
                                   mass=mass.astype(f32))


def write(tmp_path, name, run):
    pos, rrng = tmp_path / f"{name}.pos", tmp_path / f"{name}.rrng"
    liprobe.write(pos, run)
    liprobe.write_ranges(rrng, range_table())
    return liprobe.read(pos), liprobe.read_ranges(rrng), pos, rrng


def volume_inside_cylinder(rad, centre, n=2_000_000, seed=1):
    """Monte Carlo: the part of a sphere inside the cylinder (nm^3)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-rad, rad, (n, 3))
    p = p[(p ** 2).sum(axis=1) < rad ** 2] + centre
    inside = (p[:, 0] ** 2 + p[:, 1] ** 2 <= RADIUS ** 2) & (p[:, 2] <= 0) & \
        (p[:, 2] >= -LENGTH)
    return 4 / 3 * math.pi * rad ** 3 * inside.mean()


@pytest.fixture(scope="module")
def grain_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("grain")
    return write(d, "grain", make_run(seed=3, sphere=(6.0, (1.0, -1.0, -20.0), "LiMn2O4")))


# --------------------------------------------------------------------------
# find_grain
# --------------------------------------------------------------------------

def test_a_sphere_of_limn2o4_is_found_with_its_volume_depth_and_composition(grain_run):
    run, table, _, _ = grain_run
    g = find_grain(run, table, ratios=RATIOS)
    assert g.found and g.reason is None
    assert g.field == "Mn/(Ni+Co+Mn)" and g.grain_side == "richer"
    assert g.closed and g.volume_method == "mesh"
    assert g.volume_nm3 == pytest.approx(4 / 3 * math.pi * 6 ** 3, rel=0.15)
    assert g.depth_min_nm == pytest.approx(-26.0, abs=1.0)
    assert g.depth_max_nm == pytest.approx(-14.0, abs=1.0)
    assert g.centroid_nm == pytest.approx((1.0, -1.0, -20.0), abs=0.5)
    # the threshold: the Mn/(Ni+Co+Mn) of an equal-volume mixture of the phases (0.1 and 1),
    # weighted by their Ni+Co+Mn atoms per nm^3
    assert g.matrix_fraction == pytest.approx(0.1, abs=0.02)
    assert g.grain_fraction == pytest.approx(1.0, abs=0.02)
    tm_m, tm_g = (DENSITY * _tm_per_ion(p) for p in ("NMC811", "LiMn2O4"))
    assert g.threshold_fraction == pytest.approx((tm_g * 1.0 + tm_m * 0.1) / (tm_g + tm_m),
                                                 abs=0.02)
    # the ions inside: LiMn2O4 (no Ni; Li/(Li+Mn) = 1/3), counting errors with them
    assert g.ratios["Ni/(Ni+Co+Mn)"].value < 0.02
    assert g.ratios["Li/(Li+Mn)"].value == pytest.approx(1 / 3, abs=0.02)
    assert g.ratios["Li/(Li+Ni+Co+Mn)"].value == pytest.approx(1 / 3, abs=0.02)
    assert 0 < g.ratios["Li/(Li+Mn)"].error < 0.01
    assert g.ions_inside == pytest.approx(DENSITY * 4 / 3 * math.pi * 6 ** 3, rel=0.15)


def test_the_proxigram_crosses_from_the_grain_to_the_matrix(grain_run):
    run, table, _, _ = grain_run
    p = find_grain(run, table, ratios=RATIOS).proxigram
    assert p.kind == "isosurface" and p.bin_nm == 0.5
    inside, outside = p.distance < -1, (p.distance > 1) & (p.distance < 8)

    def pooled(el, sel):                  # at.% of the atoms of the bins together
        return float(np.sum(p.percent[el][sel] * p.atoms[sel]) / p.atoms[sel].sum())

    # at.% of the ions' atoms, from the formula units above
    assert pooled("Ni", inside) < 0.5
    mn_in = 2.0 / (1 + 2 + 1 + 2 * 1.5)                  # LiMn2O4: Mn atoms per atom
    assert pooled("Mn", inside) == pytest.approx(100 * mn_in, abs=1.5)
    ni_out = 0.8 / (1 + 0.8 + 0.1 + 0.1 + 0.5 + 2 * 0.75)
    assert pooled("Ni", outside) == pytest.approx(100 * ni_out, abs=1.0)
    # the surface is where the composition changes: within a bin of 0
    mn = p.percent["Mn"]
    assert mn[(p.distance > -1) & (p.distance < 0)][0] > 20
    assert mn[(p.distance > 0.5) & (p.distance < 1)][0] < 5
    ok = p.atoms > 0
    c = p.percent["Mn"][ok] / 100
    assert np.allclose(p.error["Mn"][ok], 100 * np.sqrt(c * (1 - c) / p.atoms[ok]))


def test_a_grain_cut_by_the_edge_of_the_data_has_the_volume_inside_it(tmp_path):
    centre = (10.0, 0.0, -20.0)                 # 6 nm radius: 4 nm beyond the wall
    run, table, _, _ = write(tmp_path, "cut", make_run(seed=4, sphere=(6.0, centre,
                                                                       "LiMn2O4")))
    g = find_grain(run, table, ratios=RATIOS)
    assert g.found and not g.closed and g.volume_method == "voxels"
    expected = volume_inside_cylinder(6.0, np.array(centre))
    assert expected < 0.8 * 4 / 3 * math.pi * 6 ** 3
    assert g.volume_nm3 == pytest.approx(expected, rel=0.15)
    assert (g.depth_min_nm, g.depth_max_nm) == pytest.approx((-26.0, -14.0), abs=1.0)
    assert g.ratios["Ni/(Ni+Co+Mn)"].value < 0.03
    # cut by the start of the run (z = 0): a cap of 4 nm of a 6 nm sphere left out
    run, table, _, _ = write(tmp_path, "top", make_run(seed=5, sphere=(6.0, (0, 0, -2.0),
                                                                       "LiMn2O4")))
    g = find_grain(run, table)
    cap = math.pi * 4 ** 2 * (3 * 6 - 4) / 3
    assert g.found and not g.closed
    assert g.volume_nm3 == pytest.approx(4 / 3 * math.pi * 6 ** 3 - cap, rel=0.15)
    assert g.depth_min_nm == pytest.approx(-8.0, abs=1.0)
    assert g.depth_max_nm == pytest.approx(0.0, abs=1.0)


@pytest.mark.parametrize("kind", ["homogeneous", "coated", "other_phase"])
def test_no_false_grain(tmp_path, kind):
    run = {"homogeneous": make_run(seed=6),
           "coated": make_run(seed=7, shell_nm=3.0),
           "other_phase": make_run(seed=8, matrix="Li1.1Mn1.9O4")}[kind]
    run, table, _, _ = write(tmp_path, kind, run)
    for exclude in ((), ("Cr",)):
        g = find_grain(run, table, exclude=exclude, ratios=RATIOS)
        assert not g.found and g.volume_nm3 is None and g.proxigram is None
        assert g.reason.startswith("the whole analysed volume is one phase: Mn/(Ni+Co+Mn) = ")
        expected = 1.0 if kind == "other_phase" else 0.1
        assert g.matrix_fraction == pytest.approx(expected, abs=0.02)


def test_a_grain_poorer_in_mn_than_the_matrix_is_found_too(tmp_path):
    run, table, _, _ = write(tmp_path, "nmc-in-spinel",
                             make_run(seed=9, matrix="LiMn2O4",
                                      sphere=(6.0, (0.0, 0.0, -20.0), "NMC811")))
    g = find_grain(run, table, ratios=RATIOS)
    assert g.found and g.grain_side == "poorer" and g.field == "Mn/(Ni+Co+Mn)"
    assert g.volume_nm3 == pytest.approx(4 / 3 * math.pi * 6 ** 3, rel=0.15)
    assert g.ratios["Ni/(Ni+Co+Mn)"].value == pytest.approx(0.8, abs=0.05)


@pytest.mark.parametrize("n, why", [(3000, "median of 420 voxels of 4 nm"),
                                    (300, "too few Ni+Co+Mn atoms per voxel even at 4 nm")])
def test_sparse_data_is_voxelised_coarser_or_refused_with_a_reason(n, why):
    rng = np.random.default_rng(0)                # 20 x 20 x 50 nm: 0.15, 0.015 ions/nm^3
    x, y, z = rng.uniform(-10, 10, n), rng.uniform(-10, 10, n), rng.uniform(-50, 0, n)
    mass = np.where(rng.random(n) < 0.1, 54.938, 57.935)
    g = find_grain(liprobe.Run.from_arrays(x=x, y=y, z=z, mass=mass), range_table())
    assert not g.found and why in g.reason


def test_bad_input_is_an_error_or_a_reason_never_a_traceback(grain_run):
    run, table, _, _ = grain_run
    with pytest.raises(liprobe.LiprobeError, match="needs Mn, which is excluded"):
        find_grain(run, table, exclude=("Mn",))
    with pytest.raises(liprobe.LiprobeError, match="'Xx' is not a chemical element"):
        find_grain(run, table, numerator=("Xx",))
    no_tm = RangeTable.from_ranges([Range(6.8, 7.2, parse_ion("Li+"))])
    g = find_grain(run, no_tm)
    assert not g.found and "no ranged ion carries Ni, Co, Mn" in g.reason
    empty = run.select(np.zeros(run.n_ions, bool))
    assert "no ions" in find_grain(empty, table).reason
    with pytest.raises(liprobe.LiprobeError):
        proxigram_from_artefact({"proxigram": {"elements": ["Mn"]}})


def test_huge_runs_are_thinned_and_say_so(grain_run):
    run, table, _, _ = grain_run
    g = find_grain(run, table, ratios=RATIOS, max_ions=(run.n_ions + 1) // 2)
    assert g.found and g.ion_step == 2 and "one ion in 2 used" in g.notes[0]
    assert g.volume_nm3 == pytest.approx(4 / 3 * math.pi * 6 ** 3, rel=0.15)


# --------------------------------------------------------------------------
# the study's group, its columns and the report's files
# --------------------------------------------------------------------------

HEAD = f"""\
[study]
name = "grains"
roi = "none"
exclude = ["Cr"]
ratios = {json.dumps(list(RATIOS))}
"""


def _manifest(folder, runs):
    text = HEAD + "".join(f'\n[[runs]]\nname = "{n}"\ndata = "{d}"\nranges = "{r}"\n'
                          f'material = "NMC811"\ncoating = "{c}"\n'
                          for n, d, r, c in runs)
    path = folder / "study.toml"
    path.write_text(text)
    return path


def test_the_group_gives_the_columns_or_none_with_a_reason(grain_run, tmp_path):
    _, _, epos, rrng = grain_run
    _, _, cepos, crrng = write(tmp_path, "coated", make_run(seed=7, shell_nm=3.0))
    m = parse_manifest(_manifest(tmp_path, [("g", epos, rrng, "none"),
                                            ("c", cepos, crrng, "Cr")]).read_text(),
                       str(tmp_path / "study.toml"))
    res = analyse_run(m.runs[0], m.params)
    v = res["values"]
    assert res["status"] == "ok"
    assert v["grain_volume_nm3"] == pytest.approx(4 / 3 * math.pi * 6 ** 3, rel=0.15)
    assert v["grain_depth_min_nm"] == pytest.approx(-26.0, abs=1.0)
    # the planted sphere's share of the cylinder's volume (uniform density)
    assert v["grain_ion_fraction"] == pytest.approx(
        4 / 3 * math.pi * 6 ** 3 / (math.pi * RADIUS ** 2 * LENGTH), rel=0.15)
    assert v["grain_Li/(Li+Mn)"] == pytest.approx(1 / 3, abs=0.02)
    assert 0 < v["grain_Li/(Li+Mn)_err"] < 0.01
    art = res["artefacts"]["grain"]
    prox = proxigram_from_artefact(json.loads(json.dumps(art)))        # JSON and back
    assert prox.n_bins > 10 and art["surface"]["volume_nm3"] == v["grain_volume_nm3"]
    for c in ("grain_volume_nm3", "grain_depth_min_nm", "grain_depth_max_nm",
              "grain_Ni/(Ni+Co+Mn)", "grain_Ni/(Ni+Co+Mn)_err"):
        assert column_info(c)[1], c
    assert column_info("grain_volume_nm3")[0] == "nm^3"
    res = analyse_run(m.runs[1], m.params)
    v, why = res["values"], res["reasons"]
    names = ["grain_volume_nm3", "grain_ion_fraction", "grain_depth_min_nm",
             "grain_depth_max_nm"] + \
        [f"grain_{r}" for r in RATIOS]
    for c in names:
        assert v[c] is None, c
        assert why[c].startswith("no grain: the whole analysed volume is one phase"), c
    for r in RATIOS:
        assert v[f"grain_{r}_err"] is None
    assert "grain" not in res.get("artefacts", {})


@pytest.mark.slow
def test_study_and_report_write_the_columns_the_proxigram_csv_and_figure(grain_run,
                                                                         tmp_path):
    from liprobe.cli import cli

    _, _, epos, rrng = grain_run
    _, _, hepos, hrrng = write(tmp_path, "hom", make_run(seed=6))
    manifest = _manifest(tmp_path, [("g", epos, rrng, "none"), ("h", hepos, hrrng, "none")])
    out = tmp_path / "out"
    result = run_study(manifest, out, workers=0)
    assert result.exit_code == 0
    row = {r["run"]: r for r in result.rows}
    assert row["g"]["grain_volume_nm3"] > 0 and row["h"]["grain_volume_nm3"] is None
    import pandas as pd

    csv = pd.read_csv(out / "runs.csv")
    assert "grain_Ni/(Ni+Co+Mn)_err" in csv.columns
    assert csv["grain_volume_nm3"].tolist()[0] == pytest.approx(row["g"]["grain_volume_nm3"])
    r = CliRunner().invoke(cli, ["report", str(out), "--json", "-q"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["figures"]["grain_proxigram_g"] == [str(out / "figures" / f"grain_proxigram_g.{e}")
                                                for e in ("png", "svg")]
    prox_csv = out / "grains" / "g.proxigram.csv"
    assert d["tables"]["grain_proxigram_g"] == str(prox_csv)
    assert not (out / "grains" / "h.proxigram.csv").exists()
    lines = prox_csv.read_text().splitlines()
    head = {ln[2:].split(": ", 1)[0]: json.loads(ln[2:].split(": ", 1)[1])
            for ln in lines if ln.startswith("# ")}
    assert head["volume_nm3"] == pytest.approx(row["g"]["grain_volume_nm3"])
    body = pd.read_csv(prox_csv, comment="#")
    assert list(body.columns[:5]) == ["lo_nm", "hi_nm", "distance_nm", "atoms", "ions"]
    deep = body[body["distance_nm"] < -2]
    assert deep["Ni_at%"].mean() < 1.0 and deep["Mn_at%"].mean() > 25
    assert os.path.getsize(out / "figures" / "grain_proxigram_g.png") > 10_000
    html = open(out / "report.html", encoding="utf-8").read()
    assert 'id="grain_proxigram_g"' in html and "Grains of another phase" in html


# --------------------------------------------------------------------------
# a simulated grain
# --------------------------------------------------------------------------

def analysed_part(truth, centre, rad, b=0.5, n=400_000, seed=0) -> float:
    """The part of a sphere inside the analysed volume (nm^3, truth frame), from the true
    positions: a point of the sphere was analysed when it lies between the shallowest and
    the deepest true position of its b x b nm column (the apex when the run started and
    when it ended)."""
    x, y, z = (np.asarray(truth[k], np.float64) for k in "xyz")
    m = int(2 * (rad + b) / b) + 1

    def column(px, py):
        return (np.floor((px - centre[0] + rad + b) / b).astype(np.int64) * m
                + np.floor((py - centre[1] + rad + b) / b).astype(np.int64))

    near = (np.abs(x - centre[0]) < rad + b) & (np.abs(y - centre[1]) < rad + b)
    key = column(x[near], y[near])
    lo, hi = np.full(m * m, np.inf), np.full(m * m, -np.inf)
    np.minimum.at(lo, key, z[near])
    np.maximum.at(hi, key, z[near])
    p = np.random.default_rng(seed).uniform(-rad, rad, (n, 3))
    p = p[(p ** 2).sum(axis=1) < rad ** 2] + centre
    k = column(p[:, 0], p[:, 1])
    return 4 / 3 * math.pi * rad ** 3 * float(((p[:, 2] >= lo[k]) & (p[:, 2] <= hi[k])).mean())


@pytest.mark.slow
def test_a_simulated_grain_is_found_with_the_volume_of_its_analysed_part(tmp_path):
    """The simulator's LiMn2O4 sphere (10 nm across, its centre 6 nm deep: the run of 1e6
    ions ends inside it), against the truth: the part of the sphere the run evaporated,
    from .truth.pos. The reconstruction's own distortions (the grain's lower field
    focuses its ions) are within the 15 %."""
    from liprobe.cli import cli

    f = tmp_path / "g.epos"
    r = CliRunner().invoke(cli, ["simulate", "--coating", "cr", "--ions", "1e6",
                                 "--fracture", "none", "--phases",
                                 "LiMn2O4=sphere:10@0,0,-6", "-o", str(f), "--quiet"])
    assert r.exit_code == 0, r.output
    run, table = liprobe.read(f), liprobe.read_ranges(tmp_path / "g.rrng")
    truth = liprobe.read(tmp_path / "g.truth.pos")
    g = find_grain(run, table, exclude=("Cr",), ratios=RATIOS)
    assert g.found and g.grain_side == "richer"
    expected = analysed_part(truth, np.array([0.0, 0.0, -6.0]), 5.0)
    assert 0.2 * 4 / 3 * math.pi * 5 ** 3 < expected < 0.9 * 4 / 3 * math.pi * 5 ** 3
    assert g.volume_nm3 == pytest.approx(expected, rel=0.15)
    inside = truth["x"] ** 2 + truth["y"] ** 2 + (truth["z"] + 6.0) ** 2 < 25.0
    z_rec = run["z"][inside]               # where the grain's ions were reconstructed
    assert g.depth_min_nm == pytest.approx(float(np.percentile(z_rec, 0.5)), abs=1.0)
    assert g.depth_max_nm == pytest.approx(float(np.percentile(z_rec, 99.5)), abs=1.0)
    assert g.ratios["Ni/(Ni+Co+Mn)"].value < 0.05


@pytest.mark.slow
def test_the_presets_grain_in_matrix_run_finds_its_grain_within_15_percent(tmp_path):
    """Issue 19's criterion: the paper preset's grain-in-matrix run at its default size
    (6 M ions, the 18 nm LiMn2O4 grain 8 to 26 nm deep, partly outside the 25 nm ROI),
    analysed as the study does (the segment, Cr left out), against the truth's
    ``grain.volume_nm3`` (the part of the grain inside the analysed volume)."""
    from liprobe.simulate import simulate_to_files
    from liprobe.simulate.preset import PAPER_IONS, preset_runs

    runs = preset_runs("paper")
    i = next(k for k, r in enumerate(runs) if r.phases)
    path = tmp_path / "grain.epos"
    truth = simulate_to_files(runs[i].config(PAPER_IONS, i), path)
    g_true = truth["grain"]
    assert g_true["volume_nm3"] == pytest.approx(4 / 3 * math.pi * 9 ** 3, rel=0.01)
    g = find_grain(liprobe.read(path), liprobe.read_ranges(tmp_path / "grain.rrng"),
                   exclude=("Cr",), ratios=RATIOS)
    assert g.found and g.grain_side == "richer"
    assert g.volume_nm3 == pytest.approx(g_true["volume_nm3"], rel=0.15)
    # the depths are calibrated: the grain's reconstructed depth range is the truth's
    assert g.depth_min_nm == pytest.approx(g_true["depth_min_nm"], abs=1.0)
    assert g.depth_max_nm == pytest.approx(g_true["depth_max_nm"], abs=1.0)
    assert g.ratios["Ni/(Ni+Co+Mn)"].value < 0.05
    assert g.ratios["Li/(Li+Mn)"].value == pytest.approx(1 / 3, abs=0.03)
