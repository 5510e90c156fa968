"""A reconstruction against the positions a file already holds (AP Suite, IVAS).

:func:`compare_to_file_positions` fits the point-projection model of
:mod:`liprobe.spatial.reconstruct` (Bas 1995, Geiser 2009 / Gault 2011) to the
x, y, z and detector hits of a reconstructed file, slab by slab in depth, and
reports how far the model's positions lie from the file's (median and
percentiles, lateral and in depth), with an optional detector distortion
correction. It tells whether liprobe's reconstruction with those parameters
reproduces the instrument software's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import AnalysisError
from .reconstruct import _check_protocol

__all__ = ["PositionComparison", "compare_to_file_positions"]

_CORRECTION_TERMS = {"none": 3, "center": 3, "affine": 3, "quadratic": 6, "cubic": 10}
_RES_EDGES = np.concatenate(([0.0], np.logspace(-6, 3, 3601)))


def _terms(u, v, kind):
    cols = [u, v, np.ones_like(u)]
    if kind in ("quadratic", "cubic"):
        cols += [u * u, v * v, u * v]
    if kind == "cubic":
        cols += [u * u * u, u * u * v, u * v * v, v * v * v]
    return np.stack(cols, axis=1)


def _hist_percentiles(hist, qs):
    c = np.cumsum(hist)
    tot = c[-1]
    out = []
    for q in qs:
        if tot == 0:
            out.append(None)
            continue
        k = int(np.searchsorted(c, q / 100.0 * tot))
        lo, hi = _RES_EDGES[k], _RES_EDGES[k + 1]
        out.append(float(math.sqrt(lo * hi)) if lo > 0 else float(hi))
    return out


@dataclass(frozen=True, eq=False)
class PositionComparison:
    """How well the point projection maps a file's detector hits onto its own x, y, z.

    Per depth slab (consecutive ions), fitted by least squares: the cap
    radius (linear in ion index across the slab), the image compression
    factor xi, and a smooth depth (quadratic in ion index); after one
    detector correction for the whole run (a polynomial map of the hits,
    normalised to unit scale: the instrument's distortion, e.g. a
    reflectron's, which the vendor software corrects before projecting).
    Residuals are distances between the file's and the fitted positions.

    Attributes
    ----------
    protocol : str
    flight_path_mm : float
        L used; xi is only meaningful for this L (lateral positions fix xi R / L,
        the cap's curvature in z fixes R).
    detector_correction : str
        "quadratic", "affine", "center" (a shift only) or "none" (raw hits).
    correction_x, correction_y : ndarray
        Coefficients of u, v, 1 (and u^2, v^2, uv) giving corrected hits in mm.
    z_flipped : bool
        The file's z increased through the run and was negated first.
    slab_start, slab_stop : ndarray of int
        Ion index range of each slab.
    z_mean_nm : ndarray
        Mean file z of each slab.
    radius_nm, radius_start_nm, radius_end_nm, icf, nm_per_mm : ndarray
        Fitted values per slab (radius at the middle; nm_per_mm = xi R / L,
        the lateral scale at the detector centre).
    lateral_median_nm, lateral_p95_nm, z_median_nm, z_p95_nm : ndarray
        Residuals per slab.
    lateral_residual_nm, z_residual_nm : dict
        Median and 95th percentile over all ions.
    """

    protocol: str
    flight_path_mm: float
    detector_correction: str
    correction_x: np.ndarray
    correction_y: np.ndarray
    z_flipped: bool
    slab_start: np.ndarray
    slab_stop: np.ndarray
    z_mean_nm: np.ndarray
    radius_nm: np.ndarray
    radius_start_nm: np.ndarray
    radius_end_nm: np.ndarray
    icf: np.ndarray
    nm_per_mm: np.ndarray
    lateral_median_nm: np.ndarray
    lateral_p95_nm: np.ndarray
    z_median_nm: np.ndarray
    z_p95_nm: np.ndarray
    lateral_residual_nm: dict
    z_residual_nm: dict
    n_ions: int

    def to_dict(self) -> dict:
        names = ["u", "v", "1", "u^2", "v^2", "uv", "u^3", "u^2 v", "u v^2", "v^3"][
            :len(self.correction_x)]
        return {
            "ions": self.n_ions,
            "protocol": self.protocol,
            "flight_path_mm": self.flight_path_mm,
            "detector_correction": {
                "kind": self.detector_correction,
                "x_mm": dict(zip(names, map(float, self.correction_x))),
                "y_mm": dict(zip(names, map(float, self.correction_y))),
            },
            "z_flipped": self.z_flipped,
            "residual_nm": {"lateral": self.lateral_residual_nm, "z": self.z_residual_nm},
            "slabs": [
                {"ions": [int(a), int(b)], "z_mean_nm": float(z), "radius_nm": float(r),
                 "radius_start_nm": float(r0), "radius_end_nm": float(r1), "icf": float(xi),
                 "nm_per_mm": float(s), "lateral_median_nm": float(lm),
                 "lateral_p95_nm": float(lp), "z_median_nm": float(zm), "z_p95_nm": float(zp)}
                for a, b, z, r, r0, r1, xi, s, lm, lp, zm, zp in zip(
                    self.slab_start, self.slab_stop, self.z_mean_nm, self.radius_nm,
                    self.radius_start_nm, self.radius_end_nm, self.icf, self.nm_per_mm,
                    self.lateral_median_nm, self.lateral_p95_nm, self.z_median_nm,
                    self.z_p95_nm)],
        }


def _cap_model(p, u, v, t, L, geiser):
    """Lateral and z positions (nm) for slab parameters p = (R0, R1, xi, a, b, c)."""
    R0, R1, xi, a, b, c = p
    R = R0 + (R1 - R0) * t
    r = np.hypot(u, v)
    with np.errstate(invalid="ignore", divide="ignore"):
        cphi = np.where(r > 0, u / r, 1.0)
        sphi = np.where(r > 0, v / r, 0.0)
    if geiser:
        tp = np.arctan(r / L)
        th = tp + np.arcsin(np.clip((xi - 1.0) * np.sin(tp), -1.0, 1.0))
        d = R * np.sin(th)
        sag = R * (1.0 - np.cos(th))
    else:
        q = np.clip(xi * r / L, 0.0, 1.0)
        d = R * q
        sag = R * (1.0 - np.sqrt(1.0 - q * q))
    return d * cphi, d * sphi, -(a + b * t + c * t * t) - sag


def compare_to_file_positions(x_nm, y_nm, z_nm, det_x_mm, det_y_mm, *, flight_path_mm,
                              protocol: str = "geiser", n_slabs: int = 20,
                              detector_correction: str = "quadratic",
                              max_fit_ions: int = 4000) -> PositionComparison:
    """Fit the projection that maps a file's detector hits onto its reconstructed positions.

    For runs reconstructed elsewhere (AP Suite, IVAS) whose files keep the
    hits but maybe not the voltage. Per slab of consecutive ions, the model
    is the cap of :func:`~liprobe.spatial.reconstruct.launch_angles` and
    :func:`~liprobe.spatial.reconstruct.cap_positions` with radius
    linear in ion index, ICF xi and a depth quadratic in ion index, fitted
    with ``scipy.optimize.least_squares`` to x, y and z together (the cap's
    curvature in z pins R, the lateral scale then pins xi for the given L).
    The hits first go through one detector correction for the whole run,
    found from short windows spread over the run (per window a linear least
    squares fit of x, y on the correction's terms, normalised by the root of
    its linear part's determinant; the median over windows).

    Parameters
    ----------
    x_nm, y_nm, z_nm : ndarray
        The file's positions in nm.
    det_x_mm, det_y_mm : ndarray
        The file's hits in mm.
    flight_path_mm : float
    protocol : {"geiser", "bas"}
    n_slabs : int
    detector_correction : {"quadratic", "affine", "center", "none"}
        The distortion map of the hits: a quadratic polynomial map, an
        affine map, a shift, or nothing.
    max_fit_ions : int
        Ions per slab used in the nonlinear fit (evenly spaced); residuals use all.

    Returns
    -------
    PositionComparison
    """
    from scipy.optimize import least_squares

    _check_protocol(protocol)
    if detector_correction not in _CORRECTION_TERMS:
        raise ValueError(f"detector_correction must be one of {', '.join(_CORRECTION_TERMS)}")
    n = len(x_nm)
    if not (len(y_nm) == len(z_nm) == len(det_x_mm) == len(det_y_mm) == n):
        raise AnalysisError("x, y, z, det_x and det_y differ in length")
    n_slabs = int(n_slabs)
    if n_slabs < 1:
        raise ValueError("n_slabs must be at least 1")
    if n < 50 * n_slabs:
        raise AnalysisError(f"{n} ions are too few for {n_slabs} slabs (50 ions per slab at least)")

    def f64(a, s, e):
        return np.asarray(a[s:e], dtype=np.float64)

    # z convention (reconstruction.md s4): CAMECA z decreases through the run
    m = max(1, n // 20)
    flip = float(np.mean(f64(z_nm, n - m, n))) > float(np.mean(f64(z_nm, 0, m)))
    zs = -1.0 if flip else 1.0

    # one detector correction for the whole run
    kind = detector_correction
    nt = _CORRECTION_TERMS[kind]
    if kind == "none":
        cxs = np.array([1.0, 0.0, 0.0])
        cys = np.array([0.0, 1.0, 0.0])
    else:
        K = max(8, min(40, 2 * n_slabs))
        W = max(50, min(2000, n // K))
        coefs = []
        for s in np.linspace(0, n - W, K).astype(np.int64):
            u, v = f64(det_x_mm, s, s + W), f64(det_y_mm, s, s + W)
            X, Y = f64(x_nm, s, s + W), f64(y_nm, s, s + W)
            if kind == "center":  # x = k (u - u0), y = k (v - v0)
                one, nil = np.ones_like(u), np.zeros_like(u)
                A = np.concatenate((np.stack([u, one, nil], 1), np.stack([v, nil, one], 1)))
                k, a, b = np.linalg.lstsq(A, np.concatenate((X, Y)), rcond=None)[0]
                if k > 0:
                    coefs.append(np.array([1.0, 0.0, a / k, 0.0, 1.0, b / k]))
                continue
            T = _terms(u, v, kind)
            ax = np.linalg.lstsq(T, X, rcond=None)[0]
            ay = np.linalg.lstsq(T, Y, rcond=None)[0]
            det = abs(ax[0] * ay[1] - ax[1] * ay[0])
            if det > 0:
                coefs.append(np.concatenate((ax, ay)) / math.sqrt(det))
        if not coefs:
            raise AnalysisError("detector hits do not map onto x, y (degenerate fit)")
        C = np.median(np.array(coefs), axis=0)
        cxs, cys = C[:nt], C[nt:]

    L = float(flight_path_mm)
    geiser = protocol == "geiser"
    edges = np.linspace(0, n, n_slabs + 1).astype(np.int64)
    rows = []
    h_lat = np.zeros(len(_RES_EDGES) - 1, np.int64)
    h_z = np.zeros(len(_RES_EDGES) - 1, np.int64)
    for s, e in zip(edges[:-1], edges[1:]):
        T = _terms(f64(det_x_mm, s, e), f64(det_y_mm, s, e), kind)
        u = T @ cxs
        v = T @ cys
        X, Y, Z = f64(x_nm, s, e), f64(y_nm, s, e), zs * f64(z_nm, s, e)
        t = np.linspace(0.0, 1.0, e - s)
        sub = np.unique(np.linspace(0, e - s - 1, min(e - s, max_fit_ions)).astype(np.int64))
        us, vs, ts, Xs, Ys, Zs = u[sub], v[sub], t[sub], X[sub], Y[sub], Z[sub]
        # starting values: lateral scale, and R from the cap's curvature in z
        lat = float(np.dot(np.r_[us, vs], np.r_[Xs, Ys]) / max(np.dot(np.r_[us, vs],
                                                                     np.r_[us, vs]), 1e-300))
        A = np.stack([np.ones_like(ts), ts, ts * ts, -(Xs * Xs + Ys * Ys)], axis=1)
        co = np.linalg.lstsq(A, -Zs, rcond=None)[0]
        q = -co[3]  # z = -(a + b t + c t^2) - d^2 / (2R)
        R_init = 1.0 / (2.0 * q) if q > 1e-6 else 100.0 * abs(lat)
        R_init = float(np.clip(R_init, 0.5, 1e4))
        xi_init = float(np.clip(abs(lat) * L / R_init, 1.01, 20.0))

        def resid(pp, us, vs, ts, Xs, Ys, Zs):
            px, py, pz = _cap_model(pp, us, vs, ts, L, geiser)
            return np.concatenate((px - Xs, py - Ys, pz - Zs))

        p0 = [R_init, R_init, xi_init, co[0], co[1], co[2]]
        fit = least_squares(resid, p0, x_scale=[R_init, R_init, 0.5, 10.0, 10.0, 10.0],
                            bounds=([0.1, 0.1, 1.0, -np.inf, -np.inf, -np.inf],
                                    [1e5, 1e5, 50.0, np.inf, np.inf, np.inf]),
                            args=(us, vs, ts, Xs, Ys, Zs))
        pp = fit.x
        px, py, pz = _cap_model(pp, u, v, t, L, geiser)
        el = np.hypot(px - X, py - Y)
        ez = np.abs(pz - Z)
        h_lat += np.histogram(el, _RES_EDGES)[0]
        h_z += np.histogram(ez, _RES_EDGES)[0]
        R_mid = 0.5 * (pp[0] + pp[1])
        rows.append((s, e, zs * float(Z.mean()), R_mid, pp[0], pp[1], pp[2],
                     pp[2] * R_mid / L, float(np.median(el)), float(np.percentile(el, 95)),
                     float(np.median(ez)), float(np.percentile(ez, 95))))
    cols = [np.array(c) for c in zip(*rows)]
    lat_q = _hist_percentiles(h_lat, (50, 95))
    z_q = _hist_percentiles(h_z, (50, 95))
    return PositionComparison(
        protocol=protocol, flight_path_mm=L, detector_correction=kind,
        correction_x=np.asarray(cxs), correction_y=np.asarray(cys), z_flipped=bool(flip),
        slab_start=cols[0].astype(np.int64), slab_stop=cols[1].astype(np.int64),
        z_mean_nm=cols[2], radius_nm=cols[3], radius_start_nm=cols[4], radius_end_nm=cols[5],
        icf=cols[6], nm_per_mm=cols[7], lateral_median_nm=cols[8], lateral_p95_nm=cols[9],
        z_median_nm=cols[10], z_p95_nm=cols[11],
        lateral_residual_nm={"median": lat_q[0], "p95": lat_q[1]},
        z_residual_nm={"median": z_q[0], "p95": z_q[1]}, n_ions=n)
