"""Laser pulse energy: the field it leaves at the tip, and what that field does to the ions.

Physics as data. :class:`LaserResponse` holds one table per quantity,
against laser pulse energy (pJ), linearly interpolated between the table's
energies and held constant beyond its ends. :func:`conditions_at` turns a
:class:`~liprobe.simulate.parameters.SpeciesModel` given at the reference
energy (5 pJ: the ion list and O2+/O+ = 2.61 of Singh et al.'s Supplementary
Figure 1) into the model at any energy, for one phase, together with the
field factor and the thermal tail.

Sources (full references in ``shared/reference/field-evaporation.md``,
``paper-numbers.md``):

- [SI24] Singh et al., arXiv:2309.07842 (2023): O2+/O+ ~ 2.61 at 5 pJ, coated
  and uncoated; lower at low laser energy and above 4 at high laser energy in
  coated NMC811 (Figure 5); Mn2+/Mn+ *rises* with laser energy in NMC811
  (Supplementary Figure 3), in the Mn-rich particle and in LiMn2O4 (Figure
  7b); O2+/O+ shows no clear trend in the Mn-rich particle and LiMn2O4; O
  close to 0.5 "especially for O2+/O+ below 4"; Ni/(Ni+Co+Mn) ~ 0.78 with a
  slight deviation at high laser energy; LiMn2O4's Li and Mn fractions
  deviate significantly from 1/3 and 2/3 (Figure 7c), which the authors put
  down to "the evaporation behaviour of Mn-ions in oxides".
- [FE3] ``field-evaporation.md`` s3 ([S14] Schreiber et al. 2014, [D13]
  Devaraj et al. 2013, [K22] Kim et al. 2022): at constant detection rate a
  higher laser energy heats the apex more, so the standing voltage and the
  field drop (non-linearly [S14]); for metals (the Cr coating) the 2+/1+
  ratios fall (post-ionisation, Kingham 1982); more and larger molecular
  ions; longer thermal tails; r = O2+/O+ rises as the field falls (s2).
- [FE5] ``field-evaporation.md`` s5 ([D13], [KA15] Karahka et al. 2015, [G16]
  Gault et al. 2016): O is lost as undetected neutral O2, more so at higher
  laser energy / lower field; neutrals can form when metastable molecular
  ions dissociate in flight [G16] -- the declared route by which a share of
  Mn (LiMn2O4-type phases) and, slightly, of Ni at high laser energy leaves
  undetected here.

Every number in the tables below is an *assumption* shaped on those
statements (the paper gives trends and a few values, not curves): the 5 pJ
column reproduces Simulator I's defaults exactly, and the tables were set so
that liprobe's own analyses of simulated runs show the paper's contrasts
(``tests/simulate/test_laser.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .materials import Phase
from .parameters import PeakShape, SpeciesModel

__all__ = ["LaserResponse", "DEFAULT_LASER", "Conditions", "conditions_at", "phase_family",
           "REFERENCE_PJ"]

#: Laser energy (pJ) at which a SpeciesModel's shares are given (Simulator I's defaults).
REFERENCE_PJ = 5.0


def _interp(energies, values, e: float) -> float:
    return float(np.interp(e, energies, values))


@dataclass(frozen=True)
class LaserResponse:
    """Tables against laser pulse energy (see the module docstring for the sources).

    Attributes
    ----------
    energies_pj : tuple of float
        The energies of every table's columns.
    field_factor : tuple of float
        Field at the tip over the phase's evaporation field (the standing
        voltage is ``k F R``): 1 at 5 pJ, lower at higher energy [FE3].
        Steps of 4-6 % between 5, 10, 15 and 20 pJ: a laser schedule shows as
        a voltage jump.
    charge_ratio : tuple of (str, tuple of float)
        Per element, ``M++/M+`` relative to its value at 5 pJ. Ni, Co and the
        Cr coating fall with laser energy (post-ionisation, a metal-like
        trend [FE3]); Mn rises (the oxide anomaly of [SI24]).
    oxide_factor : tuple of float
        Factor on the share of each metal's atoms leaving in oxide molecular
        ions (capped at ``oxide_share_max``): more molecular ions at higher
        laser energy [FE3].
    oxide_share_max : float
    o2_to_o : tuple of (str, tuple of float)
        ``r = N(O2+)/N(O+)`` per phase family (:func:`phase_family`):
        ``layered`` (Ni/Co oxides: 2.61 at 5 pJ, above 4 from 40 pJ [SI24]),
        ``spinel`` (Li-Mn-O: no trend [SI24]). The 5 pJ ``layered`` value is
        scaled to the base SpeciesModel's ``o2_to_o_ratio``.
    neutral_o : tuple of float
        Fraction of a phase's O atoms leaving as neutral O2 [FE5]; at 5 pJ the
        base model's value.
    neutral_metal : tuple of (str, str, tuple of float)
        ``(family, element, fractions)``: fraction of the element's atoms
        leaving as a neutral monoxide (undetected [FE5], [G16]). Spinel Mn:
        LiMn2O4's Li and Mn fractions off 1/3 and 2/3 [SI24]; layered Ni:
        the slight Ni/(Ni+Co+Mn) deviation at high laser energy [SI24].
    tail_tau_factor : tuple of float
        Factor on the thermal tail's time constant: longer at higher energy
        (more heat to dissipate) [FE3]; the coated/uncoated contrast is the
        base peak shape's [SI24 Figure 4a].
    o2_scatter : float
        Run-to-run relative scatter (one standard deviation, log-normal) of
        O2+/O+ from specimen shape and local detection rate, drawn from the
        run's seed (*assumption*: 2 %).
    """

    energies_pj: tuple = (1.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0)
    field_factor: tuple = (1.04, 1.0, 0.94, 0.89, 0.85, 0.79, 0.75, 0.72)
    charge_ratio: tuple = (
        ("Ni", (1.25, 1.0, 0.76, 0.60, 0.48, 0.33, 0.24, 0.18)),
        ("Co", (1.25, 1.0, 0.78, 0.62, 0.50, 0.35, 0.26, 0.20)),
        ("Mn", (0.82, 1.0, 1.20, 1.38, 1.55, 1.85, 2.10, 2.30)),
        ("Cr", (1.20, 1.0, 0.80, 0.66, 0.55, 0.40, 0.31, 0.25)),
    )
    oxide_factor: tuple = (0.95, 1.0, 1.06, 1.12, 1.18, 1.30, 1.42, 1.55)
    oxide_share_max: float = 0.8
    o2_to_o: tuple = (
        ("layered", (2.30, 2.61, 2.80, 2.98, 3.18, 3.62, 4.45, 4.85)),
        ("spinel", (3.10, 3.10, 3.10, 3.10, 3.10, 3.10, 3.10, 3.10)),
    )
    neutral_o: tuple = (0.015, 0.02, 0.022, 0.026, 0.03, 0.045, 0.09, 0.13)
    neutral_metal: tuple = (
        ("spinel", "Mn", (0.22, 0.22, 0.22, 0.22, 0.22, 0.22, 0.22, 0.22)),
        ("layered", "Ni", (0.0, 0.0, 0.0, 0.0, 0.004, 0.01, 0.02, 0.03)),
    )
    tail_tau_factor: tuple = (0.9, 1.0, 1.15, 1.3, 1.45, 1.75, 2.05, 2.35)
    o2_scatter: float = 0.02

    def __post_init__(self):
        e = np.asarray(self.energies_pj, float)
        if e.ndim != 1 or len(e) < 1 or np.any(np.diff(e) <= 0) or e[0] <= 0:
            raise ValueError("energies_pj must be increasing positive energies")
        n = len(e)
        tables = [("field_factor", self.field_factor), ("oxide_factor", self.oxide_factor),
                  ("neutral_o", self.neutral_o), ("tail_tau_factor", self.tail_tau_factor)]
        tables += [(f"charge_ratio[{el}]", t) for el, t in self.charge_ratio]
        tables += [(f"o2_to_o[{f}]", t) for f, t in self.o2_to_o]
        tables += [(f"neutral_metal[{f}, {el}]", t) for f, el, t in self.neutral_metal]
        for name, t in tables:
            if len(t) != n:
                raise ValueError(f"{name} has {len(t)} values for {n} energies")
            if any(not (math.isfinite(v) and v >= 0) for v in t):
                raise ValueError(f"{name} must hold finite non-negative numbers")
        for name in ("field_factor", "tail_tau_factor"):
            if any(v <= 0 for v in getattr(self, name)):
                raise ValueError(f"{name} must be positive")
        if any(v >= 1 for v in self.neutral_o) or any(
                v >= 1 for _, _, t in self.neutral_metal for v in t):
            raise ValueError("neutral fractions must be below 1")
        if not 0 < self.oxide_share_max < 1:
            raise ValueError("oxide_share_max must be in (0, 1)")
        if not (math.isfinite(self.o2_scatter) and self.o2_scatter >= 0):
            raise ValueError("o2_scatter must not be negative")

    def at(self, table, e: float) -> float:
        """A table's value at ``e`` pJ."""
        return _interp(self.energies_pj, table, e)

    def field(self, e: float) -> float:
        """Field factor at ``e`` pJ (1 at 5 pJ)."""
        return self.at(self.field_factor, e) / self.at(self.field_factor, REFERENCE_PJ)

    def to_dict(self) -> dict:
        return {
            "energies_pj": list(self.energies_pj),
            "field_factor": list(self.field_factor),
            "charge_ratio_relative_to_5pj": {el: list(t) for el, t in self.charge_ratio},
            "oxide_factor": list(self.oxide_factor), "oxide_share_max": self.oxide_share_max,
            "o2_to_o": {f: list(t) for f, t in self.o2_to_o},
            "neutral_o": list(self.neutral_o),
            "neutral_metal": [{"family": f, "element": el, "fractions": list(t)}
                              for f, el, t in self.neutral_metal],
            "tail_tau_factor": list(self.tail_tau_factor),
            "o2_scatter": self.o2_scatter,
            "interpolation": "linear in pJ between the energies, constant beyond the ends",
        }


DEFAULT_LASER = LaserResponse()


def phase_family(phase: Phase) -> str:
    """``layered`` for a phase with Ni or Co (NMC), ``spinel`` for another Li-Mn oxide,
    ``other`` otherwise (no O2+/O+ table: the base ratio is kept)."""
    els = {el for el, _ in phase.amounts}
    if "O" not in els:
        return "other"
    if els & {"Ni", "Co"}:
        return "layered"
    if "Mn" in els:
        return "spinel"
    return "other"


@dataclass(frozen=True)
class Conditions:
    """The evaporation conditions of one phase at one laser energy."""

    laser_pj: float
    family: str
    field_factor: float
    species: SpeciesModel

    def to_dict(self) -> dict:
        return {"laser_pj": self.laser_pj, "family": self.family,
                "field_factor": self.field_factor,
                "o2_to_o_ratio": self.species.o2_to_o_ratio,
                "neutral_o_fraction": self.species.neutral_o_fraction,
                "neutral_losses": dict(self.species.neutral_losses),
                "charge_ratios": _charge_ratios(self.species)}


def _charge_ratios(model: SpeciesModel) -> dict:
    out = {}
    for el, part in model.partitions:
        d = dict(part)
        one, two = d.get(f"{el}+", 0.0), d.get(f"{el}++", 0.0)
        if one > 0 and two > 0:
            out[f"{el}++/{el}+"] = two / one
    return out


def _scaled_partition(part, element: str, ratio_factor: float, oxide_factor: float,
                      oxide_max: float):
    """A metal's shares at another energy: 2+/1+ and oxide share scaled, sum kept at 1."""
    from ..chemistry import parse_ion

    d = dict(part)
    ox = {n: f for n, f in d.items() if parse_ion(n).count("O")}
    atomic = {n: f for n, f in d.items() if n not in ox}
    ox_total = sum(ox.values())
    ox_new = min(ox_total * oxide_factor, oxide_max) if ox_total > 0 else 0.0
    one, two = f"{element}+", f"{element}++"
    rest = 1.0 - ox_new
    out = {}
    if one in atomic and two in atomic and atomic[one] > 0:
        ratio = atomic[two] / atomic[one] * ratio_factor
        others = {n: f for n, f in atomic.items() if n not in (one, two)}
        a_tot = sum(atomic.values())
        other_share = sum(others.values()) / a_tot if a_tot > 0 else 0.0
        main = rest * (1.0 - other_share)
        out[two] = main * ratio / (1.0 + ratio)
        out[one] = main / (1.0 + ratio)
        for n, f in others.items():
            out[n] = rest * f / a_tot
    else:
        a_tot = sum(atomic.values())
        for n, f in atomic.items():
            out[n] = rest * f / a_tot if a_tot > 0 else 0.0
        if a_tot == 0 and ox_total > 0:
            ox_new = 1.0
    for n, f in ox.items():
        out[n] = ox_new * f / ox_total
    total = sum(out.values())
    return tuple((n, out[n] / total) for n, _ in part if n in out)


def conditions_at(base: SpeciesModel, phase: Phase, laser_pj: float,
                  response: LaserResponse | None = DEFAULT_LASER,
                  o2_scale: float = 1.0) -> Conditions:
    """The species model of ``phase`` at ``laser_pj`` pJ.

    Parameters
    ----------
    base : SpeciesModel
        Shares at :data:`REFERENCE_PJ` (5 pJ).
    phase : Phase
    laser_pj : float
    response : LaserResponse or None
        None: the base shares at every energy (no laser dependence).
    o2_scale : float
        The run's O2+/O+ scatter factor (1: none).
    """
    family = phase_family(phase)
    if response is None:
        return Conditions(laser_pj, family, 1.0, base)
    e, e0 = float(laser_pj), REFERENCE_PJ
    ratio_tables = dict(response.charge_ratio)
    ox = response.at(response.oxide_factor, e) / response.at(response.oxide_factor, e0)
    parts = []
    for el, part in base.partitions:
        t = ratio_tables.get(el)
        rf = response.at(t, e) / response.at(t, e0) if t is not None else 1.0
        parts.append((el, _scaled_partition(part, el, rf, ox, response.oxide_share_max)))
    o2 = dict(response.o2_to_o)
    r = base.o2_to_o_ratio
    if family in o2:
        layered0 = response.at(o2["layered"], e0) if "layered" in o2 else \
            response.at(o2[family], e0)
        r = base.o2_to_o_ratio * response.at(o2[family], e) / layered0
    r *= o2_scale
    n0 = response.at(response.neutral_o, e0)
    f_n = base.neutral_o_fraction * response.at(response.neutral_o, e) / n0 if n0 > 0 else \
        base.neutral_o_fraction
    losses = dict(base.neutral_losses)
    for fam, el, t in response.neutral_metal:
        if fam == family:
            losses[el] = response.at(t, e)
    model = replace(base, partitions=tuple(parts), o2_to_o_ratio=r,
                    neutral_o_fraction=min(f_n, 0.95),
                    neutral_losses=tuple((el, v) for el, v in losses.items() if v > 0),
                    laser_pj=e)
    return Conditions(e, family, response.field(e), model)


def peak_at(shape: PeakShape, laser_pj: float,
            response: LaserResponse | None = DEFAULT_LASER) -> PeakShape:
    """The peak shape at ``laser_pj``: the thermal tail's time constant scaled [FE3]."""
    if response is None:
        return shape
    f = response.at(response.tail_tau_factor, laser_pj) / response.at(
        response.tail_tau_factor, REFERENCE_PJ)
    return replace(shape, tail_tau_ns=shape.tail_tau_ns * f)
