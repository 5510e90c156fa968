"""Automatic ranging: peaks explained by candidate ions whose whole isotope pattern fits.

What an analyst does, made explicit:

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
   there cannot take counts. An ion is accepted when it explains at least 2
   % of one peak and its fitted count is at 5 sigma.
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
   among the ions that could hold (nearly) all of it, by the convention of
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
   above it. Where a window's tail reaches the next window, it stops where
   the next one begins (the tail that runs on is the next window's
   background, which ``liprobe composition --deconvolve`` corrects).
7. Every significant peak that no accepted ion explains (less than half its
   counts) is listed as unexplained and left unranged.

The matching tolerance is 1.5 FWHM (from the measured resolving power). It
is widened to 0.4 % of the mass when that explains at least 3 % more of the
peak counts, or more of them when 1.5 FWHM explains less than 80 % (a file
whose mass scale is off by more than a peak width, as the real Si.pos is at
its 28Si++ peak, +0.05 Da); the result says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..chemistry import Ion
from ..chemistry.candidates import DEFAULT_ADDED, ambiguity_priority, candidate_ions
from ..errors import AnalysisError
from ..rangetable import Range, RangeTable
from ._shared import poisson_excess_z, sorted_masses, sorted_search
from .peaks import PeakAnalysis, analyse_peaks

__all__ = ["Autorange", "autorange", "ION_COLORS"]

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
            "warnings": list(self.warnings),
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


def _match(cands, peaks, tol_fn, rel, sm, bg, min_significance=5.0):
    """Rows (observed peaks, then missing isotopes) and the design matrix over candidates.

    A missing row is added for an isotope of at least 2 % of its ion, or for one that the
    counts of the ion's main peak predict as a significant peak of its own (at least 10
    counts, ``min_significance`` over the local background): O2++ at 16 Da predicts its
    16O18O++ at 17.0 Da, which must be there for O2++ to take the 16 Da counts.
    """
    pm = np.array([p.mass for p in peaks])
    rows = [{"kind": "peak", "mass": p.mass, "peak": k,
             "counts": max(p.counts, 0.0),
             "var": max(p.counts, 0.0) + p.background * 4.0 * _fwhm_of(p, rel)}
            for k, p in enumerate(peaks)]
    missing: dict[float, int] = {}
    local: dict[float, tuple] = {}
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
            if k >= 0 and abs(pm[k] - m) <= tol_fn(m):
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
                local[key] = _local_excess(sm, m, rel * m, peaks, rel)
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


def _solve(rows, a):
    from scipy.optimize import nnls

    c = np.array([r["counts"] for r in rows])
    sig = np.sqrt(np.array([r["var"] for r in rows]) + (_SYSTEMATIC * c) ** 2 + 1.0)
    if a.shape[1] == 0:
        return np.zeros(0), c, sig
    sol, _ = nnls(a / sig[:, None], c / sig, maxiter=100 * a.shape[1])
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


def _attempt(peaks, cands, tol_fn, rel, sm, bg, user_elements, min_significance=5.0):
    rows, a, considered, cols = _match(cands, peaks, tol_fn, rel, sm, bg, min_significance)
    n, c, sig = _solve(rows, a)
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
    n2, c, sig = _solve(rows, a2)
    full_n = np.zeros(len(considered))
    full_n[accepted] = n2
    explained = float(np.sum(np.minimum((a2 @ n2)[:npk], c[:npk]))) / max(float(c[:npk].sum()), 1.0)
    return {"rows": rows, "a": a, "considered": considered, "cols": cols, "n": full_n,
            "c": c, "sig": sig, "accepted": accepted, "explained": explained}


def autorange(mass, elements, max_atoms: int = 5, max_charge: int = 3,
              mass_range=(0.5, 200.0), tof=None, min_significance: float = 5.0,
              tolerance="auto", add=DEFAULT_ADDED, ns_per_sqrt_da: float | None = None,
              sorted_mass: np.ndarray | None = None,
              peak_analysis: PeakAnalysis | None = None) -> Autorange:
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
    peaks = list(pa.peaks)
    if not peaks:
        raise AnalysisError("no significant peak in the spectrum")
    rel = _resolution(peaks)
    bg = pa.background
    user_elements = tuple(elements)
    tries = []
    if tolerance == "auto":
        tries.append(("1.5 FWHM", lambda m: 1.5 * rel * m))
    else:
        tol = float(tolerance)
        tries.append((f"{100 * tol:g} % of the mass", lambda m: tol * m))
    res = _attempt(peaks, cands, tries[0][1], rel, sm, bg, user_elements, min_significance)
    used = tries[0][0]
    warnings = []
    if tolerance == "auto":
        wide = _attempt(peaks, cands, lambda m: max(1.5 * rel * m, _WIDE_TOL_REL * m), rel, sm,
                        bg, user_elements, min_significance)
        if (wide["explained"] >= res["explained"] + _AUTO_GAIN
                or (res["explained"] < _AUTO_EXPLAINED and wide["explained"] > res["explained"])):
            warnings.append(f"peaks sit off their ions' masses by more than 1.5 FWHM: the "
                            f"matching tolerance was widened to {100 * _WIDE_TOL_REL:g} % of "
                            f"the mass (explained {100 * res['explained']:.0f} % -> "
                            f"{100 * wide['explained']:.0f} % of peak counts); check the "
                            "mass calibration")
            res, used = wide, f"{100 * _WIDE_TOL_REL:g} % of the mass (widened)"
    return _build(res, peaks, pa, rel, elements, used, warnings, user_elements,
                  min_significance)


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


def _build(res, peaks, pa, rel, elements, used, warnings, user_elements,
           min_significance=5.0):
    rows, a, considered, n, c, sig = (res["rows"], res["a"], res["considered"], res["n"],
                                      res["c"], res["sig"])
    accepted = res["accepted"]
    npk = len(peaks)
    contrib = a[:npk] * n[None, :]
    errs = _errors(a, sig, accepted)
    # --- ambiguities per peak
    ambiguities = []
    owner: dict[int, int] = {}        # peak -> candidate assigned
    first_accepted = set(accepted)
    # the row of each candidate's main isotope (an observed peak: see _match)
    main_row = {j: next(r for r, ab, m in res["cols"][j] if m == considered[j].main_peak[0])
                for j in range(len(considered))}
    for k in range(npk):
        here = [j for j in accepted if contrib[k, j] > 0]
        if not here:
            continue
        # accepted ions seen at their main isotope on another peak: their counts here are
        # fixed by their isotope patterns, and no rival can take them
        elsewhere = [j for j in here if main_row[j] != k]
        rivals = []
        for j in range(len(considered)):
            if j in here or a[k, j] <= 0:
                continue
            lim = _upper_limit(j, a, c, sig, n, k, elsewhere)
            if lim * a[k, j] >= _AMBIGUOUS_SHARE * max(c[k], 1.0):
                rivals.append((j, lim))
        main = max(here, key=lambda j: contrib[k, j])
        # an accepted ion shares the peak when it explains >= 0.5 % of it, or when its
        # isotope pattern (fitted on its other peaks) predicts counts here that would be a
        # significant peak on their own (a known contributor hidden under a larger peak,
        # such as 64Ni++ under O2+ at 32 Da)
        sharing = [j for j in here
                   if contrib[k, j] >= _SHARED_SHARE * max(c[k], 1.0)
                   or (contrib[k, j] >= _HIDDEN_MIN_COUNTS
                       and _hidden_peak_z(contrib[k, j], peaks[k], rel) >= min_significance)]
        if len(sharing) < 2 and not rivals:
            owner[k] = main
            continue
        predicted = {considered[j].ion.name: round(float(contrib[k, j]), 1) for j in sharing}
        names = [considered[j].ion for j in sharing]
        determined = all(n[j] >= 3.0 * errs.get(j, math.inf) for j in sharing)
        if rivals:
            determined = False
        names += [considered[j].ion for j, _ in rivals]
        if determined:
            assigned = main
            how = "split by the isotope patterns; the window goes to the larger share"
        else:
            # any ion able to hold (nearly) all of what the main one holds may take the
            # window; the convention picks among them
            cap = {j: contrib[k, j] for j in sharing}
            cap.update({j: lim * a[k, j] for j, lim in rivals})
            cap[main] = contrib[k, main]
            pool = [j for j, v in cap.items() if v >= 0.9 * contrib[k, main]]

            def key(j):
                pr = ambiguity_priority(considered[j].ion, user_elements)
                return (pr[0], pr[1], j not in first_accepted) + pr[2:]

            assigned = min(pool, key=key)
            how = ("not determined by the isotopes; assigned by convention (fewer atoms, "
                   "lower charge, an ion seen at its other isotopes, no H, the named "
                   "elements first)")
            if assigned not in accepted:
                # the convention's ion takes the peak: it becomes an accepted ion
                accepted.append(assigned)
                n[assigned] = max(n[assigned], float(c[k] / max(a[k, assigned], 1e-9)))
                for j in sharing:
                    if j != assigned and not any(contrib[q, j] > 0 for q in range(npk)
                                                 if q != k):
                        n[j] = 0.0
                contrib = a[:npk] * n[None, :]
        owner[k] = assigned
        ambiguities.append({
            "mass": round(peaks[k].mass, 4),
            "ions": [i.name for i in dict.fromkeys(names)],
            "assigned": considered[assigned].ion.name,
            "split": ({considered[j].ion.name: round(float(contrib[k, j]), 1) for j in sharing}
                      if determined else None),
            "predicted": predicted,
            "upper_limits": {considered[j].ion.name: round(float(lim * a[k, j]), 1)
                             for j, lim in rivals},
            "how": how,
        })
    # --- windows
    from .deconvolve import shape_from_peaks

    shape = shape_from_peaks(peaks)
    wins = [_window(p, rel, shape) for p in peaks]
    ranged = sorted(owner)
    bounds = {}
    for k in ranged:
        bounds[k] = list(wins[k])
    for i in range(len(ranged) - 1):
        k1, k2 = ranged[i], ranged[i + 1]
        if bounds[k1][1] > bounds[k2][0]:
            # the earlier window's tail gives way to the next window; cores keep their own
            cut = max(bounds[k2][0], 0.5 * (peaks[k1].mass + peaks[k2].mass)
                      if bounds[k2][0] < peaks[k1].mass else bounds[k2][0])
            bounds[k1][1] = cut
            bounds[k2][0] = cut
    ranges = [Range(round(bounds[k][0], 4), round(bounds[k][1], 4), considered[owner[k]].ion,
                    color=_color(considered[owner[k]].ion)) for k in ranged
              if bounds[k][1] > bounds[k][0]]
    # touching windows of one ion would merge (fine); of different ions are fine as half-open
    table = RangeTable.from_ranges(ranges)
    # --- per-ion report
    fitted_rows = a @ n
    ions_out = []
    total_n = float(sum(n[j] for j in accepted)) or 1.0
    for j in sorted(set(accepted), key=lambda j: considered[j].main_peak[0]):
        cand = considered[j]
        if n[j] <= 0 and not any(r.ion == cand.ion for r in table.ranges):
            continue
        rws = [(r, ab, m) for r, ab, m in res["cols"][j]]
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
        off = None
        k_main = next((r for r, ab, m in rws if m == cand.main_peak[0]
                       and rows[r]["kind"] == "peak"), None)
        if k_main is not None:
            off = round(peaks[k_main].mass - cand.main_peak[0], 4)
        ions_out.append({
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
            "main_peak_offset_da": off,
        })
    # --- unexplained peaks
    explained_k = (a[:npk] @ n)
    unexplained = []
    for k, p in enumerate(peaks):
        frac = explained_k[k] / max(c[k], 1.0)
        if frac < 0.5:
            unexplained.append({"mass": round(p.mass, 4), "counts": round(p.counts, 1),
                                "significance": round(p.significance, 1),
                                "explained_fraction": round(float(min(frac, 1.0)), 3),
                                "ranged_as": considered[owner[k]].ion.name if k in owner else None})
    # --- calibration check on the accepted ions' main peaks
    from .calibration import calibration_from_pairs

    calibration = None
    pairs = []
    for d in ions_out:
        if d["main_peak_offset_da"] is None:
            continue
        cand = next(cd for cd in considered if cd.ion.name == d["ion"])
        pairs.append((cand.ion.name, cand.main_peak[0], cand.main_peak[0] +
                      d["main_peak_offset_da"]))
    if len(pairs) >= 2:
        calibration = calibration_from_pairs(pairs).to_dict()
    explained_total = (float(np.sum(np.minimum(explained_k, c[:npk])))
                       / max(float(c[:npk].sum()), 1.0))
    return Autorange(table, tuple(ions_out), tuple(ambiguities), tuple(unexplained), pa,
                     tuple(elements), {"rule": used, "fwhm_relative": rel}, explained_total,
                     calibration, tuple(warnings))
