"""``neighbours``, ``clusters``, ``rdf`` and ``map2d`` on the command line.

The run: a 24 nm cube at 12 ions/nm^3 of Ni and O with 1 at.% Cr and six Cr-rich
spheres (radius 2.5 nm, 50 at.% Cr), drawn with numpy and written as a big-endian
``.pos`` with numpy; the range file is plain text. Numbers are checked against the
planted spheres and against numpy on the same positions.
"""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from liprobe.cli import cli

R = 2.5


def run_cli(*args):
    res = CliRunner().invoke(cli, list(map(str, args)))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clusters")
    rng = np.random.default_rng(31)
    n = int(12 * 24 ** 3)
    p = rng.uniform(0, 24, (n, 3))
    p[:, 2] -= 24                                  # z <= 0, the CAMECA convention
    p = p[np.argsort(-p[:, 2], kind="stable")]     # evaporation order
    centres = np.array([[6, 6, -6], [18, 6, -6], [6, 18, -12], [18, 18, -12],
                        [6, 12, -18], [18, 12, -18]], float)
    inside = np.full(n, -1)
    for i, c in enumerate(centres):
        inside[np.linalg.norm(p - c, axis=1) < R] = i
    cr = rng.random(n) < np.where(inside >= 0, 0.5, 0.01)
    mass = np.where(cr, 52.0, np.where(rng.random(n) < 0.4, 16.0, 58.0))
    rec = np.empty((n, 4), ">f4")
    rec[:, :3] = p
    rec[:, 3] = mass
    pos = d / "cubes.pos"
    rec.tofile(pos)
    rrng = d / "cubes.rrng"
    rrng.write_text("[Ions]\nNumber=3\nIon1=Cr\nIon2=Ni\nIon3=O\n[Ranges]\nNumber=3\n"
                    "Range1=51.5 52.5 Vol:0.012 Cr:1 Color:FF0000\n"
                    "Range2=57.5 58.5 Vol:0.011 Ni:1 Color:00FF00\n"
                    "Range3=15.5 16.5 Vol:0.011 O:1 Color:0000FF\n")
    q = rec[:, :3].astype(np.float64)
    return pos, rrng, q, mass, centres, inside


def test_clusters_json_csv_and_figure(files, tmp_path):
    pos, rrng, q, mass, centres, inside = files
    out_csv, png = tmp_path / "cl.csv", tmp_path / "cl.png"
    code, out, err = run_cli("clusters", pos, "-r", rrng, "--species", "Cr", "--dmax", 0.7,
                             "--nmin", 10, "--erosion", 0.6, "-o", out_csv, "-o", png, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["n_clusters"] == len(d["clusters"]) == 6
    assert d["parameters"] == {"dmax_nm": 0.7, "nmin": 10, "envelope_nm": 0.7,
                               "erosion_nm": 0.6, "core_points": None, "knn_order": 3}
    assert d["choice"] == {"dmax": "given", "nmin": "given"}
    assert d["random_baseline"]["clusters"] < 1 and d["random_baseline"]["shuffles"] == 5
    for c in d["clusters"]:
        j = int(np.argmin(np.linalg.norm(centres - c["centre_nm"], axis=1)))
        assert np.linalg.norm(centres[j] - c["centre_nm"]) < 0.3
        sol = int(((inside == j) & (mass == 52.0)).sum())
        assert abs(c["solute_ions"] / sol - 1) < 0.1 and abs(c["ions"] / (inside == j).sum()
                                                             - 1) < 0.1
        assert set(c) >= {"ions", "atoms", "centre_nm", "radius_gyration_nm", "composition",
                          "composition_error"}
        assert c["atoms"] == c["ions"]                 # no molecular ions here
    rows = [r for r in csv.reader(ln for ln in out_csv.read_text().splitlines()
                                  if not ln.startswith("#"))]
    assert rows[0][:4] == ["cluster", "ions", "solute_ions", "atoms"] and len(rows) == 7
    assert int(rows[1][1]) == d["clusters"][0]["ions"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = run_cli("clusters", pos, "-r", rrng, "--species", "Cr", "--method",
                             "dbscan")
    assert code == 0, err
    assert "6 dbscan cluster(s) of Cr" in out and "(chosen)" in out and "Stephenson" in out


def test_clusters_roi_and_segment_select_first(files):
    pos, rrng, q, _mass, _c, _i = files
    code, out, err = run_cli("clusters", pos, "-r", rrng, "--species", "Cr", "--dmax", 0.7,
                             "--nmin", 10, "--roi", "box:0:12:0:24:-24:0", "--segment",
                             "0:60000", "--json")
    assert code == 0, err
    d = json.loads(out)
    sel = (q[:60000, 0] >= 0) & (q[:60000, 0] <= 12)
    assert d["selection"]["ions_selected"] == d["ions_counted"] == sel.sum()
    assert d["n_clusters"] == 1                      # the sphere at (6, 6, -6) only


def test_neighbours_json_equals_numpy_and_composition(files, tmp_path):
    pos, rrng, q, mass, _c, _i = files
    from scipy.spatial import cKDTree

    code, out, err = run_cli("neighbours", pos, "-r", rrng, "--from", "Cr", "--to", "Cr",
                             "--k", 2, "--composition", "-o", tmp_path / "nn.svg", "--json")
    assert code == 0, err
    d = json.loads(out)
    cr = q[mass == 52.0]
    ref = cKDTree(cr).query(cr, k=3)[0][:, 1:]
    assert d["centres"] == d["ions_from"] == len(cr) and d["k"] == 2
    for j in range(2):
        assert d["orders"][j]["mean_nm"] == pytest.approx(ref[:, j].mean(), rel=1e-9)
        assert d["orders"][j]["random_mean_nm"] > 1.5 * d["orders"][j]["median_nm"]
    c = d["composition"]
    assert c["slab_nm"] == 1.0 and c["shuffles"] == 8 and c["centres"] == len(cr)
    assert c["excess_pct"] > 5 * c["excess_err_pct"]
    assert (tmp_path / "nn.svg").read_text().lstrip().startswith("<?xml")
    code, out, err = run_cli("neighbours", pos, "-r", rrng, "--from", "Cr+", "--k", 1)
    assert code == 0, err
    assert "among all" in out and "random" in out


def test_rdf_json_and_csv(files, tmp_path):
    pos, rrng, _q, _m, _c, _i = files
    f = tmp_path / "g.csv"
    code, out, err = run_cli("rdf", pos, "-r", rrng, "--from", "Cr", "--max-distance", 3,
                             "--bin", 0.25, "--shuffles", 4, "-o", f, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert len(d["shells"]) == 12 and d["max_distance_nm"] == 3.0
    assert d["shells"][2]["g"] > 3                # Cr around Cr in the spheres
    g = [s["to_ions"] / s["ions"] / (d["bulk_pct"] / 100) for s in d["shells"]]
    assert [s["g"] for s in d["shells"]] == pytest.approx(g, rel=1e-12)
    rows = [r for r in csv.reader(ln for ln in f.read_text().splitlines()
                                  if not ln.startswith("#"))]
    assert rows[0] == ["lo_nm", "hi_nm", "r_nm", "ions", "to_ions", "g", "g_err", "g_random"]


def test_map2d_json_counts_and_figure(files, tmp_path):
    pos, rrng, q, mass, _c, _i = files
    png = tmp_path / "m.png"
    code, out, err = run_cli("map2d", pos, "-r", rrng, "--species", "Cr", "--plane", "xy",
                             "--at", -6, "--thickness", 2, "--pixel", 2, "-o", png, "--json")
    assert code == 0, err
    d = json.loads(out)
    slab = np.abs(q[:, 2] + 6) <= 1
    assert d["ions_in_slab"] == slab.sum() and d["normal"] == "z"
    assert np.sum(d["counts"]["atoms"]) == slab.sum()
    assert np.sum(d["counts"]["solute"]) == (slab & (mass == 52.0)).sum()
    assert d["at_pct_range"][1] > 40 and png.read_bytes()[:4] == b"\x89PNG"


def test_errors_are_one_line_and_usage_errors_exit_2(files, tmp_path):
    pos, rrng, _q, _m, _c, _i = files
    code, _out, err = run_cli("clusters", pos, "-r", rrng, "--species", "Li", "--dmax", 0.5)
    assert code == 1 and err.startswith("liprobe: error: ") and "Li" in err
    assert len(err.strip().splitlines()) == 1
    code, _out, err = run_cli("clusters", pos, "-r", rrng, "--species", "Cr", "--dmax", -1)
    assert code == 2 and "--dmax" in err
    code, _out, err = run_cli("rdf", pos, "-r", rrng, "--from", "Cr", "-o", tmp_path / "g.txt")
    assert code == 2 and "-o" in err
    code, _out, err = run_cli("neighbours", pos, "-r", rrng, "--from", "Cr2")
    assert code == 2
    code, _out, err = run_cli("map2d", pos, "-r", rrng, "--species", "Cr", "--at", 50)
    assert code == 1 and "no counted ion in the 5 nm slab" in err


def test_too_many_pairs_are_one_line_and_an_infinite_slab_is_the_whole_run(files):
    pos, rrng, q, mass, _c, _i = files
    code, _out, err = run_cli("clusters", pos, "-r", rrng, "--species", "Ni", "--dmax", 12,
                              "--nmin", 10)
    assert code == 1 and err.startswith("liprobe: error: ") and "smaller d_max" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, out, err = run_cli("map2d", pos, "-r", rrng, "--species", "Cr,Cr", "--plane",
                             "xy", "--thickness", "inf", "--pixel", 4, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["ions_in_slab"] == len(q) and d["species"] == ["Cr"]
    assert np.sum(d["counts"]["solute"]) == (mass == 52.0).sum()
    assert d["at_pct_slab"] == pytest.approx(100 * np.mean(mass == 52.0))
