"""Point-projection reconstruction of APT data: detector hits -> x, y, z in nm.

Two protocols, both projecting each hit back onto a spherical cap of radius R
and stacking the caps in depth by the volume each detected ion stands for:

``"bas"`` -- Bas, Bostel, Deconihout, Blavette, "A general protocol for the
    reconstruction of 3D atom probe data", Appl. Surf. Sci. 87/88 (1995) 298
    [B95]. Magnification ``M = L / (xi R)``; ``x = X_D / M``, ``y = Y_D / M``;
    curvature term ``R (1 - sqrt(1 - (x^2 + y^2) / R^2))``.
``"geiser"`` -- the wide-angle form of Geiser et al., Microsc. Microanal. 15
    (S2) (2009) 292 [G09] as written in Gault et al., Ultramicroscopy 111 (2011)
    448 [G11]: detector angle ``theta' = arctan(r_D / L)``, launch angle
    ``theta = theta' + arcsin((xi - 1) sin theta')``, ``d = R sin theta`` along
    the hit's azimuth, curvature term ``R (1 - cos theta)``.

Radius (``shared/reference/reconstruction.md`` s2): from the voltage,
``R = V / (k F_e)`` [B95], or from a shank angle ``alpha`` and an initial radius
``R0``, ``R(Z) = R0 + Z sin(alpha) / (1 - sin(alpha))`` [G11; Gault et al.,
*Atom Probe Microscopy*, Springer 2012] when the voltage is missing or jumps
(a laser-energy change).

Depth [B95]: detected ion ``i`` stands for the volume ``v_i / eta``, with
``v_i`` its number of atoms times the atomic volume Omega, or the ``Vol:`` of
its range in the range file; unranged ions take the count-weighted mean
``v`` of the ranged ones. The depth increment is that volume over the area
of the specimen imaged onto the detector, ``dZ_i = v_i / (eta S_A)``, and
``Z_i = sum_{j <= i} dZ_j``. ``S_A = pi d_max^2`` is the area, normal to the
axis, of the cap inside the field of view, ``d_max`` the lateral position the
protocol gives to a hit on the detector's edge (radius ``r_D,max``):

- Bas: ``d_max = xi R r_D,max / L``, so ``S_A = S_D / M^2`` exactly as in
  [B95] (and the reference's worked example);
- Geiser: ``d_max = R sin(theta_max)``. Translating a cap of radius R by
  ``dZ`` sweeps the volume ``pi (R sin theta_max)^2 dZ`` inside the field of
  view, so this is the area that conserves volume with the wide-angle
  lateral positions (with ``S_D / M^2`` the reconstructed density would be
  off by ``(xi r_D,max / (L sin theta_max))^2``, 27 % at 40 mm and 100 mm).
  It tends to the Bas area at small angles.

Output follows the CAMECA convention: ``z = -(Z_i + curvature term)`` (z <= 0,
decreasing through the run, ions off the axis deeper).

With the shank-angle radius the depth has a closed form: ``dZ/dN = v /
(eta pi g^2 R^2)`` with ``R = R0 + c Z`` (``c = sin a / (1 - sin a)``,
``g = d_max / R``) integrates to ``R^3 = R0^3 + 3 c sum_j v_j / (eta pi g^2)``.

The inverse, :func:`project_to_detector`, maps positions on the cap to
detector hits with the same geometry; it is the detector model of the
simulator.

Work is two passes over the columns in blocks (numba, parallel): block sums
of the depth increments, then positions from each block's starting depth.
Inputs are processed ``chunk_ions`` at a time, so memory-mapped, byte-swapped
file columns are converted one chunk at a time.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from .._jit import njit, prange
from ..errors import AnalysisError, ColumnError
from ..instruments import (
    DEFAULT_ICF,
    DEFAULT_INSTRUMENT,
    DEFAULT_K_FACTOR,
    instrument as _instrument,
    material_values as _material_values,
)
from ..rangetable import RangeTable

__all__ = [
    "PROTOCOLS", "ReconstructionParameters", "Reconstruction",
    "radius_from_voltage", "radius_from_shank", "shank_factor", "launch_angles",
    "cap_positions", "project_angles_to_detector", "project_to_detector",
    "field_of_view_factor", "window_volumes", "reconstruct", "reconstruct_run",
]

PROTOCOLS = ("bas", "geiser")
_BLOCK = 1 << 15          # ions per parallel work item (fixed: results do not depend on threads)
_CHUNK = 1 << 22          # ions converted to native order at a time
_SUB = 256                # ions per secant of the shank-angle cube roots


# ---------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ReconstructionParameters:
    """Everything a reconstruction depends on, fixed before it runs.

    Build it with :meth:`preset` (an instrument and, optionally, a material
    from :mod:`liprobe.instruments`, then overrides). Nothing is assumed about
    the specimen: the atomic volume is always given (a material, a value, or
    the caller's reading of a range file's ``Vol:``), and the evaporation
    field is needed only for the radius from the voltage.

    Attributes
    ----------
    flight_path_mm : float
        L, tip-detector distance in mm.
    efficiency : float
        eta, detection efficiency in (0, 1].
    atomic_volume_nm3 : float
        Omega, nm^3 per atom of the analysed phase.
    evaporation_field_V_per_nm : float or None
        F_e in V/nm (only ``k * F_e`` enters, through ``R = V / (k F_e)``).
        None (unknown) only with ``radius="shank"``, which does not use it.
    k_factor : float
        Field factor k.
    icf : float
        Image compression factor xi (>= 1).
    protocol : {"geiser", "bas"}
    radius : {"voltage", "shank"}
    shank_angle_deg, initial_radius_nm : float or None
        Needed by ``radius="shank"``: alpha in degrees, R0 in nm.
    detector_radius_mm : float or None
        r_D,max in mm; None: the largest hit radius in the data.
    detector_center_mm : (float, float)
        Detector position of the specimen axis, subtracted from the hits.
    use_range_volumes : bool
        Take an ion's volume from its range's ``Vol:`` where the file gives
        one (else atoms x Omega).
    instrument, material : str or None
        Names of the presets the values came from, or where the atomic volume
        came from (e.g. ``"from the range file's Vol:"``), for the record.
    """

    flight_path_mm: float
    efficiency: float
    atomic_volume_nm3: float
    evaporation_field_V_per_nm: float | None = None
    k_factor: float = DEFAULT_K_FACTOR
    icf: float = DEFAULT_ICF
    protocol: str = "geiser"
    radius: str = "voltage"
    shank_angle_deg: float | None = None
    initial_radius_nm: float | None = None
    detector_radius_mm: float | None = None
    detector_center_mm: tuple[float, float] = (0.0, 0.0)
    use_range_volumes: bool = True
    instrument: str | None = None
    material: str | None = None

    def __post_init__(self):
        def positive(name):
            v = getattr(self, name)
            if not (isinstance(v, numbers.Real) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
            object.__setattr__(self, name, float(v))

        for name in ("flight_path_mm", "efficiency", "atomic_volume_nm3", "k_factor", "icf"):
            positive(name)
        if self.evaporation_field_V_per_nm is not None:
            positive("evaporation_field_V_per_nm")
        if self.efficiency > 1:
            raise ValueError(f"efficiency must be at most 1, got {self.efficiency}")
        if self.icf < 1:
            raise ValueError(f"icf (image compression factor) must be at least 1, got {self.icf}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got "
                             f"{self.protocol!r}")
        if self.radius not in ("voltage", "shank"):
            raise ValueError(f"radius must be 'voltage' or 'shank', got {self.radius!r}")
        if self.radius == "voltage" and self.evaporation_field_V_per_nm is None:
            raise ValueError("the radius from the voltage (R = V / (k F_e)) needs the "
                             "evaporation field: give evaporation_field_V_per_nm (or a "
                             "material that has one), or use radius='shank'")
        if self.radius == "shank":
            if self.initial_radius_nm is None or self.shank_angle_deg is None:
                raise ValueError("radius='shank' needs shank_angle_deg and initial_radius_nm")
            positive("initial_radius_nm")
            object.__setattr__(self, "shank_angle_deg", float(self.shank_angle_deg))
            if not (0 <= self.shank_angle_deg < 90):
                raise ValueError(f"shank angle must be in [0, 90) degrees, got "
                                 f"{self.shank_angle_deg}")
        if self.detector_radius_mm is not None:
            positive("detector_radius_mm")
        cx, cy = self.detector_center_mm
        object.__setattr__(self, "detector_center_mm", (float(cx), float(cy)))

    @classmethod
    def preset(cls, instrument: str = DEFAULT_INSTRUMENT, material: str | None = None,
               **overrides) -> ReconstructionParameters:
        """Parameters of a named instrument and, optionally, a material (a preset, an
        element or a formula: :func:`liprobe.instruments.material_for`), with
        ``overrides`` (None ignored).

        There is no default material: without one, ``atomic_volume_nm3`` must be
        given, and ``evaporation_field_V_per_nm`` too unless ``radius="shank"``.
        A material's evaporation field is needed only for the radius from the
        voltage (an element without a tabulated field is fine with ``radius="shank"``).

        Raises
        ------
        KeyError
            An unknown instrument, or a material that lacks a value (naming it).
        ValueError
            No atomic volume (no material and no ``atomic_volume_nm3``), no
            evaporation field with ``radius="voltage"``, or an invalid value.

        Examples
        --------
        >>> p = ReconstructionParameters.preset("LEAP 5000 XS", "NMC811", icf=1.4)
        >>> p.efficiency, p.atomic_volume_nm3, p.icf
        (0.8, 0.00845, 1.4)
        >>> q = ReconstructionParameters.preset(atomic_volume_nm3=0.02, radius="shank",
        ...                                     shank_angle_deg=10, initial_radius_nm=20)
        >>> q.material, q.evaporation_field_V_per_nm
        (None, None)
        """
        ins = _instrument(instrument)
        omega = overrides.get("atomic_volume_nm3")
        field_v = overrides.get("evaporation_field_V_per_nm")
        base: dict[str, Any] = dict(
            flight_path_mm=ins.flight_path_mm, efficiency=ins.efficiency,
            detector_radius_mm=ins.detector_radius_mm, instrument=ins.name)
        if material is not None:
            need_field = overrides.get("radius") in (None, "voltage")
            mat = _material_values(material, omega, field_v, need_field=need_field)
            base.update(atomic_volume_nm3=mat.atomic_volume_nm3,
                        evaporation_field_V_per_nm=mat.evaporation_field_V_per_nm,
                        material=mat.name)
        elif omega is None:
            raise ValueError("no atomic volume: name a material or give atomic_volume_nm3 "
                             "(no material is assumed)")
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def replace(self, **changes) -> ReconstructionParameters:
        """A copy with some values changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["detector_center_mm"] = list(self.detector_center_mm)
        if self.radius == "voltage":
            d.pop("shank_angle_deg")
            d.pop("initial_radius_nm")
        return d


# ---------------------------------------------------------------------------
# geometry (numpy; small, public)
# ---------------------------------------------------------------------------

def radius_from_voltage(v_V, k_factor, evaporation_field_V_per_nm):
    """Specimen radius in nm from the voltage, ``R = V / (k F_e)`` [B95].

    Parameters
    ----------
    v_V : float or ndarray
        Standing (DC) voltage in V.
    k_factor : float
    evaporation_field_V_per_nm : float

    Returns
    -------
    float or ndarray of float64, nm
    """
    return np.asarray(v_V, dtype=np.float64) / (k_factor * evaporation_field_V_per_nm)


def shank_factor(shank_angle_deg):
    """``sin(alpha) / (1 - sin(alpha))``: growth of the radius per nm of depth."""
    s = math.sin(math.radians(shank_angle_deg))
    return s / (1.0 - s)


def radius_from_shank(depth_nm, initial_radius_nm, shank_angle_deg):
    """Radius in nm at depth Z (nm, positive) of a cone-shaped specimen.

    ``R(Z) = R0 + Z sin(alpha) / (1 - sin(alpha))`` (Gault et al., *Atom Probe
    Microscopy*, Springer 2012; [G11]).
    """
    return initial_radius_nm + np.asarray(depth_nm, dtype=np.float64) * shank_factor(
        shank_angle_deg)


def _check_protocol(protocol):
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def launch_angles(det_x_mm, det_y_mm, flight_path_mm, icf, protocol="geiser",
                  detector_center_mm=(0.0, 0.0)):
    """Polar and azimuthal angles on the cap of detector hits.

    ``theta`` is measured at the cap's centre of curvature from the specimen
    axis. Geiser [G09, G11]: ``theta = theta' + arcsin((xi - 1) sin theta')``,
    ``theta' = arctan(r_D / L)``. Bas [B95]: ``sin theta = xi r_D / L``
    (the small-angle projection, clipped at 90 degrees).

    Returns
    -------
    theta_rad, phi_rad : ndarray of float64
    """
    _check_protocol(protocol)
    u = np.asarray(det_x_mm, dtype=np.float64) - detector_center_mm[0]
    v = np.asarray(det_y_mm, dtype=np.float64) - detector_center_mm[1]
    r = np.hypot(u, v)
    phi = np.arctan2(v, u)
    if protocol == "geiser":
        tp = np.arctan(r / flight_path_mm)
        theta = tp + np.arcsin(np.clip((icf - 1.0) * np.sin(tp), -1.0, 1.0))
    else:
        theta = np.arcsin(np.clip(icf * r / flight_path_mm, 0.0, 1.0))
    return theta, phi


def cap_positions(theta_rad, phi_rad, radius_nm):
    """Lateral position and curvature term (nm) of points on a cap of radius R.

    Returns
    -------
    x_nm, y_nm : ndarray
        ``R sin(theta) cos(phi)``, ``R sin(theta) sin(phi)``.
    sag_nm : ndarray
        ``R (1 - cos(theta))``, the depth of the point below the apex.
    """
    R = np.asarray(radius_nm, dtype=np.float64)
    d = R * np.sin(theta_rad)
    return d * np.cos(phi_rad), d * np.sin(phi_rad), R * (1.0 - np.cos(theta_rad))


def project_angles_to_detector(theta_rad, phi_rad, *, flight_path_mm, icf, protocol="geiser",
                               detector_center_mm=(0.0, 0.0)):
    """Detector hits (mm) of ions launched from the cap at polar angle theta, azimuth phi.

    The exact inverse of the reconstruction's projection:

    - Geiser [G09, G11]: the projection point lies ``(xi - 1) R`` behind the
      centre of curvature, so ``tan theta' = sin theta / (cos theta + xi - 1)``
      (the triangle whose sine rule gives ``theta = theta' + arcsin((xi - 1)
      sin theta')``), and the hit is at ``r_D = L tan theta'`` on a flat
      detector at distance L.
    - Bas [B95]: ``r_D = M d = L sin(theta) / xi``.

    Parameters
    ----------
    theta_rad : ndarray
        Polar angle from the specimen axis, at the centre of curvature, in
        [0, pi/2].
    phi_rad : ndarray
        Azimuth (0 along +x).
    flight_path_mm : float
        L in mm.
    icf : float
        Image compression factor xi.
    protocol : {"geiser", "bas"}
    detector_center_mm : (float, float)
        Where the specimen axis hits the detector.

    Returns
    -------
    det_x_mm, det_y_mm : ndarray of float64
    """
    _check_protocol(protocol)
    theta = np.asarray(theta_rad, dtype=np.float64)
    if protocol == "geiser":
        r = flight_path_mm * np.sin(theta) / (np.cos(theta) + (icf - 1.0))
    else:
        r = flight_path_mm * np.sin(theta) / icf
    return (r * np.cos(phi_rad) + detector_center_mm[0],
            r * np.sin(phi_rad) + detector_center_mm[1])


def project_to_detector(x_nm, y_nm, radius_nm, *, flight_path_mm, icf, protocol="geiser",
                        detector_center_mm=(0.0, 0.0)):
    """Detector hits (mm) of ions leaving the hemispherical cap at lateral positions x, y.

    The forward model of the reconstruction (and the detector model of the
    simulator): ``reconstruct`` of the returned hits, with the same radius,
    flight path, ICF and protocol, gives back ``x_nm, y_nm``.

    Parameters
    ----------
    x_nm, y_nm : ndarray
        Position of each ion on the cap, across the specimen axis, in nm
        (``x^2 + y^2 <= R^2``).
    radius_nm : float or ndarray
        Cap radius R in nm when the ion leaves (per ion, or one value).
    flight_path_mm, icf, protocol, detector_center_mm
        As in :func:`project_angles_to_detector`.

    Returns
    -------
    det_x_mm, det_y_mm : ndarray of float64

    Raises
    ------
    ValueError
        If a position lies outside the cap (``x^2 + y^2 > R^2``).

    See Also
    --------
    project_angles_to_detector : the same from polar angles.
    """
    x = np.asarray(x_nm, dtype=np.float64)
    y = np.asarray(y_nm, dtype=np.float64)
    R = np.asarray(radius_nm, dtype=np.float64)
    s = np.hypot(x, y) / R
    if np.any(s > 1 + 1e-12):
        raise ValueError("a position lies outside the cap: x^2 + y^2 > radius^2")
    theta = np.arcsin(np.minimum(s, 1.0))
    return project_angles_to_detector(theta, np.arctan2(y, x), flight_path_mm=flight_path_mm,
                                      icf=icf, protocol=protocol,
                                      detector_center_mm=detector_center_mm)


def field_of_view_factor(detector_radius_mm, flight_path_mm, icf, protocol="geiser"):
    """``g = d_max / R``: the imaged area is ``S_A = pi (g R)^2``.

    Bas: ``g = xi r_D,max / L`` (so ``S_A = S_D / M^2``, [B95]); Geiser:
    ``g = sin(theta_max)``, theta_max the launch angle of the detector's edge.
    """
    theta, _ = launch_angles(np.array([detector_radius_mm]), np.array([0.0]), flight_path_mm,
                             icf, protocol)
    if protocol == "geiser":
        return float(np.sin(theta[0]))
    return float(icf * detector_radius_mm / flight_path_mm)


def window_volumes(table: RangeTable, atomic_volume_nm3: float,
                   use_range_volumes: bool = True) -> np.ndarray:
    """Volume in nm^3 of one ion of each window of ``table`` (before the efficiency).

    The window's ``Vol:`` from the range file where given (and
    ``use_range_volumes``), else the ion's number of atoms times
    ``atomic_volume_nm3``; NaN for a named ion without atoms or ``Vol:``
    (it then takes the mean, like an unranged ion).
    """
    out = np.empty(len(table), dtype=np.float64)
    for i, r in enumerate(table.ranges):
        if use_range_volumes and r.volume is not None and r.volume > 0:
            out[i] = r.volume
        elif r.ion.n_atoms > 0:
            out[i] = r.ion.n_atoms * atomic_volume_nm3
        else:
            out[i] = np.nan
    return out


# ---------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------

# reassociation (vectorised sums) but NaN-aware: a non-finite input must show in the sums
_SAFE_FAST = {"reassoc", "contract", "arcp", "nsz"}


# The kernels take their inputs in four named groups (numba compiles named tuples
# into structs: no cost per ion).

class _Hits(NamedTuple):
    """One chunk of inputs in native byte order (empty ``v``/``labels`` when unused)."""

    det_x: np.ndarray       # mm
    det_y: np.ndarray       # mm
    v: np.ndarray           # V
    labels: np.ndarray      # range window of each ion, -1 unranged


class _Volumes(NamedTuple):
    """The volume each ion stands for."""

    vol: np.ndarray         # nm^3 per window (labels) or one entry; NaN: unknown (pass 1 only)
    use_labels: bool
    v_mean: float           # nm^3 given to unranged ions (NaN in the first pass)


class _Radius(NamedTuple):
    """The specimen radius: from the voltage, or from the shank angle."""

    use_voltage: bool
    inv_kf: float           # 1 / (k F), nm per V
    r0: float               # initial radius in nm (shank)
    c_shank: float          # sin a / (1 - sin a) (shank; 0: constant radius)
    scale: float            # 1 / (pi g^2 eta) (NaN in the first pass)


class _Projection(NamedTuple):
    """The point projection: detector centre (mm), flight path L (mm), ICF xi."""

    cx: float
    cy: float
    flight_path_mm: float
    icf: float
    geiser: bool


@njit(inline="always", fastmath=_SAFE_FAST, error_model="numpy")
def _block_sums(det_x, det_y, v, labels, vol, cx, cy, inv_kf, use_voltage, use_labels, row):
    """One pass over a block (views); ``check`` (sum of r_D^2 and V) is finite
    only if every hit and voltage is."""
    s_known = 0.0
    s_other = 0.0
    n_known = 0.0
    vol_known = 0.0
    r2max = 0.0
    vmin = np.inf
    check = 0.0
    m = det_x.shape[0]
    if not use_labels:
        if use_voltage:
            s = 0.0
            for i in range(m):                # branch-free: LLVM vectorises it
                dx = np.float64(det_x[i]) - cx
                dy = np.float64(det_y[i]) - cy
                r2 = dx * dx + dy * dy
                r2max = max(r2max, r2)
                vi = np.float64(v[i])
                vmin = min(vmin, vi)
                R = vi * inv_kf
                s += 1.0 / (R * R)
                check += r2 + vi
            s_known = vol[0] * s
        else:
            for i in range(m):
                dx = np.float64(det_x[i]) - cx
                dy = np.float64(det_y[i]) - cy
                r2 = dx * dx + dy * dy
                r2max = max(r2max, r2)
                check += r2
            s_known = vol[0] * m
        n_known = m
        vol_known = vol[0] * m
    else:
        for i in range(m):
            dx = np.float64(det_x[i]) - cx
            dy = np.float64(det_y[i]) - cy
            r2 = dx * dx + dy * dy
            r2max = max(r2max, r2)
            check += r2
            lab = labels[i]
            vv = vol[lab] if lab >= 0 else np.nan
            w = 1.0
            if use_voltage:
                vi = np.float64(v[i])
                vmin = min(vmin, vi)
                check += vi
                R = vi * inv_kf
                w = 1.0 / (R * R)
            if not math.isnan(vv):
                s_known += vv * w
                n_known += 1.0
                vol_known += vv
            else:
                s_other += w
    row[0] = s_known
    row[1] = s_other
    row[2] = n_known
    row[3] = vol_known
    row[4] = r2max
    row[5] = vmin
    row[6] = check


@njit(parallel=True, cache=True, nogil=True, fastmath=_SAFE_FAST, error_model="numpy")
def _sums_kernel(hits, volumes, radius, projection, out):
    """Per block: [sum of vol*w over ions of known volume, sum of w over the others,
    count of known, sum of known vol, max r_D^2, min voltage, check], w = 1/R^2 or 1."""
    det_x, det_y, v, labels = hits
    use_voltage, use_labels = radius.use_voltage, volumes.use_labels
    n = det_x.shape[0]
    for b in prange(out.shape[0]):
        lo = b * _BLOCK
        hi = min(lo + _BLOCK, n)
        _block_sums(det_x[lo:hi], det_y[lo:hi], v[lo:hi] if use_voltage else v,
                    labels[lo:hi] if use_labels else labels, volumes.vol, projection.cx,
                    projection.cy, radius.inv_kf, use_voltage, use_labels, out[b])


@njit(inline="always", fastmath=True, error_model="numpy")
def _lateral_geiser(det_x, det_y, cx, cy, L, xi, x_out, y_out, z_out):
    """[G09, G11] on a block (views): x_out holds R on entry, z_out the depth Z.

    (A loop over ``range(shape)`` of views, not ``range(lo, hi)``: with a
    start that may be negative numba adds index wrap-around, which stops
    LLVM from vectorising the loop.)
    """
    n_out = 0
    L2 = L * L
    for i in range(det_x.shape[0]):
        R = np.float64(x_out[i])
        dx = np.float64(det_x[i]) - cx
        dy = np.float64(det_y[i]) - cy
        r2 = dx * dx + dy * dy
        r = math.sqrt(r2)
        inv_h = 1.0 / math.sqrt(r2 + L2)
        sp = r * inv_h                      # sin theta'
        cp = L * inv_h                      # cos theta'
        sb = (xi - 1.0) * sp                # sin(theta - theta')
        n_out += sb > 1.0
        sb = min(sb, 1.0)
        cb = math.sqrt(1.0 - sb * sb)
        f = R * (sp * cb + cp * sb) / max(r, 1e-300)   # R sin(theta) / r_D
        x_out[i] = f * dx
        y_out[i] = f * dy
        z_out[i] = -(np.float64(z_out[i]) + R * (1.0 - (cp * cb - sp * sb)))
    return n_out


@njit(inline="always", fastmath=True, error_model="numpy")
def _lateral_bas(det_x, det_y, cx, cy, L, xi, x_out, y_out, z_out):
    """[B95] on a block (views): x_out holds R on entry, z_out the depth Z."""
    n_out = 0
    k = xi / L
    for i in range(det_x.shape[0]):
        R = np.float64(x_out[i])
        dx = np.float64(det_x[i]) - cx
        dy = np.float64(det_y[i]) - cy
        q = math.sqrt(dx * dx + dy * dy) * k     # x / R = X_D xi / L
        n_out += q > 1.0
        q = min(q, 1.0)
        x_out[i] = R * k * dx
        y_out[i] = R * k * dy
        z_out[i] = -(np.float64(z_out[i]) + R * (1.0 - math.sqrt(1.0 - q * q)))
    return n_out


@njit(inline="always", error_model="numpy")
def _block_depths(v, labels, volumes, radius, acc, r_out, z_out):
    """Depth Z (into z_out) and radius R (into r_out) of each ion of a block.

    Voltage: R = V / (k F), Z the running sum of v / R^2 times ``scale``. Shank
    angle: a sequential loop stores the running volume S (times ``scale``), then
    R^3 = R0^3 + 3 c S is solved by :func:`_cube_roots` (vectorisable) instead
    of a cube root per ion.
    """
    # Inlined into a fastmath=True kernel, which assumes there is no NaN (LLVM drops
    # NaN tests there): ``vol`` holds no NaN in this pass (a window of unknown volume
    # already holds v_mean), and unranged ions (label -1) take v_mean directly.
    vol, use_labels, v_mean = volumes
    use_voltage, inv_kf, r0, c_shank, scale = radius
    m = z_out.shape[0]
    if m == 0:
        return
    if use_voltage:
        for i in range(m):
            if use_labels:
                lab = labels[i]
                vv = vol[lab] if lab >= 0 else v_mean
            else:
                vv = vol[0]
            R = np.float64(v[i]) * inv_kf
            acc += vv / (R * R)
            r_out[i] = R
            z_out[i] = acc * scale
        return
    for i in range(m):
        if use_labels:
            lab = labels[i]
            vv = vol[lab] if lab >= 0 else v_mean
        else:
            vv = vol[0]
        acc += vv
        z_out[i] = acc * scale
    if c_shank <= 0.0:
        inv_r2 = 1.0 / (r0 * r0)
        for i in range(m):
            r_out[i] = r0
            z_out[i] = np.float64(z_out[i]) * inv_r2
        return
    r0_3 = r0 * r0 * r0
    c3 = 3.0 * c_shank
    for a in range(0, m, _SUB):
        b = min(a + _SUB, m)
        _cube_roots(z_out[a:b], r_out[a:b], r0, r0_3, c3, 1.0 / c_shank)


@njit(inline="always", fastmath=True, error_model="numpy")
def _cube_roots(s_z, r_out, r0, r0_3, c3, inv_c):
    """R = (R0^3 + 3 c S)^(1/3) and Z = (R - R0) / c for the S values in s_z (replaced by Z).

    A secant between exact roots at the two ends of these few hundred ions, then
    four Newton steps: vectorisable, and exact to rounding unless R changes by
    more than about half within them.
    """
    m = s_z.shape[0]
    s0 = np.float64(s_z[0])
    s1 = np.float64(s_z[m - 1])
    ra = (r0_3 + c3 * s0) ** (1.0 / 3.0)
    rb = (r0_3 + c3 * s1) ** (1.0 / 3.0)
    slope = (rb - ra) / (s1 - s0) if s1 > s0 else 0.0
    for i in range(m):
        S = np.float64(s_z[i])
        T = r0_3 + c3 * S
        R = ra + slope * (S - s0)
        for _ in range(4):
            R -= (R * R * R - T) / (3.0 * R * R)
        r_out[i] = R
        s_z[i] = (R - r0) * inv_c


@njit(parallel=True, cache=True, nogil=True, fastmath=True, error_model="numpy")
def _positions_kernel(hits, offsets, volumes, radius, projection, x_out, y_out, z_out, outside):
    """x, y, z (nm, CAMECA sign) of every ion; offsets[b]: running sum before block b.

    Per block, a sequential loop writes each ion's depth Z into z_out and its
    radius into x_out; then a branch-free loop (vectorised by LLVM) turns
    them into positions.
    """
    det_x, det_y, v, labels = hits
    cx, cy, L, xi, geiser = projection
    use_voltage, use_labels = radius.use_voltage, volumes.use_labels
    n = det_x.shape[0]
    for b in prange(offsets.shape[0]):
        lo = b * _BLOCK
        hi = min(lo + _BLOCK, n)
        _block_depths(v[lo:hi] if use_voltage else v, labels[lo:hi] if use_labels else labels,
                      volumes, radius, offsets[b], x_out[lo:hi], z_out[lo:hi])
        if geiser:
            outside[b] = _lateral_geiser(det_x[lo:hi], det_y[lo:hi], cx, cy, L, xi,
                                         x_out[lo:hi], y_out[lo:hi], z_out[lo:hi])
        else:
            outside[b] = _lateral_bas(det_x[lo:hi], det_y[lo:hi], cx, cy, L, xi,
                                      x_out[lo:hi], y_out[lo:hi], z_out[lo:hi])


# ---------------------------------------------------------------------------
# reconstruction
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Reconstruction:
    """Reconstructed positions and the numbers that describe the reconstruction.

    Attributes
    ----------
    x_nm, y_nm, z_nm : ndarray of float32, shape (n,)
        Positions in nm, CAMECA convention (z <= 0, decreasing through the run).
    parameters : ReconstructionParameters
        As given, with ``detector_radius_mm`` filled in when it came from the data.
    field_of_view_half_angle_deg : float
        Launch angle of the detector's edge.
    radius_start_nm, radius_end_nm : float
        Specimen radius at the first and last ion (voltage: from a straight
        line fitted to the voltage of the first and last 5 %, at most 1000, ions).
    depth_nm : float
        Depth reconstructed, Z of the last ion (without curvature term).
    implied_shank_angle_deg : float or None
        alpha with ``sin a / (1 - sin a) = (R_end - R_start) / depth``
        (negative if the radius shrinks); None for a run without depth.
    mean_ion_volume_nm3 : float
        Mean volume per detected ion before the efficiency (what unranged ions get).
    ion_volume_source : str
    n_ions, n_outside_cap : int
        Ions, and hits beyond the projection's reach (clipped to the cap's edge).
    warnings : tuple of str
    """

    x_nm: np.ndarray
    y_nm: np.ndarray
    z_nm: np.ndarray
    parameters: ReconstructionParameters
    field_of_view_half_angle_deg: float
    radius_start_nm: float
    radius_end_nm: float
    depth_nm: float
    implied_shank_angle_deg: float | None
    mean_ion_volume_nm3: float
    ion_volume_source: str
    n_ions: int
    n_outside_cap: int = 0
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        """Parameters used and summary numbers (no per-ion arrays)."""
        d = {
            "ions": self.n_ions,
            "parameters": self.parameters.to_dict(),
            "field_of_view_half_angle_deg": self.field_of_view_half_angle_deg,
            "radius_start_nm": self.radius_start_nm,
            "radius_end_nm": self.radius_end_nm,
            "depth_nm": self.depth_nm,
            "implied_shank_angle_deg": self.implied_shank_angle_deg,
            "mean_ion_volume_nm3": self.mean_ion_volume_nm3,
            "ion_volume_source": self.ion_volume_source,
            "ions_outside_cap": self.n_outside_cap,
            "extent_nm": {c: [float(a.min()), float(a.max())] if len(a) else None
                          for c, a in (("x", self.x_nm), ("y", self.y_nm), ("z", self.z_nm))},
            "warnings": list(self.warnings),
        }
        if self.implied_shank_angle_deg is None:
            d["implied_shank_angle_reason"] = "no depth reconstructed"
        return d


def _native_chunk(a, start, stop, dtypes=(np.float32, np.float64)):
    c = a[start:stop]
    if c.dtype.isnative and c.dtype in dtypes and c.flags.c_contiguous:
        return c
    dt = c.dtype.newbyteorder("=")
    if dt not in dtypes:
        dt = np.dtype(np.float64)
    out = np.empty(c.shape, dtype=dt)
    np.copyto(out, c, casting="unsafe")
    return out


def _label_chunk(a, start, stop):
    c = a[start:stop]
    if c.dtype in (np.int16, np.int32) and c.dtype.isnative and c.flags.c_contiguous:
        return c
    return np.ascontiguousarray(c, dtype=np.int32)


def _edge_voltage(v, first: bool) -> float:
    """Voltage at the first (last) ion: a straight line fitted to the first (last)
    min(5 %, 1000) ions, evaluated there (robust to noise, unbiased on a ramp)."""
    n = len(v)
    m = min(max(1, n // 20), 1000)
    part = np.asarray(v[:m] if first else v[n - m:], dtype=np.float64)
    if m < 3:
        return float(np.median(part))
    slope, icpt = np.polyfit(np.arange(m, dtype=np.float64), part, 1)
    return float(icpt if first else icpt + slope * (m - 1))


#: ``progress(done, total)``: called after each chunk of each pass (see :func:`reconstruct`).
ProgressCallback = Callable[[int, int], None]


def _no_params(what: str) -> TypeError:
    return TypeError(f"{what} needs params: a ReconstructionParameters (e.g. "
                     "ReconstructionParameters.preset(instrument, material, ...)); no material "
                     "is assumed")


def reconstruct(det_x_mm, det_y_mm, v_dc_V=None, params: ReconstructionParameters | None = None,
                *, labels=None, window_volume_nm3=None, out=None,
                chunk_ions: int = _CHUNK,
                progress: ProgressCallback | None = None) -> Reconstruction:
    """Reconstruct x, y, z (nm) from detector hits (mm), by [B95] or [G09, G11].

    The point projection of Bas et al. [B95]_ (``protocol="bas"``) or its
    wide-angle form by Geiser et al. [G09]_ as written by Gault et al. [G11]_
    (``"geiser"``); the formulas are in the module docstring.

    Parameters
    ----------
    det_x_mm, det_y_mm : ndarray, shape (n,)
        Hit positions in mm, in evaporation order (any float dtype or byte
        order; memory maps are converted a chunk at a time).
    v_dc_V : ndarray, shape (n,), optional
        Standing voltage in V; needed when ``params.radius == "voltage"``.
    params : ReconstructionParameters
        Required (there is no default material): build it with
        :meth:`ReconstructionParameters.preset` or from its fields.
    labels : ndarray of int, shape (n,), optional
        Range window of each ion (-1 unranged), from :func:`liprobe.ranging.assign`.
    window_volume_nm3 : ndarray, optional
        Volume of one ion of each window in nm^3 (:func:`window_volumes`).
        Without labels every ion is one atom of ``params.atomic_volume_nm3``.
    out : (ndarray, ndarray, ndarray), optional
        float32 arrays (e.g. memory maps) to write x, y, z into.
    chunk_ions : int
        Ions converted to native byte order at a time.
    progress : callable, optional
        ``progress(done, total)`` after each chunk of each of the two passes:
        ``total`` is ``2 n`` (every ion is visited once per pass) and ``done``
        the ions visited so far, so ``done == total`` at the end. For a
        progress bar; it must not raise.

    Returns
    -------
    Reconstruction

    Raises
    ------
    TypeError
        ``params`` is None.
    AnalysisError
        Missing or non-positive voltages with ``radius="voltage"``, labels of
        the wrong length, or no ions.

    References
    ----------
    .. [B95] P. Bas, A. Bostel, B. Deconihout, D. Blavette, "A general protocol
       for the reconstruction of 3D atom probe data", Appl. Surf. Sci. 87/88
       (1995) 298-304.
    .. [G09] B.P. Geiser, D.J. Larson, E. Oltman, S. Gerstl, D. Reinhard,
       T.F. Kelly, T.J. Prosa, "Wide-field-of-view atom probe reconstruction",
       Microsc. Microanal. 15 (Suppl. 2) (2009) 292-293.
    .. [G11] B. Gault, D. Haley, F. de Geuser, M.P. Moody, E.A. Marquis,
       D.J. Larson, B.P. Geiser, "Advances in the reconstruction of atom probe
       tomography data", Ultramicroscopy 111 (2011) 448-457.

    Examples
    --------
    Bas protocol, ``R = V / (k F) = 2500 / (5 * 10) = 50 nm``, flight path
    L = 100 mm, xi = 1: magnification ``M = L / (xi R)``, so ``x = X_D / 2``.

    >>> import math
    >>> import numpy as np
    >>> from liprobe.spatial.reconstruct import ReconstructionParameters, reconstruct
    >>> p = ReconstructionParameters(flight_path_mm=100.0, efficiency=0.5,
    ...                              atomic_volume_nm3=0.01, evaporation_field_V_per_nm=10.0,
    ...                              k_factor=5.0, icf=1.0, protocol="bas",
    ...                              detector_radius_mm=40.0)
    >>> det_x = np.array([0, 20, 0, -40], np.float32)   # hits on the detector, mm
    >>> det_y = np.array([0, 0, 20, 0], np.float32)
    >>> v = np.full(4, 2500, np.float32)                 # standing voltage, V
    >>> r = reconstruct(det_x, det_y, v, p)
    >>> r.radius_start_nm, r.radius_end_nm
    (50.0, 50.0)
    >>> r.x_nm, r.y_nm
    (array([  0.,  10.,   0., -20.], dtype=float32), array([ 0.,  0., 10.,  0.], dtype=float32))

    Each ion adds ``Omega / (eta S_A)`` to the depth, ``S_A = pi (xi r_D R / L)^2``
    the imaged area; the second ion, 10 nm off the axis, lies a further
    ``R (1 - sqrt(1 - 10^2 / R^2))`` below the apex (the curvature term):

    >>> dz = p.atomic_volume_nm3 / (p.efficiency * math.pi * (0.4 * 50.0) ** 2)
    >>> print(f"{r.depth_nm / dz:.4f}")               # four ions deep
    4.0000
    >>> sag = 50.0 * (1 - math.sqrt(1 - 10.0 ** 2 / 50.0 ** 2))
    >>> print(f"{-r.z_nm[1] - 2 * dz:.4f} {sag:.4f}")   # z = -(Z_i + curvature term)
    1.0102 1.0102
    >>> print(f"{r.field_of_view_half_angle_deg:.2f}")   # asin(xi r_D / L) = asin(0.4)
    23.58
    """
    if params is None:
        raise _no_params("reconstruct")
    p = params
    n = len(det_x_mm)
    if len(det_y_mm) != n:
        raise AnalysisError(f"det_x has {n} ions but det_y has {len(det_y_mm)}")
    if n == 0:
        raise AnalysisError("no ions to reconstruct")
    use_voltage = p.radius == "voltage"
    if use_voltage:
        if v_dc_V is None:
            raise AnalysisError("no voltage to take the radius from: use the shank-angle radius "
                                "(radius='shank', --radius shank:ANGLE_DEG:R0_NM)")
        if len(v_dc_V) != n:
            raise AnalysisError(f"v_dc has {len(v_dc_V)} ions, det_x has {n}")
    warnings: list[str] = []
    use_labels = labels is not None
    if use_labels:
        if len(labels) != n:
            raise AnalysisError(f"labels has {len(labels)} ions, det_x has {n}")
        if window_volume_nm3 is None:
            raise AnalysisError("labels need window_volume_nm3 (see window_volumes)")
        vol = np.ascontiguousarray(window_volume_nm3, dtype=np.float64)
        if len(vol) == 0:
            use_labels = False
        elif n and int(np.max(labels)) >= len(vol):
            raise AnalysisError(f"a label ({int(np.max(labels))}) is beyond the "
                                f"{len(vol)} window volumes")
    if not use_labels:
        vol = np.array([p.atomic_volume_nm3], dtype=np.float64)
    empty_f = np.zeros(0, np.float32)
    empty_l = np.zeros(0, np.int16)
    cx, cy = p.detector_center_mm
    # 1 / (k F_e) only for the radius from the voltage (F_e may be unknown otherwise)
    inv_kf = (1.0 / (p.k_factor * p.evaporation_field_V_per_nm)
              if use_voltage and p.evaporation_field_V_per_nm is not None else 0.0)
    c_shank = shank_factor(p.shank_angle_deg) if p.radius == "shank" else 0.0
    r0 = float(p.initial_radius_nm) if p.initial_radius_nm is not None and not use_voltage else 0.0
    projection = _Projection(float(cx), float(cy), float(p.flight_path_mm), float(p.icf),
                             p.protocol == "geiser")
    volumes = _Volumes(vol, use_labels, math.nan)
    radius = _Radius(use_voltage, inv_kf, float(r0), float(c_shank), math.nan)
    chunk_ions = max(_BLOCK, (int(chunk_ions) // _BLOCK) * _BLOCK)
    starts = list(range(0, n, chunk_ions))

    def chunk_inputs(s):
        e = min(s + chunk_ions, n)
        return _Hits(_native_chunk(det_x_mm, s, e), _native_chunk(det_y_mm, s, e),
                     _native_chunk(v_dc_V, s, e) if use_voltage else empty_f,
                     _label_chunk(labels, s, e) if use_labels else empty_l)

    # pass 1: block sums
    sums = []
    for s in starts:
        hits = chunk_inputs(s)
        o = np.zeros(((len(hits.det_x) + _BLOCK - 1) // _BLOCK, 7), dtype=np.float64)
        _sums_kernel(hits, volumes, radius, projection, o)
        sums.append(o)
        if progress is not None:
            progress(s + len(hits.det_x), 2 * n)
    S = np.concatenate(sums)

    def first_bad(a, good):
        for s in starts:
            k = np.flatnonzero(~good(_native_chunk(a, s, min(s + chunk_ions, n))))
            if len(k):
                return s + int(k[0])
        return None

    if not np.isfinite(S[:, 6]).all():
        bad = [j for j in (first_bad(det_x_mm, np.isfinite), first_bad(det_y_mm, np.isfinite))
               if j is not None]
        if bad:
            i = min(bad)
            raise AnalysisError(f"the detector hit of ion {i} is not a finite number "
                                f"({float(det_x_mm[i])}, {float(det_y_mm[i])} mm)")
    if use_voltage and not (np.isfinite(S[:, 6]).all() and S[:, 5].min() > 0):
        if not any(np.any(_native_chunk(v_dc_V, s, min(s + chunk_ions, n))) for s in starts):
            what = "is zero for every ion (the file does not record it)"
        else:
            i = first_bad(v_dc_V, lambda c: (c > 0) & np.isfinite(c))
            what = f"is not a positive number at ion {i} ({float(v_dc_V[i])} V)"
        raise AnalysisError(f"the voltage {what}; take the radius from the shank angle "
                            "instead (--radius shank:ANGLE_DEG:R0_NM)")
    n_known = float(S[:, 2].sum())
    if n_known > 0:
        v_mean = float(S[:, 3].sum()) / n_known
    else:
        v_mean = p.atomic_volume_nm3
        if use_labels:
            warnings.append("no ion has a known volume (all unranged): each ion counts as one "
                            "atom of the atomic volume")
    block_tot = S[:, 0] + v_mean * S[:, 1]
    offsets = np.concatenate(([0.0], np.cumsum(block_tot)[:-1]))
    total = float(block_tot.sum())

    r_det = p.detector_radius_mm
    if r_det is None:
        r_det = math.sqrt(float(S[:, 4].max()))
        if r_det <= 0:
            raise AnalysisError("every hit is at the detector centre: no detector radius")
    g = field_of_view_factor(r_det, p.flight_path_mm, p.icf, p.protocol)
    theta_max = math.asin(min(g, 1.0))  # Bas: sin(theta) = xi r_D / L
    if p.protocol == "bas" and g > 1:
        warnings.append(f"with the Bas projection, hits beyond {p.flight_path_mm / p.icf:.1f} mm "
                        "lie outside the cap (xi r_D / L > 1); they are put on its edge")
    scale = 1.0 / (math.pi * g * g * p.efficiency)
    # pass 2 sees no NaN: a window of unknown volume takes the mean, like an unranged ion
    volumes = volumes._replace(vol=np.where(np.isnan(vol), v_mean, vol), v_mean=float(v_mean))
    radius = radius._replace(scale=float(scale))

    # pass 2: positions
    if out is None:
        xo, yo, zo = (np.empty(n, np.float32) for _ in range(3))
    else:
        xo, yo, zo = out
    n_out = 0
    b0 = 0
    for s in starts:
        hits = chunk_inputs(s)
        nb = (len(hits.det_x) + _BLOCK - 1) // _BLOCK
        e = s + len(hits.det_x)
        outside = np.zeros(nb, np.int64)
        _positions_kernel(hits, offsets[b0:b0 + nb], volumes, radius, projection,
                          xo[s:e], yo[s:e], zo[s:e], outside)
        n_out += int(outside.sum())
        b0 += nb
        if progress is not None:
            progress(n + e, 2 * n)

    if use_voltage:
        depth = total * scale
        r_start = _edge_voltage(v_dc_V, True) * inv_kf
        r_end = _edge_voltage(v_dc_V, False) * inv_kf
    else:
        if c_shank > 0:
            r_end = (r0 ** 3 + 3 * c_shank * total * scale) ** (1 / 3)
            depth = (r_end - r0) / c_shank
        else:
            r_end = r0
            depth = total * scale / r0 ** 2
        r_start = r0
    implied = None
    if depth > 0:
        w = (r_end - r_start) / depth
        implied = math.degrees(math.asin(max(-1.0, min(1.0, w / (1 + w))))) if w > -1 else None
    if use_labels:
        src = "per ion from the range table (Vol: where given, else atoms x atomic volume); " \
              "unranged ions take the mean"
    else:
        src = "one atom of the atomic volume per ion (no range table)"
    if n_out:
        warnings.append(f"{n_out} hits lie beyond the projection's reach and were put on the "
                        "cap's edge")
    return Reconstruction(
        x_nm=xo, y_nm=yo, z_nm=zo,
        parameters=p.replace(detector_radius_mm=float(r_det)),
        field_of_view_half_angle_deg=math.degrees(theta_max),
        radius_start_nm=float(r_start), radius_end_nm=float(r_end), depth_nm=float(depth),
        implied_shank_angle_deg=implied, mean_ion_volume_nm3=float(v_mean),
        ion_volume_source=src, n_ions=n, n_outside_cap=n_out, warnings=tuple(warnings))


#: Runs above this many ions get their x, y, z in a memory-mapped scratch file.
SCRATCH_ABOVE_IONS = 1 << 22


class _LazyLabels:
    """Window labels of a mass column, assigned a slice at a time (never the whole run)."""

    def __init__(self, mass, ranges: RangeTable):
        self.mass, self.ranges = mass, ranges

    def __len__(self) -> int:
        return len(self.mass)

    def __getitem__(self, key):
        from ..ranging import assign

        m = np.asarray(self.mass[key])
        return assign(m.astype(m.dtype.newbyteorder("="), copy=False), self.ranges)[0]

    def max(self, *args, **kwargs) -> int:
        """The largest label there can be (``assign`` labels windows 0..len-1)."""
        return len(self.ranges) - 1


def _scratch_xyz(n: int, folder: str | None):
    """Three float32 arrays of ``n`` in one memory-mapped scratch file (unlinked at once:
    nothing is left behind, whatever happens), so that they are file-backed pages, not
    anonymous memory."""
    from ..io._files import scratch_array

    mm = scratch_array((3, max(n, 1)), np.float32, folder, prefix=".liprobe-xyz-")
    return mm[0, :n], mm[1, :n], mm[2, :n]


def reconstruct_run(run, params: ReconstructionParameters,
                    ranges: RangeTable | None = None, scratch_dir: str | None = None,
                    progress: ProgressCallback | None = None):
    """Reconstruct a :class:`~liprobe.Run` from its ``det_x``, ``det_y`` (and ``v_dc``).

    Parameters
    ----------
    run : Run
    params : ReconstructionParameters
        Required (there is no default material):
        :meth:`ReconstructionParameters.preset` or its fields.
    ranges : RangeTable, optional
        Gives each ion its own volume (atoms x Omega, or ``Vol:``); the masses
        are assigned a chunk at a time.
    scratch_dir : str, optional
        Above :data:`SCRATCH_ABOVE_IONS` ions, the output ``x y z`` are written to
        a memory-mapped scratch file in this folder (default: the system's
        temporary folder), unlinked at once, so that memory stays bounded; the
        run's writer then streams them into the output file.
    progress : callable, optional
        ``progress(done, total)`` per chunk of the reconstruction's two passes
        (:func:`reconstruct`).

    Returns
    -------
    run : Run
        The run with ``x``, ``y``, ``z`` (float32, nm) replaced or added and
        ``meta["reconstruction"]`` holding ``result.to_dict()``.
    result : Reconstruction

    Raises
    ------
    TypeError
        ``params`` is None.
    ColumnError
        The run has no detector coordinates, or no voltage with ``radius="voltage"``;
        the message says what to do instead.
    AnalysisError
        The voltage is zero or negative (e.g. not recorded by the exporter).
    """
    if params is None:
        raise _no_params("reconstruct_run")
    p = params
    fmt = run.format or "this"
    missing = [c for c in ("det_x", "det_y") if c not in run]
    if missing:
        raise ColumnError(f"cannot reconstruct: the {fmt} file has no detector coordinates "
                          f"({', '.join(missing)}); reconstruct from the .epos or .apt file of "
                          "the run", run.path)
    if p.radius == "voltage" and "v_dc" not in run:
        raise ColumnError(f"cannot take the radius from the voltage: the {fmt} file has no "
                          "voltage column (v_dc); use the shank-angle radius "
                          "(--radius shank:ANGLE_DEG:R0_NM)", run.path)
    labels = vol = None
    if ranges is not None and len(ranges):
        labels = _LazyLabels(run.source("mass"), ranges)
        vol = window_volumes(ranges, p.atomic_volume_nm3, p.use_range_volumes)
    out = _scratch_xyz(run.n_ions, scratch_dir) if run.n_ions > SCRATCH_ABOVE_IONS else None
    try:
        result = reconstruct(run.source("det_x"), run.source("det_y"),
                             run.source("v_dc") if p.radius == "voltage" else None, p,
                             labels=labels, window_volume_nm3=vol, out=out, progress=progress)
    except AnalysisError as e:
        raise AnalysisError(e.problem, run.path, e.where) from None
    out = run.with_columns(x=result.x_nm, y=result.y_nm, z=result.z_nm,
                           meta={"reconstruction": result.to_dict()})
    return out, result
