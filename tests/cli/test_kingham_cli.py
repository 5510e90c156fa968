"""``liprobe kingham`` and ``liprobe field --kingham``: JSON against the API, figures, exits."""

import numpy as np
import pytest

from liprobe.kingham import crossover_fields, kingham_curves

from .test_fda_field import run_cli, strict_json


def test_kingham_json_is_the_apis_curves():
    code, out, err = run_cli("kingham", "Cr", "--json")
    assert code == 0, err
    d = strict_json(out)
    assert d["element"] == "Cr"
    assert d["fields_v_nm"] == [float(f) for f in range(10, 81)]
    assert set(d["fractions"]) == {"1", "2", "3", "4"}
    total = np.sum([d["fractions"][q] for q in d["fractions"]], axis=0)
    assert total == pytest.approx(np.ones(71), abs=1e-12)
    c = kingham_curves("Cr", np.arange(10.0, 81.0))
    assert d["fractions"]["2"] == pytest.approx(list(c.fractions[2]), rel=1e-12)
    assert d["crossover_v_nm"] == crossover_fields("Cr")
    assert d["parameters"]["work_function_ev"] == 4.5
    assert d["outputs"] == []


def test_kingham_fields_stop_at_hi():
    code, out, err = run_cli("kingham", "Cr", "--fields", "10:20:0.35", "--json")
    assert code == 0, err
    f = strict_json(out)["fields_v_nm"]
    assert f[0] == 10.0 and f[-1] <= 20.0 and len(f) == 29


def test_kingham_fields_option_text_and_figure(tmp_path):
    png = tmp_path / "cr.png"
    code, out, err = run_cli("kingham", "Ni", "--fields", "18:24:2", "-o", png)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Ni: Kingham curves (crossovers in V/nm: 2/1: ")
    assert [float(ln.split()[0]) for ln in lines[2:6]] == [18.0, 20.0, 22.0, 24.0]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {png}" in out


@pytest.mark.parametrize("args,text", [
    (["kingham", "Xx"], "no Kingham data for 'Xx'"),
    (["kingham", "Cr", "--fields", "1e-300:1e-299:1e-301"], "at least 0.1"),
    (["kingham", "Cr", "--fields", "10:2000"], "at most 1000"),
    (["kingham", "Cr", "--fields", "10:20:30"], "at least two fields"),
    (["kingham", "Ni", "--fields", "80:10"], "0 < LO < HI"),
    (["kingham", "Ni", "--fields", "10"], "LO:HI[:STEP]"),
    (["kingham", "Ni", "--fields", "a:b"], "LO:HI[:STEP]"),
    (["kingham", "Ni", "--fields", "1:1000:0.01"], "at most 10,000"),
    (["kingham", "Ni", "-o", "x.pdf"], ".png or .svg"),
])
def test_kingham_usage_errors(args, text):
    code, out, err = run_cli(*args)
    assert code == 2 and text in err and out == ""


def test_field_kingham_on_the_real_si_run(real):
    # the Si run's Cr-rich cap (its top ~16 nm) is found and kept out: Cr is read in the cap,
    # where its charge states are mostly molecular (CrO+...) and Cr++ / Cr+ barely clear the
    # background; Si is read below the cap, where Si++/Si+ = 106 +- 1.3, beyond the range
    # where Kingham's curves can be read (the whole run, cap included, gives 20)
    pos, rrng = real / "apav_si" / "Si.pos", real / "apav_si" / "Si.RRNG"
    code, out, err = run_cli("field", pos, "-r", rrng, "--kingham", "--json")
    assert code == 0, err
    d = strict_json(out)
    assert d["kingham_field_cr_v_nm"] is None and d["kingham_field_cr_v_nm_err"] is None
    assert d["kingham"]["Cr"]["region"] == "the Cr cap (above its interface)"
    assert "no Cr++ or Cr+ ions significantly above background" in d["kingham"]["Cr"]["reason"]
    si = d["kingham"]["Si"]
    assert si["label"] == "Kingham-equivalent field (metal assumption)"
    assert si["region"] == "the core (3 nm clear of the Cr cap)"
    assert si["ratio"] == pytest.approx(106.3, abs=4 * si["ratio_error"])
    assert d["kingham_field_si_v_nm"] is None and "outside 0.01 to 100" in si["reason"]
    assert "charge_state_ratios" in d                      # the proxies are still there
    code, out, err = run_cli("field", pos, "-r", rrng, "--kingham")
    assert code == 0, err
    assert "Cr  n/a (no Cr++ or Cr+ ions significantly above background" in out
    assert "Si  n/a (Si++/Si+ = 106 is outside 0.01 to 100" in out


@pytest.mark.parametrize("args,text", [
    (["--all-elements"], "go with --kingham"),
    (["--coating", "Pt"], "go with --kingham"),
    (["--kingham", "--coating", "Qq"], "not a chemical element"),
    (["--kingham", "--margin", "-1"], "not negative"),
    (["--kingham", "--margin", "nan"], "finite"),
])
def test_field_kingham_usage_errors(real, args, text):
    code, out, err = run_cli("field", real / "apav_si" / "Si.pos", "-r",
                             real / "apav_si" / "Si.RRNG", *args)
    assert code == 2 and text in err
