"""Range assignment: which window of a :class:`~liprobe.RangeTable` each ion is in.

One pass over the mass column with a lookup-table kernel (numba): the mass
axis from 0 to just above the last window edge is cut into 65,536 uniform
bins; a bin with no window edge in it stores its window (or -1), which is
the answer for every ion in it. In a bin that holds an edge (and for negative
or NaN masses), the ion's count of edges at or below its mass is advanced from
the bin's start; an odd count means the ion is inside window ``count // 2``
(windows are half-open ``[lo, hi)``, so an ion on a touching boundary goes to
the upper window). This equals ``np.searchsorted(edges, mass, side="right")``
exactly, in one pass at close to memory speed.

Columns larger than memory are processed in chunks (``chunk_ions``) so that
memory stays flat.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit, prange
from .errors import AnalysisError
from .rangetable import RangeTable
from .run import column_chunks

__all__ = ["window_edges", "assign", "count_windows", "count_ions", "label_dtype"]

_LUT_BINS = 1 << 16
_BLOCK = 1 << 16  # ions per parallel work item


def window_edges(table: RangeTable) -> np.ndarray:
    """Interleaved window bounds ``[lo0, hi0, lo1, hi1, ...]`` (Da, float64, non-decreasing)."""
    e = np.empty(2 * len(table), dtype=np.float64)
    e[0::2] = table.lo
    e[1::2] = table.hi
    return e


def label_dtype(n_windows: int) -> np.dtype:
    """Smallest signed integer type holding window indices and -1."""
    return np.dtype(np.int16) if n_windows < np.iinfo(np.int16).max else np.dtype(np.int32)


class WindowLookup:
    """Lookup tables of a range table over uniform mass bins from 0 Da.

    With :func:`window_of`, the building block for kernels that classify ions
    by window inside their own pass (:mod:`liprobe.fda` does).

    ``label[k]`` is the window of every mass in bin ``k`` when no window edge
    lies in the bin (``n_windows``: between windows), or ``n_windows + 1``
    when one does; then ``start[k]`` is the number of edges below the bin,
    from which the kernel advances past the edges at or below the ion's mass.
    The bins span a little more than the last edge, so the last bin is above
    every window: masses beyond it are clamped into it. One more entry,
    ``label[n_bins]``, is an edge bin starting from edge 0, where negative
    and NaN masses go for an exact search. Labels are the smallest unsigned
    type that holds them (uint8 up to 254 windows), so the table stays in the
    fastest cache.
    """

    __slots__ = ("edges", "inv_width", "top_bin", "label", "start")

    @classmethod
    def of(cls, table: RangeTable) -> WindowLookup:
        """The lookup of ``table``, built once and kept with the table's other derived
        arrays (a stream of chunks counts each against the same table)."""
        lut = table._arrays.get("window_lookup")
        if lut is None:
            lut = table._arrays["window_lookup"] = cls(table)
        return lut

    def __init__(self, table: RangeTable):
        edges = window_edges(table)
        top = float(edges[-1]) if len(edges) else 1.0
        n = _LUT_BINS
        width = max(top, 1e-9) / (n - 2)   # the last edge lies below bin n - 2's end
        k = np.arange(n, dtype=np.float64)
        pad = width * 1e-3  # covers rounding of mass * inv_width at bin borders
        j_lo = np.searchsorted(edges, k * width - pad, side="right")
        j_hi = np.searchsorted(edges, (k + 1) * width + pad, side="right")
        n_windows = len(table)
        label = np.where(j_lo % 2 == 1, (j_lo - 1) // 2, n_windows)
        label[j_lo != j_hi] = n_windows + 1
        label = np.append(label, n_windows + 1)      # negative / NaN: exact search
        self.edges = edges
        self.inv_width = 1.0 / width
        self.top_bin = float(n - 1)
        dtype = np.uint8 if n_windows < 254 else np.uint16 if n_windows < 65534 else np.uint32
        self.label = label.astype(dtype)
        self.start = np.append(j_lo, 0).astype(np.int32)


@njit(cache=True, nogil=True, boundscheck=False)
def _exact_window(m, edges, j, n_windows):
    """Window of m (or ``n_windows``) by advancing from edge ``j`` past the edges <= m.

    Kept out of line, so that the inlined fast path of :func:`window_of`
    stays small enough for its values to live in registers.
    """
    j = np.int64(j)
    n_edges = edges.shape[0]
    while j < n_edges and edges[j] <= m:
        j += 1
    return (j >> 1) if (j & 1) else np.int64(n_windows)


@njit(inline="always", boundscheck=False)
def window_of(m, edges, inv_w, top_bin, label, start, n_windows):
    """Window index of mass m (float64), or ``n_windows`` if unranged.

    ``inv_w``, ``top_bin``, ``label``, ``start`` come from :class:`WindowLookup`.
    """
    x = m * inv_w
    k = np.uint64(label.shape[0] - 1)         # negative or NaN: exact search
    if x >= 0.0:
        k = np.uint64(min(x, top_bin))        # above the last bin: the last bin
    w = np.int64(label[k])
    if w > n_windows:                         # an edge lies in this bin
        w = _exact_window(m, edges, start[k], n_windows)
    return w


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def count_kernel(mass, edges, inv_w, top_bin, label, start, n_windows):
    """Ions per window (entry ``n_windows``: unranged).

    Parallel over blocks of ``_BLOCK`` ions; four ions per step, each counted
    in its own row of counters so that consecutive increments do not wait
    on each other. Unsigned indices spare numba's negative-index handling.
    """
    n = mass.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    stride = n_windows + 1
    s = np.uint64(stride)
    partial = np.zeros((n_blocks, 4 * stride), dtype=np.int64)
    for blk in prange(n_blocks):
        i = np.uint64(blk * _BLOCK)
        hi = np.uint64(min(blk * _BLOCK + _BLOCK, n))
        row = partial[blk]
        while i + np.uint64(4) <= hi:
            for q in range(4):
                w = window_of(np.float64(mass[i + np.uint64(q)]), edges, inv_w, top_bin, label,
                              start, n_windows)
                row[np.uint64(w) + np.uint64(q) * s] += 1
            i += np.uint64(4)
        while i < hi:
            w = window_of(np.float64(mass[i]), edges, inv_w, top_bin, label, start, n_windows)
            row[np.uint64(w)] += 1
            i += np.uint64(1)
    return partial.reshape(n_blocks * 4, stride).sum(axis=0)


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def assign_kernel(mass, edges, inv_w, top_bin, label, start, labels, n_windows):
    """Window of every ion into ``labels`` (-1 unranged), and the counts of :func:`count_kernel`."""
    n = mass.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    stride = n_windows + 1
    s = np.uint64(stride)
    partial = np.zeros((n_blocks, 4 * stride), dtype=np.int64)
    for blk in prange(n_blocks):
        i = np.uint64(blk * _BLOCK)
        hi = np.uint64(min(blk * _BLOCK + _BLOCK, n))
        row = partial[blk]
        while i + np.uint64(4) <= hi:
            for q in range(4):
                j = i + np.uint64(q)
                w = window_of(np.float64(mass[j]), edges, inv_w, top_bin, label, start,
                              n_windows)
                labels[j] = w if w < n_windows else -1
                row[np.uint64(w) + np.uint64(q) * s] += 1
            i += np.uint64(4)
        while i < hi:
            w = window_of(np.float64(mass[i]), edges, inv_w, top_bin, label, start, n_windows)
            labels[i] = w if w < n_windows else -1
            row[np.uint64(w)] += 1
            i += np.uint64(1)
    return partial.reshape(n_blocks * 4, stride).sum(axis=0)


def _as_mass(mass) -> np.ndarray:
    m = np.asarray(mass)
    if m.ndim != 1:
        raise AnalysisError(f"mass must be one-dimensional, got shape {m.shape}")
    if m.dtype not in (np.float32, np.float64) or not m.dtype.isnative:
        m = m.astype(np.float64 if m.dtype.itemsize > 4 else np.float32)
    return np.ascontiguousarray(m)


def count_windows(mass, table: RangeTable) -> tuple[np.ndarray, int]:
    """Ions per window, and the number of unranged ions.

    Parameters
    ----------
    mass : ndarray of float, shape (n,)
        Mass-to-charge in Da.
    table : RangeTable

    Returns
    -------
    counts : ndarray of int64, shape (len(table),)
    unranged : int
    """
    m = _as_mass(mass)
    if len(table) == 0:
        return np.zeros(0, np.int64), len(m)
    lut = WindowLookup.of(table)
    c = count_kernel(m, lut.edges, lut.inv_width, lut.top_bin, lut.label, lut.start,
                     len(table))
    return c[:-1], int(c[-1])


def assign(mass, table: RangeTable, out: np.ndarray | None = None):
    """Window index of each ion (-1 unranged), with the per-window counts.

    Parameters
    ----------
    mass : ndarray of float, shape (n,)
        Mass-to-charge in Da.
    table : RangeTable
    out : ndarray of signed int, shape (n,), optional
        Where to write the labels.

    Returns
    -------
    labels : ndarray of int16 (int32 for tables of 32767 windows or more)
        Index into ``table.ranges``, or -1. ``table.ion_index[labels]`` gives
        the ion (for labels >= 0).
    counts : ndarray of int64, shape (len(table),)
    """
    m = _as_mass(mass)
    dt = label_dtype(len(table))
    if out is None:
        out = np.empty(len(m), dtype=dt)
    elif out.shape != m.shape or out.dtype.kind != "i":
        raise ValueError("out must be a signed integer array of the mass column's shape")
    if len(table) == 0:
        out[:] = -1
        return out, np.zeros(0, np.int64)
    lut = WindowLookup.of(table)
    c = assign_kernel(m, lut.edges, lut.inv_width, lut.top_bin, lut.label, lut.start, out,
                      len(table))
    return out, c[:-1]


def count_ions(mass_chunks, table: RangeTable) -> tuple[np.ndarray, int, int]:
    """Ions per *ion species* of ``table`` from masses in Da: a Run, an array, or an
    iterable of chunks (:func:`liprobe.run.column_chunks`).

    Memory stays bounded by one chunk (a Run is read chunk by chunk).

    Returns
    -------
    ion_counts : ndarray of int64, shape (len(table.ions),)
    unranged : int
    total : int
    """
    window_counts = np.zeros(len(table), np.int64)
    unranged = total = 0
    for chunk in column_chunks(mass_chunks):
        c, u = count_windows(chunk, table)
        window_counts += c
        unranged += u
        total += len(chunk)
    ion_counts = np.bincount(table.ion_index, weights=window_counts,
                             minlength=len(table.ions)).astype(np.int64) if len(table) else \
        np.zeros(0, np.int64)
    return ion_counts, unranged, total
