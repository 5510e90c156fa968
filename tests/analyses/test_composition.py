"""Composition and ratios against hand counts and composition.md's worked example."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import liprobe
from liprobe.chemistry import parse_ion
from liprobe.cli import cli
from liprobe.composition import composition, composition_from_counts, evaluate_ratio
from liprobe.rangetable import Range, RangeTable


def table_of(*ions):
    """One window per ion at its most abundant isotope peak, +-0.05 Da."""
    ranges = []
    for name in ions:
        ion = parse_ion(name)
        m = max(ion.peaks(), key=lambda p: p[1])[0]
        ranges.append(Range(m - 0.05, m + 0.05, ion))
    return RangeTable.from_ranges(ranges)


def test_ten_ion_hand_computation():
    table = table_of("Li+", "O+", "O2+", "NiO+", "CrO+")
    peak = {ion.name: (r.lo + r.hi) / 2 for r in table for ion in [r.ion]}
    # 3 Li+, 2 O+, 1 O2+, 1 NiO+, 1 CrO+, 2 unranged
    mass = np.array([peak["Li+"]] * 3 + [peak["O+"]] * 2 + [peak["O2+"], peak["NiO+"], peak["CrO+"]]
                    + [3.3, 100.0], np.float32)
    c = composition(mass, table)
    assert c.ions_total == 10 and c.ions_ranged == 8
    assert c.ion_counts == {"Li+": 3, "O+": 2, "O2+": 1, "NiO+": 1, "CrO+": 1}
    # atoms: Li 3, O 2 + 2 + 1 + 1 = 6, Ni 1, Cr 1 -> 11 atoms
    assert c.atom_counts == {"Li": 3, "O": 6, "Ni": 1, "Cr": 1}
    assert c.atomic_percent["O"] == pytest.approx(600 / 11)
    assert c.atomic_percent_error["Li"] == pytest.approx(100 * math.sqrt(3 / 11 * 8 / 11 / 11))
    # excluding Cr drops CrO+ whole: its O too
    x = composition(mass, table, exclude=["Cr"], ratios=["Li/(Li+Ni)"])
    assert x.atom_counts == {"Li": 3, "O": 5, "Ni": 1}
    assert x.excluded == {"elements": ["Cr"], "ions": {"CrO+": 1}, "ions_total": 1}
    assert "CrO+" not in x.ion_counts
    r = x.ratios["Li/(Li+Ni)"]
    assert r.value == pytest.approx(0.75) and r.error == pytest.approx(math.sqrt(0.75 * 0.25 / 4))


WORKED = {"Li+": 200000, "O+": 240000, "O2+": 60000, "Ni+": 30000, "Ni++": 100000,
          "NiO+": 20000, "NiO++": 10000, "Co+": 5000, "Co++": 12000, "CoO+": 3000,
          "Mn+": 4000, "Mn++": 13000, "MnO+": 3000}


def test_composition_md_worked_example():
    table = table_of(*WORKED)
    counts = [WORKED[ion.name] for ion in table.ions]
    c = composition_from_counts(counts, table, sum(counts),
                                ratios=["Li/(Li+Ni+Co+Mn)", "O/(Li+Ni+Co+Mn)"])
    assert c.atom_counts == {"Li": 200000, "O": 396000, "Ni": 160000, "Co": 20000, "Mn": 20000}
    expect = {"Li": (25.1256, 0.0486), "Ni": (20.1005, 0.0449), "Co": (2.5126, 0.0175),
              "Mn": (2.5126, 0.0175), "O": (49.7487, 0.0560)}
    for el, (pct, err) in expect.items():
        assert round(c.atomic_percent[el], 4) == pct
        assert round(c.atomic_percent_error[el], 4) == err
    li = c.ratios["Li/(Li+Ni+Co+Mn)"]
    assert round(li.value, 5) == 0.5 and round(li.error, 5) == 0.00079
    o = c.ratios["O/(Li+Ni+Co+Mn)"]
    assert round(o.value, 5) == 0.99 and round(o.error, 5) == 0.00222


def test_ion_ratio_error_is_poisson():
    r, w = evaluate_ratio("O2+/O+", {parse_ion("O2+"): 400, parse_ion("O+"): 1000}, {})
    assert w == [] and r.value == 0.4
    assert r.error == pytest.approx(0.4 * math.sqrt(1 / 400 + 1 / 1000))
    assert (r.numerator, r.denominator) == (400, 1000)


def test_zero_denominator_is_null_with_reason():
    r, w = evaluate_ratio("Mn++/Mn+", {parse_ion("Mn++"): 5}, {})
    assert r.value is None and r.error is None
    assert r.reason == "denominator Mn+ is zero"
    assert any("Mn+ is not ranged" in s for s in w)


def test_no_atoms_gives_empty_percentages_and_a_warning():
    table = RangeTable.from_ranges([Range(1.0, 2.0, liprobe.Ion((), None, "IFB"))])
    c = composition(np.array([1.5, 1.5], np.float32), table)
    assert c.ion_counts == {"IFB": 2} and c.atomic_percent == {} and c.atom_counts == {}
    assert any("no ranged atoms" in w for w in c.warnings)


def test_cli_composition_json_on_real_si(real):
    res = CliRunner().invoke(cli, ["composition", str(real / "apav_si" / "Si.pos"), "-r",
                                   str(real / "apav_si" / "Si.RRNG"), "--exclude", "Cr",
                                   "--ratio", "O/(Si+O)", "--ratio", "Cr+/Si+", "--json"])
    assert res.exit_code == 0, res.stderr
    d = json.loads(res.stdout)
    assert set(d) >= {"ions_total", "ions_ranged", "ion_counts", "atom_counts", "atomic_percent",
                      "atomic_percent_error", "ratios", "excluded"}
    assert d["ions_total"] == 945_211 and d["ions_ranged"] == 877_010
    assert d["atom_counts"]["Si"] == 785_076 and d["atom_counts"]["O"] == 1_355
    assert d["excluded"]["ions_total"] == 1_207 + 1_681 + 642 + 85_660
    o = d["ratios"]["O/(Si+O)"]
    assert o["value"] == pytest.approx(1355 / (785076 + 1355))
    assert d["ratios"]["Cr+/Si+"]["value"] is None
    assert "excluded" in d["ratios"]["Cr+/Si+"]["reason"]


def test_cli_composition_bad_ratio_is_usage_error(real):
    res = CliRunner().invoke(cli, ["composition", str(real / "apav_si" / "Si.pos"), "-r",
                                   str(real / "apav_si" / "Si.RRNG"), "--ratio", "Li/(Li+"])
    assert res.exit_code == 2


def _ni_table():
    return RangeTable.from_ranges([Range(28.9, 29.1, parse_ion("Ni++")),
                                   Range(57.8, 58.1, parse_ion("Ni+")),
                                   Range(15.9, 16.1, parse_ion("O+"))])


def test_an_ion_name_that_looks_alike_is_an_error_with_the_likely_meaning():
    """Ni2+ is the Ni2 molecule in liprobe's grammar; a user who meant Ni2+ the charge state
    gets an error naming Ni++, never 0.00000 +/- 0.00000."""
    from liprobe.errors import AnalysisError

    mass = np.array([29.0] * 6 + [58.0] * 4 + [16.0] * 3)
    with pytest.raises(AnalysisError, match=r"Ni2\+ is the Ni2 molecule .* did you mean Ni\+\+"):
        composition(mass, _ni_table(), ratios=["Ni2+/Ni+"])
    with pytest.raises(AnalysisError, match="no ranged ion carries Co"):
        composition(mass, _ni_table(), ratios=["Co/(Ni+Co)"])
    c = composition(mass, _ni_table(), ratios=["Ni++/Ni+"])
    assert c.ratios["Ni++/Ni+"].value == pytest.approx(1.5)


def test_a_study_gets_null_for_an_unranged_ion_and_zero_for_an_absent_element():
    table = _ni_table()
    assert [i.name for i in table.ions] == ["O+", "Ni++", "Ni+"]
    counts = np.array([3, 6, 4])
    c = composition_from_counts(counts, table, 13,
                                ratios=["Ni2+/Ni+", "Co/(Ni+Co)", "Ni/(Ni+O)"], unranged="null")
    r = c.ratios["Ni2+/Ni+"]
    assert r.value is None and "did you mean Ni++" in r.reason
    assert c.ratios["Co/(Ni+Co)"].value == 0.0                 # no Co in this run: 0
    assert any("no ranged ion carries Co" in w for w in c.warnings)
    assert c.ratios["Ni/(Ni+O)"].value == pytest.approx(10 / 13)


def test_excluding_an_absent_element_is_a_warning():
    c = composition_from_counts(np.array([3, 6, 4]), _ni_table(), 13, exclude=["Cr"])
    assert any("exclude Cr: no ranged ion carries Cr" in w for w in c.warnings)
    assert c.atom_counts == {"Ni": 10, "O": 3}
