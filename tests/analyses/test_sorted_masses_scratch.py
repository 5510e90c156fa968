"""Sorted masses of a run read from a file, in bounded memory (issue 23).

Above ``SORT_IN_MEMORY_IONS`` ions, :func:`liprobe.spectrum.sorted_masses` sorts a
file's masses into an unlinked scratch file (an external bucket sort). Here the
threshold and the chunk are made small, and every result is checked against
``np.sort`` of the same masses, and the analyses built on sorted masses (peaks,
autorange, background and deconvolution, the spectrum command) against the
same analyses of the masses held in memory: identical values.
"""

import errno
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

import liprobe
import liprobe.run as run_module
from liprobe.errors import FormatError
from liprobe.io._files import is_file_backed, scratch_array
from liprobe.run import Run
from liprobe.spectrum import _shared, sorted_masses

from .spectra_synth import make_spectrum

N = 120_007


@pytest.fixture
def small_scratch(monkeypatch):
    """Sort in scratch above 1,000 ions, in chunks of 8,192 (many chunks, many buckets)."""
    monkeypatch.setattr(_shared, "SORT_IN_MEMORY_IONS", 1000)
    monkeypatch.setattr(run_module, "DEFAULT_CHUNK_IONS", 8192)


@pytest.fixture(scope="module")
def spectrum_files(tmp_path_factory):
    """An NMC811-like spectrum (made independently of the simulator) as .pos and .epos."""
    sp = make_spectrum("nmc811", N, background=0.05, seed=3)
    mass = sp.mass.astype(np.float32)
    rng = np.random.default_rng(4)
    n = len(mass)
    x, y = rng.normal(0, 8, n).astype(np.float32), rng.normal(0, 8, n).astype(np.float32)
    z = -np.linspace(0, 50, n).astype(np.float32)
    tof = (180.0 * np.sqrt(mass) + rng.normal(0, 0.3, n)).astype(np.float32)
    d = tmp_path_factory.mktemp("sorted")
    pos, epos = d / "s.pos", d / "s.epos"
    liprobe.write(pos, Run.from_arrays(x=x, y=y, z=z, mass=mass))
    zeros = np.zeros(n, np.float32)
    liprobe.write(epos, Run.from_arrays(x=x, y=y, z=z, mass=mass, tof=tof, v_dc=zeros + 5000,
                                        v_pulse=zeros, det_x=x, det_y=y,
                                        pulse_delta=np.ones(n, np.int32),
                                        multiplicity=np.ones(n, np.int32)))
    return pos, epos, mass, tof


def _reference(values) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return np.sort(v[(v > 0) & (v < np.inf)])


def test_scratch_sort_equals_numpy_on_a_file(small_scratch, spectrum_files, tmp_path):
    pos, _, mass, _ = spectrum_files
    run = liprobe.read(pos)
    got = sorted_masses(run, scratch_dir=str(tmp_path))
    assert is_file_backed(got)                     # pages of a (removed) file, not anonymous
    assert os.listdir(tmp_path) == []              # unlinked at once: nothing left behind
    assert got.dtype == np.float32 and np.array_equal(got, _reference(mass))


def test_scratch_sort_of_a_selection_and_of_a_memory_map(small_scratch, spectrum_files,
                                                         tmp_path):
    pos, _, mass, _ = spectrum_files
    run = liprobe.read(pos)
    keep = np.asarray(run["x"]) > 1.5
    sel = run.select(keep)                         # a lazy selection (MaskedSource columns)
    assert np.array_equal(sorted_masses(sel), _reference(mass[keep]))
    assert np.array_equal(sorted_masses(sel.source("mass")), _reference(mass[keep]))
    # a raw memory map holding zero, negative, NaN and infinite masses: all left out
    raw = mass.copy()
    raw[[0, 10, 20, 30, 40]] = [0.0, -3.0, np.nan, np.inf, -np.inf]
    f = tmp_path / "raw.bin"
    raw.tofile(f)
    mm = np.memmap(f, np.float32, "r")
    got = sorted_masses(mm)
    assert len(got) == len(raw) - 5 and np.array_equal(got, _reference(raw))
    # a file whose masses are all invalid gives an empty array
    np.full(5000, -1.0, np.float32).tofile(f)
    assert len(sorted_masses(np.memmap(f, np.float32, "r"))) == 0


def test_masses_held_in_memory_are_sorted_in_memory(small_scratch, spectrum_files):
    _, _, mass, _ = spectrum_files
    got = sorted_masses(mass)                      # an in-memory array: the caller holds it
    assert not is_file_backed(got) and np.array_equal(got, _reference(mass))
    in_memory_run = Run.from_arrays(mass=mass.copy())
    got = sorted_masses(in_memory_run)             # a Run built from arrays: in memory too
    assert not is_file_backed(got) and np.array_equal(got, _reference(mass))
    sel = in_memory_run.select(mass > 20)
    assert not is_file_backed(sorted_masses(sel))


def test_changed_masses_between_the_passes_are_an_error(small_scratch, monkeypatch, tmp_path):
    f = tmp_path / "m.bin"
    np.linspace(1, 100, 5000, dtype=np.float32).tofile(f)
    mm = np.memmap(f, np.float32, "r")
    calls = []

    def chunks(data, *a, **k):                     # the second pass reads other masses
        calls.append(1)
        yield np.asarray(data) if len(calls) == 1 else np.asarray(data) * 1.5

    monkeypatch.setattr(_shared, "column_chunks", chunks)
    with pytest.raises(FormatError, match="changed while they were being sorted") as e:
        sorted_masses(mm)
    assert e.value.path == str(f)                  # the message names the file


def test_a_memory_map_is_read_a_chunk_at_a_time(small_scratch, monkeypatch, tmp_path):
    f = tmp_path / "m.bin"
    np.linspace(1, 100, 50_000, dtype=np.float32)[::-1].copy().tofile(f)
    seen = []
    plain = _shared.column_chunks

    def recording(data, *a, **k):
        for c in plain(data, *a, **k):
            seen.append(len(c))
            yield c

    monkeypatch.setattr(_shared, "column_chunks", recording)
    got = sorted_masses(np.memmap(f, np.float32, "r"))
    assert np.array_equal(got, np.linspace(1, 100, 50_000, dtype=np.float32))
    assert max(seen) == 8192 and sum(seen) == 2 * 50_000       # two passes of 8,192-ion chunks


def test_scratch_without_room_says_so_before_writing(monkeypatch, tmp_path):
    class Small:
        f_bavail, f_frsize = 10, 4096

    monkeypatch.setattr(os, "statvfs", lambda d: Small())
    with pytest.raises(OSError) as e:
        scratch_array(1_000_000, np.float32, str(tmp_path))
    assert e.value.errno == errno.ENOSPC and str(tmp_path) in str(e.value)
    assert "4 MB" in str(e.value) and os.listdir(tmp_path) == []


def test_peaks_of_a_file_equal_peaks_of_its_masses_in_memory(small_scratch, spectrum_files):
    from liprobe.spectrum import analyse_peaks

    _, epos, mass, tof = spectrum_files
    run = liprobe.read(epos)
    a = analyse_peaks(run, run.source("tof"), (0.5, 150))
    b = analyse_peaks(np.array(mass), np.array(tof), (0.5, 150))
    assert len(a.peaks) >= 15
    assert a.to_dict() == b.to_dict()
    assert a.background.ppm_per_ns is not None     # the tof column was paired with the masses


def test_autorange_of_a_file_equals_autorange_in_memory(small_scratch, spectrum_files):
    from liprobe.spectrum import autorange

    pos, _, mass, _ = spectrum_files
    elements = ["Li", "O", "Ni", "Co", "Mn", "Cr"]
    a = autorange(liprobe.read(pos), elements, mass_range=(0.5, 150))
    b = autorange(np.array(mass), elements, mass_range=(0.5, 150))
    assert [(r.ion.name, r.lo, r.hi) for r in a.table.ranges] == \
        [(r.ion.name, r.lo, r.hi) for r in b.table.ranges]
    assert a.ions == b.ions and len(a.table.ranges) >= 10


def test_corrected_counts_of_a_file_equal_those_in_memory(small_scratch, spectrum_files):
    from liprobe.spectrum import autorange
    from liprobe.spectrum.deconvolve import corrected_counts

    _, epos, mass, tof = spectrum_files
    table = autorange(np.array(mass), ["Li", "O", "Ni", "Co", "Mn", "Cr"],
                      mass_range=(0.5, 150)).table
    run = liprobe.read(epos)
    ca, da = corrected_counts(run, table, True, True, tof=run.source("tof"))
    cb, db = corrected_counts(np.array(mass), table, True, True, tof=np.array(tof))
    assert np.array_equal(ca, cb) and ca.sum() > 0.8 * N
    assert json.dumps(da, sort_keys=True, default=str) == json.dumps(db, sort_keys=True,
                                                                     default=str)


def test_spectrum_command_is_the_same_in_scratch_and_in_memory(spectrum_files, monkeypatch):
    from liprobe.cli import cli

    _, epos, _, _ = spectrum_files
    args = ["spectrum", str(epos), "--calibration", "O+,O2+,Li+", "--json"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    monkeypatch.setattr(_shared, "SORT_IN_MEMORY_IONS", 1000)
    monkeypatch.setattr(run_module, "DEFAULT_CHUNK_IONS", 8192)
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a == b and len(a["peaks"]) >= 15 and a["ions_selected"] == N
