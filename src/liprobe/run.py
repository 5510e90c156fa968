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

AP Suite's section names are aliases of these columns (:data:`APT_ALIASES`):
``run["Mass"]`` is ``run["mass"]``, ``run["XDet_mm"]`` is ``run["det_x"]``. A
section whose name is one of liprobe's (``z``, an ion count) is no alias:
``run["z"]`` is the coordinate.

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

__all__ = ["Run", "COLUMN_UNITS", "APT_ALIASES", "column_chunks", "DEFAULT_CHUNK_IONS",
           "PackedMask", "MaskedSource"]

#: Ions per chunk when a column is streamed (1 Mi: 4 MB of float32; an analysis holds
#: tens of bytes per ion of a chunk, so a chunk costs tens of MB).
DEFAULT_CHUNK_IONS = 1 << 20

#: Units of the standard columns.
COLUMN_UNITS = {
    "x": "nm", "y": "nm", "z": "nm", "mass": "Da", "tof": "ns",
    "v_dc": "V", "v_pulse": "V", "det_x": "mm", "det_y": "mm",
    "pulse_delta": "", "multiplicity": "",
}

#: AP Suite section names accepted for liprobe's columns (``run["Mass"]``).
APT_ALIASES = {
    "Mass": "mass", "XDet_mm": "det_x", "YDet_mm": "det_y", "Multiplicity": "multiplicity",
    "pulseDelta": "pulse_delta", "Voltage": "v_dc", "Pulse Voltage": "v_pulse",
}


#: Parent ions per block of a :class:`MaskedSource`'s index (a multiple of 8).
_BLOCK = 1 << 16
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


class PackedMask:
    """A boolean mask over ``n`` ions packed 8 to a byte (``np.packbits``, big-endian bits).

    A mask of 100 M ions takes 12.5 MB instead of 100 MB. Build it chunk by chunk
    with :meth:`from_chunks` (each chunk's length a multiple of 8 but the last).
    """

    __slots__ = ("bits", "n")

    def __init__(self, bits: np.ndarray, n: int):
        bits = np.array(bits, dtype=np.uint8).ravel()        # a copy: the caller's stays theirs
        if len(bits) != (n + 7) // 8:
            raise ValueError(f"{len(bits)} bytes of bits for {n} ions")
        self.bits, self.n = bits, int(n)

    @classmethod
    def from_bool(cls, mask) -> PackedMask:
        m = np.asarray(mask, dtype=bool).ravel()
        return cls(np.packbits(m), len(m))

    @classmethod
    def from_chunks(cls, chunks, n: int) -> PackedMask:
        """From boolean chunks covering ions 0..n-1 in order (each but the last a multiple
        of 8 long)."""
        bits = np.zeros((n + 7) // 8, np.uint8)
        pos = 0
        for c in chunks:
            c = np.asarray(c, dtype=bool)
            if pos % 8:
                raise ValueError("a chunk of a packed mask must start on a multiple of 8")
            packed = np.packbits(c)
            bits[pos // 8:pos // 8 + len(packed)] = packed
            pos += len(c)
        if pos != n:
            raise ValueError(f"chunks cover {pos} ions, not {n}")
        return cls(bits, n)

    def __invert__(self) -> PackedMask:
        """The ions this mask leaves out (the bits past ``n`` stay clear)."""
        bits = ~self.bits
        if self.n % 8:
            bits[-1] &= np.uint8((0xFF << (8 - self.n % 8)) & 0xFF)
        return PackedMask(bits, self.n)

    def count(self) -> int:
        """Ions selected."""
        return int(_POPCOUNT[self.bits].sum(dtype=np.int64))

    def to_bool(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The mask of ions ``start..stop-1`` as booleans."""
        stop = self.n if stop is None else min(stop, self.n)
        lo = start // 8
        u = np.unpackbits(self.bits[lo:(stop + 7) // 8], count=(stop + 7) // 8 * 8 - lo * 8)
        return u[start - lo * 8:stop - lo * 8].astype(bool)


class MaskedSource:
    """The values of a parent column at the ions a :class:`PackedMask` picks, read on demand.

    A read-only stand-in for the array of the selected values: ``len``,
    ``shape``, ``dtype``, slices (gathered from the parent a block at a time),
    integer index arrays and ``np.asarray`` (the whole selection). The parent
    (a memory-mapped column, usually) is read only where asked: a selection of
    50 M ions costs its packed mask and a small index, not a copy of each
    column. Selected ion ``k`` is the ``k``-th set bit of the mask.
    """

    __slots__ = ("parent", "mask", "cum", "n")

    def __init__(self, parent, mask: PackedMask, cum: np.ndarray | None = None):
        if len(parent) != mask.n:
            raise ValueError(f"mask of {mask.n} ions for a column of {len(parent)}")
        self.parent, self.mask = parent, mask
        if cum is None:
            per_byte = _POPCOUNT[mask.bits].astype(np.int64)
            nb = _BLOCK // 8
            pad = (-len(per_byte)) % nb
            blocks = np.concatenate([per_byte, np.zeros(pad, np.int64)]).reshape(-1, nb)
            cum = np.concatenate([[0], np.cumsum(blocks.sum(axis=1))])
        self.cum = cum
        self.n = int(cum[-1])

    @property
    def dtype(self):
        return self.parent.dtype

    @property
    def shape(self) -> tuple:
        return (self.n,)

    @property
    def ndim(self) -> int:
        return 1

    def __len__(self) -> int:
        return self.n

    def _block_positions(self, b: int) -> np.ndarray:
        lo = b * _BLOCK
        return lo + np.flatnonzero(self.mask.to_bool(lo, lo + _BLOCK))

    def positions(self, start: int, stop: int) -> np.ndarray:
        """Parent indices (int64) of selected ions ``start..stop-1`` (0 <= start <= stop <= n).

        Only the blocks holding selected ions are unpacked, one at a time: a sparse
        selection costs the positions returned and one block, not its parent span.
        """
        if stop <= start:
            return np.zeros(0, np.int64)
        b0 = int(np.searchsorted(self.cum, start, "right")) - 1
        b1 = int(np.searchsorted(self.cum, stop - 1, "right")) - 1
        out = np.empty(stop - start, np.int64)
        filled = 0
        for blk in b0 + np.flatnonzero(np.diff(self.cum[b0:b1 + 2])):
            pos = self._block_positions(int(blk))
            first = max(start - int(self.cum[blk]), 0)
            take = pos[first:first + (stop - start - filled)]
            out[filled:filled + len(take)] = take
            filled += len(take)
        return out

    def positions_of(self, idx) -> np.ndarray:
        """Parent indices of the selected ions ``idx`` (integers in any order; negative from
        the end)."""
        idx = np.asarray(idx)
        if idx.size and idx.dtype.kind not in "iu":
            raise IndexError(f"ion indices must be integers, not {idx.dtype} values")
        idx = idx.astype(np.int64, copy=False).ravel()
        if len(idx) == 0:
            return np.zeros(0, np.int64)
        if idx.min() < -self.n or idx.max() >= self.n:
            raise IndexError(f"an ion index is outside the selection's {self.n} ions")
        idx = np.where(idx < 0, idx + self.n, idx)
        out = np.empty(len(idx), np.int64)
        blocks = np.searchsorted(self.cum, idx, "right") - 1
        order = np.argsort(blocks, kind="stable")
        sb = blocks[order]
        edges = np.flatnonzero(np.r_[True, sb[1:] != sb[:-1], True])
        for a, b in zip(edges[:-1], edges[1:]):
            blk = int(sb[a])
            pos = self._block_positions(blk)
            sel = order[a:b]
            out[sel] = pos[idx[sel] - int(self.cum[blk])]
        return out

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(self.n)
            if step == 1:
                return np.asarray(self.parent[self.positions(start, stop)])
            return np.asarray(self.parent[self.positions_of(np.arange(start, stop, step))])
        if isinstance(key, (int, np.integer)):
            return self.parent[int(self.positions_of([key])[0])]
        a = np.asarray(key)
        if a.dtype == bool:
            if a.shape != (self.n,):
                raise IndexError(f"mask has shape {a.shape}, the selection has {self.n} ions")
            a = np.flatnonzero(a)
        return np.asarray(self.parent[self.positions_of(a)])

    def native(self, chunk: int | None = None) -> np.ndarray:
        """The whole selection as a native-byte-order array, gathered a chunk at a time."""
        chunk = chunk or DEFAULT_CHUNK_IONS
        out = np.empty(self.n, dtype=self.dtype.newbyteorder("="))
        for a in range(0, self.n, chunk):
            b = min(a + chunk, self.n)
            np.copyto(out[a:b], self.parent[self.positions(a, b)], casting="unsafe")
        return out

    def __array__(self, dtype=None, copy=None):
        a = self.native()
        return a if dtype is None else a.astype(dtype, copy=False)

    def refine_mask(self, index) -> PackedMask:
        """The parent's mask of the selection narrowed by ``index``: a slice of step 1, a
        boolean mask of the selection, or increasing ion indices of it. Built a chunk of
        the selection at a time (bounded temporaries)."""
        n_par = self.mask.n
        if isinstance(index, slice):
            start, stop, step = index.indices(self.n)
            if step != 1:
                raise ValueError("refine_mask takes slices of step 1")
            bits = np.zeros_like(self.mask.bits)
            if stop > start:
                first = int(self.positions(start, start + 1)[0])
                last = int(self.positions(stop - 1, stop)[0])
                lo, hi = first // 8, last // 8
                bits[lo:hi + 1] = self.mask.bits[lo:hi + 1]
                bits[lo] &= np.uint8(0xFF >> (first % 8))        # big-endian bits
                bits[hi] &= np.uint8((0xFF << (7 - last % 8)) & 0xFF)
            return PackedMask(bits, n_par)
        a = np.asarray(index)
        bits = np.zeros_like(self.mask.bits)
        step = DEFAULT_CHUNK_IONS
        if a.dtype == bool:
            if a.shape != (self.n,):
                raise ValueError(f"mask has shape {a.shape}, the selection has {self.n} ions")
            for lo in range(0, self.n, step):
                hi = min(lo + step, self.n)
                _set_bits(bits, self.positions(lo, hi)[a[lo:hi]])
        else:
            for lo in range(0, len(a), step):
                _set_bits(bits, self.positions_of(a[lo:lo + step]))
        return PackedMask(bits, n_par)


def _set_bits(bits: np.ndarray, pos: np.ndarray) -> None:
    """Set the bits of the (increasing) positions ``pos`` in packed ``bits``, in place."""
    if len(pos) == 0:
        return
    byte = pos >> 3
    val = (np.uint8(128) >> (pos & 7).astype(np.uint8)).astype(np.uint8)
    starts = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]])
    bits[byte[starts]] |= np.bitwise_or.reduceat(val, starts)


def _bits_from_positions(pos: np.ndarray, n: int) -> PackedMask:
    """A packed mask with the ions ``pos`` (increasing) set."""
    bits = np.zeros((n + 7) // 8, np.uint8)
    _set_bits(bits, np.asarray(pos, np.int64))
    return PackedMask(bits, n)


def _native(a) -> np.ndarray:
    """A native-byte-order, C-contiguous copy of ``a`` (or ``a`` itself if it is one)."""
    if isinstance(a, MaskedSource):
        return a.native()
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
        return self._resolve(name) in self._sources

    def _resolve(self, name: str) -> str:
        """``name``, or the column an AP Suite section name stands for (``Mass``: ``mass``)."""
        if name in self._sources:
            return name
        return APT_ALIASES.get(name, name)

    def unit(self, name: str) -> str:
        """The unit of a column (``"nm"``, ``"Da"``; ``""`` for counts or when unknown)."""
        name = self._resolve(name)
        if name in COLUMN_UNITS:
            return COLUMN_UNITS[name]
        return str((self._meta.get("units") or {}).get(name, ""))

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
        """The error for a column the run lacks, naming ``name`` as the user typed it."""
        fmt = self.format or "this"
        have = ", ".join(self.columns) or "none"
        alias = APT_ALIASES.get(name)
        what = f"'{name}' (AP Suite's name of '{alias}')" if alias else f"'{name}'"
        return ColumnError(f"column {what} is not in this {fmt} file (it has: {have})",
                           self.path)

    def __getitem__(self, name: str) -> np.ndarray:
        """The column ``name`` (or its AP Suite alias) as a native-byte-order array (read-only)."""
        typed, name = name, self._resolve(name)
        a = self._cache.get(name)
        if a is not None:
            return a
        try:
            src = self._sources[name]
        except KeyError:
            raise self._missing(typed) from None
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
            return self._sources[self._resolve(name)]
        except KeyError:
            raise self._missing(name) from None

    def chunks(self, name: str,
               size: int = DEFAULT_CHUNK_IONS) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, chunk)`` of a column in native order, ``size`` ions at a time.

        Memory stays bounded by the chunk size whatever the file size: a
        column that was already materialised is sliced, otherwise each chunk
        is converted from the file on its own.
        """
        src = self._cache.get(self._resolve(name))
        if src is None:
            src = self.source(name)
        name = self._resolve(name)
        for start in range(0, self._n, size):
            chunk = _native(src[start:start + size])
            if name not in self._cache:
                self._check_finite(name, chunk, start)
            yield start, chunk

    def _check_finite(self, name: str, a: np.ndarray, start: int) -> None:
        """Raise FormatError at the first non-finite value of a float column read from a file."""
        layout = self._meta.get("layout") or {}
        parent_layout = self._meta.get("parent_layout") or {}
        src = self._sources.get(name)
        if a.dtype.kind != "f" or (name not in layout and not (
                name in parent_layout and isinstance(src, MaskedSource))):
            return
        if np.isfinite(a).all():
            return
        bad = np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))[0]
        i = start + int(bad)
        if name not in layout and isinstance(src, MaskedSource):   # a selection's ion
            first, stride = parent_layout[name]
            byte = first + int(src.positions_of([i])[0]) * stride
            raise FormatError(f"{name} of ion {i} of the selection is not a finite number "
                              f"({a[bad]})", self.path, f"byte {byte}")
        first, stride = layout[name]
        raise FormatError(f"{name} of ion {i} is not a finite number ({a[bad]})",
                          self.path, f"ion {i} (byte {first + i * stride})")

    # -- new runs from this one ---------------------------------------------
    def select(self, index) -> Run:
        """A run of the ions picked by ``index`` (slice, boolean mask, :class:`PackedMask` or
        integer indices).

        A slice keeps memory-mapped sources lazy; so does a mask or increasing
        indices: each column becomes a :class:`MaskedSource` that reads the picked
        ions from its source when asked (a selection of a selection narrows the
        same parent). Order is kept. Unordered or repeated indices, and slices of a
        selection with a step other than 1, are gathered at once, as asked.
        """
        meta = dict(self._meta)
        layout = meta.pop("layout", None)
        masked = any(isinstance(v, MaskedSource) for v in self._sources.values())
        if isinstance(index, slice):
            start, _stop, step = index.indices(self._n)
            if not masked:
                cols = {k: v[index] for k, v in self._sources.items()}
                if layout:
                    meta["layout"] = {k: (first + start * stride, stride * step)
                                      for k, (first, stride) in layout.items()}
                return Run(cols, meta)
            if step != 1:
                return Run(self._gather(index), meta)
            pm: PackedMask | None = None
        elif isinstance(index, PackedMask):
            if index.n != self._n:
                raise ValueError(f"mask of {index.n} ions, run has {self._n} ions")
            pm = index
        else:
            idx = np.asarray(index)
            if idx.dtype == bool:
                if idx.shape != (self._n,):
                    raise ValueError(f"mask has shape {idx.shape}, run has {self._n} ions")
                pm = PackedMask.from_bool(idx)
            else:
                if idx.size and idx.dtype.kind not in "iu":
                    raise IndexError(f"ion indices must be integers, not {idx.dtype} values")
                if idx.ndim > 1:
                    raise IndexError(f"ion indices must be 1-D, not of shape {idx.shape}")
                idx = idx.astype(np.int64, copy=False).ravel()
                if len(idx) and (idx.min() < -self._n or idx.max() >= self._n):
                    raise IndexError(f"an ion index is outside the run's {self._n} ions")
                idx = np.where(idx < 0, idx + self._n, idx)
                if len(idx) > 1 and not np.all(np.diff(idx) > 0):
                    # repeated or unordered indices: gathered as asked
                    return Run(self._gather(idx), meta)
                pm = _bits_from_positions(idx, self._n)
        # lazily: each column reads the selected ions from its source when asked; the
        # file's layout and the finiteness check follow through the parent
        if layout:
            meta["parent_layout"] = layout
        lazy: dict = {}
        shared: MaskedSource | None = None
        narrowed: dict = {}                 # one parent mask per parent mask, not per column
        for k, v in self._sources.items():
            if isinstance(v, MaskedSource):
                key = id(v.mask)
                if key not in narrowed:
                    new = v.refine_mask(index if pm is None else pm.to_bool())
                    narrowed[key] = MaskedSource(v.parent, new)
                lazy[k] = MaskedSource(v.parent, narrowed[key].mask, narrowed[key].cum)
            elif pm is None:
                lazy[k] = v[index]
            else:
                ms = MaskedSource(self._cache.get(k, v), pm,
                                  None if shared is None else shared.cum)
                lazy[k] = shared = ms
        return Run(lazy, meta)

    def _gather(self, index) -> dict:
        """Every column at ``index`` (a slice or integer indices) as arrays, in that order."""
        out = {}
        for k in self._sources:
            src: object = self._sources[k]
            out[k] = np.asarray(src[index]) if isinstance(src, MaskedSource) \
                else self._uncached(k)[index]
        return out

    def with_columns(self, meta: Mapping | None = None, **columns) -> Run:
        """A run with columns added or replaced (e.g. reconstructed ``x y z``)."""
        cols = dict(self._sources)
        cols.update({k: np.asarray(v) for k, v in columns.items()})
        m = dict(self._meta)
        m.update(meta or {})
        return Run(cols, m)

    def __repr__(self) -> str:
        where = f" from {os.path.basename(self.path)}" if self.path else ""
        cols = ", ".join(f"{c} ({u})" if (u := self.unit(c)) else c for c in self.columns)
        return f"<Run{where}: {self._n:,} ions; {cols or 'no columns'}>"

    def _uncached(self, name: str) -> np.ndarray:
        """The column in native order, from the cache if there, else converted (checked
        as :meth:`__getitem__` does) without being cached."""
        a = self._cache.get(name)
        if a is not None:
            return a
        a = _native(self._sources[name])
        self._check_finite(name, a, 0)
        return a

    # -- pandas --------------------------------------------------------------
    def to_dataframe(self, columns=None, roi=None, sample: int | None = None, seed: int = 0,
                     chunk_ions: int = DEFAULT_CHUNK_IONS):
        """The run (or some of its ions) as a pandas DataFrame, one row per ion.

        Parameters
        ----------
        columns : sequence of str, optional
            Columns to include (AP Suite names accepted); default all.
        roi : slice, boolean mask or integer indices, optional
            The ions to include (a segment, or a mask such as
            ``liprobe.cylinder_mask(...)``); for a ROI spec (``"cylinder:25"``)
            select first: ``liprobe.select(run, "cylinder:25")[0].to_dataframe()``.
        sample : int, optional
            At most this many of those ions, drawn at random without
            replacement (``seed``) and kept in evaporation order.
        seed : int
        chunk_ions : int
            With ``roi`` or ``sample``, the columns are read a chunk at a time
            and only the chosen ions are kept: memory stays bounded by the
            DataFrame and one chunk.

        Returns
        -------
        pandas.DataFrame
            Index ``ion`` (the ion's index in the run, evaporation order);
            ``df.attrs["units"]`` maps each column to its unit.

        Examples
        --------
        >>> import liprobe
        >>> run = liprobe.Run.from_arrays(x=[0.0, 1.0, 2.0, 3.0], y=[0.0] * 4,
        ...                               z=[-1.0, -2.0, -3.0, -4.0], mass=[7.0, 16.0, 32.0, 7.0])
        >>> run
        <Run: 4 ions; x (nm), y (nm), z (nm), mass (Da)>
        >>> run["Mass"] is run["mass"]            # AP Suite's section name is an alias
        True
        >>> df = run.to_dataframe(columns=["x", "Mass"], roi=run["mass"] > 10)
        >>> df
               x  mass
        ion
        1    1.0  16.0
        2    2.0  32.0
        >>> df.attrs["units"]
        {'x': 'nm', 'mass': 'Da'}
        >>> len(run.to_dataframe(sample=3, seed=1))
        3
        """
        import pandas as pd

        typed = list(self.columns if columns is None else columns)
        names: list[str] = []
        for t in typed:
            c = self._resolve(t)
            if c not in self._sources:
                raise self._missing(t)
            if c in names:
                first = typed[names.index(c)]
                raise ValueError(f"columns '{first}' and '{t}' are the same column '{c}': "
                                 "give it once")
            names.append(c)
        n = self._n
        idx = None
        if roi is not None:
            if isinstance(roi, slice):
                idx = np.arange(*roi.indices(n), dtype=np.int64)
            else:
                a = np.asarray(roi)
                if a.dtype == bool:
                    if a.shape != (n,):
                        raise ValueError(f"mask has shape {a.shape}, run has {n} ions")
                    idx = np.flatnonzero(a)
                elif a.dtype.kind not in "iu" and a.size:
                    raise ValueError(f"roi must be a slice, a boolean mask or integer ion "
                                     f"indices, not {a.dtype} values")
                else:
                    idx = a.astype(np.int64, copy=False).ravel()
                    if len(idx) and (idx.min() < -n or idx.max() >= n):
                        raise IndexError(f"an ion index is outside the run's {n} ions")
                    idx = np.where(idx < 0, idx + n, idx)
        if sample is not None:
            if sample < 0:
                raise ValueError(f"sample must not be negative, got {sample}")
            pool = n if idx is None else len(idx)
            if sample < pool:
                pick = np.sort(np.random.default_rng(seed).choice(pool, sample, replace=False))
                idx = pick if idx is None else np.sort(idx[pick])
        if idx is None:
            # each column converted once, into the DataFrame only: not kept in the run's
            # cache as well (that would hold every column twice)
            data = {}
            for c in names:
                a = self._uncached(c)
                # a fresh conversion goes into the DataFrame as it is; the run's own
                # arrays (a source in memory, the read-only cache) are copied
                data[c] = a.copy() if a is self._sources[c] or c in self._cache \
                    or a.base is self._sources[c] else a
            index = pd.RangeIndex(n, name="ion")
        else:
            order = np.argsort(idx, kind="stable")
            sorted_idx = idx[order]
            data = {}
            for c in names:
                out = np.empty(len(idx), dtype=self._sources[c].dtype.newbyteorder("="))
                for start, chunk in self.chunks(c, chunk_ions):
                    a, b = np.searchsorted(sorted_idx, [start, start + len(chunk)])
                    out[order[a:b]] = chunk[sorted_idx[a:b] - start]
                data[c] = out
            index = pd.Index(idx, name="ion")
        df = pd.DataFrame(data, index=index, columns=names, copy=False)
        df.attrs["units"] = {c: self.unit(c) for c in names}
        return df


def column_chunks(data, column: str = "mass",
                  chunk_ions: int | None = None) -> Iterator[np.ndarray]:
    """One column of ``data`` as a sequence of arrays, in evaporation order.

    The one place where an analysis accepts "a Run, an array or chunks".

    Parameters
    ----------
    data : Run, MaskedSource, ndarray, or iterable of ndarray or of ``(start, ndarray)``
        A :class:`Run` or a selection of one (:class:`MaskedSource`) is read
        ``chunk_ions`` at a time (memory stays bounded by one chunk); an array is
        yielded whole, or in slices of ``chunk_ions`` when that is given; an iterable
        (``run.chunks("mass")``, a list of arrays) is passed through, ``(start, chunk)``
        pairs unpacked.
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
    elif isinstance(data, MaskedSource):
        step = chunk_ions or DEFAULT_CHUNK_IONS
        for start in range(0, len(data), step):
            yield data[start:start + step]
    elif isinstance(data, np.ndarray):
        if chunk_ions is None:
            yield data
        else:
            for start in range(0, len(data), chunk_ions):
                yield data[start:start + chunk_ions]
    else:
        for chunk in data:
            yield chunk[1] if isinstance(chunk, tuple) else chunk
