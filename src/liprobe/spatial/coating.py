"""The coating shell and the core inside it.

A coated specimen (Singh et al., arXiv:2309.07842, 2023: an in-situ Cr
coating) shows the coating as a shell at the periphery of every XY slice
(their Figure 3). The paper keeps it out of the composition with a 25 nm
cylinder on the axis; ``core`` finds the region inside the shell instead, so
that as much of the oxide as possible is used, whatever the specimen's
radius and tilt.

How the shell is found, per depth slab
--------------------------------------
1. **Slabs.** The ions (a seeded random sample of at most ``fit_ions``) are
   cut along z into slabs of equal ion count (about ``ions_per_slab`` each).
2. **Radial profile.** Around a trial axis, the atomic fraction ``C(r)`` of
   the coating element (atoms after decomposition of the ranged ions; ``CrO+``
   gives one Cr of two atoms) in rings of ``ring_nm``, smoothed over three
   rings.
3. **Shell.** The plateau is the highest ``C`` of the smoothed profile; the
   interior level is ``C`` of the rings inside half the plateau's radius. A
   shell is found when the plateau lies in the outer half of the slab, is at
   least twice the interior level and exceeds it by five standard errors
   (binomial); otherwise the slab reports why not.
4. **Iso-level.** ``C* = interior + (plateau - interior) / 2``: half the
   plateau when the interior carries no coating element. The shell's inner
   radius is where ``C(r)``, walking inward from the plateau, falls below
   ``C*`` (linear interpolation between ring centres); its outer radius
   where it falls below ``C*`` walking outward, or, when the shell reaches
   the edge of the data, where the areal ion density falls to half its
   median value in the shell (between the inner radius and the plateau).
5. **Axis.** The coating-element ions between the two radii are fitted with a
   circle (algebraic least squares, Kasa 1976, IEEE Trans. Instrum. Meas. 25,
   8); its centre is the new axis, and steps 2-5 repeat (three times at most)
   from the median x, y of the slab.

The core is the set of ions closer to the axis than the inner radius minus a
margin; axis and radius are interpolated linearly in z between slab centres
(and continued with the end slopes over the half slab beyond the end
centres), and slabs without a shell are left out of the interpolation. The
*apparent* thickness (outer minus inner radius)
is what the reconstruction shows: local magnification at the coating/oxide
interface (different evaporation fields) and trajectory overlaps distort it,
so it is not the physical thickness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import Run

__all__ = ["ShellSlab", "CoatingProfile", "coating_profile", "core_mask", "element_weights"]

_CHUNK = 1 << 22
_MIN_RING_ATOMS = 20


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
    """The shell in one depth slab; lengths in nm, fractions of atoms.

    ``found`` False (with ``reason``) leaves the radii and axis from the last
    trial (the axis) or None (the radii).
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

    @property
    def apparent_thickness_nm(self) -> float | None:
        if self.inner_radius_nm is None or self.outer_radius_nm is None:
            return None
        return self.outer_radius_nm - self.inner_radius_nm

    def core_radius_nm(self, margin_nm: float) -> float | None:
        if self.inner_radius_nm is None:
            return None
        return max(self.inner_radius_nm - margin_nm, 0.0)

    def to_dict(self, margin_nm: float | None = None) -> dict:
        d = {
            "z_nm": [self.z_min, self.z_max], "z_center_nm": self.z_center,
            "ions": self.ions, "found": self.found, "axis_nm": list(self.axis_nm),
            "interior": self.interior, "plateau": self.plateau, "iso_level": self.iso_level,
            "inner_radius_nm": self.inner_radius_nm, "outer_radius_nm": self.outer_radius_nm,
            "outer_is_data_edge": self.outer_is_data_edge,
            "apparent_thickness_nm": self.apparent_thickness_nm,
        }
        if margin_nm is not None:
            rc = self.core_radius_nm(margin_nm)
            d["core_radius_nm"] = rc
            d["core_area_nm2"] = None if rc is None else math.pi * rc * rc
        if self.reason:
            d["reason"] = self.reason
        return d


@dataclass(frozen=True)
class CoatingProfile:
    """The coating shell against depth (one :class:`ShellSlab` per slab)."""

    element: str
    ring_nm: float
    fit_ions: int
    slabs: tuple
    warnings: tuple = field(default=())

    @property
    def found(self) -> tuple:
        """The slabs where a shell was found."""
        return tuple(s for s in self.slabs if s.found)

    def median_thickness_nm(self) -> float | None:
        t = [s.apparent_thickness_nm for s in self.found]
        return float(np.median(t)) if t else None

    def interpolate(self, z_nm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Axis x, axis y and inner radius (nm) at depths ``z_nm``, linear in z through the
        slab centres.

        Raises
        ------
        AnalysisError
            If no slab has a shell.
        """
        f = sorted(self.found, key=lambda s: s.z_center)
        if not f:
            raise AnalysisError(self.no_shell_message())
        zc = np.array([s.z_center for s in f])
        z = np.asarray(z_nm, dtype=np.float64)
        return (_interp(z, zc, [s.axis_nm[0] for s in f]),
                _interp(z, zc, [s.axis_nm[1] for s in f]),
                _interp(z, zc, [s.inner_radius_nm for s in f]))

    def no_shell_message(self) -> str:
        reasons = sorted({s.reason for s in self.slabs if s.reason})
        return (f"no {self.element} shell found in any of {len(self.slabs)} depth slab(s) "
                f"({'; '.join(reasons)}): the data has no coating to keep out")

    def to_dict(self, margin_nm: float | None = None) -> dict:
        return {
            "element": self.element,
            "iso_level": "half-way between the interior and the shell plateau of the "
                         "coating element's atomic fraction (radial profile per depth slab)",
            "apparent": "shell thickness as reconstructed; local magnification at the "
                        "interface distorts it",
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


def _shell_in_slab(x, y, el_w, at_w, cx, cy, ring_nm):
    """One radial analysis around (cx, cy); a dict of the shell or a reason."""
    r = np.hypot(x - cx, y - cy)
    r_edge = float(r.max()) if len(r) else 0.0
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
    ip = int(np.nanargmax(c3))
    top = float(c3[ip])
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
            "outer": r_out, "edge": at_edge, "r": r}


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
    return (cx, cy), res


def coating_profile(run: Run, ranges: RangeTable, element: str = "Cr",
                    ions_per_slab: int = 40_000, ring_nm: float = 0.5,
                    fit_ions: int = 2_000_000, seed: int = 0) -> CoatingProfile:
    """The coating shell against depth: axis, inner and outer radius, apparent thickness.

    Parameters
    ----------
    run : Run
        Needs ``x y z`` (nm) and ``mass`` (Da).
    ranges : RangeTable
        Must range at least one ion carrying ``element``.
    element : str
        The coating element.
    ions_per_slab : int
        About this many ions (of the fit sample) per depth slab.
    ring_nm : float
        Width of the rings of the radial profile.
    fit_ions : int
        Largest sample (seeded, without replacement) used for the fit.
    seed : int

    Returns
    -------
    CoatingProfile
        Slabs ordered from the top of the specimen (highest z) down.

    Raises
    ------
    ColumnError
        A missing column.
    AnalysisError
        No ions, or no ranged ion carrying ``element``.
    """
    if ring_nm <= 0 or ions_per_slab < 1 or fit_ions < 1:
        raise ValueError("ring_nm, ions_per_slab and fit_ions must be positive")
    for c in ("x", "y", "z", "mass"):
        run.source(c)          # ColumnError naming the column
    el_win, at_win = element_weights(ranges, element)
    n = run.n_ions
    if n == 0:
        raise AnalysisError("no ions", run.path)
    from ..ranging import assign

    m = min(int(fit_ions), n)
    if m < n:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
        x, y, z, mass = (np.asarray(run.source(c)[idx], dtype=np.float64 if c != "mass"
                                    else np.float32) for c in ("x", "y", "z", "mass"))
    else:
        x, y, z = (np.asarray(run[c], dtype=np.float64) for c in ("x", "y", "z"))
        mass = run["mass"]
    labels, _ = assign(mass, ranges)
    ok = labels >= 0
    el_w = np.where(ok, el_win[np.maximum(labels, 0)], 0.0)
    at_w = np.where(ok, at_win[np.maximum(labels, 0)], 0.0)

    n_slabs = max(1, m // int(ions_per_slab))
    order = np.argsort(-z, kind="stable")         # top of the specimen first
    bounds = np.linspace(0, m, n_slabs + 1).astype(np.int64)
    slabs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = order[a:b]
        zs = z[sel]
        (cx, cy), res = _fit_slab(x[sel], y[sel], el_w[sel], at_w[sel], ring_nm)
        common = dict(z_min=float(zs.min()), z_max=float(zs.max()),
                      z_center=float(np.median(zs)), ions=int(b - a), axis_nm=(cx, cy))
        if "reason" in res:
            slabs.append(ShellSlab(found=False, reason=res["reason"], **common))
        else:
            slabs.append(ShellSlab(found=True, interior=res["interior"], plateau=res["plateau"],
                                   iso_level=res["iso_level"], inner_radius_nm=res["inner"],
                                   outer_radius_nm=res["outer"],
                                   outer_is_data_edge=bool(res["edge"]), **common))
    warnings = list(ranges.warnings)
    missing = [s for s in slabs if not s.found]
    if missing and len(missing) < len(slabs):
        warnings.append(f"no shell in {len(missing)} of {len(slabs)} depth slabs "
                        f"(z {', '.join(f'{s.z_min:.1f}..{s.z_max:.1f}' for s in missing)} nm): "
                        "the core there is interpolated from the neighbouring slabs")
    return CoatingProfile(element, float(ring_nm), m, tuple(slabs), tuple(warnings))


def core_mask(run: Run, ranges: RangeTable, margin_nm: float = 3.0, element: str = "Cr",
              profile: CoatingProfile | None = None, chunk_ions: int = _CHUNK,
              **profile_options) -> tuple[np.ndarray, dict]:
    """Ions at least ``margin_nm`` inside the coating shell.

    Parameters
    ----------
    run : Run
        Needs ``x y z`` (nm) and ``mass`` (Da).
    ranges : RangeTable
    margin_nm : float
        Distance kept from the shell's inner (iso-level) radius.
    element : str
        The coating element.
    profile : CoatingProfile, optional
        A shell already found (else :func:`coating_profile` is called with
        ``profile_options``).
    chunk_ions : int
        Ions per chunk when building the mask.

    Returns
    -------
    mask : ndarray of bool, shape (run.n_ions,)
    info : dict
        ``element``, ``margin_nm``, the slabs (axis, inner radius, core radius
        and core area against depth), ``ions_in_core`` and warnings.

    Raises
    ------
    AnalysisError
        No shell found in any slab, or a negative margin.
    """
    if not margin_nm >= 0:
        raise AnalysisError(f"core margin must not be negative (got {margin_nm})")
    if profile is None:
        profile = coating_profile(run, ranges, element=element, **profile_options)
    if not profile.found:
        raise AnalysisError(profile.no_shell_message(), run.path)
    mask = np.empty(run.n_ions, dtype=bool)
    gens = [run.chunks(c, chunk_ions) for c in ("x", "y", "z")]
    for (start, x), (_s1, y), (_s2, z) in zip(*gens):
        ax, ay, r_in = profile.interpolate(z)
        rc = r_in - margin_nm
        dx = x - ax
        dy = y - ay
        mask[start:start + len(x)] = (dx * dx + dy * dy <= rc * rc) & (rc > 0)
    d = profile.to_dict(margin_nm)
    info = {
        "element": element, "margin_nm": float(margin_nm),
        "iso_level": d["iso_level"],
        "slabs": [{"z_nm": s["z_nm"], "found": s["found"], "axis_nm": s["axis_nm"],
                   "inner_radius_nm": s["inner_radius_nm"],
                   "core_radius_nm": s["core_radius_nm"], "core_area_nm2": s["core_area_nm2"]}
                  for s in d["slabs"]],
        "ions_in_core": int(mask.sum()),
        "core_warnings": d["warnings"],
    }
    return mask, info
