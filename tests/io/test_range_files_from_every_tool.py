"""Range files from other tools and materials (issue 17): never refused whole, never a
traceback; what liprobe writes loads in the peers' readers (ifes-apt-tc-data-modeling
and pyccapt, test dependencies) with every window and its composition."""

import logging
import random
import re
import warnings
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

import liprobe
from liprobe.chemistry import Ion, parse_ion
from liprobe.cli import cli
from liprobe.composition import composition_from_counts
from liprobe.errors import RangeError
from liprobe.io.rng import read_rng
from liprobe.io.rrng import read_rrng, write_rrng
from liprobe.rangetable import Range, RangeTable

from .test_rrng import ifes_fixture, put, rrng_text


def info(path):
    """``liprobe info PATH``: (exit code, stdout, stderr)."""
    res = CliRunner().invoke(cli, ["info", str(path)])
    return res.exit_code, res.stdout, res.stderr


# -- elements without natural isotopes ------------------------------------------------

#: A zircon range file (ZrSiO4 with U and Th); Range1 is on line 9.
ZIRCON = rrng_text("45.4 45.6 Vol:0.02 Zr:1 Color:00FF00",      # 91Zr++ at 45.45 Da
                   "44.9 45.1 Vol:0.02 Zr:1 Color:00FF00",      # 90Zr++ at 44.95 Da
                   "118.9 119.2 Vol:0.05 U:1 Color:FF0000",     # 238U++ at 119.025 Da
                   "126.9 127.2 Vol:0.06 U:1 O:1 Color:FF8800",  # 238U16O++ at 127.02 Da
                   "115.9 116.2 Vol:0.05 Th:1 Color:0000FF",    # 232Th++ at 116.02 Da
                   ions=("Zr", "U", "O", "Th"))


def test_zircon_rrng_with_uranium_loads_with_a_warning_naming_u_and_its_lines(tmp_path):
    table = read_rrng(put(tmp_path, ZIRCON))
    by_line = {r.line: r for r in table}
    assert by_line[11].ion.name == "U++" and by_line[12].ion.name == "UO++"
    assert by_line[13].ion.name == "Th++"          # Th has natural isotopes: no warning
    (warning,) = table.warnings
    assert warning == ("U has no natural isotope abundances in periodictable: its ions are "
                       "placed at 238U (238.0508 Da), the isotope of its standard atomic weight "
                       "238.029 (lines 11, 12)")
    code, out, err = info(tmp_path / "t.rrng")
    assert code == 0 and f"warning: {warning}" in out


def test_rng_with_technetium_and_promethium_loads(tmp_path):
    text = ("3 3\r\nTc\r\nTc 1 0 0\r\nPm\r\nPm 0 1 0\r\nO\r\nO 0 0 1\r\n--- Tc Pm O\r\n"
            ". 48.9 49.0 1 0 0\r\n. 144.8 145.0 0 1 0\r\n. 15.9 16.1 0 0 1\r\n")
    table = read_rng(put(tmp_path, text, "t.rng"))
    assert [r.ion.name for r in table] == ["O+", "Tc++", "Pm+"]   # 98Tc++ at 48.95 Da
    assert table.warnings == (
        "Tc has no natural isotope abundances in periodictable: its ions are placed at its "
        "longest-lived isotope 98Tc (97.9072 Da) (line 9)",
        "Pm has no natural isotope abundances in periodictable: its ions are placed at its "
        "longest-lived isotope 145Pm (144.9128 Da) (line 10)")


# -- a window that cannot hold the ion it names ---------------------------------------

#: A steel range file (Fe, Cr, Ni, Mo, Mn, Si, C) with "Si" at 45.9-46.3 Da among its
#: ranges (Range11, line 22): a human mislabel, no Si ion has a peak there (46Ti+ has).
STEEL = [
    ("6.0 6.1", "C:1"), ("9.30 9.36", "Si:1"), ("12.0 12.1", "C:1"), ("13.96 14.03", "Si:1"),
    ("25.9 26.1", "Cr:1"), ("27.4 27.55", "Mn:1"), ("27.9 28.1", "Fe:1"),
    ("28.95 29.05", "Ni:1"), ("29.95 30.05", "Ni:1"), ("31.9 32.05", "Mo:1"),
    ("45.9 46.3", "Si:1"), ("47.9 48.1", "Mo:1"), ("51.8 52.1", "Cr:1"), ("53.8 54.1", "Fe:1"),
    ("55.8 56.1", "Fe:1"), ("57.8 58.1", "Ni:1"),
]


def steel_text():
    return rrng_text(*(f"{w} Vol:0.0118 {a} Color:{i:06X}" for i, (w, a) in enumerate(STEEL)),
                     ions=("C", "Si", "Cr", "Mn", "Fe", "Ni", "Mo"))


def test_mislabelled_row_is_kept_with_an_unknown_charge_and_named(tmp_path):
    table = read_rrng(put(tmp_path, steel_text()))
    assert len(table) == len(STEEL)
    (r,) = [r for r in table if r.lo == 45.9]
    assert r.line == 22 and r.ion.atoms == (("Si", 1),) and r.ion.charge is None
    assert r.ion.name == "Si?" and r.ion != parse_ion("Si+") and r.ion.peaks() == []
    assert table.warnings == (
        "line 22: window [45.9, 46.3) holds no isotope of Si at charge 1-4: kept as Si? with "
        "its charge unknown (a mislabel? its atoms count, ratios of ions leave it out)",)
    assert r.to_dict()["charge"] is None and r.to_dict()["ion"] == "Si?"


def test_unknown_charge_atoms_count_and_charge_state_ratios_ignore_them(tmp_path):
    table = read_rrng(put(tmp_path, steel_text()))
    counts = np.zeros(len(table.ions), np.int64)
    given = {"Si++": 400, "Si+++": 100, "Si?": 50, "Fe++": 1000, "Fe+": 450}
    names = [ion.name for ion in table.ions]
    for name, n in given.items():
        counts[names.index(name)] = n
    c = composition_from_counts(counts, table, 2000, ratios=["Si+++/Si++", "Si/(Si+Fe)"])
    assert c.atom_counts["Si"] == 550 and c.atom_counts["Fe"] == 1450   # Si? counts as Si
    assert c.ion_counts["Si?"] == 50
    assert c.ratios["Si+++/Si++"].value == 100 / 400                    # Si? left out
    assert c.ratios["Si/(Si+Fe)"].value == 550 / 2000
    assert any(w.startswith("line 22: window [45.9, 46.3)") for w in c.warnings)
    from liprobe.field import field_proxies_from_counts

    f = field_proxies_from_counts(counts, table, 2000)      # charge-state ratios: no Si?
    assert sorted(f.charge_state_ratios) == ["C++/C+", "Cr++/Cr+", "Fe++/Fe+", "Mo+++/Mo++",
                                             "Ni++/Ni+", "Si+++/Si++"]
    assert f.charge_state_ratios["Si+++/Si++"].value == 100 / 400
    assert f.ion_counts["Si?"] == 50


@pytest.mark.slow
def test_steel_file_reads_as_ifes_reads_it(tmp_path):
    """ifes reads the file whole; liprobe now keeps every window with the same atoms
    (slow: ifes takes 3.5 s on these 16 windows)."""
    p = put(tmp_path, steel_text())
    assert windows_with_atoms(read_rrng(p)) == [w[:3] for w in ifes_read(p)]


def test_lower_case_element_is_read_with_a_warning(tmp_path):
    table = read_rrng(put(tmp_path, rrng_text("13.9 14.1 si:1", "15.9 16.1 o:1 Color:0000FF")))
    assert [r.ion.name for r in table] == ["Si++", "O+"]
    assert table.warnings == (
        "'si' is read as the element Si (element symbols are case-sensitive) at line 6",
        "'o' is read as the element O (element symbols are case-sensitive) at line 7")


# -- .rng: rows numbered instead of '.', ion columns named si or Xx ---------------------

def test_rng_rows_that_begin_with_their_number_are_read(real, tmp_path):
    text = (real / "apav_si" / "Si.RNG").read_text()
    count = iter(range(1, 100))
    numbered = re.sub(r"(?m)^\. ", lambda m: f"{next(count)} ", text)
    assert numbered.count("\n1 13.8745") == 1 and ". " not in numbered
    again = read_rng(put(tmp_path, numbered, "n.rng"))
    first = read_rng(real / "apav_si" / "Si.RNG")
    assert [(r.lo, r.hi, r.ion, r.color, r.line) for r in again] == [
        (r.lo, r.hi, r.ion, r.color, r.line) for r in first]
    assert len(again) == 25


def test_rng_ion_named_in_lower_case_is_that_element(tmp_path):
    text = ("2 2\r\nsi\r\nsi 0.8 0.8 0.8\r\nO\r\nO 0 0.8 1\r\n---- si O\r\n"
            ". 13.9 14.1 1 0\r\n. 15.9 16.1 0 1\r\n")
    table = read_rng(put(tmp_path, text, "t.rng"))
    assert [r.ion.name for r in table] == ["Si++", "O+"] and table.elements == ("Si", "O")
    assert table.warnings == ("'si' is read as the element Si (element symbols are "
                              "case-sensitive) at line 2",)
    c = composition_from_counts([30, 70], table, 100)
    assert c.atomic_percent == {"Si": 30.0, "O": 70.0}        # Si does not drop out


def test_rng_ion_named_xx_is_an_error_naming_the_line(tmp_path):
    text = ("2 1\r\nSi\r\nSi 0.8 0.8 0.8\r\nXx\r\nXx 0 0.8 1\r\n---- Si Xx\r\n"
            ". 13.9 14.1 1 0\r\n")
    p = put(tmp_path, text, "t.rng")
    code, out, err = info(p)
    assert code == 1 and out == ""
    assert err == (f"liprobe: error: {p}: line 4: ion 'Xx' is not a chemical element (a named "
                   "ion would carry no atoms; write the element's symbol, or a longer name for "
                   "an ion without elements)\n")


def test_pseudo_ions_keep_loading_as_named_ions(real, tmp_path):
    named = read_rrng(put(tmp_path, rrng_text("0.5 1.5 Vol:0 Name:IFB", "13.9 14.1 Si:1")))
    assert named.ions[0] == Ion((), None, label="IFB") and named.ranges[0].volume is None
    for path, label in ((real / "ifes_apt_tc" / "all02.rng", "All"),
                        (real / "ifes_apt_tc" / "range_file_RNG.RNG", "unknown")):
        table = liprobe.read_ranges(path)
        assert Ion((), None, label=label) in table.ions
        assert table.warnings[-1].endswith(f"carries no atoms: {label}")


# -- structure: cut off, long comments ------------------------------------------------

def test_rrng_cut_off_after_ranges_is_an_error(tmp_path):
    p = put(tmp_path, "[Ions]\r\nNumber=1\r\nIon1=Si\r\n[Ranges]\r\n")
    code, out, err = info(p)
    assert code == 1 and out == ""
    assert err == (f"liprobe: error: {p}: line 4: [Ranges] holds no range: the file ends at "
                   "line 4 (cut off?)\n")


def test_rrng_after_more_than_4_kb_of_comments_is_read(tmp_path):
    comments = "".join(f"# comment {i}: ranged by hand from the spectrum of run {i}\r\n"
                       for i in range(120))
    assert len(comments) > 4096
    p = put(tmp_path, comments + rrng_text("13.9 14.1 Si:1"), "commented.rrng")
    assert liprobe.detect_format(p) == "rrng"
    assert [r.ion.name for r in liprobe.read_ranges(p)] == ["Si++"]
    renamed = put(tmp_path, comments + rrng_text("13.9 14.1 Si:1"), "commented.txt")
    assert liprobe.detect_format(renamed) == "rrng"


# -- building a table: n log n, and the same tables and errors as before ----------------

def reference_table(ranges):
    """The table built the way liprobe did before: every kept window scanned, the last
    one that overlaps decides (merge if the same ion, error otherwise)."""
    merged = []
    for r in sorted(ranges, key=lambda r: (r.lo, r.hi)):
        for j in range(len(merged) - 1, -1, -1):
            k = merged[j]
            if k.hi <= r.lo:
                continue
            if k.ion != r.ion:
                return "error"
            merged[j] = Range(k.lo, max(k.hi, r.hi), k.ion, k.volume, k.color, k.line)
            break
        else:
            merged.append(r)
    merged.sort(key=lambda r: r.lo)
    if any(b.lo < a.hi for a, b in zip(merged, merged[1:])):
        return "error"
    return [(r.lo, r.hi, r.ion.name) for r in merged]


ION_POOL = [parse_ion(x) for x in ("Si+", "Si++", "O+", "Ni++")]


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 6), st.sampled_from(ION_POOL)),
                max_size=25))
def test_table_equals_the_quadratic_reference(drawn):
    ranges = [Range(lo / 4, (lo + w) / 4, ion) for lo, w, ion in drawn]
    expected = reference_table(ranges)
    if expected == "error":
        with pytest.raises(RangeError, match="windows of different ions overlap"):
            RangeTable.from_ranges(ranges)
    else:
        assert [(r.lo, r.hi, r.ion.name) for r in RangeTable.from_ranges(ranges)] == expected


def test_a_table_of_100000_windows_is_built():
    ions = [parse_ion("Si+"), parse_ion("O+"), parse_ion("Ni++")]
    ranges = [Range(i * 0.01, i * 0.01 + 0.008, ions[i % 3]) for i in range(100_000)]
    random.Random(1).shuffle(ranges)
    ranges += [Range(500.0, 500.004, ions[2]), Range(999.99, 1000.5, ions[0])]   # 2 merges
    table = RangeTable.from_ranges(ranges)
    assert len(table) == 100_000 and table.lo[-1] == 999.99
    assert np.all(np.diff(table.lo) > 0) and np.all(table.hi[:-1] <= table.lo[1:])
    assert table.ion_index.tolist()[:4] == [0, 1, 2, 0]
    assert table.warnings == ("merged 2 duplicate or overlapping windows of the same ion into "
                              "the one before them (Ni++ 1, Si+ 1)",)


# -- written files load in the peers' readers -------------------------------------------

def ifes_read(path):
    """(lo, hi, sorted atoms, charge) of every window ifes reads from ``path``, sorted;
    charge 0 where ifes finds none, a named ion's atoms are its label."""
    from ifes_apt_tc_data_modeling.rrng.rrng_reader import ReadRrngFileFormat

    logging.disable(logging.WARNING)
    try:
        ions = ReadRrngFileFormat(str(path)).rrng["molecular_ions"]
    finally:
        logging.disable(logging.NOTSET)
    import periodictable

    out = []
    for ion in ions:
        protons = [int(z) for z in ion.nuclide_list[:, 1] if z]
        atoms = tuple(sorted(Counter(periodictable.elements[z].symbol for z in protons).items()))
        charges = {int(c) for c in np.atleast_1d(ion.charge_state)}
        charge = charges.pop() if len(charges) == 1 else 0
        for lo, hi in ion.ranges.magnitude:
            out.append((float(lo), float(hi), atoms or (ion.comment,), charge))
    return sorted(out)


def windows_with_atoms(table):
    """(lo, hi, sorted atoms) of each window; a named ion's atoms are its label."""
    return sorted((r.lo, r.hi, tuple(sorted(r.ion.atoms)) or (r.ion.label,)) for r in table)


def check_ifes_round_trip(table, tmp_path):
    """Write ``table``, read it with ifes: every window, its composition, and where ifes
    finds a charge, liprobe's."""
    p = tmp_path / "written.rrng"
    write_rrng(p, table)
    got = ifes_read(p)
    assert [w[:3] for w in got] == windows_with_atoms(table)
    charge = {(r.lo, r.hi): r.ion.charge for r in table}
    for lo, hi, _atoms, q in got:
        if q and charge[lo, hi] is not None:
            assert q == charge[lo, hi], (lo, hi)
    return got


def test_rewritten_si_rng_keeps_all_25_windows_in_ifes(real, tmp_path):
    # before: ifes kept 9 (the molecules, without Vol: read as their last element alone)
    got = check_ifes_round_trip(liprobe.read_ranges(real / "apav_si" / "Si.RNG"), tmp_path)
    assert len(got) == 25
    assert sum(1 for w in got if w[2] == (("Cr", 1), ("O", 1))) == 6    # CrO+, CrO++: not O


def autorange_like_table():
    """What autorange writes for an NMC811 spectrum: windows around the isotope peaks of
    atomic and molecular ions, no volumes or colours, one ion of unknown charge."""
    spec = [("H+", 0.03), ("Li+", 0.04), ("O++", 0.04), ("O+", 0.06), ("O2+", 0.1),
            ("Mn++", 0.05), ("Co++", 0.05), ("Ni++", 0.05), ("LiO+", 0.06), ("Cr+", 0.08),
            ("Mn+", 0.1), ("Ni+", 0.1), ("Co+", 0.1), ("NiO+", 0.15), ("MnO2+", 0.15),
            ("Li2O+", 0.06), ("NiO2++", 0.1), ("CrO+", 0.12)]
    ranges = [Range(40.3, 40.5, Ion((("Co", 1),), None)),           # no Co peak: charge unknown
              Range(20.0, 20.3, parse_ion("Si+"), 0.02, "#123456")]  # its charge is stated
    for name, half in spec:              # a peak already ranged keeps its first ion
        ion = parse_ion(name)
        for m, p in ion.peaks():
            w = Range(round(m - half, 4), round(m + half, 4), ion)
            if p > 0.01 and not any(w.lo < r.hi and r.lo < w.hi for r in ranges):
                ranges.append(w)
    return RangeTable.from_ranges(ranges)


def test_autorange_like_table_round_trips_through_ifes(tmp_path):
    table = autorange_like_table()
    assert len(table) == 39 and any(r.ion.charge is None for r in table)
    got = check_ifes_round_trip(table, tmp_path)
    assert len(got) == len(table)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(ifes_fixture()))     # every shared range file
def test_every_shared_range_file_round_trips_through_ifes(real, tmp_path, key):
    """ifes takes 0.1 to 8 s a file (50 s for all 15): slow."""
    check_ifes_round_trip(liprobe.read_ranges(real / key), tmp_path)


def pyccapt_read(path):
    """(lo, hi, sorted atoms) of every window pyccapt reads, sorted; named ions as None."""
    from pyccapt.calibration.leap_tools.leap_tools import read_rrng as pyccapt_read_rrng

    with warnings.catch_warnings():       # pyccapt's own pandas deprecations
        warnings.simplefilter("ignore")
        frame = pyccapt_read_rrng(str(path))
    out = []
    for _, row in frame.iterrows():
        atoms = Counter()
        for el, n in zip(row["element"], row["complex"]):
            atoms[el] += int(n)
        named = row["raw_comp"].startswith("Name:")
        out.append((float(row["mc_low"]), float(row["mc_up"]),
                    None if named else tuple(sorted(atoms.items())), float(row["vol"]),
                    row["color"]))
    return sorted(out)


def test_written_files_load_in_pyccapt(real, tmp_path):
    tables = [liprobe.read_ranges(p) for p in sorted(real.rglob("*"))
              if p.suffix.lower() in (".rrng", ".rng")]
    tables.append(autorange_like_table())
    for table in tables:
        p = tmp_path / "written.rrng"
        write_rrng(p, table)
        got = pyccapt_read(p)
        again = read_rrng(p)
        assert [(lo, hi, atoms, vol, color) for lo, hi, atoms, vol, color in got] == sorted(
            (r.lo, r.hi, None if r.ion.is_named else tuple(sorted(r.ion.atoms)),
             r.volume or 0.0, r.color.upper()) for r in again), table.path
