"""The truth of a simulated run: what ``run.truth.json`` holds.

Everything here is bookkeeping of what the forward model (:mod:`~liprobe.simulate.engine`)
did, never a second model: per species (emitted, detected, lost, in which
windows), per range window (counts by species, the background, and the
analytic expectation from the peak shapes), compositions (evaporated,
detected, expected after ranging), peak widths, the specimen, the depth
scale a point-projection reconstruction gives this needle, the segments,
the fracture and the Li transport and its budget. :func:`build_truth` assembles them;
:func:`summary` is the short view printed by ``liprobe simulate --json``.

``setup`` is the :class:`~liprobe.simulate.engine.Setup` of the run and
``tally`` the engine's running counts (``_Tally``).
"""

from __future__ import annotations

import math

import numpy as np

from .._version import __version__
from ..instruments import instrument as _instrument
from ..spatial.reconstruct import field_of_view_factor
from .lithium import li_budget
from .parameters import COATINGS
from .species import Catalogue
from .spectrum import TOF_CONSTANT, background_fraction_in, fwhm_da, window_fractions

__all__ = ["build_truth", "summary"]


def _atoms(counts_by_species, cat: Catalogue) -> dict:
    a = np.asarray(counts_by_species, np.int64) @ cat.atom_matrix
    return {el: int(n) for el, n in zip(cat.elements, a)}


def _composition(atoms: dict) -> dict:
    total = sum(atoms.values())
    return {"atoms": atoms, "atomic_fractions": {el: (n / total if total else None)
                                                 for el, n in atoms.items()}}


def _expected_by_window(setup, tally):
    """Expected peak-shaped ions of each species per window, and background per window,
    summed over the segments (each with its own peak shape and voltages)."""
    cat = setup.catalogue
    table = setup.table
    L = setup.flight_path_mm
    lo, hi = table.lo, table.hi
    expected = np.zeros((len(cat), len(table)))
    expected_bg = np.zeros(len(table))
    for seg in setup.segments:
        det = tally.detected_by_segment[seg.index]
        if not det.sum() or not tally.voltages[seg.index]:
            continue
        v = np.asarray(tally.voltages[seg.index], np.float64)
        v_expect = np.quantile(v, (np.arange(17) + 0.5) / 17)       # the segment's voltages
        frac = np.zeros((len(cat), len(table)))
        for mz, ab, s in zip(cat.peak_mz, cat.peak_abundance, cat.peak_species):
            if cat.species[s].charge == 0 or det[s] == 0:
                continue
            frac[s] += ab * window_fractions(mz, lo, hi, v_expect, seg.shape, L)
        bg = tally.background_by_segment[seg.index]
        expected += (det - bg).astype(np.float64)[:, None] * frac
        expected_bg += float(bg.sum()) * background_fraction_in(lo, hi, seg.shape)
    return expected, expected_bg


def _ratio_of(counts, cat: Catalogue, num: str, den: str):
    i, j = cat.index.get(num), cat.index.get(den)
    if i is None or j is None or counts[j] == 0:
        return None
    return float(counts[i] / counts[j])


def _detected_ratios(counts, cat: Catalogue) -> dict:
    out = {}
    for num, den in (("O2+", "O+"), ("Mn++", "Mn+"), ("Ni++", "Ni+"), ("Co++", "Co+"),
                     ("Cr++", "Cr+")):
        r = _ratio_of(counts, cat, num, den)
        if r is not None:
            out[f"{num}/{den} (detected)"] = r
    return out


def _li_ratio(atoms: dict):
    den = sum(atoms.get(e, 0) for e in ("Li", "Ni", "Co", "Mn"))
    return atoms.get("Li", 0) / den if den else None


def _segments_truth(setup, tally) -> list:
    cat = setup.catalogue
    out = []
    for seg in setup.segments:
        a, b = tally.segment_ions[seg.index]
        d = seg.to_dict()
        d["start_ion"] = a
        d["stop_ion"] = b
        d["ions_detected"] = int(tally.detected_by_segment[seg.index].sum())
        d["voltage_V_first_last"] = tally.segment_voltage[seg.index]
        d["ratios"] = _detected_ratios(tally.detected_by_segment[seg.index], cat)
        atoms = _atoms(tally.emitted_by_segment[seg.index].sum(axis=0), cat)
        d["evaporated_atomic_fractions"] = _composition(atoms)["atomic_fractions"]
        sites = tally.emitted_by_segment[seg.index].sum(axis=0).copy()
        if cat.li_index >= 0:
            sites[cat.li_index] -= tally.island_li_by_segment[seg.index]
        d["analysed_volume_atomic_fractions"] = _composition(_atoms(sites, cat))[
            "atomic_fractions"]
        d["evaporated_li_ratio"] = _li_ratio(atoms)
        out.append(d)
    return out


def _li_truth(setup, tally, segments: list):
    """Li transport (:mod:`.lithium`): the Li budget of the run, its transport per segment,
    and the Li ratios of what the sites held and of what left."""
    if not any(s.li is not None for s in setup.segments):
        return None
    cat = setup.catalogue
    main = setup.phases[0]
    amounts = dict(main.amounts)
    metals = sum(amounts.get(e, 0.0) for e in ("Ni", "Co", "Mn"))
    nominal = amounts.get("Li", 0.0) / (amounts.get("Li", 0.0) + metals) if metals else None
    overall = _atoms(tally.emitted.sum(axis=0), cat)
    counts = {k: sum(c[k] for c in tally.li) for k in tally.li[0]}
    counts["flank_li"] += tally.li_island_left
    counts["remaining"] = tally.li_island_left
    budget = li_budget(counts)
    # each segment's: the island atoms it left are its remaining, those the segment before
    # left are carried in; what arrived from the flanks in it, emitted or left
    by_seg = []
    left_before = 0
    for seg in setup.segments:
        c = dict(tally.li[seg.index])
        left = int(tally.li_island_left_at_end[seg.index])
        c["flank_li"] += left - left_before
        c["carried_in"] = left_before
        c["remaining"] = left
        by_seg.append(li_budget(c))
        left_before = left
    for s, b in zip(segments, by_seg):
        s["li_budget"] = b
    return {
        "what": "Li transport in the field (liprobe.simulate.lithium): a site's Li drifts to "
                "the surface and may leave between pulses (background); an uncoated "
                "specimen's flanks supply Li islands to the cap",
        "model": setup.config.mobility.to_dict(),
        "budget": budget,
        "li_ratio_nominal": nominal,
        "li_ratio_evaporated": _li_ratio(overall),
        "by_segment": [{"index": s["index"], "laser_pj": s["laser_pj"],
                        "transport": s["li_transport"],
                        "budget": s["li_budget"],
                        "li_ratio_evaporated": s["evaporated_li_ratio"],
                        "start_ion": s["start_ion"], "stop_ion": s["stop_ion"]}
                       for s in segments if s["li_transport"] is not None],
    }


def _species_truth(setup, tally) -> dict:
    """Per species: emitted (by phase), detected, lost, and where its ions were ranged."""
    cat = setup.catalogue
    table = setup.table
    wc = tally.window_counts
    emitted_total = tally.emitted.sum(axis=0)
    in_own = np.zeros(len(cat), np.int64)
    for w, ion in enumerate(r.ion.name for r in table.ranges):
        if ion in cat.index:
            in_own[cat.index[ion]] += wc[w, cat.index[ion]]
    species = {}
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
    return species


def _windows_truth(setup, tally, expected, expected_bg) -> tuple[list, dict]:
    """Per range window: counts by species, background, expectation; and the unranged ions."""
    cat = setup.catalogue
    names = cat.names
    wc = tally.window_counts
    peak_of = {(cat.names[int(sp)], float(mz)): k
               for k, (sp, mz) in enumerate(zip(cat.peak_species, cat.peak_mz))}
    windows = []
    for w, r in enumerate(setup.table.ranges):
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
    return windows, unranged


def _composition_truth(setup, tally, expected, expected_bg) -> dict:
    """Atoms evaporated (overall, by phase), detected, lost as neutrals, expected after ranging."""
    cat = setup.catalogue
    emitted_total = tally.emitted.sum(axis=0)
    by_phase = {ph.name: _composition(_atoms(tally.emitted[p], cat))
                for p, ph in enumerate(setup.phases)}
    overall = _composition(_atoms(emitted_total, cat))
    # the analysed volume: what the sites the front swept held, the Li islands the flanks
    # brought in left out (liprobe.simulate.lithium)
    sites = _site_counts(setup, tally)
    analysed = {"overall": _composition(_atoms(sites.sum(axis=0), cat)),
                "by_phase": {ph.name: _composition(_atoms(sites[p], cat))
                             for p, ph in enumerate(setup.phases)}}
    expected_ranged = np.zeros(len(cat))
    for w, r in enumerate(setup.table.ranges):
        i = cat.index[r.ion.name]
        expected_ranged[i] += expected[:, w].sum() + expected_bg[w]
    exp_atoms = expected_ranged @ cat.atom_matrix
    exp_total = exp_atoms.sum()
    neutral_atoms = {}
    if cat.neutral_mask.any():
        only = np.where(cat.neutral_mask, emitted_total, 0)
        neutral_atoms = _atoms(only, cat)
    return {
        "evaporated": {"overall": overall, "by_phase": by_phase},
        "analysed_volume": analysed,
        "detected_ions_atoms": _atoms(tally.detected, cat),
        "neutral_atoms": neutral_atoms,
        "expected_ranged": {
            "atoms": {el: float(n) for el, n in zip(cat.elements, exp_atoms)},
            "atomic_fractions": {el: float(n / exp_total) for el, n in
                                 zip(cat.elements, exp_atoms)},
            "how": "detected counts of each species times the fraction of its peak shape "
                   "(averaged over the run's voltages, segment by segment) inside each window, "
                   "plus the background expected there, decomposed with the windows' ions",
        },
    }


def _peak_widths_truth(setup, tally) -> dict:
    """FWHM and MRP of each species' main isotope (first segment: its shape and voltages)."""
    cat = setup.catalogue
    shape = setup.segments[0].shape
    rows = sorted(tally.rows)
    widths = {}
    v0 = np.asarray(tally.voltages[0] or [r[3] for r in rows], np.float64)
    v_fwhm = np.quantile(v0, np.linspace(0.05, 0.95, 9))
    for i, sp in enumerate(cat.species):
        if sp.charge == 0 or tally.detected[i] == 0:
            continue
        k = int(np.argmax(np.where(cat.peak_species == i, cat.peak_abundance, -1)))
        mz = float(cat.peak_mz[k])
        fw, sig, tau = fwhm_da(mz, v_fwhm, shape, setup.flight_path_mm)
        widths[sp.name] = {"mz": mz, "abundance": float(cat.peak_abundance[k]), "fwhm_da": fw,
                           "mrp_fwhm": mz / fw, "sigma_da_at_median_voltage": sig,
                           "tail_tau_da_at_median_voltage": tau}
    return widths


def _specimen_truth(setup) -> dict:
    """The needle, with the coating's inner radius at the start of the acquisition."""
    needle = setup.needle
    spec = needle.to_dict()
    if needle.coating_thickness_nm > 0:
        spec["coating_inner_radius_at_start_nm"] = float(
            needle.outer_radius_at(-needle.apex_radius_nm) - needle.coating_thickness_nm /
            math.cos(math.radians(needle.shank_angle_deg)))
    return spec


def _coating_truth(setup) -> dict | None:
    """The shell's thickness: normal to the original surface (the input), and as seen
    laterally in an XY slice of the shank, ``t / cos(alpha)``."""
    needle = setup.needle
    t = needle.coating_thickness_nm
    if t <= 0:
        return None
    return {"element": COATINGS[setup.config.coating], "thickness_nm": float(t),
            "thickness_direction": "normal to the original surface",
            "lateral_thickness_nm": float(t / math.cos(math.radians(needle.shank_angle_deg))),
            "note": "an XY slice (or a radial profile from the axis) crosses the conformal "
                    "shell of the shank at the shank angle alpha, so its lateral width is "
                    "thickness_nm / cos(alpha)"}


#: Points sampled per grain to measure the part of it inside the analysed volume.
GRAIN_SAMPLES = 400_000


def _evaporated(needle, rho, z, depth_end_nm, radius_end_nm):
    """True for points (lateral radius, truth-frame z) of the oxide that the run evaporated:
    below the cap where the record started (apex at z = 0, radius ``apex_radius_nm``),
    above the final cap, inside the needle and not in the shell."""
    cos_a = math.cos(math.radians(needle.shank_angle_deg))
    r0 = needle.apex_radius_nm
    below_start = (rho > r0 * cos_a) | (
        z <= -r0 + np.sqrt(np.maximum(r0 * r0 - rho * rho, 0.0)))
    z_c = -depth_end_nm - radius_end_nm                   # the final cap's centre
    on_cap = rho <= radius_end_nm * cos_a
    above = on_cap & (z > z_c + np.sqrt(np.maximum(radius_end_nm ** 2 - rho * rho, 0.0)))
    inside = needle.surface_distance(rho, z) >= needle.coating_thickness_nm
    return above & inside & below_start


def _grain_truth(setup, tally) -> list:
    """Each second phase (a grain): its volume, and the part of it inside the analysed
    volume (the oxide the run evaporated, from the needle and the apex's final depth and
    radius; Monte Carlo over :data:`GRAIN_SAMPLES` points of the shape, seeded), with
    that part's depth range and the local magnification's interface shift."""
    out = []
    if not tally.rows:
        return out
    last = sorted(tally.rows)[-1]
    depth_end, radius_end = float(last[1]), float(last[2])
    rng = np.random.default_rng(12345)
    evap = setup.config.evaporation
    fields0 = setup.segments[0].fields
    for p, kind in enumerate(setup.phase_kinds):
        if kind != "phase":
            continue
        spec = setup.config.phases[p - 1]
        shape = spec.shape
        if shape.kind == "sphere":
            d, cx, cy, cz = shape.params
            r = 0.5 * d
            volume = 4.0 / 3.0 * math.pi * r ** 3
            v = rng.standard_normal((GRAIN_SAMPLES, 3))
            v *= (r * rng.random(GRAIN_SAMPLES) ** (1 / 3) / np.linalg.norm(v, axis=1))[:, None]
            pts = v + np.array([cx, cy, cz])
        else:
            x0, x1, y0, y1, z0, z1 = shape.params
            volume = (x1 - x0) * (y1 - y0) * (z1 - z0)
            pts = np.column_stack([rng.uniform(a, b, GRAIN_SAMPLES)
                                   for a, b in ((x0, x1), (y0, y1), (z0, z1))])
        rho = np.hypot(pts[:, 0], pts[:, 1])
        keep = _evaporated(setup.needle, rho, pts[:, 2], depth_end, radius_end)
        share = float(keep.mean())
        ratio = fields0[p] / fields0[0]
        out.append({
            "material": spec.material, "shape": shape.describe(),
            "volume_nm3_total": float(volume),
            "volume_nm3": float(volume * share),
            "volume_nm3_err": float(volume * math.sqrt(share * (1 - share) / GRAIN_SAMPLES)),
            "depth_min_nm": float(pts[keep, 2].min()) if keep.any() else None,
            "depth_max_nm": float(pts[keep, 2].max()) if keep.any() else None,
            "field_ratio_to_matrix": float(ratio),
            "interface_shift_nm": float(evap.interface_deflection * (ratio - 1.0)
                                        * evap.interface_deflection_width_nm)
            if shape.kind == "sphere" else 0.0,
            "note": "volume_nm3: the part of the grain inside the analysed volume (the oxide "
                    "evaporated during the run, Monte Carlo); depths in the truth frame "
                    "(z <= 0), depth_min_nm the deepest point"})
    return out


def _site_counts(setup, tally) -> np.ndarray:
    """Events per phase and species of the sites the front swept: what evaporated less the
    Li islands the flanks brought in (:mod:`.lithium`)."""
    sites = tally.emitted.copy()
    li = setup.catalogue.li_index
    if li >= 0:
        sites[:, li] -= tally.island_li_by_phase
    return sites


def depth_ratio(setup, tally) -> float | None:
    """Reconstructed over true depth of a point-projection reconstruction of this needle
    with the instrument's own efficiency (see :mod:`.specimen`): ``(detected volume /
    evaporated volume / efficiency) (1 - sin a) / sin^2(theta_max)``; None before any
    event. The evaporated volume is the sites' (:func:`_site_counts`): Li islands from the
    flanks (:mod:`.lithium`) are detected ions that take no volume."""
    cat = setup.catalogue
    g = field_of_view_factor(setup.detector_radius_mm, setup.flight_path_mm, setup.icf,
                             "geiser")
    sites = _site_counts(setup, tally)
    evaporated_volume = sum(
        float(sites[p] @ cat.atom_matrix.sum(axis=1)) * ph.atomic_volume_nm3
        for p, ph in enumerate(setup.phases))
    detected_volume = sum(float(tally.detected[i]) * setup.volumes[sp.name]
                          for i, sp in enumerate(cat.species) if sp.charge > 0)
    swept = 1.0 - setup.needle.sin_a
    return (detected_volume / evaporated_volume / setup.efficiency) * swept / (g * g) \
        if evaporated_volume and detected_volume else None


def depth_calibration(setup, tally):
    """``(parameters, ion volume scale)`` that reconstruct true depths: the efficiency
    times :func:`depth_ratio`, or, where that would pass 1 (an uncoated run whose Li
    islands from the flanks are many detected ions that take no volume), an efficiency of
    1 and the ions' volumes scaled down by the rest; ``(setup.params, 1.0)`` before any
    event."""
    ratio = depth_ratio(setup, tally)
    if not ratio:
        return setup.params, 1.0
    eff = setup.efficiency * ratio
    if eff <= 1.0:
        return setup.params.replace(efficiency=eff), 1.0
    return setup.params.replace(efficiency=1.0), 1.0 / eff


def _reconstruction_depth_truth(setup, tally) -> dict:
    """The depth scale of a point-projection reconstruction of this needle (see specimen.py)."""
    g = field_of_view_factor(setup.detector_radius_mm, setup.flight_path_mm, setup.icf,
                             "geiser")
    swept = 1.0 - setup.needle.sin_a
    ratio = depth_ratio(setup, tally)
    calibrated, scale = depth_calibration(setup, tally) if ratio else (None, 1.0)
    return {
        "expected_ratio_reconstructed_to_true": ratio,
        "parameters_depth_calibrated": calibrated.to_dict() if calibrated else None,
        "ion_volume_scale": scale,
        "parameters_uncalibrated": setup.params.to_dict(),
        "epos": "reconstructed with parameters_depth_calibrated (the truth's "
                "reconstruction_parameters): depths as an analyst who calibrated them would "
                "reconstruct, with one ratio for the whole run (a laser schedule's segments "
                "can be off each other: uncoated, the share of detected ions that are Li "
                "islands from the flanks, which take no volume, grows with laser energy, "
                "from ~10 % at 5 pJ to ~45 % at 20 pJ)",
        "why": "a point-projection reconstruction stacks caps as if pi (R sin(theta_max))^2 "
               "of specimen were imaged per unit depth (here sin^2(theta_max) = "
               f"{g * g:.4f}); the needle's expanding cap sweeps pi (1 - sin(alpha)) R^2 "
               f"({swept:.4f} pi R^2), and undetected neutrals take volume too, so depths "
               "reconstructed with the instrument's efficiency come out short by this "
               "ratio; 'parameters_depth_calibrated' scales the efficiency to absorb it, as "
               "an analyst calibrating depth would",
    }


def _fracture_truth(setup, n_det: int, final_burst_ions: int, rows: list):
    """What the truth records of the fracture: None when ``config.fracture`` is None.

    A fixed fraction: where the run stops. ``"auto"``: the model's stresses per segment,
    the flaw population, every crack (ion index, depth, stress, the flaw's strength drawn,
    fatal or a crack event with its voltage step) and the fracture's depth in the run."""
    cfg = setup.config
    if cfg.fracture is None:
        return None
    out = {"fractured": setup.fractured, "ion_index": n_det if setup.fractured else None,
           "requested_ions": cfg.ions, "fraction_of_requested": n_det / cfg.ions,
           "final_burst_ions": final_burst_ions if setup.fractured else 0,
           "depth_nm": rows[-1][1] if setup.fractured and rows else None,
           "how": "the run stops at this detected ion (the specimen fractured); its "
                  "last ions arrive in a burst of multiple hits in few pulses"}
    plan, outcome = setup.fracture_plan, setup.fracture_outcome
    if plan is None or outcome is None:
        out["model"] = "fixed: the specimen fractures at SimulationConfig.fracture of the " \
                       "requested ions, with no other crack"
        return out
    f = outcome.fracture
    out.update({
        "model": "the Maxwell stress eps0 F^2 / 2 of each segment's oxide field (shared with "
                 "the Cr shell by stiffness) plus the laser's thermal stress, against the "
                 "strengths of surface flaws entering the stressed apex as it evaporates "
                 "(liprobe.simulate.fracture; constants: inputs.evaporation.fracture_*)",
        "stress_by_segment": [{"start_ion": int(a), **st.to_dict()}
                              for a, st in zip(plan.starts, plan.stress)],
        "flaws": {"density_per_nm2": outcome.flaw_density_per_nm2,
                  "strength_cap_gpa": outcome.strength_cap_gpa,
                  "weibull_modulus": outcome.weibull_modulus,
                  "crack_arrest_share": outcome.arrest_share},
        "expected_failing_flaws": outcome.hazard_end,
        "fracture_probability": outcome.fracture_probability,
        "ramp_survival_probability": outcome.ramp_survival_probability,
        "ramp_note": "the draw is conditioned on the specimen surviving the voltage ramp to "
                     "the first segment's stress on its starting cap (no flaw of the cap "
                     "failing); ramp_survival_probability: the probability that a specimen "
                     "prepared survives it (no crack running through), i.e. reaches the "
                     "run at all",
        "stress_at_failure_gpa": f.stress_gpa if f else None,
        "strength_gpa": f.strength_gpa if f else None,
        "flaw_depth_nm": f.flaw_depth_nm if f else None,
        "model_depth_nm": f.depth_nm if f else None,
        "crack_events": [c.to_dict() for c in outcome.crack_events
                         if c.ion_index < setup.target_ions],
        "depth_note": "depth_nm: the simulated apex's depth below its start at the last ion; "
                      "model_depth_nm and the cracks' depth_nm: the model's estimate from the "
                      "evaporated volume per detected ion; a crack event steps the voltage "
                      "(v_dc) up by 1 + voltage_step from its ion on, the needle keeps its "
                      "shape",
    })
    return out


def _mean_field(setup, tally, segs, coating: bool):
    """Mean local field (V/nm) over detected ions: the coating's ions that hold its metal
    (``coating``), or every ion of the oxide phases (O-bearing, not the coating); None
    without such ions."""
    cat = setup.catalogue
    kinds = setup.phase_kinds
    coat_el = COATINGS[setup.config.coating]
    weight = np.ones(len(cat))
    if coating:
        if coat_el is None:
            return None, 0
        weight = np.array([1.0 if sp.count(coat_el) else 0.0 for sp in cat.species])
    total = n = 0.0
    for seg in segs:
        for p, kind in enumerate(kinds):
            if (kind == "coating") != coating:
                continue
            if not coating and "O" not in dict(setup.phases[p].amounts):
                continue
            for b in range(seg.n_bins):
                c = float(tally.detected_by_row[seg.row(p, b)] @ weight)
                total += c * seg.fields[p] * float(seg.bin_factors[b])
                n += c
    return (total / n if n else None), int(n)


def _coating_kingham(setup, tally, segs):
    """The Kingham field (V/nm) a noise-free analysis reads from the shell's Cr++/Cr+, given
    the field map's spread: the expected ratio ``sum_b n_b f2(F_b) / sum_b n_b f1(F_b)``
    (``n_b`` the Cr atomic ions detected in field bin ``b``, ``f`` the Kingham fractions
    at its field) inverted on the Kingham curve, interpolated in ``ln(f2/f1)`` between the
    bins' fields (exact where the map is off: the shell's one field). None without Cr
    ions of both charges."""
    from .evaporation import charge_fractions

    coat_el = COATINGS[setup.config.coating]
    if coat_el is None:
        return None
    cat = setup.catalogue
    model = setup.config.evaporation
    atomic = [i for i, sp in enumerate(cat.species)
              if sp.charge > 0 and sp.atoms == ((coat_el, 1),)]
    p = setup.phase_kinds.index("coating")
    exp1 = exp2 = 0.0
    curve = {}
    for seg in segs:
        t = seg.operating.peak_temperature_k
        for b in range(seg.n_bins):
            n = float(tally.detected_by_row[seg.row(p, b), atomic].sum())
            f_b = seg.fields[p] * float(seg.bin_factors[b])
            fr = charge_fractions(model, coat_el, f_b, t, oxide=False)
            if fr[0] > 0 and fr[1] > 0:
                curve[f_b] = math.log(fr[1] / fr[0])
            exp1 += n * fr[0]
            exp2 += n * fr[1]
    if not exp1 or not exp2 or not curve:
        return None
    target = math.log(exp2 / exp1)
    fs = np.array(sorted(curve))
    ys = np.array([curve[f] for f in fs])
    if len(fs) == 1 or abs(ys[-1] - ys[0]) < 1e-12:
        return float(fs[0]) if abs(target - ys[0]) < 1e-9 else None
    if not ys.min() - 1e-9 <= target <= ys.max() + 1e-9:
        return None
    return float(np.interp(target, ys, fs))


def _neutral_o2_share(setup, tally):
    """Share of the O atoms evaporated from the non-coating phases that left as neutral O2
    (counted: each field bin has its own temperature), or None without O."""
    cat = setup.catalogue
    i = cat.neutral_index
    if i < 0:
        return None
    o = cat.atom_matrix[:, cat.elements.index("O")] if "O" in cat.elements else None
    if o is None:
        return None
    phases = [p for p, kind in enumerate(setup.phase_kinds) if kind != "coating"]
    total = float(sum(tally.emitted[p] @ o for p in phases))
    lost = float(sum(2 * tally.emitted[p, i] for p in phases))
    return lost / total if total else None


def _field_truth(setup, tally, segments: list) -> tuple[dict, dict]:
    """``field`` and ``temperature`` of the truth, for the run and per segment."""
    segs = setup.segments
    ox, n_ox = _mean_field(setup, tally, segs, False)
    co, n_co = _mean_field(setup, tally, segs, True)
    kingham = _coating_kingham(setup, tally, segs)
    ions = np.array([max(int(tally.detected_by_segment[s.index].sum()), 0) for s in segs],
                    float)
    temps = np.array([s.operating.peak_temperature_k for s in segs])
    by_segment_f, by_segment_t = [], []
    for seg, d in zip(segs, segments):
        o, _ = _mean_field(setup, tally, [seg], False)
        c, _ = _mean_field(setup, tally, [seg], True)
        row = {"index": seg.index, "laser_pj": seg.laser_pj, "oxide_mean_v_nm": o,
               "coating_mean_v_nm": c,
               "coating_kingham_v_nm": _coating_kingham(setup, tally, [seg])}
        by_segment_f.append(row)
        by_segment_t.append({"index": seg.index, "laser_pj": seg.laser_pj,
                             "peak_k": seg.operating.peak_temperature_k,
                             "cooling_time_ns": seg.operating.cooling_time_ns})
        d["field"] = row
        d["temperature"] = by_segment_t[-1]
    field_t = {
        "oxide_mean_v_nm": ox, "oxide_ions": n_ox,
        "coating_mean_v_nm": co, "coating_ions": n_co,
        "coating_kingham_v_nm": kingham,
        "coating_kingham_bias_v_nm": (kingham - co if kingham is not None and co is not None
                                      else None),
        "fixed": setup.config.field_v_nm is not None,
        "spread": setup.config.evaporation.field_spread,
        "bins": setup.segments[0].n_bins,
        "by_segment": by_segment_f,
        "how": "mean over the detected ions of their local field (the phase's field at the "
               "segment's temperature times the field map at the launch point); "
               "coating_kingham_v_nm: the Kingham field of the shell's expected Cr++/Cr+ "
               "(its Cr ions per field bin times the curves' fractions there): what a "
               "noise-free analysis reads with the map's spread; the bias is that minus "
               "coating_mean_v_nm",
    }
    temperature_t = {
        "peak_k": float(np.average(temps, weights=ions)) if ions.sum() else float(temps[0]),
        "base_k": setup.config.evaporation.base_temperature_k,
        "by_segment": by_segment_t,
    }
    return field_t, temperature_t


def build_truth(setup, tally, files: dict, final_burst_ions: int = 0, params=None) -> dict:
    """The truth of a finished run (the contents of ``run.truth.json``).

    Parameters
    ----------
    setup : Setup
        The prepared run (:func:`liprobe.simulate.engine.prepare`).
    tally : _Tally
        The engine's counts after the last chunk.
    files : dict
        The ``files`` entry (empty in memory; filled in when written).
    final_burst_ions : int
        Ions of the final burst when the specimen fractured.
    params : ReconstructionParameters, optional
        The parameters the ``.epos`` was reconstructed with (default: the setup's).
    """
    cfg = setup.config
    cat = setup.catalogue
    seg0 = setup.segments[0]
    shape = seg0.shape
    names = cat.names
    rows = sorted(tally.rows)
    emitted_total = tally.emitted.sum(axis=0)
    species = _species_truth(setup, tally)
    # analytic expectation per window from the detected counts and the peak shapes
    expected, expected_bg = _expected_by_window(setup, tally)   # species x window, window
    windows, unranged = _windows_truth(setup, tally, expected, expected_bg)
    composition = _composition_truth(setup, tally, expected, expected_bg)
    widths = _peak_widths_truth(setup, tally)
    n_det = int(tally.detected.sum())
    n_bg = int(tally.background.sum())
    segments = _segments_truth(setup, tally)
    field_t, temperature_t = _field_truth(setup, tally, segments)
    ins = _instrument(cfg.instrument)
    grains = _grain_truth(setup, tally)
    li_t = _li_truth(setup, tally, segments)
    return {
        "liprobe_version": __version__,
        "seed": cfg.seed,
        "inputs": cfg.to_dict(),
        "files": files,
        "laser_pj": cfg.laser_pj,
        "segments": segments,
        "fracture": _fracture_truth(setup, n_det, final_burst_ions, rows),
        "li_transport": li_t,
        "li_budget": li_t["budget"] if li_t else None,
        "heating_scatter_factor": setup.heating_scale,
        "field": field_t,
        "temperature": temperature_t,
        "frame": "truth frame: nm, origin at the apex when the acquisition starts, z <= 0 "
                 "into the specimen (the reconstruction's frame, CAMECA convention)",
        "instrument": {**ins.to_dict(), "detector_radius_mm_simulated": setup.detector_radius_mm,
                       "icf": setup.icf, "timing_sigma_ns": shape.timing_sigma_ns,
                       "tof_constant": TOF_CONSTANT,
                       "tof_relation": "m/n = tof_constant * v_dc * tof^2 / flight_path_mm^2"},
        "reconstruction_parameters": (setup.params if params is None else params).to_dict(),
        "reconstruction_depth": _reconstruction_depth_truth(setup, tally),
        "specimen": _specimen_truth(setup),
        "coating": _coating_truth(setup),
        "grain": grains[0] if grains else None,
        "grains": grains,
        "phases": [{**ph.to_dict(), "kind": kind, "emission": em.to_dict(),
                    "event_density_per_nm3": float(rho)}
                   for ph, kind, em, rho in zip(setup.phases, setup.phase_kinds, setup.emissions,
                                                setup.density)],
        "ions_detected": n_det,
        "ions_requested": cfg.ions,
        "species": species,
        "windows": windows,
        "unranged": unranged,
        "composition": composition,
        "losses": {
            "neutral_o_fraction_of_o": _neutral_o2_share(setup, tally),
            "neutral_species": {names[i]: int(emitted_total[i]) for i in
                                np.flatnonzero(cat.neutral_mask)},
            "background_fraction_of_detected": n_bg / n_det if n_det else None,
            "background_ppm_per_ns": shape.background_ppm_per_ns,
            "ranged_fraction_of_detected": 1.0 - unranged["total"] / n_det if n_det else None,
        },
        "ratios": _detected_ratios(tally.detected, cat),
        "peak_widths": widths,
        "depth_profile": {"ion_index": [r[0] for r in rows], "depth_nm": [r[1] for r in rows],
                          "radius_nm": [r[2] for r in rows], "voltage_V": [r[3] for r in rows],
                          "segment": [r[4] for r in rows],
                          "note": "depth of the apex below its position when the acquisition "
                                  "started; V = k F R, F the segment's field (times the steps "
                                  "of crack events, see 'fracture')"},
        "range_window_voltage_V": setup.window_voltage_V,
        "notes": setup.notes,
    }


def summary(truth: dict) -> dict:
    """A short view of a truth dict: inputs, counts, compositions, ratios, geometry."""
    comp = truth["composition"]
    dp = truth["depth_profile"]
    return {
        "files": truth["files"],
        "seed": truth["seed"],
        "material": truth["inputs"]["material"], "coating": truth["inputs"]["coating"],
        "instrument": truth["inputs"]["instrument"],
        "laser_pj": [s["laser_pj"] for s in truth["segments"]],
        "ions_requested": truth["ions_requested"],
        "ions_detected": truth["ions_detected"],
        "fractured": bool(truth["fracture"] and truth["fracture"]["fractured"]),
        "windows": len(truth["windows"]),
        "ranged_fraction": truth["losses"]["ranged_fraction_of_detected"],
        "background_fraction": truth["losses"]["background_fraction_of_detected"],
        "evaporated_atomic_fractions": comp["evaporated"]["overall"]["atomic_fractions"],
        "evaporated_by_phase": {k: v["atomic_fractions"]
                                for k, v in comp["evaporated"]["by_phase"].items()},
        "expected_ranged_atomic_fractions": comp["expected_ranged"]["atomic_fractions"],
        "ratios": truth["ratios"],
        "field": {k: truth["field"][k] for k in ("oxide_mean_v_nm", "coating_mean_v_nm",
                                                  "coating_kingham_v_nm", "fixed")},
        "temperature": {"peak_k": truth["temperature"]["peak_k"]},
        "evaporated_li_ratio": truth["li_transport"]["li_ratio_evaporated"]
        if truth["li_transport"] else None,
        "li_budget": truth["li_budget"],
        "depth_nm": dp["depth_nm"][-1] if dp["depth_nm"] else None,
        "radius_nm": [dp["radius_nm"][0], dp["radius_nm"][-1]] if dp["radius_nm"] else None,
        "voltage_V": [dp["voltage_V"][0], dp["voltage_V"][-1]] if dp["voltage_V"] else None,
        "reconstruction_parameters": truth["reconstruction_parameters"],
        "notes": truth["notes"],
    }
