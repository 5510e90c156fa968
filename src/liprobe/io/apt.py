"""AP Suite 6 ``.apt`` files: a file header, then self-describing sections; read and written.

:func:`read_apt` reads any such file; :func:`write_apt` writes a run's columns
under their AP Suite section names (the inverse of the table below).

Layout (all little-endian):

* File header, 540 bytes: signature ``APT\\0``; int32 header size (540);
  int32 header version (2); 256 UTF-16 code units of the original file name
  (NUL-terminated); uint64 creation time as a Windows FILETIME (100 ns ticks
  since 1601-01-01 UTC); uint64 ion count.
* Sections, back to back. Each starts with a header: signature ``SEC\\0``;
  int32 header size (148; 172 for ``Position``, whose 24 extra bytes are the
  float32 bounding box xmin, xmax, ymin, ymax, zmin, zmax in nm); int32
  header version; 32 UTF-16 code units of section name; int32 section
  version; uint32 relationship type (1: one record per ion); uint32 record
  type (1: fixed size); uint32 record data type (1 signed int, 2 unsigned
  int, 3 IEEE float, 4 character string, 5 other); int32 data type size in
  bits; int32 record size in bytes; 16 UTF-16 code units of unit; uint64
  record count; uint64 byte count. The data follow at section start +
  header size and take byte-count bytes (possibly more than record count x
  record size); the next section starts right after them.

How sections become :class:`~liprobe.Run` columns
-------------------------------------------------

======================== =========================================================
section                  column(s)
======================== =========================================================
``Mass``                 ``mass`` (Da)
``Position``             ``x``, ``y``, ``z`` (nm)
``tof``                  ``tof`` (ns)
``Epos ToF``             ``tof`` when there is no ``tof`` section
``XDet_mm``/``YDet_mm``  ``det_x``/``det_y`` (mm)
``Detector Coordinates`` ``det_x``, ``det_y`` where ``XDet_mm``/``YDet_mm`` do not
                         give them. AP Suite writes it next to those two sections
                         with the same values, so it is then skipped (listed in
                         ``meta["skipped"]``) rather than kept as a duplicate pair.
``Multiplicity``         ``multiplicity``
``pulseDelta``           ``pulse_delta``
``Delta Pulse``          ``pulse_delta`` when there is no ``pulseDelta`` section
``Voltage``              ``v_dc`` (V)
``Vref``                 ``v_dc`` when there is no ``Voltage`` section
``Pulse Voltage``        ``v_pulse`` (V)
``z``                    ``apt_z``: an int64 count of ions, not a coordinate
anything else            its own name (``tofc``, ``Vap``, ``pulse``, ``freq``,
                         ``tElapsed``, ``erate``, ...); a name that is also a
                         standard column name gets the prefix ``apt_``
======================== =========================================================

A fallback section that does not get its standard name (``Vref`` next to
``Voltage``, ...) keeps its own name. A section whose records hold k > 1
values (other than ``Position`` and ``Detector Coordinates``) becomes k
columns ``name_0`` ... ``name_{k-1}``.

Sections that are well formed but not one value set per ion -- relationship
type other than 1, record type other than 1, or character/"other" data --
are skipped and listed in ``meta["skipped"]`` with the reason. Structural
faults (bad signatures, a truncated file, counts that disagree, a data type
size or record size that cannot be laid out, duplicate section names,
trailing bytes) raise :class:`~liprobe.errors.FormatError` with the byte
offset.

Every column is a view into a read-only memory map of the file: opening
reads the headers only.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping

import numpy as np

from ..errors import FormatError
from ..run import APT_ALIASES, COLUMN_UNITS, Run
from ._files import atomic_write, check_readable, memmap_records

__all__ = ["read_apt", "write_apt", "FILE_HEADER_DTYPE", "SECTION_HEADER_DTYPE", "FILE_SIGNATURE",
           "SECTION_SIGNATURE", "SECTION_TYPES", "COLUMN_SECTIONS"]

FILE_SIGNATURE = b"APT\x00"
SECTION_SIGNATURE = b"SEC\x00"
FILE_HEADER_SIZE = 540
FILE_HEADER_VERSION = 2

#: The 540-byte file header.
FILE_HEADER_DTYPE = np.dtype([
    ("signature", "S4"),
    ("header_size", "<i4"),
    ("header_version", "<i4"),
    ("filename", "<u2", (256,)),
    ("creation_filetime", "<u8"),
    ("ion_count", "<u8"),
])

#: The common 148-byte part of a section header.
SECTION_HEADER_DTYPE = np.dtype([
    ("signature", "S4"),
    ("header_size", "<i4"),
    ("header_version", "<i4"),
    ("name", "<u2", (32,)),
    ("section_version", "<i4"),
    ("relationship_type", "<u4"),
    ("record_type", "<u4"),
    ("data_type", "<u4"),
    ("data_type_bits", "<i4"),
    ("record_size", "<i4"),
    ("unit", "<u2", (16,)),
    ("record_count", "<u8"),
    ("byte_count", "<u8"),
])

assert FILE_HEADER_DTYPE.itemsize == FILE_HEADER_SIZE
SECTION_HEADER_SIZE = SECTION_HEADER_DTYPE.itemsize  # 148
BBOX_BYTES = 24  # six float32 after the Position section header

_DATA_TYPE_NAMES = {1: "int", 2: "uint", 3: "float", 4: "string", 5: "other"}
_NUMPY_KIND = {1: "i", 2: "u", 3: "f"}
_ALLOWED_BITS = {1: (8, 16, 32, 64), 2: (8, 16, 32, 64), 3: (32, 64)}

# Standard column(s) of a section, the sections that take precedence over it
# for those names, and the units accepted for it (besides an empty unit).
_MAPPED = {
    "Mass": (("mass",), (), ("da", "amu")),
    "Position": (("x", "y", "z"), (), ("nm",)),
    "tof": (("tof",), (), ("ns",)),
    "Epos ToF": (("tof",), ("tof",), ("ns",)),
    "XDet_mm": (("det_x",), (), ("mm",)),
    "YDet_mm": (("det_y",), (), ("mm",)),
    "Detector Coordinates": (("det_x", "det_y"), ("XDet_mm", "YDet_mm"), ("mm",)),
    "Multiplicity": (("multiplicity",), (), ()),
    "pulseDelta": (("pulse_delta",), (), ()),
    "Delta Pulse": (("pulse_delta",), ("pulseDelta",), ()),
    "Voltage": (("v_dc",), (), ("v",)),
    "Vref": (("v_dc",), ("Voltage",), ("v",)),
    "Pulse Voltage": (("v_pulse",), (), ("v",)),
}


def _bad_name(name: str) -> bool:
    """A section name that is empty or not valid UTF-16 (such sections are skipped)."""
    return not name.strip() or "\ufffd" in name


def _utf16(units: np.ndarray) -> str:
    """Text of a NUL-terminated UTF-16 field (code units as uint16)."""
    raw = np.asarray(units, dtype="<u2").tobytes()
    text = raw.decode("utf-16-le", errors="replace")
    return text.split("\x00", 1)[0]


def _filetime_iso(ticks: int) -> str | None:
    """ISO 8601 UTC time of a Windows FILETIME, or None if out of datetime's range."""
    try:
        t = (_dt.datetime(1601, 1, 1, tzinfo=_dt.UTC)
             + _dt.timedelta(microseconds=ticks // 10))
    except OverflowError:
        return None
    return t.isoformat()


def _read_at(f, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _read_file_header(f, p: str, size: int) -> dict:
    head = _read_at(f, 0, FILE_HEADER_SIZE)
    if head[:4] != FILE_SIGNATURE:
        raise FormatError(f"not an AP Suite .apt file: it starts with {head[:4]!r}, "
                          f"not the signature {FILE_SIGNATURE!r}", p, "byte 0")
    if len(head) < FILE_HEADER_SIZE:
        raise FormatError(f"truncated file header: it needs {FILE_HEADER_SIZE} bytes but "
                          f"the file ends at byte {size}", p, "byte 0")
    h = np.frombuffer(head, dtype=FILE_HEADER_DTYPE)[0]
    if int(h["header_size"]) != FILE_HEADER_SIZE:
        raise FormatError(f"file header size is {int(h['header_size'])}, expected "
                          f"{FILE_HEADER_SIZE} (unsupported .apt variant)", p, "byte 4")
    if int(h["header_version"]) != FILE_HEADER_VERSION:
        raise FormatError(f"unsupported .apt header version {int(h['header_version'])} "
                          f"(liprobe reads version {FILE_HEADER_VERSION})", p, "byte 8")
    n = int(h["ion_count"])
    if n == 0:
        raise FormatError("the file header gives an ion count of 0", p, "byte 532")
    ticks = int(h["creation_filetime"])
    return {
        "header_size": FILE_HEADER_SIZE,
        "header_version": FILE_HEADER_VERSION,
        "original_filename": _utf16(h["filename"]),
        "creation_filetime": ticks,
        "creation_time": _filetime_iso(ticks),
        "ion_count": n,
    }


def _read_section(f, p: str, size: int, offset: int) -> dict:
    """Parse and check the section header at ``offset``; dict of its fields."""
    left = size - offset
    raw = _read_at(f, offset, SECTION_HEADER_SIZE)
    where = f"byte {offset}"
    if len(raw) < SECTION_HEADER_SIZE:
        if raw.startswith(SECTION_SIGNATURE):
            raise FormatError(f"section header at byte {offset} needs {SECTION_HEADER_SIZE} "
                              f"bytes but the file ends at byte {size}", p, where)
        raise FormatError(f"{left} trailing bytes after the last section, too few for a "
                          f"{SECTION_HEADER_SIZE}-byte section header", p, where)
    h = np.frombuffer(raw, dtype=SECTION_HEADER_DTYPE)[0]
    sig = raw[:4]
    if sig != SECTION_SIGNATURE:
        raise FormatError(f"expected a section header starting with {SECTION_SIGNATURE!r}, "
                          f"found {sig!r}", p, where)
    name = _utf16(h["name"])
    header_size = int(h["header_size"])
    if header_size < SECTION_HEADER_SIZE:
        raise FormatError(f"section '{name}' has header size {header_size}, less than the "
                          f"{SECTION_HEADER_SIZE} bytes of a section header", p,
                          f"byte {offset + 4}")
    byte_count = int(h["byte_count"])
    end = offset + header_size + byte_count
    if end > size:
        raise FormatError(f"section '{name}' at byte {offset} needs {header_size + byte_count} "
                          f"bytes but the file ends at byte {size}", p, where)
    sec = {
        "name": name,
        "offset": offset,
        "header_size": header_size,
        "header_version": int(h["header_version"]),
        "section_version": int(h["section_version"]),
        "relationship_type": int(h["relationship_type"]),
        "record_type": int(h["record_type"]),
        "data_type": int(h["data_type"]),
        "data_type_name": _DATA_TYPE_NAMES.get(int(h["data_type"]), "unknown"),
        "data_type_bits": int(h["data_type_bits"]),
        "record_size": int(h["record_size"]),
        "unit": _utf16(h["unit"]),
        "record_count": int(h["record_count"]),
        "byte_count": byte_count,
        "data_offset": offset + header_size,
        "end": end,
    }
    if header_size > SECTION_HEADER_SIZE:
        sec["extra"] = _read_at(f, offset + SECTION_HEADER_SIZE, header_size - SECTION_HEADER_SIZE)
    return sec


def _skip_reason(sec: dict) -> str | None:
    """Why a well-formed section is not one value set per ion (None if it is)."""
    if sec["relationship_type"] != 1:
        return f"relationship type {sec['relationship_type']} (not one record per ion)"
    if sec["record_type"] != 1:
        return f"record type {sec['record_type']} (not fixed-size records)"
    if sec["data_type"] in (4, 5):
        return f"record data type {sec['data_type']} ({sec['data_type_name']}), not numbers"
    return None


def _value_dtype(sec: dict, p: str) -> tuple[np.dtype, int]:
    """The little-endian numpy type of one value, and values per record."""
    name, dt, bits, rs = sec["name"], sec["data_type"], sec["data_type_bits"], sec["record_size"]
    where = f"byte {sec['offset'] + 88}"
    if dt not in _NUMPY_KIND:
        raise FormatError(f"section '{name}' has unknown record data type {dt}", p, where)
    if bits not in _ALLOWED_BITS[dt]:
        raise FormatError(f"section '{name}': a {bits}-bit {sec['data_type_name']} cannot be "
                          f"read (record data type {dt}, data type size {bits} bits)", p, where)
    width = bits // 8
    if rs <= 0 or rs % width:
        raise FormatError(f"section '{name}': record size {rs} bytes is not a positive "
                          f"multiple of its {bits}-bit values", p, f"byte {sec['offset'] + 96}")
    return np.dtype(f"<{_NUMPY_KIND[dt]}{width}"), rs // width


def _column_names(sec: dict, k: int, present: set, p: str) -> list[str | None]:
    """Column name for each of the k values of a record (None: not kept)."""
    name = sec["name"]
    mapped = _MAPPED.get(name)
    if mapped is not None:
        targets, before, units = mapped
        if len(targets) != k:
            raise FormatError(f"section '{name}' has {k} value(s) per record, liprobe "
                              f"expects {len(targets)} ({', '.join(targets)})",
                              p, f"byte {sec['offset'] + 96}")
        unit = sec["unit"]
        if unit and units and unit.lower() not in units:
            raise FormatError(f"section '{name}' is in '{unit}', liprobe expects "
                              f"{' or '.join(units)}", p, f"byte {sec['offset'] + 100}")
        if name == "Detector Coordinates":
            # each component unless an XDet_mm / YDet_mm section gives it
            return [None if other in present else t for t, other in zip(targets, before)]
        if not any(b in present for b in before):
            return list(targets)
    base = f"apt_{name}" if name in COLUMN_UNITS else name
    return [base] if k == 1 else [f"{base}_{j}" for j in range(k)]


def read_apt(path) -> Run:
    """Read an AP Suite 6 ``.apt`` file as a memory-mapped :class:`~liprobe.Run`.

    Only the headers are read here; each column is a little-endian view into
    a read-only memory map of the file and is converted when first asked for.

    Parameters
    ----------
    path : str or path-like
        The ``.apt`` file.

    Returns
    -------
    Run
        Columns as described in the module docstring (``mass`` in Da,
        ``x y z`` in nm, ``tof``/``tofc`` in ns, ``det_x det_y`` in mm,
        voltages in V, other sections in the unit their header names).
        ``meta`` holds ``path``; ``format`` (``"apt"``); the file header
        fields ``header_size``, ``header_version``, ``original_filename``,
        ``creation_filetime`` (100 ns ticks since 1601-01-01 UTC),
        ``creation_time`` (ISO 8601, UTC) and ``ion_count``; ``sections``, one
        dict per section in file order (``name``, ``offset`` of its header and
        ``data_offset`` of its data in bytes, ``header_size``, versions,
        ``relationship_type``, ``record_type``, ``data_type`` and
        ``data_type_name``, ``data_type_bits``, ``record_size`` in bytes,
        ``unit``, ``record_count``, ``byte_count``, ``columns`` it gave);
        ``bounding_box_nm`` (xmin, xmax, ymin, ymax, zmin, zmax from the
        ``Position`` header, or None); ``units`` (column: unit string from
        the file); ``skipped`` (section name: reason); and ``layout``
        (float column: byte offset of its first value, stride in bytes).

    Raises
    ------
    FormatError
        With the byte offset, for a missing or empty file, a wrong file or
        section signature, an unsupported header size or version, an ion
        count of 0, a section running past the end of the file, a record
        count other than the ion count, a data type size or record size that
        cannot be laid out, a duplicate section name, or bytes after the
        last section too few to be one.
    """
    p = os.fspath(path)
    if os.path.isfile(p) and os.path.getsize(p) == 0:
        raise FormatError(f"file is empty: an .apt file starts with a {FILE_HEADER_SIZE}-byte "
                          "header", p, "byte 0")
    size = check_readable(p)
    sections: list[dict] = []
    with open(p, "rb") as f:
        header = _read_file_header(f, p, size)
        n = header["ion_count"]
        offset = FILE_HEADER_SIZE
        seen: dict[str, int] = {}
        while offset < size:
            sec = _read_section(f, p, size, offset)
            if sec["name"] in seen and not _bad_name(sec["name"]):     # those are skipped
                raise FormatError(f"duplicate section '{sec['name']}' (first at byte "
                                  f"{seen[sec['name']]})", p, f"byte {offset}")
            seen[sec["name"]] = offset
            sections.append(sec)
            offset = sec["end"]
    if not sections:
        raise FormatError("the file has a header but no sections", p,
                          f"byte {FILE_HEADER_SIZE}")

    present = {s["name"] for s in sections}
    cols: dict[str, np.ndarray] = {}
    layout: dict[str, tuple[int, int]] = {}
    units: dict[str, str] = {}
    skipped: dict[str, str] = {}
    bbox = None
    infos = []
    for sec in sections:
        extra = sec.pop("extra", b"")
        del sec["end"]
        info = dict(sec, columns=())
        infos.append(info)
        name = sec["name"]
        if name == "Position" and len(extra) >= BBOX_BYTES:
            bbox = tuple(float(v) for v in np.frombuffer(extra[:BBOX_BYTES], dtype="<f4"))
        reason = _skip_reason(sec)
        if _bad_name(name):                             # no column named '' or '\ufffd'
            reason = ("its name is " + ("empty" if not name.strip() else
                                        "not valid UTF-16 text") + ": not a section AP "
                      "Suite writes")
        if reason is not None:
            skipped[name] = reason if name not in skipped else \
                f"{skipped[name]} (and {sum(1 for s in sections if s['name'] == name)} such)"
            continue
        if sec["record_count"] != n:
            raise FormatError(f"section '{name}' has {sec['record_count']} records but the "
                              f"file header gives {n} ions", p, f"byte {sec['offset'] + 132}")
        value, k = _value_dtype(sec, p)
        need = n * sec["record_size"]
        if sec["byte_count"] < need:
            raise FormatError(f"section '{name}' byte count {sec['byte_count']} is less than "
                              f"{n} records x {sec['record_size']} bytes = {need}",
                              p, f"byte {sec['offset'] + 140}")
        targets = _column_names(sec, k, present, p)
        kept = [(j, t) for j, t in enumerate(targets) if t is not None]
        if not kept:
            skipped[name] = ("det_x and det_y come from " + " and ".join(_MAPPED[name][1])
                             + ", which AP Suite writes with the same values")
            continue
        for _, t in kept:
            if t in cols:
                raise FormatError(f"section '{name}' would give column '{t}', which another "
                                  "section already gives", p, f"byte {sec['offset']}")
        rec = np.dtype({"names": [t for _, t in kept],
                        "formats": [value] * len(kept),
                        "offsets": [j * value.itemsize for j, _ in kept],
                        "itemsize": sec["record_size"]})
        data = memmap_records(p, rec, sec["data_offset"], n)
        for j, t in kept:
            cols[t] = data[t]
            units[t] = sec["unit"]
            if value.kind == "f":
                layout[t] = (sec["data_offset"] + j * value.itemsize, sec["record_size"])
        info["columns"] = tuple(t for _, t in kept)

    if not cols:
        raise FormatError("no section holds one number per ion (skipped: "
                          + "; ".join(f"'{k}': {v}" for k, v in skipped.items()) + ")",
                          p, f"byte {FILE_HEADER_SIZE}")
    meta = {"path": p, "format": "apt", **header, "sections": infos,
            "bounding_box_nm": bbox, "units": units, "skipped": skipped, "layout": layout}
    return Run(cols, meta)


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------

#: AP Suite section names liprobe writes, with the value type and unit AP Suite
#: gives them (one value per ion; ``Position`` and ``Detector Coordinates`` are
#: written from ``x y z`` and ``det_x det_y``). These are the names the ifes
#: reader registers; it refuses a file with any other name.
SECTION_TYPES: dict[str, tuple[str, str]] = {
    "Mass": ("<f4", "Da"), "tof": ("<f4", "ns"), "tofc": ("<f4", "ns"), "tofb": ("<f4", "ns"),
    "XDet_mm": ("<f4", "mm"), "YDet_mm": ("<f4", "mm"), "Multiplicity": ("<i4", ""),
    "pulseDelta": ("<i2", ""), "Voltage": ("<f4", "V"), "Vref": ("<f4", "V"),
    "Vap": ("<f4", "V"), "Pulse Voltage": ("<f4", "V"), "z": ("<i8", "ions"),
    "pulse": ("<f4", ""), "freq": ("<f4", "Hz"), "tElapsed": ("<f4", ""),
    "erate": ("<f4", "%/100"), "TargetErate": ("<f4", "%/100"), "TargetFlux": ("<f4", ""),
    "xstage": ("<i4", ""), "ystage": ("<i4", ""), "zstage": ("<i4", ""), "tstage": ("<u2", ""),
    "Pres": ("<f4", "torr"), "VAnodeMon": ("<f4", ""), "Temp": ("<f4", "K"),
    "AmbTemp": ("<f4", "C"), "laserx": ("<i4", ""), "lasery": ("<i4", ""),
    "laserz": ("<i4", ""), "laserpower": ("<f4", ""), "FractureGuard": ("<u2", ""),
    "Noise": ("<f4", "ions"), "Uniformity": ("<f4", ""), "xs": ("<f4", "nm"),
    "ys": ("<f4", "nm"), "zs": ("<f4", "nm"), "rTip": ("<f4", "nm"), "zApex": ("<f4", "nm"),
    "zSphereCorr": ("<f4", "nm"),
}

#: liprobe's column names and the AP Suite section each is written to (the
#: inverse of what :func:`read_apt` does; ``x y z`` go to ``Position`` together).
COLUMN_SECTIONS: dict[str, str] = {
    **{column: section for section, column in APT_ALIASES.items()}, "tof": "tof", "apt_z": "z"}

_POSITION = ("x", "y", "z")
_CHUNK_IONS = 1 << 20


def _section_of(column: str) -> str | None:
    """The AP Suite section a column is written to, or None if it has none."""
    if column in COLUMN_SECTIONS:
        return COLUMN_SECTIONS[column]
    if column.startswith("apt_") and column[4:] in SECTION_TYPES:
        return column[4:]           # a section whose name is also one of liprobe's columns
    if column in SECTION_TYPES and column not in COLUMN_UNITS:
        return column               # tofc, Vap, erate, ... keep their names
    return None


def _utf16_units(text: str, units: int, what: str, p: str) -> np.ndarray:
    raw = np.frombuffer(text.encode("utf-16-le"), dtype="<u2")
    if len(raw) >= units:
        raise FormatError(f"{what} '{text}' is longer than the {units - 1} UTF-16 code "
                          "units an .apt header holds", p)
    out = np.zeros(units, dtype="<u2")
    out[:len(raw)] = raw
    return out


def _section_header(name: str, value: np.dtype, k: int, unit: str, n: int, p: str,
                    extra: int = 0) -> np.ndarray:
    h = np.zeros((), dtype=SECTION_HEADER_DTYPE)
    h["signature"] = SECTION_SIGNATURE
    h["header_size"] = SECTION_HEADER_SIZE + extra
    h["header_version"] = 2
    h["name"] = _utf16_units(name, 32, "section name", p)
    h["section_version"] = 1
    h["relationship_type"] = 1
    h["record_type"] = 1
    h["data_type"] = {"i": 1, "u": 2, "f": 3}[value.kind]
    h["data_type_bits"] = 8 * value.itemsize
    h["record_size"] = k * value.itemsize
    h["unit"] = _utf16_units(unit, 16, "unit", p)
    h["record_count"] = n
    h["byte_count"] = n * k * value.itemsize
    return h


def _converted(chunk: np.ndarray, value: np.dtype, name: str, start: int, p: str) -> np.ndarray:
    """``chunk`` as ``value`` (little-endian); FormatError for a value that does not fit."""
    if value.kind in "iu":
        if chunk.dtype.kind == "f":
            raise FormatError(f"column '{name}' must hold integers to be written as an "
                              f"{8 * value.itemsize}-bit integer section", p)
        info = np.iinfo(value)
        if len(chunk) and chunk.dtype.kind in "iu":
            bad = np.flatnonzero((chunk < info.min) | (chunk > info.max))
            if len(bad):
                i = start + int(bad[0])
                raise FormatError(f"{name} of ion {i} ({chunk[bad[0]]}) does not fit the "
                                  f"{value.name} values of its .apt section", p, f"ion {i}")
    return np.asarray(chunk).astype(value, copy=False)


def _check_int16(run: Run, name: str, p: str) -> None:
    """FormatError unless every value of ``name`` fits AP Suite's int16 ``pulseDelta``."""
    for start, chunk in run.chunks(name, _CHUNK_IONS):
        if chunk.dtype.kind not in "iu" or not len(chunk):
            continue                # floats are refused later, with their message
        bad = np.flatnonzero((chunk < -(1 << 15)) | (chunk >= (1 << 15)))
        if len(bad):
            i = start + int(bad[0])
            raise FormatError(f"{name} of ion {i} ({chunk[bad[0]]}) does not fit the 16 bits of "
                              "the .apt pulseDelta section (ifes and AP Suite read it as int16); "
                              f"leave {name} out with columns=[...] (liprobe export --columns)",
                              p, f"ion {i}")


def _source_plan(run: Run, names: list[str]) -> tuple[list[tuple], set[str]]:
    """The sections of the ``.apt`` a run was read from, as they were (name, value type,
    unit, columns, bounding box), for those whose columns are all being written; and
    the columns they take.

    This keeps ``.apt`` -> liprobe -> ``.apt`` to the same sections, whatever
    variant the source used (``Vref``, ``Epos ToF``, ``Delta Pulse``, a
    ``Detector Coordinates`` section alone, ``amu``, an empty unit, unsigned
    multiplicities, a section ifes does not register, ...).
    """
    if run.format != "apt":
        return [], set()
    infos = [s for s in run.meta.get("sections") or () if isinstance(s, Mapping)]
    by_name = {s.get("name"): s for s in infos}
    wanted = set(names)
    plan: list[tuple] = []
    taken: set[str] = set()
    for s in infos:
        name = s.get("name")
        cols = tuple(s.get("columns") or ())
        duplicate = False
        if not cols and name == "Detector Coordinates":
            # skipped on reading: the same values as XDet_mm and YDet_mm
            pair = [tuple(by_name.get(k, {}).get("columns") or ()) for k in ("XDet_mm",
                                                                             "YDet_mm")]
            cols = tuple(c[0] for c in pair if len(c) == 1)
            duplicate = True
        kind = _NUMPY_KIND.get(int(s.get("data_type") or 0))
        bits = s.get("data_type_bits")
        if (not cols or not all(c in wanted for c in cols) or kind is None
                or bits not in _ALLOWED_BITS[s["data_type"]]
                or s.get("record_size") != len(cols) * bits // 8):
            continue
        bbox = name == "Position" and s.get("header_size", 0) >= SECTION_HEADER_SIZE + BBOX_BYTES
        plan.append((name, cols, np.dtype(f"<{kind}{bits // 8}"), str(s.get("unit", "")), bbox))
        if not duplicate:
            taken.update(cols)
    return plan, taken


def _plan(run: Run, columns, p: str) -> list[tuple]:
    """The sections to write: ``(section, columns, value dtype, unit, bounding box)`` in
    file order."""
    names = list(run.columns if columns is None else columns)
    for c in names:
        if c not in run:
            raise run._missing(c)
    names = [run._resolve(c) for c in names]
    plan, taken = _source_plan(run, names)
    rest = [c for c in names if c not in taken]
    if any(c in rest for c in _POSITION) and not all(c in rest for c in _POSITION):
        lacking = ", ".join(c for c in _POSITION if c not in rest)
        raise FormatError(f"cannot write the .apt Position section without {lacking}", p)
    unknown = []
    given: dict[str, str] = {sec[0]: ", ".join(sec[1]) for sec in plan}
    for c in rest:
        if c in _POSITION:
            if c == "x":
                plan.append(("Position", _POSITION, np.dtype("<f4"), "nm", True))
            continue
        sec = _section_of(c)
        if sec is None:
            unknown.append(c)
            continue
        if sec in given:
            raise FormatError(f"columns '{given[sec]}' and '{c}' would both be written as the "
                              f".apt section '{sec}'", p)
        given[sec] = c
        dtype, unit = SECTION_TYPES[sec]
        if sec == "pulseDelta":
            _check_int16(run, c, p)
        plan.append((sec, (c,), np.dtype(dtype), unit, False))
        if ("Detector Coordinates" not in given
                and (sec == "YDet_mm" and "XDet_mm" in given
                     or sec == "XDet_mm" and "YDet_mm" in given)):
            pair = (given["XDet_mm"], given["YDet_mm"])
            given["Detector Coordinates"] = ", ".join(pair)
            plan.append(("Detector Coordinates", pair, np.dtype("<f4"), "mm", False))
    if unknown:
        raise FormatError("no AP Suite section name for column(s) "
                          + ", ".join(repr(u) for u in unknown)
                          + " (ifes refuses sections it does not know; write the others with "
                            "columns=[...])", p)
    if not plan:
        raise FormatError("no column to write", p)
    # a run read from an .apt keeps its file's section order
    source = [s["name"] for s in run.meta.get("sections", ())] if run.format == "apt" else []
    rank = {name: i for i, name in enumerate(source)}
    return sorted(plan, key=lambda s: rank.get(s[0], len(rank)))


def write_apt(path, run: Run, columns=None, chunk_ions: int = _CHUNK_IONS) -> None:
    """Write a run as an AP Suite 6 ``.apt`` file (little-endian), atomically.

    Each column becomes the section AP Suite gives it (the inverse of
    :func:`read_apt`): ``mass`` -> ``Mass`` (float32, Da), ``x y z`` ->
    ``Position`` (three float32 per ion, nm, with its bounding box),
    ``tof`` -> ``tof`` (ns), ``det_x``/``det_y`` -> ``XDet_mm``/``YDet_mm``
    and, as AP Suite does, ``Detector Coordinates`` (both, mm),
    ``multiplicity`` -> ``Multiplicity`` (int32), ``pulse_delta`` ->
    ``pulseDelta`` (int16, as ifes and AP Suite read it: a value beyond 16
    bits is refused, leave the column out with ``columns``), ``v_dc`` ->
    ``Voltage``, ``v_pulse`` -> ``Pulse Voltage`` (V), ``apt_z`` -> ``z``
    (int64); a column named after an AP Suite section (``tofc``, ``Vap``,
    ``erate``, ``tElapsed``, ...) keeps its name, with the type and unit of
    :data:`SECTION_TYPES`, and ``apt_NAME`` is written as ``NAME``. Floats are
    written as float32, the precision of the format. Sections follow the
    order of the columns.

    A run read from an ``.apt`` (``run.meta["sections"]``) is written with
    its file's sections instead, in their order and with their names, value
    types, units and bounding box (``Vref``, ``Epos ToF``, ``Delta Pulse``,
    a lone ``Detector Coordinates``, ``amu``, unsigned multiplicities, or a
    name that ifes does not register but read anyway), so that ``.apt`` ->
    liprobe -> ``.apt`` gives the same sections and values; only columns the
    source file did not hold follow the table above. Sections the reader
    skipped for holding no per-ion numbers are not written (listed in
    ``run.meta["skipped"]``). The file header holds the file's name and the
    time of writing.
    Columns are converted ``chunk_ions`` at a time: memory stays bounded.

    Parameters
    ----------
    path : str or path-like
    run : Run
    columns : sequence of str, optional
        The columns to write (default: all of them).
    chunk_ions : int
        Ions converted at a time.

    Raises
    ------
    FormatError
        A column with no AP Suite section name (the ifes reader refuses
        unknown sections: leave it out with ``columns``), two columns for one
        section, only some of ``x y z``, an integer section given floats or a
        value that does not fit it (``pulse_delta`` beyond 16 bits), or a
        folder that does not exist or an output path that is one.
    ColumnError
        ``columns`` names a column the run lacks.
    """
    p = os.fspath(path)
    n = run.n_ions
    if n == 0:
        raise FormatError("cannot write an .apt file of 0 ions (readers refuse an ion count "
                          "of 0)", p)
    plan = _plan(run, columns, p)
    head = np.zeros((), dtype=FILE_HEADER_DTYPE)
    head["signature"] = FILE_SIGNATURE
    head["header_size"] = FILE_HEADER_SIZE
    head["header_version"] = FILE_HEADER_VERSION
    head["filename"] = _utf16_units(os.path.basename(p), 256, "file name", p)
    now = _dt.datetime.now(_dt.UTC) - _dt.datetime(1601, 1, 1, tzinfo=_dt.UTC)
    head["creation_filetime"] = (now // _dt.timedelta(microseconds=1)) * 10
    head["ion_count"] = n
    with atomic_write(p) as f:
        f.write(head.tobytes())
        for sec, cols, value, unit, bbox in plan:
            k = len(cols)
            start_of_header = f.tell()
            f.write(_section_header(sec, value, k, unit, n, p, BBOX_BYTES if bbox else 0)
                    .tobytes())
            if bbox:
                f.write(bytes(BBOX_BYTES))
            lo = np.full(k, np.inf)
            hi = np.full(k, -np.inf)
            for parts in zip(*(run.chunks(c, chunk_ions) for c in cols)):
                start = parts[0][0]
                rec = np.empty((len(parts[0][1]), k), dtype=value)
                for j, (c, (_, chunk)) in enumerate(zip(cols, parts)):
                    rec[:, j] = _converted(chunk, value, c, start, p)
                if bbox and len(rec):
                    lo = np.minimum(lo, rec.min(axis=0))
                    hi = np.maximum(hi, rec.max(axis=0))
                f.write(rec.tobytes())
            if bbox and n:
                end = f.tell()
                f.seek(start_of_header + SECTION_HEADER_SIZE)
                f.write(np.column_stack([lo, hi]).astype("<f4").tobytes())
                f.seek(end)
