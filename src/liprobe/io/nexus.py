"""NeXus NXapm files (HDF5, ``.nxs``): a run and its ranging definitions, written and read.

:func:`write_nexus` writes a :class:`~liprobe.Run` (and, given one, its
:class:`~liprobe.RangeTable`) as one ``NXentry`` following the NXapm
application definition; :func:`read_nexus` and :func:`read_nexus_ranges`
give them back. Per-ion data are contiguous, uncompressed HDF5 datasets,
written a chunk of ions at a time (memory stays bounded) and read back as
memory maps, as the other formats are.

Where each column goes (``ENTRY`` is ``/entry1``)
-------------------------------------------------

=================== ======================================================================
column              NeXus field (NXapm)
=================== ======================================================================
``x y z``           ``atom_probe/reconstruction/reconstructed_positions`` (n, 3), nm
``mass``            ``atom_probe/mass_to_charge_conversion/mass_to_charge``, Da
``det_x det_y``     ``atom_probe/hit_finding/hit_positions`` (n, 2), mm
``multiplicity``    ``atom_probe/hit_finding/hit_multiplicity``
``tof``             ``atom_probe/voltage_and_bowl/raw_tof``, ns
``tofc``            ``atom_probe/voltage_and_bowl/calibrated_tof``, ns
``v_dc``            ``measurement/event1/instrument/pulser/standing_voltage``, V
``v_pulse``         ``measurement/event1/instrument/pulser/pulse_voltage``, V
``pulse_delta``     ``measurement/event1/instrument/pulser/pulse_number``: the running sum
                    of ``pulse_delta`` (pulses since the start); read back as differences
anything else       ``liprobe/columns/NAME`` (an ``NXcollection``), with its unit
=================== ======================================================================

The ranging definitions are ``atom_probe/ranging/peak_identification/ionN``
(``NXatom``: ``name`` in liprobe's ion grammar, ``nuclide_hash`` and
``nuclide_list`` of its atoms, ``charge_state``, 0 when unknown, and the
windows in ``mass_to_charge_range``), with ``iontypes``, each ion's type
(0: unranged), computed by liprobe. What NXapm has no field for (each
window's volume and colour, the run's own metadata, the column order and
types) is kept as JSON in the ``liprobe`` collection, so that a run and its
ranges come back the same. NXapm reads a window ``[min, max]`` as inclusive;
liprobe's windows are ``[lo, hi)``, ``hi`` excluded (the same numbers are
written: an ion exactly at ``hi`` is the only difference). NXapm allows at
most 256 ion types: more are written, and the export's ``notes`` (and a
warning) say so.

Nothing is written from a guess. ``operation_mode`` is ``apt`` when the run
has mass-to-charge or times of flight (ions analysed by time of flight). The
reference frames (``reconstruction_reference_frame``, and
``detector_reference_frame`` with ``depends_on`` on the positions and hits)
are written, with their axes described, only when liprobe computed the
positions (it reconstructed or simulated the run); otherwise how the axes lie
is not in the ion file, and the export lists the frame as missing.

Metadata that the files do not hold (start time, whether the specimen is
simulated, instrument, acquisition conditions) come from ``metadata``
(:data:`METADATA_KEYS`: a study's manifest tags and fields, or
``liprobe export --tag``). A field that NXapm requires and that neither the
files nor the metadata give is not written and is listed, with the reason,
in :attr:`NexusExport.missing`: never a placeholder.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .._version import __version__
from ..chemistry import CHARGE_LIMIT, Ion, format_formula, parse_formula, parse_ion
from ..errors import FormatError
from ..rangetable import Range, RangeTable
from ..run import COLUMN_UNITS, DEFAULT_CHUNK_IONS, Run
from ._files import atomic_path, check_readable, to_jsonable

__all__ = ["write_nexus", "read_nexus", "read_nexus_ranges", "NexusExport", "MissingField",
           "METADATA_KEYS", "COLUMN_PATHS", "ENTRY", "nuclide_hash", "simulation_metadata"]

#: The name of the NXentry liprobe writes.
ENTRY = "entry1"

#: Column -> (path below the entry, component of a 2-D field or None, stored type, unit).
COLUMN_PATHS: dict[str, tuple[str, int | None, str, str]] = {
    "x": ("atom_probe/reconstruction/reconstructed_positions", 0, "<f4", "nm"),
    "y": ("atom_probe/reconstruction/reconstructed_positions", 1, "<f4", "nm"),
    "z": ("atom_probe/reconstruction/reconstructed_positions", 2, "<f4", "nm"),
    "mass": ("atom_probe/mass_to_charge_conversion/mass_to_charge", None, "<f4", "Da"),
    "det_x": ("atom_probe/hit_finding/hit_positions", 0, "<f4", "mm"),
    "det_y": ("atom_probe/hit_finding/hit_positions", 1, "<f4", "mm"),
    "multiplicity": ("atom_probe/hit_finding/hit_multiplicity", None, "<u4", ""),
    "tof": ("atom_probe/voltage_and_bowl/raw_tof", None, "<f4", "ns"),
    "tofc": ("atom_probe/voltage_and_bowl/calibrated_tof", None, "<f4", "ns"),
    "v_dc": ("measurement/event1/instrument/pulser/standing_voltage", None, "<f4", "V"),
    "v_pulse": ("measurement/event1/instrument/pulser/pulse_voltage", None, "<f4", "V"),
    "pulse_delta": ("measurement/event1/instrument/pulser/pulse_number", None, "<u8", ""),
}
_EXTRA = "liprobe/columns"
_FRAMES = {"reconstruction": "reconstruction_reference_frame",
           "detector": "detector_reference_frame"}

#: Metadata keys :func:`write_nexus` understands, and where each goes.
METADATA_KEYS: dict[str, str] = {
    "start_time": "start_time (ISO 8601 with a time zone)",
    "end_time": "end_time (ISO 8601 with a time zone)",
    "run": "experiment_alias and specimen/alias (the run's name)",
    "is_simulation": "specimen/is_simulation (and sample/is_simulation)",
    "material": "sample/alias (the phase analysed)",
    "instrument": "measurement/instrument: type, fabrication/model, and vendor CAMECA for "
                  "LEAP and EIKOS instruments",
    "mode": "pulser/pulse_mode: laser, voltage or laser_and_voltage (\"laser (UV)\" is laser)",
    "laser_pj": "pulser/source1/pulse_energy (pJ)",
    "pulse_frequency_kHz": "pulser/pulse_frequency (kHz)",
    "pulse_fraction_pct": "pulser/pulse_fraction (as a fraction)",
    "temperature_K": "stage/temperature_sensor/value (K)",
    "pressure_Pa": "analysis_chamber/pressure_sensor/value (Pa)",
    "detection_rate_pct": "control/target_detection_rate (%) with evaporation_control "
                          "detection_rate",
    "flight_path_mm": "measurement/instrument/flight_path (mm)",
    "mass_to_charge_program": "atom_probe/mass_to_charge_conversion/program1 (\"NAME VERSION\")",
    "reconstruction_program": "atom_probe/reconstruction/program1 (\"NAME VERSION\"; liprobe "
                              "when it reconstructed the run)",
    "voltage_and_bowl_program": "atom_probe/voltage_and_bowl/program1 (\"NAME VERSION\")",
}

#: Instrument models that NXapm names (its enumeration of ``instrument/type``).
_NXAPM_MODELS = frozenset({
    "Inspico", "3DAP", "LAWATAP", "LEAP 3000 Si", "LEAP 3000X Si", "LEAP 3000 HR",
    "LEAP 3000X HR", "LEAP 4000 Si", "LEAP 4000X Si", "LEAP 4000 HR", "LEAP 4000X HR",
    "LEAP 5000 XS", "LEAP 5000 XR", "LEAP 5000 R", "EIKOS", "EIKOS-UV", "LEAP 6000 XR",
    "LEAP INVIZO", "Photonic AP", "TeraSAT", "TAPHR", "Modular AP", "Titanium APT",
    "Extreme UV APT"})

#: Voxel edge of the reconstruction's histogram (``naive_discretization``), grown
#: when the grid would exceed :data:`_MAX_VOXELS`.
_VOXEL_NM = 1.0
_MAX_VOXELS = 1 << 22

#: NXapm's bound on ``number_of_ion_types`` (ion type 0 is unranged).
_NXAPM_MAX_ION_TYPES = 256

#: The axes of liprobe's reconstruction (:mod:`liprobe.spatial.reconstruct`) and of
#: its detector coordinates (origin, x, y, z direction), written only when liprobe
#: computed the positions.
_LIPROBE_RECONSTRUCTION_FRAME = (
    "on the specimen axis, at the apex when the first ion evaporated (CAMECA convention: "
    "z <= 0, decreasing through the run)",
    "across the specimen axis, parallel to the detector's x (azimuth 0 of a hit)",
    "across the specimen axis, parallel to the detector's y",
    "along the specimen axis, from the specimen towards the detector")
_LIPROBE_DETECTOR_FRAME = (
    "the origin of the detector coordinates of the ion file",
    "in the detector plane, parallel to the reconstruction's x",
    "in the detector plane, parallel to the reconstruction's y",
    "normal to the detector, from the specimen towards the detector")


@dataclass(frozen=True)
class MissingField:
    """A concept NXapm requires that the export could not fill, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class NexusExport:
    """What :func:`write_nexus` wrote.

    Attributes
    ----------
    path : str
        The ``.nxs`` file.
    ions : int
    columns : dict of str to str
        Each column and the NeXus field (path in the file) holding it.
    ion_types : int
        Ions of the ranging definitions (0 without ranges).
    windows : int
        Mass windows written.
    metadata : dict of str to str
        Each metadata key used and the field it filled.
    missing : tuple of MissingField
        Concepts NXapm requires that neither the files nor the metadata give;
        they are not in the file (no placeholder), and NeXus validation names
        the same ones.
    notes : tuple of str
        What a reader of the file should know (more ion types than NXapm
        allows).
    """

    path: str
    ions: int
    columns: dict
    ion_types: int
    windows: int
    metadata: dict = field(default_factory=dict)
    missing: tuple[MissingField, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"path": self.path, "ions": self.ions, "columns": dict(self.columns),
                "ion_types": self.ion_types, "windows": self.windows,
                "metadata": dict(self.metadata),
                "missing": [m.to_dict() for m in self.missing], "notes": list(self.notes)}


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def nuclide_hash(ion: Ion) -> np.ndarray:
    """NXapm's ``nuclide_hash`` of an ion: ``Z + 255 * 256`` per atom (any isotope), sorted
    in decreasing order; empty for a named ion.

    Examples
    --------
    >>> from liprobe import parse_ion
    >>> nuclide_hash(parse_ion("NiO2+")).tolist()    # Ni (Z 28), O (Z 8) twice
    [65308, 65288, 65288]
    """
    from periodictable import elements

    values = [elements.symbol(el).number + 255 * 256 for el, n in ion.atoms for _ in range(n)]
    return np.array(sorted(values, reverse=True), dtype=np.uint16)


def _group(parent, name: str, nx_class: str):
    g = parent.require_group(name)
    g.attrs["NX_class"] = nx_class
    return g


def _text(parent, name: str, value: str):
    parent.create_dataset(name, data=str(value))


def _number(parent, name: str, value, unit: str | None = None, dtype=None):
    ds = parent.create_dataset(name, data=np.asarray(value, dtype=dtype))
    if unit:
        ds.attrs["units"] = unit
    return ds


def _program(parent, name: str, version: str, index: int = 1):
    g = _group(parent, f"program{index}", "NXprogram")
    ds = g.create_dataset("program", data=name)
    ds.attrs["version"] = version


def _split_program(text: str) -> tuple[str, str] | None:
    """``"AP Suite 6.3"`` -> ("AP Suite", "6.3"): the last word is the version."""
    parts = str(text).rsplit(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else None


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _note(parent, name: str, path: str | None, kind: str, header: Mapping | None = None,
          sums: dict | None = None):
    """An NXnote naming an input file, with its SHA-256 (None: no file to name).

    ``header``: the ``meta`` of a run read from an ``.apt``, whose file header
    gives the original file name and the time AP Suite created the file.
    ``sums``: checksums already computed during this export, by path (each
    input file is read once however many notes name it).
    """
    if not path or not os.path.isfile(path):
        return
    g = _group(parent, name, "NXnote")
    _text(g, "type", kind)
    _text(g, "file_name", os.path.abspath(path))
    sums = {} if sums is None else sums
    key = os.path.abspath(path)
    if key not in sums:
        sums[key] = _sha256(path)
    _text(g, "checksum", sums[key])
    _text(g, "algorithm", "sha256")
    if header and header.get("format") == "apt" and header.get("creation_time"):
        _text(g, "date", header["creation_time"])
        _text(g, "description", "AP Suite .apt file; original file name "
                                f"{header.get('original_filename')!r}; the date is the file "
                                "header's creation time")


def _iso(value, key: str, p: str) -> str:
    text = value.isoformat() if isinstance(value, _dt.datetime) else str(value)
    try:
        t = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise FormatError(f"metadata {key} '{text}' is not an ISO 8601 time", p) from None
    if t.tzinfo is None:
        raise FormatError(f"metadata {key} '{text}' has no time zone (NeXus needs one, "
                          "e.g. 2023-05-04T10:00:00+02:00)", p)
    return t.isoformat()


def _bool(value, key: str, p: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "yes", "1"):
        return True
    if str(value).lower() in ("false", "no", "0"):
        return False
    raise FormatError(f"metadata {key} '{value}' is not true or false", p)


def _float(value, key: str, p: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FormatError(f"metadata {key} '{value}' is not a number", p) from None
    if not math.isfinite(v):
        raise FormatError(f"metadata {key} '{value}' is not a finite number", p)
    return v


def _pulse_mode(value) -> str | None:
    low = str(value).lower()
    laser, voltage = "laser" in low, "voltage" in low
    if laser and voltage:
        return "laser_and_voltage"
    return "laser" if laser else ("voltage" if voltage else None)


def simulation_metadata(run_path) -> dict:
    """Metadata of a run simulated by liprobe, from the truth file beside it (else ``{}``).

    ``liprobe simulate`` writes ``RUN.truth.json`` beside ``RUN.epos``: such a
    run is a simulation, and liprobe computed its masses and positions.
    """
    if not run_path:
        return {}
    truth = os.path.splitext(os.fspath(run_path))[0] + ".truth.json"
    if not os.path.isfile(truth):
        return {}
    try:
        with open(truth, encoding="utf-8") as f:
            version = json.load(f).get("liprobe_version")
    except (OSError, ValueError, AttributeError):
        return {}
    if not version:
        return {}
    program = f"liprobe {version}"
    return {"is_simulation": True, "mass_to_charge_program": program,
            "reconstruction_program": program}


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------

def _nonnegative_ints(run: Run, name: str, chunk_ions: int) -> bool:
    for _, chunk in run.chunks(name, chunk_ions):
        if chunk.dtype.kind not in "iu" or (len(chunk) and chunk.min() < 0):
            return False
    return True


def _stored_type(run: Run, cols, kind: str) -> str:
    """The little-endian type a field is written in: the columns' own floats (float32 or
    float64), or unsigned integers of the column's width for an ``NX_UINT`` field."""
    dt = np.result_type(*(run.source(c).dtype for c in cols))
    if kind == "u":
        return f"<u{max(dt.itemsize, 1)}"
    if dt.kind != "f":
        dt = np.dtype(np.float64 if dt.itemsize > 4 else np.float32)
    return dt.newbyteorder("<").str


def _layout(run: Run, chunk_ions: int) -> dict[str, tuple[str, int | None, str, str]]:
    """Where each column of ``run`` goes: NXapm fields (path, component, stored type,
    unit), or the liprobe collection."""
    out: dict[str, tuple[str, int | None, str, str]] = {}
    for c in run.columns:
        target = COLUMN_PATHS.get(c)
        group = [c]
        if target is not None and target[1] is not None:
            group = [k for k, v in COLUMN_PATHS.items() if v[0] == target[0]]
            if not all(k in run for k in group):
                target = None      # x without y and z: kept as it is
        if target is not None and target[2][1] == "u" and not _nonnegative_ints(run, c,
                                                                                 chunk_ions):
            target = None          # negative or float counts do not fit NX_UINT
        if target is None:
            dtype = run.source(c).dtype.newbyteorder("<").str
            unit = COLUMN_UNITS.get(c, (run.meta.get("units") or {}).get(c, ""))
            out[c] = (f"{_EXTRA}/{c}", None, dtype, unit)
        elif c == "pulse_delta":
            out[c] = target
        else:
            out[c] = (target[0], target[1], _stored_type(run, group, target[2][1]), target[3])
    return out


def _write_columns(entry, run: Run, layout: dict, chunk_ions: int) -> dict:
    """Create the per-ion datasets and fill them a chunk at a time; the positions' extent."""
    n = run.n_ions
    fields: dict[str, list[str]] = {}
    for c, (path, _, _, _) in layout.items():
        fields.setdefault(path, []).append(c)
    extent = None
    for path, cols in fields.items():
        _, comp, dtype, unit = layout[cols[0]]
        k = len(cols)
        cols = sorted(cols, key=lambda c: layout[c][1] or 0)
        shape = (n,) if comp is None else (n, k)
        ds = entry.create_dataset(path, shape=shape, dtype=np.dtype(dtype))
        if unit:
            ds.attrs["units"] = unit
        running = np.uint64(0)
        lo = np.full(k, np.inf)
        hi = np.full(k, -np.inf)
        for parts in zip(*(run.chunks(c, chunk_ions) for c in cols)):
            start = parts[0][0]
            stop = start + len(parts[0][1])
            if cols == ["pulse_delta"] and path == COLUMN_PATHS["pulse_delta"][0]:
                block = np.cumsum(parts[0][1], dtype=np.uint64) + running
                if len(block):
                    running = block[-1]
            elif comp is None:
                block = parts[0][1]
            else:
                block = np.column_stack([chunk for _, chunk in parts])
            if path == COLUMN_PATHS["x"][0] and len(block):
                lo = np.minimum(lo, block.min(axis=0))
                hi = np.maximum(hi, block.max(axis=0))
            ds[start:stop] = block
        if path == COLUMN_PATHS["x"][0] and n:
            extent = (lo, hi)
    return {"extent": extent}


def _histogram3d(entry, run: Run, extent, chunk_ions: int):
    """``reconstruction/naive_discretization``: ions per voxel of the positions, by liprobe."""
    lo, hi = (np.asarray(e, dtype=np.float64) for e in extent)
    span = np.maximum(hi - lo, 1e-9)
    edge = _VOXEL_NM
    while np.prod(np.floor(span / edge) + 1) > _MAX_VOXELS:
        edge *= 2
    shape = (np.floor(span / edge) + 1).astype(np.int64)      # x, y, z
    counts = np.zeros(int(np.prod(shape)), dtype=np.int64)
    for parts in zip(*(run.chunks(c, chunk_ions) for c in "xyz")):
        idx = [np.clip(((chunk - lo[j]) / edge).astype(np.int64), 0, shape[j] - 1)
               for j, (_, chunk) in enumerate(parts)]
        flat = (idx[2] * shape[1] + idx[1]) * shape[0] + idx[0]
        counts += np.bincount(flat, minlength=len(counts))
    rec = entry["atom_probe/reconstruction"]
    nd = _group(rec, "naive_discretization", "NXprocess")
    _program(nd, "liprobe", __version__)
    data = _group(nd, "data", "NXdata")
    data.attrs["signal"] = "intensity"
    data.attrs["axes"] = ["axis_z", "axis_y", "axis_x"]
    for j, ax in enumerate(("axis_z", "axis_y", "axis_x")):
        data.attrs[f"{ax}_indices"] = np.uint64(j)
    _text(data, "title", f"ions per {edge:g} nm voxel")
    data.create_dataset("intensity", data=counts.reshape(shape[2], shape[1], shape[0])
                        .astype(np.uint32))
    for j, ax in ((2, "axis_z"), (1, "axis_y"), (0, "axis_x")):
        centres = lo[j] + edge * (np.arange(shape[j]) + 0.5)
        ds = data.create_dataset(ax, data=centres.astype(np.float32))
        ds.attrs["units"] = "nm"
        ds.attrs["long_name"] = f"{'xyz'[j]} (nm)"
    return edge


def _frame(entry, name: str, unit: str, axes: tuple[str, str, str, str]):
    """A frame whose axes liprobe defined (it computed the positions): a world frame,
    its origin and axes described in words, ``x y z`` its own unit basis vectors."""
    g = _group(entry, name, "NXcoordinate_system")
    _text(g, "type", "cartesian")
    _text(g, "origin", axes[0])
    for j, ax in enumerate("xyz"):
        _text(g, f"{ax}_direction", axes[j + 1])
        v = np.zeros(3)
        v[j] = 1.0
        _number(g, ax, v, unit)


def _ranging(entry, run: Run, ranges: RangeTable, chunk_ions: int, p: str,
             sums: dict) -> int:
    """``atom_probe/ranging``: the windows and their ions, and each ion's type."""
    from ..ranging import assign

    rg = _group(entry, "atom_probe/ranging", "NXapm_ranging")
    _program(rg, "liprobe", __version__)
    _note(rg, "source", ranges.path, "range file", sums=sums)
    pid = _group(rg, "peak_identification", "NXprocess")
    _program(pid, "liprobe", __version__)
    ions = ranges.ions
    _number(pid, "number_of_ion_types", len(ions), dtype=np.uint32)
    width = max((ion.n_atoms for ion in ions), default=0)
    _number(pid, "maximum_number_of_atoms_per_molecular_ion", width, dtype=np.uint32)
    windows: dict[Ion, list[tuple[float, float]]] = {ion: [] for ion in ions}
    for r in ranges.ranges:
        windows[r.ion].append((r.lo, r.hi))
    for i, ion in enumerate(ions, 1):
        g = _group(pid, f"ion{i}", "NXatom")
        hashes = np.zeros(width, dtype=np.uint16)
        h = nuclide_hash(ion)
        hashes[:len(h)] = h
        g.create_dataset("nuclide_hash", data=hashes)
        z = hashes.astype(np.int64) % 256
        listing = np.column_stack([np.zeros(width, dtype=np.uint16), z.astype(np.uint16)])
        g.create_dataset("nuclide_list", data=listing)
        _number(g, "charge_state", ion.charge or 0, dtype=np.int8)
        _number(g, "mass_to_charge_range", np.array(windows[ion], dtype=np.float64), "Da")
        _text(g, "name", ion.name)
    if "mass" in run:
        n = run.n_ions
        dtype = np.uint8 if len(ions) < 256 else np.uint16 if len(ions) < 65536 else np.uint32
        ds = pid.create_dataset("iontypes", shape=(n,), dtype=dtype)
        types = np.concatenate([[0], ranges.ion_index + 1]).astype(dtype)
        for start, chunk in run.chunks("mass", chunk_ions):
            labels, _ = assign(chunk, ranges)
            ds[start:start + len(chunk)] = types[labels.astype(np.int64) + 1]
    return len(ions)


def _root_attrs(f, p: str):
    f.attrs["NX_class"] = "NXroot"
    f.attrs["default"] = ENTRY
    f.attrs["file_name"] = os.path.basename(p)
    f.attrs["file_time"] = _dt.datetime.now(_dt.UTC).astimezone().isoformat()
    f.attrs["creator"] = "liprobe"
    f.attrs["creator_version"] = __version__
    import h5py

    f.attrs["HDF5_Version"] = h5py.version.hdf5_version
    f.attrs["h5py_version"] = h5py.version.version


def write_nexus(path, run: Run, ranges: RangeTable | None = None,
                metadata: Mapping | None = None,
                chunk_ions: int = DEFAULT_CHUNK_IONS) -> NexusExport:
    """Write a run (and its ranging definitions) as a NeXus NXapm file, atomically.

    The layout is in the module docstring. Per-ion data are written
    ``chunk_ions`` at a time; the reconstruction's ion histogram
    (``naive_discretization``, required by NXapm) and each ion's type are
    computed in passes of the same size, so memory stays bounded by a chunk
    (and the histogram, at most 2^22 voxels).

    Parameters
    ----------
    path : str or path-like
        The ``.nxs`` file to write.
    run : Run
    ranges : RangeTable, optional
        Written as ``atom_probe/ranging``; without it the file has no ranging
        definitions and ``specimen/atom_types`` is missing.
    metadata : mapping, optional
        What the files do not hold, by the keys of :data:`METADATA_KEYS`
        (other keys are kept in the ``liprobe`` collection only). A
        reconstruction made by liprobe (``run.meta["reconstruction"]``, from
        :func:`liprobe.spatial.reconstruct.reconstruct_run`) is written with
        its parameters.
    chunk_ions : int
        Ions per pass.

    Returns
    -------
    NexusExport
        Columns and fields written, and the required fields that are
        missing, with their reasons.

    Raises
    ------
    FormatError
        A folder that does not exist, a run without ions, metadata that
        cannot be read (a time without a time zone, a number that is none).

    Examples
    --------
    >>> import os, tempfile
    >>> import liprobe
    >>> from liprobe.io.nexus import write_nexus
    >>> tmp = tempfile.TemporaryDirectory()
    >>> run = liprobe.Run.from_arrays(x=[0.5, 1.5, 2.0], y=[0.0, 0.1, 0.2],
    ...                               z=[-1.0, -1.1, -1.3], mass=[7.02, 16.0, 32.0])
    >>> ranges = liprobe.RangeTable.from_ranges([
    ...     liprobe.Range(6.9, 7.2, liprobe.parse_ion("Li+")),
    ...     liprobe.Range(15.9, 16.2, liprobe.parse_ion("O+"))])
    >>> path = os.path.join(tmp.name, "run.nxs")
    >>> export = write_nexus(path, run, ranges,
    ...                      metadata={"start_time": "2023-05-04T10:00:00+02:00"})
    >>> export.columns["mass"]
    '/entry1/atom_probe/mass_to_charge_conversion/mass_to_charge'
    >>> [m.path for m in export.missing]      # doctest: +NORMALIZE_WHITESPACE
    ['/entry1/specimen/is_simulation',
     '/entry1/NAMED_reference_frameID',
     '/entry1/atom_probe/mass_to_charge_conversion/programID',
     '/entry1/atom_probe/reconstruction/programID']
    >>> back = liprobe.read(path)
    >>> back.columns, back["mass"]                # the columns' own types (float64 here)
    (('x', 'y', 'z', 'mass'), array([ 7.02, 16.  , 32.  ]))
    >>> [ion.name for ion in liprobe.read_ranges(path).ions]
    ['Li+', 'O+']
    >>> tmp.cleanup()
    """
    import h5py

    p = os.fspath(path)
    if run.n_ions == 0:
        raise FormatError("cannot write a NeXus file of a run without ions", p)
    meta = dict(metadata or {})
    used: dict[str, str] = {}
    missing: list[MissingField] = []
    layout = _layout(run, chunk_ions)

    def miss(rel: str, reason: str):
        missing.append(MissingField(f"/{ENTRY}/{rel}", reason))

    def take(key: str):
        if key in meta and meta[key] is not None and meta[key] != "":
            used[key] = METADATA_KEYS[key]
            return meta[key]
        return None

    start_time = take("start_time")
    end_time = take("end_time")
    sums: dict[str, str] = {}
    notes: list[str] = []
    with atomic_path(p) as tmp, h5py.File(tmp, "w") as f:
        _root_attrs(f, p)
        e = _group(f, ENTRY, "NXentry")
        e.create_dataset("definition", data="NXapm")
        if any(c in run for c in ("mass", "tof", "tofc")):
            _text(e, "operation_mode", "apt")    # ions analysed by time of flight
        else:
            miss("operation_mode", "the run has no mass-to-charge nor time of flight: "
                                   "whether it is atom probe or field ion data is not known")
        if start_time is not None:
            _text(e, "start_time", _iso(start_time, "start_time", p))
        else:
            miss("start_time", "the ion and range files hold no start time of the measurement "
                               "(give start_time)")
        if end_time is not None:
            _text(e, "end_time", _iso(end_time, "end_time", p))
        name = take("run")
        if name is not None:
            _text(e, "experiment_alias", name)
        prof = _group(e, "profiling", "NXcs_profiling")
        _program(prof, "liprobe", __version__)

        # -- specimen and sample ---------------------------------------------------
        spec = _group(e, "specimen", "NXsample")
        simulated = take("is_simulation")
        if simulated is not None:
            spec.create_dataset("is_simulation", data=_bool(simulated, "is_simulation", p))
        else:
            miss("specimen/is_simulation", "whether the specimen is real or simulated is in "
                                           "neither file (give is_simulation)")
        if ranges is not None and ranges.elements:
            _text(spec, "atom_types", ", ".join(ranges.elements))
        else:
            miss("specimen/atom_types", "no range file: the elements of the specimen are not "
                                        "known")
        if name is not None:
            _text(spec, "alias", name)
        material = take("material")
        if material is not None:
            sample = _group(e, "sample", "NXsample")
            _text(sample, "alias", material)
            if simulated is not None:
                sample.create_dataset("is_simulation", data=_bool(simulated, "is_simulation", p))
            else:
                miss("sample/is_simulation", "whether the sample is real or simulated is in "
                                             "neither file (give is_simulation)")

        # -- reference frames: only when liprobe defined them ----------------------
        has_det = any(layout[c][0] == COLUMN_PATHS["det_x"][0] for c in layout)
        has_pos = any(layout[c][0] == COLUMN_PATHS["x"][0] for c in layout)
        frames = []
        # liprobe's axes when liprobe computed the positions: it reconstructed them, or it
        # simulated the run (its truth file), or the metadata name it as the program
        by_liprobe = bool(run.meta.get("reconstruction")) or str(
            meta.get("reconstruction_program") or "").split()[:1] == ["liprobe"]
        if has_pos and by_liprobe:
            _frame(e, _FRAMES["reconstruction"], "nm", _LIPROBE_RECONSTRUCTION_FRAME)
            frames.append("x")
            if has_det:
                _frame(e, _FRAMES["detector"], "mm", _LIPROBE_DETECTOR_FRAME)
                frames.append("det_x")
        else:
            miss("NAMED_reference_frameID",
                 "no reference frame: the ion file does not say how the axes of its positions "
                 "or detector lie (written only when liprobe computed the positions)")
        if has_det and "det_x" not in frames:
            miss(f"{COLUMN_PATHS['det_x'][0]}/@depends_on",
                 "the detector's reference frame is not known (the ion file does not say how "
                 "its axes lie)")

        # -- measurement -------------------------------------------------------------
        pulser_cols = [c for c in ("v_dc", "v_pulse", "pulse_delta")
                       if c in layout and layout[c][0] == COLUMN_PATHS[c][0]]
        instrument = take("instrument")
        flight_path = take("flight_path_mm")
        acquisition = {k: take(k) for k in ("mode", "laser_pj", "pulse_frequency_kHz",
                                            "pulse_fraction_pct", "temperature_K",
                                            "pressure_Pa", "detection_rate_pct")}
        event_meta = any(v is not None for v in acquisition.values())
        if pulser_cols or instrument is not None or flight_path is not None or event_meta:
            m = _group(e, "measurement", "NXapm_measurement")
            inst = _group(m, "instrument", "NXapm_instrument")
            if instrument is not None:
                model = str(instrument)
                if model in _NXAPM_MODELS:
                    _text(inst, "type", model)
                fab = _group(inst, "fabrication", "NXfabrication")
                if model.upper().startswith(("LEAP", "EIKOS")):
                    _text(fab, "vendor", "CAMECA")
                else:
                    miss("measurement/instrument/fabrication/vendor",
                         f"the maker of the instrument '{model}' is not known to liprobe")
                _text(fab, "model", model)
            if flight_path is not None:
                _number(inst, "flight_path", _float(flight_path, "flight_path_mm", p), "mm")
        if pulser_cols or event_meta:
            ev = _group(e, "measurement/event1", "NXapm_event_data")
            ei = _group(ev, "instrument", "NXapm_instrument")
            mode, energy, freq, frac = (acquisition[k] for k in (
                "mode", "laser_pj", "pulse_frequency_kHz", "pulse_fraction_pct"))
            if pulser_cols or any(v is not None for v in (mode, energy, freq, frac)):
                pulser = _group(ei, "pulser", "NXcomponent")
                pm = None if mode is None else _pulse_mode(mode)
                if pm is not None:
                    _text(pulser, "pulse_mode", pm)
                else:
                    miss("measurement/event1/instrument/pulser/pulse_mode",
                         "the pulsing mode is not known (give mode: laser or voltage)"
                         if mode is None else f"mode '{mode}' names neither laser nor voltage")
                if freq is not None:
                    _number(pulser, "pulse_frequency",
                            _float(freq, "pulse_frequency_kHz", p), "kHz")
                else:
                    miss("measurement/event1/instrument/pulser/pulse_frequency",
                         "the pulse frequency is not known (give pulse_frequency_kHz)")
                if frac is not None:
                    _number(pulser, "pulse_fraction", _float(frac, "pulse_fraction_pct", p) / 100)
                else:
                    miss("measurement/event1/instrument/pulser/pulse_fraction",
                         "the pulse fraction is not known (give pulse_fraction_pct)")
                if energy is not None:
                    src = _group(pulser, "source1", "NXsource")
                    _number(src, "pulse_energy", _float(energy, "laser_pj", p), "pJ")
                    miss("measurement/event1/instrument/pulser/source1/power",
                         "the laser power is not known")
            for parent, cls, what, key, unit, why in (
                    ("stage", "NXmanipulator", "temperature", "temperature_K", "K",
                     "the specimen temperature is not known (give temperature_K)"),
                    ("analysis_chamber", "NXcomponent", "pressure", "pressure_Pa", "Pa",
                     "the analysis chamber's pressure is not known (give pressure_Pa)")):
                value = acquisition[key]
                if value is None:
                    miss(f"measurement/event1/instrument/{parent}", why)
                    continue
                sensor = _group(ei, f"{parent}/{what}_sensor", "NXsensor")
                ei[parent].attrs["NX_class"] = cls
                _text(sensor, "measurement", what)
                _number(sensor, "value", _float(value, key, p), unit)
            rate = acquisition["detection_rate_pct"]
            if rate is not None:
                control = _group(ei, "control", "NXparameters")
                _text(control, "evaporation_control", "detection_rate")
                _number(control, "target_detection_rate",
                        _float(rate, "detection_rate_pct", p), "%")

        # -- the processing steps ----------------------------------------------------
        ap = _group(e, "atom_probe", "NXroi_process")
        for rel, cls in (("hit_finding", "NXprocess"), ("voltage_and_bowl", "NXprocess"),
                         ("mass_to_charge_conversion", "NXprocess"),
                         ("reconstruction", "NXapm_reconstruction")):
            if any(v[0].startswith(f"atom_probe/{rel}/") for v in layout.values()):
                _group(ap, rel, cls)
        if any(v[0].startswith(_EXTRA) for v in layout.values()):
            _group(e, "liprobe", "NXcollection")
            _group(e, _EXTRA, "NXcollection")
        done = _write_columns(e, run, layout, chunk_ions)
        for c in frames:
            if c in layout and layout[c][0] == COLUMN_PATHS[c][0]:
                frame = _FRAMES["reconstruction" if c == "x" else "detector"]
                e[layout[c][0]].attrs["depends_on"] = f"/{ENTRY}/{frame}"
        if "voltage_and_bowl" in ap:
            vb = ap["voltage_and_bowl"]
            _process_program(vb, take("voltage_and_bowl_program"), "voltage_and_bowl_program",
                             miss, "atom_probe/voltage_and_bowl",
                             "the program that measured and calibrated the times of flight")
            miss("atom_probe/voltage_and_bowl/config",
                 "the parameters of the voltage and bowl correction are in neither file")
        if "mass_to_charge_conversion" in ap:
            mc = ap["mass_to_charge_conversion"]
            _process_program(mc, take("mass_to_charge_program"), "mass_to_charge_program", miss,
                             "atom_probe/mass_to_charge_conversion",
                             "the program that converted times of flight to mass-to-charge")
            _note(mc, "source", run.path, f"{run.format or 'ion'} file", run.meta, sums)
        if "reconstruction" in ap:
            rec = ap["reconstruction"]
            done_by = run.meta.get("reconstruction")
            program = f"liprobe {__version__}" if done_by else take("reconstruction_program")
            _process_program(rec, program, "reconstruction_program", miss,
                             "atom_probe/reconstruction",
                             "the program that reconstructed the positions")
            _note(rec, "source", run.path, f"{run.format or 'ion'} file", run.meta, sums)
            if done_by:
                _reconstruction_config(rec, done_by)
            if done["extent"] is not None:
                _histogram3d(e, run, done["extent"], chunk_ions)
        n_types = 0
        if ranges is not None and len(ranges):
            n_types = _ranging(e, run, ranges, chunk_ions, p, sums)
            if n_types > _NXAPM_MAX_ION_TYPES:
                notes.append(f"{n_types} ion types: NXapm allows at most "
                             f"{_NXAPM_MAX_ION_TYPES}; readers that follow it may refuse "
                             "the ranging definitions")

        # -- what NXapm has no field for ---------------------------------------------
        lp = _group(e, "liprobe", "NXcollection")
        cols = [{"name": c, "path": path, "component": comp,
                 "dtype": run.source(c).dtype.newbyteorder("<").str, "stored": dtype,
                 "unit": unit} for c, (path, comp, dtype, unit) in layout.items()]
        _text(lp, "column_map", json.dumps(cols))
        run_meta = {k: v for k, v in run.meta.items()       # the file's own summary
                    if k not in ("layout", "sections", "skipped", "units", "fields")}
        _text(lp, "run_meta", json.dumps(to_jsonable(run_meta)))
        _text(lp, "metadata", json.dumps(to_jsonable(meta)))
        if ranges is not None:
            _text(lp, "ranges", json.dumps(to_jsonable(
                [{"lo": r.lo, "hi": r.hi, "ion": r.ion.name, "volume": r.volume,
                  "color": r.color} for r in ranges.ranges] + [])))
            _text(lp, "range_warnings", json.dumps(list(ranges.warnings)))
    for note in notes:
        warnings.warn(f"{p}: {note}", UserWarning, stacklevel=2)
    order = {m.path: i for i, m in enumerate(missing)}
    return NexusExport(
        path=p, ions=run.n_ions,
        columns={c: f"/{ENTRY}/{v[0]}" for c, v in layout.items()},
        ion_types=n_types, windows=0 if ranges is None else len(ranges), metadata=used,
        missing=tuple(sorted(missing, key=lambda m: order[m.path])), notes=tuple(notes))


def _process_program(group, program, key: str, miss, rel: str, what: str):
    split = None if program is None else _split_program(program)
    if split is not None:
        _program(group, *split)
    elif program is not None:
        raise FormatError(f"metadata {key} '{program}' should be a program's name and "
                          "version, e.g. 'AP Suite 6.3'")
    else:
        miss(f"{rel}/programID", f"{what} is not known (give {key} = \"NAME VERSION\")")


def _reconstruction_config(rec, done: Mapping):
    """``reconstruction/config`` from a liprobe reconstruction's ``to_dict()``."""
    params = done.get("parameters") or {}
    cfg = _group(rec, "config", "NXparameters")
    protocol = params.get("protocol")
    if protocol in ("bas", "geiser"):
        _text(cfg, "protocol_name", protocol)
    for key, name, unit in (("efficiency", "efficiency", None),
                            ("flight_path_mm", "flight_path", "mm"),
                            ("icf", "image_compression", None),
                            ("k_factor", "kfactor", None),
                            ("shank_angle_deg", "shank_angle", "°"),
                            ("atomic_volume_nm3", "ion_volume", "nm^3")):
        v = params.get(key)
        if v is not None:
            _number(cfg, name, float(v), unit)
    fe = params.get("evaporation_field_V_per_nm")
    if fe is not None:
        _text(cfg, "evaporation_field", f"{float(fe):g} V/nm")    # NX_CHAR in NXapm
    fov = done.get("field_of_view_half_angle_deg")
    if fov is not None:
        _text(cfg, "comment", f"liprobe reconstruction ({params.get('radius')} radius, "
                              f"field of view half angle {fov:.4g} deg, material "
                              f"{params.get('material')}, instrument {params.get('instrument')})")


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------

def _at(group, name: str, p: str):
    """``group[name]``, None when nothing is there; FormatError naming it when a link
    there leads nowhere that can be opened (a soft link loop or to nothing, an external
    link to a missing file)."""
    import h5py

    link = None
    try:
        link = group.get(name, getlink=True)
        return None if link is None else group[name]
    except (KeyError, RuntimeError, OSError) as e:
        if isinstance(link, h5py.ExternalLink):
            to = f"an external link to {link.path} in {link.filename}"
        elif isinstance(link, h5py.SoftLink):
            to = f"a soft link to {link.path}"
        else:
            to = "a link"
        why = str(e.args[0] if e.args else e).strip("'\"")
        raise FormatError(f"{group.name.rstrip('/')}/{name} is {to} that cannot be opened "
                          f"({why})", p) from None


def _field_at(group, name: str, p: str):
    """The field (HDF5 dataset) ``group[name]``, None when absent; FormatError naming it
    when it cannot be opened or is a group."""
    import h5py

    ds = _at(group, name, p)
    if ds is not None and not isinstance(ds, h5py.Dataset):
        raise FormatError(f"{ds.name} is a group, not a field", p)
    return ds


def _group_at(group, name: str, p: str):
    """The group ``group[name]``, None when absent; FormatError naming it when it cannot
    be opened or is a field."""
    import h5py

    g = _at(group, name, p)
    if g is not None and not isinstance(g, h5py.Group):
        raise FormatError(f"{g.name} is a field, not a group", p)
    return g


def _check_fits_integers(a, want: np.dtype, name: str, where: str, p: str) -> None:
    """FormatError unless every value of ``a`` is a whole number that ``want`` (an integer
    type) holds: no silent wrap (300 as uint8), truncation (1.7) or overflow (1e20)."""
    a = np.asarray(a)
    if a.size == 0 or a.dtype.kind == "b":
        return
    info = np.iinfo(want)
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.floor(a)) | (a < info.min) | (a > info.max)
    elif a.dtype.kind in "iu":
        if np.iinfo(a.dtype).min >= info.min and np.iinfo(a.dtype).max <= info.max:
            return
        lo, hi = a.min(), a.max()
        if int(lo) >= info.min and int(hi) <= info.max:
            return
        bad = (a < info.min) | (a > info.max) if a.dtype.kind == "i" else a > info.max
    else:
        return
    idx = np.flatnonzero(bad)
    if len(idx):
        i = int(idx[0])
        raise FormatError(f"field {where}: {name} of ion {i} ({a[i]}) is not a whole number "
                          f"that {want.name} holds", p)


def _volume_ok(v) -> bool:
    """A window's volume in liprobe's ranges JSON: none, or a finite number >= 0 (0: none)."""
    if v is None:
        return True
    if type(v) not in (int, float):
        return False
    try:
        return math.isfinite(float(v)) and v >= 0
    except OverflowError:
        return False


def _check_finite_field(a, name: str, where: str, p: str) -> None:
    """FormatError at the first NaN or infinite value of a float column read into memory,
    naming its field and ion."""
    a = np.asarray(a)
    if a.dtype.kind != "f":
        return
    bad = np.flatnonzero(~np.isfinite(a))
    if len(bad):
        i = int(bad[0])
        raise FormatError(f"field {where}: {name} of ion {i} is not a finite number "
                          f"({a[i]})", p)


def _unstored(ds, p: str) -> str | None:
    """Why values a dataset declares are not (all) in the files, or None: a length declared
    (chunked or unallocated) and never written, which reading would allocate; a virtual
    dataset whose sources are missing or do not cover it (HDF5 would give its fill
    value); storage in external raw files (HDF5 finds them relative to the working
    folder and pads a short one with zeros: liprobe does not read them)."""
    import h5py

    if ds.is_virtual:
        return _virtual_gap(ds, p)
    plist = ds.id.get_create_plist()
    if plist.get_external_count():
        names = [os.fsdecode(plist.get_external(i)[0])
                 for i in range(plist.get_external_count())]
        return (f"is stored outside the HDF5 file, in external raw file(s) "
                f"{', '.join(names)}, which liprobe does not read (copy the values into "
                "the file)")
    if plist.get_layout() == h5py.h5d.COMPACT:
        return None
    if ds.chunks is None:
        return None if ds.id.get_storage_size() >= ds.nbytes else "holds none of its values"
    chunks = math.prod(-(-n // c) for n, c in zip(ds.shape, ds.chunks))
    got = ds.id.get_num_chunks()
    return None if got >= chunks else f"holds {got:,} of its {chunks:,} chunks"


def _virtual_gap(ds, p: str) -> str | None:
    """Why a virtual dataset's values are not all there, or None: a source file or
    dataset missing, or mappings that cover fewer points than the dataset holds."""
    import h5py

    folder = os.path.dirname(os.path.abspath(p))
    covered = 0
    for src in ds.virtual_sources():
        covered += src.vspace.get_select_npoints()
        if src.file_name == ".":
            there = src.dset_name in ds.file
        else:
            path = src.file_name if os.path.isabs(src.file_name) else \
                os.path.join(folder, src.file_name)
            if not os.path.isfile(path):
                return f"is a virtual field whose source file {src.file_name} is missing"
            try:
                with h5py.File(path, "r") as g:
                    there = src.dset_name in g
            except OSError:
                return f"is a virtual field whose source file {src.file_name} cannot be read"
        if not there:
            return (f"is a virtual field whose source {src.dset_name} in {src.file_name} "
                    "is missing")
    if covered < ds.size:
        return f"is a virtual field whose sources give {covered:,} of its {ds.size:,} values"
    return None


def _read(ds, p: str):
    """All values of a dataset; FormatError naming it when they are not all in the file
    or cannot be read."""
    why = _unstored(ds, p)
    if why is not None:
        raise FormatError(f"field {ds.name} declares shape {ds.shape} but {why}", p)
    try:
        return ds[()]
    except OSError as e:
        raise FormatError(f"field {ds.name} cannot be read ({e})", p) from None


def _open(p: str):
    import h5py

    check_readable(p)
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise FormatError(f"cannot be read as HDF5 ({e})", p) from None
    unopened: FormatError | None = None
    try:
        for name in f:
            try:          # a link elsewhere in the file (to raw data not copied along)
                g = _at(f, name, p)         # does not stop the NXapm entry being found
                ds = _at(g, "definition", p) if isinstance(g, h5py.Group) else None
                if not isinstance(g, h5py.Group) or not isinstance(ds, h5py.Dataset):
                    continue
                values = np.asarray(_read(ds, p)).ravel()
            except FormatError as e:
                unopened = unopened or e
                continue
            d = values[0] if values.size == 1 else None
            if (d.decode(errors="replace") if isinstance(d, bytes) else str(d)) == "NXapm":
                return f, g
    except (OSError, KeyError, ValueError, TypeError) as e:
        f.close()
        raise FormatError(f"cannot be read as HDF5 ({e})", p) from None
    except FormatError:
        f.close()
        raise
    f.close()
    raise FormatError("is an HDF5 file without an NXapm entry (no NXentry whose "
                      "definition is NXapm)" + ("" if unopened is None else
                                                 f"; {unopened.problem}"), p)


def _json(group, name, default, p: str):
    """The JSON text ``group/name`` decoded (``default`` when absent); FormatError naming
    the field when it is not JSON of the type of ``default``."""
    ds = None if group is None else _field_at(group, name, p)
    if ds is None:
        return default
    where = f"{group.name}/{name}"
    v = _read(ds, p)
    try:
        value = json.loads(v.decode() if isinstance(v, bytes) else v)
    except (TypeError, ValueError, RecursionError) as e:
        raise FormatError(f"{where} is not JSON text ({e})", p) from None
    if default is not None and not isinstance(value, type(default)):
        raise FormatError(f"{where} should hold a JSON {type(default).__name__}, not "
                          f"{type(value).__name__}", p)
    return value


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (an external link's target is another)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _source(ds, p: str):
    """A dataset as a read-only memory map when it is contiguous and uncompressed, else read."""
    offset = ds.id.get_offset()
    if ds.chunks is None and ds.compression is None and offset is not None and ds.size \
            and _same_file(ds.file.filename, p) and not ds.is_virtual \
            and not ds.id.get_create_plist().get_external_count():
        if offset + ds.size * ds.dtype.itemsize > os.path.getsize(p):
            raise FormatError(f"field {ds.name} runs past the end of the file (truncated?)", p)
        return np.memmap(p, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape), offset
    return _read(ds, p), None


def _pulse_delta(numbers: np.ndarray, dtype: np.dtype | None, field: str, p: str) -> np.ndarray:
    """Differences of the running pulse numbers, computed ``DEFAULT_CHUNK_IONS`` at a time.

    ``dtype``: the column's own type when liprobe wrote the file (a difference
    that does not fit it is a FormatError naming the ion); None for another
    program's file: int32 when every difference fits, else int64 (the first
    difference is the absolute number of the first ion's pulse, which may
    exceed 2^31). Differences are taken modulo 2^64, as liprobe's running sum
    is, so negative ones come back.
    """
    diffs = np.empty(len(numbers), dtype=np.int64)
    prev = np.uint64(0)
    for start in range(0, len(numbers), DEFAULT_CHUNK_IONS):
        block = np.asarray(numbers[start:start + DEFAULT_CHUNK_IONS])
        if block.dtype.kind not in "iu":
            raise FormatError(f"field {field} holds {block.dtype} values, not pulse numbers", p)
        block = block.astype(np.uint64)
        if len(block):
            diffs[start:start + len(block)] = np.diff(block, prepend=prev).view(np.int64)
            prev = block[-1]
    want = np.dtype(np.int32) if dtype is None else dtype
    if want.kind not in "iu":
        raise FormatError(f"field {field}: pulse_delta cannot be read as {want}", p)
    info = np.iinfo(want)
    bad = np.flatnonzero((diffs < info.min) | (diffs > info.max))
    if len(bad):
        if dtype is None:
            return diffs
        i = int(bad[0])
        raise FormatError(f"field {field}: pulse_delta of ion {i} ({diffs[i]}) does not fit "
                          f"the column's {want} values", p, f"ion {i}")
    return diffs.astype(want)


def _described_columns(entry, lp, p: str) -> list[dict]:
    """What each column is: from liprobe's ``column_map``, else from :data:`COLUMN_PATHS`."""
    described = _json(lp, "column_map", None, p)
    where = f"{entry.name}/liprobe/column_map"
    if described is None:
        return [{"name": c, "path": path_, "component": comp, "dtype": None, "unit": unit}
                for c, (path_, comp, _, unit) in COLUMN_PATHS.items()
                if _at(entry, path_, p) is not None]
    if not isinstance(described, list):
        raise FormatError(f"{where} should be a JSON list of columns", p)
    for d in described:
        ok = (isinstance(d, dict) and isinstance(d.get("name"), str)
              and isinstance(d.get("path"), str)
              and (d.get("component") is None or type(d.get("component")) is int))
        if ok and d.get("dtype") is not None:
            try:
                ok = isinstance(d["dtype"], str) and np.dtype(d["dtype"]).kind in "biuf"
            except (TypeError, ValueError):
                ok = False
        if not ok:
            raise FormatError(f"{where}: {json.dumps(d)[:80]} is not a column (name, path, "
                              "component, dtype)", p)
    return described


def read_nexus(path) -> Run:
    """Read the run of a NeXus NXapm file as a :class:`~liprobe.Run` (see :func:`write_nexus`).

    The per-ion fields of the module docstring become columns again (in the
    order and types they had, when liprobe wrote the file); contiguous
    fields are memory-mapped, nothing is read until a column is asked for,
    with two exceptions computed on opening, a chunk at a time, into memory
    (4 or 8 bytes per ion): ``pulse_delta``, the differences of the running
    pulse numbers, and a column whose stored type is not its own (an integer
    column stored as floats by another program; liprobe's own files need no
    such conversion).

    Returns
    -------
    Run
        ``meta``: ``path``, ``format`` (``"nxs"``), ``entry``, ``fields``
        (column: NeXus path), ``units``, ``layout``, ``metadata`` (the
        export's metadata), ``source_meta`` (the exported run's own meta) and
        ``reconstruction`` when liprobe reconstructed it.

    Raises
    ------
    FormatError
        Not HDF5, no NXapm entry, no per-ion field of the table, a field of
        the wrong shape (positions not ``(n, 3)``, a 2-D mass-to-charge, ...)
        or type, fields of different lengths, ``liprobe`` collection entries
        that are not JSON, pulse numbers whose differences do not fit the
        column, a link that cannot be followed (a loop, a missing external
        file) or a field that declares more values than the file holds; a NaN
        or infinite value of a float column read into memory (compressed,
        chunked or converted: at once; a memory-mapped column's when read), or
        a value that does not fit the column's type.
    """
    import h5py

    p = os.fspath(path)
    f, entry = _open(p)
    try:
        lp = _group_at(entry, "liprobe", p)
        described = _described_columns(entry, lp, p)
        cols: dict[str, np.ndarray] = {}
        fields: dict[str, str] = {}
        units: dict[str, str] = {}
        layout: dict[str, tuple[int, int]] = {}
        loaded: dict[str, tuple] = {}
        lengths: dict[str, int] = {}
        todo: list[tuple] = []
        for d in described:
            name, rel, comp = d["name"], d["path"], d["component"]
            where = rel if rel.startswith("/") else f"{entry.name}/{rel}"
            ds = _at(entry, rel, p)
            if ds is None:
                raise FormatError(f"field {where} of column '{name}' is missing", p)
            if not isinstance(ds, h5py.Dataset):
                raise FormatError(f"{where} of column '{name}' is a group, not a field", p)
            if ds.dtype.kind not in "biuf":
                raise FormatError(f"field {where} holds {ds.dtype} values, not numbers", p)
            if comp is None and ds.ndim != 1:
                raise FormatError(f"field {where} has shape {ds.shape}: column '{name}' needs "
                                  "one value per ion, shape (n,)", p)
            if comp is not None:
                width = 1 + max(v[1] or 0 for v in COLUMN_PATHS.values() if v[0] == rel) \
                    if d.get("dtype") is None else comp + 1
                if ds.ndim != 2 or ds.shape[1] < width or comp < 0:
                    raise FormatError(f"field {where} has shape {ds.shape}, not (n, {width}) "
                                      f"(column '{name}' is its component {comp})", p)
            lengths[where] = ds.shape[0]
            todo.append((d, name, rel, comp, where, ds))
        if len(set(lengths.values())) > 1:        # before any value is read
            (a_, na), *others = lengths.items()
            b_, nb = next((k, v) for k, v in others if v != na)
            raise FormatError(f"field {b_} holds {nb} ions but {a_} holds {na}: the per-ion "
                              "fields of a run must have one value per ion", p)
        for d, name, rel, comp, where, ds in todo:
            if rel not in loaded:
                loaded[rel] = _source(ds, p)
            src, offset = loaded[rel]
            a = src if comp is None else src[:, comp]
            want = np.dtype(d["dtype"]) if d.get("dtype") else None
            if name == "pulse_delta" and rel == COLUMN_PATHS["pulse_delta"][0]:
                a = _pulse_delta(a, want, where, p)
                offset = None
            elif want is not None and want.newbyteorder("<") != a.dtype.newbyteorder("<"):
                if want.kind in "iu":
                    _check_fits_integers(a, want, name, where, p)
                if want.kind in "iu" and a.dtype.kind in "iu" \
                        and want.itemsize == a.dtype.itemsize:
                    a = a.view(want.newbyteorder(a.dtype.byteorder))   # uint32 -> int32
                else:
                    _check_finite_field(a, name, where, p)      # before the conversion
                    with np.errstate(over="ignore"):
                        b = a.astype(want.newbyteorder("="))
                    if b.dtype.kind == "f" and a.dtype.kind == "f":
                        lost = np.flatnonzero(~np.isfinite(b))
                        if len(lost):
                            i = int(lost[0])
                            raise FormatError(f"field {where}: {name} of ion {i} ({a[i]}) "
                                              f"does not fit {want.name}", p)
                    a, offset = b, None
            if offset is None:
                # read into memory (chunked, compressed or converted): checked at once,
                # as a memory-mapped column is when read (Run._check_finite)
                _check_finite_field(a, name, where, p)
            cols[name] = a
            fields[name] = where
            units[name] = d.get("unit") or ""
            if offset is not None and a.dtype.kind == "f":
                width = src.dtype.itemsize
                stride = width * (src.shape[1] if src.ndim == 2 else 1)
                layout[name] = (offset + (comp or 0) * width, stride)
        if not cols:
            raise FormatError("the NXapm entry holds no per-ion field liprobe reads "
                              "(mass_to_charge, reconstructed_positions, ...)", p)
        source_meta = _json(lp, "run_meta", {}, p)
        meta = {"path": p, "format": "nxs", "entry": entry.name, "fields": fields,
                "units": units, "layout": layout, "metadata": _json(lp, "metadata", {}, p),
                "source_meta": source_meta}
        if source_meta.get("reconstruction"):
            meta["reconstruction"] = source_meta["reconstruction"]
        return Run(cols, meta)
    finally:
        f.close()


def _ion_from_nxatom(g, p: str) -> Ion:
    """The ion of an NXatom group: its ``name`` if it agrees with its hashes, else the hashes."""
    from periodictable import elements

    cs, nh, nm = (_field_at(g, k, p) for k in ("charge_state", "nuclide_hash", "name"))
    try:
        charge = int(np.asarray(_read(cs, p))) if cs is not None else 0
        hashes = [int(h) for h in np.asarray(_read(nh, p)).ravel() if int(h)] \
            if nh is not None else []
    except (TypeError, ValueError, OverflowError) as e:
        raise FormatError(f"{g.name}: charge_state or nuclide_hash is not integers ({e})",
                          p) from None
    if charge > CHARGE_LIMIT:
        raise FormatError(f"{g.name}/charge_state {charge} is above the limit of "
                          f"{CHARGE_LIMIT}", p)
    counts: dict[str, int] = {}
    for h in hashes:
        z = h % 256
        try:
            el = elements[z].symbol
        except (KeyError, IndexError, ValueError):
            el = None
        if el is None or z < 1:
            raise FormatError(f"{g.name}/nuclide_hash {h} names proton number {z}, which is no "
                              "element", p) from None
        counts[el] = counts.get(el, 0) + 1
    name = _read(nm, p) if nm is not None else None
    name = name.decode(errors="replace") if isinstance(name, bytes) else name
    if name is not None and not isinstance(name, str):
        raise FormatError(f"{g.name}/name is not text", p)
    charge_ = charge if charge > 0 else None
    if not counts:
        if not name:
            raise FormatError(f"{g.name} has neither atoms nor a name", p)
        label = name[:-charge] if charge_ and name.endswith("+" * charge) else name
        try:
            return Ion((), charge_, label=label)
        except ValueError as e:
            raise FormatError(f"{g.name}/name '{name[:80]}': {e}", p) from None
    if name:
        try:
            ion = parse_ion(name) if not name.endswith("?") else Ion(parse_formula(name[:-1]),
                                                                      None)
        except ValueError:
            ion = None
        if ion is not None and dict(ion.atoms) == counts and ion.charge == charge_:
            return ion
    atoms = tuple(counts.items())
    try:
        return Ion(atoms, charge_)
    except ValueError as e:
        raise FormatError(f"{g.name}: {e} ({format_formula(atoms)})", p) from None


def read_nexus_ranges(path) -> RangeTable:
    """The ranging definitions of a NeXus NXapm file as a :class:`~liprobe.RangeTable`.

    Each ``ionN`` of ``atom_probe*/ranging/peak_identification`` gives its
    windows (``mass_to_charge_range``, in Da) and its ion: its ``name`` in
    liprobe's grammar when that agrees with its ``nuclide_hash`` and
    ``charge_state`` (which keeps the order of its atoms), else the atoms of
    the hashes (``charge_state`` 0: unknown). Volumes and colours come from
    the ``liprobe`` collection when liprobe wrote the file.

    Raises
    ------
    FormatError
        Not HDF5, no NXapm entry, no ranging definitions, an ``ionN``
        without windows or with a ``nuclide_hash`` that names no element or a
        ``charge_state`` above the limit, a ``liprobe`` collection entry that
        is not JSON, or a link or field that cannot be read.
    RangeError
        Overlapping windows of different ions.
    """
    p = os.fspath(path)
    f, entry = _open(p)
    try:
        pid = None
        for name in sorted(entry):
            if name.startswith("atom_probe"):
                pid = _group_at(entry, f"{name}/ranging/peak_identification", p)
                if pid is not None:
                    break
        if pid is None:
            raise FormatError("the NXapm entry has no ranging definitions "
                              "(atom_probe/ranging/peak_identification)", p)
        groups = sorted((k for k in pid if k.startswith("ion") and k[3:].isdigit()),
                        key=lambda k: int(k[3:]))
        lp = _group_at(entry, "liprobe", p)
        extra = {}
        for r in _json(lp, "ranges", [], p):
            if not isinstance(r, dict) or not all(type(r.get(k)) in (int, float)
                                                  for k in ("lo", "hi")) \
                    or not _volume_ok(r.get("volume")) \
                    or not isinstance(r.get("color"), (str, type(None))):
                raise FormatError(f"{entry.name}/liprobe/ranges: {json.dumps(r)[:80]} is not a "
                                  "window (lo, hi, ion, volume, color)", p)
            extra[(r["lo"], r["hi"])] = r
        ranges = []
        for k in groups:
            g = _group_at(pid, k, p)
            ion = _ion_from_nxatom(g, p)
            ds = _field_at(g, "mass_to_charge_range", p)
            if ds is None:
                raise FormatError(f"{g.name} has no mass_to_charge_range: the windows of its "
                                  "ion are not given", p)
            try:
                windows = np.asarray(_read(ds, p), dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise FormatError(f"{g.name}/mass_to_charge_range is not numbers ({e})",
                                  p) from None
            if windows.ndim > 2 or windows.size % 2 or (windows.ndim == 2
                                                        and windows.shape[1] != 2):
                raise FormatError(f"{g.name}/mass_to_charge_range has shape {windows.shape}: "
                                  "NXapm gives (windows, 2), each [min, max] in Da", p)
            for lo, hi in windows.reshape(-1, 2):
                if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                    raise FormatError(f"{g.name}/mass_to_charge_range [{lo}, {hi}] is not a "
                                      "window (finite, min below max)", p)
                kept = extra.get((float(lo), float(hi)), {})
                ranges.append(Range(float(lo), float(hi), ion, kept.get("volume") or None,
                                    kept.get("color")))
        said = tuple(str(w) for w in _json(lp, "range_warnings", [], p))
        return RangeTable.from_ranges(ranges, p, said)
    finally:
        f.close()
