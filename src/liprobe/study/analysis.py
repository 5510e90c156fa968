"""One run's analysis: a registry of column groups, and the pure task that runs them.

:func:`analyse_run` is what the study sends to a worker: a top-level
function (picklable) of a :class:`~liprobe.study.manifest.RunSpec` and the
:class:`~liprobe.study.manifest.StudyParams`, returning plain JSON types.
It reads the run, selects its segment and ROI once, then calls every
registered column group in order. Each group is one analysis module of
liprobe called exactly as its command calls it, so a value in the study's
table equals the single-run command's (``liprobe composition``, ``fda``,
``field``, ``detector-map``, ``coating``, ``history``):

=================  ==========================================================
group              columns
=================  ==========================================================
``ions``           ``ions`` (segment), ``ions_roi``, ``ions_ranged_roi``
``composition``    ``at_pct_<El>`` and the study's ``ratios`` (ROI), with
                   ``_err``
``field``          the study's ``field_proxies`` (ROI), with ``_err``
``kingham``        ``kingham_field_<el>_v_nm`` (+ ``_err``) of the coating
                   element (``cr`` for uncoated runs, which get None): its
                   charge-state ratio in the coating's shell, background
                   subtracted, read through its Kingham curves (segment;
                   :mod:`liprobe.study.kingham`, as ``liprobe field --kingham``)
``fda``            ``fda_mu_<species>``, ``fda_mu_shuffled_<species>``,
                   ``fda_p_value_<species>``, ``fda_dispersion_<species>``
                   (+ ``_err``: the blocks' variance over the binomial's,
                   whose expectation does not grow with the run's size) (ROI);
                   ``li_acf_max``, ``li_acf_lag``: the largest ``|r|`` of the
                   Li indicator's autocorrelation over lags 50 to 10,000 ions
                   of the FDA's sequence, and its lag (:data:`LI_ACF`;
                   :func:`liprobe.fda.sequence_periodicity`; ROI)
``li_neighbours``  ``li_knn_excess_pct`` (+ ``_err``): the share of Li among the
                   10 nearest counted ions of each Li-bearing ion, less that of
                   labels shuffled within 1 nm z-slabs, in percentage points (ROI;
                   at most :data:`LI_NEIGHBOURS_MAX_IONS` consecutive ions of its middle;
                   :func:`liprobe.spatial.neighbours.neighbour_composition` with
                   :data:`LI_NEIGHBOURS`, as ``liprobe neighbours --from Li --k 10
                   --composition``)
``presence``       ``peaks_present``, ``peaks_absent`` (``;``-separated ions,
                   ROI; :mod:`liprobe.study.presence`)
``peaks``          ``mrp_fwhm_<ion>``, ``mrp_fw10_<ion>``, ``mrp_fw1_<ion>`` (at 1 %
                   of the maximum: where thermal tails show), ``tail_ns_<ion>`` of
                   the study's ``reference_peaks``, ``background_ppm_ns``
                   (segment; :func:`liprobe.spectrum.peaks.analyse_peaks`)
``detector``       ``detector_heterogeneity`` (+ ``_err``: its Poisson noise),
                   ``detector_mu_<species>``, ``detector_mu_shuffled_<species>``
                   (segment; over ``detector.core``, by default 0.4 of the
                   detector radius for every run); ``li_map_heterogeneity``
                   (+ ``_err``): the Li fraction's excess variance over the
                   same core disc, in units of ``f (1 - f)``, and
                   ``li_rim_core_ratio`` (+ ``_err``): the Li fraction beyond
                   0.8 of the detector radius over that within 0.5, on the
                   same subsample (:data:`LI_MAP`;
                   :func:`liprobe.spatial.detector.fraction_heterogeneity`)
``coating``        ``coating_geometry`` (shell, cap or none), ``coating_thickness_nm``
                   (normal to the surface) and its error,
                   ``coating_slabs_found`` (segment)
``grain``          ``grain_volume_nm3``, ``grain_depth_min_nm``,
                   ``grain_depth_max_nm`` and ``grain_<ratio>`` (+ ``_err``) of
                   the study's ``ratios``: a grain of another phase, found by an
                   isosurface of Mn/(Ni+Co+Mn) at a threshold chosen from the
                   voxels (segment, not the ROI; the coating's element and
                   ``exclude`` left out; :mod:`liprobe.study.grain`); its proxigram is an
                   artefact that ``liprobe report`` writes
``history``        ``abrupt_end``, ``abrupt_end_evidence``, ``voltage_jumps``,
                   ``multi_hit_fraction`` (the whole run: how it ended)
=================  ==========================================================

A group adds its columns to ``values`` and, for a quantity it cannot compute,
None with a sentence in ``reasons`` (never NaN). A group may also return a third
item, plain JSON data that is not a table cell (the grain's proxigram): the
result keeps it under ``artefacts[group]``, and so does the run's cache record.
A group that raises a :class:`~liprobe.errors.LiprobeError` (e.g. a ``.pos``
file has no detector coordinates) leaves its columns None with the error as the
reason; any other exception marks the run failed. A group whose module is not
installed is skipped with a reason, and its ``version`` in the cache key is
``"unavailable"``: when the module arrives, the cache recomputes the runs.

To add a group::

    @column_group("mygroup", version="1")
    def _mygroup(ctx):
        return {"my_value": 1.0}, {}
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LiprobeError

__all__ = ["ColumnGroup", "GROUPS", "column_group", "registry_signature", "analyse_run",
           "RunContext", "LI_NEIGHBOURS", "LI_ACF", "LI_MAP"]


@dataclass(frozen=True)
class ColumnGroup:
    """A set of table columns computed by one analysis.

    ``func(ctx) -> (values, reasons)`` or ``(values, reasons, artefact)``;
    ``requires`` names a module that must be importable (else the group is
    skipped with a reason).
    """

    name: str
    version: str
    func: Callable
    requires: str | None = None

    def available(self) -> bool:
        if self.requires is None:
            return True
        try:
            return importlib.util.find_spec(self.requires) is not None
        except ModuleNotFoundError:
            return False


#: The registered groups, in column order.
GROUPS: list[ColumnGroup] = []


def column_group(name: str, version: str = "1", requires: str | None = None):
    """Register ``func(ctx) -> (values, reasons)`` as a column group."""
    def deco(func):
        GROUPS[:] = [g for g in GROUPS if g.name != name]
        GROUPS.append(ColumnGroup(name, version, func, requires))
        return func
    return deco


def registry_signature() -> dict:
    """``{group: version}`` (``"unavailable"`` for a missing module): part of the cache key."""
    return {g.name: (g.version if g.available() else "unavailable") for g in GROUPS}


class RunContext:
    """What the groups share: the run, its segment, its ROI selection and ranges.

    Attributes
    ----------
    spec : RunSpec
    params : StudyParams
    full : Run
        The whole run (as read).
    run : Run
        The segment (the whole run without segments).
    roi : Run
        The segment's ions inside the ROI.
    table : RangeTable
    selection : dict
        From :func:`liprobe.spatial.roi.select`.
    """

    def __init__(self, spec, params, full, run, roi, table, selection):
        self.spec, self.params = spec, params
        self.full, self.run, self.roi = full, run, roi
        self.table, self.selection = table, selection
        self._ion_counts = None

    def roi_ion_counts(self):
        """``(ion_counts, total)`` of the ROI, counted once for composition and field."""
        if self._ion_counts is None:
            from ..ranging import count_ions

            counts, _unranged, total = count_ions(self.roi.chunks("mass"), self.table)
            self._ion_counts = (counts, total)
        return self._ion_counts


def _ratio_columns(name, r, values, reasons):
    values[name] = r.value
    values[f"{name}_err"] = r.error
    if r.value is None:
        reasons[name] = r.reason or "not computable"


# --------------------------------------------------------------------------
# the groups
# --------------------------------------------------------------------------

@column_group("ions")
def _ions(ctx):
    counts, total = ctx.roi_ion_counts()
    return {"ions": ctx.run.n_ions, "ions_roi": int(total),
            "ions_ranged_roi": int(np.sum(counts))}, {}


@column_group("composition")
def _composition(ctx):
    from ..composition import composition_from_counts

    counts, total = ctx.roi_ion_counts()
    c = composition_from_counts(counts, ctx.table, total, ctx.params.exclude, ctx.params.ratios,
                                unranged="null")
    values, reasons = {}, {}
    for el in c.atom_counts:
        values[f"at_pct_{el}"] = c.atomic_percent.get(el)
        values[f"at_pct_{el}_err"] = c.atomic_percent_error.get(el)
        if el not in c.atomic_percent:
            reasons[f"at_pct_{el}"] = "no ranged atoms"
    for text, r in c.ratios.items():
        _ratio_columns(text, r, values, reasons)
    return values, reasons


@column_group("field")
def _field(ctx):
    from ..field import field_proxies_from_counts

    counts, total = ctx.roi_ion_counts()
    f = field_proxies_from_counts(counts, ctx.table, total, ctx.params.field_proxies,
                                  unranged="null")
    values, reasons = {}, {}
    for text in ctx.params.field_proxies:
        _ratio_columns(text, f.ratios[text], values, reasons)
    return values, reasons


@column_group("kingham", version="1", requires="liprobe.kingham")
def _kingham(ctx):
    from .kingham import field_key, kingham_fields

    el = ctx.spec.coating if ctx.spec.coated else "Cr"
    key = field_key(el)
    if not ctx.spec.coated:
        return ({key: None, f"{key}_err": None},
                {key: "the run is not coated (coating = \"none\"): no metal coating to read a "
                      "Kingham field from"})
    kf = kingham_fields(ctx.run, ctx.table, coating=el)
    return kf.keys(), kf.reasons()


#: The Li sequence's periodicity in the ``fda`` group: the largest autocorrelation of the
#: Li indicator over these lags (ions), as :func:`liprobe.fda.sequence_periodicity`.
LI_ACF: dict[str, int] = {"lag_min": 50, "lag_max": 10_000}


@column_group("fda", version="3")
def _fda(ctx):
    from ..fda import frequency_distribution

    cfg = ctx.params.fda
    values, reasons = {}, {}
    for sp in cfg.species:
        names = (f"fda_mu_{sp}", f"fda_mu_shuffled_{sp}", f"fda_p_value_{sp}")
        disp = f"fda_dispersion_{sp}"
        try:
            r = frequency_distribution(ctx.roi, ctx.table, sp, cfg.block,
                                       exclude=ctx.params.exclude,
                                       normalization=cfg.normalization, shuffles=cfg.shuffles,
                                       seed=cfg.seed)
        except (LiprobeError, ValueError) as e:
            for n in names + (disp,):
                values[n] = None
                reasons[n] = str(e)
            values[disp + "_err"] = None
            continue
        for n, v, key in zip(names, (r.mu, r.mu_shuffled, r.p_value),
                             ("mu", "mu_shuffled", "p_value")):
            values[n] = v
            if v is None:
                reasons[n] = r.reasons.get(key, "not computable")
        # the block counts' variance over the binomial's: unlike mu, its expectation does
        # not grow with the number of blocks (its error from the blocks' fourth moment)
        if r.dispersion is not None and r.dispersion_err is not None:
            values[disp] = r.dispersion
            values[disp + "_err"] = r.dispersion_err
        else:
            values[disp] = values[disp + "_err"] = None
            reasons[disp] = "fewer than four blocks, or no species ion in them"
    values.update(_li_periodicity(ctx, reasons))
    return values, reasons


def _li_periodicity(ctx, reasons):
    """``li_acf_max``, ``li_acf_lag``: the Li indicator's largest autocorrelation over
    :data:`LI_ACF`'s lags, on the FDA's sequence (the ROI's ranged ions in evaporation order,
    ``exclude`` and H, Ga left out; every ion carrying Li is a Li ion)."""
    from ..fda import sequence_periodicity, species_sequence

    names = ("li_acf_max", "li_acf_lag")
    try:
        seq = species_sequence(ctx.roi, ctx.table, "Li", exclude=ctx.params.exclude)
        p = sequence_periodicity(seq, **LI_ACF)
    except (LiprobeError, ValueError) as e:
        reasons.update(dict.fromkeys(names, _one_line(e)))
        return dict.fromkeys(names)
    if p.reason is not None:
        reasons.update(dict.fromkeys(names, p.reason))
        return dict.fromkeys(names)
    return {"li_acf_max": p.max_abs_acf, "li_acf_lag": p.lag_at_max}


#: The Li clustering measure of the ``li_neighbours`` group: fixed, so that the work is
#: bounded (at most 20,000 Li centres, a seeded choice) and every run is measured alike.
LI_NEIGHBOURS: dict[str, Any] = {"species": "Li", "k": 10, "slab_nm": 1.0,
                                 "max_centres": 20_000, "shuffles": 8, "seed": 0}
#: The most ROI ions the ``li_neighbours`` group measures on: a larger ROI gives its middle
#: this many consecutive ions (a depth range; only the ions next to its two cut faces lose
#: neighbours beyond them), so that
#: the neighbour search holds a bounded set (about 100 bytes per ion: positions, kinds,
#: the k-d tree and the shuffled labels) whatever the run's size.
LI_NEIGHBOURS_MAX_IONS = 2_000_000


@column_group("li_neighbours", version="2", requires="liprobe.spatial.neighbours")
def _li_neighbours(ctx):
    from ..spatial.neighbours import neighbour_composition

    names = ("li_knn_excess_pct", "li_knn_excess_pct_err")
    roi = ctx.roi
    if roi.n_ions > LI_NEIGHBOURS_MAX_IONS:
        start = (roi.n_ions - LI_NEIGHBOURS_MAX_IONS) // 2
        roi = roi.select(slice(start, start + LI_NEIGHBOURS_MAX_IONS))
    try:
        nc = neighbour_composition(roi, ctx.table, exclude=ctx.params.exclude,
                                   **LI_NEIGHBOURS)
    except LiprobeError as e:
        return dict.fromkeys(names), dict.fromkeys(names, _one_line(e))
    values = dict(zip(names, (nc.excess_pct, nc.excess_err_pct)))
    reasons = {}
    if nc.excess_err_pct is None:
        reasons[names[1]] = nc.reasons.get("excess_err_pct", "not computable")
    return values, reasons


@column_group("presence", version="2")
def _presence(ctx):
    from .presence import ion_presence

    p = ion_presence(ctx.roi, ctx.table, sigma=ctx.params.peak_presence_sigma)
    return {"peaks_present": ";".join(p.present_ions()),
            "peaks_absent": ";".join(p.absent_ions())}, {}


@column_group("peaks", version="2", requires="liprobe.spectrum.peaks")
def _peaks(ctx):
    """MRP and tail of the reference peaks, and the background, on the segment's spectrum."""
    from ..chemistry import parse_ion
    from ..spectrum.peaks import analyse_peaks

    run = ctx.run
    tof = run.source("tof") if "tof" in run else None      # read only where sampled
    pa = analyse_peaks(run, tof=tof)                         # the masses a chunk at a time
    bg = pa.background
    values = {"background_ppm_ns": bg.ppm_per_ns}
    reasons = {}
    if bg.ppm_per_ns is None:
        reasons["background_ppm_ns"] = bg.reason or bg.time_scale.reason or "not computable"
    else:
        values["background_ppm_ns_err"] = (bg.ppm_per_ns * bg.a_error / bg.a
                                           if bg.a and bg.a_error else None)
    for name in ctx.params.reference_peaks:
        cols = {"mrp_fwhm": "fwhm", "mrp_fw10": "fw10", "mrp_fw1": "fw1", "tail_ns": "tail_ns"}
        main = max(parse_ion(name).peaks(), key=lambda mp: mp[1])[0]
        peak = pa.nearest(main)
        if peak is None or abs(peak.mass - main) > _PEAK_MATCH_DA:
            for c in cols:
                values[f"{c}_{name}"] = None
                reasons[f"{c}_{name}"] = (f"no peak of {name} found near {main:.3f} Da "
                                          f"(within {_PEAK_MATCH_DA} Da)")
            continue
        for c, attr in cols.items():
            v = peak.mrp(attr) if c.startswith("mrp") else peak.tail_ns
            values[f"{c}_{name}"] = v
            if v is None:
                reasons[f"{c}_{name}"] = peak.reasons.get(attr, "not measurable")
    return values, reasons


#: How far (Da) a detected peak may lie from a reference ion's main isotope.
_PEAK_MATCH_DA = 0.3


#: The Li-fraction map of the ``detector`` group (:func:`liprobe.spatial.detector.
#: fraction_heterogeneity`): grid bins across the core disc, the fewest ions of a bin used,
#: and the inner disc and rim annulus of the rim-to-core ratio (fractions of the radius).
LI_MAP: dict[str, Any] = {"bins": 16, "min_per_bin": 20, "inner_fraction": 0.5,
                          "rim_fraction": 0.8}


@column_group("detector", version="2")
def _detector(ctx):
    from ..spatial.detector import detector_map

    cfg = ctx.params.detector
    # the battery study's specimens carry a Cr coating: its ring bounds the core
    core = ({"coating_element": "Cr"} if cfg.core == "coating"
            else {"coating_element": None, "core_fraction": cfg.core})
    m = detector_map(ctx.run, ctx.table, species=cfg.species, bins=cfg.bins,
                     sample_size=cfg.sample, seed=cfg.seed, grid_bins=cfg.grid_bins, **core)
    h = m.heterogeneity
    values = {"detector_heterogeneity": h.heterogeneity,
              "detector_heterogeneity_err": h.heterogeneity_noise}
    reasons = {}
    if cfg.species:
        sp = cfg.species
        values[f"detector_mu_{sp}"] = h.fraction_mu
        values[f"detector_mu_shuffled_{sp}"] = h.fraction_mu_shuffled
        if h.fraction_mu is None:
            reasons[f"detector_mu_{sp}"] = h.fraction_reason or "not computable"
        if h.fraction_mu_shuffled is None:
            reasons[f"detector_mu_shuffled_{sp}"] = h.fraction_reason or "not computable"
    values.update(_li_map(ctx, m, reasons))
    return values, reasons


LI_MAP_COLUMNS = ("li_map_heterogeneity", "li_map_heterogeneity_err", "li_rim_core_ratio",
                  "li_rim_core_ratio_err")


def _li_map(ctx, m, reasons):
    """The Li fraction's heterogeneity over the detector map ``m``'s core disc and its rim over
    its core, on the ions of ``m``'s heterogeneity (the same seeded subsample of the segment,
    the same centre and detector radius): Li among the ranged ions, ``exclude``, the coating
    element, H and Ga left out; every ion carrying Li counts as one Li ion (the fraction is
    of ions, so that each ion is one binomial trial). ``li_map_heterogeneity_err`` is the
    estimate's standard error (``heterogeneity_err``: the noise of random labels, widened by
    the variation measured), not the bare null noise."""
    from ..fda import DROP, SPECIES, species_codes
    from ..ranging import assign
    from ..spatial.detector import _subsample_index, fraction_heterogeneity

    names = LI_MAP_COLUMNS
    exclude = list(ctx.params.exclude)
    if ctx.spec.coated:
        el = ctx.spec.coating
        exclude.append(el[:1].upper() + el[1:].lower())
    try:
        codes = np.append(species_codes(ctx.table, "Li", tuple(dict.fromkeys(exclude))),
                          np.uint8(DROP))
    except (LiprobeError, ValueError) as e:
        reasons.update({n: _one_line(e) for n in names if not n.endswith("_err")})
        return dict.fromkeys(names)
    cfg = ctx.params.detector
    run = ctx.run
    idx = _subsample_index(run.n_ions, cfg.sample, cfg.seed)
    labels, _ = assign(np.asarray(run.source("mass")[idx]), ctx.table)
    code = codes[labels]
    keep = code != DROP
    x = np.asarray(run.source("det_x")[idx], dtype=np.float64)[keep]
    y = np.asarray(run.source("det_y")[idx], dtype=np.float64)[keep]
    h = fraction_heterogeneity(x, y, code[keep] == SPECIES,
                               core_fraction=min(m.core_radius_mm / m.detector_radius_mm, 1.0),
                               center_mm=m.center_mm, detector_radius_mm=m.detector_radius_mm,
                               **LI_MAP)
    values = {}
    for n, v, why in ((names[0], h.heterogeneity, h.reason),
                      (names[1], h.heterogeneity_err, h.reason),
                      (names[2], h.rim_core_ratio, h.rim_core_reason),
                      (names[3], h.rim_core_ratio_err, h.rim_core_reason)):
        ok = v is not None and math.isfinite(v)
        values[n] = float(v) if ok else None
        if not ok and not n.endswith("_err"):
            reasons[n] = why or "not computable"
    return values


#: The coating group's columns.
COATING_COLUMNS = ("coating_geometry", "coating_thickness_nm", "coating_thickness_nm_err",
                   "coating_slabs_found")


@column_group("coating", version="2")
def _coating(ctx):
    """The coating found in the segment (:func:`liprobe.spatial.coating.coating_profile`):
    shell, cap or none, and its thickness normal to the surface."""
    if not ctx.spec.coated:
        why = "the run is not coated (coating = \"none\")"
        return (dict.fromkeys(COATING_COLUMNS),
                {n: why for n in COATING_COLUMNS if not n.endswith("_err")})
    from ..spatial.coating import coating_profile

    cfg = ctx.params.coating_profile
    try:
        p = coating_profile(ctx.run, ctx.table, element=ctx.spec.coating,
                            ions_per_slab=cfg.ions_per_slab, ring_nm=cfg.ring_nm)
    except (LiprobeError, ValueError) as e:
        return (dict.fromkeys(COATING_COLUMNS),
                {n: _one_line(e) for n in COATING_COLUMNS if not n.endswith("_err")})
    t = p.thickness_nm
    values = {"coating_geometry": p.geometry, "coating_thickness_nm": t,
              "coating_thickness_nm_err": p.thickness_nm_err if t is not None else None,
              "coating_slabs_found": len(p.found)}
    return values, ({} if t is not None else {"coating_thickness_nm": p.thickness_reason})


#: The grain's columns besides the ratios (``grain_<ratio>``, ``grain_<ratio>_err``).
GRAIN_COLUMNS = ("grain_volume_nm3", "grain_ion_fraction", "grain_depth_min_nm",
                 "grain_depth_max_nm")


@column_group("grain", version="4", requires="liprobe.spatial.isosurface")
def _grain(ctx):
    """A grain of another phase in the segment (the whole analysed volume, not the ROI:
    a grain may cross the ROI's edge; the coating's element is left out, so the shell
    is no grain): its volume, depth range and composition."""
    from .grain import find_grain

    names = list(GRAIN_COLUMNS) + [c for text in ctx.params.ratios
                                   for c in (f"grain_{text}", f"grain_{text}_err")]
    exclude = list(ctx.params.exclude)
    if ctx.spec.coated:           # the coating's ions are never part of a grain
        el = ctx.spec.coating
        exclude.append(el[:1].upper() + el[1:].lower())
    try:
        g = find_grain(ctx.run, ctx.table, exclude=tuple(dict.fromkeys(exclude)),
                       ratios=ctx.params.ratios)
    except (LiprobeError, ValueError) as e:
        return dict.fromkeys(names), {n: _one_line(e) for n in names if not n.endswith("_err")}
    if not g.found:
        why = f"no grain: {g.reason}"
        return dict.fromkeys(names), {n: why for n in names if not n.endswith("_err")}
    n = ctx.run.n_ions
    values = {"grain_volume_nm3": g.volume_nm3,
              "grain_ion_fraction": min(g.ions_inside / n, 1.0) if n else None,
              "grain_depth_min_nm": g.depth_min_nm,
              "grain_depth_max_nm": g.depth_max_nm}
    reasons: dict = {}
    for text in ctx.params.ratios:
        _ratio_columns(f"grain_{text}", g.ratios[text], values, reasons)
    return values, reasons, g.artefact()


@column_group("history")
def _history(ctx):
    from ..history import run_history

    h = run_history(ctx.full)
    values = {"abrupt_end": h.abrupt_end,
              "abrupt_end_evidence": "; ".join(h.end.get("abrupt_end_reasons", [])) or None,
              "voltage_jumps": None if h.voltage_V is None else len(h.jumps),
              "multi_hit_fraction": h.multi_hit_fraction}
    reasons = {}
    if h.abrupt_end is None:
        reasons["abrupt_end"] = h.end.get("reason", "not computable")
    if h.voltage_V is None:
        reasons["voltage_jumps"] = h.voltage_reason or "no voltage"
    if h.multi_hit_fraction is None:
        reasons["multi_hit_fraction"] = "the file has no multiplicity column"
    return values, reasons


# --------------------------------------------------------------------------
# the task
# --------------------------------------------------------------------------

def _plain(v):
    """A JSON-able scalar: numpy scalars unwrapped, non-finite floats None."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _load(spec):
    """The run and its range table (from the range file, or ranged automatically)."""
    from ..io import read, read_ranges

    if spec.autorange is None:
        table = read_ranges(spec.ranges)
        return read(spec.data), table
    if importlib.util.find_spec("liprobe.spectrum.autorange") is None:
        raise LiprobeError(f"autorange = [{', '.join(spec.autorange)}] needs "
                           "liprobe.spectrum.autorange, which this installation does not have; "
                           "give ranges = \"FILE.rrng\"")
    from ..spectrum.autorange import autorange

    run = read(spec.data)
    tof = run.source("tof") if "tof" in run else None
    # as `liprobe autorange FILE --elements ...` does, on the whole run (read in chunks)
    return run, autorange(run, spec.autorange, tof=tof).table


def analyse_run(spec, params) -> dict:
    """Analyse one run (or segment) of a study; never raises for bad data.

    Parameters
    ----------
    spec : RunSpec
    params : StudyParams

    Returns
    -------
    dict
        ``status`` (``"ok"`` or ``"failed"``), ``error`` (None or one line),
        ``values`` (column -> number, string, bool or None; errors in
        ``<name>_err``), ``reasons`` (column or group -> why it is None),
        ``timings_s`` (group -> seconds, and ``total``); ``artefacts`` (group ->
        JSON data kept beside the table) when a group returns some.
    """
    from ..spatial.roi import select

    t0 = time.perf_counter()
    values: dict = {}
    reasons: dict = {}
    timings: dict = {}
    out = {"status": "ok", "error": None, "values": values, "reasons": reasons,
           "timings_s": timings}
    try:
        if spec.problem:
            raise LiprobeError(spec.problem)
        full, table = _load(spec)
        values["format"] = full.format
        seg = None if spec.segment is None else slice(spec.start, spec.stop)
        run, _ = select(full, None, seg, table) if seg is not None else (full, {})
        roi, selection = select(run, spec.roi, None, table) if spec.roi else \
            (run, {"ions_selected": run.n_ions})
        timings["read_select"] = time.perf_counter() - t0
    except (LiprobeError, OSError, ValueError) as e:
        out.update(status="failed", error=_one_line(e))
        timings["total"] = time.perf_counter() - t0
        return out
    ctx = RunContext(spec, params, full, run, roi, table, selection)
    for g in GROUPS:
        t = time.perf_counter()
        if not g.available():
            reasons[g.name] = f"needs {g.requires}, which this installation does not have yet"
            continue
        try:
            v, r, *artefact = g.func(ctx)
            values.update(v)
            reasons.update(r)
            if artefact and artefact[0] is not None:
                out.setdefault("artefacts", {})[g.name] = artefact[0]
        except (LiprobeError, ValueError) as e:
            reasons[g.name] = _one_line(e)
        except Exception as e:  # noqa: BLE001 - a bug in one group must not hide the others
            reasons[g.name] = _one_line(e)
            if out["error"] is None:
                out.update(status="failed", error=f"{g.name}: {type(e).__name__}: {_one_line(e)}")
        timings[g.name] = time.perf_counter() - t
    for k in list(values):
        v = _plain(values[k])
        if v is None and values[k] is not None:
            reasons.setdefault(k, "not a finite number")
        values[k] = v
    timings["total"] = time.perf_counter() - t0
    return out


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and getattr(e, "filename", None):
        return f"{e.filename}: {e.strerror or e}"
    return " ".join(str(e).split()) or type(e).__name__
