"""The forward model, chunk by chunk, and the truth it keeps.

One :class:`numpy.random.Generator` (``default_rng(seed)``) is drawn from in a
fixed order, chunk after chunk of ``CHUNK_EVENTS`` candidate events, so the
same configuration and seed give the same bytes, and memory is bounded by
the chunk whatever the number of ions. A run is one or more *segments* of
constant laser energy (a laser schedule); each has its own operating point
(:mod:`.evaporation`: peak temperature, the fields of the phases, the
field map, species shares per field bin, thermal tail; :mod:`.lithium`: Li
transport), and the specimen, the random stream and the Li island being evaporated
carry on from one to the next. Per chunk:

1. **Specimen** (:mod:`.specimen`): evaporation events at the densest phase's
   event density, in evaporation order (exponential volume spacings), at
   their depth, cap radius and angles; each event's phase (coating shell,
   second phases, the material), and thinning to that phase's density
   ``1 / (Omega * atoms per event)``.
2. **Species** (:mod:`.species`): each event's ion (or neutral) from its
   phase's emission table at the local field (the segment's field for the
   phase times the field map's factor at the launch point, in
   :data:`.evaporation.FIELD_BINS` bins) and the segment's temperature;
   then Li's transport (:mod:`.lithium`): a site's Li drifted to the surface and
   left between pulses (a background ion), or, uncoated, islands of Li from the
   flanks evaporating atom after atom, events that take no site.
3. **Detection** (:mod:`.detection`): neutrals are never detected; ions are
   detected with the instrument's efficiency, blurred, projected with the
   reconstruction module's inverse projection, and lost beyond the detector.
   Recording stops at the segment's last ion, and the run at the requested
   number of detected ions or where the specimen fractures.
4. **Spectrum** (:mod:`~liprobe.simulate.spectrum`): an isotope per ion, its time of flight
   at the voltage ``V = k F R`` (``F`` the segment's oxide field, stepped up
   after each crack event of :mod:`.fracture`; Gaussian
   timing, the thermal tail of the apex's cooling), or, for a background
   fraction, a time of flight uniform over the acquisition window; m/n from
   the time of flight.
5. **Pulses**: multiplicities and pulse deltas; a fracture ends in a burst
   of multiple hits in few pulses.

Then the ``.epos`` positions are reconstructed from the detector data with
the true parameters, the efficiency calibrated so that depths come out right
(:func:`liprobe.spatial.reconstruct.reconstruct`; :func:`.truth.depth_calibration`;
with a laser schedule, each segment's radius from its own field), and the
truth is assembled.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .._jit import njit
from ..chemistry import isotope_warnings
from ..instruments import instrument as _instrument
from ..rangetable import RangeTable
from ..run import Run
from ..spatial.reconstruct import ReconstructionParameters, reconstruct, window_volumes
from .config import SimulationConfig
from .detection import _blur_sigma, _blurred_position, derived_icf, detector_hits, pulse_structure
from .evaporation import (
    FieldMap,
    Operating,
    bin_temperature,
    field_map,
    kingham_fields_needed,
    operating_point,
    phase_field_ratio,
    prepare_kingham,
    species_at,
)
from .fracture import FractureOutcome, FracturePlan, draw_fracture, oxide_stress
from .lithium import LiTransport, li_transport_at
from .materials import Phase, resolve_material
from .parameters import COATINGS, MultiHitModel, PeakShape, peak_shape_at
from .species import Catalogue, Emission, coating_phase, emission, with_hydrogen
from .specimen import (
    Needle,
    _depth_radius,
    _depth_radius_near,
    _surface_distance,
    _surface_distance_array,
)
from .spectrum import design_windows, range_table, sample_spectrum
from .truth import build_truth, depth_calibration, summary

__all__ = ["CHUNK_EVENTS", "Setup", "Segment", "SimulatedRun", "prepare", "simulate",
           "FRACTURE_BURST", "fracture_burst_ions"]

#: Candidate events per chunk (fixed: the output depends on it).
CHUNK_EVENTS = 1 << 18
#: Rows of the radius/voltage-against-depth table of the truth.
DEPTH_ROWS = 101
#: The final burst of a fracture: the last ``max(fraction * n, min_ions)`` ions (at most a
#: tenth of the run) arrive in pulses of this multi-hit model (*assumption*: the apex
#: breaking off evaporates in few pulses, many ions each -- what
#: :func:`liprobe.history.run_history` reads as an abrupt end).
FRACTURE_BURST = {"fraction": 0.01, "min_ions": 1000,
                  "multihit": MultiHitModel(detection_rate=0.9,
                                            multiplicity_probabilities=(0.2, 0.25, 0.25, 0.15,
                                                                        0.15))}


# ---------------------------------------------------------------------------
# set-up: everything derived from the configuration before any random draw
# ---------------------------------------------------------------------------

@dataclass
class Segment:
    """A part of the run at one laser energy: its operating point and tables.

    ``start_ion``/``stop_ion``: detected-ion indices (``stop_ion`` the
    requested end, cut by a fracture). ``operating``: peak temperature and
    fields (:func:`.evaporation.operating_point`). ``fields``: each phase's
    mean local field (V/nm); ``row0``: first row of the catalogue's
    per-(segment, phase, field bin) tables, ``n_bins`` bins per phase
    (:data:`.evaporation.FIELD_BINS`) whose field factors are
    ``bin_factors``. ``emissions``: each phase's emission at its mean field
    (the middle bin), ``bin_emissions`` every bin's; their temperatures
    follow the bins' fields (:func:`.evaporation.bin_temperature`).
    ``field_V_per_nm``: the main material's field (map factor 1: what sets
    ``V = k F R``), ``field_factor`` that over the first segment's (the
    voltage steps of a laser schedule). ``li``: Li's transport
    (:func:`.lithium.li_transport_at`; None without Li or with transport off) and
    ``li_args`` its numbers for the kernel (drift share, loss between pulses,
    islands per site event, mean island atoms, island reach in cap radii, island
    spread in nm).
    """

    index: int
    start_ion: int
    stop_ion: int
    laser_pj: float
    operating: Operating
    fields: list
    species: list
    emissions: list
    bin_emissions: list
    row0: int
    n_bins: int
    bin_factors: np.ndarray
    density: np.ndarray
    field_factor: float
    field_V_per_nm: float
    shape: PeakShape
    li: LiTransport | None
    li_args: np.ndarray

    @property
    def max_density(self) -> float:
        return float(self.density.max())

    def row(self, phase: int, b: int | None = None) -> int:
        """Catalogue row of ``phase`` in field bin ``b`` (default: the middle bin)."""
        return self.row0 + phase * self.n_bins + (self.n_bins // 2 if b is None else b)

    def to_dict(self) -> dict:
        return {"index": self.index, "start_ion": self.start_ion, "laser_pj": self.laser_pj,
                "field_factor": self.field_factor, "field_V_per_nm": self.field_V_per_nm,
                "operating": self.operating.to_dict(),
                "peak": self.shape.to_dict(),
                "li_transport": None if self.li is None else {
                    **self.li.to_dict(),
                    "islands_per_site_event": float(self.li_args[2])},
                "conditions": [{"phase": e.phase.name, "local_field_v_nm": f,
                                "peak_temperature_k": self.operating.peak_temperature_k,
                                **_species_summary(sp)}
                               for e, f, sp in zip(self.emissions, self.fields,
                                                   self.species)]}


def _species_summary(model) -> dict:
    """The O2+/O+, O losses and charge-state ratios a species model sets (for the truth)."""
    ratios = {}
    for el, part in model.partitions:
        d = dict(part)
        one, two = d.get(f"{el}+", 0.0), d.get(f"{el}++", 0.0)
        if one > 0 and two > 0:
            ratios[f"{el}++/{el}+"] = two / one
    return {"o2_to_o_ratio": model.o2_to_o_ratio,
            "neutral_o_fraction": model.neutral_o_fraction,
            "neutral_losses": dict(model.neutral_losses),
            "dissociated_o": dict(model.dissociated_o),
            "charge_ratios": ratios}


class Projection(NamedTuple):
    """The instrument and projection of a run: flight path (mm), detection efficiency,
    detector radius (mm), image compression factor, field factor k of ``V = k F R``."""

    flight_path_mm: float
    efficiency: float
    detector_radius_mm: float
    icf: float
    k_factor: float


class RangeDesign(NamedTuple):
    """The range file the simulator writes: its table, the windows it was designed from,
    each species' ion volume (nm^3), the voltage the widths were designed at (V) and the
    widest peak shape."""

    table: RangeTable
    windows: list
    volumes: dict
    window_voltage_V: float
    window_shape: PeakShape


@dataclass
class Setup:
    """What a configuration implies: phases, segments, species, needle, instrument, windows.

    ``projection`` (:class:`Projection`) and ``ranging`` (:class:`RangeDesign`) group the
    instrument's and the range file's quantities; their fields are read as attributes of
    the setup too (``setup.efficiency``, ``setup.table``)."""

    config: SimulationConfig
    phases: list
    phase_kinds: list
    segments: list
    catalogue: Catalogue
    needle: Needle
    projection: Projection
    field_V_per_nm: float
    ranging: RangeDesign
    params: ReconstructionParameters
    target_ions: int
    fracture_fraction: float | None
    heating_scale: float
    field_map: FieldMap
    notes: list = field(default_factory=list)
    fracture_plan: FracturePlan | None = None
    fracture_outcome: FractureOutcome | None = None

    @property
    def flight_path_mm(self):
        """``projection.flight_path_mm``."""
        return self.projection.flight_path_mm

    @property
    def efficiency(self):
        """``projection.efficiency``."""
        return self.projection.efficiency

    @property
    def detector_radius_mm(self):
        """``projection.detector_radius_mm``."""
        return self.projection.detector_radius_mm

    @property
    def icf(self):
        """``projection.icf``."""
        return self.projection.icf

    @property
    def k_factor(self):
        """``projection.k_factor``."""
        return self.projection.k_factor

    @property
    def table(self):
        """``ranging.table``."""
        return self.ranging.table

    @property
    def windows(self):
        """``ranging.windows``."""
        return self.ranging.windows

    @property
    def volumes(self):
        """``ranging.volumes``."""
        return self.ranging.volumes

    @property
    def window_voltage_V(self):
        """``ranging.window_voltage_V``."""
        return self.ranging.window_voltage_V

    @property
    def window_shape(self):
        """``ranging.window_shape``."""
        return self.ranging.window_shape

    def voltage_steps(self) -> list:
        """``[(ion_index, factor), ...]``: where crack events step the voltage up."""
        if self.fracture_outcome is None:
            return []
        return [(i, f) for i, f in self.fracture_outcome.voltage_steps() if i < self.target_ions]

    @property
    def emissions(self) -> list:
        """The first segment's emission of each phase."""
        return self.segments[0].emissions

    @property
    def density(self) -> np.ndarray:
        """The first segment's event density of each phase at its mean field (events per
        nm^3)."""
        return np.array([e.event_density_per_nm3 for e in self.segments[0].emissions])

    @property
    def max_density(self) -> float:
        return float(self.density.max())

    @property
    def fractured(self) -> bool:
        return self.fracture_fraction is not None and self.target_ions < self.config.ions


def _species_weights(setup_emissions, densities, area_fractions, scale=1.0, out=None):
    w: dict[str, float] = {} if out is None else out
    for em, rho, a in zip(setup_emissions, densities, area_fractions):
        for name, p in em.probabilities.items():
            w[name] = w.get(name, 0.0) + p * rho * a * scale
    return w


def _phase_emission(phase: Phase, kind: str, species, hydrogen) -> Emission:
    if kind == "coating":
        em = emission(phase, species, free_oxygen=False)
    else:
        em = emission(phase, species)
    return with_hydrogen(em, hydrogen)


def _run_draws(seed: int) -> np.random.Generator:
    """The generator of per-run quantities (heating scatter, the field map's pole pattern's
    rotation, laser side, Li's burst state),
    apart from the run's stream so that they do not shift it."""
    return np.random.default_rng([seed, 1])


def prepare(config: SimulationConfig) -> Setup:
    """Derive phases, segments, emission tables, needle, projection and range windows."""
    ins = _instrument(config.instrument)
    geo = config.geometry
    base = config.species
    main = resolve_material(config.material)
    phases: list[Phase] = [main]
    kinds = ["material"]
    for spec in config.phases:
        phases.append(resolve_material(spec.material))
        kinds.append("phase")
    coat_el = COATINGS[config.coating]
    thickness = config.coating_thickness_nm if coat_el else 0.0
    if coat_el:
        phases.append(None)                      # the coating's phase depends on the species
        kinds.append("coating")
    draws = _run_draws(config.seed)
    evap = config.evaporation
    heating_scale = 1.0
    if evap.heating_scatter > 0:
        heating_scale = float(np.exp(evap.heating_scatter * draws.standard_normal()))
    # pole pattern's rotation, -, -, laser side, -, - (all six drawn: the order of the run's
    # draws stays that of earlier versions)
    lattice = draws.random(6)
    n_p = len(phases)
    if coat_el:
        phases[-1] = coating_phase(coat_el, base)
    fmap = field_map(evap, 2 * math.pi * lattice[3], 2 * math.pi * lattice[0])
    factors = fmap.factors
    n_b = len(factors)

    bounds = [a for a, _ in config.segments] + [config.ions]

    # segments: the apex's temperature and field, and every phase's emission in every bin
    segments: list[Segment] = []
    all_emissions = []
    for s, (start, pj) in enumerate(config.segments):
        op = operating_point(evap, pj, coated=bool(coat_el), radius_nm=geo.apex_radius_nm,
                             thickness_nm=thickness,
                             detection_rate=config.multihit.detection_rate,
                             efficiency=ins.efficiency, heating_scale=heating_scale,
                             fixed_field_v_nm=config.field_v_nm)
        seg_fields, seg_species, ems, bin_ems = [], [], [], []
        for p, kind in enumerate(kinds):       # each phase at its own field [mechanism 3]
            seg_fields.append(op.oxide_field_v_nm
                              * phase_field_ratio(evap, phases[p], kind, main))
        needed: dict = {}
        for p, kind in enumerate(kinds):            # every Kingham curve in one call each
            for el, fs in kingham_fields_needed(phases[p], kind, seg_fields[p] * factors,
                                                evap, base.singly_charged).items():
                needed.setdefault(el, []).extend(fs)
        for el, fs in needed.items():
            prepare_kingham(el, fs)
        for p, kind in enumerate(kinds):
            ph = phases[p]
            f_local = seg_fields[p]
            per_bin = []
            for k in range(n_b):
                sp = species_at(base, ph, kind, f_local * factors[k],
                                bin_temperature(op, factors[k]), evap)
                per_bin.append(_phase_emission(ph, kind, sp, config.hydrogen))
                if k == n_b // 2:
                    seg_species.append(sp)
            ems.append(per_bin[n_b // 2])
            bin_ems.append(per_bin)
            all_emissions += per_bin
        density = np.array([em.event_density_per_nm3 for per in bin_ems for em in per])
        shape = config.peak if config.peak is not None else peak_shape_at(
            config.instrument, op.tail_fraction, op.cooling_time_ns)
        segments.append(Segment(s, int(start), int(bounds[s + 1]), float(pj),
                                op, seg_fields, seg_species, ems, bin_ems, s * n_p * n_b, n_b,
                                factors, density,
                                seg_fields[0] / segments[0].field_V_per_nm
                                if segments else 1.0,
                                seg_fields[0], shape, None, np.zeros(6)))
    catalogue = Catalogue(all_emissions)
    _li_transport(config, segments, catalogue, ins.efficiency, geo)

    # the run's length: requested, or cut by a fracture (a fixed fraction, or the model's)
    plan, outcome = _fracture_plan(config, segments, catalogue, ins.efficiency,
                                   _needle(geo, thickness, bool(coat_el)), kinds)
    frac = config.fracture if isinstance(config.fracture, float) else None
    target = config.ions
    if frac is not None:
        target = max(1, min(config.ions, int(math.floor(frac * config.ions))))
    elif outcome is not None and outcome.fracture is not None:
        target = outcome.fracture.ion_index
        frac = target / config.ions
    for seg in segments:
        seg.stop_ion = min(seg.stop_ion, target)

    needle = _needle(geo, thickness, bool(coat_el))
    icf = derived_icf(geo, ins.flight_path_mm)
    field_v = segments[0].field_V_per_nm

    # the run's highest voltage, for window widths: depth of N detected ions, with margin
    em0 = segments[0].emissions[0]
    neutral = sum(pr for name, pr in em0.probabilities.items()
                  if catalogue.neutral_mask[catalogue.index[name]])
    det_per_event = (1.0 - neutral) * ins.efficiency
    vol_est = 1.25 * target / (em0.event_density_per_nm3 * det_per_event)
    _, r_end = needle.depth_from_volume(vol_est)
    v_design = geo.k_factor * max(s.field_V_per_nm for s in segments) * float(r_end[0])
    window_shape = max((s.shape for s in segments), key=lambda sh: sh.tail_tau_ns)

    # expected species shares (for naming merged windows), weighted by segment length
    r_out = geo.apex_radius_nm * math.cos(math.radians(geo.shank_angle_deg))
    coat_area = 1.0 - max(r_out - thickness, 0.0) ** 2 / r_out ** 2 if coat_el else 0.0
    areas = [coat_area if k == "coating" else (0.05 if k == "phase" else 1 - coat_area)
             for k in kinds]
    weights: dict[str, float] = {}
    for seg in segments:
        length = max(seg.stop_ion - seg.start_ion, 0) / max(target, 1)
        _species_weights(seg.emissions, [e.event_density_per_nm3 for e in seg.emissions],
                         areas, length, weights)
    peaks = []
    for i, sp in enumerate(catalogue.species):
        if sp.charge == 0:
            continue
        for mz, ab in catalogue.peaks[i]:
            if ab >= window_shape.window_min_abundance:
                peaks.append((sp.name, mz, weights.get(sp.name, 0.0) * ab))
    windows = design_windows(peaks, window_shape, v_design, ins.flight_path_mm)
    volumes = {}
    for i, sp in enumerate(catalogue.species):
        if sp.charge == 0:
            continue
        # an ion's volume: its atoms times the atomic volume of the phase it mostly comes from
        src = max(range(n_p), key=lambda p: max(
            catalogue.probabilities[seg.row(p), i] * seg.emissions[p].event_density_per_nm3
            for seg in segments)
            * areas[p])
        volumes[sp.name] = sp.n_atoms * phases[src].atomic_volume_nm3
    table = range_table(windows, volumes)
    params = ReconstructionParameters(
        flight_path_mm=ins.flight_path_mm, efficiency=ins.efficiency,
        atomic_volume_nm3=main.atomic_volume_nm3,
        evaporation_field_V_per_nm=segments[0].field_V_per_nm,
        k_factor=geo.k_factor, icf=icf, protocol="geiser", radius="voltage",
        detector_radius_mm=geo.detector_radius_mm, instrument=ins.name, material=main.name)
    notes = list(dict.fromkeys(n for seg in segments for em in seg.emissions for n in em.notes))
    notes += isotope_warnings(catalogue.elements)    # U, Tc...: placed at one isotope
    if config.field_v_nm is not None:
        notes.append(f"the oxide field is fixed at {config.field_v_nm:g} V/nm (--field-v-nm): "
                     "the temperature model still sets the temperature, the field does not "
                     "follow it")
    if len(segments) > 1:
        notes.append("laser schedule: the .epos is reconstructed with each segment's field "
                     "(reconstruction_parameters hold the first segment's); a reconstruction "
                     "with one field misplaces the depth after each voltage jump")
    if frac is not None and target < config.ions:
        notes.append(f"the specimen fractured after {target:,} of the {config.ions:,} "
                     "requested ions (see 'fracture')")
    if outcome is not None and outcome.crack_events:
        notes.append(f"{len(outcome.crack_events)} crack event(s) without fracture: the "
                     "standing voltage steps up after each (see 'fracture')")
    return Setup(config=config, phases=phases, phase_kinds=kinds, segments=segments,
                 catalogue=catalogue, needle=needle,
                 projection=Projection(ins.flight_path_mm, ins.efficiency,
                                       geo.detector_radius_mm, icf, geo.k_factor),
                 field_V_per_nm=field_v,
                 ranging=RangeDesign(table, windows, volumes, v_design, window_shape),
                 params=params, target_ions=target, fracture_fraction=frac,
                 heating_scale=heating_scale, field_map=fmap,
                 notes=notes, fracture_plan=plan, fracture_outcome=outcome)


def _li_transport(config: SimulationConfig, segments: list, catalogue: Catalogue,
                  efficiency: float, geo) -> None:
    """Each segment's Li transport (:func:`.lithium.li_transport_at`) and the kernel's numbers.

    Site events per pulse: the detection rate over the detected ions per site event (the
    main phase's ions, plus the Li islands the flanks bring per site event, ``g q``, times
    the efficiency); islands take detections but no volume, and ``g`` depends on the
    front's speed, so the two are solved together (fixed-point iteration). The volume per
    event and the Li per event ``q`` are the main phase's in its middle field bin; the
    cap's lateral radius is the apex's, ``R cos(alpha)``."""
    li_idx = catalogue.li_index
    if config.mobility is None or li_idx < 0:
        return
    evap = config.evaporation
    cap = geo.apex_radius_nm * math.cos(math.radians(geo.shank_angle_deg))
    for seg in segments:
        row = seg.row(0)
        q = float(catalogue.probabilities[row, li_idx])
        if not q > 0:
            continue
        ions = float(np.sum(catalogue.probabilities[row][~catalogue.neutral_mask]))
        em = seg.emissions[0]
        op = seg.operating
        islands = 0.0
        for _ in range(100):
            t = li_transport_at(config.mobility, coated=config.coated, laser_pj=seg.laser_pj,
                                temperature_k=op.peak_temperature_k,
                                field_v_nm=seg.fields[0], cooling_time_ns=op.cooling_time_ns,
                                base_temperature_k=evap.base_temperature_k,
                                attempt_frequency_hz=evap.attempt_frequency_hz,
                                evaporation_time_ns=evap.evaporation_time_ns,
                                events_per_pulse=config.multihit.detection_rate
                                / max(efficiency * (ions + islands), 1e-12),
                                volume_per_event_nm3=1.0 / em.event_density_per_nm3,
                                cap_radius_nm=cap)
            done = abs(t.flank_supply * q - islands) <= 1e-9 * (1.0 + islands)
            islands = t.flank_supply * q
            if done:
                break
        seg.li = t
        seg.li_args[:] = (t.drift, t.dc_loss, t.flank_supply * q / t.island_atoms,
                          t.island_atoms, t.island_reach, t.island_spread_nm)


def _fracture_plan(config: SimulationConfig, segments: list, catalogue: Catalogue,
                   efficiency: float, needle: Needle, kinds: list):
    """The fracture model's plan of the run and its draw (:mod:`.fracture`): ``(plan,
    outcome)``; ``(None, None)`` unless ``config.fracture`` is ``"auto"``.

    The evaporated volume per detected ion of a segment follows the needle: each phase's
    detected ions per nm^3 weighted by its share of the swept volume, a Cr shell's share
    from the needle's geometry along the depth (large at the start of a coated run, just
    past the shell on the apex, the rim's share deeper down; a grain is local and left
    out), averaged over the segment."""
    if config.fracture != "auto":
        return None, None
    geo = config.geometry
    evap = config.evaporation
    thickness = needle.coating_thickness_nm
    stresses, rates = [], []
    for seg in segments:
        stresses.append(oxide_stress(evap, seg.operating, coated=config.coated,
                                     radius_nm=geo.apex_radius_nm, thickness_nm=thickness))
        rate = {"material": 0.0, "coating": 0.0}
        for em, kind in zip(seg.emissions, kinds):
            if kind in rate:
                neutral = sum(pr for name, pr in em.probabilities.items()
                              if catalogue.neutral_mask[catalogue.index[name]])
                # Li islands from the flanks (:mod:`.lithium`): ions that take no volume
                islands = seg.li_args[2] * seg.li_args[3] if kind == "material" else 0.0
                rate[kind] = (em.event_density_per_nm3 * (max(1.0 - neutral, 1e-9) + islands)
                              * efficiency)
        rates.append(rate)
    per_ion = _nm3_per_ion(needle, [s.start_ion for s in segments] + [config.ions], rates)
    plan = FracturePlan(config.ions, config.coated, geo.apex_radius_nm, geo.shank_angle_deg,
                        tuple(s.start_ion for s in segments), tuple(stresses), tuple(per_ion))
    return plan, draw_fracture(evap, plan, config.seed)


def _needle(geo, thickness: float, coated: bool) -> Needle:
    """The needle of the run: the shell's apex part evaporated (2 nm past it) at the start."""
    start_depth = geo.start_depth_nm
    if start_depth is None:
        start_depth = thickness + 2.0 if coated else 0.0
    return Needle(geo.apex_radius_nm, geo.shank_angle_deg, start_depth, thickness)


def _shell_share(needle: Needle, depth_abs_nm: np.ndarray) -> np.ndarray:
    """Share of the volume the cap sweeps at each absolute depth that lies in the shell."""
    s = needle.sin_a
    w = s + (1.0 - s) * (np.arange(400) + 0.5) / 400            # cos(theta) on the cap
    weight = (w - s) / np.sum(w - s)                              # swept volume ~ (w - s)
    out = np.zeros(len(depth_abs_nm))
    if needle.coating_thickness_nm <= 0:
        return out
    cos_a = math.cos(math.radians(needle.shank_angle_deg))
    r = needle.radius(depth_abs_nm)
    for j, (z, rr) in enumerate(zip(np.asarray(depth_abs_nm, float), np.atleast_1d(r))):
        rho = rr * np.sqrt(np.maximum(1.0 - w * w, 0.0))
        d = np.empty_like(w)
        _surface_distance_array(rho, rr * (w - 1.0) - z, needle.original_radius_nm, s, cos_a,
                                0.0, d)
        out[j] = float(np.sum(weight[d < needle.coating_thickness_nm]))
    return out


def _nm3_per_ion(needle: Needle, bounds: list, rates: list) -> tuple:
    """Evaporated volume per detected ion of each segment (``bounds``: first ion of each
    segment, then the last; ``rates``: detected ions per nm^3 of the oxide and the shell)."""
    out = []
    vol = 0.0
    step = 0.05                                   # nm of depth per step
    for s, rate in enumerate(rates):
        need = float(bounds[s + 1] - bounds[s])
        if need <= 0:
            out.append(1.0 / max(rate["material"], 1e-12))
            continue
        v0, got = vol, 0.0
        while got < need:
            z0, _ = needle.depth_from_volume(vol)
            z1 = float(z0[0]) + step
            dv = needle.volume_to_depth(z1) - vol
            f = float(_shell_share(needle, np.array([float(z0[0]) + step / 2]))[0])
            d = max((1.0 - f) * rate["material"] + f * rate["coating"], 1e-12)
            if got + d * dv >= need:
                dv = (need - got) / d
            got += d * dv
            vol += dv
        out.append((vol - v0) / need)
    return tuple(out)


# ---------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------

class _Tally:
    """Counts the truth keeps while chunks go by."""

    def __init__(self, setup: Setup):
        n_p = len(setup.phases)
        n_s = len(setup.catalogue)
        n_w = len(setup.table)
        n_seg = len(setup.segments)
        self.emitted = np.zeros((n_p, n_s), np.int64)
        self.emitted_by_segment = np.zeros((n_seg, n_p, n_s), np.int64)
        #: detected ions of each species per catalogue row (segment, phase, field bin)
        self.detected_by_row = np.zeros((len(setup.catalogue.emissions), n_s), np.int64)
        self.detected = np.zeros(n_s, np.int64)
        self.detected_by_segment = np.zeros((n_seg, n_s), np.int64)
        self.background_by_segment = np.zeros((n_seg, n_s), np.int64)
        self.lost_efficiency = np.zeros(n_s, np.int64)
        self.lost_off_detector = np.zeros(n_s, np.int64)
        # ions of each isotope peak (peak-shaped) and of each species (background) per
        # window; last row: unranged
        self.window_peak_counts = np.zeros((n_w + 1, len(setup.catalogue.peak_mz)), np.int64)
        self.window_background_species = np.zeros((n_w + 1, n_s), np.int64)
        self._peak_species = setup.catalogue.peak_species
        self.rows: list[tuple] = []
        self.voltages: list[list] = [[] for _ in range(n_seg)]
        self.segment_voltage: list[list] = [[None, None] for _ in range(n_seg)]
        self.segment_ions: list[list] = [[None, None] for _ in range(n_seg)]
        #: Li budget counts per segment (:func:`.lithium.li_budget`); ``island_left``: the
        #: atoms of the island being evaporated when the segment ended
        self.li = [dict.fromkeys(("site_li", "flank_li", "detected", "lost_to_efficiency",
                                  "background", "outside_field_of_view", "remaining"), 0)
                   for _ in range(n_seg)]
        self.events = np.zeros(n_seg, np.int64)
        self.li_island_left = 0
        #: atoms of the island being evaporated when each segment ended
        self.li_island_left_at_end = np.zeros(n_seg, np.int64)
        self.island_li_by_phase = np.zeros(n_p, np.int64)
        self.island_li_by_segment = np.zeros(n_seg, np.int64)
        self.n_detected = 0
        self.edges = np.empty(2 * n_w)
        self.edges[0::2] = setup.table.lo
        self.edges[1::2] = setup.table.hi

    def add_li(self, seg: int, li: int, species, kind, phase, det, ci, off) -> None:
        """Count a chunk's Li into the segment's budget (``kind``: the kernel's event kinds;
        ``phase``: each event's; ``det``, ``ci``, ``off``: detected, candidate and
        off-detector event indices)."""
        is_li = species == li
        pulsed = is_li & ((kind == 0) | (kind == 1))
        island = (kind == 1) | (kind == 3)
        cand = np.zeros(len(species), np.bool_)
        cand[ci] = True
        c = self.li[seg]
        c["site_li"] += int(np.count_nonzero(is_li & ((kind == 0) | (kind == 2))))
        c["flank_li"] += int(np.count_nonzero(island))
        by_phase = np.bincount(phase[island].astype(np.int64),
                               minlength=len(self.island_li_by_phase))
        self.island_li_by_phase += by_phase
        self.island_li_by_segment[seg] += int(by_phase.sum())
        c["background"] += int(np.count_nonzero((kind == 2) | (kind == 3)))
        n_det = int(np.count_nonzero(pulsed[det]))
        n_off = int(np.count_nonzero(pulsed[off]))
        c["detected"] += n_det
        c["outside_field_of_view"] += n_off
        c["lost_to_efficiency"] += int(np.count_nonzero(pulsed & ~cand))

    @property
    def window_counts(self) -> np.ndarray:
        """Peak-shaped ions of each species per window (last row: unranged)."""
        n_s = self.detected.shape[0]
        out = np.zeros((self.window_peak_counts.shape[0], n_s), np.int64)
        np.add.at(out.T, self._peak_species, self.window_peak_counts.T)
        return out

    @property
    def background(self) -> np.ndarray:
        """Detected ions of each species whose time of flight is background."""
        return self.window_background_species.sum(axis=0)

    @property
    def window_background(self) -> np.ndarray:
        """Background ions per window (last: unranged)."""
        return self.window_background_species.sum(axis=1)


#: Columns of a simulated run and their types (the .epos columns but x y z, then the truth).
COLUMNS = {"mass": np.float32, "tof": np.float32, "v_dc": np.float32, "det_x": np.float32,
           "det_y": np.float32, "pulse_delta": np.int32, "multiplicity": np.int32,
           "true_x": np.float32, "true_y": np.float32, "true_z": np.float32,
           "true_mz": np.float32, "species": np.int16, "background": np.bool_}


def _phase_shapes(setup: Setup):
    """Second phases as arrays for the kernel: spheres (r^2, cx, cy, cz, r, interface shift
    amplitude in nm), boxes, their phases.

    The shift amplitude is ``kappa (F_phase / F_main - 1) w`` (``interface_deflection``,
    ``interface_deflection_width_nm`` of :class:`.evaporation.EvaporationModel`, the
    first segment's fields: the ratio is the same in every segment)."""
    evap = setup.config.evaporation
    w = evap.interface_deflection_width_nm
    spheres, sphere_phase, boxes, box_phase = [], [], [], []
    fields0 = setup.segments[0].fields
    for p, kind in enumerate(setup.phase_kinds):
        if kind != "phase":
            continue
        shape = setup.config.phases[p - 1].shape
        if shape.kind == "sphere":
            d, cx, cy, cz = shape.params
            amp = evap.interface_deflection * (fields0[p] / fields0[0] - 1.0) * w
            spheres.append(((0.5 * d) ** 2, cx, cy, cz, 0.5 * d, amp))
            sphere_phase.append(p)
        else:
            boxes.append(tuple(shape.params))
            box_phase.append(p)
    coat = setup.phase_kinds.index("coating") if "coating" in setup.phase_kinds else -1
    return (np.array(spheres, np.float64).reshape(-1, 6), np.array(sphere_phase, np.int8),
            np.array(boxes, np.float64).reshape(-1, 6), np.array(box_phase, np.int8), coat)


@njit(inline="always", error_model="numpy")
def _deflect(ex, ey, rmax, fm, px, py, pz, ph_args):
    """Local magnification (:mod:`.evaporation`, mechanism 3): the launch point moved up
    the field map's gradient (``fm.shift_u``, ``fm.shift_v`` in cap radii, looked up
    at the launch point), and, near a grain's surface (distance ``d`` of the atom's site
    ``px, py, pz``), along the lateral part of the surface's normal by
    ``A exp(-d^2 / 2 w^2)``: ``A`` laterally where the surface is vertical, nothing at
    the grain's top and bottom (no kink at its axis)."""
    n = fm.shift_u.shape[0]
    if rmax > 0.0:
        iu = min(max(int((ex / rmax + 1.0) * 0.5 * n), 0), n - 1)
        iv = min(max(int((ey / rmax + 1.0) * 0.5 * n), 0), n - 1)
        ex += fm.shift_u[iv, iu] * rmax
        ey += fm.shift_v[iv, iu] * rmax
    w = ph_args.deflect_width
    sp = ph_args.spheres
    for j in range(sp.shape[0]):
        if sp[j, 5] == 0.0:
            continue
        dx = px - sp[j, 1]
        dy = py - sp[j, 2]
        dz = pz - sp[j, 3]
        r3 = math.sqrt(dx * dx + dy * dy + dz * dz)
        d = r3 - sp[j, 4]
        if abs(d) < 6.0 * w and r3 > 1e-9:
            a = sp[j, 5] * math.exp(-0.5 * d * d / (w * w)) / r3
            ex += a * dx
            ey += a * dy
    return ex, ey


class NeedleArgs(NamedTuple):
    """The needle for :func:`_events_kernel` (nm; see :class:`.specimen.Needle`)."""

    inv_rho: float              # volume per candidate event (nm^3)
    r0: float                   # apex radius
    growth: float
    swept: float                # swept-area factor
    start: float                # depth at which recording starts
    sin_a: float
    ro: float                   # original radius
    cos_a: float
    thickness: float            # coating thickness (0: none)


class PhaseArgs(NamedTuple):
    """Where each phase is, and the catalogue rows of this segment."""

    coat: int                   # the coating's phase index (-1: none)
    spheres: np.ndarray         # (n, 6): r^2, cx, cy, cz, r, interface shift (nm)
    sphere_phase: np.ndarray
    boxes: np.ndarray           # (n, 6)
    box_phase: np.ndarray
    accept: np.ndarray          # per row: event density over the highest
    row0: int
    n_bins: int                 # field bins per phase
    deflect_width: float        # w of the interface's local magnification (nm)


class TableArgs(NamedTuple):
    """The catalogue's alias tables (:class:`.species.Catalogue`)."""

    alias_p: np.ndarray
    alias_i: np.ndarray
    neutral: np.ndarray


class LiArgs(NamedTuple):
    """Li transport (:class:`Segment`): Li's species index (-1: off), the segment's
    ``li_args``, and the island being evaporated, carried over chunks and segments
    (atoms left, centre ``x, y`` in cap radii)."""

    li: int
    args: np.ndarray
    state: np.ndarray


class MapArgs(NamedTuple):
    """The field map (:class:`.evaporation.FieldMap`): bins, and the local magnification's
    displacement grids (cap radii)."""

    grid: np.ndarray
    shift_u: np.ndarray
    shift_v: np.ndarray


class DetectArgs(NamedTuple):
    """Detection efficiency and the lateral blur (nm) of :mod:`.detection`."""

    efficiency: float
    blur: float
    blur_extra: float
    blur_width: float


class EventOut(NamedTuple):
    """Per kept event: its truth, species, launch and state (compacted to the front)."""

    depth: np.ndarray
    radius: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    phase: np.ndarray
    species: np.ndarray
    theta: np.ndarray
    xb: np.ndarray
    yb: np.ndarray
    candidate: np.ndarray
    vol: np.ndarray
    kind: np.ndarray
    clump: np.ndarray
    ix: np.ndarray
    iy: np.ndarray
    fbin: np.ndarray


@njit(inline="always", error_model="numpy")
def _field_bin(px, py, rmax, grid):
    """The field-map bin of a launch point: the pixel of ``grid`` (:class:`.evaporation.FieldMap`)
    under it, the cap's lateral radius ``rmax`` mapped to the grid's half-width."""
    n = grid.shape[0]
    if rmax <= 0.0:
        return grid[n // 2, n // 2]
    iu = int((px / rmax + 1.0) * 0.5 * n)
    iv = int((py / rmax + 1.0) * 0.5 * n)
    return grid[min(max(iv, 0), n - 1), min(max(iu, 0), n - 1)]


@njit(inline="always", error_model="numpy")
def _phase_at(px, py, pz, rho, ph_args, nd):
    """The phase at a point of the surface, and its distance (nm) from the coating's inner
    surface (-1 without a coating): the last sphere or box holding it, the coating shell
    over all."""
    ph = 0
    for j in range(ph_args.spheres.shape[0]):
        dx = px - ph_args.spheres[j, 1]
        dy = py - ph_args.spheres[j, 2]
        dz = pz - ph_args.spheres[j, 3]
        if dx * dx + dy * dy + dz * dz <= ph_args.spheres[j, 0]:
            ph = ph_args.sphere_phase[j]
    for j in range(ph_args.boxes.shape[0]):
        bx = ph_args.boxes
        if (bx[j, 0] <= px <= bx[j, 1] and bx[j, 2] <= py <= bx[j, 3]
                and bx[j, 4] <= pz <= bx[j, 5]):
            ph = ph_args.box_phase[j]
    dist = -1.0
    if nd.thickness > 0.0:
        d = _surface_distance(rho, pz, nd.ro, nd.sin_a, nd.cos_a, nd.start)
        ph = ph_args.coat if d < nd.thickness else ph
        dist = abs(d - nd.thickness)
    return ph, dist


@njit(cache=True, nogil=True, error_model="numpy")
def _events_kernel(spacing, u, g, vol0, nd, ph_args, tab, lb, dt, fmap, out):
    """One chunk of evaporation events, in order: steps 1-3 of the module docstring.

    ``spacing``: exponential volume spacings (units of 1/rho_max); ``u``: rows of
    uniforms (polar angle, azimuth, thinning, species, efficiency; with Li
    transport (``lb.li >= 0``) also drift, loss between pulses, island start,
    island size, island azimuth); species come from the (segment, phase, field bin)
    row's alias table (``tab``, see :func:`.species.alias_table`), the field bin
    from the launch point on the map grid ``fmap`` (:class:`MapArgs`, whose
    displacement grids also move every launch point: local magnification,
    :func:`_deflect`); ``g``: rows of standard normals (blur; with Li transport,
    the island's reach and its atoms' spread). ``nd`` (:class:`NeedleArgs`),
    ``ph_args`` (:class:`PhaseArgs`), ``lb`` (:class:`LiArgs`), ``dt``
    (:class:`DetectArgs`).

    Li transport (:mod:`.lithium`): a site's Li reached the surface with the
    probability ``drift`` and then left between pulses with ``dc_loss`` (``kind``
    2: a background ion); after each site event an island arrives with
    ``islands per site event``: a geometric number of Li atoms (mean
    ``island atoms``) centred at ``|N(0, reach)|`` cap radii in from the rim at a
    uniform azimuth; the following events are its atoms, one after another, at the
    current surface, spread by ``island spread`` nm (``kind`` 1, or 3 when the atom
    left between pulses); they take no volume. Kept events are compacted to the
    front of ``out`` (:class:`EventOut`); ``xb``, ``yb`` are the blurred lateral
    position of the evaporation site and ``theta`` its launch angle for the ions that
    pass the efficiency (``candidate``), theta -1 if blurred off the cap; ``vol``
    the evaporated volume; ``clump``, ``ix``, ``iy`` the island's state after each
    kept event. Geometry from :mod:`.specimen`, blur from :mod:`.detection`.
    """
    n = spacing.shape[0]
    n_s = tab.alias_p.shape[1]
    vol = vol0
    kept = 0
    two_pi = 2.0 * math.pi
    r0, c, k, start = nd.r0, nd.growth, nd.swept, nd.start
    sin_a, cos_a = nd.sin_a, nd.cos_a
    zz, rr = _depth_radius(vol, r0, c, k, start)
    li = lb.li
    la = lb.args
    clump = lb.state[0]
    ix = lb.state[1]
    iy = lb.state[2]
    n_b = ph_args.n_bins
    for i in range(n):
        kind = 0
        if li >= 0 and clump > 0.0:                       # the island's next atom
            rmax = rr * cos_a
            spread = la[5] / max(rmax, 1e-9)
            ex = ix + spread * np.float64(g[2, i])
            ey = iy + spread * np.float64(g[3, i])
            rn = math.sqrt(ex * ex + ey * ey)
            if rn > 0.999:
                ex *= 0.999 / rn
                ey *= 0.999 / rn
            px = ex * rmax
            py = ey * rmax
            rho = math.sqrt(px * px + py * py)
            w = math.sqrt(max(1.0 - (rho / rr) ** 2, 0.0))
            pz = rr * (w - 1.0) - zz + start
            ph, dist = _phase_at(px, py, pz, rho, ph_args, nd)
            fb = _field_bin(px, py, rmax, fmap.grid)
            s = li
            kind = 3 if u[6, i] < la[1] else 1
            clump -= 1.0
        else:
            vol += spacing[i] * nd.inv_rho
            zz, rr = _depth_radius_near(vol, rr, r0, c, k, start)
            w = sin_a + (1.0 - sin_a) * math.sqrt(np.float64(u[0, i]))
            rho = rr * math.sqrt(max(1.0 - w * w, 0.0))
            cp = math.cos(two_pi * np.float64(u[1, i]))
            sp = math.sqrt(max(1.0 - cp * cp, 0.0))
            px = rho * cp
            py = rho * sp if u[1, i] < 0.5 else -rho * sp
            pz = rr * (w - 1.0) - zz + start
            ph, dist = _phase_at(px, py, pz, rho, ph_args, nd)
            fb = _field_bin(px, py, rr * cos_a, fmap.grid)
            row = ph_args.row0 + ph * n_b + fb
            if not u[2, i] < ph_args.accept[row - ph_args.row0]:
                continue
            us = np.float64(u[3, i]) * n_s
            j = min(int(us), n_s - 1)
            s = j if us - j < tab.alias_p[row, j] else tab.alias_i[row, j]
            if li >= 0:
                if s == li and u[5, i] < la[0] and u[6, i] < la[1]:
                    kind = 2                                # left between pulses
                if u[7, i] < la[2]:                         # an island arrives
                    x = np.float64(u[8, i])
                    size = 1.0
                    if la[3] > 1.0 and x > 0.0:
                        size += math.floor(math.log(x) / math.log(1.0 - 1.0 / la[3]))
                    reach = abs(la[4] * np.float64(g[2, i]))
                    rad = 1.0 - reach
                    az = two_pi * np.float64(u[9, i])
                    if rad < 0.0:                           # past the centre: other side
                        rad = min(-rad, 0.999)
                        az += math.pi
                    ix = rad * math.cos(az)
                    iy = rad * math.sin(az)
                    clump = size
        ex, ey = _deflect(px, py, rr * cos_a, fmap, px, py, pz, ph_args)
        out.depth[kept] = zz
        out.radius[kept] = rr
        out.x[kept] = px
        out.y[kept] = py
        out.z[kept] = pz
        out.phase[kept] = ph
        out.species[kept] = s
        out.vol[kept] = vol
        out.kind[kept] = kind
        out.clump[kept] = clump
        out.ix[kept] = ix
        out.iy[kept] = iy
        out.fbin[kept] = fb
        cand = not tab.neutral[s] and u[4, i] < dt.efficiency
        out.candidate[kept] = cand
        if cand:
            sig = _blur_sigma(dist, dt.blur, dt.blur_extra, dt.blur_width)
            out.xb[kept], out.yb[kept], out.theta[kept] = _blurred_position(
                ex, ey, rr, sig, np.float64(g[0, i]), np.float64(g[1, i]))
        kept += 1
    lb.state[0] = clump
    lb.state[1] = ix
    lb.state[2] = iy
    return kept, vol


@njit(cache=True, nogil=True)
def _tally_rows(det, phase, fbin, species, row0, n_bins, out):
    """Add the detected events ``det`` to ``out[row, species]``, row = (segment, phase, bin)."""
    for j in range(det.shape[0]):
        i = det[j]
        out[row0 + phase[i] * n_bins + fbin[i], species[i]] += 1


@njit(cache=True, nogil=True)
def _gather_detected(det, x, y, z, radius, species, kf, true_x, true_y, true_z, v_dc, sp_out,
                     volt, sp):
    """Copy the detected events' truth into the output columns (one pass)."""
    for j in range(det.shape[0]):
        i = det[j]
        true_x[j] = x[i]
        true_y[j] = y[i]
        true_z[j] = z[i]
        volt[j] = kf * radius[i]
        v_dc[j] = volt[j]
        sp[j] = species[i]
        sp_out[j] = species[i]


class _Buffers:
    """Work arrays of one chunk, reused."""

    def __init__(self, m: int):
        # positions end up float32 (and the blurred ones only feed an arctan2): float32 here
        # halves the memory traffic; depth, radius, theta and volume stay float64
        self.f = {k: np.empty(m, np.float64 if k in ("depth", "radius", "theta", "vol", "clump",
                                                     "ix", "iy")
                              else np.float32)
                  for k in ("depth", "radius", "x", "y", "z", "theta", "xb", "yb", "vol",
                            "clump", "ix", "iy")}
        self.phase = np.empty(m, np.int8)
        self.species = np.empty(m, np.int64)
        self.candidate = np.empty(m, np.bool_)
        self.kind = np.empty(m, np.int8)
        self.fbin = np.empty(m, np.int8)
        f = self.f
        self.out = EventOut(f["depth"], f["radius"], f["x"], f["y"], f["z"], self.phase,
                            self.species, f["theta"], f["xb"], f["yb"], self.candidate,
                            f["vol"], self.kind, f["clump"], f["ix"], f["iy"], self.fbin)


def _generate(setup: Setup, rng: np.random.Generator, tally: _Tally, cols: dict,
              progress=None) -> None:
    """Fill ``cols`` (arrays of ``setup.target_ions`` rows) chunk by chunk, in evaporation
    order, segment after segment."""
    cfg = setup.config
    geo = cfg.geometry
    cat = setup.catalogue
    needle = setup.needle
    L = setup.flight_path_mm
    n_target = setup.target_ions
    n_s = len(cat)
    n_p = len(setup.phases)
    spheres, sphere_phase, boxes, box_phase, coat = _phase_shapes(setup)
    sin_a = needle.sin_a
    cos_a = math.sqrt(1.0 - sin_a * sin_a)
    row_at = np.unique(np.round(np.linspace(0, n_target - 1, DEPTH_ROWS)).astype(np.int64))
    vol0 = 0.0
    m = CHUNK_EVENTS
    buf = _Buffers(m)
    window = np.empty(0, np.int64)
    state = np.zeros(3)                               # the Li island: atoms left, centre
    steps = setup.voltage_steps()
    tab = TableArgs(cat.alias_probability, cat.alias_index, cat.neutral_mask)
    dt_args = DetectArgs(setup.efficiency, geo.blur_nm, geo.interface_blur_nm,
                         geo.interface_width_nm)
    fm = setup.field_map
    map_args = MapArgs(fm.grid, fm.shift_u, fm.shift_v)
    for seg in setup.segments:
        stop = min(seg.stop_ion, n_target)
        if tally.n_detected >= stop:
            continue
        use_mob = seg.li is not None
        li = cat.li_index if use_mob else -1
        rho_max = seg.max_density
        accept = seg.density / rho_max
        nd_args = NeedleArgs(1.0 / rho_max, needle.apex_radius_nm, needle.growth,
                             needle.swept_area_factor, needle.start_depth_nm, sin_a,
                             needle.original_radius_nm, cos_a,
                             float(needle.coating_thickness_nm))
        kf = setup.k_factor * seg.field_V_per_nm
        n_u = 10 if use_mob else 5
        n_g = 4 if use_mob else 2
        tally.segment_ions[seg.index][0] = tally.n_detected
        step = max(1, (stop - tally.n_detected) // 256)
        while tally.n_detected < stop:
            # 1-3. events: position, phase, density, species, mobility, efficiency, blur
            spacing = rng.standard_exponential(m)
            u = rng.random((n_u, m), dtype=np.float32)
            g = rng.standard_normal((n_g, m), dtype=np.float32)
            n_ev, vol_end = _events_kernel(
                spacing, u, g, vol0, nd_args,
                PhaseArgs(coat, spheres, sphere_phase, boxes, box_phase, accept, seg.row0,
                          seg.n_bins, float(cfg.evaporation.interface_deflection_width_nm)),
                tab, LiArgs(li, seg.li_args, state), dt_args,
                map_args, buf.out)
            ev = {k: a[:n_ev] for k, a in buf.f.items()}
            species = buf.species[:n_ev]
            ci = np.flatnonzero(buf.candidate[:n_ev])
            # 3. the detector: inverse projection, detector edge
            dx, dy, on = detector_hits(ev["theta"][ci], np.arctan2(ev["yb"][ci], ev["xb"][ci]),
                                       flight_path_mm=L, icf=setup.icf,
                                       detector_radius_mm=setup.detector_radius_mm)
            det = ci[on]
            off = ci[~on]
            need = stop - tally.n_detected
            if len(det) >= need:          # stop at the segment's (or run's) last ion
                n_ev = int(det[need - 1]) + 1
                det = det[:need]
                on_idx = np.flatnonzero(on)[:need]
                dx, dy = dx[on_idx], dy[on_idx]
                off = off[off < n_ev]
                species = species[:n_ev]
                ci = ci[ci < n_ev]
                vol0 = float(buf.f["vol"][n_ev - 1])
                state[0] = buf.f["clump"][n_ev - 1]
                state[1] = buf.f["ix"][n_ev - 1]
                state[2] = buf.f["iy"][n_ev - 1]
            else:
                dx, dy = dx[on], dy[on]
                vol0 = vol_end
            phase = buf.phase[:n_ev]
            _tally_rows(det, phase, buf.fbin, species, seg.row0, seg.n_bins,
                        tally.detected_by_row)
            emitted = np.bincount(phase.astype(np.int64) * n_s + species,
                                  minlength=n_p * n_s).reshape(n_p, n_s)
            tally.emitted += emitted
            tally.emitted_by_segment[seg.index] += emitted
            tally.events[seg.index] += n_ev
            if use_mob:
                tally.add_li(seg.index, li, species, buf.kind[:n_ev], phase, det, ci, off)
            ion_ev = np.bincount(species, minlength=n_s)
            ion_ev[cat.neutral_mask] = 0
            tally.lost_efficiency += ion_ev - np.bincount(species[ci], minlength=n_s)
            tally.lost_off_detector += np.bincount(species[off], minlength=n_s)
            # 4. spectrum, written straight into the output columns
            nd = len(det)
            first = tally.n_detected
            sl = slice(first, first + nd)
            volt = np.empty(nd)
            sp = np.empty(nd, np.int64)
            _gather_detected(det, ev["x"], ev["y"], ev["z"], ev["radius"], species, kf,
                             cols["true_x"][sl], cols["true_y"][sl], cols["true_z"][sl],
                             cols["v_dc"][sl], cols["species"][sl], volt, sp)
            for ion, factor in steps:              # crack events: the voltage steps up
                if ion < first + nd:
                    k0 = max(ion - first, 0)
                    volt[k0:] *= factor
                    cols["v_dc"][sl][k0:] *= np.float32(factor)
            if len(window) < nd:
                window = np.empty(nd, np.int64)
            bg_before = tally.window_background_species.sum(axis=0)
            sample_spectrum(sp, volt, L, seg.shape, cat, tally.edges, rng,
                            {"mass": cols["mass"][sl], "tof": cols["tof"][sl],
                             "mz_true": cols["true_mz"][sl],
                             "background": cols["background"][sl], "window": window[:nd],
                             "counts": tally.window_peak_counts,
                             "counts_background": tally.window_background_species},
                            forced_background=buf.kind[det] >= 2 if use_mob else None)
            tally.background_by_segment[seg.index] += \
                tally.window_background_species.sum(axis=0) - bg_before
            cols["det_x"][sl] = dx
            cols["det_y"][sl] = dy
            # 5. pulses
            mult, pdelta = pulse_structure(nd, rng, cfg.multihit)
            cols["multiplicity"][sl] = mult
            cols["pulse_delta"][sl] = pdelta
            counts = np.bincount(sp, minlength=n_s)
            tally.detected += counts
            tally.detected_by_segment[seg.index] += counts
            if nd:
                lo = (-first) % step
                tally.voltages[seg.index].extend(volt[lo::step].tolist())
                if tally.segment_voltage[seg.index][0] is None:
                    tally.segment_voltage[seg.index][0] = float(volt[0])
                tally.segment_voltage[seg.index][1] = float(volt[-1])
            for i in row_at[(row_at >= first) & (row_at < first + nd)]:
                j = int(i - first)
                tally.rows.append((int(i), float(ev["depth"][det[j]] - needle.start_depth_nm),
                                   float(ev["radius"][det[j]]), float(volt[j]), seg.index))
            tally.n_detected += nd
            if progress is not None:
                progress(nd)
        tally.segment_ions[seg.index][1] = tally.n_detected
        tally.li_island_left_at_end[seg.index] = int(round(state[0]))
    tally.li_island_left = int(round(state[0]))
    if setup.fractured:
        _fracture_burst(cols, n_target, rng)


def fracture_burst_ions(n: int) -> int:
    """Ions of the final burst of a run of ``n`` ions that ends in a fracture."""
    return int(min(max(FRACTURE_BURST["fraction"] * n, FRACTURE_BURST["min_ions"]), n // 10))


def _fracture_burst(cols: dict, n: int, rng: np.random.Generator) -> None:
    """Re-pulse the last ions of a fractured run as a burst (few pulses, many ions each)."""
    m = fracture_burst_ions(n)
    if m <= 0:
        return
    mult = cols["multiplicity"]
    first = n - m
    while first > 0 and mult[first] == 0:      # start at the first ion of a pulse
        first -= 1
    b_mult, b_delta = pulse_structure(n - first, rng, FRACTURE_BURST["multihit"])
    mult[first:n] = b_mult
    cols["pulse_delta"][first:n] = b_delta


# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SimulatedRun:
    """A simulated run in memory.

    Attributes
    ----------
    config : SimulationConfig
    run : Run
        The ``.epos`` columns, x y z reconstructed with the true parameters (the
        efficiency calibrated for true depths: ``reconstruction_parameters``).
    true_x, true_y, true_z : ndarray of float32
        True positions (nm, truth frame).
    true_mass : ndarray of float32
        Each ion's exact isotopic m/n (no peak shape).
    species_index : ndarray of int16
        Index into ``species``.
    background : ndarray of bool
        Ions whose time of flight is background.
    species : tuple of str
    ranges : RangeTable
    truth : dict
        What ``run.truth.json`` holds.
    reconstruction_parameters : ReconstructionParameters
    """

    config: SimulationConfig
    run: Run
    true_x: np.ndarray
    true_y: np.ndarray
    true_z: np.ndarray
    true_mass: np.ndarray
    species_index: np.ndarray
    background: np.ndarray
    species: tuple
    ranges: RangeTable
    truth: dict
    reconstruction_parameters: ReconstructionParameters

    def to_dict(self) -> dict:
        return self.truth

    def summary(self) -> dict:
        """The headline numbers of the truth (for ``--json``)."""
        return summary(self.truth)


def _allocate(n: int, folder: str | None) -> dict:
    """Output columns of n rows: arrays, or memory maps in ``folder``."""
    names = list(COLUMNS) + ["x", "y", "z", "v_pulse"]
    types = dict(COLUMNS, x=np.float32, y=np.float32, z=np.float32, v_pulse=np.float32)
    if folder is None:
        cols = {k: np.empty(n, types[k]) for k in names}
        cols["v_pulse"][:] = 0.0
        return cols
    # new memory maps read as zeros, so v_pulse (laser pulsing: 0 V) needs no pass
    return {k: np.memmap(os.path.join(folder, k), dtype=types[k], mode="w+", shape=(n,))
            for k in names}


def _reconstruction_voltage(setup: Setup, tally: _Tally, v_dc, folder):
    """The voltage the reconstruction takes the radius from: ``v_dc``, or, with segments of
    different fields, ``v_dc * F_first / F_segment`` (each segment's radius from its field),
    and without the steps of crack events (the simulated needle keeps its shape: the
    reconstruction with the true parameters takes the needle's radius)."""
    factors = [s.field_factor for s in setup.segments]
    steps = setup.voltage_steps()
    if all(f == factors[0] for f in factors) and not steps:
        return v_dc
    if folder is None:
        v = np.empty(len(v_dc), np.float32)
    else:
        v = np.memmap(os.path.join(folder, "v_rec"), mode="w+", shape=(len(v_dc),),
                      dtype=np.float32)
    for seg in setup.segments:
        a, b = tally.segment_ions[seg.index]
        if a is None or b is None or b <= a:
            continue
        v[a:b] = v_dc[a:b] * np.float32(factors[0] / seg.field_factor)
    for ion, factor in steps:
        v[ion:] /= np.float32(factor)
    return v


def simulate(config: SimulationConfig, progress=None, scratch_folder=None) -> SimulatedRun:
    """Simulate a run.

    Parameters
    ----------
    config : SimulationConfig
    progress : callable, optional
        Called with the number of ions detected in each chunk.
    scratch_folder : str, optional
        Build the columns as memory maps in this (existing, empty) folder
        instead of memory, for runs larger than memory
        (:func:`liprobe.simulate.simulate_to_files` does this). Default: memory.

    Returns
    -------
    SimulatedRun

    Examples
    --------
    A Cr-coated NMC811 needle at 5 pJ, 20,000 detected ions;
    :func:`~liprobe.simulate.write_simulation` writes it as files.

    >>> from liprobe.simulate import SimulationConfig, simulate
    >>> sim = simulate(SimulationConfig("NMC811", coating="Cr", ions=20_000, seed=1))
    >>> sim.run.n_ions, sim.run.columns[:5]
    (20000, ('x', 'y', 'z', 'mass', 'tof'))
    >>> len(sim.ranges.ions), sim.ranges.ions[0].name    # every species emitted is ranged
    (26, 'Li+')

    The truth: what the oxide gave off keeps LiNi0.8Co0.1Mn0.1O2's Ni/(Ni+Co+Mn);
    the apex's peak temperature and the local fields came from the 5 pJ pulse
    (:mod:`.evaporation`), and the detected O2+/O+ from the oxide's field:

    >>> s = sim.summary()
    >>> ev = s["evaporated_by_phase"]["NMC811"]
    >>> print(f"{ev['Ni'] / (ev['Ni'] + ev['Co'] + ev['Mn']):.1f}")   # 20,000 ions: +-0.01
    0.8
    >>> f = s["field"]
    >>> print(f"{s['temperature']['peak_k']:.0f} K, oxide {f['oxide_mean_v_nm']:.1f} V/nm, "
    ...       f"Cr shell {f['coating_mean_v_nm']:.1f} V/nm")
    303 K, oxide 25.8 V/nm, Cr shell 21.6 V/nm
    >>> print(f"{s['ratios']['O2+/O+ (detected)']:.1f}")
    2.6
    """
    from ..ranging import assign

    folder = scratch_folder

    setup = prepare(config)
    rng = np.random.default_rng(config.seed)
    tally = _Tally(setup)
    n = setup.target_ions
    cols = _allocate(n, folder)
    _generate(setup, rng, tally, cols, progress)
    if folder is None:
        labels = np.empty(n, np.int16 if len(setup.table) < 32000 else np.int32)
    else:
        labels = np.memmap(os.path.join(folder, "labels"), mode="w+", shape=(n,),
                           dtype=np.int16 if len(setup.table) < 32000 else np.int32)
    assign(cols["mass"], setup.table, out=labels)
    v_rec = _reconstruction_voltage(setup, tally, cols["v_dc"], folder)
    # depths as an analyst who calibrated them would reconstruct (truth: reconstruction_depth)
    params, scale = depth_calibration(setup, tally)
    vol = window_volumes(setup.table, setup.params.atomic_volume_nm3) * scale
    rec = reconstruct(cols["det_x"], cols["det_y"], v_rec, params, labels=labels,
                      window_volume_nm3=vol, out=(cols["x"], cols["y"], cols["z"]))
    del labels, v_rec
    run = Run.from_arrays(
        meta={"format": "epos", "simulated": True},
        x=cols["x"], y=cols["y"], z=cols["z"], mass=cols["mass"], tof=cols["tof"],
        v_dc=cols["v_dc"], v_pulse=cols["v_pulse"], det_x=cols["det_x"],
        det_y=cols["det_y"], pulse_delta=cols["pulse_delta"], multiplicity=cols["multiplicity"])
    burst = fracture_burst_ions(int(tally.detected.sum())) if setup.fractured else 0
    truth = build_truth(setup, tally, {}, burst, params)
    truth["reconstruction"] = rec.to_dict()
    return SimulatedRun(config, run, cols["true_x"], cols["true_y"], cols["true_z"],
                        cols["true_mz"], cols["species"], cols["background"],
                        setup.catalogue.names, setup.table, truth, params)
