"""The coating: a shell around the specimen, a cap on its top, and the core clear of it.

A coated specimen (Singh et al., arXiv:2309.07842, 2023: an in-situ Cr
coating) shows the coating as a shell at the periphery of the reconstruction
(their Figure 3); a run that starts above the coated apex first crosses a cap
of it. The paper keeps the coating out of the composition with a 25 nm
cylinder on the axis; ``core`` finds the region inside the coating instead, so
that as much of the oxide as possible is used, whatever the specimen's radius
and tilt.

Slabs in evaporation order
--------------------------
A point-projection reconstruction stacks the ions on spherical caps: what
evaporated at one moment lies on a *bowl* that spans tens of nm in z. Slabs
cut along z therefore cut a shallow run's shell obliquely (a run 2 nm deep
spans 30 nm of z). When the ions are in evaporation order (checked: the top
of the data falls steadily over 20 blocks of ions, and z is not sorted)
the slabs are consecutive blocks of ions, each a bowl no deeper than about
0.5 nm (the run's depth per ion is read from that fall) and of at least 15,000
ions; a run above ``fit_ions`` is read in evenly spaced windows of
consecutive ions rather than a random sample, so that each slab stays thin.
Otherwise the slabs run along z on a random sample (a warning says so), and
no normal thickness is given.

The shell, per slab
-------------------
1. **Radial profile.** Around a trial axis, the atomic fraction ``C(r)`` of
   the coating element (atoms after decomposition of the ranged ions; ``CrO+``
   gives one Cr of two atoms) in rings of ``ring_nm``, smoothed over three
   rings.
2. **Shell.** The plateau is the highest ``C`` of the smoothed profile, and
   its radius that of the outermost ring within 80 % of it; the interior
   level is ``C`` of the rings inside half the plateau's radius. A shell is
   found when the plateau lies in the outer half of the slab, is at
   least twice the interior level and exceeds it by five standard errors
   (binomial); otherwise the slab reports why not.
3. **Iso-level.** ``C* = interior + (plateau - interior) / 2``. The shell's
   inner radius is where ``C(r)``, walking inward from the plateau, falls
   below ``C*``; its outer radius where it falls below ``C*`` walking
   outward or, at the edge of the data, where the areal ion density falls to
   half its median value in the shell.
4. **Axis.** The coating-element ions between the two radii are fitted with a
   circle (algebraic least squares, Kasa 1976, IEEE Trans. Instrum. Meas. 25,
   8); its centre is the new axis, and steps 1-4 repeat (three times at most).
5. **Coverage.** The coating atoms of the shell's ring are counted in 12
   azimuthal sectors; a ring whose emptiest sector holds under 30 % of the
   median's is cut (by the data's edge or an ROI) and gives no thickness.
6. **Bowl.** A sphere ``|p - (x0, y0, z_c)| = R`` is fitted to the slab's
   ions (linear least squares): the reconstruction's cap radius ``R`` and the
   bowl's surface, on which the shell's inner radius gives a point of the
   coating's inner surface. A shell whose axis lies off the caps' axis by
   more than max(1 nm, 3 % of R) is a tilted specimen: no thickness.

The normal thickness of a shell
-------------------------------
The outer-minus-inner radius of a slab is an *apparent* lateral width: an
oblique cut of the shell, and the low-field coating's trajectories spread it.
The thickness normal to the surface comes from the standard specimen model
(Gault et al., *Atom Probe Microscopy*, Springer 2012, ch. 7): a spherical cap
tangent to a cone of half-angle alpha, the cap radius growing with depth as
``dR/dZ = sin a / (1 - sin a)``. alpha is fitted from the bowls' radii against
depth when the run is deep enough to measure it (at least 1 nm, to better than
3 deg), else assumed (``shank_angle_deg``, 10 +- 2 deg by default); a cap
radius that does not grow with depth (significantly, against that assumption)
means the model does not apply, and no thickness is given. Every cap is
tangent to the same cone, which fixes the cone's apex. The coating is a layer
of normal thickness ``t`` on the *original* surface: a cap of radius ``R_o``
(tangent to the same cone) and the cone. The inner-surface points of the slabs
must all lie at distance ``t`` from that surface; the depth of the original
apex above the data (one unknown) is chosen to make their distances most equal
(least variance, a bounded 1-D search), and ``t`` is their mean. Deep in the
shank the points follow the cone and the original apex drops out (its depth is
then reported as unknown); near the apex (a run that starts a few nm below it)
the original cap's coating, which reaches further in, is what fixes it. The
error combines a delete-one-slab jackknife with the change of ``t`` over
alpha's error (fitted) or over alpha +- 2 deg (assumed); with two slabs there
is no statistical error, and none is given. The error is statistical: on
simulated runs the thickness reads 3-6 % low (trajectory aberrations at the
interface).

A cap
-----
Ions near the axis (within a quarter of each slab's radius, at least 2 nm)
are profiled along z in bins of equal atom count. A cap is found when the
profile starts above the iso-level (half-way between the top plateau and the
interior below), crosses it once and stays below it for at least 80 % of the
bins beneath, with the plateau at least twice the interior and five standard
errors above it. Its thickness is from the top of the data on the axis to the
crossing: along the axis, i.e. normal to the apex.

Geometry and core
-----------------
``geometry`` is ``shell`` when a shell is found in at least two slabs and a
quarter of them, else ``cap`` when a cap is found, else ``none``. The core
is the set of ions closer to the axis than the shell's foot (where the
coating element is within 5 % of its step of the interior level) minus a
margin (axis and radius interpolated linearly in ion index between slab
centres, or in z for slabs along z) and, when there is a cap, deeper than
the cap's interface (a plane of z) by the margin. A shell found below a cap
bounds the core whatever the geometry's name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import Run

__all__ = ["ShellSlab", "ShellThickness", "CapLayer", "CoatingProfile", "coating_profile",
           "core_mask", "element_weights", "DEFAULT_SHANK_ANGLE_DEG"]

_CHUNK = 1 << 20
_MIN_RING_ATOMS = 20
#: Shank half-angle (deg) assumed when a run is too shallow to fit it (typical of
#: FIB-sharpened needles; Gault et al. 2012, ch. 5).
DEFAULT_SHANK_ANGLE_DEG = 10.0
#: The shell's foot: where the coating fraction, walking inward, is within this fraction
#: of the step (plateau - interior) of the interior level; the core is measured from it.
_FOOT = 0.05
#: Azimuthal sectors of the shell's ring; a slab whose emptiest sector holds less than
#: _MIN_COVERAGE of the median sector's coating atoms has a partial ring (the edge of the
#: data or an ROI cuts it): no normal thickness from it.
_SECTORS = 12
_MIN_COVERAGE = 0.3
#: Largest depth (nm) a slab should span: a bowl fitted to a thicker slab is biased.
_SLAB_DEPTH_NM = 0.5
_ASSUMED_ANGLE_SPREAD_DEG = 2.0


def element_weights(table: RangeTable, element: str) -> tuple[np.ndarray, np.ndarray]:
    """Atoms of ``element`` and all atoms carried by an ion of each window.

    Returns
    -------
    element_atoms, atoms : ndarray of float64, shape (len(table),)

    Raises
    ------
    AnalysisError
        If no ion of the table carries ``element``.
    """
    els, m = table.decomposition()
    if element not in els:
        raise AnalysisError(f"no ranged ion carries {element} (the range file has: "
                            f"{', '.join(els) or 'no elements'})", table.path)
    per_ion_el = m[:, els.index(element)].astype(np.float64)
    per_ion_all = m.sum(axis=1).astype(np.float64)
    return per_ion_el[table.ion_index], per_ion_all[table.ion_index]


@dataclass(frozen=True)
class ShellSlab:
    """The shell in one slab; lengths in nm, fractions of atoms.

    ``found`` False (with ``reason``) leaves the radii None and the axis from
    the last trial. ``ions_range`` is the slab's first and last ion index in
    the run (slabs in evaporation order) or None (slabs along z);
    ``cap_radius_nm``, ``cap_center_z_nm`` and ``cap_axis_nm`` describe the
    bowl (sphere) fitted to the slab and ``interface_z_nm`` the z of the
    shell's inner radius on it; ``azimuth_coverage`` is the shell ring's
    emptiest of 12 sectors over the median sector (coating atoms; near 0: the
    ring is cut).
    """

    z_min: float
    z_max: float
    z_center: float
    ions: int
    found: bool
    axis_nm: tuple
    interior: float | None = None
    plateau: float | None = None
    iso_level: float | None = None
    inner_radius_nm: float | None = None
    outer_radius_nm: float | None = None
    outer_is_data_edge: bool = False
    reason: str | None = None
    foot_radius_nm: float | None = None
    ions_range: tuple | None = None
    ion_center: float | None = None
    cap_radius_nm: float | None = None
    cap_center_z_nm: float | None = None
    cap_axis_nm: tuple | None = None
    interface_z_nm: float | None = None
    azimuth_coverage: float | None = None

    @property
    def apparent_thickness_nm(self) -> float | None:
        """Outer minus inner radius: the reconstructed lateral width, not the thickness."""
        if self.inner_radius_nm is None or self.outer_radius_nm is None:
            return None
        return self.outer_radius_nm - self.inner_radius_nm

    def core_radius_nm(self, margin_nm: float) -> float | None:
        """The core's radius: ``margin_nm`` inside the shell's foot."""
        edge = self.foot_radius_nm if self.foot_radius_nm is not None else self.inner_radius_nm
        if edge is None:
            return None
        return max(edge - margin_nm, 0.0)

    def to_dict(self, margin_nm: float | None = None) -> dict:
        d = {
            "z_nm": [self.z_min, self.z_max], "z_center_nm": self.z_center,
            "ions": self.ions, "ions_range": None if self.ions_range is None
            else list(self.ions_range),
            "found": self.found, "axis_nm": list(self.axis_nm),
            "interior": self.interior, "plateau": self.plateau, "iso_level": self.iso_level,
            "inner_radius_nm": self.inner_radius_nm, "foot_radius_nm": self.foot_radius_nm,
            "outer_radius_nm": self.outer_radius_nm,
            "outer_is_data_edge": self.outer_is_data_edge,
            "apparent_thickness_nm": self.apparent_thickness_nm,
            "cap_radius_nm": self.cap_radius_nm, "cap_center_z_nm": self.cap_center_z_nm,
            "cap_axis_nm": None if self.cap_axis_nm is None else list(self.cap_axis_nm),
            "interface_z_nm": self.interface_z_nm, "azimuth_coverage": self.azimuth_coverage,
        }
        if margin_nm is not None:
            rc = self.core_radius_nm(margin_nm)
            d["core_radius_nm"] = rc
            d["core_area_nm2"] = None if rc is None else math.pi * rc * rc
        if self.reason:
            d["reason"] = self.reason
        return d


@dataclass(frozen=True)
class ShellThickness:
    """The shell's thickness normal to the original surface (nm), from the cap-on-cone model.

    ``shank_angle_source`` is ``"fitted"`` (from the bowls' radii against
    depth), ``"given"`` or ``"assumed"``; ``start_depth_nm`` is how far the
    original apex lay above the top of the data, and ``original_apex_radius_nm``
    its radius (both None when every slab lies on the shank: then only a lower
    bound exists, and the shank alone fixes ``t``); ``residual_nm`` the rms
    scatter of the slabs' distances; ``error_parts`` the jackknife and
    shank-angle terms of the error (``thickness_nm_err`` None when the
    statistical term cannot be computed, e.g. two slabs).
    """

    thickness_nm: float
    thickness_nm_err: float | None
    shank_angle_deg: float
    shank_angle_err_deg: float
    shank_angle_source: str
    original_apex_radius_nm: float | None
    start_depth_nm: float | None
    residual_nm: float
    slabs_used: int
    error_parts: dict
    notes: tuple = ()

    direction = "normal to the original surface (cap-on-cone model of the specimen)"

    def to_dict(self) -> dict:
        return {"thickness_nm": self.thickness_nm, "thickness_nm_err": self.thickness_nm_err,
                "direction": self.direction, "shank_angle_deg": self.shank_angle_deg,
                "shank_angle_err_deg": self.shank_angle_err_deg,
                "shank_angle_source": self.shank_angle_source,
                "original_apex_radius_nm": self.original_apex_radius_nm,
                "start_depth_nm": self.start_depth_nm, "residual_nm": self.residual_nm,
                "slabs_used": self.slabs_used, "error_parts": dict(self.error_parts),
                "notes": list(self.notes)}


@dataclass(frozen=True)
class CapLayer:
    """A coating cap on top of the data, profiled along the axis; z in nm (data frame).

    ``thickness_nm`` runs from ``z_top_nm`` (the top of the data on the axis)
    down to ``interface_z_nm`` (the iso-level crossing): normal to the apex.
    """

    thickness_nm: float
    thickness_nm_err: float
    z_top_nm: float
    interface_z_nm: float
    plateau: float
    interior: float
    iso_level: float
    axis_ions: int

    direction = "along the axis (normal to the apex)"

    def to_dict(self) -> dict:
        return {"thickness_nm": self.thickness_nm, "thickness_nm_err": self.thickness_nm_err,
                "direction": self.direction, "z_top_nm": self.z_top_nm,
                "interface_z_nm": self.interface_z_nm, "plateau": self.plateau,
                "interior": self.interior, "iso_level": self.iso_level,
                "axis_ions": self.axis_ions}


@dataclass(frozen=True)
class CoatingProfile:
    """The coating: its slabs, geometry (``shell``, ``cap`` or ``none``) and thickness."""

    element: str
    ring_nm: float
    fit_ions: int
    slabs: tuple
    warnings: tuple = field(default=())
    order: str = "z"
    geometry: str = "none"
    shell_thickness: ShellThickness | None = None
    shell_thickness_reason: str | None = None
    cap: CapLayer | None = None
    cap_reason: str | None = None
    order_reason: str | None = None

    @property
    def found(self) -> tuple:
        """The slabs where a shell was found."""
        return tuple(s for s in self.slabs if s.found)

    def _measured(self):
        """The layer whose thickness is reported: the shell's fit or the cap, or None."""
        return {"shell": self.shell_thickness, "cap": self.cap}.get(self.geometry)

    @property
    def thickness_nm(self) -> float | None:
        """Normal thickness: the shell's (geometry ``shell``) or the cap's (``cap``)."""
        m = self._measured()
        return None if m is None else m.thickness_nm

    @property
    def thickness_nm_err(self) -> float | None:
        m = self._measured()
        return None if m is None else m.thickness_nm_err

    @property
    def thickness_reason(self) -> str | None:
        """Why :attr:`thickness_nm` is None (else None)."""
        if self.thickness_nm is not None:
            return None
        if self.geometry == "shell":
            return self.shell_thickness_reason
        return self.no_shell_message()

    def median_thickness_nm(self) -> float | None:
        """Median apparent (reconstructed, lateral) width of the shell over the slabs."""
        t = [s.apparent_thickness_nm for s in self.found]
        return float(np.median(t)) if t else None

    def interpolate(self, z_nm, index=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Axis x, axis y and the shell's foot radius (nm), linear between slab centres.

        In ion index (``index``, needed when the slabs are in evaporation
        order) or in ``z_nm`` (slabs along z).

        Raises
        ------
        AnalysisError
            If no slab has a shell.
        """
        f = self.found
        if not f:
            raise AnalysisError(self.no_shell_message())
        if self.order == "evaporation":
            if index is None:
                raise ValueError("slabs in evaporation order interpolate in ion index")
            f = sorted(f, key=lambda s: s.ion_center)
            zc = np.array([s.ion_center for s in f], dtype=np.float64)
            z = np.asarray(index, dtype=np.float64)
            # no extrapolation in ion index: the ends keep the end slabs' values
            return (np.interp(z, zc, [s.axis_nm[0] for s in f]),
                    np.interp(z, zc, [s.axis_nm[1] for s in f]),
                    np.interp(z, zc, [s.core_radius_nm(0.0) for s in f]))
        f = sorted(f, key=lambda s: s.z_center)
        zc = np.array([s.z_center for s in f])
        z = np.asarray(z_nm, dtype=np.float64)
        return (_interp(z, zc, [s.axis_nm[0] for s in f]),
                _interp(z, zc, [s.axis_nm[1] for s in f]),
                _interp(z, zc, [s.core_radius_nm(0.0) for s in f]))

    def no_shell_message(self) -> str:
        reasons = sorted({s.reason for s in self.slabs if s.reason})
        cap = f"; no cap: {self.cap_reason}" if self.cap is None and self.cap_reason else ""
        if self.order != "evaporation":
            end = (f"slabs along z, since {self.order_reason}: a shallow run's shell can be "
                   "missed")
        elif self.cap_reason and "inside the coating" in self.cap_reason:
            end = "there is no oxide to keep the coating out of"
        else:
            end = "the data has no coating to keep out"
        return (f"no {self.element} shell or cap found in {len(self.slabs)} slab(s) "
                f"({'; '.join(reasons) or 'too few slabs with a shell'}{cap}): {end}")

    def to_dict(self, margin_nm: float | None = None) -> dict:
        return {
            "element": self.element,
            "geometry": self.geometry,
            "thickness_nm": self.thickness_nm,
            "thickness_nm_err": self.thickness_nm_err,
            "thickness_direction": ("normal to the original surface" if self.geometry == "shell"
                                    else CapLayer.direction if self.geometry == "cap" else None),
            "thickness_reason": self.thickness_reason,
            "shell_thickness": None if self.shell_thickness is None
            else self.shell_thickness.to_dict(),
            "cap": None if self.cap is None else self.cap.to_dict(),
            "cap_reason": self.cap_reason,
            "slab_order": self.order,
            "iso_level": "half-way between the interior and the shell plateau of the "
                         "coating element's atomic fraction (radial profile per slab)",
            "apparent": "outer minus inner radius per slab: the shell's reconstructed lateral "
                        "width, which an oblique cut and the coating's trajectories widen; "
                        "not the thickness",
            "ring_nm": self.ring_nm, "fit_ions": self.fit_ions,
            "slabs_found": len(self.found), "slabs_total": len(self.slabs),
            "median_apparent_thickness_nm": self.median_thickness_nm(),
            "margin_nm": margin_nm,
            "slabs": [s.to_dict(margin_nm) for s in self.slabs],
            "warnings": list(self.warnings),
        }


def _interp(z, zc, v):
    """Linear in ``z`` through ``(zc, v)`` (``zc`` ascending), continued with the end slopes.

    The end slabs hold data only half a slab beyond their centres, so the
    continuation is short; a cone's radius keeps widening through it.
    """
    v = np.asarray(v, dtype=np.float64)
    out = np.interp(z, zc, v)
    if len(zc) > 1 and zc[1] > zc[0]:
        lo = z < zc[0]
        out[lo] = v[0] + (z[lo] - zc[0]) * (v[1] - v[0]) / (zc[1] - zc[0])
    if len(zc) > 1 and zc[-1] > zc[-2]:
        hi = z > zc[-1]
        out[hi] = v[-1] + (z[hi] - zc[-1]) * (v[-1] - v[-2]) / (zc[-1] - zc[-2])
    return out


def _crossing(c, rc, level, start, step):
    """Radius where ``c`` (per ring, centres ``rc``) drops below ``level`` walking from ``start``.

    Returns None if it never does within the rings.
    """
    j = start
    n = len(c)
    while 0 <= j + step < n:
        nxt = j + step
        if not (c[nxt] >= level):          # below, or NaN (no atoms): crossing
            if np.isnan(c[nxt]):
                return None
            t = (c[j] - level) / (c[j] - c[nxt]) if c[j] != c[nxt] else 0.5
            return float(rc[j] + t * (rc[nxt] - rc[j]))
        j = nxt
    return None


#: Most rings of one radial analysis (a needle of 10^6 rings of 0.5 nm is 0.5 mm wide).
_MAX_RINGS = 1_000_000


def _shell_in_slab(x, y, el_w, at_w, cx, cy, ring_nm):
    """One radial analysis around (cx, cy); a dict of the shell or a reason."""
    r = np.hypot(x - cx, y - cy)
    r_edge = float(r.max()) if len(r) else 0.0
    if not r_edge / ring_nm <= _MAX_RINGS:     # inf and NaN too: bounded work
        return {"reason": f"the slab's ions lie up to {r_edge:.3g} nm from the axis: more "
                          f"than {_MAX_RINGS:,} rings of {ring_nm:g} nm (not the positions "
                          "of a reconstructed needle?)"}
    n_rings = max(int(math.ceil(r_edge / ring_nm)) + 1, 3)
    k = np.minimum((r / ring_nm).astype(np.int64), n_rings - 1)
    el = np.bincount(k, weights=el_w, minlength=n_rings)
    at = np.bincount(k, weights=at_w, minlength=n_rings)
    kern = np.ones(3)
    el3, at3 = np.convolve(el, kern, "same"), np.convolve(at, kern, "same")
    with np.errstate(invalid="ignore", divide="ignore"):
        c3 = np.where(at3 >= _MIN_RING_ATOMS, el3 / at3, np.nan)
    rc = (np.arange(n_rings) + 0.5) * ring_nm
    if np.all(np.isnan(c3)):
        return {"reason": "too few ranged atoms in the slab"}
    top = float(np.nanmax(c3))
    # the plateau's outermost ring (within 80 % of the top): a flat plateau's argmax may lie
    # anywhere on it, and a shell covering most of a bowl would seem to peak inside
    ip = int(np.flatnonzero(c3 >= 0.8 * top)[-1])
    r_peak = rc[ip]
    inner = rc <= 0.5 * r_peak
    a_in, e_in = at[inner].sum(), el[inner].sum()
    if r_peak < 0.5 * np.percentile(r, 99) or a_in == 0:
        return {"reason": "the coating element peaks inside the specimen, not at its periphery"}
    bg = float(e_in / a_in)
    sigma = math.sqrt(top * (1 - top) / at3[ip] + bg * (1 - bg) / a_in)
    if not (top - bg > 5 * sigma and top >= 2 * bg):
        return {"reason": "the coating element is not enriched at the periphery"}
    level = bg + 0.5 * (top - bg)
    r_in = _crossing(c3, rc, level, ip, -1)
    if r_in is None:
        return {"reason": "no interior below the iso-level (the shell fills the slab)"}
    foot = _crossing(c3, rc, bg + _FOOT * (top - bg), ip, -1)
    foot = r_in if foot is None else min(foot, r_in)
    r_out = _crossing(c3, rc, level, ip, +1)
    at_edge = r_out is None
    if at_edge:
        # the shell reaches the edge of the data: take the edge where the areal ion
        # density falls to half its value in the shell (a slab of a cone has a
        # gradual edge: this is its middle)
        ions = np.convolve(np.bincount(k, minlength=n_rings).astype(np.float64), kern, "same")
        area = np.convolve(np.pi * ring_nm ** 2 * (2 * np.arange(n_rings) + 1.0), kern, "same")
        dens = ions / area
        j_in = min(int(r_in / ring_nm) + 1, ip)     # first ring wholly in the shell
        ref = float(np.median(dens[j_in:ip + 1]))
        r_out = _crossing(dens, rc, 0.5 * ref, j_in, +1) or r_edge
    return {"interior": bg, "plateau": top, "iso_level": level, "inner": r_in,
            "foot": foot, "outer": r_out, "edge": at_edge, "r": r}


def _circle_fit(x, y):
    """Centre and radius of the least-squares circle through points (Kasa 1976)."""
    a = np.column_stack([2 * x, 2 * y, np.ones_like(x)])
    b = x * x + y * y
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy, c = sol
    return float(cx), float(cy), float(np.sqrt(max(c + cx * cx + cy * cy, 0.0)))


def _fit_slab(x, y, el_w, at_w, ring_nm):
    cx, cy = float(np.median(x)), float(np.median(y))
    res = None
    for _ in range(3):
        res = _shell_in_slab(x, y, el_w, at_w, cx, cy, ring_nm)
        if "reason" in res:
            break
        r = res["r"]
        band = (el_w > 0) & (r >= res["inner"]) & (r <= res["outer"] + ring_nm)
        if band.sum() < 10:
            break
        nx, ny, _rad = _circle_fit(x[band] - cx, y[band] - cy)
        shift = math.hypot(nx, ny)
        if not math.isfinite(shift) or shift > 0.5 * res["inner"]:
            break
        cx, cy = cx + nx, cy + ny
        if shift < 0.05 * ring_nm:
            res = _shell_in_slab(x, y, el_w, at_w, cx, cy, ring_nm)
            break
    else:
        res = _shell_in_slab(x, y, el_w, at_w, cx, cy, ring_nm)
    if "reason" not in res:
        r = res["r"]
        band = (el_w > 0) & (r >= res["inner"]) & (r <= res["outer"] + ring_nm)
        phi = np.arctan2(y[band] - cy, x[band] - cx)
        sectors = np.bincount(((phi + np.pi) / (2 * np.pi) * _SECTORS).astype(np.int64)
                              % _SECTORS, weights=el_w[band], minlength=_SECTORS)
        med = float(np.median(sectors))
        res["coverage"] = float(sectors.min() / med) if med > 0 else 0.0
    return (cx, cy), res


def _evaporation_order(z: np.ndarray, blocks: int = 20) -> tuple[bool, str, float]:
    """Whether ions are in evaporation order: z not sorted, and the top of the data (its
    99.5th percentile of z) falling steadily over ``blocks`` blocks of ions: Spearman rho
    <= -0.8, and a fall (linear fit) over ten times the tops' scatter about the line.

    Returns (in order, why not, the fall of the top over all the ions in nm)."""
    n = len(z)
    if n < 20 * blocks:
        return False, "too few ions to tell their order", 0.0
    dz = np.diff(z)
    if np.mean(dz <= 0) > 0.95 or np.mean(dz >= 0) > 0.95:
        return False, "the ions are sorted by z, not in evaporation order", 0.0
    tops = [float(np.percentile(c, 99.5)) for c in np.array_split(z, blocks)]
    from scipy.stats import spearmanr

    k = np.arange(blocks)
    rho = float(spearmanr(k, tops).statistic)
    slope, icpt = np.polyfit(k, tops, 1)
    noise = float(np.std(np.asarray(tops) - (slope * k + icpt)))
    fall = -float(slope) * blocks
    if rho >= 0.8 and float(slope) * (blocks - 1) > 10.0 * noise:
        return False, ("the top of the data rises with ion index: z points into the "
                       "specimen, where liprobe expects z <= 0 into it (CAMECA's "
                       "convention)"), 0.0
    if not (rho <= -0.8 and -slope * (blocks - 1) > 10.0 * noise):
        return False, (f"the top of the data does not fall with ion index (Spearman rho "
                       f"{rho:.2f}): the ions are not in evaporation order"), 0.0
    return True, "", fall


def _bowl(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[float, float, float, float] | None:
    """Radius, centre z and centre x, y (nm) of the sphere that best fits the points
    (``x^2 + y^2 + z^2 = 2 x0 x + 2 y0 y + 2 z_c z + k``, linear least squares); None if
    degenerate."""
    if len(z) < 10 or float(np.ptp(z)) <= 0:
        return None
    a = np.column_stack([2.0 * x, 2.0 * y, 2.0 * z, np.ones_like(z)])
    sol, *_ = np.linalg.lstsq(a, x * x + y * y + z * z, rcond=None)
    x0, y0, zc, k = (float(v) for v in sol)
    r_sq = k + x0 * x0 + y0 * y0 + zc * zc
    if not (math.isfinite(r_sq) and r_sq > 0):
        return None
    return math.sqrt(r_sq), zc, x0, y0


def _surface_distances(r, z, s, sin_a, z_v, z_top):
    """Distances (nm) of points (lateral r, z) inside an original surface made of the cone
    (apex ``z_v`` on the axis, half-angle a) and a cap tangent to it whose apex lies ``s`` nm
    above ``z_top``; also the cap's radius."""
    cos_a = math.sqrt(1.0 - sin_a * sin_a)
    z_apex = z_top + s
    z_o = (z_apex - z_v * sin_a) / (1.0 - sin_a)
    r_o = (z_v - z_o) * sin_a
    d_cone = (z_v - z) * sin_a - r * cos_a
    d_cap = r_o - np.hypot(r, z - z_o)
    # the cap's region: inside the cone of the normals through its tangent circle
    on_cap = (z - z_o) * math.sqrt(1.0 - sin_a * sin_a) > r * sin_a
    return np.where(on_cap, d_cap, d_cone), r_o


def _fit_thickness(r, z, radius, zc, sin_a, z_top):
    """Normal thickness from the inner-surface points (r, z), the bowls (radius, centre z)
    and the top of the data ``z_top``: (t, start depth s or None when only a lower bound,
    original apex radius or None, rms residual), or None."""
    z_v = float(np.mean(zc + radius / sin_a))   # every cap is tangent to the cone
    s_max = 4.0 * float(np.max(radius)) + float(np.ptp(zc)) + 20.0
    from scipy.optimize import minimize_scalar

    def var(s):
        d, _ = _surface_distances(r, z, s, sin_a, z_v, z_top)
        return float(np.var(d))

    grid = np.linspace(0.0, s_max, 801)
    v = np.array([var(s) for s in grid])
    k = int(np.argmin(v))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    best = grid[k]
    if hi > lo:
        res = minimize_scalar(var, bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-4})
        if res.success and res.fun <= v[k]:
            best = float(res.x)
    d, r_o = _surface_distances(r, z, best, sin_a, z_v, z_top)
    t = float(np.mean(d))
    if not (math.isfinite(t) and 0 < t < r_o):
        return None
    # no point on the original cap: every start depth from here up fits as well
    z_o = (z_top + best - z_v * sin_a) / (1.0 - sin_a)
    on_cap = bool(np.any((z - z_o) * math.sqrt(1.0 - sin_a * sin_a) > r * sin_a))
    return (t, float(best) if on_cap else None, float(r_o) if on_cap else None,
            float(np.sqrt(np.mean((d - t) ** 2))))


def _shank_angle(top, radius, given):
    """(alpha, its error, source, note or None) in deg, or a reason (str) the model fails.

    ``c = dR/dZ`` from the bowls' radii against their apex depth (``Z = -top``):
    ``sin a = c / (1 + c)``.
    """
    if given is not None:
        return float(given), 0.0, "given", None
    a0, da0 = DEFAULT_SHANK_ANGLE_DEG, _ASSUMED_ANGLE_SPREAD_DEG
    if len(top) < 3 or float(np.ptp(top)) < 1.0:
        return a0, da0, "assumed", (f"the run is too shallow ({float(np.ptp(top)):.1f} nm) to "
                                    f"fit the shank angle: {a0:g} +- {da0:g} deg assumed")
    from scipy.stats import linregress

    fit = linregress(-top, radius)
    c, c_err = float(fit.slope), float(fit.stderr)
    if not math.isfinite(c_err):
        c_err = math.inf
    c0 = math.sin(math.radians(a0)) / (1.0 - math.sin(math.radians(a0)))
    if c <= 0 or c / (1.0 + c) > math.sin(math.radians(45.0)):
        if abs(c - c0) > 3.0 * c_err:
            return (f"the cap radius does not grow with depth as on a cone (dR/dZ = "
                    f"{c:.3f} +- {c_err:.3f}): the cap-on-cone model does not apply")
        return a0, da0, "assumed", (f"the cap radius against depth is too noisy to fit the "
                                    f"shank angle (dR/dZ = {c:.3f} +- {c_err:.3f}): "
                                    f"{a0:g} +- {da0:g} deg assumed")
    a_fit = math.degrees(math.asin(c / (1.0 + c)))
    # d(alpha)/dc = 1 / ((1 + c) sqrt(1 + 2c)) rad
    a_err = math.degrees(c_err / ((1.0 + c) * math.sqrt(1.0 + 2.0 * c)))
    if a_err <= 3.0:
        return a_fit, a_err, "fitted", None
    return a0, da0, "assumed", (f"the shank angle fitted from the cap radius against depth, "
                                f"{a_fit:.1f} +- {a_err:.1f} deg, is too uncertain: "
                                f"{a0:g} +- {da0:g} deg assumed")


def _shell_thickness(found, shank_angle_deg, z_top):
    """:class:`ShellThickness` from the slabs with a shell and a bowl, or a reason (str)."""
    pts = [s for s in found if s.cap_radius_nm is not None and s.interface_z_nm is not None]
    partial = [s for s in pts if s.azimuth_coverage is not None
               and s.azimuth_coverage < _MIN_COVERAGE]
    if partial and len(partial) >= 0.5 * len(pts):
        return (f"the shell's ring is cut in {len(partial)} of {len(pts)} slabs (its emptiest "
                f"of {_SECTORS} sectors holds under {_MIN_COVERAGE:.0%} of the median's "
                "coating atoms: the edge of the data or an ROI cuts it), so its axis and "
                "radius are not the specimen's")
    pts = [s for s in pts if s not in partial]
    if len(pts) < 2:
        return ("the normal thickness needs the shell in at least two slabs in evaporation "
                "order (bowls of the reconstruction)")
    off = max(math.hypot(s.axis_nm[0] - s.cap_axis_nm[0], s.axis_nm[1] - s.cap_axis_nm[1])
              for s in pts)
    tol = max(1.0, 0.03 * float(np.median([s.cap_radius_nm for s in pts])))
    if off > tol:
        return (f"the shell's axis lies {off:.1f} nm from the axis of the reconstruction's caps "
                f"(over {tol:.1f} nm: a specimen tilted in the reconstruction), so the "
                "cap-on-cone model does not apply")
    r = np.array([s.inner_radius_nm for s in pts])
    z = np.array([s.interface_z_nm for s in pts])
    radius = np.array([s.cap_radius_nm for s in pts])
    zc = np.array([s.cap_center_z_nm for s in pts])
    notes = []
    if partial:
        notes.append(f"{len(partial)} slab(s) with a cut ring left out of the thickness")
    angle = _shank_angle(zc + radius, radius, shank_angle_deg)
    if isinstance(angle, str):
        return angle
    alpha, alpha_err, source, note = angle
    if note:
        notes.append(note)
    sin_a = math.sin(math.radians(alpha))
    fit = _fit_thickness(r, z, radius, zc, sin_a, z_top)
    if fit is None:
        return ("the shell's inner surface does not fit a conformal coating on a cap and cone "
                "(no positive thickness)")
    t, s, r_o, rms = fit
    if s is None:
        notes.append("every slab lies on the shank: the original apex's depth is unknown "
                     "(only a lower bound), and the thickness is the shank's")
    parts = {}
    stat_ok = True
    if len(pts) >= 3:
        jack = []
        for i in range(len(pts)):
            keep = np.arange(len(pts)) != i
            f = _fit_thickness(r[keep], z[keep], radius[keep], zc[keep], sin_a, z_top)
            if f is not None:
                jack.append(f[0])
        if len(jack) == len(pts):
            jk = np.array(jack)
            parts["jackknife_nm"] = float(math.sqrt((len(jk) - 1) / len(jk)
                                                    * np.sum((jk - jk.mean()) ** 2)))
        else:
            stat_ok = False
            notes.append("a leave-one-slab-out fit failed: no statistical error")
    else:
        stat_ok = False
        notes.append("two slabs: no statistical error (a fit with no residual)")
    if alpha_err > 0:
        ts = []
        for da in (-alpha_err, alpha_err):
            f = _fit_thickness(r, z, radius, zc, math.sin(math.radians(alpha + da)), z_top)
            if f is not None:
                ts.append(f[0])
        if len(ts) == 2:
            parts["shank_angle_nm"] = abs(ts[1] - ts[0]) / 2.0
        else:
            notes.append("the fit fails within the shank angle's error: its part of the error "
                         "is missing")
    err = (float(math.sqrt(sum(v * v for v in parts.values())))
           if parts and stat_ok else None)
    if rms > 0.25 * t:
        notes.append(f"the slabs' distances to the model surface scatter by {rms:.2f} nm: "
                     "the shell is not a uniform conformal layer")
    return ShellThickness(t, err, alpha, alpha_err, source, r_o, s, rms, len(pts), parts,
                          tuple(notes))


def _cap_layer(z, r, r_scale, el_w, at_w):
    """:class:`CapLayer` of the ions near the axis, or a reason (str).

    ``r`` is each ion's distance from its slab's axis and ``r_scale`` its slab's
    99th-percentile radius.
    """
    near = (r <= np.maximum(2.0, 0.25 * r_scale)) & (at_w > 0)
    n_axis = int(near.sum())
    if n_axis < 2_000:
        return f"too few ranged ions near the axis ({n_axis}) to profile a cap"
    order = np.argsort(-z[near], kind="stable")
    zs, e, a = z[near][order], el_w[near][order], at_w[near][order]
    cum = np.cumsum(a)
    n_bins = int(min(80, max(10, cum[-1] // 500)))
    edges = np.searchsorted(cum, np.linspace(0, cum[-1], n_bins + 1)[1:-1])
    e_b = np.array([x.sum() for x in np.split(e, edges)])
    a_b = np.array([x.sum() for x in np.split(a, edges)])
    z_b = np.array([float(np.median(x)) if len(x) else np.nan for x in np.split(zs, edges)])
    if np.any(a_b <= 0) or np.any(np.isnan(z_b)):
        return "the axis profile has empty bins"
    kern = np.ones(3)
    c = np.convolve(e_b, kern, "same") / np.convolve(a_b, kern, "same")
    a3 = np.convolve(a_b, kern, "same")
    lowest = float(np.min(c))
    if lowest >= 0.1 and lowest >= 0.5 * float(np.max(c)):
        return (f"the coating element fills the data along the axis (at least "
                f"{100 * lowest:.0f} % of the atoms in every bin): the selection lies inside "
                "the coating")
    head = max(3, n_bins // 4)
    ip = int(np.argmax(c[:head]))
    top = float(c[ip])
    interior = float(np.median(c[-max(3, n_bins // 4):]))
    j = None
    for _ in range(3):
        level = interior + 0.5 * (top - interior)
        j = next((k for k in range(ip, n_bins) if c[k] < level), None)
        if j is None or j >= n_bins - 3:
            return "the coating element does not fall off along the axis"
        interior = float(np.median(c[j:]))
    level = interior + 0.5 * (top - interior)
    j = next((k for k in range(ip, n_bins) if c[k] < level), None)
    if j is None or j >= n_bins - 3:
        return "the coating element does not fall off along the axis"
    if not c[0] >= level or j == 0:
        return "the data does not start in the coating element on the axis"
    below = c[j:]
    sigma = math.sqrt(top * (1 - top) / a3[ip] + max(interior * (1 - interior), 0.0)
                      / max(float(a_b[j:].sum()), 1.0))
    if not (top - interior > 5 * sigma and top >= 2 * interior):
        if interior >= 0.1:
            return (f"the coating element fills the data along the axis ({100 * interior:.0f} % "
                    "of the atoms at the bottom too): the run lies inside the coating")
        return "the coating element is not enriched at the top of the axis"
    if np.mean(below < level) < 0.8:
        return "the coating element returns along the axis below the top (no single cap)"
    c0, c1, z0, z1 = c[j - 1], c[j], z_b[j - 1], z_b[j]
    frac = (c0 - level) / (c0 - c1) if c0 != c1 else 0.5
    z_x = float(z0 + frac * (z1 - z0))
    z_top = float(np.percentile(zs, 99.9))
    slope = abs((c0 - c1) / (z0 - z1)) if z0 != z1 else float("inf")
    s_c = math.sqrt(level * (1 - level) / max(0.5 * (a3[j - 1] + a3[j]), 1.0))
    err = math.hypot(abs(z0 - z1) / math.sqrt(12.0), s_c / slope if slope > 0 else 0.0)
    return CapLayer(z_top - z_x, err, z_top, z_x, top, interior, level, n_axis)


def coating_profile(run: Run, ranges: RangeTable, element: str = "Cr",
                    ions_per_slab: int = 40_000, ring_nm: float = 0.5,
                    fit_ions: int = 2_000_000, seed: int = 0,
                    shank_angle_deg: float | None = None) -> CoatingProfile:
    """The coating: shell per slab, cap, geometry and normal thickness.

    Parameters
    ----------
    run : Run
        Needs ``x y z`` (nm) and ``mass`` (Da).
    ranges : RangeTable
        Must range at least one ion carrying ``element``.
    element : str
        The coating element.
    ions_per_slab : int
        About this many ions (of the fit sample) per slab; runs of fewer than
        six slabs' worth are cut into up to six slabs of at least 15,000 ions.
    ring_nm : float
        Width of the rings of the radial profile.
    fit_ions : int
        Largest sample (seeded, without replacement, kept in order) used for the fit.
    seed : int
    shank_angle_deg : float, optional
        The specimen's shank half-angle; by default fitted from the cap radius
        against depth when the run is deep enough, else 10 deg assumed.

    Returns
    -------
    CoatingProfile
        Slabs from the top of the specimen (first ions, or highest z) down.

    Raises
    ------
    ColumnError
        A missing column.
    AnalysisError
        No ions, or no ranged ion carrying ``element``.
    """
    if ring_nm <= 0 or ions_per_slab < 1 or fit_ions < 1:
        raise ValueError("ring_nm, ions_per_slab and fit_ions must be positive")
    if shank_angle_deg is not None and not 0 < shank_angle_deg < 60:
        raise ValueError(f"shank angle must lie between 0 and 60 deg (got {shank_angle_deg})")
    for c in ("x", "y", "z", "mass"):
        run.source(c)          # ColumnError naming the column
    el_win, at_win = element_weights(ranges, element)
    n = run.n_ions
    if n == 0:
        raise AnalysisError("no ions", run.path)
    from ..ranging import assign

    # the order first, on at most 400,000 ions taken at a fixed stride
    stride = max(1, n // 400_000)
    evap, why, fall = _evaporation_order(np.asarray(run.source("z")[::stride], np.float64))
    warnings = list(ranges.warnings)
    per = int(ions_per_slab)
    if evap:
        # slabs of consecutive ions, each at most ~_SLAB_DEPTH_NM deep (a bowl fitted to a
        # deeper slab is biased), of at least 15,000 ions; above fit_ions, evenly spaced
        # windows of the run rather than a random sample, so that each stays thin
        nm_per_ion = max(fall, 0.0) / n
        if nm_per_ion > 0:
            per = max(min(per, 15_000), min(per, int(_SLAB_DEPTH_NM / nm_per_ion)))
        if n > fit_ions:
            n_slabs = max(2, int(fit_ions) // per)
            starts = np.linspace(0, n - per, n_slabs).astype(np.int64)
            idx = np.concatenate([np.arange(a0, a0 + per) for a0 in starts])
            bounds = np.arange(n_slabs + 1) * per
        else:
            n_slabs = max(1, n // per, min(6, n // 15_000), 2 if n >= 10_000 else 1)
            idx = np.arange(n)
            bounds = np.linspace(0, n, n_slabs + 1).astype(np.int64)
    else:
        m0 = min(int(fit_ions), n)
        idx = (np.sort(np.random.default_rng(seed).choice(n, size=m0, replace=False))
               if m0 < n else np.arange(n))
        n_slabs = max(1, m0 // per, min(6, m0 // 15_000), 2 if m0 >= 10_000 else 1)
        bounds = np.linspace(0, m0, n_slabs + 1).astype(np.int64)
        if m0 >= 10_000:
            warnings.append(f"{why}: slabs along z instead, which cut a shallow run's shell "
                            "obliquely; no normal thickness")
    m = len(idx)
    if m < n:
        x, y, z, mass = (np.asarray(run.source(c)[idx], dtype=np.float64 if c != "mass"
                                    else np.float32) for c in ("x", "y", "z", "mass"))
    else:
        x, y, z = (np.asarray(run[c], dtype=np.float64) for c in ("x", "y", "z"))
        mass = run["mass"]
    labels, _ = assign(mass, ranges)
    ok = labels >= 0
    el_w = np.where(ok, el_win[np.maximum(labels, 0)], 0.0)
    at_w = np.where(ok, at_win[np.maximum(labels, 0)], 0.0)

    order = np.arange(m) if evap else np.argsort(-z, kind="stable")  # top first
    slabs = []
    r_all = np.empty(m)
    r_scale = np.empty(m)
    z_top = -math.inf
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = order[a:b]
        zs = z[sel]
        (cx, cy), res = _fit_slab(x[sel], y[sel], el_w[sel], at_w[sel], ring_nm)
        r2 = (x[sel] - cx) ** 2 + (y[sel] - cy) ** 2
        r_all[sel] = np.sqrt(r2)
        r_scale[sel] = float(np.percentile(r_all[sel], 99)) if len(sel) else 0.0
        common = dict(z_min=float(zs.min()), z_max=float(zs.max()),
                      z_center=float(np.median(zs)), ions=int(b - a), axis_nm=(cx, cy))
        bowl = None
        if evap:
            bowl = _bowl(x[sel], y[sel], zs)
            common.update(ions_range=(int(idx[a]), int(idx[b - 1])),
                          ion_center=float(np.median(idx[a:b])))
            if bowl is not None:
                common.update(cap_radius_nm=bowl[0], cap_center_z_nm=bowl[1],
                              cap_axis_nm=(bowl[2], bowl[3]))
                z_top = max(z_top, bowl[1] + bowl[0])
        if "reason" in res:
            slabs.append(ShellSlab(found=False, reason=res["reason"], **common))
            continue
        zi = None
        if bowl is not None:
            # the inner radius about the bowl's own centre (they coincide unless tilted)
            rb, zcb = bowl[0], bowl[1]
            if res["inner"] < rb:
                zi = zcb + math.sqrt(rb * rb - res["inner"] ** 2)
        slabs.append(ShellSlab(found=True, interior=res["interior"], plateau=res["plateau"],
                               iso_level=res["iso_level"], inner_radius_nm=res["inner"],
                               foot_radius_nm=res["foot"], outer_radius_nm=res["outer"],
                               outer_is_data_edge=bool(res["edge"]), interface_z_nm=zi,
                               azimuth_coverage=res.get("coverage"), **common))
    cap = _cap_layer(z, r_all, r_scale, el_w, at_w)
    cap_reason = None
    if isinstance(cap, str):
        cap, cap_reason = None, cap
    found = [s for s in slabs if s.found]
    if len(found) >= min(2, len(slabs)) and len(found) >= 0.25 * len(slabs):
        geometry = "shell"
    elif cap is not None:
        geometry = "cap"
    else:
        geometry = "none"
    thickness, thickness_reason = None, None
    if geometry == "shell":
        got = _shell_thickness(found, shank_angle_deg, z_top) if evap else (
            f"no normal thickness: {why}")
        if isinstance(got, str):
            thickness_reason = got
        else:
            thickness = got
            warnings.extend(got.notes)
        missing = [s for s in slabs if not s.found]
        if missing:
            where = (", ".join(f"ions {s.ions_range[0]}..{s.ions_range[1]}" for s in missing)
                     if evap else
                     ", ".join(f"z {s.z_min:.1f}..{s.z_max:.1f} nm" for s in missing))
            warnings.append(f"no shell in {len(missing)} of {len(slabs)} slabs ({where}): "
                            "the core there is interpolated from the neighbouring slabs")
    elif found:
        warnings.append(f"a shell in only {len(found)} of {len(slabs)} slabs: not a shell "
                        "around the run")
    return CoatingProfile(element, float(ring_nm), m, tuple(slabs), tuple(warnings),
                          "evaporation" if evap else "z", geometry, thickness,
                          thickness_reason, cap, cap_reason, None if evap else why)


def core_mask(run: Run, ranges: RangeTable, margin_nm: float = 3.0, element: str = "Cr",
              profile: CoatingProfile | None = None, chunk_ions: int = _CHUNK,
              packed: bool = False, **profile_options) -> tuple:
    """Ions at least ``margin_nm`` clear of the coating: inside the shell, below the cap.

    Parameters
    ----------
    run : Run
        Needs ``x y z`` (nm) and ``mass`` (Da); the run the profile was found on.
    ranges : RangeTable
    margin_nm : float
        Distance kept inside the shell's foot and below the cap's interface.
    element : str
        The coating element.
    profile : CoatingProfile, optional
        A coating already found (else :func:`coating_profile` is called with
        ``profile_options``).
    chunk_ions : int
        Ions per chunk when building the mask.
    packed : bool
        Return the mask packed 8 ions to a byte (:class:`~liprobe.run.PackedMask`).

    Returns
    -------
    mask : ndarray of bool, shape (run.n_ions,), or PackedMask
    info : dict
        ``element``, ``margin_nm``, ``geometry``, the slabs (axis, inner
        radius, core radius and core area), the cap's interface,
        ``ions_in_core`` and warnings.

    Raises
    ------
    AnalysisError
        No shell nor cap found, or a negative margin.
    """
    if not margin_nm >= 0:
        raise AnalysisError(f"core margin must not be negative (got {margin_nm})")
    if profile is None:
        profile = coating_profile(run, ranges, element=element, **profile_options)
    if profile.geometry == "none":
        raise AnalysisError(profile.no_shell_message(), run.path)
    # a shell found below a cap bounds the core too, whatever the geometry's name
    shell = bool(profile.found)
    z_cut = None if profile.cap is None else profile.cap.interface_z_nm - margin_nm
    from ..run import PackedMask

    # at most 1 Mi ions a chunk: each holds a dozen float64 temporaries
    chunk_ions = min(int(chunk_ions), _CHUNK)
    if chunk_ions % 8:
        chunk_ions += 8 - chunk_ions % 8           # whole bytes of the packed mask
    parts = []
    gens = [run.chunks(c, chunk_ions) for c in ("x", "y", "z")]
    for (start, x), (_s1, y), (_s2, z) in zip(*gens):
        keep = np.ones(len(x), dtype=bool)
        if shell:
            index = start + np.arange(len(x)) if profile.order == "evaporation" else None
            ax, ay, r_in = profile.interpolate(z, index)
            rc = r_in - margin_nm
            dx = x - ax
            dy = y - ay
            keep &= (dx * dx + dy * dy <= rc * rc) & (rc > 0)
        if z_cut is not None:
            keep &= z <= z_cut
        parts.append(np.packbits(keep))
    bits = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    pm = PackedMask(bits, run.n_ions)
    mask = pm if packed else pm.to_bool()
    d = profile.to_dict(margin_nm)
    info = {
        "element": element, "margin_nm": float(margin_nm), "geometry": profile.geometry,
        "iso_level": d["iso_level"],
        "slabs": [{"z_nm": s["z_nm"], "ions_range": s["ions_range"], "found": s["found"],
                   "axis_nm": s["axis_nm"], "inner_radius_nm": s["inner_radius_nm"],
                   "foot_radius_nm": s["foot_radius_nm"], "core_radius_nm": s["core_radius_nm"],
                   "core_area_nm2": s["core_area_nm2"]}
                  for s in d["slabs"]] if shell else [],
        "cap_interface_z_nm": None if profile.cap is None else profile.cap.interface_z_nm,
        "ions_in_core": pm.count(),
        "core_warnings": d["warnings"],
    }
    return mask, info
