"""Helpers shared by the mass-spectrum modules (package-private).

Sorted masses are the common currency of :mod:`~liprobe.spectrum.peaks`,
:mod:`~liprobe.spectrum.calibration`, :mod:`~liprobe.spectrum.autorange` and
:mod:`~liprobe.spectrum.deconvolve`: a count in ``[lo, hi)`` Da is two binary
searches, with no histogram and no binning choice.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..run import column_chunks

__all__ = ["sorted_search", "sorted_masses", "poisson_excess_z", "SORT_IN_MEMORY_IONS"]


def sorted_search(sm: np.ndarray, v, side: Literal["left", "right"] = "left") -> np.ndarray:
    """``np.searchsorted(sm, v, side)`` with the keys cast to the dtype of ``sm``.

    Float32 keys on a float32 array: numpy would otherwise convert the whole
    sorted array to float64 on every call.
    """
    return np.searchsorted(sm, np.asarray(v, dtype=sm.dtype), side=side)


SORT_IN_MEMORY_IONS = 1 << 22
"""Above this many ions, masses read from a file are sorted into a scratch file
(:func:`sorted_masses`) instead of anonymous memory."""

_BUCKET_SHIFT = 15          # float32 bit pattern >> 15: 256 buckets per octave of mass
_N_BUCKETS = (0x7F800000 >> _BUCKET_SHIFT) + 1


def _valid(chunk) -> np.ndarray:
    """The finite, positive values of one chunk, as float32."""
    v = np.asarray(chunk, dtype=np.float32).ravel()
    return v[(v > 0) & (v < np.inf)]


def _length(mass) -> int | None:
    """Ions in ``mass`` when its masses lie in a file, so that they can be read twice without
    being held in memory: a Run read from a file, a selection of one, or an array that
    maps a file. None otherwise (masses in memory are sorted in memory)."""
    from ..io._files import is_file_backed
    from ..run import MaskedSource, Run

    src = mass.source("mass") if isinstance(mass, Run) else mass
    parent = src.parent if isinstance(src, MaskedSource) else src
    if not (isinstance(parent, np.ndarray) and is_file_backed(parent)):
        return None
    return mass.n_ions if isinstance(mass, Run) else len(mass)


def _file_of(mass) -> str | None:
    """The file the masses are read from, for messages."""
    from ..run import MaskedSource, Run

    if isinstance(mass, Run):
        return mass.path
    a = mass.parent if isinstance(mass, MaskedSource) else mass
    while a is not None:
        if isinstance(a, np.memmap):
            return a.filename
        a = getattr(a, "base", None)
    return None


def sorted_masses(mass, scratch_dir: str | None = None) -> np.ndarray:
    """Finite, positive masses in Da, sorted, as float32.

    Masses in memory (an array, chunks, or a Run built from arrays) are sorted
    in memory. Masses that lie in a file (a :class:`~liprobe.Run` read from
    one, a selection of it, or a memory-mapped array), more than
    :data:`SORT_IN_MEMORY_IONS` of them, are sorted into a scratch file
    instead, a chunk at a time (an external bucket sort): pass 1
    counts the masses per bucket of the float32 bit pattern (256 buckets per
    octave), pass 2 writes each chunk's sorted masses into their buckets'
    places, then each bucket is sorted in place. The result is the same array
    as ``np.sort`` gives, file-backed, so that its pages are not anonymous
    memory: peak memory stays a few chunks whatever the run's size.

    Parameters
    ----------
    mass : Run, MaskedSource, ndarray, or iterable of chunks
        Mass-to-charge in Da (see :func:`liprobe.run.column_chunks`).
    scratch_dir : str, optional
        Folder of the scratch file (default: the system's temporary folder,
        ``TMPDIR``); it needs 4 bytes per ion. On a tmpfs the scratch's pages
        are shared memory, not file-backed: point ``TMPDIR`` at a disk.

    Returns
    -------
    ndarray of float32
        Sorted; zero, negative, NaN and infinite masses are left out.

    Raises
    ------
    FormatError
        The file changed between the two passes of the external sort.
    OSError
        The scratch folder has no room (the message names it).
    """
    n = _length(mass)
    if n is not None and n > SORT_IN_MEMORY_IONS:
        return _sorted_in_scratch(mass, scratch_dir)
    parts = [_valid(p) for p in column_chunks(mass)]
    m = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return np.sort(m)


def _sorted_in_scratch(mass, scratch_dir: str | None) -> np.ndarray:
    """The external bucket sort of :func:`sorted_masses` (two passes over ``mass``)."""
    from .. import run as run_module
    from ..errors import FormatError
    from ..io._files import scratch_array

    size = run_module.DEFAULT_CHUNK_IONS        # a memory-mapped array too, a chunk at a time
    changed = FormatError("the masses changed while they were being sorted (was the file "
                          "written to?)", _file_of(mass))
    counts = np.zeros(_N_BUCKETS, np.int64)
    for c in column_chunks(mass, chunk_ions=size):
        v = _valid(c)
        counts += np.bincount(v.view(np.uint32) >> _BUCKET_SHIFT, minlength=_N_BUCKETS)
    total = int(counts.sum())
    out = scratch_array(total, np.float32, scratch_dir, prefix=".liprobe-masses-")
    start = np.zeros(_N_BUCKETS, np.int64)
    np.cumsum(counts[:-1], out=start[1:])
    cursor = start.copy()
    for c in column_chunks(mass, chunk_ions=size):
        v = np.sort(_valid(c))
        if len(v) == 0:
            continue
        k = (v.view(np.uint32) >> _BUCKET_SHIFT).astype(np.intp)
        runs = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        sizes = np.diff(np.r_[runs, len(k)])
        keys = k[runs]
        if np.any(cursor[keys] + sizes > start[keys] + counts[keys]):
            raise changed
        dest = np.repeat(cursor[keys] - runs, sizes) + np.arange(len(v))
        out[dest] = v
        cursor[keys] += sizes
    if not np.array_equal(cursor, start + counts):
        raise changed
    for b in np.flatnonzero(counts > 1):
        out[start[b]:start[b] + counts[b]].sort()
    return out


def poisson_excess_z(n, b) -> np.ndarray:
    """One-sided significance z of observing at least ``n`` counts on a Poisson mean ``b``.

    ``z = Phi^-1(1 - P(N >= n | b))`` (scipy.stats), 0 where ``n <= b``;
    vectorised, ``b`` floored at 1e-3 and the tail probability at 1e-300.
    """
    from scipy import stats

    n = np.asarray(n, float)
    b = np.maximum(np.asarray(b, float), 1e-3)
    p = stats.poisson.sf(np.ceil(n) - 1, b)
    with np.errstate(divide="ignore"):
        z = stats.norm.isf(np.maximum(p, 1e-300))
    return np.where(n > b, z, 0.0)
