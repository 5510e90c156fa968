"""The forward model, chunk by chunk, and the truth it keeps.

One :class:`numpy.random.Generator` (``default_rng(seed)``) is drawn from in a
fixed order, chunk after chunk of ``CHUNK_EVENTS`` candidate events, so the
same configuration and seed give the same bytes, and memory is bounded by
the chunk whatever the number of ions. Per chunk:

1. **Specimen** (:mod:`.specimen`): evaporation events at the densest phase's
   event density, in evaporation order (exponential volume spacings), at
   their depth, cap radius and angles; each event's phase (coating shell,
   second phases, the material), and thinning to that phase's density
   ``1 / (Omega * atoms per event)``.
2. **Species** (:mod:`.species`): each event's ion (or neutral O2) from its
   phase's emission table.
3. **Detection** (:mod:`.detection`): neutrals are never detected; ions are
   detected with the instrument's efficiency, blurred, projected with the
   reconstruction module's inverse projection, and lost beyond the detector.
   Recording stops at the requested number of detected ions.
4. **Spectrum** (:mod:`.spectrum`): an isotope per ion, its time of flight
   at the voltage ``V = k F R`` (Gaussian timing, thermal tail), or, for a
   background fraction, a time of flight uniform over the acquisition window;
   m/n from the time of flight.
5. **Pulses**: multiplicities and pulse deltas.

Then the ``.epos`` positions are reconstructed from the detector data with
the true parameters (:func:`liprobe.reconstruct.reconstruct`), and the truth
is assembled.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..errors import FormatError
from ..instruments import instrument as _instrument
from ..rangetable import RangeTable
from ..reconstruct import (ReconstructionParameters, field_of_view_factor, reconstruct,
                           window_volumes)
from ..run import Run
from .._jit import njit
from .detection import _blur_sigma, _blurred_position, derived_icf, detector_hits, pulse_structure
from .materials import Phase, resolve_material
from .parameters import COATINGS, SimulationConfig
from .species import NEUTRAL_O2, Catalogue, coating_phase, emission
from .specimen import Needle, _depth_radius, _depth_radius_near, _surface_distance
from .spectrum import (TOF_CONSTANT, background_fraction_in, design_windows, fwhm_da,
                       range_table, sample_spectrum, window_fractions)

__all__ = ["CHUNK_EVENTS", "Setup", "SimulatedRun", "prepare", "simulate", "write_simulation",
           "simulate_to_files", "output_paths"]

#: Candidate events per chunk (fixed: the output depends on it).
CHUNK_EVENTS = 1 << 18
#: Rows of the radius/voltage-against-depth table of the truth.
DEPTH_ROWS = 101


# ---------------------------------------------------------------------------
# set-up: everything derived from the configuration before any random draw
# ---------------------------------------------------------------------------

@dataclass
class Setup:
    """What a configuration implies: phases, species, needle, instrument, windows."""

    config: SimulationConfig
    phases: list
    phase_kinds: list
    emissions: list
    catalogue: Catalogue
    needle: Needle
    flight_path_mm: float
    efficiency: float
    detector_radius_mm: float
    icf: float
    field_V_per_nm: float
    k_factor: float
    density: np.ndarray          # events per nm^3, per phase
    window_voltage_V: float
    table: RangeTable
    windows: list
    volumes: dict
    params: ReconstructionParameters
    notes: list = field(default_factory=list)

    @property
    def max_density(self) -> float:
        return float(self.density.max())


def _species_weights(setup_emissions, densities, area_fractions):
    w: dict[str, float] = {}
    for em, rho, a in zip(setup_emissions, densities, area_fractions):
        for name, p in em.probabilities.items():
            w[name] = w.get(name, 0.0) + p * rho * a
    return w


def prepare(config: SimulationConfig) -> Setup:
    """Derive phases, emission tables, needle, projection and range windows from ``config``."""
    ins = _instrument(config.instrument)
    geo = config.geometry
    model = config.species
    main = resolve_material(config.material)
    phases: list[Phase] = [main]
    kinds = ["material"]
    emissions = [emission(main, model)]
    for spec in config.phases:
        ph = resolve_material(spec.material)
        phases.append(ph)
        kinds.append("phase")
        emissions.append(emission(ph, model))
    coat_el = COATINGS[config.coating]
    thickness = config.coating_thickness_nm if coat_el else 0.0
    if coat_el:
        cp = coating_phase(coat_el, model)
        phases.append(cp)
        kinds.append("coating")
        emissions.append(emission(cp, model, free_oxygen=False))
    catalogue = Catalogue(emissions)
    start = geo.start_depth_nm
    if start is None:
        start = thickness + 2.0 if coat_el else 0.0
    needle = Needle(geo.apex_radius_nm, geo.shank_angle_deg, start, thickness)
    density = np.array([em.event_density_per_nm3 for em in emissions])
    icf = derived_icf(geo, ins.flight_path_mm)
    field_v = main.evaporation_field_V_per_nm
    shape = config.peak_shape

    # the run's highest voltage, for window widths: depth of N detected ions, with margin
    em0 = emissions[0]
    det_per_event = (1.0 - em0.probabilities.get(NEUTRAL_O2, 0.0)) * ins.efficiency
    vol_est = 1.25 * config.ions / (density[0] * det_per_event)
    _, r_end = needle.depth_from_volume(vol_est)
    v_design = geo.k_factor * field_v * float(r_end[0])

    # expected species shares (for naming merged windows)
    r_out = geo.apex_radius_nm * math.cos(math.radians(geo.shank_angle_deg))
    coat_area = 1.0 - max(r_out - thickness, 0.0) ** 2 / r_out ** 2 if coat_el else 0.0
    areas = []
    for k in kinds:
        areas.append(coat_area if k == "coating" else (0.05 if k == "phase" else 1 - coat_area))
    weights = _species_weights(emissions, density, areas)
    peaks = []
    for i, sp in enumerate(catalogue.species):
        if sp.charge == 0:
            continue
        for mz, ab in catalogue.peaks[i]:
            if ab >= shape.window_min_abundance:
                peaks.append((sp.name, mz, weights.get(sp.name, 0.0) * ab))
    windows = design_windows(peaks, shape, v_design, ins.flight_path_mm)
    volumes = {}
    for i, sp in enumerate(catalogue.species):
        if sp.charge == 0:
            continue
        # an ion's volume: its atoms times the atomic volume of the phase it mostly comes from
        src = max(range(len(phases)),
                  key=lambda p: catalogue.probabilities[p, i] * density[p] * areas[p])
        volumes[sp.name] = sp.n_atoms * phases[src].atomic_volume_nm3
    table = range_table(windows, volumes)
    params = ReconstructionParameters(
        flight_path_mm=ins.flight_path_mm, efficiency=ins.efficiency,
        atomic_volume_nm3=main.atomic_volume_nm3, evaporation_field_V_per_nm=field_v,
        k_factor=geo.k_factor, icf=icf, protocol="geiser", radius="voltage",
        detector_radius_mm=geo.detector_radius_mm, instrument=ins.name, material=main.name)
    notes = [n for em in emissions for n in em.notes]
    if config.laser_pj != model.laser_pj:
        notes.append(f"laser_pj {config.laser_pj} is recorded only: the species shares are "
                     f"those of {model.laser_pj} pJ (laser-energy dependence is not modelled "
                     "yet)")
    return Setup(config, phases, kinds, emissions, catalogue, needle, ins.flight_path_mm,
                 ins.efficiency, geo.detector_radius_mm, icf, field_v, geo.k_factor, density,
                 v_design, table, windows, volumes, params, notes)


# ---------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------

class _Tally:
    """Counts the truth keeps while chunks go by."""

    def __init__(self, setup: Setup):
        n_p = len(setup.phases)
        n_s = len(setup.catalogue)
        n_w = len(setup.table)
        self.emitted = np.zeros((n_p, n_s), np.int64)
        self.detected = np.zeros(n_s, np.int64)
        self.lost_efficiency = np.zeros(n_s, np.int64)
        self.lost_off_detector = np.zeros(n_s, np.int64)
        # ions of each isotope peak (peak-shaped) and of each species (background) per
        # window; last row: unranged
        self.window_peak_counts = np.zeros((n_w + 1, len(setup.catalogue.peak_mz)), np.int64)
        self.window_background_species = np.zeros((n_w + 1, n_s), np.int64)
        self._peak_species = setup.catalogue.peak_species
        self.rows: list[tuple] = []
        self.n_detected = 0
        self.edges = np.empty(2 * n_w)
        self.edges[0::2] = setup.table.lo
        self.edges[1::2] = setup.table.hi

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
    """Second phases as arrays for the kernel: spheres (r^2, cx, cy, cz), boxes, their phases."""
    spheres, sphere_phase, boxes, box_phase = [], [], [], []
    for p, kind in enumerate(setup.phase_kinds):
        if kind != "phase":
            continue
        shape = setup.config.phases[p - 1].shape
        if shape.kind == "sphere":
            d, cx, cy, cz = shape.params
            spheres.append(((0.5 * d) ** 2, cx, cy, cz))
            sphere_phase.append(p)
        else:
            boxes.append(tuple(shape.params))
            box_phase.append(p)
    coat = setup.phase_kinds.index("coating") if "coating" in setup.phase_kinds else -1
    return (np.array(spheres, np.float64).reshape(-1, 4), np.array(sphere_phase, np.int8),
            np.array(boxes, np.float64).reshape(-1, 6), np.array(box_phase, np.int8), coat)


@njit(cache=True, nogil=True, error_model="numpy")
def _events_kernel(spacing, u, g, vol0, inv_rho, r0, c, k, start, sin_a, ro, cos_a, thickness,
                   coat_phase, spheres, sphere_phase, boxes, box_phase, accept, alias_p,
                   alias_i, neutral, efficiency, blur, blur_extra, blur_width,
                   depth, radius, x, y, z, phase, species, theta, xb, yb, candidate):
    """One chunk of evaporation events, in order: steps 1-3 of the module docstring.

    ``spacing``: exponential volume spacings (units of 1/rho_max); ``u``: five
    rows of uniforms (polar angle, azimuth, thinning, species, efficiency);
    species come from the phase's alias table (``alias_p``, ``alias_i``, see
    :func:`.species.alias_table`);
    ``g``: two rows of standard normals (blur). Kept events are compacted to
    the front of the outputs; ``xb``, ``yb`` are the blurred lateral position
    and ``theta`` its launch angle for the ions that pass the efficiency
    (``candidate``), theta -1 if blurred off the cap.
    Geometry from :mod:`.specimen`, blur from :mod:`.detection`.
    """
    n = spacing.shape[0]
    n_s = alias_p.shape[1]
    vol = vol0
    kept = 0
    two_pi = 2.0 * math.pi
    zz, rr = _depth_radius(vol, r0, c, k, start)
    for i in range(n):
        vol += spacing[i] * inv_rho
        zz, rr = _depth_radius_near(vol, rr, r0, c, k, start)
        w = sin_a + (1.0 - sin_a) * math.sqrt(np.float64(u[0, i]))
        rho = rr * math.sqrt(max(1.0 - w * w, 0.0))
        cp = math.cos(two_pi * np.float64(u[1, i]))
        sp = math.sqrt(max(1.0 - cp * cp, 0.0))
        px = rho * cp
        py = rho * sp if u[1, i] < 0.5 else -rho * sp
        pz = rr * (w - 1.0) - zz + start
        ph = 0
        for j in range(spheres.shape[0]):
            dx = px - spheres[j, 1]
            dy = py - spheres[j, 2]
            dz = pz - spheres[j, 3]
            if dx * dx + dy * dy + dz * dz <= spheres[j, 0]:
                ph = sphere_phase[j]
        for j in range(boxes.shape[0]):
            if (boxes[j, 0] <= px <= boxes[j, 1] and boxes[j, 2] <= py <= boxes[j, 3]
                    and boxes[j, 4] <= pz <= boxes[j, 5]):
                ph = box_phase[j]
        dist = -1.0
        if thickness > 0.0:
            d = _surface_distance(rho, pz, ro, sin_a, cos_a, start)
            ph = coat_phase if d < thickness else ph
            dist = abs(d - thickness)
        if not u[2, i] < accept[ph]:
            continue
        us = np.float64(u[3, i]) * n_s
        j = min(int(us), n_s - 1)
        s = j if us - j < alias_p[ph, j] else alias_i[ph, j]
        depth[kept] = zz
        radius[kept] = rr
        x[kept] = px
        y[kept] = py
        z[kept] = pz
        phase[kept] = ph
        species[kept] = s
        cand = s != neutral and u[4, i] < efficiency
        candidate[kept] = cand
        if cand:
            sig = _blur_sigma(dist, blur, blur_extra, blur_width)
            xb[kept], yb[kept], theta[kept] = _blurred_position(
                px, py, rr, sig, np.float64(g[0, i]), np.float64(g[1, i]))
        kept += 1
    return kept, vol


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
        # halves the memory traffic; depth, radius and theta stay float64
        self.f = {k: np.empty(m, np.float64 if k in ("depth", "radius", "theta") else np.float32)
                  for k in ("depth", "radius", "x", "y", "z", "theta", "xb", "yb")}
        self.phase = np.empty(m, np.int8)
        self.species = np.empty(m, np.int64)
        self.candidate = np.empty(m, np.bool_)


def _generate(setup: Setup, rng: np.random.Generator, tally: _Tally, cols: dict,
              progress=None) -> None:
    """Fill ``cols`` (arrays of ``config.ions`` rows) chunk by chunk, in evaporation order."""
    cfg = setup.config
    geo = cfg.geometry
    shape = cfg.peak_shape
    cat = setup.catalogue
    needle = setup.needle
    L = setup.flight_path_mm
    n_target = cfg.ions
    n_s = len(cat)
    rho_max = setup.max_density
    accept = setup.density / rho_max
    kf = setup.k_factor * setup.field_V_per_nm
    spheres, sphere_phase, boxes, box_phase, coat = _phase_shapes(setup)
    sin_a = needle.sin_a
    cos_a = math.sqrt(1.0 - sin_a * sin_a)
    row_at = np.unique(np.round(np.linspace(0, n_target - 1, DEPTH_ROWS)).astype(np.int64))
    vol0 = 0.0
    m = CHUNK_EVENTS
    buf = _Buffers(m)
    window = np.empty(0, np.int64)
    while tally.n_detected < n_target:
        # 1-3. events: position, phase, density, species, efficiency, blurred launch angle
        spacing = rng.standard_exponential(m)
        u = rng.random((5, m), dtype=np.float32)
        g = rng.standard_normal((2, m), dtype=np.float32)
        n_ev, vol0 = _events_kernel(
            spacing, u, g, vol0, 1.0 / rho_max, needle.apex_radius_nm, needle.growth,
            needle.swept_area_factor, needle.start_depth_nm, sin_a, needle.original_radius_nm,
            cos_a, float(needle.coating_thickness_nm), coat, spheres, sphere_phase, boxes,
            box_phase, accept, cat.alias_probability, cat.alias_index, cat.neutral_index,
            setup.efficiency,
            geo.blur_nm, geo.interface_blur_nm, geo.interface_width_nm,
            buf.f["depth"], buf.f["radius"], buf.f["x"], buf.f["y"], buf.f["z"], buf.phase,
            buf.species, buf.f["theta"], buf.f["xb"], buf.f["yb"], buf.candidate)
        ev = {k: a[:n_ev] for k, a in buf.f.items()}
        species = buf.species[:n_ev]
        ci = np.flatnonzero(buf.candidate[:n_ev])
        # 3. the detector: inverse projection, detector edge
        dx, dy, on = detector_hits(ev["theta"][ci], np.arctan2(ev["yb"][ci], ev["xb"][ci]),
                                   flight_path_mm=L, icf=setup.icf,
                                   detector_radius_mm=setup.detector_radius_mm)
        det = ci[on]
        off = ci[~on]
        need = n_target - tally.n_detected
        if len(det) > need:               # stop at the requested number of detected ions
            n_ev = int(det[need - 1]) + 1
            det = det[:need]
            on_idx = np.flatnonzero(on)[:need]
            dx, dy = dx[on_idx], dy[on_idx]
            off = off[off < n_ev]
            species = species[:n_ev]
            ci = ci[ci < n_ev]
        else:
            dx, dy = dx[on], dy[on]
        phase = buf.phase[:n_ev]
        tally.emitted += np.bincount(phase.astype(np.int64) * n_s + species,
                                     minlength=tally.emitted.size).reshape(tally.emitted.shape)
        ion_ev = np.bincount(species, minlength=n_s)
        if cat.neutral_index >= 0:
            ion_ev[cat.neutral_index] = 0
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
        if len(window) < nd:
            window = np.empty(nd, np.int64)
        sample_spectrum(sp, volt, L, shape, cat, tally.edges, rng,
                        {"mass": cols["mass"][sl], "tof": cols["tof"][sl],
                         "mz_true": cols["true_mz"][sl],
                         "background": cols["background"][sl], "window": window[:nd],
                         "counts": tally.window_peak_counts,
                         "counts_background": tally.window_background_species})
        cols["det_x"][sl] = dx
        cols["det_y"][sl] = dy
        # 5. pulses
        mult, pdelta = pulse_structure(nd, rng, cfg.multihit)
        cols["multiplicity"][sl] = mult
        cols["pulse_delta"][sl] = pdelta
        tally.detected += np.bincount(sp, minlength=n_s)
        for i in row_at[(row_at >= first) & (row_at < first + nd)]:
            j = int(i - first)
            tally.rows.append((int(i), float(ev["depth"][det[j]] - needle.start_depth_nm),
                               float(ev["radius"][det[j]]), float(volt[j])))
        tally.n_detected += nd
        if progress is not None:
            progress(nd)


# ---------------------------------------------------------------------------
# truth
# ---------------------------------------------------------------------------

def _atoms(counts_by_species, cat: Catalogue) -> dict:
    a = np.asarray(counts_by_species, np.int64) @ cat.atom_matrix
    return {el: int(n) for el, n in zip(cat.elements, a)}


def _composition(atoms: dict) -> dict:
    total = sum(atoms.values())
    return {"atoms": atoms, "atomic_fractions": {el: (n / total if total else None)
                                                 for el, n in atoms.items()}}


def _truth(setup: Setup, tally: _Tally, files: dict) -> dict:
    cfg = setup.config
    cat = setup.catalogue
    shape = cfg.peak_shape
    table = setup.table
    L = setup.flight_path_mm
    names = cat.names
    rows = sorted(tally.rows)
    v_samples = np.array([r[3] for r in rows])
    v_expect = np.quantile(v_samples, (np.arange(17) + 0.5) / 17)   # the run's voltages
    wc = tally.window_counts
    peak_of = {(cat.names[int(sp)], float(mz)): k
               for k, (sp, mz) in enumerate(zip(cat.peak_species, cat.peak_mz))}
    # per species
    species = {}
    emitted_total = tally.emitted.sum(axis=0)
    in_own = np.zeros(len(cat), np.int64)
    win_ion = [r.ion.name for r in table.ranges]
    for w, ion in enumerate(win_ion):
        if ion in cat.index:
            in_own[cat.index[ion]] += wc[w, cat.index[ion]]
    for i, sp in enumerate(cat.species):
        peaks_detected = int(tally.detected[i] - tally.background[i])
        species[sp.name] = {
            "charge": sp.charge, "atoms": dict(sp.atoms),
            "emitted": int(emitted_total[i]),
            "emitted_by_phase": {ph.name: int(tally.emitted[p, i])
                                 for p, ph in enumerate(setup.phases)},
            "detected": int(tally.detected[i]),
            "detected_as_background": int(tally.background[i]),
            "not_detected_efficiency": int(tally.lost_efficiency[i]),
            "not_detected_off_detector": int(tally.lost_off_detector[i]),
            "in_own_windows": int(in_own[i]),
            "in_other_windows": int(wc[:-1, i].sum() - in_own[i]),
            "outside_windows": int(wc[-1, i]),
            "peak_fraction_outside_own_windows": ((peaks_detected - int(in_own[i])) /
                                                  peaks_detected if peaks_detected else None),
        }
    # analytic expectation per window from the detected counts and the peak shape
    lo, hi = table.lo, table.hi
    frac = np.zeros((len(cat), len(table)))
    for k, (mz, ab, s) in enumerate(zip(cat.peak_mz, cat.peak_abundance, cat.peak_species)):
        if cat.species[s].charge == 0 or tally.detected[s] == 0:
            continue
        frac[s] += ab * window_fractions(mz, lo, hi, v_expect, shape, L)
    peak_counts = (tally.detected - tally.background).astype(np.float64)
    expected = peak_counts[:, None] * frac                    # species x window
    n_bg = int(tally.background.sum())
    expected_bg = n_bg * background_fraction_in(lo, hi, shape)
    windows = []
    for w, r in enumerate(table.ranges):
        counts = {names[i]: int(n) for i, n in enumerate(wc[w]) if n}
        exp = {names[i]: float(x) for i, x in enumerate(expected[:, w]) if x >= 0.01}
        windows.append({
            "index": w, "lo": r.lo, "hi": r.hi, "ion": r.ion.name, "volume_nm3": r.volume,
            "color": r.color, "counts": counts, "background": int(tally.window_background[w]),
            "background_by_species": {names[i]: int(n) for i, n in
                                      enumerate(tally.window_background_species[w]) if n},
            "total": int(wc[w].sum() + tally.window_background[w]),
            "expected": exp, "expected_background": float(expected_bg[w]),
            "expected_total": float(expected[:, w].sum() + expected_bg[w]),
            "designed_for": [dict(d, count=int(tally.window_peak_counts[
                w, peak_of[(d["species"], float(d["mz"]))]])) for d in
                setup.windows[w].to_dict()["designed_for"]],
        })
    unranged = {"counts": {names[i]: int(n) for i, n in enumerate(wc[-1]) if n},
                "background": int(tally.window_background[-1])}
    unranged["total"] = sum(unranged["counts"].values()) + unranged["background"]
    # compositions
    by_phase = {ph.name: _composition(_atoms(tally.emitted[p], cat))
                for p, ph in enumerate(setup.phases)}
    overall = _composition(_atoms(emitted_total, cat))
    expected_ranged = np.zeros(len(cat))
    for w, ion in enumerate(win_ion):
        i = cat.index[ion]
        expected_ranged[i] += expected[:, w].sum() + expected_bg[w]
    exp_atoms = expected_ranged @ cat.atom_matrix
    exp_total = exp_atoms.sum()
    neutral_atoms = {}
    if cat.neutral_index >= 0:
        only = np.zeros(len(cat), np.int64)
        only[cat.neutral_index] = emitted_total[cat.neutral_index]
        neutral_atoms = _atoms(only, cat)
    composition = {
        "evaporated": {"overall": overall, "by_phase": by_phase},
        "detected_ions_atoms": _atoms(tally.detected, cat),
        "neutral_atoms": neutral_atoms,
        "expected_ranged": {
            "atoms": {el: float(n) for el, n in zip(cat.elements, exp_atoms)},
            "atomic_fractions": {el: float(n / exp_total) for el, n in
                                 zip(cat.elements, exp_atoms)},
            "how": "detected counts of each species times the fraction of its peak shape "
                   "(averaged over the run's voltages) inside each window, plus the background "
                   "expected there, decomposed with the windows' ions",
        },
    }
    # peak widths of each species' main isotope
    widths = {}
    v_fwhm = np.quantile(v_samples, np.linspace(0.05, 0.95, 9))
    for i, sp in enumerate(cat.species):
        if sp.charge == 0 or tally.detected[i] == 0:
            continue
        k = int(np.argmax(np.where(cat.peak_species == i, cat.peak_abundance, -1)))
        mz = float(cat.peak_mz[k])
        fw, sig, tau = fwhm_da(mz, v_fwhm, shape, L)
        widths[sp.name] = {"mz": mz, "abundance": float(cat.peak_abundance[k]), "fwhm_da": fw,
                           "mrp_fwhm": mz / fw, "sigma_da_at_median_voltage": sig,
                           "tail_tau_da_at_median_voltage": tau}
    n_det = int(tally.detected.sum())
    o_ions = {n: int(tally.detected[cat.index[n]]) for n in ("O+", "O2+") if n in cat.index}
    ratios = {}
    if o_ions.get("O+"):
        ratios["O2+/O+ (detected)"] = o_ions.get("O2+", 0) / o_ions["O+"]
    needle = setup.needle
    spec = needle.to_dict()
    if needle.coating_thickness_nm > 0:
        spec["coating_inner_radius_at_start_nm"] = float(
            needle.outer_radius_at(-needle.apex_radius_nm) - needle.coating_thickness_nm /
            math.cos(math.radians(needle.shank_angle_deg)))
    ins = _instrument(cfg.instrument)
    # depth scale of a point-projection reconstruction of this needle (see specimen.py)
    g = field_of_view_factor(setup.detector_radius_mm, L, setup.icf, "geiser")
    evaporated_volume = sum(
        float(tally.emitted[p] @ cat.atom_matrix.sum(axis=1)) * ph.atomic_volume_nm3
        for p, ph in enumerate(setup.phases))
    detected_volume = sum(float(tally.detected[i]) * setup.volumes[sp.name]
                          for i, sp in enumerate(cat.species) if sp.charge > 0)
    swept = 1.0 - needle.sin_a
    depth_ratio = (detected_volume / evaporated_volume / setup.efficiency) * swept / (g * g) \
        if evaporated_volume else None
    calibrated = setup.params.replace(efficiency=setup.efficiency * depth_ratio) \
        if depth_ratio else None
    return {
        "liprobe_version": __version__,
        "seed": cfg.seed,
        "inputs": cfg.to_dict(),
        "files": files,
        "frame": "truth frame: nm, origin at the apex when the acquisition starts, z <= 0 "
                 "into the specimen (the reconstruction's frame, CAMECA convention)",
        "instrument": {**ins.to_dict(), "detector_radius_mm_simulated": setup.detector_radius_mm,
                       "icf": setup.icf, "timing_sigma_ns": shape.timing_sigma_ns,
                       "tof_constant": TOF_CONSTANT,
                       "tof_relation": "m/n = tof_constant * v_dc * tof^2 / flight_path_mm^2"},
        "reconstruction_parameters": setup.params.to_dict(),
        "reconstruction_depth": {
            "expected_ratio_reconstructed_to_true": depth_ratio,
            "parameters_depth_calibrated": calibrated.to_dict() if calibrated else None,
            "why": "a point-projection reconstruction stacks caps as if pi (R sin(theta_max))^2 "
                   "of specimen were imaged per unit depth (here sin^2(theta_max) = "
                   f"{g * g:.4f}); the needle's expanding cap sweeps pi (1 - sin(alpha)) R^2 "
                   f"({swept:.4f} pi R^2), and undetected neutrals take volume too, so depths "
                   "reconstructed with the true parameters come out short by this ratio; "
                   "'parameters_depth_calibrated' scales the efficiency to absorb it, as an "
                   "analyst calibrating depth would",
        },
        "specimen": spec,
        "phases": [{**ph.to_dict(), "kind": kind, "emission": em.to_dict(),
                    "event_density_per_nm3": float(rho)}
                   for ph, kind, em, rho in zip(setup.phases, setup.phase_kinds, setup.emissions,
                                                setup.density)],
        "ions_detected": n_det,
        "species": species,
        "windows": windows,
        "unranged": unranged,
        "composition": composition,
        "losses": {
            "neutral_o_fraction_of_o": cfg.species.neutral_o_fraction,
            "background_fraction_of_detected": n_bg / n_det if n_det else None,
            "background_ppm_per_ns": shape.background_ppm_per_ns,
            "ranged_fraction_of_detected": 1.0 - unranged["total"] / n_det if n_det else None,
        },
        "ratios": ratios,
        "peak_widths": widths,
        "depth_profile": {"ion_index": [r[0] for r in rows], "depth_nm": [r[1] for r in rows],
                          "radius_nm": [r[2] for r in rows], "voltage_V": [r[3] for r in rows],
                          "note": "depth of the apex below its position when the acquisition "
                                  "started; V = k F R"},
        "range_window_voltage_V": setup.window_voltage_V,
        "notes": setup.notes,
    }


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
        The ``.epos`` columns, x y z reconstructed with the true parameters.
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


def summary(truth: dict) -> dict:
    """A short view of a truth dict: inputs, counts, compositions, ratios, geometry."""
    comp = truth["composition"]
    dp = truth["depth_profile"]
    return {
        "files": truth["files"],
        "seed": truth["seed"],
        "material": truth["inputs"]["material"], "coating": truth["inputs"]["coating"],
        "instrument": truth["inputs"]["instrument"],
        "ions_detected": truth["ions_detected"],
        "windows": len(truth["windows"]),
        "ranged_fraction": truth["losses"]["ranged_fraction_of_detected"],
        "background_fraction": truth["losses"]["background_fraction_of_detected"],
        "evaporated_atomic_fractions": comp["evaporated"]["overall"]["atomic_fractions"],
        "evaporated_by_phase": {k: v["atomic_fractions"]
                                for k, v in comp["evaporated"]["by_phase"].items()},
        "expected_ranged_atomic_fractions": comp["expected_ranged"]["atomic_fractions"],
        "ratios": truth["ratios"],
        "depth_nm": dp["depth_nm"][-1] if dp["depth_nm"] else None,
        "radius_nm": [dp["radius_nm"][0], dp["radius_nm"][-1]] if dp["radius_nm"] else None,
        "voltage_V": [dp["voltage_V"][0], dp["voltage_V"][-1]] if dp["voltage_V"] else None,
        "reconstruction_parameters": truth["reconstruction_parameters"],
        "notes": truth["notes"],
    }


def output_paths(path) -> dict:
    """``run.epos`` -> its range file, truth file and true positions beside it."""
    p = os.fspath(path)
    stem = os.path.splitext(p)[0]
    return {"data": p, "ranges": stem + ".rrng", "truth": stem + ".truth.json",
            "truth_positions": stem + ".truth.pos"}


def _files_entry(paths: dict, fmt: str) -> dict:
    return {"data": os.path.basename(paths["data"]), "format": fmt,
            "ranges": os.path.basename(paths["ranges"]),
            "truth": os.path.basename(paths["truth"]),
            "truth_positions": os.path.basename(paths["truth_positions"]),
            "truth_positions_columns": "x y z (nm, truth frame), exact isotopic m/n (Da)"}


#: Runs of more ions than this are built in memory-mapped temporary files
#: (beside the output) instead of memory: about 60 bytes per ion either way.
MEMORY_LIMIT_IONS = 1 << 22


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


def _run(config: SimulationConfig, folder: str | None, progress=None) -> SimulatedRun:
    from ..ranging import assign

    setup = prepare(config)
    rng = np.random.default_rng(config.seed)
    tally = _Tally(setup)
    n = config.ions
    cols = _allocate(n, folder)
    _generate(setup, rng, tally, cols, progress)
    if folder is None:
        labels = np.empty(n, np.int16 if len(setup.table) < 32000 else np.int32)
    else:
        labels = np.memmap(os.path.join(folder, "labels"), mode="w+", shape=(n,),
                           dtype=np.int16 if len(setup.table) < 32000 else np.int32)
    assign(cols["mass"], setup.table, out=labels)
    vol = window_volumes(setup.table, setup.params.atomic_volume_nm3)
    rec = reconstruct(cols["det_x"], cols["det_y"], cols["v_dc"], setup.params, labels=labels,
                      window_volume_nm3=vol, out=(cols["x"], cols["y"], cols["z"]))
    del labels
    run = Run.from_arrays(
        meta={"format": "epos", "simulated": True},
        x=cols["x"], y=cols["y"], z=cols["z"], mass=cols["mass"], tof=cols["tof"],
        v_dc=cols["v_dc"], v_pulse=cols["v_pulse"], det_x=cols["det_x"],
        det_y=cols["det_y"], pulse_delta=cols["pulse_delta"], multiplicity=cols["multiplicity"])
    truth = _truth(setup, tally, {})
    truth["reconstruction"] = rec.to_dict()
    return SimulatedRun(config, run, cols["true_x"], cols["true_y"], cols["true_z"],
                        cols["true_mz"], cols["species"], cols["background"],
                        setup.catalogue.names, setup.table, truth, setup.params)


def simulate(config: SimulationConfig, progress=None) -> SimulatedRun:
    """Simulate a run in memory.

    Parameters
    ----------
    config : SimulationConfig
    progress : callable, optional
        Called with the number of ions detected in each chunk.

    Returns
    -------
    SimulatedRun
    """
    return _run(config, None, progress)


def _format_of(path, format):
    fmt = format or os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if fmt not in ("pos", "epos"):
        raise FormatError(f"cannot tell the format to write from the extension '.{fmt}' "
                          "(use .epos or .pos, or give the format)", path)
    return fmt


def _write_json(path, obj) -> None:
    from ..io._files import atomic_write

    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(_jsonable(obj), indent=1, allow_nan=False) + "\n")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_simulation(result: SimulatedRun, path, format: str | None = None) -> dict:
    """Write a simulated run: the data file, its ``.rrng``, ``.truth.json`` and ``.truth.pos``.

    Parameters
    ----------
    result : SimulatedRun
    path : str or path-like
        ``run.epos`` or ``run.pos``; the others go beside it
        (``run.rrng``, ``run.truth.json``, ``run.truth.pos``).
    format : {"epos", "pos"}, optional
        Default: from the extension.

    Returns
    -------
    dict
        The truth as written (its ``files`` entry names the files).
    """
    from ..io import write, write_ranges

    fmt = _format_of(path, format)
    paths = output_paths(path)
    folder = os.path.dirname(os.path.abspath(paths["data"]))
    if not os.path.isdir(folder):
        raise FormatError("folder does not exist", folder)
    write(paths["data"], result.run, fmt)
    write_ranges(paths["ranges"], result.ranges)
    write(paths["truth_positions"], Run.from_arrays(x=result.true_x, y=result.true_y,
                                                    z=result.true_z, mass=result.true_mass),
          "pos")
    truth = dict(result.truth)
    truth["files"] = _files_entry(paths, fmt)
    _write_json(paths["truth"], truth)
    return truth


def simulate_to_files(config: SimulationConfig, path, format: str | None = None,
                      progress=None, memory_limit_ions: int = MEMORY_LIMIT_IONS) -> dict:
    """Simulate and write, with memory bounded whatever the number of ions.

    Writes exactly what ``write_simulation(simulate(config), path, format)``
    writes (same bytes). Runs of more than ``memory_limit_ions`` ions are
    built in memory-mapped temporary files in a hidden folder beside ``path``
    (removed afterwards), so memory stays bounded by a chunk and the page cache.

    Returns
    -------
    dict
        The truth, as written to ``run.truth.json``.
    """
    import shutil
    import tempfile

    _format_of(path, format)
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FormatError("folder does not exist", folder)
    if config.ions <= memory_limit_ions:
        return write_simulation(_run(config, None, progress), path, format)
    tmp = tempfile.mkdtemp(prefix=".liprobe-simulate-", dir=folder)
    try:
        result = _run(config, tmp, progress)
        truth = write_simulation(result, path, format)
        del result
        return truth
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
