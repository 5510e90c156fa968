"""``detector-map``, ``profile``, ``slice``, ``coating`` and ``--roi core`` on the command line.

The real run is the first 100,000 ions of APAV's Si ``.epos`` with its range
file; the oracle reads the file with plain numpy and the range file with a
regular expression.
"""

import json
import math
import re

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import chi2_contingency

import liprobe
from liprobe.cli import cli
from tests.analyses.test_coating import TABLE as COATED_TABLE, shelled_cone
from tests.io.aptfile import Section, write_apt


def run_cli(*args):
    res = CliRunner().invoke(cli, list(map(str, args)))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def si(real):
    """Paths, the raw records (x y z mass tof v_dc v_pulse det_x det_y) and the windows."""
    epos = real / "apav_si" / "Si_first100000.epos"
    rrng = real / "apav_si" / "Si.RRNG"
    raw = np.fromfile(epos, dtype=">f4").reshape(-1, 11)[:, :9].astype(np.float64)
    windows = []
    for line in rrng.read_text().splitlines():
        m = re.match(r"Range\d+=(\S+) (\S+) Vol:\S+ (.*?) Color", line)
        if m:
            atoms = dict((el, int(n)) for el, n in re.findall(r"(\w+):(\d+)", m.group(3)))
            windows.append((float(m.group(1)), float(m.group(2)), atoms))
    return epos, rrng, raw, windows


def in_windows(mass, windows, keep=lambda lo, atoms: True):
    sel = np.zeros(len(mass), bool)
    for lo, hi, atoms in windows:
        if keep(lo, atoms):
            sel |= (mass >= lo) & (mass < hi)
    return sel


def is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- detector-map ----------------------------------------------------------------

def test_detector_map_on_real_epos_matches_numpy(si, tmp_path):
    epos, rrng, raw, windows = si
    out = tmp_path / "map.png"
    code, stdout, err = run_cli("detector-map", epos, "-r", rrng, "--species", "Si+",
                                "--core-radius", 8, "--grid-bins", 16, "-o", out, "--json")
    assert code == 0, err
    d = json.loads(stdout)
    mass, dx, dy = raw[:, 3], raw[:, 7], raw[:, 8]
    ranged = in_windows(mass, windows)
    si1 = in_windows(mass, windows, lambda lo, a: a == {"Si": 1} and lo > 20)  # Si+ near 28-30 Da
    assert d["ions"] == 100_000
    assert d["ranged_ions"] == ranged.sum() and d["species_ions"] == si1.sum()
    assert d["extent_mm"][1] == pytest.approx(max(np.abs(dx).max(), np.abs(dy).max()), rel=1e-5)
    cx, cy = np.median(dx), np.median(dy)
    assert d["center_mm"] == pytest.approx([cx, cy])
    assert d["detector_radius_mm"] == pytest.approx(np.percentile(np.hypot(dx - cx, dy - cy), 99.9))
    # heterogeneity: every ion (100,000 = the sample), 1 mm bins inside an 8 mm disc
    edges_x = cx - 8 + np.arange(17)
    edges_y = cy - 8 + np.arange(17)
    h, _, _ = np.histogram2d(dy, dx, bins=[edges_y, edges_x])
    c = np.arange(16) - 8 + 0.5
    far = np.abs(c) + 0.5
    full = far[:, None] ** 2 + far[None, :] ** 2 <= 64
    counts = h[full]
    het = d["heterogeneity"]
    assert het["bins_used"] == full.sum() == len(counts)
    assert het["heterogeneity"] == pytest.approx((counts.var(ddof=1) - counts.mean()) /
                                                 counts.mean() ** 2, rel=1e-9)
    # the Si+ fraction of ranged hits: a 2 x K contingency table over the same bins
    k, _, _ = np.histogram2d(dy[si1], dx[si1], bins=[edges_y, edges_x])
    n, _, _ = np.histogram2d(dy[ranged], dx[ranged], bins=[edges_y, edges_x])
    k, n = k[full], n[full]
    p0 = k.sum() / n.sum()
    use = (n * p0 >= 5) & (n * (1 - p0) >= 5)
    chi2, p_value, dof, _ = chi2_contingency(np.array([k[use], n[use] - k[use]]),
                                             correction=False)
    f = het["species_fraction"]
    assert f["chi2"] == pytest.approx(chi2, rel=1e-9) and f["dof"] == dof
    assert f["p_value"] == pytest.approx(p_value, rel=1e-6, abs=1e-300)
    assert f["mu"] == pytest.approx(math.sqrt(chi2 / (k[use].sum() + chi2)), rel=1e-9)
    assert is_png(out)


def test_detector_map_segment_and_svg(si, tmp_path):
    epos, rrng, raw, _ = si
    out = tmp_path / "map.svg"
    code, stdout, err = run_cli("detector-map", epos, "--segment", "1000:31000", "-o", out,
                                "--json")
    assert code == 0, err
    d = json.loads(stdout)
    assert d["ions"] == 30_000 and d["selection"]["segment"] == [1000, 31000]
    seg = raw[1000:31000]
    assert d["center_mm"] == pytest.approx([np.median(seg[:, 7]), np.median(seg[:, 8])])
    assert out.read_text().lstrip().startswith("<?xml")


def test_detector_map_of_a_pos_is_a_one_line_error(real):
    code, out, err = run_cli("detector-map", real / "apav_si" / "Si.pos")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "det_x" in err


# -- profile -------------------------------------------------------------------

def test_profile_on_real_epos_matches_numpy(si, tmp_path):
    epos, rrng, raw, windows = si
    csv_path = tmp_path / "profile.csv"
    png_path = tmp_path / "profile.png"
    code, stdout, err = run_cli("profile", epos, "-r", rrng, "--roi", "cylinder:10", "--bin", 2,
                                "--exclude", "Cr", "-o", csv_path, "-o", png_path, "--json")
    assert code == 0, err
    d = json.loads(stdout)
    x, y, z, mass = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3]
    inside = np.hypot(x - np.median(x), y - np.median(y)) <= 5
    counted = inside & in_windows(mass, windows, lambda lo, a: "Cr" not in a)
    # every non-Cr ion of Si.RRNG carries one atom
    assert sum(d["bins"]["atoms"]) == counted.sum()
    zc = z[counted]
    b = np.minimum(np.floor((zc - zc.min()) / 2).astype(int), len(d["bins"]["atoms"]) - 1)
    si_c = in_windows(mass, windows, lambda lo, a: a == {"Si": 1})[counted]
    top = b.max()
    assert d["percent"]["Si"][top] == pytest.approx(100 * si_c[b == top].mean())
    assert d["bins"]["lo_nm"][0] == pytest.approx(zc.min())
    assert d["roi_diameter_nm"] == 10.0 and d["bin_nm"] == 2.0 and d["roi_length_nm"] is None
    header = [ln for ln in csv_path.read_text().splitlines() if ln.startswith("#")]
    assert "# roi_diameter_nm: 10.0" in header and "# bin_nm: 2.0" in header
    assert "# roi_length_nm: null" in header
    assert any(ln.startswith("# length_nm: ") for ln in header)
    assert is_png(png_path)


def test_profile_fixed_count_in_a_segment(si):
    epos, rrng, raw, windows = si
    code, stdout, err = run_cli("profile", epos, "-r", rrng, "--segment", "0:50000",
                                "--ions-per-bin", 5000, "--elements", "Si,O", "--json")
    assert code == 0, err
    d = json.loads(stdout)
    n_ranged = in_windows(raw[:50000, 3], windows).sum()
    assert d["selection"]["segment"] == [0, 50000]
    assert len(d["bins"]["ions"]) == n_ranged // 5000 and set(d["bins"]["ions"]) == {5000}
    assert list(d["percent"]) == ["Si", "O"]


def test_profile_usage_and_input_errors(si, tmp_path):
    epos, rrng, _, _ = si
    code, _, err = run_cli("profile", epos, "-r", rrng, "--bin", 1, "--ions-per-bin", 100)
    assert code == 2
    code, _, err = run_cli("profile", epos, "-r", rrng, "-o", tmp_path / "p.txt")
    assert code == 2
    code, out, err = run_cli("profile", epos, "-r", rrng, "--roi", "sphere:2@100,100,100")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "contains no ions" in err


def test_roi_on_data_without_positions_is_a_one_line_error(si, tmp_path):
    _, rrng, _, _ = si
    n = 100
    rng = np.random.default_rng(0)
    path = tmp_path / "nopos.apt"
    write_apt(path, [Section("Mass", rng.uniform(27, 30, n).astype(np.float32), "Da"),
                     Section("XDet_mm", rng.uniform(-20, 20, n).astype(np.float32), "mm"),
                     Section("YDet_mm", rng.uniform(-20, 20, n).astype(np.float32), "mm")])
    code, out, err = run_cli("profile", path, "-r", rrng, "--roi", "cylinder:5")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "reconstructed positions" in err
    code, out, err = run_cli("profile", path, "-r", rrng)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "'z'" in err
    # the detector map works on it
    code, out, err = run_cli("detector-map", path, "--json", "--grid-bins", 4)
    assert code == 0, err
    assert json.loads(out)["ions"] == n


# -- slice -----------------------------------------------------------------------

def test_slice_on_real_epos_matches_numpy(si, tmp_path):
    epos, rrng, raw, windows = si
    out = tmp_path / "slice.png"
    code, stdout, err = run_cli("slice", epos, "-r", rrng, "--plane", "xy", "--at", -5,
                                "--thickness", 2, "--species", "Si+,O", "-o", out, "--json")
    assert code == 0, err
    d = json.loads(stdout)
    z, mass = raw[:, 2], raw[:, 3]
    slab = np.abs(z.astype(np.float32).astype(np.float64) + 5) <= 1
    si1 = in_windows(mass, windows, lambda lo, a: a == {"Si": 1} and lo > 20)
    with_o = in_windows(mass, windows, lambda lo, a: "O" in a)
    assert d["ions_in_slab"] == (slab & (si1 | with_o)).sum()
    assert d["species"]["Si+"] == (slab & si1).sum()
    assert d["species"]["CrO+"] > 0 and "Cu+" not in d["species"]
    assert d["colors"]["Si+"] == "#CCCCCC" and d["normal"] == "z"
    assert is_png(out)


def test_slice_outside_the_data_is_a_one_line_error(si, tmp_path):
    epos, rrng, _, _ = si
    code, out, err = run_cli("slice", epos, "-r", rrng, "--plane", "xz", "--at", 500,
                             "-o", tmp_path / "s.png")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "holds no ions" in err
    assert not (tmp_path / "s.png").exists()


# -- coating and the core ROI ----------------------------------------------------------

def test_coating_inside_the_real_runs_cap_finds_nothing_to_keep_out(si):
    # the first 100,000 ions of the Si run lie inside its Cr cap (about 62 at.% Cr throughout):
    # no shell around them, no cap above other data; the reason says so
    epos, rrng, raw, _ = si
    code, stdout, err = run_cli("coating", epos, "-r", rrng, "--json")
    assert code == 0, err
    d = json.loads(stdout)
    assert d["geometry"] == "none" and d["thickness_nm"] is None
    assert d["slabs_found"] == 0 and d["median_apparent_thickness_nm"] is None
    assert d["slab_order"] == "evaporation"
    assert sum(s["ions"] for s in d["slabs"]) == len(raw)
    assert all(s["reason"] for s in d["slabs"])
    assert "fills the data along the axis" in d["cap_reason"]
    code, out, err = run_cli("composition", epos, "-r", rrng, "--roi", "core", "--json")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "no Cr shell or cap found" in err


@pytest.fixture(scope="module")
def coated_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coated")
    run, r = shelled_cone(n=120_000)
    liprobe.write(folder / "cone.pos", run)
    liprobe.write_ranges(folder / "cone.rrng", COATED_TABLE)
    return folder / "cone.pos", folder / "cone.rrng", run, r


def test_coating_and_core_on_a_coated_file(coated_files, tmp_path):
    pos, rrng, run, r = coated_files
    code, stdout, err = run_cli("coating", pos, "-r", rrng, "--slab-ions", 30000, "--json")
    assert code == 0, err
    d = json.loads(stdout)
    # 120,000 ions at random z: slabs along z, at least six of them; a lateral width but
    # no normal thickness (that needs the ions in evaporation order)
    assert d["slabs_found"] == d["slabs_total"] == 6 and d["slab_order"] == "z"
    assert d["geometry"] == "shell" and d["thickness_nm"] is None
    assert "evaporation order" in d["thickness_reason"]
    assert d["median_apparent_thickness_nm"] == pytest.approx(3.0, abs=0.5)
    code, stdout, err = run_cli("composition", pos, "-r", rrng, "--roi", "core:3", "--json")
    assert code == 0, err
    c = json.loads(stdout)
    inner = 15.0 + 0.1 * (-run["z"].astype(np.float64))
    # the core is 3 nm inside the shell's foot, which is at most 1 nm inside the interface
    assert c["ions_total"] >= 0.9 * (r <= inner - 4).sum()
    # Cr at the level of the flat background under the two 1 Da Cr windows (3 % over 100 Da)
    cr = c["ion_counts"].get("Cr+", 0) + c["ion_counts"].get("CrO+", 0)
    expected = c["ions_total"] * 0.03 * 2 / 100
    assert abs(cr - expected) < 4 * math.sqrt(expected)
    assert [s["core_area_nm2"] for s in c["selection"]["slabs"]] == \
        sorted(s["core_area_nm2"] for s in c["selection"]["slabs"])
    # the radial profile of the core shows no shell; of everything, it does
    code, stdout, err = run_cli("profile", pos, "-r", rrng, "--radial", "--bin", 1, "--json",
                                "--elements", "Cr", "--center", "1.5,0")
    assert code == 0, err
    p = json.loads(stdout)
    assert p["coordinate"] == "r" and max(v for v in p["percent"]["Cr"] if v is not None) > 50
    out = tmp_path / "xy.png"
    code, stdout, err = run_cli("slice", pos, "-r", rrng, "--plane", "xy", "-o", out)
    assert code == 0, err
    assert is_png(out)
