"""Writing AP Suite 6 ``.apt`` files.

Oracles: the bytes of the real ``Si.apt`` (AP Suite's own file), the
``.epos`` read with plain numpy, the independent readers ifes (installed)
and apav (in ``bench/.envs/apav`` when the benchmarks installed it: apav
needs NumPy below 2), and ``aptfile.py``, the test suite's own writer.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import liprobe
import liprobe.io.nexus
from liprobe.errors import ColumnError, FormatError
from liprobe.io.apt import read_apt, write_apt

from .aptfile import Section, write_apt as write_test_apt
from .test_apt import ifes_values, read_ifes

APAV_PYTHON = Path(__file__).resolve().parents[2] / "bench" / ".envs" / "apav" / "bin" / "python"


def epos_numpy(path):
    """x y z mass tof v_dc v_pulse det_x det_y (float32) and pulse_delta, multiplicity (int32)."""
    raw = np.fromfile(path, dtype=">u4").reshape(-1, 11)
    return raw[:, :9].view(">f4").astype("<f4"), raw[:, 9:].view(">i4").astype("<i4")


def sections_of(path) -> list[tuple]:
    """(name, header size, data type, bits, record size, unit, records, bytes) of each section."""
    data = Path(path).read_bytes()
    out, pos = [], 540
    while pos < len(data):
        sig, hsize, _hver = struct.unpack_from("<4sii", data, pos)
        assert sig == b"SEC\x00"
        name = data[pos + 12:pos + 76].decode("utf-16-le").split("\x00")[0]
        _sver, _rel, _rt, dtype, bits, rsize = struct.unpack_from("<iIIIii", data, pos + 76)
        unit = data[pos + 100:pos + 132].decode("utf-16-le").split("\x00")[0]
        count, nbytes = struct.unpack_from("<QQ", data, pos + 132)
        out.append((name, hsize, dtype, bits, rsize, unit, count, nbytes))
        pos += hsize + nbytes
    assert pos == len(data)
    return out


@pytest.fixture(scope="module")
def si_apt(real):
    return real / "apav_si" / "Si.apt"


@pytest.fixture(scope="module")
def epos_path(real):
    return real / "apav_si" / "Si_first100000.epos"


@pytest.fixture(scope="module")
def epos_apt(epos_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("apt") / "epos.apt"
    liprobe.write(out, liprobe.read(epos_path))
    return out


def test_si_apt_written_again_has_the_same_sections_and_bytes(si_apt, tmp_path):
    out = tmp_path / "again.apt"
    before = dt.datetime.now(dt.UTC)
    liprobe.write(out, liprobe.read(si_apt))
    original, again = si_apt.read_bytes(), out.read_bytes()
    assert sections_of(out) == sections_of(si_apt)
    assert again[540:] == original[540:]           # every section, header and data
    assert again[:12] == original[:12]             # signature, header size and version
    assert struct.unpack_from("<Q", again, 532) == struct.unpack_from("<Q", original, 532)
    assert again[12:524].decode("utf-16-le").split("\x00")[0] == "again.apt"
    ticks = struct.unpack_from("<Q", again, 524)[0]
    written = dt.datetime(1601, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ticks // 10)
    assert before - dt.timedelta(seconds=1) <= written <= dt.datetime.now(dt.UTC)


def test_si_apt_round_trip_in_small_chunks_gives_the_same_file(si_apt, tmp_path):
    write_apt(tmp_path / "a.apt", read_apt(si_apt), chunk_ions=100_003)
    assert (tmp_path / "a.apt").read_bytes()[540:] == si_apt.read_bytes()[540:]


def test_epos_written_as_apt_has_ap_suite_section_names_types_and_units(epos_apt):
    got = [(s[0], s[2], s[3], s[4], s[5]) for s in sections_of(epos_apt)]
    assert got == [
        ("Position", 3, 32, 12, "nm"), ("Mass", 3, 32, 4, "Da"), ("tof", 3, 32, 4, "ns"),
        ("Voltage", 3, 32, 4, "V"), ("Pulse Voltage", 3, 32, 4, "V"),
        ("XDet_mm", 3, 32, 4, "mm"), ("YDet_mm", 3, 32, 4, "mm"),
        ("Detector Coordinates", 3, 32, 8, "mm"), ("pulseDelta", 1, 16, 2, ""),
        ("Multiplicity", 1, 32, 4, "")]
    assert {s[6] for s in sections_of(epos_apt)} == {100_000}
    assert sections_of(epos_apt)[0][1] == 172        # Position carries its bounding box


def test_ifes_reads_every_section_of_the_written_apt(epos_apt, epos_path):
    floats, ints = epos_numpy(epos_path)
    ifes = read_ifes(epos_apt)
    assert list(ifes.available_sections) == [s[0] for s in sections_of(epos_apt)]
    np.testing.assert_array_equal(ifes_values(ifes, "Position"), floats[:, :3])
    for name, j in (("Mass", 3), ("tof", 4), ("Voltage", 5), ("Pulse Voltage", 6),
                    ("XDet_mm", 7), ("YDet_mm", 8)):
        np.testing.assert_array_equal(ifes_values(ifes, name), floats[:, j], err_msg=name)
    np.testing.assert_array_equal(ifes_values(ifes, "pulseDelta"), ints[:, 0])
    np.testing.assert_array_equal(ifes_values(ifes, "Multiplicity"), ints[:, 1])


def test_position_bounding_box_is_the_extent_of_the_positions(epos_apt, epos_path):
    floats, _ = epos_numpy(epos_path)
    data = epos_apt.read_bytes()
    box = struct.unpack_from("<6f", data, 540 + 148)
    extent = [f(floats[:, j]) for j in range(3) for f in (np.min, np.max)]
    np.testing.assert_array_equal(np.float32(box), np.float32(extent))


@pytest.mark.skipif(not APAV_PYTHON.exists(),
                    reason="apav lives in bench/.envs/apav (make bench installs it; it needs "
                           "NumPy below 2)")
def test_apav_reads_the_written_apt(epos_apt, epos_path, tmp_path):
    script = (
        "import json, sys, apav, numpy as n\n"
        "r = apav.Roi.from_apt(sys.argv[1])\n"
        "n.save(sys.argv[2] + '/xyz.npy', r.xyz); n.save(sys.argv[2] + '/mass.npy', r.mass)\n"
        "n.save(sys.argv[2] + '/ipp.npy', r.misc['ipp']); n.save(sys.argv[2] + '/dx.npy', "
        "r.misc['det_x'])\n"
        "print(json.dumps(sorted(r.misc)))\n")
    res = subprocess.run([str(APAV_PYTHON), "-c", script, str(epos_apt), str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == [
        "dc_voltage", "det_x", "det_y", "ipp", "pulseDelta", "pulse_voltage", "tof"]
    floats, ints = epos_numpy(epos_path)
    np.testing.assert_array_equal(np.load(tmp_path / "xyz.npy"), floats[:, :3])
    np.testing.assert_array_equal(np.load(tmp_path / "mass.npy"), floats[:, 3])
    np.testing.assert_array_equal(np.load(tmp_path / "dx.npy"), floats[:, 7])
    np.testing.assert_array_equal(np.load(tmp_path / "ipp.npy"), ints[:, 1])


def test_acquisition_sections_keep_their_names_and_bytes(tmp_path):
    rng = np.random.default_rng(3)
    n = 500
    sections = [
        Section("Mass", rng.uniform(0, 200, n).astype(np.float32), "Da"),
        Section("Position", rng.normal(0, 20, (n, 3)).astype(np.float32), "nm"),
        Section("tofc", rng.uniform(100, 5000, n).astype(np.float32), "ns"),
        Section("Vap", rng.uniform(3000, 6000, n).astype(np.float32), "V"),
        Section("erate", rng.uniform(0, 0.01, n).astype(np.float32), "%/100"),
        Section("tstage", rng.integers(0, 60000, n).astype(np.uint16)),
        Section("z", np.arange(n, dtype=np.int64), "ions"),
    ]
    src = tmp_path / "src.apt"
    write_test_apt(src, sections)
    run = read_apt(src)
    assert "apt_z" in run.columns and "Vap" in run.columns
    liprobe.write(tmp_path / "out.apt", run)
    assert sections_of(tmp_path / "out.apt") == sections_of(src)
    assert (tmp_path / "out.apt").read_bytes()[540:] == src.read_bytes()[540:]


def test_pulse_delta_beyond_16_bits_is_refused_with_the_ion_and_the_way_out(tmp_path):
    # ifes and AP Suite read pulseDelta as int16 whatever its header says: 40 000 would come
    # back as 40 000 - 65 536, so it is refused rather than written
    run = liprobe.Run.from_arrays(mass=np.float32([1.0, 2.0, 3.0]),
                                  pulse_delta=np.int32([0, 40_000, 5]))
    with pytest.raises(FormatError, match=r"pulse_delta of ion 1 \(40000\) does not fit the 16 "
                                          r"bits.*leave pulse_delta out with columns="):
        liprobe.write(tmp_path / "big.apt", run)
    assert os.listdir(tmp_path) == []
    write_apt(tmp_path / "big.apt", run, columns=["mass"])
    assert [s[0] for s in sections_of(tmp_path / "big.apt")] == ["Mass"]
    fits = run.with_columns(pulse_delta=np.int32([0, 32_767, -32_768]))
    write_apt(tmp_path / "fits.apt", fits)
    assert {s[0]: s[3] for s in sections_of(tmp_path / "fits.apt")}["pulseDelta"] == 16
    np.testing.assert_array_equal(ifes_values(read_ifes(tmp_path / "fits.apt"), "pulseDelta"),
                                  [0, 32_767, -32_768])


_N = 50
_RNG = np.random.default_rng(11)
_MASS = Section("Mass", _RNG.uniform(1, 100, _N).astype(np.float32), "Da")
# variants read_apt accepts, with the column each gives; written back, each must give
# the same sections (name, type, size, unit) and bytes, not liprobe's standard ones
VARIANTS = {
    "vref_only": ([_MASS, Section("Vref", _RNG.uniform(1e3, 5e3, _N).astype(np.float32), "V")],
                  "v_dc"),
    "voltage_without_unit": ([_MASS, Section("Voltage", _RNG.uniform(1e3, 5e3, _N)
                                             .astype(np.float32), "")], "v_dc"),
    "epos_tof": ([_MASS, Section("Epos ToF", _RNG.uniform(100, 500, _N).astype(np.float32),
                                 "ns")], "tof"),
    "delta_pulse": ([_MASS, Section("Delta Pulse", _RNG.integers(0, 5, _N).astype("<i2"))],
                    "pulse_delta"),
    "detector_coordinates_only": ([_MASS, Section("Detector Coordinates", _RNG.uniform(
        -20, 20, (_N, 2)).astype(np.float32), "mm")], "det_y"),
    "mass_in_amu": ([Section("Mass", _MASS.values, "amu")], "mass"),
    "unsigned_multiplicity": ([_MASS, Section("Multiplicity", _RNG.integers(0, 3, _N)
                                              .astype("<u4"))], "multiplicity"),
    "float64_mass": ([Section("Mass", _MASS.values.astype(np.float64), "Da")], "mass"),
    "position_without_box": ([_MASS, Section("Position", _RNG.uniform(-5, 5, (_N, 3))
                                             .astype(np.float32), "nm", bbox=None)], "x"),
    "unregistered_section": ([_MASS, Section("MyCounter", np.arange(_N, dtype="<u8"), "ions"),
                              Section("Pair", _RNG.uniform(0, 1, (_N, 2)).astype("<f8"), "s")],
                             "Pair_1"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_apt_variants_are_written_back_with_their_own_sections(variant, tmp_path):
    sections, column = VARIANTS[variant]
    src, out = tmp_path / "src.apt", tmp_path / "out.apt"
    write_test_apt(src, sections)
    run = read_apt(src)
    assert column in run.columns
    liprobe.write(out, run)
    assert sections_of(out) == sections_of(src)
    assert out.read_bytes()[540:] == src.read_bytes()[540:]
    # and some ions of some columns: the sections left are as they were
    (info,) = [i for i in run.meta["sections"] if column in i["columns"]]
    write_apt(tmp_path / "part.apt", run.select(slice(0, 20)), columns=list(info["columns"]))
    (got,) = sections_of(tmp_path / "part.apt")
    (want,) = [s for s in sections_of(src) if s[0] == info["name"]]
    assert got[:6] == want[:6] and got[6] == 20


def test_added_columns_follow_the_table_after_the_source_sections(tmp_path):
    src = tmp_path / "src.apt"
    write_test_apt(src, VARIANTS["vref_only"][0])
    run = read_apt(src).with_columns(multiplicity=np.ones(_N, dtype=np.int32))
    liprobe.write(tmp_path / "out.apt", run)
    assert [(s[0], s[2], s[3], s[5]) for s in sections_of(tmp_path / "out.apt")] == [
        ("Mass", 3, 32, "Da"), ("Vref", 3, 32, "V"), ("Multiplicity", 1, 32, "")]


def test_float64_columns_are_written_as_float32(tmp_path):
    run = liprobe.Run.from_arrays(x=[0.1, 0.2], y=[0.0, 1.0], z=[-1.0, -2.0], mass=[7.016, 16.0])
    liprobe.write(tmp_path / "f.apt", run)
    back = liprobe.read(tmp_path / "f.apt")
    assert back["mass"].dtype == np.float32
    assert back["mass"].tolist() == np.float32([7.016, 16.0]).tolist()


def test_a_column_without_an_ap_suite_name_is_refused_unless_left_out(tmp_path):
    run = liprobe.Run.from_arrays(mass=[1.0, 2.0], ion_type=[3, 4])
    with pytest.raises(FormatError, match="no AP Suite section name for column.*'ion_type'"):
        liprobe.write(tmp_path / "u.apt", run)
    assert os.listdir(tmp_path) == []
    write_apt(tmp_path / "u.apt", run, columns=["mass"])
    assert [s[0] for s in sections_of(tmp_path / "u.apt")] == ["Mass"]
    with pytest.raises(ColumnError, match="'tof'"):
        write_apt(tmp_path / "v.apt", run, columns=["tof"])


def test_values_that_do_not_fit_their_section_are_refused_with_the_ion(tmp_path):
    run = liprobe.Run.from_arrays(mass=[1.0, 2.0, 3.0], tstage=np.int32([1, -4, 2]))
    with pytest.raises(FormatError, match=r"tstage of ion 1 \(-4\) does not fit the uint16"):
        liprobe.write(tmp_path / "t.apt", run)
    run = liprobe.Run.from_arrays(mass=[1.0], multiplicity=[1.5])
    with pytest.raises(FormatError, match="must hold integers"):
        liprobe.write(tmp_path / "m.apt", run)
    with pytest.raises(FormatError, match="without y, z"):
        liprobe.write(tmp_path / "p.apt", liprobe.Run.from_arrays(mass=[1.0], x=[1.0]))
    with pytest.raises(FormatError, match="0 ions"):
        liprobe.write(tmp_path / "e.apt", liprobe.Run.from_arrays(mass=np.zeros(0)))
    assert os.listdir(tmp_path) == []


def test_two_columns_for_one_section_are_refused(tmp_path):
    run = liprobe.Run.from_arrays(mass=[1.0], Mass=[2.0])
    with pytest.raises(FormatError, match="'mass' and 'Mass' would both be written"):
        liprobe.write(tmp_path / "d.apt", run)


def test_export_columns_chooses_what_goes_into_the_apt(tmp_path):
    from click.testing import CliRunner

    from liprobe.cli import cli

    run = liprobe.Run.from_arrays(mass=np.float32([1.0, 2.0, 3.0]),
                                  pulse_delta=np.int32([0, 40_000, 5]))
    src = tmp_path / "src.nxs"
    liprobe.io.nexus.write_nexus(src, run)
    out = tmp_path / "out.apt"
    res = CliRunner().invoke(cli, ["export", str(src), "-o", str(out)])
    assert res.exit_code == 1 and res.stderr.count("\n") == 1
    assert "leave pulse_delta out" in res.stderr and not out.exists()
    res = CliRunner().invoke(cli, ["export", str(src), "-o", str(out), "--columns", "Mass",
                                   "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["columns"] == ["Mass"]
    assert [s[0] for s in sections_of(out)] == ["Mass"]
    np.testing.assert_array_equal(ifes_values(read_ifes(out), "Mass"), [1.0, 2.0, 3.0])
    res = CliRunner().invoke(cli, ["export", str(src), "-o", str(tmp_path / "o.pos"),
                                   "--columns", "mass"])
    assert res.exit_code == 2 and ".apt file only" in res.output
