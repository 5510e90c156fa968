"""NeXus NXapm files: written by liprobe, checked with h5py and pynxtools, read back.

Oracles: the ``.epos`` read with plain numpy, the windows of the range file
applied by hand (``np.searchsorted``), element numbers from periodictable,
HDF5 read with h5py directly, and pynxtools' validation against the NXapm
application definition (the NeXus definitions ship with pynxtools: no
network).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tracemalloc

import h5py
import numpy as np
import periodictable
import pytest
from click.testing import CliRunner

import liprobe
from liprobe.cli import cli
from liprobe.errors import FormatError
from liprobe.io.nexus import ENTRY, read_nexus, read_nexus_ranges, write_nexus

from .test_apt_write import epos_numpy

#: What pynxtools 0.16 reports although the file has it: NXapm declares ``@units``
#: required on the axes of ``naive_discretization``, fields without a unit
#: category, and the validator skips ``units`` attributes of such fields, so it
#: never sees them. Each test that allows these checks with h5py that they exist.
VALIDATOR_FALSE_POSITIVES = {
    (f"/{ENTRY}/atom_probe/reconstruction/naive_discretization/data/axis_{a}/@units",
     "MissingRequiredAttribute") for a in "xyz"}

FULL_METADATA = {
    "start_time": "2023-05-04T10:00:00+02:00", "end_time": "2023-05-04T12:30:00+02:00",
    "is_simulation": "false", "run": "si-1", "material": "Si", "instrument": "LEAP 5000 XS",
    "mode": "laser (UV)", "laser_pj": 5, "pulse_frequency_kHz": 200,
    "pulse_fraction_pct": 20, "temperature_K": 60, "pressure_Pa": 1e-9,
    "detection_rate_pct": 0.5, "flight_path_mm": 100,
    "mass_to_charge_program": "IVAS 3.8", "voltage_and_bowl_program": "IVAS 3.8",
    "reconstruction_program": "IVAS 3.8"}


def validation_problems(path) -> set[tuple[str, str]]:
    """(path, problem) of every problem pynxtools' NXapm validation reports."""
    from pynxtools.dataconverter.helpers import collector
    from pynxtools.dataconverter.validation import validate_hdf_group_against

    logging.disable(logging.WARNING)
    try:
        collector.clear()
        with h5py.File(path, "r") as f:
            validate_hdf_group_against("NXapm", f[ENTRY], str(path), False)
        found = set(collector.get())
    finally:
        logging.disable(logging.NOTSET)
    from pynxtools.dataconverter.helpers import ValidationProblem

    kinds = sorted((k.name for k in ValidationProblem), key=len, reverse=True)
    out = set()
    for text in found:
        m = re.match(r"(\S+?)ValidationProblem\.(.*)", text, re.DOTALL)
        assert m, text
        kind = next(k for k in kinds if m.group(2).startswith(k))
        out.add((m.group(1), kind))
    return out


@pytest.fixture(scope="module")
def epos_path(real):
    return real / "apav_si" / "Si_first100000.epos"


@pytest.fixture(scope="module")
def si_ranges(real):
    return liprobe.read_ranges(real / "apav_si" / "Si.RRNG")


@pytest.fixture(scope="module")
def exported(epos_path, si_ranges, tmp_path_factory):
    path = tmp_path_factory.mktemp("nxs") / "run.nxs"
    report = write_nexus(path, liprobe.read(epos_path), si_ranges)
    return path, report


def test_every_column_is_where_nxapm_puts_it(exported, epos_path):
    path, report = exported
    floats, ints = epos_numpy(epos_path)
    with h5py.File(path, "r") as f:
        e = f[ENTRY]
        assert e["definition"][()] == b"NXapm" and e["operation_mode"][()] == b"apt"
        ap = e["atom_probe"]
        pos = ap["reconstruction/reconstructed_positions"]
        np.testing.assert_array_equal(pos[()], floats[:, :3])
        assert pos.attrs["units"] == "nm"
        # not reconstructed by liprobe: how the axes lie is not known, so no frame
        assert "depends_on" not in pos.attrs and "reconstruction_reference_frame" not in e
        np.testing.assert_array_equal(ap["mass_to_charge_conversion/mass_to_charge"][()],
                                      floats[:, 3])
        np.testing.assert_array_equal(ap["voltage_and_bowl/raw_tof"][()], floats[:, 4])
        np.testing.assert_array_equal(ap["hit_finding/hit_positions"][()], floats[:, 7:9])
        np.testing.assert_array_equal(ap["hit_finding/hit_multiplicity"][()], ints[:, 1])
        pulser = e["measurement/event1/instrument/pulser"]
        np.testing.assert_array_equal(pulser["standing_voltage"][()], floats[:, 5])
        np.testing.assert_array_equal(pulser["pulse_voltage"][()], floats[:, 6])
        np.testing.assert_array_equal(pulser["pulse_number"][()],
                                      np.cumsum(ints[:, 0].astype(np.int64)))
        prog = e["profiling/program1/program"]
        assert prog[()] == b"liprobe" and prog.attrs["version"] == liprobe.__version__
        # naive_discretization: every ion counted once, axes in nm
        data = ap["reconstruction/naive_discretization/data"]
        assert int(data["intensity"][()].sum()) == 100_000
        for a in "xyz":
            assert data[f"axis_{a}"].attrs["units"] == "nm"
    assert report.ions == 100_000 and report.windows == 25 and report.ion_types == 13


def test_ranging_definitions_and_ion_types(exported, epos_path, si_ranges):
    path, _ = exported
    floats, _ = epos_numpy(epos_path)
    mass = floats[:, 3].astype(np.float64)
    with h5py.File(path, "r") as f:
        pid = f[f"{ENTRY}/atom_probe/ranging/peak_identification"]
        assert pid["number_of_ion_types"][()] == 13
        assert pid["maximum_number_of_atoms_per_molecular_ion"][()] == 3      # CrO2, Cr2O
        groups = {pid[k]["name"][()].decode(): pid[k] for k in pid if k[3:].isdigit()}
        cro2 = groups["CrO2+"]
        z = {el: periodictable.elements.symbol(el).number for el in ("Cr", "O")}
        assert cro2["nuclide_hash"][()].tolist() == [z["Cr"] + 65280, z["O"] + 65280,
                                                      z["O"] + 65280]
        assert cro2["nuclide_list"][()][:, 1].tolist() == [z["Cr"], z["O"], z["O"]]
        assert cro2["charge_state"][()] == 1 and groups["Si++"]["charge_state"][()] == 2
        windows = {n: g["mass_to_charge_range"][()].tolist() for n, g in groups.items()}
        assert sum(len(w) for w in windows.values()) == 25
        types = pid["iontypes"][()]
        order = {pid[k]["name"][()].decode(): int(k[3:]) for k in pid if k[3:].isdigit()}
    # the same assignment by hand: windows sorted, [lo, hi)
    lo = np.array([r.lo for r in si_ranges])
    hi = np.array([r.hi for r in si_ranges])
    j = np.searchsorted(lo, mass, side="right") - 1
    inside = (j >= 0) & (mass < hi[np.clip(j, 0, None)])
    expected = np.zeros(len(mass), dtype=np.int64)
    expected[inside] = [order[si_ranges.ranges[k].ion.name] for k in j[inside]]
    np.testing.assert_array_equal(types, expected)
    for r in si_ranges:
        assert [r.lo, r.hi] in windows[r.ion.name]


def problem_kind(path: str) -> str:
    last = path.rsplit("/", 1)[1]
    if last.startswith("@"):
        return "MissingRequiredAttribute"
    if last in ("programID", "config", "stage", "analysis_chamber", "NAMED_reference_frameID"):
        return "MissingRequiredGroup"
    return "MissingRequiredField"


def test_validation_names_exactly_the_missing_fields(exported):
    path, report = exported
    problems = validation_problems(path)
    assert problems - VALIDATOR_FALSE_POSITIVES == {(m.path, problem_kind(m.path))
                                                    for m in report.missing}
    assert [m.path.split("/", 2)[2] for m in report.missing] == [
        "start_time", "specimen/is_simulation", "NAMED_reference_frameID",
        "atom_probe/hit_finding/hit_positions/@depends_on",
        "measurement/event1/instrument/pulser/pulse_mode",
        "measurement/event1/instrument/pulser/pulse_frequency",
        "measurement/event1/instrument/pulser/pulse_fraction",
        "measurement/event1/instrument/stage",
        "measurement/event1/instrument/analysis_chamber",
        "atom_probe/voltage_and_bowl/programID", "atom_probe/voltage_and_bowl/config",
        "atom_probe/mass_to_charge_conversion/programID",
        "atom_probe/reconstruction/programID"]
    with h5py.File(path, "r") as f:       # not written at all: no placeholder
        for m in report.missing:
            where = m.path.replace("programID", "program1")
            assert where not in f, where
        for a in "xyz":
            assert "units" in f[f"{ENTRY}/atom_probe/reconstruction/naive_discretization/"
                                f"data/axis_{a}"].attrs


def test_metadata_fill_the_fields_and_leave_only_what_nothing_gives(epos_path, si_ranges,
                                                                     tmp_path):
    path = tmp_path / "full.nxs"
    report = write_nexus(path, liprobe.read(epos_path), si_ranges, metadata=FULL_METADATA)
    assert [(m.path.split("/", 2)[2]) for m in report.missing] == [
        "NAMED_reference_frameID", "atom_probe/hit_finding/hit_positions/@depends_on",
        "measurement/event1/instrument/pulser/source1/power",
        "atom_probe/voltage_and_bowl/config"]
    assert validation_problems(path) - VALIDATOR_FALSE_POSITIVES == {
        (m.path, problem_kind(m.path)) for m in report.missing}
    with h5py.File(path, "r") as f:
        e = f[ENTRY]
        assert e["start_time"][()] == b"2023-05-04T10:00:00+02:00"
        assert bool(e["specimen/is_simulation"][()]) is False
        assert e["specimen/atom_types"][()] == b"C, Si, O, Cr, Cu"     # by first window
        assert e["measurement/instrument/type"][()] == b"LEAP 5000 XS"
        assert e["measurement/instrument/fabrication/vendor"][()] == b"CAMECA"
        ei = e["measurement/event1/instrument"]
        assert ei["pulser/pulse_mode"][()] == b"laser"
        assert ei["pulser/pulse_frequency"][()] == 200.0
        assert ei["pulser/pulse_frequency"].attrs["units"] == "kHz"
        assert ei["pulser/pulse_fraction"][()] == pytest.approx(0.2)
        assert ei["pulser/source1/pulse_energy"][()] == 5.0
        assert ei["stage/temperature_sensor/value"][()] == 60.0
        assert ei["control/target_detection_rate"][()] == 0.5
        prog = e["atom_probe/reconstruction/program1/program"]
        assert prog[()] == b"IVAS" and prog.attrs["version"] == "3.8"
    assert report.metadata["temperature_K"].startswith("stage/temperature_sensor")


def test_run_and_ranges_come_back_the_same(exported, epos_path, si_ranges):
    path, _ = exported
    run = liprobe.read(epos_path)
    back = liprobe.read(path)
    assert back.format == "nxs" and liprobe.detect_format(path) == "nxs"
    assert back.columns == run.columns
    for c in run.columns:
        assert back[c].dtype == run[c].dtype, c
        np.testing.assert_array_equal(back[c], run[c], err_msg=c)
    table = liprobe.read_ranges(path)
    assert [(r.lo, r.hi, r.ion, r.volume, r.color) for r in table] == \
        [(r.lo, r.hi, r.ion, r.volume, r.color) for r in si_ranges]
    assert table.warnings == si_ranges.warnings


def test_columns_read_back_are_memory_maps_of_the_file(exported):
    path, _ = exported
    run = read_nexus(path)
    for c in ("x", "mass", "det_x", "tof", "v_dc", "multiplicity"):
        src = run.source(c)
        assert isinstance(src, np.memmap) or isinstance(src.base, np.memmap), c
    assert run.meta["fields"]["z"] == f"/{ENTRY}/atom_probe/reconstruction/reconstructed_positions"
    first, stride = run.meta["layout"]["z"]
    raw = np.fromfile(path, dtype="<f4", count=1, offset=first + 7 * stride)
    assert raw[0] == run["z"][7]


def test_apt_runs_float64_and_other_columns_round_trip(real, tmp_path):
    si = liprobe.read(real / "apav_si" / "Si.apt")
    write_nexus(tmp_path / "si.nxs", si)
    back = liprobe.read(tmp_path / "si.nxs")
    assert back.columns == si.columns
    for c in si.columns:
        np.testing.assert_array_equal(back[c], si[c], err_msg=c)
    with h5py.File(tmp_path / "si.nxs", "r") as f:
        np.testing.assert_array_equal(f[f"{ENTRY}/atom_probe/voltage_and_bowl/calibrated_tof"],
                                      si["tofc"])
        note = f[f"{ENTRY}/atom_probe/mass_to_charge_conversion/source"]
        assert note["date"][()] == b"2021-03-23T20:31:26.058000+00:00"
        assert note["checksum"][()].decode() == __import__("hashlib").sha256(
            (real / "apav_si" / "Si.apt").read_bytes()).hexdigest()
    run = liprobe.Run.from_arrays(mass=[1.5, 2.25], x=[0.1, 0.2], Vap=np.float32([4e3, 5e3]),
                                  multiplicity=np.int64([1, -1]))
    write_nexus(tmp_path / "odd.nxs", run)
    back = liprobe.read(tmp_path / "odd.nxs")
    for c in run.columns:
        assert back[c].dtype == run[c].dtype and back[c].tolist() == run[c].tolist(), c
    with h5py.File(tmp_path / "odd.nxs", "r") as f:
        assert f[f"{ENTRY}/liprobe/columns/x"][()].tolist() == [0.1, 0.2]   # no y, z
        assert f[f"{ENTRY}/liprobe/columns/multiplicity"][()].tolist() == [1, -1]
        assert f[f"{ENTRY}/liprobe"].attrs["NX_class"] == "NXcollection"


def test_liprobe_reconstruction_is_written_with_its_parameters(epos_path, tmp_path):
    from liprobe.spatial.reconstruct import ReconstructionParameters, reconstruct_run

    params = ReconstructionParameters.preset(material="NMC811", radius="shank",
                                             shank_angle_deg=10.0, initial_radius_nm=20.0)
    rec, _ = reconstruct_run(liprobe.read(epos_path), params)
    report = write_nexus(tmp_path / "rec.nxs", rec)
    assert f"/{ENTRY}/atom_probe/reconstruction/programID" not in [m.path
                                                                   for m in report.missing]
    with h5py.File(tmp_path / "rec.nxs", "r") as f:
        r = f[f"{ENTRY}/atom_probe/reconstruction"]
        assert r["program1/program"][()] == b"liprobe"
        cfg = r["config"]
        assert cfg["flight_path"][()] == params.flight_path_mm
        assert cfg["flight_path"].attrs["units"] == "mm"
        assert cfg["efficiency"][()] == params.efficiency
        assert cfg["kfactor"][()] == params.k_factor
        assert cfg["image_compression"][()] == params.icf
        assert cfg["shank_angle"][()] == 10.0
        assert cfg["protocol_name"][()] == params.protocol.encode()
        np.testing.assert_array_equal(r["reconstructed_positions"][:, 2], rec["z"])
    assert read_nexus(tmp_path / "rec.nxs").meta["reconstruction"]["parameters"][
        "flight_path_mm"] == params.flight_path_mm
    problems = validation_problems(tmp_path / "rec.nxs") - VALIDATOR_FALSE_POSITIVES
    assert {p for p, _ in problems} == {m.path for m in report.missing}


def test_writing_in_small_chunks_gives_the_same_data_in_bounded_memory(real, tmp_path):
    run = liprobe.read(real / "apav_si" / "Si.pos")       # 945,211 ions, 15 MB
    small = tmp_path / "small.nxs"
    tracemalloc.start()
    try:
        write_nexus(small, run, chunk_ions=1 << 15)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    write_nexus(tmp_path / "big.nxs", run)
    with h5py.File(small, "r") as a, h5py.File(tmp_path / "big.nxs", "r") as b:
        for rel in ("atom_probe/reconstruction/reconstructed_positions",
                    "atom_probe/mass_to_charge_conversion/mass_to_charge",
                    "atom_probe/reconstruction/naive_discretization/data/intensity"):
            np.testing.assert_array_equal(a[f"{ENTRY}/{rel}"][()], b[f"{ENTRY}/{rel}"][()])
    assert peak < 6_000_000, peak      # the positions alone are 11 MB; the grid ~1.4 MB


def test_a_liprobe_simulation_is_marked_from_its_truth_file(tmp_path):
    from liprobe.io.nexus import simulation_metadata

    run = liprobe.Run.from_arrays(mass=[7.0, 16.0], x=[0.0, 1.0], y=[0.0, 0.0], z=[-1.0, -2.0])
    liprobe.write(tmp_path / "sim.pos", run)
    assert simulation_metadata(tmp_path / "sim.pos") == {}
    (tmp_path / "sim.truth.json").write_text(json.dumps({"liprobe_version": "0.2.0"}))
    assert simulation_metadata(tmp_path / "sim.pos") == {
        "is_simulation": True, "mass_to_charge_program": "liprobe 0.2.0",
        "reconstruction_program": "liprobe 0.2.0"}
    out = tmp_path / "sim.nxs"
    code = CliRunner().invoke(cli, ["export", str(tmp_path / "sim.pos"), "-o", str(out),
                                    "--tag", "start_time=2024-01-01T00:00:00+00:00", "--json"])
    assert code.exit_code == 0, code.output
    d = json.loads(code.stdout)
    assert [m["path"] for m in d["missing"]] == [f"/{ENTRY}/specimen/atom_types"]
    with h5py.File(out, "r") as f:
        assert bool(f[f"{ENTRY}/specimen/is_simulation"][()]) is True


def test_export_command(epos_path, real, tmp_path):
    runner = CliRunner()
    out = tmp_path / "e.nxs"
    res = runner.invoke(cli, ["export", str(epos_path), "-r",
                              str(real / "apav_si" / "Si.RRNG"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "13 ion types in 25 windows" in res.stdout
    assert "missing (13 fields" in res.stdout
    assert "/entry1/start_time: the ion and range files hold no start time" in res.stdout
    res = runner.invoke(cli, ["export", str(epos_path), "-o", str(tmp_path / "e.apt"),
                              "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["ions"] == 100_000
    assert liprobe.read(tmp_path / "e.apt").n_ions == 100_000
    res = runner.invoke(cli, ["export", str(epos_path), "-r", "x.rrng", "-o",
                              str(tmp_path / "x.apt")])
    assert res.exit_code == 2 and "NeXus files only" in res.output
    res = runner.invoke(cli, ["export", str(epos_path), "-o", str(tmp_path / "t.nxs"),
                              "--tag", "start_time=2024-01-01T10:00"])
    assert res.exit_code == 1 and "has no time zone" in res.stderr
    assert not (tmp_path / "t.nxs").exists()
    assert sorted(os.listdir(tmp_path)) == ["e.apt", "e.nxs"]


def test_bad_files_and_metadata_are_named(tmp_path):
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(FormatError, match="without an NXapm entry"):
        liprobe.read(tmp_path / "plain.h5")
    run = liprobe.Run.from_arrays(mass=[1.0])
    with pytest.raises(FormatError, match="temperature_K 'cold' is not a number"):
        write_nexus(tmp_path / "a.nxs", run, metadata={"temperature_K": "cold"})
    with pytest.raises(FormatError, match="should be a program's name and version"):
        write_nexus(tmp_path / "a.nxs", run, metadata={"mass_to_charge_program": "IVAS"})
    with pytest.raises(FormatError, match="without ions"):
        write_nexus(tmp_path / "a.nxs", liprobe.Run.from_arrays(mass=np.zeros(0)))
    assert sorted(os.listdir(tmp_path)) == ["plain.h5"]
    write_nexus(tmp_path / "norange.nxs", run)
    with pytest.raises(FormatError, match="no ranging definitions"):
        read_nexus_ranges(tmp_path / "norange.nxs")


# -- files from elsewhere, broken or foreign: one FormatError naming the field -----------

def _nxapm(path, fill):
    with h5py.File(path, "w") as f:
        e = f.create_group(ENTRY)
        e["definition"] = "NXapm"
        fill(e)
    return path


_POS = "atom_probe/reconstruction/reconstructed_positions"
_MTC = "atom_probe/mass_to_charge_conversion/mass_to_charge"
_ION = "atom_probe/ranging/peak_identification/ion1"


def _ranged(e, hashes=(65280 + 14,), windows=((27.5, 28.5),)):
    e[_MTC] = np.float32([1.0, 2.0, 3.0])
    e[f"{_ION}/nuclide_hash"] = np.array(hashes, dtype=np.uint16)
    e[f"{_ION}/charge_state"] = np.int8(1)
    if windows is not None:
        e[f"{_ION}/mass_to_charge_range"] = np.array(windows, dtype=np.float64)


BAD_RUNS = {
    "positions_n_by_2": (lambda e: e.create_dataset(_POS, data=np.zeros((5, 2), "f4")),
                         rf"/{ENTRY}/{_POS} has shape \(5, 2\), not \(n, 3\)"),
    "positions_1d": (lambda e: e.create_dataset(_POS, data=np.zeros(5, "f4")),
                     rf"/{ENTRY}/{_POS} has shape \(5,\), not \(n, 3\)"),
    "mass_2d": (lambda e: e.create_dataset(_MTC, data=np.zeros((5, 2), "f4")),
                rf"/{ENTRY}/{_MTC} has shape \(5, 2\): column 'mass' needs one value per ion"),
    "lengths_differ": (lambda e: (e.create_dataset(_POS, data=np.zeros((5, 3), "f4")),
                                  e.create_dataset(_MTC, data=np.zeros(7, "f4"))),
                       rf"/{ENTRY}/{_MTC} holds 7 ions but /{ENTRY}/{_POS} holds 5"),
    "mass_as_text": (lambda e: e.create_dataset(_MTC, data=np.array([b"a", b"b"])),
                     rf"/{ENTRY}/{_MTC} holds \|S1 values, not numbers"),
    "column_map_not_json": (lambda e: (e.create_dataset(_MTC, data=np.zeros(3, "f4")),
                                       e.create_dataset("liprobe/column_map", data="{not json")),
                            rf"/{ENTRY}/liprobe/column_map is not JSON text"),
    "column_map_not_columns": (lambda e: (e.create_dataset(_MTC, data=np.zeros(3, "f4")),
                                          e.create_dataset("liprobe/column_map",
                                                           data='[{"name": 3}]')),
                               rf"/{ENTRY}/liprobe/column_map: .* is not a column"),
}


@pytest.mark.parametrize("case", sorted(BAD_RUNS))
def test_a_bad_or_foreign_run_is_one_line_naming_the_field(case, tmp_path):
    fill, message = BAD_RUNS[case]
    path = _nxapm(tmp_path / f"{case}.nxs", fill)
    with pytest.raises(FormatError, match=message) as e:
        liprobe.read(path)
    assert str(e.value).startswith(str(path))
    res = CliRunner().invoke(cli, ["info", str(path)])
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and re.search(message, res.stderr), res.stderr


BAD_RANGES = {
    "no_windows": (lambda e: _ranged(e, windows=None),
                   rf"/{ENTRY}/{_ION} has no mass_to_charge_range"),
    "no_such_element": (lambda e: _ranged(e, hashes=(65280 + 200,)),
                        rf"/{ENTRY}/{_ION}/nuclide_hash 65480 names proton number 200, which is "
                        "no element"),
    "odd_windows": (lambda e: _ranged(e, windows=(27.5, 28.5, 29.0)),
                    rf"/{ENTRY}/{_ION}/mass_to_charge_range has shape \(3,\)"),
    "window_upside_down": (lambda e: _ranged(e, windows=((28.5, 27.5),)),
                           r"\[28.5, 27.5\] is not a window"),
    "ranges_not_json": (lambda e: (_ranged(e), e.create_dataset("liprobe/ranges", data="[")),
                        rf"/{ENTRY}/liprobe/ranges is not JSON text"),
}


@pytest.mark.parametrize("case", sorted(BAD_RANGES))
def test_bad_ranging_definitions_are_one_line_naming_the_group(case, tmp_path):
    fill, message = BAD_RANGES[case]
    path = _nxapm(tmp_path / f"{case}.nxs", fill)
    with pytest.raises(FormatError, match=message):
        liprobe.read_ranges(path)


def test_foreign_ranging_by_nuclide_hash_alone(tmp_path):
    # Si-28 written isotope-specifically (Z 14 + N 14 * 256): the element is Si
    path = _nxapm(tmp_path / "iso.nxs", lambda e: _ranged(e, hashes=(14 + 14 * 256,)))
    (r,) = liprobe.read_ranges(path)
    assert (r.lo, r.hi, r.ion.name) == (27.5, 28.5, "Si+")


# -- pulse numbers ------------------------------------------------------------------------

def test_absolute_pulse_numbers_of_another_program_beyond_2_31_are_kept(tmp_path):
    numbers = np.array([3_000_000_000, 3_000_000_002, 3_000_000_009], dtype=np.uint64)

    def fill(e):
        e[_MTC] = np.float32([1.0, 2.0, 3.0])
        e["measurement/event1/instrument/pulser/pulse_number"] = numbers

    run = liprobe.read(_nxapm(tmp_path / "abs.nxs", fill))
    assert run["pulse_delta"].dtype == np.int64           # 3e9 does not fit int32
    assert run["pulse_delta"].tolist() == [3_000_000_000, 2, 7]
    assert np.cumsum(run["pulse_delta"]).tolist() == numbers.tolist()


def test_pulse_deltas_that_do_not_fit_the_column_are_refused(tmp_path):
    run = liprobe.Run.from_arrays(mass=np.float32([1, 2, 3]),
                                  pulse_delta=np.int32([5, 2, 7]))
    path = tmp_path / "pd.nxs"
    write_nexus(path, run)
    assert liprobe.read(path)["pulse_delta"].tolist() == [5, 2, 7]
    with h5py.File(path, "a") as f:
        ds = f[f"{ENTRY}/measurement/event1/instrument/pulser/pulse_number"]
        ds[2] = int(ds[1]) + 2**31                      # a difference beyond int32
    with pytest.raises(FormatError, match=r"pulse_number: pulse_delta of ion 2 \(2147483648\) "
                                          r"does not fit the column's int32"):
        liprobe.read(path)


# -- nothing from a guess ---------------------------------------------------------------

def test_frames_and_operation_mode_only_from_the_data(tmp_path):
    run = liprobe.Run.from_arrays(x=[0.0, 1.0], y=[0.0, 1.0], z=[-1.0, -2.0],
                                  det_x=[1.0, 2.0], det_y=[0.5, 0.5])
    path = tmp_path / "nomass.nxs"
    report = write_nexus(path, run)
    paths = [m.path for m in report.missing]
    assert f"/{ENTRY}/operation_mode" in paths and f"/{ENTRY}/NAMED_reference_frameID" in paths
    with h5py.File(path, "r") as f:
        assert "operation_mode" not in f[ENTRY]
        assert not any(f[f"{ENTRY}/{k}"].attrs.get("NX_class") == "NXcoordinate_system"
                       for k in f[ENTRY])
    problems = validation_problems(path) - VALIDATOR_FALSE_POSITIVES
    assert problems == {(m.path, problem_kind(m.path)) for m in report.missing}
    # the metadata say liprobe computed the positions: its own frames, described
    path = tmp_path / "bylp.nxs"
    report = write_nexus(path, run.with_columns(mass=[1.0, 2.0]),
                         metadata={"reconstruction_program": "liprobe 0.2.0"})
    assert not {f"/{ENTRY}/NAMED_reference_frameID",
                f"/{ENTRY}/atom_probe/hit_finding/hit_positions/@depends_on"} & {
        m.path for m in report.missing}
    with h5py.File(path, "r") as f:
        e = f[ENTRY]
        assert e["operation_mode"][()] == b"apt"
        frame = e["reconstruction_reference_frame"]
        assert frame["z_direction"][()].decode().startswith("along the specimen axis")
        np.testing.assert_array_equal(frame["z"][()], [0.0, 0.0, 1.0])
        assert e["atom_probe/hit_finding/hit_positions"].attrs["depends_on"] == \
            f"/{ENTRY}/detector_reference_frame"


def test_more_ion_types_than_nxapm_allows_are_noted(tmp_path):
    from liprobe.chemistry import Ion

    ions = [Ion((("H", k),), 1) for k in range(1, 258)]        # 257 ion types
    table = liprobe.RangeTable.from_ranges(
        [liprobe.Range(k + 0.1, k + 0.2, ion) for k, ion in enumerate(ions, 1)])
    run = liprobe.Run.from_arrays(mass=[1.15, 257.15])
    with pytest.warns(UserWarning, match="257 ion types: NXapm allows at most 256"):
        report = write_nexus(tmp_path / "many.nxs", run, table)
    assert report.ion_types == 257 and len(report.notes) == 1
    with h5py.File(tmp_path / "many.nxs", "r") as f:
        types = f[f"{ENTRY}/atom_probe/ranging/peak_identification/iontypes"][()]
    assert types.tolist() == [1, 257]


def test_each_input_file_is_hashed_once(epos_path, real, tmp_path, monkeypatch):
    import liprobe.io.nexus as nexus

    hashed = []
    real_sha = nexus._sha256
    monkeypatch.setattr(nexus, "_sha256", lambda p: hashed.append(p) or real_sha(p))
    write_nexus(tmp_path / "h.nxs", liprobe.read(epos_path),
                liprobe.read_ranges(real / "apav_si" / "Si.RRNG"))
    assert sorted(os.path.basename(p) for p in hashed) == ["Si.RRNG", "Si_first100000.epos"]
    with h5py.File(tmp_path / "h.nxs", "r") as f:       # both notes name the run's file
        ap = f[f"{ENTRY}/atom_probe"]
        sums = {ap[f"{g}/source/checksum"][()] for g in ("mass_to_charge_conversion",
                                                         "reconstruction")}
    import hashlib
    assert sums == {hashlib.sha256(epos_path.read_bytes()).hexdigest().encode()}


def test_liprobe_write_of_a_nxs_warns_of_the_missing_fields_and_returns_the_report(tmp_path):
    run = liprobe.Run.from_arrays(mass=[7.0, 16.0])
    with pytest.warns(UserWarning, match=r"x\.nxs: \d+ field\(s\) NXapm requires .*start_time"):
        report = liprobe.write(tmp_path / "x.nxs", run)
    assert f"/{ENTRY}/start_time" in [m.path for m in report.missing]
    assert liprobe.write(tmp_path / "x.pos", liprobe.Run.from_arrays(
        x=[0.0], y=[0.0], z=[0.0], mass=[1.0])) is None


@pytest.mark.parametrize("ext", ["nxs", "apt", "pos", "rrng"])
def test_an_output_that_is_a_folder_is_named_before_anything_is_written(ext, tmp_path):
    out = tmp_path / f"out.{ext}"
    out.mkdir()
    run = liprobe.Run.from_arrays(x=[0.0], y=[0.0], z=[0.0], mass=[7.0])
    with pytest.raises(FormatError, match=rf"out\.{ext}: is a folder") as e:
        if ext == "rrng":
            liprobe.write_ranges(out, liprobe.RangeTable.from_ranges(
                [liprobe.Range(6.9, 7.2, liprobe.parse_ion("Li+"))]))
        else:
            liprobe.write(out, run)
    assert str(e.value).startswith(str(out)) and ".tmp" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == [out.name] and os.listdir(out) == []
