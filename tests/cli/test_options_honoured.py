"""Every option a command accepts does something, or is refused (issue 26): no ``-o`` that
writes nothing, no value shown only with ``--json``, no coating looked for unasked."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from liprobe.cli import cli
from liprobe.io import read


def run_cli(*args):
    res = CliRunner().invoke(cli, list(map(str, args)))
    return res.exit_code, res.stdout, res.stderr


def usage_error(code, out, err, *words):
    assert code == 2 and out == "", (code, out, err)
    for w in words:
        assert w in err, err


# ---- reconstruct: -o with the comparison, options of the other mode ----------------------

def test_compare_with_output_writes_the_reconstruction(real, tmp_path):
    src = real / "apav_si" / "Si_first100000.epos"
    out = tmp_path / "rec.pos"
    # (the file's voltage is zero: the radius from a shank angle)
    code, stdout, err = run_cli("reconstruct", src, "--compare-to-file-positions",
                                "--slabs", 3, "--radius", "shank:10:20", "--atomic-volume", "0.02",
                                "-o", out, "--json")
    assert code == 0, err
    d = json.loads(stdout)
    assert out.is_file(), "-o was accepted and nothing was written"
    assert d["output"] == str(out) and d["ions"] == 100_000
    assert len(d["comparison"]["slabs"]) == 3
    rec = read(str(out))
    # the written file is the reconstruction of this run: as many ions, masses unchanged
    assert rec.n_ions == 100_000
    np.testing.assert_array_equal(rec["mass"], read(str(src))["mass"])
    code, text, err = run_cli("reconstruct", src, "--compare-to-file-positions",
                              "--slabs", 3, "--radius", "shank:10:20", "--atomic-volume", "0.02",
                              "-o", tmp_path / "rec2.pos")
    assert code == 0, err
    assert "reconstructed" in text and "residuals (nm)" in text
    assert (tmp_path / "rec2.pos").is_file()


@pytest.mark.parametrize("args, words", [
    # reconstruction parameters without -o: the comparison does not use them
    (["--compare-to-file-positions", "--k-factor", "4"], ["--k-factor", "-o"]),
    (["--compare-to-file-positions", "--atomic-volume", "0.02"], ["--atomic-volume"]),
    (["--compare-to-file-positions", "--radius", "shank:10:20"], ["--radius"]),
    # comparison options without the comparison
    (["-o", "x.pos", "--slabs", "5"], ["--slabs", "--compare-to-file-positions"]),
    (["-o", "x.pos", "--detector-correction", "affine"], ["--detector-correction"]),
])
def test_reconstruct_refuses_options_it_would_ignore(real, tmp_path, args, words):
    args = [str(tmp_path / a) if a == "x.pos" else a for a in args]
    code, out, err = run_cli("reconstruct", real / "apav_si" / "Si_first100000.epos", *args)
    usage_error(code, out, err, *words)
    assert not (tmp_path / "x.pos").exists()


# ---- --center without a cylinder ROI ---------------------------------------------------

@pytest.mark.parametrize("cmd, extra", [
    ("composition", []),
    ("fda", ["--species", "Si+"]),
    ("field", []),
    ("composition", ["--roi", "sphere:10@0,0,-20"]),
])
def test_center_without_a_cylinder_is_refused(real, cmd, extra):
    d = real / "apav_si"
    code, out, err = run_cli(cmd, d / "Si_first100000.epos", "-r", d / "Si.RRNG",
                             "--center", "1,2", *extra)
    usage_error(code, out, err, "--center", "cylinder")


# ---- text shows what --json holds ------------------------------------------------------

def test_spectrum_calibration_and_peak_ions_in_text(real):
    d = real / "apav_si"
    args = ("spectrum", d / "Si.pos", "--mass", "0:40", "-r", d / "Si.RRNG",
            "--calibration", "Si++,Si+")
    code, text, err = run_cli(*args)
    assert code == 0, err
    assert "calibration" in text and "Si++" in text and "offset" in text
    assert "drift" in text
    code, stdout, err = run_cli(*args, "--json")
    j = json.loads(stdout)
    # every peak names its ion (or null) from the range file, in JSON and in text
    by_mass = {round(p["mass"]): p.get("ion") for p in j["peaks"]}
    assert by_mass[28] == "Si+" and by_mass[14] == "Si++"
    rows = [ln for ln in text.splitlines() if ln.strip().startswith("27.9")]
    assert rows and rows[0].rstrip().endswith("Si+")


def test_spectrum_compare_table_in_text(real):
    d = real / "apav_si"
    code, text, err = run_cli("spectrum", d / "Si.pos", "--mass", "0:40",
                              "--compare", d / "Si_first100000.epos")
    assert code == 0, err
    assert "Si_first100000.epos" in text and "normalized" in text


def test_selection_shown_in_text(real):
    d = real / "apav_si"
    code, text, err = run_cli("composition", d / "Si_first100000.epos", "-r", d / "Si.RRNG",
                              "--segment", "0:50000")
    assert code == 0, err
    assert "selection:" in text and "ions 0 to 49,999 in evaporation order" in text


# ---- detector-map: a coating only when asked --------------------------------------------

def test_detector_map_does_not_look_for_a_coating_unasked(real):
    d = real / "apav_si"
    code, stdout, err = run_cli("detector-map", d / "Si_first100000.epos", "-r", d / "Si.RRNG",
                                "--json")
    assert code == 0, err
    j = json.loads(stdout)
    assert "ring" not in err and not any("ring" in w for w in j["warnings"])
    assert j["core_method"] == "fraction" and j["coating_element"] is None
    # asked for: looked for (and said when not found)
    code, stdout, err = run_cli("detector-map", d / "Si_first100000.epos", "-r", d / "Si.RRNG",
                                "--coating", "Cr", "--json")
    assert code == 0, err
    j = json.loads(stdout)
    assert j["coating_element"] == "Cr"
    assert j["core_method"] == "coating" or any("no Cr ring" in w for w in j["warnings"])


def test_detector_map_coating_needs_ranges(real):
    code, out, err = run_cli("detector-map", real / "apav_si" / "Si_first100000.epos",
                             "--coating", "Cr")
    usage_error(code, out, err, "--coating", "-r")


# ---- FDA of a segment with too few blocks -------------------------------------------------

def test_fda_of_too_few_blocks_is_null_with_a_reason(real):
    d = real / "apav_si"
    args = ("fda", d / "Si_first100000.epos", "-r", d / "Si.RRNG", "--species", "Si+",
            "--segment", "0:500")
    code, stdout, err = run_cli(*args, "--json")
    assert code == 0, err
    j = json.loads(stdout)
    assert j["blocks"] == 4 and j["mu"] is None and j["mu_shuffled"] is None
    assert "4 blocks" in j["reasons"]["mu"]
    code, text, err = run_cli(*args)
    assert code == 0, err
    mu_line = next(ln for ln in text.splitlines() if ln.startswith("mu "))
    assert "n/a" in mu_line and "4 blocks" in mu_line
    assert "0.0000" not in text.split("fraction")[1].split("dispersion")[0].replace(
        "15.7500", "")


# ---- --radial with options it does not use -------------------------------------------------

@pytest.mark.parametrize("cmd, args, word", [
    ("profile", ["--radial", "--axis", "x"], "--axis"),
    ("proxigram", ["--radial", "--voxel", "2"], "--voxel"),
    ("proxigram", ["--radial", "--smooth", "1"], "--smooth"),
])
def test_radial_refuses_options_it_would_ignore(real, cmd, args, word):
    d = real / "apav_si"
    code, out, err = run_cli(cmd, d / "Si_first100000.epos", "-r", d / "Si.RRNG", *args)
    usage_error(code, out, err, word, "--radial")


# ---- ROIs by radius or diameter, echoed in words -------------------------------------------

def test_roi_by_radius_is_echoed_as_a_diameter(real):
    d = real / "apav_si"
    base = ("composition", d / "Si_first100000.epos", "-r", d / "Si.RRNG")
    code, text, err = run_cli(*base, "--roi", "cylinder:r=12.5")
    assert code == 0, err
    assert "selection: cylinder, diameter 25 nm, axis at" in text
    code, stdout, err = run_cli(*base, "--roi", "cylinder:r=12.5", "--json")
    by_r = json.loads(stdout)
    assert by_r["selection"]["diameter_nm"] == 25.0
    assert by_r["selection"]["description"].startswith("cylinder, diameter 25 nm")
    code, stdout, err = run_cli(*base, "--roi", "cylinder:25", "--json")
    by_d = json.loads(stdout)
    assert by_d["atom_counts"] == by_r["atom_counts"]
    code, stdout, err = run_cli(*base, "--roi", "sphere:r=5@0,0,-8", "--json")
    assert code == 0, err
    assert json.loads(stdout)["selection"]["description"].startswith(
        "sphere, diameter 10 nm")


@pytest.mark.parametrize("cmd, args, words", [
    ("clusters", ["--species", "Cr", "--core-points", "3"], ["--core-points", "dbscan"]),
    ("clusters", ["--species", "Cr", "--dmax", "1", "--knn-order", "2"], ["--knn-order"]),
    ("spectrum", ["--bin", "0.1"], ["--bin", "-o"]),
])
def test_options_another_choice_would_use_are_refused(real, cmd, args, words):
    d = real / "apav_si"
    rng = ["-r", d / "Si.RRNG"] if cmd != "spectrum" else []
    code, out, err = run_cli(cmd, d / "Si_first100000.epos", *rng, *args)
    usage_error(code, out, err, *words)
