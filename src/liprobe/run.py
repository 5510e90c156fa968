"""The :class:`Run`: an APT run as named per-ion columns in evaporation order.

Column names and units (DESIGN.md):

================ ===== ==========================================================
name             unit  meaning
================ ===== ==========================================================
``x y z``        nm    reconstructed position (CAMECA convention: z <= 0)
``mass``         Da    mass-to-charge ratio
``tof``          ns    time of flight (raw)
``v_dc``         V     standing (DC) voltage
``v_pulse``      V     pulse voltage
``det_x det_y``  mm    hit position on the detector
``pulse_delta``  --    pulses since the previous detected event
``multiplicity`` --    ions detected on that pulse (0 for the later ions of a
                       multi-hit, as in ``.epos``)
================ ===== ==========================================================

Formats may carry more (the ``.apt`` acquisition sections keep their own
names, e.g. ``tofc``, ``Vap``, ``erate``, ``tElapsed``).

A reader gives the run *sources*: arrays as they lie in the file, usually
big-endian views into a memory map. Nothing is read until a column is asked
for; ``run["mass"]`` then materialises that one column in native byte order,
once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import numpy as np

from .errors import ColumnError, FormatError

__all__ = ["Run", "COLUMN_UNITS", "column_chunks", "DEFAULT_CHUNK_IONS"]

#: Ions per chunk when a column is streamed (4 Mi: 16 MB of float32).
DEFAULT_CHUNK_IONS = 1 << 22

#: Units of the standard columns.
COLUMN_UNITS = {
    "x": "nm", "y": "nm", "z": "nm", "mass": "Da", "tof": "ns",
    "v_dc": "V", "v_pulse": "V", "det_x": "mm", "det_y": "mm",
    "pulse_delta": "", "multiplicity": "",
}


def _native(a: np.ndarray) -> np.ndarray:
    """A native-byte-order, C-contiguous copy of ``a`` (or ``a`` itself if it is one)."""
    if a.dtype.isnative and a.flags.c_contiguous and not isinstance(a, np.memmap):
        return a
    out = np.empty(a.shape, dtype=a.dtype.newbyteorder("="))
    np.copyto(out, a, casting="unsafe")
    return out


class Run:
    """An APT run: named columns of equal length in evaporation order.

    Parameters
    ----------
    columns : mapping of str to ndarray
        Column sources, each of shape ``(n_ions,)``. Non-native or strided
        arrays (memory-mapped file fields) are converted when first asked for.
    meta : mapping, optional
        Source file, format, instrument parameters, ``.apt`` section headers.
    """

    __slots__ = ("_sources", "_cache", "_n", "_meta")

    def __init__(self, columns: Mapping[str, np.ndarray], meta: Mapping | None = None):
        lengths = {name: len(a) for name, a in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns differ in length: {lengths}")
        self._sources = dict(columns)
        self._n = next(iter(lengths.values()), 0)
        self._cache: dict[str, np.ndarray] = {}
        self._meta = MappingProxyType(dict(meta or {}))

    @classmethod
    def from_arrays(cls, meta: Mapping | None = None, **columns) -> Run:
        """A run from arrays in memory, e.g. ``Run.from_arrays(mass=m, x=x, y=y, z=z)``."""
        return cls({k: np.asarray(v) for k, v in columns.items()}, meta)

    # -- what is there -------------------------------------------------------
    @property
    def n_ions(self) -> int:
        """Number of ions (records)."""
        return self._n

    def __len__(self) -> int:
        return self._n

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the columns present, in file order."""
        return tuple(self._sources)

    def __contains__(self, name: str) -> bool:
        return name in self._sources

    @property
    def meta(self) -> Mapping:
        """Read-only metadata: ``path``, ``format`` and format-specific entries."""
        return self._meta

    @property
    def path(self) -> str | None:
        return self._meta.get("path")

    @property
    def format(self) -> str | None:
        return self._meta.get("format")

    # -- columns -------------------------------------------------------------
    def _missing(self, name: str) -> ColumnError:
        fmt = self.format or "this"
        have = ", ".join(self.columns) or "none"
        return ColumnError(f"column '{name}' is not in this {fmt} file (it has: {have})",
                           self.path)

    def __getitem__(self, name: str) -> np.ndarray:
        """The column ``name`` as a native-byte-order array (read-only)."""
        a = self._cache.get(name)
        if a is not None:
            return a
        try:
            src = self._sources[name]
        except KeyError:
            raise self._missing(name) from None
        a = _native(src)
        self._check_finite(name, a, 0)
        if a is src:
            a = a.view()
        a.flags.writeable = False
        self._cache[name] = a
        return a

    def source(self, name: str) -> np.ndarray:
        """The column as it lies in the file (possibly big-endian, strided, memory-mapped)."""
        try:
            return self._sources[name]
        except KeyError:
            raise self._missing(name) from None

    def chunks(self, name: str,
               size: int = DEFAULT_CHUNK_IONS) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, chunk)`` of a column in native order, ``size`` ions at a time.

        Memory stays bounded by the chunk size whatever the file size: a
        column that was already materialised is sliced, otherwise each chunk
        is converted from the file on its own.
        """
        src = self._cache.get(name)
        if src is None:
            src = self.source(name)
        for start in range(0, self._n, size):
            chunk = _native(src[start:start + size])
            if name not in self._cache:
                self._check_finite(name, chunk, start)
            yield start, chunk

    def _check_finite(self, name: str, a: np.ndarray, start: int) -> None:
        """Raise FormatError at the first non-finite value of a float column read from a file."""
        layout = self._meta.get("layout") or {}
        if a.dtype.kind != "f" or name not in layout:
            return
        if np.isfinite(a).all():
            return
        bad = np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))[0]
        i = start + int(bad)
        first, stride = layout[name]
        raise FormatError(f"{name} of ion {i} is not a finite number ({a[bad]})",
                          self.path, f"ion {i} (byte {first + i * stride})")

    # -- new runs from this one ---------------------------------------------
    def select(self, index) -> Run:
        """A run of the ions picked by ``index`` (slice, boolean mask or indices).

        A slice keeps memory-mapped sources lazy; a mask or index array
        gathers each column when it is asked for. Order is kept.
        """
        meta = dict(self._meta)
        layout = meta.pop("layout", None)
        if isinstance(index, slice):
            cols = {k: v[index] for k, v in self._sources.items()}
            start, _stop, step = index.indices(self._n)
            if layout:
                meta["layout"] = {k: (first + start * stride, stride * step)
                                  for k, (first, stride) in layout.items()}
        else:
            idx = np.asarray(index)
            if idx.dtype == bool and idx.shape != (self._n,):
                raise ValueError(f"mask has shape {idx.shape}, run has {self._n} ions")
            cols = {k: self[k][idx] for k in self._sources}
        return Run(cols, meta)

    def with_columns(self, meta: Mapping | None = None, **columns) -> Run:
        """A run with columns added or replaced (e.g. reconstructed ``x y z``)."""
        cols = dict(self._sources)
        cols.update({k: np.asarray(v) for k, v in columns.items()})
        m = dict(self._meta)
        m.update(meta or {})
        return Run(cols, m)

    def __repr__(self) -> str:
        where = f" from {os.path.basename(self.path)}" if self.path else ""
        return f"<Run{where}: {self._n} ions, columns {', '.join(self.columns)}>"


def column_chunks(data, column: str = "mass",
                  chunk_ions: int | None = None) -> Iterator[np.ndarray]:
    """One column of ``data`` as a sequence of arrays, in evaporation order.

    The one place where an analysis accepts "a Run, an array or chunks".

    Parameters
    ----------
    data : Run, ndarray, or iterable of ndarray or of ``(start, ndarray)``
        A :class:`Run` is read ``chunk_ions`` at a time (memory stays bounded by
        one chunk); an array is yielded whole, or in slices of ``chunk_ions``
        when that is given; an iterable (``run.chunks("mass")``, a list of
        arrays) is passed through, ``(start, chunk)`` pairs unpacked.
    column : str
        The column to take from a Run (default ``"mass"``, in Da).
    chunk_ions : int, optional
        Ions per chunk for a Run (default :data:`DEFAULT_CHUNK_IONS`) or an array
        (default: the whole array); at least 1.

    Yields
    ------
    ndarray
        Consecutive parts of the column.

    Raises
    ------
    ValueError
        ``chunk_ions`` below 1.
    """
    if chunk_ions is not None and chunk_ions < 1:
        raise ValueError(f"chunk_ions must be at least 1, got {chunk_ions}")
    if isinstance(data, Run):
        for _, chunk in data.chunks(column, chunk_ions or DEFAULT_CHUNK_IONS):
            yield chunk
    elif isinstance(data, np.ndarray):
        if chunk_ions is None:
            yield data
        else:
            for start in range(0, len(data), chunk_ions):
                yield data[start:start + chunk_ions]
    else:
        for chunk in data:
            yield chunk[1] if isinstance(chunk, tuple) else chunk
