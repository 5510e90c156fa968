"""Regions of interest: boolean masks over reconstructed positions."""

from __future__ import annotations

import numpy as np

from ._jit import njit, prange

__all__ = ["cylinder_mask"]


@njit(parallel=True, cache=True, nogil=True)
def _cylinder_kernel(x, y, cx, cy, r2, out):
    for i in prange(x.shape[0]):
        dx = np.float64(x[i]) - cx
        dy = np.float64(y[i]) - cy
        out[i] = dx * dx + dy * dy <= r2


def cylinder_mask(x_nm, y_nm, diameter_nm, center_nm=(0.0, 0.0), out=None):
    """Ions inside an infinite cylinder along z.

    Parameters
    ----------
    x_nm, y_nm : ndarray of float, shape (n,)
        Reconstructed lateral positions in nm.
    diameter_nm : float
        Cylinder diameter in nm (the study uses 25 nm).
    center_nm : (float, float)
        Axis position in nm.
    out : ndarray of bool, shape (n,), optional

    Returns
    -------
    ndarray of bool, shape (n,)
        True where ``(x - cx)**2 + (y - cy)**2 <= (diameter / 2)**2``.
    """
    x = np.ascontiguousarray(x_nm)
    y = np.ascontiguousarray(y_nm)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("x and y must be 1-D arrays of the same length")
    if out is None:
        out = np.empty(x.shape, dtype=np.bool_)
    r = 0.5 * float(diameter_nm)
    _cylinder_kernel(x, y, float(center_nm[0]), float(center_nm[1]), r * r, out)
    return out
