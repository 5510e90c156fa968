"""``liprobe spectrum``, ``autorange``, ``correlation`` and ``composition --deconvolve``."""


import numpy as np
import pytest

import liprobe

from ._run import run_cli, strict_json

ISSUE_KEYS = ("mass", "height", "background", "fwhm", "fw10", "fw1", "mrp_fwhm", "mrp_fw10",
              "mrp_fw1", "tail_ns", "tail_fraction")




@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from liprobe.simulate import SimulationConfig, simulate, write_simulation

    d = tmp_path_factory.mktemp("simcli")
    paths = {}
    for key, coating, seed in (("cr", "Cr", 5), ("un", "none", 6)):
        p = d / f"{key}.epos"
        write_simulation(simulate(SimulationConfig("NMC811", coating=coating, ions=150_000,
                                                   seed=seed)), p)
        paths[key] = p
    return paths


def test_spectrum_json_peaks_and_background_on_real_si(real, tmp_path):
    code, out, err = run_cli("spectrum", real / "apav_si" / "Si.pos", "--json")
    assert code == 0, err
    d = strict_json(out)
    assert set(d) >= {"peaks", "background"}
    p = min(d["peaks"], key=lambda q: abs(q["mass"] - 14.04))
    assert set(p) >= set(ISSUE_KEYS)
    assert p["fwhm"] is not None and 0.005 < p["fwhm"] < 0.05
    assert p["tail_ns"] is None and p["reasons"]["tail_ns"]          # a .pos: no tof
    assert d["background"]["ppm_per_ns"] is None
    assert d["background"]["per_da"][0]["counts_per_da"] > 0


def test_spectrum_outputs_and_compare(sim, tmp_path):
    png, svg, csv = tmp_path / "s.png", tmp_path / "s.svg", tmp_path / "s.csv"
    code, out, err = run_cli("spectrum", sim["un"], "--compare", sim["cr"], "--normalize", "O2+",
                             "--mass", "4:35", "-o", png, "--json")
    assert code == 0, err
    d = strict_json(out)
    assert png.stat().st_size > 10_000 and d["figure"] == str(png)
    shared = {round(s["mass"]): s for s in d["compare"]["shared_peaks"]}
    assert 7 in shared and 32 in shared
    # the named peak normalises both runs to one
    assert shared[32]["normalized_a"] == pytest.approx(1.0, rel=0.02)
    assert shared[32]["normalized_b"] == pytest.approx(1.0, rel=0.02)
    # uncoated tails are longer (Figure 4a)
    assert shared[7]["tail_ns_a"] > 2 * shared[7]["tail_ns_b"]
    code, _, err = run_cli("spectrum", sim["cr"], "-r", sim["cr"].with_suffix(".rrng"), "-o", svg)
    assert code == 0, err and svg.read_text().startswith("<?xml")
    code, _, err = run_cli("spectrum", sim["cr"], "--multiplicity", "single", "-o", csv,
                           "--bin", "0.05")
    assert code == 0, err
    rows = csv.read_text().splitlines()
    assert rows[0] == "mass_lo_da,mass_hi_da,counts"
    single = liprobe.read(sim["cr"])
    n_single = int(np.count_nonzero(single["multiplicity"] == 1))
    assert sum(int(r.split(",")[2]) for r in rows[1:]) <= n_single


def test_spectrum_usage_and_input_errors(real, tmp_path):
    code, _, err = run_cli("spectrum", real / "apav_si" / "Si.pos", "-o", tmp_path / "x.jpg")
    assert code == 2
    code, _, err = run_cli("spectrum", real / "apav_si" / "Si.pos", "--multiplicity", "single")
    assert code == 1 and "multiplicity column" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("spectrum", tmp_path / "missing.epos")
    assert code == 1


def test_autorange_writes_a_range_file_and_json(sim, tmp_path):
    out = tmp_path / "auto.rrng"
    code, stdout, err = run_cli("autorange", sim["cr"], "--elements", "Li,Ni,Co,Mn,O,Cr",
                                "-o", out, "--json")
    assert code == 0, err
    d = strict_json(stdout)
    table = liprobe.read_ranges(out)
    assert {i.name for i in table.ions} >= {"Li+", "O+", "O2+", "Ni++", "Co++", "Mn+", "Cr+"}
    assert set(d) >= {"ions", "ambiguities", "unexplained", "ranges", "peaks", "background"}
    code, _, err = run_cli("autorange", sim["cr"], "--elements", "Li,Xx")
    assert code == 2 and "Xx" in err


def test_correlation_plot_and_pos_error(sim, real, tmp_path):
    png = tmp_path / "saxey.png"
    code, out, err = run_cli("correlation", sim["cr"], "-o", png, "--track", "NiO2++=NiO+,O+",
                             "--json")
    assert code == 0, err
    d = strict_json(out)
    assert d["pairs"] > 0 and png.stat().st_size > 5000
    assert d["multiplicity"]["events_by_size"]["1"] > 0
    code, _, err = run_cli("correlation", real / "apav_si" / "Si.pos", "-o", png)
    assert code == 1 and "multiplicity column" in err and len(err.strip().splitlines()) == 1


def test_composition_deconvolve_and_background(sim):
    rrng = sim["un"].with_suffix(".rrng")
    code, out, err = run_cli("composition", sim["un"], "-r", rrng, "--json")
    plain = strict_json(out)
    code, out, err = run_cli("composition", sim["un"], "-r", rrng, "--background",
                             "--deconvolve", "--json")
    assert code == 0, err
    d = strict_json(out)
    assert d["background"]["subtracted"] is True
    dec = d["deconvolution"]
    assert dec["ions"]["Co++"]["error"] > 0
    # the tail correction moves Ni tail counts out of the Co windows
    assert d["atom_counts"]["Co"] < plain["atom_counts"]["Co"]
    code, out, err = run_cli("composition", sim["un"], "-r", rrng, "--background", "--json")
    assert code == 0 and strict_json(out)["ions_ranged"] < plain["ions_ranged"]
