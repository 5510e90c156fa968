"""Reading AP Suite 6 ``.apt`` files.

Oracles: the same run as ``Si.pos`` and ``Si_first100000.epos`` read with
plain numpy, the values measured in ``PROVENANCE.md``, the independent
ifes-apt-tc-data-modeling reader, and the values written by ``aptfile.py``.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import liprobe
from liprobe.errors import FormatError
from liprobe.io.apt import read_apt

from .aptfile import Section, apt_bytes, write_apt

N_SI = 945_211
SECTION_HEADER = 148


def bits(a: np.ndarray) -> np.ndarray:
    """The raw bit pattern of an array (so -0.0 and 0.0 differ)."""
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def read_ifes(path):
    """Parse with the ifes reader, quietly."""
    from ifes_apt_tc_data_modeling.apt.apt6_reader import ReadAptFileFormat

    logging.getLogger("ifes_apt_tc_data_modeling").setLevel(logging.ERROR)
    return ReadAptFileFormat(str(path))


def ifes_values(reader, name) -> np.ndarray:
    return np.asarray(reader.get_named_quantity(name).magnitude)


# -- the real Si.apt ---------------------------------------------------------

@pytest.fixture(scope="module")
def si_apt(real):
    return real / "apav_si" / "Si.apt"


@pytest.fixture(scope="module")
def si(si_apt):
    return read_apt(si_apt)


@pytest.fixture(scope="module")
def si_pos(real):
    return np.fromfile(real / "apav_si" / "Si.pos", dtype=">f4").reshape(-1, 4)


@pytest.fixture(scope="module")
def si_epos(real):
    raw = np.fromfile(real / "apav_si" / "Si_first100000.epos", dtype=">u4").reshape(-1, 11)
    return raw[:, :9].view(">f4"), raw[:, 9:].view(">i4")


def test_si_apt_has_945211_ions_and_the_expected_columns(si, si_apt):
    assert si.n_ions == N_SI
    assert si.columns == ("tofc", "mass", "det_x", "det_y", "multiplicity", "x", "y", "z")
    assert si.format == "apt"
    assert si.path == str(si_apt)
    assert si.meta["ion_count"] == N_SI


def test_si_apt_mass_and_position_are_bit_identical_to_si_pos(si, si_pos):
    assert len(si_pos) == N_SI
    for j, name in enumerate(("x", "y", "z", "mass")):
        np.testing.assert_array_equal(bits(si[name]), bits(si_pos[:, j].astype("<f4")))


def test_si_apt_multiplicity_and_detector_match_the_epos(si, si_epos):
    floats, ints = si_epos
    n = len(ints)
    assert n == 100_000
    np.testing.assert_array_equal(si["multiplicity"][:n], ints[:, 1])
    np.testing.assert_array_equal(bits(si["det_x"][:n]), bits(floats[:, 7].astype("<f4")))
    np.testing.assert_array_equal(bits(si["det_y"][:n]), bits(floats[:, 8].astype("<f4")))
    # the ipp histogram from PROVENANCE.md
    counts = np.bincount(si["multiplicity"][:n])
    assert {k: int(c) for k, c in enumerate(counts) if c} == {
        0: 2088, 1: 95966, 2: 1821, 3: 112, 4: 11, 5: 1, 7: 1}


def test_si_apt_bounding_box_is_the_provenance_one_and_the_data_extent(si):
    box = si.meta["bounding_box_nm"]
    expected = (-20.433578, 19.706375, -17.857210, 21.282995, -75.080650, -0.020034)
    np.testing.assert_allclose(box, expected, rtol=0, atol=1e-6)
    extent = [f(si[c]) for c in ("x", "y", "z") for f in (np.min, np.max)]
    np.testing.assert_array_equal(np.float32(box), np.float32(extent))


def test_si_apt_tofc_is_kept_with_its_provenance_values(si):
    tofc = si["tofc"]
    assert tofc.dtype == np.float32
    np.testing.assert_array_equal(tofc[:3], np.float32([965.18164, 2083.2202, 4344.205]))
    assert round(float(tofc.min()), 4) == 0.0401
    assert round(float(tofc.max()), 2) == 7296.61
    assert si.meta["units"]["tofc"] == "ns"
    assert "tof" not in si


def test_si_apt_sections_are_those_of_the_provenance_table(si):
    table = [  # offset, header size, name, data type, record size, unit
        (540, 148, "tofc", 3, 4, "ns"),
        (3_781_532, 148, "Mass", 3, 4, "Da"),
        (7_562_524, 148, "XDet_mm", 3, 4, "mm"),
        (11_343_516, 148, "YDet_mm", 3, 4, "mm"),
        (15_124_508, 148, "Multiplicity", 1, 4, ""),
        (18_905_500, 148, "Detector Coordinates", 3, 8, "mm"),
        (26_467_336, 172, "Position", 3, 12, "nm"),
    ]
    got = [(s["offset"], s["header_size"], s["name"], s["data_type"], s["record_size"], s["unit"])
           for s in si.meta["sections"]]
    assert got == table
    for s in si.meta["sections"]:
        assert s["record_count"] == N_SI
        assert s["data_type_bits"] == 32
        assert s["data_offset"] == s["offset"] + s["header_size"]
        assert s["byte_count"] == N_SI * s["record_size"]
    last = si.meta["sections"][-1]
    assert last["data_offset"] + last["byte_count"] == 37_810_040


def test_si_apt_header_fields(si):
    m = si.meta
    assert m["header_size"] == 540 and m["header_version"] == 2
    assert m["original_filename"].startswith("E:\\Users\\")
    assert m["original_filename"].endswith(".apt")
    assert m["creation_filetime"] == 132_610_050_860_580_000
    assert m["creation_time"] == "2021-03-23T20:31:26.058000+00:00"


def test_si_apt_detector_coordinates_are_skipped_as_a_duplicate(si, si_apt):
    assert "Detector Coordinates" in si.meta["skipped"]
    sec = next(s for s in si.meta["sections"] if s["name"] == "Detector Coordinates")
    assert sec["columns"] == ()
    # the claim behind skipping it: it repeats XDet_mm / YDet_mm
    pairs = np.memmap(si_apt, dtype="<f4", mode="r", offset=sec["data_offset"], shape=(N_SI, 2))
    np.testing.assert_array_equal(pairs[:, 0], si["det_x"])
    np.testing.assert_array_equal(pairs[:, 1], si["det_y"])


def test_si_apt_columns_are_lazy_memory_map_views(si_apt):
    run = read_apt(si_apt)
    for name in run.columns:
        src = run.source(name)
        assert isinstance(src, np.memmap) or isinstance(src.base, np.memmap)
        assert src.shape == (N_SI,)
    assert run.meta["layout"]["x"] == (26_467_336 + 172, 12)
    assert run.meta["layout"]["z"] == (26_467_336 + 172 + 8, 12)
    assert run.meta["layout"]["mass"] == (3_781_532 + 148, 4)
    assert "multiplicity" not in run.meta["layout"]


def test_liprobe_read_dispatches_apt_files(si_apt):
    run = liprobe.read(si_apt)
    assert run.format == "apt" and run.n_ions == N_SI


def test_si_apt_agrees_with_the_ifes_reader(si, si_apt):
    ifes = read_ifes(si_apt)
    assert list(ifes.available_sections) == [s["name"] for s in si.meta["sections"]]
    for name, col in (("tofc", "tofc"), ("Mass", "mass"), ("XDet_mm", "det_x"),
                      ("YDet_mm", "det_y"), ("Multiplicity", "multiplicity")):
        np.testing.assert_array_equal(ifes_values(ifes, name), si[col], err_msg=name)
    pos = ifes_values(ifes, "Position")
    for j, c in enumerate("xyz"):
        np.testing.assert_array_equal(pos[:, j], si[c])
    # ifes reads two-value records with a three-value stride, so its
    # "Detector Coordinates" agree with ours on the first record only.
    dc = ifes_values(ifes, "Detector Coordinates")
    assert (dc[0] == (si["det_x"][0], si["det_y"][0])).all()


# -- synthetic files -----------------------------------------------------------

def acquisition_sections(n: int, seed: int = 1) -> list[Section]:
    """Sections the ifes reader knows, with its expected units and types."""
    rng = np.random.default_rng(seed)
    f4 = lambda lo, hi: rng.uniform(lo, hi, n).astype(np.float32)  # noqa: E731
    return [
        Section("Mass", f4(0, 200), "Da"),
        Section("Position", rng.normal(0, 20, (n, 3)).astype(np.float32), "nm"),
        Section("tof", f4(100, 5000), "ns"),
        Section("tofc", f4(100, 5000), "ns"),
        Section("XDet_mm", f4(-20, 20), "mm"),
        Section("YDet_mm", f4(-20, 20), "mm"),
        Section("Multiplicity", rng.integers(0, 5, n).astype(np.int32)),
        Section("pulseDelta", rng.integers(0, 3000, n).astype(np.int16)),
        Section("Vref", f4(3000, 8000), "V"),
        Section("Vap", f4(3000, 8000), "V"),
        Section("erate", f4(0, 0.02), "%/100"),
        Section("freq", f4(1e5, 5e5), "Hz"),
        Section("tElapsed", np.cumsum(f4(0, 0.01)).astype(np.float32)),
        Section("pulse", f4(0, 1e9)),
        Section("Temp", f4(40, 60), "K"),
        Section("z", rng.integers(0, 10**9, n).astype(np.int64), "ions"),
        Section("tstage", rng.integers(0, 60000, n).astype(np.uint16)),
        Section("xstage", rng.integers(-1000, 1000, n).astype(np.int32)),
    ]


STANDARD = {"Mass": "mass", "tof": "tof", "XDet_mm": "det_x", "YDet_mm": "det_y",
            "Multiplicity": "multiplicity", "pulseDelta": "pulse_delta", "Vref": "v_dc",
            "z": "apt_z"}


def test_synthetic_acquisition_file_maps_every_section(tmp_path):
    path = tmp_path / "acq.apt"
    secs = acquisition_sections(257)
    offsets = write_apt(path, secs, filename="C:\\runs\\R5083_1.apt",
                        filetime=116_444_736_000_000_000 + 10_000_000)  # 1970-01-01T00:00:01
    run = read_apt(path)
    assert run.n_ions == 257
    for s in secs:
        if s.name == "Position":
            for j, c in enumerate("xyz"):
                np.testing.assert_array_equal(bits(run[c]), bits(s.values[:, j]))
            continue
        col = STANDARD.get(s.name, s.name)
        assert run[col].dtype == s.values.dtype, s.name
        np.testing.assert_array_equal(bits(run[col]), bits(s.values), err_msg=s.name)
    assert run.columns[:4] == ("mass", "x", "y", "z")
    assert "Vap" in run and "Vref" not in run and "z" in run and "apt_z" in run
    assert run.meta["original_filename"] == "C:\\runs\\R5083_1.apt"
    assert run.meta["creation_time"] == "1970-01-01T00:00:01+00:00"
    assert [s["offset"] for s in run.meta["sections"]] == offsets
    pos = secs[1].values
    assert run.meta["bounding_box_nm"] == tuple(
        float(f(pos[:, j])) for j in range(3) for f in (np.min, np.max))
    assert run.meta["units"]["erate"] == "%/100" and run.meta["units"]["v_dc"] == "V"
    assert run.meta["skipped"] == {}


def test_synthetic_acquisition_file_agrees_with_the_ifes_reader(tmp_path):
    path = tmp_path / "acq.apt"
    secs = acquisition_sections(1000, seed=7)
    write_apt(path, secs)
    ours = read_apt(path)
    ifes = read_ifes(path)
    assert list(ifes.available_sections) == [s.name for s in secs]
    for s in secs:
        sec = next(m for m in ours.meta["sections"] if m["name"] == s.name)
        assert int(ifes.byte_offsets[s.name]) == sec["data_offset"] + sec["byte_count"]
        if s.name == "z":
            continue  # ifes cannot return it: its unit registry has no 'ions'
        theirs = ifes_values(ifes, s.name)
        if s.name == "Position":
            ours_v = np.stack([ours[c] for c in "xyz"], axis=1)
        else:
            ours_v = ours[STANDARD.get(s.name, s.name)]
        np.testing.assert_array_equal(theirs, ours_v, err_msg=s.name)


def test_voltage_wins_v_dc_and_vref_keeps_its_name(tmp_path):
    path = tmp_path / "v.apt"
    v, vref = np.float32([5000, 5001, 5002]), np.float32([4990, 4991, 4992])
    write_apt(path, [Section("Mass", np.float32([1, 2, 3]), "Da"),
                     Section("Vref", vref, "V"), Section("Voltage", v, "V")])
    run = read_apt(path)
    np.testing.assert_array_equal(run["v_dc"], v)
    np.testing.assert_array_equal(run["Vref"], vref)


def test_detector_coordinates_give_det_x_det_y_when_xdet_ydet_are_absent(tmp_path):
    path = tmp_path / "dc.apt"
    det = np.float32([[1.5, -2.5], [3.25, 4.0], [-7.0, 0.125]])
    write_apt(path, [Section("Detector Coordinates", det, "mm"),
                     Section("Epos ToF", np.float32([10, 20, 30]), "ns"),
                     Section("Delta Pulse", np.int16([0, 1, 7]))])
    run = read_apt(path)
    assert run.columns == ("det_x", "det_y", "tof", "pulse_delta")
    np.testing.assert_array_equal(run["det_x"], det[:, 0])
    np.testing.assert_array_equal(run["det_y"], det[:, 1])
    np.testing.assert_array_equal(run["pulse_delta"], [0, 1, 7])
    assert run.meta["layout"]["det_y"] == (540 + 148 + 4, 8)


def test_other_multi_value_sections_become_numbered_columns(tmp_path):
    path = tmp_path / "multi.apt"
    vals = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    write_apt(path, [Section("Mass", np.float32([1, 2, 3, 4]), "Da"),
                     Section("laserpos", vals, "um")])
    run = read_apt(path)
    assert run.columns == ("mass", "laserpos_0", "laserpos_1", "laserpos_2")
    for j in range(3):
        np.testing.assert_array_equal(run[f"laserpos_{j}"], vals[:, j])
    assert run.meta["layout"]["laserpos_2"] == (540 + 148 + 16 + 148 + 16, 24)


def test_position_without_bounding_box_and_padded_sections_read(tmp_path):
    path = tmp_path / "plain.apt"
    xyz = np.float32([[1, 2, -3], [4, 5, -6]])
    write_apt(path, [Section("Mass", np.float32([1, 2]), "Da", padding=b"\xff" * 6),
                     Section("Position", xyz, "nm", bbox=None)])
    run = read_apt(path)
    assert run.meta["bounding_box_nm"] is None
    assert run.meta["sections"][1]["offset"] == 540 + 148 + 8 + 6
    np.testing.assert_array_equal(np.stack([run[c] for c in "xyz"], axis=1), xyz)


def test_sections_not_one_value_per_ion_are_skipped_with_a_reason(tmp_path):
    path = tmp_path / "skip.apt"
    write_apt(path, [Section("Mass", np.float32([1, 2, 3]), "Da"),
                     Section("Events", np.int64([5, 9]), relationship_type=3),
                     Section("Comment", np.frombuffer(b"abc", np.uint8), data_type=4)])
    run = read_apt(path)
    assert run.columns == ("mass",)
    assert "relationship type 3" in run.meta["skipped"]["Events"]
    assert "string" in run.meta["skipped"]["Comment"]


def test_a_non_finite_mass_names_the_ion_and_its_byte(tmp_path):
    path = tmp_path / "nan.apt"
    write_apt(path, [Section("Mass", np.float32([1, 2, np.nan, 4]), "Da")])
    run = read_apt(path)
    with pytest.raises(FormatError) as e:
        run["mass"]
    assert f"byte {540 + 148 + 2 * 4}" in str(e.value) and "ion 2" in str(e.value)


# -- errors --------------------------------------------------------------------

def error_of(path) -> str:
    with pytest.raises(FormatError) as e:
        read_apt(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


def small_file(n: int = 4) -> list[Section]:
    return [Section("Mass", np.arange(1, n + 1, dtype=np.float32), "Da"),
            Section("tof", np.arange(n, dtype=np.float32) * 10, "ns")]


def test_truncated_real_file_names_the_section_and_the_end(tmp_path, si_apt):
    path = tmp_path / "Si_cut.apt"
    with open(si_apt, "rb") as f:
        path.write_bytes(f.read(5_000_000))  # inside the Mass section
    msg = error_of(path)
    assert ("byte 3781532: section 'Mass' at byte 3781532 needs 3780992 bytes "
            "but the file ends at byte 5000000") in msg


def test_truncated_synthetic_file_names_the_section_and_the_end(tmp_path):
    data, offsets = apt_bytes(small_file())
    path = tmp_path / "cut.apt"
    path.write_bytes(data[:-3])
    msg = error_of(path)
    assert f"section 'tof' at byte {offsets[1]} needs {148 + 16} bytes" in msg
    assert f"file ends at byte {len(data) - 3}" in msg


def test_file_ending_inside_a_section_header(tmp_path):
    data, offsets = apt_bytes(small_file())
    path = tmp_path / "cuthead.apt"
    path.write_bytes(data[: offsets[1] + 60])
    msg = error_of(path)
    assert f"byte {offsets[1]}" in msg and "needs 148 bytes" in msg


def test_corrupted_file_signature(tmp_path):
    data, _ = apt_bytes(small_file())
    path = tmp_path / "sig.apt"
    path.write_bytes(b"APX\x00" + data[4:])
    msg = error_of(path)
    assert "byte 0" in msg and "signature" in msg and "APX" in msg


def test_wrong_section_magic(tmp_path):
    secs = small_file()
    secs[1].signature = b"SEX\x00"
    path = tmp_path / "secmagic.apt"
    offsets = write_apt(path, secs)
    msg = error_of(path)
    assert f"byte {offsets[1]}" in msg and "SEC" in msg and "SEX" in msg


def test_empty_file(tmp_path):
    path = tmp_path / "empty.apt"
    path.write_bytes(b"")
    msg = error_of(path)
    assert "byte 0" in msg and "empty" in msg


def test_record_count_different_from_the_ion_count(tmp_path):
    secs = small_file()
    secs[1].record_count = 3
    path = tmp_path / "count.apt"
    offsets = write_apt(path, secs)
    msg = error_of(path)
    assert f"byte {offsets[1] + 132}" in msg
    assert "section 'tof' has 3 records but the file header gives 4 ions" in msg


def test_ion_count_of_zero(tmp_path):
    path = tmp_path / "zero.apt"
    write_apt(path, small_file(), ion_count=0)
    msg = error_of(path)
    assert "byte 532" in msg and "ion count of 0" in msg


@pytest.mark.parametrize("kwargs, where, words", [
    ({"header_size": 512}, "byte 4", "header size is 512"),
    ({"header_version": 3}, "byte 8", "version 3"),
])
def test_unsupported_file_header(tmp_path, kwargs, where, words):
    path = tmp_path / "hdr.apt"
    write_apt(path, small_file(), **kwargs)
    msg = error_of(path)
    assert where in msg and words in msg


def test_header_only_file(tmp_path):
    path = tmp_path / "hdronly.apt"
    write_apt(path, [], ion_count=5)
    msg = error_of(path)
    assert "byte 540" in msg and "no sections" in msg


@pytest.mark.parametrize("override, words", [
    ({"data_type_bits": 16}, "16-bit float"),
    ({"data_type_bits": 12, "data_type": 1}, "12-bit int"),
    ({"record_size": 6}, "record size 6 bytes"),
    ({"data_type": 9}, "unknown record data type 9"),
])
def test_data_types_that_cannot_be_mapped(tmp_path, override, words):
    secs = small_file()
    for k, v in override.items():
        setattr(secs[1], k, v)
    path = tmp_path / "dtype.apt"
    offsets = write_apt(path, secs)
    msg = error_of(path)
    assert words in msg and "'tof'" in msg
    assert any(f"byte {offsets[1] + d}" in msg for d in (88, 96))


def test_duplicate_section_names(tmp_path):
    secs = small_file() + [Section("Mass", np.float32([9, 9, 9, 9]), "Da")]
    path = tmp_path / "dup.apt"
    offsets = write_apt(path, secs)
    msg = error_of(path)
    assert f"byte {offsets[2]}" in msg and "duplicate section 'Mass'" in msg
    assert f"first at byte {offsets[0]}" in msg


def test_trailing_bytes_too_short_for_a_section(tmp_path):
    data, _ = apt_bytes(small_file())
    path = tmp_path / "tail.apt"
    path.write_bytes(data + b"\x00" * 10)
    msg = error_of(path)
    assert f"byte {len(data)}" in msg and "10 trailing bytes" in msg


def test_byte_count_smaller_than_the_records(tmp_path):
    secs = small_file()
    secs[1].values = secs[1].values[:3]  # 12 bytes of data for 4 records
    secs[1].record_count = 4
    path = tmp_path / "bytes.apt"
    offsets = write_apt(path, secs)
    msg = error_of(path)
    assert f"byte {offsets[1] + 140}" in msg
    assert "section 'tof' byte count 12 is less than 4 records x 4 bytes = 16" in msg


def test_byte_count_that_misses_the_next_header(tmp_path):
    secs = small_file()
    secs[0].byte_count = 12  # 16 bytes follow, so the next header is looked for 4 bytes early
    path = tmp_path / "bytes.apt"
    offsets = write_apt(path, secs)
    msg = error_of(path)
    assert f"byte {offsets[0] + 148 + 12}" in msg and "expected a section header" in msg


def test_position_in_another_unit_is_refused(tmp_path):
    path = tmp_path / "unit.apt"
    offsets = write_apt(path, [Section("Position", np.float32([[1, 2, 3]]), "A")])
    msg = error_of(path)
    assert f"byte {offsets[0] + 100}" in msg and "'A'" in msg and "nm" in msg


# -- property: what aptfile.py writes reads back bit for bit -------------------

CATALOGUE = [  # section name, numpy type, values per record, column names
    ("Mass", "<f4", 1, ("mass",)),
    ("Position", "<f4", 3, ("x", "y", "z")),
    ("tofc", "<f4", 1, ("tofc",)),
    ("Multiplicity", "<i4", 1, ("multiplicity",)),
    ("pulseDelta", "<i2", 1, ("pulse_delta",)),
    ("Vap", "<f4", 1, ("Vap",)),
    ("tElapsed", "<f8", 1, ("tElapsed",)),
    ("z", "<i8", 1, ("apt_z",)),
    ("tstage", "<u2", 1, ("tstage",)),
    ("counts", "<u8", 2, ("counts_0", "counts_1")),
    ("flags", "<i1", 1, ("flags",)),
]


@st.composite
def apt_contents(draw):
    n = draw(st.integers(1, 40))
    picks = draw(st.lists(st.sampled_from(CATALOGUE), min_size=1, max_size=len(CATALOGUE),
                          unique_by=lambda c: c[0]))
    out = []
    for name, dtype, k, cols in picks:
        shape = (n,) if k == 1 else (n, k)
        elements = (st.floats(width=8 * np.dtype(dtype).itemsize, allow_nan=False,
                              allow_infinity=False)
                    if dtype[1] == "f" else None)
        values = draw(hnp.arrays(np.dtype(dtype), shape, elements=elements))
        out.append((Section(name, values, "nm" if name == "Position" else ""), cols))
    return out


@given(contents=apt_contents())
def test_written_values_read_back_bit_for_bit(tmp_path_factory, contents):
    path = tmp_path_factory.mktemp("prop") / "p.apt"
    write_apt(path, [s for s, _ in contents])
    run = read_apt(path)
    expected_cols = [c for _, cols in contents for c in cols]
    assert list(run.columns) == expected_cols
    for s, cols in contents:
        v = s.values.reshape(len(s.values), -1)
        for j, c in enumerate(cols):
            assert run[c].dtype == v.dtype
            np.testing.assert_array_equal(bits(run[c]), bits(v[:, j]))
