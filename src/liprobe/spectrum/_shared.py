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

__all__ = ["sorted_search", "sorted_masses", "poisson_excess_z"]


def sorted_search(sm: np.ndarray, v, side: Literal["left", "right"] = "left") -> np.ndarray:
    """``np.searchsorted(sm, v, side)`` with the keys cast to the dtype of ``sm``.

    Float32 keys on a float32 array: numpy would otherwise convert the whole
    sorted array to float64 on every call.
    """
    return np.searchsorted(sm, np.asarray(v, dtype=sm.dtype), side=side)


def sorted_masses(mass) -> np.ndarray:
    """Finite, positive masses in Da, sorted, as float32.

    Parameters
    ----------
    mass : Run, ndarray, or iterable of chunks
        Mass-to-charge in Da (see :func:`liprobe.run.column_chunks`).

    Returns
    -------
    ndarray of float32
        Sorted; zero, negative, NaN and infinite masses are left out.
    """
    parts = [np.asarray(p, dtype=np.float32).ravel() for p in column_chunks(mass)]
    m = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    m = np.sort(m)
    lo = np.searchsorted(m, np.float32(0.0), side="right")
    hi = np.searchsorted(m, np.float32(np.inf), side="left")
    return m[lo:hi]


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
