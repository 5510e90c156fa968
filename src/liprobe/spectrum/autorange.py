"""Automatic ranging: peaks explained by candidate ions whose whole isotope pattern fits.

What an analyst does, made explicit:

0. **Calibration first.** The peaks that are unambiguous by their isotope
   pattern (an ion whose every isotope of at least 3 % of its main one is seen
   at one offset, with the counts the pattern predicts: Li, Si, Cr, Fe, Ni,
   Cu, Zn, Mg, Mo...) give the mass offset at their masses; between them it
   is interpolated linearly in sqrt(m), beyond them it is taken as constant
   with a tolerance that also admits no offset at all
   (:func:`~liprobe.spectrum.calibration.anchor_offsets`). The peaks are
   identified on calibrated masses; the windows are written in the file's
   masses, so that the file is analysed as it is.
1. **Peaks.** Every peak significant above its local background (5 sigma by
   default) is found and measured (:mod:`liprobe.spectrum.peaks`).
2. **Candidates.** Every plausible ion of the elements (plus H and C) is
   enumerated with its isotope pattern (:mod:`liprobe.chemistry.candidates`).
3. **Matching.** Each isotope peak of a candidate (>= 0.1 % of the ion) is
   put on the nearest observed peak within the matching tolerance, or, when
   none is there, on a "missing" row that measures the counts where the
   isotope should be above the local background of its sidebands (nearly
   zero if it is not there, also on the tail of a large peak: a Cr-free
   run's Ni+ and NiO+ tails are no evidence for CrO4++ or Cr2O++). A missing
   row is kept for an isotope of at least 2 % of its ion, or for one that
   the ion's main peak predicts as a significant peak (at least 10 counts,
   at ``min_significance`` sigma): O2++ at 16 Da needs its 16O18O++ at 17 Da.
   A candidate is considered when its most abundant isotope lands on an
   observed peak.
4. **Intensities.** The peak counts are explained by all considered
   candidates at once, by weighted non-negative least squares over their
   isotope patterns (variance = counts + background + (5 % of counts)^2, the
   last for peak-shape and tail systematics). Ratios are tested, not
   positions alone: a candidate whose pattern predicts peaks that are not
   there cannot take counts. Candidates with an element that was not named
   (H and C, added) carry a small ridge (5 % of their column's norm): when
   the counts fit equally well with or without them (24Mg++, 25Mg++, 26Mg++
   against C+, MgH++, CH+), the named elements explain the peaks. An ion is
   accepted when it explains at least 2 % of one peak and its fitted count is
   at 5 sigma.
5. **Ambiguities.** A peak is ambiguous when two accepted ions share it, or a
   second candidate could hold at least 5 % of it without contradicting its
   own other isotopes (its upper limit, at 3 sigma, over its rows of isotopes
   above 1 %, and in the peak itself over what is left by the accepted ions
   seen at their main isotope on another peak, whose counts there their
   patterns fix: 62NiO3+ at 109.9 Da leaves no room to Mn2+, which is
   reported as a rival only if 3 sigma of the peak is 5 % of it, and never
   takes the window): O+ and O2++ at 16 Da, O2+ and 64Ni++ at 32 Da, CrO+ and
   Ni2O++ at 66-70 Da, 54CrH+ and Mn+ at 55 Da, NiOH+ and CoO+ at 75 Da. An
   accepted ion shares a peak when it explains at least 0.5 % of it, or when
   the counts its isotope pattern (fitted on all its peaks) puts there would
   be a significant peak on their own: at least 10 counts, at
   ``min_significance`` sigma above the local background over the peak's
   counting span, as peaks are found in point 1. A larger ion does not hide
   a contributor that the other isotopes predict: 64Ni++ (0.9 % of Ni++)
   under O2+ at 32 Da is reported whichever side of 0.5 % of the peak it
   falls. The counts predicted for each accepted ion are given
   (``predicted``). Both names are reported; the split is given when
   the isotopes determine it (both counts at 3 sigma or better), and the
   window is assigned to the ion with the larger share when split, else,
   among the ions that could hold (nearly) all of it and whose mass the
   peak's position allows (an ion more than 5 standard errors of the position
   off, while another is within 3, is ruled out: 64Ni++ at 31.964 Da cannot
   be a 37,000-ion peak at 31.990 Da), by the convention of
   :func:`~liprobe.chemistry.candidates.ambiguity_priority`: fewer atoms,
   then lower charge, then an ion seen at its other isotopes, then no H, then
   the user's elements. So 16 Da is O+ (as Bachhav et al. 2013 found in
   18O-labelled hematite), 55 Da Mn+ (not 54CrH+), 75 Da CoO+ (not NiOH+ or
   Co2O2++), 66-70 Da CrO+ (not Ni2O++), 133.86 Da Ni2O+ when Ni2O+ is seen at
   131.87 Da (not Co2O+).
6. **Windows** are set from each peak's shape: 4 sigma of its Gaussian core
   (sigma from the clean, low-mass side) below the maximum, and 4 sigma plus
   4 decay lengths of its thermal tail (98 % of the tail; the peak's own fit,
   else the run's typical tail of :func:`~liprobe.spectrum.deconvolve.shape_from_peaks`)
   above it. Where two windows overlap, they meet where the two peaks' model
   densities (Gaussian core and tail) are equal (the tail that runs on is the
   next window's background, which ``liprobe composition --deconvolve``
   corrects).
7. Every significant peak that no accepted ion explains (less than half its
   counts) is listed as unexplained.
8. **The result tells.** ``explained_fraction`` is the share of the counts
   in significant peaks that the written windows explain (a window's peak
   counts as far as the accepted ions' patterns put counts there, within 2
   sigma of the fit). Warnings, each with its numbers, name: an unexplained
   peak above 0.5 % of the ions; an explained fraction below 95 %; H or C,
   not named, making 25 % of the ranged atoms or the most of them; an
   element named but not found; a window holding two peaks more than a FWHM
   apart. Notes say, peak by peak, what an ambiguous peak was named and what
   not. :func:`suggest_elements` ranks the elements that the unexplained
   peaks point to.

The matching tolerance is 1.5 FWHM (from the measured resolving power) of
the calibrated masses, or 1.5 of a peak's own measured FWHM where that is
wider (light ions: with a constant timing jitter the relative width
``dm/m = 2 dt/t`` grows as ``m^-1/2``, so H2+ at 2 Da is relatively several
times wider than the median peak). It is widened to 0.4 % of the mass when that explains
at least 3 % more of the peak counts, or more of them when 1.5 FWHM explains
less than 80 % (an offset the anchors could not measure); the result says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..chemistry import Ion
from ..chemistry.candidates import DEFAULT_ADDED, ambiguity_priority, candidate_ions
from ..errors import AnalysisError
from ..rangetable import Range, RangeTable
from ._shared import poisson_excess_z, sorted_masses, sorted_search
from .calibration import OffsetModel, anchor_offsets
from .peaks import PeakAnalysis, analyse_peaks

__all__ = ["Autorange", "autorange", "suggest_elements", "ION_COLORS"]

#: Colours of ranged ions by their first metal (or main element), RRGGBB.
ION_COLORS = {
    "Li": "#9933CC", "O": "#00AA00", "Ni": "#3366FF", "Co": "#FF9900", "Mn": "#CC0066",
    "Cr": "#CC3333", "H": "#999999", "C": "#663300", "Si": "#777777", "Cu": "#FF6600",
    "Ga": "#00CCCC", "N": "#3399FF", "Na": "#CCCC00", "Al": "#66CCCC", "Fe": "#996633",
}

_CORE_SIGMAS = 4.0         # windows: +-4 sigma of the core ...
_TAIL_TAUS = 4.0           # ... and 4 tail decay lengths (98 % of the tail) above it
_MIN_ISOTOPE = 2e-4        # isotopes below this fraction of an ion are ignored
_SYSTEMATIC = 0.05         # relative systematic error of a peak count
_MISSING_MIN = 0.02        # a missing isotope row is added for isotopes above this fraction
_SHARE_MIN = 0.02          # an accepted ion explains at least this share of one peak
_AMBIGUOUS_SHARE = 0.05    # a second ion that could hold this share of a peak makes it ambiguous
_SHARED_SHARE = 0.005      # two accepted ions that each explain this share of a peak share it
_HIDDEN_MIN_COUNTS = 10.0  # ... or predicted counts of an isotope, at least these and significant
_AUTO_EXPLAINED = 0.80     # below this explained fraction the tolerance is widened
_AUTO_GAIN = 0.03          # ... or when widening explains this much more of the peak counts
_WIDE_TOL_REL = 0.004      # the wide tolerance, relative to the mass


@dataclass(frozen=True)
class Autorange:
    """Result of :func:`autorange`: the range table and how every peak was explained."""

    table: RangeTable
    ions: tuple          # dicts, one per accepted ion (see to_dict)
    ambiguities: tuple   # dicts
    unexplained: tuple   # dicts
    peaks: PeakAnalysis
    elements: tuple
    tolerance: dict
    explained_fraction: float
    calibration: dict | None = None
    warnings: tuple = field(default=())
    notes: tuple = field(default=())
    offsets: OffsetModel | None = None

    def to_dict(self) -> dict:
        return {
            "elements": list(self.elements),
            "ions": [dict(d) for d in self.ions],
            "ambiguities": [dict(d) for d in self.ambiguities],
            "unexplained": [dict(d) for d in self.unexplained],
            "explained_fraction": self.explained_fraction,
            "tolerance": dict(self.tolerance),
            "ranges": [r.to_dict() for r in self.table.ranges],
            "background": self.peaks.background.to_dict(),
            "peaks": [p.to_dict() for p in self.peaks.peaks],
            "calibration": self.calibration,
            "warnings": [dict(w) for w in self.warnings],
            "notes": list(self.notes),
        }


def _resolution(peaks):
    """Relative FWHM (median over well-measured peaks), for peaks that lack their own."""
    rel = [p.fwhm / p.mass for p in peaks if p.fwhm and p.counts >= 200]
    if not rel:
        rel = [p.fwhm / p.mass for p in peaks if p.fwhm]
    return float(np.median(rel)) if rel else 2e-3


def _fwhm_of(p, rel):
    return p.fwhm if p.fwhm else rel * p.mass


def _window(p, rel, shape=None):
    """Ranging window of a peak from its shape (module text, point 6)."""
    w = _fwhm_of(p, rel)
    sigma = p.sigma_left if p.sigma_left else w / 2.3548
    tau = p.tail_da
    if tau is None:
        tau = float(shape.tau_da(p.mass)) if shape is not None and shape.weight > 0 else 0.0
    return p.mass - _CORE_SIGMAS * sigma, p.mass + _CORE_SIGMAS * sigma + _TAIL_TAUS * tau


def _local_excess(sm, m, w, peaks, rel):
    """Counts at ``m`` (``[m - 2w, m + 2w)``) above the local background, and the background.

    The background is measured in the sidebands either side (``2w`` to ``6w`` away), not
    taken from the run's background model: a missing isotope that sits on the tail of a
    large peak (Ni+, NiO+) must not borrow the tail's counts as evidence. A sideband that
    overlaps the core (+-2 FWHM) of a detected peak is not used; when both do, the lower
    one is.
    """
    lo, hi = m - 2 * w, m + 2 * w
    n = float(sorted_search(sm, hi) - sorted_search(sm, lo))
    sides = []
    for a, b in ((m - 6 * w, m - 2 * w), (m + 2 * w, m + 6 * w)):
        cnt = float(sorted_search(sm, b) - sorted_search(sm, a)) / (b - a)
        clean = not any(p.mass - 2 * _fwhm_of(p, rel) < b and p.mass + 2 * _fwhm_of(p, rel) > a
                        for p in peaks)
        sides.append((cnt, clean))
    clean_sides = [cnt for cnt, ok in sides if ok]
    dens = float(np.mean(clean_sides)) if clean_sides else min(cnt for cnt, _ in sides)
    b = dens * (hi - lo)
    return n, b


def _match(cands, peaks, tol_fn, rel, sm, bg, min_significance=5.0, to_obs=None):
    """Rows (observed peaks, then missing isotopes) and the design matrix over candidates.

    A missing row is added for an isotope of at least 2 % of its ion, or for one that the
    counts of the ion's main peak predict as a significant peak of its own (at least 10
    counts, ``min_significance`` over the local background): O2++ at 16 Da predicts its
    16O18O++ at 17.0 Da, which must be there for O2++ to take the 16 Da counts.
    ``peaks`` are calibrated; ``to_obs`` maps a true mass to the file's masses
    ``sm`` (for the missing rows' local counts).
    """
    pm = np.array([p.mass for p in peaks])
    # a peak measured wider than the median relative FWHM (light ions: with a constant
    # timing jitter dm/m = 2 dt/t grows as m^-1/2) is matched within 1.5 of its own FWHM
    # (at most the widened tolerance, 0.4 % of the mass: a merged or smeared peak's own
    # FWHM must not let it take a candidate far away)
    own_tol = np.array([min(1.5 * p.fwhm, _WIDE_TOL_REL * p.mass) if p.fwhm else 0.0
                        for p in peaks])
    rows = [{"kind": "peak", "mass": p.mass, "peak": k,
             "counts": max(p.counts, 0.0),
             "var": max(p.counts, 0.0) + p.background * 4.0 * _fwhm_of(p, rel)}
            for k, p in enumerate(peaks)]
    missing: dict[float, int] = {}
    local: dict[float, tuple] = {}
    obs_peaks = peaks if to_obs is None else [
        replace(p, mass=float(to_obs(p.mass))) for p in peaks]
    cols = []
    considered = []
    for cand in cands:
        entries = []
        unmatched = []
        main_m, main_a = cand.main_peak
        k_main = None
        for m, a in cand.peaks:
            if a < _MIN_ISOTOPE:
                continue
            k = int(np.argmin(np.abs(pm - m))) if len(pm) else -1
            if k >= 0 and abs(pm[k] - m) <= max(tol_fn(m), own_tol[k]):
                entries.append((k, a, m))
                if m == main_m:
                    k_main = k
            else:
                unmatched.append((m, a))
        if k_main is None:
            continue
        main_counts = rows[k_main]["counts"]
        for m, a in unmatched:
            key = round(m, 2)
            if key not in local:
                m_obs = m if to_obs is None else float(to_obs(m))
                local[key] = _local_excess(sm, m_obs, rel * m, obs_peaks, rel)
            n, b = local[key]
            pred = main_counts * a / max(main_a, 1e-12)
            if a < _MISSING_MIN and not (
                    pred >= _HIDDEN_MIN_COUNTS
                    and float(poisson_excess_z(pred + b, max(b, 1.0))) >= min_significance):
                continue
            if key not in missing:
                missing[key] = len(rows)
                rows.append({"kind": "missing", "mass": m, "peak": None,
                             "counts": max(n - b, 0.0), "var": max(n, 1.0)})
            entries.append((missing[key], a, m))
        considered.append(cand)
        cols.append(entries)
    a = np.zeros((len(rows), len(considered)))
    for j, entries in enumerate(cols):
        for r, ab, _m in entries:
            a[r, j] += ab
    return rows, a, considered, cols


#: Weight of the small ridge on candidates with an element the user did not name (H, C
#: added by default): when the counts fit equally well with or without them (24Mg++ +
#: 25Mg++ + 26Mg++ against C+ + MgH++ + CH+), the named elements explain the peaks.
_UNNAMED_RIDGE = 0.05


def _solve(rows, a, penalised=None):
    """Weighted non-negative least squares of the peak counts over the candidates.

    ``penalised`` (bool per column) marks the candidates with an element that was not
    named: each gets a ridge row of weight :data:`_UNNAMED_RIDGE` times its column's
    norm, which decides degenerate fits for the named elements and shrinks a lone
    unnamed ion's count by about 0.25 %.
    """
    from scipy.optimize import nnls

    c = np.array([r["counts"] for r in rows])
    sig = np.sqrt(np.array([r["var"] for r in rows]) + (_SYSTEMATIC * c) ** 2 + 1.0)
    if a.shape[1] == 0:
        return np.zeros(0), c, sig
    aw, cw = a / sig[:, None], c / sig
    if penalised is not None and np.any(penalised):
        cols = np.flatnonzero(penalised)
        ridge = np.zeros((len(cols), a.shape[1]))
        ridge[np.arange(len(cols)), cols] = _UNNAMED_RIDGE * np.linalg.norm(aw[:, cols], axis=0)
        aw = np.vstack([aw, ridge])
        cw = np.concatenate([cw, np.zeros(len(cols))])
    sol, _ = nnls(aw, cw, maxiter=100 * a.shape[1])
    return sol, c, sig


def _upper_limit(j, a, c, sig, n, k, elsewhere=()):
    """Largest count of candidate j that its own other isotopes allow (3 sigma).

    In peak ``k`` (the one in question) it may take everything but the counts that the
    ions in ``elsewhere`` put there: ions seen at their main isotope on another peak,
    whose counts here their isotope patterns fix (62NiO3+ at 109.9 Da, predicted by
    58NiO3+ at 105.9 Da, leaves no room for an Mn2+ of its own), plus 3 sigma. In its
    other rows holding at least 1 % of it (weaker ones sit in tails and are not trusted)
    it may take what the fit of the other ions leaves, plus 3 sigma.
    """
    others = a @ n - a[:, j] * n[j]
    fixed = sum(a[k, i] * n[i] for i in elsewhere if i != j)
    lim = max(c[k] - fixed + 3.0 * sig[k], 0.0) / a[k, j]
    for r in np.flatnonzero(a[:, j] >= 0.01):   # rows of >= 1 % isotopes constrain it
        if r == k:
            continue
        room = c[r] - others[r] + 3.0 * sig[r]
        lim = min(lim, max(room, 0.0) / a[r, j])
    return lim


def _errors(a, sig, active):
    if not active:
        return {}
    sub = a[:, active] / sig[:, None]
    try:
        cov = np.linalg.pinv(sub.T @ sub)
    except np.linalg.LinAlgError:
        return {}
    return {j: float(math.sqrt(max(cov[i, i], 0.0))) for i, j in enumerate(active)}


def _color(ion: Ion) -> str | None:
    for el in ion.elements:
        if el not in ("O", "H"):
            return ION_COLORS.get(el)
    return ION_COLORS.get(ion.elements[0]) if ion.elements else None


def _attempt(peaks, cands, tol_fn, rel, sm, bg, user_elements, min_significance=5.0,
             to_obs=None):
    rows, a, considered, cols = _match(cands, peaks, tol_fn, rel, sm, bg, min_significance,
                                       to_obs)
    named = set(user_elements)
    unnamed = np.array([any(el not in named for el in cd.ion.elements) for cd in considered],
                       dtype=bool)
    n, c, sig = _solve(rows, a, unnamed)
    # accept: ions that explain >= 2 % of one observed peak, at 5 sigma
    npk = len(peaks)
    contrib = a[:npk] * n[None, :]                    # peak x candidate
    errs = _errors(a, sig, [j for j in range(len(n)) if n[j] > 0])
    accepted = []
    for j in range(len(considered)):
        if n[j] <= 0:
            continue
        share = contrib[:, j] / np.maximum(c[:npk], 1.0)
        e = errs.get(j, math.inf)
        if share.max() >= _SHARE_MIN and n[j] >= 5.0 * e:
            accepted.append(j)
    # refit with the accepted ions only
    a2 = a[:, accepted]
    n2, c, sig = _solve(rows, a2, unnamed[accepted])
    full_n = np.zeros(len(considered))
    full_n[accepted] = n2
    explained = float(np.sum(np.minimum((a2 @ n2)[:npk], c[:npk]))) / max(float(c[:npk].sum()), 1.0)
    return {"rows": rows, "a": a, "considered": considered, "cols": cols, "n": full_n,
            "c": c, "sig": sig, "accepted": accepted, "explained": explained}


def autorange(mass, elements, max_atoms: int = 5, max_charge: int = 3,
              mass_range=(0.5, 200.0), tof=None, min_significance: float = 5.0,
              tolerance="auto", add=DEFAULT_ADDED, ns_per_sqrt_da: float | None = None,
              sorted_mass: np.ndarray | None = None,
              peak_analysis: PeakAnalysis | None = None, calibrate: bool = True) -> Autorange:
    """Range a run automatically (see the module text).

    Parameters
    ----------
    mass : ndarray of float, shape (n,), or iterable of chunks
        Mass-to-charge in Da.
    elements : iterable of str
        Elements of the specimen (H and C are added, see ``add``).
    max_atoms, max_charge : int
        Limits of the candidate ions.
    mass_range : (float, float)
        Da.
    tof : ndarray, optional
        Time of flight in ns (tails in ns, background in ppm/ns).
    min_significance : float
        z of a peak over its local background.
    tolerance : "auto" or float
        Matching tolerance: "auto" (1.5 FWHM, widened when needed), or a
        fraction of the mass (e.g. 0.004).
    add : iterable of str
        Elements always added to the candidates.
    ns_per_sqrt_da : float, optional
        Time-of-flight scale for a run without tof.
    sorted_mass, peak_analysis : optional
        Already computed :func:`~liprobe.spectrum.sorted_masses` and
        :func:`~liprobe.spectrum.peaks.analyse_peaks` of the same masses.
    calibrate : bool
        Measure the mass offsets on peaks identified by their isotope pattern
        and identify on calibrated masses (module text, point 0); windows stay
        in the file's masses.

    Returns
    -------
    Autorange

    Raises
    ------
    AnalysisError
        No element given, an unknown element, or no significant peak.

    Examples
    --------
    The spectrum of :func:`~liprobe.spectrum.peaks.analyse_peaks`' example:
    820 6Li+ and 10,000 7Li+ (7.6 % and 92.4 %, Li's isotopes), 4000 O+ and
    1000 background ions.

    >>> import numpy as np
    >>> from liprobe.spectrum import autorange
    >>> rng = np.random.default_rng(0)
    >>> mass = np.concatenate([rng.normal(6.015, 0.007, 820), rng.normal(7.016, 0.007, 10000),
    ...                        rng.normal(15.995, 0.016, 4000), rng.uniform(1, 40, 1000)])
    >>> ar = autorange(mass, ["Li", "O"], mass_range=(1, 40))
    >>> for r in ar.table.ranges:
    ...     print(f"{r.ion.name:4s} [{r.lo:.2f}, {r.hi:.2f}) Da")
    Li+  [5.99, 6.04) Da
    Li+  [6.99, 7.04) Da
    O+   [15.93, 16.06) Da
    >>> for ion in ar.ions:      # counts fitted over each ion's whole isotope pattern
    ...     print(f"{ion['ion']:4s} {ion['counts']:6.0f} +/- {ion['error']:.0f}")
    Li+   10794 +/- 422
    O+     4010 +/- 210
    >>> ar.ions[0]["pattern_fit"]["isotopes"][0]["observed_fraction"]   # 6Li: 0.0759
    0.07563

    16 Da could also be O2++: the window goes to O+ by convention (fewer atoms).

    >>> [(a["mass"], a["ions"], a["assigned"]) for a in ar.ambiguities]
    [(6.0145, ['Li+', 'C++'], 'Li+'), (15.9954, ['O+', 'O2++'], 'O+')]
    """
    elements = tuple(elements)
    if not elements:
        raise AnalysisError("autoranging needs at least one element")
    try:
        cands = candidate_ions(elements, max_atoms, max_charge, (0.0, float(mass_range[1]) + 1),
                               add=add)
    except ValueError as e:
        raise AnalysisError(str(e)) from None
    sm = sorted_mass if sorted_mass is not None else sorted_masses(mass)
    pa = peak_analysis or analyse_peaks(mass, tof, mass_range, min_significance,
                                        ns_per_sqrt_da, sorted_mass=sm)
    peaks_obs = list(pa.peaks)
    if not peaks_obs:
        raise AnalysisError("no significant peak in the spectrum")
    rel = _resolution(peaks_obs)
    model = (anchor_offsets(peaks_obs, cands, rel) if calibrate
             else OffsetModel((), (), "calibration not asked for"))
    peaks = [replace(p, mass=float(model.true_mass(p.mass))) for p in peaks_obs]
    res, used, warnings = _identify(peaks, cands, rel, sm, pa.background, elements,
                                    min_significance, tolerance, model)
    from ..chemistry import isotope_warnings

    warnings = [_warning("assumed_isotopes", msg, element=msg.split(" ", 1)[0])
                for msg in isotope_warnings(elements)] + warnings
    return _build(res, peaks, peaks_obs, pa, rel, elements, used, warnings, model, sm,
                  min_significance)


def _identify(peaks, cands, rel, sm, bg, elements, min_significance, tolerance, model):
    """The match of candidates to the (calibrated) peaks, with the tolerance that was used.

    ``tolerance="auto"``: 1.5 FWHM, widened to 0.4 % of the mass when that
    explains clearly more (a calibration the anchors could not fix); a number:
    that fraction of the mass.
    """
    to_obs = model.observed_mass if model.points else None
    if tolerance == "auto":
        rule = "1.5 FWHM"

        def tol_fn(m):
            # beyond the anchors the offset may go on or vanish: allow both
            return 1.5 * rel * m + float(model.extrapolation_da(m))
    else:
        tol = float(tolerance)
        rule, tol_fn = f"{100 * tol:g} % of the mass", (lambda m: tol * m)
    res = _attempt(peaks, cands, tol_fn, rel, sm, bg, elements, min_significance, to_obs)
    warnings: list = []
    if tolerance == "auto":
        wide = _attempt(peaks, cands, lambda m: max(tol_fn(m), _WIDE_TOL_REL * m), rel, sm,
                        bg, elements, min_significance, to_obs)
        if (wide["explained"] >= res["explained"] + _AUTO_GAIN
                or (res["explained"] < _AUTO_EXPLAINED and wide["explained"] > res["explained"])):
            warnings.append(_warning(
                "tolerance_widened",
                f"peaks sit off their ions' masses by more than 1.5 FWHM after the "
                f"calibration: the matching tolerance was widened to {100 * _WIDE_TOL_REL:g} % "
                f"of the mass (explained {100 * res['explained']:.0f} % -> "
                f"{100 * wide['explained']:.0f} % of peak counts); check the mass calibration",
                explained_before=round(res["explained"], 4),
                explained_after=round(wide["explained"], 4)))
            res, rule = wide, f"{100 * _WIDE_TOL_REL:g} % of the mass (widened)"
    return res, rule, warnings


def _warning(kind: str, message: str, **numbers) -> dict:
    """A warning of the result: its kind, one sentence, and its numbers."""
    return {"kind": kind, "message": message, **numbers}


def _hidden_peak_z(pred, p, rel):
    """z of ``pred`` counts of an ion's isotope predicted under peak ``p`` as a peak of its own.

    The predicted counts are in the units of the peak's counts (``[m - 2 FWHM, m +
    max(0.1 Da, 2 FWHM))``, :func:`~liprobe.spectrum.peaks.measure_peak`), tested against the local
    background over that span (not against the other ion's counts, which the isotope
    pattern has already accounted for), as :func:`~liprobe.spectrum.peaks.detect_peaks`
    tests a peak.
    """
    w = _fwhm_of(p, rel)
    b = max(p.background, 0.0) * (2.0 * w + max(0.1, 2.0 * w))
    return float(poisson_excess_z(pred + b, b))


def _build(res, peaks, peaks_obs, pa, rel, elements, used, warnings, model, sm,
           min_significance=5.0):
    """The result, in named steps: assign peaks, set windows, report ions and warnings."""
    n = res["n"].copy()
    accepted = list(res["accepted"])
    owner, ambiguities = _assign(res, peaks, rel, elements, n, accepted, min_significance,
                                 [p.mass for p in peaks_obs])
    table = _windows(peaks_obs, owner, res["considered"], rel)
    ions_out = _ion_reports(res, n, accepted, table, peaks, peaks_obs)
    npk = len(peaks)
    explained_k = res["a"][:npk] @ n
    c = res["c"][:npk]
    unexplained = _unexplained(peaks_obs, explained_k, c, owner, res["considered"])
    explained = _explained_fraction(owner, explained_k, c, res["sig"][:npk])
    warnings = list(warnings) + _warnings(elements, ions_out, unexplained, explained, table,
                                          peaks_obs, len(sm))
    calibration = _calibration_report(model, ions_out)
    return Autorange(table, tuple(ions_out), tuple(ambiguities), tuple(unexplained), pa,
                     tuple(elements), {"rule": used, "fwhm_relative": rel}, explained,
                     calibration, tuple(warnings), tuple(_notes(ambiguities)), model)


def _explained_fraction(owner, explained_k, c, sig) -> float:
    """Share of the counts in significant peaks that the written windows explain.

    A peak counts when it has a window, up to what the accepted ions' isotope
    patterns put there, within 2 sigma of the fit (counting and the 5 %
    peak-shape systematic): a 37,000-count peak named after an isotope that
    predicts 198 counts there is not explained.
    """
    ranged = np.array([k in owner for k in range(len(c))], dtype=bool)
    held = np.minimum(explained_k + 2.0 * sig, c)
    return float(np.sum(held[ranged])) / max(float(c.sum()), 1.0)


#: A peak position this many standard errors from an ion's mass rules the ion out as the
#: peak's owner when another candidate sits within POSITION_OK_Z.
POSITION_MAX_Z = 5.0
POSITION_OK_Z = 3.0
#: Systematic floor of a calibrated peak position, as a fraction of its FWHM.
POSITION_FLOOR_FWHM = 0.1


def _position_z(peak, m_ion, rel):
    """Standard errors between a (calibrated) peak's position and an ion's isotope mass.

    The error of the position is the peak's Gaussian sigma over the square
    root of its counts, plus a systematic floor of a tenth of the FWHM (the
    calibration between anchors, peak asymmetry).
    """
    w = _fwhm_of(peak, rel)
    stat = (w / 2.3548) / math.sqrt(max(peak.counts, 1.0))
    return abs(peak.mass - m_ion) / math.hypot(stat, POSITION_FLOOR_FWHM * w)


def _assign(res, peaks, rel, user_elements, n, accepted, min_significance, observed):
    """Owner of every explained peak, and the ambiguities (module text, point 5).

    ``peaks`` are calibrated, ``observed`` their masses in the file (reported). ``n``
    and ``accepted`` are updated when the convention gives a window to a candidate the
    fit had not accepted.
    """
    a, considered, c, sig = res["a"], res["considered"], res["c"], res["sig"]
    npk = len(peaks)
    contrib = a[:npk] * n[None, :]
    errs = _errors(a, sig, accepted)
    ambiguities = []
    owner: dict[int, int] = {}
    first_accepted = set(accepted)
    main_row = {j: next(r for r, ab, m in res["cols"][j] if m == considered[j].main_peak[0])
                for j in range(len(considered))}
    iso_mass = {(j, r): m for j in range(len(considered)) for r, ab, m in res["cols"][j]}
    for k in range(npk):
        here = [j for j in accepted if contrib[k, j] > 0]
        if not here:
            continue
        elsewhere = [j for j in here if main_row[j] != k]
        rivals = []
        for j in range(len(considered)):
            if j in here or a[k, j] <= 0:
                continue
            lim = _upper_limit(j, a, c, sig, n, k, elsewhere)
            if lim * a[k, j] >= _AMBIGUOUS_SHARE * max(c[k], 1.0):
                rivals.append((j, lim))
        main = max(here, key=lambda j: contrib[k, j])
        sharing = [j for j in here
                   if contrib[k, j] >= _SHARED_SHARE * max(c[k], 1.0)
                   or (contrib[k, j] >= _HIDDEN_MIN_COUNTS
                       and _hidden_peak_z(contrib[k, j], peaks[k], rel) >= min_significance)]
        if len(sharing) < 2 and not rivals:
            owner[k] = main
            continue
        predicted = {considered[j].ion.name: round(float(contrib[k, j]), 1) for j in sharing}
        names = [considered[j].ion for j in sharing] + [considered[j].ion for j, _ in rivals]
        determined = not rivals and all(n[j] >= 3.0 * errs.get(j, math.inf) for j in sharing)
        z = {j: _position_z(peaks[k], iso_mass[(j, k)], rel) for j in set(sharing)
             | {j for j, _ in rivals} | {main} if (j, k) in iso_mass}
        if determined:
            assigned = main
            how = "split by the isotope patterns; the window goes to the larger share"
        else:
            assigned, how = _by_convention(k, main, sharing, rivals, contrib, a, z,
                                           considered, user_elements, first_accepted)
            if assigned not in accepted:
                accepted.append(assigned)
                n[assigned] = max(n[assigned], float(c[k] / max(a[k, assigned], 1e-9)))
                for j in sharing:
                    if j != assigned and not any(contrib[q, j] > 0 for q in range(npk)
                                                 if q != k):
                        n[j] = 0.0
                contrib = a[:npk] * n[None, :]
        owner[k] = assigned
        ambiguities.append({
            "mass": round(observed[k], 4),
            "ions": [i.name for i in dict.fromkeys(names)],
            "assigned": considered[assigned].ion.name,
            "split": ({considered[j].ion.name: round(float(contrib[k, j]), 1) for j in sharing}
                      if determined else None),
            "predicted": predicted,
            "upper_limits": {considered[j].ion.name: round(float(lim * a[k, j]), 1)
                             for j, lim in rivals},
            "position_z": {considered[j].ion.name: round(v, 1) for j, v in z.items()},
            "how": how,
        })
    return owner, ambiguities


def _by_convention(k, main, sharing, rivals, contrib, a, z, considered, user_elements,
                   first_accepted):
    """The candidate that takes an undetermined peak, and how it was chosen.

    Any ion able to hold (nearly) all of what the main one holds may take the
    window, unless its mass is ruled out by the peak's position (more than
    :data:`POSITION_MAX_Z` standard errors off while another sits within
    :data:`POSITION_OK_Z`); among the rest the convention of
    :func:`~liprobe.chemistry.candidates.ambiguity_priority` decides.
    """
    cap = {j: contrib[k, j] for j in sharing}
    cap.update({j: lim * a[k, j] for j, lim in rivals})
    cap[main] = contrib[k, main]
    pool = [j for j, v in cap.items() if v >= 0.9 * contrib[k, main]]
    how = ("not determined by the isotopes; assigned by convention (fewer atoms, lower "
           "charge, an ion seen at its other isotopes, no H, the named elements first)")
    if any(z.get(j, 0.0) <= POSITION_OK_Z for j in pool):
        near = [j for j in pool if z.get(j, 0.0) <= POSITION_MAX_Z]
        if len(near) < len(pool):
            pool = near
            how += "; ions more than 5 standard errors off the peak's position ruled out"

    def key(j):
        pr = ambiguity_priority(considered[j].ion, user_elements)
        return (pr[0], pr[1], j not in first_accepted) + pr[2:]

    return min(pool, key=key), how


def _density(p, rel, shape, x):
    """A peak's model density (counts per Da) at ``x``: Gaussian core plus exponential tail."""
    w = _fwhm_of(p, rel)
    sigma = p.sigma_left if p.sigma_left else w / 2.3548
    tau = p.tail_da
    if tau is None:
        tau = float(shape.tau_da(p.mass)) if shape is not None and shape.weight > 0 else 0.0
    tw = p.tail_weight if p.tail_weight is not None else 0.0
    n = max(p.counts, 0.0)
    core = n * (1 - tw) / (sigma * math.sqrt(2 * math.pi)) * np.exp(-0.5 * ((x - p.mass)
                                                                          / sigma) ** 2)
    tail = np.where(x > p.mass, n * tw / max(tau, 1e-9) * np.exp(-(x - p.mass)
                                                                 / max(tau, 1e-9)), 0.0)
    return core + (tail if tau > 0 else 0.0)


def _windows(peaks_obs, owner, considered, rel):
    """Windows of the explained peaks, in the file's masses (module text, point 6).

    Where two windows overlap, they meet where the two peaks' model densities
    (Gaussian core and thermal tail) are equal: each ion keeps the counts that
    are more likely its own. A detected peak without a window, more than a FWHM
    away, bounds its neighbours' windows the same way.
    """
    from .deconvolve import shape_from_peaks

    shape = shape_from_peaks(peaks_obs)
    ranged = sorted(owner, key=lambda k: peaks_obs[k].mass)
    bounds = {k: list(_window(peaks_obs[k], rel, shape)) for k in ranged}
    # every detected peak, ranged or not, bounds its neighbours' windows: a window never
    # runs over an unexplained peak
    order = sorted(range(len(peaks_obs)), key=lambda k: peaks_obs[k].mass)
    for k1, k2 in zip(order, order[1:]):
        if k1 not in bounds and k2 not in bounds:
            continue
        p1, p2 = peaks_obs[k1], peaks_obs[k2]
        if (k1 not in bounds or k2 not in bounds) and (
                p2.mass - p1.mass < max(_fwhm_of(p1, rel), _fwhm_of(p2, rel))):
            continue          # an unranged "peak" within a FWHM is the same peak found twice
        hi1 = bounds[k1][1] if k1 in bounds else _window(p1, rel, shape)[1]
        lo2 = bounds[k2][0] if k2 in bounds else _window(p2, rel, shape)[0]
        if hi1 <= lo2:
            continue
        x = np.linspace(p1.mass, p2.mass, 401)
        more = _density(p2, rel, shape, x) > _density(p1, rel, shape, x)
        cut = float(x[int(np.argmax(more))]) if more.any() else float(p2.mass)
        if k1 in bounds:
            bounds[k1][1] = min(bounds[k1][1], cut)
        if k2 in bounds:
            bounds[k2][0] = max(bounds[k2][0], cut)
    ranges = [Range(round(bounds[k][0], 4), round(bounds[k][1], 4), considered[owner[k]].ion,
                    color=_color(considered[owner[k]].ion)) for k in ranged
              if bounds[k][1] > bounds[k][0]]
    return RangeTable.from_ranges(ranges)


def _ion_reports(res, n, accepted, table, peaks, peaks_obs):
    """One dict per accepted ion: windows, counts, the fit of its isotope pattern, offsets."""
    rows, a, considered, c, sig = res["rows"], res["a"], res["considered"], res["c"], res["sig"]
    errs = _errors(a, sig, accepted)
    fitted_rows = a @ n
    out = []
    total_n = float(sum(n[j] for j in accepted)) or 1.0
    for j in sorted(set(accepted), key=lambda j: considered[j].main_peak[0]):
        cand = considered[j]
        if n[j] <= 0 and not any(r.ion == cand.ion for r in table.ranges):
            continue
        rws = list(res["cols"][j])
        chi2 = 0.0
        isotopes = []
        for r, ab, m in rws:
            others = fitted_rows[r] - a[r, j] * n[j]
            obs = (c[r] - others) / n[j] if n[j] > 0 else None
            chi2 += float(((c[r] - fitted_rows[r]) / sig[r]) ** 2)
            isotopes.append({"mass": round(m, 4), "expected_fraction": round(ab, 5),
                             "observed_fraction": None if obs is None else round(float(obs), 5),
                             "at": "peak" if rows[r]["kind"] == "peak" else "missing"})
        dof = max(len(rws) - 1, 0)
        wins_j = [[r.lo, r.hi] for r in table.ranges if r.ion == cand.ion]
        k_main = next((r for r, ab, m in rws if m == cand.main_peak[0]
                       and rows[r]["kind"] == "peak"), None)
        out.append({
            "ion": cand.ion.name, "family": cand.family,
            "windows": wins_j,
            "note": None if wins_j else "no window of its own: it shares peaks named after "
                                        "other ions (see ambiguities)",
            "counts": round(float(n[j]), 1),
            "error": None if j not in errs else round(errs[j], 1),
            "abundance": round(float(n[j]) / total_n, 6),
            "pattern_fit": {"chi2": round(chi2, 3), "dof": dof,
                            "reduced_chi2": None if dof == 0 else round(chi2 / dof, 3),
                            "isotopes": isotopes},
            "main_peak_offset_da": (None if k_main is None else
                                    round(peaks[k_main].mass - cand.main_peak[0], 4)),
            "observed_offset_da": (None if k_main is None else
                                   round(peaks_obs[k_main].mass - cand.main_peak[0], 4)),
        })
    return out


def _unexplained(peaks_obs, explained_k, c, owner, considered):
    """Significant peaks that the accepted ions explain less than half of."""
    out = []
    for k, p in enumerate(peaks_obs):
        frac = explained_k[k] / max(c[k], 1.0)
        if frac < 0.5:
            out.append({"mass": round(p.mass, 4), "counts": round(float(p.counts), 1),
                        "significance": round(float(p.significance), 1),
                        "explained_fraction": round(float(min(frac, 1.0)), 3),
                        "ranged_as": considered[owner[k]].ion.name if k in owner else None})
    return out


#: Warning thresholds (issue-stated): an unexplained peak above this share of the ions ...
WARN_UNEXPLAINED_SHARE = 0.005
#: ... an explained fraction below this ...
WARN_EXPLAINED = 0.95
#: ... H or C (not named) above this share of the ranged atoms.
WARN_UNNAMED_SHARE = 0.25


def _warnings(elements, ions_out, unexplained, explained, table, peaks_obs, n_ions):
    """The warnings that tell (each a dict: kind, message, numbers)."""
    out = []
    for u in unexplained:
        if u["counts"] >= WARN_UNEXPLAINED_SHARE * n_ions:
            out.append(_warning(
                "unexplained_peak",
                f"a peak at {u['mass']:.3f} Da ({u['counts']:,.0f} counts, "
                f"{100 * u['counts'] / n_ions:.1f} % of the ions) is not explained by the named "
                "elements" + (f" (ranged as {u['ranged_as']} all the same)" if u["ranged_as"]
                              else "") + "; see --suggest",
                mass=u["mass"], counts=u["counts"], share=round(u["counts"] / n_ions, 5)))
    if explained < WARN_EXPLAINED:
        out.append(_warning(
            "explained_fraction",
            f"the windows explain {100 * explained:.1f} % of the ions in peaks (below "
            f"{100 * WARN_EXPLAINED:g} %): an element may be missing from --elements",
            explained_fraction=round(explained, 4)))
    atoms: dict[str, float] = {}
    from ..chemistry import parse_ion

    for d in ions_out:
        for el, k in parse_ion(d["ion"]).atoms:
            atoms[el] = atoms.get(el, 0.0) + k * d["counts"]
    total = sum(atoms.values()) or 1.0
    for el in ("H", "C"):
        share = atoms.get(el, 0.0) / total
        if el not in elements and (share >= WARN_UNNAMED_SHARE
                                   or (atoms and max(atoms.items(), key=lambda kv: kv[1])[0]
                                       == el)):
            out.append(_warning(
                "unnamed_element_dominates",
                f"{el}, not named, makes {100 * share:.0f} % of the ranged atoms: peaks of "
                "the named elements may be mislabelled (check the calibration and --elements)",
                element=el, share=round(share, 4)))
    for el in elements:
        if not any(parse_ion(d["ion"]).count(el) for d in ions_out):
            out.append(_warning("element_not_found",
                                f"{el} was named but no ion of {el} was found", element=el))
    pm = np.array([p.mass for p in peaks_obs])
    rel = _resolution(peaks_obs)
    fw = np.array([_fwhm_of(p, rel) for p in peaks_obs])
    for r in table.ranges:
        sel = (pm >= r.lo) & (pm < r.hi)
        inside = pm[sel]
        if len(inside) >= 2 and np.ptp(inside) > float(np.max(fw[sel])):
            out.append(_warning(
                "window_spans_peaks",
                f"the {r.ion.name} window [{r.lo:.3f}, {r.hi:.3f}) Da holds "
                f"{len(inside)} peaks ({', '.join(f'{m:.3f}' for m in inside)} Da)",
                ion=r.ion.name, lo=r.lo, hi=r.hi, peaks=[round(float(m), 4) for m in inside]))
    return out


def _notes(ambiguities):
    """One sentence per ambiguous peak that another element's ion could claim: what it was
    named, with the counts its pattern puts there, and how much each rival could hold."""
    from ..chemistry import parse_ion

    out = []
    for amb in ambiguities:
        mine = set(parse_ion(amb["assigned"]).elements)
        others = [i for i in amb["ions"] if i != amb["assigned"]
                  and not mine & set(parse_ion(i).elements)]
        if not others:
            continue
        held = amb["predicted"].get(amb["assigned"])
        text = f"{amb['mass']:.3f} Da is {amb['assigned']}"
        if held is not None:
            text += f" ({held:,.0f} counts by its isotope pattern)"
        limits = []
        for i in others:
            if amb["split"] and i in amb["split"]:
                limits.append(f"{i} holds {amb['split'][i]:,.0f}")
            elif i in amb["upper_limits"]:
                limits.append(f"{i} at most {amb['upper_limits'][i]:,.0f}")
            elif i in amb["predicted"]:
                limits.append(f"{i} {amb['predicted'][i]:,.0f}")
            else:
                limits.append(f"not {i}")
        out.append(f"{text}; " + ", ".join(limits)
                   + (" (split by the isotope patterns)" if amb["split"] else
                      " (their other isotopes limit them; the window goes by convention)"))
    return out


def _calibration_report(model, ions_out):
    """The offset model, and every accepted ion's main-peak offset after it."""
    d = model.to_dict()
    res = [(i["ion"], i["main_peak_offset_da"]) for i in ions_out
           if i["main_peak_offset_da"] is not None]
    d["residuals"] = [{"ion": name, "offset_after_da": off} for name, off in res]
    d["rms_after_da"] = (round(math.sqrt(float(np.mean([o * o for _, o in res]))), 5)
                         if res else None)
    return d


#: The ion forms tried for every element by :func:`suggest_elements`.
SUGGEST_FORMS = ("{}+", "{}++", "{}+++", "{}H+", "{}O+", "{}O++")


def suggest_elements(result: Autorange, exclude=(), top: int = 5) -> list:
    """Rank the elements that the unexplained peaks point to.

    For every element with natural isotopes (except ``exclude`` and those
    already named) the forms of :data:`SUGGEST_FORMS` are tried: an ion
    qualifies when its main isotope lies on an unexplained peak (calibrated
    mass, within the matching tolerance) and none of its other isotopes that
    would be a clear peak (predicted at 5 sigma and 20 counts) is absent from
    the spectrum. An element's score is the counts of the distinct unexplained
    peaks its qualifying ions land on (each isotope's share capped at what
    the main peak predicts).

    Returns
    -------
    list of dict
        ``element``, ``counts``, ``share`` (of the unexplained counts),
        ``ions`` (name -> peaks in Da), best first; at most ``top``.
    """
    from ..chemistry import parse_ion
    from ..chemistry.elements import element_symbols, isotopes

    peaks = list(result.peaks.peaks)
    if not result.unexplained or not peaks:
        return []
    model = result.offsets or OffsetModel((), ())
    rel = result.tolerance["fwhm_relative"]
    pm_obs = np.array([p.mass for p in peaks])
    pm = np.asarray(model.true_mass(pm_obs))
    counts = np.array([max(p.counts, 0.0) for p in peaks])
    unexplained = {int(np.argmin(np.abs(pm_obs - u["mass"]))) for u in result.unexplained}
    total = float(sum(counts[k] for k in unexplained)) or 1.0
    skip = set(result.elements) | set(exclude)
    ranked: list[dict] = []
    for el in sorted(element_symbols()):
        if el in skip:
            continue
        try:
            if not isotopes(el):
                continue
        except KeyError:
            continue
        hits: dict = {}
        for form in SUGGEST_FORMS:
            try:
                ion = parse_ion(form.format(el))
                pattern = ion.peaks(1e-3)
            except (KeyError, ValueError):
                continue
            if not pattern:
                continue
            m_main, a_main = max(pattern, key=lambda q: q[1])
            tol = lambda m: 1.5 * rel * m + float(model.extrapolation_da(m))  # noqa: E731
            k_main = int(np.argmin(np.abs(pm - m_main)))
            if k_main not in unexplained or abs(pm[k_main] - m_main) > tol(m_main):
                continue
            n_main = counts[k_main]
            landed, ok = {k_main}, True
            for m, a in pattern:
                if m == m_main:
                    continue
                pred = n_main * a / a_main
                k = int(np.argmin(np.abs(pm - m)))
                if abs(pm[k] - m) <= tol(m):
                    if k in unexplained:
                        landed.add(k)
                elif pred >= 20 and pred >= 5.0 * math.sqrt(pred):
                    ok = False
                    break
            if ok:
                hits[ion.name] = sorted(landed)
        if not hits:
            continue
        ks = set().union(*hits.values())
        score = float(sum(counts[k] for k in ks))
        ranked.append({"element": el, "counts": round(score, 1),
                       "share": round(score / total, 4),
                       "ions": {name: [round(float(pm_obs[k]), 3) for k in ks_]
                                for name, ks_ in hits.items()}})
    ranked.sort(key=lambda d: -d["counts"])
    return ranked[:top]
