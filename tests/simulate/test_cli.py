"""``liprobe simulate`` on the command line."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import liprobe
from liprobe.cli import cli


def run_cli(*args):
    res = CliRunner().invoke(cli, list(map(str, args)))
    return res.exit_code, res.stdout, res.stderr


def test_simulate_writes_the_run_its_ranges_and_truth_and_prints_a_json_summary(tmp_path):
    out = tmp_path / "run.epos"
    code, stdout, _ = run_cli("simulate", "--material", "NMC811", "--coating", "Cr",
                              "--ions", "4e4", "--seed", "1", "-o", out, "--json")
    assert code == 0
    s = json.loads(stdout)
    assert s["ions_detected"] == 40_000 and s["coating"] == "Cr" and s["seed"] == 1
    assert s["files"] == {"data": "run.epos", "format": "epos", "ranges": "run.rrng",
                          "truth": "run.truth.json", "truth_positions": "run.truth.pos",
                          "truth_positions_columns": s["files"]["truth_positions_columns"]}
    run = liprobe.read(out)
    assert run.format == "epos" and run.n_ions == 40_000
    table = liprobe.read_ranges(tmp_path / "run.rrng")
    assert {"Li+", "O+", "O2+", "Ni++", "Cr+", "CrO+"} <= {i.name for i in table.ions}
    assert liprobe.read(tmp_path / "run.truth.pos").n_ions == 40_000
    truth = json.loads((tmp_path / "run.truth.json").read_text())
    assert truth["inputs"]["coating_thickness_nm"] == 5.0


def test_simulate_text_output_names_the_files(tmp_path):
    code, stdout, _ = run_cli("simulate", "--ions", "20000", "--quiet", "--fracture", "none",
                              "-o", tmp_path / "a.epos")
    assert code == 0
    assert "20,000 ions of NMC811, 5 pJ" in stdout and "a.truth.json" in stdout
    # a fixed fracture point: the fracture model (the default, auto) rarely breaks a run of
    # 20,000 ions (0.1 nm deep), where the old FRACTURE_RANGE always did
    code, stdout, _ = run_cli("simulate", "--ions", "20000", "--quiet", "--fracture", "0.5",
                              "-o", tmp_path / "b.epos")
    assert code == 0 and "(fractured: 20,000 requested)" in stdout


def test_simulate_pos_by_format_option_and_by_extension(tmp_path):
    code, _, _ = run_cli("simulate", "--ions", "10000", "--format", "pos", "-o",
                         tmp_path / "run.pos")
    assert code == 0 and liprobe.read(tmp_path / "run.pos").format == "pos"
    code, _, _ = run_cli("simulate", "--ions", "10000", "-o", tmp_path / "b.pos")
    assert code == 0 and liprobe.read(tmp_path / "b.pos").columns == ("x", "y", "z", "mass")


def test_simulate_formula_xr_phases_and_thickness(tmp_path):
    code, stdout, _ = run_cli("simulate", "--material", "LiNi0.6Co0.2Mn0.2O2", "--coating", "cr",
                              "--coating-thickness", "3", "--instrument", "LEAP 5000 XR",
                              "--phases", "LiMn2O4=sphere:10@0,0,-2", "--ions", "30000",
                              "--laser-pj", "10", "-o", tmp_path / "r.epos", "--json")
    assert code == 0
    t = json.loads((tmp_path / "r.truth.json").read_text())
    assert t["inputs"]["instrument"] == "LEAP 5000 XR"
    assert t["inputs"]["coating_thickness_nm"] == 3.0 and t["inputs"]["laser_pj"] == 10.0
    assert [p["kind"] for p in t["phases"]] == ["material", "phase", "coating"]
    assert json.loads(stdout)["laser_pj"] == [10.0]
    seg = t["segments"][0]
    assert seg["laser_pj"] == 10.0
    # a lower field at 10 pJ than at 5 pJ (the evaporation model at the same geometry)
    from liprobe.simulate import DEFAULT_EVAPORATION, operating_point
    assert seg["field_V_per_nm"] < operating_point(
        DEFAULT_EVAPORATION, 5.0, coated=True, radius_nm=30.0, thickness_nm=3.0,
        efficiency=0.52).oxide_field_v_nm


def test_same_seed_gives_the_same_bytes_on_the_command_line(tmp_path):
    for name in ("a", "b"):
        assert run_cli("simulate", "--ions", "15000", "--seed", "3", "-o",
                       tmp_path / f"{name}.epos")[0] == 0
    assert (tmp_path / "a.epos").read_bytes() == (tmp_path / "b.epos").read_bytes()
    a = np.fromfile(tmp_path / "a.truth.pos", ">f4")
    b = np.fromfile(tmp_path / "b.truth.pos", ">f4")
    assert np.array_equal(a, b)


@pytest.mark.parametrize("args, what", [
    (["--material", "LiXx2O4"], "Xx"),
    (["--material", "banana"], "formula"),
    (["--coating-thickness", "-1"], "negative"),
    (["--ions", "0"], "above 0"),
    (["--ions", "-5"], "above 0"),
    (["--ions", "1.5"], "whole number"),
    (["--coating", "Ni"], "Ni"),
    (["--instrument", "LEAP 9000"], "unknown instrument"),
    (["--phases", "LiMn2O4=cube:3"], "ROI"),
    (["--phases", "LiMn2O4"], "MATERIAL="),
    (["--phases", "LiMn2O4=cylinder:10"], "sphere or a box"),
    (["--hydrides"], "--hydrogen"),
    (["--schedule", "0:5,x:10"], "ION:PJ"),
    (["--schedule", "100:5"], "start at ion 0"),
    (["--fracture", "2"], "(0, 1]"),
    (["--fracture", "soon"], "auto, none"),
    (["--workers", "2"], "--preset"),
])
def test_bad_input_is_a_usage_error(tmp_path, args, what):
    code, _, stderr = run_cli("simulate", *args, "--ions", "1000", "-o", tmp_path / "r.epos") \
        if "--ions" not in args else run_cli("simulate", *args, "-o", tmp_path / "r.epos")
    assert code == 2
    assert what in stderr
    assert not (tmp_path / "r.epos").exists()


def test_an_unknown_extension_is_a_usage_error(tmp_path):
    code, _, stderr = run_cli("simulate", "--ions", "1000", "-o", tmp_path / "r.apt")
    assert code == 2 and ".apt" in stderr


def test_a_missing_output_folder_is_one_line_and_exit_1(tmp_path):
    code, _, stderr = run_cli("simulate", "--ions", "1000", "-o", tmp_path / "no" / "r.epos")
    assert code == 1
    assert stderr.count("\n") == 1 and "folder does not exist" in stderr


def test_simulate_schedule_fracture_mobility_and_hydrogen_options(tmp_path):
    code, stdout, err = run_cli("simulate", "--ions", "40000", "--schedule", "0:5,2e4:15",
                                "--fracture", "0.75", "--no-li-mobility", "--hydrogen",
                                "--hydrides", "--coating", "Cr", "-o", tmp_path / "s.epos",
                                "--json")
    assert code == 0, err
    s = json.loads(stdout)
    assert s["laser_pj"] == [5.0, 15.0] and s["ions_detected"] == 30_000 and s["fractured"]
    t = json.loads((tmp_path / "s.truth.json").read_text())
    assert t["inputs"]["mobility"] is None and t["inputs"]["hydrogen"]["hydrides"] is True
    assert [seg["start_ion"] for seg in t["segments"]] == [0, 20_000]
    assert t["species"]["CrH+"]["emitted"] > 0 and t["species"]["H+"]["detected"] > 0
