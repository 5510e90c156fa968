"""Mass spectra: histograms of the mass-to-charge column.

The histogram is a numba kernel over uniform bins (one pass, per-thread
partial histograms), chunkable so that memory stays flat on large files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._jit import get_num_threads, njit, prange
from .errors import AnalysisError

__all__ = ["MassHistogram", "mass_histogram"]


@njit(cache=True, nogil=True)
def _exact_bin(m, lo, width, n_bins):
    """Bin of m with edges ``lo + width * k`` (float64, as returned), or -1."""
    if not (m >= lo):
        return -1
    k = np.int64((m - lo) / width)
    while k > 0 and m < lo + width * np.float64(k):
        k -= 1
    while m >= lo + width * np.float64(k + 1):
        k += 1
    return k if k < n_bins else -1


@njit(parallel=True, cache=True, nogil=True)
def _histogram_kernel(mass, lo, width, n_bins, n_threads):
    n = mass.shape[0]
    inv_width = 1.0 / width
    part = np.zeros((n_threads, n_bins), dtype=np.int64)
    per = (n + n_threads - 1) // n_threads
    nb = np.uint64(n_bins)
    for t in prange(n_threads):
        a = t * per
        b = min(a + per, n)
        row = part[t]
        for i in range(a, b):
            m = np.float64(mass[i])
            x = (m - lo) * inv_width
            k = np.int64(x + 1e-9)
            # within 1e-9 of a bin border (float64 rounding is ~1e-16 relative):
            # decide exactly against lo + width * k, the returned edges
            if np.int64(x - 1e-9) != k or x < 1e-9:
                k = _exact_bin(m, lo, width, n_bins)
            if np.uint64(k) < nb:       # also drops -1 and NaN
                row[k] += 1
    return part.sum(axis=0)


@dataclass(frozen=True)
class MassHistogram:
    """Counts per mass bin; ``edges`` in Da (``len(counts) + 1`` of them)."""

    edges: np.ndarray
    counts: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[:-1] + self.edges[1:])

    @property
    def bin_width(self) -> float:
        return float(self.edges[1] - self.edges[0])


def mass_histogram(mass, bin_da: float = 0.01, mass_range=(0.0, 200.0)) -> MassHistogram:
    """Histogram of mass-to-charge values in uniform bins.

    Parameters
    ----------
    mass : ndarray of float, shape (n,), or iterable of such chunks
        Mass-to-charge in Da (e.g. ``run.chunks("mass")``).
    bin_da : float
        Bin width in Da.
    mass_range : (float, float)
        Lower and upper limit in Da; values outside (and NaN) are not counted.
        Bins are ``[edges[k], edges[k+1])`` with ``edges = lo + bin_da * arange(n + 1)``
        in float64, exactly (no rounding at bin borders).

    Returns
    -------
    MassHistogram
    """
    lo, hi = float(mass_range[0]), float(mass_range[1])
    if not (bin_da > 0 and hi > lo):
        raise AnalysisError(f"bad histogram: bin {bin_da} Da over [{lo}, {hi}) Da")
    n_bins = int(round((hi - lo) / bin_da))
    if n_bins < 1 or n_bins > 100_000_000:
        raise AnalysisError(f"bad histogram: {n_bins} bins of {bin_da} Da")
    counts = np.zeros(n_bins, np.int64)
    edges = lo + bin_da * np.arange(n_bins + 1, dtype=np.float64)
    threads = get_num_threads()
    chunks = [mass] if isinstance(mass, np.ndarray) else mass
    for chunk in chunks:
        if isinstance(chunk, tuple):
            chunk = chunk[1]
        m = np.ascontiguousarray(chunk)
        if m.dtype not in (np.float32, np.float64) or not m.dtype.isnative:
            m = m.astype(np.float32)
        counts += _histogram_kernel(m, lo, float(bin_da), n_bins, threads)
    return MassHistogram(edges, counts)
