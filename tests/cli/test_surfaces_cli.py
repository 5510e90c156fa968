"""``isosurface`` and ``proxigram`` on the command line.

The run is a Cr-rich sphere (radius 8 nm, 50 at.% Cr) in a Ni matrix with
0.5 at.% Cr, 12 ions/nm^3, drawn with numpy and written as a big-endian
``.pos`` with numpy; the range file is plain text.
"""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from liprobe.cli import cli
from tests.analyses.test_surfaces import read_ply

R = 8.0


def run_cli(*args):
    res = CliRunner().invoke(cli, list(map(str, args)))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("surfaces")
    rng = np.random.default_rng(21)
    n = int(12 * 30 ** 3)
    p = rng.uniform(-15, 15, (n, 3))
    p[:, 2] -= 15                                   # z <= 0, the CAMECA convention
    inside = np.linalg.norm(p - (0, 0, -15), axis=1) < R
    cr = rng.random(n) < np.where(inside, 0.5, 0.005)
    rec = np.empty((n, 4), ">f4")
    rec[:, :3] = p
    rec[:, 3] = np.where(cr, 52.0, 58.0)
    pos = d / "sphere.pos"
    rec.tofile(pos)
    rrng = d / "sphere.rrng"
    rrng.write_text("[Ions]\nNumber=2\nIon1=Cr\nIon2=Ni\n[Ranges]\nNumber=2\n"
                    "Range1=51.5 52.5 Vol:0.012 Cr:1 Color:FF0000\n"
                    "Range2=57.5 58.5 Vol:0.011 Ni:1 Color:00FF00\n")
    return pos, rrng, p, cr


def test_isosurface_json_mesh_and_figure(files, tmp_path):
    pos, rrng, _p, _cr = files
    ply, png = tmp_path / "mesh.ply", tmp_path / "iso.png"
    code, out, err = run_cli("isosurface", pos, "-r", rrng, "--species", "Cr", "--threshold",
                             20, "--voxel", 1, "-o", ply, "-o", png, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert abs(d["area_nm2"] / (4 * math.pi * R ** 2) - 1) < 0.08
    assert abs(d["volume_nm3"] / (4 / 3 * math.pi * R ** 3) - 1) < 0.1
    assert len(d["components"]) == d["n_components"] == 1 and d["dropped_components"] == 0
    assert d["components"][0]["closed"] is True
    assert d["threshold"] == 20 and d["unit"] == "at.%" and d["species"] == ["Cr"]
    assert 0.3 < d["threshold_relative"] < 0.5
    assert d["outputs"] == [str(ply), str(png)]
    _h, _props, v, f = read_ply(ply)
    assert len(v) == d["vertices"] and len(f) == d["faces"]
    assert np.abs(np.linalg.norm(v[:, :3] - (0, 0, -15), axis=1) - R).max() < 1.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the text output
    code, out, err = run_cli("isosurface", pos, "-r", rrng, "--species", "Cr", "--threshold",
                             20, "--delocalisation", "cic")
    assert code == 0, err
    assert "1 component(s)" in out and "plateaus: inside" in out and "cloud in cell" in out


def test_isosurface_roi_segment_and_isodensity(files):
    pos, rrng, p, _cr = files
    code, out, err = run_cli("isosurface", pos, "-r", rrng, "--species", "Cr", "--threshold",
                             20, "--roi", "box:-15:0:-15:15:-30:0", "--segment", "0:300000",
                             "--json")
    assert code == 0, err
    d = json.loads(out)
    sel = (p[:300_000, 0] >= -15) & (p[:300_000, 0] <= 0)
    assert d["selection"]["segment"] == [0, 300000]
    assert d["selection"]["ions_selected"] == d["grid"]["ions_counted"] == sel.sum()
    assert d["components"][0]["closed"] is False          # the box cuts the sphere in half
    code, out, err = run_cli("isosurface", pos, "-r", rrng, "--density", 3, "--species", "Cr",
                             "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["kind"] == "density" and d["unit"] == "atoms/nm^3" and d["n_components"] == 1


def test_proxigram_json_csv_and_svg(files, tmp_path):
    pos, rrng, _p, _cr = files
    csv, svg = tmp_path / "prox.csv", tmp_path / "prox.svg"
    code, out, err = run_cli("proxigram", pos, "-r", rrng, "--species", "Cr", "--threshold", 20,
                             "--bin", 1, "--max-distance", 6, "-o", csv, "-o", svg, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["kind"] == "isosurface" and d["bin_nm"] == 1 and d["max_distance_nm"] == 6
    bins = d["bins"]
    assert [b["distance_nm"] for b in bins] == [-5.5 + i for i in range(12)]
    for b in bins:
        assert set(b) >= {"distance_nm", "at_pct", "at_pct_err", "ions"}
        assert b["at_pct"]["Cr"] + b["at_pct"]["Ni"] == pytest.approx(100)
    assert bins[0]["at_pct"]["Cr"] == pytest.approx(50, abs=3)
    assert bins[-1]["at_pct"]["Cr"] == pytest.approx(0.5, abs=0.2)
    assert d["ions_binned"] + d["ions_beyond"] == d["ions_counted"]
    rows = [ln for ln in csv.read_text().splitlines() if not ln.startswith("#")]
    assert rows[0].startswith("lo_nm,hi_nm,distance_nm,atoms,ions,Cr_at%,Cr_err")
    assert len(rows) == 13
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))
    code, out, err = run_cli("proxigram", pos, "-r", rrng, "--species", "Cr", "--threshold", 20)
    assert code == 0, err
    assert "negative inside" in out and "Cr at.%" in out


def test_radial_proxigram(files):
    pos, rrng, p, cr = files
    code, out, err = run_cli("proxigram", pos, "-r", rrng, "--radial", "--bin", 2,
                             "--center", "0,0", "--roi", "cylinder:20", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["kind"] == "radial" and d["surface"]["axis_direction"] == [0.0, 0.0, 1.0]
    r = np.hypot(p[:, 0], p[:, 1])
    sel = r <= 10
    edges = np.arange(0, 12, 2.0)
    allc, _ = np.histogram(r[sel], edges)
    crc, _ = np.histogram(r[sel & cr], edges)
    assert [b["ions"] for b in d["bins"]] == allc.tolist()
    assert [b["at_pct"]["Cr"] for b in d["bins"]] == pytest.approx(100 * crc / allc)


@pytest.mark.parametrize("args, word", [
    (["--species", "Cr"], "--threshold"),
    (["--threshold", 20], "--species"),
    (["--species", "Cr", "--threshold", 150], "between 0 and 100"),
    (["--species", "Cr", "--threshold", 20, "--density", 3], "not both"),
    (["--species", "Cr", "--threshold", 20, "--voxel", 0], "--voxel"),
    (["--species", "Cr", "--threshold", 20, "--delocalisation", "cic", "--smooth", 1],
     "--smooth"),
    (["--species", "Cr", "--threshold", 20, "-o", "mesh.obj"], ".ply"),
    (["--species", "Xx", "--threshold", 20], "not a chemical element"),
])
def test_usage_errors_exit_2(files, args, word):
    pos, rrng, _p, _cr = files
    code, _out, err = run_cli("isosurface", pos, "-r", rrng, *args)
    assert code == 2 and word in err


def test_bad_input_is_one_line_and_exit_1(files, tmp_path):
    pos, rrng, _p, _cr = files
    for cmd in ("isosurface", "proxigram"):
        for args, word in [
            ([tmp_path / "missing.pos", "-r", rrng, "--species", "Cr", "--threshold", 20],
             "no such file"),
            ([pos, "-r", rrng, "--species", "Li", "--threshold", 20], "no ranged ion carries Li"),
            ([pos, "-r", rrng, "--species", "Cr", "--threshold", 20, "--voxel", 0.05],
             "above the limit"),
            ([pos, "-r", rrng, "--species", "Cr", "--threshold", 20, "--roi",
              "sphere:2@100,100,100"], "contains no ions"),
        ]:
            code, out, err = run_cli(cmd, *args)
            assert code == 1, (cmd, args, err)
            assert out == "" and len(err.strip().splitlines()) == 1 and word in err
    # no surface at the threshold: the isosurface says so, the proxigram cannot be made
    code, out, err = run_cli("isosurface", pos, "-r", rrng, "--species", "Cr", "--threshold",
                             90, "--json")
    assert code == 0 and json.loads(out)["n_components"] == 0
    assert "no surface" in json.loads(out)["warnings"][-1]
    code, out, err = run_cli("isosurface", pos, "-r", rrng, "--species", "Cr", "--threshold", 90)
    assert code == 0 and "0 component(s)" in out and "warning:" in err and "no surface" in err
    code, out, err = run_cli("proxigram", pos, "-r", rrng, "--species", "Cr", "--threshold", 90)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "no isosurface at 90" in err
    code, _out, err = run_cli("proxigram", pos, "-r", rrng, "--radial", "--threshold", 20)
    assert code == 2 and "--radial" in err
