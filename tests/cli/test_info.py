"""``liprobe info``: JSON keys and values, exit codes, one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from liprobe.cli import cli


def run_cli(*args):
    res = CliRunner().invoke(cli, list(map(str, args)))
    return res.exit_code, res.stdout, res.stderr


def test_info_json_on_pos(real):
    code, out, err = run_cli("info", real / "apav_si" / "Si.pos", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["format"] == "pos" and d["ions"] == 945_211
    assert d["columns"] == ["x", "y", "z", "mass"]
    assert d["mass_range"] == [0.0, pytest.approx(378.3013, abs=1e-4)]
    assert d["extent"]["x"] == [pytest.approx(-20.4336, abs=1e-4), pytest.approx(19.7064, abs=1e-4)]
    assert d["extent"]["z"] == [pytest.approx(-75.0807, abs=1e-4), pytest.approx(-0.0200, abs=1e-4)]
    assert d["meta"]["format"] == "pos"


def test_info_json_on_epos_matches_plain_numpy(real):
    path = real / "apav_si" / "Si_first100000.epos"
    raw = np.fromfile(path, dtype=">f4").reshape(-1, 11)
    code, out, err = run_cli("info", path, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["ions"] == 100_000 and len(d["columns"]) == 11
    assert np.float32(d["mass_range"][1]) == raw[:, 3].max()
    assert np.float32(d["extent"]["y"][0]) == raw[:, 1].min()


def test_info_text_output(real):
    code, out, _ = run_cli("info", real / "apav_si" / "Si.pos")
    assert code == 0
    assert "945,211 ions" in out and "mass (Da)" in out


def test_missing_file_is_exit_1_with_one_line(tmp_path):
    code, out, err = run_cli("info", tmp_path / "absent.epos")
    assert code == 1 and out == ""
    assert err.strip().count("\n") == 0
    assert "absent.epos: no such file" in err


def test_truncated_file_is_exit_1(real, tmp_path):
    p = tmp_path / "t.epos"
    p.write_bytes((real / "apav_si" / "Si_first100000.epos").read_bytes()[:1000])
    code, _, err = run_cli("info", p, "--json")
    assert code == 1
    assert "t.epos: byte 968: truncated or not an epos file" in err
    assert "Traceback" not in err


def test_non_finite_mass_is_exit_1(tmp_path):
    a = np.zeros((5, 4), ">f4")
    a[3, 3] = np.inf
    p = tmp_path / "inf.pos"
    a.tofile(p)
    code, _, err = run_cli("info", p)
    assert code == 1
    assert "inf.pos: ion 3 (byte 60): mass of ion 3 is not a finite number (inf)" in err


def test_usage_error_is_exit_2():
    code, _, _ = run_cli("info")
    assert code == 2
    code, _, _ = run_cli("info", "a.pos", "--no-such-option")
    assert code == 2


def test_console_script_runs_as_a_process(real):
    proc = subprocess.run([sys.executable, "-m", "liprobe", "info",
                           str(real / "apav_si" / "Si.pos"), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ions"] == 945_211


def test_info_json_on_apt_has_acquisition_metadata(real):
    code, out, err = run_cli("info", real / "apav_si" / "Si.apt", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["format"] == "apt" and d["ions"] == 945_211
    assert set(d["columns"]) >= {"mass", "x", "y", "z", "det_x", "det_y", "multiplicity", "tofc"}
    assert d["meta"]["ion_count"] == 945_211
    assert [s["name"] for s in d["meta"]["sections"]][:2] == ["tofc", "Mass"]
    assert d["extent"]["z"][0] == pytest.approx(-75.0807, abs=1e-4)


def test_info_json_on_range_file(real):
    code, out, err = run_cli("info", real / "apav_si" / "Si.RRNG", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["format"] == "rrng" and len(d["ranges"]) == 25
    assert set(d["ranges"][0]) == {"lo", "hi", "ion", "atoms", "charge", "volume", "color"}
    cr2o = [r for r in d["ranges"] if r["atoms"] == {"Cr": 2, "O": 1}]
    assert cr2o and cr2o[0]["ion"] == "Cr2O++" and cr2o[0]["charge"] == 2  # 120 Da at 60
    assert d["warnings"] == []


def test_info_warns_on_merged_duplicates(real):
    code, out, err = run_cli("info", real / "ifes_apt_tc" / "VAlN_film_plan-view_700C.rrng",
                             "--json")
    assert code == 0, err
    d = json.loads(out)
    assert len(d["ranges"]) == 31
    assert any("merged 1409" in w for w in d["warnings"])


def test_overlapping_windows_of_different_ions_exit_1(tmp_path):
    p = tmp_path / "bad.rrng"
    p.write_text("[Ions]\nNumber=2\nIon1=O\nIon2=Ni\n[Ranges]\nNumber=2\n"
                 "Range1=15.90 16.10 Vol:0.01 O:1 Color:FF0000\n"
                 "Range2=16.00 16.20 Vol:0.01 Ni:1 Color:00FF00\n")
    code, out, err = run_cli("info", p)
    assert code == 1 and out == ""
    assert "bad.rrng" in err and "overlap" in err and "line 7" in err and "line 8" in err
