"""Isotopes of every element (those periodictable gives no natural abundance too) and
isotope patterns of ions of any size, checked against a brute-force enumeration and
the moments of the atoms' isotope distributions."""

import itertools
import math

import periodictable
import pytest

from liprobe.chemistry import (
    MAX_ION_ATOMS,
    Ion,
    infer_charge,
    isotope_note,
    isotope_pattern,
    isotope_warnings,
    isotopes,
)
from liprobe.chemistry.candidates import candidate_ions
from liprobe.chemistry.elements import element_symbols
from liprobe.chemistry.ions import FINE_STRUCTURE_LIMIT, _fine_pattern, _nominal_pattern

WITHOUT_NATURAL = sorted(el.symbol for el in periodictable.elements if el.number >= 1
                         and not any(el[a].abundance > 0 for a in el.isotopes))


def test_elements_without_natural_isotopes_get_one_isotope_and_a_note():
    assert {"Tc", "Pm", "Po", "U", "Np", "Pu", "Og"} <= set(WITHOUT_NATURAL)
    assert "Th" not in WITHOUT_NATURAL and "Bi" not in WITHOUT_NATURAL
    for sym in WITHOUT_NATURAL:
        ((a, mass, fraction),) = isotopes(sym)
        el = getattr(periodictable, sym)
        assert fraction == 1.0 and a == round(el.mass) and mass == el[a].mass
        assert isotope_note(sym).startswith(f"{sym} has no natural isotope abundances")
        assert f"{a}{sym} ({mass:.4f} Da)" in isotope_note(sym)
    assert isotopes("U") == ((238, 238.0507869, 1.0),)
    assert isotopes("Tc") == ((98, 97.907211, 1.0),)
    assert isotopes("Og") == ((294, 294.21398, 1.0),)
    assert "standard atomic weight 238.029" in isotope_note("U")
    assert "longest-lived isotope 98Tc" in isotope_note("Tc")


def test_elements_with_natural_isotopes_have_no_note():
    for sym in sorted(element_symbols() - set(WITHOUT_NATURAL)):
        assert isotope_note(sym) is None, sym
        assert math.isclose(sum(p for _, _, p in isotopes(sym)), 1.0)
    assert isotope_warnings(["Zr", "Si", "U", "O", "U", "Tc"]) == [isotope_note("U"),
                                                                     isotope_note("Tc")]
    with pytest.raises(KeyError):
        isotopes("Xx")


def test_uranium_ions_are_ranged_and_offered_as_candidates():
    assert infer_charge((("U", 1),), 118.9, 119.2) == 2               # 238U++ at 119.025
    assert infer_charge((("U", 1), ("O", 2)), 269.9, 270.2) == 1      # 238U16O2+ at 270.04
    names = {c.name for c in candidate_ions(["U", "O"], mass_range=(0, 300))}
    assert {"U+", "U++", "U+++", "UO+", "UO2+", "UO++"} <= names     # autorange --elements U,O


def test_simulating_a_uranium_oxide_notes_the_assumed_isotope():
    from liprobe.simulate import SimulationConfig
    from liprobe.simulate.engine import prepare

    setup = prepare(SimulationConfig(material="UO2", ions=2000))
    assert isotope_note("U") in setup.notes
    assert "U" in {el for r in setup.table for el in r.ion.elements}


# -- isotope patterns -------------------------------------------------------------------

def brute_force(atoms, min_abundance):
    """Every isotopologue enumerated, masses merged closer than 1e-4 Da."""
    lists = [isotopes(el) for el, n in atoms for _ in range(n)]
    peaks = {}
    for combo in itertools.product(*lists):
        m = sum(c[1] for c in combo)
        p = math.prod(c[2] for c in combo)
        key = round(m, 4)
        m0, p0 = peaks.get(key, (0.0, 0.0))
        peaks[key] = ((m0 * p0 + m * p) / (p0 + p), p0 + p)
    return sorted((m, p) for m, p in peaks.values() if p >= min_abundance)


@pytest.mark.parametrize("formula", [(("Cr", 2), ("O", 1)), (("Ni", 1), ("O", 2)),
                                     (("Li", 2), ("O", 1)), (("Mo", 3),), (("Si", 4),)])
def test_small_ions_have_every_isotopologue(formula):
    got = isotope_pattern(formula, 1e-6)
    want = brute_force(formula, 1e-6)
    assert len(got) == len(want)
    for (m, p), (m2, p2) in zip(got, want):
        assert m == pytest.approx(m2, abs=1e-9) and p == pytest.approx(p2, rel=1e-6, abs=1e-9)


def moments(element):
    iso = isotopes(element)
    mean = sum(m * p for _, m, p in iso)
    return mean, sum(p * (m - mean) ** 2 for _, m, p in iso)


@pytest.mark.parametrize("n", [3000, 100_000])
def test_a_large_ion_has_one_peak_per_nucleon_number_with_the_right_moments(n):
    """Si3000 took 81 s and Si100000 never finished (the pattern was rebuilt atom by
    atom); now milliseconds. Mean and variance are n times those of one Si atom."""
    pattern = isotope_pattern((("Si", n),), 1e-6)
    masses = [m for m, _ in pattern]
    total = sum(p for _, p in pattern)
    mean = sum(m * p for m, p in pattern) / total
    var = sum(p * (m - mean) ** 2 for m, p in pattern) / total
    mu, v = moments("Si")
    assert total == pytest.approx(1.0, abs=1e-4)
    assert mean == pytest.approx(n * mu, abs=1e-3 * math.sqrt(n))
    assert var == pytest.approx(n * v, rel=0.01)
    gaps = [b - a for a, b in zip(masses, masses[1:])]
    assert all(0.99 < g < 1.01 for g in gaps)         # one peak per nucleon number
    ion = Ion((("Si", n),), 1)
    assert ion.peaks(1e-6)[0][0] == pytest.approx(masses[0] - 0.00054858, abs=1e-6)


def test_nucleon_number_pattern_is_the_fine_pattern_grouped():
    """Below the limit the exact pattern is used; its peaks grouped by nucleon number
    give the nucleon-number pattern used above it."""
    for formula in ((("Sn", 6),), (("Si", 60),), (("W", 10), ("O", 3))):
        nominal = _nominal_pattern(formula, 1e-5)
        grouped = [[0.0, 0.0] for _ in nominal]     # fine peaks to the nearest nominal one
        for m, p in _fine_pattern(formula, 1e-7):
            i = min(range(len(nominal)), key=lambda i: abs(nominal[i][0] - m))
            if abs(nominal[i][0] - m) < 0.5:
                grouped[i][0] += p
                grouped[i][1] += p * m
        for (m, p), (s, sm) in zip(nominal, grouped):
            assert p == pytest.approx(s, abs=2e-5) and m == pytest.approx(sm / s, abs=5e-4)
    assert FINE_STRUCTURE_LIMIT >= 2145       # Si64: 2,145 compositions, still exact


def test_more_atoms_or_charges_than_the_limits_are_errors():
    with pytest.raises(ValueError, match="an ion of 1000001 atoms is above the limit"):
        isotope_pattern((("Si", MAX_ION_ATOMS + 1),))
    with pytest.raises(ValueError, match="above the limit of 1,000,000 atoms per ion"):
        Ion((("Si", 2 ** 62),), 1)
    with pytest.raises(ValueError, match="charge 11 is above the limit of 10"):
        Ion((("Si", 1),), 11)
    with pytest.raises(ValueError, match=r"charge 1000000000000000000000000000000 is above"):
        Ion((), 10 ** 30, label="X")
    assert Ion((("Si", MAX_ION_ATOMS),), 10).charge == 10
    assert Ion((("Si", 1),), None).name == "Si?" and Ion((), None, label="IFB").name == "IFB"
