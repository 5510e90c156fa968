"""The needle: a spherical cap on a cone, evaporated cap by cap.

Geometry (``reconstruction.md`` s2; Gault et al., *Atom Probe Microscopy*,
Springer 2012): the specimen is a cone of half-angle alpha ending in a
spherical cap of radius R that meets the cone tangentially (the cap spans
polar angles 0 .. 90 deg - alpha about its centre of curvature). As the apex
moves down by Z the cap stays tangent to the shank, so its radius grows as
``R(Z) = R0 + c Z``, ``c = sin(a) / (1 - sin(a))``, and its centre sits at
``z = -(Z + R(Z))``.

Evaporation order. A point of the specimen leaves when the cap reaches it.
Parametrising the points by the cap that reaches them (Z) and their polar
and azimuthal angles on it (theta, phi), the volume element is
``dV = R^2 sin(theta) (cos(theta) - sin(a)) / (1 - sin(a)) dtheta dphi dZ``
(the surface's normal speed is ``(cos(theta) - sin(a)) / (1 - sin(a))`` per
unit Z: 1 at the apex, 0 where the cap meets the shank). So a uniform
density of atoms is sampled exactly, and in evaporation order, by:

- cumulative volume as a Poisson process (exponential spacings), turned
  into depth by ``V(Z) = pi (1 - sin a) (R(Z)^3 - R(Z0)^3) / (3 c)``
  (volume swept per unit depth ``pi (1 - sin a) R^2``);
- ``cos(theta) = sin(a) + (1 - sin(a)) sqrt(u)``, ``phi = 2 pi u'``.

No sort is needed: the spacings are already in order.

Note for reconstructions of such data: the point projection's depth
increment assumes the imaged area is ``pi (R sin(theta_max))^2`` per unit
depth, while a cone's expanding cap sweeps ``pi (1 - sin a) R^2``; when the
whole apex is imaged (theta_max ~ 90 deg - a), depths come out short by
about ``1 - (1 - sin a) / sin^2(theta_max)`` (17 % at a = 10 deg).

Frames. The *absolute* frame has the original needle's apex at z = 0. The
*truth* frame (what ``run.truth.pos`` and phase positions use) has the apex
at z = 0 when the acquisition starts, i.e. ``z_truth = z_abs + Z_start``; it is
the frame of the reconstruction (CAMECA convention, z <= 0 into the specimen).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._jit import njit

__all__ = ["Needle"]


# ---------------------------------------------------------------------------
# the geometry, once (scalar kernels shared by the array functions below)
# ---------------------------------------------------------------------------

@njit(inline="always", error_model="numpy")
def _depth_radius(vol, r0, c, k, start):
    """Absolute depth Z and cap radius R after ``vol`` nm^3 evaporated since the start."""
    if c > 0.0:
        radius = (r0 * r0 * r0 + (3.0 * c / k) * vol) ** (1.0 / 3.0)
        return start + (radius - r0) / c, radius
    return start + vol / (k * r0 * r0), r0


@njit(inline="always", error_model="numpy")
def _depth_radius_near(vol, r_prev, r0, c, k, start):
    """:func:`_depth_radius` by one Newton step on ``R^3`` from a nearby radius ``r_prev``.

    Along a run the radius moves by ~1e-6 nm per event, so one step is exact
    to rounding (error ~ (dR)^2 / R); it avoids a cube root per event.
    """
    if c > 0.0:
        target = r0 * r0 * r0 + (3.0 * c / k) * vol
        radius = r_prev + (target - r_prev * r_prev * r_prev) / (3.0 * r_prev * r_prev)
        return start + (radius - r0) / c, radius
    return start + vol / (k * r0 * r0), r0


@njit(inline="always", error_model="numpy")
def _surface_distance(rho, z, ro, sin_a, cos_a, start):
    """Distance to the original outer surface of a point (lateral radius, truth-frame z)."""
    z_abs = z - start
    h_t = -ro * (1.0 - sin_a)
    d = (ro * cos_a - rho) * cos_a + (h_t - z_abs) * sin_a
    d_cap = ro - math.sqrt(rho * rho + (z_abs + ro) * (z_abs + ro))
    # branch-free: the cap counts only above its tangent circle
    return min(d, d_cap) if z_abs > h_t else d


@njit(cache=True, nogil=True, error_model="numpy")
def _depth_radius_array(vol, r0, c, k, start, depth, radius):
    for i in range(vol.shape[0]):
        depth[i], radius[i] = _depth_radius(vol[i], r0, c, k, start)


@njit(cache=True, nogil=True, error_model="numpy")
def _surface_distance_array(rho, z, ro, sin_a, cos_a, start, out):
    for i in range(rho.shape[0]):
        out[i] = _surface_distance(rho[i], z[i], ro, sin_a, cos_a, start)


@dataclass(frozen=True)
class Needle:
    """A needle-shaped specimen with an optional conformal coating.

    Parameters
    ----------
    apex_radius_nm : float
        Cap radius when the acquisition starts (R at ``start_depth_nm``).
    shank_angle_deg : float
        Cone half-angle alpha.
    start_depth_nm : float
        Depth of the original apex already evaporated when recording starts.
    coating_thickness_nm : float
        Thickness of the conformal shell on the original surface (0: none).
    """

    apex_radius_nm: float
    shank_angle_deg: float
    start_depth_nm: float = 0.0
    coating_thickness_nm: float = 0.0

    def __post_init__(self):
        if self.original_radius_nm <= 0:
            raise ValueError(
                f"the needle's apex radius {self.apex_radius_nm} nm at {self.start_depth_nm} nm "
                f"depth would need a negative original radius with a {self.shank_angle_deg} deg "
                "shank")

    # -- shape -----------------------------------------------------------------
    @property
    def sin_a(self) -> float:
        return math.sin(math.radians(self.shank_angle_deg))

    @property
    def growth(self) -> float:
        """c = dR/dZ = sin(a) / (1 - sin(a))."""
        s = self.sin_a
        return s / (1.0 - s)

    @property
    def original_radius_nm(self) -> float:
        return self.apex_radius_nm - self.growth * self.start_depth_nm

    @property
    def swept_area_factor(self) -> float:
        """K / R^2: volume swept per unit depth is ``pi (1 - sin a) R^2``."""
        return math.pi * (1.0 - self.sin_a)

    def radius(self, depth_abs_nm):
        """Cap radius (nm) at absolute depth Z."""
        return self.original_radius_nm + self.growth * np.asarray(depth_abs_nm, np.float64)

    def depth_from_volume(self, volume_nm3):
        """Absolute depth Z and radius R after ``volume_nm3`` evaporated since the start.

        Returns
        -------
        depth_abs_nm, radius_nm : ndarray of float64
        """
        v = np.ascontiguousarray(np.atleast_1d(volume_nm3), dtype=np.float64)
        depth = np.empty_like(v)
        radius = np.empty_like(v)
        _depth_radius_array(v, self.apex_radius_nm, self.growth, self.swept_area_factor,
                            self.start_depth_nm, depth, radius)
        return depth, radius

    def volume_to_depth(self, depth_abs_nm) -> float:
        """Volume (nm^3) evaporated from the start down to absolute depth Z."""
        c = self.growth
        k = self.swept_area_factor
        r0 = self.apex_radius_nm
        if c == 0:
            return k * r0 * r0 * (depth_abs_nm - self.start_depth_nm)
        r = float(self.radius(depth_abs_nm))
        return k * (r ** 3 - r0 ** 3) / (3.0 * c)

    def surface_distance(self, rho_nm, z_nm):
        """Distance (nm) of points (lateral radius, truth-frame z) to the original outer surface.

        The surface is the original cap (radius R_o, centre at z = -R_o) above
        its tangent circle and the cone below it.
        """
        rho, z = np.broadcast_arrays(np.asarray(rho_nm, np.float64), np.asarray(z_nm, np.float64))
        rho = np.ascontiguousarray(rho).ravel()
        z = np.ascontiguousarray(z).ravel()
        out = np.empty_like(rho)
        s = self.sin_a
        _surface_distance_array(rho, z, self.original_radius_nm, s, math.sqrt(1.0 - s * s),
                                self.start_depth_nm, out)
        return out

    def outer_radius_at(self, z_nm):
        """Lateral radius (nm) of the outer surface at truth-frame z (below the original cap)."""
        s = self.sin_a
        cos_a = math.sqrt(1.0 - s * s)
        ro = self.original_radius_nm
        z_abs = np.asarray(z_nm, np.float64) - self.start_depth_nm
        return ro * cos_a + (-ro * (1.0 - s) - z_abs) * (s / cos_a)

    def to_dict(self) -> dict:
        return {"apex_radius_nm": self.apex_radius_nm, "shank_angle_deg": self.shank_angle_deg,
                "start_depth_nm": self.start_depth_nm,
                "original_apex_radius_nm": self.original_radius_nm,
                "coating_thickness_nm": self.coating_thickness_nm,
                "radius_growth_per_nm_depth": self.growth,
                "swept_volume_per_nm_depth_over_R2": self.swept_area_factor}

