"""Reading Oak Ridge .rng range files, checked against the .rrng of the same
ranging, ifes-apt-tc-data-modeling's reader (tests/fixtures/ifes_ranges.json)
and hand-written files."""

import os

import pytest

import liprobe
from liprobe.chemistry import Ion
from liprobe.errors import FormatError, RangeError
from liprobe.io.rng import read_rng
from liprobe.io.rrng import read_rrng

from .test_rrng import check_against_ifes, ifes_fixture

RNG_KEYS = sorted(k for k in ifes_fixture() if k.lower().endswith(".rng"))


@pytest.mark.parametrize("key", RNG_KEYS)
def test_real_rng_windows_equal_ifes(real, key):
    check_against_ifes(real, key)


def test_si_rng_gives_the_windows_ions_and_colours_of_si_rrng(real):
    rng = read_rng(real / "apav_si" / "Si.RNG")
    rrng = read_rrng(real / "apav_si" / "Si.RRNG")
    assert len(rng) == 25
    assert ([(r.lo, r.hi, r.ion, r.color) for r in rng]
            == [(r.lo, r.hi, r.ion, r.color) for r in rrng])
    assert all(r.volume is None for r in rng)
    # the polyatomic extension repeats 9 windows of the first block: merged silently
    assert rng.warnings == ()
    cr2o = [r for r in rng if r.ion.formula == "Cr2O"]
    assert [(r.lo, r.line, r.color) for r in cr2o] == [(57.819, 37, "#0000FF")]


def test_molecular_row_and_colour_conversion(real):
    table = read_rng(real / "apav_si" / "Si.RNG")
    by_line = {r.line: r for r in table}
    assert by_line[13].ion == Ion((("Si", 1),), 2) and by_line[13].color == "#CCCCCC"   # 0.80 -> CC
    assert by_line[15].ion.name == "Cr+" and by_line[15].color == "#FF33CC"             # 1 0.2 0.8
    assert by_line[29].ion.atoms == (("Cr", 1), ("O", 1)) and by_line[29].ion.charge == 1
    assert by_line[29].color == "#FF0000"          # from the extension's CrO, as in Si.RRNG


def test_columns_map_to_ions_by_position(real):
    table = read_rng(real / "ifes_apt_tc" / "all02.rng")    # ion 'All', column label 'a'
    (r,) = table.ranges
    assert (r.lo, r.hi, r.line, r.color) == (0.0, 400.0, 5, "#FF0000")
    assert r.ion == Ion((), None, label="All") and r.ion.n_atoms == 0
    assert table.warnings == ("1 named ion without elements loads as an ion that carries "
                              "no atoms: All",)


def test_extension_names_molecules_of_the_first_block(real):
    table = read_rng(real / "ifes_apt_tc" / "range_file_RNG.RNG")
    by_lo = {r.lo: r for r in table}
    assert len(table) == 18
    assert by_lo[22.921].ion.name == "ScH++" and by_lo[22.921].color == "#FF0000"
    assert by_lo[23.968].ion.name == "C2+" and by_lo[23.968].color == "#660066"
    assert by_lo[22.3654].ion.name == "Sc++" and by_lo[22.3654].color == "#FF0033"
    assert by_lo[27.41].ion == Ion((), None, label="unknown")
    assert table.warnings == ("1 named ion without elements loads as an ion that carries "
                              "no atoms: unknown",)
    alh = read_rng(real / "ifes_apt_tc" / "R18_55377-v02.rng")
    (r,) = [r for r in alh if r.lo == 13.951]
    assert r.ion.name == "AlH++" and r.color == "#FF0000" and len(alh) == 8


def test_upper_case_rng_detected_by_content(real):
    p = real / "ifes_apt_tc" / "range_file_RNG.RNG"
    assert liprobe.detect_format(p) == "rng"
    assert len(liprobe.read_ranges(p)) == 18


# -- hand-written files ------------------------------------------------------------

HEAD = "2 {n}\r\nSi\r\nSi 0.80 0.80 0.80\r\nO\r\nO 0.00 0.80 1.00\r\n------- Si O\r\n"


def rng_text(*rows, ext=""):
    """A two-ion .rng (Si, O); the column line is line 6, the first row line 7."""
    return HEAD.format(n=len(rows)) + "".join(f"{r}\r\n" for r in rows) + ext


EXT = "\r\n--- polyatomic extension\r\n1 {n}\r\n{name}\r\n{name} 0.0 0.2 0.4\r\n---- {name}\r\n"


def put(tmp_path, text, name="t.rng"):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def test_extension_rows_add_windows_and_name_known_ones(tmp_path):
    text = rng_text(". 13.9 14.1 1 0", ". 43.9 44.1 1 1",
                    ext=EXT.format(n=2, name="SiO") + ". 43.9 44.1 1\r\n. 29.2 29.4 2\r\n")
    table = read_rng(put(tmp_path, text))
    # SiO: the first block's window, coloured by the extension; 2 x SiO: a new window,
    # a molecule counted twice has no colour of its own
    assert [(r.lo, r.ion.name, r.color, r.line) for r in table] == [
        (13.9, "Si++", "#CCCCCC", 7), (29.2, "Si2O2+++", None, 16), (43.9, "SiO+", "#003366", 8)]
    assert table.warnings == ()


def test_named_extension_column_keeps_the_atoms_of_the_first_block(tmp_path):
    text = rng_text(". 43.9 44.1 1 1", ext=EXT.format(n=1, name="peak44") + ". 43.9 44.1 1\r\n")
    (r,) = read_rng(put(tmp_path, text)).ranges
    assert r.ion.name == "SiO+" and r.color == "#003366"


def test_extension_giving_other_atoms_is_an_error_naming_both_lines(tmp_path):
    text = rng_text(". 43.9 44.1 1 1", ext=EXT.format(n=1, name="SiO2") + ". 43.9 44.1 1\r\n")
    p = put(tmp_path, text)
    with pytest.raises(RangeError) as e:
        read_rng(p)
    assert str(e.value) == (f"{p}: line 14: the polyatomic extension ranges [43.9, 44.1) as SiO2 "
                            "but line 7 ranges it as SiO")


def test_decimal_commas_and_missing_dot(tmp_path):
    table = read_rng(put(tmp_path, rng_text(". 13,9 14,1 1 0", "15.9 16.1 0 1")))
    assert [(r.lo, r.hi, r.ion.name) for r in table] == [(13.9, 14.1, "Si++"), (15.9, 16.1, "O+")]


@pytest.mark.parametrize("text, exc, where, problem", [
    ("2\r\nSi\r\n", FormatError, "line 1", "expected the first block counts"),
    ("x 1\r\n", FormatError, "line 1", "number of ions 'x' is not a whole number"),
    ("1 1\r\nSi metal\r\n", FormatError, "line 2", "expected the name of ion 1 of 1 alone"),
    ("1 1\r\nSi\r\nSi 0.8 0.8\r\n", FormatError, "line 3",
     "expected 'short_name r g b' for ion Si"),
    ("1 1\r\nSi\r\nSi 0.8 0.8 2\r\n", FormatError, "line 3", "are not between 0 and 1"),
    ("1 1\r\nSi\r\nSi 0.8 0.8 0.8\r\n--- Si O\r\n", FormatError, "line 4",
     "the column line names 2 columns for 1 ions"),
    ("1 1\r\nSi\r\nSi 0.8 0.8 0.8\r\n. 13.9 14.1 1\r\n", FormatError, "line 4",
     "expected the first block column line"),
    (rng_text(". 13.9 14.1 1"), FormatError, "line 7", "should hold two bounds and 2 counts"),
    (rng_text(". 13.9 x 1 0"), FormatError, "line 7", "upper bound 'x' is not a number"),
    (rng_text(". 13.9 14.1 1 -1"), FormatError, "line 7", "count of column O '-1' is not a whole"),
    (rng_text(". 13.9 14.1 0 0"), FormatError, "line 7", "assigns no ion (every count is 0)"),
    (rng_text(". 13.9 14.1 1 2000000"), FormatError, "line 7",
     "count of column O 2000000 is above the limit of 1,000,000"),
    ("1 0\r\nSi\r\nSi 0.8 0.8 0.8\r\n--- Si\r\n", FormatError, "line 1",
     "the file has no range row"),
    ("1 1\r\nXx\r\nXx 0.8 0.8 0.8\r\n--- Xx\r\n. 13.9 14.1 1\r\n", RangeError, "line 2",
     "ion 'Xx' is not a chemical element"),
    (rng_text(". 13.9 14.1 1 0", ". 14.0 16.1 0 1"), RangeError, "line 7",
     "windows of different ions overlap: Si++ [13.9, 14.1) at line 7 "
     "and O+ [14.0, 16.1) at line 8"),
    (rng_text(". 13.9 14.1 1 0", ext="oops\r\n"), FormatError, "line 8",
     "unexpected line after the range rows: 'oops'"),
    (HEAD.format(n=3) + ". 13.9 14.1 1 0\r\n\r\n", FormatError, "line 8",
     "file ends where range row 2 of 3 (first block) was expected"),
    ("1 1\r\nunknown\r\nunknown 0.6 0.6 0\r\n--- unknown H\r\n", FormatError, "line 4",
     "names 2 columns for 1 ions"),
])
def test_bad_rng_names_file_line_and_problem(tmp_path, text, exc, where, problem):
    p = put(tmp_path, text)
    with pytest.raises(exc) as e:
        read_rng(p)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{p}: ")
    assert where in msg and problem in msg, msg


def test_named_ion_mixed_with_an_element_is_an_error(tmp_path):
    text = ("2 1\r\nunknown\r\nunknown 0.6 0.6 0\r\nH\r\nH 0.8 0.8 0\r\n--- unknown H\r\n"
            ". 27.4 27.5 1 1\r\n")
    p = put(tmp_path, text)
    with pytest.raises(RangeError, match="line 7: range row combines the named ion 'unknown'"):
        read_rng(p)


def test_empty_and_binary_rng(tmp_path):
    for data, problem in ((b"", "file is empty"), (b"\x00" * 64, "is a binary file")):
        p = put(tmp_path, data, "x.rng")
        with pytest.raises(FormatError) as e:
            read_rng(p)
        msg = str(e.value)
        assert msg.startswith(f"{os.fspath(p)}: ") and problem in msg and "\n" not in msg
