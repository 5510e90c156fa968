"""Laser pulse, apex temperature, local field, and the ions that field and temperature make.

The simulator's evaporation physics as a model, not as tables against laser
energy: every quantity that changes with the laser pulse energy changes
because the peak temperature and the field change, through the mechanisms
below. The constants sit in :class:`EvaporationModel`, each with its unit,
source and status (``sourced``, ``assumed``, or ``fitted`` to the seed
paper's published numbers); :func:`parameter_table` lists them and
``liprobe simulate --list-parameters`` prints the table.

Mechanisms
----------
1. **Apex temperature** (per pulse). The laser pulse (ps) is short next to
   heat diffusion (ns), so the peak rise is the absorbed energy over the
   heated volume's heat capacity, ``dT = h E a(F) s``, ``h`` in K per pJ,
   ``E`` the pulse energy, ``a(F) = exp((F - F_a0) / F_a)`` the
   field-dependent absorption of a dielectric apex ([S14] found a non-linear
   field against laser energy and put it down to field-dependent
   absorption; the exponential form is an assumption), ``s`` the shank
   term: a share ``beta`` of the heat comes from light absorbed on the
   shank, and a Cr-covered shank absorbs ``a_c`` times as much but loses
   ``g`` times faster (``s = 1 - beta + beta a_c / g``). ``g``, the
   heat-flow factor, follows from the thermal conductivities and the
   shell's share of the shank's cross-section:
   ``g = 1 + (k_Cr / k_ox) ((R + t)^2 - R^2) / R^2``. ``T = T_base + dT``.
2. **Standing field** (per pulse). The voltage is raised until each pulse
   evaporates the requested detection rate. With an Arrhenius rate and a
   barrier that falls linearly with the field, ``Q(F) = Q0 (1 - F / F0)``
   (Kellogg 1984; Tsong 1978), the rate condition
   ``nu tau exp(-Q(F) / kT) = Phi`` gives
   ``F = F0 (1 - k T Lambda / Q0)`` with ``Lambda = ln(nu tau / Phi)`` and
   ``Phi = detection rate / (efficiency * sites)`` the evaporation
   probability of one surface site per pulse. ``F`` and ``T`` are solved
   together (``a(F)`` couples them).
3. **Local fields.** Each phase evaporates at its own ``F0`` at the same
   temperature: the oxide at its zero-barrier field, the Cr shell on the
   shank flanks at ``F0_Cr = ratio * F0_ox`` (the declared Cr-to-oxide field
   ratio), so ``F_Cr / F_ox`` is that ratio at every temperature; a second
   phase (a grain inside the specimen) at its cations' mean elemental field
   over the main phase's (:func:`phase_field_ratio`). Over the apex the
   field is a map ``F (1 + spread m(x, y))``: ``m`` has zero mean and unit
   standard deviation over the cap and is the sum of a pattern of low-index
   poles and the zone lines between them (lower field on the flat facets),
   turned by an angle drawn per run (the grain's orientation), and a
   gradient across the cap (lower field on the laser-facing side);
   ``spread`` 0 switches the map off. The simulator samples the map in
   :data:`FIELD_BINS` bins, each at the temperature its field needs for the
   same evaporation rate (:func:`bin_temperature`: a lower field runs
   hotter, about 33 K per V/nm with the defaults). **Local magnification**
   follows from the same field: a launch point moves up the field's lateral
   gradient, ``D grad(F / F_mean)`` (``pole_deflection``), so that the
   poles and zone lines show on the detector as depleted spots and lines
   with denser rims [V00]; at a spherical grain's interface,
   points within ``w`` of it move along the lateral part of its normal, away
   from (a high-field grain) or toward (a low-field grain) its axis
   (``interface_deflection``; a box-shaped phase gets no shift).
4. **Charge states.** Metals (the Cr of the coating, a metal phase):
   post-ionisation, the Kingham curves of :mod:`liprobe.kingham` at the
   local field [K82]. Oxide cations: post-ionisation at ``c F`` (``c``, the
   oxide-cation field factor: an ion leaving an oxide site is not a metal
   atom leaving a metal) plus a direct emission as 2+ that grows with
   temperature, as [S14] found for magnetite:
   ``p_d = 1 - exp(-exp(L_d - (E_d + b (I2 - I2_Mn)) / kT))``, element by
   element through its second ionisation energy ``I2``.
5. **Molecular ions.** The base species model gives the share of each
   metal's atoms leaving in each molecular ion. In flight, a molecular ion
   breaks up with the field-driven probability
   ``P(F) = 1 - exp(-exp((F - F_b) / w))`` [G16]: the fragment with the
   lower ionisation energy (the metal-bearing one) keeps the charge, so
   ``MO_y+ -> MO_(y-1)+ + O`` and ``M2O+ -> M+ + MO``; the neutral
   fragments are not detected (an O and a metal deficiency). Oxygen not
   carried by metal ions leaves as O2+; a share ``P(F)`` of it is
   post-ionised to O2++, which splits into two O+ (Coulomb explosion),
   so ``r = N(O2+) / N(O+) = (1 - P) / (2 P)``: r falls as the field rises
   and does not depend on temperature at a given field
   (``field-evaporation.md`` s2, [S14]).
6. **Neutral O2.** Surface O also desorbs thermally as neutral O2 [KA15],
   in competition with field evaporation: the O2 share of the O is
   ``x / (1 + x)``, ``x = exp(L_n - E_n / kT)``.
7. **Thermal tails.** The apex itself cools quickly through the oxide
   (the prompt peak); the heat that spread into the shank cools slowly and
   keeps evaporating ions late (the tail). The tail's time constant is the
   shank's cooling time, ``tau = tau_0 (T / T_ref) / g`` (phonon-limited
   conductivity falling roughly as ``1/T``, an assumption at these
   temperatures, which may sit below the oxide's Debye temperature; a
   hotter specimen cools more slowly; the shell's heat flow ``g``, from the
   starting apex radius, drains the shank), and the tail's weight against
   the prompt peak scales the same way: ``w = w_0 tau / tau_0``,
   ``p_tail = w / (1 + w)``, ``w_0`` set by the tail share ``p_0`` of a
   bare apex at ``T_ref``.
8. **Fracture** (:mod:`liprobe.simulate.fracture`). The Maxwell stress
   ``eps0 F^2 / 2`` at the oxide's field, shared with a Cr shell at equal
   strain (the shell's rim pulled too), plus a thermal stress from the laser,
   against the strengths
   of a drawn population of surface flaws (``fracture_*`` constants).

Sources (full references in ``shared/reference/field-evaporation.md``):
[K82] Kingham 1982; [S14] Schreiber et al. 2014; [G16] Gault et al. 2016;
[KA15] Karahka et al. 2015; [SI24] Singh et al. 2023 (the seed paper).
[V00] Vurpillot, Bostel and Blavette, Appl. Phys. Lett. 76 (2000) 3127:
trajectory overlaps and local magnification. [M91] Miller and Hetherington,
Surf. Sci. 246 (1991) 442: local magnification at precipitates of another
evaporation field. [BOOK-G] Gault et al., *Atom Probe Microscopy*, Springer
2012.
Kellogg, J. Appl. Phys. 52 (1981) 5320 / Phys. Rev. B 29 (1984) 4304 and
Tsong, Surf. Sci. 70 (1978) 211: the linear field dependence of the
evaporation barrier. Thermal conductivity of Cr: CRC Handbook (bulk,
93.9 W/m/K at 300 K).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np
from scipy.optimize import brentq

__all__ = ["EvaporationModel", "DEFAULT_EVAPORATION", "Operating", "operating_point",
           "heat_flow_factor", "parameter_table", "with_overrides", "breakup_probability",
           "o2_to_o_ratio", "neutral_o2_fraction", "direct_double_fraction",
           "charge_fractions", "FIELD_BINS", "FIELD_GRID", "FieldMap", "field_map",
           "pole_positions",
           "BOLTZMANN_EV_K", "species_at", "bin_temperature", "MAX_TEMPERATURE_K",
           "FIXED_FIELD_RANGE_V_NM", "phase_field_ratio", "prepare_kingham"]

#: Boltzmann's constant (eV/K), CODATA 2018.
BOLTZMANN_EV_K = 8.617333262e-5

#: Bins of the field map the simulator samples (odd: the middle bin holds the mean).
FIELD_BINS = 9


def _p(default, unit, status, source):
    return field(default=default, metadata={"unit": unit, "status": status, "source": source})


@dataclass(frozen=True)
class EvaporationModel:
    """The constants of the evaporation physics (module docstring, mechanisms 1-8).

    Every field carries its unit, status and source in its metadata
    (:func:`parameter_table`). ``fitted`` means chosen so that liprobe's
    analyses of simulated runs land on a published number of the seed
    paper, named in the source; no observable is set directly.
    """

    base_temperature_k: float = _p(
        60.0, "K", "sourced", "[SI24] acquisition: base temperature 60 K")
    heating_k_per_pj: float = _p(
        48.0, "K/pJ", "fitted",
        "peak temperature rise per pJ at the reference absorption; fitted with "
        "absorption_field_scale_v_nm so that O2+/O+ goes from ~2.6 at 5 pJ to above 4 at "
        "40-50 pJ in coated NMC811 [SI24 Fig. 5]")
    absorption_reference_field_v_nm: float = _p(
        26.0, "V/nm", "assumed", "field at which the absorption factor a(F) is 1")
    absorption_field_scale_v_nm: float = _p(
        2.5, "V/nm", "fitted",
        "a(F) = exp((F - F_a0) / F_a): field-dependent absorption [S14]; fitted with "
        "heating_k_per_pj (see there)")
    shank_heating_share: float = _p(
        0.5, "1", "assumed", "share of the apex's heating that comes from light absorbed "
        "on the shank")
    coating_shank_absorption: float = _p(
        1.0 + 10.0 * 325.0 / 900.0, "1", "fitted",
        "absorption of the Cr-covered shank relative to the bare oxide; fitted so that "
        "coated and uncoated apices reach the same peak temperature (equal O2+/O+ at 5 pJ, "
        "~2.61 for both [SI24]): set equal to the heat-flow factor g of the default 5 nm "
        "shell on a 30 nm apex, so the balance holds for that geometry and those "
        "conductivities only")
    conductivity_oxide_w_mk: float = _p(
        3.0, "W/m/K", "assumed", "thermal conductivity of the layered oxide (LiCoO2-type "
        "oxides measure a few W/m/K)")
    conductivity_coating_w_mk: float = _p(
        30.0, "W/m/K", "assumed", "thermal conductivity of the nm-thin Cr shell (bulk Cr "
        "93.9 W/m/K, CRC Handbook; thin films conduct several times less)")
    barrier_ev: float = _p(
        2.5, "eV", "assumed", "Q0, the evaporation barrier at zero field (linear barrier "
        "Q(F) = Q0 (1 - F/F0), Kellogg 1984; a few eV for oxides and metals)")
    oxide_zero_barrier_field_v_nm: float = _p(
        35.0, "V/nm", "assumed", "F0 of the oxides (NMC811, LiMn2O4), taken equal to "
        "liprobe.instruments' evaporation field of NMC811, a calibration default "
        "(reconstruction.md s7: no reliable a-priori field for oxides); a grain of another "
        "phase scales by its cations' elemental fields (phase_field_ratio)")
    coating_field_ratio: float = _p(
        29.0 / 35.0, "1", "assumed", "F0_Cr / F0_oxide: Cr's tabulated evaporation field "
        "(29 V/nm, Tsong's table via liprobe.instruments) over the oxide's assumed 35 V/nm")
    attempt_frequency_hz: float = _p(
        1e13, "1/s", "assumed", "nu, the attempt frequency of the Arrhenius rate (a phonon "
        "frequency)")
    evaporation_time_ns: float = _p(
        1.0, "ns", "assumed", "tau, the time per pulse the apex stays near its peak "
        "temperature")
    surface_sites: float = _p(
        3.0e4, "1", "assumed", "atoms on the evaporating cap (a cap of ~30 nm radius)")
    field_spread: float = _p(
        0.02, "1", "assumed", "relative standard deviation of the local field over the "
        "apex (poles, zone lines, laser side); 0 switches the field map off")
    field_map_laser_share: float = _p(
        0.5, "1", "assumed", "share of the field map's variance from the gradient toward "
        "the laser side (the rest from the pole pattern)")
    pole_deflection: float = _p(
        0.01, "1", "assumed",
        "D of the local magnification at poles and zone lines: a launch point moves by "
        "D grad(F / F_mean) (lengths in cap radii), up the field's gradient, "
        "away from the flat low-field facets [V00]; chosen so that the central pole's hit "
        "density falls by about 40 % (low-index poles show as depleted spots on detector "
        "maps, [BOOK-G] ch. 7); not fitted to the seed")
    interface_deflection: float = _p(
        2.0, "1", "assumed",
        "kappa of the local magnification at a spherical grain's interface: launch "
        "points within interface_deflection_width_nm of its surface move along the "
        "lateral part of its normal by kappa (F_grain / F_matrix - 1) w exp(-d^2 / 2 w^2): "
        "a low-field grain (a depression) focuses trajectories inward, a high-field one "
        "(a bump) spreads them out [V00; M91]; not fitted to the seed; boxes get none")
    interface_deflection_width_nm: float = _p(
        1.5, "nm", "assumed", "w of interface_deflection: the width of the zone of "
        "trajectory overlaps at an interface (about a nm, [V00])")
    oxide_cation_field_factor: float = _p(
        0.63, "1", "fitted", "c: oxide cations post-ionise as metal atoms would at c F; "
        "fitted so that Mn+ and Mn++ both show in NMC811 [SI24 Suppl. Fig. 1 and 3]")
    direct_log_prefactor: float = _p(
        3.3, "1", "fitted", "L_d of the direct 2+ emission; fitted with direct_barrier_ev "
        "to Mn++/Mn+ rising with laser energy [SI24 Suppl. Fig. 3, Fig. 7b]")
    direct_barrier_ev: float = _p(
        0.10, "eV", "fitted", "E_d of Mn's direct 2+ emission (see direct_log_prefactor)")
    direct_barrier_per_i2: float = _p(
        0.02, "eV/eV", "assumed", "b: the direct-emission barrier grows with the element's "
        "second ionisation energy above Mn's (NIST ASD, via liprobe.kingham)")
    breakup_field_v_nm: float = _p(
        39.96, "V/nm", "fitted", "F_b of the molecular break-up P(F); fitted so that "
        "O2+/O+ is 2.61 at 5 pJ [SI24]")
    breakup_width_v_nm: float = _p(
        8.0, "V/nm", "assumed", "w of the molecular break-up P(F) = 1 - exp(-exp((F - F_b) "
        "/ w))")
    desorption_log_prefactor: float = _p(
        3.4, "1", "fitted", "L_n of the thermal O2 desorption; fitted with "
        "desorption_barrier_ev so that O/(Li+O+Ni+Co+Mn) stays close to 0.5 while "
        "O2+/O+ < 4 and falls below at higher values [SI24]")
    desorption_barrier_ev: float = _p(
        0.23, "eV", "fitted", "E_n of the thermal O2 desorption (see "
        "desorption_log_prefactor)")
    cooling_time_ns: float = _p(
        6.0, "ns", "fitted", "tau_0: the bare oxide apex's cooling time at "
        "cooling_reference_k; fitted to the long tails of uncoated NMC811 [SI24 Fig. 4a]")
    cooling_reference_k: float = _p(
        300.0, "K", "assumed", "T_ref of the cooling time (tau grows as T: conductivity "
        "~ 1/T)")
    tail_fraction: float = _p(
        0.35, "1", "fitted", "p_0: share of the ions in the thermal tail of a bare apex at "
        "cooling_reference_k; fitted to the long tails of uncoated NMC811 at 5 pJ "
        "[SI24 Fig. 4a]")
    heating_scatter: float = _p(
        0.02, "1", "assumed", "run-to-run relative scatter (one standard deviation, "
        "log-normal) of the absorbed energy: specimen shape, laser alignment; drawn from "
        "the run's seed")
    # 8: fracture (liprobe.simulate.fracture)
    fracture_oxide_modulus_gpa: float = _p(
        180.0, "GPa", "assumed", "Young's modulus of the layered oxide (nanoindentation of "
        "NMC particles measures of order 150-200 GPa); sets the shell's share of the load "
        "and the thermal stress")
    fracture_coating_modulus_gpa: float = _p(
        279.0, "GPa", "sourced", "Young's modulus of Cr (CRC Handbook, bulk, 279 GPa); at equal "
        "strain the oxide's stress is sigma_M (1 + r_c^2 A) / (1 + (E_Cr / E_ox) A), A = "
        "((R + t)^2 - R^2) / R^2, the shell's rim pulled with r_c^2 sigma_M "
        "(r_c = coating_field_ratio) [SI24]: 'mechanical support ... against the Maxwell "
        "stresses'")
    fracture_oxide_expansion_per_k: float = _p(
        1.0e-5, "1/K", "assumed", "thermal expansion of the layered oxide (LiCoO2-type "
        "oxides expand by about 1e-5 per K)")
    fracture_thermal_gradient_share: float = _p(
        0.5, "1", "assumed", "share of the apex's temperature rise that is a difference "
        "across it (laser-facing side hotter): thermal stress s E alpha (T - T_base) / g, "
        "evened out by the shell's heat flow g")
    fracture_toughness_mpa_m05: float = _p(
        0.5, "MPa m^0.5", "assumed", "K_IC of the oxide; no NMC811 value found: taken "
        "between LiMn2O4's 0.24 (micro-pillar splitting) and 0.81 (crack opening "
        "displacement) MPa m^0.5 [Mughal et al., Materials 10 (2017) 403]")
    fracture_flaw_shape_factor: float = _p(
        1.12, "1", "assumed", "Y of sigma_f = K_IC / (Y sqrt(pi a)): 1.12, a straight edge "
        "crack under uniform tension (Tada, Paris & Irwin, The Stress Analysis of Cracks "
        "Handbook), taken for the shank's flaws; a semi-elliptical surface flaw has Y ~ 0.7 "
        "(same handbook). Only n (Y sqrt(pi a_min) / K_IC)^(2k) is constrained by the fit "
        "(fracture_flaw_density_per_nm2)")
    fracture_flaw_min_depth_nm: float = _p(
        1.0, "nm", "assumed", "smallest surface flaw (an atomic-scale notch of the "
        "FIB-damaged surface): caps a flaw's strength at K_IC / (Y sqrt(pi a_min)), ~8 GPa, "
        "below an oxide's ideal strength (~E/10)")
    fracture_flaw_size_exponent: float = _p(
        2.0, "1", "assumed", "k of the flaw depths' power law P(a > x) = (a_min / x)^k: a "
        "Weibull strength law of modulus 2k = 4 (ceramics: 3-20, lower for small, "
        "FIB-damaged volumes)")
    fracture_flaw_density_per_nm2: float = _p(
        0.038, "1/nm^2", "fitted", "surface flaws (depth above a_min) per nm^2 of the "
        "shank; fitted so that an uncoated NMC811 specimen (30 nm apex, 10 deg shank) at "
        "5 pJ fractures within its first 10 nm of depth with probability 0.75 ([SI24]: "
        "'most specimens faced premature fracture'); with K_IC, Y, a_min and k only the "
        "combination n (Y sqrt(pi a_min) / K_IC)^(2k) is constrained")
    fracture_coating_flaw_closure: float = _p(
        0.93, "1", "fitted", "share of the surface flaws the redeposited Cr shell fills; "
        "fitted, after the shell's load share, so that a coated NMC811 specimen (5 nm Cr) "
        "at 5 pJ reaches 30 nm of depth without fracture with probability 0.90 ([SI24]: the "
        "coating gives 'mechanical support ... against the Maxwell stresses'; coated runs "
        "ran at 1-50 pJ)")
    fracture_crack_arrest_share: float = _p(
        0.3, "1", "assumed", "share of the cracks that arrest after chipping the cap (a "
        "crack event) instead of running through the section (a fracture)")
    fracture_crack_voltage_step: float = _p(
        0.04, "1", "assumed", "relative step up of the standing voltage after a crack "
        "event (the chipped apex is blunter)")

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{f.name} must be a finite number, got {v!r}")
            object.__setattr__(self, f.name, float(v))
        positive = ("heating_k_per_pj", "absorption_field_scale_v_nm", "conductivity_oxide_w_mk",
                    "conductivity_coating_w_mk", "barrier_ev", "oxide_zero_barrier_field_v_nm",
                    "coating_field_ratio", "attempt_frequency_hz", "evaporation_time_ns",
                    "surface_sites", "oxide_cation_field_factor", "breakup_width_v_nm",
                    "cooling_time_ns", "cooling_reference_k", "coating_shank_absorption",
                    "fracture_oxide_modulus_gpa", "fracture_coating_modulus_gpa",
                    "fracture_toughness_mpa_m05", "fracture_flaw_shape_factor",
                    "fracture_flaw_min_depth_nm", "fracture_flaw_size_exponent",
                    "interface_deflection_width_nm")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("base_temperature_k", "field_spread", "heating_scatter",
                     "direct_barrier_ev", "direct_barrier_per_i2", "desorption_barrier_ev",
                     "fracture_oxide_expansion_per_k", "fracture_flaw_density_per_nm2",
                     "fracture_crack_voltage_step", "pole_deflection", "interface_deflection"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("shank_heating_share", "field_map_laser_share",
                     "fracture_thermal_gradient_share", "fracture_coating_flaw_closure",
                     "fracture_crack_arrest_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.tail_fraction < 1:
            raise ValueError(f"tail_fraction must be in [0, 1), got {self.tail_fraction}")
        if self.field_spread > 0.2:
            raise ValueError(f"field_spread must be at most 0.2, got {self.field_spread}")
        if self.pole_deflection > 0.1 or self.interface_deflection > 20.0:
            raise ValueError("pole_deflection must be at most 0.1 and interface_deflection at "
                             f"most 20, got {self.pole_deflection} and "
                             f"{self.interface_deflection}")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


DEFAULT_EVAPORATION = EvaporationModel()


def parameter_table(model: EvaporationModel = DEFAULT_EVAPORATION) -> list[dict]:
    """One row per constant: ``name``, ``unit``, ``value``, ``source``, ``status``."""
    return [{"name": f.name, "unit": f.metadata["unit"], "value": getattr(model, f.name),
             "source": f.metadata["source"], "status": f.metadata["status"]}
            for f in fields(model)]


def with_overrides(model: EvaporationModel, overrides) -> EvaporationModel:
    """``model`` with ``{name: value}`` (or ``["name=value", ...]``) replaced.

    Raises
    ------
    ValueError
        For an unknown name (naming the known ones) or a value that is not a number.
    """
    known = {f.name for f in fields(model)}
    items = overrides.items() if isinstance(overrides, dict) else [
        _split_setting(s) for s in overrides]
    changes = {}
    for name, value in items:
        if name not in known:
            raise ValueError(f"unknown parameter '{name}' (liprobe simulate "
                             f"--list-parameters lists them)")
        try:
            changes[name] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"parameter {name}: '{value}' is not a number") from None
    return replace(model, **changes)


def _split_setting(text: str) -> tuple[str, str]:
    name, sep, value = str(text).partition("=")
    if not sep or not name.strip():
        raise ValueError(f"'{text}' is not NAME=VALUE")
    return name.strip(), value.strip()


# ---------------------------------------------------------------------------
# 1-2: temperature and field
# ---------------------------------------------------------------------------

def heat_flow_factor(model: EvaporationModel, coated: bool, radius_nm: float,
                     thickness_nm: float) -> float:
    """``g``: how much faster heat leaves the apex region with a conducting shell (1 bare).

    ``g = 1 + (k_coating / k_oxide) ((R + t)^2 - R^2) / R^2``: the shell and the
    oxide conduct in parallel along the shank, R the oxide's radius, t the shell.
    """
    if not coated or thickness_nm <= 0:
        return 1.0
    r = max(float(radius_nm), 1e-9)
    area = ((r + thickness_nm) ** 2 - r ** 2) / r ** 2
    return 1.0 + model.conductivity_coating_w_mk / model.conductivity_oxide_w_mk * area


def log_rate_factor(model: EvaporationModel, detection_rate: float, efficiency: float) -> float:
    """``Lambda = ln(nu tau / Phi)``, ``Phi = detection_rate / (efficiency * sites)``."""
    phi = detection_rate / (efficiency * model.surface_sites)
    return math.log(model.attempt_frequency_hz * model.evaporation_time_ns * 1e-9 / phi)


@dataclass(frozen=True)
class Operating:
    """The apex during one laser-energy segment.

    Attributes
    ----------
    laser_pj : float
    peak_temperature_k : float
    oxide_field_v_nm : float
        The oxide's field where the field map's factor is 1 (the map averages
        to it over the whole cap): what sets the voltage, ``V = k F R``.
    coating_field_v_nm : float
        Field at which the Cr shell evaporates (``coating_field_ratio`` times the oxide's).
    heat_flow_factor : float
    absorption : float
        ``a(F)`` at the operating field.
    log_rate_factor : float
    temperature_per_field_k : float
        ``Q0 / (k Lambda F0)``: how much hotter (K) a part of the apex must run, per
        V/nm of lower field, to evaporate at the same rate (the field map's
        temperatures).
    cooling_time_ns : float
        The shank's cooling time: the thermal tail's time constant.
    tail_fraction : float
        Share of the ions in the thermal tail.
    field_fixed : bool
        True when the field was given (``--field-v-nm``), not solved.
    """

    laser_pj: float
    peak_temperature_k: float
    oxide_field_v_nm: float
    coating_field_v_nm: float
    heat_flow_factor: float
    absorption: float
    log_rate_factor: float
    cooling_time_ns: float
    tail_fraction: float
    temperature_per_field_k: float = 0.0
    field_fixed: bool = False

    def to_dict(self) -> dict:
        return {"laser_pj": self.laser_pj, "peak_temperature_k": self.peak_temperature_k,
                "oxide_field_v_nm": self.oxide_field_v_nm,
                "coating_field_v_nm": self.coating_field_v_nm,
                "heat_flow_factor": self.heat_flow_factor, "absorption": self.absorption,
                "log_rate_factor": self.log_rate_factor,
                "cooling_time_ns": self.cooling_time_ns, "tail_fraction": self.tail_fraction,
                "temperature_per_field_k": self.temperature_per_field_k,
                "field_fixed": self.field_fixed}


#: Highest peak temperature (K) the model is taken to: above, an oxide apex melts or
#: decomposes, and the evaporation physics here no longer holds.
MAX_TEMPERATURE_K = 2500.0
#: The range of fixed fields (V/nm) ``--field-v-nm`` accepts.
FIXED_FIELD_RANGE_V_NM = (5.0, 60.0)


def _exp(x: float) -> float:
    """exp(x), with x clipped to +-700 (no overflow from an extreme --set)."""
    return math.exp(min(max(x, -700.0), 700.0))


def _absorption(model: EvaporationModel, f: float) -> float:
    return _exp((f - model.absorption_reference_field_v_nm) / model.absorption_field_scale_v_nm)


def _temperature(model, laser_pj, f, shank, scale):
    return model.base_temperature_k + model.heating_k_per_pj * laser_pj * scale * shank * \
        _absorption(model, f)


def operating_point(model: EvaporationModel, laser_pj: float, *, coated: bool,
                    radius_nm: float = 30.0, thickness_nm: float = 5.0,
                    detection_rate: float = 0.005, efficiency: float = 0.8,
                    heating_scale: float = 1.0,
                    fixed_field_v_nm: float | None = None) -> Operating:
    """Peak temperature and fields of the apex at ``laser_pj`` (mechanisms 1-3).

    Solves ``F = F0 (1 - k T(F) Lambda / Q0)`` with ``T(F) = T_base + h E a(F) s
    heating_scale`` by Brent's method (``F - F0 (...)`` rises with F: one root).
    ``fixed_field_v_nm`` (in :data:`FIXED_FIELD_RANGE_V_NM`) replaces the solved
    oxide field and keeps the laser's solved temperature: a probe of the model,
    which breaks the rate condition on purpose.

    Raises
    ------
    ValueError
        When the constants allow no solution (the barrier gone at zero field,
        ``Lambda`` not positive) or the apex would pass :data:`MAX_TEMPERATURE_K`.

    Examples
    --------
    A Cr-coated and a bare apex at 5 and 50 pJ: the same peak temperature
    (the fitted shank absorption balances the shell's heat flow), the field
    falling as the apex gets hotter, the shell's field 29/35 of the oxide's,
    and the coated apex cooling 4.6 times faster:

    >>> from liprobe.simulate.evaporation import DEFAULT_EVAPORATION, operating_point
    >>> for pj in (5, 50):
    ...     c = operating_point(DEFAULT_EVAPORATION, pj, coated=True)
    ...     b = operating_point(DEFAULT_EVAPORATION, pj, coated=False)
    ...     print(f"{pj} pJ: {c.peak_temperature_k:.0f} K, oxide {c.oxide_field_v_nm:.2f} V/nm, "
    ...           f"Cr {c.coating_field_v_nm:.2f} V/nm; tail {c.cooling_time_ns:.2f} ns "
    ...           f"coated, {b.cooling_time_ns:.2f} ns bare")
    5 pJ: 302 K, oxide 26.03 V/nm, Cr 21.56 V/nm; tail 1.31 ns coated, 6.05 ns bare
    50 pJ: 455 K, oxide 21.49 V/nm, Cr 17.81 V/nm; tail 1.97 ns coated, 9.11 ns bare
    """
    if not (math.isfinite(laser_pj) and laser_pj > 0):
        raise ValueError(f"laser_pj must be positive, got {laser_pj}")
    g = heat_flow_factor(model, coated, radius_nm, thickness_nm)
    beta = model.shank_heating_share
    a_shank = model.coating_shank_absorption if coated else 1.0
    shank = 1.0 - beta + beta * a_shank / g
    lam = log_rate_factor(model, detection_rate, efficiency)
    if not lam > 0:
        raise ValueError(f"the rate condition has no solution: ln(nu tau / Phi) = {lam:.3g} "
                         "is not positive (attempt_frequency_hz, evaporation_time_ns, "
                         "surface_sites)")
    f0 = model.oxide_zero_barrier_field_v_nm
    k_lam_q = BOLTZMANN_EV_K * lam / model.barrier_ev
    t_max = 1.0 / k_lam_q                  # where the barrier is gone at zero field

    def resid(x):
        return x - f0 * (1.0 - k_lam_q * _temperature(model, laser_pj, x, shank,
                                                      heating_scale))

    lo, hi = 1e-6, f0
    if resid(lo) >= 0:
        t0 = _temperature(model, laser_pj, lo, shank, heating_scale)
        raise ValueError(f"no field evaporates at the requested rate at {laser_pj:g} pJ: the "
                         f"apex reaches {t0:.0f} K even at zero field, above the "
                         f"{t_max:.0f} K at which the barrier vanishes (heating_k_per_pj, "
                         "barrier_ev, base_temperature_k)")
    f = brentq(resid, lo, hi, xtol=1e-10, rtol=1e-12)
    t = _temperature(model, laser_pj, f, shank, heating_scale)
    if not t <= MAX_TEMPERATURE_K:
        raise ValueError(f"the apex would reach {t:.0f} K at {laser_pj:g} pJ, beyond the "
                         f"model's {MAX_TEMPERATURE_K:.0f} K (heating_k_per_pj, "
                         "absorption_*)")
    if fixed_field_v_nm is not None:
        lo_f, hi_f = FIXED_FIELD_RANGE_V_NM
        f = float(fixed_field_v_nm)
        if not (math.isfinite(f) and lo_f <= f <= hi_f):
            raise ValueError(f"the fixed field must be in {lo_f:g}-{hi_f:g} V/nm, got "
                             f"{fixed_field_v_nm}")
    scale = (t / model.cooling_reference_k) / g
    tau = model.cooling_time_ns * scale
    w = model.tail_fraction / (1.0 - model.tail_fraction) * scale
    return Operating(float(laser_pj), float(t), float(f), float(f * model.coating_field_ratio),
                     float(g), float(_absorption(model, f)), float(lam), float(tau),
                     float(w / (1.0 + w)), float(t_max / f0), fixed_field_v_nm is not None)


def bin_temperature(op: Operating, factor: float) -> float:
    """Peak temperature (K) of the part of the apex whose field is ``factor`` times the mean:
    for the same evaporation rate a lower field needs a hotter surface,
    ``T_b = T + (Q0 / (k Lambda F0)) (1 - factor) F`` (the rate condition of mechanism 2
    at the bin's field; the laser-facing side, lower in field, runs hotter)."""
    return float(op.peak_temperature_k + op.temperature_per_field_k * (1.0 - factor)
                 * op.oxide_field_v_nm)


# ---------------------------------------------------------------------------
# 3: the field map
# ---------------------------------------------------------------------------

#: Poles of the map's pattern: (u, v, weight) in units of the cap's lateral radius; a
#: centre pole and four around it (a cubic-like [001] pattern), lower field on each.
_POLES = ((0.0, 0.0, 1.0), (0.55, 0.0, 0.6), (-0.55, 0.0, 0.6), (0.0, 0.55, 0.6),
          (0.0, -0.55, 0.6))
_POLE_WIDTH = 0.12
#: Zone lines of the pattern: (angle of the line through the centre pole in rad, weight,
#: width in cap radii): the two <100> lines joining the poles and the two diagonals.
_ZONES = ((0.0, 0.35, 0.035), (0.5 * math.pi, 0.35, 0.035), (0.25 * math.pi, 0.2, 0.03),
          (0.75 * math.pi, 0.2, 0.03))


#: Pixels per side of the field map's lookup grid over the cap (``u, v`` in [-1, 1]).
FIELD_GRID = 256


def _pattern(u, v, lx, ly, laser_share, rotation=0.0):
    """The map's pattern ``m`` (zero mean, unit standard deviation over the cap): poles
    and zone lines turned by ``rotation`` (rad), and the laser side ``(lx, ly)``."""
    c, s = math.cos(rotation), math.sin(rotation)
    ur = c * u + s * v                              # pattern frame
    vr = -s * u + c * v
    pole = np.zeros_like(u)
    for pu, pv, w in _POLES:
        pole -= w * np.exp(-((ur - pu) ** 2 + (vr - pv) ** 2) / (2 * _POLE_WIDTH ** 2))
    for ang, w, width in _ZONES:
        d = -math.sin(ang) * ur + math.cos(ang) * vr       # distance to the line
        pole -= w * np.exp(-d * d / (2 * width ** 2))
    side = -(u * lx + v * ly)                       # lower field on the laser side
    inside = u * u + v * v <= 1.0
    pole = (pole - pole[inside].mean()) / pole[inside].std()
    side = (side - side[inside].mean()) / side[inside].std()
    return math.sqrt(1.0 - laser_share) * pole + math.sqrt(laser_share) * side, inside


def pole_positions(rotation: float = 0.0) -> np.ndarray:
    """The poles of the field map's pattern turned by ``rotation`` (rad): ``(n, 2)`` array
    of ``(u, v)`` in units of the cap's lateral radius."""
    c, s = math.cos(rotation), math.sin(rotation)
    return np.array([(c * pu - s * pv, s * pu + c * pv) for pu, pv, _ in _POLES], np.float64)


@dataclass(frozen=True)
class FieldMap:
    """The field over the apex, binned.

    Attributes
    ----------
    grid : ndarray of int8, shape (FIELD_GRID, FIELD_GRID)
        The bin of each pixel of the cap's lateral extent, rows ``v``, columns
        ``u`` (units of the cap's lateral radius, from -1 to 1).
    factors : ndarray of float, shape (FIELD_BINS,)
        Field factor of each bin: ``1 + spread <m>``, ``<m>`` the pattern's mean
        over the bin's pixels inside the cap, so that the area-weighted mean
        of the factors is 1.
    """

    grid: np.ndarray
    factors: np.ndarray
    shift_u: np.ndarray | None = None
    shift_v: np.ndarray | None = None
    poles: np.ndarray | None = None


def field_map(model: EvaporationModel, laser_angle_rad: float,
              rotation_rad: float = 0.0) -> FieldMap:
    """The field map of mechanism 3 for a laser coming from ``laser_angle_rad``, the pole
    pattern turned by ``rotation_rad``.

    The pattern ``m`` is sampled on a :data:`FIELD_GRID` square grid over the
    cap and cut into :data:`FIELD_BINS` equal bins of its range; with
    ``field_spread`` 0 every pixel is in the middle bin and every factor is 1.
    ``shift_u``, ``shift_v`` (float64 grids, cap radii) are the local
    magnification's displacement of a launch point, ``D grad(spread m)``
    (``pole_deflection``; zero without a map); ``poles`` the turned poles
    (:func:`pole_positions`).
    """
    nb = FIELD_BINS
    g = (np.arange(FIELD_GRID) + 0.5) / FIELD_GRID * 2.0 - 1.0
    u, v = np.meshgrid(g, g)
    poles = pole_positions(rotation_rad)
    if model.field_spread == 0:
        zero = np.zeros((FIELD_GRID, FIELD_GRID))
        return FieldMap(np.full((FIELD_GRID, FIELD_GRID), nb // 2, np.int8), np.ones(nb),
                        zero, zero.copy(), poles)
    m, inside = _pattern(u, v, math.cos(laser_angle_rad), math.sin(laser_angle_rad),
                         model.field_map_laser_share, rotation_rad)
    lo, hi = float(m[inside].min()), float(m[inside].max())
    b = np.clip(((m - lo) / (hi - lo) * nb).astype(np.int64), 0, nb - 1)
    sums = np.bincount(b[inside], weights=m[inside], minlength=nb)
    counts = np.bincount(b[inside], minlength=nb)
    centres = lo + (np.arange(nb) + 0.5) * (hi - lo) / nb
    mean_m = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
    step = g[1] - g[0]
    dv, du = np.gradient(model.field_spread * m, step)       # rows are v, columns u
    d = model.pole_deflection
    return FieldMap(b.astype(np.int8), 1.0 + model.field_spread * mean_m, d * du, d * dv,
                    poles)


# ---------------------------------------------------------------------------
# 4-6: charge states, molecules, oxygen
# ---------------------------------------------------------------------------

def breakup_probability(model: EvaporationModel, field_v_nm: float) -> float:
    """``P(F) = 1 - exp(-exp((F - F_b) / w))``: a molecular ion breaks up in flight [G16]."""
    return float(-math.expm1(-_exp((field_v_nm - model.breakup_field_v_nm)
                                   / model.breakup_width_v_nm)))


def o2_to_o_ratio(model: EvaporationModel, field_v_nm: float) -> float:
    """``r = N(O2+) / N(O+) = (1 - P) / (2 P)`` (mechanism 5)."""
    p = breakup_probability(model, field_v_nm)
    return (1.0 - p) / (2.0 * p) if p > 0 else math.inf


def neutral_o2_fraction(model: EvaporationModel, temperature_k: float) -> float:
    """Share of a phase's O leaving as thermally desorbed neutral O2 (mechanism 6)."""
    x = _exp(model.desorption_log_prefactor - model.desorption_barrier_ev
             / (BOLTZMANN_EV_K * temperature_k))
    return x / (1.0 + x)


def direct_double_fraction(model: EvaporationModel, element: str,
                           temperature_k: float) -> float:
    """Share of an oxide cation's atomic ions emitted directly as 2+ (mechanism 4, [S14])."""
    from ..kingham import ELEMENTS

    i2 = ELEMENTS[element].ionisation_ev[1]
    i2_mn = ELEMENTS["Mn"].ionisation_ev[1]
    e = model.direct_barrier_ev + model.direct_barrier_per_i2 * (i2 - i2_mn)
    return float(-math.expm1(-_exp(model.direct_log_prefactor
                                   - max(e, 0.0) / (BOLTZMANN_EV_K * temperature_k))))


#: Kingham fractions already computed: (element, field rounded to 1e-6 V/nm) -> fractions.
_KINGHAM_CACHE: dict = {}
_KINGHAM_CACHE_MAX = 50_000


def prepare_kingham(element: str, fields_v_nm) -> None:
    """Compute the Kingham fractions of ``element`` at many fields in one call (the curves
    are vectorised over fields), so that :func:`charge_fractions` finds them."""
    from ..kingham import kingham_curves

    todo = sorted({round(float(f), 6) for f in fields_v_nm} - {
        f for (el, f) in _KINGHAM_CACHE if el == element})
    if not todo:
        return
    if len(_KINGHAM_CACHE) + len(todo) > _KINGHAM_CACHE_MAX:
        _KINGHAM_CACHE.clear()
    c = kingham_curves(element, np.array(todo))
    qs = sorted(c.fractions)
    for k, f in enumerate(todo):
        _KINGHAM_CACHE[element, f] = tuple(float(c.fractions[q][k]) for q in qs)


def _kingham_fractions(element: str, field_v_nm: float) -> tuple:
    got = _KINGHAM_CACHE.get((element, field_v_nm))
    if got is None:                   # not prepared (or the cache was cleared meanwhile)
        from ..kingham import kingham_curves

        c = kingham_curves(element, np.array([field_v_nm]))
        got = tuple(float(c.fractions[q][0]) for q in sorted(c.fractions))
    return got


def _cation_field(phase) -> float | None:
    """Mean elemental evaporation field (V/nm, [T78] via liprobe.instruments) of a phase's
    cations other than Li, weighted by their amounts; None if one is not tabulated."""
    from ..instruments import ELEMENT_EVAPORATION_FIELDS

    amounts = {el: n for el, n in phase.amounts if el not in ("O", "Li", "H")}
    total = sum(amounts.values())
    if total <= 0 or any(el not in ELEMENT_EVAPORATION_FIELDS for el in amounts):
        return None
    return sum(n * ELEMENT_EVAPORATION_FIELDS[el][0] for el, n in amounts.items()) / total


def phase_field_ratio(model: EvaporationModel, phase, kind: str, main=None) -> float:
    """A phase's zero-barrier field over the main phase's (``main``, whose field the
    operating point solves for).

    ``coating_field_ratio`` for the coating; 1 for the main phase; for a second
    phase the mean elemental field of its cations other than Li over the main
    phase's (*assumption*: an oxide's evaporation field follows its framework
    cations', Tsong 1978 fields via :data:`liprobe.instruments.ELEMENT_EVAPORATION_FIELDS`;
    a Li-Mn-O grain in NMC811: 30 / 34.7 = 0.865), or their tabulated fields'
    ratio (:data:`liprobe.instruments.MATERIALS`) when an element is not tabulated.
    """
    if kind == "coating":
        return model.coating_field_ratio
    if kind == "material":
        return 1.0
    if main is None:
        raise ValueError("phase_field_ratio: a second phase's field is relative to the main "
                         "phase's; give main")
    a, b = _cation_field(phase), _cation_field(main)
    if a is not None and b is not None:
        return a / b
    return phase.evaporation_field_V_per_nm / main.evaporation_field_V_per_nm


def charge_fractions(model: EvaporationModel, element: str, field_v_nm: float,
                     temperature_k: float, oxide: bool) -> tuple:
    """Fractions of ``element``'s atomic ions in charge 1, 2, 3, 4 (mechanism 4).

    Metal (``oxide`` False): the Kingham curves at the field. Oxide cation: a
    share ``p_d`` starts as 2+, the rest as 1+; both post-ionise along the
    Kingham chain at ``c F``.
    """
    if not oxide:
        return _kingham_fractions(element, round(float(field_v_nm), 6))
    f = _kingham_fractions(element, round(float(field_v_nm) * model.oxide_cation_field_factor,
                                          6))
    p_d = direct_double_fraction(model, element, temperature_k)
    rest = 1.0 - f[0]
    if rest > 1e-300:
        g = [0.0] + [x / rest for x in f[1:]]
    else:
        g = [0.0, 1.0] + [0.0] * (len(f) - 2)
    return tuple((1.0 - p_d) * f[k] + p_d * g[k] for k in range(len(f)))


def _break_up(ion):
    """Products of a molecular ion's break-up: (the charged fragment's name, the neutral
    fragment's formula or None, O atoms lost as neutral O per metal atom of the ion), or
    None for an ion that does not break up.

    The metal-bearing fragment keeps the charge (its ionisation energy is the lower):
    ``MO_y+ -> MO_(y-1)+ + O``; ``M2O+ -> M+ + MO``. Other shapes do not break up.
    """
    metals = [el for el, _ in ion.atoms if el != "O"]
    if len(metals) != 1:
        return None
    el = metals[0]
    x, y, q = ion.count(el), ion.count("O"), ion.charge
    if y == 0:
        return None
    if x == 1:
        rest = f"{el}O{y - 1}" if y - 1 > 1 else (f"{el}O" if y - 1 == 1 else el)
        return (rest + "+" * q, None, 1.0)
    if x == 2 and y == 1:
        return (el + "+" * q, f"{el}O", 0.0)
    return None


def kingham_fields_needed(phase, kind: str, fields_v_nm,
                          model: EvaporationModel = DEFAULT_EVAPORATION,
                          singly_charged=()) -> dict:
    """``{element: fields}`` at which :func:`species_at` of ``phase`` at ``fields_v_nm``
    will ask for Kingham fractions (for :func:`prepare_kingham`)."""
    from ..kingham import ELEMENTS

    els = {el for el, _ in phase.amounts}
    oxide = "O" in els and kind != "coating"
    scale = model.oxide_cation_field_factor if oxide else 1.0
    return {el: [round(float(f) * scale, 6) for f in fields_v_nm]
            for el in els - {"O"} if el in ELEMENTS and el not in singly_charged}


def species_at(base, phase, kind: str, field_v_nm: float, temperature_k: float,
               model: EvaporationModel = DEFAULT_EVAPORATION):
    """The :class:`~liprobe.simulate.parameters.SpeciesModel` of ``phase`` at a local field
    and peak temperature (mechanisms 4-6).

    ``base`` gives, per element, the share of its atoms that *leaves* in each
    molecular ion and, together, in atomic ions; the atomic share is split
    into charge states by :func:`charge_fractions` (``kind`` ``"coating"`` or
    an O-free phase: a metal), each molecular ion breaks up with
    :func:`breakup_probability`, the free O gets :func:`o2_to_o_ratio`, and the
    thermal neutral O2 :func:`neutral_o2_fraction`.
    """
    from ..chemistry import parse_ion
    from ..kingham import ELEMENTS

    els = {el for el, _ in phase.amounts}
    oxide = "O" in els and kind != "coating"
    p_break = breakup_probability(model, field_v_nm)
    parts = []
    lost_o = []
    neutral = dict(base.neutral_losses)
    for el in sorted(els - {"O"}):
        part = base.partition(el)
        ions = [(parse_ion(n), f) for n, f in part]
        if "O" not in els:             # an O-free phase has no oxide ions (as emission())
            ions = [(ion, f) for ion, f in ions if ion.count("O") == 0]
            total = sum(f for _, f in ions)
            ions = [(ion, f / total) for ion, f in ions] if total > 0 else \
                [(parse_ion(f"{el}+"), 1.0)]
        atomic = sum(f for ion, f in ions if ion.count("O") == 0 and len(ion.elements) == 1
                     and ion.count(el) == 1)
        out: dict[str, float] = {}
        if el in ELEMENTS and el not in base.singly_charged and atomic > 0:
            fr = charge_fractions(model, el, field_v_nm, temperature_k, oxide)
            for q, v in enumerate(fr, start=1):
                if v * atomic > 1e-6:
                    out[el + "+" * q] = out.get(el + "+" * q, 0.0) + v * atomic
        else:
            for ion, f in ions:
                if ion.count("O") == 0 and len(ion.elements) == 1 and ion.count(el) == 1:
                    out[ion.name] = out.get(ion.name, 0.0) + f
        o_lost = 0.0
        for ion, f in ions:
            if ion.count("O") == 0 and len(ion.elements) == 1 and ion.count(el) == 1:
                continue
            prod = _break_up(ion) if p_break > 0 else None
            if prod is None:
                out[ion.name] = out.get(ion.name, 0.0) + f
                continue
            keep, neutral_formula, o_per_atom = prod
            out[ion.name] = out.get(ion.name, 0.0) + f * (1.0 - p_break)
            broken = f * p_break
            if neutral_formula is None:
                name = parse_ion(keep).name
                out[name] = out.get(name, 0.0) + broken
                o_lost += broken * o_per_atom
            else:                           # M2O+ -> M+ + MO: half the atoms in the neutral
                name = parse_ion(keep).name
                out[name] = out.get(name, 0.0) + 0.5 * broken
                neutral[el] = neutral.get(el, 0.0) + 0.5 * broken
        # neutral MO atoms are counted by emission() from ``neutral_losses`` (a share of the
        # element's atoms): what stays in ions is renormalised to 1
        total = sum(out.values())
        parts.append((el, tuple((n, v / total) for n, v in out.items() if v > 0)))
        if o_lost > 0:
            lost_o.append((el, o_lost))
    r = o2_to_o_ratio(model, field_v_nm)
    f_n = neutral_o2_fraction(model, temperature_k) if "O" in els else 0.0
    return replace(base, partitions=tuple(parts), o2_to_o_ratio=min(r, 1e6),
                    neutral_o_fraction=min(f_n, 0.95),
                    neutral_losses=tuple((el, min(v, 0.95)) for el, v in neutral.items()
                                         if v > 0),
                    dissociated_o=tuple(lost_o))
