"""Kingham curves: charge-state fractions of field-evaporated ions, from post-ionisation.

An ion leaves the surface in a low charge state and, while it accelerates in
the field, may lose a further electron by tunnelling into the specimen
(post-ionisation; R. Haydock, D.R. Kingham, Phys. Rev. Lett. 44 (1980) 1520
[HK80]; D.R. Kingham, Surf. Sci. 116 (1982) 273 [K82]). The fractions
``f_n(F)`` of the charge states against the surface field ``F`` are the
"Kingham curves"; a measured charge-state ratio read back through them gives
a *Kingham-equivalent field*. This module is the one implementation, used by
the field analysis and by the simulator alike.

The model, in atomic units (Hartree, bohr; ``F`` in ``E_h / (e a0)`` =
514.22 V/nm), for the step ``n+ -> (n+1)+`` of an ion at distance ``x``
from the image plane of a tip of radius ``R`` held at the potential that gives
the surface field ``F``:

1. **Potential.** Outside a sphere the electron's potential energy, relative
   to the image plane, is ``w(s) = F R s / (R + s)`` (uniform field near the
   surface, falling as ``(R / (R + s))^2`` further out, so that the flight
   integral converges).
2. **Level.** The electron to be removed (binding energy ``I = I_{n+1}``,
   core charge ``Z = n + 1``) lies at ``E(x) = -I + w(x) + (2n + 1) / (4x)``:
   the field lifts it, and the image energy of the ion,
   ``-q^2 / (4x)``, falls by ``(2n + 1) / (4x)`` when ``q`` goes from ``n``
   to ``n + 1`` [K82].
3. **Critical distance.** The electron can only tunnel into empty states:
   ``E(x) >= -phi`` (``phi`` the work function), i.e. ``x >= x_c`` with
   ``w(x_c) + (2n + 1) / (4 x_c) = I - phi`` [K82]. Closer in, the rate is
   zero.
4. **Tunnelling rate.** The rate is the free ion's, enhanced by the surface:
   ``R(x) = w_free(F_x) exp(G_free - G(x))``, capped at the classical
   orbital frequency ``(2I)^{3/2} / (2 pi Z)``. ``w_free`` is the
   Ammosov-Delone-Krainov static-field rate of a hydrogen-like s level of
   binding energy ``I`` around a core of charge ``Z`` (Landau's ``(4/F)
   exp(-2/(3F))`` for hydrogen) in the local field ``F_x = F (R / (R +
   x))^2``. ``G(x) = 2 int sqrt(2 (U(s) - E)) ds`` is the WKB exponent
   through the barrier between ion and surface, ``U(s) = w(s) - Z / (x - s)
   - 1 / (4s)`` (field, ionic core and the electron's own image: the
   Schottky-Nordheim barrier, :attr:`KinghamModel.barrier`), with the level
   ``E = -I + w(x) - 1 / (4x)`` that these terms give at the ion, computed
   numerically; ``G_free`` is the same integral for the free ion. The surface
   shortens the barrier (the electron ends in the metal), which is what makes
   post-ionisation happen close to the tip [HK80]; using the ratio of two
   WKB factors keeps the one-dimensional WKB integral's poor absolute value
   (a factor 100 to 1000 too fast for these ions) out of the rate.
5. **Flight.** The ion starts at rest at the Schottky hump of its starting
   charge ``n0`` (the maximum of its potential energy ``-n0 w(x) -
   n0^2 / (4x)``, about ``sqrt(n0 / 4F)`` from the image plane), the
   starting point of the ion energy in Yao & Li's implementation of [K82]
   (Felfer group Atom-Probe-Toolbox). Its kinetic energy follows from the
   same potential, with each earlier post-ionisation taken at its critical
   distance; ``v = sqrt(2 T / M)``.
6. **Probability** of the step: ``P = 1 - exp(-int_{x_c}^inf R(x) / v(x) dx)``
   [K82]; the fractions are ``f_n0 = 1 - P_n0``, ``f_{n0+1} = P_n0 (1 -
   P_{n0+1})``, ... up to :attr:`KinghamModel.max_charge`, whose fraction is
   what is left.

Declared constants (:class:`KinghamModel`): the tip radius (50 nm, a typical
APT apex, not fitted), the barrier's image terms (the one of three choices
closest to the published curves: fitted, and declared as such), the start
point (the Schottky hump) and the starting charge (1+, as in [K82] for the
metals here). Distances are measured from the image plane, so the image-plane
offset from the surface atoms (0.8 bohr after Lang & Kohn in the Yao & Li
implementation) does not enter. Not modelled: the Stark shift of the level,
field penetration, and the charge
states produced directly at evaporation, which in laser-pulsed oxides do not
follow post-ionisation alone (D.K. Schreiber et al., Appl. Phys. Lett. 105
(2014) 244106). A field from an oxide cation's ratio is therefore a relative
indicator, not a field; only a metal's ratio (the Cr coating) gives a
Kingham-equivalent field under the metal assumption.

Element data (:data:`ELEMENTS`): successive ionisation energies from the NIST
Atomic Spectra Database (A. Kramida, Yu. Ralchenko, J. Reader and NIST ASD
Team, NIST ASD v5.11, 2023), polycrystalline work functions from
H.B. Michaelson, J. Appl. Phys. 48 (1977) 4729, and the standard atomic
weights (via :func:`liprobe.chemistry.isotopes`).

How the curves compare with the published ones is in ``docs/kingham.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

__all__ = ["ElementData", "ELEMENTS", "KinghamModel", "KinghamCurves", "KinghamField",
           "kingham_curves", "crossover_fields", "field_from_ratio", "post_ionisation",
           "FIELD_AU_V_NM", "CSR_LIMITS"]

#: CODATA 2018: Hartree energy in eV, bohr radius in nm, dalton in electron masses.
HARTREE_EV = 27.211386245988
BOHR_NM = 0.0529177210903
DA_ME = 1822.888486209
#: The atomic unit of field in V/nm (``E_h / (e a0)``).
FIELD_AU_V_NM = HARTREE_EV / BOHR_NM

#: The highest surface field (V/nm) the curves are computed at: far beyond any APT field
#: (20-60 V/nm), where the model's approximations no longer hold.
MAX_FIELD_V_NM = 1000.0

#: A charge-state ratio outside these bounds is not inverted to a field (the
#: curves' tails are too flat and too model-dependent; the Felfer toolbox's
#: notes give the same bounds).
CSR_LIMITS = (0.01, 100.0)

_NIST = "NIST ASD v5.11 (2023)"
_MICHAELSON = "Michaelson, J. Appl. Phys. 48 (1977) 4729"


@dataclass(frozen=True)
class ElementData:
    """What the Kingham model needs of an element.

    Attributes
    ----------
    symbol : str
    ionisation_ev : tuple of float
        Successive ionisation energies ``I1, I2, ...`` in eV (NIST ASD).
    work_function_ev : float
        Work function of the polycrystalline metal in eV (Michaelson 1977).
    start_charge : int
        Charge in which the ion leaves the surface.
    sources : str
        Where the numbers come from.
    """

    symbol: str
    ionisation_ev: tuple
    work_function_ev: float
    start_charge: int = 1
    sources: str = f"I: {_NIST}; phi: {_MICHAELSON}"

    @property
    def mass_da(self) -> float:
        """Standard atomic weight in Da (abundance-weighted isotope masses)."""
        from .chemistry import isotopes

        return float(sum(m * a for _, m, a in isotopes(self.symbol)))


def _el(symbol, phi, *ionisation):
    return ElementData(symbol, tuple(ionisation), phi)


#: Element data of the elements with Kingham curves (eV).
ELEMENTS: dict[str, ElementData] = {e.symbol: e for e in (
    _el("Li", 2.9, 5.391715, 75.640097, 122.454359),
    _el("Al", 4.28, 5.985769, 18.82855, 28.447642, 119.9924, 153.8252),
    _el("Si", 4.85, 8.15168, 16.34585, 33.493, 45.14179, 166.767),
    _el("Ti", 4.33, 6.828120, 13.5755, 27.4917, 43.2672, 99.299),
    _el("V", 4.3, 6.746187, 14.634, 29.3111, 46.709, 65.28165),
    _el("Cr", 4.5, 6.76651, 16.486305, 30.959, 49.16, 69.46),
    _el("Mn", 4.1, 7.434038, 15.63999, 33.668, 51.21, 72.41),
    _el("Fe", 4.5, 7.9024681, 16.19921, 30.651, 54.91, 75.0),
    _el("Co", 5.0, 7.88101, 17.0844, 33.5, 51.27, 79.5),
    _el("Ni", 5.15, 7.639878, 18.168838, 35.187, 54.92, 76.06),
    _el("Cu", 4.65, 7.72638, 20.29239, 36.841, 57.38, 79.8),
    _el("Zn", 4.33, 9.394197, 17.96439, 39.7233, 59.573, 82.6),
    _el("Ga", 4.2, 5.999302, 20.51514, 30.72576, 63.241, 86.01),
    _el("Ge", 5.0, 7.899435, 15.93461, 34.0576, 45.7155, 90.5),
    _el("Nb", 4.3, 6.75885, 14.32, 25.04, 37.611, 50.5728),
    _el("Mo", 4.6, 7.09243, 16.16, 27.13, 40.33, 54.417),
    _el("Ag", 4.26, 7.576234, 21.4844, 34.8, 49.0, 65.0),
    _el("Ta", 4.25, 7.549571, 16.2, 23.1, 35.0, 48.272),
    _el("W", 4.55, 7.86403, 16.37, 26.0, 38.2, 51.6),
    _el("Pt", 5.65, 8.95883, 18.56, 29.0, 43.0, 56.0),
    _el("Au", 5.1, 9.225553, 20.203, 30.0, 45.0, 60.0),
)}


@dataclass(frozen=True)
class KinghamModel:
    """The model constants (see the module docstring), kept apart from the computation.

    Attributes
    ----------
    tip_radius_nm : float
        Radius of the spherical tip whose field decays as ``(R / (R + x))^2``
        (50 nm: a typical APT apex; not fitted). 30 or 100 nm instead move the
        2+/1+ crossovers by at most 0.7 V/nm and the 3+/2+ ones by 0.5 to 1.9 V/nm
        (``docs/kingham.md``).
    barrier : str
        The image terms in the tunnelling barrier (:data:`BARRIERS`):
        ``"schottky-nordheim"`` (the default: field, ionic core and the
        electron's own image, the Schottky-Nordheim barrier of field emission),
        ``"full-image"`` (adds the repulsion of the core's image) or
        ``"truncated"`` (no image terms, the free ion's barrier cut at the
        image plane, as in the analytic rate of [HK80]). The default is the
        one of the three closest to the published curves (a choice fitted to
        them, declared as such); the others move the crossovers up by 1.1 to
        2.2 V/nm (2+/1+) and 1.0 to 2.6 V/nm (3+/2+) (``docs/kingham.md``).
    max_charge : int
        Highest charge state computed; its fraction is all that reaches it.
    grid_v_nm : tuple of float
        ``(start, stop, step)`` of the field grid on which crossovers are
        found and ratios inverted.
    flight_points : int
        Points of the flight integral (geometric in ``sqrt(x - x_c)``).
    """

    tip_radius_nm: float = 50.0
    barrier: str = "schottky-nordheim"
    max_charge: int = 4
    grid_v_nm: tuple = (5.0, 150.0, 0.5)
    flight_points: int = 160

    def __post_init__(self):
        if not (math.isfinite(self.tip_radius_nm) and self.tip_radius_nm > 0):
            raise ValueError(f"tip_radius_nm must be positive (got {self.tip_radius_nm})")
        if self.barrier not in BARRIERS:
            raise ValueError(f"barrier must be one of {', '.join(BARRIERS)} "
                             f"(got {self.barrier!r})")
        if int(self.max_charge) != self.max_charge or not 2 <= self.max_charge <= 8:
            raise ValueError(f"max_charge must be a whole number from 2 to 8 "
                             f"(got {self.max_charge})")
        lo, hi, step = self.grid_v_nm
        if not (0 < lo < hi <= MAX_FIELD_V_NM and step > 0 and (hi - lo) / step <= 10_000):
            raise ValueError(f"grid_v_nm must be (start, stop, step) with 0 < start < stop <= "
                             f"{MAX_FIELD_V_NM:g} V/nm and at most 10,000 steps")
        if int(self.flight_points) != self.flight_points or not 20 <= self.flight_points <= 10_000:
            raise ValueError("flight_points must be a whole number from 20 to 10,000")

    def fields(self) -> np.ndarray:
        lo, hi, step = self.grid_v_nm
        return np.arange(lo, hi + step / 2, step)


def _element(element: str) -> ElementData:
    data = ELEMENTS.get(element)
    if data is None:
        raise ValueError(f"no Kingham data for '{element}' (known: {', '.join(ELEMENTS)})")
    return data


# --------------------------------------------------------------------------
# the physics, atomic units, vectorised over arrays of the same shape
# --------------------------------------------------------------------------

def _w(s, F, R):
    """Electron potential energy at ``s`` from the image plane (spherical tip)."""
    return F * R * s / (R + s)


def _bisect(f, lo, hi, iterations=42):
    """The root of ``f`` in ``[lo, hi]`` (``f(lo) > 0 > f(hi)`` elementwise)."""
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        pos = f(mid) > 0
        lo = np.where(pos, mid, lo)
        hi = np.where(pos, hi, mid)
    return 0.5 * (lo + hi)


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(40)
_THETA = (0.5 * math.pi) * (_GL_NODES + 1.0)
_THETA_W = (0.5 * math.pi) * _GL_WEIGHTS


#: The barrier choices of :attr:`KinghamModel.barrier`: which image terms the
#: tunnelling electron sees, as (core image, own image) weights.
BARRIERS = {"schottky-nordheim": (0.0, 1.0), "full-image": (1.0, 1.0), "truncated": (0.0, 0.0)}


def _wkb_exponent(x, F, R, ip, Z, barrier="schottky-nordheim"):
    with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
        return _wkb_exponent_raw(x, F, R, ip, Z, barrier)


def _wkb_exponent_raw(x, F, R, ip, Z, barrier):
    """``G = 2 int sqrt(2 (U - E)) ds`` for an ion at ``x`` (arrays of one shape).

    ``U(s) = w(s) - Z/(x - s) + c Z/(x + s) - o/(4s)`` and the level ``E = -I +
    w(x) + c Z/(2x) - o/(4x)`` (the potential the included image terms give at
    the ion), with ``(c, o)`` from :data:`BARRIERS`; with ``o = 0`` the
    barrier ends at the image plane (``s = 0``).
    """
    c, o = BARRIERS[barrier]
    level = -ip + _w(x, F, R) + c * Z / (2 * x) - o * 0.25 / x

    def h(s):
        out = _w(s, F, R) - Z / (x - s) - level
        if c:
            out = out + c * Z / (x + s)
        if o:
            out = out - o * 0.25 / s
        return out

    def dh(s):
        out = F * R * R / (R + s) ** 2 - Z / (x - s) ** 2
        if c:
            out = out - c * Z / (x + s) ** 2
        if o:
            out = out + o * 0.25 / (s * s)
        return out

    tiny = 1e-9 * x
    lo = tiny if o else np.zeros_like(x)
    if o:
        s_top = _bisect(dh, lo, x - tiny)             # h is concave: one maximum
    else:
        s_top = np.where(dh(lo) <= 0, lo, _bisect(dh, lo, x - tiny))
    barrier_ = h(s_top) > 0
    s1 = _bisect(lambda s: -h(s), lo, s_top)          # metal side: h rises through 0
    if not o:
        s1 = np.where(h(lo) > 0, lo, s1)              # or the barrier meets the surface
    s2 = _bisect(h, s_top, x - tiny)                  # ion side: h falls through 0
    mid, half = 0.5 * (s1 + s2), 0.5 * (s2 - s1)
    total = np.zeros_like(x)
    for th, wt in zip(_THETA, _THETA_W):
        s = mid - half * math.cos(th)
        total += wt * math.sin(th) * np.sqrt(np.maximum(2.0 * h(s), 0.0))
    return np.where(barrier_, 2.0 * half * total, 0.0)


def _free_exponent(F, ip, Z):
    """The same WKB exponent for the free ion (no surface) in a uniform field ``F``.

    Turning points of ``I - Z/d - F d`` in closed form; 0 where the level is
    over the barrier (``I^2 < 4 Z F``).
    """
    disc = ip * ip - 4.0 * Z * F
    over = disc <= 0
    root = np.sqrt(np.maximum(disc, 0.0))
    d1 = (ip - root) / (2.0 * F)
    d2 = (ip + root) / (2.0 * F)
    mid, half = 0.5 * (d1 + d2), 0.5 * (d2 - d1)
    total = np.zeros(np.broadcast(F, ip).shape)
    for th, wt in zip(_THETA, _THETA_W):
        d = mid - half * math.cos(th)
        total += wt * math.sin(th) * np.sqrt(np.maximum(2.0 * (ip - Z / d - F * d), 0.0))
    return np.where(over, 0.0, 2.0 * half * total)


def _free_rate(F, ip, Z):
    """Tunnelling rate (per atomic unit of time) of a free ion's level in a static field.

    The Ammosov-Delone-Krainov form for a level of binding energy ``I`` around
    a core of charge ``Z``, taken as s-like (``l = m = 0``), ``kappa =
    sqrt(2I)``, ``n* = Z / kappa``: ``w = C^2 (kappa^2 / 2) (2 kappa^3 /
    F)^(2 n* - 1) exp(-2 kappa^3 / (3F))`` with ``C^2 = 2^(2 n*) / (n*
    Gamma(n* + 1) Gamma(n*))`` (M.V. Ammosov, N.B. Delone, V.P. Krainov,
    Sov. Phys. JETP 64 (1986) 1191). For hydrogen it is Landau's ``(4/F)
    exp(-2/(3F))``; the hydrogen-like level with an effective charge is also
    what [HK80] take. The constant ``C^2`` is that of an s level (``l* = 0``):
    a declared choice. ADK's ground-state prescription ``l* = n* - 1``
    (``C^2 = 2^(2 n*) / (n* Gamma(2 n*))``) would move the crossovers up, away
    from the published curves, by 1.2-1.9 V/nm (2+/1+), 3.0-4.6 (3+/2+) and
    5-8 (4+/3+) (``docs/kingham.md``).
    """
    from scipy.special import gammaln

    kappa = math.sqrt(2.0 * ip)
    ns = Z / kappa
    log_c2 = 2.0 * ns * math.log(2.0) - math.log(ns) - gammaln(ns + 1.0) - gammaln(ns)
    return np.exp(log_c2 + math.log(kappa * kappa / 2.0)
                  + (2.0 * ns - 1.0) * np.log(2.0 * kappa ** 3 / F)
                  - 2.0 * kappa ** 3 / (3.0 * F))


def _critical_distance(F, R, ip, phi, n, x_start):
    """``x_c``: the nearest ``x >= x_start`` beyond which the level stays above E_F."""
    def g(x):
        return _w(x, F, R) + (2 * n + 1) / (4 * x) - (ip - phi)

    a = np.sqrt((2 * n + 1) / (4 * F))
    x_min = a * R / np.maximum(R - a, 1e-12)            # the minimum of g
    never = F * R <= (ip - phi)                          # the level never reaches E_F
    hi = np.where(never, x_min, x_min * 4.0 + 2.0 * R * (ip - phi) /
                  np.maximum(F * R - (ip - phi), 1e-300))
    for _ in range(60):                                 # make sure g(hi) > 0
        bad = (g(hi) <= 0) & ~never
        if not bad.any():
            break
        hi = np.where(bad, hi * 2.0, hi)
    root = _bisect(lambda x: -g(x), x_min, hi)
    # with no root the level is above E_F from the minimum of g on: x_c meets the root's
    # limit (the double root at x_min) continuously
    xc = np.where(g(x_min) >= 0, np.maximum(x_start, x_min), np.maximum(root, x_start))
    return np.where(never, np.inf, xc)


def _schottky_start(F, R, n0):
    a = np.sqrt(n0 / (4 * F))
    return a * R / np.maximum(R - a, 1e-12)


def _step_log_survival(data: ElementData, model: KinghamModel, fields_au: np.ndarray):
    """``S_n = int R / v dx`` of each step ``n -> n+1`` (``1 - P_n = exp(-S_n)``).

    Returns ``{n: S_n array}`` for ``n = start_charge .. max_charge - 1``.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
        return _step_log_survival_raw(data, model, fields_au)


def _step_log_survival_raw(data: ElementData, model: KinghamModel, fields_au: np.ndarray):
    F = fields_au[:, None]
    R = model.tip_radius_nm / BOHR_NM
    M = data.mass_da * DA_ME
    phi = data.work_function_ev / HARTREE_EV
    n0 = data.start_charge
    top = min(model.max_charge, len(data.ionisation_ev))
    x0 = _schottky_start(F, R, n0)
    # where the ion reaches each charge, and its kinetic energy there (a.u.)
    here, t_here = x0, np.zeros_like(x0)
    u = np.geomspace(1e-3, math.sqrt(6.0 * R), model.flight_points)[None, :]
    out = {}
    for n in range(n0, top):
        ip = data.ionisation_ev[n] / HARTREE_EV
        Z = n + 1
        xc = _critical_distance(F, R, ip, phi, n, x0)
        # the step starts at x_c, not before the ion has become n+, and not inside the
        # n+ ion's own Schottky hump (nearer in, its image pulls it back: it has not
        # escaped); its kinetic energy, from the earlier steps' flight, is never negative
        start = np.maximum(np.where(np.isfinite(xc), np.maximum(xc, here), here),
                           _schottky_start(F, R, n))
        t_start = np.maximum(t_here + n * (_w(start, F, R) - _w(here, F, R))
                             + n * n * (0.25 / start - 0.25 / here), 0.0)
        x = start + u * u                                       # x - start = u^2
        kinetic = (t_start + n * (_w(x, F, R) - _w(start, F, R))
                   + n * n * (0.25 / x - 0.25 / start))
        v = np.sqrt(np.maximum(2.0 * kinetic, 1e-300) / M)
        nu = (2.0 * ip) ** 1.5 / (2.0 * math.pi * Z)
        f_local = F * (R / (R + x)) ** 2
        # the free ion's rate, times the surface's enhancement of the WKB factor
        enhancement = (_free_exponent(f_local, ip, Z)
                       - _wkb_exponent(x, F + 0 * x, R, ip, Z, model.barrier))
        rate = np.minimum(_free_rate(f_local, ip, Z) * np.exp(np.minimum(enhancement, 700.0)),
                          nu)
        integrand = rate / v * 2.0 * u                          # dx = 2u du
        s = np.trapezoid(integrand, u, axis=1) + integrand[:, 0] * u[0, 0]
        out[n] = np.where(np.isfinite(xc[:, 0]), s, 0.0)
        # the next step starts where this one most likely happened: its start
        here, t_here = start, t_start
    return out


def _log_fractions(data: ElementData, model: KinghamModel, fields_v_nm) -> dict:
    """``{charge: ln f_charge}`` on ``fields_v_nm`` (natural logs, -inf for zero)."""
    F = np.asarray(fields_v_nm, dtype=np.float64) / FIELD_AU_V_NM
    S = _step_log_survival(data, model, F)
    n0 = data.start_charge
    top = min(model.max_charge, len(data.ionisation_ev))
    with np.errstate(divide="ignore"):
        log_p = {n: np.log(-np.expm1(-s)) for n, s in S.items()}     # ln P_n, -inf if 0
    out = {}
    acc = np.zeros_like(F)                                          # ln prod P below
    for q in range(n0, top + 1):
        out[q] = acc - S[q] if q < top else acc
        if q < top:
            acc = acc + log_p[q]
    return out


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class KinghamCurves:
    """Charge-state fractions of one element against the surface field.

    Attributes
    ----------
    element : str
    fields_v_nm : ndarray of float
    fractions : dict of int to ndarray
        ``{charge: f_charge(F)}``; the fractions sum to 1 at every field.
    crossover_v_nm : dict of str to float or None
        ``{"2/1": F}``: the field (V/nm) at which each pair of neighbouring
        charge states is equally abundant, on the model's grid; None where
        they never cross there.
    data : ElementData
    model : KinghamModel
    """

    element: str
    fields_v_nm: np.ndarray
    fractions: dict
    crossover_v_nm: dict
    data: ElementData
    model: KinghamModel = field(default_factory=KinghamModel)

    def ratio(self, high: int, low: int) -> np.ndarray:
        """``f_high / f_low`` on :attr:`fields_v_nm` (inf where ``f_low`` is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.fractions[high] / self.fractions[low]

    def to_dict(self) -> dict:
        return {
            "element": self.element,
            "fields_v_nm": [float(f) for f in self.fields_v_nm],
            "fractions": {str(q): [float(v) for v in f] for q, f in self.fractions.items()},
            "crossover_v_nm": dict(self.crossover_v_nm),
            "parameters": {
                "ionisation_ev": list(self.data.ionisation_ev),
                "work_function_ev": self.data.work_function_ev,
                "mass_da": round(self.data.mass_da, 4),
                "start_charge": self.data.start_charge,
                "sources": self.data.sources,
                "tip_radius_nm": self.model.tip_radius_nm,
                "max_charge": self.model.max_charge,
            },
        }


@lru_cache(maxsize=64)
def _grid_log_fractions(element: str, model: KinghamModel):
    data = _element(element)
    grid = model.fields()
    return grid, _log_fractions(data, model, grid)


def crossover_fields(element: str, model: KinghamModel | None = None) -> dict:
    """The fields (V/nm) at which neighbouring charge states are equally abundant.

    Each ``"(n+1)/n"`` key gives the lowest field at which ``f_{n+1} / f_n``
    rises through 1: bracketed on the model's grid, then found on the exact
    curves (Brent's method); None if it does not within the grid.

    Examples
    --------
    >>> from liprobe.kingham import crossover_fields
    >>> sorted(crossover_fields("W"))
    ['2/1', '3/2', '4/3']
    """
    return dict(_crossovers(element, model or KinghamModel()))


@lru_cache(maxsize=256)
def _crossovers(element: str, model: KinghamModel) -> tuple:
    grid, logf = _grid_log_fractions(element, model)
    out: dict[str, float | None] = {}
    charges = sorted(logf)
    for lo, hi in zip(charges, charges[1:]):
        with np.errstate(invalid="ignore"):
            d = logf[hi] - logf[lo]
        up = np.nonzero((d[:-1] < 0) & (d[1:] >= 0) & np.isfinite(d[:-1]))[0]
        if not len(up):
            out[f"{hi}/{lo}"] = None
            continue
        i = int(up[0])
        out[f"{hi}/{lo}"] = round(_refine(element, hi, lo, 0.0, float(grid[i]),
                                          float(grid[i + 1]), model), 2)
    return tuple(out.items())


def post_ionisation(element: str, charge: int, fields_v_nm,
                    model: KinghamModel | None = None) -> np.ndarray:
    """Probability that an ion of ``charge`` is post-ionised once more, against field.

    ``P = 1 - exp(-int_{x_c}^inf R(x) / v(x) dx)`` [K82] (see the module
    docstring), at each field of ``fields_v_nm`` (V/nm).
    """
    model = model or KinghamModel()
    data = _element(element)
    F = np.asarray(fields_v_nm, dtype=np.float64) / FIELD_AU_V_NM
    S = _step_log_survival(data, model, np.atleast_1d(F))
    if charge not in S:
        raise ValueError(f"{element}: no post-ionisation step from {charge}+ is computed "
                         f"(steps from {sorted(S)})")
    return -np.expm1(-S[charge]).reshape(np.shape(F))


def kingham_curves(element: str, fields_v_nm=None,
                   model: KinghamModel | None = None) -> KinghamCurves:
    """Kingham curves of ``element``: the charge-state fractions at each field.

    Parameters
    ----------
    element : str
        An element of :data:`ELEMENTS` (``"Cr"``, ``"Ni"``, ``"W"``...).
    fields_v_nm : array of float, optional
        Surface fields in V/nm (default: 10 to 80 V/nm in steps of 1).
    model : KinghamModel, optional
        The model constants.

    Returns
    -------
    KinghamCurves

    Raises
    ------
    ValueError
        An element without data, or a field that is not positive and finite.

    References
    ----------
    .. [1] D.R. Kingham, "The post-ionization of field evaporated ions: a
       theoretical explanation of multiple charge states", Surf. Sci. 116
       (1982) 273-301.
    .. [2] R. Haydock, D.R. Kingham, "Post-ionization of field-evaporated
       ions", Phys. Rev. Lett. 44 (1980) 1520-1523.

    Examples
    --------
    >>> import liprobe
    >>> c = liprobe.kingham_curves("Ni", [20.0, 30.0, 40.0])
    >>> sorted(c.fractions)
    [1, 2, 3, 4]
    >>> [round(float(sum(f[i] for f in c.fractions.values())), 12) for i in range(3)]
    [1.0, 1.0, 1.0]
    >>> bool(c.fractions[1][0] > 0.5 > c.fractions[1][2])   # Ni+ gives way to Ni++
    True
    """
    model = model or KinghamModel()
    data = _element(element)
    fields = np.arange(10.0, 80.5, 1.0) if fields_v_nm is None else \
        np.asarray(fields_v_nm, dtype=np.float64).ravel()
    if fields.size == 0:
        raise ValueError("no fields given")
    if not np.all(np.isfinite(fields)) or np.any(fields <= 0):
        raise ValueError("fields must be positive and finite (V/nm)")
    if np.any(fields > MAX_FIELD_V_NM):
        raise ValueError(f"fields above {MAX_FIELD_V_NM:g} V/nm are beyond the model")
    if fields.size > 100_000:
        raise ValueError(f"{fields.size:,} fields asked for; at most 100,000")
    logf = _log_fractions(data, model, fields)
    fractions = {q: np.exp(v) for q, v in logf.items()}
    return KinghamCurves(element, fields, fractions, crossover_fields(element, model), data,
                         model)


@dataclass(frozen=True)
class KinghamField:
    """A Kingham-equivalent field read from one measured charge-state ratio.

    Attributes
    ----------
    element : str
    pair : str
        ``"Cr++/Cr+"``: the ratio inverted.
    ratio, ratio_error : float or None
        The measured ratio and its standard error.
    value_v_nm, error_v_nm : float or None
        The field (V/nm) at which the curves give ``ratio``, and its error
        propagated from ``ratio_error`` (first order: ``sigma_r / r`` over
        ``d ln(f_high / f_low) / dF`` at the solution). None, with
        :attr:`reason`, when the ratio cannot be inverted.
    reason : str or None
    """

    element: str
    pair: str
    ratio: float | None
    ratio_error: float | None
    value_v_nm: float | None
    error_v_nm: float | None
    reason: str | None = None

    def to_dict(self) -> dict:
        return {"element": self.element, "pair": self.pair, "ratio": self.ratio,
                "ratio_error": self.ratio_error, "value_v_nm": self.value_v_nm,
                "error_v_nm": self.error_v_nm, "reason": self.reason}


def _refine(element, high, low, target, f_lo, f_hi, model) -> float:
    """The field in ``[f_lo, f_hi]`` (V/nm) where the exact curves' ``ln(f_high / f_low)``
    equals ``target`` (Brent's method; the grid only brackets it)."""
    from scipy.optimize import brentq

    data = ELEMENTS[element]

    def g(f):
        lf = _log_fractions(data, model, [f])
        return float(lf[high][0] - lf[low][0]) - target

    a, b = g(f_lo), g(f_hi)
    if a == 0:
        return float(f_lo)
    if b == 0 or a * b > 0:
        return float(f_hi if abs(b) < abs(a) else f_lo)
    return float(brentq(g, f_lo, f_hi, xtol=1e-6))


def _pair_name(element: str, high: int, low: int) -> str:
    return f"{element}{'+' * high}/{element}{'+' * low}"


def field_from_ratio(element: str, high: int, low: int, ratio: float | None,
                     ratio_error: float | None = None,
                     model: KinghamModel | None = None) -> KinghamField:
    """Invert a measured charge-state ratio ``N(high) / N(low)`` to a field in V/nm.

    The ratio is read on the rising branch of ``f_high / f_low`` (from the
    lowest field of the grid up to the ratio's maximum, beyond which a still
    higher charge state takes over): bracketed on the grid, then solved on the
    exact curves (Brent's method). A
    ratio outside :data:`CSR_LIMITS` or beyond the branch's range gives None
    with the reason, never an extrapolation.

    Examples
    --------
    >>> from liprobe.kingham import field_from_ratio, kingham_curves
    >>> f = field_from_ratio("Cr", 2, 1, 1.0, 0.05)     # Cr++ = Cr+: the crossover
    >>> round(f.value_v_nm, 2) == kingham_curves("Cr").crossover_v_nm["2/1"]
    True
    >>> field_from_ratio("Cr", 2, 1, 500.0).reason
    'Cr++/Cr+ = 500 is outside 0.01 to 100, where the curves are too flat to read'
    """
    model = model or KinghamModel()
    pair = _pair_name(element, high, low)
    r_err = None if ratio_error is None else float(ratio_error)
    if r_err is not None and not (math.isfinite(r_err) and r_err >= 0):
        raise ValueError(f"ratio_error must be finite and not negative (got {ratio_error})")

    def missing(why):
        return KinghamField(element, pair, None if ratio is None else float(ratio), r_err,
                            None, None, why)

    if element not in ELEMENTS:
        return missing(f"no Kingham data for {element}")
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        return missing(f"{pair} = {ratio}: no positive ratio to invert")
    lo_lim, hi_lim = CSR_LIMITS
    if not lo_lim <= ratio <= hi_lim:
        return missing(f"{pair} = {ratio:.3g} is outside {lo_lim:g} to {hi_lim:g}, where the "
                       "curves are too flat to read")
    grid, logf = _grid_log_fractions(element, model)
    if high not in logf or low not in logf:
        return missing(f"the model computes {element} charge states "
                       f"{min(logf)}+ to {max(logf)}+ only")
    with np.errstate(invalid="ignore"):
        d = logf[high] - logf[low]
    ok = np.isfinite(d)
    if not ok.any():
        return missing(f"{pair} is zero at every field of the grid")
    first = int(np.argmax(ok))
    top = first + int(np.argmax(d[first:]))
    # the rising branch, cut where it passes the largest ratio that is ever inverted
    stop = first + int(np.searchsorted(d[first:top + 1], math.log(hi_lim) + 1.0)) + 1
    branch_f, branch_d = grid[first:min(top, stop) + 1], d[first:min(top, stop) + 1]
    target = math.log(ratio)
    if branch_d.size < 2 or target > branch_d[-1]:
        return missing(f"{pair} = {ratio:.3g} is above the curves' highest value, "
                       f"{math.exp(branch_d[-1]):.3g} (at {branch_f[-1]:g} V/nm)")
    if target < branch_d[0]:
        return missing(f"{pair} = {ratio:.3g} is below the curves' lowest value, "
                       f"{math.exp(branch_d[0]):.3g} (at {branch_f[0]:g} V/nm)")
    i = int(np.clip(np.searchsorted(branch_d, target), 1, branch_d.size - 1))
    value = _refine(element, high, low, target, branch_f[i - 1], branch_f[i], model)
    h = 0.01                                   # d ln(ratio) / dF at the solution, exact curves
    data = ELEMENTS[element]
    lf = _log_fractions(data, model, [value - h, value + h])
    slope = float((lf[high][1] - lf[low][1] - lf[high][0] + lf[low][0]) / (2 * h))
    err = None
    if r_err is not None and slope > 0:
        err = float(r_err / ratio / slope)
    return KinghamField(element, pair, float(ratio), r_err, round(value, 4),
                        None if err is None else round(err, 4))
