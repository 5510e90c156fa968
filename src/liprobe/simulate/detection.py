"""Detection: trajectory blur, the detector hit, efficiency, pulses and multiple hits.

The hit of every ion is the reconstruction module's own inverse projection,
:func:`liprobe.spatial.reconstruct.project_angles_to_detector` (Geiser et al. 2009 /
Gault et al. 2011 wide-angle point projection; what
:func:`liprobe.spatial.reconstruct.project_to_detector` applies to positions), at the
ion's launch angles on the cap after a small lateral blur; there is no second
copy of the projection here. The image compression factor that puts the
cap's edge on the detector is the same projection solved for xi.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import njit
from ..spatial.reconstruct import project_angles_to_detector
from .parameters import MultiHitModel, SpecimenGeometry

__all__ = ["derived_icf", "blur_sigma_nm", "blurred_angles", "detector_hits", "pulse_structure"]


@njit(inline="always", error_model="numpy")
def _blur_sigma(interface_distance, blur, extra, width):
    """Blur (nm) at a distance from the coating interface (negative: no interface)."""
    if interface_distance < 0.0 or extra == 0.0:
        return blur
    d = interface_distance / width
    if d > 8.0:                  # exp(-32) ~ 1e-14: the bump has ended
        return blur
    return blur + extra * math.exp(-0.5 * d * d)


@njit(inline="always", error_model="numpy")
def _blurred_position(x, y, radius, sigma, gx, gy):
    """Blurred lateral position and its polar angle on the cap (-1 if blurred off the cap)."""
    xb = x + sigma * gx
    yb = y + sigma * gy
    s = math.sqrt(xb * xb + yb * yb) / radius
    if s >= 1.0:
        return xb, yb, -1.0
    return xb, yb, math.asin(s)


def derived_icf(geometry: SpecimenGeometry, flight_path_mm: float) -> float:
    """The ICF xi putting the cap's edge (polar angle 90 deg - alpha) at ``fov_fill`` of the
    detector.

    The Geiser projection puts a launch angle theta at ``tan(theta') =
    sin(theta) / (cos(theta) + xi - 1)`` (see
    :func:`liprobe.spatial.reconstruct.project_angles_to_detector`), so
    ``xi = 1 + sin(theta) / tan(theta') - cos(theta)`` with ``tan(theta') =
    fov_fill r_D / L``. ``geometry.icf`` wins when given.
    """
    if geometry.icf is not None:
        return float(geometry.icf)
    theta = math.radians(90.0 - geometry.shank_angle_deg)
    tan_p = geometry.fov_fill * geometry.detector_radius_mm / flight_path_mm
    return max(1.0, 1.0 + math.sin(theta) / tan_p - math.cos(theta))


def blur_sigma_nm(interface_distance_nm, geometry: SpecimenGeometry):
    """Lateral blur (nm, per coordinate) at a distance from the coating/oxide interface.

    ``blur + interface_blur * exp(-d^2 / (2 w^2))``; a negative distance (or
    None: no coating) gives the plain blur.
    """
    if interface_distance_nm is None:
        return geometry.blur_nm
    d = np.atleast_1d(np.asarray(interface_distance_nm, np.float64))
    out = np.empty_like(d)
    for i in range(len(d)):
        out[i] = _blur_sigma(d[i], geometry.blur_nm, geometry.interface_blur_nm,
                             geometry.interface_width_nm)
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _blurred_array(x, y, radius, sigma, gx, gy, xb, yb, theta):
    for i in range(x.shape[0]):
        xb[i], yb[i], theta[i] = _blurred_position(x[i], y[i], radius[i], sigma[i], gx[i], gy[i])


def blurred_angles(x_nm, y_nm, radius_nm, sigma_nm, normal_x, normal_y):
    """Launch angles (theta, phi) of ions at x, y on a cap of radius R after a lateral blur.

    ``x + sigma g_x``, ``y + sigma g_y`` (g standard normal) put back on the
    cap: ``sin(theta) = hypot / R``, ``phi = atan2``. theta is -1 for points
    blurred off the cap (hypot >= R), which never reach the detector.
    """
    x, y, r, sg, gx, gy = (np.ascontiguousarray(np.broadcast_to(a, np.shape(x_nm)), np.float64)
                           for a in (x_nm, y_nm, radius_nm, sigma_nm, normal_x, normal_y))
    xb = np.empty_like(x)
    yb = np.empty_like(x)
    theta = np.empty_like(x)
    _blurred_array(x, y, r, sg, gx, gy, xb, yb, theta)
    return theta, np.arctan2(yb, xb)


def detector_hits(theta_rad, phi_rad, *, flight_path_mm, icf, detector_radius_mm):
    """Detector hits (mm) of ions launched from the cap at polar angle theta, azimuth phi.

    The reconstruction module's inverse projection,
    :func:`liprobe.spatial.reconstruct.project_angles_to_detector` (Geiser), the
    exact inverse of :func:`liprobe.spatial.reconstruct.reconstruct` (and what
    :func:`liprobe.spatial.reconstruct.project_to_detector` applies to positions).

    Returns
    -------
    det_x_mm, det_y_mm : ndarray of float64
    on_detector : ndarray of bool
        False for hits beyond the detector radius, or theta < 0 (off the cap).
    """
    theta = np.asarray(theta_rad, np.float64)
    off = theta < 0
    dx, dy = project_angles_to_detector(np.where(off, 0.0, theta), phi_rad,
                                        flight_path_mm=flight_path_mm, icf=icf,
                                        protocol="geiser")
    on = ~off & (dx * dx + dy * dy <= detector_radius_mm * detector_radius_mm)
    return dx, dy, on


def pulse_structure(n_ions: int, rng: np.random.Generator, model: MultiHitModel):
    """Group ``n_ions`` consecutive detected ions into pulses.

    Each pulse that detects ions carries 1, 2, 3, ... of them with
    ``model.multiplicity_probabilities``; the pulses between two such pulses
    are geometric with the probability ``detection_rate / mean multiplicity``
    that a pulse detects anything. ``.epos`` convention: the first ion of a
    pulse has its multiplicity and the pulses since the previous event; the
    others have 0 and 0. The last pulse is cut at ``n_ions``.

    Returns
    -------
    multiplicity, pulse_delta : ndarray of int32, shape (n_ions,)
    """
    mult = np.zeros(n_ions, np.int32)
    delta = np.zeros(n_ions, np.int32)
    if n_ions == 0:
        return mult, delta
    u = rng.random(n_ions, dtype=np.float32)
    sizes = np.ones(n_ions, np.int64)
    for c in np.cumsum(model.multiplicity_probabilities)[:-1]:
        sizes += u >= c
    ends = np.cumsum(sizes)
    m = int(np.searchsorted(ends, n_ions)) + 1          # pulses needed
    sizes = sizes[:m]
    starts = ends[:m] - sizes
    sizes[-1] -= ends[m - 1] - n_ions
    p_event = model.detection_rate / model.mean_multiplicity
    mult[starts] = sizes
    # geometric number of pulses (>= 1) by inversion: 1 + floor(log(1 - u) / log(1 - p))
    g = np.floor(np.log1p(-rng.random(m)) / math.log1p(-p_event)) + 1.0
    delta[starts] = np.minimum(g, np.iinfo(np.int32).max)
    return mult, delta
