"""Field proxies against hand counts on a small table."""

import json
import math

import numpy as np
import pytest

from liprobe.chemistry import parse_ion
from liprobe.errors import AnalysisError
from liprobe.field import field_proxies, field_proxies_from_counts, parse_ion_ratio
from liprobe.rangetable import Range, RangeTable


def table_of(*ions):
    """One window per ion at its most abundant isotope peak, +-0.05 Da."""
    ranges = []
    for name in ions:
        ion = parse_ion(name)
        m = max(ion.peaks(), key=lambda p: p[1])[0]
        ranges.append(Range(m - 0.05, m + 0.05, ion))
    return RangeTable.from_ranges(ranges)


HAND = {"Ni+": 3, "Ni++": 6, "Co+": 2, "Co++": 1, "Mn+": 4, "Mn++": 2, "Cr+": 5, "Cr++": 2,
        "O+": 4, "O2+": 8, "NiO+": 1, "Li+": 7}


def hand_masses():
    table = table_of(*HAND)
    peak = {r.ion.name: 0.5 * (r.lo + r.hi) for r in table.ranges}
    mass = np.array([peak[name] for name, n in HAND.items() for _ in range(n)] + [3.3, 120.0],
                    np.float32)
    return np.random.default_rng(0).permutation(mass), table


def disjoint(a, b):
    return a / b, a / b * math.sqrt(1 / a + 1 / b)


def test_charge_state_ratios_and_errors_equal_hand_counts():
    mass, table = hand_masses()
    f = field_proxies(mass, table)
    assert f.ions_total == sum(HAND.values()) + 2
    assert set(f.charge_state_ratios) == {"Ni++/Ni+", "Co++/Co+", "Mn++/Mn+", "Cr++/Cr+"}
    for el in ("Ni", "Co", "Mn", "Cr"):
        r = f.charge_state_ratios[f"{el}++/{el}+"]
        v, e = disjoint(HAND[f"{el}++"], HAND[f"{el}+"])
        assert (r.numerator, r.denominator) == (HAND[f"{el}++"], HAND[f"{el}+"])
        assert r.value == pytest.approx(v) and r.error == pytest.approx(e)
    # Ni++/Ni+ = 6/3 = 2 +- 2 sqrt(1/6 + 1/3)
    assert f.charge_state_ratios["Ni++/Ni+"].error == pytest.approx(2 * math.sqrt(0.5))


def test_oxygen_ratio_and_its_equivalent_fraction():
    mass, table = hand_masses()
    f = field_proxies(mass, table)
    r = f.ratios["O2+/O+"]
    assert r.value == pytest.approx(2.0) and r.error == pytest.approx(2 * math.sqrt(1 / 8 + 1 / 4))
    fo = f.ratios["O+/(O+ + O2+)"]
    assert fo.value == pytest.approx(4 / 12) == pytest.approx(1 / (1 + r.value))
    assert fo.error == pytest.approx(math.sqrt((1 / 3) * (2 / 3) / 12))
    assert (fo.numerator, fo.denominator) == (4, 12)


def test_further_ion_ratios():
    mass, table = hand_masses()
    f = field_proxies(mass, table, ratios=["NiO+/Ni+", "Mn++/Mn+"])
    assert f.ratios["NiO+/Ni+"].value == pytest.approx(1 / 3)
    assert f.ratios["Mn++/Mn+"].value == pytest.approx(0.5)
    assert list(f.ratios)[:2] == ["O2+/O+", "O+/(O+ + O2+)"]


def test_zero_denominator_and_unranged_ion_are_null_with_a_reason():
    table = table_of("Mn+", "Mn++", "O+")
    counts = np.array([{"Mn++": 5}.get(ion.name, 0) for ion in table.ions])
    f = field_proxies_from_counts(counts, table, 5, ratios=["Co++/Co+"], unranged="null")
    mn = f.charge_state_ratios["Mn++/Mn+"]
    assert mn.value is None and mn.error is None and "zero" in mn.reason
    assert f.ratios["O2+/O+"].value is None and "O2+ is not ranged" in f.ratios["O2+/O+"].reason
    assert f.ratios["Co++/Co+"].reason == ("Co++ is not ranged (the range file has: O+, Mn++, "
                                           "Mn+)")
    # the API and the command line refuse it (a study's many runs get the null above)
    with pytest.raises(AnalysisError, match="ratio 'Co\\+\\+/Co\\+': Co\\+\\+ is not ranged"):
        field_proxies_from_counts(counts, table, 5, ratios=["Co++/Co+"])
    d = f.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert "NaN" not in text
    assert d["charge_state_ratios"]["Mn++/Mn+"] == {"value": None, "error": None, "numerator": 5,
                                                    "denominator": 0, "reason": mn.reason}


def test_three_charge_states_give_adjacent_ratios():
    table = table_of("Cr+", "Cr++", "Cr+++")
    counts = [{"Cr+": 10, "Cr++": 20, "Cr+++": 5}[ion.name] for ion in table.ions]
    f = field_proxies_from_counts(counts, table, 35)
    assert {k: v.value for k, v in f.charge_state_ratios.items()} == \
        {"Cr++/Cr+": pytest.approx(2.0), "Cr+++/Cr++": pytest.approx(0.25)}


def test_molecular_ions_are_not_charge_state_ratios():
    table = table_of("CrO+", "CrO++", "Li+")
    f = field_proxies_from_counts([1] * len(table.ions), table, 3)
    assert f.charge_state_ratios == {}


def test_interference_warnings():
    mass, table = hand_masses()
    w = " ".join(field_proxies(mass, table).warnings)
    assert "54CrH+" in w and "64Ni++" in w


def test_element_ratios_are_refused():
    with pytest.raises(ValueError, match="Mn is an element"):
        parse_ion_ratio("Mn/Mn+")
    with pytest.raises(ValueError):
        parse_ion_ratio("Mn++ Mn+")
    assert parse_ion_ratio("Mn++/Mn+").text == "Mn++/Mn+"
