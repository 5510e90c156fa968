"""Writes the malformed-file corpus of ``tests/io/test_corpus.py`` (issue "Reliability").

Every file of this folder but this script and ``expected.toml`` is written here, byte
for byte the same on every run (no clock, no randomness)::

    python tests/io/corpus/make_corpus.py            # (re)writes the committed files

The few cases too large to commit (a 10 MB line, a NUL byte beyond the first 64 kB)
are in :data:`LARGE`: the test builds them in a temporary folder with :func:`build`.
Each case's expected outcome is in ``expected.toml``, beside this script.

The ``.apt`` files are built with :mod:`struct` after the layout documented in
``liprobe.io.apt`` (540-byte file header, 148-byte section headers, 172 for
``Position``), independently of liprobe's reader.
"""

from __future__ import annotations

import math
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# -- ion files --------------------------------------------------------------------------

#: four ions, the same in every file: x, y, z (nm), mass (Da)
IONS = [(0.5, -1.0, 2.0, 6.94), (1.5, 0.25, 3.0, 15.99), (-2.0, 1.0, 4.0, 31.98),
        (0.0, 0.0, 5.0, 27.97)]


def _pos(ions) -> bytes:
    return b"".join(struct.pack(">4f", *r) for r in ions)


def _epos(ions, pulse_delta=0, multiplicity=1, tof=500.0) -> bytes:
    out = []
    for i, (x, y, z, m) in enumerate(ions):
        pd = pulse_delta[i] if isinstance(pulse_delta, list) else pulse_delta
        mu = multiplicity[i] if isinstance(multiplicity, list) else multiplicity
        t = tof[i] if isinstance(tof, list) else tof
        out.append(struct.pack(">9f2i", x, y, z, m, t, 5000.0, 1000.0, 10.0 + i, -5.0 - i,
                               pd, mu))
    return b"".join(out)


def _with(ions, i, j, value):
    rows = [list(r) for r in ions]
    rows[i][j] = value
    return [tuple(r) for r in rows]


# -- AP Suite .apt ----------------------------------------------------------------------

def _utf16(text: str, units: int) -> bytes:
    return text.encode("utf-16-le")[:2 * units].ljust(2 * units, b"\x00")


def _apt_header(ion_count: int, signature=b"APT\x00", header_size=540, version=2,
                filetime=0, name_units: bytes | None = None) -> bytes:
    name = _utf16("corpus.apt", 256) if name_units is None else name_units
    return (signature + struct.pack("<ii", header_size, version) + name
            + struct.pack("<QQ", filetime, ion_count))


def _section(name, data: bytes, *, n, data_type=3, bits=32, record_size=4, unit="",
             signature=b"SEC\x00", header_size=None, relationship=1, record_type=1,
             record_count=None, byte_count=None, extra=b"", name_units: bytes | None = None
             ) -> bytes:
    hs = 148 + len(extra) if header_size is None else header_size
    head = (signature + struct.pack("<ii", hs, 2)
            + (_utf16(name, 32) if name_units is None else name_units)
            + struct.pack("<iIII", 1, relationship, record_type, data_type)
            + struct.pack("<ii", bits, record_size) + _utf16(unit, 16)
            + struct.pack("<QQ", n if record_count is None else record_count,
                          len(data) if byte_count is None else byte_count))
    assert len(head) == 148
    return head + extra + data


def _f32(values) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


MASS = [r[3] for r in IONS]


def _mass(unit="Da", **kw) -> bytes:
    return _section("Mass", _f32(MASS), n=len(MASS), unit=unit, **kw)


def _position(**kw) -> bytes:
    xyz = [v for r in IONS for v in r[:3]]
    bbox = _f32([f(r[j] for r in IONS) for j in range(3) for f in (min, max)])
    return _section("Position", _f32(xyz), n=len(IONS), record_size=12, unit="nm",
                    extra=bbox, **kw)


N_IONS = len(IONS)


def _apt(*sections, n=N_IONS, **kw) -> bytes:
    return _apt_header(n, **kw) + b"".join(sections)


def _good_apt() -> bytes:
    return _apt(_mass(), _position())


# -- range files ------------------------------------------------------------------------

def _rrng(ions, ranges, ions_number=None, ranges_number=None, extra="") -> str:
    lines = ["[Ions]", f"Number={len(ions) if ions_number is None else ions_number}"]
    lines += [f"Ion{i}={ion}" for i, ion in enumerate(ions, 1)]
    lines += ["[Ranges]", f"Number={len(ranges) if ranges_number is None else ranges_number}"]
    lines += [f"Range{i}={r}" for i, r in enumerate(ranges, 1)]
    return "\n".join(lines) + "\n" + extra


GOOD_RANGES = ["6.90 7.20 Vol:0.01300 Li:1 Color:FF0000",
               "15.90 16.20 Vol:0.01500 O:1 Color:0000FF",
               "27.80 28.20 Vol:0.02003 Si:1 Color:CCCCCC"]


def _good_rrng(**kw) -> str:
    return _rrng(["Li", "O", "Si"], GOOD_RANGES, **kw)


def _rrng_with(i: int, line: str, **kw) -> str:
    ranges = list(GOOD_RANGES)
    ranges[i] = line
    return _rrng(["Li", "O", "Si"], ranges, **kw)


def _rng(columns, rows, counts_line=None) -> str:
    out = [counts_line or f"{len(columns)} {len(rows)}"]
    for name, rgb in columns:
        out += [name, f"{name} {rgb}"]
    out.append("------------------- " + " ".join(n for n, _ in columns))
    out += rows
    return "\n".join(out) + "\n"


RNG_COLUMNS = [("Li", "1.0 0.0 0.0"), ("O", "0.0 0.0 1.0")]


# -- study manifests --------------------------------------------------------------------

RUN = """
[[runs]]
name = "r1"
data = "pos_good.pos"
ranges = "rrng_good.rrng"
"""


def _manifest(study: str = 'name = "corpus"\n', runs: str = RUN, head: str = "") -> str:
    return head + "[study]\n" + study + runs


# -- the cases --------------------------------------------------------------------------

def _text(s: str) -> bytes:
    return s.encode("utf-8")


CASES: dict[str, bytes] = {
    # .pos: 16-byte big-endian records
    "pos_good.pos": _pos(IONS),
    "pos_empty.pos": b"",
    "pos_not_whole_records.pos": _pos(IONS) + b"\x00" * 5,
    "pos_one_byte.pos": b"\x01",
    "pos_nan_mass.pos": _pos(_with(IONS, 2, 3, math.nan)),
    "pos_inf_mass.pos": _pos(_with(IONS, 1, 3, math.inf)),
    "pos_nan_x.pos": _pos(_with(IONS, 0, 0, math.nan)),
    "pos_huge_values.pos": _pos(_with(_with(IONS, 0, 0, 3.0e38), 3, 3, 3.0e38)),
    "pos_negative_mass.pos": _pos(_with(IONS, 1, 3, -16.0)),
    "pos_text.pos": _text("x y z m\n1 2 3 4\n"),
    # .epos: 44-byte big-endian records
    "epos_truncated_record.epos": _epos(IONS)[:-20],
    "epos_nan_tof.epos": _epos(IONS, tof=[500.0, math.nan, 500.0, 500.0]),
    "epos_negative_multiplicity.epos": _epos(IONS, multiplicity=[1, -7, 1, 1]),
    "epos_absurd_pulse_delta.epos": _epos(IONS, pulse_delta=[0, -2_000_000_000, 3, 0]),
    "epos_huge_multiplicity.epos": _epos(IONS, multiplicity=[2_000_000_000, 1, 1, 1]),
    # AP Suite .apt
    "apt_good.apt": _good_apt(),
    "apt_empty.apt": b"",
    "apt_bad_magic.apt": b"APX\x00" + _good_apt()[4:],
    "apt_truncated_file_header.apt": _good_apt()[:300],
    "apt_header_size_lies.apt": _apt(_mass(), _position(), header_size=600),
    "apt_header_version_9.apt": _apt(_mass(), _position(), version=9),
    "apt_ion_count_zero.apt": _apt(_mass(), _position(), n=0),
    "apt_no_sections.apt": _apt_header(len(IONS)),
    "apt_section_bad_signature.apt": _apt(_mass(signature=b"SEX\x00"), _position()),
    "apt_section_header_size_small.apt": _apt(_mass(header_size=100), _position()),
    "apt_section_header_size_negative.apt": _apt(_mass(header_size=-148), _position()),
    "apt_section_header_size_huge.apt": _apt(_mass(header_size=2**31 - 1), _position()),
    "apt_byte_count_overflow.apt": _apt(_mass(byte_count=2**64 - 1), _position()),
    "apt_byte_count_short.apt": _apt(_mass(byte_count=8), _position()),
    "apt_record_count_mismatch.apt": _apt(_mass(record_count=3), _position()),
    "apt_ion_count_huge.apt": _apt(_mass(record_count=2**64 - 1), n=2**64 - 1),
    "apt_record_size_zero.apt": _apt(_mass(record_size=0), _position()),
    "apt_record_size_negative.apt": _apt(_mass(record_size=-4), _position()),
    "apt_bits_24.apt": _apt(_mass(bits=24), _position()),
    "apt_unknown_data_type.apt": _apt(_mass(data_type=9), _position()),
    "apt_only_string_sections.apt": _apt(
        _section("Comment", b"abcd" * 4, n=4, data_type=4, bits=8, record_size=4)),
    "apt_relationship_type_2.apt": _apt(_mass(), _position(),
                                        _section("Spectrum", _f32([1.0] * 4), n=4,
                                                 relationship=2)),
    "apt_unknown_section_name.apt": _apt(_mass(), _section("Zorp", _f32([1, 2, 3, 4]), n=4)),
    "apt_many_sections.apt": _apt(_mass(), *(_section(f"s{i:03d}", _f32([i] * 4), n=4)
                                             for i in range(150))),
    "apt_duplicate_section.apt": _apt(_mass(), _position(), _mass()),
    "apt_trailing_bytes.apt": _good_apt() + b"\x00" * 10,
    "apt_truncated_section_header.apt": _good_apt() + b"SEC\x00" + b"\x00" * 20,
    "apt_truncated_data.apt": _good_apt()[:-7],
    "apt_position_one_value.apt": _apt(_mass(), _section("Position", _f32([1.0] * 4), n=4,
                                                         unit="nm")),
    "apt_mass_unit_furlong.apt": _apt(_mass(unit="furlong"), _position()),
    "apt_mass_nan.apt": _apt(_section("Mass", _f32([6.9, math.nan, 16.0, 28.0]), n=4,
                                      unit="Da"), _position()),
    "apt_section_name_lone_surrogate.apt": _apt(
        _mass(), _section("", _f32([1, 2, 3, 4]), n=4,
                          name_units=struct.pack("<H", 0xD800).ljust(64, b"\x00"))),
    "apt_section_name_empty.apt": _apt(_mass(), _section("", _f32([1, 2, 3, 4]), n=4)),
    "apt_filetime_max.apt": _apt(_mass(), _position(), filetime=2**64 - 1),
    "apt_bbox_nan.apt": _apt(_mass(), _section(
        "Position", _f32([v for r in IONS for v in r[:3]]), n=4, record_size=12, unit="nm",
        extra=_f32([math.nan] * 6))),
    # Cameca .rrng
    "rrng_good.rrng": _text(_good_rrng()),
    "rrng_no_ranges_section.rrng": _text("[Ions]\nNumber=1\nIon1=Li\n"),
    "rrng_empty_ranges.rrng": _text("[Ions]\nNumber=1\nIon1=Li\n[Ranges]\nNumber=0\n"),
    "rrng_lo_above_hi.rrng": _text(_rrng_with(0, "7.20 6.90 Vol:0.013 Li:1 Color:FF0000")),
    "rrng_lo_equals_hi.rrng": _text(_rrng_with(0, "7.00 7.00 Vol:0.013 Li:1 Color:FF0000")),
    "rrng_overlap.rrng": _text(_rrng_with(1, "15.90 28.00 Vol:0.015 O:1 Color:0000FF")),
    "rrng_overlap_same_ion.rrng": _text(_rrng(
        ["Li"], ["6.90 7.10 Vol:0.013 Li:1 Color:FF0000", "7.00 7.20 Vol:0.013 Li:1 "
                                                          "Color:FF0000"])),
    "rrng_negative_bounds.rrng": _text(_rrng_with(0, "-7.20 -6.90 Vol:0.013 Li:1 "
                                                     "Color:FF0000")),
    "rrng_unknown_element.rrng": _text(_rrng_with(2, "27.80 28.20 Vol:0.02 Xq:1 "
                                                     "Color:CCCCCC")),
    "rrng_volume_negative.rrng": _text(_rrng_with(0, "6.90 7.20 Vol:-0.5 Li:1 Color:FF0000")),
    "rrng_colour_junk.rrng": _text(_rrng_with(0, "6.90 7.20 Vol:0.013 Li:1 Color:ZZTOP!")),
    "rrng_nul_byte.rrng": _text(_good_rrng()).replace(b"Ion1=Li", b"Ion1=L\x00"),
    "rrng_utf16.rrng": _good_rrng().encode("utf-16"),
    "rrng_charge_overflow.rrng": _text(_rrng_with(
        0, "6.90 7.20 Vol:0.013 Li:1 Charge:99999999999999999999999 Color:FF0000")),
    "rrng_charge_zero.rrng": _text(_rrng_with(0, "6.90 7.20 Vol:0.013 Li:1 Charge:0 "
                                                 "Color:FF0000")),
    "rrng_element_count_huge.rrng": _text(_rrng_with(2, "27.80 28.20 Vol:0.02 Si:1000000 "
                                                        "Color:CCCCCC")),
    "rrng_number_mismatch.rrng": _text(_good_rrng(ranges_number=7)),
    "rrng_bound_overflow.rrng": _text(_rrng_with(0, "6.90 1e400 Vol:0.013 Li:1 "
                                                    "Color:FF0000")),
    "rrng_bound_nan.rrng": _text(_rrng_with(0, "nan 7.20 Vol:0.013 Li:1 Color:FF0000")),
    "rrng_no_element.rrng": _text(_rrng_with(0, "6.90 7.20 Vol:0.013 Color:FF0000")),
    "rrng_second_ranges_section.rrng": _text(_good_rrng() + "[Ranges]\nNumber=0\n"),
    "rrng_lowercase_element.rrng": _text(_rrng_with(2, "27.80 28.20 Vol:0.02 si:1 "
                                                       "Color:CCCCCC")),
    "rrng_mislabel.rrng": _text(_rrng_with(2, "45.80 46.20 Vol:0.02 Si:1 Color:CCCCCC")),
    "rrng_numbering_gap.rrng": _text(_good_rrng().replace("Range3=", "Range5=")),
    "rrng_range_index_5000_digits.rrng": _text(_good_rrng().replace("Range3=",
                                                                    "Range" + "7" * 5000 + "=")),
    "rrng_charges_index_5000_digits.rrng": _text(_good_rrng(
        extra="[Charges]\nRange" + "7" * 5000 + "=1\n")),
    "rrng_latin1_comment.rrng": "; Messung von Jürgen, 22,8 °C\n".encode("latin-1")
                                + _text(_good_rrng()),
    # Oak Ridge .rng
    "rng_good.rng": _text(_rng(RNG_COLUMNS, [". 6.90 7.20 1 0", ". 15.90 16.20 0 1"])),
    "rng_rows_missing.rng": _text(_rng(RNG_COLUMNS, [". 6.90 7.20 1 0"], "2 2")),
    "rng_count_huge.rng": _text(_rng(RNG_COLUMNS, [". 6.90 7.20 1 0"],
                                     "2 99999999999999999999999999")),
    "rng_ion_count_huge.rng": _text(_rng(RNG_COLUMNS, [". 6.90 7.20 1 0"],
                                         "999999999999999999 1")),
    "rng_colour_out_of_range.rng": _text(_rng([("Li", "1.5 0.0 0.0"), ("O", "0 0 1")],
                                              [". 6.90 7.20 1 0"])),
    "rng_lo_above_hi.rng": _text(_rng(RNG_COLUMNS, [". 7.20 6.90 1 0"])),
    "rng_unknown_element.rng": _text(_rng([("Li", "1 0 0"), ("Xq", "0 0 1")],
                                          [". 6.90 7.20 1 0"])),
    "rng_zero_ranges.rng": _text(_rng(RNG_COLUMNS, [])),
    "rng_all_zero_counts.rng": _text(_rng(RNG_COLUMNS, [". 6.90 7.20 0 0"])),
    "rng_overlap.rng": _text(_rng(RNG_COLUMNS, [". 6.90 16.00 1 0", ". 15.90 16.20 0 1"])),
    "rng_element_count_huge.rng": _text(_rng(RNG_COLUMNS, [". 6.90 7.20 1000000 0"])),
    # study manifests (TOML)
    "manifest_not_toml.toml": _text("[study\nname = corpus\n"),
    "manifest_not_utf8.toml": _manifest().encode("utf-8").replace(b"corpus", b"corp\xffs"),
    "manifest_name_wrong_type.toml": _text(_manifest("name = 5\n")),
    "manifest_unknown_study_key.toml": _text(_manifest('name = "c"\nrio = "cylinder:25"\n')),
    "manifest_unknown_top_key.toml": _text(_manifest(head="[stduy]\nname = \"c\"\n")),
    "manifest_shuffles_too_large.toml": _text(_manifest(
        'name = "c"\nfda = { shuffles = 1000000000000 }\n')),
    "manifest_fda_block_bool.toml": _text(_manifest('name = "c"\nfda = { block = true }\n')),
    "manifest_flags_nan.toml": _text(_manifest('name = "c"\n[study.flags]\n'
                                               'delithiated_z = nan\n')),
    "manifest_sigma_inf.toml": _text(_manifest('name = "c"\npeak_presence_sigma = 1e400\n')),
    "manifest_nul.toml": _text(_manifest('name = "c\x00"\n')),
    "manifest_utf16.toml": _manifest().encode("utf-16"),
    "manifest_int_5000_digits.toml": _text(_manifest('name = "c"\nfda = { seed = '
                                                     + "9" * 5000 + " }\n")),
    "manifest_sigma_401_digits.toml": _text(_manifest('name = "c"\npeak_presence_sigma = 1'
                                                      + "0" * 400 + "\n")),
    "manifest_laser_401_digits.toml": _text(_manifest(runs=RUN + "laser_pj = 1" + "0" * 400
                                                      + "\n")),
    "manifest_nested_arrays.toml": _text(_manifest(
        'name = "c"\nratios = ' + "[" * 500 + "]" * 500 + "\n")),
    "manifest_nested_tables.toml": _text(_manifest(
        'name = "c"\nfda = ' + "{ a = " * 500 + "1" + " }" * 500 + "\n")),
    "manifest_no_runs.toml": _text(_manifest(runs="")),
    "manifest_runs_not_array.toml": _text(_manifest(runs="", head='runs = "r1"\n')),
    "manifest_run_name_path.toml": _text(_manifest(runs=RUN.replace('"r1"', '"../r1"'))),
    "manifest_run_name_twice.toml": _text(_manifest(runs=RUN + RUN)),
    "manifest_missing_ranges.toml": _text(_manifest(runs=RUN.replace(
        'ranges = "rrng_good.rrng"\n', ""))),
    "manifest_data_is_folder.toml": _text(_manifest(runs=RUN.replace('"pos_good.pos"', '"."'))),
    "manifest_data_missing.toml": _text(_manifest(runs=RUN.replace('"pos_good.pos"',
                                                                   '"no_such_run.pos"'))),
    "manifest_data_is_range_file.toml": _text(_manifest(runs=RUN.replace('"pos_good.pos"',
                                                                         '"rrng_good.rrng"'))),
    "manifest_unknown_run_key.toml": _text(_manifest(runs=RUN + 'laser_uj = 5\n')),
    "manifest_laser_negative.toml": _text(_manifest(runs=RUN + 'laser_pj = -5\n')),
}


def _long_line() -> bytes:
    """A 10 MB comment line inside an otherwise good .rrng."""
    return b"; " + b"x" * (10 << 20) + b"\n" + _text(_good_rrng())


def _late_nul() -> bytes:
    """A good .rrng whose 70,000-byte comment ends with a NUL byte (beyond the 64 kB
    that the text check looks at)."""
    return b"; " + b"y" * 70_000 + b"\x00\n" + _text(_good_rrng())


def _long_range_line() -> bytes:
    """A 10 MB range line: one window followed by 10 MB of fields."""
    return _text(_rrng_with(0, "6.90 7.20 Vol:0.013 Li:1 Color:FF0000" + " Li:1" * (2 << 20)))


#: Cases built at test time (too large to commit): name -> builder.
LARGE = {
    "rrng_10mb_comment_line.rrng": _long_line,
    "rrng_10mb_range_line.rrng": _long_range_line,
    "rrng_nul_after_64k.rrng": _late_nul,
}


def build(name: str, folder) -> Path:
    """Write the case ``name`` (from :data:`CASES` or :data:`LARGE`) into ``folder``."""
    data = LARGE[name]() if name in LARGE else CASES[name]
    path = Path(folder) / name
    path.write_bytes(data)
    return path


def main(folder=HERE) -> None:
    for name in CASES:
        build(name, folder)
    total = sum(len(b) for b in CASES.values())
    print(f"wrote {len(CASES)} files, {total:,} bytes, in {folder}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else HERE)
