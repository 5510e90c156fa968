"""Fracture from the field's pull: the Maxwell stress against a drawn population of flaws.

The model (its constants are the ``fracture_*`` fields of
:class:`~liprobe.simulate.evaporation.EvaporationModel`, each with its unit,
source and status; ``liprobe simulate --list-parameters`` lists them and
``--set`` changes them):

1. **Stress.** The field pulls on the apex with the Maxwell stress
   ``sigma_M = eps0 F^2 / 2`` (about 4 GPa at 30 V/nm; the main cause of
   specimen failure [W72], [M11], as the seed paper recalls [SI24]), ``F``
   the oxide's field of the segment (:func:`.evaporation.operating_point`:
   it depends on the field, not on the voltage). The pull is carried by the
   specimen's cross-section below the apex. A Cr shell of thickness ``t``
   on the shank is pulled too, over its rim of relative area
   ``A = ((R + t)^2 - R^2) / R^2``, with ``r_c^2`` times the oxide's Maxwell
   stress (``r_c = coating_field_ratio``, the Cr's field over the oxide's);
   the total axial force ``sigma_M pi R^2 (1 + r_c^2 A)`` is shared by the
   oxide core and the shell at equal strain, by stiffness times area, so the
   oxide's stress is ``psi sigma_M`` with
   ``psi = (1 + r_c^2 A) / (1 + (E_Cr / E_ox) A)`` (1 bare; about 0.80 for
   a 5 nm shell on a 30 nm apex: the shell's stiffness relieves the core
   more than its own pull loads it). The
   laser pulse adds a thermal stress from the temperature difference across
   the apex, ``sigma_T = s E_ox alpha (T - T_base) / g``: ``s`` the share of
   the rise that is a gradient (the laser-facing side hotter), ``g`` the
   shell's heat-flow factor (:func:`.evaporation.heat_flow_factor`), which
   evens the temperature out. The oxide's stress is
   ``sigma = psi sigma_M + sigma_T``, one value per laser segment.
2. **Flaws.** The shank's surface carries flaws (FIB damage, surface
   cracks) with an areal density ``n`` and depths ``a`` from a power law,
   ``P(a > x) = (a_min / x)^k``; a flaw's strength is
   ``sigma_f = K_IC / (Y sqrt(pi a))`` (``Y = 1.12``, an edge crack: an
   assumption, a semi-elliptical surface flaw has ``Y ~ 0.7`` [TPI]), so
   ``P(sigma_f < sigma) = (sigma / sigma_max)^(2k)``, a Weibull law of
   modulus ``m = 2k`` capped at ``sigma_max = K_IC / (Y sqrt(pi a_min))``.
   The hazard holds ``n`` and ``sigma_max`` only as
   ``n (Y sqrt(pi a_min) / K_IC)^(2k)``: the fit of ``n`` constrains only
   that combination, not ``K_IC``, ``Y`` or ``a_min`` apart.
   A Cr shell redeposited over the shank fills a share ``h`` of them
   (``n (1 - h)`` flaws left).

3. **Weakest link along depth.** As the apex evaporates down the shank,
   new surface enters the stressed apex region: ``2 pi R dz`` per depth
   ``dz`` (``R`` the apex radius, growing along the cone: a wider apex
   stresses more surface, the weakest-link size effect). Flaws that enter
   with a strength below the stress fail, a Poisson process of cumulative
   hazard ``H(z) = n (1 - h) integral 2 pi R P(sigma_f < sigma) dz``; where a
   segment raises the stress over the previous segment's, the flaws of the
   whole cap (``2 pi R^2 (1 - sin alpha)``), screened at the previous
   segment's level, get the rise at once (in a 5 -> 20 -> 5 pJ schedule the
   last 5 pJ segment screens the cap again, its flaws having been screened
   only at 20 pJ's lower stress). A specimen that broke as the voltage was
   first raised would give no run: the runs are conditioned on surviving
   the first segment's stress on the starting cap, which a specimen does
   with probability ``exp(-(1 - c) n (1 - h) 2 pi R0^2 (1 - sin alpha) P(sigma_f <
   sigma_1))`` (``FractureOutcome.ramp_survival_probability``, recorded in
   the truth as ``ramp_survival_probability``: the share of the specimens
   prepared that would reach the run at all).
4. **Crack events.** Each failing flaw is a crack. A share ``c`` of them
   arrest after chipping the cap (a *crack event*): the simulated needle does
   not change shape, the event shows as the voltage step only, the standing
   voltage stepping up by ``crack_voltage_step`` for the rest of the run. The
   others run through the section: the specimen fractures, the run ends with
   the burst of multiple hits of :data:`liprobe.simulate.engine.FRACTURE_BURST`.

The two fitted constants are fitted to depths, with the model's functions
(``tests/simulate/test_fracture.py`` checks them): ``n`` so that an
uncoated NMC811 specimen (30 nm apex, 10 deg shank) at 5 pJ fractures
within its first 10 nm with probability 0.75 ([SI24]: "most specimens faced
premature fracture"), then ``h`` so that a coated one (5 nm Cr) at 5 pJ
reaches 30 nm, the issue's flagship depth, with probability 0.90 ([SI24]:
the coating almost eliminated it). The probability of a fracture by 1.5,
10 and 30 nm is then 0.18, 0.75 and 0.99 uncoated, 0.005, 0.03 and 0.10
coated (5 pJ; at 20 pJ 0.10, 0.50, 0.89 and 0.002, 0.014, 0.045).

Depth follows the detected ions through the needle's geometry
(:mod:`.specimen`: the cap's radius grows as ``R0 + c Z``) and the
evaporated volume per detected ion of each segment. One generator seeded
with ``(seed, 2)`` draws the failing flaws (exponential spacings of the
hazard, then per crack: arrest or not, and the flaw's strength), apart
from the run's stream. A fractured run keeps at least
:data:`MIN_FRACTURE_IONS` ions.

References
----------
[W72] Wilkes, Titchmarsh, Smith, Smith, Morris, Johnston, Godfrey, Birdseye,
Fracture of field-ion microscope specimens, J. Phys. D 5 (1972) 2226.
[M11] Moy, Ranzi, Petersen, Ringer, Macroscopic electrical field
distribution and field-induced surface stresses of needle-shaped field
emitters, Ultramicroscopy 111 (2011) 397.
[MU17] Mughal, Amanieu, Moscatelli, Sebastiani, A comparison of microscale
techniques for determining fracture toughness of LiMn2O4 particles,
Materials 10 (2017) 403: K_IC 0.24 MPa m^1/2 (micro-pillar splitting) and
0.81 MPa m^1/2 (crack opening displacement).
[TPI] Tada, Paris, Irwin, The Stress Analysis of Cracks Handbook (3rd ed.,
ASME 2000): Y = 1.12 for an edge crack under uniform tension, ~0.7 at
the deepest point of a semi-elliptical surface flaw.
[SI24] Singh et al. 2023 (the seed paper): "most specimens faced premature
fracture" uncoated; the coating gives "mechanical support to the specimens
against the Maxwell stresses".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .evaporation import EvaporationModel, Operating

__all__ = ["VACUUM_PERMITTIVITY", "MIN_FRACTURE_IONS", "maxwell_stress_gpa", "Stress",
           "oxide_stress", "flaw_failure_probability", "flaw_depth_nm", "FracturePlan",
           "Crack", "FractureOutcome", "draw_fracture"]

#: The vacuum permittivity (F/m), CODATA 2018.
VACUUM_PERMITTIVITY = 8.8541878128e-12
#: A fractured run keeps at least this many ions (or all it asked for): a specimen that
#: broke sooner would give no run worth analysing.
MIN_FRACTURE_IONS = 1000
#: Grid points per segment on which the hazard is integrated.
_GRID = 256


def maxwell_stress_gpa(field_v_nm: float) -> float:
    """``eps0 F^2 / 2`` (GPa) at the field ``F`` (V/nm): the field's pull on the apex.

    References
    ----------
    Wilkes et al., J. Phys. D 5 (1972) 2226; Moy et al., Ultramicroscopy 111 (2011) 397.

    Examples
    --------
    >>> print(f"{maxwell_stress_gpa(30.0):.2f} GPa")
    3.98 GPa
    """
    f = float(field_v_nm) * 1e9
    return 0.5 * VACUUM_PERMITTIVITY * f * f / 1e9


@dataclass(frozen=True)
class Stress:
    """The oxide's stress during one laser segment (GPa), and its parts."""

    maxwell_gpa: float
    load_share: float
    thermal_gpa: float

    @property
    def total_gpa(self) -> float:
        return self.load_share * self.maxwell_gpa + self.thermal_gpa

    def to_dict(self) -> dict:
        return {"maxwell_gpa": self.maxwell_gpa, "oxide_load_share": self.load_share,
                "thermal_gpa": self.thermal_gpa, "total_gpa": self.total_gpa}


def oxide_stress(model: EvaporationModel, op: Operating, *, coated: bool, radius_nm: float,
                 thickness_nm: float) -> Stress:
    """The oxide's stress at an operating point (module docstring, 1)."""
    load = 1.0
    if coated and thickness_nm > 0:
        r = max(float(radius_nm), 1e-9)
        area = ((r + thickness_nm) ** 2 - r ** 2) / r ** 2
        load = (1.0 + model.coating_field_ratio ** 2 * area) / (
            1.0 + model.fracture_coating_modulus_gpa / model.fracture_oxide_modulus_gpa * area)
    rise = max(op.peak_temperature_k - model.base_temperature_k, 0.0)
    thermal = (model.fracture_thermal_gradient_share * model.fracture_oxide_modulus_gpa
               * model.fracture_oxide_expansion_per_k * rise / op.heat_flow_factor)
    return Stress(maxwell_stress_gpa(op.oxide_field_v_nm), float(load), float(thermal))


def _strength_cap_gpa(model: EvaporationModel) -> float:
    """``K_IC / (Y sqrt(pi a_min))`` (GPa): the strength of the smallest flaw."""
    return (model.fracture_toughness_mpa_m05 * 1e6 / (
        model.fracture_flaw_shape_factor
        * math.sqrt(math.pi * model.fracture_flaw_min_depth_nm * 1e-9))) / 1e9


def flaw_failure_probability(model: EvaporationModel, stress_gpa: float) -> float:
    """Share of the flaws whose strength is below ``stress_gpa``: ``(sigma / sigma_max)^(2k)``."""
    s = max(float(stress_gpa), 0.0) / _strength_cap_gpa(model)
    return float(min(1.0, s ** (2.0 * model.fracture_flaw_size_exponent)))


def flaw_depth_nm(model: EvaporationModel, strength_gpa: float) -> float:
    """Depth (nm) of the edge flaw of this strength: ``(K_IC / (Y sigma))^2 / pi``."""
    k = model.fracture_toughness_mpa_m05 * 1e6
    s = float(strength_gpa) * 1e9
    return float((k / (model.fracture_flaw_shape_factor * s)) ** 2 / math.pi * 1e9)


@dataclass(frozen=True)
class FracturePlan:
    """What the draw needs of a run, fixed before it: one entry per laser segment.

    ``starts``: first detected ion of each segment; ``stress``: its
    :class:`Stress`; ``nm3_per_ion``: evaporated volume per detected ion
    (nm^3); ``radius_nm``, ``shank_angle_deg``: the needle at the start.
    """

    ions: int
    coated: bool
    radius_nm: float
    shank_angle_deg: float
    starts: tuple
    stress: tuple
    nm3_per_ion: tuple


@dataclass(frozen=True)
class Crack:
    """A flaw that failed: where, under what stress, how strong it was, and what followed."""

    ion_index: int
    depth_nm: float
    radius_nm: float
    stress_gpa: float
    strength_gpa: float
    flaw_depth_nm: float
    fatal: bool
    voltage_step: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FractureOutcome:
    """The draw: the cracks in order (the last one fatal when the specimen fractured)."""

    cracks: tuple
    hazard_end: float
    flaw_density_per_nm2: float
    strength_cap_gpa: float
    weibull_modulus: float
    arrest_share: float
    ramp_hazard: float = 0.0
    notes: tuple = field(default=())

    @property
    def fracture(self) -> Crack | None:
        return self.cracks[-1] if self.cracks and self.cracks[-1].fatal else None

    @property
    def crack_events(self) -> tuple:
        return tuple(c for c in self.cracks if not c.fatal)

    @property
    def fracture_probability(self) -> float:
        """Probability that a specimen of this plan fractures before its last ion."""
        return float(-math.expm1(-(1.0 - self.arrest_share) * self.hazard_end))

    @property
    def ramp_survival_probability(self) -> float:
        """Probability that a specimen survives the voltage ramp to the first segment's
        field on its starting cap (no crack running through); the draw is conditioned on
        it (module docstring, 3)."""
        return float(math.exp(-(1.0 - self.arrest_share) * self.ramp_hazard))

    @property
    def ramp_no_crack_probability(self) -> float:
        """Probability that no flaw of the starting cap fails during the voltage ramp."""
        return float(math.exp(-self.ramp_hazard))

    def voltage_steps(self) -> list:
        """``[(ion_index, factor), ...]``: the voltage steps of the crack events."""
        return [(c.ion_index, 1.0 + c.voltage_step) for c in self.crack_events]


def _path(plan: FracturePlan):
    """Ion index, depth below the start (nm) and apex radius (nm) on a grid, per segment."""
    a = math.sin(math.radians(plan.shank_angle_deg))
    c = a / (1.0 - a)
    k = math.pi * (1.0 - a)
    r0 = plan.radius_nm
    bounds = list(plan.starts) + [plan.ions]
    vol = 0.0
    out = []
    for s in range(len(plan.starts)):
        i = np.linspace(bounds[s], bounds[s + 1], _GRID + 1)
        v = vol + (i - bounds[s]) * plan.nm3_per_ion[s]
        vol = float(v[-1])
        if c > 0:
            r = np.cbrt(r0 ** 3 + 3.0 * c / k * v)
            z = (r - r0) / c
        else:
            r = np.full_like(v, r0)
            z = v / (k * r0 * r0)
        out.append((i, z, r))
    return out, a


def draw_fracture(model: EvaporationModel, plan: FracturePlan, seed: int) -> FractureOutcome:
    """Draw the cracks of a run (module docstring, 2-4); deterministic per ``seed``.

    Parameters
    ----------
    model : EvaporationModel
        Its ``fracture_*`` constants.
    plan : FracturePlan
    seed : int
        The run's seed: the generator is ``default_rng([seed, 2])``, not the run's stream.

    Returns
    -------
    FractureOutcome

    Examples
    --------
    >>> from liprobe.simulate.evaporation import DEFAULT_EVAPORATION, operating_point
    >>> m = DEFAULT_EVAPORATION
    >>> op = operating_point(m, 5.0, coated=False)
    >>> s = oxide_stress(m, op, coated=False, radius_nm=30.0, thickness_nm=0.0)
    >>> plan = FracturePlan(1_750_000, False, 30.0, 10.0, (0,), (s,), (0.011,))
    >>> out = draw_fracture(m, plan, seed=4)
    >>> out == draw_fracture(m, plan, seed=4)
    True
    """
    density = model.fracture_flaw_density_per_nm2 * (
        1.0 - model.fracture_coating_flaw_closure if plan.coated else 1.0)
    cap = _strength_cap_gpa(model)
    m_w = 2.0 * model.fracture_flaw_size_exponent
    arrest = model.fracture_crack_arrest_share
    path, sin_a = _path(plan)
    # the hazard on the grid: pieces of (ion, H, p_lo, p_hi, stress); a stress rise at a
    # segment start is a jump of H at one ion
    ions, hz, plo, phi, sig = [], [], [], [], []
    h = 0.0
    # the starting cap's flaws were screened by the voltage ramp (the run is conditioned
    # on surviving it); later, the cap's flaws were screened at the previous segment's level
    p_prev = flaw_failure_probability(model, plan.stress[0].total_gpa)
    ramp = density * 2.0 * math.pi * plan.radius_nm ** 2 * (1.0 - sin_a) * p_prev
    for s, (i, z, r) in enumerate(path):
        st = plan.stress[s].total_gpa
        p = flaw_failure_probability(model, st)
        if s > 0 and p > p_prev:                     # the cap's flaws feel the rise at once
            area = 2.0 * math.pi * r[0] ** 2 * (1.0 - sin_a)
            ions.append(i[0])
            hz.append(h)
            h += density * area * (p - p_prev)
            plo.append(p_prev)
            phi.append(p)
            sig.append(st)
        p_prev = p
        dh = density * 2.0 * math.pi * 0.5 * (r[1:] + r[:-1]) * np.diff(z) * p
        hs = h + np.concatenate([[0.0], np.cumsum(dh)])
        for k in range(len(i) - 1):
            ions.append(i[k])
            hz.append(hs[k])
            plo.append(0.0)
            phi.append(p)
            sig.append(st)
        h = float(hs[-1])
    ions.append(float(plan.ions))
    hz.append(h)
    ion_a, h_a = np.asarray(ions), np.asarray(hz)
    rng = np.random.default_rng([int(seed), 2])
    cracks = []
    level = 0.0
    while True:
        level += float(rng.standard_exponential())
        if level >= h:
            break
        u_fatal, u_strength = rng.random(2)
        j = int(np.searchsorted(h_a, level, side="right")) - 1
        j = min(max(j, 0), len(ion_a) - 2)
        dh = h_a[j + 1] - h_a[j]
        t = (level - h_a[j]) / dh if dh > 0 else 0.0
        ion = int(math.floor(ion_a[j] + t * (ion_a[j + 1] - ion_a[j])))
        ion = min(max(ion, 1), plan.ions - 1)
        depth, radius = _where(path, ion)
        p_f = plo[j] + u_strength * (phi[j] - plo[j])
        strength = cap * p_f ** (1.0 / m_w)
        fatal = bool(u_fatal >= arrest)
        if fatal:
            ion = min(max(ion, MIN_FRACTURE_IONS), plan.ions)
            if ion >= plan.ions:
                break
            depth, radius = _where(path, ion)
        cracks.append(Crack(ion, depth, radius, float(sig[j]), float(strength),
                            flaw_depth_nm(model, strength), fatal,
                            0.0 if fatal else model.fracture_crack_voltage_step))
        if fatal:
            break
    return FractureOutcome(tuple(cracks), float(h), float(density), float(cap), m_w, arrest,
                           ramp_hazard=float(ramp))


def _where(path, ion: int) -> tuple[float, float]:
    """Depth and radius (nm) of the path at an ion index."""
    for i, z, r in path:
        if ion <= i[-1]:
            return float(np.interp(ion, i, z)), float(np.interp(ion, i, r))
    i, z, r = path[-1]
    return float(z[-1]), float(r[-1])
