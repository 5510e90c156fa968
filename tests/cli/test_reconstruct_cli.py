"""``liprobe reconstruct`` and ``liprobe history``: outputs, JSON, one-line errors."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import liprobe
from liprobe.cli import cli
from liprobe.spatial.reconstruct import ReconstructionParameters, project_to_detector, reconstruct


def run_cli(*args):
    res = CliRunner().invoke(cli, list(map(str, args)))
    return res.exit_code, res.stdout, res.stderr


def one_line_error(code, out, err):
    assert code == 1 and out == ""
    assert err.startswith("liprobe: error: ") and err.strip().count("\n") == 0
    return err


@pytest.fixture
def synthetic_epos(tmp_path):
    """An .epos with hits from a 15 nm cap and a voltage of k F R (LEAP 5000 XS, NMC811)."""
    rng = np.random.default_rng(0)
    n = 30_000
    R = np.linspace(15.0, 18.0, n)
    d = 0.5 * R * np.sqrt(rng.uniform(0, 1, n))
    phi = rng.uniform(-math.pi, math.pi, n)
    x, y = d * np.cos(phi), d * np.sin(phi)
    dx, dy = project_to_detector(x, y, R, flight_path_mm=100.0, icf=1.65)
    zeros = np.zeros(n, np.float32)
    run = liprobe.Run.from_arrays(
        x=zeros, y=zeros, z=zeros, mass=rng.choice([7.0, 16.0, 32.0], n).astype(np.float32),
        tof=zeros, v_dc=(R * 3.3 * 35.0).astype(np.float32), v_pulse=zeros,
        det_x=dx.astype(np.float32), det_y=dy.astype(np.float32),
        pulse_delta=np.ones(n, np.int32), multiplicity=np.ones(n, np.int32))
    p = tmp_path / "synthetic.epos"
    liprobe.write(p, run)
    return p, x, y


def test_reconstruct_writes_pos_and_reports_json(synthetic_epos, tmp_path):
    path, x, y = synthetic_epos
    out = tmp_path / "out.pos"
    code, stdout, err = run_cli("reconstruct", path, "-o", out, "--json")
    assert code == 0, err
    d = json.loads(stdout)
    assert d["parameters"]["instrument"] == "LEAP 5000 XS"
    assert d["parameters"]["efficiency"] == 0.8 and d["parameters"]["protocol"] == "geiser"
    assert d["radius_start_nm"] == pytest.approx(15.0, rel=1e-3)
    assert d["radius_end_nm"] == pytest.approx(18.0, rel=1e-3)
    assert d["depth_nm"] > 0 and d["implied_shank_angle_deg"] > 0
    assert d["output"] == str(out)
    rec = liprobe.read(out)
    assert rec.format == "pos" and rec.n_ions == len(x)
    np.testing.assert_allclose(rec["x"], x, atol=2e-3)
    np.testing.assert_allclose(rec["y"], y, atol=2e-3)
    z = rec["z"]
    assert z.max() <= 0 and z[-1000:].mean() < z[:1000].mean()
    # the same as the Python function
    run = liprobe.read(path)
    r = reconstruct(run["det_x"], run["det_y"], run["v_dc"], ReconstructionParameters.preset())
    np.testing.assert_array_equal(rec["z"], r.z_nm)


def test_reconstruct_options_reach_the_parameters(synthetic_epos, tmp_path):
    path, _, _ = synthetic_epos
    code, stdout, err = run_cli(
        "reconstruct", path, "-o", tmp_path / "o.epos", "--protocol", "bas", "--icf", "1.4",
        "--k-factor", "4", "--evaporation-field", "30", "--efficiency", "0.5",
        "--atomic-volume", "1e-2", "--flight-path", "110", "--detector-radius", "45",
        "--instrument", "LEAP 5000 XR", "--material", "Cr", "--json")
    assert code == 0, err
    p = json.loads(stdout)["parameters"]
    assert (p["protocol"], p["icf"], p["k_factor"], p["evaporation_field_V_per_nm"],
            p["efficiency"], p["atomic_volume_nm3"], p["flight_path_mm"],
            p["detector_radius_mm"], p["instrument"], p["material"]) == \
        ("bas", 1.4, 4.0, 30.0, 0.5, 0.01, 110.0, 45.0, "LEAP 5000 XR", "Cr")
    assert liprobe.read(tmp_path / "o.epos").format == "epos"


def test_reconstruct_with_shank_radius_on_real_si(real, tmp_path):
    out = tmp_path / "si.epos"
    code, stdout, err = run_cli("reconstruct", real / "apav_si" / "Si_first100000.epos",
                                "--radius", "shank:10:20", "-o", out, "--json")
    assert code == 0, err
    d = json.loads(stdout)
    assert d["radius_start_nm"] == 20.0
    assert d["implied_shank_angle_deg"] == pytest.approx(10.0, abs=1e-6)
    assert d["parameters"]["radius"] == "shank" and d["parameters"]["shank_angle_deg"] == 10.0
    rec = liprobe.read(out)
    assert rec.n_ions == 100_000 and np.all(np.isfinite(rec["z"])) and rec["z"].max() <= 0


def test_reconstructing_a_pos_is_a_one_line_error(real, tmp_path):
    code, out, err = run_cli("reconstruct", real / "apav_si" / "Si.pos", "-o", tmp_path / "o.pos")
    err = one_line_error(code, out, err)
    assert "Si.pos" in err and "no detector coordinates (det_x, det_y)" in err
    assert ".epos or .apt" in err
    assert not (tmp_path / "o.pos").exists()


def test_missing_voltage_is_a_one_line_error_naming_the_shank_option(real, tmp_path):
    code, out, err = run_cli("reconstruct", real / "apav_si" / "Si.apt", "-o", tmp_path / "o.pos")
    err = one_line_error(code, out, err)
    assert "no voltage column (v_dc)" in err and "--radius shank:ANGLE_DEG:R0_NM" in err
    # the .epos has a voltage column, but it is zero throughout
    code, out, err = run_cli("reconstruct", real / "apav_si" / "Si_first100000.epos",
                             "-o", tmp_path / "o.pos")
    err = one_line_error(code, out, err)
    assert "zero for every ion" in err and "--radius shank" in err


def test_usage_errors_exit_2(synthetic_epos, tmp_path):
    path, _, _ = synthetic_epos
    assert run_cli("reconstruct", path)[0] == 2                                  # no -o
    assert run_cli("reconstruct", path, "-o", tmp_path / "o.csv")[0] == 2
    assert run_cli("reconstruct", path, "-o", tmp_path / "o.pos", "--radius", "shank:10")[0] == 2
    assert run_cli("reconstruct", path, "-o", tmp_path / "o.pos", "--efficiency", "2")[0] == 2
    assert run_cli("reconstruct", path, "-o", tmp_path / "o.pos", "--instrument", "X")[0] == 2


@pytest.mark.parametrize("name, slabs", [("Si_first100000.epos", 5), ("Si.apt", 10)])
def test_compare_to_file_positions_on_real_si(real, name, slabs):
    code, stdout, err = run_cli("reconstruct", real / "apav_si" / name,
                                "--compare-to-file-positions", "--slabs", slabs, "--json")
    assert code == 0, err
    d = json.loads(stdout)
    assert len(d["slabs"]) == slabs
    lat, z = d["residual_nm"]["lateral"], d["residual_nm"]["z"]
    # measured: Si_first100000.epos 0.03 / 0.08 nm lateral, Si.apt 0.055 / 0.15 nm
    assert 0 < lat["median"] < 0.08 and lat["p95"] < 0.25
    assert 0 < z["median"] < 0.03
    radii = [s["radius_nm"] for s in d["slabs"]]
    assert radii == sorted(radii)
    code, text, _ = run_cli("reconstruct", real / "apav_si" / name,
                            "--compare-to-file-positions", "--slabs", slabs)
    assert code == 0 and "residuals (nm): lateral median" in text


def test_compare_needs_positions(real):
    code, out, err = run_cli("reconstruct", real / "apav_si" / "Si.pos",
                             "--compare-to-file-positions")
    err = one_line_error(code, out, err)
    assert "det_x, det_y" in err


def test_history_on_real_si(real, tmp_path):
    png = tmp_path / "h.png"
    code, stdout, err = run_cli("history", real / "apav_si" / "Si_first100000.epos",
                                "-o", png, "--json")
    assert code == 0, err
    d = json.loads(stdout)
    assert d["voltage"] is None and "zero for every ion" in d["voltage_reason"]
    assert d["multiplicity"]["counts"] == {"0": 2088, "1": 95966, "2": 1821, "3": 112, "4": 11,
                                           "5": 1, "7": 1}
    assert d["multiplicity"]["multi_hit_fraction"] == pytest.approx(0.04034)
    assert d["abrupt_end"] is False
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "h.svg"
    code, text, err = run_cli("history", real / "apav_si" / "Si.pos", "-o", svg)
    assert code == 0, err
    assert "voltage: none" in text and "multiplicity: none" in text
    assert svg.read_text().lstrip().startswith("<?xml")


def test_history_reports_voltage_jumps(tmp_path):
    rng = np.random.default_rng(3)
    n = 50_000
    v = np.linspace(3000, 4000, n)
    v[20_000:] *= 0.8
    zeros = np.zeros(n, np.float32)
    run = liprobe.Run.from_arrays(
        x=zeros, y=zeros, z=zeros, mass=rng.uniform(1, 50, n).astype(np.float32), tof=zeros,
        v_dc=v.astype(np.float32), v_pulse=zeros, det_x=rng.uniform(-20, 20, n).astype(np.float32),
        det_y=rng.uniform(-20, 20, n).astype(np.float32), pulse_delta=np.ones(n, np.int32),
        multiplicity=np.ones(n, np.int32))
    p = tmp_path / "jump.epos"
    liprobe.write(p, run)
    code, stdout, err = run_cli("history", p, "--json")
    assert code == 0, err
    jumps = json.loads(stdout)["voltage_jumps"]
    assert len(jumps) == 1 and jumps[0]["ion_index"] == 20_000
    assert jumps[0]["relative_change"] == pytest.approx(-0.2, abs=0.01)
    # reconstructing from that voltage warns
    code, stdout, err = run_cli("reconstruct", p, "-o", tmp_path / "o.pos", "--json")
    assert code == 0
    assert any("jumps by" in w for w in json.loads(stdout)["warnings"])
    assert "warning: the voltage jumps" in err


def test_history_bad_image_extension_is_a_usage_error(real, tmp_path):
    code, _, _ = run_cli("history", real / "apav_si" / "Si.pos", "-o", tmp_path / "h.jpg")
    assert code == 2
