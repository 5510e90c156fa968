"""Li transport in the field: drift to the surface, loss between pulses, supply from the flanks.

Li+ is the one mobile ion of the cathode oxides (``field-evaporation.md`` s4: [GR14],
[P17], [K22]). Every Li atom the simulator meets is followed to one end, and
``truth.json``'s ``li_budget`` counts them (:func:`li_budget`):

``detected`` + ``lost_to_efficiency`` + ``background`` + ``outside_field_of_view``
+ ``remaining`` = ``total``

where ``total`` is the Li of the evaporated volume's sites plus the Li the flanks
supplied to the cap (mechanism 3), ``background`` the Li that left between pulses,
``outside_field_of_view`` the pulsed Li that missed the detector, ``remaining`` the
Li on the cap's surface when the run stopped.

The mechanisms (what the simulator does; :func:`li_transport_at` turns the constants
and a segment's operating point into per-event probabilities)
-----------------------------------------------------------------------------------

1. **Drift to the surface.** The field penetrates the oxide (``F / eps_r`` at the
   surface, screened within a few atomic layers). During each pulse's heating
   (``tau``, the operating point's cooling time) a Li ion drifts towards the
   surface with ``v = D(T) e E_in / (k T)`` (Einstein's relation; ``D(T) = D_300
   exp(-(E_a / k)(1/T - 1/300 K))``, ``T`` the peak temperature). Over the time
   the front needs to reach it, the Li a site holds reaches the surface with
   probability ``d = 1 - exp(-Pe)``, ``Pe = v f tau / v_front`` (``f`` the pulse
   rate; ``v_front = site events per second x volume per event / cap area``). The
   screening length ``lambda`` cancels: a Li ion within ``lambda`` of the surface
   must drift across ``lambda`` in the ``lambda / v_front`` the front takes to
   reach it, whatever ``lambda`` is. A Cr shell, a
   conductor around the whole apex, supplies the screening charge: the field inside
   is ``coating_screening`` times the bare one ([K22]: a thin conducting layer
   suppresses field-driven migration).
2. **Loss between pulses (background).** A Li ion on the surface leaves at the
   first of: the standing field between pulses at the base temperature, or a pulse.
   Per pulse cycle ``P_dc = 1 - exp(-(nu / f) exp(-Q / k T_base))`` and ``P_p = 1 -
   exp(-nu tau_e exp(-Q / k T))``, with Kellogg's linear barrier ``Q = Q_Li (1 -
   F / F_Li)`` (as the oxide's, :mod:`.evaporation`); the share that leaves between
   pulses is ``b = P_dc / (P_dc + (1 - P_dc) P_p)``. It is detected, if at all,
   at a random time of flight: the analysis sees no Li there. ``b`` falls steeply
   with the field, so the loss is a low-laser-energy effect: the field is highest
   at the lowest laser energy.
3. **Supply from the flanks (uncoated only).** The field also penetrates the bare
   shank: the flanks' Li drifts to their surface and migrates up to the cap. The
   flank layer that feeds the cap is as deep as Li diffuses while the front passes
   a migration length ``L_m``: ``delta = sqrt(D(T) f tau L_m / v_front)``. As the
   front advances by ``dz`` the cap receives the Li of a flank ring of depth
   ``delta``: ``2 pi R delta dz rho_Li``, i.e. ``g = 2 (delta / R) q`` Li atoms per
   event (``q`` the Li per evaporation event of the oxide, ``R`` the cap's lateral
   radius). Under a Cr shell the flanks see no field and no Li comes up. The supply
   grows with temperature as ``sqrt(D)``: more Li per framework atom, the hotter.
4. **Islands.** Li arriving from the flanks gathers into two-dimensional islands
   (``island_atoms`` on average, a geometric distribution) that enter the cap
   across its rim and travel inwards a distance ``|N(0, island_reach)|`` cap radii
   before they evaporate; an island leaves atom after atom (each departure raises
   the field on the next edge atom), each atom between pulses with probability
   ``b``. Islands carry Li to the rim more than to the core (a Li-rich rim on the
   detector map) and string Li ions together in the evaporation sequence.

A site's own Li that reached the surface (mechanism 1) and is not lost between
pulses evaporates with the site: the model keeps no per-atom record of where it
went, an *assumption* that the cap's own surface Li does not wander far.

Not modelled: Li piled up under the surface and released when the laser energy
steps up (the supply follows each segment's temperature at once, quasi-steady), and
a loss of the cap's Li to the flanks (the flanks only supply): ``outside_field_of_view``
holds only the pulsed Li that missed the detector.

Constants carry their unit, status (``sourced``, ``assumed``, ``fitted``) and source
(:func:`lithium_parameter_table`); ``fitted`` names the seed's number it was
chosen for.

References: [GR14] Greiwe et al. 2014, [P17] Pfeiffer et al. 2017, [K22] Kim et al.
2022, [SI24] Singh et al. 2023 (the seed): ``field-evaporation.md`` s4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .evaporation import _p, parameter_table

__all__ = ["LithiumModel", "DEFAULT_LITHIUM", "LiTransport", "li_transport_at",
           "lithium_parameter_table", "li_budget", "BUDGET_PARTS"]

_K_EV = 8.617333262e-5

#: The parts of the Li budget, in the order of truth.json's ``li_budget``.
BUDGET_PARTS = ("detected", "lost_to_efficiency", "background", "outside_field_of_view",
                "remaining")


@dataclass(frozen=True)
class LithiumModel:
    """The constants of Li transport (module docstring, mechanisms 1-4)."""

    pulse_rate_hz: float = _p(
        1.0e5, "1/s", "sourced", "[SI24] acquisition: pulse repetition rate 100 kHz")
    li_diffusivity_300k_nm2_s: float = _p(
        2.5, "nm^2/s", "fitted",
        "D_300, Li's diffusivity in the oxide at 300 K (2.5e-14 cm^2/s); published NMC811 "
        "values span about 1e-8 to 1e-14 cm^2/s with state of charge and method (GITT, "
        "EIS); taken at the low end, fitted with li_zero_barrier_field_v_nm so that "
        "uncoated NMC811 gives few Li at 5 pJ and nearly only Li at 20 pJ [SI24 Fig. 1, "
        "s3.1]: it sets the flanks' supply (mechanism 3)")
    li_activation_ev: float = _p(
        0.5, "eV", "assumed", "E_a of Li hopping in layered oxides (first-principles "
        "barriers 0.3-0.8 eV, Van der Ven and Ceder, Electrochem. Solid-State Lett. 3 "
        "(2000) 301)")
    oxide_permittivity: float = _p(
        10.0, "1", "assumed", "eps_r of the oxide: the field inside is F / eps_r at the "
        "surface")
    coating_screening: float = _p(
        0.003, "1", "fitted", "the field inside a Cr-coated apex over a bare one: the "
        "shell screens the oxide ([K22]: a conducting layer suppresses field-driven "
        "migration); no measured value: fitted so that a coated NMC811 run at 5 pJ, where "
        "surface Li is lost between pulses, keeps Li/(Li+Ni+Co+Mn) within 0.01 of its "
        "bulk value ([SI24]: close to 0.5 over the whole field range)")
    li_barrier_ev: float = _p(
        1.0, "eV", "assumed", "Q_Li, the zero-field barrier of a surface Li ion (Kellogg's "
        "linear barrier, as the oxide's); only its slope Q_Li / F_Li near the operating "
        "field matters")
    li_zero_barrier_field_v_nm: float = _p(
        28.75, "V/nm", "fitted",
        "F_Li, where a surface Li ion's barrier vanishes; above the field of metallic Li "
        "(14 V/nm, Tsong's table): Li is held by the oxide's surface; fitted with "
        "li_diffusivity_300k_nm2_s so that Li/(Li+Ni+Co+Mn) is below 0.35 at 5 pJ in "
        "uncoated NMC811 [SI24 Fig. 1: 'very few Li ions' at 5 pJ]")
    migration_length_nm: float = _p(
        10.0, "nm", "assumed", "L_m, the length of shank whose Li reaches the cap (a third "
        "of the apex radius)")
    island_atoms: float = _p(
        15.0, "1", "assumed", "mean Li atoms of an island arriving from the flanks (a "
        "2D island about 1.5 nm across)")
    island_reach: float = _p(
        0.35, "cap radii", "assumed", "the standard deviation of how far an island travels "
        "in from the rim before it evaporates")
    island_spread_nm: float = _p(
        1.0, "nm", "assumed", "the standard deviation of an island's atoms about its centre")

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{f.name} must be a finite number, got {v!r}")
            if not v > 0:
                raise ValueError(f"{f.name} must be positive, got {v!r}")
            object.__setattr__(self, f.name, float(v))
        if self.island_atoms < 1:
            raise ValueError("island_atoms must be at least 1")
        if self.coating_screening > 1:
            raise ValueError("coating_screening must be at most 1")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


DEFAULT_LITHIUM = LithiumModel()


def lithium_parameter_table(model: LithiumModel = DEFAULT_LITHIUM) -> list[dict]:
    """Every constant: ``name``, ``unit``, ``value``, ``source``, ``status``
    (:func:`.evaporation.parameter_table`'s rows)."""
    return parameter_table(model)


@dataclass(frozen=True)
class LiTransport:
    """Li transport of one segment (:func:`li_transport_at`).

    ``drift``: ``d``, the share of a site's Li that reaches the surface before the
    site evaporates; ``peclet``: its ``Pe``; ``dc_loss``: ``b``, the share of surface Li
    that leaves between pulses; ``flank_depth_nm``: ``delta``; ``flank_supply``: ``g``
    over ``q`` (flank Li per Li of the evaporated volume); ``front_nm_s``: the front's
    speed; ``diffusivity_nm2_s``: ``D(T)``.
    """

    coated: bool
    laser_pj: float
    temperature_k: float
    field_v_nm: float
    diffusivity_nm2_s: float
    front_nm_s: float
    peclet: float
    drift: float
    dc_loss: float
    flank_depth_nm: float
    flank_supply: float
    island_atoms: float
    island_reach: float
    island_spread_nm: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def li_transport_at(model: LithiumModel, *, coated: bool, laser_pj: float,
                    temperature_k: float, field_v_nm: float, cooling_time_ns: float,
                    base_temperature_k: float, attempt_frequency_hz: float,
                    evaporation_time_ns: float, events_per_pulse: float,
                    volume_per_event_nm3: float, cap_radius_nm: float) -> LiTransport:
    """The per-event probabilities of a segment (module docstring, mechanisms 1-4).

    ``temperature_k``, ``field_v_nm``, ``cooling_time_ns``: the operating point's
    peak temperature, oxide field and cooling time (:func:`.evaporation.operating_point`);
    ``events_per_pulse``: evaporation events per pulse (detection rate over the
    detected share of events); ``volume_per_event_nm3``; ``cap_radius_nm``: the cap's
    lateral radius.
    """
    t = float(temperature_k)
    kt = _K_EV * t
    d_t = model.li_diffusivity_300k_nm2_s * math.exp(
        -(model.li_activation_ev / _K_EV) * (1.0 / t - 1.0 / 300.0))
    f = model.pulse_rate_hz
    tau = cooling_time_ns * 1e-9
    area = math.pi * cap_radius_nm ** 2
    v_front = f * events_per_pulse * volume_per_event_nm3 / area
    e_in = field_v_nm / model.oxide_permittivity * (model.coating_screening if coated else 1.0)
    v_drift = d_t * e_in / kt
    pe = v_drift * f * tau / v_front
    drift = -math.expm1(-pe)
    q = max(model.li_barrier_ev * (1.0 - field_v_nm / model.li_zero_barrier_field_v_nm), 0.0)
    p_dc = -math.expm1(-(attempt_frequency_hz / f)
                       * math.exp(-q / (_K_EV * base_temperature_k)))
    p_p = -math.expm1(-attempt_frequency_hz * evaporation_time_ns * 1e-9
                      * math.exp(-q / kt))
    den = p_dc + (1.0 - p_dc) * p_p
    b = p_dc / den if den > 0 else 0.0
    delta = 0.0
    supply = 0.0
    if not coated:
        delta = min(math.sqrt(d_t * f * tau * model.migration_length_nm / v_front),
                    cap_radius_nm)
        supply = 2.0 * delta / cap_radius_nm
    return LiTransport(bool(coated), float(laser_pj), t, float(field_v_nm), d_t, v_front, pe,
                       drift, b, delta, supply, model.island_atoms, model.island_reach,
                       model.island_spread_nm)


def li_budget(counts: dict) -> dict:
    """The Li budget of a run (or a segment) from its counts: the five parts, ``total`` and
    ``closes``.

    ``counts``: ``site_li`` (Li of the evaporated sites), ``flank_li`` (Li the flanks
    supplied), optionally ``carried_in`` (a segment's: the atoms of an island left by the
    segment before), and the five parts of :data:`BUDGET_PARTS`, each counted on its own
    (``closes`` is a check, not an identity).
    """
    out = {k: int(counts[k]) for k in BUDGET_PARTS}
    out["from_sites"] = int(counts["site_li"])
    out["from_flanks"] = int(counts["flank_li"])
    if "carried_in" in counts:
        out["carried_in"] = int(counts["carried_in"])
    out["total"] = out["from_sites"] + out["from_flanks"] + out.get("carried_in", 0)
    out["closes"] = sum(out[k] for k in BUDGET_PARTS) == out["total"]
    return out
