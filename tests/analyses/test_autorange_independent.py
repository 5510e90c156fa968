"""Autorange on spectra it was not developed on: spectra made here (``spectra_synth``, no
liprobe code: periodictable's isotopes, Gaussian cores, 15 % exponential tails, a low-mass
calibration offset, a background flat in time of flight) and the real Si run."""

import numpy as np
import pytest

import liprobe
from liprobe.chemistry import parse_ion
from liprobe.composition import composition, composition_from_counts
from liprobe.rangetable import Range, RangeTable
from liprobe.spectrum.autorange import _warnings, autorange, suggest_elements
from liprobe.spectrum.deconvolve import corrected_counts

from .spectra_synth import ELEMENTS, KINDS, calibration_offset, make_spectrum

CASES = [(kind, offset) for kind in KINDS for offset in (False, True)]


@pytest.fixture(scope="module")
def ranged():
    """Each kind, without and with (offset + 5 % background), autoranged once."""
    out = {}
    for kind, offset in CASES:
        s = make_spectrum(kind, offset=offset, background=0.05 if offset else 0.0)
        out[kind, offset] = (s, autorange(s.mass, ELEMENTS[kind], mass_range=(0.5, 150)))
    return out


def ambiguous_ions(ar) -> set:
    return {name for a in ar.ambiguities for name in a["ions"]}


@pytest.mark.parametrize("kind,offset", CASES)
def test_every_species_is_found_or_reported_ambiguous(ranged, kind, offset):
    s, ar = ranged[kind, offset]
    found = {i["ion"] for i in ar.ions}
    n = len(s.mass)
    for name, count in s.counts.items():
        if count / n < 0.001:
            continue
        ion = parse_ion(name)
        assert ion.name in found or ion.name in ambiguous_ions(ar), (kind, offset, name)
    # nothing is named that is not there, beyond what the ambiguities list
    invented = [i["ion"] for i in ar.ions if i["ion"] not in {parse_ion(k).name for k in s.counts}
                and i["counts"] > 0.001 * n and i["ion"] not in ambiguous_ions(ar)]
    assert not invented, invented


@pytest.mark.parametrize("kind,offset", CASES)
def test_at_least_99_percent_of_the_ions_in_peaks_are_explained(ranged, kind, offset):
    _, ar = ranged[kind, offset]
    assert ar.explained_fraction >= 0.99
    assert not [w for w in ar.warnings if w["kind"] in ("explained_fraction", "unexplained_peak")]


@pytest.mark.parametrize("kind,offset", CASES)
def test_compositions_match_the_truth(ranged, kind, offset):
    """Within 0.01 (at.% / 100) for major elements, 10 % for minor ones (below 0.1).

    With background, its counts are subtracted first (``composition --background``). An
    element outside the bound must owe it to a reported ambiguity: an isobar that no
    isotope decides (FeH++ under 57Fe++ and Mn++ in the steel; Si+ under AlH+ at 28 Da
    in the Al alloy, which moves Si and H).
    """
    s, ar = ranged[kind, offset]
    counts, _ = corrected_counts(s.mass, ar.table, background=offset)
    c = composition_from_counts(counts, ar.table, len(s.mass))
    truth = s.atoms()
    t_total, g_total = sum(truth.values()), sum(c.atom_counts.values())
    covered = {el for name in ambiguous_ions(ar) for el in parse_ion(name).elements}
    off = []
    for el, n in truth.items():
        t, g = n / t_total, c.atom_counts.get(el, 0) / g_total
        if not (abs(g - t) <= 0.01 if t >= 0.1 else abs(g - t) <= 0.1 * t):
            off.append(el)
    assert set(off) <= covered, (kind, offset, off)
    assert len(off) <= 2


def test_the_32_da_peak_of_nmc811_is_o2_with_64ni_split_off(ranged):
    for offset in (False, True):
        s, ar = ranged["nmc811", offset]
        at32 = next(a for a in ar.ambiguities if abs(a["mass"] - 31.99) < 0.08)
        assert at32["assigned"] == "O2+"
        assert at32["split"]["O2+"] == pytest.approx(s.counts["O2+"] * 0.9952, rel=0.05)
        assert at32["position_z"]["Ni++"] > 5 > at32["position_z"]["O2+"]
        li = composition(s.mass, ar.table, ratios=["Li/(Li+Ni+Co+Mn)"]).ratios
        assert li["Li/(Li+Ni+Co+Mn)"].value == pytest.approx(
            s.ratio(["Li"], ["Li", "Ni", "Co", "Mn"]), abs=0.01)


@pytest.mark.parametrize("kind", KINDS)
def test_the_calibration_is_measured_and_windows_stay_in_the_files_masses(ranged, kind):
    s, ar = ranged[kind, True]
    anchors = ar.calibration["anchors"]
    assert len(anchors) >= 2
    # the model follows the planted offset between its first and last anchor, within half
    # a FWHM at 30 Da (a hydride anchor may sit on a neighbouring ion's peak)
    lo, hi = ar.offsets.points[0][0], ar.offsets.points[-1][0]
    m_true = np.linspace(lo, hi, 50)
    planted = calibration_offset(m_true)
    assert np.max(np.abs(ar.offsets.offset(m_true + planted) - planted)) < 0.015
    assert ar.tolerance["rule"] == "1.5 FWHM"
    # every window holds its peak where the file has it (observed, offset included)
    for r in ar.table.ranges:
        peak = max((p for p in ar.peaks.peaks if r.lo <= p.mass < r.hi), key=lambda p: p.counts,
                   default=None)
        assert peak is not None, r


def test_ambiguities_are_reported(ranged):
    _, ar = ranged["limn2o4", False]
    at71 = next(a for a in ar.ambiguities if abs(a["mass"] - 70.93) < 0.05)
    assert {"MnO+", "Mn2O2++"} <= set(at71["ions"])          # one mass, one pattern
    _, ar = ranged["steel", False]
    assert any({"Fe++", "Cr++"} <= set(a["ions"]) for a in ar.ambiguities)   # 54Fe/54Cr


# --------------------------------------------------------------------------
# the real Si run
# --------------------------------------------------------------------------

SI_ELEMENTS = ["Si", "O", "Cr", "Cu", "C", "H", "Ni"]


@pytest.fixture(scope="module")
def si(real):
    mass = np.fromfile(real / "apav_si" / "Si.pos", dtype=">f4").reshape(-1, 4)[:, 3]
    return mass, autorange(mass, SI_ELEMENTS)


def _ion_at(table, m):
    for r in table.ranges:
        if r.lo <= m < r.hi:
            return r.ion.name
    return None


def test_real_si_run_species(si):
    mass, ar = si
    t = ar.table
    assert _ion_at(t, 1.008) == "H+" and _ion_at(t, 2.04) == "H2+"
    assert [_ion_at(t, m) for m in (14.04, 14.54, 15.03)] == ["Si++"] * 3
    assert _ion_at(t, 27.945) == "Si+"
    assert _ion_at(t, 15.995) == "O+"
    assert [_ion_at(t, m) for m in (28.972, 29.964, 30.46, 30.96)] == ["Ni++"] * 4
    assert [_ion_at(t, m) for m in (57.937, 59.933, 61.918)] == ["Ni+"] * 3
    found = {i["ion"] for i in ar.ions}
    assert {"C+", "C++"} <= found
    # the ions at 29/30 Da are Ni++, and a note says so
    assert any(n.startswith("28.9") and "is Ni++ (" in n and "Si+" in n for n in ar.notes)
    assert any(n.startswith("29.9") and "is Ni++ (" in n and "Si+" in n for n in ar.notes)
    assert ar.explained_fraction > 0.97


def test_real_si_run_has_no_cr_and_its_ni_matches_the_corrected_human_file(si, real):
    mass, ar = si
    cr = sum(int(np.count_nonzero((mass >= r.lo) & (mass < r.hi)))
             for r in ar.table.ranges if "Cr" in r.ion.elements)
    assert cr < 0.005 * len(mass)
    # Si.RRNG corrected: its 29/30 Da "Si" windows and its 57.8-61.2 Da "Cr2O" window are Ni
    human = liprobe.read_ranges(real / "apav_si" / "Si.RRNG")

    def n(lo, hi):
        return int(np.count_nonzero((mass >= lo) & (mass < hi)))
    si_w = [r for r in human.ranges if r.ion.elements == ("Si",)]
    ni_w = [r for r in si_w if 28.5 < r.lo < 30.0] + [
        r for r in human.ranges if r.ion.elements == ("Cr", "O") and r.lo > 57]
    si_n = sum(n(r.lo, r.hi) for r in si_w if r not in ni_w)
    ni_n = sum(n(r.lo, r.hi) for r in ni_w)
    c = composition(mass, ar.table).atom_counts
    assert c["Ni"] / (c["Si"] + c["Ni"]) == pytest.approx(ni_n / (si_n + ni_n), abs=0.015)


def test_real_si_run_with_si_alone_warns(real):
    """The issue's case: with --elements Si, 28Si++ is Si++ (not CH2+), H does not dominate,
    and the unexplained Ni peaks and the low explained fraction are warned of."""
    mass = np.fromfile(real / "apav_si" / "Si.pos", dtype=">f4").reshape(-1, 4)[:, 3]
    ar = autorange(mass, ["Si"])
    assert _ion_at(ar.table, 14.04) == "Si++"
    kinds = [w["kind"] for w in ar.warnings]
    assert "unnamed_element_dominates" not in kinds
    big = [w for w in ar.warnings if w["kind"] == "unexplained_peak"]
    assert any(abs(w["mass"] - 57.94) < 0.05 and w["share"] > 0.05 for w in big)
    assert "explained_fraction" in kinds
    frac = next(w for w in ar.warnings if w["kind"] == "explained_fraction")
    assert frac["explained_fraction"] == pytest.approx(ar.explained_fraction, abs=1e-4)
    assert frac["explained_fraction"] < 0.95


def test_suggest_points_to_ni_on_the_si_run(real):
    mass = np.fromfile(real / "apav_si" / "Si.pos", dtype=">f4").reshape(-1, 4)[:, 3]
    ar = autorange(mass, ["Si", "O", "Cr", "Cu", "C", "H"])
    ranked = suggest_elements(ar)
    assert ranked[0]["element"] == "Ni"
    assert ranked[0]["share"] > 0.5
    assert any(abs(m - 57.94) < 0.05 for m in ranked[0]["ions"]["Ni+"])
    assert all(d["element"] not in ("Si", "O", "Cr", "Cu", "C", "H") for d in ranked)


def test_element_named_but_not_found_is_warned(si):
    mass, _ = si
    ar = autorange(mass, ["Si", "Ni", "Li"])            # no peak at 6 or 7 Da
    gone = [w for w in ar.warnings if w["kind"] == "element_not_found"]
    assert [w["element"] for w in gone] == ["Li"]


def test_warnings_on_a_window_across_two_peaks_and_unnamed_h():
    """The warning rules on a made-up result: a window holding two peaks more than a FWHM
    apart, and H (not named) making most of the ranged atoms."""
    from liprobe.spectrum.peaks import Peak

    def peak(m, n):
        return Peak(m, None, 0.0, n, 50.0, 0.01 * m / 10, None, None, None, None, None)
    peaks = [peak(18.01, 500.0), peak(19.02, 400.0)]
    table = RangeTable.from_ranges([Range(17.9, 19.2, parse_ion("H2O+"))])
    ions = [{"ion": "H2O+", "counts": 900.0}, {"ion": "Si++", "counts": 100.0}]
    out = _warnings(("Si",), ions, [], 1.0, table, peaks, 10_000)
    kinds = {w["kind"]: w for w in out}
    assert kinds["window_spans_peaks"]["peaks"] == [18.01, 19.02]
    assert kinds["unnamed_element_dominates"]["element"] == "H"
    assert kinds["unnamed_element_dominates"]["share"] == pytest.approx(1800 / 2800, abs=1e-3)
