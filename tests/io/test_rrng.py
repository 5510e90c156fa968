"""Reading and writing .rrng range files, checked against the provenance
values, ifes-apt-tc-data-modeling's reader (kept as tests/fixtures/ifes_ranges.json)
and hand-written files."""

import json
import os
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

import liprobe
from liprobe.chemistry import Ion, parse_formula
from liprobe.errors import FormatError, RangeError
from liprobe.io.rrng import default_color, read_rrng, write_rrng
from liprobe.rangetable import Range, RangeTable

IFES_JSON = Path(__file__).resolve().parents[1] / "fixtures" / "ifes_ranges.json"


@lru_cache(maxsize=1)
def ifes_fixture() -> dict:
    """ifes' windows of every real range file (see make_ifes_range_fixtures.py)."""
    return json.loads(IFES_JSON.read_text())


def ifes_merged(key):
    """ifes' windows of one file, overlapping windows of one ion united.

    Returns a sorted list of (lo, hi, sorted atoms); what liprobe's merge of
    same-ion duplicates should leave.
    """
    by_ion = {}
    for w in ifes_fixture()[key]:
        ion = (tuple(sorted(w["atoms"].items())), "" if w["atoms"] else w["name"])
        by_ion.setdefault(ion, []).append((w["lo"], w["hi"]))
    out = []
    for (atoms, _), wins in by_ion.items():
        wins.sort()
        lo, hi = wins[0]
        for a, b in wins[1:]:
            if a < hi:
                hi = max(hi, b)
            else:
                out.append((lo, hi, atoms))
                lo, hi = a, b
        out.append((lo, hi, atoms))
    return sorted(out)


def windows(table):
    return sorted((r.lo, r.hi, tuple(sorted(r.ion.atoms))) for r in table)


def content(table):
    """Everything a range file carries, floats as exact hex."""
    return [(r.lo.hex(), r.hi.hex(), r.ion.atoms, r.ion.charge, r.ion.label,
             None if r.volume is None else r.volume.hex(), r.color) for r in table]


def as_written(table):
    """``content`` of what write_rrng writes: every window has a colour (its own, or
    default_color of its ion) and Vol: (0, read back as no volume, when it has none)."""
    return [(lo, hi, atoms, charge, label, None if volume == (0.0).hex() else volume,
             color or default_color(r.ion))
            for r, (lo, hi, atoms, charge, label, volume, color) in zip(table, content(table))]


def check_against_ifes(real, key):
    table = liprobe.read_ranges(real / key)
    assert windows(table) == ifes_merged(key)
    # where ifes infers a charge, it is ours
    for w in ifes_fixture()[key]:
        if w["charge"]:
            atoms = tuple(sorted(w["atoms"].items()))
            (r,) = [r for r in table if r.lo <= w["lo"] and w["hi"] <= r.hi]
            assert tuple(sorted(r.ion.atoms)) == atoms and r.ion.charge == w["charge"], w
    return table


RRNG_KEYS = sorted(k for k in ifes_fixture() if k.lower().endswith(".rrng"))


def test_fixture_covers_every_real_range_file(real):
    found = sorted(p.relative_to(real).as_posix() for p in real.rglob("*")
                   if p.suffix.lower() in (".rrng", ".rng"))
    assert found == sorted(ifes_fixture())
    assert len(found) == 15 and len(RRNG_KEYS) == 9


@pytest.mark.parametrize("key", RRNG_KEYS)
def test_real_rrng_windows_equal_ifes_after_merging(real, key):
    check_against_ifes(real, key)


def test_si_rrng_published_values(real):
    table = read_rrng(real / "apav_si" / "Si.RRNG")
    assert len(table) == 25
    by_line = {r.line: r for r in table}
    # file order: Range1 (line 10) is Si, Range25 (line 34) is Cr2O
    assert by_line[10].ion == Ion((("Si", 1),), 2)
    assert (by_line[10].lo, by_line[10].hi) == (13.8745, 14.241)
    assert by_line[34].ion == Ion((("Cr", 2), ("O", 1)), 2)
    # mass order: C++ first, CrO2+ at 83.595 Da last
    assert table.ranges[0].ion.name == "C++" and table.ranges[0].lo == 5.896
    assert table.ranges[-1].ion.name == "CrO2+" and table.ranges[-1].lo == 83.595
    assert table.lo.tolist() == sorted(table.lo.tolist())
    assert table.elements == ("C", "Si", "O", "Cr", "Cu")
    assert {ion.name for ion in table.ions} == {
        "Si+", "Si++", "Cr+", "Cr++", "Cu+", "C+", "C++", "O+",
        "CrO+", "CrO++", "CrO2+", "CrO2++", "Cr2O++"}
    assert by_line[10].volume == 0.02003 and by_line[10].color == "#CCCCCC"
    assert table.warnings == ()


def test_r31_first_range_is_carbon_at_5_974(real):
    table = liprobe.read_ranges(real / "ifes_apt_tc" / "R31_06365-v02.rrng")
    first = min(table, key=lambda r: r.line)             # Range1, file order
    assert first.line == 22
    assert first.lo == 5.974 and first.ion.formula == "C" and first.ion.charge == 2
    assert table.ranges[0].lo == 5.498 and table.ranges[0].ion.name == "B++"   # mass order
    assert len(table) == 72


def test_decimal_commas_are_read_as_points(real):
    table = read_rrng(real / "ifes_apt_tc" / "Mo_range.rrng")
    (r,) = [r for r in table if r.line == 13]           # Range1=22,8615 23,0910 Vol:0,01558 Mo:1
    assert (r.lo, r.hi, r.volume) == (22.8615, 23.091, 0.01558)
    assert r.ion.name == "Mo++++"                         # 92Mo at 91.907/4 = 22.977 Da
    assert len(table) == 46


def test_valn_duplicates_merge_with_a_warning_giving_the_count(real):
    path = real / "ifes_apt_tc" / "VAlN_film_plan-view_700C.rrng"
    n_lines = sum(1 for ln in path.read_text().splitlines() if ln.startswith("Range"))
    table = read_rrng(path)
    assert n_lines == 1440 and len(table) == 31
    (warning,) = table.warnings
    assert warning.startswith(f"merged {1440 - 31} duplicate or overlapping windows")
    # the Al+ windows 13.3727-13.8096 and 13.3727-13.6090 become one
    (al,) = [r for r in table if r.lo == 13.3727]
    assert al.hi == 13.8096 and al.ion.name == "Al++"


def test_named_ions_load_without_atoms_and_are_listed(real):
    table = read_rrng(real / "apt_tools" / "rangefile.rrng")
    named = {r.ion.label: r for r in table if r.ion.is_named}
    assert sorted(named) == ["44pt5", "52pt5", "59"]
    r59 = named["59"]
    assert (r59.lo, r59.hi, r59.ion.atoms, r59.ion.charge) == (58.566, 58.96, (), None)
    assert r59.ion.name == "59" and r59.color == "#FF00FF"
    assert table.warnings == ("3 named ions without elements load as ions that carry no atoms: "
                              "59, 52pt5, 44pt5",)
    elements, matrix = table.decomposition()
    for i, ion in enumerate(table.ions):
        assert matrix[i].sum() == ion.n_atoms
    assert len(table) == 32 and len(table.ions) == 27


def test_repeated_range_key_loads_every_line_with_a_warning(real):
    table = read_rrng(real / "ifes_apt_tc" / "TiAlN_film_cross-section_850C.rrng")
    assert len(table) == 54
    assert any("TiNO" == r.ion.formula and r.ion.charge == 3 for r in table)
    assert table.warnings == ("range keys are not numbered 1 to 54 (repeated: Range41; "
                              "missing: Range40); every Range line was read",)


def test_touching_windows_of_different_ions_load(real):
    table = read_rrng(real / "rapt" / "example-rrng.rrng")
    bounds = {(r.ion.formula, r.lo, r.hi) for r in table}
    assert {("Cr", 24.841, 25.412), ("V", 25.412, 25.878), ("Cr", 25.878, 26.856),
            ("Fe", 26.856, 28.904), ("Ni", 28.904, 31.3134), ("Cu", 31.3134, 33.751)} <= bounds


def test_upper_case_extension_and_crlf(real):
    path = real / "ifes_apt_tc" / "R18_58152-v02.RRNG"
    assert b"\r\n" in path.read_bytes()
    assert liprobe.detect_format(path) == "rrng"
    table = liprobe.read_ranges(path)
    assert len(table) == 14 and table.ranges[0].lo == 5.852


# -- hand-written files ------------------------------------------------------------

def rrng_text(*ranges, ions=("Si",), extra=""):
    """An .rrng text; [Ions] on lines 1-3 (one ion), [Ranges] on 4, Number= on 5,
    Range1 on line 6."""
    lines = ["[Ions]", f"Number={len(ions)}", *(f"Ion{i}={x}" for i, x in enumerate(ions, 1)),
             "[Ranges]", f"Number={len(ranges)}",
             *(f"Range{i}={r}" for i, r in enumerate(ranges, 1))]
    return "\r\n".join(lines) + "\r\n" + extra


def put(tmp_path, text, name="t.rrng"):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def test_explicit_charge_field_is_used(tmp_path):
    # 13.9-14.1 Da alone would give Si++
    table = read_rrng(put(tmp_path, rrng_text("13.9 14.1 Si:1 Charge:1")))
    assert table.ranges[0].ion.name == "Si+"
    # the [Charges] section write_rrng writes
    text = rrng_text("13.9 14.1 Si:1", "15.9 16.1 O:1", extra="[Charges]\r\nRange1=1\r\n")
    assert [r.ion.name for r in read_rrng(put(tmp_path, text))] == ["Si+", "O+"]
    for extra, problem in (("Range3=1", "[Charges] gives a charge to Range3, which the file"),
                           ("Range1=11", "charge of Range1 11 is above the limit of 10"),
                           ("Foo=1", "unexpected key 'Foo' in [Charges]")):
        p = put(tmp_path, rrng_text("13.9 14.1 Si:1", extra=f"[Charges]\r\n{extra}\r\n"))
        expect_error(p, FormatError, "line 8", problem)
    p = put(tmp_path, rrng_text("13.9 14.1 Si:1 Charge:2", extra="[Charges]\r\nRange1=1\r\n"))
    expect_error(p, FormatError, "line 6", "Range1 states charge 2 but [Charges] gives 1")


def test_sections_and_keys_are_case_insensitive_and_unknown_sections_skipped(tmp_path):
    text = ("[Info]\nsoftware=whatever [x]\nfoo bar\n[IONS]\nnumber=1\nion1=O\n"
            "[ranges]\nNUMBER=2\nRANGE1 = 15.9 16.1 vol:0.02883 O:1 COLOR:00ccff\n"
            "range2=31.9 32.1 O:2\n# a comment\n[Other]\nx=y\n")
    table = read_rrng(put(tmp_path, text))
    assert [(r.ion.name, r.volume, r.color, r.line) for r in table] == [
        ("O+", 0.02883, "#00ccff", 9), ("O2+", None, None, 10)]


def test_name_next_to_elements_is_a_display_name(tmp_path):
    # AP Suite writes Name: beside the elements of a molecular ion
    table = read_rrng(put(tmp_path, rrng_text("42.8 43.3 Vol:0.04543 Al:1 O:1 Name:AlO "
                                              "Color:00FFFF")))
    ion = table.ranges[0].ion
    assert ion.atoms == (("Al", 1), ("O", 1)) and ion.charge == 1 and ion.label is None


def test_named_ion_ifb_loads(tmp_path):
    table = read_rrng(put(tmp_path, rrng_text("0.5 1.5 Vol:0 Name:IFB", "13.9 14.1 Si:1")))
    assert [r.ion.name for r in table] == ["IFB", "Si++"]
    assert table.ions[0] == Ion((), None, label="IFB")
    assert "IFB" in table.warnings[0]


def expect_error(path, exc, where, *words):
    """Call read_rrng and check the one-line message: path, place, problem."""
    with pytest.raises(exc) as e:
        read_rrng(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(os.fspath(path) + ": ")
    for w in ((where,) if where else ()) + words:
        assert w in msg, (w, msg)
    return msg


@pytest.mark.parametrize("ranges, exc, where, words", [
    (("13.9 14.1 Si:1", "14.0 14.2 N:1"), RangeError, "line 6",
     ("windows of different ions overlap", "Si++ [13.9, 14.1) at line 6",
      "N+ [14.0, 14.2) at line 7")),
    (("13.9 14.1 Si:1", "10 11 Xx:1"), RangeError, "line 7", ("'Xx' is not a chemical element",)),
    (("12.1 abc Si:1",), FormatError, "line 6", ("upper bound 'abc' is not a number",)),
    (("12.1",), FormatError, "line 6", ("needs a lower and an upper bound",)),
    (("",), FormatError, "line 6", ("needs a lower and an upper bound",)),
    (("13.9 14.1 Vol:0.02",), FormatError, "line 6", ("no element (El:n) and no Name:",)),
    (("13.9 14.1 Si:x",), FormatError, "line 6", ("count of Si 'x' is not a whole number",)),
    (("13.9 14.1 Si:1 Color:red",), FormatError, "line 6", ("colour 'red'",)),
    (("13.9 14.1 Si:1 Vol:1,2,3",), FormatError, "line 6", ("volume '1,2,3' is not a number",)),
    (("13.9 14.1 Si:1 stray",), FormatError, "line 6", ("cannot read 'stray'",)),
    (("14.1 13.9 Si:1",), RangeError, "line 6", ("empty or reversed",)),
    (("13.9 14.1 Si:1 Charge:11",), FormatError, "line 6", ("charge 11 is above the limit of 10",)),
    ((f"13.9 14.1 Si:1 Charge:{10 ** 30}",), FormatError, "line 6",
     ("charge 100000000000... (31 digits) is above the limit of 10",)),
    ((f"13.9 14.1 Si:{10 ** 30}",), FormatError, "line 6",
     ("count of Si 100000000000... (31 digits) is above the limit of 1,000,000",)),
    ((f"13.9 14.1 Si:{2 ** 62}",), FormatError, "line 6",
     ("count of Si 4611686018427387904 is above the limit of 1,000,000",)),
    (("13.9 14.1 Si:600000 O:600000",), RangeError, "line 6",
     ("an ion of 1200000 atoms is above the limit of 1,000,000 atoms per ion",)),
    (("13.9 1e999 Si:1",), FormatError, "line 6", ("upper bound '1e999' is too large",)),
])
def test_bad_range_line_names_file_line_and_problem(tmp_path, ranges, exc, where, words):
    expect_error(put(tmp_path, rrng_text(*ranges)), exc, where, *words)


def test_bad_number_lines(tmp_path):
    p = put(tmp_path, rrng_text("13.9 14.1 Si:1").replace("Number=1\r\nRange1",
                                                          "Number=abc\r\nRange1"))
    expect_error(p, FormatError, "line 5", "[Ranges] Number 'abc' is not a whole number")
    p = put(tmp_path, rrng_text("13.9 14.1 Si:1").replace("Number=1\r\nRange1",
                                                          "Number=3\r\nRange1"))
    expect_error(p, FormatError, "line 5", "[Ranges] Number=3 but the section has 1 range line")
    p = put(tmp_path, rrng_text("13.9 14.1 Si:1", ions=("Si", "O")).replace("Number=2", "Number=5"))
    expect_error(p, FormatError, "line 2", "[Ions] Number=5 but the section has 2 ion lines")


def test_structural_errors(tmp_path):
    expect_error(put(tmp_path, "[Ions]\nNumber=0\n"), FormatError, "line 2",
                 "file ends without a [Ranges] section")
    expect_error(put(tmp_path, rrng_text("13.9 14.1 Si:1", extra="junk line\r\n")),
                 FormatError, "line 7", "cannot read 'junk line' (expected Key=value)")
    expect_error(put(tmp_path, rrng_text("13.9 14.1 Si:1", extra="Foo=1\r\n")),
                 FormatError, "line 7", "unexpected key 'Foo' in [Ranges]")
    expect_error(put(tmp_path, rrng_text("13.9 14.1 Si:1", extra="[Ranges]\r\n")),
                 FormatError, "line 7", "second [Ranges] section (the first is at line 4)")


def test_empty_and_binary_files(tmp_path):
    expect_error(put(tmp_path, b"", "empty.rrng"), FormatError, None, "file is empty")
    expect_error(put(tmp_path, b"\x00\x01\x02[Ranges]\x00" * 10, "bin.rrng"), FormatError, None,
                 "is a binary file")
    expect_error(tmp_path / "missing.rrng", FormatError, None, "no such file")


# -- writing -------------------------------------------------------------------------

def test_written_text_is_plain_rrng_with_charge_only_where_needed(tmp_path):
    si = (("Si", 1),)
    table = RangeTable.from_ranges([
        Range(13.9, 14.1, Ion(si, 2), 0.02003, "#CCCCCC"),
        Range(20.0, 20.5, Ion(si, 1)),                       # no Si peak near: Charge:1
        Range(31.9, 32.1, Ion((("O", 2),), 1), None, "#009999"),
        Range(50.0, 51.0, Ion((), None, label="IFB"), 0.0),
        Range(60.0, 61.0, Ion((), 2, label="X")),
        Range(67.8, 68.2, Ion((("Cr", 1), ("O", 1)), 1), 1e-05, "#00FF00"),
    ])
    p = tmp_path / "out.rrng"
    write_rrng(p, table)
    # [Ions]: each element, then the named ions (apav checks every El: against it);
    # Vol: always, Color: last on every line (ifes reads the 4th field as the volume and
    # the last as the colour); no exponents (pyccapt's numbers are digits and a point)
    assert p.read_bytes().decode() == "\r\n".join([
        "[Ions]", "Number=5", "Ion1=Si", "Ion2=O", "Ion3=Cr", "Ion4=IFB", "Ion5=X",
        "[Ranges]", "Number=6",
        "Range1=13.9 14.1 Vol:0.02003 Si:1 Color:CCCCCC",
        f"Range2=20.0 20.5 Vol:0 Si:1 Color:{default_color(Ion(si, 1))[1:]}",
        "Range3=31.9 32.1 Vol:0 O:2 Color:009999",
        f"Range4=50.0 51.0 Vol:0.0 Name:IFB Color:{default_color(table.ranges[3].ion)[1:]}",
        f"Range5=60.0 61.0 Vol:0 Name:X Color:{default_color(table.ranges[4].ion)[1:]}",
        "Range6=67.8 68.2 Vol:0.00001 Cr:1 O:1 Color:00FF00",
        # charges the windows would not give back, where apav, ifes and pyccapt look not
        "[Charges]", "Range2=1", "Range5=2", ""])
    assert content(read_rrng(p)) == as_written(table)
    assert liprobe.detect_format(p) == "rrng"
    assert default_color(Ion(si, 1)) == default_color(Ion(si, 2))     # by formula


def test_an_empty_table_is_not_written(tmp_path):
    with pytest.raises(FormatError, match="has no window to write"):
        write_rrng(tmp_path / "empty.rrng", RangeTable.from_ranges([]))
    assert not (tmp_path / "empty.rrng").exists()


def test_write_is_atomic_and_checks_what_it_writes(tmp_path):
    table = read_rrng(put(tmp_path, rrng_text("13.9 14.1 Si:1"), "in.rrng"))
    out = tmp_path / "out.rrng"
    out.write_text("old")
    liprobe.write_ranges(out, table)
    assert read_rrng(out).ranges[0].ion.name == "Si++"
    assert sorted(os.listdir(tmp_path)) == ["in.rrng", "out.rrng"]
    with pytest.raises(FormatError, match="folder does not exist"):
        write_rrng(tmp_path / "nowhere" / "x.rrng", table)
    bad = RangeTable.from_ranges([Range(1.0, 2.0, Ion((), None, label="two words"))])
    with pytest.raises(FormatError, match="cannot be written"):
        write_rrng(out, bad)
    assert read_rrng(out).ranges[0].ion.name == "Si++"     # left as it was


@pytest.mark.parametrize("key", sorted(ifes_fixture()))
def test_every_real_file_round_trips_through_write_rrng(real, tmp_path, key):
    table = liprobe.read_ranges(real / key)
    write_rrng(tmp_path / "copy.rrng", table)
    again = read_rrng(tmp_path / "copy.rrng")
    assert content(again) == as_written(table)
    assert [w for w in again.warnings if w.startswith("merged")] == []


POOL = ["Li", "O", "O2", "Mn", "Ni", "Co", "Cr", "NiO2", "MnO", "Mn2O", "CrO", "C2"]
LABEL = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
                min_size=1, max_size=6)
HEX = st.text("0123456789abcdefABCDEF", min_size=6, max_size=6)


@st.composite
def ranges(draw):
    kind = draw(st.sampled_from(["peak", "peak", "peak", "any", "named"]))
    below, above = draw(st.floats(1e-6, 0.3)), draw(st.floats(1e-6, 0.3))
    volume = draw(st.none() | st.floats(0, 1, allow_nan=False))
    color = draw(st.none() | HEX.map(lambda h: "#" + h))
    if kind == "named":
        ion = Ion((), draw(st.none() | st.integers(1, 4)), label=draw(LABEL))
        m = draw(st.floats(0.5, 300))
    else:
        atoms = parse_formula(draw(st.sampled_from(POOL)))
        ion = Ion(atoms, draw(st.integers(1, 4)))
        if kind == "peak":                    # at a real isotope peak: charge inferred
            m = draw(st.sampled_from([m for m, p in ion.peaks() if p > 1e-3]))
        else:                                 # anywhere: the writer adds Charge:n
            m = draw(st.floats(0.5, 300))
    return Range(m - below, m + above, ion, volume, color)


@given(st.lists(ranges(), max_size=15))
def test_write_then_read_gives_the_same_table_bit_for_bit(tmp_path_factory, drawn):
    kept = []
    for r in sorted(drawn, key=lambda r: r.lo):      # no overlaps, so nothing merges
        if not kept or r.lo >= kept[-1].hi:
            kept.append(r)
    if not kept:
        return                                       # an empty table is not written
    table = RangeTable.from_ranges(kept)
    p = tmp_path_factory.mktemp("rt") / "t.rrng"
    write_rrng(p, table)
    again = read_rrng(p)
    assert content(again) == as_written(table)
    assert [(r.ion.name, r.ion.atoms) for r in again] == [(r.ion.name, r.ion.atoms) for r in table]


def test_colour_with_hash_is_accepted(tmp_path):
    table = read_rrng(put(tmp_path, rrng_text("13.9 14.1 Si:1 Color:#00ff00")))
    assert table.ranges[0].color == "#00ff00"
