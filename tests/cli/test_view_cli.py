"""``liprobe view``: one self-contained interactive page of a real run (the Si files of
../shared), its composition checked against numpy, plotly.js embedded once, and bad input
as one line naming the file."""

from __future__ import annotations

import re

import numpy as np
import pytest

import liprobe
from liprobe.report.view import format_value_error

from ._run import run_cli, strict_json

MAX_PAGE_BYTES = 6_000_000




def _bundle_marker():
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()[:300]


def _table_rows(page):
    """element -> (atoms, 'value±error') from the page's composition table."""
    body = page[page.index('<table id="composition">'):]
    body = body[:body.index("</table>")]
    return {el: (int(n.replace(",", "")), txt) for el, n, txt in
            re.findall(r"<tr><td>(\w+)</td><td>([\d,]+)</td><td>([^<]+)</td></tr>", body)}


def _numpy_composition(run, table, roi_diameter_nm):
    """Atoms per element inside the cylinder around the median x, y, by plain numpy."""
    x, y = (np.asarray(run[c], np.float64) for c in ("x", "y"))
    cx, cy = float(np.median(run["x"])), float(np.median(run["y"]))
    inside = (x - cx) ** 2 + (y - cy) ** 2 <= (roi_diameter_nm / 2) ** 2
    mass = np.asarray(run["mass"])[inside]
    atoms: dict[str, int] = {}
    for r in table.ranges:
        n = int(np.sum((mass >= r.lo) & (mass < r.hi)))
        for el, k in r.ion.atoms:
            atoms[el] = atoms.get(el, 0) + n * k
    return int(inside.sum()), atoms


@pytest.fixture(scope="module")
def si_epos_page(real, tmp_path_factory):
    out = tmp_path_factory.mktemp("view") / "si.html"
    d = real / "apav_si"
    code, stdout, stderr = run_cli("view", d / "Si_first100000.epos", "-r", d / "Si.RRNG",
                                   "-o", out, "--json")
    assert code == 0, stderr
    return out, strict_json(stdout), stderr


def test_view_of_the_real_epos_is_one_small_self_contained_page(si_epos_page):
    out, d, stderr = si_epos_page
    page = out.read_text(encoding="utf-8")
    assert stderr == ""
    assert d["html"] == str(out) and d["bytes"] == out.stat().st_size < MAX_PAGE_BYTES
    assert page.count(_bundle_marker()) == 1                  # plotly.js once, inline
    assert page.count('class="plotly-graph-div"') == len(d["figures"]) == 4
    assert set(d["figures"]) == {"composition", "spectrum", "detector", "atom_map"}
    for div in d["figures"].values():
        assert page.count(f'id="{div}"') == 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)   # nothing fetched: no src
    assert 'src="https://cdn' not in page and "<link" not in page
    assert d["detector_note"] is None
    # every figure's hover texts name the run
    assert page.count("Si_first100000\\u003cbr\\u003e") >= 3
    assert d["label"] == "Si_first100000" and "<h1>Si_first100000</h1>" in page


def test_view_composition_is_the_rois_counted_with_numpy(real, si_epos_page):
    out, d, _ = si_epos_page
    run = liprobe.read(real / "apav_si" / "Si_first100000.epos")
    table = liprobe.read_ranges(real / "apav_si" / "Si.RRNG")
    n_inside, atoms = _numpy_composition(run, table, 25.0)
    assert d["ions_selected"] == n_inside and d["roi"]["diameter_nm"] == 25.0
    rows = _table_rows(out.read_text(encoding="utf-8"))
    total = sum(atoms.values())
    assert {el: n for el, (n, _) in rows.items()} == atoms
    for el, n in atoms.items():
        c = n / total
        txt = format_value_error(100 * c, 100 * np.sqrt(c * (1 - c) / total))
        assert rows[el][1] == txt
    # the error rounded to two significant digits, the value to the same decimal place
    v, e = (part.strip() for part in rows["Si"][1].split("±"))
    assert len(e.replace(".", "").lstrip("0")) == 2
    assert len(v.partition(".")[2]) == len(e.partition(".")[2])
    assert d["atom_map"]["ions_sampled"] == 50_000
    assert d["atom_map"]["ions_drawn"] + d["atom_map"]["unranged_left_out"] == 50_000


def test_view_of_a_pos_notes_that_there_is_no_detector_map(real, tmp_path):
    out = tmp_path / "pos.html"
    d_ = real / "apav_si"
    code, stdout, stderr = run_cli("view", d_ / "Si.pos", "-r", d_ / "Si.RRNG", "-o", out,
                                   "--max-ions", "2e4", "--label", "Si pos run")
    assert code == 0, stderr
    assert "no detector map" in stdout and f"wrote {out}" in stdout
    page = out.read_text(encoding="utf-8")
    assert 'id="detector-note"' in page and 'id="liprobe-detector"' not in page
    assert page.count('class="plotly-graph-div"') == 3
    assert page.count(_bundle_marker()) == 1
    assert out.stat().st_size < MAX_PAGE_BYTES
    assert page.count("Si pos run") >= 4
    meta = re.search(r'"ions_sampled":(\d+)', page)
    assert meta and int(meta.group(1)) == 20_000


def test_view_of_the_whole_pos_at_the_default_sample_stays_under_6_mb(real, tmp_path):
    out = tmp_path / "pos.html"
    d_ = real / "apav_si"
    code, stdout, stderr = run_cli("view", d_ / "Si.pos", "-r", d_ / "Si.RRNG", "-o", out,
                                   "--roi", "none", "--json")
    assert code == 0, stderr
    d = strict_json(stdout)
    assert d["roi"] is None and d["ions_selected"] == d["ions"] == 945_211
    assert d["bytes"] == out.stat().st_size < MAX_PAGE_BYTES


@pytest.mark.parametrize("case", ["missing", "bad_ranges", "empty_roi"])
def test_bad_input_is_one_line_naming_the_file_and_exit_1(real, tmp_path, case):
    d_ = real / "apav_si"
    data, ranges, out = d_ / "Si_first100000.epos", d_ / "Si.RRNG", tmp_path / "v.html"
    extra = []
    named = None
    if case == "missing":
        data = named = tmp_path / "nope.epos"
    elif case == "bad_ranges":
        ranges = named = tmp_path / "bad.rrng"
        ranges.write_text("[Ions]\nNumber=1\nIon1=Xx\n[Ranges]\nNumber=1\n"
                          "Range1=6.9 7.2 Vol:0 Xx:1 Color:FF0000\n")
    elif case == "empty_roi":
        extra = ["--roi", "sphere:1@500,500,500"]
        named = data
    code, stdout, stderr = run_cli("view", data, "-r", ranges, "-o", out, *extra)
    assert code == 1, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("liprobe: error: ")
    assert str(named) in lines[0]
    assert "Traceback" not in stderr
    assert not out.exists()


def test_an_output_that_is_not_html_is_a_usage_error(real, tmp_path):
    d_ = real / "apav_si"
    out = tmp_path / "v.png"
    code, _, stderr = run_cli("view", d_ / "Si.pos", "-r", d_ / "Si.RRNG", "-o", out)
    assert code == 2 and ".html" in stderr and "-o" in stderr
    assert not out.exists()


def test_a_bad_roi_spec_is_a_usage_error(real, tmp_path):
    d_ = real / "apav_si"
    code, _, stderr = run_cli("view", d_ / "Si.pos", "-r", d_ / "Si.RRNG", "-o",
                              tmp_path / "v.html", "--roi", "cone:3")
    assert code == 2 and "cone" in stderr


def test_view_compare_overlays_two_runs_each_normalised_to_its_ions(real, tmp_path):
    """`--compare`: the .pos and the .apt of the same Si run, overlaid; each trace's bins
    are its run's counts over its ions in the window (checked with numpy)."""
    import json

    d = real / "apav_si"
    out = tmp_path / "pair.html"
    code, stdout, stderr = run_cli("view", d / "Si_first100000.epos", "-r", d / "Si.RRNG",
                                   "-o", out, "--compare", d / "Si.pos", "--compare-label",
                                   "whole run", "--json", "--max-ions", "2000")
    assert code == 0, stderr
    res = strict_json(stdout)
    assert res["figures"]["overlay"] == "liprobe-overlay"
    assert res["compare"]["label"] == "whole run" and res["compare"]["ions"] == 945_211
    page = out.read_text(encoding="utf-8")
    assert page.count(_bundle_marker()) == 1
    m = re.search(r'Plotly\.newPlot\(\s*"liprobe-overlay",\s*(\[.*?\]),\s*\{', page, re.S)
    assert m, "no overlay figure in the page"
    traces = [t for t in json.loads(m.group(1)) if t.get("meta") in ("Si_first100000",
                                                                     "whole run")]
    assert [t["name"] for t in traces] == ["Si_first100000", "whole run"]
    for t, path in zip(traces, (d / "Si_first100000.epos", d / "Si.pos")):
        y = np.asarray(_decode(t["y"]), np.float64)
        mass = np.asarray(liprobe.read(path)["mass"], np.float64)
        lo = t["x0"] - 0.5 * t["dx"]
        edges = lo + t["dx"] * np.arange(len(y) + 1)
        counts, _ = np.histogram(mass, edges)
        assert y.sum() == pytest.approx(1.0, rel=1e-4)
        np.testing.assert_allclose(y, counts / counts.sum(), rtol=1e-5, atol=1e-9)


def _decode(y):
    """A plotly array: a list, or a typed array {dtype, bdata} in base64."""
    if isinstance(y, list):
        return y
    import base64

    return np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"]))


def test_view_compare_label_without_compare_is_a_usage_error(real, tmp_path):
    d = real / "apav_si"
    code, _, stderr = run_cli("view", d / "Si.pos", "-r", d / "Si.RRNG", "-o",
                              tmp_path / "a.html", "--compare-label", "x")
    assert code == 2 and "--compare" in stderr
    assert not (tmp_path / "a.html").exists()


@pytest.mark.parametrize("command", ["view", "spectrum"])
def test_a_compared_run_that_cannot_be_used_is_named_not_file(real, tmp_path, command):
    """The error is about OTHER (--compare): it names OTHER, not FILE."""
    d = real / "apav_si"
    other = tmp_path / "allneg.pos"
    liprobe.write(other, liprobe.Run.from_arrays(x=[0.0] * 4, y=[0.0] * 4,
                                                 z=[0.0, 1.0, 2.0, 3.0], mass=[-5.0] * 4))
    args = ([command, d / "Si_first100000.epos", "-r", d / "Si.RRNG", "-o",
             tmp_path / "v.html", "--max-ions", "100"] if command == "view"
            else [command, d / "Si_first100000.epos"])
    code, _, stderr = run_cli(*args, "--compare", other)
    assert code == 1
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"liprobe: error: {other}: ") and "Si_first100000" not in line
