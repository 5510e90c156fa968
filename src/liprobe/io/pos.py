"""CAMECA ``.pos`` and ``.epos`` files: fixed-size big-endian records.

``.pos``: four float32 per ion: x, y, z (nm), mass-to-charge (Da); 16 bytes.

``.epos``: 44 bytes per ion: x, y, z (nm), mass (Da), time of flight (ns),
DC voltage (V), pulse voltage (V), detector x, y (mm) as float32, then pulses
since the previous event and ions per pulse as int32. All big-endian.
(Format as documented in Gault et al., *Atom Probe Microscopy*, Springer 2012,
and Larson et al., *Local Electrode Atom Probe Tomography*, Springer 2013.)
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import FormatError
from ..run import Run
from ._files import atomic_write, check_readable, memmap_records

__all__ = ["POS_DTYPE", "EPOS_DTYPE", "read_pos", "read_epos", "write_pos", "write_epos"]

POS_DTYPE = np.dtype([("x", ">f4"), ("y", ">f4"), ("z", ">f4"), ("mass", ">f4")])
EPOS_DTYPE = np.dtype([
    ("x", ">f4"), ("y", ">f4"), ("z", ">f4"), ("mass", ">f4"), ("tof", ">f4"),
    ("v_dc", ">f4"), ("v_pulse", ">f4"), ("det_x", ">f4"), ("det_y", ">f4"),
    ("pulse_delta", ">i4"), ("multiplicity", ">i4"),
])


def whole_records(p: str, size: int, rec: int, fmt: str) -> int:
    """Records of ``rec`` bytes in a file of ``size`` bytes; FormatError if any are left over."""
    n, extra = divmod(size, rec)
    if extra:
        article = "an" if fmt[0] in "aeiou" else "a"
        raise FormatError(
            f"truncated or not {article} {fmt} file: {size} bytes is not a whole number of "
            f"{rec}-byte records ({n} whole records and {extra} bytes left over)",
            p, f"byte {n * rec}")
    return n


def _read_records(path, dtype: np.dtype, fmt: str) -> Run:
    p = os.fspath(path)
    size = check_readable(p)
    rec = dtype.itemsize
    n = whole_records(p, size, rec, fmt)
    data = memmap_records(p, dtype, 0, n)
    names, fields = dtype.names, dtype.fields
    assert names is not None and fields is not None  # a record dtype
    cols = {name: data[name] for name in names}
    layout = {name: (fields[name][1], rec) for name in names}
    meta = {"path": p, "format": fmt, "record_bytes": rec, "layout": layout}
    return Run(cols, meta)


def read_pos(path) -> Run:
    """Read a ``.pos`` file as a memory-mapped :class:`~liprobe.Run` (x, y, z, mass)."""
    return _read_records(path, POS_DTYPE, "pos")


def read_epos(path) -> Run:
    """Read an ``.epos`` file as a memory-mapped :class:`~liprobe.Run` (all 11 columns)."""
    return _read_records(path, EPOS_DTYPE, "epos")


def _write_records(path, dtype: np.dtype, run: Run, chunk: int = 1 << 21) -> None:
    names = dtype.names
    assert names is not None  # a record dtype
    missing = [name for name in names if name not in run]
    if missing:
        fmt = "epos" if dtype is EPOS_DTYPE else "pos"
        raise FormatError(f"cannot write .{fmt}: the run has no column "
                          + ", ".join(repr(m) for m in missing), path)
    n = run.n_ions
    with atomic_write(path) as f:
        buf = np.empty(min(chunk, max(n, 1)), dtype=dtype)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            b = buf[: stop - start]
            for name in names:
                src = run.source(name)[start:stop]
                if src.dtype.kind == "f" and dtype[name].kind == "i":
                    raise FormatError(f"column '{name}' must hold integers", path)
                np.copyto(b[name], src, casting="unsafe")
            f.write(b.data.cast("B"))  # the buffer itself, no copy


def write_pos(path, run: Run) -> None:
    """Write x, y, z, mass of ``run`` as a ``.pos`` file, atomically."""
    _write_records(path, POS_DTYPE, run)


def write_epos(path, run: Run) -> None:
    """Write all eleven ``.epos`` columns of ``run``, atomically.

    Raises FormatError naming the columns the run lacks (a ``.pos`` has no
    time of flight, voltages or detector coordinates).
    """
    _write_records(path, EPOS_DTYPE, run)
