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
    code, stdout, err = run_cli("reconstruct", path, "-o", out, "--material", "NMC811", "--json")
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
    r = reconstruct(run["det_x"], run["det_y"], run["v_dc"],
                    ReconstructionParameters.preset(material="NMC811"))
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
                                "--radius", "shank:10:20", "--atomic-volume", "0.02", "-o", out,
                                "--json")
    assert code == 0, err
    d = json.loads(stdout)
    assert d["radius_start_nm"] == 20.0
    assert d["implied_shank_angle_deg"] == pytest.approx(10.0, abs=1e-6)
    assert d["parameters"]["radius"] == "shank" and d["parameters"]["shank_angle_deg"] == 10.0
    rec = liprobe.read(out)
    assert rec.n_ions == 100_000 and np.all(np.isfinite(rec["z"])) and rec["z"].max() <= 0


def test_reconstructing_a_pos_is_a_one_line_error(real, tmp_path):
    code, out, err = run_cli("reconstruct", real / "apav_si" / "Si.pos", "-o", tmp_path / "o.pos",
                             "--atomic-volume", "0.02", "--evaporation-field", "33")
    err = one_line_error(code, out, err)
    assert "Si.pos" in err and "no detector coordinates (det_x, det_y)" in err
    assert ".epos or .apt" in err
    assert not (tmp_path / "o.pos").exists()


def test_missing_voltage_is_a_one_line_error_naming_the_shank_option(real, tmp_path):
    omega_fe = ("--atomic-volume", "0.02", "--evaporation-field", "33")
    code, out, err = run_cli("reconstruct", real / "apav_si" / "Si.apt", "-o", tmp_path / "o.pos",
                             *omega_fe)
    err = one_line_error(code, out, err)
    assert "no voltage column (v_dc)" in err and "--radius shank:ANGLE_DEG:R0_NM" in err
    # the .epos has a voltage column, but it is zero throughout
    code, out, err = run_cli("reconstruct", real / "apav_si" / "Si_first100000.epos",
                             "-o", tmp_path / "o.pos", *omega_fe)
    err = one_line_error(code, out, err)
    assert "zero for every ion" in err and "--radius shank" in err


def test_usage_errors_exit_2(synthetic_epos, tmp_path):
    path, _, _ = synthetic_epos
    mat = ("--material", "NMC811")
    assert run_cli("reconstruct", path, *mat)[0] == 2                            # no -o
    assert run_cli("reconstruct", path, "-o", tmp_path / "o.csv", *mat)[0] == 2
    code, _, err = run_cli("reconstruct", path, "-o", tmp_path / "o.pos", "--radius", "shank:10",
                           *mat)
    assert code == 2 and "shank:ANGLE_DEG:R0_NM" in err
    code, _, err = run_cli("reconstruct", path, "-o", tmp_path / "o.pos", "--efficiency", "2",
                           *mat)
    assert code == 2 and "efficiency must be at most 1" in err
    code, _, err = run_cli("reconstruct", path, "-o", tmp_path / "o.pos", "--instrument", "X",
                           *mat)
    assert code == 2 and "unknown instrument 'X'" in err


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
    code, stdout, err = run_cli("reconstruct", p, "-o", tmp_path / "o.pos", "--material", "Cr",
                                "--json")
    assert code == 0
    assert any("jumps by" in w for w in json.loads(stdout)["warnings"])
    assert "warning: the voltage jumps" in err


def test_history_bad_image_extension_is_a_usage_error(real, tmp_path):
    code, _, _ = run_cli("history", real / "apav_si" / "Si.pos", "-o", tmp_path / "h.jpg")
    assert code == 2


# -- no material assumed (issue "First hour"): Omega from the range file's Vol: -----------

def rrng_omega(text, mass=None):
    """Omega of an .rrng read independently of liprobe: over the [Ranges] lines that give a
    Vol: (atoms: the counts of the element keys), sum of Vol: over sum of atoms, each range
    weighted by the ions of ``mass`` in its window [lo, hi) when masses are given."""
    vol = atoms = 0.0
    for line in text.splitlines():
        if not line.lower().startswith("range") or "=" not in line:
            continue
        parts = line.split("=", 1)[1].split()
        lo, hi, fields = float(parts[0]), float(parts[1]), parts[2:]
        v = [float(f[4:]) for f in fields if f.lower().startswith("vol:")]
        n = sum(float(f.split(":")[1]) for f in fields
                if ":" in f and f.split(":")[0].lower() not in ("vol", "color", "name"))
        w = 1.0 if mass is None else float(np.count_nonzero((mass >= lo) & (mass < hi)))
        if v and v[0] > 0 and n > 0:
            vol += w * v[0]
            atoms += w * n
    return vol / atoms


def test_si_without_a_material_takes_omega_from_the_range_file(real, tmp_path):
    si = real / "apav_si"
    text_rrng = (si / "Si.RRNG").read_text()
    # by hand, unweighted: 25 ranges, 0.7042 nm^3 over 37 atoms
    assert rrng_omega(text_rrng) == pytest.approx(0.7042 / 37, rel=1e-12)
    # weighted by the ions in each window: the volume per atom of what was detected
    mass = np.fromfile(si / "Si_first100000.epos", dtype=">f4").reshape(-1, 11)[:, 3]
    omega = rrng_omega(text_rrng, mass)
    assert abs(omega - 0.7042 / 37) > 1e-4
    args = ("reconstruct", si / "Si_first100000.epos", "-r", si / "Si.RRNG", "--radius",
            "shank:10:30", "-o", tmp_path / "si.pos")
    code, text, err = run_cli(*args)
    assert code == 0, err
    assert "F_e n/a (radius from the shank angle)" in text
    assert f"Omega {omega:.6g} nm^3 (from the range file's Vol:)" in text
    assert "35.0" not in text and "0.00845" not in text and "NMC811" not in text
    code, stdout, err = run_cli(*args, "--json")
    assert code == 0, err
    p = json.loads(stdout)["parameters"]
    assert p["atomic_volume_nm3"] == pytest.approx(omega, rel=1e-12)
    assert p["evaporation_field_V_per_nm"] is None
    assert p["material"] == "from the range file's Vol:"
    # every Si range has a Vol:, so each ranged ion's volume is its range's and Omega does
    # not change the depth: a very different --atomic-volume gives the same reconstruction
    d = json.loads(stdout)
    code, stdout, err = run_cli(*args[:-1], tmp_path / "other.pos", "--atomic-volume", "1",
                                "--json")
    assert code == 0, err
    other = json.loads(stdout)
    assert other["parameters"]["atomic_volume_nm3"] == 1.0
    assert other["parameters"]["material"] is None
    assert other["depth_nm"] == d["depth_nm"] and other["radius_end_nm"] == d["radius_end_nm"]
    assert (tmp_path / "other.pos").read_bytes() == (tmp_path / "si.pos").read_bytes()


def test_without_material_atomic_volume_or_range_volumes_is_a_usage_error(real, tmp_path):
    si = real / "apav_si"
    want = ("no atomic volume: give --material NAME, --atomic-volume NM3, or a range file "
            "with Vol: (-r RANGES)")
    for extra in ((), ("-r", si / "Si.RRNG", "--no-range-volumes")):
        code, out, err = run_cli("reconstruct", si / "Si_first100000.epos", "--radius",
                                 "shank:10:30", "-o", tmp_path / "o.pos", *extra)
        assert code == 2 and out == "" and "Traceback" not in err
        line = err.strip().splitlines()[-1]
        assert line.startswith("Error: " + want) and "no material is assumed" in line
    assert "--no-range-volumes ignores the range file's Vol:" in err
    assert not (tmp_path / "o.pos").exists()


def test_a_voltage_radius_without_an_evaporation_field_is_a_usage_error(real, tmp_path):
    si = real / "apav_si"
    code, out, err = run_cli("reconstruct", si / "Si_first100000.epos", "-r", si / "Si.RRNG",
                             "--radius", "voltage", "-o", tmp_path / "o.pos")
    assert code == 2 and out == "" and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "needs the evaporation field" in line
    assert "--material NAME" in line and "--evaporation-field V_PER_NM" in line


def test_an_element_material_still_works_and_the_json_has_its_values(real, tmp_path):
    import periodictable

    si = real / "apav_si"
    code, stdout, err = run_cli("reconstruct", si / "Si_first100000.epos", "--material", "Al",
                                "--radius", "shank:10:30", "-o", tmp_path / "al.pos", "--json")
    assert code == 0, err
    p = json.loads(stdout)["parameters"]
    al = periodictable.elements.symbol("Al")
    assert p["material"] == "Al"
    assert p["atomic_volume_nm3"] == pytest.approx(al.mass / (al.density * 6.02214076e23)
                                                   * 1e21, rel=1e-12)
    assert p["evaporation_field_V_per_nm"] == 19.0            # Tsong 1978, Al+
    code, text, err = run_cli("reconstruct", si / "Si_first100000.epos", "--material", "Al",
                              "--radius", "shank:10:30", "-o", tmp_path / "al.pos")
    # a shank radius does not use F_e: the text says so, though Al has one (JSON: 19.0)
    assert code == 0 and "F_e n/a (radius from the shank angle)" in text and "(Al)" in text
    code, text, err = run_cli("reconstruct", si / "Si_first100000.epos", "--material", "Al",
                              "--atomic-volume", "0.02", "--radius", "shank:10:30", "-o",
                              tmp_path / "al2.pos")
    assert code == 0 and "Omega 0.02 nm^3 (given)" in text, text
    # Si has no tabulated field: fine with the shank radius
    code, stdout, err = run_cli("reconstruct", si / "Si_first100000.epos", "--material", "Si",
                                "--radius", "shank:10:30", "-o", tmp_path / "si.pos", "--json")
    assert code == 0, err
    assert json.loads(stdout)["parameters"]["evaporation_field_V_per_nm"] is None


def test_help_says_there_is_no_default_material():
    code, text, _ = run_cli("reconstruct", "--help")
    assert code == 0
    flat = " ".join(text.split())
    assert "No default" in flat and "range file's Vol: (-r)" in flat
    assert "NMC811]" not in flat and "default: NMC811" not in flat
