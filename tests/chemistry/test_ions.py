"""infer_charge: the charge of an ion from where its window sits."""

import pytest
from hypothesis import given, strategies as st

from liprobe.chemistry import CHARGE_TOLERANCE_DA, Ion, infer_charge, parse_formula


def F(text):
    return parse_formula(text)


@pytest.mark.parametrize("formula, lo, hi, charge", [
    ("Si", 13.9, 14.1, 2),               # 28Si++ at 13.988 Da
    ("Si", 27.9, 28.1, 1),               # 28Si+
    ("O2", 31.9, 32.1, 1),               # the O2 molecule, singly charged: O2+
    ("O2", 15.9, 16.1, 2),               # O2++ sits where O+ does
    ("O", 7.9, 8.1, 2),                  # O++
    ("Cr2O", 57.819, 61.159, 2),         # Si.RRNG Range25: (2*51.94+15.99)/2 = 59.94
    ("CrO2", 83.595, 86.555, 1),         # Si.RRNG Range23: 51.94+31.99 = 83.93
    ("Mo", 22.8615, 23.091, 4),          # Mo_range.rrng Range1: 91.907/4 = 22.976
    ("TiNO", 25.929, 26.073, 3),         # TiAlN Range41: (47.95+14.00+15.99)/3 = 25.98
    ("Ni2O", 43.857, 44.693, 3),         # Ranges_R45 Range11: (2*57.94+15.99)/3 = 43.96
    ("Li", 6.0, 6.03, 1),                # 6Li+, 7.59 % by liprobe's Li override
    ("Li", 3.49, 3.52, 2),               # 7Li++
])
def test_charge_from_isotope_peak_inside_the_window(formula, lo, hi, charge):
    assert infer_charge(F(formula), lo, hi) == charge


def test_most_abundant_peak_inside_wins_over_the_lower_charge():
    # [5.4, 10.1) holds 10B+ (19.65 %) and 11B++ at 5.504 Da (80.35 %)
    assert infer_charge(F("B"), 5.4, 10.1) == 2


def test_equal_abundance_goes_to_the_lower_charge():
    # [13, 27.5) holds 27Al++ at 13.49 and 27Al+ at 26.98, both 100 %
    assert infer_charge(F("Al"), 13.0, 27.5) == 1


def test_rare_isotopologue_counts():
    # VAlN_film_plan-view_700C.rrng ranges N2 at 29.932-30.017: only 15N2+ (1.3e-5) is there
    assert infer_charge(F("N2"), 29.932, 30.017) == 1


def test_nearest_peak_within_tolerance_when_none_inside():
    # rangefile.rrng Range1 puts H at 1.018-1.048; H+ is at 1.00728 (0.0107 Da below)
    assert infer_charge(F("H"), 1.018, 1.048) == 1
    # range_file_RNG.RNG: Si at 13.991-14.039, 28Si++ at 13.9885 (0.0025 Da below)
    assert infer_charge(F("Si"), 13.991, 14.039) == 2


def test_no_peak_near_the_window_is_an_error_naming_window_and_ion():
    with pytest.raises(ValueError) as e:
        infer_charge(F("Si"), 40.0, 40.1)
    assert str(e.value) == "window [40.0, 40.1) does not contain any isotope of Si at charge 1-4"
    # 28Si++ at 13.9885 is 0.0115 below 14.0: found with the default, not with 0.01 Da
    assert infer_charge(F("Si"), 14.0, 14.2) == 2
    with pytest.raises(ValueError):
        infer_charge(F("Si"), 14.0, 14.2, tolerance_da=0.01)
    assert CHARGE_TOLERANCE_DA > 0.06  # the largest offset in the real files is H2O+, 0.056 Da


def test_unknown_element_or_no_atoms_is_an_error():
    with pytest.raises(ValueError, match="'Xx' is not a chemical element"):
        infer_charge((("Xx", 1),), 10.0, 11.0)
    with pytest.raises(ValueError, match="no isotope peaks"):
        infer_charge((), 10.0, 11.0)


POOL = ["Li", "O", "O2", "Mn", "Ni", "Co", "Cr", "Al", "C2", "NiO2", "MnO", "CrO", "Cr2O", "Mo"]


@given(formula=st.sampled_from(POOL), charge=st.integers(1, 4), data=st.data(),
       below=st.floats(1e-4, 0.05), above=st.floats(1e-4, 0.05))
def test_narrow_window_on_any_peak_gives_its_charge(formula, charge, data, below, above):
    peaks = [(m, p) for m, p in Ion(F(formula), charge).peaks() if p > 1e-3]
    m, _ = data.draw(st.sampled_from(peaks))
    assert infer_charge(F(formula), m - below, m + above) == charge


def test_parse_amounts_reads_fractional_formulas():
    from liprobe.chemistry.ions import parse_amounts

    assert parse_amounts("LiNi0.8Co0.1Mn0.1O2") == (("Li", 1.0), ("Ni", 0.8), ("Co", 0.1),
                                                    ("Mn", 0.1), ("O", 2.0))
    assert dict(parse_amounts("LiMn2O4")) == {"Li": 1.0, "Mn": 2.0, "O": 4.0}
    for bad, msg in (("Xx2", "not a chemical element"), ("Li-2", "not a chemical formula"),
                     ("", "empty"), ("LiO0", "must be positive")):
        with pytest.raises(ValueError, match=msg):
            parse_amounts(bad)
